/* realtime.c - the Supabase Realtime client's websocket (see realtime.h):
 * the connection under the Phoenix channel of phoenix.c, on libwebsockets
 * and the caller's libuv loop. It resolves the name (uv_getaddrinfo: lws
 * 4.1.6 would block the loop in getaddrinfo), opens the websocket (wss://
 * with an OpenSSL context of its own), queues outgoing text, reassembles
 * incoming messages up to max_message, and closes. One websocket at a time
 * per client, numbered across the process: a callback of a socket its
 * client has dropped (or of a client already freed) is ignored, so dropping
 * a connection never waits for lws. All clients share the process's one lws
 * context (made on the first connect, destroyed by rt_shutdown at exit);
 * that and the lws 4.1.6 workarounds are lws_compat.c's. */
#include "realtime.h"

#include <curl/curl.h>
#include <errno.h>
#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "list.h"
#include "log.h"
#include "lws_compat.h"
#include "phoenix.h"
#include "util.h"

#define RT_MAX_MESSAGE (8u << 20)

/* One queued outgoing message. */
typedef struct rt_out {
  list_node link; /* in rt->out */
  size_t len;
  unsigned char buf[]; /* LWS_PRE bytes, then the message */
} rt_out;

struct rt_client {
  phx_channel ch; /* the protocol; closing is ch.closing */
  list_node link; /* in rt_clients until freed */
  uv_loop_t *loop;

  /* Options, copied. */
  char *host, *path, *ca_file;
  int port, tls;
  size_t max_message;
  unsigned close_timeout_ms;

  char *vhost_name;     /* "ws", or "wss" and the CA file */
  struct lws_context *ctx; /* the process's (lws_compat.c), from the first */
  struct lws_vhost *vh;    /* connect on; NULL before */
  SSL_CTX *ssl_ctx;     /* for wss://, until the vhost takes it */

  /* The current connection. */
  uintptr_t gen;         /* its number in the process, the wsi's opaque
                            user data (rt_of_gen) */
  struct lws *wsi;       /* NULL while resolving or when there is none */
  int established;       /* the websocket is open */
  uv_getaddrinfo_t *gai; /* a lookup in flight; freed in its callback */
  unsigned addr_index;   /* which of the resolved addresses to try */
  list_node out; /* rt_out.link: messages waiting for the socket, oldest first */
  char *rx;
  size_t rx_len, rx_cap;
  int rx_active, rx_binary;
  int peer_close_code;

  uv_timer_t close_timer;
  int teardown_started, handles_closing, open_parts;
  void (*closed)(void *);
  void *closed_data;
};

rt_state rt_get_state(const rt_client *rt) { return rt->ch.state; }

int rt_confirmed(const rt_client *rt) {
  return rt->ch.state == RT_JOINED && !rt->ch.live_by_fallback;
}

/* Every client not yet freed, and the last connection number given out:
 * libwebsockets' callbacks find their client by the number. */
static list_node rt_clients = LIST_INIT(rt_clients);
static uintptr_t rt_last_gen;

static rt_client *rt_of_gen(uintptr_t gen) {
  list_node *n;
  list_for_each(n, &rt_clients) {
    rt_client *rt = list_entry(n, rt_client, link);
    if (rt->gen == gen)
      return rt;
  }
  return NULL;
}

/* --- sending -------------------------------------------------------------- */

static void rt_clear_out(rt_client *rt) {
  list_node *n;
  while ((n = list_pop_front(&rt->out)) != NULL) {
    rt_out *o = list_entry(n, rt_out, link);
    explicit_bzero(o->buf + LWS_PRE, o->len);
    free(o);
  }
}

static int rt_io_is_open(void *data) {
  rt_client *rt = data;
  return rt->wsi && rt->established;
}

/* Queue one message for rt_writeable. */
static void rt_io_send(void *data, const char *text, size_t len) {
  rt_client *rt = data;
  if (!rt->wsi || !rt->established)
    return;
  rt_out *o = util_malloc(sizeof *o + LWS_PRE + len);
  o->len = len;
  memcpy(o->buf + LWS_PRE, text, len);
  list_push_back(&rt->out, &o->link);
  lws_callback_on_writable(rt->wsi);
}

/* --- connection lifecycle ------------------------------------------------- */

/* Forget the current connection (closing its wsi if it still exists) so that
 * its later callbacks are ignored. */
