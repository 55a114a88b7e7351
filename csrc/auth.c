/* auth.c - the Supabase Auth session (see auth.h).
 *
 * It owns the tokens, the user and the session file, refreshes the access
 * token ahead of its expiry (by the local clock: the expiry is computed from
 * `expires_in` when the answer arrives, so a clock that disagrees with the
 * server's does not matter), and runs every sign-in: the password grant, and
 * the sign-ins that wait for a browser or a mail (one "flow" at a time:
 * PKCE pair and state from crypto.c, the redirect listener from loopback.c,
 * then `token?grant_type=pkce` or `verify`). Every body that carries a
 * secret is built by auth_body(), which wipes the JSON it came from, and is
 * wiped after the request copied it; http.c wipes its own copy.
 */
#include "auth.h"

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
#include "loopback.h"
#include "util.h"

#define AUTH_REFRESH_AHEAD_S 90   /* refresh the token this long before expiry */
#define AUTH_MAX_SESSION 65536    /* bytes in a session file */
#define AUTH_CLOCK_CHECK_S 60     /* the refresh timer looks at the wall clock this often */
#define AUTH_TOKEN_RETRY_MAX_S 60 /* longest wait before asking Auth again for Realtime */
#define AUTH_MAX_CODE 4096        /* bytes of a pasted URL or code */

typedef enum { STEP_NONE, STEP_OTP, STEP_EXCHANGE, STEP_VERIFY } flow_step;

/* A sign-in waiting for a browser or a mail. */
typedef struct auth_flow {
  auth_session *a;
  uint64_t tag;
  char *provider; /* the OAuth provider, or "email" */
  char *email;
  char verifier[CRYPTO_PKCE_LEN + 1], challenge[CRYPTO_PKCE_LEN + 1];
  char state[CRYPTO_PKCE_LEN + 1];
  loopback *lb;
  unsigned port;
  char *redirect; /* http://127.0.0.1:PORT/auth/callback, or NULL */
  char *problem;  /* why nothing listens, or NULL */
  uv_timer_t timer;
  long http;         /* the step's request in flight, or 0 */
  flow_step step;
  uint64_t step_tag; /* the login_verify/login_paste call waiting on it, or 0 */
  int ended;
  int handles; /* still closing after the end */
} auth_flow;

struct auth_session {
  uv_loop_t *loop;
  http_client *http;
  char *url, *key, *session_path;
  auth_key_kind key_kind;
  unsigned redirect_port;
  unsigned flow_timeout_ms;
  auth_event_cb on_event;
  void *event_data;
  auth_flow_callbacks flow_cbs;
  void *flow_data;

  char *access_token, *refresh_token, *user_id, *user_email, *provider;
  double expires_at; /* unix seconds, local clock */
  double refresh_at;
  char *problem;

  long token_http; /* the refresh in flight, or 0 */
  uv_timer_t refresh_timer;
  int refresh_failures;
  int rt_refusals; /* tokens Realtime wanted replaced since it last joined */

  store_done_cb auth_cb; /* the password sign-in or sign-out under way */
  void *auth_data;
  long auth_http;
  char *auth_provider; /* how the sign-in under way signs in */

  auth_flow *flow;  /* the waiting sign-in, or NULL */
  int ending_flows; /* ended flows whose handles are still closing */
  int closing;
  int timer_open;
  void (*closed)(void *);
  void *closed_data;
};

static void auth_refresh_now(auth_session *a);
static void flow_end(auth_flow *f, const char *error, const cJSON *user);

/* --- small helpers ----------------------------------------------------------- */

static void auth_set(char **slot, const char *value) {
  if (*slot)
    explicit_bzero(*slot, strlen(*slot));
  free(*slot);
  *slot = value ? util_strdup(value) : NULL;
}

