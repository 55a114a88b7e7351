/* store_supabase_internal.h - what the files of the Supabase backend share
 * (store_supabase.c: requests, errors, the session's changes, life cycle;
 * store_supabase_read.c: reads of the server, every row a page at a time;
 * store_supabase_local.c: reads and searches answered by the local copy;
 * store_supabase_rt.c: the Realtime wiring). Private to those files.
 * Memory: an sb_req owns its strings, its gathered rows and its seen ids
 * (sb_req_free frees them); the sb_store owns everything it points to. */
#ifndef SHELF_STORE_SUPABASE_INTERNAL_H
#define SHELF_STORE_SUPABASE_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "auth.h"
#include "http.h"
#include "list.h"
#include "realtime.h"
#include "sbcache.h"
#include "store_supabase.h"

typedef enum {
  SB_INSERT,
  SB_UPDATE,
  SB_REMOVE,
  SB_STAMPS,
  SB_FETCH,
  SB_GET_ONE,
  SB_SEARCH,
  SB_SINCE,
  SB_COUNT,
  SB_NEWEST /* the newest stamps, with a count unless uncounted (sb_delta) */
} sb_op;

typedef struct sb_store sb_store;

#define SB_WRITTEN 8                  /* rows written kept for the next refresh */
#define SB_WRITTEN_MAX (64 * 1024)    /* bytes of content past which one is not */

/* One logical request; a fetch of many ids is several HTTP requests. */
typedef struct sb_req {
  sb_store *sb;
  sb_op op;
  store_table t;
  char *id;
  char *method;
  char *path_query; /* after /rest/v1/ */
  char *body;
  store_done_cb cb;
  void *data;
  int auth_retried;
  unsigned long session; /* sb->session when it was sent */
  long http_id;
  cJSON *acc;       /* SB_FETCH: rows gathered from the parts */
  int parts_left;   /* SB_FETCH: outstanding parts; shared by parts */
  struct sb_req *parent;
  /* A read in pages ordered by id (sb_read_pages: every row, the stamps, or
   * the rows changed since a mark, `filter`): rows per page (halved when a
   * page is too big to take, lowered to the server's cap on rows), the last
   * id so far, 1 to keep summaries only, and the ids seen (for the local
   * copy; NULL for rows changed since a mark). */
  int page_rows;
  char *after;
  char *filter;
  int summaries;
  cJSON *seen;
  int holds_index; /* a read of every row: the copy's index build waits (sbcache_hold_index) */
  /* A page: how many rows the server sent, the last one's id, before rows of
   * another user were dropped (the next page starts after it), and the
   * count of all rows it reported (Content-Range, first page; -1: none). */
  int sent_rows;
  char *sent_last;
  long long sent_total;
  int uncounted; /* SB_NEWEST: without count=exact (sb_delta) */
  list_node link; /* in sb->waiting or sb->inflight, or alone */
} sb_req;

struct sb_store {
  store base;
  uv_loop_t *loop;
  http_client *http;
  rt_client *rt;
  auth_session *auth;
  char *url, *anon_key, *ca_file;
  char *authority; /* host[:port] of url, for messages */
  char *tables[STORE_NTABLES];
  int realtime_on;
  unsigned heartbeat_ms, heartbeat_reply_ms; /* 0: the Realtime client's defaults */

  list_node waiting;  /* sb_req.link: requests waiting for a fresh token */
  list_node inflight; /* sb_req.link: requests sent, for close */
  list_node searches; /* sb_req.link: searches (parents of one part per table) */
  /* Bumped when the session ends or another user's begins: an answer to a
   * request sent for an older session is dropped, never taken. */
  unsigned long session;

  store_event_cb watch_cb;
  void *watch_data;
  char *rt_state;
  char *rt_message;
  /* Bumped at every change of Realtime's state: a count taken at the same
   * epoch, Realtime joined all along, has seen every event since (sb_delta). */
  unsigned long rt_epoch;
  struct {
    unsigned long epoch; /* 0: never counted */
    uint64_t ms;         /* uv_now when the count was asked */
  } counted[STORE_NTABLES];

  /* The local copy of the user's rows (sbcache.h), or NULL. The first load
   * of each table in a session saved before is answered from it (cache_first),
   * and the server's answer then comes as events (cache_stale: a full refresh
   * is still owed, asked for once Realtime joined or cannot). */
  sbcache *cache;
  int cache_first[STORE_NTABLES];
  int cache_stale;
  list_node cache_loads; /* sb_cache_load.link */
  list_node pagers;      /* sb_req.link: reads of every row under way (sb_fetch_all) */
  /* sb_req.link: their next pages, held while the copy's writer is more than
   * cache_backlog_max bytes behind (sb_fetch_page). */
  list_node cache_behind;
  size_t cache_backlog_max;
  list_node cache_searches; /* sb_cache_search.link: searches asked of the copy */

