/* store_supabase.c - the Supabase backend (see store_supabase.h).
 *
 * Every table request goes through sb_send(), which adds the headers
 * supabase-js sends, waits while the access token is being refreshed, and on
 * a 401 "JWT expired" refreshes once and sends again. Responses are mapped
 * to store.h's codes with messages a person can read. The session (tokens,
 * user) lives in memory and in a 0600 file; tokens never reach a log.
 * Realtime (realtime.c) is started once a session exists and someone watches.
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

#include "http.h"
#include "log.h"
#include "realtime.h"
#include "util.h"

#define SB_REFRESH_AHEAD_S 90   /* refresh the token this long before expiry */
#define SB_IDS_PER_FETCH 150    /* ids in one `id=in.(...)` query */
#define SB_MAX_SESSION 65536    /* bytes in a session file */
#define SB_CLOCK_CHECK_S 60     /* the refresh timer looks at the wall clock this often */
#define SB_TOKEN_RETRY_MAX_S 60 /* longest wait before asking Auth again for Realtime */
#define SB_RETRY_AFTER_MAX_S 60 /* longest Retry-After (429, 503) that is honoured */

typedef enum { SB_INSERT, SB_UPDATE, SB_REMOVE, SB_STAMPS, SB_FETCH, SB_GET_ONE } sb_op;

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
  struct sb_req *next; /* in the waiting or in-flight list */
} sb_req;

struct sb_store {
  store base;
  uv_loop_t *loop;
  http_client *http;
  rt_client *rt;
  char *url, *anon_key, *ca_file, *session_path;
  char *authority; /* host[:port] of url, for messages */
  char *tables[STORE_NTABLES];
  int realtime_on;
  unsigned heartbeat_ms, heartbeat_reply_ms; /* 0: the Realtime client's defaults */

  /* The session. */
  char *access_token, *refresh_token, *user_id, *user_email;
  double expires_at; /* unix seconds */
  double refresh_at; /* when to refresh it, unix seconds */
  char *session_problem; /* why there is no session, for describe */

  long token_http;       /* the refresh request in flight, or 0 */
  sb_req *waiting;       /* requests waiting for a fresh token */
  sb_req *inflight;      /* requests sent, for close */
  uv_timer_t refresh_timer;
  int refresh_failures;
  int rt_token_refusals; /* tokens Realtime wanted replaced since it last went live */
  /* Bumped when the session ends or another user's begins: an answer to a
   * request sent for an older session is dropped, never taken. */
  unsigned long session;

  store_event_cb watch_cb;
  void *watch_data;
  char *rt_state;
  char *rt_message;

  /* Sign-in, sign-out in progress. */
  store_done_cb auth_cb;
  void *auth_data;
  long auth_http;

  int rt_closing;  /* a Realtime client is shutting down */
  store_defer defer; /* every completion goes through it (store.h) */
  int closing;
  store_closed_cb closed;
  void *closed_data;
  int pending_closes;
};

static void sb_send(sb_req *r);
static void sb_refresh_token(sb_store *sb);
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

static const char *sb_json_str(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void sb_req_free(sb_req *r) {
  free(r->id);
  free(r->method);
  free(r->path_query);
  free(r->body);
  cJSON_Delete(r->acc);
  free(r);
}

static void sb_list_remove(sb_req **list, sb_req *r) {
  for (sb_req **p = list; *p; p = &(*p)->next) {
    if (*p == r) {
      *p = r->next;
      r->next = NULL;
      return;
    }
  }
}

/* Finish a logical request: exactly one callback, then free. */
static void sb_finish(sb_req *r, int status, const char *error, cJSON *rows) {
  sb_store *sb = r->sb;
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

/* --- the session ------------------------------------------------------------- */

static double sb_wall_now(void);

/* The token expires at `expires_at` (unix seconds): refresh it
 * SB_REFRESH_AHEAD_S before, or short-lived ones (tests use seconds) at two
 * thirds of their life. */
static void sb_set_expiry(sb_store *sb, double expires_at) {
  double life = expires_at - sb_wall_now();
  sb->expires_at = expires_at;
  sb->refresh_at = expires_at - (life < 3 * SB_REFRESH_AHEAD_S ? life / 3 : SB_REFRESH_AHEAD_S);
}

static void sb_forget_session(sb_store *sb, const char *why) {
  sb_set(&sb->access_token, NULL);
  sb_set(&sb->refresh_token, NULL);
  sb_set(&sb->user_id, NULL);
  sb_set(&sb->user_email, NULL);
  sb->expires_at = sb->refresh_at = 0;
  sb_set(&sb->session_problem, why);
  if (sb->session_path && unlink(sb->session_path) < 0 && errno != ENOENT)
    log_warn("supabase: cannot delete the session file: %s", strerror(errno));
}

/* Write the session with mode 0600, atomically (temp file + rename). */
static int sb_save_session(sb_store *sb) {
  if (!sb->session_path || !sb->refresh_token)
    return 0;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "access_token", sb->access_token);
  cJSON_AddStringToObject(o, "refresh_token", sb->refresh_token);
  cJSON_AddNumberToObject(o, "expires_at", sb->expires_at);
  cJSON_AddStringToObject(o, "user_id", sb->user_id);
  cJSON_AddStringToObject(o, "email", sb->user_email ? sb->user_email : "");
  cJSON_AddStringToObject(o, "url", sb->url);
  char *text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  char *tmp = util_printf("%s.tmp", sb->session_path);
  int rc = -1;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    size_t n = strlen(text);
    rc = fchmod(fd, 0600) == 0 && write(fd, text, n) == (ssize_t)n ? 0 : -1;
    if (close(fd) < 0)
      rc = -1;
    if (rc == 0 && rename(tmp, sb->session_path) < 0)
      rc = -1;
    if (rc < 0)
      unlink(tmp);
  }
  if (rc < 0)
    log_warn("supabase: cannot save the session to %s: %s", sb->session_path,
             strerror(errno));
  free(tmp);
  free(text);
  return rc;
}

