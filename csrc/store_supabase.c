/* store_supabase.c - the Supabase backend (see store_supabase.h): PostgREST
 * reads and writes, and the wiring of the Auth session (auth.c) and Realtime
 * (realtime.c) around them.
 *
 * Every table request goes through sb_send(), which adds the headers
 * supabase-js sends, waits while the access token is being refreshed, and on
 * a 401 "JWT expired" refreshes once and sends again. Responses are mapped
 * to store.h's codes with messages a person can read. The session itself
 * (tokens, user, session file, sign-in and sign-out) is auth.c's; it tells
 * this file what changed through sb_on_auth(). Realtime is started once a
 * session exists and someone watches.
 */
#include "store_supabase.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "http.h"
#include "list.h"
#include "log.h"
#include "mpjson.h"
#include "realtime.h"
#include "sbcache.h"
#include "util.h"

#define SB_IDS_PER_FETCH 150    /* ids in one `id=in.(...)` query */
/* Rows per page of a fetch of every row: a whole table of 100k rows is
 * hundreds of MiB, past any answer the HTTP client takes (HTTP_DEFAULT_MAX_BODY). */
#define SB_PAGE_ROWS 1000
#define SB_RETRY_AFTER_MAX_S 60 /* longest Retry-After (429, 503) that is honoured */

typedef enum {
  SB_INSERT,
  SB_UPDATE,
  SB_REMOVE,
  SB_STAMPS,
  SB_FETCH,
  SB_GET_ONE,
  SB_SEARCH,
  SB_SINCE,
  SB_COUNT
} sb_op;

typedef struct sb_store sb_store;

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
  /* A fetch of every row, one page after another (sb_fetch_all): rows per
   * page (halved when a page is too big to take), the last id so far, 1 to
   * keep summaries only, and the ids seen (for the local copy). */
  int page_rows;
  char *after;
  int summaries;
  cJSON *seen;
  /* A page: how many rows the server sent and the last one's id, before
   * rows of another user were dropped (the next page starts after it). */
  int sent_rows;
  char *sent_last;
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

  /* The local copy of the user's rows (sbcache.h), or NULL. The first load
   * of each table in a session saved before is answered from it (cache_first),
   * and the server's answer then comes as events (cache_stale: a full refresh
   * is still owed, asked for once Realtime joined or cannot). */
  sbcache *cache;
  int cache_first[STORE_NTABLES];
  int cache_stale;
  list_node cache_loads; /* sb_cache_load.link */
  list_node pagers;      /* sb_req.link: reads of every row under way (sb_fetch_all) */
  list_node cache_searches; /* sb_cache_search.link: searches asked of the copy */

  int rt_closing;  /* a Realtime client is shutting down */
  store_defer defer; /* every completion goes through it (store.h) */
  int closing;
  store_closed_cb closed;
  void *closed_data;
  int pending_closes;
};

static void sb_send(sb_req *r);
static sb_req *sb_req_new(sb_store *sb, sb_op op, store_table t, const char *method,
                          char *path_query, char *body, store_done_cb cb, void *data);
static void sb_start_realtime(sb_store *sb);
static void sb_stop_realtime(sb_store *sb);
static void sb_part_closed(void *data);

/* --- small helpers ----------------------------------------------------------- */

static sb_store *sb_of(store *st) { return (sb_store *)st; }

static void sb_emit(sb_store *sb, store_event_type type, store_table t,
                    const char *id, const cJSON *record) {
  if (!sb->watch_cb || sb->closing)
    return;
  store_event ev = {type, t, id, record, 0};
  sb->watch_cb(sb->watch_data, &ev);
}

static void sb_set(char **slot, const char *value) {
  free(*slot);
  *slot = value ? util_strdup(value) : NULL;
}

static void sb_req_free(sb_req *r) {
  list_remove(&r->link);
  free(r->id);
  free(r->method);
  free(r->path_query);
  free(r->body);
  cJSON_Delete(r->acc);
  free(r->after);
  free(r->sent_last);
  cJSON_Delete(r->seen);
  free(r);
}

static void sb_page_done(sb_req *r, int status, const char *error, cJSON *rows);
static void sb_fetch_page(sb_req *p);
static void sb_fetch_all(sb_store *sb, store_table t, int summaries, store_done_cb cb,
                         void *data);

/* Finish a logical request: exactly one callback, then free. */
static void sb_finish(sb_req *r, int status, const char *error, cJSON *rows) {
  sb_store *sb = r->sb;
  if (r->parent && r->parent->page_rows) {
    sb_page_done(r, status, error, rows);
    return;
  }
  if (r->parent) {
    /* A part of a fetch: gather, and finish the whole when all are in. */
    sb_req *p = r->parent;
    if (status < 0 && p->acc) {
      cJSON_Delete(p->acc);
      p->acc = NULL;
      cJSON_Delete(rows);
      store_defer_done(&sb->defer, p->cb, p->data, status, error, NULL,
                       sb->base.retry_after_ms);
      p->cb = NULL;
    } else if (status == 0 && p->acc) {
      cJSON *row;
      while ((row = cJSON_DetachItemFromArray(rows, 0)) != NULL)
        cJSON_AddItemToArray(p->acc, row);
      cJSON_Delete(rows);
    } else {
      cJSON_Delete(rows);
    }
    sb_req_free(r);
    if (--p->parts_left == 0) {
      if (p->cb) {
        cJSON *all = p->acc;
        p->acc = NULL;
        store_defer_done(&sb->defer, p->cb, p->data, 0, NULL, all, 0);
      }
      sb_req_free(p);
    }
    return;
  }
  store_done_cb cb = r->cb;
  void *data = r->data;
  sb_req_free(r);
  store_defer_done(&sb->defer, cb, data, status, error, rows, sb->base.retry_after_ms);
}

/* --- errors ------------------------------------------------------------------ */

/* A message from an error body (PostgREST {code,message,details,hint}, or
 * Auth's; see http_error_text), else "HTTP <status>". *code is the code or
 * NULL. The caller frees both. */
static char *sb_error_text(const http_response *res, char **code) {
  char *text = http_error_text(res, code);
  return text ? text : util_printf("HTTP %ld", res->status);
}

static int sb_is_jwt_expired(const http_response *res) {
  return res->status == 401 && res->body &&
         (strstr(res->body, "JWT expired") || strstr(res->body, "PGRST301") ||
          strstr(res->body, "PGRST303") || strstr(res->body, "jwt expired"));
}

/* Map a failed HTTP response to a store code and a message (caller frees). */
static int sb_map_error(const sb_store *sb, const http_response *res, char **msg) {
  if (res->status == 0 && res->error && strncmp(res->error, "response ", 9) == 0) {
    /* Our size limit, not the network: retrying would fetch it again. */
    *msg = util_printf("Supabase's answer was refused: %s", res->error);
    return STORE_EBACKEND;
  }
  if (res->status == 0 && res->cert_rejected) {
    /* Not the network: asking again gets the same certificate. */
    const char *why = res->error ? res->error : "?";
    if (strncmp(why, "TLS: ", 5) == 0)
      why += 5;
    *msg = util_printf("TLS certificate verification failed for %s: %s; if its certificate "
                       "comes from a private CA, set supabase.ca_file to that CA's PEM file",
                       sb->authority, why);
    return STORE_EBACKEND;
  }
  if (res->status == 0) {
    *msg = util_printf("Supabase is unreachable (%s)", res->error ? res->error : "no answer");
    return STORE_EUNAVAILABLE;
  }
  char *code_text = NULL;
  char *text = sb_error_text(res, &code_text);
  const char *code = code_text ? code_text : "";
  int rc;
  if (res->status >= 500 || res->status == 429) {
    *msg = util_printf("Supabase answered HTTP %ld: %s", res->status, text);
    rc = STORE_EUNAVAILABLE;
  } else if (strcmp(code, "42501") == 0) {
    /* One code for two mistakes with different fixes: PostgreSQL's message
     * tells a policy that refused the row from a table the role has no
     * GRANT on at all. */
    if (strstr(text, "row-level security"))
      *msg = util_printf("refused by the table's row-level security policy: %s", text);
    else if (strstr(text, "permission denied for"))
      *msg = util_printf("the signed-in role has no GRANT on the table (not a row-level "
                         "security policy; sql/schema.sql grants what is needed): %s", text);
    else
      *msg = util_printf("permission denied: %s", text);
    rc = STORE_EBACKEND;
  } else if (strcmp(code, "23505") == 0) {
    *msg = util_printf("it already exists: %s", text);
    rc = STORE_ECONFLICT;
  } else if (strcmp(code, "23503") == 0) {
    *msg = util_printf("the folder it refers to does not exist (23503)");
    rc = STORE_ECONFLICT;
  } else if (strcmp(code, "PGRST204") == 0 || strcmp(code, "42703") == 0 ||
             strcmp(code, "22P02") == 0 || strcmp(code, "23502") == 0) {
    *msg = util_printf("the table refused the fields: %s", text);
    rc = STORE_EINVALID;
  } else if (res->status == 401 || res->status == 403) {
    *msg = util_printf("not allowed: %s", text);
    rc = STORE_EBACKEND;
  } else if (res->status == 404) {
    *msg = util_printf("the table does not exist in this project: %s", text);
    rc = STORE_EBACKEND;
  } else {
    *msg = util_printf("Supabase answered HTTP %ld: %s", res->status, text);
    rc = STORE_EBACKEND;
  }
  free(text);
  free(code_text);
  return rc;
}

