/* phoenix.c - the Phoenix channel protocol of Supabase Realtime (see
 * phoenix.h): frames in and out, and the channel's state machine (join and
 * its reply, the postgres_changes bindings and their ids, the subscription
 * going live, heartbeats, token pushes and expiry, leave, and the backoff
 * before the next connect or join). It owns the channel's timers but no
 * socket: what it sends goes to phx_transport, what arrives comes in through
 * phx_receive, so it runs (and is fuzzed, fuzz/fuzz_realtime.c) without a
 * network. The protocol is Supabase's ("Realtime Protocol" in its guides):
 * vsn 2.0.0 array frames out, either serializer in. */
#include "phoenix.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "mpjson.h"
#include "util.h"

static const unsigned phx_default_backoff[] = {1000, 2000, 5000, 10000};

/* --- small helpers -------------------------------------------------------- */

static char *phx_dup(const char *s) { return s ? util_strdup(s) : NULL; }

/* NULL and "" are the same (realtime-js compares bindings so). */
static int phx_same(const char *a, const char *b) {
  if (!a || !*a)
    return !b || !*b;
  return b && strcmp(a, b) == 0;
}

static int phx_contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; hay && *hay; hay++)
    if (strncasecmp(hay, needle, n) == 0)
      return 1;
  return 0;
}

/* "2 s" or "300 ms", for messages. */
static void phx_fmt_delay(char *out, size_t n, unsigned ms) {
  if (ms >= 1000)
    snprintf(out, n, "%u s", (ms + 500) / 1000);
  else
    snprintf(out, n, "%u ms", ms);
}

void phx_report(phx_channel *ch, rt_state st, const char *fmt, ...) {
  ch->state = st;
  if (ch->closing || !ch->cb.on_state)
    return;
  char *msg = NULL;
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    msg = util_vprintf(fmt, ap);
    va_end(ap);
  }
  ch->cb.on_state(ch->data, st, msg);
  free(msg);
}

const char *rt_state_name(rt_state state) {
  switch (state) {
  case RT_DISCONNECTED:
    return "disconnected";
  case RT_CONNECTING:
    return "connecting";
  case RT_JOINING:
    return "joining";
  case RT_JOINED:
    return "joined";
  case RT_ERROR:
    return "error";
  }
  return "unknown";
}

/* --- frames --------------------------------------------------------------- */

/* A JSON number that is a whole number of at most 15 digits (refs, binding
 * ids). The range is checked before the cast: a cast of 1e300 or inf to an
 * integer is undefined. */
static int phx_json_int(const cJSON *v, long long *out) {
  if (!cJSON_IsNumber(v) || !(v->valuedouble > -1e15 && v->valuedouble < 1e15) ||
      v->valuedouble != (double)(long long)v->valuedouble)
    return -1;
  *out = (long long)v->valuedouble;
  return 0;
}

static int phx_ref_value(const cJSON *v, char *buf, size_t n, const char **out) {
  if (!v || cJSON_IsNull(v)) {
    *out = NULL;
    return 0;
  }
  if (cJSON_IsString(v)) {
    *out = v->valuestring;
    return 0;
  }
  long long num;
  if (phx_json_int(v, &num) == 0) {
    snprintf(buf, n, "%lld", num);
    *out = buf;
    return 0;
  }
  return -1;
}

