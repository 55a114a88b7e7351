/* sbcache.h - the Supabase backend's local copy of the signed-in user's rows:
 * one SQLite file (mode 0600 in a folder of mode 0700) that holds the rows
 * exactly as PostgREST sent them, with the project URL and the user they
 * belong to. The Supabase store answers the first load of a session from it
 * and keeps it up to date with every row the server confirmed or sent.
 *
 * Every call queues a job and returns at once; the jobs run one at a time,
 * in order, on libuv's thread pool. Callbacks run later on the loop thread,
 * never inside the call. A file that cannot be read as a cache (damaged,
 * another program's, another project's) is deleted and made again, with a
 * log line; a load then answers "nothing kept".
 *
 * It also answers searches (sbcache_search) as the SQLite library does, with
 * the same index and query (store_sqlite_search.h).
 *
 * Memory: the cache copies every argument. Rows handed to a callback are the
 * callback's to cJSON_Delete. The cache is the caller's until sbcache_close,
 * which frees it. */
#ifndef SHELF_SBCACHE_H
#define SHELF_SBCACHE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <uv.h>

#include "store.h"

typedef struct sbcache sbcache;

/* rows: a cJSON array of the rows kept, or NULL when nothing is kept for that
 * user (another user's file, no file, a damaged one). */
typedef void (*sbcache_rows_cb)(void *data, cJSON *rows);

/* No I/O here: the file is opened (or made) by the first job. */
sbcache *sbcache_new(uv_loop_t *loop, const char *path, const char *url);

/* Every row of table t kept for `user`, or NULL. */
void sbcache_load(sbcache *c, const char *user, store_table t, sbcache_rows_cb cb, void *data);
/* The same rows without `content`, with its size in bytes as the number
 * STORE_CONTENT_SIZE instead (rows without content as they are): what a
 * holder of no content needs, read without reading the content. In id
 * order, at most `limit` (0: all) of those whose id comes after `after`
 * (NULL: from the first): a big table is read in parts, each after the
 * last id of the one before. */
void sbcache_load_summaries(sbcache *c, const char *user, store_table t, const char *after,
                            int limit, sbcache_rows_cb cb, void *data);
/* The kept rows of t whose ids are in `ids` (an array of strings), or NULL
 * when the file is not `user`'s. Rows it does not have are left out. */
void sbcache_get(sbcache *c, const char *user, store_table t, const cJSON *ids,
                 sbcache_rows_cb cb, void *data);

/* Writes. `json` is a JSON array of rows as the server sent them; rows
 * whose user_id is not `user` are left out. A file that holds another
 * user's rows is emptied first. */
/* Insert or replace these rows of t. */
void sbcache_put(sbcache *c, const char *user, store_table t, const char *json, size_t len);
/* Table t holds exactly these rows (the answer to a fetch of every row). */
void sbcache_replace(sbcache *c, const char *user, store_table t, const char *json,
                     size_t len);
/* Table t holds only the rows whose ids are in `ids_json` (a JSON array of
 * id strings): the end of a full fetch that came in pages (each page put). */
void sbcache_retain(sbcache *c, const char *user, store_table t, const char *ids_json,
                    size_t len);
/* Forget row `id` of t. */
void sbcache_delete(sbcache *c, const char *user, store_table t, const char *id);
/* Delete the file (sign-out, another user, the session ended). */
void sbcache_forget(sbcache *c);

/* Search: a positive status, the copy cannot answer (no file, another
 * user's or project's, or a searched table never filled by a full read of
 * the server with sbcache_replace): ask the server instead. */
#define SBCACHE_UNUSABLE 1
/* status 0 and rows [[table, id], ...] (the callback's to cJSON_Delete), or
 * SBCACHE_UNUSABLE, UV_ECANCELED, STORE_ECLOSED or STORE_EBACKEND with error
 * (borrowed for the call) and rows NULL. */
typedef void (*sbcache_search_cb)(void *data, int status, const char *error, cJSON *rows);

/* Search the tables in mask `tables` (1 << STORE_BLOCKS, 1 << STORE_PROMPTS)
 * of `user`'s copy for `query` as the SQLite library does (doc/shelf.txt,
 * shelf-search): at most `limit` hits, through cb later. Searches run one at
 * a time on a read-only connection of their own, beside the jobs. Once the
 * copy has answered for (or filled) the tables searched, a search starts
 * after the jobs asked before it have run (so it sees every write asked
 * before it), never behind a later one; before that it reads the file as it
 * is at once (so it never waits behind a first fill). < 0 (and cb never
 * called) on bad arguments or closing. */
int sbcache_search(sbcache *c, const char *user, const char *query, unsigned tables, int limit,
                   sbcache_search_cb cb, void *data);
/* Drop the search started with (cb, data) if it waits (cb runs inside this
 * call), interrupt it if it runs (cb later): UV_ECANCELED either way. 0, or
 * UV_ENOENT when no such search is pending. */
int sbcache_search_cancel(sbcache *c, sbcache_search_cb cb, void *data);

/* Reads that wait answer NULL and searches STORE_ECLOSED (inside this call),
 * a running search is interrupted (STORE_ECLOSED later), writes that wait
 * still run; then the file is closed, c is freed, and closed(data) runs. */
void sbcache_close(sbcache *c, void (*closed)(void *), void *data);

/* Bytes of rows given to put and replace not yet written. A read of the
 * server can outrun the writer: the reader waits while this is high, so
 * what waits to be written stays bounded. */
size_t sbcache_backlog(const sbcache *c);
/* Call wake(data) once, on the loop, when a write finishes and the backlog
 * is at most `bytes` (not after close began), before the next job starts.
 * One waiter: a second call replaces the first. wake must not close c. */
void sbcache_when_below(sbcache *c, size_t bytes, void (*wake)(void *), void *data);

/* hold 1: the search index's build (after big writes) waits, as the writes
 * of a full read of the server should not; hold 0 ends one such hold. */
void sbcache_hold_index(sbcache *c, int hold);

/* 1 while rows wait for the search index's build (after big writes, such
 * as a first load, or a build an earlier run left unfinished): searches read
 * the rows not yet indexed meanwhile. */
int sbcache_indexing(const sbcache *c);
/* Call cb(data, indexing), on the loop, each time that changes (not after
 * close began). cb must not close c. */
void sbcache_on_indexing(sbcache *c, void (*cb)(void *data, int indexing), void *data);

/* Jobs and searches queued or running: a read asked now waits for the
 * jobs (the store reads from the server instead when it must not wait). */
int sbcache_busy(const sbcache *c);

#endif
