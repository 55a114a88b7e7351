/* sync_action.c - the sync engine's writes (see sync.h): create, update and
 * delete through the store, retried while the store is unavailable (a
 * create left unanswered is remembered, in case it lands late), temporary
 * blocks (held only here, never in a store), and signing in and out. Each
 * answers its ticket through done(), behind the changes it made; a
 * successful write is followed by a refresh. */
#include "sync_internal.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mpjson.h"

/* --- actions --------------------------------------------------------------- */

static void sync_action_run(sync_action *a);

static void sync_action_closed(uv_handle_t *h) {
  sync_action *a = h->data;
  sync_engine *s = a->s;
  cJSON_Delete(a->payload);
  free(a->what);
  free(a);
  s->handles_open--;
  sync_maybe_finish_close(s);
}

/* Unlink, answer, and release an action. */
void sync_action_end(sync_action *a, const char *error, const cJSON *item) {
  sync_engine *s = a->s;
  list_remove(&a->link);
  s->nactions--;
  if (a->ticket) /* 0: shelfd's own (sync_redelete), no one to answer */
    sync_tell_done(s, a->ticket, error, item);
  s->handles_open++;
  uv_close((uv_handle_t *)&a->timer, sync_action_closed);
}

static sync_action *sync_action_new(sync_engine *s, uint64_t ticket, sync_op op,
                                    store_table t, const char *id,
                                    cJSON *payload, char *what) {
  sync_action *a = util_calloc(1, sizeof *a);
  a->s = s;
  a->ticket = ticket;
  a->op = op;
  a->table = t;
  snprintf(a->id, sizeof a->id, "%s", id);
  a->payload = payload;
  a->what = what;
  uv_timer_init(s->loop, &a->timer);
  a->timer.data = a;
  list_push_back(&s->actions, &a->link);
  s->nactions++;
  return a;
}

static void sync_action_retry(uv_timer_t *timer) {
  sync_action *a = timer->data;
  a->waiting = 0;
  sync_action_run(a);
}

/* The fields of a create's record whose stored value is not the one sent
 * (NULL if none): only the row an earlier send of the same create stored,
 * before the user changed the text, differs. */
static cJSON *sync_create_differences(const cJSON *sent, const cJSON *stored) {
  if (!cJSON_IsObject(stored))
    return NULL;
  cJSON *differ = NULL;
  const cJSON *f;
  cJSON_ArrayForEach(f, sent) {
    if (strcmp(f->string, "id") == 0)
      continue;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(stored, f->string);
    int same = v ? cJSON_Compare(f, v, 1) : cJSON_IsNull(f);
    if (!same) {
      if (!differ)
        differ = cJSON_CreateObject();
      cJSON_AddItemToObject(differ, f->string, cJSON_Duplicate(f, 1));
    }
  }
  return differ;
}

