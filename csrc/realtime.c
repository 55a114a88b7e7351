/* realtime.c - the Supabase Realtime client (see realtime.h). One lws
 * context per client, on the caller's libuv loop; one websocket at a time,
 * numbered: every callback of an older socket is ignored, so dropping a
 * connection never waits for lws. The name is resolved with uv_getaddrinfo
 * because lws 4.1.6 would block the loop in getaddrinfo; teardown follows
 * notes/c-core.md §2 (lws 4.1.6 needs a second lws_context_destroy, and only
 * once its own uv handles have closed). */
#define _GNU_SOURCE /* pipe2, dup3 */
#include "realtime.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define RT_MAX_MESSAGE (8u << 20)
#define RT_TEARDOWN_POLL_MS 1
#define RT_MAX_PARKED 64

static const unsigned rt_default_backoff[] = {1000, 2000, 5000, 10000};

/* Contexts being torn down, process-wide. lws 4.1.6 closes some of its fds
 * twice during a teardown (see rt_park_fds); while one is under way no
 * client creates a context or a socket, so none of ours can be hit. */
static int rt_teardowns;

typedef struct rt_out {
  struct rt_out *next;
  size_t len;
  unsigned char buf[]; /* LWS_PRE bytes, then the message */
} rt_out;

typedef struct {
  char *event, *schema, *table, *filter;
  long long id;
  int has_id;
} rt_bind;

struct rt_client {
  uv_loop_t *loop;
  rt_callbacks cb;
  void *data;

  /* Options, copied. */
  char *host, *path, *topic, *token, *ca_file;
  int port, tls;
  rt_bind *binds;
  int nbinds;
  unsigned hb_ms, hb_timeout_ms, join_timeout_ms, close_timeout_ms, live_timeout_ms;
  unsigned *backoff;
  int nbackoff;
  size_t max_message;

  struct lws_context *ctx;
  struct lws_context *ctx_alive;
  SSL_CTX *ssl_ctx; /* for wss://, given to lws; freed after the context */ /* lws writes NULL here when it is done */

  /* The current connection. */
  uintptr_t gen;        /* its number, the wsi's opaque user data */
  struct lws *wsi;      /* NULL while resolving or when there is none */
  int established;      /* the websocket is open */
  uv_getaddrinfo_t *gai; /* a lookup in flight; freed in its callback */
  unsigned addr_index;  /* which of the resolved addresses to try */
  rt_out *out_head, *out_tail;
  char *rx;
  size_t rx_len, rx_cap;
  int rx_active, rx_binary;
  int peer_close_code;

  /* The channel. */
  rt_state state;
  int attempts;          /* failures since the last join */
  unsigned long next_ref;
  char join_ref[24];     /* of the phx_join in flight or joined */
  char hb_ref[24];       /* of the unanswered heartbeat, or "" */
  int token_expired;     /* the server said so; cleared by rt_set_token */
  int waiting_token;     /* closed for an expired token: no rejoin timer */
  int token_changed;     /* rt_set_token during a join: push it once joined */
  double token_exp;      /* when the token expires (unix seconds), 0 unknown */
  /* The join was accepted, but the subscription is live only once the
   * server says "Subscribed to PostgreSQL" (or live_timer gives up waiting). */
  int live_pending;
  int live_by_fallback;  /* taken as live by live_timer: a late "ok" reloads */

  uv_timer_t retry_timer, hb_timer, hb_timeout_timer, join_timer, close_timer, live_timer;
  uv_timer_t teardown_timer;
  int closing, teardown_started, destroyed_once, handles_closing, open_handles;
  int parked[RT_MAX_PARKED]; /* see rt_park_fds */
  int nparked;
  ino_t parked_ino;
  void (*closed)(void *);
  void *closed_data;
  uint64_t rng;
};

/* --- small helpers -------------------------------------------------------- */

static void rt_seterr(char **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void rt_seterr(char **err, const char *fmt, ...) {
  if (!err)
    return;
  va_list ap;
  va_start(ap, fmt);
  *err = util_vprintf(fmt, ap);
  va_end(ap);
}

static char *rt_dup(const char *s) { return s ? util_strdup(s) : NULL; }

/* NULL and "" are the same (realtime-js compares bindings so). */
static int rt_same(const char *a, const char *b) {
  if (!a || !*a)
    return !b || !*b;
  return b && strcmp(a, b) == 0;
}

static const char *rt_json_str(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int rt_contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; hay && *hay; hay++)
    if (strncasecmp(hay, needle, n) == 0)
      return 1;
  return 0;
}

/* "2 s" or "300 ms", for messages. */
static void rt_fmt_delay(char *out, size_t n, unsigned ms) {
  if (ms >= 1000)
    snprintf(out, n, "%u s", (ms + 500) / 1000);
  else
    snprintf(out, n, "%u ms", ms);
}

static double rt_random(rt_client *rt) {
  rt->rng ^= rt->rng << 13;
  rt->rng ^= rt->rng >> 7;
  rt->rng ^= rt->rng << 17;
  return (double)(rt->rng >> 11) / (double)(1ull << 53);
}

static void rt_report(rt_client *rt, rt_state st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rt_report(rt_client *rt, rt_state st, const char *fmt, ...) {
  rt->state = st;
  if (rt->closing || !rt->cb.on_state)
    return;
  char *msg = NULL;
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    msg = util_vprintf(fmt, ap);
    va_end(ap);
  }
  rt->cb.on_state(rt->data, st, msg);
  free(msg);
}

const char *rt_state_name(rt_state state) {
  switch (state) {
  case RT_DISCONNECTED:
    return "disconnected";
  case RT_CONNECTING:
    return "connecting";
  case RT_JOINING:
    return "joining";
  case RT_JOINED:
    return "joined";
  case RT_ERROR:
    return "error";
  }
  return "unknown";
}

rt_state rt_get_state(const rt_client *rt) { return rt->state; }

/* --- frames --------------------------------------------------------------- */

/* A JSON number that is a whole number of at most 15 digits (refs, binding
 * ids). The range is checked before the cast: a cast of 1e300 or inf to an
 * integer is undefined. */
static int rt_json_int(const cJSON *v, long long *out) {
  if (!cJSON_IsNumber(v) || !(v->valuedouble > -1e15 && v->valuedouble < 1e15) ||
      v->valuedouble != (double)(long long)v->valuedouble)
    return -1;
  *out = (long long)v->valuedouble;
  return 0;
}

static int rt_ref_value(const cJSON *v, char *buf, size_t n, const char **out) {
  if (!v || cJSON_IsNull(v)) {
    *out = NULL;
    return 0;
  }
  if (cJSON_IsString(v)) {
    *out = v->valuestring;
    return 0;
  }
  long long num;
  if (rt_json_int(v, &num) == 0) {
    snprintf(buf, n, "%lld", num);
    *out = buf;
    return 0;
  }
  return -1;
}

