/* sync_refresh.c - the sync engine's refresh (see sync.h): the first load,
 * the one after every write, and the ones asked for. One is in flight at a
 * time, at most one pending.
 *
 * A refresh of a table asks for what changed since the newest updated_at an
 * earlier refresh read there (its mark, sync_mark.c), and for the table's
 * count of rows at or before the mark, compared with the count held: equal,
 * nothing else changed; else (or with no mark yet) it asks for
 * [id, updated_at] pairs, fetches only the rows whose stamp differs, and
 * drops the ids the table no longer has. A table held empty is fetched
 * whole. A store with a live change feed may leave the count out of a delta
 * (store.h): what it would catch came as events. */
#include "sync_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mpjson.h"

/* Someone waiting for a refresh to finish (RPC `refresh` and the like). */
typedef struct {
  list_node link;
  uint64_t ticket;
} sync_ticket;

static void sync_on_fetch(void *data, int status, const char *error, cJSON *rows);

/* Rows to hold: without their content where the store can leave it out. */
int sync_fetch_rows(sync_engine *s, store_table t, const cJSON *ids, sync_req *r) {
  if (s->st->ops->fetch_summaries)
    return s->st->ops->fetch_summaries(s->st, t, ids, sync_on_fetch, r);
  return store_fetch(s->st, t, ids, sync_on_fetch, r);
}

/* Answer and free every ticket of the list, which is left empty. */
void sync_answer_tickets(sync_engine *s, list_node *tickets, const char *error) {
  list_node now, *n;
  list_take_all(&now, tickets); /* a callback may ask for another refresh */
  while ((n = list_pop_front(&now)) != NULL) {
    sync_ticket *t = list_entry(n, sync_ticket, link);
    sync_tell_done(s, t->ticket, error, NULL);
    free(t);
  }
}

static void sync_refresh_retry(uv_timer_t *timer) {
  sync_engine *s = timer->data;
  s->refresh_timer_on = 0;
  sync_refresh_start(s);
}

/* The refresh ended, but it began for a user who is gone: nothing of it
 * is kept, and whoever waits for it waits for the next one. */
static void sync_refresh_drop(sync_engine *s) {
  for (int t = 0; t < STORE_NTABLES; t++) {
    cJSON_Delete(s->deleted_ids[t]);
    s->deleted_ids[t] = NULL;
  }
  free(s->refresh_error);
  s->refresh_error = NULL;
  s->refresh_stale = 0;
  s->refreshing = 0;
  s->full_now = 0;
  /* Its tickets stay in tickets_now: the next refresh takes tickets_next
   * behind them and answers all. */
  sync_forget_touches(s);
  sync_refresh_start(s);
}

static void sync_refresh_finish(sync_engine *s) {
  if (s->refresh_stale) {
    sync_refresh_drop(s);
    return;
  }
  int first = !s->ready;
  for (int t = 0; t < STORE_NTABLES; t++) {
    const cJSON *id;
    cJSON_ArrayForEach(id, s->deleted_ids[t]) {
      if (!sync_touched_since(s, (store_table)t, id->valuestring, s->refresh_since))
        sync_apply_delete(s, (store_table)t, id->valuestring);
    }
    cJSON_Delete(s->deleted_ids[t]);
    s->deleted_ids[t] = NULL;
  }
  s->refreshing = 0;
  sync_forget_touches(s);
  char *error = s->refresh_error;
  s->refresh_error = NULL;
  if (s->full_now && error) {
    s->full_owed = 1; /* before the library is in, every refresh is full */
  } else if (s->full_now) {
    s->last_full_ms = uv_now(s->loop);
    /* Full reads are few (start, reconnect, the periodic check) and the
     * slow part of a start: their length is worth a line. */
    log_info("sync: read every row in %llu ms: %zu prompts, %zu context blocks, %zu folders",
             (unsigned long long)(s->last_full_ms - s->refresh_began_ms),
             map_size(s->held[STORE_PROMPTS]), map_size(s->held[STORE_BLOCKS]),
             map_size(s->held[STORE_PROMPT_PROJECTS]) + map_size(s->held[STORE_DATASET_PROJECTS]));
  }
  s->full_now = 0;
  /* Said before the status below is pushed: between this refresh and the
   * next no status may say that nothing is loading or checking. */
  s->check_owed = !error && s->full_owed && !s->refresh_pending;
  if (error) {
    s->refresh_failures++;
    double ms = sync_backoff_ms(s, s->refresh_failures);
    if (s->refresh_retry_after_ms > ms)
      ms = s->refresh_retry_after_ms;
    char *msg = util_printf("Refreshing the library failed: %s; retrying in %.0f s",
                            error, ms / 1000 < 1 ? 1 : ms / 1000);
    log_warn("%s", msg);
    sync_set_error(s, msg);
    sync_answer_tickets(s, &s->tickets_now, msg);
    free(msg);
    if (!s->refresh_timer_on && !s->refresh_pending) {
      s->refresh_timer_on = 1;
      uv_timer_start(&s->refresh_timer, sync_refresh_retry, (uint64_t)ms, 0);
    }
  } else {
    if (s->refresh_failures > 0 || s->last_error) {
      s->refresh_failures = 0;
      sync_set_error(s, NULL);
    }
    s->ready = 1;
    /* The editor sees the changes and the new status before the callbacks
     * of those who asked for this refresh run. */
    sync_flush(s);
    sync_answer_tickets(s, &s->tickets_now, NULL);
  }
  if (first && s->ready && s->refresh_pending && s->window > 0) {
    s->refresh_pending = 0;
    s->refresh_after_taken = 1; /* started by sync_send once the pushes are taken */
  }
  s->refresh_quiet = 0;
  free(error);
  sync_flush(s);
  if (s->refresh_pending) {
    sync_refresh_start(s);
  } else if (s->check_owed) {
    s->full_next = 1;
    sync_refresh_start(s);
  }
}