/* --- table requests ---------------------------------------------------------- */

/* auth and apikey come from auth_bearer_header and auth_apikey_header. */
static const char *const *sb_headers(const char *auth, const char *apikey, int write,
                                     const char *prefer) {
  static const char *h[8];
  int i = 0;
  h[i++] = apikey;
  h[i++] = auth;
  h[i++] = write ? "Content-Profile: public" : "Accept-Profile: public";
  h[i++] = "Content-Type: application/json";
  h[i++] = "X-Client-Info: shelf.nvim";
  if (prefer)
    h[i++] = prefer;
  h[i] = NULL;
  return h;
}

static void sb_on_response(void *data, const http_response *res);

/* A row written to the local copy while a read of every row of its table is
 * under way is kept by that read's end (sbcache_retain), even if its page
 * came before the row existed. */
static void sb_pagers_note(sb_store *sb, store_table t, const char *id) {
  list_node *n;
  list_for_each(n, &sb->pagers) {
    sb_req *p = list_entry(n, sb_req, link);
    if (p->t == t && id)
      cJSON_AddItemToArray(p->seen, cJSON_CreateString(id));
  }
}

/* Every row the server confirmed goes into the local copy as it came (the
 * copy keeps only the signed-in user's). */
static void sb_cache_answer(sb_req *r, const http_response *res) {
  sb_store *sb = r->sb;
  const char *user = auth_user_id(sb->auth);
  const char *body = res->body_len ? res->body : "[]";
  size_t len = res->body_len ? res->body_len : 2;
  if (!sb->cache || !user)
    return;
  switch (r->op) {
  case SB_FETCH:
    if (!r->parent) { /* every row of the table */
      sbcache_replace(sb->cache, user, r->t, body, len);
      break;
    }
    /* fall through */
  case SB_INSERT:
  case SB_UPDATE:
  case SB_GET_ONE:
  case SB_SINCE: /* the rows changed since a refresh's mark */
    sbcache_put(sb->cache, user, r->t, body, len);
    break;
  case SB_REMOVE:
    if (r->id)
      sbcache_delete(sb->cache, user, r->t, r->id);
    break;
  case SB_STAMPS:
  case SB_COUNT:
  case SB_SEARCH: /* ids or a count only: nothing to keep */
    break;
  }
}

/* Convert PostgREST's answer into store.h rows for the request's op. */
static void sb_complete(sb_req *r, const http_response *res) {
  sb_store *sb = r->sb;
  cJSON *body = res->body_len ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
  if (res->body_len && !cJSON_IsArray(body)) {
    cJSON_Delete(body);
    sb_finish(r, STORE_EBACKEND, "Supabase sent an answer that is not a JSON list", NULL);
    return;
  }
  sb_cache_answer(r, res);
  if (!body)
    body = cJSON_CreateArray();
  if (r->op == SB_INSERT || r->op == SB_UPDATE || r->op == SB_GET_ONE || r->op == SB_SINCE ||
      (r->op == SB_FETCH && r->parent && !r->parent->page_rows)) {
    const cJSON *row;
    cJSON_ArrayForEach(row, body) sb_pagers_note(sb, r->t, mpjson_get_str(row, "id"));
  }
  if (r->parent && r->parent->page_rows) {
    cJSON *last = cJSON_GetArrayItem(body, cJSON_GetArraySize(body) - 1);
    r->sent_rows = cJSON_GetArraySize(body);
    sb_set(&r->sent_last, last ? mpjson_get_str(last, "id") : NULL);
  }
  /* Belt and braces with row-level security: never take another user's rows,
   * nor rows whose owner is missing (every read here selects user_id). */
  /* Walk the list: cJSON_GetArrayItem(i) walks from the head, quadratic on 10k rows. */
  for (cJSON *row = body->child, *next; row; row = next) {
    next = row->next;
    const char *owner = mpjson_get_str(row, "user_id");
    if (r->op != SB_STAMPS && r->op != SB_REMOVE && auth_user_id(sb->auth) &&
        (!owner || strcmp(owner, auth_user_id(sb->auth)) != 0)) {
      log_warn("supabase: dropped a %s row of another user", sb->tables[r->t]);
      cJSON_Delete(cJSON_DetachItemViaPointer(body, row));
    }
  }
  int n = cJSON_GetArraySize(body);
  switch (r->op) {
  case SB_INSERT:
    if (n == 0) {
      /* A retried insert that had landed: the id is ours, so fetch it. */
      char *id = http_escape(r->id);
      sb_req *get = sb_req_new(sb, SB_GET_ONE, r->t, "GET",
                               util_printf("%s?select=*&id=eq.%s", sb->tables[r->t], id), NULL,
                               r->cb, r->data);
      free(id);
      r->cb = NULL;
      sb_req_free(r);
      cJSON_Delete(body);
      sb_send(get);
      return;
    }
    /* fall through */
  case SB_GET_ONE:
  case SB_UPDATE:
    if (n == 0) {
      cJSON_Delete(body);
      sb_finish(r, STORE_ENOTFOUND, "it no longer exists (deleted elsewhere?)", NULL);
      return;
    }
    /* One row is the answer; a PATCH may have matched many (a table without
     * a unique id): cut the rest off at once, not one delete at a time. */
    if (n > 1) {
      cJSON *first = cJSON_DetachItemViaPointer(body, body->child);
      cJSON_Delete(body);
      body = cJSON_CreateArray();
      cJSON_AddItemToArray(body, first);
    }
    sb_finish(r, 0, NULL, body);
    return;
  case SB_REMOVE:
    if (n == 0) {
      cJSON_Delete(body);
      sb_finish(r, STORE_ENOTFOUND, "it no longer exists (deleted elsewhere?)", NULL);
      return;
    }
    cJSON_Delete(body);
    sb_finish(r, 0, NULL, cJSON_CreateArray());
    return;
  case SB_STAMPS: {
    cJSON *pairs = cJSON_CreateArray();
    const cJSON *row;
    cJSON_ArrayForEach(row, body) {
      cJSON *pair = cJSON_CreateArray();
      cJSON_AddItemToArray(pair, cJSON_Duplicate(cJSON_GetObjectItem(row, "id"), 1));
      cJSON_AddItemToArray(pair, cJSON_Duplicate(cJSON_GetObjectItem(row, "updated_at"), 1));
      cJSON_AddItemToArray(pairs, pair);
    }
    cJSON_Delete(body);
    sb_finish(r, 0, NULL, pairs);
    return;
  }
  case SB_FETCH:
  case SB_SINCE:
    sb_finish(r, 0, NULL, body);
    return;
  case SB_COUNT: {
    /* HEAD with count=exact: the count follows the '/' of Content-Range. */
    const char *range = res->content_range;
    const char *slash = range ? strchr(range, '/') : NULL;
    char *end = NULL;
    long long count = slash ? strtoll(slash + 1, &end, 10) : -1;
    cJSON_Delete(body);
    if (!slash || end == slash + 1 || count < 0) {
      sb_finish(r, STORE_EBACKEND, "Supabase sent no count (Content-Range) for count=exact",
                NULL);
      return;
    }
    cJSON *rows = cJSON_CreateArray();
    cJSON_AddItemToArray(rows, cJSON_CreateNumber((double)count));
    sb_finish(r, 0, NULL, rows);
    return;
  }
  case SB_SEARCH: {
    cJSON *hits = cJSON_CreateArray();
    const cJSON *row;
    cJSON_ArrayForEach(row, body) {
      const char *id = mpjson_get_str(row, "id");
      if (!id)
        continue;
      cJSON *hit = cJSON_CreateArray();
      cJSON_AddItemToArray(hit, cJSON_CreateNumber(r->t));
      cJSON_AddItemToArray(hit, cJSON_CreateString(id));
      cJSON_AddItemToArray(hits, hit);
    }
    cJSON_Delete(body);
    sb_finish(r, 0, NULL, hits);
    return;
  }
  }
}