int rt_parse_frame(const char *text, size_t len, rt_frame *out, char **err) {
  memset(out, 0, sizeof *out);
  if (!text || len == 0) {
    rt_seterr(err, "empty message");
    return -1;
  }
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!root) {
    const char *at = cJSON_GetErrorPtr();
    if (at >= text && at <= text + len)
      rt_seterr(err, "not JSON (error at byte %zu)", (size_t)(at - text));
    else
      rt_seterr(err, "not JSON");
    return -1;
  }
  while (end && end < text + len && isspace((unsigned char)*end))
    end++;
  if (!end || end != text + len) {
    cJSON_Delete(root);
    rt_seterr(err, "text after the JSON value");
    return -1;
  }
  const cJSON *jr, *ref, *topic, *event, *payload;
  if (cJSON_IsArray(root)) {
    if (cJSON_GetArraySize(root) != 5) {
      cJSON_Delete(root);
      rt_seterr(err, "an array frame must have 5 elements");
      return -1;
    }
    out->vsn = 2;
    jr = cJSON_GetArrayItem(root, 0);
    ref = cJSON_GetArrayItem(root, 1);
    topic = cJSON_GetArrayItem(root, 2);
    event = cJSON_GetArrayItem(root, 3);
    payload = cJSON_GetArrayItem(root, 4);
  } else if (cJSON_IsObject(root)) {
    out->vsn = 1;
    jr = cJSON_GetObjectItemCaseSensitive(root, "join_ref");
    ref = cJSON_GetObjectItemCaseSensitive(root, "ref");
    topic = cJSON_GetObjectItemCaseSensitive(root, "topic");
    event = cJSON_GetObjectItemCaseSensitive(root, "event");
    payload = cJSON_GetObjectItemCaseSensitive(root, "payload");
  } else {
    cJSON_Delete(root);
    rt_seterr(err, "a frame must be a JSON array or object");
    return -1;
  }
  const char *problem = NULL;
  if (!cJSON_IsString(topic))
    problem = "topic must be a string";
  else if (!cJSON_IsString(event))
    problem = "event must be a string";
  else if (!cJSON_IsObject(payload))
    problem = "payload must be an object";
  else if (rt_ref_value(jr, out->num_refs[0], sizeof out->num_refs[0], &out->join_ref) < 0)
    problem = "join_ref must be a string or null";
  else if (rt_ref_value(ref, out->num_refs[1], sizeof out->num_refs[1], &out->ref) < 0)
    problem = "ref must be a string or null";
  if (problem) {
    cJSON_Delete(root);
    memset(out, 0, sizeof *out);
    rt_seterr(err, "%s", problem);
    return -1;
  }
  out->topic = topic->valuestring;
  out->event = event->valuestring;
  out->payload = payload;
  out->root = root;
  return 0;
}

void rt_frame_free(rt_frame *f) {
  cJSON_Delete(f->root);
  memset(f, 0, sizeof *f);
}

/* --- sending -------------------------------------------------------------- */

static void rt_clear_out(rt_client *rt) {
  while (rt->out_head) {
    rt_out *o = rt->out_head;
    rt->out_head = o->next;
    free(o);
  }
  rt->out_tail = NULL;
}

/* Queue [join_ref, ref, topic, event, payload] (vsn 2.0.0) on the open
 * socket. Takes payload. Writes ref into ref_out (24 bytes) when not NULL. */
static void rt_push(rt_client *rt, const char *join_ref, const char *topic,
                    const char *event, cJSON *payload, char *ref_out) {
  if (!rt->wsi || !rt->established) {
    cJSON_Delete(payload);
    return;
  }
  char ref[24];
  snprintf(ref, sizeof ref, "%lu", ++rt->next_ref);
  if (ref_out)
    memcpy(ref_out, ref, sizeof ref);
  cJSON *a = cJSON_CreateArray();
  cJSON_AddItemToArray(a, join_ref ? cJSON_CreateString(join_ref) : cJSON_CreateNull());
  cJSON_AddItemToArray(a, cJSON_CreateString(ref));
  cJSON_AddItemToArray(a, cJSON_CreateString(topic));
  cJSON_AddItemToArray(a, cJSON_CreateString(event));
  cJSON_AddItemToArray(a, payload);
  char *text = cJSON_PrintUnformatted(a);
  cJSON_Delete(a);
  if (!text)
    abort(); /* out of memory: as util_malloc does */
  size_t len = strlen(text);
  rt_out *o = util_malloc(sizeof *o + LWS_PRE + len);
  o->next = NULL;
  o->len = len;
  memcpy(o->buf + LWS_PRE, text, len);
  /* The message may hold a token: wipe the copy before freeing it. */
  explicit_bzero(text, len);
  free(text);
  if (rt->out_tail)
    rt->out_tail->next = o;
  else
    rt->out_head = o;
  rt->out_tail = o;
  lws_callback_on_writable(rt->wsi);
}

static cJSON *rt_join_payload(rt_client *rt) {
  cJSON *p = cJSON_CreateObject();
  cJSON *config = cJSON_AddObjectToObject(p, "config");
  cJSON *broadcast = cJSON_AddObjectToObject(config, "broadcast");
  cJSON_AddFalseToObject(broadcast, "ack");
  cJSON_AddFalseToObject(broadcast, "self");
  cJSON *presence = cJSON_AddObjectToObject(config, "presence");
  cJSON_AddStringToObject(presence, "key", "");
  cJSON_AddFalseToObject(presence, "enabled");
  cJSON *changes = cJSON_AddArrayToObject(config, "postgres_changes");
  for (int i = 0; i < rt->nbinds; i++) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "event", rt->binds[i].event);
    cJSON_AddStringToObject(b, "schema", rt->binds[i].schema);
    if (rt->binds[i].table)
      cJSON_AddStringToObject(b, "table", rt->binds[i].table);
    if (rt->binds[i].filter)
      cJSON_AddStringToObject(b, "filter", rt->binds[i].filter);
    cJSON_AddItemToArray(changes, b);
  }
  cJSON_AddFalseToObject(config, "private");
  if (rt->token)
    cJSON_AddStringToObject(p, "access_token", rt->token);
  return p;
}

static void rt_on_join_timeout(uv_timer_t *t);

static void rt_token_expired(rt_client *rt, const char *detail);