/* Read the session file, if any. A file others can read is refused. */
static void sb_load_session(sb_store *sb) {
  if (!sb->session_path)
    return;
  int fd = open(sb->session_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT)
      sb_set(&sb->session_problem, "cannot read the session file");
    return;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || (st.st_mode & 077) != 0) {
    close(fd);
    char *msg = util_printf("the session file %s is readable by others, so it "
                            "was not used; sign in again (:Shelf login)",
                            sb->session_path);
    log_warn("supabase: %s", msg);
    sb_set(&sb->session_problem, msg);
    free(msg);
    return;
  }
  if (st.st_size <= 0 || st.st_size > SB_MAX_SESSION) {
    close(fd);
    sb_set(&sb->session_problem, "the session file is damaged; sign in again");
    return;
  }
  char *text = util_malloc((size_t)st.st_size + 1);
  ssize_t n = read(fd, text, (size_t)st.st_size);
  close(fd);
  text[n > 0 ? n : 0] = '\0';
  cJSON *o = cJSON_Parse(text);
  free(text);
  const char *rt = sb_json_str(o, "refresh_token");
  const char *uid = sb_json_str(o, "user_id");
  const char *url = sb_json_str(o, "url");
  if (!rt || !uid || !util_is_uuid(uid)) {
    sb_set(&sb->session_problem, "the session file is damaged; sign in again");
  } else if (url && strcmp(url, sb->url) != 0) {
    sb_set(&sb->session_problem,
           "the saved session belongs to another project; sign in again");
  } else {
    sb_set(&sb->access_token, sb_json_str(o, "access_token"));
    sb_set(&sb->refresh_token, rt);
    sb_set(&sb->user_id, uid);
    sb_set(&sb->user_email, sb_json_str(o, "email"));
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(o, "expires_at");
    sb_set_expiry(sb, cJSON_IsNumber(exp) ? exp->valuedouble : 0);
  }
  cJSON_Delete(o);
}

/* Take a token response (password or refresh grant). 0 or -1. */
static int sb_take_tokens(sb_store *sb, const cJSON *o) {
  const char *at = sb_json_str(o, "access_token");
  const char *rt = sb_json_str(o, "refresh_token");
  const cJSON *user = cJSON_GetObjectItemCaseSensitive(o, "user");
  const char *uid = sb_json_str(user, "id");
  /* The id goes into every query's filter: only a UUID is taken. */
  if (!at || !rt || !uid || !util_is_uuid(uid))
    return -1;
  sb_set(&sb->access_token, at);
  sb_set(&sb->refresh_token, rt);
  sb_set(&sb->user_id, uid);
  sb_set(&sb->user_email, sb_json_str(user, "email"));
  const cJSON *exp = cJSON_GetObjectItemCaseSensitive(o, "expires_at");
  const cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "expires_in");
  if (cJSON_IsNumber(exp))
    sb_set_expiry(sb, exp->valuedouble);
  else
    sb_set_expiry(sb, sb_wall_now() + (cJSON_IsNumber(in) ? in->valuedouble : 3600));
  sb_set(&sb->session_problem, NULL);
  sb->refresh_failures = 0;
  return 0;
}

/* Unix seconds, by the wall clock (expires_at is in the same terms). */
static double sb_wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Seconds until the token should be refreshed (<= 0: now). */
static double sb_refresh_in(const sb_store *sb) { return sb->refresh_at - sb_wall_now(); }

static void sb_schedule_refresh(sb_store *sb);

