/* auth.c - the Supabase Auth session (see auth.h).
 *
 * It owns the tokens, the user and the session file, refreshes the access
 * token ahead of its expiry (by the local clock: the expiry is computed from
 * `expires_in` when the answer arrives, so a clock that disagrees with the
 * server's does not matter), signs in with a password, signs out, and takes
 * the session a waiting sign-in (auth_flow.c) brings. Every body that
 * carries a secret is built by auth_body(), which wipes the JSON it came
 * from, and is wiped after the request copied it; http.c wipes its own copy.
 */
#include "auth.h"
#include "auth_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "log.h"
#include "mpjson.h"
#include "util.h"

#define AUTH_REFRESH_AHEAD_S 90   /* refresh the token this long before expiry */
#define AUTH_MAX_SESSION 65536    /* bytes in a session file */
#define AUTH_CLOCK_CHECK_S 60     /* the refresh timer looks at the wall clock this often */
#define AUTH_TOKEN_RETRY_MAX_S 60 /* longest wait before asking Auth again for Realtime */

static void auth_refresh_now(auth_session *a);

/* --- small helpers ----------------------------------------------------------- */

void auth_set(char **slot, const char *value) {
  if (*slot)
    explicit_bzero(*slot, strlen(*slot));
  free(*slot);
  *slot = value ? util_strdup(value) : NULL;
}

/* Free JSON that held secrets, its strings wiped first. */
static void auth_json_wipe(cJSON *o) {
  for (cJSON *c = o ? o->child : NULL; c; c = c->next)
    auth_json_wipe(c);
  if (o && cJSON_IsString(o) && o->valuestring)
    explicit_bzero(o->valuestring, strlen(o->valuestring));
}

static void auth_json_delete(cJSON *o) {
  auth_json_wipe(o);
  cJSON_Delete(o);
}

/* The body of a request from o, which is wiped and freed. Free the result
 * with auth_free_header. */
static size_t auth_json_size(const cJSON *o) {
  size_t n = 16 + (o->string ? 6 * strlen(o->string) : 0);
  if (cJSON_IsString(o))
    n += 6 * strlen(o->valuestring); /* \uXXXX at worst */
  for (const cJSON *c = o->child; c; c = c->next)
    n += auth_json_size(c);
  return n;
}

char *auth_body(cJSON *o) {
  /* Into a buffer of our own: cJSON_PrintUnformatted grows its buffer with
   * realloc and would leave copies of the secrets in freed memory. */
  size_t cap = auth_json_size(o) + 64;
  char *text = util_malloc(cap);
  if (!cJSON_PrintPreallocated(o, text, (int)cap, 0))
    abort(); /* the size above is an upper bound */
  auth_json_delete(o);
  return text;
}

void auth_free_header(char *h) {
  if (h) {
    explicit_bzero(h, strlen(h));
    free(h);
  }
}

static double auth_wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void auth_emit(auth_session *a, auth_event_type type, int status, const char *msg,
                      int same_user) {
  if (a->closing)
    return;
  auth_event ev = {type, status, msg, same_user};
  a->on_event(a->event_data, &ev);
}

/* --- keys -------------------------------------------------------------------- */

auth_key_kind auth_key_kind_of(const char *key) {
  if (strncmp(key, "sb_publishable_", 15) == 0)
    return AUTH_KEY_PUBLISHABLE;
  if (strncmp(key, "sb_secret_", 10) == 0)
    return AUTH_KEY_SECRET;
  /* A legacy key is a JWT: its payload's role says which. */
  const char *dot1 = strchr(key, '.');
  const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  if (!dot2)
    return AUTH_KEY_OTHER;
  char *part = util_printf("%.*s", (int)(dot2 - dot1 - 1), dot1 + 1);
  size_t n = 0;
  unsigned char *json = crypto_b64url_decode(part, &n);
  free(part);
  cJSON *o = json ? cJSON_ParseWithLength((const char *)json, n) : NULL;
  free(json);
  const char *role = mpjson_get_str(o, "role");
  auth_key_kind k = !role                              ? AUTH_KEY_OTHER
                    : strcmp(role, "service_role") == 0 ? AUTH_KEY_SECRET
                    : strcmp(role, "anon") == 0         ? AUTH_KEY_LEGACY_ANON
                                                        : AUTH_KEY_OTHER;
  cJSON_Delete(o);
  return k;
}

