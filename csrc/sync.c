/* sync.c - the sync engine's core (see sync.h): held state, the pushes to
 * the editor, changes made elsewhere, status and life cycle. The refresh is
 * in sync_refresh.c, writes in sync_action.c, get and search in sync_query.c.
 *
 * Held state: one map per table, id -> entry (what the editor's mirror and
 * the refresh need of a row, packed: no content, which stays in the store
 * and is fetched for each get), and a map of temporary blocks (whole, as
 * they live only here). Changes to held state are collected per kind in a
 * batch and pushed to the editor as one `changed` per kind by sync_flush().
 * Every store request carries a sync_req so a callback that arrives during
 * shutdown can be told apart and released. */
#include "sync_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cols.h"
#include "log.h"
#include "mpjson.h"

/* --- held state ------------------------------------------------------------ */

static void sync_entry_free(void *p) { free(p); }

/* Remember the columns of rec as table t's (see columns). */
static void sync_note_columns(sync_engine *s, store_table t, const cJSON *rec) {
  int n = cJSON_GetArraySize(rec);
  if (s->columns[t] && cJSON_GetArraySize(s->columns[t]) == n)
    return;
  cJSON *names = cJSON_CreateArray();
  const cJSON *col;
  cJSON_ArrayForEach(col, rec) {
    const char *name = strcmp(col->string, STORE_CONTENT_SIZE) == 0 ? "content" : col->string;
    cJSON_AddItemToArray(names, cJSON_CreateString(name));
  }
  cJSON_Delete(s->columns[t]);
  s->columns[t] = names;
}

static void sync_json_free(void *p) { cJSON_Delete(p); }

/* Owe the editor the summary of temporary block `id` (in s->temps). */
void sync_note_temp(sync_engine *s, const char *id) {
  row_ids_add(&s->batch_up[MODEL_BLOCK], ROW_TEMP, id);
}

/* Owe the editor the summary of held row `id` of table t. */
static void sync_note_entry(sync_engine *s, store_table t, const char *id) {
  row_ids_add(&s->batch_up[model_kind_of(t)], (char)t, id);
}

/* The summaries of the rows in ids, as held now (for a changed() without
 * changed_packed). */
static cJSON *sync_summaries(sync_engine *s, const row_ids *ids) {
  cJSON *out = cJSON_CreateArray();
  size_t at = 0;
  char where;
  const char *id;
  while (row_ids_next(ids, &at, &where, &id)) {
    cJSON *sum = NULL;
    if (where == ROW_TEMP) {
      const cJSON *tmp = map_get(s->temps, id);
      if (tmp)
        sum = model_summary(STORE_BLOCKS, tmp, 1);
    } else {
      store_table t = (store_table)where;
      const row_entry *e = map_get(s->held[t], id);
      if (e)
        sum = row_json(t, id, e);
    }
    if (sum)
      cJSON_AddItemToArray(out, sum);
  }
  return out;
}

/* The same written into sb as columns (cols.h), for changed_packed. */
static void sync_summaries_packed(sync_engine *s, const row_ids *ids, msgpack_sbuffer *sb) {
  cols_builder c;
  cols_init(&c);
  msgpack_packer row;
  cols_row(&c, &row);
  size_t at = 0;
  char where;
  const char *id;
  while (row_ids_next(ids, &at, &where, &id)) {
    if (where == ROW_TEMP) {
      const cJSON *tmp = map_get(s->temps, id);
      if (tmp) {
        cJSON *sum = model_summary(STORE_BLOCKS, tmp, 1);
        mpjson_pack(&row, sum);
        cJSON_Delete(sum);
        cols_row_done(&c);
      }
    } else {
      const row_entry *e = map_get(s->held[(store_table)where], id);
      if (e) {
        row_pack(&row, (store_table)where, id, e);
        cols_row_done(&c);
      }
    }
  }
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  const char *err = NULL;
  if (cols_pack(&c, &pk, &err) != 0) {
    /* Never with our own summaries; should it be, the rows go one by one
     * (the editor reads both forms). */
    log_warn("sync: %s; the summaries are sent as rows", err);
    msgpack_pack_array(&pk, c.n);
    pk.callback(pk.data, c.rows.data, c.rows.size);
  }
  cols_free(&c);
}