static void rt_send_join(rt_client *rt) {
  double now = (double)time(NULL);
  if (rt->cb.on_token_needed && rt->token && rt->token_exp > 0 && rt->token_exp <= now) {
    /* The join would be refused. After a sleep libuv's timers (the token
     * refresh among them) lag the wall clock, so the token can be stale. */
    char *why = util_printf("by this machine's clock it expired %.0f s ago", now - rt->token_exp);
    rt_token_expired(rt, why);
    free(why);
    return;
  }
  rt->waiting_token = 0;
  rt->token_changed = 0;
  for (int i = 0; i < rt->nbinds; i++)
    rt->binds[i].has_id = 0;
  /* The join's ref is also its join_ref: number it first. */
  snprintf(rt->join_ref, sizeof rt->join_ref, "%lu", rt->next_ref + 1);
  rt_push(rt, rt->join_ref, rt->topic, "phx_join", rt_join_payload(rt), NULL);
  uv_timer_start(&rt->join_timer, rt_on_join_timeout, rt->join_timeout_ms, 0);
  rt_report(rt, RT_JOINING, NULL);
}

/* --- connection lifecycle ------------------------------------------------- */

static void rt_on_retry(uv_timer_t *t);

static unsigned rt_next_delay(rt_client *rt) {
  int i = rt->attempts < rt->nbackoff ? rt->attempts : rt->nbackoff - 1;
  rt->attempts++;
  return rt->backoff[i];
}

/* Start the retry timer for a reconnect or rejoin after the backoff delay
 * and say so: "<what>; reconnecting in 2 s". */
static void rt_schedule(rt_client *rt, rt_state st, const char *what) {
  unsigned ms = rt_next_delay(rt);
  double jittered = ms * (0.9 + 0.2 * rt_random(rt));
  char delay[32];
  rt_fmt_delay(delay, sizeof delay, ms);
  uv_timer_start(&rt->retry_timer, rt_on_retry, jittered < 1 ? 1 : (uint64_t)jittered, 0);
  rt_report(rt, st, "Realtime: %s; %s in %s", what,
            rt->established ? "rejoining" : "reconnecting", delay);
}

static void rt_stop_channel_timers(rt_client *rt) {
  uv_timer_stop(&rt->hb_timer);
  uv_timer_stop(&rt->hb_timeout_timer);
  uv_timer_stop(&rt->join_timer);
  uv_timer_stop(&rt->live_timer);
  rt->live_pending = 0;
  rt->live_by_fallback = 0;
  rt->hb_ref[0] = '\0';
}

/* Forget the current connection (closing its wsi if it still exists) so that
 * its later callbacks are ignored. */
static void rt_abandon(rt_client *rt) {
  if (rt->wsi) {
    lws_set_timeout(rt->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    rt->wsi = NULL;
  }
  rt->gen++;
  rt->established = 0;
  rt_clear_out(rt);
  rt->rx_len = 0;
  rt->rx_active = 0;
  rt->peer_close_code = 0;
  rt_stop_channel_timers(rt);
}

/* The connection failed or died: abandon it and schedule a reconnect. */
static void rt_lost(rt_client *rt, const char *what) {
  if (rt->closing)
    return;
  rt_abandon(rt);
  rt_schedule(rt, RT_DISCONNECTED, what);
}

static void rt_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);

static void rt_connect(rt_client *rt) {
  rt_abandon(rt);
  rt_report(rt, RT_CONNECTING, NULL);
  rt->gai = util_calloc(1, sizeof *rt->gai);
  rt->gai->data = rt;
  struct addrinfo hints = {0};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  char port[16];
  snprintf(port, sizeof port, "%d", rt->port);
  int rc = uv_getaddrinfo(rt->loop, rt->gai, rt_on_resolved, rt->host, port, &hints);
  if (rc < 0) {
    free(rt->gai);
    rt->gai = NULL;
    char *what = util_printf("cannot look up %s (%s)", rt->host, uv_strerror(rc));
    rt_lost(rt, what);
    free(what);
  }
}

static void rt_finish_close(rt_client *rt);

static void rt_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  rt_client *rt = req->data;
  free(req);
  rt->gai = NULL;
  if (rt->closing) {
    uv_freeaddrinfo(res);
    rt_finish_close(rt);
    return;
  }
  if (rt_teardowns > 0) {
    /* Not now (see rt_teardowns): look the name up again shortly. */
    uv_freeaddrinfo(res);
    uv_timer_start(&rt->retry_timer, rt_on_retry, RT_TEARDOWN_POLL_MS * 5, 0);
    return;
  }
  if (status < 0 || !res) {
    uv_freeaddrinfo(res);
    char *what = util_printf("cannot look up %s (%s)", rt->host, uv_strerror(status));
    rt_lost(rt, what);
    free(what);
    return;
  }
  unsigned n = 0;
  for (struct addrinfo *a = res; a; a = a->ai_next)
    n++;
  struct addrinfo *a = res;
  for (unsigned i = 0; i < rt->addr_index % n; i++)
    a = a->ai_next;
  char ip[INET6_ADDRSTRLEN] = "";
  if (a->ai_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)a->ai_addr, ip, sizeof ip);
  else
    uv_ip4_name((const struct sockaddr_in *)a->ai_addr, ip, sizeof ip);
  uv_freeaddrinfo(res);

  /* The numeric address keeps lws from resolving (it would block); TLS's
   * SNI and certificate check use `host`. */
  struct lws_client_connect_info ci = {0};
  ci.context = rt->ctx;
  ci.address = ip;
  ci.port = rt->port;
  ci.path = rt->path;
  ci.host = rt->host;
  ci.origin = rt->host;
  ci.ssl_connection = rt->tls ? LCCSCF_USE_SSL : 0;
  ci.alpn = "http/1.1";
  ci.local_protocol_name = "shelf-realtime";
  ci.opaque_user_data = (void *)rt->gen;
  uintptr_t gen = rt->gen;
  struct lws *wsi = lws_client_connect_via_info(&ci);
  if (gen != rt->gen || rt->closing)
    return; /* it already failed inside lws, and was handled */
  if (!wsi) {
    rt_lost(rt, "could not start the connection");
    return;
  }
  rt->wsi = wsi;
}

static int rt_create_context(rt_client *rt, char **err);

static void rt_on_retry(uv_timer_t *t) {
  rt_client *rt = t->data;
  if (rt_teardowns > 0 && !(rt->wsi && rt->established)) {
    uv_timer_start(&rt->retry_timer, rt_on_retry, RT_TEARDOWN_POLL_MS * 5, 0);
    return;
  }
  if (!rt->ctx) {
    char *err = NULL;
    if (rt_create_context(rt, &err) < 0) {
      rt_report(rt, RT_ERROR, "Realtime: %s", err);
      free(err);
      return;
    }
  }
  if (rt->wsi && rt->established)
    rt_send_join(rt);
  else
    rt_connect(rt);
}

static void rt_on_heartbeat_timeout(uv_timer_t *t);

static void rt_on_heartbeat(uv_timer_t *t) {
  rt_client *rt = t->data;
  if (rt->hb_ref[0])
    return; /* still waiting: the timeout decides */
  rt_push(rt, NULL, "phoenix", "heartbeat", cJSON_CreateObject(), rt->hb_ref);
  if (rt->hb_ref[0])
    uv_timer_start(&rt->hb_timeout_timer, rt_on_heartbeat_timeout, rt->hb_timeout_ms, 0);
}

