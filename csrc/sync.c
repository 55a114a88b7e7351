/* sync.c - the sync engine (see sync.h).
 *
 * Held state: one map per table, id -> entry (what the editor's mirror and
 * the refresh need of a row, packed: no content, which stays in the store
 * and is fetched for each get), and a map of temporary blocks (whole, as
 * they live only here). Changes to held state are collected per kind in a
 * batch and pushed to the editor as one `changed` per kind by sync_flush().
 * A refresh of a table asks for what changed since the newest updated_at an
 * earlier refresh read there (its mark), and for the table's count of rows
 * at or before the mark, compared with the count held: equal, nothing else
 * changed; else (or with no mark yet) it asks for [id, updated_at] pairs,
 * fetches only the rows whose stamp differs, and drops the ids the table no
 * longer has. A table held empty is fetched whole. Every store request
 * carries a sync_req so a callback that arrives during shutdown can be told
 * apart and released. */
#define _GNU_SOURCE /* strcasestr */
#include "sync.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "list.h"
#include "log.h"
#include "map.h"
#include "mpjson.h"
#include "row.h"
#include "sync_mark.h"
#include "util.h"


typedef enum { ACT_CREATE, ACT_UPDATE, ACT_DELETE, ACT_SAVE_TEMP } sync_op;

typedef struct sync_action {
  sync_engine *s;
  uint64_t ticket;
  sync_op op;
  store_table table;
  char id[UTIL_UUID_LEN + 1];
  cJSON *payload; /* create: the record; update: the fields */
  char *what;     /* "Saving prompt 'X'", for messages */
  int attempt;
  int waiting;    /* a retry timer is running */
  uv_timer_t timer;
  list_node link; /* in s->actions until ended */
} sync_action;

/* Someone waiting for a refresh to finish (RPC `refresh` and the like). */
typedef struct {
  list_node link;
  uint64_t ticket;
} sync_ticket;

typedef enum {
  REQ_STAMPS,
  REQ_SINCE,
  REQ_COUNT,
  REQ_FETCH,
  REQ_FETCH_ALL,
  REQ_EVENT_FETCH,
  REQ_ACTION,
  REQ_LOGIN,
  REQ_LOGOUT,
  REQ_GET
} sync_req_type;

/* A get query waiting for its row from the store (in s->gets). */
typedef struct {
  list_node link;
  uint64_t ticket;
  int cancelled; /* sync_cancel: the answer is dropped */
  model_kind kind;
  char id[];
} sync_getq;

typedef struct {
  sync_engine *s;
  sync_req_type type;
  store_table table;
  uint64_t generation; /* the refresh it belongs to */
  uint64_t since;      /* touch_seq when it was sent */
  sync_action *action;
  uint64_t ticket;     /* REQ_LOGIN, REQ_LOGOUT */
  sync_getq *get;      /* REQ_GET */
} sync_req;

struct sync_engine {
  uv_loop_t *loop;
  store *st;
  sync_callbacks cb;
  void *data;
  sync_options opts;

  map *held[STORE_NTABLES];
  /* The columns of each table's latest row (names; a size stands for its
   * content), to tell a partial realtime record (sync_record_partial). */
  cJSON *columns[STORE_NTABLES];
  map *temps; /* id -> cJSON record of a temporary block */
  row_ids batch_up[MODEL_NKINDS];
  cJSON *batch_del[MODEL_NKINDS];
  uint32_t marks; /* full reads so far (row.mark) */
  uint64_t version;
  int pushing_more; /* during changed(): more pushes of this flush follow */
  /* Pushes cut by sync_flush and not sent yet, and the answers behind
   * them (sync_out, in order). With a window (sync_set_window), at most that
   * many are sent ahead of the editor's sync_taken, so Neovim never has a
   * pile of them to decode in one turn of its loop; a status waits behind
   * them (status_owed). */
  list_node outbox;
  int window, unacked, status_owed;
  int outbox_changes; /* changed() pushes in the outbox */
  /* A big read came and went (SYNC_TRIM_ROWS rows or more): what it took
   * is given back to the system once its pushes are out (sync_trim). */
  int trim_owed;

