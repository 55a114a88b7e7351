/* test_http.c - the HTTP client against a small HTTP/1.1 server that runs on
 * the test's own loop at 127.0.0.1:<port chosen by the system> (below), and,
 * for TLS, against `openssl s_server -www` with a certificate made at run
 * time. Every test ends by closing everything and asserting
 * uv_loop_close == 0. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, strcasestr */
#endif
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http.h"
#include "test.h"
#include "util.h"

/* --- the test server --------------------------------------------------------
 * Routes: /hello, /echo (the request body back, X-Method: its method),
 * /n/<i> ("n=<i>"), /status/<code>, /big/<n> (n bytes, Content-Length),
 * /chunked/<n> (n bytes, chunked), /hang (never answers), /drop (closes). */

#define SRV_MAX_INPUT (8u << 20)

typedef struct srv_conn {
  uv_tcp_t tcp;
  struct server *s;
  struct srv_conn *next;
  char *in;
  size_t len, cap;
  int closing;
} srv_conn;

typedef struct server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  int port;
  srv_conn *conns;
  int open;        /* handles not yet closed */
  int accepted;    /* connections accepted */
  int peer_closed; /* connections the client closed */
  int requests;
  char method[16]; /* of the last request */
  char *target, *head, *body;
  size_t body_len;
} server;

static void srv_on_conn_closed(uv_handle_t *h) {
  srv_conn *c = h->data;
  for (srv_conn **p = &c->s->conns; *p; p = &(*p)->next) {
    if (*p == c) {
      *p = c->next;
      break;
    }
  }
  c->s->open--;
  free(c->in);
  free(c);
}

static void srv_conn_close(srv_conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, srv_on_conn_closed);
}

static void srv_on_written(uv_write_t *req, int status) {
  (void)status;
  free(req->data);
  free(req);
}

static void srv_write(srv_conn *c, char *data, size_t len) { /* takes data */
  uv_write_t *req = util_malloc(sizeof *req);
  req->data = data;
  uv_buf_t buf = uv_buf_init(data, (unsigned)len);
  if (uv_write(req, (uv_stream_t *)&c->tcp, &buf, 1, srv_on_written) < 0) {
    free(data);
    free(req);
  }
}

static void srv_respond(srv_conn *c, int status, const char *extra,
                        const char *body, size_t len) {
  char *head = util_printf("HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n",
                           status, len, extra);
  size_t hl = strlen(head);
  char *msg = util_malloc(hl + len);
  memcpy(msg, head, hl);
  memcpy(msg + hl, body, len);
  free(head);
  srv_write(c, msg, hl + len);
}

static void srv_route(srv_conn *c, const char *method, const char *target,
                      const char *body, size_t body_len) {
  if (strncmp(target, "/hello", 6) == 0) {
    srv_respond(c, 200,
                "Content-Type: text/plain\r\nX-Test: yes\r\n"
                "Content-Range: 0-0/1\r\n",
                "hello world", 11);
  } else if (strcmp(target, "/echo") == 0) {
    char *extra = util_printf("X-Method: %s\r\n", method);
    srv_respond(c, 200, extra, body, body_len);
    free(extra);
  } else if (strncmp(target, "/n/", 3) == 0) {
    char *b = util_printf("n=%s", target + 3);
    srv_respond(c, 200, "", b, strlen(b));
    free(b);
  } else if (strncmp(target, "/status/", 8) == 0) {
    char *b = util_printf("status %s", target + 8);
    srv_respond(c, atoi(target + 8), "", b, strlen(b));
    free(b);
  } else if (strncmp(target, "/big/", 5) == 0) {
    size_t n = strtoul(target + 5, NULL, 10);
    char *b = util_malloc(n + 1);
    memset(b, 'x', n);
    srv_respond(c, 200, "", b, n);
    free(b);
  } else if (strncmp(target, "/chunked/", 9) == 0) {
    size_t n = strtoul(target + 9, NULL, 10);
    char *head = util_printf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                             "\r\n\r\n%zx\r\n",
                             n);
    size_t hl = strlen(head);
    char *msg = util_malloc(hl + n + 7);
    memcpy(msg, head, hl);
    memset(msg + hl, 'y', n);
    memcpy(msg + hl + n, "\r\n0\r\n\r\n", 7);
    free(head);
    srv_write(c, msg, hl + n + 7);
  } else if (strcmp(target, "/drop") == 0) {
    srv_conn_close(c);
  } else if (strcmp(target, "/hang") != 0) {
    srv_respond(c, 404, "", "", 0);
  }
}