static void rt_on_heartbeat_timeout(uv_timer_t *t) {
  rt_client *rt = t->data;
  log_warn("realtime: no heartbeat reply in %u ms", rt->hb_timeout_ms);
  rt_lost(rt, "heartbeat timeout");
}

static void rt_on_join_timeout(uv_timer_t *t) {
  rt_client *rt = t->data;
  rt->join_ref[0] = '\0'; /* a late reply is ignored */
  rt_schedule(rt, RT_ERROR, "join timed out");
}

/* --- incoming messages ---------------------------------------------------- */

/* The subscription is live: the backoff starts over, and the caller loads
 * everything again (changes made before now were not sent). */
static void rt_went_live(rt_client *rt) {
  uv_timer_stop(&rt->live_timer);
  rt->live_pending = 0;
  rt->attempts = 0;
  rt_report(rt, RT_JOINED, NULL);
  if (!rt->closing && rt->cb.on_joined)
    rt->cb.on_joined(rt->data);
}

static void rt_on_live_timeout(uv_timer_t *t) {
  rt_client *rt = t->data;
  log_info("realtime: no \"Subscribed to PostgreSQL\" within %u ms of the join; "
           "taking the channel as live", rt->live_timeout_ms);
  rt->live_by_fallback = 1;
  rt_went_live(rt);
}

/* The channel is no longer joined on the server (closed, crashed, left):
 * its replies and bindings are stale. */
static void rt_channel_gone(rt_client *rt) {
  rt->join_ref[0] = '\0';
  for (int i = 0; i < rt->nbinds; i++)
    rt->binds[i].has_id = 0;
  uv_timer_stop(&rt->live_timer);
  rt->live_pending = 0;
  rt->live_by_fallback = 0;
}

static void rt_token_expired(rt_client *rt, const char *detail) {
  rt->token_expired = 1;
  rt_channel_gone(rt);
  uv_timer_stop(&rt->join_timer);
  if (rt->cb.on_token_needed) {
    rt->waiting_token = 1;
    rt_report(rt, RT_ERROR, "Realtime: token expired (%s); waiting for a new token", detail);
    if (!rt->closing)
      rt->cb.on_token_needed(rt->data);
  } else {
    char *what = util_printf("token expired (%s)", detail);
    rt_schedule(rt, RT_ERROR, what);
    free(what);
  }
}

static int rt_is_token_problem(const char *s) {
  return rt_contains_nocase(s, "expired") || rt_contains_nocase(s, "InvalidJWTToken");
}

static void rt_on_join_reply(rt_client *rt, const cJSON *payload) {
  uv_timer_stop(&rt->join_timer);
  const char *status = rt_json_str(payload, "status");
  const cJSON *response = cJSON_GetObjectItemCaseSensitive(payload, "response");
  if (!status || strcmp(status, "ok") != 0) {
    const char *reason = rt_json_str(response, "reason");
    char *text = reason ? util_strdup(reason) : cJSON_PrintUnformatted(response);
    if (!text)
      text = util_strdup("no reason given");
    log_warn("realtime: join refused: %s", text);
    rt->join_ref[0] = '\0';
    if (rt_is_token_problem(text)) {
      rt_token_expired(rt, text);
    } else {
      char *what = util_printf("join refused: %s", text);
      rt_schedule(rt, RT_ERROR, what);
      free(what);
    }
    free(text);
    return;
  }
  /* Match the server's bindings to ours index by index, as realtime-js
   * does; the ids are what later events carry. */
  const cJSON *server = cJSON_GetObjectItemCaseSensitive(response, "postgres_changes");
  int n = cJSON_IsArray(server) ? cJSON_GetArraySize(server) : 0;
  for (int i = 0; i < rt->nbinds; i++) {
    const cJSON *s = i < n ? cJSON_GetArrayItem(server, i) : NULL;
    long long id;
    if (!s || rt_json_int(cJSON_GetObjectItemCaseSensitive(s, "id"), &id) < 0 ||
        !rt_same(rt_json_str(s, "event"), rt->binds[i].event) ||
        !rt_same(rt_json_str(s, "schema"), rt->binds[i].schema) ||
        !rt_same(rt_json_str(s, "table"), rt->binds[i].table) ||
        !rt_same(rt_json_str(s, "filter"), rt->binds[i].filter)) {
      rt_channel_gone(rt);
      log_warn("realtime: the join reply's binding %d does not match ours", i);
      rt_schedule(rt, RT_ERROR, "mismatch between server and client bindings for postgres changes");
      return;
    }
    rt->binds[i].id = id;
    rt->binds[i].has_id = 1;
  }
  rt->token_expired = 0;
  if (rt->token_changed && rt->token) {
    /* The token changed while the join was on its way (realtime-js pushes
     * it after the join too). */
    rt->token_changed = 0;
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "access_token", rt->token);
    rt_push(rt, rt->join_ref, rt->topic, "access_token", p, NULL);
  }
  if (rt->nbinds == 0) {
    rt_went_live(rt); /* no postgres_changes: no system message comes */
    return;
  }
  /* Changes flow only once the server has put the subscription in place;
   * its system message says so (notes/supabase-protocol.md §1.5). */
  rt->live_pending = 1;
  uv_timer_start(&rt->live_timer, rt_on_live_timeout, rt->live_timeout_ms, 0);
}

static void rt_on_change(rt_client *rt, const cJSON *payload) {
  const cJSON *ids = cJSON_GetObjectItemCaseSensitive(payload, "ids");
  const cJSON *data = cJSON_GetObjectItemCaseSensitive(payload, "data");
  const char *type = rt_json_str(data, "type");
  if (!cJSON_IsArray(ids) || !cJSON_IsObject(data) || !type) {
    log_warn("realtime: skipped a postgres_changes event without ids, data or type");
    return;
  }
  for (int i = 0; i < rt->nbinds && !rt->closing; i++) {
    if (!rt->binds[i].has_id)
      continue;
    if (strcmp(rt->binds[i].event, "*") != 0 && strcasecmp(rt->binds[i].event, type) != 0)
      continue;
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) {
      long long num;
      if (rt_json_int(id, &num) == 0 && num == rt->binds[i].id) {
        if (rt->cb.on_change)
          rt->cb.on_change(rt->data, i, data);
        break;
      }
    }
  }
}

/* current: the message carries the join_ref of the join in flight or
 * joined (or none, as vsn 1.0.0 servers send). */