const char *auth_key_kind_name(auth_key_kind k) {
  switch (k) {
  case AUTH_KEY_PUBLISHABLE:
    return "publishable";
  case AUTH_KEY_LEGACY_ANON:
    return "legacy_anon";
  case AUTH_KEY_SECRET:
    return "secret";
  default:
    return "other";
  }
}

char *auth_bearer_header(const auth_session *a) {
  if (a->access_token)
    return util_printf("Authorization: Bearer %s", a->access_token);
  /* A publishable key is not a JWT: the apikey header alone carries it. */
  if (a->key_kind == AUTH_KEY_PUBLISHABLE)
    return NULL;
  return util_printf("Authorization: Bearer %s", a->key);
}

char *auth_apikey_header(const auth_session *a) { return util_printf("apikey: %s", a->key); }

/* Headers of a request to Auth: with the user's token only when asked
 * (sign-out); the sign-in grants go with the key. Free with auth_headers_free. */
typedef struct {
  char *apikey, *bearer;
  const char *h[6];
} auth_headers;

static const char *const *auth_headers_make(const auth_session *a, auth_headers *hs,
                                            int with_session) {
  hs->apikey = auth_apikey_header(a);
  hs->bearer = NULL;
  if (with_session && a->access_token)
    hs->bearer = util_printf("Authorization: Bearer %s", a->access_token);
  else if (a->key_kind != AUTH_KEY_PUBLISHABLE)
    hs->bearer = util_printf("Authorization: Bearer %s", a->key);
  int i = 0;
  hs->h[i++] = hs->apikey;
  if (hs->bearer)
    hs->h[i++] = hs->bearer;
  hs->h[i++] = "Content-Type: application/json";
  hs->h[i++] = "X-Client-Info: shelf.nvim";
  hs->h[i] = NULL;
  return hs->h;
}

static void auth_headers_free(auth_headers *hs) {
  auth_free_header(hs->apikey);
  auth_free_header(hs->bearer);
}

/* POST body to <url>/auth/v1/<path>; the body is wiped and freed. */
long auth_post(auth_session *a, const char *path, char *body, int with_session,
                      http_done_cb cb, void *data) {
  auth_headers hs;
  const char *const *h = auth_headers_make(a, &hs, with_session);
  char *url = util_printf("%s/auth/v1/%s", a->url, path);
  long id = http_request(a->http, "POST", url, h, body, strlen(body), cb, data);
  auth_headers_free(&hs);
  auth_free_header(body);
  free(url);
  return id;
}

/* --- errors ------------------------------------------------------------------ */

/* A message for a failed Auth answer: {msg|message|error_description,
 * error_code|code}, or what went wrong on the way. *rc: STORE_EUNAVAILABLE
 * when asking again later may help, else STORE_EBACKEND. Caller frees. */
char *auth_failure(const auth_session *a, const http_response *res, int *rc) {
  *rc = STORE_EBACKEND;
  if (res->status == 0) {
    if (res->cert_rejected)
      return util_printf("TLS certificate verification failed for %s: %s; if its certificate "
                         "comes from a private CA, set supabase.ca_file to that CA's PEM file",
                         a->url, res->error ? res->error : "?");
    *rc = STORE_EUNAVAILABLE;
    return util_printf("Supabase is unreachable (%s)", res->error ? res->error : "no answer");
  }
  if (res->status >= 500 || res->status == 429)
    *rc = STORE_EUNAVAILABLE;
  char *out = http_error_text(res, NULL);
  return out ? out : util_printf("Supabase Auth answered HTTP %ld", res->status);
}

/* --- the session ------------------------------------------------------------- */

/* Refresh AUTH_REFRESH_AHEAD_S before expiry, or short-lived tokens (tests
 * use seconds) at two thirds of their life. */
