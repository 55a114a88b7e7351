/* auth_flow.c - the sign-ins that wait for a browser or a mail (see auth.h;
 * doc/architecture-auth.md has the contract): OAuth with PKCE through the
 * loopback redirect listener, a pasted redirect URL or code, an email link
 * or code. One flow at a time: a new one ends the one waiting. A flow owns
 * its PKCE pair and state (crypto.c), its listener (loopback.c), a timer,
 * and at most one request to Auth; it ends with exactly one `done` for the
 * call that started it, and frees itself once its handles have closed. The
 * session it makes is taken by auth.c (auth_signed_in_from).
 */
#include "auth.h"
#include "auth_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define AUTH_MAX_CODE 4096 /* bytes of a pasted URL or code */

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
  auth_maybe_free(a);
}

static void flow_timer_closed(uv_handle_t *h) { flow_part_closed(h->data); }
static void flow_lb_closed(void *data) { flow_part_closed(data); }

static void flow_done(auth_session *a, uint64_t tag, const char *error, const cJSON *user) {
  if (tag && a->flow_cbs.done)
    a->flow_cbs.done(a->flow_data, tag, error, user);
}

/* End the flow: its call (and a verify or paste waiting on its request)
 * gets `done`, an error as "Signing in failed: <why>" (an error of a step
 * that leaves the flow waiting says no such thing); the listener and the
 * timer close. */
void auth_flow_end(auth_flow *f, const char *error, const cJSON *user) {
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
  char *msg = error ? util_printf("Signing in failed: %s", error) : NULL;
  if (error)
    log_info("sign-in ended: %s", error);
  flow_done(a, step_tag, msg, user);
  flow_done(a, f->tag, msg, user);
  free(msg);
}

static void flow_on_timeout(uv_timer_t *t) {
  auth_flow *f = t->data;
  char *msg = util_printf("no answer in %u minute%s, so the sign-in stopped; :Shelf login tries "
                          "again", (f->a->flow_timeout_ms + 59999) / 60000,
                          f->a->flow_timeout_ms > 60000 ? "s" : "");
  auth_flow_end(f, msg, NULL);
  free(msg);
}

static void flow_progress(auth_flow *f, cJSON *info) {
  auth_session *a = f->a;
  if (a->flow_cbs.progress && !a->closing)
    a->flow_cbs.progress(a->flow_data, f->tag, info);
  cJSON_Delete(info);
}

cJSON *auth_flow_info(const auth_flow *f, const char *state) {
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
    auth_flow_end(f, NULL, user);
    cJSON_Delete(user);
    auth_emit(a, AUTH_EV_RESET, 0, NULL, 0);
    return;
  }
  char *full = util_printf("Supabase refused the code: %s", msg);
  free(msg);
  if (step_tag) {
    /* A typed or pasted code: the sign-in waits for another try. */
    char *again = util_printf("%s; the sign-in is still waiting: try again", full);
    flow_done(a, step_tag, again, NULL);
    free(again);
  } else {
    auth_flow_end(f, full, NULL);
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
    auth_flow_end(f, "the browser brought back an answer that does not belong to this sign-in "
                "(its state does not match), so nothing was signed in; :Shelf login starts again",
             NULL);
    return LOOPBACK_REFUSED;
  }
  if (ans->error) {
    const char *desc = ans->error_description ? ans->error_description : ans->error;
    snprintf(why, why_size, "%s", desc);
    char *msg = util_printf("the sign-in was refused: %s (%s)", desc, ans->error);
    auth_flow_end(f, msg, NULL);
    free(msg);
    return LOOPBACK_REFUSED;
  }
  if (f->http) {
    snprintf(why, why_size, "Neovim is already finishing this sign-in");
    return LOOPBACK_REFUSED;
  }
  if (flow_exchange(f, 0, ans->code) < 0) {
    snprintf(why, why_size, "shelfd could not send the code to Supabase");
    auth_flow_end(f, "the code could not be sent to Supabase", NULL);
    return LOOPBACK_REFUSED;
  }
  flow_progress(f, auth_flow_info(f, "exchanging"));
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
    auth_flow_end(a->flow, "sign-in cancelled: another sign-in started", NULL);
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
  cJSON *info = auth_flow_info(f, "browser");
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
    flow_progress(f, auth_flow_info(f, "email_sent"));
    return;
  }
  int rc;
  char *text = auth_failure(f->a, res, &rc);
  char *msg = util_printf("Supabase did not send the mail: %s", text);
  free(text);
  auth_flow_end(f, msg, NULL);
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
    auth_flow_end(f, "the request for the mail could not be sent", NULL);
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
    auth_flow_end(f, "the code could not be sent to Supabase", NULL);
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
  char *host = http_url_authority(s); /* an address, as curl reads one */
  int is_url = host != NULL;
  free(host);
  if (is_url) {
    char *error = loopback_url_param(s, "error");
    if (error) {
      char *desc = loopback_url_param(s, "error_description");
      char *msg = util_printf("the sign-in was refused: %s (%s)", desc ? desc : error, error);
      free(desc);
      free(error);
      auth_free_header(s);
      /* The refusal ends the sign-in; this call is answered by the flow's end. */
      f->step_tag = tag;
      auth_flow_end(f, msg, NULL);
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
    auth_flow_end(a->flow, "sign-in cancelled", NULL);
}