static void rt_on_system(rt_client *rt, const cJSON *payload, int current) {
  if (rt->cb.on_system)
    rt->cb.on_system(rt->data, payload);
  if (rt->closing)
    return;
  const char *status = rt_json_str(payload, "status");
  const char *ext = rt_json_str(payload, "extension");
  const char *msg = rt_json_str(payload, "message");
  int pg = ext && strcmp(ext, "postgres_changes") == 0;
  if (pg && status && strcmp(status, "ok") == 0 && current) {
    if (rt->live_pending) {
      rt_went_live(rt);
    } else if (rt->live_by_fallback) {
      /* Taken as live too early: what changed meanwhile may be missing. */
      rt->live_by_fallback = 0;
      log_info("realtime: the subscription went live after the fallback; loading again");
      if (rt->cb.on_joined)
        rt->cb.on_joined(rt->data);
    }
    return;
  }
  if (!status || strcmp(status, "error") != 0)
    return;
  log_warn("realtime: system error from %s: %s", ext ? ext : "?", msg ? msg : "?");
  if (ext && strcmp(ext, "system") == 0) {
    /* A phx_close follows; remember why. */
    if (msg && rt_is_token_problem(msg))
      rt->token_expired = 1;
    rt_report(rt, rt->state, "Realtime: %s", msg ? msg : "channel error");
  } else if (current && rt->join_ref[0]) {
    /* The subscription failed (a bad filter, a database error): no changes
     * will come. Leave, and join again later. */
    rt_push(rt, rt->join_ref, rt->topic, "phx_leave", cJSON_CreateObject(), NULL);
    rt_channel_gone(rt);
    char *what = util_printf("subscription error: %s", msg ? msg : "unknown");
    rt_schedule(rt, RT_ERROR, what);
    free(what);
  }
}

static void rt_dispatch(rt_client *rt, const char *text, size_t len) {
  rt_frame f;
  char *err = NULL;
  if (rt_parse_frame(text, len, &f, &err) < 0) {
    log_warn("realtime: skipped a malformed message (%s)", err);
    free(err);
    return;
  }
  int ours = strcmp(f.topic, rt->topic) == 0;
  /* A reply or close for an earlier join of the channel is stale. */
  int current = !f.join_ref || (rt->join_ref[0] && strcmp(f.join_ref, rt->join_ref) == 0);
  if (strcmp(f.event, "phx_reply") == 0) {
    if (strcmp(f.topic, "phoenix") == 0 && f.ref && rt->hb_ref[0] &&
        strcmp(f.ref, rt->hb_ref) == 0) {
      rt->hb_ref[0] = '\0';
      uv_timer_stop(&rt->hb_timeout_timer);
    } else if (ours && f.ref && rt->join_ref[0] && strcmp(f.ref, rt->join_ref) == 0) {
      rt_on_join_reply(rt, f.payload);
    }
  } else if (!ours) {
    log_debug("realtime: ignored %s on topic %s", f.event, f.topic);
  } else if (strcmp(f.event, "postgres_changes") == 0) {
    /* Accepted from the join reply on: a server may start before it says
     * the subscription is live. */
    if (rt->state == RT_JOINED || rt->live_pending)
      rt_on_change(rt, f.payload);
  } else if (strcmp(f.event, "system") == 0) {
    rt_on_system(rt, f.payload, current);
  } else if (strcmp(f.event, "phx_close") == 0 && current && rt->join_ref[0]) {
    rt_channel_gone(rt);
    if (rt->token_expired)
      rt_token_expired(rt, "the server closed the channel");
    else
      rt_schedule(rt, RT_ERROR, "the server closed the channel");
  } else if (strcmp(f.event, "phx_error") == 0 && current && rt->join_ref[0]) {
    rt_channel_gone(rt);
    rt_schedule(rt, RT_ERROR, "channel error");
  }
  rt_frame_free(&f);
}

/* --- lws callback --------------------------------------------------------- */

static int rt_receive(rt_client *rt, struct lws *wsi, const char *in, size_t len) {
  if (!rt->rx_active) {
    rt->rx_active = 1;
    rt->rx_binary = lws_frame_is_binary(wsi);
    rt->rx_len = 0;
  }
  if (rt->rx_len + len > rt->max_message) {
    log_error("realtime: a message over %zu bytes arrived; dropping the connection",
              rt->max_message);
    char *what = util_printf("a message over %zu KiB arrived", rt->max_message >> 10);
    rt->wsi = NULL; /* we return -1: lws closes it */
    rt_lost(rt, what);
    free(what);
    return -1;
  }
  if (rt->rx_len + len > rt->rx_cap) {
    size_t cap = rt->rx_cap ? rt->rx_cap : 4096;
    while (cap < rt->rx_len + len)
      cap *= 2;
    if (cap > rt->max_message)
      cap = rt->max_message;
    rt->rx = util_realloc(rt->rx, cap);
    rt->rx_cap = cap;
  }
  memcpy(rt->rx + rt->rx_len, in, len);
  rt->rx_len += len;
  if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
    return 0;
  rt->rx_active = 0;
  if (rt->rx_binary) {
    log_warn("realtime: skipped a binary message of %zu bytes", rt->rx_len);
    return 0;
  }
  rt_dispatch(rt, rt->rx, rt->rx_len);
  return 0;
}

static int rt_writeable(rt_client *rt, struct lws *wsi) {
  rt_out *o = rt->out_head;
  if (!o) {
    if (rt->closing) {
      lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
      return -1;
    }
    return 0;
  }
  rt->out_head = o->next;
  if (!rt->out_head)
    rt->out_tail = NULL;
  int n = lws_write(wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_TEXT);
  explicit_bzero(o->buf + LWS_PRE, o->len);
  size_t len = o->len;
  free(o);
  if (n < (int)len) {
    rt->wsi = NULL;
    rt_lost(rt, "could not send");
    return -1;
  }
  if (rt->out_head || rt->closing)
    lws_callback_on_writable(wsi);
  return 0;
}

static void rt_start_teardown(rt_client *rt);