/* Scheduled: refresh if the wall clock says it is time, else wait on. */
static void sb_on_refresh_timer(uv_timer_t *t) {
  sb_store *sb = t->data;
  if (sb_refresh_in(sb) < 0.5)
    sb_refresh_token(sb);
  else
    sb_schedule_refresh(sb);
}

/* A retry after a failed refresh, or one Realtime asked for: whatever the clock says. */
static void sb_on_refresh_retry(uv_timer_t *t) { sb_refresh_token(t->data); }

static void sb_schedule_refresh(sb_store *sb) {
  double in = sb_refresh_in(sb);
  if (in < 0)
    in = 0;
  /* libuv's timers stand still while the machine sleeps, the wall clock
   * does not: look at it every minute rather than trust one long timer.
   * (Also keeps 1e300 or inf from the server away from the cast.) */
  if (!(in < SB_CLOCK_CHECK_S))
    in = SB_CLOCK_CHECK_S;
  uv_timer_start(&sb->refresh_timer, sb_on_refresh_timer, (uint64_t)(in * 1000), 0);
}

/* ms times a random factor in [0.75, 1.25), so editors do not retry in step. */
static double sb_jitter(double ms) {
  unsigned char b;
  uv_random(NULL, NULL, &b, 1, 0, NULL);
  return ms * (0.75 + 0.5 * (b / 256.0));
}

/* --- errors ------------------------------------------------------------------ */

/* A message from an error body: PostgREST {code,message,details,hint} or
 * Auth {msg|message|error_description, error_code|code}. Caller frees. */
static char *sb_error_text(const http_response *res, const char **code_out) {
  cJSON *o = res->body ? cJSON_Parse(res->body) : NULL;
  const char *msg = sb_json_str(o, "message");
  if (!msg)
    msg = sb_json_str(o, "msg");
  if (!msg)
    msg = sb_json_str(o, "error_description");
  const char *code = sb_json_str(o, "code");
  if (!code)
    code = sb_json_str(o, "error_code");
  static char code_buf[64];
  snprintf(code_buf, sizeof code_buf, "%s", code ? code : "");
  *code_out = code_buf;
  char *out = msg ? util_printf("%s%s%s%s", msg, code ? " (" : "", code ? code : "",
                                code ? ")" : "")
                  : util_printf("HTTP %ld", res->status);
  cJSON_Delete(o);
  return out;
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
  const char *code;
  char *text = sb_error_text(res, &code);
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
  return rc;
}

/* --- table requests ---------------------------------------------------------- */

