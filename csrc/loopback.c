/* loopback.c - the sign-in redirect listener (see loopback.h).
 *
 * One uv_tcp_t listens; each accepted connection has its own uv_tcp_t, a
 * bounded buffer and a timer. Only the request line is read (headers are
 * skipped up to the blank line); the target is parsed with libcurl's URL
 * API. Every response closes its connection. The listener is freed once the
 * server handle and every connection's handles have closed.
 */
#include "loopback.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "log.h"
#include "util.h"

typedef struct lb_conn {
  loopback *lb;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t write;
  char *response;
  char buf[LOOPBACK_MAX_REQUEST + 1];
  size_t len;
  int writing;  /* the answer is on its way; close after it */
  int closing;
  int handles;  /* open handles of this connection */
  list_node link; /* in lb->conns until freed */
} lb_conn;

struct loopback {
  uv_tcp_t server;
  loopback_cb cb;
  void *data;
  list_node conns; /* lb_conn.link */
  int nconns;
  int closing;
  int handles; /* server + every connection's handles */
  void (*closed)(void *);
  void *closed_data;
};

/* --- freeing ------------------------------------------------------------------ */

static void lb_maybe_free(loopback *lb) {
  if (!lb->closing || lb->handles > 0)
    return;
  void (*closed)(void *) = lb->closed;
  void *data = lb->closed_data;
  free(lb);
  if (closed)
    closed(data);
}

static void lb_conn_handle_closed(uv_handle_t *h) {
  lb_conn *c = h->data;
  loopback *lb = c->lb;
  lb->handles--;
  if (--c->handles == 0) {
    list_remove(&c->link);
    lb->nconns--;
    /* The request may hold a sign-in code: not left in freed memory. */
    explicit_bzero(c->buf, sizeof c->buf);
    if (c->response) {
      explicit_bzero(c->response, strlen(c->response));
      free(c->response);
    }
    free(c);
  }
  lb_maybe_free(lb);
}

static void lb_conn_close(lb_conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, lb_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, lb_conn_handle_closed);
}

/* --- answering ----------------------------------------------------------------- */

/* Text for an HTML page: the five characters HTML gives meaning escaped. */
static char *lb_html_escape(const char *s) {
  size_t n = 0;
  for (const char *p = s; *p; p++)
    n += strchr("<>&\"'", *p) ? 6 : 1;
  char *out = util_malloc(n + 1), *o = out;
  for (const char *p = s; *p; p++) {
    switch (*p) {
    case '<': o += sprintf(o, "&lt;"); break;
    case '>': o += sprintf(o, "&gt;"); break;
    case '&': o += sprintf(o, "&amp;"); break;
    case '"': o += sprintf(o, "&quot;"); break;
    case '\'': o += sprintf(o, "&#39;"); break;
    default: *o++ = *p;
    }
  }
  *o = '\0';
  return out;
}

static void lb_on_written(uv_write_t *w, int status) {
  lb_conn *c = w->data;
  (void)status;
  c->writing = 0;
  lb_conn_close(c);
}

static void lb_respond(lb_conn *c, int status, const char *reason, const char *text) {
  char *esc = lb_html_escape(text);
  char *body = util_printf("<!doctype html><html><head><meta charset=\"utf-8\">"
                           "<title>shelf.nvim</title></head><body><p>%s</p></body></html>\n",
                           esc);
  free(esc);
  /* no-referrer: the address bar holds the code, no other site needs it. */
  c->response = util_printf("HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
                            "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                            "Referrer-Policy: no-referrer\r\nConnection: close\r\n\r\n%s",
                            status, reason, strlen(body), body);
  free(body);
  uv_read_stop((uv_stream_t *)&c->tcp);
  /* The timer runs on: a browser that never reads the answer is dropped. */
  uv_buf_t buf = uv_buf_init(c->response, (unsigned)strlen(c->response));
  c->write.data = c;
  c->writing = uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, lb_on_written) == 0;
  if (!c->writing)
    lb_conn_close(c);
}