void sync_note_delete(sync_engine *s, model_kind k, const char *id) {
  cJSON_AddItemToArray(s->batch_del[k], cJSON_CreateString(id));
}

/* The updated_at of a held entry, for the marks (sync_mark.h). */
const char *sync_entry_stamp(const void *e) {
  return row_stamp((const row_entry *)e);
}

/* Remember that a create of `id` may still land (see doubts). Forgets the
 * expired ones first, so the map stays as small as the recent timeouts. */
void sync_doubt_create(sync_engine *s, store_table t, const char *id) {
  uint64_t now = uv_now(s->loop);
  cJSON *old = cJSON_CreateArray();
  map_iter it = {0};
  const char *key;
  void *val;
  while (map_next(s->doubts[t], &it, &key, &val))
    if (((sync_doubt *)val)->until < now)
      cJSON_AddItemToArray(old, cJSON_CreateString(key));
  const cJSON *k;
  cJSON_ArrayForEach(k, old) free(map_take(s->doubts[t], k->valuestring));
  cJSON_Delete(old);
  sync_doubt *d = util_calloc(1, sizeof *d);
  d->until = now + SYNC_LATE_MS;
  free(map_put(s->doubts[t], id, d));
}

/* True (and the row deleted again) when rec is a late create of an item
 * deleted here. */
static int sync_late_create(sync_engine *s, store_table t, const char *id, const cJSON *rec) {
  sync_doubt *d = map_get(s->doubts[t], id);
  if (!d || !d->deleted || d->until < uv_now(s->loop))
    return 0;
  if (!d->redeleting) {
    log_warn("sync: %s row %s came back after it was deleted here (a create that had gone "
             "unanswered landed late); deleting it again", store_default_table_name(t), id);
    d->redeleting = 1;
    sync_redelete(s, t, id, rec);
  }
  return 1;
}

/* Hold what is needed of row rec (no content); sync_apply_upsert also
 * takes rec and frees it.
 * Whatever the backend returned last wins:
 * stamps come from clients' clocks (the web app sets updated_at itself), so
 * an "older" stamp is no reason to drop a row. */
void sync_hold_row(sync_engine *s, store_table t, const cJSON *rec) {
  const char *id = mpjson_get_str(rec, "id");
  if (!id || !*id) {
    log_warn("sync: dropped a %s row without an id", store_default_table_name(t));
    return;
  }
  const char *bad = model_row_problem(t, rec);
  if (bad) {
    log_warn("sync: dropped %s row %s: its '%s' has the wrong type", store_default_table_name(t),
             id, bad);
    return;
  }
  if (sync_late_create(s, t, id, rec))
    return;
  sync_note_columns(s, t, rec);
  row_entry *e = row_new(t, rec);
  if (!e)
    return;
  row_entry *old = map_get(s->held[t], id);
  if (old && row_same(old, e)) {
    free(e);
    return;
  }
  if (old)
    sync_mark_drop(&s->mark[t], id, row_stamp(old));
  free(map_put(s->held[t], id, e));
  sync_mark_add(&s->mark[t], id, row_stamp(e));
  /* A temporary block saved as a real one keeps its id: it is no longer
   * temporary, and the upsert below replaces it in the mirror. */
  if (t == STORE_BLOCKS) {
    cJSON *tmp = map_take(s->temps, id);
    cJSON_Delete(tmp);
  }
  sync_note_entry(s, t, id);
}

void sync_apply_upsert(sync_engine *s, store_table t, cJSON *rec) {
  sync_hold_row(s, t, rec);
  cJSON_Delete(rec);
}

/* Note that row `id` changed by an event or an action (see touched). */
void sync_touch(sync_engine *s, store_table t, const char *id) {
  if (s->inflight == 0 || !id)
    return;
  map_put(s->touched[t], id, (void *)(uintptr_t)++s->touch_seq);
}