static const char *const *sb_headers(sb_store *sb, int write, char *auth, size_t n,
                                     char *apikey, size_t m, const char *prefer) {
  static const char *h[8];
  snprintf(auth, n, "Authorization: Bearer %s", sb->access_token);
  snprintf(apikey, m, "apikey: %s", sb->anon_key);
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

/* Convert PostgREST's answer into store.h rows for the request's op. */
static void sb_complete(sb_req *r, const http_response *res) {
  sb_store *sb = r->sb;
  cJSON *body = res->body_len ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
  if (res->body_len && !cJSON_IsArray(body)) {
    cJSON_Delete(body);
    sb_finish(r, STORE_EBACKEND, "Supabase sent an answer that is not a JSON list", NULL);
    return;
  }
  if (!body)
    body = cJSON_CreateArray();
  /* Belt and braces with row-level security: never take another user's rows,
   * nor rows whose owner is missing (every read here selects user_id). */
  /* Walk the list: cJSON_GetArrayItem(i) walks from the head, quadratic on 10k rows. */
  for (cJSON *row = body->child, *next; row; row = next) {
    next = row->next;
    const char *owner = sb_json_str(row, "user_id");
    if (r->op != SB_STAMPS && r->op != SB_REMOVE && sb->user_id &&
        (!owner || strcmp(owner, sb->user_id) != 0)) {
      log_warn("supabase: dropped a %s row of another user", sb->tables[r->t]);
      cJSON_Delete(cJSON_DetachItemViaPointer(body, row));
    }
  }
  int n = cJSON_GetArraySize(body);
  switch (r->op) {
  case SB_INSERT:
    if (n == 0) {
      /* A retried insert that had landed: the id is ours, so fetch it. */
      sb_req *get = util_calloc(1, sizeof *get);
      get->sb = sb;
      get->op = SB_GET_ONE;
      get->t = r->t;
      get->method = util_strdup("GET");
      char *id = http_escape(r->id);
      get->path_query = util_printf("%s?select=*&id=eq.%s", sb->tables[r->t], id);
      free(id);
      get->cb = r->cb;
      get->data = r->data;
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
    sb_finish(r, 0, NULL, body);
    return;
  }
}

static void sb_on_response(void *data, const http_response *res) {
  sb_req *r = data;
  sb_store *sb = r->sb;
  sb_list_remove(&sb->inflight, r);
  r->http_id = 0;
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
  int jwt_expired = sb_is_jwt_expired(res);
  if (jwt_expired && !r->auth_retried && sb->refresh_token) {
    /* Refresh once and send again. */
    r->auth_retried = 1;
    r->next = sb->waiting;
    sb->waiting = r;
    sb_refresh_token(sb);
    return;
  }
  char *msg;
  int rc;
  if (jwt_expired && r->auth_retried) {
    const char *code;
    char *text = sb_error_text(res, &code);
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
  if (!sb->refresh_token && (r->op == SB_STAMPS || r->op == SB_FETCH)) {
    /* Signed out, the library is empty: not an error to retry. */
    sb_finish(r, 0, NULL, cJSON_CreateArray());
    return;
  }
  if (!sb->refresh_token) {
    char *msg = util_printf("not signed in to Supabase (%s); use :Shelf login",
                            sb->session_problem ? sb->session_problem : "no session");
    sb_finish(r, STORE_EBACKEND, msg, NULL);
    free(msg);
    return;
  }
  if (sb->token_http || !sb->access_token ||
      sb->expires_at - sb_wall_now() < 5) {
    r->next = sb->waiting;
    sb->waiting = r;
    sb_refresh_token(sb);
    return;
  }
  char auth[4096], apikey[1024];
  const char *prefer = NULL;
  int write = strcmp(r->method, "GET") != 0;
  if (r->op == SB_INSERT)
    prefer = "Prefer: return=representation,resolution=ignore-duplicates";
  else if (write)
    prefer = "Prefer: return=representation";
  const char *const *h = sb_headers(sb, write, auth, sizeof auth, apikey, sizeof apikey, prefer);
  char *url = util_printf("%s/rest/v1/%s", sb->url, r->path_query);
  r->session = sb->session;
  r->http_id = http_request(sb->http, r->method, url, h, r->body,
                            r->body ? strlen(r->body) : 0, sb_on_response, r);
  free(url);
  explicit_bzero(auth, sizeof auth);
  if (r->http_id < 0) {
    r->http_id = 0;
    sb_finish(r, STORE_EBACKEND, "the HTTP request could not be made", NULL);
    return;
  }
  r->next = sb->inflight;
  sb->inflight = r;
}

static sb_req *sb_req_new(sb_store *sb, sb_op op, store_table t, const char *method,
                          char *path_query, char *body, store_done_cb cb, void *data) {
  sb_req *r = util_calloc(1, sizeof *r);
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
  if (!sb->user_id)
    return util_strdup("");
  return util_printf("&user_id=eq.%s", sb->user_id);
}

static int sb_insert(store *st, store_table t, const cJSON *record, store_done_cb cb,
                     void *data) {
  sb_store *sb = sb_of(st);
  const char *id = sb_json_str(record, "id");
  if (!id || !util_is_uuid(id))
    return STORE_EINVALID;
  cJSON *row = cJSON_Duplicate(record, 1);
  if (sb->user_id) {
    cJSON_DeleteItemFromObjectCaseSensitive(row, "user_id");
    cJSON_AddStringToObject(row, "user_id", sb->user_id);
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
  char *user = sb_filter_user(sb);
  sb_req *r = sb_req_new(sb, SB_UPDATE, t, "PATCH",
                         util_printf("%s?id=eq.%s%s&select=*", sb->tables[t], id, user),
                         body, cb, data);
  free(user);
  sb_send(r);
  return 0;
}

static int sb_remove(store *st, store_table t, const char *id, store_done_cb cb,
                     void *data) {
  sb_store *sb = sb_of(st);
  if (!util_is_uuid(id))
    return STORE_EINVALID;
  char *user = sb_filter_user(sb);
  sb_req *r = sb_req_new(sb, SB_REMOVE, t, "DELETE",
                         util_printf("%s?id=eq.%s%s&select=id", sb->tables[t], id, user),
                         NULL, cb, data);
  free(user);
  sb_send(r);
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

static int sb_fetch(store *st, store_table t, const cJSON *ids, store_done_cb cb,
                    void *data) {
  sb_store *sb = sb_of(st);
  char *user = sb_filter_user(sb);
  if (!ids) {
    sb_req *r = sb_req_new(sb, SB_FETCH, t, "GET",
                           util_printf("%s?select=*%s", sb->tables[t], user), NULL, cb, data);
    free(user);
    sb_send(r);
    return 0;
  }
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

/* --- Auth --------------------------------------------------------------------- */

static void sb_fail_waiting(sb_store *sb, int status, const char *msg) {
  sb_req *w = sb->waiting;
  sb->waiting = NULL;
  while (w) {
    sb_req *next = w->next;
    w->next = NULL;
    sb_finish(w, status, msg, NULL);
    w = next;
  }
}

static void sb_send_waiting(sb_store *sb) {
  sb_req *w = sb->waiting;
  sb->waiting = NULL;
  while (w) {
    sb_req *next = w->next;
    w->next = NULL;
    sb_send(w);
    w = next;
  }
}

static const char *const *sb_auth_headers(sb_store *sb, char *apikey, size_t n,
                                          char *auth, size_t m, int bearer_session) {
  static const char *h[6];
  snprintf(apikey, n, "apikey: %s", sb->anon_key);
  snprintf(auth, m, "Authorization: Bearer %s",
           bearer_session && sb->access_token ? sb->access_token : sb->anon_key);
  h[0] = apikey;
  h[1] = auth;
  h[2] = "Content-Type: application/json";
  h[3] = "X-Client-Info: shelf.nvim";
  h[4] = NULL;
  return h;
}

/* The session ended, or another user's began: the refresh under way (whose
 * late answer would bring the old session back) is cancelled, requests
 * waiting for it fail with status and msg, and answers to requests sent
 * before are dropped (sb->session). */
/* A refresh under way would only bring back an older session's tokens. */
static void sb_cancel_refresh(sb_store *sb) {
  if (sb->token_http) {
    http_cancel(sb->http, sb->token_http);
    sb->token_http = 0;
  }
  sb->rt_token_refusals = 0;
}

static void sb_session_changed(sb_store *sb, int status, const char *msg) {
  sb->session++;
  sb_cancel_refresh(sb);
  uv_timer_stop(&sb->refresh_timer);
  sb->refresh_failures = 0;
  sb_fail_waiting(sb, status, msg);
}

static void sb_on_refreshed(void *data, const http_response *res) {
  sb_store *sb = data;
  sb->token_http = 0;
  if (sb->closing)
    return;
  cJSON *o = res->status == 200 ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
  if (o && sb_take_tokens(sb, o) == 0) {
    cJSON_Delete(o);
    sb_save_session(sb);
    sb_schedule_refresh(sb);
    if (sb->rt)
      rt_set_token(sb->rt, sb->access_token, sb->expires_at);
    else
      sb_start_realtime(sb);
    sb_send_waiting(sb);
    sb_emit(sb, STORE_EV_STATE, STORE_BLOCKS, NULL, NULL);
    return;
  }
  cJSON_Delete(o);
  if (res->status == 0 || res->status >= 500 || res->status == 429) {
    /* The server is away: keep the session, try again with backoff, and let
     * the sync engine retry the requests that were waiting. */
    char *msg;
    int rc = sb_map_error(sb, res, &msg);
    sb->refresh_failures++;
    double ms = sb_jitter(1000.0 * (1 << (sb->refresh_failures < 5 ? sb->refresh_failures : 5)));
    log_warn("supabase: refreshing the session failed: %s; retrying in %.0f s", msg, ms / 1000);
    /* Retried by the sync engine, unless retrying cannot help (TLS). */
    sb_fail_waiting(sb, rc == STORE_EBACKEND ? STORE_EBACKEND : STORE_EUNAVAILABLE, msg);
    free(msg);
    uv_timer_start(&sb->refresh_timer, sb_on_refresh_retry, (uint64_t)ms, 0);
    return;
  }
  /* The refresh token was refused: the session is over. */
  const char *code;
  char *text = sb_error_text(res, &code);
  char *msg = util_printf("your Supabase session ended (%s); sign in again with :Shelf login", text);
  free(text);
  log_warn("supabase: %s", msg);
  sb_forget_session(sb, msg);
  sb_session_changed(sb, STORE_EBACKEND, msg);
  free(msg);
  sb_stop_realtime(sb);
  sb_emit(sb, STORE_EV_RESET, STORE_BLOCKS, NULL, NULL);
}

static void sb_refresh_token(sb_store *sb) {
  if (sb->token_http || sb->closing || !sb->refresh_token)
    return;
  uv_timer_stop(&sb->refresh_timer);
  char apikey[1024], auth[4096];
  const char *const *h = sb_auth_headers(sb, apikey, sizeof apikey, auth, sizeof auth, 0);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "refresh_token", sb->refresh_token);
  char *body = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  char *url = util_printf("%s/auth/v1/token?grant_type=refresh_token", sb->url);
  sb->token_http = http_request(sb->http, "POST", url, h, body, strlen(body),
                                sb_on_refreshed, sb);
  explicit_bzero(body, strlen(body));
  free(body);
  free(url);
  if (sb->token_http < 0) {
    sb->token_http = 0;
    sb_fail_waiting(sb, STORE_EUNAVAILABLE, "the token refresh could not be sent");
  }
}

static void sb_on_login(void *data, const http_response *res) {
  sb_store *sb = data;
  sb->auth_http = 0;
  store_done_cb cb = sb->auth_cb;
  void *cb_data = sb->auth_data;
  sb->auth_cb = NULL;
  if (sb->closing) {
    cb(cb_data, STORE_ECLOSED, "shelfd is shutting down", NULL);
    return;
  }
  cJSON *o = res->status == 200 ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
  char *old_user = sb->user_id ? util_strdup(sb->user_id) : NULL;
  if (!o || sb_take_tokens(sb, o) < 0) {
    cJSON_Delete(o);
    free(old_user);
    char *msg;
    int rc;
    if (res->status == 400 || res->status == 401) {
      const char *code;
      char *text = sb_error_text(res, &code);
      msg = util_printf("%s", text);
      free(text);
      rc = STORE_EBACKEND;
    } else {
      rc = sb_map_error(sb, res, &msg);
    }
    cb(cb_data, rc, msg, NULL);
    free(msg);
    return;
  }
  cJSON_Delete(o);
  if (old_user && strcmp(old_user, sb->user_id) == 0) {
    /* The same account again: what waited for the refresh goes out now. */
    sb_cancel_refresh(sb);
    sb_send_waiting(sb);
  } else {
    sb_session_changed(sb, STORE_EBACKEND, "signed in as another user before it was sent");
  }
  sb_save_session(sb);
  sb_schedule_refresh(sb);
  sb_stop_realtime(sb);
  sb_start_realtime(sb);
  cJSON *rows = cJSON_CreateArray();
  cJSON *user = cJSON_CreateObject();
  cJSON_AddStringToObject(user, "id", sb->user_id);
  if (sb->user_email)
    cJSON_AddStringToObject(user, "email", sb->user_email);
  cJSON_AddItemToArray(rows, user);
  free(old_user);
  cb(cb_data, 0, NULL, rows);
  /* A new user sees another library: everything is loaded again. */
  sb_emit(sb, STORE_EV_RESET, STORE_BLOCKS, NULL, NULL);
}

static int sb_login(store *st, const char *email, const char *password, store_done_cb cb,
                    void *data) {
  sb_store *sb = sb_of(st);
  if (sb->auth_cb)
    return STORE_EINVALID;
  char apikey[1024], auth[4096];
  const char *const *h = sb_auth_headers(sb, apikey, sizeof apikey, auth, sizeof auth, 0);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "email", email);
  cJSON_AddStringToObject(o, "password", password);
  char *body = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  char *url = util_printf("%s/auth/v1/token?grant_type=password", sb->url);
  sb->auth_cb = cb;
  sb->auth_data = data;
  sb->auth_http = http_request(sb->http, "POST", url, h, body, strlen(body), sb_on_login, sb);
  explicit_bzero(body, strlen(body));
  free(body);
  free(url);
  if (sb->auth_http < 0) {
    sb->auth_http = 0;
    sb->auth_cb = NULL;
    return STORE_EBACKEND;
  }
  return 0;
}

static void sb_on_logout(void *data, const http_response *res) {
  sb_store *sb = data;
  (void)res; /* signed out locally whatever the server said */
  sb->auth_http = 0;
  store_done_cb cb = sb->auth_cb;
  void *cb_data = sb->auth_data;
  sb->auth_cb = NULL;
  cb(cb_data, 0, NULL, cJSON_CreateArray());
  if (!sb->closing)
    sb_emit(sb, STORE_EV_RESET, STORE_BLOCKS, NULL, NULL);
}

/* A sign-out with no session to end on the server, in its turn. */
static void sb_logged_out_here(void *data, int status, const char *error, cJSON *rows) {
  (void)status;
  (void)error;
  (void)rows;
  http_response none = {0};
  sb_on_logout(data, &none);
}

static int sb_logout(store *st, store_done_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  if (sb->auth_cb)
    return STORE_EINVALID;
  char apikey[1024], auth[4096];
  const char *const *h = sb_auth_headers(sb, apikey, sizeof apikey, auth, sizeof auth, 1);
  int had_session = sb->access_token != NULL;
  char *url = util_printf("%s/auth/v1/logout", sb->url);
  sb_stop_realtime(sb);
  sb_forget_session(sb, "signed out");
  sb_session_changed(sb, STORE_EBACKEND, "signed out");
  sb->auth_cb = cb;
  sb->auth_data = data;
  sb->auth_http = had_session
                      ? http_request(sb->http, "POST", url, h, "{}", 2, sb_on_logout, sb)
                      : -1;
  explicit_bzero(auth, sizeof auth);
  free(url);
  if (sb->auth_http < 0) {
    /* Nothing to tell the server: done locally, answered from the loop. */
    sb->auth_http = 0;
    store_defer_done(&sb->defer, sb_logged_out_here, sb, 0, NULL, NULL, 0);
  }
  return 0;
}

/* --- Realtime ------------------------------------------------------------------ */

static void sb_rt_state(void *data, rt_state state, const char *message) {
  sb_store *sb = data;
  if (state == RT_JOINED)
    sb->rt_token_refusals = 0;
  sb_set(&sb->rt_state, rt_state_name(state));
  sb_set(&sb->rt_message, message);
  if (message)
    log_info("supabase: %s", message);
  sb_emit(sb, STORE_EV_STATE, STORE_BLOCKS, NULL, NULL);
}

/* Realtime holds an expired token (the server closed the channel or refused
 * the join for it, or the wall clock says so after a sleep) and waits for a
 * new one: refresh now; sb_on_refreshed hands it over with rt_set_token. */
static void sb_rt_token_needed(void *data) {
  sb_store *sb = data;
  if (sb->token_http || !sb->refresh_token)
    return; /* the refresh under way brings one; signed out: nothing to do */
  if (++sb->rt_token_refusals > 1) {
    /* A token fresh from Auth was refused as well (the clocks disagree, or
     * the server is confused): ask again later, not in a loop. */
    int n = sb->rt_token_refusals - 1;
    double s = 1 << (n < 6 ? n : 6);
    if (s > SB_TOKEN_RETRY_MAX_S)
      s = SB_TOKEN_RETRY_MAX_S;
    log_warn("supabase: Realtime refused a freshly refreshed token; refreshing again in %.0f s", s);
    uv_timer_start(&sb->refresh_timer, sb_on_refresh_retry, (uint64_t)(sb_jitter(s * 1000)), 0);
    return;
  }
  log_info("supabase: Realtime needs a new token; refreshing the session");
  sb_refresh_token(sb);
}

static void sb_rt_joined(void *data) {
  /* Events sent while we were away are lost: load everything again. */
  sb_emit(data, STORE_EV_RESYNC, STORE_BLOCKS, NULL, NULL);
}

/* Bindings come in pairs per table: [2t] filtered to the user, [2t+1] an
 * unfiltered DELETE (a filtered binding never sees a DELETE without replica
 * identity full). */
static void sb_rt_change(void *data, int binding, const cJSON *payload) {
  sb_store *sb = data;
  if (binding < 0 || binding >= 2 * STORE_NTABLES)
    return;
  store_table t = (store_table)(binding / 2);
  const char *type = sb_json_str(payload, "type");
  const cJSON *record = cJSON_GetObjectItemCaseSensitive(payload, "record");
  const cJSON *old = cJSON_GetObjectItemCaseSensitive(payload, "old_record");
  if (!type)
    return;
  if (strcmp(type, "DELETE") == 0) {
    const char *id = sb_json_str(old, "id");
    if (id)
      sb_emit(sb, STORE_EV_DELETE, t, id, NULL);
    return;
  }
  const char *id = sb_json_str(record, "id");
  const char *owner = sb_json_str(record, "user_id");
  if (!id)
    return;
  if (!owner || !sb->user_id || strcmp(owner, sb->user_id) != 0) {
    log_warn("supabase: dropped a realtime event for another user");
    return;
  }
  const cJSON *errors = cJSON_GetObjectItemCaseSensitive(payload, "errors");
  if (errors && !cJSON_IsNull(errors) && cJSON_GetArraySize(errors) > 0) {
    /* Records over 1 MB arrive cut short: fetch the row instead. */
    sb_emit(sb, STORE_EV_UPSERT, t, id, NULL);
    return;
  }
  sb_emit(sb, STORE_EV_UPSERT, t, id, record);
}

static void sb_start_realtime(sb_store *sb) {
  /* One client at a time: lws 4.1.6 must finish tearing one context down
   * before another starts (overlapping teardowns close an fd twice). */
  if (sb->rt || sb->rt_closing || !sb->realtime_on || !sb->watch_cb || !sb->access_token || sb->closing)
    return;
  rt_binding bindings[2 * STORE_NTABLES];
  char *filters[STORE_NTABLES];
  for (int t = 0; t < STORE_NTABLES; t++) {
    filters[t] = util_printf("user_id=eq.%s", sb->user_id);
    bindings[2 * t] = (rt_binding){"*", "public", sb->tables[t], filters[t]};
    bindings[2 * t + 1] = (rt_binding){"DELETE", "public", sb->tables[t], NULL};
  }
  char *topic = util_printf("realtime:shelf-%s", sb->user_id);
  rt_options opts = {0};
  opts.url = sb->url;
  opts.anon_key = sb->anon_key;
  opts.access_token = sb->access_token;
  opts.access_token_expires_at = sb->expires_at;
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
  if (sb->refresh_token) {
    if (sb->expires_at - sb_wall_now() < SB_REFRESH_AHEAD_S)
      sb_refresh_token(sb); /* starts Realtime when the token is fresh */
    else {
      sb_schedule_refresh(sb);
      sb_start_realtime(sb);
    }
  }
  return 0;
}

static cJSON *sb_describe(store *st) {
  sb_store *sb = sb_of(st);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "backend", "supabase");
  cJSON_AddStringToObject(o, "url", sb->url);
  if (sb->user_email && *sb->user_email)
    cJSON_AddStringToObject(o, "user", sb->user_email);
  else if (sb->user_id)
    cJSON_AddStringToObject(o, "user", sb->user_id);
  cJSON_AddBoolToObject(o, "signed_in", sb->refresh_token != NULL);
  if (!sb->refresh_token && sb->session_problem)
    cJSON_AddStringToObject(o, "session", sb->session_problem);
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
  free(sb->session_path);
  for (int t = 0; t < STORE_NTABLES; t++)
    free(sb->tables[t]);
  if (sb->access_token)
    explicit_bzero(sb->access_token, strlen(sb->access_token));
  if (sb->refresh_token)
    explicit_bzero(sb->refresh_token, strlen(sb->refresh_token));
  free(sb->access_token);
  free(sb->refresh_token);
  free(sb->user_id);
  free(sb->user_email);
  free(sb->session_problem);
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

static void sb_timer_closed(uv_handle_t *h) { sb_part_closed(h->data); }

static void sb_close(store *st, store_closed_cb closed, void *data) {
  sb_store *sb = sb_of(st);
  if (sb->closing)
    return;
  sb->closing = 1;
  sb->closed = closed;
  sb->closed_data = data;
  /* Hand back what is queued or in flight, then release the transports. */
  sb_fail_waiting(sb, STORE_ECLOSED, "shelfd is shutting down");
  while (sb->inflight) {
    sb_req *r = sb->inflight;
    sb->inflight = r->next;
    r->next = NULL;
    http_cancel(sb->http, r->http_id);
    sb_finish(r, STORE_ECLOSED, "shelfd is shutting down", NULL);
  }
  if (sb->token_http)
    http_cancel(sb->http, sb->token_http);
  if (sb->auth_http) {
    http_cancel(sb->http, sb->auth_http);
    store_done_cb cb = sb->auth_cb;
    sb->auth_cb = NULL;
    store_defer_done(&sb->defer, cb, sb->auth_data, STORE_ECLOSED, "shelfd is shutting down",
                     NULL, 0);
  }
  sb->pending_closes = 3;
  store_defer_close(&sb->defer, sb_part_closed, sb);
  sb_stop_realtime(sb);
  if (sb->rt_closing)
    sb->pending_closes++; /* sb_rt_closed counts it down */
  http_client_close(sb->http, sb_part_closed, sb);
  uv_close((uv_handle_t *)&sb->refresh_timer, sb_timer_closed);
}

static const struct store_ops sb_ops = {
    .name = "supabase",
    .insert = sb_insert,
    .update = sb_update,
    .remove = sb_remove,
    .stamps = sb_stamps,
    .fetch = sb_fetch,
    .watch = sb_watch,
    .describe = sb_describe,
    .close = sb_close,
    .login = sb_login,
    .logout = sb_logout,
};

store *store_supabase_open(uv_loop_t *loop, const store_supabase_config *cfg, char **err) {
  *err = NULL;
  if (!cfg->url || strncmp(cfg->url, "http", 4) != 0) {
    *err = util_printf("the Supabase URL must start with https:// (or http:// for a "
                       "local server), not '%s'", cfg->url ? cfg->url : "");
    return NULL;
  }
  if (!cfg->anon_key || !*cfg->anon_key) {
    *err = util_printf("the Supabase anon key is missing (setup option supabase.anon_key "
                       "or $SHELF_SUPABASE_ANON_KEY)");
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
  sb->url = util_strdup(cfg->url);
  size_t n = strlen(sb->url);
  while (n > 0 && sb->url[n - 1] == '/')
    sb->url[--n] = '\0';
  const char *host = strstr(sb->url, "://") ? strstr(sb->url, "://") + 3 : sb->url;
  sb->authority = util_printf("%.*s", (int)strcspn(host, "/?#"), host);
  sb->anon_key = util_strdup(cfg->anon_key);
  sb->ca_file = cfg->ca_file ? util_strdup(cfg->ca_file) : NULL;
  sb->session_path = cfg->session_path ? util_strdup(cfg->session_path) : NULL;
  sb->realtime_on = cfg->realtime;
  sb->heartbeat_ms = cfg->heartbeat_ms;
  sb->heartbeat_reply_ms = cfg->heartbeat_reply_ms;
  for (int t = 0; t < STORE_NTABLES; t++)
    sb->tables[t] = util_strdup(cfg->tables[t] ? cfg->tables[t]
                                               : store_default_table_name((store_table)t));
  uv_timer_init(loop, &sb->refresh_timer);
  sb->refresh_timer.data = sb;
  store_defer_init(&sb->defer, loop, &sb->base);
  sb_load_session(sb);
  return &sb->base;
}
