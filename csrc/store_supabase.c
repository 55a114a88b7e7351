/* store_supabase.c - the Supabase backend (see store_supabase.h): its
 * PostgREST requests and writes, and the wiring of the Auth session (auth.c)
 * around them.
 *
 * Every table request goes through sb_send(), which adds the headers
 * supabase-js sends, waits while the access token is being refreshed, and on
 * a 401 "JWT expired" refreshes once and sends again. Responses are mapped
 * to store.h's codes with messages a person can read. The session itself
 * (tokens, user, session file, sign-in and sign-out) is auth.c's; it tells
 * this file what changed through sb_on_auth(). Realtime is started once a
 * session exists and someone watches.
 * Beside it: reads of the server (store_supabase_read.c), reads and
 * searches answered by the local copy (store_supabase_local.c), and the
 * Realtime wiring (store_supabase_rt.c); what they share is in
 * store_supabase_internal.h.
 */
#include "store_supabase_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mpjson.h"
#include "util.h"

#define SB_RETRY_AFTER_MAX_S 60 /* longest Retry-After (429, 503) that is honoured */

/* --- small helpers ----------------------------------------------------------- */

void sb_emit(sb_store *sb, store_event_type type, store_table t,
             const char *id, const cJSON *record) {
  if (!sb->watch_cb || sb->closing)
    return;
  store_event ev = {type, t, id, record, 0};
  sb->watch_cb(sb->watch_data, &ev);
}

void sb_set(char **slot, const char *value) {
  free(*slot);
  *slot = value ? util_strdup(value) : NULL;
}

void sb_req_free(sb_req *r) {
  if (r->holds_index)
    sbcache_hold_index(r->sb->cache, 0);
  list_remove(&r->link);
  free(r->id);
  free(r->method);
  free(r->path_query);
  free(r->body);
  cJSON_Delete(r->acc);
  free(r->after);
  free(r->filter);
  free(r->sent_last);
  cJSON_Delete(r->seen);
  free(r);
}

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
  if (write) /* a read has no body: 32 bytes less on each */
    h[i++] = "Content-Type: application/json";
  h[i++] = "X-Client-Info: shelf.nvim";
  if (prefer)
    h[i++] = prefer;
  h[i] = NULL;
  return h;
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
  case SB_NEWEST:
  case SB_COUNT:
  case SB_SEARCH: /* ids or a count only: nothing to keep */
    break;
  }
}

/* The count of all rows an answer to count=exact gives after the '/' of
 * Content-Range ("0-999/30000"); -1 without one ("0-999/" then a star). */
static long long sb_range_total(const http_response *res) {
  const char *slash = res->content_range ? strchr(res->content_range, '/') : NULL;
  char *end = NULL;
  long long count = slash ? strtoll(slash + 1, &end, 10) : -1;
  return !slash || end == slash + 1 || count < 0 ? -1 : count;
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
    r->sent_total = sb_range_total(res);
  }
  /* Belt and braces with row-level security: never take another user's rows,
   * nor rows whose owner is missing (every read here selects user_id). */
  /* Walk the list: cJSON_GetArrayItem(i) walks from the head, quadratic on 10k rows. */
  for (cJSON *row = body->child, *next; row; row = next) {
    next = row->next;
    const char *owner = mpjson_get_str(row, "user_id");
    int stamps_only = r->op == SB_STAMPS || r->op == SB_NEWEST;
    if (!stamps_only && r->op != SB_REMOVE && auth_user_id(sb->auth) &&
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
    sb_written_keep(sb, r->t, body->child);
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
  case SB_NEWEST:
  case SB_STAMPS: {
    cJSON *pairs = cJSON_CreateArray();
    if (r->op == SB_NEWEST) {
      /* [count, pair, ...]; null for a count not sent: since and count_until tell. */
      long long count = sb_range_total(res);
      cJSON_AddItemToArray(pairs,
                           count < 0 ? cJSON_CreateNull() : cJSON_CreateNumber((double)count));
    }
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
    long long count = sb_range_total(res);
    cJSON_Delete(body);
    if (count < 0) {
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
                                          "get",    "search", "since",  "count",  "newest"};

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

void sb_send(sb_req *r) {
  sb_store *sb = r->sb;
  if (sb->closing) {
    sb_finish(r, STORE_ECLOSED, "shelfd is shutting down", NULL);
    return;
  }
  if (!auth_signed_in(sb->auth) &&
      (r->op == SB_STAMPS || r->op == SB_FETCH || r->op == SB_SEARCH || r->op == SB_SINCE ||
       r->op == SB_COUNT || r->op == SB_NEWEST)) {
    /* Signed out, the library is empty: not an error to retry. */
    cJSON *none = cJSON_CreateArray();
    if (r->op == SB_COUNT || r->op == SB_NEWEST)
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
  /* The first page of a read in pages: its count tells a cap from the end. */
  if (r->op == SB_COUNT || (r->op == SB_NEWEST && !r->uncounted) ||
      (r->parent && r->parent->page_rows && !r->parent->after))
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

sb_req *sb_req_new(sb_store *sb, sb_op op, store_table t, const char *method,
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

char *sb_filter_user(sb_store *sb) {
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

/* --- the Auth session's changes -------------------------------------------------- */

/* Only what waits now: a request sent again may come back to wait. */
static void sb_fail_waiting(sb_store *sb, int status, const char *msg) {
  list_node now, *n;
  list_take_all(&now, &sb->waiting);
  list_node *behind = &sb->cache_behind; /* pages waiting for the local copy */
  while ((n = list_pop_front(behind)) != NULL)
    list_push_back(&now, n);
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
  sb_written_clear(sb);
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

/* The status says whether the local copy's search index is being built. */
static void sb_cache_indexing(void *data, int indexing) {
  (void)indexing;
  sb_emit(data, STORE_EV_STATE, STORE_BLOCKS, NULL, NULL);
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
  if (sb->cache && sbcache_indexing(sb->cache))
    cJSON_AddTrueToObject(o, "indexing");
  return o;
}

/* --- life cycle ---------------------------------------------------------------- */

static void sb_free(sb_store *sb) {
  sb_written_clear(sb);
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

void sb_part_closed(void *data) {
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
    .delta = sb_delta,
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
  list_init(&sb->cache_behind);
  /* The copy's writer takes a 4 MB page in about 0.1 s, slower than a
   * server sends one: a bound of 64 MiB lets a 100k sign-in read at the
   * server's pace (11 s; 16 s at 16 MiB, 8 s unbounded, with 500 MiB). */
  sb->cache_backlog_max = cfg->cache_backlog_max ? cfg->cache_backlog_max : 64u << 20;
  list_init(&sb->cache_searches);
  if (cfg->cache_path && *cfg->cache_path) {
    sb->cache = sbcache_new(loop, cfg->cache_path, sb->url);
    sbcache_on_indexing(sb->cache, sb_cache_indexing, sb);
    if (auth_signed_in(sb->auth)) {
      for (int t = 0; t < STORE_NTABLES; t++)
        sb->cache_first[t] = 1;
    } else {
      sbcache_forget(sb->cache); /* the session ended while shelfd was not running */
    }
  }
  return &sb->base;
}
