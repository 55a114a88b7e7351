/* store_sqlite_internal.h - what the files of the SQLite backend share: the
 * store, its job queue and its columns. store_sqlite.c owns the store (open,
 * close, the queue, the writes and whole reads); store_sqlite_log.c the
 * change log (the folder watch and the reads of shelf_changes);
 * store_sqlite_delta.c the incremental refresh's reads (stamps, since,
 * count_until). Private to those files: everyone else goes through store.h.
 *
 * Memory: the sq_store and its jobs are store_sqlite.c's. A job's id, arg,
 * error and rows are the job's until sq_after hands the rows on; the
 * functions below borrow their arguments for the call. */
#ifndef SHELF_STORE_SQLITE_INTERNAL_H
#define SHELF_STORE_SQLITE_INTERNAL_H

#include <sqlite3.h>
#include <stdint.h>
#include <uv.h>

#include "list.h"
#include "store.h"
#include "store_sqlite_search.h"

#define SQ_MAX_COLS 64
/* Rows per part of a read of every row's summary (STORE_PAGE): a part's rows
 * are a few MB of cJSON, and the engine shows them before the next is read. */
#define SQ_PAGE_ROWS 2000

typedef enum { COL_TEXT, COL_JSON, COL_BOOL, COL_INT, COL_REAL } sq_coltype;

typedef struct {
  int n;
  char *name[SQ_MAX_COLS];
  sq_coltype type[SQ_MAX_COLS];
} sq_columns;

typedef enum {
  JOB_INSERT, JOB_UPDATE, JOB_REMOVE, JOB_STAMPS, JOB_FETCH, JOB_FETCH_SUMMARIES, JOB_PAGE, JOB_SINCE,
  JOB_COUNT, JOB_CHANGES,
  JOB_INDEX
} sq_op;

typedef struct sq_store sq_store;

typedef struct sq_job {
  uv_work_t work;
  sq_store *sq;
  sq_op op;
  store_table t;
  char *id;
  cJSON *arg;
  store_done_cb cb;
  void *data;
  int status;
  char *error;
  cJSON *rows;
  int64_t page;   /* JOB_PAGE: the last rowid the part before read */
  list_node link; /* in sq->jobs while it waits */
} sq_job;

struct sq_store {
  store base;
  uv_loop_t *loop;
  sqlite3 *db;
  char *path, *dir, *base_name;
  sq_columns cols[STORE_NTABLES];
  list_node jobs; /* sq_job.link: waiting to run, oldest first */
  sq_job *running;
  int changes_queued;
  int64_t last_seq;
  uv_fs_event_t watcher;
  uv_timer_t settle;  /* reads the log shortly after a burst of fs events */
  int trailing;       /* the reads done since the last fs event (sq_settle_ms) */
  int watching;       /* handles open: watcher and settle timer */
  store_event_cb watch_cb;
  void *watch_data;
  store_defer defer;   /* every completion and change batch goes through it */
  sqsearch *search;    /* NULL once closed */
  int index_steps;     /* batches of the search index built by this process */
  int closing;
  store_closed_cb closed;
  void *closed_data;
};

static inline sq_store *sq_of(store *st) { return (sq_store *)st; }

/* --- store_sqlite.c ---------------------------------------------------------- */

/* The row at the statement's cursor as a cJSON object: its first ncols
 * columns (SELECT *). */
cJSON *sq_row(sqlite3_stmt *st, const sq_columns *c, int ncols);
/* The rows of table t: the one with `id`, those in the JSON array `ids`, or
 * all (both NULL); with `lean`, content replaced by its size. With `page`
 * (and neither id nor ids): at most SQ_PAGE_ROWS of them, those past rowid
 * *page, which is set to the last one read. NULL and *rc_out set on an
 * error. On the worker thread. Caller frees. */
cJSON *sq_select(sq_store *sq, store_table t, const char *id, const cJSON *ids, int lean,
                 int64_t *page, int *rc_out);
/* Set j's status and message for a failed statement; returns the status. */
int sq_fail(sq_job *j, int rc, store_table t);
/* Queue a job (FIFO, one at a time): 0, or STORE_ECLOSED while closing. */
int sq_enqueue(sq_store *sq, sq_op op, store_table t, const char *id, const cJSON *arg,
               store_done_cb cb, void *data);

/* --- store_sqlite_log.c ------------------------------------------------------ */

/* Cut the change log back to its newest rows (at open, and on a worker). */
int sq_prune_log(sqlite3 *db);
/* JOB_CHANGES on the worker thread: what changed past sq->last_seq. */
void sq_changes_job(sq_job *j);
/* A JOB_CHANGES answer, in its turn (a store_done_cb; data is the store). */
void sq_deliver_changes(void *data, int status, const char *error, cJSON *rows);
/* store_ops.watch: the folder watch and its settle timer (closed by sq_close). */
int sq_watch(store *st, store_event_cb cb, void *data);

/* --- store_sqlite_delta.c ---------------------------------------------------- */

/* shelf_stamp_us(updated_at), made an SQL function at open. */
void sq_stamp_us_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv);
/* JOB_STAMPS, and JOB_SINCE or JOB_COUNT, on the worker thread. */
void sq_stamps_job(sq_job *j);
void sq_since_job(sq_job *j);
/* store_ops.stamps, .since and .count_until. */
int sq_stamps(store *st, store_table t, store_done_cb cb, void *data);
int sq_since(store *st, store_table t, const char *stamp, const cJSON *known,
             store_done_cb cb, void *data);
int sq_count_until(store *st, store_table t, const char *stamp, store_done_cb cb, void *data);

#endif
