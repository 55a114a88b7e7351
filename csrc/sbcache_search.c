/* sbcache_search.c - searches of the Supabase backend's local copy
 * (sbcache_search in sbcache.h), with the SQLite library's index and query
 * (store_sqlite_search.h).
 *
 * Searches run on a read-only connection of their own, one at a time on the
 * thread pool beside the jobs, so a search never waits behind a write and a
 * cancel interrupts only it; that connection is opened again when the file
 * was made again (another inode at the path). A search checks in its read
 * transaction that the copy may answer (this format, project and user, each
 * table searched filled by a full read of the server).
 */
#include "sbcache_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_sqlite_search.h"
#include "util.h"

/* --- searches (worker thread) ------------------------------------------------- */

/* Close the search connection (the running search's worker, or the last
 * free). Under slock: the loop may be interrupting it. */
static void sc_search_disconnect(sbcache *c) {
  uv_mutex_lock(&c->slock);
  sqlite3 *db = c->sdb;
  c->sdb = NULL;
  uv_mutex_unlock(&c->slock);
  if (db)
    sqlite3_close(db);
}

/* The search connection to the file now at the path: 0, or SBCACHE_UNUSABLE
 * when there is no file (it is never made by a search). */
static int sc_search_connect(sc_search *s) {
  sbcache *c = s->c;
  struct stat st;
  if (stat(c->path, &st) < 0) {
    sc_search_disconnect(c);
    return SBCACHE_UNUSABLE;
  }
  /* Made again since (forgotten, damaged): the connection reads the old. */
  if (c->sdb && (st.st_dev != c->sdev || st.st_ino != c->sino))
    sc_search_disconnect(c);
  if (c->sdb)
    return 0;
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, NULL) !=
      SQLITE_OK) {
    s->error = util_printf("cannot open the local copy to search: %s",
                           db ? sqlite3_errmsg(db) : "no memory");
    sqlite3_close(db);
    return SBCACHE_UNUSABLE;
  }
  sqlite3_busy_timeout(db, 2000);
  /* The file opened may be newer than the stat: the next search sees the
   * difference and opens it again; the owner check below holds either way. */
  c->sdev = st.st_dev;
  c->sino = st.st_ino;
  uv_mutex_lock(&c->slock);
  c->sdb = db;
  uv_mutex_unlock(&c->slock);
  return 0;
}

/* 1 when the copy may answer: this format and project, s->user's, and each
 * searched table filled by a full read of the server. In the read
 * transaction, so the rows searched are the ones checked. */
static int sc_search_allowed(sc_search *s, sqlite3 *db, int *rc) {
  char *format = sc_meta(db, "format", rc);
  char *url = *rc == SQLITE_OK ? sc_meta(db, "url", rc) : NULL;
  char *user = *rc == SQLITE_OK ? sc_meta(db, "user", rc) : NULL;
  int ok = *rc == SQLITE_OK && format && strcmp(format, SC_FORMAT) == 0 && url &&
           strcmp(url, s->c->url) == 0 && user && strcmp(user, s->user) == 0;
  free(format);
  free(url);
  free(user);
  for (int t = 0; ok && t < STORE_NTABLES; t++) {
    if (!(s->tables & (1u << t)))
      continue;
    char *key = util_printf("filled:%s", sc_table((store_table)t));
    char *filled = sc_meta(db, key, rc);
    ok = *rc == SQLITE_OK && filled != NULL;
    free(filled);
    free(key);
  }
  return ok;
}

static void sc_search_work(uv_work_t *w) {
  sc_search *s = w->data;
  sbcache *c = s->c;
  int status = sc_search_connect(s);
  if (status != 0) {
    s->status = status;
    return;
  }
  sqlite3 *db = c->sdb;
  uv_mutex_lock(&c->slock);
  int cancelled = s->cancelled;
  uv_mutex_unlock(&c->slock);
  if (cancelled) {
    s->status = UV_ECANCELED;
    return;
  }
  int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
  if (rc == SQLITE_OK) {
    if (!sc_search_allowed(s, db, &rc)) {
      /* Unreadable meta: a file not made yet, or of an older format. */
      s->status = SBCACHE_UNUSABLE;
      rc = SQLITE_OK;
    } else {
      rc = sqsearch_run(db, s->query, s->tables, s->limit, &s->rows);
    }
  }
  if (rc != SQLITE_OK) {
    s->status = rc == SQLITE_INTERRUPT ? UV_ECANCELED : STORE_EBACKEND;
    s->error = util_printf("search in the local copy: %s",
                           rc == SQLITE_INTERRUPT ? "cancelled" : sqlite3_errmsg(db));
    cJSON_Delete(s->rows);
    s->rows = NULL;
  }
  if (!sqlite3_get_autocommit(db))
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
}