/* Handle every complete request in c->in (keep-alive, pipelining). */
static void srv_process(srv_conn *c) {
  server *s = c->s;
  while (!c->closing) {
    char *end = memmem(c->in, c->len, "\r\n\r\n", 4);
    if (!end)
      return;
    size_t head_len = (size_t)(end - c->in) + 4;
    char *head = util_malloc(head_len + 1);
    memcpy(head, c->in, head_len);
    head[head_len] = '\0';
    size_t clen = 0;
    const char *cl = strcasestr(head, "\r\nContent-Length:");
    if (cl)
      clen = strtoul(cl + 17, NULL, 10);
    if (c->len < head_len + clen) {
      free(head);
      return;
    }
    char method[16] = "", target[256] = "";
    sscanf(head, "%15s %255s", method, target);
    s->requests++;
    snprintf(s->method, sizeof s->method, "%s", method);
    free(s->target);
    free(s->head);
    free(s->body);
    s->target = util_strdup(target);
    s->head = head;
    s->body = util_malloc(clen + 1);
    memcpy(s->body, c->in + head_len, clen);
    s->body[clen] = '\0';
    s->body_len = clen;
    memmove(c->in, c->in + head_len + clen, c->len - head_len - clen);
    c->len -= head_len + clen;
    srv_route(c, method, target, s->body, clen);
  }
}

static void srv_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  buf->base = util_malloc(suggested);
  buf->len = suggested;
}

static void srv_on_read(uv_stream_t *stream, ssize_t nread,
                        const uv_buf_t *buf) {
  srv_conn *c = stream->data;
  if (nread < 0) {
    if (nread == UV_EOF || nread == UV_ECONNRESET)
      c->s->peer_closed++;
    srv_conn_close(c);
  } else if (nread > 0 && c->len + (size_t)nread > SRV_MAX_INPUT) {
    srv_conn_close(c);
  } else if (nread > 0) {
    if (c->len + (size_t)nread > c->cap) {
      c->cap = (c->len + (size_t)nread) * 2;
      c->in = util_realloc(c->in, c->cap);
    }
    memcpy(c->in + c->len, buf->base, (size_t)nread);
    c->len += (size_t)nread;
    srv_process(c);
  }
  free(buf->base);
}

static void srv_on_connection(uv_stream_t *listener, int status) {
  server *s = listener->data;
  if (status < 0)
    return;
  srv_conn *c = util_calloc(1, sizeof *c);
  c->s = s;
  uv_tcp_init(s->loop, &c->tcp);
  c->tcp.data = c;
  s->open++;
  c->next = s->conns;
  s->conns = c;
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
    srv_conn_close(c);
    return;
  }
  s->accepted++;
  uv_read_start((uv_stream_t *)&c->tcp, srv_on_alloc, srv_on_read);
}

static int srv_start(server *s, uv_loop_t *loop) {
  struct sockaddr_in addr;
  struct sockaddr_storage name;
  int namelen = sizeof name;
  memset(s, 0, sizeof *s);
  s->loop = loop;
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  s->open = 1;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if (uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0) < 0 ||
      uv_listen((uv_stream_t *)&s->listener, 128, srv_on_connection) < 0 ||
      uv_tcp_getsockname(&s->listener, (struct sockaddr *)&name, &namelen) < 0)
    return -1;
  s->port = ntohs(((struct sockaddr_in *)&name)->sin_port);
  return 0;
}

static void srv_on_listener_closed(uv_handle_t *h) {
  server *s = h->data;
  s->open--;
}

static void srv_stop(server *s) {
  uv_close((uv_handle_t *)&s->listener, srv_on_listener_closed);
  for (srv_conn *c = s->conns; c; c = c->next)
    srv_conn_close(c);
  free(s->target);
  free(s->head);
  free(s->body);
  s->target = s->head = s->body = NULL;
}

/* --- fixture -------------------------------------------------------------- */

typedef struct {
  uv_loop_t loop;
  uv_timer_t guard;
  int expired;
  server srv;
  http_client *c;
  int closed;
} fixture;

/* What a callback saw, copied. */
typedef struct {
  int calls;
  long status;
  int curl_code, cert_rejected;
  char *error, *body, *content_range, *x_test, *x_method;
  size_t body_len, bytes_in, bytes_out;
  double total_ms;
  long new_connections;
} got;

static char *dup_or_null(const char *s) { return s ? util_strdup(s) : NULL; }

static void on_done(void *data, const http_response *res) {
  got *g = data;
  g->calls++;
  g->status = res->status;
  g->curl_code = res->curl_code;
  g->cert_rejected = res->cert_rejected;
  g->error = dup_or_null(res->error);
  g->body = util_malloc(res->body_len + 1);
  memcpy(g->body, res->body, res->body_len + 1);
  g->body_len = res->body_len;
  g->content_range = dup_or_null(res->content_range);
  g->x_test = dup_or_null(http_header(res, "X-TEST"));
  g->x_method = dup_or_null(http_header(res, "x-method"));
  g->bytes_in = res->bytes_in;
  g->bytes_out = res->bytes_out;
  g->total_ms = res->total_ms;
  g->new_connections = res->new_connections;
}

