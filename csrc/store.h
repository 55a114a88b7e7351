/* store.h - the one interface both backends (sqlite, supabase) implement.
 *
 * The sync engine talks to a backend only through these calls. Every call is
 * asynchronous: it queues work and returns at once; the callback runs later on
 * the loop thread. Following libuv, a call that returns an error (< 0) never
 * calls its callback. Records are cJSON objects keyed by column name, with
 * every column the row has (unknown extra columns included), `tags` as an array
 * of strings, timestamps as ISO 8601 strings and ids as UUID strings.
 *
 * Memory: a store is the caller's until its close, which frees it. Every
 * argument is borrowed for the call; rows handed to a store_done_cb on
 * success are the callback's to cJSON_Delete, while error texts and event
 * values are the store's, valid during the callback only.
 */
#ifndef SHELF_STORE_H
#define SHELF_STORE_H

#include <cjson/cJSON.h>
#include <uv.h>

#include "list.h"

/* The four tables of the web app's schema (doc/architecture.md, Backends). */
typedef enum {
  STORE_BLOCKS,           /* context_blocks */
  STORE_PROMPTS,          /* prompts */
  STORE_DATASET_PROJECTS, /* dataset_projects: folders of context blocks */
  STORE_PROMPT_PROJECTS,  /* prompt_projects: folders of prompts */
  STORE_NTABLES
} store_table;

/* Default table names; a backend may be configured with others. */
const char *store_default_table_name(store_table t);

/* The key of a content's size in bytes in rows without content. */
#define STORE_CONTENT_SIZE "content_size"

/* Error codes (negative), beside negative libuv codes for I/O errors. */
enum {
  STORE_ENOTFOUND = -10001, /* no row with that id (or not visible to the user) */
  STORE_ECONFLICT = -10002, /* unique or foreign key violation */
  STORE_EINVALID = -10003,  /* a field the table does not have, or a bad value */
  STORE_EBACKEND = -10004,  /* the backend failed (SQL error, HTTP error, ...) */
  STORE_ECLOSED = -10005,   /* the store is closing; the request was dropped */
  STORE_EUNAVAILABLE = -10006, /* the backend could not be reached or is
                                  overloaded; the same request may succeed
                                  later (the sync engine retries it) */
};

typedef struct store store;

/* Completion of a request.
 * status: 0 on success, < 0 on failure; then `error` is a message a person can
 *   read (owned by the store, valid only during the callback) and rows is NULL.
 *   STORE_PAGE: part of the rows of a fetch_summaries of every row; the same
 *   callback runs again, once or more, and always ends with 0 (the last
 *   part) or an error, so its `data` lives until then. The parts come in
 *   order and need not be one snapshot: a write between two parts is
 *   reported as a change (watch), like any other.
 * rows: a cJSON array on success; the callback owns it (cJSON_Delete it).
 *   insert/update: [the stored row]; delete: [] ; stamps: [[id, updated_at], ...];
 *   fetch, since: [row, ...]; count_until: [n]; delta: [n, row, ...]. */
typedef void (*store_done_cb)(void *data, int status, const char *error,
                              cJSON *rows);
#define STORE_PAGE 1

/* Something changed in the backend without this process asking. */
typedef enum {
  STORE_EV_UPSERT, /* row inserted or updated: `id`, and `record` if known */
  STORE_EV_DELETE, /* row deleted: `id` */
  STORE_EV_RESYNC, /* events may have been lost: do a full refresh */
  STORE_EV_STATE,  /* the backend's connection/auth state changed: see info */
  STORE_EV_RESET,  /* what is visible changed wholesale (another user signed
                      in, or the session ended): forget all and load again */
} store_event_type;

typedef struct {
  store_event_type type;
  store_table table;
  const char *id;       /* UPSERT, DELETE */
  const cJSON *record;  /* UPSERT: the whole row if the backend had it, else
                           NULL (then fetch it); borrowed for the call only.
                           `content` may be left out for its size, as
                           fetch_summaries does. */
  int more;             /* 1: more events of the same batch follow at once
                           (the engine tells the editor once, after the last) */
} store_event;

typedef void (*store_event_cb)(void *data, const store_event *ev);

/* Closing is asynchronous too: `closed` runs once every handle is released. */
typedef void (*store_closed_cb)(void *data);

