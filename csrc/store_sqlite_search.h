/* store_sqlite_search.h - search of a SQLite library: FTS5 trigram indexes over
 * context_blocks and prompts, their triggers and first build, and the queries
 * (on read-only connections of their own, one a table, so a long write never
 * holds one).
 * Used by store_sqlite.c; see doc/shelf.txt, Filter, for what a query matches.
 * The schema and the query also serve any SQLite file laid out the same way
 * (tables context_blocks and prompts with id, title, [description,] content
 * and tags, and a shelf_meta(key, value) table; a generated column must be
 * named by each UPDATE that changes it, as SQLite's UPDATE OF never fires for
 * a generated column):
 * the Supabase backend's local copy (sbcache.c) is one.
 *
 * Memory: a sqsearch is the caller's until sqsearch_close, which frees it.
 * Arguments are borrowed for the call. Answers go through the caller's
 * store_defer (store.h): rows are the callback's, as for any store call. */
#ifndef SHELF_SQLITE_SEARCH_H
#define SHELF_SQLITE_SEARCH_H

#include <sqlite3.h>
#include <uv.h>

#include "store.h"

/* The most hits one query returns, whatever the limit asked. */
#define SQSEARCH_MAX_LIMIT 100000

/* Make the indexes and their triggers if missing, on the write connection at
 * open. Cheap: no row is read. A library that had rows before gets empty
 * indexes marked "to build" (sqsearch_build_step). 0, or an SQLite code
 * with *err set (sqlite3_free it). */
int sqsearch_schema(sqlite3 *db, char **err);

/* BEGIN IMMEDIATE on the write connection, then bring its cached schema up
 * to date: every write that may touch an index (a row written, deleted, a
 * build step) starts with it. FTS5 connects an index while a statement that
 * writes to it is prepared, and reads its own tables then; when another
 * program changed the schema since this connection last read it, that read
 * resets the schema under the statement being prepared, which fails with
 * "no such table" (SQLITE_SCHEMA). Read first under the write lock, the
 * schema is current and nobody changes it until COMMIT. 0, or an SQLite code
 * with sqlite3_errmsg (and *err when err is not NULL: sqlite3_free it)
 * saying why: the caller then ROLLBACKs (harmless when BEGIN failed). */
int sqsearch_begin_write(sqlite3 *db, char **err);

/* One bounded batch of the first build of an index, on a worker thread with
 * the write connection (its own transaction, so other writers interleave).
 * Returns 1 when more remains, 0 when every index is built, or < 0 (an SQLite
 * error: try again later). Safe with several processes building at once. */
int sqsearch_build_step(sqlite3 *db);

/* The query itself, on the calling thread, inside the caller's read
 * transaction (one snapshot: open one first): *rows as for sqsearch_query
 * (always set, the caller's; partial on an error). An SQLite code;
 * SQLITE_INTERRUPT after sqlite3_interrupt on db. */
int sqsearch_run(sqlite3 *db, const char *query, unsigned tables, int limit, cJSON **rows);

typedef struct sqsearch sqsearch;

/* Open the read-only connections to `path` (made and in WAL mode already):
 * one a searched table, whose parts of a query run at once. NULL and *err
 * (caller frees) on failure. */
sqsearch *sqsearch_open(uv_loop_t *loop, const char *path, store_defer *defer,
                        char **err);

/* Search `tables` (a mask of 1 << STORE_BLOCKS and 1 << STORE_PROMPTS) for
 * `query`; rows: [[table, id], ...] (table a store_table number), at most
 * `limit`, through `cb` later. One query runs at a time; the rest wait in
 * order. Returns < 0 (and never calls cb) on bad arguments or when closing. */
int sqsearch_query(sqsearch *s, const char *query, unsigned tables, int limit,
                   store_done_cb cb, void *data);

/* Drop the query started with (cb, data) if it waits, interrupt it if it
 * runs: its callback then runs with UV_ECANCELED. 0, or UV_ENOENT when no
 * such query is pending (it answered already). */
int sqsearch_cancel(sqsearch *s, store_done_cb cb, void *data);

/* Answer waiting queries with STORE_ECLOSED, interrupt the running one, and
 * once it has stopped close the connection, free s and call closed(data). */
void sqsearch_close(sqsearch *s, void (*closed)(void *), void *data);

#endif
