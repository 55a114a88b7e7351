/* test_auth.c - the Supabase Auth session (auth.c) through the Supabase store
 * against a fake Auth and PostgREST server on the test's loop
 * (support/fake_supabase.c), the redirect listener (loopback.c) driven by
 * http.c playing the browser, and the PKCE and key helpers (crypto.c); also
 * the store's two reads of an incremental refresh (since, count_until).
 * Every case ends by closing everything and asserting uv_loop_close == 0. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "crypto.h"
#include "fake_supabase.h"
#include "http.h"
#include "loopback.h"
#include "rpc.h"
#include "store_supabase.h"
#include "test.h"
#include "util.h"

#define USER_ID "11111111-2222-4333-8444-555555555555"
#define PASSWORD "pw-Secret-4711"

/* --- the fixture ---------------------------------------------------------------- */

typedef struct {
  uv_loop_t loop;
  uv_timer_t watchdog;
  int timed_out;
  fake_sb *srv;
  http_client *browser;
  store *st;
  auth_session *auth;
  char dir[64], session[128], url[64];
  /* what the fake Auth answers */
  const char *access_token; /* NULL: "at-<n>" */
  double server_clock_offset; /* seconds the server's clock is off ours */
  int refresh_fail_after;     /* refreshes past this many get HTTP 500 (0: never) */
  char challenge[64];         /* the S256 challenge the flow announced */
  int sessions;               /* sessions handed out */
  /* what shelfd's side saw */
  int progress;
  cJSON *last_progress;
  int done;
  uint64_t done_tag[16];
  char *done_err[16];
  cJSON *done_user[16];
  int store_calls, store_status;
  double store_n; /* the answer's first item, if a number (count_until), else -1 */
  int store_rows;   /* how many items the answer had */
  char *store_ids;  /* the ids of the answer's rows, joined with ',' */
  const char *rest_newest; /* the body of a read of the newest stamps (NULL: []) */
  const char *rest_by_id;  /* the body of a read of rows by id (NULL: []) */
  char *store_err;
  int browser_calls;
  long browser_status;
  char *browser_body;
  int closed;
} fx;

static int s256_matches(const char *verifier, const char *challenge) {
  unsigned char d[32];
  unsigned int n = 0;
  EVP_Digest(verifier, strlen(verifier), d, &n, EVP_sha256(), NULL);
  unsigned char b64[64];
  int len = EVP_EncodeBlock(b64, d, (int)n);
  while (len > 0 && b64[len - 1] == '=')
    b64[--len] = '\0';
  for (int i = 0; i < len; i++)
    b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
  return strcmp((char *)b64, challenge) == 0;
}

static char *session_json(fx *f) {
  f->sessions++;
  char at[32];
  snprintf(at, sizeof at, "at-%d", f->sessions);
  double server_now = (double)time(NULL) + f->server_clock_offset;
  return util_printf("{\"access_token\":\"%s\",\"token_type\":\"bearer\",\"expires_in\":3600,"
                     "\"expires_at\":%.0f,\"refresh_token\":\"rt-%d\",\"user\":{\"id\":\"" USER_ID
                     "\",\"email\":\"ada@example.com\"}}",
                     f->access_token ? f->access_token : at, server_now + 3600, f->sessions);
}

static void wipe_delete(cJSON *o) {
  for (cJSON *c = o ? o->child : NULL; c; c = c->next) {
    if (cJSON_IsString(c))
      explicit_bzero(c->valuestring, strlen(c->valuestring));
  }
  cJSON_Delete(o);
}

static void route(void *data, const fake_sb_req *rq, int *status, char **body) {
  fx *f = data;
  cJSON *in = cJSON_Parse(rq->body);
  const cJSON *v;
#define IN(name) ((v = cJSON_GetObjectItem(in, name)) && cJSON_IsString(v) ? v->valuestring : "")
  if (strcmp(rq->target, "/auth/v1/token?grant_type=password") == 0) {
    if (strcmp(IN("password"), PASSWORD) == 0) {
      *status = 200;
      *body = session_json(f);
    } else {
      *status = 400;
      *body = util_strdup("{\"code\":400,\"error_code\":\"invalid_credentials\",\"msg\":\"Invalid login credentials\"}");
    }
  } else if (strcmp(rq->target, "/auth/v1/token?grant_type=refresh_token") == 0) {
    int n = fake_sb_count_prefix(f->srv, rq->target);
    *status = f->refresh_fail_after && n > f->refresh_fail_after ? 500 : 200;
    *body = *status == 200 ? session_json(f) : util_strdup("{\"msg\":\"down\"}");
  } else if (strcmp(rq->target, "/auth/v1/token?grant_type=pkce") == 0) {
    if (strcmp(IN("auth_code"), "good-code") != 0) {
      *status = 404;
      *body = util_strdup("{\"code\":404,\"error_code\":\"flow_state_not_found\",\"msg\":\"invalid flow state, no valid flow state found\"}");
    } else if (!s256_matches(IN("code_verifier"), f->challenge)) {
      *status = 403;
      *body = util_strdup("{\"code\":403,\"error_code\":\"bad_code_verifier\",\"msg\":\"code challenge does not match previously saved code verifier\"}");
    } else {
      *status = 200;
      *body = session_json(f);
    }
  } else if (strncmp(rq->target, "/auth/v1/otp", 12) == 0) {
    snprintf(f->challenge, sizeof f->challenge, "%s", IN("code_challenge"));
    if (strcmp(IN("email"), "ada@example.com") == 0) {
      *status = 200;
      *body = util_strdup("{}");
    } else {
      *status = 422;
      *body = util_strdup("{\"code\":422,\"error_code\":\"otp_disabled\",\"msg\":\"Signups not allowed for otp\"}");
    }
  } else if (strcmp(rq->target, "/auth/v1/verify") == 0) {
    if (strcmp(IN("token"), "123456") == 0 && strcmp(IN("type"), "email") == 0) {
      *status = 200;
      *body = session_json(f);
    } else {
      *status = 403;
      *body = util_strdup("{\"code\":403,\"error_code\":\"otp_expired\",\"msg\":\"Token has expired or is invalid\"}");
    }
  } else if (strcmp(rq->target, "/auth/v1/logout") == 0) {
    *status = 204;
  } else if (strncmp(rq->target, "/rest/v1/", 9) == 0) {
    *status = 200;
    if (strstr(rq->target, "order=updated_at.desc") && f->rest_newest) {
      *body = util_strdup(f->rest_newest);
    } else if ((strstr(rq->target, "id=in.") || strcmp(rq->method, "PATCH") == 0) &&
               f->rest_by_id) {
      /* The rows whose id the query names (an update's: the row it changed). */
      cJSON *rows = cJSON_Parse(f->rest_by_id), *row, *next;
      for (row = rows ? rows->child : NULL; row; row = next) {
        next = row->next;
        if (!strstr(rq->target, cJSON_GetObjectItem(row, "id")->valuestring))
          cJSON_Delete(cJSON_DetachItemViaPointer(rows, row));
      }
      *body = cJSON_PrintUnformatted(rows);
      cJSON_Delete(rows);
    } else {
      *body = util_strdup("[]");
    }
  }
#undef IN
  wipe_delete(in); /* the fake's copies must not count as ours */
}