int phx_parse_frame(const char *text, size_t len, phx_frame *out, char **err) {
  memset(out, 0, sizeof *out);
  if (!text || len == 0) {
    util_seterr(err, "empty message");
    return -1;
  }
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!root) {
    const char *at = cJSON_GetErrorPtr();
    if (at >= text && at <= text + len)
      util_seterr(err, "not JSON (error at byte %zu)", (size_t)(at - text));
    else
      util_seterr(err, "not JSON");
    return -1;
  }
  while (end && end < text + len && isspace((unsigned char)*end))
    end++;
  if (!end || end != text + len) {
    cJSON_Delete(root);
    util_seterr(err, "text after the JSON value");
    return -1;
  }
  const cJSON *jr, *ref, *topic, *event, *payload;
  if (cJSON_IsArray(root)) {
    if (cJSON_GetArraySize(root) != 5) {
      cJSON_Delete(root);
      util_seterr(err, "an array frame must have 5 elements");
      return -1;
    }
    out->vsn = 2;
    jr = cJSON_GetArrayItem(root, 0);
    ref = cJSON_GetArrayItem(root, 1);
    topic = cJSON_GetArrayItem(root, 2);
    event = cJSON_GetArrayItem(root, 3);
    payload = cJSON_GetArrayItem(root, 4);
  } else if (cJSON_IsObject(root)) {
    out->vsn = 1;
    jr = cJSON_GetObjectItemCaseSensitive(root, "join_ref");
    ref = cJSON_GetObjectItemCaseSensitive(root, "ref");
    topic = cJSON_GetObjectItemCaseSensitive(root, "topic");
    event = cJSON_GetObjectItemCaseSensitive(root, "event");
    payload = cJSON_GetObjectItemCaseSensitive(root, "payload");
  } else {
    cJSON_Delete(root);
    util_seterr(err, "a frame must be a JSON array or object");
    return -1;
  }
  const char *problem = NULL;
  if (!cJSON_IsString(topic))
    problem = "topic must be a string";
  else if (!cJSON_IsString(event))
    problem = "event must be a string";
  else if (!cJSON_IsObject(payload))
    problem = "payload must be an object";
  else if (phx_ref_value(jr, out->num_refs[0], sizeof out->num_refs[0], &out->join_ref) < 0)
    problem = "join_ref must be a string or null";
  else if (phx_ref_value(ref, out->num_refs[1], sizeof out->num_refs[1], &out->ref) < 0)
    problem = "ref must be a string or null";
  if (problem) {
    cJSON_Delete(root);
    memset(out, 0, sizeof *out);
    util_seterr(err, "%s", problem);
    return -1;
  }
  out->topic = topic->valuestring;
  out->event = event->valuestring;
  out->payload = payload;
  out->root = root;
  return 0;
}

void phx_frame_free(phx_frame *f) {
  cJSON_Delete(f->root);
  memset(f, 0, sizeof *f);
}

/* --- sending -------------------------------------------------------------- */

/* Send [join_ref, ref, topic, event, payload] (vsn 2.0.0) on the open
 * socket. Takes payload. Writes ref into ref_out (24 bytes) when not NULL. */
static void phx_push(phx_channel *ch, const char *join_ref, const char *topic,
                     const char *event, cJSON *payload, char *ref_out) {
  if (!ch->io.is_open(ch->io_data)) {
    cJSON_Delete(payload);
    return;
  }
  char ref[24];
  snprintf(ref, sizeof ref, "%lu", ++ch->next_ref);
  if (ref_out)
    memcpy(ref_out, ref, sizeof ref);
  cJSON *a = cJSON_CreateArray();
  cJSON_AddItemToArray(a, join_ref ? cJSON_CreateString(join_ref) : cJSON_CreateNull());
  cJSON_AddItemToArray(a, cJSON_CreateString(ref));
  cJSON_AddItemToArray(a, cJSON_CreateString(topic));
  cJSON_AddItemToArray(a, cJSON_CreateString(event));
  cJSON_AddItemToArray(a, payload);
  char *text = cJSON_PrintUnformatted(a);
  cJSON_Delete(a);
  if (!text)
    abort(); /* out of memory: as util_malloc does */
  size_t len = strlen(text);
  ch->io.send(ch->io_data, text, len);
  /* The message may hold a token: wipe it before freeing it. */
  explicit_bzero(text, len);
  free(text);
}

static cJSON *phx_join_payload(phx_channel *ch) {
  cJSON *p = cJSON_CreateObject();
  cJSON *config = cJSON_AddObjectToObject(p, "config");
  cJSON *broadcast = cJSON_AddObjectToObject(config, "broadcast");
  cJSON_AddFalseToObject(broadcast, "ack");
  cJSON_AddFalseToObject(broadcast, "self");
  cJSON *presence = cJSON_AddObjectToObject(config, "presence");
  cJSON_AddStringToObject(presence, "key", "");
  cJSON_AddFalseToObject(presence, "enabled");
  cJSON *changes = cJSON_AddArrayToObject(config, "postgres_changes");
  for (int i = 0; i < ch->nbinds; i++) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "event", ch->binds[i].event);
    cJSON_AddStringToObject(b, "schema", ch->binds[i].schema);
    if (ch->binds[i].table)
      cJSON_AddStringToObject(b, "table", ch->binds[i].table);
    if (ch->binds[i].filter)
      cJSON_AddStringToObject(b, "filter", ch->binds[i].filter);
    cJSON_AddItemToArray(changes, b);
  }
  cJSON_AddFalseToObject(config, "private");
  if (ch->token)
    cJSON_AddStringToObject(p, "access_token", ch->token);
  return p;
}
static void phx_on_join_timeout(uv_timer_t *t);