static void sync_on_action(void *data, int status, const char *error,
                           cJSON *rows) {
  sync_req *r = data;
  sync_engine *s = r->s;
  sync_action *a = r->action;
  if (sync_req_end(r)) {
    cJSON_Delete(rows);
    sync_action_end(a, "shelfd is shutting down", NULL);
    sync_maybe_finish_close(s);
    return;
  }
  if (status == STORE_ENOTFOUND && a->op == ACT_DELETE && (a->attempt > 1 || a->ticket == 0)) {
    /* An earlier attempt went unanswered (a timeout, a lost connection) and
     * had landed, or the late row went some other way: gone, as asked. */
    log_info("sync: %s: already gone on attempt %d; done", a->what, a->attempt);
    status = 0;
    cJSON_Delete(rows);
    rows = cJSON_CreateArray();
  }
  if (status == STORE_EUNAVAILABLE && (a->op == ACT_CREATE || a->op == ACT_SAVE_TEMP))
    sync_doubt_create(s, a->table, a->id);
  if (status < 0) {
    if (status == STORE_EUNAVAILABLE && a->attempt < s->opts.max_attempts) {
      double ms = sync_backoff_ms(s, a->attempt);
      if (s->st->retry_after_ms > ms)
        ms = s->st->retry_after_ms;
      char *msg = util_printf("%s failed: %s; retrying in %.0f s", a->what,
                              error, ms / 1000 < 1 ? 1 : ms / 1000);
      log_warn("%s", msg);
      sync_set_error(s, msg);
      free(msg);
      a->waiting = 1;
      uv_timer_start(&a->timer, sync_action_retry, (uint64_t)ms, 0);
      sync_push_status(s);
      return;
    }
    char *msg = util_printf("%s failed: %s", a->what, error);
    log_warn("%s", msg);
    sync_set_error(s, msg);
    sync_action_end(a, msg, NULL);
    free(msg);
    sync_push_status(s);
    return;
  }
  if (a->op == ACT_CREATE) {
    cJSON *differ = sync_create_differences(a->payload, cJSON_GetArrayItem(rows, 0));
    if (differ) {
      /* The id was stored by an earlier send of this create (its answer was
       * lost) with other values: the user saved again after editing. The
       * row is theirs, so this create finishes as an update to what it
       * says now, instead of answering with older text. */
      log_info("sync: %s: stored already by an earlier attempt; updating it to this one",
               a->what);
      cJSON *row = cJSON_DetachItemFromArray(rows, 0);
      cJSON_Delete(rows);
      sync_touch(s, a->table, a->id);
      sync_apply_upsert(s, a->table, row);
      sync_flush(s);
      cJSON_Delete(a->payload);
      a->payload = differ;
      a->op = ACT_UPDATE;
      a->attempt = 0;
      sync_action_run(a);
      return;
    }
  }
  cJSON *item = NULL;
  if (a->op == ACT_DELETE) {
    sync_doubt *d = map_get(s->doubts[a->table], a->id);
    if (d) {
      d->deleted = 1;
      d->redeleting = 0;
      d->until = uv_now(s->loop) + SYNC_LATE_MS;
    }
    sync_touch(s, a->table, a->id);
    sync_apply_delete(s, a->table, a->id);
  } else {
    cJSON *row = cJSON_DetachItemFromArray(rows, 0);
    if (row) {
      item = model_item(a->table, row, 0);
      sync_touch(s, a->table, mpjson_get_str(row, "id"));
      sync_apply_upsert(s, a->table, row);
    }
  }
  cJSON_Delete(rows);
  sync_set_error(s, NULL);
  sync_flush(s);
  sync_action_end(a, NULL, item);
  cJSON_Delete(item);
  /* Rule 2: every successful action is followed by a refresh of all kinds. */
  sync_refresh_start(s);
}

static void sync_action_run(sync_action *a) {
  sync_engine *s = a->s;
  a->attempt++;
  sync_req *r = sync_req_new(s, REQ_ACTION, a->table);
  r->action = a;
  int rc;
  switch (a->op) {
  case ACT_CREATE:
  case ACT_SAVE_TEMP:
    rc = store_insert(s->st, a->table, a->payload, sync_on_action, r);
    break;
  case ACT_UPDATE:
    rc = store_update(s->st, a->table, a->id, a->payload, sync_on_action, r);
    break;
  default:
    rc = store_remove(s->st, a->table, a->id, sync_on_action, r);
    break;
  }
  if (rc < 0) {
    sync_req_end(r);
    char *msg = util_printf("%s failed: the store refused the request", a->what);
    sync_action_end(a, msg, NULL);
    free(msg);
  }
  sync_push_status(s);
}

static char *sync_what(const char *verb, model_kind k, const char *title) {
  if (title && *title)
    return util_printf("%s %s '%s'", verb, model_kind_label(k), title);
  return util_printf("%s %s", verb, model_kind_label(k));
}

