/* sync_internal.h - what the sync engine's files share: the engine's struct,
 * the store request each call carries, and the functions one file defines
 * for the others (sync.c: held state, pushes, events, status, life cycle;
 * sync_refresh.c; sync_action.c: writes; sync_query.c: get and search).
 * Only those files include it; the engine's API is sync.h.
 *
 * Memory: as in sync.h. A sync_req is freed by sync_req_end, an action by
 * sync_action_end (in its timer's close callback). */
#ifndef SHELF_SYNC_INTERNAL_H
#define SHELF_SYNC_INTERNAL_H

#include <stdint.h>

#include "list.h"
#include "map.h"
#include "row.h"
#include "sync.h"
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

typedef enum {
  REQ_STAMPS,
  REQ_SINCE,
  REQ_COUNT,
  REQ_DELTA, /* both at once (store_delta) */
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
  uint64_t since;      /* touch_seq when it was sent */
  sync_action *action;
  uint64_t ticket;     /* REQ_LOGIN, REQ_LOGOUT */
  sync_getq *get;      /* REQ_GET */
  uint32_t mark;       /* REQ_FETCH_ALL: the mark its rows get (row_entry.mark) */
  size_t nrows;        /* REQ_FETCH_ALL: rows its parts brought so far */
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
  /* A refresh owed when the first load finished (the server's full read
   * after a start from the local copy) waits until the editor took that
   * load's pushes, so the two do not share the CPU during the first draw;
   * shown as loading meanwhile. */
  int refresh_after_taken;
  /* Everything was forgotten (another user, or none) while this refresh
   * was under way: its answers are the gone user's and are dropped, and the
   * refresh the reset asked for runs when it ends. */
  int refresh_stale;
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
   * so an idle editor wakes no one. Such a check is owed (full_owed) and runs
   * quietly (refresh_quiet: not shown as loading) after a refresh of what
   * changed, which already brings every write that stamped its row: the
   * library is current at once, and no write waits for a full read. */
  int full_next, full_now, full_owed, refresh_quiet;
  int check_owed; /* the quiet check starts as soon as this refresh ended */
  uint64_t last_full_ms;
  uint64_t refresh_began_ms; /* uv_now when the refresh under way began (the log) */

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

/* Functions one file of the engine defines for the others, by file; each
 * is described where it is defined. */

/* sync.c: held state */
void sync_note_temp(sync_engine *s, const char *id);
void sync_note_delete(sync_engine *s, model_kind k, const char *id);
const char *sync_entry_stamp(const void *e);
void sync_doubt_create(sync_engine *s, store_table t, const char *id);
void sync_hold_row(sync_engine *s, store_table t, const cJSON *rec);
void sync_apply_upsert(sync_engine *s, store_table t, cJSON *rec);
void sync_touch(sync_engine *s, store_table t, const char *id);
void sync_forget_touches(sync_engine *s);
int sync_touched_since(const sync_engine *s, store_table t, const char *id, uint64_t since);
/* True when any row of t changed by an event or an action after `since`. */
int sync_touched_any_since(const sync_engine *s, store_table t, uint64_t since);
void sync_apply_delete(sync_engine *s, store_table t, const char *id);
int sync_find(sync_engine *s, model_kind k, const char *id, store_table *t);
/* sync.c: pushes, store requests, errors, status, life cycle */
void sync_tell_done(sync_engine *s, uint64_t ticket, const char *error, const cJSON *item);
void sync_flush(sync_engine *s);
sync_req *sync_req_new(sync_engine *s, sync_req_type type, store_table t);
int sync_req_end(sync_req *r);
double sync_backoff_ms(const sync_engine *s, int failures);
void sync_set_error(sync_engine *s, const char *msg);
void sync_push_status(sync_engine *s);
void sync_maybe_finish_close(sync_engine *s);

/* sync_refresh.c */
int sync_fetch_rows(sync_engine *s, store_table t, const cJSON *ids, sync_req *r);
void sync_refresh_start(sync_engine *s);
void sync_answer_tickets(sync_engine *s, list_node *tickets, const char *error);

/* sync_action.c */
void sync_redelete(sync_engine *s, store_table t, const char *id, const cJSON *rec);
void sync_action_end(sync_action *a, const char *error, const cJSON *item);

/* sync_query.c */
void sync_search_stop(sync_engine *s, const char *why);

#endif