static void phx_token_expired(phx_channel *ch, const char *detail);

static void phx_send_join(phx_channel *ch) {
  double now = (double)time(NULL);
  if (ch->cb.on_token_needed && ch->token && ch->token_exp > 0 && ch->token_exp <= now) {
    /* The join would be refused. After a sleep libuv's timers (the token
     * refresh among them) lag the wall clock, so the token can be stale. */
    char *why = util_printf("by this machine's clock it expired %.0f s ago", now - ch->token_exp);
    phx_token_expired(ch, why);
    free(why);
    return;
  }
  ch->waiting_token = 0;
  ch->token_changed = 0;
  for (int i = 0; i < ch->nbinds; i++)
    ch->binds[i].has_id = 0;
  /* The join's ref is also its join_ref: number it first. */
  snprintf(ch->join_ref, sizeof ch->join_ref, "%lu", ch->next_ref + 1);
  phx_push(ch, ch->join_ref, ch->topic, "phx_join", phx_join_payload(ch), NULL);
  uv_timer_start(&ch->join_timer, phx_on_join_timeout, ch->join_timeout_ms, 0);
  phx_report(ch, RT_JOINING, NULL);
}

/* --- retries -------------------------------------------------------------- */

static void phx_on_retry(uv_timer_t *t) {
  phx_channel *ch = t->data;
  if (ch->io.is_open(ch->io_data))
    phx_send_join(ch);
  else
    ch->io.connect(ch->io_data);
}

static unsigned phx_next_delay(phx_channel *ch) {
  int i = ch->attempts < ch->nbackoff ? ch->attempts : ch->nbackoff - 1;
  ch->attempts++;
  return ch->backoff[i];
}

void phx_schedule(phx_channel *ch, rt_state st, const char *what) {
  unsigned ms = phx_next_delay(ch);
  double jittered = util_jitter(ms, 0.1);
  char delay[32];
  phx_fmt_delay(delay, sizeof delay, ms);
  uv_timer_start(&ch->retry_timer, phx_on_retry, jittered < 1 ? 1 : (uint64_t)jittered, 0);
  phx_report(ch, st, "Realtime: %s; %s in %s", what,
             ch->io.is_open(ch->io_data) ? "rejoining" : "reconnecting", delay);
}

void phx_retry_in(phx_channel *ch, unsigned ms) {
  uv_timer_start(&ch->retry_timer, phx_on_retry, ms, 0);
}

void phx_start(phx_channel *ch, unsigned ms) { phx_retry_in(ch, ms); }

static void phx_stop_channel_timers(phx_channel *ch) {
  uv_timer_stop(&ch->hb_timer);
  uv_timer_stop(&ch->hb_timeout_timer);
  uv_timer_stop(&ch->join_timer);
  uv_timer_stop(&ch->live_timer);
  ch->live_pending = 0;
  ch->live_by_fallback = 0;
  ch->hb_ref[0] = '\0';
}

void phx_socket_gone(phx_channel *ch) { phx_stop_channel_timers(ch); }

/* --- heartbeat ------------------------------------------------------------ */

static void phx_on_heartbeat_timeout(uv_timer_t *t);

static void phx_on_heartbeat(uv_timer_t *t) {
  phx_channel *ch = t->data;
  if (ch->hb_ref[0])
    return; /* still waiting: the timeout decides */
  phx_push(ch, NULL, "phoenix", "heartbeat", cJSON_CreateObject(), ch->hb_ref);
  if (ch->hb_ref[0])
    uv_timer_start(&ch->hb_timeout_timer, phx_on_heartbeat_timeout, ch->hb_timeout_ms, 0);
}