/* Nothing in flight and no refresh between two requests: no answer to come
 * can need what was touched. */
void sync_forget_touches(sync_engine *s) {
  if (s->inflight > 0 || s->refreshing)
    return;
  for (int t = 0; t < STORE_NTABLES; t++) {
    if (map_size(s->touched[t]) > 0) {
      map_free(s->touched[t], NULL);
      s->touched[t] = map_new();
    }
  }
}

/* True when row `id` changed by an event or an action after `since`. */
int sync_touched_since(const sync_engine *s, store_table t, const char *id, uint64_t since) {
  return id && (uintptr_t)map_get(s->touched[t], id) > since;
}

int sync_touched_any_since(const sync_engine *s, store_table t, uint64_t since) {
  map_iter it = {0};
  const char *id;
  void *seq;
  while (map_next(s->touched[t], &it, &id, &seq))
    if ((uintptr_t)seq > since)
      return 1;
  return 0;
}

void sync_apply_delete(sync_engine *s, store_table t, const char *id) {
  row_entry *e = map_take(s->held[t], id);
  if (!e)
    return;
  sync_mark_drop(&s->mark[t], id, row_stamp(e));
  free(e);
  sync_note_delete(s, model_kind_of(t), id);
}

/* Up to n items from the head of arr, moved to a new array (O(n)). */
static cJSON *sync_take_head(cJSON *arr, int n) {
  cJSON *out = cJSON_CreateArray();
  for (int i = 0; i < n && arr->child; i++)
    cJSON_AddItemToArray(out, cJSON_DetachItemViaPointer(arr, arr->child));
  return out;
}

/* Tell the editor what changed since the last flush: per kind, in pushes of
 * at most SYNC_PUSH_MAX items, so that a bulk change elsewhere (an import of
 * 100k rows) reaches Neovim as messages it decodes and applies in slices,
 * never one huge one. */
static int sync_batch_pending(const sync_engine *s);

/* A push waiting in the outbox: a changed() (upserted, deleted) or the
 * answer of an action (ticket, error, item). Owns its cJSON and strings. */
typedef struct {
  list_node link;
  int is_done;
  model_kind kind;
  row_ids up;
  cJSON *del;
  uint64_t ticket;
  char *error;
  cJSON *item;
} sync_out;

static void sync_out_free(sync_out *o) {
  free(o->up.buf);
  cJSON_Delete(o->del);
  free(o->error);
  cJSON_Delete(o->item);
  free(o);
}

/* A load of 100k rows passes some 100 MiB of cJSON through the heap (the
 * store's rows, partly allocated on its worker thread's arena, and the
 * pushes) while what stays is a tenth of that; glibc keeps freed memory
 * mapped in the middle of the heap, so without this the process would stay
 * at its peak. */