static void auth_set_expiry(auth_session *a, double expires_at) {
  double life = expires_at - auth_wall_now();
  a->expires_at = expires_at;
  a->refresh_at =
      expires_at - (life < 3 * AUTH_REFRESH_AHEAD_S ? life / 3 : AUTH_REFRESH_AHEAD_S);
}

static void auth_forget(auth_session *a, const char *why) {
  auth_set(&a->access_token, NULL);
  auth_set(&a->refresh_token, NULL);
  auth_set(&a->user_id, NULL);
  auth_set(&a->user_email, NULL);
  auth_set(&a->provider, NULL);
  a->expires_at = a->refresh_at = 0;
  auth_set(&a->problem, why);
  if (a->session_path && unlink(a->session_path) < 0 && errno != ENOENT)
    log_warn("supabase: cannot delete the session file: %s", strerror(errno));
}

/* Write the session with mode 0600, atomically (temp file + rename). */
static int auth_save(auth_session *a) {
  if (!a->session_path || !a->refresh_token)
    return 0;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "access_token", a->access_token);
  cJSON_AddStringToObject(o, "refresh_token", a->refresh_token);
  cJSON_AddNumberToObject(o, "expires_at", a->expires_at);
  cJSON_AddStringToObject(o, "user_id", a->user_id);
  cJSON_AddStringToObject(o, "email", a->user_email ? a->user_email : "");
  if (a->provider)
    cJSON_AddStringToObject(o, "provider", a->provider);
  cJSON_AddStringToObject(o, "url", a->url);
  char *text = auth_body(o);
  char *tmp = util_printf("%s.tmp", a->session_path);
  int rc = -1;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    size_t n = strlen(text);
    rc = fchmod(fd, 0600) == 0 && write(fd, text, n) == (ssize_t)n ? 0 : -1;
    if (close(fd) < 0)
      rc = -1;
    if (rc == 0 && rename(tmp, a->session_path) < 0)
      rc = -1;
    if (rc < 0)
      unlink(tmp);
  }
  if (rc < 0)
    log_warn("supabase: cannot save the session to %s: %s", a->session_path, strerror(errno));
  free(tmp);
  auth_free_header(text);
  return rc;
}

/* Read the session file, if any. A file others can read is refused. */
static void auth_load(auth_session *a) {
  if (!a->session_path)
    return;
  int fd = open(a->session_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT)
      auth_set(&a->problem, "cannot read the session file");
    return;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || (st.st_mode & 077) != 0) {
    close(fd);
    char *msg = util_printf("the session file %s is readable by others, so it "
                            "was not used; sign in again (:Shelf login)",
                            a->session_path);
    log_warn("supabase: %s", msg);
    auth_set(&a->problem, msg);
    free(msg);
    return;
  }
  if (st.st_size <= 0 || st.st_size > AUTH_MAX_SESSION) {
    close(fd);
    auth_set(&a->problem, "the session file is damaged; sign in again");
    return;
  }
  char *text = util_malloc((size_t)st.st_size + 1);
  ssize_t n = read(fd, text, (size_t)st.st_size);
  close(fd);
  text[n > 0 ? n : 0] = '\0';
  cJSON *o = cJSON_Parse(text);
  auth_free_header(text);
  const char *rt = mpjson_get_str(o, "refresh_token");
  const char *uid = mpjson_get_str(o, "user_id");
  const char *url = mpjson_get_str(o, "url");
  if (!rt || !uid || !util_is_uuid(uid)) {
    auth_set(&a->problem, "the session file is damaged; sign in again");
  } else if (url && strcmp(url, a->url) != 0) {
    auth_set(&a->problem, "the saved session belongs to another project; sign in again");
  } else {
    auth_set(&a->access_token, mpjson_get_str(o, "access_token"));
    auth_set(&a->refresh_token, rt);
    auth_set(&a->user_id, uid);
    auth_set(&a->user_email, mpjson_get_str(o, "email"));
    auth_set(&a->provider, mpjson_get_str(o, "provider"));
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(o, "expires_at");
    auth_set_expiry(a, cJSON_IsNumber(exp) ? exp->valuedouble : 0);
  }
  auth_json_delete(o);
}

