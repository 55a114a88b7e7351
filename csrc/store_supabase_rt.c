/* store_supabase_rt.c - the Supabase backend's Realtime wiring: one client
 * (realtime.c) for the signed-in user while someone watches, its changes
 * turned into store events (and kept in the local copy), its joins into a
 * full refresh owed (events may have been missed), its need of a new token
 * into the session's refresh; stopped and started again on a change of
 * session.
 */
#include "store_supabase_internal.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mpjson.h"
#include "util.h"

static void sb_rt_state(void *data, rt_state state, const char *message) {
  sb_store *sb = data;
  if (state == RT_JOINED)
    auth_realtime_joined(sb->auth);
  sb->rt_epoch++;
  sb_set(&sb->rt_state, rt_state_name(state));
  sb_set(&sb->rt_message, message);
  if (state == RT_DISCONNECTED || state == RT_ERROR)
    sb_cache_reconcile(sb); /* no join soon: refresh without it */
  if (message)
    log_info("supabase: %s", message);
  else if (state == RT_JOINED)
    log_info("supabase: Realtime joined");
  sb_emit(sb, STORE_EV_STATE, STORE_BLOCKS, NULL, NULL);
}

/* Realtime holds an expired token and waits for a new one. */
static void sb_rt_token_needed(void *data) {
  sb_store *sb = data;
  auth_realtime_refused(sb->auth);
}

static void sb_rt_joined(void *data) {
  sb_store *sb = data;
  /* Events sent while we were away are lost: load everything again (which
   * also settles what the local copy answered), and count again (it also
   * comes when a subscription taken as live is confirmed late). */
  sb->rt_epoch++;
  sb->cache_stale = 0;
  sb_emit(sb, STORE_EV_RESYNC, STORE_BLOCKS, NULL, NULL);
}

/* Bindings come in pairs per table: [2t] filtered to the user, [2t+1] an
 * unfiltered DELETE (a filtered binding never sees a DELETE without replica
 * identity full). */
static void sb_rt_change(void *data, int binding, const cJSON *payload) {
  sb_store *sb = data;
  if (binding < 0 || binding >= 2 * STORE_NTABLES)
    return;
  store_table t = (store_table)(binding / 2);
  const char *type = mpjson_get_str(payload, "type");
  const cJSON *record = cJSON_GetObjectItemCaseSensitive(payload, "record");
  const cJSON *old = cJSON_GetObjectItemCaseSensitive(payload, "old_record");
  if (!type)
    return;
  if (strcmp(type, "DELETE") == 0) {
    const char *id = mpjson_get_str(old, "id");
    if (id && sb->cache)
      sbcache_delete(sb->cache, auth_user_id(sb->auth), t, id);
    if (id)
      sb_emit(sb, STORE_EV_DELETE, t, id, NULL);
    return;
  }
  const char *id = mpjson_get_str(record, "id");
  const char *owner = mpjson_get_str(record, "user_id");
  if (!id)
    return;
  if (!owner || !auth_user_id(sb->auth) || strcmp(owner, auth_user_id(sb->auth)) != 0) {
    log_warn("supabase: dropped a realtime event for another user");
    return;
  }
  const cJSON *errors = cJSON_GetObjectItemCaseSensitive(payload, "errors");
  if (errors && !cJSON_IsNull(errors) && cJSON_GetArraySize(errors) > 0) {
    /* Records over 1 MB arrive cut short: fetch the row instead. */
    sb_emit(sb, STORE_EV_UPSERT, t, id, NULL);
    return;
  }
  if (sb->cache) {
    char *text = cJSON_PrintUnformatted(record);
    char *list = util_printf("[%s]", text);
    sb_pagers_note(sb, t, id);
    sbcache_put(sb->cache, owner, t, list, strlen(list));
    free(list);
    free(text);
  }
  sb_emit(sb, STORE_EV_UPSERT, t, id, record);
}

void sb_start_realtime(sb_store *sb) {
  /* One client at a time: lws 4.1.6 must finish tearing one context down
   * before another starts (overlapping teardowns close an fd twice). */
  if (sb->rt || sb->rt_closing || !sb->realtime_on || !sb->watch_cb || !auth_access_token(sb->auth) ||
      sb->closing)
    return;
  rt_binding bindings[2 * STORE_NTABLES];
  char *filters[STORE_NTABLES];
  for (int t = 0; t < STORE_NTABLES; t++) {
    filters[t] = util_printf("user_id=eq.%s", auth_user_id(sb->auth));
    bindings[2 * t] = (rt_binding){"*", "public", sb->tables[t], filters[t]};
    bindings[2 * t + 1] = (rt_binding){"DELETE", "public", sb->tables[t], NULL};
  }
  char *topic = util_printf("realtime:shelf-%s", auth_user_id(sb->auth));
  rt_options opts = {0};
  opts.url = sb->url;
  opts.anon_key = sb->anon_key;
  opts.access_token = auth_access_token(sb->auth);
  opts.access_token_expires_at = auth_expires_at(sb->auth);
  opts.topic = topic;
  opts.bindings = bindings;
  opts.nbindings = 2 * STORE_NTABLES;
  opts.ca_file = sb->ca_file;
  opts.heartbeat_ms = sb->heartbeat_ms;
  opts.heartbeat_timeout_ms = sb->heartbeat_reply_ms;
  rt_callbacks cbs = {0};
  cbs.on_state = sb_rt_state;
  cbs.on_change = sb_rt_change;
  cbs.on_joined = sb_rt_joined;
  cbs.on_token_needed = sb_rt_token_needed;
  char *err = NULL;
  sb->rt = rt_new(sb->loop, &opts, &cbs, sb, &err);
  if (!sb->rt) {
    char *msg = util_printf("Realtime could not start: %s", err ? err : "unknown error");
    log_warn("supabase: %s", msg);
    sb_set(&sb->rt_state, "error");
    sb_set(&sb->rt_message, msg);
    free(msg);
  }
  free(err);
  free(topic);
  for (int t = 0; t < STORE_NTABLES; t++)
    free(filters[t]);
}

static void sb_rt_closed(void *data) {
  sb_store *sb = data;
  sb->rt_closing = 0;
  if (sb->closing) {
    sb_part_closed(sb);
    return;
  }
  sb_start_realtime(sb); /* for whoever is signed in now, if anyone */
}

void sb_stop_realtime(sb_store *sb) {
  if (!sb->rt)
    return;
  rt_client *rt = sb->rt;
  sb->rt = NULL;
  sb->rt_closing = 1;
  sb->rt_epoch++;
  sb_set(&sb->rt_state, "off");
  rt_close(rt, sb_rt_closed, sb);
}

int sb_watch(store *st, store_event_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  sb->watch_cb = cb;
  sb->watch_data = data;
  /* A token about to expire is refreshed first; AUTH_EV_REFRESHED starts Realtime. */
  if (auth_start(sb->auth))
    sb_start_realtime(sb);
  return 0;
}