static const char *const sb_op_names[] = {"insert", "update", "remove", "stamps", "fetch",
                                          "get",    "search", "since",  "count"};

static void sb_on_response(void *data, const http_response *res) {
  sb_req *r = data;
  sb_store *sb = r->sb;
  list_remove(&r->link);
  r->http_id = 0;
  /* What each request costs at the wire (shelfd --verbose), for measuring. */
  log_debug("supabase: %s %s (%s): HTTP %ld in %.1f ms, %zu B sent, %zu B received", r->method,
            sb->tables[r->t], sb_op_names[r->op], res->status, res->total_ms, res->bytes_out,
            res->bytes_in);
  if (r->session != sb->session) {
    /* Sent for a session that has ended: its rows are not this user's. */
    sb_finish(r, STORE_EBACKEND,
              "the answer came after a sign-out or a sign-in as another user, and was dropped",
              NULL);
    return;
  }
  if (res->status >= 200 && res->status < 300) {
    sb_complete(r, res);
    return;
  }
  if (res->body_too_big && r->parent && r->parent->page_rows > 1) {
    /* Rows with big content: the same page again, half as many rows. */
    sb_req *p = r->parent;
    p->page_rows /= 2;
    log_info("supabase: a page of %s was too big; asking %d rows at a time", sb->tables[p->t],
             p->page_rows);
    sb_req_free(r);
    sb_fetch_page(p);
    return;
  }
  int jwt_expired = sb_is_jwt_expired(res);
  if (jwt_expired && !r->auth_retried && auth_signed_in(sb->auth)) {
    /* Refresh once and send again. */
    r->auth_retried = 1;
    list_push_back(&sb->waiting, &r->link);
    auth_refresh(sb->auth);
    return;
  }
  char *msg;
  int rc;
  if (jwt_expired && r->auth_retried) {
    char *text = sb_error_text(res, NULL);
    msg = util_printf("Supabase refused the access token again right after it was refreshed "
                      "(%s); check this computer's clock, or sign in again with :Shelf login",
                      text);
    free(text);
    rc = STORE_EBACKEND;
  } else {
    rc = sb_map_error(sb, res, &msg);
  }
  /* The sync engine retries no sooner than the server asked. */
  sb->base.retry_after_ms = rc == STORE_EUNAVAILABLE ? http_retry_after_ms(res, SB_RETRY_AFTER_MAX_S * 1000u, time(NULL)) : 0;
  sb_finish(r, rc, msg, NULL);
  sb->base.retry_after_ms = 0;
  free(msg);
}

static void sb_send(sb_req *r) {
  sb_store *sb = r->sb;
  if (sb->closing) {
    sb_finish(r, STORE_ECLOSED, "shelfd is shutting down", NULL);
    return;
  }
  if (!auth_signed_in(sb->auth) &&
      (r->op == SB_STAMPS || r->op == SB_FETCH || r->op == SB_SEARCH || r->op == SB_SINCE ||
       r->op == SB_COUNT)) {
    /* Signed out, the library is empty: not an error to retry. */
    cJSON *none = cJSON_CreateArray();
    if (r->op == SB_COUNT)
      cJSON_AddItemToArray(none, cJSON_CreateNumber(0));
    sb_finish(r, 0, NULL, none);
    return;
  }
  if (!auth_signed_in(sb->auth)) {
    const char *why = auth_problem(sb->auth);
    char *msg = util_printf("not signed in to Supabase (%s); use :Shelf login",
                            why ? why : "no session");
    sb_finish(r, STORE_EBACKEND, msg, NULL);
    free(msg);
    return;
  }
  if (!auth_token_fresh(sb->auth, 5)) {
    list_push_back(&sb->waiting, &r->link);
    auth_refresh(sb->auth);
    return;
  }
  /* On the heap: a JWT with many custom claims is longer than any fixed
   * buffer would be, and a cut one fails as a bad token. */
  char *auth = auth_bearer_header(sb->auth);
  char *apikey = auth_apikey_header(sb->auth);
  const char *prefer = NULL;
  int write = strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0;
  if (r->op == SB_COUNT)
    prefer = "Prefer: count=exact";
  else if (r->op == SB_INSERT)
    prefer = "Prefer: return=representation,resolution=ignore-duplicates";
  else if (write)
    prefer = "Prefer: return=representation";
  const char *const *h = sb_headers(auth, apikey, write, prefer);
  char *url = util_printf("%s/rest/v1/%s", sb->url, r->path_query);
  r->session = sb->session;
  r->http_id = http_request(sb->http, r->method, url, h, r->body,
                            r->body ? strlen(r->body) : 0, sb_on_response, r);
  free(url);
  auth_free_header(auth);
  auth_free_header(apikey);
  if (r->http_id < 0) {
    r->http_id = 0;
    sb_finish(r, STORE_EBACKEND, "the HTTP request could not be made", NULL);
    return;
  }
  list_push_back(&sb->inflight, &r->link);
}

static sb_req *sb_req_new(sb_store *sb, sb_op op, store_table t, const char *method,
                          char *path_query, char *body, store_done_cb cb, void *data) {
  sb_req *r = util_calloc(1, sizeof *r);
  list_init(&r->link);
  r->sb = sb;
  r->op = op;
  r->t = t;
  r->method = util_strdup(method);
  r->path_query = path_query;
  r->body = body;
  r->cb = cb;
  r->data = data;
  return r;
}

static char *sb_filter_user(sb_store *sb) {
  if (!auth_user_id(sb->auth))
    return util_strdup("");
  return util_printf("&user_id=eq.%s", auth_user_id(sb->auth));
}

static int sb_insert(store *st, store_table t, const cJSON *record, store_done_cb cb,
                     void *data) {
  sb_store *sb = sb_of(st);
  const char *id = mpjson_get_str(record, "id");
  if (!id || !util_is_uuid(id))
    return STORE_EINVALID;
  cJSON *row = cJSON_Duplicate(record, 1);
  if (auth_user_id(sb->auth)) {
    cJSON_DeleteItemFromObjectCaseSensitive(row, "user_id");
    cJSON_AddStringToObject(row, "user_id", auth_user_id(sb->auth));
  }
  char *body = cJSON_PrintUnformatted(row);
  cJSON_Delete(row);
  sb_req *r = sb_req_new(sb, SB_INSERT, t, "POST",
                         util_printf("%s?on_conflict=id&select=*", sb->tables[t]), body,
                         cb, data);
  r->id = util_strdup(id);
  sb_send(r);
  return 0;
}

/* Send a request for row `id` (a UUID) of the signed-in user's, answered
 * with the columns in `select`; takes body. */
