/* fake_supabase.c - see fake_supabase.h. Requests are parsed with a
 * Content-Length body (what libcurl sends); connections are kept alive. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr */
#endif
#include "fake_supabase.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define FAKE_SB_MAX_INPUT (1u << 20)

typedef struct fsb_conn {
  uv_tcp_t tcp;
  fake_sb *f;
  struct fsb_conn *next;
  char *in;
  size_t len, cap;
  int closing;
} fsb_conn;

struct fake_sb {
  uv_tcp_t listener;
  int port;
  int open;
  int stopping;
  fsb_conn *conns;
  fake_sb_route route;
  void *data;
  fake_sb_req reqs[FAKE_SB_MAX_REQS];
  int nreqs;
  char *extra; /* header lines added to every answer ("Name: v\r\n"...) */
};

static void fsb_wipe_free(char *s, size_t n) {
  if (s) {
    explicit_bzero(s, n);
    free(s);
  }
}

static void fsb_maybe_free(fake_sb *f) {
  if (!f->stopping || f->open > 0)
    return;
  for (int i = 0; i < f->nreqs; i++) {
    fsb_wipe_free(f->reqs[i].target, strlen(f->reqs[i].target));
    fsb_wipe_free(f->reqs[i].headers, strlen(f->reqs[i].headers));
    fsb_wipe_free(f->reqs[i].body, strlen(f->reqs[i].body));
  }
  free(f->extra);
  free(f);
}

static void fsb_conn_closed(uv_handle_t *h) {
  fsb_conn *c = h->data;
  fake_sb *f = c->f;
  for (fsb_conn **p = &f->conns; *p; p = &(*p)->next) {
    if (*p == c) {
      *p = c->next;
      break;
    }
  }
  fsb_wipe_free(c->in, c->cap);
  free(c);
  f->open--;
  fsb_maybe_free(f);
}

static void fsb_conn_close(fsb_conn *c) {
  if (!c->closing) {
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, fsb_conn_closed);
  }
}

typedef struct {
  uv_write_t req;
  char *data;
  size_t len;
} fsb_write;

static void fsb_written(uv_write_t *w, int status) {
  fsb_write *fw = (fsb_write *)w;
  (void)status;
  fsb_wipe_free(fw->data, fw->len);
  free(fw);
}

/* head_only: a HEAD's answer, whose body is never sent. */
static void fsb_answer(fsb_conn *c, int status, char *body, int head_only) {
  size_t blen = body ? strlen(body) : 0;
  fsb_write *w = util_calloc(1, sizeof *w);
  w->data = util_printf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%s"
                        "Content-Length: %zu\r\n\r\n%s",
                        status, c->f->extra ? c->f->extra : "", blen,
                        body && !head_only ? body : "");
  w->len = strlen(w->data);
  fsb_wipe_free(body, blen);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, fsb_written) < 0) {
    fsb_wipe_free(w->data, w->len);
    free(w);
    fsb_conn_close(c);
  }
}

/* Take every whole request in c->in. */
static void fsb_consume(fsb_conn *c) {
  fake_sb *f = c->f;
  for (;;) {
    char *end = c->len ? memmem(c->in, c->len, "\r\n\r\n", 4) : NULL;
    if (!end)
      return;
    size_t head = (size_t)(end - c->in) + 4;
    size_t clen = 0;
    char *cl = strcasestr(c->in, "\r\ncontent-length:");
    if (cl && cl < end)
      clen = strtoul(cl + 17, NULL, 10);
    if (c->len < head + clen)
      return;
    fake_sb_req *rq = f->nreqs < FAKE_SB_MAX_REQS ? &f->reqs[f->nreqs++] : NULL;
    if (!rq) {
      fsb_conn_close(c);
      return;
    }
    char *line_end = strstr(c->in, "\r\n");
    char *sp1 = memchr(c->in, ' ', (size_t)(line_end - c->in));
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
    snprintf(rq->method, sizeof rq->method, "%.*s", sp1 ? (int)(sp1 - c->in) : 0, c->in);
    rq->target = util_printf("%.*s", sp2 ? (int)(sp2 - sp1 - 1) : 0, sp1 ? sp1 + 1 : "");
    rq->headers = util_printf("%.*s", (int)(end - line_end), line_end);
    rq->body = util_printf("%.*s", (int)clen, c->in + head);
    int status = 404;
    char *body = NULL;
    f->route(f->data, rq, &status, &body);
    fsb_answer(c, status, body, strcmp(rq->method, "HEAD") == 0);
    size_t used = head + clen;
    memmove(c->in, c->in + used, c->len - used);
    c->len -= used;
    explicit_bzero(c->in + c->len, used);
  }
}