/* Take a session answer (any grant). provider: how it was made, or NULL to
 * keep the one known (a refresh). 0, or -1 if it is not a session. */
static int auth_take_tokens(auth_session *a, const cJSON *o, const char *provider) {
  const char *at = mpjson_get_str(o, "access_token");
  const char *rt = mpjson_get_str(o, "refresh_token");
  const cJSON *user = cJSON_GetObjectItemCaseSensitive(o, "user");
  const char *uid = mpjson_get_str(user, "id");
  /* The id goes into every query's filter: only a UUID is taken. */
  if (!at || !rt || !uid || !util_is_uuid(uid))
    return -1;
  auth_set(&a->access_token, at);
  auth_set(&a->refresh_token, rt);
  auth_set(&a->user_id, uid);
  auth_set(&a->user_email, mpjson_get_str(user, "email"));
  if (provider)
    auth_set(&a->provider, provider);
  /* expires_in against the local clock now: the server's expires_at is in
   * its clock's terms, and a local clock ahead of it by more than the
   * token's life would see every new token as expired and refresh in a
   * loop. expires_at is used only when expires_in is missing. */
  const cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "expires_in");
  const cJSON *exp = cJSON_GetObjectItemCaseSensitive(o, "expires_at");
  if (cJSON_IsNumber(in) && in->valuedouble > 0)
    auth_set_expiry(a, auth_wall_now() + in->valuedouble);
  else if (cJSON_IsNumber(exp))
    auth_set_expiry(a, exp->valuedouble);
  else
    auth_set_expiry(a, auth_wall_now() + 3600);
  auth_set(&a->problem, NULL);
  a->refresh_failures = 0;
  return 0;
}

/* {id, email, provider} of the user signed in; the caller frees. */
static cJSON *auth_user_json(const auth_session *a) {
  cJSON *user = cJSON_CreateObject();
  cJSON_AddStringToObject(user, "id", a->user_id);
  if (a->user_email && *a->user_email)
    cJSON_AddStringToObject(user, "email", a->user_email);
  if (a->provider)
    cJSON_AddStringToObject(user, "provider", a->provider);
  return user;
}

int auth_signed_in(const auth_session *a) { return a->refresh_token != NULL; }
const char *auth_user_id(const auth_session *a) { return a->user_id; }
const char *auth_access_token(const auth_session *a) { return a->access_token; }
double auth_expires_at(const auth_session *a) { return a->expires_at; }
const char *auth_problem(const auth_session *a) {
  return a->refresh_token ? NULL : a->problem;
}

int auth_token_fresh(const auth_session *a, double margin_s) {
  return !a->token_http && a->access_token && a->expires_at - auth_wall_now() >= margin_s;
}

/* --- refreshing ---------------------------------------------------------------- */

static void auth_schedule_refresh(auth_session *a);

static void auth_on_refresh_timer(uv_timer_t *t) {
  auth_session *a = t->data;
  if (a->refresh_at - auth_wall_now() < 0.5)
    auth_refresh_now(a);
  else
    auth_schedule_refresh(a);
}

/* A retry after a failed refresh, or one Realtime asked for: whatever the clock says. */
static void auth_on_refresh_retry(uv_timer_t *t) { auth_refresh_now(t->data); }

static void auth_schedule_refresh(auth_session *a) {
  double in = a->refresh_at - auth_wall_now();
  if (in < 0)
    in = 0;
  /* libuv's timers stand still while the machine sleeps, the wall clock
   * does not: look at it every minute rather than trust one long timer.
   * (Also keeps 1e300 or inf from the server away from the cast.) */
  if (!(in < AUTH_CLOCK_CHECK_S))
    in = AUTH_CLOCK_CHECK_S;
  uv_timer_start(&a->refresh_timer, auth_on_refresh_timer, (uint64_t)(in * 1000), 0);
}

/* The session ended or another began: a refresh under way would only bring
 * back the older session's tokens. */