/* --- the query ----------------------------------------------------------------- */

char *loopback_url_param(const char *url, const char *name) {
  CURLU *u = curl_url();
  char *query = NULL;
  char *value = NULL;
  if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_QUERY, &query, 0) != CURLUE_OK || !query) {
    curl_url_cleanup(u);
    return NULL;
  }
  size_t nlen = strlen(name);
  CURL *easy = curl_easy_init();
  /* Each name=value pair separately: a decoded value may hold '&'. */
  for (char *pair = query; pair && *pair && !value;) {
    char *amp = strchr(pair, '&');
    if (amp)
      *amp = '\0';
    if (strncmp(pair, name, nlen) == 0 && pair[nlen] == '=') {
      char *v = pair + nlen + 1;
      for (char *p = v; *p; p++) {
        if (*p == '+')
          *p = ' '; /* form encoding, as Auth's redirects use */
      }
      int n = 0;
      char *dec = easy ? curl_easy_unescape(easy, v, 0, &n) : NULL;
      if (dec && (size_t)n == strlen(dec)) /* no NUL hidden inside */
        value = util_strdup(dec);
      if (dec) {
        explicit_bzero(dec, (size_t)n);
        curl_free(dec);
      }
    }
    pair = amp ? amp + 1 : NULL;
  }
  curl_easy_cleanup(easy);
  explicit_bzero(query, strlen(query));
  curl_free(query);
  curl_url_cleanup(u);
  return value;
}

static char *lb_path(const char *url) {
  CURLU *u = curl_url();
  char *path = NULL;
  char *out = NULL;
  if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK)
    out = util_strdup(path);
  curl_free(path);
  curl_url_cleanup(u);
  return out;
}

static void lb_free_secret(char *s) {
  if (s) {
    explicit_bzero(s, strlen(s));
    free(s);
  }
}

/* A whole request head is in c->buf: answer it. */
static void lb_handle(lb_conn *c) {
  loopback *lb = c->lb;
  /* "GET /target HTTP/1.1" */
  char *line_end = strstr(c->buf, "\r\n");
  if (line_end)
    *line_end = '\0';
  char *sp1 = strchr(c->buf, ' ');
  char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
  if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp1[1] != '/') {
    lb_respond(c, 400, "Bad Request", "This is not a request shelf.nvim understands.");
    return;
  }
  *sp2 = '\0';
  char *url = util_printf("http://127.0.0.1%s", sp1 + 1);
  char *path = lb_path(url);
  loopback_answer a = {0};
  char *code = NULL, *state = NULL, *error = NULL, *desc = NULL;
  if (path && strcmp(path, LOOPBACK_PATH) == 0 && strncmp(c->buf, "GET ", 4) == 0) {
    code = loopback_url_param(url, "code");
    state = loopback_url_param(url, "state");
    error = loopback_url_param(url, "error");
    desc = loopback_url_param(url, "error_description");
  }
  free(path);
  lb_free_secret(url);
  if ((!code && !error) || lb->closing) {
    /* Not the redirect (a favicon, a probe, a stray visit): wait on. */
    lb_respond(c, 404, "Not Found", "Not found.");
  } else {
    a.code = code;
    a.state = state;
    a.error = error;
    a.error_description = desc;
    char why[512] = "";
    c->writing = 1; /* a loopback_close from the callback leaves this one to answer */
    loopback_verdict v = lb->cb(lb->data, &a, why, sizeof why);
    if (v == LOOPBACK_ACCEPTED)
      lb_respond(c, 200, "OK", "shelf.nvim got the sign-in. You can close this tab and go "
                               "back to Neovim.");
    else {
      char *msg = util_printf("Sign-in failed: %s. Go back to Neovim to try again.", why);
      lb_respond(c, 400, "Bad Request", msg);
      free(msg);
    }
  }
  lb_free_secret(code);
  lb_free_secret(state);
  free(error);
  free(desc);
}

/* --- reading ------------------------------------------------------------------- */