static void sync_trim(sync_engine *s) {
  s->trim_owed = 0;
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

static void sync_send(sync_engine *s) {
  while (!list_empty(&s->outbox)) {
    sync_out *o = list_entry(s->outbox.next, sync_out, link);
    if (!o->is_done && s->window > 0 && s->unacked >= s->window)
      break;
    list_remove(&o->link);
    if (o->is_done) {
      if (!s->closing)
        s->cb.done(s->data, o->ticket, o->error, o->item);
      sync_out_free(o);
      continue;
    }
    s->outbox_changes--;
    s->version++;
    /* The editor may wait for the last push of a burst before it redraws;
     * a first load read in parts is one burst. */
    s->pushing_more = s->outbox_changes > 0 || sync_batch_pending(s) || (s->refreshing && !s->ready);
    if (!s->closing && s->cb.changed_packed) {
      msgpack_sbuffer sb;
      msgpack_sbuffer_init(&sb);
      sync_summaries_packed(s, &o->up, &sb);
      s->cb.changed_packed(s->data, o->kind, s->version, sb.data, sb.size, o->del);
      msgpack_sbuffer_destroy(&sb);
    } else if (!s->closing) {
      cJSON *up = sync_summaries(s, &o->up);
      s->cb.changed(s->data, o->kind, s->version, up, o->del);
      cJSON_Delete(up);
    }
    s->pushing_more = 0;
    sync_out_free(o);
    if (s->window > 0)
      s->unacked++;
  }
  if (list_empty(&s->outbox) && s->status_owed) {
    s->status_owed = 0;
    sync_push_status(s);
  }
  if (list_empty(&s->outbox) && s->trim_owed && !sync_batch_pending(s))
    sync_trim(s);
  if (s->refresh_after_taken && list_empty(&s->outbox) && s->unacked == 0)
    sync_refresh_start(s);
}

/* Answer an action: at once, or behind the changes still held (the editor
 * sees an action's change before its answer). */
void sync_tell_done(sync_engine *s, uint64_t ticket, const char *error, const cJSON *item) {
  if (list_empty(&s->outbox) || s->closing) {
    s->cb.done(s->data, ticket, error, item);
    return;
  }
  sync_out *o = util_calloc(1, sizeof *o);
  o->is_done = 1;
  o->ticket = ticket;
  o->error = error ? util_strdup(error) : NULL;
  o->item = item ? cJSON_Duplicate(item, 1) : NULL;
  list_push_back(&s->outbox, &o->link);
}

void sync_flush(sync_engine *s) {
  for (int k = 0; k < MODEL_NKINDS; k++) {
    row_ids *b = &s->batch_up[k];
    size_t at = 0;
    while (at < b->len || s->batch_del[k]->child) {
      cJSON *del = sync_take_head(s->batch_del[k], SYNC_PUSH_MAX);
      sync_out *o = util_calloc(1, sizeof *o);
      size_t from = at;
      for (int n = cJSON_GetArraySize(del); n < SYNC_PUSH_MAX && at < b->len; n++)
        at += strlen(b->buf + at + 1) + 2;
      if (at > from) {
        o->up.buf = util_malloc(at - from);
        memcpy(o->up.buf, b->buf + from, at - from);
        o->up.len = o->up.cap = at - from;
      }
      o->kind = (model_kind)k;
      o->del = del;
      list_push_back(&s->outbox, &o->link);
      s->outbox_changes++;
    }
    b->len = 0;
    if (b->cap > 65536) { /* a load's worth: give it back */
      free(b->buf);
      b->buf = NULL;
      b->cap = 0;
    }
  }
  sync_send(s);
  sync_push_status(s);
}

void sync_set_window(sync_engine *s, int pushes) {
  s->window = pushes > 0 ? pushes : 0;
  s->unacked = 0;
  sync_send(s);
}

void sync_taken(sync_engine *s) {
  if (s->unacked > 0)
    s->unacked--;
  sync_send(s);
}

int sync_pushing_more(const sync_engine *s) { return s->pushing_more; }

static int sync_batch_pending(const sync_engine *s) {
  for (int k = 0; k < MODEL_NKINDS; k++)
    if (s->batch_up[k].len || s->batch_del[k]->child)
      return 1;
  return 0;
}

/* Which table holds `id` of kind k (a folder may be in either). */
int sync_find(sync_engine *s, model_kind k, const char *id, store_table *t) {
  if (k == MODEL_BLOCK || k == MODEL_PROMPT) {
    *t = k == MODEL_BLOCK ? STORE_BLOCKS : STORE_PROMPTS;
    return map_get(s->held[*t], id) != NULL;
  }
  for (store_table c = STORE_DATASET_PROJECTS; c <= STORE_PROMPT_PROJECTS; c++) {
    if (map_get(s->held[c], id)) {
      *t = c;
      return 1;
    }
  }
  return 0;
}

/* --- store requests -------------------------------------------------------- */

sync_req *sync_req_new(sync_engine *s, sync_req_type type, store_table t) {
  sync_req *r = util_calloc(1, sizeof *r);
  r->s = s;
  r->type = type;
  r->table = t;
  r->since = s->touch_seq;
  sync_forget_touches(s);
  s->inflight++;
  return r;
}

/* Release r: at the top of every store callback (read what you need of r
 * first), and where the store refused it. Returns 1 if the engine is
 * shutting down and the callback must only clean up. */
int sync_req_end(sync_req *r) {
  sync_engine *s = r->s;
  free(r);
  s->inflight--;
  return s->closing;
}

/* --- errors --------------------------------------------------------------- */

double sync_backoff_ms(const sync_engine *s, int failures) {
  double ms = s->opts.retry_base_ms;
  for (int i = 1; i < failures && ms < 30000; i++)
    ms *= 2;
  if (ms > 30000)
    ms = 30000;
  return util_jitter(ms, 0.25); /* so many editors do not retry in step */
}

void sync_set_error(sync_engine *s, const char *msg) {
  free(s->last_error);
  s->last_error = msg ? util_strdup(msg) : NULL;
}

/* --- changes made elsewhere ------------------------------------------------ */

/* A realtime UPDATE can leave out columns it did not change (large TOASTed
 * values are not in the WAL): such a record must be fetched, not applied. */
static int sync_record_partial(sync_engine *s, store_table t, const char *id,
                               const cJSON *record) {
  if (!id || !map_get(s->held[t], id))
    return 0;
  const cJSON *col;
  cJSON_ArrayForEach(col, s->columns[t]) {
    const char *name = col->valuestring;
    if (!cJSON_GetObjectItemCaseSensitive(record, name) &&
        !(strcmp(name, "content") == 0 &&
          cJSON_GetObjectItemCaseSensitive(record, STORE_CONTENT_SIZE)))
      return 1;
  }
  return 0;
}

/* Drop everything held (temporary blocks too: they belonged to the session
 * of the user who is gone) and tell the editor. */
static void sync_forget_all(sync_engine *s) {
  for (int t = 0; t < STORE_NTABLES; t++) {
    sync_mark_clear(&s->mark[t]); /* the next user's rows are new */
    cJSON *ids = cJSON_CreateArray();
    map_iter it = {0};
    const char *key;
    while (map_next(s->held[t], &it, &key, NULL))
      cJSON_AddItemToArray(ids, cJSON_CreateString(key));
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) sync_apply_delete(s, (store_table)t, id->valuestring);
    cJSON_Delete(ids);
  }
  map_iter it = {0};
  const char *key;
  while (map_next(s->temps, &it, &key, NULL))
    sync_note_delete(s, MODEL_BLOCK, key);
  map_free(s->temps, sync_json_free);
  s->temps = map_new();
  s->ready = 0;
  s->full_owed = 0; /* the next user's first load reads every row */
  if (s->refreshing)
    s->refresh_stale = 1;
  sync_flush(s);
}