struct store_ops {
  const char *name; /* "sqlite", "supabase" */

  /* Insert a row. `record` (borrowed) must hold at least `id`; columns not
   * given take the table's defaults; created_at/updated_at are set here.
   * Idempotent: when a row with that id exists already (an earlier send of
   * the same insert landed but its answer was lost), nothing is written and
   * the stored row is the answer, whatever its values. */
  int (*insert)(store *st, store_table t, const cJSON *record,
                store_done_cb cb, void *data);
  /* Update only the columns in `fields` (borrowed) of row `id`; updated_at
   * is set here. Other columns, extra ones included, are left as they are. */
  int (*update)(store *st, store_table t, const char *id, const cJSON *fields,
                store_done_cb cb, void *data);
  /* Delete row `id`; rows that reference it go with it (cascade). */
  int (*remove)(store *st, store_table t, const char *id, store_done_cb cb,
                void *data);
  /* [[id, updated_at], ...] of every row: what a refresh compares when the
   * cheap check of an incremental one fails (or the store has no since). */
  int (*stamps)(store *st, store_table t, store_done_cb cb, void *data);
  /* Full rows: those whose ids are in `ids` (borrowed array of strings), or
   * all rows when ids is NULL. */
  int (*fetch)(store *st, store_table t, const cJSON *ids, store_done_cb cb,
               void *data);
  /* Start watching for changes made elsewhere; events go to `cb` on the loop
   * thread. Called once, after open. */
  int (*watch)(store *st, store_event_cb cb, void *data);
  /* A small object describing the backend for `status` (path, user, realtime
   * state, ...). The caller owns the result. */
  cJSON *(*describe)(store *st);
  /* Drop queued work (their callbacks run with STORE_ECLOSED), release every
   * handle, free the store, then call `closed`. */
  void (*close)(store *st, store_closed_cb closed, void *data);

  /* Backends with accounts (NULL elsewhere). login: rows = [{id, email}];
   * the backend then emits STORE_EV_RESET. logout ends the session. */
  int (*login)(store *st, const char *email, const char *password,
               store_done_cb cb, void *data);
  int (*logout)(store *st, store_done_cb cb, void *data);

  /* Search (NULL: the sync engine searches what it holds). Rows of
   * `tables` (a mask: 1 << STORE_BLOCKS, 1 << STORE_PROMPTS) whose title,
   * description, tags or content contain `query` (a
   * case-insensitive substring, the whole query as one string; what 1-2
   * character queries match is the backend's choice, see doc/shelf.txt).
   * rows: [[table, id], ...], table a store_table number, at most `limit`.
   * The backend orders them as it likes. */
  int (*search)(store *st, const char *query, unsigned tables, int limit,
                store_done_cb cb, void *data);
  /* Stop the search started with (cb, data): its callback runs with
   * UV_ECANCELED (or its answer if it came first). 0, or UV_ENOENT when no
   * such search is pending. */
  int (*search_cancel)(store *st, store_done_cb cb, void *data);
  /* Optional (at the end, so positional initialisers stay valid): the rows fetch
   * gives, without `content` but with its size in bytes as the number
   * STORE_CONTENT_SIZE, for what keeps no content (the sync engine). Every
   * row (ids NULL) may come in parts (STORE_PAGE), so that a big table is
   * never whole in memory and the first part is shown at once. NULL
   * where the backend cannot tell a size without sending the content
   * (PostgREST): then fetch is used and the content dropped. */
  int (*fetch_summaries)(store *st, store_table t, const cJSON *ids,
                         store_done_cb cb, void *data);

  /* The two halves of an incremental refresh (both NULL: every refresh
   * compares stamps). `stamp` is an updated_at this store returned
   * (util_stamp_us reads it; STORE_EINVALID otherwise), and stamps compare
   * as times, as the backend's own column does.
   * since: full rows whose updated_at is later than `stamp`, and, when
   * `known` (borrowed array of id strings) is not NULL, also those whose
   * updated_at equals it and whose id is not in `known`.
   * count_until: [n], n the number of rows whose updated_at is at or before
   * `stamp` (rows without one are not counted). */
  int (*since)(store *st, store_table t, const char *stamp, const cJSON *known,
               store_done_cb cb, void *data);
  int (*count_until)(store *st, store_table t, const char *stamp, store_done_cb cb,
                     void *data);
  /* Optional (NULL: since and count_until are asked apart): both at once,
   * [n, row, ...], n as count_until answers and the rows as since does, for
   * a backend where that costs fewer requests than the two. n is null when
   * the backend left the count out because its events (STORE_EV_*) have
   * told every row deleted, or come at or before `stamp`, since it last
   * counted t. */
  int (*delta)(store *st, store_table t, const char *stamp, const cJSON *known,
               store_done_cb cb, void *data);