static void got_free(got *g) {
  free(g->error);
  free(g->body);
  free(g->content_range);
  free(g->x_test);
  free(g->x_method);
  memset(g, 0, sizeof *g);
}

static void on_guard(uv_timer_t *t) {
  fixture *f = t->data;
  f->expired = 1;
}

static void on_client_closed(void *data) {
  fixture *f = data;
  f->closed++;
}

static void setup(fixture *f, const http_options *opts) {
  memset(f, 0, sizeof *f);
  ASSERT_EQ(uv_loop_init(&f->loop), 0);
  ASSERT_EQ(uv_timer_init(&f->loop, &f->guard), 0);
  f->guard.data = f;
  ASSERT_EQ(srv_start(&f->srv, &f->loop), 0);
  char *err = NULL;
  f->c = http_client_new(&f->loop, opts, &err);
  ASSERT(f->c != NULL);
  ASSERT(err == NULL);
}

/* Run the loop until *value >= target or ms have passed; 1 if reached. */
static int run_until(fixture *f, const int *value, int target, unsigned ms) {
  f->expired = 0;
  uv_timer_start(&f->guard, on_guard, ms, 0);
  while (*value < target && !f->expired)
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_timer_stop(&f->guard);
  return *value >= target;
}

static void run_for(fixture *f, unsigned ms) {
  int never = 0;
  run_until(f, &never, 1, ms);
}

/* Close the client (unless the test did), the server and the guard; run the
 * loop dry; the loop must then close cleanly. */