static void sync_on_event(void *data, const store_event *ev) {
  sync_engine *s = data;
  if (s->closing)
    return;
  switch (ev->type) {
  case STORE_EV_UPSERT:
    if (ev->record && !sync_record_partial(s, ev->table, ev->id, ev->record)) {
      sync_touch(s, ev->table, mpjson_get_str(ev->record, "id"));
      sync_hold_row(s, ev->table, ev->record); /* no copy: only its summary is kept */
      if (!ev->more)
        sync_flush(s);
    } else if (ev->id) {
      /* No record, or a partial one: fetch the row. */
      cJSON *ids = cJSON_CreateArray();
      cJSON_AddItemToArray(ids, cJSON_CreateString(ev->id));
      sync_req *r = sync_req_new(s, REQ_EVENT_FETCH, ev->table);
      if (sync_fetch_rows(s, ev->table, ids, r) < 0)
        sync_req_end(r);
      cJSON_Delete(ids);
      if (!ev->more && sync_batch_pending(s))
        sync_flush(s);
    }
    break;
  case STORE_EV_DELETE:
    if (ev->id) {
      sync_touch(s, ev->table, ev->id);
      sync_apply_delete(s, ev->table, ev->id);
    }
    if (!ev->more)
      sync_flush(s);
    break;
  case STORE_EV_RESYNC:
    s->full_owed = 1;
    sync_refresh_start(s);
    break;
  case STORE_EV_STATE:
    sync_push_status(s);
    break;
  case STORE_EV_RESET:
    sync_forget_all(s);
    sync_refresh_start(s);
    break;
  }
}