static void sb_send_for_row(sb_store *sb, sb_op op, store_table t, const char *method,
                            const char *id, const char *select, char *body,
                            store_done_cb cb, void *data) {
  char *user = sb_filter_user(sb);
  sb_req *r = sb_req_new(sb, op, t, method,
                         util_printf("%s?id=eq.%s%s&select=%s", sb->tables[t], id, user, select),
                         body, cb, data);
  r->id = util_strdup(id);
  free(user);
  sb_send(r);
}

static int sb_update(store *st, store_table t, const char *id, const cJSON *fields,
                     store_done_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  if (!util_is_uuid(id))
    return STORE_EINVALID;
  cJSON *f = cJSON_Duplicate(fields, 1);
  char stamp[UTIL_STAMP_LEN + 1];
  util_now_stamp(stamp);
  /* As the web app does: updated_at comes from the client. */
  cJSON_DeleteItemFromObjectCaseSensitive(f, "updated_at");
  cJSON_AddStringToObject(f, "updated_at", stamp);
  char *body = cJSON_PrintUnformatted(f);
  cJSON_Delete(f);
  sb_send_for_row(sb, SB_UPDATE, t, "PATCH", id, "*", body, cb, data);
  return 0;
}

static int sb_remove(store *st, store_table t, const char *id, store_done_cb cb,
                     void *data) {
  sb_store *sb = sb_of(st);
  if (!util_is_uuid(id))
    return STORE_EINVALID;
  sb_send_for_row(sb, SB_REMOVE, t, "DELETE", id, "id", NULL, cb, data);
  return 0;
}

static int sb_stamps(store *st, store_table t, store_done_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  char *user = sb_filter_user(sb);
  sb_req *r = sb_req_new(sb, SB_STAMPS, t, "GET",
                         util_printf("%s?select=id,updated_at%s", sb->tables[t], user),
                         NULL, cb, data);
  free(user);
  sb_send(r);
  return 0;
}

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
  char *id;       /* a read: the row's id; NULL for a first load */
} sb_cache_load;

/* A full refresh from the server is owed for what the copy answered. */
static void sb_cache_reconcile(sb_store *sb) {
  if (!sb->cache_stale)
    return;
  sb->cache_stale = 0;
  sb_emit(sb, STORE_EV_RESYNC, STORE_BLOCKS, NULL, NULL);
}

static void sb_on_cache_load(void *data, cJSON *rows) {
  sb_cache_load *l = data;
  sb_store *sb = l->sb;
  list_remove(&l->link);
  if (!l->cb) {
    cJSON_Delete(rows);
    free(l);
    return;
  }
  if (rows && l->session == sb->session && auth_signed_in(sb->auth)) {
    log_info("supabase: %d %s rows from the local copy", cJSON_GetArraySize(rows),
             sb->tables[l->t]);
    store_defer_done(&sb->defer, l->cb, l->data, 0, NULL, rows, 0);
    /* Realtime's join asks for the full refresh (sb_rt_joined), which the
     * engine runs after this load when it joined already; without Realtime
     * nothing would. */
    if (!sb->rt_state || strcmp(sb->rt_state, rt_state_name(RT_JOINED)) != 0)
      sb->cache_stale = 1;
    if (!sb->realtime_on)
      sb_cache_reconcile(sb);
  } else {
    cJSON_Delete(rows);
    sb_fetch_all(sb, l->t, l->summaries, l->cb, l->data);
  }
  free(l);
}

/* The first load of table t in a saved session: 1 if the local copy answers
 * it (whole rows, or summaries: no content, its size instead), else 0. */
static int sb_cache_first_load(sb_store *sb, store_table t, int summaries, store_done_cb cb,
                               void *data) {
  if (!sb->cache_first[t])
    return 0;
  sb->cache_first[t] = 0;
  if (!auth_signed_in(sb->auth))
    return 0;
  sb_cache_load *l = util_calloc(1, sizeof *l);
  *l = (sb_cache_load){sb, t, cb, data, sb->session, {NULL, NULL}, summaries, NULL, NULL};
  list_push_back(&sb->cache_loads, &l->link);
  (summaries ? sbcache_load_summaries : sbcache_load)(sb->cache, auth_user_id(sb->auth), t,
                                                      sb_on_cache_load, l);
  return 1;
}

/* --- fetching every row, a page at a time ---------------------------------- */

/* Ask for the page after p->after (ordered by id, so no row is read twice or
 * missed while others are added or deleted meanwhile). */
static void sb_fetch_page(sb_req *p) {
  sb_store *sb = p->sb;
  char *user = sb_filter_user(sb);
  char *after = p->after ? http_escape(p->after) : NULL;
  sb_req *part = sb_req_new(sb, SB_FETCH, p->t, "GET",
                            util_printf("%s?select=*%s%s%s&order=id&limit=%d", sb->tables[p->t],
                                        user, after ? "&id=gt." : "", after ? after : "",
                                        p->page_rows),
                            NULL, NULL, NULL);
  part->parent = p;
  free(after);
  free(user);
  sb_send(part);
}

/* Every row of t, in pages of SB_PAGE_ROWS; `summaries`: each row without its
 * content, its size in bytes as STORE_CONTENT_SIZE instead (so 100k rows are
 * not all held with their content at once). */
static void sb_fetch_all(sb_store *sb, store_table t, int summaries, store_done_cb cb,
                         void *data) {
  sb_req *p = sb_req_new(sb, SB_FETCH, t, "GET", NULL, NULL, cb, data);
  p->acc = cJSON_CreateArray();
  p->seen = cJSON_CreateArray();
  p->page_rows = SB_PAGE_ROWS;
  p->summaries = summaries;
  p->parts_left = 1;
  list_push_back(&sb->pagers, &p->link);
  sb_fetch_page(p);
}

/* A page came (or failed): keep its rows, then ask for the next, or finish
 * when it was not full. */
static void sb_page_done(sb_req *r, int status, const char *error, cJSON *rows) {
  sb_store *sb = r->sb;
  sb_req *p = r->parent;
  int sent = r->sent_rows;
  /* Each page must start after the one before (ids only go up): a server
   * that ignored the filter would send the same rows forever. */
  if (status == 0 && sent > 0 && (!r->sent_last || (p->after && strcmp(r->sent_last, p->after) <= 0))) {
    status = STORE_EBACKEND;
    error = "Supabase sent the same rows again for the next page (it did not follow "
            "order=id and id=gt.)";
  } else if (r->sent_last) {
    sb_set(&p->after, r->sent_last);
  }
  sb_req_free(r);
  if (status < 0 || !p->cb) {
    cJSON_Delete(rows);
    if (p->cb)
      store_defer_done(&sb->defer, p->cb, p->data, status, error, NULL,
                       sb->base.retry_after_ms);
    sb_req_free(p);
    return;
  }
  cJSON *row;
  while ((row = cJSON_DetachItemFromArray(rows, 0)) != NULL) {
    const char *id = mpjson_get_str(row, "id");
    if (id)
      cJSON_AddItemToArray(p->seen, cJSON_CreateString(id));
    if (p->summaries) {
      cJSON *c = cJSON_DetachItemFromObjectCaseSensitive(row, "content");
      cJSON_AddNumberToObject(row, STORE_CONTENT_SIZE,
                              cJSON_IsString(c) ? (double)strlen(c->valuestring) : 0);
      cJSON_Delete(c);
    }
    cJSON_AddItemToArray(p->acc, row);
  }
  cJSON_Delete(rows);
  /* Only an empty page ends the read: the server may send fewer rows than
   * asked (PostgREST's max-rows setting caps every answer). */
  if (sent > 0) {
    sb_fetch_page(p);
    return;
  }
  /* The last page: the local copy keeps exactly the rows read. */
  const char *user = auth_user_id(sb->auth);
  if (sb->cache && user) {
    char *ids = cJSON_PrintUnformatted(p->seen);
    if (ids) {
      sbcache_retain(sb->cache, user, p->t, ids, strlen(ids));
      cJSON_free(ids);
    }
  }
  cJSON *all = p->acc;
  p->acc = NULL;
  store_defer_done(&sb->defer, p->cb, p->data, 0, NULL, all, 0);
  sb_req_free(p);
}