static void on_watchdog(uv_timer_t *t) { ((fx *)t->data)->timed_out = 1; }

/* Run the loop until *value reaches target (fails the case after 15 s). */
static void run_until(fx *f, const int *value, int target) {
  f->timed_out = 0;
  uv_timer_start(&f->watchdog, on_watchdog, 15000, 0);
  while (*value < target && !f->timed_out)
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_timer_stop(&f->watchdog);
  ASSERT(*value >= target);
}

static void on_progress(void *data, uint64_t tag, const cJSON *info) {
  fx *f = data;
  (void)tag;
  cJSON_Delete(f->last_progress);
  f->last_progress = cJSON_Duplicate(info, 1);
  f->progress++;
}

static void on_done(void *data, uint64_t tag, const char *error, const cJSON *user) {
  fx *f = data;
  if (f->done >= 16)
    abort();
  f->done_tag[f->done] = tag;
  f->done_err[f->done] = error ? util_strdup(error) : NULL;
  f->done_user[f->done] = user ? cJSON_Duplicate(user, 1) : NULL;
  f->done++;
}

static void on_store_done(void *data, int status, const char *error, cJSON *rows) {
  fx *f = data;
  f->store_status = status;
  free(f->store_err);
  f->store_err = error ? util_strdup(error) : NULL;
  const cJSON *first = cJSON_GetArrayItem(rows, 0);
  f->store_n = cJSON_IsNumber(first) ? first->valuedouble : -1;
  f->store_rows = cJSON_GetArraySize(rows);
  free(f->store_ids);
  f->store_ids = util_strdup("");
  const cJSON *row;
  cJSON_ArrayForEach(row, rows) {
    const cJSON *id = cJSON_GetObjectItem(row, "id");
    if (cJSON_IsString(id)) {
      char *more = util_printf("%s%s%s", f->store_ids, *f->store_ids ? "," : "", id->valuestring);
      free(f->store_ids);
      f->store_ids = more;
    }
  }
  cJSON_Delete(rows);
  f->store_calls++;
}

static void on_event(void *data, const store_event *ev) {
  (void)data;
  (void)ev;
}

static void on_browser(void *data, const http_response *res) {
  fx *f = data;
  f->browser_status = res->status;
  free(f->browser_body);
  f->browser_body = util_strdup(res->body);
  f->browser_calls++;
}

/* The browser follows url; returns the HTTP status (0: nothing there). */
static long browse(fx *f, const char *url) {
  int before = f->browser_calls;
  ASSERT(http_request(f->browser, "GET", url, NULL, NULL, 0, on_browser, f) > 0);
  run_until(f, &f->browser_calls, before + 1);
  return f->browser_status;
}

static unsigned login_timeout_ms; /* 0: the default */

static void fx_open_store(fx *f, const char *key, unsigned port) {
  store_supabase_config cfg = {0};
  cfg.login_timeout_ms = login_timeout_ms;
  cfg.url = f->url;
  cfg.anon_key = key;
  cfg.session_path = f->session;
  cfg.redirect_port = port;
  char *err = NULL;
  f->st = store_supabase_open(&f->loop, &cfg, &err);
  ASSERT(f->st);
  free(err);
  f->auth = store_supabase_auth(f->st);
  ASSERT(f->auth);
  static const auth_flow_callbacks cbs = {on_progress, on_done};
  auth_set_flow_callbacks(f->auth, &cbs, f);
  ASSERT_EQ(store_watch(f->st, on_event, f), 0);
}

static void fx_init(fx *f, const char *key, unsigned port) {
  memset(f, 0, sizeof *f);
  ASSERT_EQ(uv_loop_init(&f->loop), 0);
  uv_timer_init(&f->loop, &f->watchdog);
  f->watchdog.data = f;
  snprintf(f->dir, sizeof f->dir, "/tmp/shelf-test-auth.XXXXXX");
  ASSERT(mkdtemp(f->dir));
  snprintf(f->session, sizeof f->session, "%s/session.json", f->dir);
  f->srv = fake_sb_start(&f->loop, route, f);
  snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", fake_sb_port(f->srv));
  f->browser = http_client_new(&f->loop, NULL, NULL);
  ASSERT(f->browser);
  if (key)
    fx_open_store(f, key, port);
}

static void on_closed(void *data) { ((fx *)data)->closed++; }