static void phx_on_heartbeat_timeout(uv_timer_t *t) {
  phx_channel *ch = t->data;
  log_warn("realtime: no heartbeat reply in %u ms", ch->hb_timeout_ms);
  ch->io.lost(ch->io_data, "heartbeat timeout");
}

static void phx_on_join_timeout(uv_timer_t *t) {
  phx_channel *ch = t->data;
  ch->join_ref[0] = '\0'; /* a late reply is ignored */
  phx_schedule(ch, RT_ERROR, "join timed out");
}

void phx_opened(phx_channel *ch) {
  phx_send_join(ch);
  if (!ch->closing)
    uv_timer_start(&ch->hb_timer, phx_on_heartbeat, ch->hb_ms, ch->hb_ms);
}

/* --- incoming messages ---------------------------------------------------- */

/* The subscription is live: the backoff starts over, and the caller loads
 * everything again (changes made before now were not sent). */
static void phx_went_live(phx_channel *ch) {
  uv_timer_stop(&ch->live_timer);
  ch->live_pending = 0;
  ch->attempts = 0;
  phx_report(ch, RT_JOINED, NULL);
  if (!ch->closing && ch->cb.on_joined)
    ch->cb.on_joined(ch->data);
}

static void phx_on_live_timeout(uv_timer_t *t) {
  phx_channel *ch = t->data;
  log_info("realtime: no \"Subscribed to PostgreSQL\" within %u ms of the join; "
           "taking the channel as live", ch->live_timeout_ms);
  ch->live_by_fallback = 1;
  phx_went_live(ch);
}

/* The channel is no longer joined on the server (closed, crashed, left):
 * its replies and bindings are stale. */
static void phx_channel_gone(phx_channel *ch) {
  ch->join_ref[0] = '\0';
  for (int i = 0; i < ch->nbinds; i++)
    ch->binds[i].has_id = 0;
  uv_timer_stop(&ch->live_timer);
  ch->live_pending = 0;
  ch->live_by_fallback = 0;
}

static void phx_token_expired(phx_channel *ch, const char *detail) {
  ch->token_expired = 1;
  phx_channel_gone(ch);
  uv_timer_stop(&ch->join_timer);
  if (ch->cb.on_token_needed) {
    ch->waiting_token = 1;
    phx_report(ch, RT_ERROR, "Realtime: token expired (%s); waiting for a new token", detail);
    if (!ch->closing)
      ch->cb.on_token_needed(ch->data);
  } else {
    char *what = util_printf("token expired (%s)", detail);
    phx_schedule(ch, RT_ERROR, what);
    free(what);
  }
}

static int phx_is_token_problem(const char *s) {
  return phx_contains_nocase(s, "expired") || phx_contains_nocase(s, "InvalidJWTToken");
}

static void phx_on_join_reply(phx_channel *ch, const cJSON *payload) {
  uv_timer_stop(&ch->join_timer);
  const char *status = mpjson_get_str(payload, "status");
  const cJSON *response = cJSON_GetObjectItemCaseSensitive(payload, "response");
  if (!status || strcmp(status, "ok") != 0) {
    const char *reason = mpjson_get_str(response, "reason");
    char *text = reason ? util_strdup(reason) : cJSON_PrintUnformatted(response);
    if (!text)
      text = util_strdup("no reason given");
    log_warn("realtime: join refused: %s", text);
    ch->join_ref[0] = '\0';
    if (phx_is_token_problem(text)) {
      phx_token_expired(ch, text);
    } else {
      char *what = util_printf("join refused: %s", text);
      phx_schedule(ch, RT_ERROR, what);
      free(what);
    }
    free(text);
    return;
  }
  /* Match the server's bindings to ours index by index, as realtime-js
   * does; the ids are what later events carry. */
  const cJSON *server = cJSON_GetObjectItemCaseSensitive(response, "postgres_changes");
  int n = cJSON_IsArray(server) ? cJSON_GetArraySize(server) : 0;
  for (int i = 0; i < ch->nbinds; i++) {
    const cJSON *s = i < n ? cJSON_GetArrayItem(server, i) : NULL;
    long long id;
    if (!s || phx_json_int(cJSON_GetObjectItemCaseSensitive(s, "id"), &id) < 0 ||
        !phx_same(mpjson_get_str(s, "event"), ch->binds[i].event) ||
        !phx_same(mpjson_get_str(s, "schema"), ch->binds[i].schema) ||
        !phx_same(mpjson_get_str(s, "table"), ch->binds[i].table) ||
        !phx_same(mpjson_get_str(s, "filter"), ch->binds[i].filter)) {
      phx_channel_gone(ch);
      log_warn("realtime: the join reply's binding %d does not match ours", i);
      phx_schedule(ch, RT_ERROR, "mismatch between server and client bindings for postgres changes");
      return;
    }
    ch->binds[i].id = id;
    ch->binds[i].has_id = 1;
  }
  ch->token_expired = 0;
  if (ch->token_changed && ch->token) {
    /* The token changed while the join was on its way (realtime-js pushes
     * it after the join too). */
    ch->token_changed = 0;
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "access_token", ch->token);
    phx_push(ch, ch->join_ref, ch->topic, "access_token", p, NULL);
  }
  if (ch->nbinds == 0) {
    phx_went_live(ch); /* no postgres_changes: no system message comes */
    return;
  }
  /* Changes flow only once the server has put the subscription in place;
   * its system message says so. */
  ch->live_pending = 1;
  uv_timer_start(&ch->live_timer, phx_on_live_timeout, ch->live_timeout_ms, 0);
}