static void teardown(fixture *f) {
  if (f->c) {
    http_client_close(f->c, on_client_closed, f);
    f->c = NULL;
    ASSERT_EQ(f->closed, 0); /* only after the close callbacks */
  }
  srv_stop(&f->srv);
  uv_close((uv_handle_t *)&f->guard, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  ASSERT_EQ(f->closed, 1);
  ASSERT_EQ(f->srv.open, 0);
  ASSERT_EQ(uv_loop_close(&f->loop), 0);
}

static char *url(fixture *f, const char *path) {
  return util_printf("http://127.0.0.1:%d%s", f->srv.port, path);
}

/* Start a request on f's client; the test fails if it is refused. */
static long start(fixture *f, const char *method, const char *path,
                  const char *const *headers, const char *body, size_t len,
                  got *g) {
  char *u = url(f, path);
  long id = http_request(f->c, method, u, headers, body, len, on_done, g);
  free(u);
  ASSERT(id > 0);
  return id;
}

/* --- tests ---------------------------------------------------------------- */

TEST(get_roundtrip) {
  fixture f;
  got g = {0};
  setup(&f, NULL);
  const char *headers[] = {"X-Custom: abc", "Authorization: Bearer t0ken",
                           NULL};
  start(&f, "GET", "/hello?select=*&id=eq.1", headers, NULL, 0, &g);
  ASSERT(run_until(&f, &g.calls, 1, 5000));
  ASSERT_EQ(g.calls, 1);
  ASSERT_EQ(g.status, 200);
  ASSERT_EQ(g.curl_code, CURLE_OK);
  ASSERT(g.error == NULL);
  ASSERT_STR(g.body, "hello world");
  ASSERT_EQ(g.body_len, 11);
  ASSERT_STR(g.content_range, "0-0/1");
  ASSERT_STR(g.x_test, "yes");
  ASSERT(g.bytes_in > 11 && g.bytes_out > 0 && g.total_ms > 0);
  ASSERT_EQ(g.new_connections, 1);
  /* What the server saw. */
  ASSERT_STR(f.srv.method, "GET");
  ASSERT_STR(f.srv.target, "/hello?select=*&id=eq.1");
  ASSERT(strstr(f.srv.head, "\r\nX-Custom: abc\r\n"));
  ASSERT(strstr(f.srv.head, "\r\nAuthorization: Bearer t0ken\r\n"));
  ASSERT(strstr(f.srv.head, "\r\nUser-Agent: shelf.nvim/"));
  ASSERT_EQ(f.srv.body_len, 0);
  got_free(&g);
  teardown(&f);
}

TEST(post_roundtrip) {
  fixture f;
  got g = {0};
  setup(&f, NULL);
  const char *headers[] = {"Content-Type: application/json",
                           "Prefer: return=representation", NULL};
  const char *json = "{\"title\":\"a b\",\"n\":1}";
  start(&f, "POST", "/echo", headers, json, strlen(json), &g);
  ASSERT(run_until(&f, &g.calls, 1, 5000));
  ASSERT_EQ(g.status, 200);
  ASSERT_STR(g.body, json);
  ASSERT_STR(g.x_method, "POST");
  ASSERT_STR(f.srv.method, "POST");
  ASSERT_STR(f.srv.body, json);
  ASSERT(strstr(f.srv.head, "\r\nContent-Type: application/json\r\n"));
  ASSERT(strstr(f.srv.head, "\r\nPrefer: return=representation\r\n"));
  ASSERT(strstr(f.srv.head, "\r\nContent-Length: 21\r\n"));
  got_free(&g);

  /* A body past curl's Expect: 100-continue threshold goes straight out. */
  size_t n = (3u << 20) / 2;
  char *big = util_malloc(n);
  for (size_t i = 0; i < n; i++)
    big[i] = (char)('a' + i % 26);
  start(&f, "POST", "/echo", headers, big, n, &g);
  ASSERT(run_until(&f, &g.calls, 1, 10000));
  ASSERT_EQ(g.status, 200);
  ASSERT_EQ(g.body_len, n);
  ASSERT(memcmp(g.body, big, n) == 0);
  ASSERT(strcasestr(f.srv.head, "\r\nExpect:") == NULL);
  ASSERT_EQ(g.new_connections, 0); /* the first connection, kept alive */
  ASSERT_EQ(f.srv.accepted, 1);
  free(big);
  got_free(&g);
  teardown(&f);
}

TEST(other_methods) {
  fixture f;
  got g = {0};
  setup(&f, NULL);
  start(&f, "PATCH", "/echo", NULL, "{\"x\":2}", 7, &g);
  ASSERT(run_until(&f, &g.calls, 1, 5000));
  ASSERT_STR(f.srv.method, "PATCH");
  ASSERT_STR(f.srv.body, "{\"x\":2}");
  ASSERT_STR(g.x_method, "PATCH");
  got_free(&g);

  start(&f, "DELETE", "/echo", NULL, NULL, 0, &g);
  ASSERT(run_until(&f, &g.calls, 1, 5000));
  ASSERT_STR(f.srv.method, "DELETE");
  ASSERT_EQ(f.srv.body_len, 0);
  ASSERT_EQ(g.status, 200);
  got_free(&g);

  start(&f, "GET", "/status/404", NULL, NULL, 0, &g);
  ASSERT(run_until(&f, &g.calls, 1, 5000));
  ASSERT_EQ(g.status, 404); /* an HTTP error is a response, not a failure */
  ASSERT_EQ(g.curl_code, CURLE_OK);
  ASSERT(g.error == NULL);
  ASSERT_STR(g.body, "status 404");
  got_free(&g);
  teardown(&f);
}

#define PARALLEL 50

TEST(parallel_requests_reuse_connections) {
  fixture f;
  static got g[PARALLEL];
  int done = 0;
  setup(&f, NULL);
  for (int round = 0; round < 2; round++) {
    memset(g, 0, sizeof g);
    for (int i = 0; i < PARALLEL; i++) {
      char path[32];
      snprintf(path, sizeof path, "/n/%d", i);
      start(&f, "GET", path, NULL, NULL, 0, &g[i]);
    }
    ASSERT_EQ(http_pending(f.c), PARALLEL);
    for (;;) {
      done = 0;
      for (int i = 0; i < PARALLEL; i++)
        done += g[i].calls;
      if (done == PARALLEL)
        break;
      f.expired = 0;
      uv_timer_start(&f.guard, on_guard, 10000, 0);
      uv_run(&f.loop, UV_RUN_ONCE);
      uv_timer_stop(&f.guard);
      ASSERT(!f.expired);
    }
    long opened = 0;
    for (int i = 0; i < PARALLEL; i++) {
      char want[32];
      snprintf(want, sizeof want, "n=%d", i);
      ASSERT_EQ(g[i].calls, 1);
      ASSERT_EQ(g[i].status, 200);
      ASSERT_STR(g[i].body, want);
      opened += g[i].new_connections;
      got_free(&g[i]);
    }
    ASSERT_EQ(http_pending(f.c), 0);
    if (round == 0) {
      /* At most 8 connections to one host, each used several times. */
      ASSERT(f.srv.accepted >= 1 && f.srv.accepted <= 8);
      ASSERT_EQ(opened, f.srv.accepted);
    } else {
      ASSERT_EQ(opened, 0); /* every one reused from the first round */
    }
  }
  ASSERT(f.srv.accepted <= 8);
  ASSERT_EQ(f.srv.requests, 2 * PARALLEL);
  teardown(&f);
}

TEST(connection_refused) {
  fixture f;
  got g = {0};
  setup(&f, NULL);
  /* A port bound but not listening refuses, and no one else can take it. */
  uv_tcp_t bound;
  struct sockaddr_in addr;
  struct sockaddr_storage name;
  int namelen = sizeof name;
  uv_tcp_init(&f.loop, &bound);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  ASSERT_EQ(uv_tcp_bind(&bound, (const struct sockaddr *)&addr, 0), 0);
  ASSERT_EQ(uv_tcp_getsockname(&bound, (struct sockaddr *)&name, &namelen), 0);
  char *u = util_printf("http://127.0.0.1:%d/x",
                        ntohs(((struct sockaddr_in *)&name)->sin_port));
  ASSERT(http_request(f.c, "GET", u, NULL, NULL, 0, on_done, &g) > 0);
  free(u);
  ASSERT(run_until(&f, &g.calls, 1, 5000));
  uv_close((uv_handle_t *)&bound, NULL);
  ASSERT_EQ(g.status, 0);
  ASSERT_EQ(g.curl_code, CURLE_COULDNT_CONNECT);
  ASSERT_STR(g.error, "connection refused");
  ASSERT_STR(g.body, "");
  ASSERT_EQ(g.body_len, 0);
  got_free(&g);
  teardown(&f);
}

TEST(server_never_answers) {
  fixture f;
  got g = {0};
  http_options o = {.timeout_ms = 300};
  setup(&f, &o);
  double t0 = util_now_ms();
  start(&f, "GET", "/hang", NULL, NULL, 0, &g);
  ASSERT(run_until(&f, &g.calls, 1, 5000));
  double took = util_now_ms() - t0;
  ASSERT_EQ(g.status, 0);
  ASSERT_EQ(g.curl_code, CURLE_OPERATION_TIMEDOUT);
  ASSERT_STR(g.error, "timed out after 0.3 s");
  ASSERT(took >= 290 && took < 3000);
  ASSERT_EQ(f.srv.requests, 1);
  got_free(&g);
  teardown(&f);
}

TEST(server_closes_without_answer) {
  fixture f;
  got g = {0};
  setup(&f, NULL);
  start(&f, "GET", "/drop", NULL, NULL, 0, &g);
  ASSERT(run_until(&f, &g.calls, 1, 5000));
  ASSERT_EQ(g.status, 0);
  ASSERT_EQ(g.curl_code, CURLE_GOT_NOTHING);
  ASSERT_STR(g.error, "the server closed the connection without answering");
  got_free(&g);
  teardown(&f);
}

TEST(body_over_max_body) {
  fixture f;
  got g = {0};
  http_options o = {.max_body = 1024};
  setup(&f, &o);
  start(&f, "GET", "/big/1024", NULL, NULL, 0, &g); /* exactly the limit */
  ASSERT(run_until(&f, &g.calls, 1, 5000));
  ASSERT_EQ(g.status, 200);
  ASSERT_EQ(g.body_len, 1024);
  ASSERT_EQ(g.body[1024], '\0');
  got_free(&g);

  start(&f, "GET", "/big/1025", NULL, NULL, 0, &g); /* Content-Length says */
  ASSERT(run_until(&f, &g.calls, 1, 5000));
  ASSERT_EQ(g.status, 0);
  ASSERT_STR(g.error, "response larger than 1 KiB");
  ASSERT_EQ(g.body_len, 0);
  got_free(&g);

  start(&f, "GET", "/chunked/5000", NULL, NULL, 0, &g); /* found on the way */
  ASSERT(run_until(&f, &g.calls, 1, 5000));
  ASSERT_EQ(g.status, 0);
  ASSERT_EQ(g.curl_code, CURLE_WRITE_ERROR);
  ASSERT_STR(g.error, "response larger than 1 KiB");
  got_free(&g);

  start(&f, "GET", "/chunked/1000", NULL, NULL, 0, &g);
  ASSERT(run_until(&f, &g.calls, 1, 5000));
  ASSERT_EQ(g.status, 200);
  ASSERT_EQ(g.body_len, 1000);
  got_free(&g);
  teardown(&f);
}

TEST(default_max_body_is_32_mib) {
  fixture f;
  got g = {0};
  setup(&f, NULL);
  char path[32];
  snprintf(path, sizeof path, "/chunked/%zu", HTTP_DEFAULT_MAX_BODY + 1);
  start(&f, "GET", path, NULL, NULL, 0, &g);
  ASSERT(run_until(&f, &g.calls, 1, 20000));
  ASSERT_STR(g.error, "response larger than 32 MiB");
  got_free(&g);
  teardown(&f);
}

TEST(cancel) {
  fixture f;
  got cancelled = {0}, hung = {0}, after = {0};
  setup(&f, NULL);
  /* Before the loop has even started it. */
  long id = start(&f, "GET", "/hello", NULL, NULL, 0, &cancelled);
  http_cancel(f.c, id);
  ASSERT_EQ(http_pending(f.c), 0);
  /* In flight: the server has the request; curl drops the connection. */
  id = start(&f, "GET", "/hang", NULL, NULL, 0, &hung);
  ASSERT(run_until(&f, &f.srv.requests, 1, 5000));
  http_cancel(f.c, id);
  http_cancel(f.c, id); /* twice, and unknown ids: ignored */
  http_cancel(f.c, 0);
  http_cancel(f.c, 12345);
  ASSERT(run_until(&f, &f.srv.peer_closed, 1, 5000));
  /* The client still works, and nothing else was called. */
  start(&f, "GET", "/hello", NULL, NULL, 0, &after);
  ASSERT(run_until(&f, &after.calls, 1, 5000));
  run_for(&f, 50);
  ASSERT_EQ(after.status, 200);
  ASSERT_EQ(cancelled.calls, 0);
  ASSERT_EQ(hung.calls, 0);
  ASSERT_EQ(f.srv.requests, 2); /* the first never went out */
  got_free(&after);
  teardown(&f);
}

TEST(close_with_requests_in_flight) {
  fixture f;
  got g[4] = {{0}};
  setup(&f, NULL);
  for (int i = 0; i < 3; i++)
    start(&f, "GET", "/hang", NULL, NULL, 0, &g[i]);
  ASSERT(run_until(&f, &f.srv.requests, 3, 5000));
  start(&f, "GET", "/hello", NULL, NULL, 0, &g[3]); /* not started yet */
  http_client_close(f.c, on_client_closed, &f);
  f.c = NULL;
  ASSERT_EQ(f.closed, 0);
  ASSERT(run_until(&f, &f.closed, 1, 5000));
  ASSERT(run_until(&f, &f.srv.peer_closed, 3, 5000));
  for (int i = 0; i < 4; i++)
    ASSERT_EQ(g[i].calls, 0);
  teardown(&f);
}

/* Callbacks that start, cancel or close from inside a callback. */
typedef struct {
  fixture *f;
  int calls;
  int chain;  /* start another request this many times */
  long other; /* cancel this one */
  int close;
} reentry;

static void on_reentry(void *data, const http_response *res) {
  reentry *r = data;
  r->calls++;
  ASSERT(res->status == 200);
  if (r->other > 0)
    http_cancel(r->f->c, r->other);
  if (r->close) {
    http_client_close(r->f->c, on_client_closed, r->f);
    r->f->c = NULL;
  } else if (r->chain-- > 0) {
    char *u = url(r->f, "/hello");
    ASSERT(http_request(r->f->c, "GET", u, NULL, NULL, 0, on_reentry, r) > 0);
    free(u);
  }
}

TEST(request_cancel_and_close_from_callbacks) {
  fixture f;
  setup(&f, NULL);
  reentry chain = {.f = &f, .chain = 3};
  char *u = url(&f, "/hello");
  ASSERT(http_request(f.c, "GET", u, NULL, NULL, 0, on_reentry, &chain) > 0);
  ASSERT(run_until(&f, &chain.calls, 4, 5000));
  ASSERT_EQ(f.srv.requests, 4);

  /* Whichever of two requests finishes first cancels the hanging one and
   * closes the client; the other must not be called, although it may have
   * finished in the same pass. */
  got hung = {0};
  reentry closer = {.f = &f, .close = 1};
  char *h = url(&f, "/hang");
  closer.other = http_request(f.c, "GET", h, NULL, NULL, 0, on_done, &hung);
  ASSERT(closer.other > 0);
  ASSERT(run_until(&f, &f.srv.requests, 5, 5000));
  ASSERT(http_request(f.c, "GET", u, NULL, NULL, 0, on_reentry, &closer) > 0);
  ASSERT(http_request(f.c, "GET", u, NULL, NULL, 0, on_reentry, &closer) > 0);
  ASSERT(run_until(&f, &f.closed, 1, 5000));
  ASSERT_EQ(closer.calls, 1);
  ASSERT_EQ(hung.calls, 0);
  ASSERT(f.c == NULL);
  free(u);
  free(h);
  teardown(&f);
}

TEST(bad_arguments) {
  fixture f;
  got g = {0};
  setup(&f, NULL);
  char *u = url(&f, "/hello");
  const char *smuggled[] = {"X-A: 1\r\nX-B: 2", NULL};
  const char *no_colon[] = {"X-A", NULL};
  ASSERT(http_request(f.c, "TRACE", u, NULL, NULL, 0, on_done, &g) < 0);
  ASSERT(http_request(f.c, "get", u, NULL, NULL, 0, on_done, &g) < 0);
  ASSERT(http_request(f.c, "GET", "ftp://127.0.0.1/x", NULL, NULL, 0, on_done,
                      &g) < 0);
  ASSERT(http_request(f.c, "GET", "file:///etc/passwd", NULL, NULL, 0, on_done,
                      &g) < 0);
  ASSERT(http_request(f.c, "GET", "not a url", NULL, NULL, 0, on_done, &g) < 0);
  ASSERT(http_request(f.c, "GET", u, smuggled, NULL, 0, on_done, &g) < 0);
  ASSERT(http_request(f.c, "GET", u, no_colon, NULL, 0, on_done, &g) < 0);
  ASSERT(http_request(f.c, "POST", u, NULL, NULL, 5, on_done, &g) < 0);
  ASSERT(http_request(f.c, "GET", u, NULL, NULL, 0, NULL, &g) < 0);
  ASSERT_EQ(http_pending(f.c), 0);
  run_for(&f, 50);
  ASSERT_EQ(g.calls, 0);
  ASSERT_EQ(f.srv.requests, 0);
  free(u);

  char *err = NULL;
  http_options o = {.ca_file = "/nonexistent/ca.pem"};
  ASSERT(http_client_new(&f.loop, &o, &err) == NULL);
  ASSERT(err && strstr(err, "/nonexistent/ca.pem"));
  free(err);
  teardown(&f);
}

TEST(escape) {
  char *s = http_escape("a b&c=d/é~-._,(x)");
  ASSERT_STR(s, "a%20b%26c%3Dd%2F%C3%A9~-._%2C%28x%29");
  free(s);
  s = http_escape("");
  ASSERT_STR(s, "");
  free(s);
  ASSERT(http_escape(NULL) == NULL);
}

static char *error_text_of(const char *body, char **code) {
  http_response res = {0};
  res.status = 400;
  res.body = body;
  res.body_len = strlen(body);
  return http_error_text(&res, code);
}

TEST(error_text) {
  char *code = NULL;
  char *t = error_text_of("{\"code\":\"23505\",\"message\":\"duplicate key\",\"details\":null}", &code);
  ASSERT_STR(t, "duplicate key (23505)");
  ASSERT_STR(code, "23505");
  free(t);
  free(code);
  /* Auth: the numeric code is the HTTP status, error_code the reason. */
  t = error_text_of("{\"code\":422,\"error_code\":\"weak_password\",\"msg\":\"too short\"}", &code);
  ASSERT_STR(t, "too short (weak_password)");
  ASSERT_STR(code, "weak_password");
  free(t);
  free(code);
  t = error_text_of("{\"error\":\"invalid_grant\",\"error_description\":\"bad code\"}", &code);
  ASSERT_STR(t, "bad code");
  ASSERT(code == NULL);
  free(t);
  ASSERT(error_text_of("{\"hint\":\"x\"}", &code) == NULL && code == NULL);
  ASSERT(error_text_of("<html>502</html>", NULL) == NULL);
  ASSERT(error_text_of("", NULL) == NULL);
}

TEST(url_authority) {
  char *a = http_url_authority("https://abc.supabase.co");
  ASSERT_STR(a, "abc.supabase.co");
  free(a);
  a = http_url_authority("http://user:pw@127.0.0.1:54321/some/path?q=1#f");
  ASSERT_STR(a, "127.0.0.1:54321");
  free(a);
  a = http_url_authority("http://[::1]:8000/");
  ASSERT_STR(a, "[::1]:8000");
  free(a);
  ASSERT(http_url_authority("ftp://example.com") == NULL);
  ASSERT(http_url_authority("httpx://example.com") == NULL);
  ASSERT(http_url_authority("example.com") == NULL);
  ASSERT(http_url_authority("") == NULL);
  ASSERT(http_url_authority(NULL) == NULL);
}

/* --- TLS against openssl s_server ----------------------------------------- */

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t len = sizeof a;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

static int port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0)
    close(fd);
  return ok;
}