static void rt_abandon(rt_client *rt) {
  if (rt->wsi) {
    lws_set_timeout(rt->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    rt->wsi = NULL;
  }
  rt->gen = ++rt_last_gen;
  rt->established = 0;
  rt_clear_out(rt);
  rt->rx_len = 0;
  rt->rx_active = 0;
  rt->peer_close_code = 0;
  phx_socket_gone(&rt->ch);
}

/* The connection failed or died: abandon it and schedule a reconnect. */
static void rt_lost(rt_client *rt, const char *what) {
  if (rt->ch.closing)
    return;
  rt_abandon(rt);
  phx_schedule(&rt->ch, RT_DISCONNECTED, what);
}

static void rt_io_lost(void *data, const char *what) { rt_lost(data, what); }

static void rt_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);
static void rt_finish_close(rt_client *rt);
static const struct lws_protocols rt_protocols[];

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
  phx_receive(&rt->ch, rt->rx, rt->rx_len);
  return 0;
}

static int rt_writeable(rt_client *rt, struct lws *wsi) {
  list_node *n = list_pop_front(&rt->out);
  if (!n) {
    if (rt->ch.closing) {
      lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
      return -1;
    }
    return 0;
  }
  rt_out *o = list_entry(n, rt_out, link);
  int written = lws_write(wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_TEXT);
  explicit_bzero(o->buf + LWS_PRE, o->len);
  size_t len = o->len;
  free(o);
  if (written < (int)len) {
    rt->wsi = NULL;
    rt_lost(rt, "could not send");
    return -1;
  }
  if (!list_empty(&rt->out) || rt->ch.closing)
    lws_callback_on_writable(wsi);
  return 0;
}

static void rt_start_teardown(rt_client *rt);

static int rt_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                     void *in, size_t len) {
  uintptr_t gen = (uintptr_t)lws_get_opaque_user_data(wsi);
  if (gen == 0)
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  /* NULL for a connection its client abandoned (or a freed client's). */
  rt_client *rt = rt_of_gen(gen);
  int current = rt != NULL;

  switch (reason) {
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
    if (!current || rt->ch.closing) {
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
    if (!current || rt->ch.closing)
      return -1;
    rt->established = 1;
    rt->peer_close_code = 0;
    phx_opened(&rt->ch);
    return 0;
  case LWS_CALLBACK_CLIENT_RECEIVE:
    if (!current)
      return -1;
    if (rt->ch.closing)
      return 0;
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
    if (rt->ch.closing) {
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

/* --- connecting ---------------------------------------------------------- */

static void rt_connect(rt_client *rt) {
  rt_abandon(rt);
  phx_report(&rt->ch, RT_CONNECTING, NULL);
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
static void rt_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  rt_client *rt = req->data;
  free(req);
  rt->gai = NULL;
  if (rt->ch.closing) {
    uv_freeaddrinfo(res);
    rt_finish_close(rt);
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
  ci.vhost = rt->vh;
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
  if (gen != rt->gen || rt->ch.closing)
    return; /* it already failed inside lws, and was handled */
  if (!wsi) {
    rt_lost(rt, "could not start the connection");
    return;
  }
  rt->wsi = wsi;
}

/* The retry timer fired with no websocket: find (or make) the process's lws
 * context and the vhost for our TLS set-up, then resolve and connect. */
static void rt_io_connect(void *data) {
  rt_client *rt = data;
  if (!rt->vh) {
    char *err = NULL;
    rt->ctx = lwsc_context(rt->loop, rt_protocols, &err);
    if (!rt->ctx) {
      phx_report(&rt->ch, RT_ERROR, "Realtime: %s", err);
      free(err);
      return;
    }
    rt->vh = lwsc_find_vhost(rt->vhost_name);
    if (!rt->vh) {
      SSL_CTX *ssl = rt->ssl_ctx;
      rt->ssl_ctx = NULL; /* the vhost's from now on */
      rt->vh = lwsc_client_vhost(rt->vhost_name, ssl, &err);
    }
    if (!rt->vh) {
      phx_report(&rt->ch, RT_ERROR, "Realtime: %s", err);
      free(err);
      return;
    }
  }
  rt_connect(rt);
}

/* --- create --------------------------------------------------------------- */

/* http(s)://host[:port][/prefix] -> host, port, tls, and the websocket path
 * with the apikey (percent-encoded) and the serializer version. */
static int rt_parse_url(rt_client *rt, const char *url, const char *apikey, char **err) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *key = NULL;
  int rc = -1;
  if (!u)
    abort(); /* out of memory: as util_malloc does */
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (uc != CURLUE_OK) {
    util_seterr(err, "bad Realtime URL: %s", curl_url_strerror(uc));
    goto out;
  }
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
    util_seterr(err, "the Realtime URL must start with http:// or https://");
    goto out;
  }
  if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
    util_seterr(err, "the Realtime URL has no host");
    goto out;
  }
  if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
      atoi(port) < 1 || atoi(port) > 65535) {
    util_seterr(err, "bad port in the Realtime URL");
    goto out;
  }
  if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
    util_seterr(err, "bad path in the Realtime URL");
    goto out;
  }
  rt->tls = strcmp(scheme, "https") == 0;
  rt->port = atoi(port);
  /* An IPv6 address comes in brackets; lws and getaddrinfo want it bare. */
  size_t hlen = strlen(host);
  if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']')
    rt->host = util_printf("%.*s", (int)(hlen - 2), host + 1);
  else
    rt->host = util_strdup(host);
  size_t plen = strlen(path);
  while (plen && path[plen - 1] == '/')
    plen--;
  key = http_escape(apikey);
  rt->path = util_printf("%.*s/realtime/v1/websocket?apikey=%s&vsn=2.0.0", (int)plen, path, key);
  explicit_bzero(key, strlen(key));
  rc = 0;