static void phx_on_change(phx_channel *ch, const cJSON *payload) {
  const cJSON *ids = cJSON_GetObjectItemCaseSensitive(payload, "ids");
  const cJSON *data = cJSON_GetObjectItemCaseSensitive(payload, "data");
  const char *type = mpjson_get_str(data, "type");
  if (!cJSON_IsArray(ids) || !cJSON_IsObject(data) || !type) {
    log_warn("realtime: skipped a postgres_changes event without ids, data or type");
    return;
  }
  for (int i = 0; i < ch->nbinds && !ch->closing; i++) {
    if (!ch->binds[i].has_id)
      continue;
    if (strcmp(ch->binds[i].event, "*") != 0 && strcasecmp(ch->binds[i].event, type) != 0)
      continue;
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) {
      long long num;
      if (phx_json_int(id, &num) == 0 && num == ch->binds[i].id) {
        if (ch->cb.on_change)
          ch->cb.on_change(ch->data, i, data);
        break;
      }
    }
  }
}

/* current: the message carries the join_ref of the join in flight or
 * joined (or none, as vsn 1.0.0 servers send). */
static void phx_on_system(phx_channel *ch, const cJSON *payload, int current) {
  if (ch->cb.on_system)
    ch->cb.on_system(ch->data, payload);
  if (ch->closing)
    return;
  const char *status = mpjson_get_str(payload, "status");
  const char *ext = mpjson_get_str(payload, "extension");
  const char *msg = mpjson_get_str(payload, "message");
  int pg = ext && strcmp(ext, "postgres_changes") == 0;
  if (pg && status && strcmp(status, "ok") == 0 && current) {
    if (ch->live_pending) {
      phx_went_live(ch);
    } else if (ch->live_by_fallback) {
      /* Taken as live too early: what changed meanwhile may be missing. */
      ch->live_by_fallback = 0;
      log_info("realtime: the subscription went live after the fallback; loading again");
      if (ch->cb.on_joined)
        ch->cb.on_joined(ch->data);
    }
    return;
  }
  if (!status || strcmp(status, "error") != 0)
    return;
  log_warn("realtime: system error from %s: %s", ext ? ext : "?", msg ? msg : "?");
  if (ext && strcmp(ext, "system") == 0) {
    /* A phx_close follows; remember why. */
    if (msg && phx_is_token_problem(msg))
      ch->token_expired = 1;
    phx_report(ch, ch->state, "Realtime: %s", msg ? msg : "channel error");
  } else if (current && ch->join_ref[0]) {
    /* The subscription failed (a bad filter, a database error): no changes
     * will come. Leave, and join again later. */
    phx_push(ch, ch->join_ref, ch->topic, "phx_leave", cJSON_CreateObject(), NULL);
    phx_channel_gone(ch);
    char *what = util_printf("subscription error: %s", msg ? msg : "unknown");
    phx_schedule(ch, RT_ERROR, what);
    free(what);
  }
}