/* Delete again a row that a late create brought back (sync_late_create). */
void sync_redelete(sync_engine *s, store_table t, const char *id, const cJSON *rec) {
  const char *title = mpjson_get_str(rec, t == STORE_BLOCKS || t == STORE_PROMPTS ? "title" : "name");
  sync_action *a = sync_action_new(s, 0, ACT_DELETE, t, id, NULL,
                                   sync_what("Deleting again", model_kind_of(t), title));
  sync_action_run(a);
}

static void sync_fail(sync_engine *s, uint64_t ticket, char *what, char *why) {
  char *msg = util_printf("%s failed: %s", what, why);
  sync_tell_done(s, ticket, msg, NULL);
  free(msg);
  free(what);
  free(why);
}

static void sync_temp_stamps(cJSON *rec, int creating) {
  char stamp[UTIL_STAMP_LEN + 1];
  util_now_stamp(stamp);
  if (creating) {
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "created_at");
    cJSON_AddStringToObject(rec, "created_at", stamp);
  }
  cJSON_DeleteItemFromObjectCaseSensitive(rec, "updated_at");
  cJSON_AddStringToObject(rec, "updated_at", stamp);
}

/* Answer an action on temporary block rec (held in s->temps) with it, after
 * telling the editor when it changed; frees what. */
static void sync_temp_answer(sync_engine *s, uint64_t ticket, const cJSON *rec, char *what,
                             int changed) {
  if (changed) {
    sync_note_temp(s, mpjson_get_str(rec, "id"));
    sync_flush(s);
  }
  cJSON *item = model_item(STORE_BLOCKS, rec, 1);
  sync_tell_done(s, ticket, NULL, item);
  cJSON_Delete(item);
  free(what);
}