static int sb_fetch(store *st, store_table t, const cJSON *ids, store_done_cb cb,
                    void *data) {
  sb_store *sb = sb_of(st);
  if (!ids && sb_cache_first_load(sb, t, 0, cb, data))
    return 0;
  if (!ids) {
    sb_fetch_all(sb, t, 0, cb, data);
    return 0;
  }
  char *user = sb_filter_user(sb);
  /* Many ids: several requests of SB_IDS_PER_FETCH, gathered by a parent. */
  int n = cJSON_GetArraySize(ids);
  sb_req *parent = sb_req_new(sb, SB_FETCH, t, "GET", NULL, NULL, cb, data);
  parent->acc = cJSON_CreateArray();
  parent->parts_left = n == 0 ? 1 : (n + SB_IDS_PER_FETCH - 1) / SB_IDS_PER_FETCH;
  if (n == 0) {
    free(user);
    parent->parts_left = 0;
    cJSON *all = parent->acc;
    parent->acc = NULL;
    sb_req_free(parent);
    store_defer_done(&sb->defer, cb, data, 0, NULL, all, 0);
    return 0;
  }
  const cJSON *id = ids->child; /* a cursor: indexing each id would be quadratic */
  for (int start = 0; start < n; start += SB_IDS_PER_FETCH) {
    size_t cap = 64 + SB_IDS_PER_FETCH * (UTIL_UUID_LEN + 1);
    char *list = util_malloc(cap);
    size_t len = 0;
    list[0] = '\0';
    for (int i = start; i < n && i < start + SB_IDS_PER_FETCH; i++, id = id->next) {
      if (!cJSON_IsString(id) || !util_is_uuid(id->valuestring))
        continue;
      len += (size_t)snprintf(list + len, cap - len, "%s%s", len ? "," : "", id->valuestring);
    }
    sb_req *part = sb_req_new(sb, SB_FETCH, t, "GET",
                              util_printf("%s?select=*&id=in.(%s)%s", sb->tables[t], list, user),
                              NULL, NULL, NULL);
    free(list);
    part->parent = parent;
    sb_send(part);
  }
  free(user);
  return 0;
}

/* A read answered by the local copy: its row when it has the stamp the
 * engine holds, else the server's. */
static void sb_on_cache_read(void *data, cJSON *rows) {
  sb_cache_load *l = data;
  sb_store *sb = l->sb;
  list_remove(&l->link);
  cJSON *row = rows ? rows->child : NULL;
  long long want, have;
  const char *at = row ? mpjson_get_str(row, "updated_at") : NULL;
  int same = at && util_stamp_us(l->stamp, &want) == 0 && util_stamp_us(at, &have) == 0 &&
             want == have;
  if (!l->cb) {
    cJSON_Delete(rows);
  } else if (same && l->session == sb->session && auth_signed_in(sb->auth)) {
    store_defer_done(&sb->defer, l->cb, l->data, 0, NULL, rows, 0);
  } else {
    cJSON_Delete(rows);
    cJSON *ids = cJSON_CreateArray();
    cJSON_AddItemToArray(ids, cJSON_CreateString(l->id));
    if (sb_fetch(&sb->base, l->t, ids, l->cb, l->data) < 0)
      store_defer_done(&sb->defer, l->cb, l->data, STORE_EBACKEND, "the request was refused",
                       NULL, 0);
    cJSON_Delete(ids);
  }
  free(l->stamp);
  free(l->id);
  free(l);
}

static int sb_read(store *st, store_table t, const char *id, const char *stamp,
                   store_done_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  cJSON *ids = cJSON_CreateArray();
  cJSON_AddItemToArray(ids, cJSON_CreateString(id));
  if (!sb->cache || !stamp || !*stamp || sb->closing || !auth_signed_in(sb->auth)) {
    int rc = sb_fetch(st, t, ids, cb, data);
    cJSON_Delete(ids);
    return rc;
  }
  sb_cache_load *l = util_calloc(1, sizeof *l);
  *l = (sb_cache_load){sb, t, cb, data, sb->session, {NULL, NULL}, 0, util_strdup(stamp),
                       util_strdup(id)};
  list_push_back(&sb->cache_loads, &l->link);
  sbcache_get(sb->cache, auth_user_id(sb->auth), t, ids, sb_on_cache_read, l);
  cJSON_Delete(ids);
  return 0;
}

/* A saved session's first load of a table comes from the local copy without
 * any content (its size instead). PostgREST cannot give a size without the
 * content, so every other fetch is whole rows (the engine drops content). */
static int sb_fetch_summaries(store *st, store_table t, const cJSON *ids, store_done_cb cb,
                              void *data) {
  if (!ids && sb_cache_first_load(sb_of(st), t, 1, cb, data))
    return 0;
  if (!ids) {
    sb_fetch_all(sb_of(st), t, 1, cb, data);
    return 0;
  }
  return sb_fetch(st, t, ids, cb, data);
}

/* An updated_at for a query string: as the server printed it (it compares
 * it as a time), percent-encoded ('+' would read as a space). NULL if it is
 * not a stamp. The caller frees it. */
static char *sb_stamp_arg(const char *stamp) {
  long long us;
  if (util_stamp_us(stamp, &us) < 0)
    return NULL;
  return http_escape(stamp);
}

static int sb_since(store *st, store_table t, const char *stamp, const cJSON *known,
                    store_done_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  char *at = sb_stamp_arg(stamp);
  if (!at)
    return STORE_EINVALID;
  int n = known ? cJSON_GetArraySize(known) : 0;
  char *filter;
  if (!known) {
    filter = util_printf("updated_at=gt.%s", at);
  } else if (n == 0) {
    filter = util_printf("updated_at=gte.%s", at);
  } else {
    size_t cap = 16 + (size_t)n * (UTIL_UUID_LEN + 1), len = 0;
    char *list = util_malloc(cap);
    list[0] = '\0';
    const cJSON *id;
    cJSON_ArrayForEach(id, known) {
      if (cJSON_IsString(id) && util_is_uuid(id->valuestring))
        len += (size_t)snprintf(list + len, cap - len, "%s%s", len ? "," : "", id->valuestring);
    }
    /* Later, or at the stamp and not among the rows held there. */
    filter = len ? util_printf("or=(updated_at.gt.%s,and(updated_at.eq.%s,id.not.in.(%s)))", at,
                               at, list)
                 : util_printf("updated_at=gte.%s", at);
    free(list);
  }
  char *user = sb_filter_user(sb);
  sb_send(sb_req_new(sb, SB_SINCE, t, "GET",
                     util_printf("%s?select=*&%s%s", sb->tables[t], filter, user), NULL, cb,
                     data));
  free(user);
  free(filter);
  free(at);
  return 0;
}

static int sb_count_until(store *st, store_table t, const char *stamp, store_done_cb cb,
                          void *data) {
  sb_store *sb = sb_of(st);
  char *at = sb_stamp_arg(stamp);
  if (!at)
    return STORE_EINVALID;
  char *user = sb_filter_user(sb);
  /* HEAD: the count comes in Content-Range, no rows are sent; limit=1 so that
   * a server that builds the body anyway builds one row of it, not all. */
  sb_send(sb_req_new(sb, SB_COUNT, t, "HEAD",
                     util_printf("%s?select=id&updated_at=lte.%s%s&limit=1", sb->tables[t], at,
                                 user),
                     NULL, cb, data));
  free(user);
  free(at);
  return 0;
}

/* --- search ------------------------------------------------------------------------ */

/* PostgREST's quoting of a value in `or=(...)`: "..." with " and \ escaped. */
static void sb_quote_char(char **o, char c) {
  if (c == '"' || c == '\\')
    *(*o)++ = '\\';
  *(*o)++ = c;
}