static void sync_table_done(sync_engine *s) {
  if (--s->tables_left == 0)
    sync_refresh_finish(s);
}

/* Table t's part of the refresh succeeded: a mark it found is taken. */
static void sync_table_ok(sync_engine *s, store_table t) {
  sync_mark_take(&s->mark[t], s->held[t], sync_entry_stamp);
  sync_table_done(s);
}

static void sync_table_failed(sync_engine *s, store_table t, const char *error) {
  sync_mark_next_clear(&s->mark[t]);
  if (s->st->retry_after_ms > s->refresh_retry_after_ms)
    s->refresh_retry_after_ms = s->st->retry_after_ms;
  if (!s->refresh_error)
    s->refresh_error = util_printf("%s: %s", store_default_table_name(t), error);
  sync_table_done(s);
}

/* REQ_FETCH_ALL: what the table held and no part of the read brought is
 * gone (unless changed here meanwhile). */
static void sync_fetch_all_end(sync_engine *s, const sync_req *r) {
  cJSON *gone = cJSON_CreateArray();
  map_iter it = {0};
  const char *key;
  void *val;
  while (map_next(s->held[r->table], &it, &key, &val))
    if (((row_entry *)val)->mark != r->mark && !sync_touched_since(s, r->table, key, r->since))
      cJSON_AddItemToArray(gone, cJSON_CreateString(key));
  cJSON_Delete(s->deleted_ids[r->table]);
  s->deleted_ids[r->table] = gone;
}