  /* Refresh: one in flight (`refreshing`), at most one pending. */
  int refreshing, refresh_pending;
  uint64_t generation;
  int tables_left;
  cJSON *deleted_ids[STORE_NTABLES]; /* found missing by this refresh */
  char *refresh_error;
  /* sync_ticket.link: answered when the refresh in flight ends (now) or
   * when the one after it does (next). */
  list_node tickets_now, tickets_next;
  int refresh_failures;
  unsigned refresh_retry_after_ms; /* the longest wait a failed table asked for */
  uv_timer_t refresh_timer;
  int refresh_timer_on;
  int refreshes_started;
  int ready; /* the first full load finished */
  /* A refresh normally fetches only rows whose updated_at differs. A change
   * that kept its stamp (SQL, the table editor) shows up only through
   * realtime; after lost events, and every opts.full_check_ms of activity,
   * a full fetch is the safety net. Checked when a refresh starts: no timer,
   * so an idle editor wakes no one. */
  int full_next, full_now;
  uint64_t last_full_ms;

  /* An answer to a read is a snapshot from when it was sent; an event or an
   * action applied meanwhile is newer. Rows changed that way while reads are
   * in flight are noted (id -> touch_seq), and a read's answer leaves them
   * alone: no older version written back, no deleted row brought back, no
   * new row taken for gone. Emptied when nothing is in flight. */
  uint64_t touch_seq;
  map *touched[STORE_NTABLES];
  uint64_t refresh_since; /* touch_seq when the refresh in flight started */

  sync_mark mark[STORE_NTABLES];

  /* A create whose attempt went unanswered (a timeout) may still land at
   * the server much later (a request held up on the way) and bring back an
   * item deleted since. Such ids are remembered (id -> sync_doubt): once the
   * item is deleted here, a row with its id that shows up within
   * SYNC_LATE_MS is that late create, and is deleted again. */
  map *doubts[STORE_NTABLES];

  list_node actions;    /* sync_action.link: live ones, for shutdown */
  list_node gets;       /* sync_getq.link: get queries in the store */
  int nactions;
  int nauth;            /* sign-ins and sign-outs under way */
  int inflight;         /* store requests not yet answered */
  struct sync_search_req *search; /* the search under way in the store */
  int searching;        /* store searches not yet answered (cancelled too) */
  char *last_error;
  char *last_status;    /* the status last pushed, to skip repeats */

  int closing;
  int handles_open;     /* timers still closing */
  void (*closed)(void *);
  void *closed_data;
};

#define SYNC_FULL_CHECK_MS (10 * 60 * 1000)
#define SYNC_LATE_MS (5 * 60 * 1000) /* how late an unanswered create may land */
#define SYNC_PUSH_MAX 500 /* items in one push to the editor */
#define SYNC_TRIM_ROWS 2000

typedef struct {
  uint64_t until;  /* uv_now after which it is forgotten */
  int deleted;     /* deleted here since */
  int redeleting;  /* a delete of the late row is under way */
} sync_doubt;

static void sync_refresh_start(sync_engine *s);
static void sync_push_status(sync_engine *s);
static void sync_maybe_finish_close(sync_engine *s);

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
static void sync_note_temp(sync_engine *s, const char *id) {
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

/* The same as one msgpack array, written into sb (for changed_packed). */
static void sync_summaries_packed(sync_engine *s, const row_ids *ids, msgpack_sbuffer *sb) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  size_t n = 0;
  size_t at = 0;
  char where;
  const char *id;
  while (row_ids_next(ids, &at, &where, &id)) {
    n += where == ROW_TEMP ? map_get(s->temps, id) != NULL
                            : map_get(s->held[(store_table)where], id) != NULL;
  }
  msgpack_pack_array(&pk, n);
  at = 0;
  while (row_ids_next(ids, &at, &where, &id)) {
    if (where == ROW_TEMP) {
      const cJSON *tmp = map_get(s->temps, id);
      if (tmp) {
        cJSON *sum = model_summary(STORE_BLOCKS, tmp, 1);
        mpjson_pack(&pk, sum);
        cJSON_Delete(sum);
      }
    } else {
      const row_entry *e = map_get(s->held[(store_table)where], id);
      if (e)
        row_pack(&pk, (store_table)where, id, e);
    }
  }
}