/* --- status --------------------------------------------------------------- */

cJSON *sync_status(sync_engine *s) {
  cJSON *st = store_describe(s->st);
  if (!st)
    st = cJSON_CreateObject();
  cJSON_DeleteItemFromObjectCaseSensitive(st, "ready");
  cJSON_AddBoolToObject(st, "ready", s->ready);
  /* The quiet full check is loading only for whoever waits for a refresh;
   * a refresh pending is loading even in the moment between two. */
  int refresh = (s->refreshing && !s->refresh_quiet) || s->refresh_pending ||
                s->refresh_after_taken;
  if (refresh || s->nactions > 0 || s->nauth > 0) {
    cJSON *loading = cJSON_AddObjectToObject(st, "loading");
    cJSON_AddBoolToObject(loading, "refresh", refresh);
    cJSON_AddNumberToObject(loading, "actions", s->nactions);
    if (s->nauth > 0)
      cJSON_AddTrueToObject(loading, "auth");
  }
  if ((s->refreshing && s->refresh_quiet) || s->check_owed)
    cJSON_AddTrueToObject(st, "checking");
  if (s->last_error)
    cJSON_AddStringToObject(st, "error", s->last_error);
  cJSON *counts = cJSON_AddObjectToObject(st, "counts");
  cJSON_AddNumberToObject(counts, "block", (double)sync_count(s, MODEL_BLOCK));
  cJSON_AddNumberToObject(counts, "prompt", (double)sync_count(s, MODEL_PROMPT));
  cJSON_AddNumberToObject(counts, "project", (double)sync_count(s, MODEL_PROJECT));
  cJSON_AddNumberToObject(counts, "temporary", (double)map_size(s->temps));
  cJSON_AddNumberToObject(st, "version", (double)s->version);
  return st;
}

void sync_push_status(sync_engine *s) {
  if (s->closing)
    return;
  if (!list_empty(&s->outbox)) {
    s->status_owed = 1; /* after the changes it follows (sync_send) */
    return;
  }
  cJSON *st = sync_status(s);
  char *text = cJSON_PrintUnformatted(st);
  if (!s->last_status || strcmp(text, s->last_status) != 0) {
    s->cb.status(s->data, st);
    free(s->last_status);
    s->last_status = text;
  } else {
    free(text);
  }
  cJSON_Delete(st);
}

cJSON *sync_held(sync_engine *s, model_kind k, const char *id) {
  store_table t;
  row_ids one = {0};
  if (k == MODEL_BLOCK && map_get(s->temps, id))
    row_ids_add(&one, ROW_TEMP, id);
  else if (sync_find(s, k, id, &t))
    row_ids_add(&one, (char)t, id);
  cJSON *all = sync_summaries(s, &one);
  free(one.buf);
  cJSON *sum = cJSON_DetachItemFromArray(all, 0);
  cJSON_Delete(all);
  return sum;
}

int sync_refreshes_started(const sync_engine *s) { return s->refreshes_started; }

size_t sync_count(const sync_engine *s, model_kind k) {
  switch (k) {
  case MODEL_BLOCK:
    return map_size(s->held[STORE_BLOCKS]) + map_size(s->temps);
  case MODEL_PROMPT:
    return map_size(s->held[STORE_PROMPTS]);
  default:
    return map_size(s->held[STORE_DATASET_PROJECTS]) +
           map_size(s->held[STORE_PROMPT_PROJECTS]);
  }
}

/* --- life cycle ------------------------------------------------------------ */