static void sync_on_fetch(void *data, int status, const char *error,
                          cJSON *rows) {
  /* A part (STORE_PAGE) keeps the request for the parts after it. */
  sync_req *r = data;
  sync_engine *s = r->s;
  sync_req req = *r;
  int part = status == STORE_PAGE;
  if (!part)
    r = &req;
  if (part ? s->closing : sync_req_end(data)) {
    cJSON_Delete(rows);
    if (!part)
      sync_maybe_finish_close(s);
    return;
  }
  if (s->refresh_stale && r->type != REQ_EVENT_FETCH) {
    cJSON_Delete(rows); /* the gone user's */
    if (!part)
      sync_table_done(s);
    return;
  }
  if (status < 0) {
    if (r->type == REQ_EVENT_FETCH)
      log_warn("sync: fetching a changed row failed: %s", error);
    else
      sync_table_failed(s, r->table, error);
    return;
  }
  if (r->type == REQ_FETCH_ALL && r->mark == 0) {
    /* Marks, not a set of the ids seen: no 100k small allocations. */
    r->mark = ++s->marks;
    sync_mark_begin(&s->mark[r->table]);
  }
  /* The rows are freed together after: what is held of them is then
   * allocated past them, not in the holes each freed row would leave, so
   * the whole read can be given back to the OS (sync_trim). */
  const cJSON *row;
  cJSON_ArrayForEach(row, rows) {
    const char *id = mpjson_get_str(row, "id");
    if (!sync_touched_since(s, r->table, id, r->since)) {
      if (r->type == REQ_EVENT_FETCH)
        sync_touch(s, r->table, id);
      sync_hold_row(s, r->table, row);
    }
    if (r->type == REQ_FETCH_ALL) {
      row_entry *e = id ? map_get(s->held[r->table], id) : NULL;
      if (e)
        e->mark = r->mark;
      sync_mark_see(&s->mark[r->table], id, mpjson_get_str(row, "updated_at"));
    }
  }
  r->nrows += (size_t)cJSON_GetArraySize(rows);
  cJSON_Delete(rows);
  /* A first load is shown as it is read, a part at a time (the folders, read
   * first, before the items); a later refresh's changes go out together. */
  if (part) {
    if (!s->ready)
      sync_flush(s);
    return;
  }
  if (r->nrows >= SYNC_TRIM_ROWS)
    s->trim_owed = 1;
  if (r->type == REQ_EVENT_FETCH) {
    sync_flush(s);
    return;
  }
  if (r->type == REQ_FETCH_ALL) {
    sync_fetch_all_end(s, r);
    if (!s->ready)
      sync_flush(s);
  }
  sync_table_ok(s, r->table);
}

static void sync_on_stamps(void *data, int status, const char *error,
                           cJSON *rows) {
  sync_req *r = data;
  sync_engine *s = r->s;
  store_table t = r->table;
  uint64_t since = r->since;
  if (sync_req_end(r)) {
    cJSON_Delete(rows);
    sync_maybe_finish_close(s);
    return;
  }
  if (s->refresh_stale) {
    cJSON_Delete(rows); /* the gone user's */
    sync_table_done(s);
    return;
  }
  if (status < 0) {
    sync_table_failed(s, t, error);
    return;
  }
  /* Compare what the table has with what is held. */
  map *seen = map_new();
  cJSON *want = cJSON_CreateArray();
  const cJSON *pair;
  sync_mark_begin(&s->mark[t]);
  cJSON_ArrayForEach(pair, rows) {
    const cJSON *id = cJSON_GetArrayItem(pair, 0);
    const cJSON *stamp = cJSON_GetArrayItem(pair, 1);
    if (!cJSON_IsString(id))
      continue;
    map_put(seen, id->valuestring, (void *)1);
    sync_mark_see(&s->mark[t], id->valuestring, cJSON_IsString(stamp) ? stamp->valuestring : NULL);
    if (sync_touched_since(s, t, id->valuestring, since))
      continue;
    row_entry *e = map_get(s->held[t], id->valuestring);
    const char *held = e ? row_stamp(e) : NULL;
    const char *now = cJSON_IsString(stamp) ? stamp->valuestring : NULL;
    if (!e || !held || !now || strcmp(held, now) != 0)
      cJSON_AddItemToArray(want, cJSON_CreateString(id->valuestring));
  }
  cJSON_Delete(rows);
  cJSON *gone = cJSON_CreateArray();
  map_iter it = {0};
  const char *key;
  while (map_next(s->held[t], &it, &key, NULL)) {
    if (!map_get(seen, key) && !sync_touched_since(s, t, key, since))
      cJSON_AddItemToArray(gone, cJSON_CreateString(key));
  }
  map_free(seen, NULL);
  cJSON_Delete(s->deleted_ids[t]);
  s->deleted_ids[t] = gone;
  if (cJSON_GetArraySize(want) == 0) {
    cJSON_Delete(want);
    sync_table_ok(s, t);
    return;
  }
  sync_req *f = sync_req_new(s, REQ_FETCH, t);
  int rc = sync_fetch_rows(s, t, want, f);
  cJSON_Delete(want);
  if (rc < 0) {
    sync_req_end(f);
    sync_table_failed(s, t, "the store refused the request");
  }
}