static int rt_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                     void *in, size_t len) {
  struct lws_context *ctx = lws_get_context(wsi);
  rt_client *rt = ctx ? lws_context_user(ctx) : NULL;
  uintptr_t gen = (uintptr_t)lws_get_opaque_user_data(wsi);
  if (!rt || gen == 0)
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  int current = gen == rt->gen;

  switch (reason) {
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
    if (!current || rt->closing) {
      if (current)
        rt->wsi = NULL;
      return 0;
    }
    rt->wsi = NULL;
    const char *why = in && len ? (const char *)in : "unknown error";
    int http = lws_http_client_http_response(wsi);
    /* lws only says "closed before established"; the socket knows more. */
    int so_error = 0;
    socklen_t so_len = sizeof so_error;
    lws_sockfd_type fd = lws_get_socket_fd(wsi);
    if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len) < 0)
      so_error = 0;
    char *what;
    if (so_error == ECONNREFUSED)
      what = util_strdup("connection refused");
    else if (so_error)
      what = util_printf("cannot connect (%s)", strerror(so_error));
    else if (http == 401 || http == 403)
      what = util_printf("the server refused the API key (HTTP %d)", http);
    else if (http > 0 && http != 101)
      what = util_printf("the server answered HTTP %d instead of a websocket", http);
    else
      what = util_printf("connection failed (%s)", why);
    log_info("realtime: connecting to %s:%d failed: %s", rt->host, rt->port, why);
    rt->addr_index++;
    rt_lost(rt, what);
    free(what);
    return 0;
  }
  case LWS_CALLBACK_CLIENT_ESTABLISHED:
    if (!current || rt->closing)
      return -1;
    rt->established = 1;
    rt->peer_close_code = 0;
    rt_send_join(rt);
    if (!rt->closing)
      uv_timer_start(&rt->hb_timer, rt_on_heartbeat, rt->hb_ms, rt->hb_ms);
    return 0;
  case LWS_CALLBACK_CLIENT_RECEIVE:
    if (!current || rt->closing)
      return rt->closing && current ? 0 : -1;
    return rt_receive(rt, wsi, in, len);
  case LWS_CALLBACK_CLIENT_WRITEABLE:
    if (!current)
      return -1;
    return rt_writeable(rt, wsi);
  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    if (current && len >= 2)
      rt->peer_close_code = ((const unsigned char *)in)[0] << 8 | ((const unsigned char *)in)[1];
    return 0;
  case LWS_CALLBACK_CLIENT_CLOSED:
  case LWS_CALLBACK_WSI_DESTROY:
    if (!current)
      return 0;
    rt->wsi = NULL;
    if (rt->closing) {
      rt->established = 0;
      rt_start_teardown(rt);
    } else if (rt->peer_close_code) {
      char *what = util_printf("the server closed the connection (code %d)", rt->peer_close_code);
      rt_lost(rt, what);
      free(what);
    } else {
      rt_lost(rt, rt->established ? "the connection was lost" : "connection failed");
    }
    return 0;
  default:
    break;
  }
  return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols rt_protocols[] = {
    {.name = "shelf-realtime", .callback = rt_lws_cb, .rx_buffer_size = 65536},
    {.name = NULL, .callback = NULL},
};

/* lws's own log lines (warnings and errors only), through log.h, with any
 * apikey query value hidden. */
static void rt_lws_log(int level, const char *line) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", line);
  size_t n = strlen(buf);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    buf[--n] = '\0';
  for (char *p = strstr(buf, "apikey="); p; p = strstr(p, "apikey=")) {
    p += 7;
    char *q = p;
    while (*q && *q != '&' && *q != ' ')
      q++;
    if (q > p) {
      memmove(p + 3, q, strlen(q) + 1);
      memcpy(p, "***", 3);
    }
  }
  log_msg(level & LLL_ERR ? LOG_ERROR : LOG_WARN, "lws: %s", buf);
}

/* --- create --------------------------------------------------------------- */

static char *rt_urlencode(const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  char *out = util_malloc(strlen(s) * 3 + 1), *o = out;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
      *o++ = (char)*p;
    } else {
      *o++ = '%';
      *o++ = hex[*p >> 4];
      *o++ = hex[*p & 15];
    }
  }
  *o = '\0';
  return out;
}

/* http(s)://host[:port][/prefix] → host, port, tls, and the websocket path. */
static int rt_parse_url(rt_client *rt, const char *url, const char *apikey, char **err) {
  const char *p;
  if (strncmp(url, "https://", 8) == 0) {
    rt->tls = 1;
    rt->port = 443;
    p = url + 8;
  } else if (strncmp(url, "http://", 7) == 0) {
    rt->port = 80;
    p = url + 7;
  } else {
    rt_seterr(err, "the Realtime URL must start with http:// or https://");
    return -1;
  }
  const char *host = p, *host_end;
  if (*p == '[') {
    host = ++p;
    host_end = strchr(p, ']');
    if (!host_end) {
      rt_seterr(err, "unterminated [ in the Realtime URL's host");
      return -1;
    }
    p = host_end + 1;
  } else {
    while (*p && *p != ':' && *p != '/' && *p != '?')
      p++;
    host_end = p;
  }
  if (host_end == host) {
    rt_seterr(err, "the Realtime URL has no host");
    return -1;
  }
  if (*p == ':') {
    char *end;
    long port = strtol(p + 1, &end, 10);
    if (end == p + 1 || port < 1 || port > 65535) {
      rt_seterr(err, "bad port in the Realtime URL");
      return -1;
    }
    rt->port = (int)port;
    p = end;
  }
  if (*p && *p != '/') {
    rt_seterr(err, "unexpected text after the host in the Realtime URL");
    return -1;
  }
  size_t plen = strcspn(p, "?#");
  while (plen && p[plen - 1] == '/')
    plen--;
  rt->host = util_malloc((size_t)(host_end - host) + 1);
  memcpy(rt->host, host, (size_t)(host_end - host));
  rt->host[host_end - host] = '\0';
  char *key = rt_urlencode(apikey);
  rt->path = util_printf("%.*s/realtime/v1/websocket?apikey=%s&vsn=2.0.0", (int)plen, p, key);
  explicit_bzero(key, strlen(key));
  free(key);
  return 0;
}

/* The client TLS context: peer verification against the system CAs or
 * ca_file; lws sets SNI and the host name to check on each connection. */