/* `openssl s_server -www` on 127.0.0.1:port; its pid, or -1. */
static pid_t start_s_server(const char *dir, int port) {
  char accept_arg[32], cert[512], key[512];
  snprintf(accept_arg, sizeof accept_arg, "127.0.0.1:%d", port);
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    execlp("openssl", "openssl", "s_server", "-quiet", "-www", "-accept",
           accept_arg, "-cert", cert, "-key", key, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; pid > 0 && i < 250; i++) {
    if (port_open(port))
      return pid;
    usleep(20000);
  }
  if (pid > 0) {
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
  }
  return -1;
}

/* A response carrying one header, as the client hands it over. */
static http_response with_retry_after(char *buf, size_t cap, const char *value) {
  http_response res;
  memset(&res, 0, sizeof res);
  size_t n = (size_t)snprintf(buf, cap, "retry-after%c%s", '\0', value) + 1;
  res.headers = buf;
  res.headers_len = n;
  res.body = "";
  return res;
}

TEST(retry_after) {
  char buf[256];
  const time_t now = 1764720000; /* 2025-12-03 00:00:00 UTC */
  http_response res = with_retry_after(buf, sizeof buf, "7");
  ASSERT_EQ(http_retry_after_ms(&res, 60000, now), 7000);
  res = with_retry_after(buf, sizeof buf, "3600");
  ASSERT_EQ(http_retry_after_ms(&res, 60000, now), 60000); /* bounded */
  res = with_retry_after(buf, sizeof buf, "99999999999999999999999");
  ASSERT_EQ(http_retry_after_ms(&res, 60000, now), 60000);
  /* An HTTP-date 12 s ahead, in the preferred form and the two obsolete ones. */
  res = with_retry_after(buf, sizeof buf, "Wed, 03 Dec 2025 00:00:12 GMT");
  ASSERT_EQ(http_retry_after_ms(&res, 60000, now), 12000);
  res = with_retry_after(buf, sizeof buf, "Wednesday, 03-Dec-25 00:00:12 GMT");
  ASSERT_EQ(http_retry_after_ms(&res, 60000, now), 12000);
  res = with_retry_after(buf, sizeof buf, "Wed Dec  3 00:00:12 2025");
  ASSERT_EQ(http_retry_after_ms(&res, 60000, now), 12000);
  /* A date far ahead is bounded too; one already past means now. */
  res = with_retry_after(buf, sizeof buf, "Thu, 01 Jan 2026 00:00:00 GMT");
  ASSERT_EQ(http_retry_after_ms(&res, 60000, now), 60000);
  res = with_retry_after(buf, sizeof buf, "Tue, 02 Dec 2025 23:59:00 GMT");
  ASSERT_EQ(http_retry_after_ms(&res, 60000, now), 0);
  /* Nothing readable: no wait asked for. */
  res = with_retry_after(buf, sizeof buf, "soon");
  ASSERT_EQ(http_retry_after_ms(&res, 60000, now), 0);
  res = with_retry_after(buf, sizeof buf, "5 minutes");
  ASSERT_EQ(http_retry_after_ms(&res, 60000, now), 0);
  res = with_retry_after(buf, sizeof buf, "-5");
  ASSERT_EQ(http_retry_after_ms(&res, 60000, now), 0);
  res.headers = NULL;
  res.headers_len = 0;
  ASSERT_EQ(http_retry_after_ms(&res, 60000, now), 0);
}