/* "*query*" for ilike: % _ \ escaped for LIKE (PostgreSQL's default escape
 * is \), and * (PostgREST's wildcard, with no escape) made _, which matches
 * it too; then quoted for `or`. */
static char *sb_ilike_value(const char *q) {
  char *out = util_malloc(strlen(q) * 4 + 8), *o = out;
  *o++ = '"';
  *o++ = '*';
  for (; *q; q++) {
    if (*q == '%' || *q == '_' || *q == '\\')
      sb_quote_char(&o, '\\');
    sb_quote_char(&o, *q == '*' ? '_' : *q);
  }
  *o++ = '*';
  *o++ = '"';
  *o = '\0';
  return out;
}

/* Rows of `tables` whose title, description or content contain `query`
 * (ilike, as the web app searches), or with a tag equal to it (PostgREST
 * cannot look inside a text[] cheaply). One GET per table, gathered. */
static int sb_search_server(sb_store *sb, const char *query, unsigned tables, int limit,
                            store_done_cb cb, void *data) {
  int parts = 0;
  for (int t = STORE_BLOCKS; t <= STORE_PROMPTS; t++)
    parts += (tables >> t) & 1u;
  sb_req *parent = sb_req_new(sb, SB_SEARCH, STORE_BLOCKS, "GET", NULL, NULL, cb, data);
  parent->acc = cJSON_CreateArray();
  parent->parts_left = parts;
  if (parts == 0 || !query[0]) {
    cJSON *none = parent->acc;
    parent->acc = NULL;
    sb_req_free(parent);
    store_defer_done(&sb->defer, cb, data, 0, NULL, none, 0);
    return 0;
  }
  list_push_back(&sb->searches, &parent->link);
  char *like = sb_ilike_value(query);
  /* A tag equal to the query: the array literal {"q"}, quoted for `or`. */
  char *tag = NULL;
  if (!strpbrk(query, "\"\\"))
    tag = util_printf(",tags.cs.\"{\\\"%s\\\"}\"", query);
  char *user = sb_filter_user(sb);
  for (int t = STORE_BLOCKS; t <= STORE_PROMPTS; t++) {
    if (!((tables >> t) & 1u))
      continue;
    char *or = t == STORE_PROMPTS
                   ? util_printf("(title.ilike.%1$s,description.ilike.%1$s,content.ilike.%1$s%2$s)",
                                 like, tag ? tag : "")
                   : util_printf("(title.ilike.%1$s,content.ilike.%1$s%2$s)", like,
                                 tag ? tag : "");
    char *esc = http_escape(or);
    sb_req *part = sb_req_new(sb, SB_SEARCH, (store_table)t, "GET",
                              util_printf("%s?select=id,user_id&or=%s&limit=%d%s",
                                          sb->tables[t], esc, limit, user),
                              NULL, NULL, NULL);
    free(esc);
    free(or);
    part->parent = parent;
    sb_send(part);
  }
  free(user);
  free(tag);
  free(like);
  return 0;
}

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

static void sb_on_cache_search(void *data, int status, const char *error, cJSON *rows) {
  sb_cache_search *s = data;
  sb_store *sb = s->sb;
  list_remove(&s->link);
  if (!s->cb) {
    cJSON_Delete(rows);
  } else if (status == 0 && s->session == sb->session) {
    store_defer_done(&sb->defer, s->cb, s->data, 0, NULL, rows, 0);
  } else {
    cJSON_Delete(rows);
    if (status != SBCACHE_UNUSABLE && status != 0)
      log_warn("supabase: %s; asking the server", error ? error : "search in the local copy failed");
    if (sb->closing || sb_search_server(sb, s->query, s->tables, s->limit, s->cb, s->data) < 0)
      store_defer_done(&sb->defer, s->cb, s->data, STORE_ECLOSED, "shelfd is shutting down",
                       NULL, 0);
  }
  free(s->query);
  free(s);
}

/* From the local copy when it can answer (sbcache_search: the signed-in
 * user's copy, each table filled by a full read), the server otherwise. */
static int sb_search(store *st, const char *query, unsigned tables, int limit,
                     store_done_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  if (sb->closing)
    return STORE_ECLOSED;
  if (!query || limit < 0)
    return STORE_EINVALID;
  if (!sb->cache || !query[0] || !auth_signed_in(sb->auth))
    return sb_search_server(sb, query, tables, limit, cb, data);
  sb_cache_search *s = util_calloc(1, sizeof *s);
  *s = (sb_cache_search){sb,     cb,          data, util_strdup(query), tables, limit,
                         sb->session, {NULL, NULL}};
  list_push_back(&sb->cache_searches, &s->link);
  if (sbcache_search(sb->cache, auth_user_id(sb->auth), query, tables, limit,
                     sb_on_cache_search, s) < 0) {
    list_remove(&s->link);
    free(s->query);
    free(s);
    return sb_search_server(sb, query, tables, limit, cb, data);
  }
  return 0;
}

/* The answer is dropped when it comes (a GET is cheap to let finish). */
static int sb_search_cancel(store *st, store_done_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  list_node *n;
  list_for_each(n, &sb->cache_searches) {
    sb_cache_search *s = list_entry(n, sb_cache_search, link);
    if (s->cb == cb && s->data == data) {
      s->cb = NULL;
      store_defer_done(&sb->defer, cb, data, UV_ECANCELED, "search: cancelled", NULL, 0);
      /* Stops it in the copy; its answer, dropped, frees s. */
      sbcache_search_cancel(sb->cache, sb_on_cache_search, s);
      return 0;
    }
  }
  list_for_each(n, &sb->searches) {
    sb_req *p = list_entry(n, sb_req, link);
    if (p->cb == cb && p->data == data) {
      /* The parts still come back: with no callback and nothing to gather. */
      p->cb = NULL;
      cJSON_Delete(p->acc);
      p->acc = NULL;
      store_defer_done(&sb->defer, cb, data, UV_ECANCELED, "search: cancelled", NULL, 0);
      return 0;
    }
  }
  return UV_ENOENT;
}

/* --- the Auth session's changes -------------------------------------------------- */

/* Only what waits now: a request sent again may come back to wait. */
static void sb_fail_waiting(sb_store *sb, int status, const char *msg) {
  list_node now, *n;
  list_take_all(&now, &sb->waiting);
  while ((n = list_pop_front(&now)) != NULL)
    sb_finish(list_entry(n, sb_req, link), status, msg, NULL);
}

static void sb_send_waiting(sb_store *sb) {
  list_node now, *n;
  list_take_all(&now, &sb->waiting);
  while ((n = list_pop_front(&now)) != NULL)
    sb_send(list_entry(n, sb_req, link));
}

/* The session ended, or another user's began: requests waiting for a token
 * fail with status and msg, and answers to requests sent before are dropped
 * (sb->session). */
static void sb_session_changed(sb_store *sb, int status, const char *msg) {
  sb->session++;
  sb_fail_waiting(sb, status, msg);
  /* The local copy was that user's: it goes with the session. */
  for (int t = 0; t < STORE_NTABLES; t++)
    sb->cache_first[t] = 0;
  sb->cache_stale = 0;
  if (sb->cache)
    sbcache_forget(sb->cache);
}

static void sb_on_auth(void *data, const auth_event *ev) {
  sb_store *sb = data;
  if (sb->closing)
    return;
  switch (ev->type) {
  case AUTH_EV_REFRESHED:
    if (sb->rt)
      rt_set_token(sb->rt, auth_access_token(sb->auth), auth_expires_at(sb->auth));
    else
      sb_start_realtime(sb);
    sb_send_waiting(sb);
    sb_emit(sb, STORE_EV_STATE, STORE_BLOCKS, NULL, NULL);
    break;
  case AUTH_EV_UNAVAILABLE:
    /* Retried by the sync engine, unless retrying cannot help (TLS). */
    sb_fail_waiting(sb, ev->status == STORE_EBACKEND ? STORE_EBACKEND : STORE_EUNAVAILABLE,
                    ev->msg);
    sb_cache_reconcile(sb); /* Realtime will not join soon: the engine retries */
    break;
  case AUTH_EV_SIGNED_IN:
    if (ev->same_user)
      sb_send_waiting(sb); /* what waited for the refresh goes out now */
    else
      sb_session_changed(sb, STORE_EBACKEND, "signed in as another user before it was sent");
    sb_stop_realtime(sb);
    sb_start_realtime(sb);
    break;
  case AUTH_EV_ENDED:
    sb_stop_realtime(sb);
    sb_session_changed(sb, STORE_EBACKEND, ev->msg);
    break;
  case AUTH_EV_RESET:
    /* Another user (or none) sees another library: everything is loaded again. */
    sb_emit(sb, STORE_EV_RESET, STORE_BLOCKS, NULL, NULL);
    break;
  }
}