static void auth_cancel_refresh(auth_session *a) {
  if (a->token_http) {
    http_cancel(a->http, a->token_http);
    a->token_http = 0;
  }
  uv_timer_stop(&a->refresh_timer);
  a->refresh_failures = 0;
  a->rt_refusals = 0;
}

static void auth_on_refreshed(void *data, const http_response *res) {
  auth_session *a = data;
  a->token_http = 0;
  if (a->closing)
    return;
  cJSON *o = res->status == 200 ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
  if (o && auth_take_tokens(a, o, NULL) == 0) {
    auth_json_delete(o);
    auth_save(a);
    auth_schedule_refresh(a);
    auth_emit(a, AUTH_EV_REFRESHED, 0, NULL, 1);
    return;
  }
  auth_json_delete(o);
  int rc;
  char *text = auth_failure(a, res, &rc);
  if (res->status == 0 || res->status >= 500 || res->status == 429) {
    /* The server is away: keep the session and try again with backoff. */
    a->refresh_failures++;
    double ms =
        util_jitter(1000.0 * (1 << (a->refresh_failures < 5 ? a->refresh_failures : 5)), 0.25);
    char *msg = res->status ? util_printf("Supabase answered HTTP %ld: %s", res->status, text)
                            : util_strdup(text);
    log_warn("supabase: refreshing the session failed: %s; retrying in %.0f s", msg, ms / 1000);
    /* Retried by the sync engine, unless retrying cannot help (TLS). */
    auth_emit(a, AUTH_EV_UNAVAILABLE, rc, msg, 1);
    free(msg);
    free(text);
    uv_timer_start(&a->refresh_timer, auth_on_refresh_retry, (uint64_t)ms, 0);
    return;
  }
  /* The refresh token was refused: the session is over. */
  char *msg = util_printf("your Supabase session ended (%s); sign in again with :Shelf login", text);
  free(text);
  log_warn("supabase: %s", msg);
  auth_forget(a, msg);
  auth_cancel_refresh(a);
  auth_emit(a, AUTH_EV_ENDED, STORE_EBACKEND, msg, 0);
  free(msg);
  auth_emit(a, AUTH_EV_RESET, 0, NULL, 0);
}

static void auth_refresh_now(auth_session *a) {
  if (a->token_http || a->closing || !a->refresh_token)
    return;
  uv_timer_stop(&a->refresh_timer);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "refresh_token", a->refresh_token);
  a->token_http = auth_post(a, "token?grant_type=refresh_token", auth_body(o), 0,
                            auth_on_refreshed, a);
  if (a->token_http < 0) {
    a->token_http = 0;
    auth_emit(a, AUTH_EV_UNAVAILABLE, STORE_EUNAVAILABLE, "the token refresh could not be sent", 1);
  }
}

void auth_refresh(auth_session *a) { auth_refresh_now(a); }

int auth_start(auth_session *a) {
  if (!a->refresh_token)
    return 0;
  if (a->expires_at - auth_wall_now() < AUTH_REFRESH_AHEAD_S) {
    auth_refresh_now(a); /* AUTH_EV_REFRESHED starts Realtime */
    return 0;
  }
  auth_schedule_refresh(a);
  return 1;
}

void auth_realtime_joined(auth_session *a) { a->rt_refusals = 0; }

/* Realtime holds an expired token (the server closed the channel or refused
 * the join for it, or the wall clock says so after a sleep): refresh now,
 * and AUTH_EV_REFRESHED hands the new one over. */
void auth_realtime_refused(auth_session *a) {
  if (a->token_http || !a->refresh_token)
    return; /* the refresh under way brings one; signed out: nothing to do */
  if (++a->rt_refusals > 1) {
    /* A token fresh from Auth was refused as well (the clocks disagree, or
     * the server is confused): ask again later, not in a loop. */
    int n = a->rt_refusals - 1;
    double s = 1 << (n < 6 ? n : 6);
    if (s > AUTH_TOKEN_RETRY_MAX_S)
      s = AUTH_TOKEN_RETRY_MAX_S;
    log_warn("supabase: Realtime refused a freshly refreshed token; refreshing again in %.0f s", s);
    uv_timer_start(&a->refresh_timer, auth_on_refresh_retry,
                   (uint64_t)util_jitter(s * 1000, 0.25), 0);
    return;
  }
  log_info("supabase: Realtime needs a new token; refreshing the session");
  auth_refresh_now(a);
}