/* Both answers of an incremental refresh of t are in (sync_delta_start). */
static void sync_delta_end(sync_engine *s, store_table t, uint64_t since) {
  sync_mark *m = &s->mark[t];
  cJSON *rows = m->rows;
  m->rows = NULL;
  if (!m->stamp) { /* everything was forgotten meanwhile (another user) */
    free(m->error);
    m->error = NULL;
    cJSON_Delete(rows);
    sync_table_done(s);
    return;
  }
  if (m->error) {
    char *error = m->error;
    m->error = NULL;
    cJSON_Delete(rows);
    sync_table_failed(s, t, error);
    free(error);
    return;
  }
  /* Held rows stamped after the mark that the answer does not have are gone
   * (or went back before the mark, which the count below catches). */
  map *seen = map_new();
  cJSON *row;
  sync_mark_next_clear(m);
  cJSON_ArrayForEach(row, rows) {
    const char *id = mpjson_get_str(row, "id");
    if (id)
      map_put(seen, id, (void *)1);
    sync_mark_see(m, id, mpjson_get_str(row, "updated_at"));
  }
  cJSON *gone = cJSON_CreateArray();
  map_iter it = {0};
  const char *key;
  while (map_next(m->later, &it, &key, NULL))
    if (!map_get(seen, key) && !sync_touched_since(s, t, key, since))
      cJSON_AddItemToArray(gone, cJSON_CreateString(key));
  map_free(seen, NULL);
  cJSON_Delete(s->deleted_ids[t]);
  s->deleted_ids[t] = gone;
  while ((row = cJSON_DetachItemFromArray(rows, 0)) != NULL) {
    if (sync_touched_since(s, t, mpjson_get_str(row, "id"), since))
      cJSON_Delete(row);
    else
      sync_apply_upsert(s, t, row);
  }
  cJSON_Delete(rows);
  /* The rows at or before the mark: a row deleted there, or one that came
   * there unseen (inserted with an old stamp, or at the mark's own stamp
   * past the rows known there), makes the counts differ. */
  size_t held = sync_mark_held(m, map_size(s->held[t]));
  if (m->count == SYNC_COUNT_VOUCHED || m->count == (double)held) {
    m->recounted = 0;
    sync_mark_advance(m, s->held[t], sync_entry_stamp);
    sync_table_done(s);
    return;
  }
  /* A write or an event changed a row here while the store counted: its
   * count may be from before that change, ours is from after. Ask again
   * after it (from the same mark) rather than compare every stamp; twice in
   * a row, compare them. */
  if (!m->recounted && sync_touched_any_since(s, t, since)) {
    log_debug("sync: %s: %.0f rows at or before the mark there, %zu here, a row changed "
              "meanwhile; asking again", store_default_table_name(t), m->count, held);
    m->recounted = 1;
    sync_mark_next_clear(m);
    s->refresh_pending = 1;
    sync_table_done(s);
    return;
  }
  m->recounted = 0;
  log_info("sync: %s: %.0f rows at or before %s there, %zu here; comparing every stamp",
           store_default_table_name(t), m->count, m->stamp, held);
  sync_mark_next_clear(m);
  sync_req *r = sync_req_new(s, REQ_STAMPS, t);
  r->since = since; /* what was touched since the answers holds */
  if (store_stamps(s->st, t, sync_on_stamps, r) < 0) {
    sync_req_end(r);
    sync_table_failed(s, t, "the store refused the request");
  }
}

static void sync_on_delta(void *data, int status, const char *error, cJSON *rows) {
  sync_req *r = data;
  sync_engine *s = r->s;
  store_table t = r->table;
  sync_req_type type = r->type;
  uint64_t since = r->since;
  if (sync_req_end(r)) {
    cJSON_Delete(rows);
    sync_maybe_finish_close(s);
    return;
  }
  sync_mark *m = &s->mark[t];
  if (status < 0) {
    if (s->st->retry_after_ms > s->refresh_retry_after_ms)
      s->refresh_retry_after_ms = s->st->retry_after_ms;
    if (!m->error)
      m->error = util_strdup(error);
    cJSON_Delete(rows);
  } else if (type == REQ_SINCE) {
    cJSON_Delete(m->rows);
    m->rows = rows;
  } else if (type == REQ_DELTA) {
    cJSON *n = cJSON_DetachItemFromArray(rows, 0);
    m->count = cJSON_IsNumber(n) ? n->valuedouble : cJSON_IsNull(n) ? SYNC_COUNT_VOUCHED : -1;
    cJSON_Delete(n);
    cJSON_Delete(m->rows);
    m->rows = rows;
  } else {
    const cJSON *n = cJSON_GetArrayItem(rows, 0);
    m->count = cJSON_IsNumber(n) ? n->valuedouble : -1;
    cJSON_Delete(rows);
  }
  if (--m->parts == 0)
    sync_delta_end(s, t, since);
}