sync_engine *sync_new(uv_loop_t *loop, store *st, const sync_callbacks *cb, void *data,
               const sync_options *opts) {
  sync_engine *s = util_calloc(1, sizeof *s);
  s->loop = loop;
  s->st = st;
  s->cb = *cb;
  s->data = data;
  s->opts.max_attempts = opts && opts->max_attempts > 0 ? opts->max_attempts : 5;
  s->opts.retry_base_ms = opts && opts->retry_base_ms > 0 ? opts->retry_base_ms : 1000;
  s->opts.full_check_ms = opts && opts->full_check_ms > 0 ? opts->full_check_ms
                                                          : SYNC_FULL_CHECK_MS;
  for (int t = 0; t < STORE_NTABLES; t++) {
    s->held[t] = map_new();
    s->touched[t] = map_new();
    s->doubts[t] = map_new();
  }
  s->temps = map_new();
  list_init(&s->outbox);
  for (int k = 0; k < MODEL_NKINDS; k++) {
    s->batch_del[k] = cJSON_CreateArray();
  }
  list_init(&s->tickets_now);
  list_init(&s->tickets_next);
  list_init(&s->actions);
  list_init(&s->gets);
  uv_timer_init(loop, &s->refresh_timer);
  s->refresh_timer.data = s;
  int rc = store_watch(st, sync_on_event, s);
  if (rc < 0)
    log_warn("sync: watching for changes made elsewhere failed (%d); "
             "changes from other editors appear after the next refresh", rc);
  sync_refresh_start(s);
  return s;
}

static void sync_free(sync_engine *s) {
  for (int t = 0; t < STORE_NTABLES; t++) {
    map_free(s->held[t], sync_entry_free);
    map_free(s->touched[t], NULL);
    map_free(s->doubts[t], free);
    cJSON_Delete(s->deleted_ids[t]);
    cJSON_Delete(s->columns[t]);
    sync_mark_free(&s->mark[t]);
  }
  map_free(s->temps, sync_json_free);
  for (int k = 0; k < MODEL_NKINDS; k++) {
    free(s->batch_up[k].buf);
    cJSON_Delete(s->batch_del[k]);
  }
  list_node *n;
  while ((n = list_pop_front(&s->outbox)) != NULL)
    sync_out_free(list_entry(n, sync_out, link));
  free(s->refresh_error);
  free(s->last_error);
  free(s->last_status);
  void (*closed)(void *) = s->closed;
  void *data = s->closed_data;
  free(s);
  if (closed)
    closed(data);
}

void sync_maybe_finish_close(sync_engine *s) {
  if (s->closing == 1 && s->inflight == 0 && s->handles_open == 0 &&
      s->nactions == 0 && s->searching == 0) {
    s->closing = 2;
    sync_free(s);
  }
}

static void sync_refresh_timer_closed(uv_handle_t *h) {
  sync_engine *s = h->data;
  s->handles_open--;
  sync_maybe_finish_close(s);
}

void sync_close(sync_engine *s, void (*closed)(void *), void *data) {
  if (s->closing)
    return;
  s->closing = 1;
  s->closed = closed;
  s->closed_data = data;
  /* Answers held behind changes go now; the changes are moot. */
  list_node *held;
  while ((held = list_pop_front(&s->outbox)) != NULL) {
    sync_out *o = list_entry(held, sync_out, link);
    if (o->is_done)
      s->cb.done(s->data, o->ticket, o->error, o->item);
    sync_out_free(o);
  }
  s->outbox_changes = 0;
  s->handles_open++;
  uv_close((uv_handle_t *)&s->refresh_timer, sync_refresh_timer_closed);
  /* Actions waiting for a retry are answered now; those in the store are
   * answered when the store gives them back (it is closed next). */
  list_node *n, *tmp;
  list_for_each_safe(n, tmp, &s->actions) {
    sync_action *a = list_entry(n, sync_action, link);
    if (a->waiting)
      sync_action_end(a, "shelfd is shutting down", NULL);
  }
  sync_answer_tickets(s, &s->tickets_now, "shelfd is shutting down");
  sync_answer_tickets(s, &s->tickets_next, "shelfd is shutting down");
  sync_search_stop(s, "shelfd is shutting down");
  sync_maybe_finish_close(s);
}