static int rt_make_ssl_ctx(rt_client *rt, char **err) {
  rt->ssl_ctx = SSL_CTX_new(TLS_client_method());
  if (!rt->ssl_ctx) {
    rt_seterr(err, "OpenSSL could not create a TLS context");
    return -1;
  }
  SSL_CTX_set_min_proto_version(rt->ssl_ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(rt->ssl_ctx, SSL_VERIFY_PEER, NULL);
  int ok = rt->ca_file ? SSL_CTX_load_verify_locations(rt->ssl_ctx, rt->ca_file, NULL)
                       : SSL_CTX_set_default_verify_paths(rt->ssl_ctx);
  if (ok != 1) {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    ERR_clear_error();
    rt_seterr(err, "cannot load the CA certificates%s%s: %s", rt->ca_file ? " from " : "",
              rt->ca_file ? rt->ca_file : "", buf);
    return -1;
  }
  return 0;
}

static void rt_free(rt_client *rt) {
  free(rt->host);
  if (rt->path)
    explicit_bzero(rt->path, strlen(rt->path));
  free(rt->path);
  free(rt->topic);
  if (rt->token)
    explicit_bzero(rt->token, strlen(rt->token));
  free(rt->token);
  free(rt->ca_file);
  for (int i = 0; i < rt->nbinds; i++) {
    free(rt->binds[i].event);
    free(rt->binds[i].schema);
    free(rt->binds[i].table);
    free(rt->binds[i].filter);
  }
  free(rt->binds);
  free(rt->backoff);
  free(rt->rx);
  rt_clear_out(rt);
  SSL_CTX_free(rt->ssl_ctx);
  free(rt);
}

static const char *rt_check_options(const rt_options *o) {
  if (!o->url || !o->anon_key || !*o->anon_key)
    return "the Realtime URL and the anon key are required";
  if (!o->topic || strncmp(o->topic, "realtime:", 9) != 0 || !o->topic[9])
    return "the topic must be \"realtime:<name>\"";
  if (o->nbindings < 0 || (o->nbindings > 0 && !o->bindings))
    return "bad bindings";
  for (int i = 0; i < o->nbindings; i++) {
    const rt_binding *b = &o->bindings[i];
    if (!b->event || !b->schema)
      return "every binding needs an event and a schema";
    if (strcmp(b->event, "*") && strcmp(b->event, "INSERT") && strcmp(b->event, "UPDATE") &&
        strcmp(b->event, "DELETE"))
      return "a binding's event must be *, INSERT, UPDATE or DELETE";
  }
  if (o->nbackoff < 0 || (o->nbackoff > 0 && !o->backoff_ms))
    return "bad backoff table";
  return NULL;
}

static int rt_create_context(rt_client *rt, char **err) {
  static int log_set;
  if (!log_set) {
    lws_set_log_level(LLL_ERR | LLL_WARN, rt_lws_log);
    log_set = 1;
  }
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  void *loops[1] = {rt->loop};
  /* lws 4.1.6 makes a client SSL_CTX only with DO_SSL_GLOBAL_INIT, and each
   * such context takes new OpenSSL ex_data indexes into lws's globals: with
   * two contexts alive at once (rt_close then rt_new) the first one's own
   * SSL_CTX is then never freed. So: no TLS, no global init; with TLS, our
   * own SSL_CTX, which lws does not free and we free after the context. */
  info.options = LWS_SERVER_OPTION_LIBUV | (rt->tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = rt_protocols;
  info.foreign_loops = loops;
  info.pcontext = &rt->ctx_alive;
  info.user = rt;
  info.gid = -1;
  info.uid = -1;
  info.connect_timeout_secs = 10;
  info.provided_client_ssl_ctx = rt->ssl_ctx;
  rt->ctx = lws_create_context(&info);
  if (!rt->ctx) {
    rt_seterr(err, "libwebsockets could not start (is libwebsockets-evlib-uv installed?)");
    return -1;
  }
  rt->ctx_alive = rt->ctx;
  return 0;
}

rt_client *rt_new(uv_loop_t *loop, const rt_options *opts, const rt_callbacks *cb,
                  void *data, char **err) {
  if (err)
    *err = NULL;
  const char *problem = rt_check_options(opts);
  if (problem) {
    rt_seterr(err, "%s", problem);
    return NULL;
  }
  rt_client *rt = util_calloc(1, sizeof *rt);
  rt->loop = loop;
  if (cb)
    rt->cb = *cb;
  rt->data = data;
  if (rt_parse_url(rt, opts->url, opts->anon_key, err) < 0) {
    rt_free(rt);
    return NULL;
  }
  rt->topic = util_strdup(opts->topic);
  rt->token = rt_dup(opts->access_token);
  rt->token_exp = opts->access_token_expires_at;
  rt->ca_file = rt_dup(opts->ca_file);
  rt->nbinds = opts->nbindings;
  rt->binds = util_calloc((size_t)(rt->nbinds ? rt->nbinds : 1), sizeof *rt->binds);
  for (int i = 0; i < rt->nbinds; i++) {
    rt->binds[i].event = util_strdup(opts->bindings[i].event);
    rt->binds[i].schema = util_strdup(opts->bindings[i].schema);
    rt->binds[i].table = rt_dup(opts->bindings[i].table);
    rt->binds[i].filter = rt_dup(opts->bindings[i].filter);
  }
  const unsigned *table = opts->nbackoff ? opts->backoff_ms : rt_default_backoff;
  rt->nbackoff = opts->nbackoff ? opts->nbackoff : 4;
  rt->backoff = util_malloc((size_t)rt->nbackoff * sizeof *rt->backoff);
  memcpy(rt->backoff, table, (size_t)rt->nbackoff * sizeof *rt->backoff);
  rt->hb_ms = opts->heartbeat_ms ? opts->heartbeat_ms : 25000;
  rt->hb_timeout_ms = opts->heartbeat_timeout_ms ? opts->heartbeat_timeout_ms : 10000;
  if (rt->hb_timeout_ms > rt->hb_ms)
    rt->hb_timeout_ms = rt->hb_ms;
  rt->join_timeout_ms = opts->join_timeout_ms ? opts->join_timeout_ms : 10000;
  rt->live_timeout_ms = opts->live_timeout_ms ? opts->live_timeout_ms : 5000;
  rt->close_timeout_ms = opts->close_timeout_ms ? opts->close_timeout_ms : 1000;
  rt->max_message = opts->max_message ? opts->max_message : RT_MAX_MESSAGE;
  rt->rng = uv_hrtime() | 1;
  rt->state = RT_DISCONNECTED;

  if (rt->tls && rt_make_ssl_ctx(rt, err) < 0) {
    rt_free(rt);
    return NULL;
  }
  /* While another client's context is being torn down the context is made
   * by the first rt_on_retry instead (see rt_teardowns). */
  if (rt_teardowns == 0 && rt_create_context(rt, err) < 0) {
    rt_free(rt);
    return NULL;
  }

  uv_timer_t *timers[] = {&rt->retry_timer, &rt->hb_timer, &rt->hb_timeout_timer,
                          &rt->join_timer, &rt->close_timer, &rt->teardown_timer,
                          &rt->live_timer};
  for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
    uv_timer_init(loop, timers[i]);
    timers[i]->data = rt;
    rt->open_handles++;
  }
  /* Connect on the next loop turn: no callback runs inside rt_new. */
  uv_timer_start(&rt->retry_timer, rt_on_retry, 1, 0);
  return rt;
}

/* --- token ---------------------------------------------------------------- */

void rt_set_token(rt_client *rt, const char *jwt, double expires_at) {
  if (rt->closing || !jwt)
    return;
  rt->token_exp = expires_at;
  if (rt->token && strcmp(rt->token, jwt) == 0 && !rt->waiting_token)
    return;
  if (rt->token)
    explicit_bzero(rt->token, strlen(rt->token));
  free(rt->token);
  rt->token = util_strdup(jwt);
  rt->token_expired = 0;
  if ((rt->state == RT_JOINED || rt->live_pending) && rt->wsi && rt->established) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "access_token", jwt);
    rt_push(rt, rt->join_ref, rt->topic, "access_token", p, NULL);
  } else if (rt->waiting_token) {
    rt_rejoin(rt);
  } else if (rt->state == RT_JOINING) {
    rt->token_changed = 1;
  }
}