static void fx_close(fx *f) {
  int want = 1;
  if (f->st)
    store_close(f->st, on_closed, f);
  else
    want = 0;
  http_client_close(f->browser, on_closed, f);
  want++;
  fake_sb_stop(f->srv);
  uv_close((uv_handle_t *)&f->watchdog, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  ASSERT_EQ(f->closed, want);
  ASSERT_EQ(uv_loop_close(&f->loop), 0);
  for (int i = 0; i < f->done; i++) {
    free(f->done_err[i]);
    cJSON_Delete(f->done_user[i]);
  }
  cJSON_Delete(f->last_progress);
  free(f->store_err);
  free(f->store_ids);
  free(f->browser_body);
  unlink(f->session);
  rmdir(f->dir);
}

static const char *progress_str(fx *f, const char *name) {
  const cJSON *v = cJSON_GetObjectItem(f->last_progress, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Start an OAuth sign-in; returns the redirect_to the browser is sent back to
 * (caller frees) and keeps the challenge for the fake. */
static char *start_oauth(fx *f, uint64_t tag) {
  char *err = NULL;
  int before = f->progress;
  ASSERT_EQ(auth_login_oauth(f->auth, tag, "google", &err), 0);
  ASSERT_EQ(f->progress, before + 1);
  ASSERT_STR(progress_str(f, "state"), "browser");
  const char *url = progress_str(f, "url");
  ASSERT(url && strncmp(url, f->url, strlen(f->url)) == 0);
  ASSERT(strstr(url, "/auth/v1/authorize?provider=google&"));
  ASSERT(strstr(url, "&code_challenge_method=s256"));
  char *challenge = loopback_url_param(url, "code_challenge");
  ASSERT(challenge && strlen(challenge) == 43);
  snprintf(f->challenge, sizeof f->challenge, "%s", challenge);
  free(challenge);
  return loopback_url_param(url, "redirect_to");
}

static const char *file_text(const char *path, char *buf, size_t n) {
  FILE *fp = fopen(path, "r");
  if (!fp)
    return "";
  size_t got = fread(buf, 1, n - 1, fp);
  buf[got] = '\0';
  fclose(fp);
  return buf;
}

/* --- PKCE, base64url, keys --------------------------------------------------------- */

TEST(pkce_matches_rfc7636) {
  /* RFC 7636 appendix B. */
  char c[CRYPTO_PKCE_LEN + 1];
  ASSERT_EQ(crypto_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", c), 0);
  ASSERT_STR(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  char v1[CRYPTO_PKCE_LEN + 1], v2[CRYPTO_PKCE_LEN + 1], c1[CRYPTO_PKCE_LEN + 1];
  ASSERT_EQ(crypto_pkce(v1, c1), 0);
  ASSERT_EQ(crypto_pkce(v2, c), 0);
  ASSERT_EQ(strlen(v1), 43);
  ASSERT_EQ(strspn(v1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"), 43);
  ASSERT(strcmp(v1, v2) != 0);
  ASSERT(s256_matches(v1, c1));
}

TEST(base64url_and_key_kinds) {
  size_t n = 0;
  unsigned char *d = crypto_b64url_decode("eyJyb2xlIjoiYW5vbiJ9", &n);
  ASSERT(d);
  ASSERT_STR((char *)d, "{\"role\":\"anon\"}");
  free(d);
  ASSERT(!crypto_b64url_decode("a+b/", &n)); /* standard alphabet refused */
  char *p = crypto_b64url((const unsigned char *)"\xfb\xff", 2);
  ASSERT_STR(p, "-_8");
  free(p);
  const char *roles[] = {"{\"role\":\"anon\"}", "{\"role\":\"service_role\"}", "{\"x\":1}"};
  auth_key_kind want[] = {AUTH_KEY_LEGACY_ANON, AUTH_KEY_SECRET, AUTH_KEY_OTHER};
  for (int i = 0; i < 3; i++) {
    char *body = crypto_b64url((const unsigned char *)roles[i], strlen(roles[i]));
    char *jwt = util_printf("eyJhbGciOiJIUzI1NiJ9.%s.c2ln", body);
    ASSERT_EQ(auth_key_kind_of(jwt), want[i]);
    free(body);
    free(jwt);
  }
  ASSERT_EQ(auth_key_kind_of("sb_publishable_abc123"), AUTH_KEY_PUBLISHABLE);
  ASSERT_EQ(auth_key_kind_of("sb_secret_abc123"), AUTH_KEY_SECRET);
  ASSERT_EQ(auth_key_kind_of("some-test-key"), AUTH_KEY_OTHER);
}

TEST(secret_keys_are_refused) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  char *body = crypto_b64url((const unsigned char *)"{\"role\":\"service_role\"}", 23);
  char *jwt = util_printf("eyJhbGciOiJIUzI1NiJ9.%s.c2ln", body);
  const char *keys[] = {"sb_secret_abc123", jwt};
  for (int i = 0; i < 2; i++) {
    store_supabase_config cfg = {0};
    cfg.url = "http://127.0.0.1:9";
    cfg.anon_key = keys[i];
    char *err = NULL;
    ASSERT(!store_supabase_open(&loop, &cfg, &err));
    ASSERT(err && strstr(err, "secret key") && strstr(err, "sb_publishable_"));
    free(err);
  }
  free(body);
  free(jwt);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* --- the listener ------------------------------------------------------------------- */

typedef struct {
  int calls;
  char code[64], state[64], error[64], desc[64];
  loopback_verdict verdict;
} lb_seen;

static loopback_verdict lb_record(void *data, const loopback_answer *a, char *why, size_t n) {
  lb_seen *s = data;
  s->calls++;
  snprintf(s->code, sizeof s->code, "%s", a->code ? a->code : "");
  snprintf(s->state, sizeof s->state, "%s", a->state ? a->state : "");
  snprintf(s->error, sizeof s->error, "%s", a->error ? a->error : "");
  snprintf(s->desc, sizeof s->desc, "%s", a->error_description ? a->error_description : "");
  snprintf(why, n, "refused <for> a test");
  return s->verdict;
}

TEST(loopback_answers_one_callback) {
  fx f;
  fx_init(&f, NULL, 0);
  lb_seen seen = {0};
  unsigned port = 0;
  char *err = NULL;
  loopback *lb = loopback_open(&f.loop, 0, lb_record, &seen, &port, &err);
  ASSERT(lb && port > 0);
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/favicon.ico", port);
  ASSERT_EQ(browse(&f, url), 404);
  snprintf(url, sizeof url, "http://127.0.0.1:%u/auth/callback?state=s1", port);
  ASSERT_EQ(browse(&f, url), 404); /* no code, no error: not the redirect */
  ASSERT_EQ(seen.calls, 0);
  /* A request head past the limit is refused without a look at it. */
  char *big = util_malloc(LOOPBACK_MAX_REQUEST + 200);
  int len = snprintf(big, 64, "http://127.0.0.1:%u/auth/callback?code=x&pad=", port);
  memset(big + len, 'a', LOOPBACK_MAX_REQUEST);
  big[len + LOOPBACK_MAX_REQUEST] = '\0';
  /* 431, or a reset when the rest of the request is left unread. */
  long st = browse(&f, big);
  ASSERT(st == 431 || st == 0);
  free(big);
  ASSERT_EQ(seen.calls, 0);
  /* The one that counts: decoded by libcurl, '+' read as a space. */
  seen.verdict = LOOPBACK_ACCEPTED;
  snprintf(url, sizeof url, "http://127.0.0.1:%u/auth/callback?state=s%%201&code=a%%2Bb%%26c", port);
  ASSERT_EQ(browse(&f, url), 200);
  ASSERT(strstr(f.browser_body, "You can close this tab"));
  ASSERT_EQ(seen.calls, 1);
  ASSERT_STR(seen.code, "a+b&c");
  ASSERT_STR(seen.state, "s 1");
  seen.verdict = LOOPBACK_REFUSED;
  snprintf(url, sizeof url,
           "http://127.0.0.1:%u/auth/callback?error=access_denied&error_description=User+said+no&state=s",
           port);
  ASSERT_EQ(browse(&f, url), 400);
  ASSERT_STR(seen.error, "access_denied");
  ASSERT_STR(seen.desc, "User said no");
  ASSERT(strstr(f.browser_body, "refused &lt;for&gt; a test")); /* escaped for HTML */
  /* 127.0.0.1 only: the machine's other addresses do not answer. */
  uv_interface_address_t *ifs = NULL;
  int nifs = 0;
  if (uv_interface_addresses(&ifs, &nifs) == 0) {
    for (int i = 0; i < nifs; i++) {
      if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET)
        continue;
      char ip[64];
      uv_ip4_name(&ifs[i].address.address4, ip, sizeof ip);
      snprintf(url, sizeof url, "http://%s:%u/favicon.ico", ip, port);
      ASSERT_EQ(browse(&f, url), 0);
    }
    uv_free_interface_addresses(ifs, nifs);
  }
  /* The port is taken while it listens. */
  unsigned port2 = 0;
  ASSERT(!loopback_open(&f.loop, port, lb_record, &seen, &port2, &err));
  ASSERT(err && strstr(err, "is taken"));
  free(err);
  loopback_close(lb, NULL, NULL);
  ASSERT_EQ(browse(&f, url), 0); /* gone */
  fx_close(&f);
}

TEST(url_param) {
  char *v = loopback_url_param("https://app.example/?x=1&code=ab%2Fc&state=q", "code");
  ASSERT_STR(v, "ab/c");
  free(v);
  ASSERT(!loopback_url_param("https://app.example/?xcode=1", "code"));
  ASSERT(!loopback_url_param("not a url", "code"));
  v = loopback_url_param("http://a/?e=x+y%2B", "e");
  ASSERT_STR(v, "x y+");
  free(v);
}

/* --- OAuth through the listener ------------------------------------------------------- */

TEST(oauth_signs_in_through_the_listener) {
  fx f;
  fx_init(&f, "anon-key", 0);
  char *redirect = start_oauth(&f, 7);
  ASSERT(redirect && strncmp(redirect, "http://127.0.0.1:", 17) == 0);
  ASSERT(strstr(redirect, "/auth/callback?state="));
  ASSERT(progress_str(&f, "redirect"));
  cJSON *status = store_describe(f.st);
  ASSERT(cJSON_GetObjectItem(status, "login")); /* a sign-in is waiting */
  cJSON_Delete(status);
  char *other = util_printf("%.*s/elsewhere", (int)(strstr(redirect, "/auth/") - redirect), redirect);
  ASSERT_EQ(browse(&f, other), 404); /* and it waits on */
  free(other);
  char *back = util_printf("%s&code=good-code", redirect);
  ASSERT_EQ(browse(&f, back), 200);
  run_until(&f, &f.done, 1);
  ASSERT_EQ(f.done_tag[0], 7);
  ASSERT(!f.done_err[0]);
  ASSERT_STR(cJSON_GetObjectItem(f.done_user[0], "provider")->valuestring, "google");
  ASSERT_STR(cJSON_GetObjectItem(f.done_user[0], "email")->valuestring, "ada@example.com");
  const fake_sb_req *rq = fake_sb_last(f.srv, "/auth/v1/token?grant_type=pkce");
  ASSERT(rq && strstr(rq->body, "\"auth_code\":\"good-code\""));
  /* Signed in: the session is saved with how it was made, and shown. */
  char buf[4096];
  ASSERT(strstr(file_text(f.session, buf, sizeof buf), "\"provider\":\"google\""));
  struct stat sst;
  ASSERT_EQ(stat(f.session, &sst), 0);
  ASSERT_EQ(sst.st_mode & 0777, 0600);
  status = store_describe(f.st);
  ASSERT_STR(cJSON_GetObjectItem(status, "provider")->valuestring, "google");
  ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(status, "signed_in")));
  ASSERT(!cJSON_GetObjectItem(status, "login"));
  char *text = cJSON_PrintUnformatted(status);
  ASSERT(!strstr(text, "at-1") && !strstr(text, "rt-1")); /* never a token */
  free(text);
  cJSON_Delete(status);
  /* The listener is gone once the sign-in is over. */
  ASSERT_EQ(browse(&f, back), 0);
  free(back);
  free(redirect);
  fx_close(&f);
}

TEST(oauth_state_mismatch_and_denied_consent_end_it) {
  fx f;
  fx_init(&f, "anon-key", 0);
  char *redirect = start_oauth(&f, 1);
  char *port_end = strstr(redirect, "/auth/");
  char *wrong = util_printf("%.*s/auth/callback?state=forged&code=good-code",
                            (int)(port_end - redirect), redirect);
  ASSERT_EQ(browse(&f, wrong), 400);
  run_until(&f, &f.done, 1);
  ASSERT(f.done_err[0] && strstr(f.done_err[0], "state does not match"));
  ASSERT_EQ(fake_sb_count_prefix(f.srv, "/auth/v1/token"), 0); /* nothing exchanged */
  free(wrong);
  free(redirect);
  redirect = start_oauth(&f, 2);
  char *denied = util_printf("%s&error=access_denied&error_description=The+user+denied+access",
                             redirect);
  ASSERT_EQ(browse(&f, denied), 400);
  run_until(&f, &f.done, 2);
  ASSERT_EQ(f.done_tag[1], 2);
  ASSERT(f.done_err[1] && strstr(f.done_err[1], "The user denied access (access_denied)"));
  ASSERT(!auth_signed_in(f.auth));
  free(denied);
  free(redirect);
  fx_close(&f);
}

TEST(paste_finishes_a_waiting_sign_in) {
  fx f;
  fx_init(&f, "anon-key", 0);
  char *redirect = start_oauth(&f, 10);
  char *err = NULL;
  /* Not a code, another sign-in's address, nothing waiting: refused at once. */
  ASSERT_EQ(auth_login_paste(f.auth, 11, "two words", &err), -1);
  free(err);
  ASSERT_EQ(auth_login_paste(f.auth, 11, "https://app.example/?code=good-code&state=old", &err), -1);
  ASSERT(err && strstr(err, "another sign-in"));
  free(err);
  /* The Site URL fallback (no state) with a wrong code: refused, still waiting. */
  ASSERT_EQ(auth_login_paste(f.auth, 12, "https://app.example/?code=bad-code", &err), 0);
  run_until(&f, &f.done, 1);
  ASSERT_EQ(f.done_tag[0], 12);
  ASSERT(f.done_err[0] && strstr(f.done_err[0], "flow_state_not_found"));
  /* The bare code, pasted with spaces around it. */
  ASSERT_EQ(auth_login_paste(f.auth, 13, "  good-code\n", &err), 0);
  run_until(&f, &f.done, 3);
  ASSERT_EQ(f.done_tag[1], 13);
  ASSERT(!f.done_err[1]);
  ASSERT_EQ(f.done_tag[2], 10);
  ASSERT(!f.done_err[2]);
  ASSERT(auth_signed_in(f.auth));
  ASSERT_EQ(auth_login_paste(f.auth, 14, "good-code", &err), -1);
  ASSERT(err && strstr(err, "no sign-in is waiting"));
  free(err);
  ASSERT_EQ(browse(&f, redirect), 0); /* the listener closed */
  free(redirect);
  fx_close(&f);
}

TEST(a_second_sign_in_cancels_the_first) {
  fx f;
  fx_init(&f, "anon-key", 0);
  char *first = start_oauth(&f, 1);
  char *second = start_oauth(&f, 2);
  ASSERT_EQ(f.done, 1);
  ASSERT_EQ(f.done_tag[0], 1);
  ASSERT(f.done_err[0] && strstr(f.done_err[0], "cancelled"));
  auth_login_cancel(f.auth);
  ASSERT_EQ(f.done, 2);
  ASSERT_EQ(f.done_tag[1], 2);
  ASSERT(f.done_err[1] && strstr(f.done_err[1], "cancelled"));
  char *back = util_printf("%s&code=good-code", second);
  ASSERT_EQ(browse(&f, back), 0); /* nobody listens any more */
  free(back);
  /* A password sign-in cancels a waiting one too. */
  free(start_oauth(&f, 3));
  ASSERT_EQ(store_supabase_auth(f.st) == f.auth, 1);
  ASSERT_EQ(f.st->ops->login(f.st, "ada@example.com", PASSWORD, on_store_done, &f), 0);
  ASSERT_EQ(f.done, 3);
  ASSERT(f.done_err[2] && strstr(f.done_err[2], "cancelled"));
  run_until(&f, &f.store_calls, 1);
  ASSERT_EQ(f.store_status, 0);
  free(first);
  free(second);
  fx_close(&f);
}

TEST(a_sign_in_without_an_answer_stops_and_stops_listening) {
  login_timeout_ms = 300;
  fx f;
  fx_init(&f, "anon-key", 0);
  login_timeout_ms = 0;
  char *redirect = start_oauth(&f, 4);
  run_until(&f, &f.done, 1);
  ASSERT_EQ(f.done_tag[0], 4);
  ASSERT(f.done_err[0] && strstr(f.done_err[0], "no answer in 1 minute, so the sign-in stopped"));
  char *back = util_printf("%s&code=good-code", redirect);
  ASSERT_EQ(browse(&f, back), 0);
  free(back);
  free(redirect);
  fx_close(&f);
}

TEST(port_taken_goes_on_without_the_listener) {
  fx f;
  fx_init(&f, NULL, 0);
  uv_tcp_t squatter;
  uv_tcp_init(&f.loop, &squatter);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  ASSERT_EQ(uv_tcp_bind(&squatter, (const struct sockaddr *)&addr, 0), 0);
  ASSERT_EQ(uv_listen((uv_stream_t *)&squatter, 1, NULL), 0);
  struct sockaddr_in got;
  int len = sizeof got;
  uv_tcp_getsockname(&squatter, (struct sockaddr *)&got, &len);
  fx_open_store(&f, "anon-key", ntohs(got.sin_port));
  char *redirect = start_oauth(&f, 5);
  ASSERT(!redirect); /* Auth will send the browser to the Site URL */
  ASSERT(progress_str(&f, "problem") && strstr(progress_str(&f, "problem"), "is taken"));
  ASSERT(strstr(progress_str(&f, "problem"), ":Shelf login paste"));
  char *err = NULL;
  ASSERT_EQ(auth_login_paste(f.auth, 6, "https://app.example/?code=good-code", &err), 0);
  run_until(&f, &f.done, 2);
  ASSERT(!f.done_err[0] && !f.done_err[1]);
  uv_close((uv_handle_t *)&squatter, NULL);
  fx_close(&f);
}

/* --- email link or code ----------------------------------------------------------------- */

TEST(email_code_and_link) {
  fx f;
  fx_init(&f, "anon-key", 0);
  char *err = NULL;
  ASSERT_EQ(auth_login_email(f.auth, 3, "ada@example.com", &err), 0);
  run_until(&f, &f.progress, 1);
  ASSERT_STR(progress_str(&f, "state"), "email_sent");
  const fake_sb_req *rq = fake_sb_last(f.srv, "/auth/v1/otp");
  ASSERT(rq && strstr(rq->target, "/auth/v1/otp?redirect_to=http%3A%2F%2F127.0.0.1%3A"));
  ASSERT(strstr(rq->body, "\"create_user\":false"));
  ASSERT(strstr(rq->body, "\"code_challenge_method\":\"s256\""));
  /* A wrong code: refused, and the sign-in still waits. */
  ASSERT_EQ(auth_login_verify(f.auth, 4, "ada@example.com", "000000", &err), 0);
  run_until(&f, &f.done, 1);
  ASSERT_EQ(f.done_tag[0], 4);
  ASSERT(f.done_err[0] && strstr(f.done_err[0], "otp_expired"));
  ASSERT_EQ(auth_login_verify(f.auth, 5, "ada@example.com", "123456", &err), 0);
  run_until(&f, &f.done, 3);
  ASSERT_EQ(f.done_tag[1], 5);
  ASSERT_EQ(f.done_tag[2], 3);
  ASSERT(!f.done_err[2]);
  ASSERT_STR(cJSON_GetObjectItem(f.done_user[2], "provider")->valuestring, "email");
  /* The link in the mail comes back to the listener with a code. */
  ASSERT_EQ(auth_login_email(f.auth, 6, "ada@example.com", &err), 0);
  run_until(&f, &f.progress, 2);
  char *full = util_printf("http://x%s", fake_sb_last(f.srv, "/auth/v1/otp")->target);
  char *redirect = loopback_url_param(full, "redirect_to");
  free(full);
  char *back = util_printf("%s&code=good-code", redirect);
  ASSERT_EQ(browse(&f, back), 200);
  run_until(&f, &f.done, 4);
  ASSERT_EQ(f.done_tag[3], 6);
  ASSERT(!f.done_err[3]);
  free(back);
  free(redirect);
  /* An address Auth does not know. */
  ASSERT_EQ(auth_login_email(f.auth, 7, "nobody@example.com", &err), 0);
  run_until(&f, &f.done, 5);
  ASSERT(f.done_err[4] && strstr(f.done_err[4], "Signups not allowed for otp"));
  ASSERT_EQ(auth_login_email(f.auth, 8, "not an address", &err), -1);
  free(err);
  /* A code typed with no email sign-in waiting (an OAuth one is given up). */
  free(start_oauth(&f, 9));
  ASSERT_EQ(auth_login_verify(f.auth, 10, "ada@example.com", "123456", &err), 0);
  ASSERT_EQ(f.done, 6);
  ASSERT_EQ(f.done_tag[5], 9);
  ASSERT(f.done_err[5] && strstr(f.done_err[5], "cancelled"));
  run_until(&f, &f.done, 7);
  ASSERT_EQ(f.done_tag[6], 10);
  ASSERT(!f.done_err[6]);
  fx_close(&f);
}

/* --- tokens -------------------------------------------------------------------------- */

static void sign_in_with_password(fx *f) {
  ASSERT_EQ(f->st->ops->login(f->st, "ada@example.com", PASSWORD, on_store_done, f), 0);
  run_until(f, &f->store_calls, 1);
  ASSERT_EQ(f->store_status, 0);
}

TEST(a_clock_ahead_of_the_server_does_not_refresh_in_a_loop) {
  fx f;
  fx_init(&f, "anon-key", 0);
  /* Our clock is two hours ahead: by it, every token the server hands out
   * (an hour's life by the server's clock) expired an hour ago. */
  f.server_clock_offset = -7200;
  f.refresh_fail_after = 3; /* so today's loop ends in an error, not a hang */
  sign_in_with_password(&f);
  ASSERT_EQ(store_fetch(f.st, STORE_BLOCKS, NULL, on_store_done, &f), 0);
  run_until(&f, &f.store_calls, 2);
  ASSERT_EQ(f.store_status, 0);
  ASSERT_EQ(fake_sb_count_prefix(f.srv, "/auth/v1/token?grant_type=refresh_token"), 0);
  ASSERT_EQ(fake_sb_count_prefix(f.srv, "/rest/v1/"), 1);
  fx_close(&f);
}

TEST(a_long_jwt_is_sent_whole) {
  fx f;
  fx_init(&f, "anon-key", 0);
  /* Custom claims make JWTs long; 6000 bytes is past any 4 KiB buffer. */
  char *token = util_malloc(6001);
  for (int i = 0; i < 6000; i++)
    token[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36];
  token[6000] = '\0';
  f.access_token = token;
  sign_in_with_password(&f);
  ASSERT_EQ(store_fetch(f.st, STORE_BLOCKS, NULL, on_store_done, &f), 0);
  run_until(&f, &f.store_calls, 2);
  char *auth = fake_sb_header(fake_sb_last(f.srv, "/rest/v1/"), "Authorization");
  ASSERT(auth && strncmp(auth, "Bearer ", 7) == 0);
  ASSERT_EQ(strlen(auth + 7), 6000);
  ASSERT_STR(auth + 7, token);
  free(auth);
  fx_close(&f);
  free(token);
}

TEST(a_publishable_key_is_never_a_bearer_token) {
  fx f;
  fx_init(&f, "sb_publishable_test_123", 0);
  sign_in_with_password(&f);
  const fake_sb_req *rq = fake_sb_last(f.srv, "/auth/v1/token?grant_type=password");
  char *apikey = fake_sb_header(rq, "apikey");
  char *auth = fake_sb_header(rq, "Authorization");
  ASSERT_STR(apikey, "sb_publishable_test_123");
  ASSERT(!auth);
  free(apikey);
  ASSERT_EQ(store_fetch(f.st, STORE_BLOCKS, NULL, on_store_done, &f), 0);
  run_until(&f, &f.store_calls, 2);
  rq = fake_sb_last(f.srv, "/rest/v1/");
  apikey = fake_sb_header(rq, "apikey");
  auth = fake_sb_header(rq, "Authorization");
  ASSERT_STR(apikey, "sb_publishable_test_123");
  ASSERT_STR(auth, "Bearer at-1");
  free(apikey);
  free(auth);
  cJSON *status = store_describe(f.st);
  ASSERT_STR(cJSON_GetObjectItem(status, "key")->valuestring, "publishable");
  cJSON_Delete(status);
  fx_close(&f);
}

/* --- the refresh's reads -------------------------------------------------------------- */

TEST(since_and_count_until_ask_postgrest_for_the_change_and_a_count) {
  fx f;
  fx_init(&f, "anon-key", 0);
  sign_in_with_password(&f);
  const char *at = "2026-01-02T03:04:05.123456+00:00";
  /* The stamp as the server printed it, percent-encoded ('+' is no space). */
  const char *enc = "2026-01-02T03%3A04%3A05.123456%2B00%3A00";
  cJSON *known = cJSON_CreateArray();
  cJSON_AddItemToArray(known, cJSON_CreateString("11111111-1111-4111-8111-111111111111"));
  ASSERT_EQ(store_since(f.st, STORE_PROMPTS, at, known, on_store_done, &f), 0);
  run_until(&f, &f.store_calls, 2);
  ASSERT_EQ(f.store_status, 0);
  const fake_sb_req *rq = fake_sb_last(f.srv, "/rest/v1/prompts");
  ASSERT_STR(rq->method, "GET");
  char *want = util_printf("or=(updated_at.gt.%s,and(updated_at.eq.%s,id.not.in."
                           "(11111111-1111-4111-8111-111111111111)))", enc, enc);
  ASSERT(strstr(rq->target, want) != NULL);
  free(want);
  ASSERT(strstr(rq->target, "user_id=eq.") != NULL);
  /* No ids known there: only later rows. */
  ASSERT_EQ(store_since(f.st, STORE_PROMPTS, at, NULL, on_store_done, &f), 0);
  run_until(&f, &f.store_calls, 3);
  want = util_printf("updated_at=gt.%s", enc);
  ASSERT(strstr(fake_sb_last(f.srv, "/rest/v1/prompts")->target, want) != NULL);
  free(want);
  /* The count: a HEAD with count=exact, read from Content-Range. */
  fake_sb_set_headers(f.srv, "Content-Range: 0-0/42\r\n");
  ASSERT_EQ(store_count_until(f.st, STORE_BLOCKS, at, on_store_done, &f), 0);
  run_until(&f, &f.store_calls, 4);
  ASSERT_EQ(f.store_status, 0);
  ASSERT_EQ(f.store_n, 42);
  rq = fake_sb_last(f.srv, "/rest/v1/context_blocks");
  ASSERT_STR(rq->method, "HEAD");
  want = util_printf("updated_at=lte.%s", enc);
  ASSERT(strstr(rq->target, want) != NULL);
  free(want);
  char *prefer = fake_sb_header(rq, "Prefer");
  ASSERT_STR(prefer, "count=exact");
  free(prefer);
  /* An answer without a count is an error, never a count of 0. */
  fake_sb_set_headers(f.srv, NULL);
  ASSERT_EQ(store_count_until(f.st, STORE_BLOCKS, at, on_store_done, &f), 0);
  run_until(&f, &f.store_calls, 5);
  ASSERT_EQ(f.store_status, STORE_EBACKEND);
  ASSERT(strstr(f.store_err, "Content-Range") != NULL);
  /* Not a stamp: refused at once. */
  ASSERT_EQ(store_since(f.st, STORE_PROMPTS, "soon", NULL, on_store_done, &f), STORE_EINVALID);
  ASSERT_EQ(store_count_until(f.st, STORE_PROMPTS, "", on_store_done, &f), STORE_EINVALID);
  cJSON_Delete(known);
  fx_close(&f);
}

/* The two at once (delta): one read of the newest stamps with the count of
 * every stamped row, then only the rows that changed, by id; since and
 * count_until as before when every stamp read is after the mark. */
#define ROW_A "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define ROW_B "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
#define ROW_C "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
#define ROW_D "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
#define MARK "2026-01-02T03:04:05.123456+00:00"
#define STAMP(id, at) "{\"id\":\"" id "\",\"updated_at\":\"" at "\"}"
#define ROW(id, at) "{\"id\":\"" id "\",\"user_id\":\"" USER_ID "\",\"updated_at\":\"" at "\"}"

TEST(delta_reads_the_newest_stamps_then_only_the_rows_that_changed) {
  fx f;
  fx_init(&f, "anon-key", 0);
  sign_in_with_password(&f);
  /* A changed after the mark; C at it and not known there. */
  f.rest_newest = "[" STAMP(ROW_A, "2026-01-02T03:04:06+00:00") "," STAMP(ROW_C, MARK) "]";
  f.rest_by_id = "[" ROW(ROW_A, "2026-01-02T03:04:06+00:00") "," ROW(ROW_C, MARK) "]";
  fake_sb_set_headers(f.srv, "Content-Range: 0-1/40\r\n");
  cJSON *known = cJSON_CreateArray();
  cJSON_AddItemToArray(known, cJSON_CreateString(ROW_B));
  int before = fake_sb_count_prefix(f.srv, "/rest/v1/");
  ASSERT_EQ(store_delta(f.st, STORE_PROMPTS, MARK, known, on_store_done, &f), 0);
  run_until(&f, &f.store_calls, 2);
  ASSERT_EQ(f.store_status, 0);
  ASSERT_EQ(f.store_n, 39); /* 40 stamped rows, one of them after the mark */
  ASSERT_EQ(f.store_rows, 3);
  ASSERT(strstr(f.store_ids, ROW_A) && strstr(f.store_ids, ROW_C));
  /* The stamps, then the changed rows (no local copy here: the server's). */
  ASSERT_EQ(fake_sb_count_prefix(f.srv, "/rest/v1/") - before, 2);
  const fake_sb_req *rq = fake_sb_get(f.srv, fake_sb_count(f.srv) - 2);
  ASSERT_STR(rq->method, "GET");
  ASSERT(strstr(rq->target, "/rest/v1/prompts?select=id,updated_at&updated_at=not.is.null"));
  ASSERT(strstr(rq->target, "&order=updated_at.desc&limit=2") != NULL);
  ASSERT(strstr(rq->target, "user_id=eq.") != NULL);
  char *prefer = fake_sb_header(rq, "Prefer");
  ASSERT_STR(prefer, "count=exact");
  free(prefer);
  ASSERT(strstr(fake_sb_last(f.srv, "/rest/v1/")->target, "id=in.(" ROW_A "," ROW_C ")") != NULL);

  /* Nothing after the mark, and B at it known there; then the same with
   * too many rows at the mark to list them (known NULL): those there are
   * not asked for again, the count tells of one more. One request each. */
  f.rest_newest = "[" STAMP(ROW_B, MARK) "," STAMP(ROW_D, "2026-01-01T00:00:00+00:00") "]";
  for (int listed = 1; listed >= 0; listed--) {
    before = fake_sb_count_prefix(f.srv, "/rest/v1/");
    int calls = f.store_calls;
    ASSERT_EQ(store_delta(f.st, STORE_BLOCKS, MARK, listed ? known : NULL, on_store_done, &f), 0);
    run_until(&f, &f.store_calls, calls + 1);
    ASSERT_EQ(f.store_status, 0);
    ASSERT_EQ(f.store_n, 40);
    ASSERT_EQ(f.store_rows, 1);
    ASSERT_EQ(fake_sb_count_prefix(f.srv, "/rest/v1/") - before, 1);
  }

  /* Every stamp read is after the mark: more may be, since and count_until
   * tell (the count from the HEAD, the rows from the read of the change). */
#define LATER "2026-01-03T00:00:00+00:00"
  f.rest_newest = "[" STAMP(ROW_A, LATER) "," STAMP(ROW_B, LATER) "]";
  before = fake_sb_count_prefix(f.srv, "/rest/v1/");
  ASSERT_EQ(store_delta(f.st, STORE_PROMPTS, MARK, NULL, on_store_done, &f), 0);
  run_until(&f, &f.store_calls, 5);
  ASSERT_EQ(f.store_status, 0);
  ASSERT_EQ(f.store_n, 40);
  ASSERT_EQ(fake_sb_count_prefix(f.srv, "/rest/v1/") - before, 3);
  int heads = 0, sinces = 0;
  for (int i = fake_sb_count(f.srv) - 2; i < fake_sb_count(f.srv); i++) {
    heads += strcmp(fake_sb_get(f.srv, i)->method, "HEAD") == 0;
    sinces += strstr(fake_sb_get(f.srv, i)->target, "updated_at=gt.") != NULL;
  }
  ASSERT_EQ(heads, 1);
  ASSERT_EQ(sinces, 1);

  /* No count in the answers: since and count_until are asked, and the
   * count's lack is an error, never a guess. */
  fake_sb_set_headers(f.srv, NULL);
  before = fake_sb_count_prefix(f.srv, "/rest/v1/");
  ASSERT_EQ(store_delta(f.st, STORE_PROMPTS, MARK, NULL, on_store_done, &f), 0);
  run_until(&f, &f.store_calls, 6);
  ASSERT_EQ(f.store_status, STORE_EBACKEND);
  ASSERT(strstr(f.store_err, "Content-Range") != NULL);
  ASSERT_EQ(fake_sb_count_prefix(f.srv, "/rest/v1/") - before, 3);
  ASSERT_EQ(store_delta(f.st, STORE_PROMPTS, "soon", NULL, on_store_done, &f), STORE_EINVALID);

  /* A row this store wrote, changed at the stamp its write answered: taken
   * from what the store kept of it, not read again. */
  fake_sb_set_headers(f.srv, "Content-Range: 0-1/40\r\n");
  cJSON *fields = cJSON_Parse("{\"title\":\"a\"}");
  ASSERT_EQ(store_update(f.st, STORE_PROMPTS, ROW_A, fields, on_store_done, &f), 0);
  cJSON_Delete(fields);
  run_until(&f, &f.store_calls, 7);
  ASSERT_EQ(f.store_status, 0);
  f.rest_newest = "[" STAMP(ROW_A, "2026-01-02T03:04:06+00:00") ","
                  STAMP(ROW_D, "2026-01-01T00:00:00+00:00") "]";
  before = fake_sb_count_prefix(f.srv, "/rest/v1/");
  ASSERT_EQ(store_delta(f.st, STORE_PROMPTS, MARK, NULL, on_store_done, &f), 0);
  run_until(&f, &f.store_calls, 8);
  ASSERT_EQ(f.store_status, 0);
  ASSERT_EQ(f.store_n, 39);
  ASSERT_STR(f.store_ids, ROW_A);
  ASSERT_EQ(fake_sb_count_prefix(f.srv, "/rest/v1/") - before, 1);
  cJSON_Delete(known);
  fx_close(&f);
}

/* --- secrets in freed memory ------------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
/* From ASan's allocator interface (GCC ships no header for it). */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
size_t __sanitizer_get_allocated_size(const volatile void *p);

static const char *hunted[2];
static volatile int hunted_found;
static char hunted_first[48];

/* Every block freed while hunting: does it hold a secret? libcurl's own
 * request buffer (it begins with the request line) is libcurl's, out of
 * our reach, and left out. */
static void hunt_free(const volatile void *ptr) {
  size_t n = __sanitizer_get_allocated_size((const void *)ptr);
  const char *p = (const char *)ptr;
  if (n >= 5 && (memcmp(p, "POST ", 5) == 0 || memcmp(p, "GET ", 4) == 0))
    return;
  for (int i = 0; i < 2; i++) {
    if (hunted[i] && memmem(p, n, hunted[i], strlen(hunted[i]))) {
      if (!hunted_found)
        memcpy(hunted_first, p, n < sizeof hunted_first - 1 ? n : sizeof hunted_first - 1);
      hunted_found++;
    }
  }
}

static void hunt_malloc(const volatile void *ptr, size_t n) {
  (void)ptr;
  (void)n;
}

typedef struct {
  int notes;
} rpc_seen;

static void rpc_on_request(void *data, uint32_t id, const char *m, const msgpack_object *p) {
  (void)data, (void)id, (void)m, (void)p;
}
static void rpc_on_notify(void *data, const char *m, const msgpack_object *p) {
  (void)m, (void)p;
  ((rpc_seen *)data)->notes++;
}
static void rpc_on_close(void *data, const char *why) {
  (void)data, (void)why;
}

TEST(no_password_or_verifier_is_left_in_freed_memory) {
  static char verifier[64];
  hunted[0] = PASSWORD;
  hunted[1] = NULL;
  hunted_found = 0;
  __sanitizer_install_malloc_and_free_hooks(hunt_malloc, hunt_free);
  fx f;
  fx_init(&f, "anon-key", 0);
  /* The editor's `login` notification, read by the RPC layer. */
  int in[2], out[2];
  ASSERT_EQ(pipe(in), 0);
  ASSERT_EQ(pipe(out), 0);
  rpc_seen seen = {0};
  rpc *r = NULL;
  static const rpc_handlers h = {rpc_on_request, rpc_on_notify, rpc_on_close};
  ASSERT_EQ(rpc_open(&r, &f.loop, in[0], out[1], &h, &seen), 0);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 3);
  msgpack_pack_int(&pk, 2);
  msgpack_pack_str_with_body(&pk, "login", 5);
  msgpack_pack_array(&pk, 3);
  msgpack_pack_int(&pk, 1);
  msgpack_pack_str_with_body(&pk, "ada@example.com", 15);
  msgpack_pack_str_with_body(&pk, PASSWORD, strlen(PASSWORD));
  ASSERT_EQ(write(in[1], sb.data, sb.size), (ssize_t)sb.size);
  explicit_bzero(sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  run_until(&f, &seen.notes, 1);
  rpc_close(r, NULL, NULL);
  /* Signing in with it, a refresh, and an OAuth code exchange. */
  sign_in_with_password(&f);
  auth_refresh(f.auth);
  while (fake_sb_count_prefix(f.srv, "/auth/v1/token?grant_type=refresh_token") < 1 ||
         !auth_token_fresh(f.auth, 5))
    uv_run(&f.loop, UV_RUN_ONCE);
  char *redirect = start_oauth(&f, 1);
  char *back = util_printf("%s&code=good-code", redirect);
  ASSERT_EQ(browse(&f, back), 200);
  run_until(&f, &f.done, 1);
  ASSERT(!f.done_err[0]);
  const fake_sb_req *rq = fake_sb_last(f.srv, "/auth/v1/token?grant_type=pkce");
  const char *v = strstr(rq->body, "\"code_verifier\":\"");
  ASSERT(v);
  snprintf(verifier, sizeof verifier, "%.43s", v + 17);
  hunted[1] = verifier; /* the fake's copies are wiped when it stops */
  free(back);
  free(redirect);
  fx_close(&f);
  close(in[1]);
  close(out[0]);
  __sanitizer_install_malloc_and_free_hooks(NULL, NULL);
  if (hunted_found)
    fprintf(stderr, "  a freed block held a secret; it began: %.40s\n", hunted_first);
  ASSERT_EQ(hunted_found, 0);
}
#endif

static const test_case test_cases[] = {
    TEST_ENTRY(pkce_matches_rfc7636),
    TEST_ENTRY(base64url_and_key_kinds),
    TEST_ENTRY(secret_keys_are_refused),
    TEST_ENTRY(loopback_answers_one_callback),
    TEST_ENTRY(url_param),
    TEST_ENTRY(oauth_signs_in_through_the_listener),
    TEST_ENTRY(oauth_state_mismatch_and_denied_consent_end_it),
    TEST_ENTRY(paste_finishes_a_waiting_sign_in),
    TEST_ENTRY(a_second_sign_in_cancels_the_first),
    TEST_ENTRY(since_and_count_until_ask_postgrest_for_the_change_and_a_count),
    TEST_ENTRY(delta_reads_the_newest_stamps_then_only_the_rows_that_changed),
    TEST_ENTRY(a_sign_in_without_an_answer_stops_and_stops_listening),
    TEST_ENTRY(port_taken_goes_on_without_the_listener),
    TEST_ENTRY(email_code_and_link),
    TEST_ENTRY(a_clock_ahead_of_the_server_does_not_refresh_in_a_loop),
    TEST_ENTRY(a_long_jwt_is_sent_whole),
    TEST_ENTRY(a_publishable_key_is_never_a_bearer_token),
#if defined(__SANITIZE_ADDRESS__)
    TEST_ENTRY(no_password_or_verifier_is_left_in_freed_memory),
#endif
};

TEST_MAIN()
