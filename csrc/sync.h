/* sync.h - the sync engine: holds the library in memory, runs every create,
 * update and delete through the store, refreshes all kinds after each one
 * (coalesced: one refresh in flight, at most one pending), applies changes
 * made elsewhere as deltas, keeps temporary blocks in memory only, and tells
 * the editor through callbacks (wired to RPC by main.c). See doc/architecture.md,
 * Sync rules.
 *
 * Memory: the engine holds no content (sync_query_get reads it from the
 * store), only what the editor's mirror and the refresh need of each row,
 * and temporary blocks whole. It owns all it holds and frees itself in
 * sync_close; the store stays the caller's. Arguments are borrowed for the
 * call, values handed to the callbacks for the callback, and what
 * sync_status returns is the caller's to cJSON_Delete. */
#ifndef SHELF_SYNC_H
#define SHELF_SYNC_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <uv.h>

#include "model.h"
#include "store.h"

typedef struct sync_engine sync_engine;

/* Values passed to these callbacks are borrowed for the call. */
typedef struct {
  /* The mirror of `kind` changed: summaries upserted, ids deleted. `reset`
   * means "forget everything of this kind first" (a new helper's first load). */
  void (*changed)(void *data, model_kind kind, uint64_t version,
                  const cJSON *upserted, const cJSON *deleted);
  /* (During changed: sync_pushing_more says whether more pushes of the same
   * burst follow at once, e.g. a bulk change split into several.) */
  /* The action with this ticket finished: error is NULL or a message a person
   * can read; item is the stored item (may be NULL). */
  void (*done)(void *data, uint64_t ticket, const char *error,
               const cJSON *item);
  /* The status changed (see sync_status). */
  void (*status)(void *data, const cJSON *status);
  /* The query with this ticket (sync_query_*) has its answer: error is NULL
   * or a message a person can read; result its value (may be NULL). Unlike
   * done, an answer does not wait behind changed() pushes. */
  void (*answer)(void *data, uint64_t ticket, const char *error,
                 const cJSON *result);
  /* Optional: changed() with `upserted` packed (len bytes), to be written
   * as it is: the summaries as columns (cols.h), or, should they not make
   * columns, as one msgpack array. Set, it is called instead of
   * changed(): held rows are kept packed, so this costs little. */
  void (*changed_packed)(void *data, model_kind kind, uint64_t version,
                         const char *upserted, size_t len, const cJSON *deleted);
} sync_callbacks;

typedef struct {
  int max_attempts;     /* tries of an action on STORE_EUNAVAILABLE */
  double retry_base_ms; /* first retry delay; doubles each time, +-25 % jitter */
  /* How often (ms of activity) a refresh reads every row instead of what
   * changed, since SQL can change a row and keep its updated_at; 0: 10
   * minutes. */
  double full_check_ms;
} sync_options;

/* Create the engine over `st` (not owned: the caller closes the store after
 * sync_close). Starts the first full load and the store's watch. */
sync_engine *sync_new(uv_loop_t *loop, store *st, const sync_callbacks *cb,
               void *data, const sync_options *opts);
/* Stop timers, answer pending actions with an error, free the engine, then
 * call closed. The store must not be freed before closed runs, and is closed
 * in the same turn as this call (store_close right after, as shelfd does):
 * its watch still names the engine, and a change it delivered later would
 * reach freed memory. */
void sync_close(sync_engine *s, void (*closed)(void *), void *data);

/* Actions. Each answers through the `done` callback with its ticket, always
 * exactly once. `fields` are borrowed. */
void sync_create(sync_engine *s, uint64_t ticket, model_kind k, const cJSON *fields);
void sync_update(sync_engine *s, uint64_t ticket, model_kind k, const char *id,
                 const cJSON *fields);
void sync_delete(sync_engine *s, uint64_t ticket, model_kind k, const char *id);
/* Turn a temporary block into a real one. */
void sync_save_temp(sync_engine *s, uint64_t ticket, const char *id);
/* Take back a temporary block the editor kept while an earlier shelfd ran:
 * the same id, fields (with temporary = true) and times, if given (NULL:
 * now). Refused when a saved block has that id. */
void sync_restore_temp(sync_engine *s, uint64_t ticket, const char *id,
                       const cJSON *fields, const char *created_at,
                       const char *updated_at);
/* A full refresh; done when a refresh started after this call finished. */
void sync_refresh(sync_engine *s, uint64_t ticket);
/* Sign in / out, for backends with accounts (done: the user, or an error).
 * The backend then announces the change (STORE_EV_RESET) and the library is
 * loaded again for the new user, or emptied. */
void sync_login(sync_engine *s, uint64_t ticket, const char *email,
                const char *password);
void sync_logout(sync_engine *s, uint64_t ticket);

/* Queries: each answers through the `answer` callback with its ticket,
 * exactly once (unless cancelled), possibly inside the call.
 * get: the item with its content, read from the store (a temporary block
 * from memory), or an error when there is none or the store failed.
 * search: [{kind, id}, ...], at most `limit`, of items whose title, tags or
 * content contain `query` (kind_or_minus1: one kind, or -1 for all), asked
 * of the store when it can search (temporary blocks and folders, by name,
 * from memory, first); one at a time: a newer search answers the one under
 * way with an error and cancels it in the store. */
void sync_query_get(sync_engine *s, uint64_t ticket, model_kind k, const char *id);
void sync_query_search(sync_engine *s, uint64_t ticket, const char *query,
                       int kind_or_minus1, size_t limit);
/* The editor no longer wants the answer of query `ticket` (a newer search
 * replaced it): work not yet started may be dropped. */
void sync_cancel(sync_engine *s, uint64_t ticket);

/* Served from memory (the caller owns the result):
 * {backend, ready, loading:{refresh, actions}, error, counts, version, ...
 *  plus what the store describes}. */
cJSON *sync_status(sync_engine *s);

/* Introspection for tests. sync_held: the summary of a row as the editor
 * was sent it (no content; the caller's), or NULL when it is not held. */
cJSON *sync_held(sync_engine *s, model_kind k, const char *id);
int sync_refreshes_started(const sync_engine *s);
size_t sync_count(const sync_engine *s, model_kind k);
/* 1 while changed() runs for a push that is not the last of its burst. */
int sync_pushing_more(const sync_engine *s);

/* Flow control of changed() pushes. With a window of n > 0, at most n are
 * sent ahead of the editor's sync_taken() (it took one to apply); the rest
 * wait in order, and status() waits behind them. 0 (the default): no limit. */
void sync_set_window(sync_engine *s, int pushes);
void sync_taken(sync_engine *s);

#endif