static const char *auth_json_str(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
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

static char *auth_body(cJSON *o) {
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

/* ms times a random factor in [0.75, 1.25), so editors do not retry in step. */
static double auth_jitter(double ms) {
  unsigned char b;
  uv_random(NULL, NULL, &b, 1, 0, NULL);
  return ms * (0.75 + 0.5 * (b / 256.0));
}

static void auth_emit(auth_session *a, auth_event_type type, int status, const char *msg,
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
  const char *role = auth_json_str(o, "role");
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
static long auth_post(auth_session *a, const char *path, char *body, int with_session,
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
static char *auth_failure(const auth_session *a, const http_response *res, int *rc) {
  *rc = STORE_EBACKEND;
  if (res->status == 0) {
    if (res->cert_rejected)
      return util_printf("TLS certificate verification failed for %s: %s; if its certificate "
                         "comes from a private CA, set supabase.ca_file to that CA's PEM file",
                         a->url, res->error ? res->error : "?");
    *rc = STORE_EUNAVAILABLE;
    return util_printf("Supabase is unreachable (%s)", res->error ? res->error : "no answer");
  }
  cJSON *o = res->body_len ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
  const char *msg = auth_json_str(o, "msg");
  if (!msg)
    msg = auth_json_str(o, "message");
  if (!msg)
    msg = auth_json_str(o, "error_description");
  const char *code = auth_json_str(o, "error_code");
  if (!code)
    code = auth_json_str(o, "code");
  if (res->status >= 500 || res->status == 429)
    *rc = STORE_EUNAVAILABLE;
  char *out = msg ? util_printf("%s%s%s%s", msg, code ? " (" : "", code ? code : "", code ? ")" : "")
                  : util_printf("Supabase Auth answered HTTP %ld", res->status);
  cJSON_Delete(o);
  return out;
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
  const char *rt = auth_json_str(o, "refresh_token");
  const char *uid = auth_json_str(o, "user_id");
  const char *url = auth_json_str(o, "url");
  if (!rt || !uid || !util_is_uuid(uid)) {
    auth_set(&a->problem, "the session file is damaged; sign in again");
  } else if (url && strcmp(url, a->url) != 0) {
    auth_set(&a->problem, "the saved session belongs to another project; sign in again");
  } else {
    auth_set(&a->access_token, auth_json_str(o, "access_token"));
    auth_set(&a->refresh_token, rt);
    auth_set(&a->user_id, uid);
    auth_set(&a->user_email, auth_json_str(o, "email"));
    auth_set(&a->provider, auth_json_str(o, "provider"));
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(o, "expires_at");
    auth_set_expiry(a, cJSON_IsNumber(exp) ? exp->valuedouble : 0);
  }
  auth_json_delete(o);
}

/* Take a session answer (any grant). provider: how it was made, or NULL to
 * keep the one known (a refresh). 0, or -1 if it is not a session. */
static int auth_take_tokens(auth_session *a, const cJSON *o, const char *provider) {
  const char *at = auth_json_str(o, "access_token");
  const char *rt = auth_json_str(o, "refresh_token");
  const cJSON *user = cJSON_GetObjectItemCaseSensitive(o, "user");
  const char *uid = auth_json_str(user, "id");
  /* The id goes into every query's filter: only a UUID is taken. */
  if (!at || !rt || !uid || !util_is_uuid(uid))
    return -1;
  auth_set(&a->access_token, at);
  auth_set(&a->refresh_token, rt);
  auth_set(&a->user_id, uid);
  auth_set(&a->user_email, auth_json_str(user, "email"));
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
        auth_jitter(1000.0 * (1 << (a->refresh_failures < 5 ? a->refresh_failures : 5)));
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
    uv_timer_start(&a->refresh_timer, auth_on_refresh_retry, (uint64_t)auth_jitter(s * 1000), 0);
    return;
  }
  log_info("supabase: Realtime needs a new token; refreshing the session");
  auth_refresh_now(a);
}

/* --- signed in ------------------------------------------------------------------ */

/* A sign-in's answer. On success: the session is taken and saved, the store
 * told (AUTH_EV_SIGNED_IN), and *user set (caller frees); 0. Else -1 and
 * *msg (caller frees). */
static int auth_signed_in_from(auth_session *a, const http_response *res, const char *provider,
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
    flow_end(a->flow, "sign-in cancelled: another sign-in started", NULL);
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
    flow_end(a->flow, "sign-in cancelled: signed out", NULL);
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

/* --- sign-ins that wait: the flow -------------------------------------------------- */

static void flow_part_closed(auth_flow *f) {
  if (--f->handles > 0)
    return;
  auth_session *a = f->a;
  free(f->provider);
  free(f->email);
  free(f->redirect);
  free(f->problem);
  explicit_bzero(f, sizeof *f);
  free(f);
  a->ending_flows--;
  if (a->closing && a->ending_flows == 0 && !a->timer_open) {
    void (*closed)(void *) = a->closed;
    void *data = a->closed_data;
    free(a);
    if (closed)
      closed(data);
  }
}

static void flow_timer_closed(uv_handle_t *h) { flow_part_closed(h->data); }
static void flow_lb_closed(void *data) { flow_part_closed(data); }

static void flow_done(auth_session *a, uint64_t tag, const char *error, const cJSON *user) {
  if (tag && a->flow_cbs.done)
    a->flow_cbs.done(a->flow_data, tag, error, user);
}

/* End the flow: its call (and a verify or paste waiting on its request)
 * gets `done`; the listener and the timer close. */
static void flow_end(auth_flow *f, const char *error, const cJSON *user) {
  if (f->ended)
    return;
  auth_session *a = f->a;
  f->ended = 1;
  if (a->flow == f)
    a->flow = NULL;
  uint64_t step_tag = f->step_tag;
  if (f->http) {
    http_cancel(a->http, f->http);
    f->http = 0;
  }
  f->step_tag = 0;
  explicit_bzero(f->verifier, sizeof f->verifier);
  explicit_bzero(f->state, sizeof f->state);
  a->ending_flows++;
  f->handles = 1 + (f->lb != NULL);
  uv_close((uv_handle_t *)&f->timer, flow_timer_closed);
  if (f->lb) {
    loopback_close(f->lb, flow_lb_closed, f);
    f->lb = NULL;
  }
  if (error)
    log_info("sign-in ended: %s", error);
  flow_done(a, step_tag, error, user);
  flow_done(a, f->tag, error, user);
}

static void flow_on_timeout(uv_timer_t *t) {
  auth_flow *f = t->data;
  char *msg = util_printf("no answer in %u minute%s, so the sign-in stopped; :Shelf login tries "
                          "again", (f->a->flow_timeout_ms + 59999) / 60000,
                          f->a->flow_timeout_ms > 60000 ? "s" : "");
  flow_end(f, msg, NULL);
  free(msg);
}

static void flow_progress(auth_flow *f, cJSON *info) {
  auth_session *a = f->a;
  if (a->flow_cbs.progress && !a->closing)
    a->flow_cbs.progress(a->flow_data, f->tag, info);
  cJSON_Delete(info);
}

static cJSON *flow_info(const auth_flow *f, const char *state) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "state", state);
  if (f->provider && strcmp(f->provider, "email") != 0)
    cJSON_AddStringToObject(o, "provider", f->provider);
  if (f->email)
    cJSON_AddStringToObject(o, "email", f->email);
  if (f->redirect) {
    cJSON_AddStringToObject(o, "redirect", f->redirect);
    cJSON_AddNumberToObject(o, "port", f->port);
  }
  if (f->problem)
    cJSON_AddStringToObject(o, "problem", f->problem);
  return o;
}

/* The answer to a step (the code exchange, the OTP's verify). */
static void flow_on_step(void *data, const http_response *res) {
  auth_flow *f = data;
  auth_session *a = f->a;
  f->http = 0;
  uint64_t step_tag = f->step_tag;
  f->step_tag = 0;
  f->step = STEP_NONE;
  cJSON *user;
  char *msg;
  if (auth_signed_in_from(a, res, f->provider, &user, &msg) == 0) {
    flow_done(a, step_tag, NULL, user);
    flow_end(f, NULL, user);
    cJSON_Delete(user);
    auth_emit(a, AUTH_EV_RESET, 0, NULL, 0);
    return;
  }
  char *full = util_printf("Supabase refused the code: %s", msg);
  free(msg);
  if (step_tag) {
    /* A typed or pasted code: the sign-in waits for another try. */
    flow_done(a, step_tag, full, NULL);
  } else {
    flow_end(f, full, NULL);
  }
  free(full);
}

/* Exchange an auth code (from the listener: tag 0; from a paste: its tag). */
static int flow_exchange(auth_flow *f, uint64_t tag, const char *code) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "auth_code", code);
  cJSON_AddStringToObject(o, "code_verifier", f->verifier);
  f->http = auth_post(f->a, "token?grant_type=pkce", auth_body(o), 0, flow_on_step, f);
  if (f->http < 0) {
    f->http = 0;
    return -1;
  }
  f->step = STEP_EXCHANGE;
  f->step_tag = tag;
  return 0;
}