/* The session answers sign-in and sign-out at once at times (no session to
 * end, shutting down); the store contract wants every answer from the loop,
 * so they pass through the store's queue. */
typedef struct {
  sb_store *sb;
  store_done_cb cb;
  void *data;
} sb_auth_call;

static void sb_auth_answered(void *data, int status, const char *error, cJSON *rows) {
  sb_auth_call *c = data;
  store_defer_done(&c->sb->defer, c->cb, c->data, status, error, rows, 0);
  free(c);
}

static sb_auth_call *sb_auth_call_new(sb_store *sb, store_done_cb cb, void *data) {
  sb_auth_call *c = util_malloc(sizeof *c);
  *c = (sb_auth_call){sb, cb, data};
  return c;
}

static int sb_login(store *st, const char *email, const char *password, store_done_cb cb,
                    void *data) {
  sb_store *sb = sb_of(st);
  sb_auth_call *c = sb_auth_call_new(sb, cb, data);
  int rc = auth_login_password(sb->auth, email, password, sb_auth_answered, c);
  if (rc != 0)
    free(c);
  return rc;
}

static int sb_logout(store *st, store_done_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  sb_auth_call *c = sb_auth_call_new(sb, cb, data);
  int rc = auth_logout(sb->auth, sb_auth_answered, c);
  if (rc != 0)
    free(c);
  return rc;
}

auth_session *store_supabase_auth(store *st) {
  return st && st->ops->login == sb_login ? sb_of(st)->auth : NULL;
}

/* --- Realtime ------------------------------------------------------------------ */

static void sb_rt_state(void *data, rt_state state, const char *message) {
  sb_store *sb = data;
  if (state == RT_JOINED)
    auth_realtime_joined(sb->auth);
  sb_set(&sb->rt_state, rt_state_name(state));
  sb_set(&sb->rt_message, message);
  if (state == RT_DISCONNECTED || state == RT_ERROR)
    sb_cache_reconcile(sb); /* no join soon: refresh without it */
  if (message)
    log_info("supabase: %s", message);
  else if (state == RT_JOINED)
    log_info("supabase: Realtime joined");
  sb_emit(sb, STORE_EV_STATE, STORE_BLOCKS, NULL, NULL);
}

/* Realtime holds an expired token and waits for a new one. */
static void sb_rt_token_needed(void *data) {
  sb_store *sb = data;
  auth_realtime_refused(sb->auth);
}

static void sb_rt_joined(void *data) {
  sb_store *sb = data;
  /* Events sent while we were away are lost: load everything again (which
   * also settles what the local copy answered). */
  sb->cache_stale = 0;
  sb_emit(sb, STORE_EV_RESYNC, STORE_BLOCKS, NULL, NULL);
}

/* Bindings come in pairs per table: [2t] filtered to the user, [2t+1] an
 * unfiltered DELETE (a filtered binding never sees a DELETE without replica
 * identity full). */
static void sb_rt_change(void *data, int binding, const cJSON *payload) {
  sb_store *sb = data;
  if (binding < 0 || binding >= 2 * STORE_NTABLES)
    return;
  store_table t = (store_table)(binding / 2);
  const char *type = mpjson_get_str(payload, "type");
  const cJSON *record = cJSON_GetObjectItemCaseSensitive(payload, "record");
  const cJSON *old = cJSON_GetObjectItemCaseSensitive(payload, "old_record");
  if (!type)
    return;
  if (strcmp(type, "DELETE") == 0) {
    const char *id = mpjson_get_str(old, "id");
    if (id && sb->cache)
      sbcache_delete(sb->cache, auth_user_id(sb->auth), t, id);
    if (id)
      sb_emit(sb, STORE_EV_DELETE, t, id, NULL);
    return;
  }
  const char *id = mpjson_get_str(record, "id");
  const char *owner = mpjson_get_str(record, "user_id");
  if (!id)
    return;
  if (!owner || !auth_user_id(sb->auth) || strcmp(owner, auth_user_id(sb->auth)) != 0) {
    log_warn("supabase: dropped a realtime event for another user");
    return;
  }
  const cJSON *errors = cJSON_GetObjectItemCaseSensitive(payload, "errors");
  if (errors && !cJSON_IsNull(errors) && cJSON_GetArraySize(errors) > 0) {
    /* Records over 1 MB arrive cut short: fetch the row instead. */
    sb_emit(sb, STORE_EV_UPSERT, t, id, NULL);
    return;
  }
  if (sb->cache) {
    char *text = cJSON_PrintUnformatted(record);
    char *list = util_printf("[%s]", text);
    sb_pagers_note(sb, t, id);
    sbcache_put(sb->cache, owner, t, list, strlen(list));
    free(list);
    free(text);
  }
  sb_emit(sb, STORE_EV_UPSERT, t, id, record);
}

static void sb_start_realtime(sb_store *sb) {
  /* One client at a time: lws 4.1.6 must finish tearing one context down
   * before another starts (overlapping teardowns close an fd twice). */
  if (sb->rt || sb->rt_closing || !sb->realtime_on || !sb->watch_cb || !auth_access_token(sb->auth) ||
      sb->closing)
    return;
  rt_binding bindings[2 * STORE_NTABLES];
  char *filters[STORE_NTABLES];
  for (int t = 0; t < STORE_NTABLES; t++) {
    filters[t] = util_printf("user_id=eq.%s", auth_user_id(sb->auth));
    bindings[2 * t] = (rt_binding){"*", "public", sb->tables[t], filters[t]};
    bindings[2 * t + 1] = (rt_binding){"DELETE", "public", sb->tables[t], NULL};
  }
  char *topic = util_printf("realtime:shelf-%s", auth_user_id(sb->auth));
  rt_options opts = {0};
  opts.url = sb->url;
  opts.anon_key = sb->anon_key;
  opts.access_token = auth_access_token(sb->auth);
  opts.access_token_expires_at = auth_expires_at(sb->auth);
  opts.topic = topic;
  opts.bindings = bindings;
  opts.nbindings = 2 * STORE_NTABLES;
  opts.ca_file = sb->ca_file;
  opts.heartbeat_ms = sb->heartbeat_ms;
  opts.heartbeat_timeout_ms = sb->heartbeat_reply_ms;
  rt_callbacks cbs = {0};
  cbs.on_state = sb_rt_state;
  cbs.on_change = sb_rt_change;
  cbs.on_joined = sb_rt_joined;
  cbs.on_token_needed = sb_rt_token_needed;
  char *err = NULL;
  sb->rt = rt_new(sb->loop, &opts, &cbs, sb, &err);
  if (!sb->rt) {
    char *msg = util_printf("Realtime could not start: %s", err ? err : "unknown error");
    log_warn("supabase: %s", msg);
    sb_set(&sb->rt_state, "error");
    sb_set(&sb->rt_message, msg);
    free(msg);
  }
  free(err);
  free(topic);
  for (int t = 0; t < STORE_NTABLES; t++)
    free(filters[t]);
}

static void sb_rt_closed(void *data) {
  sb_store *sb = data;
  sb->rt_closing = 0;
  if (sb->closing) {
    sb_part_closed(sb);
    return;
  }
  sb_start_realtime(sb); /* for whoever is signed in now, if anyone */
}