static void sync_note_delete(sync_engine *s, model_kind k, const char *id) {
  cJSON_AddItemToArray(s->batch_del[k], cJSON_CreateString(id));
}

static void sync_redelete(sync_engine *s, store_table t, const char *id, const cJSON *rec);

/* The updated_at of a held entry, for the marks (sync_mark.h). */
static const char *sync_entry_stamp(const void *e) {
  return row_stamp((const row_entry *)e);
}

/* Remember that a create of `id` may still land (see doubts). Forgets the
 * expired ones first, so the map stays as small as the recent timeouts. */
static void sync_doubt_create(sync_engine *s, store_table t, const char *id) {
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
static void sync_hold_row(sync_engine *s, store_table t, const cJSON *rec) {
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

static void sync_apply_upsert(sync_engine *s, store_table t, cJSON *rec) {
  sync_hold_row(s, t, rec);
  cJSON_Delete(rec);
}

/* Note that row `id` changed by an event or an action (see touched). */
static void sync_touch(sync_engine *s, store_table t, const char *id) {
  if (s->inflight == 0 || !id)
    return;
  map_put(s->touched[t], id, (void *)(uintptr_t)++s->touch_seq);
}

/* Nothing in flight and no refresh between two requests: no answer to come
 * can need what was touched. */
static void sync_forget_touches(sync_engine *s) {
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
static int sync_touched_since(const sync_engine *s, store_table t, const char *id,
                              uint64_t since) {
  return id && (uintptr_t)map_get(s->touched[t], id) > since;
}

static void sync_apply_delete(sync_engine *s, store_table t, const char *id) {
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
    /* The editor may wait for the last push of a burst before it redraws. */
    s->pushing_more = s->outbox_changes > 0 || sync_batch_pending(s);
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
}

/* Answer an action: at once, or behind the changes still held (the editor
 * sees an action's change before its answer). */
static void sync_tell_done(sync_engine *s, uint64_t ticket, const char *error,
                           const cJSON *item) {
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

static void sync_flush(sync_engine *s) {
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
static int sync_find(sync_engine *s, model_kind k, const char *id, store_table *t) {
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

static sync_req *sync_req_new(sync_engine *s, sync_req_type type, store_table t) {
  sync_req *r = util_calloc(1, sizeof *r);
  r->s = s;
  r->type = type;
  r->table = t;
  r->generation = s->generation;
  r->since = s->touch_seq;
  sync_forget_touches(s);
  s->inflight++;
  return r;
}

/* Release r: at the top of every store callback (read what you need of r
 * first), and where the store refused it. Returns 1 if the engine is
 * shutting down and the callback must only clean up. */
static int sync_req_end(sync_req *r) {
  sync_engine *s = r->s;
  free(r);
  s->inflight--;
  return s->closing;
}

/* --- refresh --------------------------------------------------------------- */

static void sync_on_fetch(void *data, int status, const char *error, cJSON *rows);

/* Rows to hold: without their content where the store can leave it out. */
static int sync_fetch_rows(sync_engine *s, store_table t, const cJSON *ids, sync_req *r) {
  if (s->st->ops->fetch_summaries)
    return s->st->ops->fetch_summaries(s->st, t, ids, sync_on_fetch, r);
  return store_fetch(s->st, t, ids, sync_on_fetch, r);
}

static double sync_backoff_ms(const sync_engine *s, int failures) {
  double ms = s->opts.retry_base_ms;
  for (int i = 1; i < failures && ms < 30000; i++)
    ms *= 2;
  if (ms > 30000)
    ms = 30000;
  return util_jitter(ms, 0.25); /* so many editors do not retry in step */
}

static void sync_set_error(sync_engine *s, const char *msg) {
  free(s->last_error);
  s->last_error = msg ? util_strdup(msg) : NULL;
}

/* Answer and free every ticket of the list, which is left empty. */
static void sync_answer_tickets(sync_engine *s, list_node *tickets, const char *error) {
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

static void sync_refresh_finish(sync_engine *s) {
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
  if (s->full_now && error)
    s->full_next = 1;
  else if (s->full_now)
    s->last_full_ms = uv_now(s->loop);
  s->full_now = 0;
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
  free(error);
  sync_flush(s);
  if (s->refresh_pending)
    sync_refresh_start(s);
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

static void sync_on_fetch(void *data, int status, const char *error,
                          cJSON *rows) {
  sync_req req = *(sync_req *)data, *r = &req;
  sync_engine *s = r->s;
  if (sync_req_end(data)) {
    cJSON_Delete(rows);
    sync_maybe_finish_close(s);
    return;
  }
  if (status < 0) {
    if (r->type == REQ_EVENT_FETCH)
      log_warn("sync: fetching a changed row failed: %s", error);
    else
      sync_table_failed(s, r->table, error);
    return;
  }
  int nrows = cJSON_GetArraySize(rows);
  if (r->type == REQ_FETCH_ALL) { /* what is held and not here is gone */
    /* Marks, not a set of the ids seen: no 100k small allocations. */
    uint32_t mark = ++s->marks;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
      const char *id = mpjson_get_str(row, "id");
      row_entry *e = id ? map_get(s->held[r->table], id) : NULL;
      if (e)
        e->mark = mark;
    }
    cJSON *gone = cJSON_CreateArray();
    map_iter it = {0};
    const char *key;
    void *val;
    while (map_next(s->held[r->table], &it, &key, &val))
      if (((row_entry *)val)->mark != mark && !sync_touched_since(s, r->table, key, r->since))
        cJSON_AddItemToArray(gone, cJSON_CreateString(key));
    cJSON_Delete(s->deleted_ids[r->table]);
    s->deleted_ids[r->table] = gone;
    sync_mark_begin(&s->mark[r->table]);
    cJSON_ArrayForEach(row, rows)
      sync_mark_see(&s->mark[r->table], mpjson_get_str(row, "id"),
                    mpjson_get_str(row, "updated_at"));
  }
  /* The rows are freed together after: what is held of them is then
   * allocated past them, not in the holes each freed row would leave, so
   * the whole read can go back to the system (sync_trim). */
  const cJSON *row;
  cJSON_ArrayForEach(row, rows) {
    if (sync_touched_since(s, r->table, mpjson_get_str(row, "id"), r->since))
      continue;
    if (r->type == REQ_EVENT_FETCH)
      sync_touch(s, r->table, mpjson_get_str(row, "id"));
    sync_hold_row(s, r->table, row);
  }
  cJSON_Delete(rows);
  if (nrows >= SYNC_TRIM_ROWS)
    s->trim_owed = 1;
  if (r->type == REQ_EVENT_FETCH)
    sync_flush(s);
  else
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
  if (m->count == (double)held) {
    sync_mark_advance(m, s->held[t], sync_entry_stamp);
    sync_table_done(s);
    return;
  }
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
  } else {
    const cJSON *n = cJSON_GetArrayItem(rows, 0);
    m->count = cJSON_IsNumber(n) ? n->valuedouble : -1;
    cJSON_Delete(rows);
  }
  if (--m->parts == 0)
    sync_delta_end(s, t, since);
}

/* Ask for what changed in t since its mark, and for the count at or before
 * it, at once (one round trip). */
static void sync_delta_start(sync_engine *s, store_table t) {
  sync_mark *m = &s->mark[t];
  m->parts = 2;
  m->count = -1;
  cJSON_Delete(m->rows);
  m->rows = NULL;
  free(m->error);
  m->error = NULL;
  for (int i = 0; i < 2; i++) {
    sync_req *r = sync_req_new(s, i == 0 ? REQ_SINCE : REQ_COUNT, t);
    int rc = i == 0 ? store_since(s->st, t, m->stamp, m->ids, sync_on_delta, r)
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

static void sync_refresh_start(sync_engine *s) {
  if (s->closing)
    return;
  if (s->refreshing) {
    s->refresh_pending = 1;
    return;
  }
  if (s->refresh_timer_on) {
    uv_timer_stop(&s->refresh_timer);
    s->refresh_timer_on = 0;
  }
  s->refreshing = 1;
  s->refresh_pending = 0;
  s->refresh_retry_after_ms = 0;
  s->refresh_since = s->touch_seq;
  s->generation++;
  s->refreshes_started++;
  list_node *n;
  while ((n = list_pop_front(&s->tickets_next)) != NULL)
    list_push_back(&s->tickets_now, n);
  s->tables_left = STORE_NTABLES;
  s->full_now = s->full_next || !s->ready ||
                (double)(uv_now(s->loop) - s->last_full_ms) >= s->opts.full_check_ms;
  s->full_next = 0;
  sync_push_status(s);
  for (int i = 0; i < STORE_NTABLES; i++) {
    store_table t = (store_table)i;
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
static void sync_action_end(sync_action *a, const char *error,
                            const cJSON *item) {
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
static void sync_redelete(sync_engine *s, store_table t, const char *id, const cJSON *rec) {
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
    s->full_next = 1;
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

/* --- reads from memory ----------------------------------------------------- */

static int sync_matches(const cJSON *rec, const char *q) {
  static const char *cols[] = {"title", "name", "description", "content", NULL};
  for (int i = 0; cols[i]; i++) {
    const char *v = mpjson_get_str(rec, cols[i]);
    if (v && strcasestr(v, q))
      return 1;
  }
  const cJSON *tag;
  cJSON_ArrayForEach(tag, cJSON_GetObjectItemCaseSensitive(rec, "tags")) {
    if (cJSON_IsString(tag) && strcasestr(tag->valuestring, q))
      return 1;
  }
  return 0;
}

static void sync_add_hit(cJSON *out, model_kind k, const char *id) {
  cJSON *hit = cJSON_CreateObject();
  cJSON_AddStringToObject(hit, "kind", model_kind_name(k));
  cJSON_AddStringToObject(hit, "id", id);
  cJSON_AddItemToArray(out, hit);
}

/* Hits held in memory: temporary blocks (never in the store), folders by
 * name, and with `held` the items too (for a store that cannot search). */
static cJSON *sync_search_memory(sync_engine *s, const char *query, int kind, size_t limit,
                                 int held) {
  cJSON *out = cJSON_CreateArray();
  size_t n = 0;
  map_iter it;
  const char *id;
  void *v;
  if (kind < 0 || kind == MODEL_BLOCK) {
    it = (map_iter){0};
    while (n < limit && map_next(s->temps, &it, &id, &v)) {
      if (sync_matches(v, query)) {
        sync_add_hit(out, MODEL_BLOCK, id);
        n++;
      }
    }
  }
  for (int t = 0; t < STORE_NTABLES; t++) {
    model_kind k = model_kind_of((store_table)t);
    if ((kind >= 0 && (int)k != kind) || (!held && k != MODEL_PROJECT))
      continue;
    it = (map_iter){0};
    while (n < limit && map_next(s->held[t], &it, &id, &v)) {
      /* Content is not held: titles, descriptions (their start) and tags. */
      cJSON *sum = row_json((store_table)t, id, v);
      if (sum && sync_matches(sum, query)) {
        sync_add_hit(out, k, id);
        n++;
      }
      cJSON_Delete(sum);
    }
  }
  return out;
}

/* --- queries ------------------------------------------------------------------ */

static void sync_answer(sync_engine *s, uint64_t ticket, const char *error,
                        const cJSON *result) {
  if (s->cb.answer)
    s->cb.answer(s->data, ticket, error, result);
}

/* The row of a get query came (or not): answer with the whole item. */
static void sync_on_get(void *data, int status, const char *error, cJSON *rows) {
  sync_req *r = data;
  sync_engine *s = r->s;
  sync_getq *q = r->get;
  store_table t = r->table;
  int closing = sync_req_end(r);
  list_remove(&q->link);
  const cJSON *row = cJSON_GetArrayItem(rows, 0);
  char *msg = NULL;
  cJSON *item = NULL;
  if (closing)
    msg = util_strdup("shelfd is shutting down");
  else if (status < 0)
    msg = util_printf("Loading %s %s failed: %s", model_kind_label(q->kind), q->id, error);
  else if (!row || model_row_problem(t, row))
    msg = util_printf("there is no %s with id %s (deleted elsewhere?)",
                      model_kind_label(q->kind), q->id);
  else
    item = model_item(t, row, 0);
  if (!q->cancelled)
    sync_answer(s, q->ticket, msg, item);
  free(msg);
  cJSON_Delete(item);
  cJSON_Delete(rows);
  free(q);
  if (closing)
    sync_maybe_finish_close(s);
}

/* Content is not held: a get reads the row from the store (SQLite's thread
 * pool, an HTTP request), except a temporary block's, which lives here.
 * No cache: a read by primary key costs well under a millisecond on SQLite,
 * and a cache would have to follow every change made elsewhere. */
void sync_query_get(sync_engine *s, uint64_t ticket, model_kind k, const char *id) {
  store_table t = STORE_BLOCKS;
  cJSON *tmp = k == MODEL_BLOCK ? map_get(s->temps, id) : NULL;
  if (tmp) {
    cJSON *item = model_item(STORE_BLOCKS, tmp, 1);
    sync_answer(s, ticket, NULL, item);
    cJSON_Delete(item);
    return;
  }
  /* Items are read whether or not held (the first load may be under way);
   * a folder's table is known only from what is held. */
  int found = sync_find(s, k, id, &t);
  if (s->closing || (!found && k == MODEL_PROJECT)) {
    char *msg = s->closing ? util_strdup("shelfd is shutting down")
                           : util_printf("there is no %s with id %s", model_kind_label(k), id);
    sync_answer(s, ticket, msg, NULL);
    free(msg);
    return;
  }
  sync_getq *q = util_calloc(1, sizeof *q + strlen(id) + 1);
  q->ticket = ticket;
  q->kind = k;
  memcpy(q->id, id, strlen(id) + 1);
  list_push_back(&s->gets, &q->link);
  sync_req *r = sync_req_new(s, REQ_GET, t);
  r->get = q;
  int rc;
  if (s->st->ops->read) {
    /* The stamp held lets a local copy answer when it has this version. */
    row_entry *e = found ? map_get(s->held[t], id) : NULL;
    rc = s->st->ops->read(s->st, t, id, e ? row_stamp(e) : NULL, sync_on_get, r);
  } else {
    cJSON *ids = cJSON_CreateArray();
    cJSON_AddItemToArray(ids, cJSON_CreateString(id));
    rc = store_fetch(s->st, t, ids, sync_on_get, r);
    cJSON_Delete(ids);
  }
  if (rc < 0) {
    sync_req_end(r);
    list_remove(&q->link);
    free(q);
    char *msg = util_printf("Loading %s %s failed: the store refused the request",
                            model_kind_label(k), id);
    sync_answer(s, ticket, msg, NULL);
    free(msg);
  }
}

/* A search in the store. One at a time: a newer one, sync_cancel and
 * sync_close stop it (`quiet`: its answer, if any, is dropped). */
typedef struct sync_search_req {
  sync_engine *s;
  uint64_t ticket;
  cJSON *early; /* the hits found in memory, first in the answer */
  size_t limit;
  int quiet;
} sync_search_req;

static void sync_on_search(void *data, int status, const char *error, cJSON *rows) {
  sync_search_req *r = data;
  sync_engine *s = r->s;
  s->searching--;
  if (s->search == r)
    s->search = NULL;
  if (!r->quiet && status < 0) {
    sync_answer(s, r->ticket, error, NULL);
  } else if (!r->quiet) {
    /* Kinds in turn when the limit cuts (a backend may answer one table's
     * hits after the other's). */
    size_t n = (size_t)cJSON_GetArraySize(r->early);
    const cJSON *next[STORE_NTABLES];
    for (int t = 0; t < STORE_NTABLES; t++)
      next[t] = rows ? rows->child : NULL;
    for (int more = 1; more && n < r->limit;) {
      more = 0;
      for (int t = 0; t < STORE_NTABLES && n < r->limit; t++) {
        const cJSON *hit = next[t];
        const cJSON *tt = NULL, *id = NULL;
        for (; hit; hit = hit->next) {
          tt = cJSON_GetArrayItem(hit, 0);
          id = cJSON_GetArrayItem(hit, 1);
          if (cJSON_IsNumber(tt) && tt->valueint == t && cJSON_IsString(id))
            break;
        }
        next[t] = hit ? hit->next : NULL;
        if (hit) {
          sync_add_hit(r->early, model_kind_of((store_table)t), id->valuestring);
          n++;
          more = 1;
        }
      }
    }
    sync_answer(s, r->ticket, NULL, r->early);
  }
  cJSON_Delete(rows);
  cJSON_Delete(r->early);
  free(r);
  sync_maybe_finish_close(s);
}

/* Stop the search under way; answer it with `why` unless NULL. */
static void sync_search_stop(sync_engine *s, const char *why) {
  sync_search_req *r = s->search;
  if (!r)
    return;
  s->search = NULL;
  r->quiet = 1;
  if (why)
    sync_answer(s, r->ticket, why, NULL);
  store_search_cancel(s->st, sync_on_search, r);
}

void sync_query_search(sync_engine *s, uint64_t ticket, const char *query,
                       int kind_or_minus1, size_t limit) {
  sync_search_stop(s, "cancelled: a newer search replaced it");
  unsigned tables = 0;
  if (kind_or_minus1 < 0 || kind_or_minus1 == MODEL_BLOCK)
    tables |= 1u << STORE_BLOCKS;
  if (kind_or_minus1 < 0 || kind_or_minus1 == MODEL_PROMPT)
    tables |= 1u << STORE_PROMPTS;
  int in_store = tables && s->st->ops->search && !s->closing && query[0];
  cJSON *early = sync_search_memory(s, query, kind_or_minus1, limit, !in_store);
  if (!in_store) {
    sync_answer(s, ticket, NULL, early);
    cJSON_Delete(early);
    return;
  }
  sync_search_req *r = util_calloc(1, sizeof *r);
  r->s = s;
  r->ticket = ticket;
  r->early = early;
  r->limit = limit;
  int rc = store_search(s->st, query, tables, limit > INT32_MAX ? INT32_MAX : (int)limit,
                        sync_on_search, r);
  if (rc < 0) {
    sync_answer(s, ticket, rc == STORE_ECLOSED ? "shelfd is shutting down"
                                               : "the search could not start", NULL);
    cJSON_Delete(early);
    free(r);
    return;
  }
  s->search = r;
  s->searching++;
}

void sync_cancel(sync_engine *s, uint64_t ticket) {
  if (s->search && s->search->ticket == ticket)
    sync_search_stop(s, NULL);
  /* A read under way is not stopped (it is one row); its answer is dropped. */
  list_node *n;
  list_for_each(n, &s->gets) {
    sync_getq *q = list_entry(n, sync_getq, link);
    if (q->ticket == ticket)
      q->cancelled = 1;
  }
}

cJSON *sync_status(sync_engine *s) {
  cJSON *st = store_describe(s->st);
  if (!st)
    st = cJSON_CreateObject();
  cJSON_DeleteItemFromObjectCaseSensitive(st, "ready");
  cJSON_AddBoolToObject(st, "ready", s->ready);
  if (s->refreshing || s->nactions > 0 || s->nauth > 0) {
    cJSON *loading = cJSON_AddObjectToObject(st, "loading");
    cJSON_AddBoolToObject(loading, "refresh", s->refreshing);
    cJSON_AddNumberToObject(loading, "actions", s->nactions);
    if (s->nauth > 0)
      cJSON_AddTrueToObject(loading, "auth");
  }
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

static void sync_push_status(sync_engine *s) {
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

static void sync_maybe_finish_close(sync_engine *s) {
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