static loopback_verdict flow_on_callback(void *data, const loopback_answer *ans, char *why,
                                         size_t why_size) {
  auth_flow *f = data;
  if (!ans->state || strcmp(ans->state, f->state) != 0) {
    snprintf(why, why_size, "this answer does not belong to the sign-in Neovim started");
    flow_end(f, "the browser brought back an answer that does not belong to this sign-in "
                "(its state does not match), so nothing was signed in; :Shelf login starts again",
             NULL);
    return LOOPBACK_REFUSED;
  }
  if (ans->error) {
    const char *desc = ans->error_description ? ans->error_description : ans->error;
    snprintf(why, why_size, "%s", desc);
    char *msg = util_printf("the sign-in was refused: %s (%s)", desc, ans->error);
    flow_end(f, msg, NULL);
    free(msg);
    return LOOPBACK_REFUSED;
  }
  if (f->http) {
    snprintf(why, why_size, "Neovim is already finishing this sign-in");
    return LOOPBACK_REFUSED;
  }
  if (flow_exchange(f, 0, ans->code) < 0) {
    snprintf(why, why_size, "shelfd could not send the code to Supabase");
    flow_end(f, "the code could not be sent to Supabase", NULL);
    return LOOPBACK_REFUSED;
  }
  flow_progress(f, flow_info(f, "exchanging"));
  return LOOPBACK_ACCEPTED;
}

