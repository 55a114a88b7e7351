/* sbcache_internal.h - what the files of the Supabase backend's local copy
 * share: the cache and a search. sbcache.c owns the cache (the file, the job
 * queue, its reads and writes, close); sbcache_search.c the searches (their
 * connection and worker, and starting, answering and cancelling them).
 * Private to those files: everyone else goes through sbcache.h.
 *
 * Memory: the sbcache is sbcache.c's (sc_free frees it). A search's user,
 * query, error and rows are the search's until its callback takes the rows;
 * sbcache_search.c frees the search. The functions below borrow their
 * arguments for the call. */
#ifndef SHELF_SBCACHE_INTERNAL_H
#define SHELF_SBCACHE_INTERNAL_H

#include <sqlite3.h>
#include <sys/types.h>
#include <uv.h>

#include "list.h"
#include "sbcache.h"

#define SC_FORMAT "shelf supabase cache 3"

typedef struct sc_job sc_job; /* a job of the queue: sbcache.c's */

typedef struct sc_search {
  uv_work_t work;
  sbcache *c;
  char *user, *query;
  unsigned tables;
  int limit;
  sbcache_search_cb cb;
  void *data;
  unsigned long after; /* the jobs queued before it (sbcache.queued) */
  int cancelled; /* under c->slock */
  int status;
  char *error;
  cJSON *rows;
  list_node link; /* in c->searches while it waits */
} sc_search;

struct sbcache {
  uv_loop_t *loop;
  char *path, *url;
  /* Touched by jobs only, one at a time. */
  sqlite3 *db;
  char *owner; /* the user whose rows the open file holds, or NULL */
  list_node jobs; /* sc_job.link: waiting, oldest first */
  sc_job *running;
  /* Jobs queued and finished, counted (they finish in order): a search
   * starts once the jobs queued before it finished, so it sees every row
   * the store was told of before it was asked (an event's row included). */
  unsigned long queued, done;
  /* Tables the copy is known (on the loop) to have filled: only searches of
   * those wait for the jobs before them. Another search reads the file as
   * it is at once, rather than wait behind a first fill that indexes the
   * whole library (minutes at 100k items) to learn it may answer: it is
   * most likely the server's to answer. A guess either way is safe: the
   * search itself checks the file. */
  unsigned filled;
  /* Bytes of rows queued to be written (a server's full read can outrun
   * the writer), and who waits for them to drop (one). */
  size_t backlog;
  size_t wake_below;
  void (*wake)(void *);
  void *wake_data;
  int indexing;      /* an SC_INDEX step is queued or running */
  int building;      /* rows wait for the index (sbcache_indexing): not a mere check */
  void (*on_indexing)(void *data, int indexing); /* sbcache_on_indexing */
  void *on_indexing_data;
  int index_holds;   /* sbcache_hold_index: the build waits while > 0 */
  int index_checked; /* a build left unfinished by an earlier run was looked for */
  int closing;
  void (*closed)(void *);
  void *closed_data;
  /* Searches: the running one's worker owns sdb, sdev and sino; slock
   * guards sdb's opening and closing against sqlite3_interrupt from the
   * loop, and the running search's `cancelled`. */
  list_node searches; /* sc_search.link: waiting, oldest first */
  sc_search *searching;
  sqlite3 *sdb;
  dev_t sdev;
  ino_t sino;
  uv_mutex_t slock;
};

/* The file's table for t: the web app's default name, whatever the server's. */
static inline const char *sc_table(store_table t) { return store_default_table_name(t); }

/* --- sbcache.c --------------------------------------------------------------- */

/* The value of meta `key` (caller frees), or NULL; *rc the SQLite code. */
char *sc_meta(sqlite3 *db, const char *key, int *rc);
/* Close both connections, free c, then call its closed callback: at close,
 * once no job or search is left. */
void sc_free(sbcache *c);

/* --- sbcache_search.c -------------------------------------------------------- */

/* Start the oldest waiting search, if none runs and the jobs queued before it
 * have run (called again as each job and search ends). */
void sc_search_next(sbcache *c);
/* At close: waiting searches are answered STORE_ECLOSED now, the running one
 * is interrupted (answered STORE_ECLOSED later). */
void sc_search_close(sbcache *c);

#endif