void phx_receive(phx_channel *ch, const char *text, size_t len) {
  phx_frame f;
  char *err = NULL;
  if (phx_parse_frame(text, len, &f, &err) < 0) {
    log_warn("realtime: skipped a malformed message (%s)", err);
    free(err);
    return;
  }
  int ours = strcmp(f.topic, ch->topic) == 0;
  /* A reply or close for an earlier join of the channel is stale. */
  int current = !f.join_ref || (ch->join_ref[0] && strcmp(f.join_ref, ch->join_ref) == 0);
  if (strcmp(f.event, "phx_reply") == 0) {
    if (strcmp(f.topic, "phoenix") == 0 && f.ref && ch->hb_ref[0] &&
        strcmp(f.ref, ch->hb_ref) == 0) {
      ch->hb_ref[0] = '\0';
      uv_timer_stop(&ch->hb_timeout_timer);
    } else if (ours && f.ref && ch->join_ref[0] && strcmp(f.ref, ch->join_ref) == 0) {
      phx_on_join_reply(ch, f.payload);
    }
  } else if (!ours) {
    log_debug("realtime: ignored %s on topic %s", f.event, f.topic);
  } else if (strcmp(f.event, "postgres_changes") == 0) {
    /* Accepted from the join reply on: a server may start before it says
     * the subscription is live. */
    if (ch->state == RT_JOINED || ch->live_pending)
      phx_on_change(ch, f.payload);
  } else if (strcmp(f.event, "system") == 0) {
    phx_on_system(ch, f.payload, current);
  } else if (strcmp(f.event, "phx_close") == 0 && current && ch->join_ref[0]) {
    phx_channel_gone(ch);
    if (ch->token_expired)
      phx_token_expired(ch, "the server closed the channel");
    else
      phx_schedule(ch, RT_ERROR, "the server closed the channel");
  } else if (strcmp(f.event, "phx_error") == 0 && current && ch->join_ref[0]) {
    phx_channel_gone(ch);
    phx_schedule(ch, RT_ERROR, "channel error");
  }
  phx_frame_free(&f);
}

/* --- token ---------------------------------------------------------------- */

void phx_set_token(phx_channel *ch, const char *jwt, double expires_at) {
  if (ch->closing || !jwt)
    return;
  ch->token_exp = expires_at;
  if (ch->token && strcmp(ch->token, jwt) == 0 && !ch->waiting_token)
    return;
  if (ch->token)
    explicit_bzero(ch->token, strlen(ch->token));
  free(ch->token);
  ch->token = util_strdup(jwt);
  ch->token_expired = 0;
  if ((ch->state == RT_JOINED || ch->live_pending) && ch->io.is_open(ch->io_data)) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "access_token", jwt);
    phx_push(ch, ch->join_ref, ch->topic, "access_token", p, NULL);
  } else if (ch->waiting_token) {
    phx_rejoin(ch);
  } else if (ch->state == RT_JOINING) {
    ch->token_changed = 1;
  }
}

void phx_rejoin(phx_channel *ch) {
  if (ch->closing)
    return;
  ch->attempts = 0;
  ch->waiting_token = 0;
  uv_timer_start(&ch->retry_timer, phx_on_retry, 1, 0);
}

/* --- life cycle ----------------------------------------------------------- */

const char *phx_check_options(const rt_options *o) {
  if (!o->topic || strncmp(o->topic, "realtime:", 9) != 0 || !o->topic[9])
    return "the topic must be \"realtime:<name>\"";
  if (o->nbindings < 0 || (o->nbindings > 0 && !o->bindings))
    return "bad bindings";
  for (int i = 0; i < o->nbindings; i++) {
    const rt_binding *b = &o->bindings[i];
    if (!b->event || !b->schema)
      return "every binding needs an event and a schema";
    if (strcmp(b->event, "*") && strcmp(b->event, "INSERT") && strcmp(b->event, "UPDATE") &&
        strcmp(b->event, "DELETE"))
      return "a binding's event must be *, INSERT, UPDATE or DELETE";
  }
  if (o->nbackoff < 0 || (o->nbackoff > 0 && !o->backoff_ms))
    return "bad backoff table";
  return NULL;
}

#define PHX_NTIMERS 5