void rt_rejoin(rt_client *rt) {
  if (rt->closing)
    return;
  rt->attempts = 0;
  rt->waiting_token = 0;
  uv_timer_start(&rt->retry_timer, rt_on_retry, 1, 0);
}

/* --- close ---------------------------------------------------------------- */

static void rt_on_handle_closed(uv_handle_t *h) {
  rt_client *rt = h->data;
  if (--rt->open_handles > 0)
    return;
  void (*closed)(void *) = rt->closed;
  void *closed_data = rt->closed_data;
  rt_free(rt);
  if (closed)
    closed(closed_data);
}

static void rt_finish_close(rt_client *rt) {
  if (!rt->ctx && !rt->gai && rt->teardown_started && !rt->handles_closing) {
    rt->handles_closing = 1;
    uv_timer_t *timers[] = {&rt->retry_timer, &rt->hb_timer, &rt->hb_timeout_timer,
                            &rt->join_timer, &rt->close_timer, &rt->teardown_timer,
                            &rt->live_timer};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++)
      uv_close((uv_handle_t *)timers[i], rt_on_handle_closed);
  }
}

/* lws's static handles have the context as data; its poll handles (whose
 * close callbacks may close an fd) are counted while they are closing. */
static void rt_count_lws_handle(uv_handle_t *h, void *arg) {
  void **a = arg;
  if (h->data == a[0] || (h->type == UV_POLL && uv_is_closing(h)))
    (*(int *)a[1])++;
}

/* lws 4.1.6 closes its event pipe's fd inside lws_context_destroy and a
 * second time when that fd's uv poll handle has finished closing (seen with
 * strace): a socket opened in between, by curl or another client, would be
 * closed under its owner. So, around the first destroy, every poll fd that
 * the destroy closed gets a pipe of ours parked on its number until lws closes
 * it again; whatever lws did not close is closed at the end. */
static void rt_note_poll_fd(uv_handle_t *h, void *arg) {
  rt_client *rt = arg;
  int fd;
  if (h->type == UV_POLL && !uv_is_closing(h) && rt->nparked < RT_MAX_PARKED &&
      uv_fileno(h, &fd) == 0)
    rt->parked[rt->nparked++] = fd;
}

static void rt_park_fds(rt_client *rt) {
  int n = 0;
  for (int i = 0; i < rt->nparked; i++) /* keep those the destroy closed */
    if (fcntl(rt->parked[i], F_GETFD) == -1 && errno == EBADF)
      rt->parked[n++] = rt->parked[i];
  rt->nparked = 0;
  /* A pipe of our own marks the parked numbers: its inode is ours alone, so
   * the end can tell them from anything opened later. The pipe takes the
   * lowest free numbers, which may be among them: those are parked already. */
  int p[2];
  struct stat st;
  if (n == 0 || pipe2(p, O_CLOEXEC) < 0)
    return;
  if (fstat(p[0], &st) < 0) {
    close(p[0]);
    close(p[1]);
    return;
  }
  rt->parked_ino = st.st_ino;
  int kept[2] = {0, 0};
  for (int i = 0; i < n; i++) {
    int fd = rt->parked[i];
    if (fd == p[0] || fd == p[1])
      kept[fd == p[1]] = 1;
    else if (dup3(p[0], fd, O_CLOEXEC) != fd)
      continue;
    rt->parked[rt->nparked++] = fd;
  }
  for (int k = 0; k < 2; k++)
    if (!kept[k])
      close(p[k]);
}

static void rt_unpark_fds(rt_client *rt) {
  struct stat st;
  for (int i = 0; i < rt->nparked; i++) {
    int fd = rt->parked[i];
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) && st.st_ino == rt->parked_ino)
      close(fd);
  }
  rt->nparked = 0;
}

/* lws 4.1.6 on a foreign loop: the first lws_context_destroy closes the
 * connections and then lws's static handles (whose data is the context) but
 * never frees the context; a second call does, and is safe only once those
 * handles have finished closing. Poll until none is left on the loop. */
static void rt_on_teardown(uv_timer_t *t) {
  rt_client *rt = t->data;
  if (!rt->ctx) {
    uv_timer_stop(t);
    rt_finish_close(rt);
    return;
  }
  if (!rt->destroyed_once) {
    rt->destroyed_once = 1;
    rt->wsi = NULL;
    rt->nparked = 0;
    uv_walk(rt->loop, rt_note_poll_fd, rt);
    lws_context_destroy(rt->ctx);
    rt_park_fds(rt);
    return;
  }
  int left = 0;
  void *arg[2] = {rt->ctx, &left};
  uv_walk(rt->loop, rt_count_lws_handle, arg);
  if (left)
    return;
  uv_timer_stop(t);
  lws_context_destroy(rt->ctx);
  rt_teardowns--;
  if (rt->ctx_alive)
    log_warn("realtime: libwebsockets did not finish its teardown");
  rt->ctx = NULL;
  rt_unpark_fds(rt);
  rt_finish_close(rt);
}

static void rt_start_teardown(rt_client *rt) {
  if (rt->teardown_started)
    return;
  rt->teardown_started = 1;
  if (rt->ctx)
    rt_teardowns++;
  uv_timer_stop(&rt->close_timer);
  /* Never destroy the context from inside one of its callbacks. */
  uv_timer_start(&rt->teardown_timer, rt_on_teardown, 0, RT_TEARDOWN_POLL_MS);
}

static void rt_on_close_timeout(uv_timer_t *t) { rt_start_teardown(t->data); }

void rt_close(rt_client *rt, void (*closed)(void *data), void *data) {
  if (rt->closing)
    return;
  rt->closed = closed;
  rt->closed_data = data;
  uv_timer_stop(&rt->retry_timer);
  rt_stop_channel_timers(rt);
  if (rt->gai)
    uv_cancel((uv_req_t *)rt->gai); /* its callback sees closing */
  if (rt->wsi && rt->established) {
    /* Say goodbye, then close the socket from WRITEABLE (rt_writeable). */
    if (rt->join_ref[0])
      rt_push(rt, rt->join_ref, rt->topic, "phx_leave", cJSON_CreateObject(), NULL);
    else
      lws_callback_on_writable(rt->wsi);
    rt->closing = 1;
    uv_timer_start(&rt->close_timer, rt_on_close_timeout, rt->close_timeout_ms, 0);
  } else {
    rt->closing = 1;
    rt_start_teardown(rt);
  }
}

/* lws_get_library_version() is the version, '-' and a git hash, which a
 * release build leaves empty ("4.1.6-"): only the version is said. */
const char *rt_library_version(void) {
  static char version[32];
  snprintf(version, sizeof version, "%s", lws_get_library_version());
  version[strcspn(version, "- ")] = '\0';
  return version;
}