out:
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(path);
  free(key);
  curl_url_cleanup(u);
  return rc;
}

/* OpenSSL's oldest queued error, as text (static storage); the queue is
 * emptied. */
static const char *rt_ssl_error(void) {
  static char buf[256];
  unsigned long e = ERR_get_error();
  if (e)
    ERR_error_string_n(e, buf, sizeof buf);
  else
    snprintf(buf, sizeof buf, "unknown error");
  ERR_clear_error();
  return buf;
}

/* The client TLS context: peer verification against the system's CAs and,
 * when ca_file is given, its CAs too (as curl does for HTTP: the file adds
 * to the system store, it does not replace it). lws sets SNI and the host
 * name to check on each connection. */
static int rt_make_ssl_ctx(rt_client *rt, char **err) {
  rt->ssl_ctx = SSL_CTX_new(TLS_client_method());
  if (!rt->ssl_ctx) {
    util_seterr(err, "OpenSSL could not create a TLS context");
    return -1;
  }
  SSL_CTX_set_min_proto_version(rt->ssl_ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(rt->ssl_ctx, SSL_VERIFY_PEER, NULL);
  /* A system without a CA bundle still has the file's. */
  if (SSL_CTX_set_default_verify_paths(rt->ssl_ctx) != 1 && !rt->ca_file) {
    util_seterr(err, "cannot load the system's CA certificates: %s", rt_ssl_error());
    return -1;
  }
  ERR_clear_error();
  if (rt->ca_file && SSL_CTX_load_verify_locations(rt->ssl_ctx, rt->ca_file, NULL) != 1) {
    util_seterr(err, "cannot load the CA certificates from %s: %s", rt->ca_file, rt_ssl_error());
    return -1;
  }
  return 0;
}

/* Frees what rt_new copied; the channel's timers must be closed (or never
 * made). */
static void rt_free(rt_client *rt) {
  if (rt->link.next)
    list_remove(&rt->link);
  phx_free(&rt->ch);
  free(rt->vhost_name);
  free(rt->host);
  if (rt->path)
    explicit_bzero(rt->path, strlen(rt->path));
  free(rt->path);
  free(rt->ca_file);
  free(rt->rx);
  rt_clear_out(rt);
  SSL_CTX_free(rt->ssl_ctx);
  free(rt);
}

static const phx_transport rt_io = {rt_io_is_open, rt_io_send, rt_io_connect, rt_io_lost};

rt_client *rt_new(uv_loop_t *loop, const rt_options *opts, const rt_callbacks *cb,
                  void *data, char **err) {
  if (err)
    *err = NULL;
  const char *problem = !opts->url || !opts->anon_key || !*opts->anon_key
                            ? "the Realtime URL and the anon key are required"
                            : phx_check_options(opts);
  if (problem) {
    util_seterr(err, "%s", problem);
    return NULL;
  }
  rt_client *rt = util_calloc(1, sizeof *rt);
  list_init(&rt->out);
  rt->loop = loop;
  rt->ca_file = opts->ca_file ? util_strdup(opts->ca_file) : NULL;
  if (rt_parse_url(rt, opts->url, opts->anon_key, err) < 0 ||
      (rt->tls && rt_make_ssl_ctx(rt, err) < 0)) {
    rt_free(rt);
    return NULL;
  }
  rt->close_timeout_ms = opts->close_timeout_ms ? opts->close_timeout_ms : 1000;
  rt->max_message = opts->max_message ? opts->max_message : RT_MAX_MESSAGE;
  static int log_set;
  if (!log_set) {
    lwsc_set_log(rt_lws_log);
    log_set = 1;
  }
  if (lwsc_shutting_down()) {
    util_seterr(err, "Realtime: shelfd is shutting down");
    rt_free(rt);
    return NULL;
  }
  rt->vhost_name = rt->tls ? util_printf("wss %s", rt->ca_file ? rt->ca_file : "") : util_strdup("ws");
  rt->gen = ++rt_last_gen;
  list_push_back(&rt_clients, &rt->link);
  phx_init(&rt->ch, loop, opts, cb, data, &rt_io, rt);
  uv_timer_init(loop, &rt->close_timer);
  rt->close_timer.data = rt;
  /* Connect on the next loop turn: no callback runs inside rt_new. */
  phx_start(&rt->ch, 1);
  return rt;
}

/* --- token ---------------------------------------------------------------- */

void rt_set_token(rt_client *rt, const char *jwt, double expires_at) {
  phx_set_token(&rt->ch, jwt, expires_at);
}

void rt_rejoin(rt_client *rt) { phx_rejoin(&rt->ch); }

/* --- close ---------------------------------------------------------------- */

/* The channel's timers and the close timer are closed, and lws is gone. */
static void rt_part_closed(void *data) {
  rt_client *rt = data;
  if (--rt->open_parts > 0)
    return;
  void (*closed)(void *) = rt->closed;
  void *closed_data = rt->closed_data;
  rt_free(rt);
  if (closed)
    closed(closed_data);
}

static void rt_on_close_timer_closed(uv_handle_t *h) { rt_part_closed(h->data); }

static void rt_finish_close(rt_client *rt) {
  if (rt->teardown_started && !rt->gai && !rt->handles_closing) {
    rt->handles_closing = 1;
    rt->open_parts = 2;
    uv_close((uv_handle_t *)&rt->close_timer, rt_on_close_timer_closed);
    phx_close_timers(&rt->ch, rt_part_closed, rt);
  }
}

/* The websocket is closed, or the phx_leave did not go out in time: drop
 * the connection (lws closes it on its own; its callbacks are ignored from
 * now on) and free the client. The lws context stays (rt_shutdown). */
static void rt_start_teardown(rt_client *rt) {
  if (rt->teardown_started)
    return;
  rt->teardown_started = 1;
  uv_timer_stop(&rt->close_timer);
  rt_abandon(rt);
  rt_finish_close(rt);
}

static void rt_on_close_timeout(uv_timer_t *t) { rt_start_teardown(t->data); }

void rt_close(rt_client *rt, void (*closed)(void *data), void *data) {
  if (rt->ch.closing)
    return;
  rt->closed = closed;
  rt->closed_data = data;
  int open = rt_io_is_open(rt);
  int leaving = phx_close(&rt->ch);
  if (rt->gai)
    uv_cancel((uv_req_t *)rt->gai); /* its callback sees closing */
  if (open) {
    /* Say goodbye, then close the socket from WRITEABLE (rt_writeable). */
    if (!leaving)
      lws_callback_on_writable(rt->wsi);
    uv_timer_start(&rt->close_timer, rt_on_close_timeout, rt->close_timeout_ms, 0);
  } else {
    rt_start_teardown(rt);
  }
}

int rt_shutdown(void) {
  if (!list_empty(&rt_clients))
    return -1;
  lwsc_shutdown();
  return 0;
}

/* lws_get_library_version() is the version, '-' and a git hash, which a
 * release build leaves empty ("4.1.6-"): only the version is said. */
const char *rt_library_version(void) {
  static char version[32];
  snprintf(version, sizeof version, "%s", lws_get_library_version());
  version[strcspn(version, "- ")] = '\0';
  return version;
}