/* A new flow, replacing the one waiting; listen = start the listener. */
static auth_flow *flow_new(auth_session *a, uint64_t tag, const char *provider, int listen,
                           char **err) {
  auth_flow *f = util_calloc(1, sizeof *f);
  f->a = a;
  f->tag = tag;
  if (crypto_pkce(f->verifier, f->challenge) < 0 ||
      crypto_pkce(f->state, (char[CRYPTO_PKCE_LEN + 1]){0}) < 0) {
    free(f);
    *err = util_strdup("OpenSSL could not make random numbers");
    return NULL;
  }
  if (a->flow)
    flow_end(a->flow, "sign-in cancelled: another sign-in started", NULL);
  f->provider = util_strdup(provider);
  uv_timer_init(a->loop, &f->timer);
  f->timer.data = f;
  uv_timer_start(&f->timer, flow_on_timeout, a->flow_timeout_ms, 0);
  if (listen) {
    char *lerr = NULL;
    f->lb = loopback_open(a->loop, a->redirect_port, flow_on_callback, f, &f->port, &lerr);
    if (f->lb) {
      f->redirect = util_printf("http://127.0.0.1:%u%s", f->port, LOOPBACK_PATH);
    } else {
      f->problem = util_printf("%s; finish the sign-in by pasting the address the browser "
                               "ends on (:Shelf login paste), or set supabase.redirect_port "
                               "to a free port", lerr);
      log_warn("sign-in: %s", lerr);
      free(lerr);
    }
  }
  a->flow = f;
  return f;
}

/* redirect_to: the listener with our state, escaped for a query. */
static char *flow_redirect_param(const auth_flow *f) {
  char *target = util_printf("%s?state=%s", f->redirect, f->state);
  char *esc = http_escape(target);
  auth_free_header(target);
  return esc;
}