  /* The rows this store last wrote (an insert's or update's answer) or read
   * one at a time, with their content: a refresh's delta that finds one of
   * them changed at the same stamp takes it from here instead of reading it
   * again (sb_delta). At most SB_WRITTEN rows, each of at most
   * SB_WRITTEN_MAX bytes of content. */
  struct {
    store_table t;
    char *id;
    long long us; /* its updated_at, in microseconds */
    cJSON *row;
  } written[SB_WRITTEN];
  int written_next;

  int rt_closing;  /* a Realtime client is shutting down */
  store_defer defer; /* every completion goes through it (store.h) */
  int closing;
  store_closed_cb closed;
  void *closed_data;
  int pending_closes;
};

/* A first load answered from the local copy. */
typedef struct {
  sb_store *sb;
  store_table t;
  store_done_cb cb; /* NULL once the store closed */
  void *data;
  unsigned long session;
  list_node link; /* in sb->cache_loads */
  int summaries;  /* a first load of summaries (no content) */
  char *stamp;    /* a read (sb_read): the stamp its row must have */
  char *id;       /* a read: the row's id */
  char *after;    /* a first load of summaries: the last id of the part
                     before (NULL before the first) */
  int nrows;      /* a first load: rows its parts brought so far */
} sb_cache_load;

/* A search asked of the local copy; the server's when the copy cannot
 * answer. */
typedef struct {
  sb_store *sb;
  store_done_cb cb; /* NULL once cancelled or closed */
  void *data;
  char *query;
  unsigned tables;
  int limit;
  unsigned long session;
  list_node link; /* in sb->cache_searches */
} sb_cache_search;

static inline sb_store *sb_of(store *st) { return (sb_store *)st; }

/* store_supabase.c */
void sb_emit(sb_store *sb, store_event_type type, store_table t, const char *id,
             const cJSON *record);
/* Replace the string in *slot with a copy of value (NULL: none). */
void sb_set(char **slot, const char *value);
void sb_req_free(sb_req *r);
/* A request for path_query (after /rest/v1/; taken, as is body); not sent. */
sb_req *sb_req_new(sb_store *sb, sb_op op, store_table t, const char *method,
                   char *path_query, char *body, store_done_cb cb, void *data);
/* Send r (it waits while the token is being refreshed); its answer
 * finishes it. */
void sb_send(sb_req *r);
/* "&user_id=eq.<id>" for the signed-in user, or "" (caller frees). */
char *sb_filter_user(sb_store *sb);
/* One part of the store's close is done. */
void sb_part_closed(void *data);

/* store_supabase_read.c */
void sb_pagers_note(sb_store *sb, store_table t, const char *id);
void sb_fetch_page(sb_req *p);
void sb_fetch_all(sb_store *sb, store_table t, int summaries, store_done_cb cb, void *data);
/* Read table t in pages: op SB_FETCH (every row), SB_STAMPS (every id and
 * updated_at, answered as [id, updated_at] pairs) or SB_SINCE (the rows
 * `filter` picks; not freed). The local copy keeps exactly the rows a read
 * of every row or stamp saw. */
void sb_read_pages(sb_store *sb, sb_op op, store_table t, const char *filter, int summaries,
                   store_done_cb cb, void *data);
void sb_page_done(sb_req *r, int status, const char *error, cJSON *rows);
int sb_fetch(store *st, store_table t, const cJSON *ids, store_done_cb cb, void *data);
int sb_fetch_summaries(store *st, store_table t, const cJSON *ids, store_done_cb cb,
                       void *data);
int sb_stamps(store *st, store_table t, store_done_cb cb, void *data);
int sb_since(store *st, store_table t, const char *stamp, const cJSON *known,
             store_done_cb cb, void *data);
int sb_count_until(store *st, store_table t, const char *stamp, store_done_cb cb, void *data);
int sb_delta(store *st, store_table t, const char *stamp, const cJSON *known,
             store_done_cb cb, void *data);
/* Keep a row this store wrote (borrowed; copied) for the next delta; the
 * row written there before under the same id goes. */
void sb_written_keep(sb_store *sb, store_table t, const cJSON *row);
/* A copy of the row kept for (t, id) at exactly `stamp`, or NULL. */
cJSON *sb_written_get(sb_store *sb, store_table t, const char *id, const char *stamp);
void sb_written_clear(sb_store *sb);

/* store_supabase_local.c */
void sb_cache_reconcile(sb_store *sb);
int sb_cache_first_load(sb_store *sb, store_table t, int summaries, store_done_cb cb,
                        void *data);
int sb_read(store *st, store_table t, const char *id, const char *stamp, store_done_cb cb,
            void *data);
int sb_search(store *st, const char *query, unsigned tables, int limit, store_done_cb cb,
              void *data);
int sb_search_cancel(store *st, store_done_cb cb, void *data);

/* store_supabase_rt.c */
void sb_start_realtime(sb_store *sb);
void sb_stop_realtime(sb_store *sb);
int sb_watch(store *st, store_event_cb cb, void *data);

#endif