/* Ask for what changed in t since its mark, and for the count at or before
 * it, at once (one round trip): in one call when the store can, else as two.
 * A count asked again (recounted) is asked apart: a store's delta may leave
 * its count out. */
static void sync_delta_start(sync_engine *s, store_table t) {
  sync_mark *m = &s->mark[t];
  int one = s->st->ops->delta != NULL && !m->recounted, n = one ? 1 : 2;
  m->parts = n;
  m->count = -1;
  cJSON_Delete(m->rows);
  m->rows = NULL;
  free(m->error);
  m->error = NULL;
  for (int i = 0; i < n; i++) {
    sync_req *r = sync_req_new(s, one ? REQ_DELTA : i == 0 ? REQ_SINCE : REQ_COUNT, t);
    int rc = one      ? store_delta(s->st, t, m->stamp, m->ids, sync_on_delta, r)
             : i == 0 ? store_since(s->st, t, m->stamp, m->ids, sync_on_delta, r)
                      : store_count_until(s->st, t, m->stamp, sync_on_delta, r);
    if (rc < 0) {
      uint64_t since = r->since;
      sync_req_end(r);
      if (!m->error)
        m->error = util_strdup("the store refused the request");
      if (--m->parts == 0)
        sync_delta_end(s, t, since);
    }
  }
}

void sync_refresh_start(sync_engine *s) {
  if (s->closing)
    return;
  if (s->refreshing) {
    int newly = !s->refresh_pending;
    s->refresh_pending = 1;
    if (newly && s->refresh_quiet)
      sync_push_status(s); /* someone now waits for the quiet check: loading */
    return;
  }
  if (s->refresh_timer_on) {
    uv_timer_stop(&s->refresh_timer);
    s->refresh_timer_on = 0;
  }
  s->refreshing = 1;
  s->refresh_pending = 0;
  s->refresh_after_taken = 0;
  s->refresh_stale = 0;
  s->refresh_retry_after_ms = 0;
  s->refresh_since = s->touch_seq;
  s->refresh_began_ms = uv_now(s->loop);
  s->refreshes_started++;
  list_node *n;
  while ((n = list_pop_front(&s->tickets_next)) != NULL)
    list_push_back(&s->tickets_now, n);
  s->tables_left = STORE_NTABLES;
  if (s->ready && (double)(uv_now(s->loop) - s->last_full_ms) >= s->opts.full_check_ms)
    s->full_owed = 1;
  /* The owed check runs on its own, once a refresh of what changed is done
   * and nobody waits for another (sync_refresh_finish). */
  s->refresh_quiet = s->full_owed && s->full_next && s->ready && list_empty(&s->tickets_now);
  s->check_owed = 0;
  s->full_now = s->full_next || !s->ready;
  if (s->full_now)
    s->full_owed = 0;
  s->full_next = 0;
  sync_push_status(s);
  /* Folders first: in a first load the editor can draw them (and the
   * items that follow find their folder) while the items are still read. */
  static const store_table order[STORE_NTABLES] = {STORE_PROMPT_PROJECTS, STORE_DATASET_PROJECTS,
                                                   STORE_PROMPTS, STORE_BLOCKS};
  for (int i = 0; i < STORE_NTABLES; i++) {
    store_table t = order[i];
    int all = s->full_now || map_size(s->held[t]) == 0;
    if (!all && s->mark[t].stamp && s->st->ops->since && s->st->ops->count_until) {
      sync_delta_start(s, t);
      continue;
    }
    sync_req *r = sync_req_new(s, all ? REQ_FETCH_ALL : REQ_STAMPS, t);
    int rc = all ? sync_fetch_rows(s, t, NULL, r)
                 : store_stamps(s->st, t, sync_on_stamps, r);
    if (rc < 0) {
      sync_req_end(r);
      sync_table_failed(s, t, "the store refused the request");
    }
  }
}

void sync_refresh(sync_engine *s, uint64_t ticket) {
  if (s->closing) { /* no refresh will start to answer it */
    s->cb.done(s->data, ticket, "shelfd is shutting down", NULL);
    return;
  }
  sync_ticket *t = util_malloc(sizeof *t);
  t->ticket = ticket;
  list_push_back(&s->tickets_next, &t->link);
  sync_refresh_start(s);
}