/* --- signed in ------------------------------------------------------------------ */

/* A sign-in's answer. On success: the session is taken and saved, the store
 * told (AUTH_EV_SIGNED_IN), and *user set (caller frees); 0. Else -1 and
 * *msg (caller frees). */
int auth_signed_in_from(auth_session *a, const http_response *res, const char *provider,
                               cJSON **user, char **msg) {
  *user = NULL;
  *msg = NULL;
  cJSON *o = res->status == 200 ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
  char *old_user = a->user_id ? util_strdup(a->user_id) : NULL;
  if (!o || auth_take_tokens(a, o, provider) < 0) {
    auth_json_delete(o);
    free(old_user);
    int rc;
    *msg = res->status == 200 ? util_strdup("Supabase Auth's answer holds no session")
                              : auth_failure(a, res, &rc);
    return -1;
  }
  auth_json_delete(o);
  int same = old_user && strcmp(old_user, a->user_id) == 0;
  free(old_user);
  auth_cancel_refresh(a);
  auth_save(a);
  auth_schedule_refresh(a);
  log_info("supabase: signed in (%s)", a->provider ? a->provider : "?");
  auth_emit(a, AUTH_EV_SIGNED_IN, 0, NULL, same);
  *user = auth_user_json(a);
  return 0;
}

/* --- email and password, sign-out ------------------------------------------------ */

static void auth_on_login(void *data, const http_response *res) {
  auth_session *a = data;
  a->auth_http = 0;
  store_done_cb cb = a->auth_cb;
  void *cb_data = a->auth_data;
  a->auth_cb = NULL;
  cJSON *user;
  char *msg;
  if (auth_signed_in_from(a, res, a->auth_provider, &user, &msg) < 0) {
    cb(cb_data, STORE_EBACKEND, msg, NULL);
    free(msg);
    return;
  }
  cJSON *rows = cJSON_CreateArray();
  cJSON_AddItemToArray(rows, user);
  cb(cb_data, 0, NULL, rows);
  /* A new user sees another library: everything is loaded again. */
  auth_emit(a, AUTH_EV_RESET, 0, NULL, 0);
}

int auth_login_password(auth_session *a, const char *email, const char *password,
                        store_done_cb cb, void *data) {
  if (a->auth_cb || a->closing)
    return STORE_EINVALID;
  if (a->flow)
    auth_flow_end(a->flow, "sign-in cancelled: another sign-in started", NULL);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "email", email);
  cJSON_AddStringToObject(o, "password", password);
  a->auth_cb = cb;
  a->auth_data = data;
  auth_set(&a->auth_provider, "password");
  a->auth_http = auth_post(a, "token?grant_type=password", auth_body(o), 0, auth_on_login, a);
  if (a->auth_http < 0) {
    a->auth_http = 0;
    a->auth_cb = NULL;
    return STORE_EBACKEND;
  }
  return 0;
}

static void auth_on_logout(void *data, const http_response *res) {
  auth_session *a = data;
  (void)res; /* signed out locally whatever the server said */
  a->auth_http = 0;
  store_done_cb cb = a->auth_cb;
  void *cb_data = a->auth_data;
  a->auth_cb = NULL;
  cb(cb_data, 0, NULL, cJSON_CreateArray());
  auth_emit(a, AUTH_EV_RESET, 0, NULL, 0);
}

int auth_logout(auth_session *a, store_done_cb cb, void *data) {
  if (a->auth_cb || a->closing)
    return STORE_EINVALID;
  if (a->flow)
    auth_flow_end(a->flow, "sign-in cancelled: signed out", NULL);
  auth_headers hs;
  const char *const *h = auth_headers_make(a, &hs, 1);
  int had_session = a->access_token != NULL;
  char *url = util_printf("%s/auth/v1/logout", a->url);
  auth_forget(a, "signed out");
  auth_cancel_refresh(a);
  auth_emit(a, AUTH_EV_ENDED, STORE_EBACKEND, "signed out", 0);
  a->auth_cb = cb;
  a->auth_data = data;
  a->auth_http = had_session ? http_request(a->http, "POST", url, h, "{}", 2, auth_on_logout, a)
                             : -1;
  auth_headers_free(&hs);
  free(url);
  if (a->auth_http < 0) {
    /* Nothing to tell the server: done locally. */
    http_response none = {0};
    auth_on_logout(a, &none);
  }
  return 0;
}

