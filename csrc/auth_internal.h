/* auth_internal.h - what auth.c (the session) and auth_flow.c (the
 * sign-ins that wait) share; nothing outside the two includes it.
 * The session owns its one flow (a->flow); a flow owns its strings, its
 * listener and its timer, and frees itself once its handles have closed. */
#ifndef SHELF_AUTH_INTERNAL_H
#define SHELF_AUTH_INTERNAL_H

#include "auth.h"
#include "crypto.h"
#include "loopback.h"

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

/* auth.c */
void auth_set(char **slot, const char *value); /* wipes the old value */
/* The body of a request from o, which is wiped and freed. Free the result
 * with auth_free_header. */
char *auth_body(cJSON *o);
/* POST body (wiped and freed) to <url>/auth/v1/<path>; the http id. */
long auth_post(auth_session *a, const char *path, char *body, int with_session,
               http_done_cb cb, void *data);
/* A message for a failed answer (caller frees); *rc a store.h code. */
char *auth_failure(const auth_session *a, const http_response *res, int *rc);
void auth_emit(auth_session *a, auth_event_type type, int status, const char *msg,
               int same_user);
/* Take a sign-in's answer: 0 and *user (caller frees), or -1 and *msg. */
int auth_signed_in_from(auth_session *a, const http_response *res, const char *provider,
                        cJSON **user, char **msg);
/* Free a closing session once its timer and every ended flow are closed. */
void auth_maybe_free(auth_session *a);

/* auth_flow.c */
/* End the flow: its call (and a verify or paste waiting on its request) gets
 * `done`; the listener and the timer close. */
void auth_flow_end(auth_flow *f, const char *error, const cJSON *user);
/* {state, provider, email, redirect, port, problem}; the caller frees. */
cJSON *auth_flow_info(const auth_flow *f, const char *state);

#endif