  /* Optional (NULL: fetch of that one id): row `id` of t with its content,
   * to show or insert it. rows: [row], or [] when there is none. `stamp` is
   * the updated_at the caller holds for it (or NULL); a backend with a local
   * copy answers from the copy when its row has that stamp, and asks the
   * server otherwise (the copy may have missed a change the caller has). */
  int (*read)(store *st, store_table t, const char *id, const char *stamp,
              store_done_cb cb, void *data);
};

struct store {
  const struct store_ops *ops;
  /* While a callback runs with STORE_EUNAVAILABLE: how long the server
   * asked to be left alone (an HTTP Retry-After), or 0. A retry should not
   * come sooner. */
  unsigned retry_after_ms;
};

/* --- deferred completions (for backends) -------------------------------------
 * The one way a backend calls back: completions are queued and run from the
 * loop (a uv_idle_t, active only while something is queued, so the loop does
 * not wait in poll meanwhile and does not spin when nothing is), never inside
 * the store call that started the request, nor inside close. They run in the
 * order queued; those queued while the queue runs wait for the next turn. */
typedef struct store_defer_item store_defer_item;

typedef struct {
  uv_idle_t idle;
  store *owner;             /* its retry_after_ms is set around each call */
  list_node items;           /* store_defer_item.link, oldest first */
  int closing;              /* 1: close once empty; 2: the handle is closing */
  void (*closed)(void *);
  void *closed_data;
} store_defer;

void store_defer_init(store_defer *q, uv_loop_t *loop, store *owner);
/* Queue cb(data, status, error, rows). error is copied; rows (may be NULL)
 * belong to the queue, then to cb on success (they are freed on failure).
 * retry_after_ms is what owner->retry_after_ms reads during the call. */
void store_defer_done(store_defer *q, store_done_cb cb, void *data, int status,
                      const char *error, cJSON *rows, unsigned retry_after_ms);
/* Run what is queued (and whatever that queues), close the handle, then call
 * closed(data). Nothing may be queued after closed ran. */
void store_defer_close(store_defer *q, void (*closed)(void *), void *data);

/* Convenience wrappers so callers read `store_insert(st, ...)`. */
#define store_insert(st, ...) ((st)->ops->insert((st), __VA_ARGS__))
#define store_update(st, ...) ((st)->ops->update((st), __VA_ARGS__))
#define store_remove(st, ...) ((st)->ops->remove((st), __VA_ARGS__))
#define store_stamps(st, ...) ((st)->ops->stamps((st), __VA_ARGS__))
#define store_fetch(st, ...) ((st)->ops->fetch((st), __VA_ARGS__))
#define store_search(st, ...) ((st)->ops->search((st), __VA_ARGS__))
#define store_since(st, ...) ((st)->ops->since((st), __VA_ARGS__))
#define store_count_until(st, ...) ((st)->ops->count_until((st), __VA_ARGS__))
#define store_delta(st, ...) ((st)->ops->delta((st), __VA_ARGS__))
#define store_search_cancel(st, ...) ((st)->ops->search_cancel((st), __VA_ARGS__))
#define store_watch(st, ...) ((st)->ops->watch((st), __VA_ARGS__))
#define store_describe(st) ((st)->ops->describe((st)))
#define store_close(st, ...) ((st)->ops->close((st), __VA_ARGS__))

/* The SQLite backend (store_sqlite.c). Opens or creates the database at
 * `path` (schema made on first start, WAL mode; search indexes made too, and
 * built on the thread pool for a library that had none). Returns NULL and sets *err
 * (caller frees) on failure. The store is freed by close. */
store *store_sqlite_open(uv_loop_t *loop, const char *path, char **err);

#endif