static void lb_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  lb_conn *c = h->data;
  (void)suggested;
  buf->base = c->buf + c->len;
  buf->len = LOOPBACK_MAX_REQUEST - c->len;
}

static void lb_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  lb_conn *c = s->data;
  (void)buf;
  if (nread < 0) {
    lb_conn_close(c);
    return;
  }
  c->len += (size_t)nread;
  c->buf[c->len] = '\0';
  if (strstr(c->buf, "\r\n\r\n") || strstr(c->buf, "\n\n")) {
    lb_handle(c);
  } else if (c->len >= LOOPBACK_MAX_REQUEST) {
    lb_respond(c, 431, "Request Header Fields Too Large", "The request is too large.");
  }
}

static void lb_on_timeout(uv_timer_t *t) { lb_conn_close(t->data); }

static void lb_on_connection(uv_stream_t *server, int status) {
  loopback *lb = server->data;
  if (status < 0 || lb->closing)
    return;
  lb_conn *c = util_calloc(1, sizeof *c);
  c->lb = lb;
  uv_tcp_init(server->loop, &c->tcp);
  uv_timer_init(server->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles = 2;
  lb->handles += 2;
  list_push_back(&lb->conns, &c->link);
  lb->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || lb->nconns > LOOPBACK_MAX_CONNECTIONS) {
    lb_conn_close(c);
    return;
  }
  uv_timer_start(&c->timer, lb_on_timeout, LOOPBACK_REQUEST_TIMEOUT_MS, 0);
  if (uv_read_start((uv_stream_t *)&c->tcp, lb_alloc, lb_on_read) < 0)
    lb_conn_close(c);
}

/* --- life cycle ------------------------------------------------------------------ */

static void lb_server_closed(uv_handle_t *h) {
  loopback *lb = h->data;
  lb->handles--;
  lb_maybe_free(lb);
}

loopback *loopback_open(uv_loop_t *loop, unsigned port, loopback_cb cb, void *data,
                        unsigned *port_out, char **err) {
  *err = NULL;
  if (port > 65535) {
    *err = util_printf("the port %u is not a TCP port (0..65535)", port);
    return NULL;
  }
  loopback *lb = util_calloc(1, sizeof *lb);
  lb->cb = cb;
  lb->data = data;
  list_init(&lb->conns);
  uv_tcp_init(loop, &lb->server);
  lb->server.data = lb;
  lb->handles = 1;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", (int)port, &addr);
  /* libuv may report a taken port at bind or only at listen. */
  int rc = uv_tcp_bind(&lb->server, (const struct sockaddr *)&addr, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&lb->server, LOOPBACK_MAX_CONNECTIONS, lb_on_connection);
  struct sockaddr_storage got;
  int len = sizeof got;
  if (rc == 0)
    rc = uv_tcp_getsockname(&lb->server, (struct sockaddr *)&got, &len);
  if (rc < 0) {
    *err = rc == UV_EADDRINUSE
               ? util_printf("port %u on 127.0.0.1 is taken (by another program, or another "
                             "Neovim signing in)", port)
               : util_printf("cannot listen on 127.0.0.1:%u: %s", port, uv_strerror(rc));
    loopback_close(lb, NULL, NULL);
    return NULL;
  }
  *port_out = ntohs(((struct sockaddr_in *)&got)->sin_port);
  log_info("sign-in: listening on 127.0.0.1:%u for the browser", *port_out);
  return lb;
}

void loopback_close(loopback *lb, void (*closed)(void *), void *data) {
  if (!lb || lb->closing)
    return;
  lb->closing = 1;
  lb->closed = closed;
  lb->closed_data = data;
  uv_close((uv_handle_t *)&lb->server, lb_server_closed);
  list_node *n;
  list_for_each(n, &lb->conns) {
    lb_conn *c = list_entry(n, lb_conn, link);
    if (!c->writing)
      lb_conn_close(c); /* unlinks it only in a close callback, later */
  }
}