/* --- searches (loop thread) -------------------------------------------------- */

static void sc_search_free(sc_search *s) {
  free(s->user);
  free(s->query);
  free(s->error);
  cJSON_Delete(s->rows);
  free(s);
}

static void sc_search_after(uv_work_t *w, int status) {
  (void)status;
  sc_search *s = w->data;
  sbcache *c = s->c;
  c->searching = NULL;
  if (c->closing)
    s->cb(s->data, STORE_ECLOSED, "shelfd is shutting down", NULL);
  else if (s->cancelled)
    s->cb(s->data, UV_ECANCELED, "search: cancelled", NULL);
  else {
    if (s->status == 0)
      c->filled |= s->tables;
    else if (s->status == SBCACHE_UNUSABLE)
      c->filled &= ~s->tables;
    cJSON *rows = s->rows;
    s->rows = NULL;
    s->cb(s->data, s->status, s->error, rows);
  }
  sc_search_free(s);
  if (c->closing && !c->running && list_empty(&c->jobs))
    sc_free(c);
  else
    sc_search_next(c);
}

void sc_search_next(sbcache *c) {
  if (c->searching || c->closing || list_empty(&c->searches))
    return;
  sc_search *s = list_entry(c->searches.next, sc_search, link);
  if (c->done < s->after)
    return; /* sc_after calls again */
  list_remove(&s->link);
  c->searching = s;
  s->work.data = s;
  if (uv_queue_work(c->loop, &s->work, sc_search_work, sc_search_after) < 0) {
    c->searching = NULL;
    s->cb(s->data, STORE_EBACKEND, "the thread pool refused a search", NULL);
    sc_search_free(s);
  }
}

int sbcache_search(sbcache *c, const char *user, const char *query, unsigned tables, int limit,
                   sbcache_search_cb cb, void *data) {
  if (c->closing)
    return STORE_ECLOSED;
  if (!user || !*user || !query || limit < 0 || !cb)
    return STORE_EINVALID;
  sc_search *s = util_calloc(1, sizeof *s);
  s->c = c;
  s->user = util_strdup(user);
  s->query = util_strdup(query);
  s->tables = tables;
  s->limit = limit;
  s->cb = cb;
  s->data = data;
  s->after = (tables & ~c->filled) ? 0 : c->queued;
  list_push_back(&c->searches, &s->link);
  sc_search_next(c);
  return 0;
}

int sbcache_search_cancel(sbcache *c, sbcache_search_cb cb, void *data) {
  sc_search *s = c->searching;
  if (s && s->cb == cb && s->data == data) {
    uv_mutex_lock(&c->slock);
    if (!s->cancelled) {
      s->cancelled = 1;
      if (c->sdb)
        sqlite3_interrupt(c->sdb);
    }
    uv_mutex_unlock(&c->slock);
    return 0;
  }
  list_node *n;
  list_for_each(n, &c->searches) {
    sc_search *w = list_entry(n, sc_search, link);
    if (w->cb == cb && w->data == data) {
      list_remove(&w->link);
      w->cb(w->data, UV_ECANCELED, "search: cancelled", NULL);
      sc_search_free(w);
      return 0;
    }
  }
  return UV_ENOENT;
}

void sc_search_close(sbcache *c) {
  list_node *n;
  while ((n = list_pop_front(&c->searches)) != NULL) {
    sc_search *s = list_entry(n, sc_search, link);
    s->cb(s->data, STORE_ECLOSED, "shelfd is shutting down", NULL);
    sc_search_free(s);
  }
  if (c->searching) {
    uv_mutex_lock(&c->slock);
    if (c->sdb)
      sqlite3_interrupt(c->sdb);
    uv_mutex_unlock(&c->slock);
  }
}