static uv_timer_t **phx_timers(phx_channel *ch, uv_timer_t *out[PHX_NTIMERS]) {
  out[0] = &ch->retry_timer;
  out[1] = &ch->hb_timer;
  out[2] = &ch->hb_timeout_timer;
  out[3] = &ch->join_timer;
  out[4] = &ch->live_timer;
  return out;
}

void phx_init(phx_channel *ch, uv_loop_t *loop, const rt_options *opts, const rt_callbacks *cb,
              void *data, const phx_transport *io, void *io_data) {
  memset(ch, 0, sizeof *ch);
  ch->loop = loop;
  ch->io = *io;
  ch->io_data = io_data;
  if (cb)
    ch->cb = *cb;
  ch->data = data;
  ch->topic = util_strdup(opts->topic);
  ch->token = phx_dup(opts->access_token);
  ch->token_exp = opts->access_token_expires_at;
  ch->nbinds = opts->nbindings;
  ch->binds = util_calloc((size_t)(ch->nbinds ? ch->nbinds : 1), sizeof *ch->binds);
  for (int i = 0; i < ch->nbinds; i++) {
    ch->binds[i].event = util_strdup(opts->bindings[i].event);
    ch->binds[i].schema = util_strdup(opts->bindings[i].schema);
    ch->binds[i].table = phx_dup(opts->bindings[i].table);
    ch->binds[i].filter = phx_dup(opts->bindings[i].filter);
  }
  const unsigned *table = opts->nbackoff ? opts->backoff_ms : phx_default_backoff;
  ch->nbackoff = opts->nbackoff ? opts->nbackoff : 4;
  ch->backoff = util_malloc((size_t)ch->nbackoff * sizeof *ch->backoff);
  memcpy(ch->backoff, table, (size_t)ch->nbackoff * sizeof *ch->backoff);
  ch->hb_ms = opts->heartbeat_ms ? opts->heartbeat_ms : 25000;
  ch->hb_timeout_ms = opts->heartbeat_timeout_ms ? opts->heartbeat_timeout_ms : 10000;
  if (ch->hb_timeout_ms > ch->hb_ms)
    ch->hb_timeout_ms = ch->hb_ms;
  ch->join_timeout_ms = opts->join_timeout_ms ? opts->join_timeout_ms : 10000;
  ch->live_timeout_ms = opts->live_timeout_ms ? opts->live_timeout_ms : 5000;
  ch->state = RT_DISCONNECTED;
  uv_timer_t *timers[PHX_NTIMERS];
  phx_timers(ch, timers);
  for (int i = 0; i < PHX_NTIMERS; i++) {
    uv_timer_init(loop, timers[i]);
    timers[i]->data = ch;
  }
}

int phx_close(phx_channel *ch) {
  uv_timer_stop(&ch->retry_timer);
  phx_stop_channel_timers(ch);
  int leaving = 0;
  if (ch->io.is_open(ch->io_data) && ch->join_ref[0]) {
    phx_push(ch, ch->join_ref, ch->topic, "phx_leave", cJSON_CreateObject(), NULL);
    leaving = 1;
  }
  ch->closing = 1;
  return leaving;
}

static void phx_on_timer_closed(uv_handle_t *h) {
  phx_channel *ch = h->data;
  if (--ch->open_timers == 0 && ch->timers_closed)
    ch->timers_closed(ch->timers_closed_data);
}

void phx_close_timers(phx_channel *ch, void (*done)(void *data), void *data) {
  ch->closing = 1;
  ch->timers_closed = done;
  ch->timers_closed_data = data;
  uv_timer_t *timers[PHX_NTIMERS];
  phx_timers(ch, timers);
  ch->open_timers = PHX_NTIMERS;
  for (int i = 0; i < PHX_NTIMERS; i++)
    uv_close((uv_handle_t *)timers[i], phx_on_timer_closed);
}

void phx_free(phx_channel *ch) {
  free(ch->topic);
  if (ch->token)
    explicit_bzero(ch->token, strlen(ch->token));
  free(ch->token);
  for (int i = 0; i < ch->nbinds; i++) {
    free(ch->binds[i].event);
    free(ch->binds[i].schema);
    free(ch->binds[i].table);
    free(ch->binds[i].filter);
  }
  free(ch->binds);
  free(ch->backoff);
  memset(ch, 0, sizeof *ch);
}