static int auth_name_ok(const char *s, size_t max) {
  size_t n = strlen(s);
  return n > 0 && n <= max &&
         strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

int auth_login_oauth(auth_session *a, uint64_t tag, const char *provider, char **err) {
  *err = NULL;
  if (a->closing) {
    *err = util_strdup("shelfd is shutting down");
    return -1;
  }
  if (!auth_name_ok(provider, 32)) {
    *err = util_strdup("a provider is a name such as google or github (lower case letters, "
                       "digits, - and _)");
    return -1;
  }
  if (strcmp(provider, "email") == 0 || strcmp(provider, "password") == 0) {
    *err = util_printf("'%s' is not an OAuth provider: use :Shelf login %s", provider, provider);
    return -1;
  }
  auth_flow *f = flow_new(a, tag, provider, 1, err);
  if (!f)
    return -1;
  char *redirect = f->redirect ? flow_redirect_param(f) : NULL;
  char *url = util_printf("%s/auth/v1/authorize?provider=%s%s%s&code_challenge=%s"
                          "&code_challenge_method=s256",
                          a->url, provider, redirect ? "&redirect_to=" : "",
                          redirect ? redirect : "", f->challenge);
  auth_free_header(redirect);
  cJSON *info = flow_info(f, "browser");
  cJSON_AddStringToObject(info, "url", url);
  free(url);
  log_info("sign-in with %s: waiting for the browser", provider);
  flow_progress(f, info);
  return 0;
}

static void flow_on_otp(void *data, const http_response *res) {
  auth_flow *f = data;
  f->http = 0;
  f->step = STEP_NONE;
  if (res->status == 200) {
    flow_progress(f, flow_info(f, "email_sent"));
    return;
  }
  int rc;
  char *text = auth_failure(f->a, res, &rc);
  char *msg = util_printf("Supabase did not send the mail: %s", text);
  free(text);
  flow_end(f, msg, NULL);
  free(msg);
}

static int auth_email_ok(const char *email) {
  const char *at = strchr(email, '@');
  return at && at != email && at[1] && strlen(email) < 512 && !strpbrk(email, " \t\r\n");
}

int auth_login_email(auth_session *a, uint64_t tag, const char *email, char **err) {
  *err = NULL;
  if (a->closing) {
    *err = util_strdup("shelfd is shutting down");
    return -1;
  }
  if (!auth_email_ok(email)) {
    *err = util_printf("'%s' is not an email address", email);
    return -1;
  }
  auth_flow *f = flow_new(a, tag, "email", 1, err);
  if (!f)
    return -1;
  f->email = util_strdup(email);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "email", email);
  cJSON_AddBoolToObject(o, "create_user", 0);
  cJSON_AddItemToObject(o, "data", cJSON_CreateObject());
  cJSON_AddStringToObject(o, "code_challenge", f->challenge);
  cJSON_AddStringToObject(o, "code_challenge_method", "s256");
  char *redirect = f->redirect ? flow_redirect_param(f) : NULL;
  char *path = redirect ? util_printf("otp?redirect_to=%s", redirect) : util_strdup("otp");
  auth_free_header(redirect);
  f->http = auth_post(a, path, auth_body(o), 0, flow_on_otp, f);
  auth_free_header(path);
  if (f->http < 0) {
    f->http = 0;
    flow_end(f, "the request for the mail could not be sent", NULL);
    return 0; /* done came already */
  }
  f->step = STEP_OTP;
  return 0;
}