static void sb_stop_realtime(sb_store *sb) {
  if (!sb->rt)
    return;
  rt_client *rt = sb->rt;
  sb->rt = NULL;
  sb->rt_closing = 1;
  sb_set(&sb->rt_state, "off");
  rt_close(rt, sb_rt_closed, sb);
}

static int sb_watch(store *st, store_event_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  sb->watch_cb = cb;
  sb->watch_data = data;
  /* A token about to expire is refreshed first; AUTH_EV_REFRESHED starts Realtime. */
  if (auth_start(sb->auth))
    sb_start_realtime(sb);
  return 0;
}

static cJSON *sb_describe(store *st) {
  sb_store *sb = sb_of(st);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "backend", "supabase");
  cJSON_AddStringToObject(o, "url", sb->url);
  auth_describe(sb->auth, o);
  cJSON_AddStringToObject(o, "realtime",
                          sb->rt_state ? sb->rt_state : (sb->realtime_on ? "off" : "disabled"));
  if (sb->rt_message)
    cJSON_AddStringToObject(o, "realtime_message", sb->rt_message);
  return o;
}

/* --- life cycle ---------------------------------------------------------------- */

static void sb_free(sb_store *sb) {
  free(sb->url);
  free(sb->authority);
  free(sb->anon_key);
  free(sb->ca_file);
  for (int t = 0; t < STORE_NTABLES; t++)
    free(sb->tables[t]);
  free(sb->rt_state);
  free(sb->rt_message);
  store_closed_cb closed = sb->closed;
  void *data = sb->closed_data;
  free(sb);
  if (closed)
    closed(data);
}

static void sb_part_closed(void *data) {
  sb_store *sb = data;
  if (--sb->pending_closes == 0)
    sb_free(sb);
}

static void sb_close(store *st, store_closed_cb closed, void *data) {
  sb_store *sb = sb_of(st);
  if (sb->closing)
    return;
  sb->closing = 1;
  sb->closed = closed;
  sb->closed_data = data;
  /* Hand back what is queued or in flight, then release the transports. */
  sb_fail_waiting(sb, STORE_ECLOSED, "shelfd is shutting down");
  list_node *n;
  while ((n = list_pop_front(&sb->inflight)) != NULL) {
    sb_req *r = list_entry(n, sb_req, link);
    http_cancel(sb->http, r->http_id);
    sb_finish(r, STORE_ECLOSED, "shelfd is shutting down", NULL);
  }
  /* First loads waiting on the local copy are answered now, and its
   * answers later dropped. */
  list_node *it;
  list_for_each(it, &sb->cache_loads) {
    sb_cache_load *l = list_entry(it, sb_cache_load, link);
    store_defer_done(&sb->defer, l->cb, l->data, STORE_ECLOSED, "shelfd is shutting down",
                     NULL, 0);
    l->cb = NULL;
  }
  list_for_each(it, &sb->cache_searches) {
    sb_cache_search *s = list_entry(it, sb_cache_search, link);
    if (s->cb)
      store_defer_done(&sb->defer, s->cb, s->data, STORE_ECLOSED, "shelfd is shutting down",
                       NULL, 0);
    s->cb = NULL;
  }
  sb->pending_closes = sb->cache ? 4 : 3;
  sb_stop_realtime(sb);
  if (sb->rt_closing)
    sb->pending_closes++; /* sb_rt_closed counts it down */
  /* The session first: it cancels its requests on the HTTP client and
   * answers a sign-in under way through the queue, closed after it. */
  auth_close(sb->auth, sb_part_closed, sb);
  store_defer_close(&sb->defer, sb_part_closed, sb);
  http_client_close(sb->http, sb_part_closed, sb);
  if (sb->cache)
    sbcache_close(sb->cache, sb_part_closed, sb);
}

static const struct store_ops sb_ops = {
    .name = "supabase",
    .insert = sb_insert,
    .update = sb_update,
    .remove = sb_remove,
    .stamps = sb_stamps,
    .fetch = sb_fetch,
    .fetch_summaries = sb_fetch_summaries,
    .read = sb_read,
    .since = sb_since,
    .count_until = sb_count_until,
    .search = sb_search,
    .search_cancel = sb_search_cancel,
    .watch = sb_watch,
    .describe = sb_describe,
    .close = sb_close,
    .login = sb_login,
    .logout = sb_logout,
};

store *store_supabase_open(uv_loop_t *loop, const store_supabase_config *cfg, char **err) {
  *err = NULL;
  char *authority = http_url_authority(cfg->url);
  if (!authority) {
    *err = util_printf("the Supabase URL must start with https:// (or http:// for a "
                       "local server) and name a host, not '%s'", cfg->url ? cfg->url : "");
    return NULL;
  }
  free(authority); /* read again from the URL kept, below */
  if (!cfg->anon_key || !*cfg->anon_key) {
    *err = util_printf("the Supabase anon key is missing (setup option supabase.anon_key "
                       "or $SHELF_SUPABASE_ANON_KEY)");
    return NULL;
  }
  if (auth_key_kind_of(cfg->anon_key) == AUTH_KEY_SECRET) {
    *err = util_printf("supabase.anon_key is a secret key (sb_secret_... or a service_role "
                       "JWT): it bypasses row-level security and must not be in an editor's "
                       "config; use the project's publishable key (sb_publishable_...)");
    return NULL;
  }
  for (int t = 0; t < STORE_NTABLES; t++) {
    const char *name = cfg->tables[t];
    /* Table names go into URLs: plain identifiers only. */
    if (name && (!*name || strspn(name, "abcdefghijklmnopqrstuvwxyz"
                                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(name))) {
      *err = util_printf("the table name '%s' is not a plain identifier", name);
      return NULL;
    }
  }
  http_options hopts = {0};
  hopts.ca_file = cfg->ca_file;
  hopts.connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 10000;
  hopts.timeout_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : 30000;
  char *herr = NULL;
  http_client *http = http_client_new(loop, &hopts, &herr);
  if (!http) {
    *err = util_printf("cannot start the HTTP client: %s", herr ? herr : "unknown error");
    free(herr);
    return NULL;
  }
  sb_store *sb = util_calloc(1, sizeof *sb);
  sb->base.ops = &sb_ops;
  sb->loop = loop;
  sb->http = http;
  list_init(&sb->waiting);
  list_init(&sb->inflight);
  list_init(&sb->searches);
  sb->url = util_strdup(cfg->url);
  size_t n = strlen(sb->url);
  while (n > 0 && sb->url[n - 1] == '/')
    sb->url[--n] = '\0';
  sb->authority = http_url_authority(sb->url);
  sb->anon_key = util_strdup(cfg->anon_key);
  sb->ca_file = cfg->ca_file ? util_strdup(cfg->ca_file) : NULL;
  sb->realtime_on = cfg->realtime;
  sb->heartbeat_ms = cfg->heartbeat_ms;
  sb->heartbeat_reply_ms = cfg->heartbeat_reply_ms;
  for (int t = 0; t < STORE_NTABLES; t++)
    sb->tables[t] = util_strdup(cfg->tables[t] ? cfg->tables[t]
                                               : store_default_table_name((store_table)t));
  auth_options aopts = {sb->url, cfg->anon_key, cfg->session_path, cfg->redirect_port,
                        cfg->login_timeout_ms};
  sb->auth = auth_new(loop, http, &aopts, sb_on_auth, sb);
  store_defer_init(&sb->defer, loop, &sb->base);
  list_init(&sb->cache_loads);
  list_init(&sb->pagers);
  list_init(&sb->cache_searches);
  if (cfg->cache_path && *cfg->cache_path) {
    sb->cache = sbcache_new(loop, cfg->cache_path, sb->url);
    if (auth_signed_in(sb->auth)) {
      for (int t = 0; t < STORE_NTABLES; t++)
        sb->cache_first[t] = 1;
    } else {
      sbcache_forget(sb->cache); /* the session ended while shelfd was not running */
    }
  }
  return &sb->base;
}