TEST(tls_verification) {
  /* make test installs openssl; a missing one is a broken set-up, not a pass. */
  if (system("command -v openssl >/dev/null 2>&1") != 0)
    fprintf(stderr, "  the openssl command is missing (scripts/deps.sh test installs it)\n");
  ASSERT_EQ(system("command -v openssl >/dev/null 2>&1"), 0);
  char dir[] = "/tmp/shelf-http-tls-XXXXXX";
  ASSERT(mkdtemp(dir) != NULL);
  char *gen = util_printf(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
      "-nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=IP:127.0.0.1,DNS:localhost "
      "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
      dir, dir);
  int gen_rc = system(gen);
  free(gen);
  ASSERT_EQ(gen_rc, 0);
  int port = free_port();
  ASSERT(port > 0);
  pid_t pid = start_s_server(dir, port);
  ASSERT(pid > 0);

  fixture f;
  got g = {0};
  char *u = util_printf("https://127.0.0.1:%d/", port);
  setup(&f, NULL); /* the system's CAs only */
  ASSERT(http_request(f.c, "GET", u, NULL, NULL, 0, on_done, &g) > 0);
  ASSERT(run_until(&f, &g.calls, 1, 10000));
  ASSERT_EQ(g.status, 0);
  ASSERT_EQ(g.curl_code, CURLE_PEER_FAILED_VERIFICATION);
  ASSERT_EQ(g.cert_rejected, 1);
  ASSERT_STR(g.error,
             "TLS: certificate verify failed (self-signed certificate)");
  got_free(&g);
  teardown(&f);

  char *ca = util_printf("%s/cert.pem", dir);
  http_options o = {.ca_file = ca};
  setup(&f, &o);
  ASSERT(http_request(f.c, "GET", u, NULL, NULL, 0, on_done, &g) > 0);
  ASSERT(run_until(&f, &g.calls, 1, 10000));
  ASSERT_EQ(g.curl_code, CURLE_OK);
  ASSERT_EQ(g.cert_rejected, 0);
  ASSERT_EQ(g.status, 200);
  ASSERT(g.error == NULL);
  ASSERT(strstr(g.body, "s_server") != NULL);
  got_free(&g);
  teardown(&f);

  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  char *rm = util_printf("rm -rf %s", dir);
  ASSERT_EQ(system(rm), 0);
  free(rm);
  free(ca);
  free(u);
}

static const test_case test_cases[] = {
    TEST_ENTRY(get_roundtrip),
    TEST_ENTRY(post_roundtrip),
    TEST_ENTRY(other_methods),
    TEST_ENTRY(parallel_requests_reuse_connections),
    TEST_ENTRY(connection_refused),
    TEST_ENTRY(server_never_answers),
    TEST_ENTRY(server_closes_without_answer),
    TEST_ENTRY(body_over_max_body),
    TEST_ENTRY(default_max_body_is_32_mib),
    TEST_ENTRY(cancel),
    TEST_ENTRY(close_with_requests_in_flight),
    TEST_ENTRY(request_cancel_and_close_from_callbacks),
    TEST_ENTRY(bad_arguments),
    TEST_ENTRY(escape),
    TEST_ENTRY(url_authority),
    TEST_ENTRY(error_text),
    TEST_ENTRY(retry_after),
    TEST_ENTRY(tls_verification),
};

TEST_MAIN()