/* --- status and life cycle --------------------------------------------------------- */

void auth_describe(const auth_session *a, cJSON *o) {
  if (a->user_email && *a->user_email)
    cJSON_AddStringToObject(o, "user", a->user_email);
  else if (a->user_id)
    cJSON_AddStringToObject(o, "user", a->user_id);
  if (a->refresh_token && a->provider)
    cJSON_AddStringToObject(o, "provider", a->provider);
  cJSON_AddBoolToObject(o, "signed_in", a->refresh_token != NULL);
  if (!a->refresh_token && a->problem)
    cJSON_AddStringToObject(o, "session", a->problem);
  cJSON_AddStringToObject(o, "key", auth_key_kind_name(a->key_kind));
  if (a->flow) {
    cJSON *w = auth_flow_info(a->flow, "waiting");
    cJSON_DeleteItemFromObjectCaseSensitive(w, "state");
    cJSON_AddItemToObject(o, "login", w);
  }
}

auth_session *auth_new(uv_loop_t *loop, http_client *http, const auth_options *opts,
                       auth_event_cb on_event, void *data) {
  auth_session *a = util_calloc(1, sizeof *a);
  a->loop = loop;
  a->http = http;
  a->url = util_strdup(opts->url);
  a->key = util_strdup(opts->key);
  a->key_kind = auth_key_kind_of(opts->key);
  a->session_path = opts->session_path ? util_strdup(opts->session_path) : NULL;
  a->redirect_port = opts->redirect_port;
  a->flow_timeout_ms = opts->flow_timeout_ms ? opts->flow_timeout_ms : AUTH_FLOW_TIMEOUT_MS;
  a->on_event = on_event;
  a->event_data = data;
  uv_timer_init(loop, &a->refresh_timer);
  a->refresh_timer.data = a;
  a->timer_open = 1;
  auth_load(a);
  return a;
}

void auth_set_flow_callbacks(auth_session *a, const auth_flow_callbacks *cbs, void *data) {
  a->flow_cbs = *cbs;
  a->flow_data = data;
}

static void auth_free_fields(auth_session *a) {
  free(a->url);
  auth_set(&a->key, NULL);
  free(a->session_path);
  auth_set(&a->access_token, NULL);
  auth_set(&a->refresh_token, NULL);
  free(a->user_id);
  free(a->user_email);
  free(a->provider);
  free(a->problem);
  free(a->auth_provider);
}

void auth_maybe_free(auth_session *a) {
  if (!a->closing || a->timer_open || a->ending_flows > 0)
    return;
  void (*closed)(void *) = a->closed;
  void *data = a->closed_data;
  free(a);
  if (closed)
    closed(data);
}

static void auth_timer_closed(uv_handle_t *h) {
  auth_session *a = h->data;
  a->timer_open = 0;
  auth_maybe_free(a);
}

void auth_close(auth_session *a, void (*closed)(void *), void *data) {
  if (a->closing)
    return;
  if (a->flow)
    auth_flow_end(a->flow, "shelfd is shutting down", NULL);
  a->closing = 1;
  a->closed = closed;
  a->closed_data = data;
  if (a->token_http)
    http_cancel(a->http, a->token_http);
  if (a->auth_http) {
    http_cancel(a->http, a->auth_http);
    store_done_cb cb = a->auth_cb;
    a->auth_cb = NULL;
    if (cb)
      cb(a->auth_data, STORE_ECLOSED, "shelfd is shutting down", NULL);
  }
  auth_free_fields(a);
  uv_close((uv_handle_t *)&a->refresh_timer, auth_timer_closed);
}
