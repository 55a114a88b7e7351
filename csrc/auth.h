/* auth.h - the Supabase Auth session of the Supabase backend: the tokens and
 * the user, the 0600 session file, refreshing the access token before it
 * expires, signing in (email and password; OAuth with PKCE through a
 * loopback redirect; a pasted redirect URL or code; an email link or code)
 * and signing out. store_supabase.c owns one auth_session and hears about
 * session changes through auth_event_cb; main.c starts the sign-ins that
 * wait for a browser (doc/architecture-auth.md has the contract). Tokens,
 * codes and verifiers never reach a log, a push or a status. */
#ifndef SHELF_AUTH_H
#define SHELF_AUTH_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <uv.h>

#include "http.h"
#include "store.h"

#define AUTH_DEFAULT_REDIRECT_PORT 47615
#define AUTH_FLOW_TIMEOUT_MS (5 * 60 * 1000) /* a sign-in waits this long */

typedef struct auth_session auth_session;

/* What a configured API key is (auth_key_kind). */
typedef enum {
  AUTH_KEY_PUBLISHABLE, /* sb_publishable_...: not a JWT, never a Bearer token */
  AUTH_KEY_LEGACY_ANON, /* a JWT whose role is anon */
  AUTH_KEY_OTHER,       /* neither (a test server's key): treated as legacy */
  AUTH_KEY_SECRET,      /* sb_secret_... or a service_role JWT: refused */
} auth_key_kind;

auth_key_kind auth_key_kind_of(const char *key);
const char *auth_key_kind_name(auth_key_kind k); /* "publishable", ... */

/* What the session did, for the store (which owns the requests waiting for
 * a token and Realtime). */
typedef enum {
  AUTH_EV_REFRESHED,   /* new tokens for the same user */
  AUTH_EV_UNAVAILABLE, /* a refresh failed but the session stays: fail the
                          waiting requests with status and msg */
  AUTH_EV_SIGNED_IN,   /* a sign-in finished; same_user: the same account */
  AUTH_EV_ENDED,       /* the session is over (refresh refused, sign-out):
                          fail the waiting requests with msg, stop Realtime */
  AUTH_EV_RESET,       /* what the user sees changed wholesale: reload */
} auth_event_type;

typedef struct {
  auth_event_type type;
  int status;      /* UNAVAILABLE: a store.h code */
  const char *msg; /* UNAVAILABLE, ENDED */
  int same_user;   /* SIGNED_IN */
} auth_event;

typedef void (*auth_event_cb)(void *data, const auth_event *ev);

/* Sign-ins that wait for a browser or a mail report to main.c: `progress`
 * with info {state = "browser"|"email_sent"|"exchanging", ...} (borrowed),
 * and exactly one `done` per tag that auth_login_* accepted; user
 * {id, email, provider} (borrowed) or NULL with an error. */
typedef struct {
  void (*progress)(void *data, uint64_t tag, const cJSON *info);
  void (*done)(void *data, uint64_t tag, const char *error, const cJSON *user);
} auth_flow_callbacks;

typedef struct {
  const char *url;          /* project URL without a trailing slash */
  const char *key;          /* the publishable or anon key */
  const char *session_path; /* NULL: nothing saved */
  unsigned redirect_port;   /* 0: any free port */
  unsigned flow_timeout_ms; /* 0: AUTH_FLOW_TIMEOUT_MS */
} auth_options;

/* All strings are copied; http is borrowed (it must outlive the session:
 * close the session first). Loads the session file. Never fails. */
auth_session *auth_new(uv_loop_t *loop, http_client *http, const auth_options *opts,
                       auth_event_cb on_event, void *data);
void auth_set_flow_callbacks(auth_session *a, const auth_flow_callbacks *cbs, void *data);

/* --- the session, for the store --------------------------------------------- */

int auth_signed_in(const auth_session *a); /* a refresh token is held */
const char *auth_user_id(const auth_session *a);
const char *auth_access_token(const auth_session *a);
double auth_expires_at(const auth_session *a); /* unix seconds, local clock */
/* 1 if the access token is good for at least margin_s more seconds and no
 * refresh is under way. */
int auth_token_fresh(const auth_session *a, double margin_s);
/* Why there is no session ("signed out", "the session file is damaged...";
 * NULL when signed in). */
const char *auth_problem(const auth_session *a);
/* Refresh now unless one is under way; AUTH_EV_REFRESHED or _UNAVAILABLE or
 * _ENDED follows. */
void auth_refresh(auth_session *a);
/* The store starts watching: returns 1 if the token is fresh enough to use
 * now (the refresh is scheduled), 0 if a refresh was started instead. */
int auth_start(auth_session *a);
/* Realtime refused the token it held / joined with it. */
void auth_realtime_refused(auth_session *a);
void auth_realtime_joined(auth_session *a);

/* "Authorization: Bearer <token>" for a request: the user's access token
 * when signed in, else the key unless it is a publishable key (not a JWT),
 * then NULL. Never truncated. Free with auth_free_header (it wipes). */
char *auth_bearer_header(const auth_session *a);
char *auth_apikey_header(const auth_session *a);
void auth_free_header(char *h);

/* Add user, provider, signed_in, session, login and key to a status. */
void auth_describe(const auth_session *a, cJSON *o);

/* --- signing in and out ------------------------------------------------------- */

/* Email and password (the store's login op): rows = [user]. 0, or
 * STORE_EINVALID while a sign-in or sign-out is under way (cb not called). */
int auth_login_password(auth_session *a, const char *email, const char *password,
                        store_done_cb cb, void *data);
/* Sign out locally at once (AUTH_EV_ENDED), tell Auth, then cb and
 * AUTH_EV_RESET. Also cancels a waiting sign-in. */
int auth_logout(auth_session *a, store_done_cb cb, void *data);

/* Sign-ins that wait. Each returns 0 (then `done` for tag follows, through
 * the flow callbacks), or -1 with *err (caller frees; `done` never comes). */
int auth_login_oauth(auth_session *a, uint64_t tag, const char *provider, char **err);
int auth_login_email(auth_session *a, uint64_t tag, const char *email, char **err);
int auth_login_verify(auth_session *a, uint64_t tag, const char *email, const char *code,
                      char **err);
int auth_login_paste(auth_session *a, uint64_t tag, const char *text, char **err);
/* End the waiting sign-in (its `done` says "sign-in cancelled"); nothing
 * waiting is not an error. */
void auth_login_cancel(auth_session *a);

/* Cancel what is under way (callbacks get STORE_ECLOSED or "shelfd is
 * shutting down"), close every handle, free a, then closed(data). */
void auth_close(auth_session *a, void (*closed)(void *), void *data);

#endif