static void fsb_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  fsb_conn *c = h->data;
  (void)suggested;
  if (c->cap - c->len < 65536 && c->cap < FAKE_SB_MAX_INPUT) {
    size_t cap = c->cap ? c->cap * 2 : 131072;
    char *grown = util_calloc(1, cap);
    if (c->len)
      memcpy(grown, c->in, c->len);
    fsb_wipe_free(c->in, c->cap);
    c->in = grown;
    c->cap = cap;
  }
  buf->base = c->in + c->len;
  buf->len = c->cap - c->len - 1;
}

static void fsb_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  fsb_conn *c = s->data;
  (void)buf;
  if (n < 0) {
    fsb_conn_close(c);
    return;
  }
  c->len += (size_t)n;
  c->in[c->len] = '\0';
  fsb_consume(c);
}

static void fsb_on_connection(uv_stream_t *l, int status) {
  fake_sb *f = l->data;
  if (status < 0)
    return;
  fsb_conn *c = util_calloc(1, sizeof *c);
  c->f = f;
  uv_tcp_init(l->loop, &c->tcp);
  c->tcp.data = c;
  f->open++;
  c->next = f->conns;
  f->conns = c;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, fsb_alloc, fsb_read) < 0)
    fsb_conn_close(c);
}

static void fsb_listener_closed(uv_handle_t *h) {
  fake_sb *f = h->data;
  f->open--;
  fsb_maybe_free(f);
}

fake_sb *fake_sb_start(uv_loop_t *loop, fake_sb_route route, void *data) {
  fake_sb *f = util_calloc(1, sizeof *f);
  f->route = route;
  f->data = data;
  uv_tcp_init(loop, &f->listener);
  f->listener.data = f;
  f->open = 1;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if (uv_tcp_bind(&f->listener, (const struct sockaddr *)&addr, 0) < 0 ||
      uv_listen((uv_stream_t *)&f->listener, 16, fsb_on_connection) < 0)
    abort();
  struct sockaddr_in got;
  int len = sizeof got;
  uv_tcp_getsockname(&f->listener, (struct sockaddr *)&got, &len);
  f->port = ntohs(got.sin_port);
  return f;
}

int fake_sb_port(const fake_sb *f) { return f->port; }
int fake_sb_count(const fake_sb *f) { return f->nreqs; }
const fake_sb_req *fake_sb_get(const fake_sb *f, int i) {
  return i >= 0 && i < f->nreqs ? &f->reqs[i] : NULL;
}

int fake_sb_count_prefix(const fake_sb *f, const char *prefix) {
  int n = 0;
  for (int i = 0; i < f->nreqs; i++)
    n += strncmp(f->reqs[i].target, prefix, strlen(prefix)) == 0;
  return n;
}

const fake_sb_req *fake_sb_last(const fake_sb *f, const char *prefix) {
  for (int i = f->nreqs - 1; i >= 0; i--)
    if (strncmp(f->reqs[i].target, prefix, strlen(prefix)) == 0)
      return &f->reqs[i];
  return NULL;
}

char *fake_sb_header(const fake_sb_req *rq, const char *name) {
  size_t n = strlen(name);
  for (const char *p = rq->headers; p && *p;) {
    while (*p == '\r' || *p == '\n')
      p++;
    const char *eol = strstr(p, "\r\n");
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    if (len > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
      const char *v = p + n + 1;
      while (*v == ' ')
        v++;
      return util_printf("%.*s", (int)(len - (size_t)(v - p)), v);
    }
    p += len;
  }
  return NULL;
}

void fake_sb_stop(fake_sb *f) {
  f->stopping = 1;
  uv_close((uv_handle_t *)&f->listener, fsb_listener_closed);
  for (fsb_conn *c = f->conns; c; c = c->next)
    fsb_conn_close(c);
}

void fake_sb_set_headers(fake_sb *f, const char *lines) {
  free(f->extra);
  f->extra = lines ? util_strdup(lines) : NULL;
}