void sync_create(sync_engine *s, uint64_t ticket, model_kind k, const cJSON *fields) {
  store_table t;
  int temporary;
  char *err = NULL;
  const char *title = cJSON_IsObject(fields) ? model_title(fields) : "";
  char *what = sync_what("Creating", k, title);
  /* The caller may choose the id (the editor does, once per new item), so a
   * create sent again after its answer was lost is the same create, not a
   * second item: every backend stores an id once. */
  char id[UTIL_UUID_LEN + 1];
  const cJSON *given = cJSON_GetObjectItemCaseSensitive(fields, "id");
  cJSON *rest = NULL;
  if (given) {
    if (!cJSON_IsString(given) || !util_is_uuid(given->valuestring)) {
      sync_fail(s, ticket, what,
                util_strdup("'id' must be a UUID like 9b2f0c1e-4a7d-4c3b-8e21-5f6a7b8c9d0e"));
      return;
    }
    for (int i = 0; i <= UTIL_UUID_LEN; i++)
      id[i] = (char)tolower((unsigned char)given->valuestring[i]);
    rest = cJSON_Duplicate(fields, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(rest, "id");
    fields = rest;
  } else if (util_uuid4(id) < 0) {
    sync_fail(s, ticket, what, util_strdup("no random numbers for an id"));
    return;
  }
  cJSON *rec = model_new_record(k, fields, &t, &temporary, &err);
  cJSON_Delete(rest);
  if (!rec) {
    sync_fail(s, ticket, what, err);
    return;
  }
  cJSON_AddStringToObject(rec, "id", id);
  if (temporary && map_get(s->temps, id)) {
    /* Sent again: it exists already. */
    cJSON_Delete(rec);
    sync_temp_answer(s, ticket, map_get(s->temps, id), what, 0);
    return;
  }
  if (temporary) {
    /* Rule: temporary blocks live only here, never in a backend. */
    sync_temp_stamps(rec, 1);
    map_put(s->temps, id, rec);
    sync_temp_answer(s, ticket, rec, what, 1);
    return;
  }
  sync_action_run(sync_action_new(s, ticket, ACT_CREATE, t, id, rec, what));
}

void sync_update(sync_engine *s, uint64_t ticket, model_kind k, const char *id,
                 const cJSON *fields) {
  store_table t;
  char *err = NULL;
  cJSON *tmp = k == MODEL_BLOCK ? map_get(s->temps, id) : NULL;
  if (tmp) {
    char *what = sync_what("Saving", k, model_title(tmp));
    cJSON *cols = model_update_fields(STORE_BLOCKS, fields, &err);
    if (!cols) {
      sync_fail(s, ticket, what, err);
      return;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, cols) {
      if (!cJSON_GetObjectItemCaseSensitive(tmp, c->string) &&
          strcmp(c->string, "title") && strcmp(c->string, "content") &&
          strcmp(c->string, "tags") && strcmp(c->string, "project_id")) {
        cJSON_Delete(cols);
        sync_fail(s, ticket, what,
                  util_printf("a temporary block has no field '%s'", c->string));
        return;
      }
    }
    cJSON_ArrayForEach(c, cols) {
      cJSON_DeleteItemFromObjectCaseSensitive(tmp, c->string);
      cJSON_AddItemToObject(tmp, c->string, cJSON_Duplicate(c, 1));
    }
    cJSON_Delete(cols);
    sync_temp_stamps(tmp, 0);
    sync_temp_answer(s, ticket, tmp, what, 1);
    return;
  }
  if (!id || !sync_find(s, k, id, &t)) {
    sync_fail(s, ticket, sync_what("Saving", k, NULL),
              util_printf("there is no %s with id %s (deleted elsewhere?)",
                          model_kind_label(k), id ? id : "nil"));
    return;
  }
  char *title = row_title(t, id, map_get(s->held[t], id));
  char *what = sync_what("Saving", k, title);
  free(title);
  cJSON *cols = model_update_fields(t, fields, &err);
  if (!cols) {
    sync_fail(s, ticket, what, err);
    return;
  }
  sync_action_run(sync_action_new(s, ticket, ACT_UPDATE, t, id, cols, what));
}

void sync_delete(sync_engine *s, uint64_t ticket, model_kind k, const char *id) {
  store_table t;
  cJSON *tmp = k == MODEL_BLOCK && id ? map_take(s->temps, id) : NULL;
  if (tmp) {
    cJSON_Delete(tmp);
    sync_note_delete(s, MODEL_BLOCK, id);
    sync_flush(s);
    sync_tell_done(s, ticket, NULL, NULL);
    return;
  }
  if (!id || !sync_find(s, k, id, &t)) {
    sync_fail(s, ticket, sync_what("Deleting", k, NULL),
              util_printf("there is no %s with id %s", model_kind_label(k),
                          id ? id : "nil"));
    return;
  }
  char *title = row_title(t, id, map_get(s->held[t], id));
  char *what = sync_what("Deleting", k, title);
  free(title);
  sync_action_run(sync_action_new(s, ticket, ACT_DELETE, t, id, NULL, what));
}

void sync_save_temp(sync_engine *s, uint64_t ticket, const char *id) {
  cJSON *tmp = id ? map_get(s->temps, id) : NULL;
  if (!tmp) {
    sync_fail(s, ticket, util_strdup("Saving the temporary block"),
              util_printf("there is no temporary block with id %s",
                          id ? id : "nil"));
    return;
  }
  /* The same id: an editor showing the block keeps showing it. */
  cJSON *rec = cJSON_CreateObject();
  static const char *cols[] = {"id", "title", "content", "tags", "project_id", NULL};
  for (int i = 0; cols[i]; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(tmp, cols[i]);
    if (v && !cJSON_IsNull(v))
      cJSON_AddItemToObject(rec, cols[i], cJSON_Duplicate(v, 1));
  }
  char *what = sync_what("Saving", MODEL_BLOCK, model_title(tmp));
  sync_action_run(sync_action_new(s, ticket, ACT_SAVE_TEMP, STORE_BLOCKS, id,
                                  rec, what));
}

void sync_restore_temp(sync_engine *s, uint64_t ticket, const char *id,
                       const cJSON *fields, const char *created_at,
                       const char *updated_at) {
  store_table t;
  int temporary;
  char *err = NULL;
  const char *title = cJSON_IsObject(fields) ? model_title(fields) : "";
  char *what = sync_what("Restoring", MODEL_BLOCK, title);
  if (!id || !util_is_uuid(id)) {
    sync_fail(s, ticket, what, util_printf("'%s' is not an id (a UUID)", id ? id : "nil"));
    return;
  }
  if (sync_find(s, MODEL_BLOCK, id, &t)) {
    sync_fail(s, ticket, what,
              util_printf("a saved context block has the id %s", id));
    return;
  }
  cJSON *rec = model_new_record(MODEL_BLOCK, fields, &t, &temporary, &err);
  if (!rec) {
    sync_fail(s, ticket, what, err);
    return;
  }
  if (!temporary) {
    cJSON_Delete(rec);
    sync_fail(s, ticket, what,
              util_strdup("only temporary blocks are restored ('temporary' must be true)"));
    return;
  }
  cJSON_AddStringToObject(rec, "id", id);
  sync_temp_stamps(rec, 1);
  /* The times it had: the tab sorts and ages by them. */
  const char *stamps[][2] = {{"created_at", created_at}, {"updated_at", updated_at}};
  for (int i = 0; i < 2; i++) {
    const char *v = stamps[i][1];
    if (v && v[0] && strlen(v) <= UTIL_STAMP_LEN &&
        strspn(v, "0123456789-:.+TZ ") == strlen(v))
      cJSON_ReplaceItemInObjectCaseSensitive(rec, stamps[i][0], cJSON_CreateString(v));
  }
  cJSON_Delete(map_put(s->temps, id, rec));
  sync_temp_answer(s, ticket, rec, what, 1);
}

/* --- accounts ---------------------------------------------------------------- */

static void sync_on_auth(void *data, int status, const char *error,
                         cJSON *rows) {
  sync_req *r = data;
  sync_engine *s = r->s;
  const char *verb = r->type == REQ_LOGIN ? "Signing in" : "Signing out";
  uint64_t ticket = r->ticket;
  int closing = sync_req_end(r);
  s->nauth--;
  if (closing) {
    cJSON_Delete(rows);
    sync_tell_done(s, ticket, "shelfd is shutting down", NULL);
    sync_maybe_finish_close(s);
    return;
  }
  if (status < 0) {
    char *msg = util_printf("%s failed: %s", verb, error);
    sync_set_error(s, msg);
    sync_tell_done(s, ticket, msg, NULL);
    free(msg);
  } else {
    sync_set_error(s, NULL);
    sync_tell_done(s, ticket, NULL, cJSON_GetArrayItem(rows, 0));
  }
  cJSON_Delete(rows);
  sync_push_status(s);
}

static void sync_auth(sync_engine *s, uint64_t ticket, sync_req_type type,
                      const char *email, const char *password) {
  const struct store_ops *ops = s->st->ops;
  if ((type == REQ_LOGIN && !ops->login) || (type == REQ_LOGOUT && !ops->logout)) {
    char *msg = util_printf("the %s backend has no accounts; nothing to %s",
                            ops->name, type == REQ_LOGIN ? "sign in to" : "sign out of");
    sync_tell_done(s, ticket, msg, NULL);
    free(msg);
    return;
  }
  sync_req *r = sync_req_new(s, type, STORE_BLOCKS);
  r->ticket = ticket;
  s->nauth++;
  int rc = type == REQ_LOGIN ? ops->login(s->st, email, password, sync_on_auth, r)
                             : ops->logout(s->st, sync_on_auth, r);
  if (rc < 0) {
    sync_req_end(r);
    s->nauth--;
    sync_tell_done(s, ticket, "the backend refused the request", NULL);
    return;
  }
  sync_push_status(s);
}

void sync_login(sync_engine *s, uint64_t ticket, const char *email,
                const char *password) {
  sync_auth(s, ticket, REQ_LOGIN, email, password);
}

void sync_logout(sync_engine *s, uint64_t ticket) {
  sync_auth(s, ticket, REQ_LOGOUT, NULL, NULL);
}