int auth_login_verify(auth_session *a, uint64_t tag, const char *email, const char *code,
                      char **err) {
  *err = NULL;
  if (a->closing) {
    *err = util_strdup("shelfd is shutting down");
    return -1;
  }
  size_t n = strlen(code);
  if (n == 0 || n > 64 || strspn(code, "0123456789abcdefABCDEF") != n) {
    *err = util_strdup("the code from the mail is a few digits");
    return -1;
  }
  auth_flow *f = a->flow;
  if (f && (!f->email || strcmp(f->email, email) != 0))
    f = NULL; /* not this address's email sign-in: one of its own */
  if (f && f->http) {
    *err = util_strdup("the sign-in is busy with an earlier step; try again in a moment");
    return -1;
  }
  uint64_t step_tag = tag;
  if (!f) {
    if (!auth_email_ok(email)) {
      *err = util_printf("'%s' is not an email address", email);
      return -1;
    }
    f = flow_new(a, tag, "email", 0, err);
    if (!f)
      return -1;
    f->email = util_strdup(email);
    step_tag = 0; /* the flow's own tag is this call */
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", "email");
  cJSON_AddStringToObject(o, "email", email);
  cJSON_AddStringToObject(o, "token", code);
  f->http = auth_post(a, "verify", auth_body(o), 0, flow_on_step, f);
  if (f->http < 0) {
    f->http = 0;
    if (step_tag) {
      *err = util_strdup("the code could not be sent to Supabase");
      return -1;
    }
    flow_end(f, "the code could not be sent to Supabase", NULL);
    return 0;
  }
  f->step = STEP_VERIFY;
  f->step_tag = step_tag;
  return 0;
}

/* What was pasted: a URL the browser ended on, or the code alone. */
int auth_login_paste(auth_session *a, uint64_t tag, const char *text, char **err) {
  *err = NULL;
  auth_flow *f = a->flow;
  if (!f) {
    *err = util_strdup("no sign-in is waiting for a code; start one with :Shelf login");
    return -1;
  }
  if (f->http) {
    *err = util_strdup("the sign-in is busy with an earlier step; try again in a moment");
    return -1;
  }
  while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
    text++;
  size_t n = strlen(text);
  while (n > 0 && strchr(" \t\r\n", text[n - 1]))
    n--;
  if (n == 0 || n > AUTH_MAX_CODE) {
    *err = util_strdup("paste the address the browser ended on, or the code in it");
    return -1;
  }
  char *s = util_printf("%.*s", (int)n, text);
  char *code = NULL;
  if (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0) {
    char *error = loopback_url_param(s, "error");
    if (error) {
      char *desc = loopback_url_param(s, "error_description");
      char *msg = util_printf("the sign-in was refused: %s (%s)", desc ? desc : error, error);
      free(desc);
      free(error);
      auth_free_header(s);
      /* The refusal ends the sign-in; this call is answered by the flow's end. */
      f->step_tag = tag;
      flow_end(f, msg, NULL);
      free(msg);
      return 0;
    }
    char *state = loopback_url_param(s, "state");
    code = loopback_url_param(s, "code");
    /* No state: the Site URL fallback, where PKCE's verifier protects. */
    int mismatch = state && strcmp(state, f->state) != 0;
    auth_free_header(state);
    if (mismatch || !code) {
      auth_free_header(s);
      auth_free_header(code);
      *err = util_strdup(mismatch ? "that address belongs to another sign-in (its state does not "
                                    "match this one's); paste the newest one"
                                  : "that address holds no code; paste the address the browser "
                                    "ended on after signing in");
      return -1;
    }
  } else if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~") == n) {
    code = util_strdup(s);
  } else {
    auth_free_header(s);
    *err = util_strdup("that is neither an address nor a code; paste the address the browser "
                       "ended on");
    return -1;
  }
  auth_free_header(s);
  int rc = flow_exchange(f, tag, code);
  auth_free_header(code);
  if (rc < 0) {
    *err = util_strdup("the code could not be sent to Supabase");
    return -1;
  }
  return 0;
}

void auth_login_cancel(auth_session *a) {
  if (a->flow)
    flow_end(a->flow, "sign-in cancelled", NULL);
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
    cJSON *w = flow_info(a->flow, "waiting");
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

static void auth_timer_closed(uv_handle_t *h) {
  auth_session *a = h->data;
  a->timer_open = 0;
  if (a->ending_flows == 0) {
    void (*closed)(void *) = a->closed;
    void *data = a->closed_data;
    free(a);
    if (closed)
      closed(data);
  }
}

void auth_close(auth_session *a, void (*closed)(void *), void *data) {
  if (a->closing)
    return;
  if (a->flow)
    flow_end(a->flow, "shelfd is shutting down", NULL);
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
