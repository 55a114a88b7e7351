/* fake_phoenix.c - see fake_phoenix.h. One uv_tcp_t listener, one uv_tcp_t
 * per client; handshake with OpenSSL's SHA-1 and base64. Frames from the
 * client are masked (RFC 6455 §5.3); ours are not. */
#include "fake_phoenix.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define FP_MAX_INPUT (16u << 20)

typedef struct fp_conn {
  uv_tcp_t tcp;
  fake_phoenix *fp;
  struct fp_conn *next;
  char *in;
  size_t in_len, in_cap;
  int upgraded, closing;
  char *frag; /* a fragmented message being received */
  size_t frag_len;
} fp_conn;

struct fake_phoenix {
  uv_loop_t *loop;
  uv_tcp_t listener;
  int port;
  fp_conn *conns;
  int answer_heartbeats, answer_joins, subscribed, refuse;
  char *join_error;
  int connections;
  cJSON *messages; /* every message received, in order */
  char *last_path;
  int closing, pending;
  void (*done)(void *);
  void *done_data;
};

/* --- writing ------------------------------------------------------------- */

typedef struct {
  uv_write_t req;
  char data[];
} fp_write;

static void fp_on_written(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static void fp_write_raw(fp_conn *c, const void *data, size_t len) {
  if (c->closing)
    return;
  fp_write *w = util_malloc(sizeof *w + len);
  memcpy(w->data, data, len);
  uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, fp_on_written) < 0)
    free(w);
}

static void fp_write_frame(fp_conn *c, int fin, int opcode, const void *data, size_t len) {
  unsigned char *f = util_malloc(len + 10);
  size_t h = 0;
  f[h++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
  if (len < 126) {
    f[h++] = (unsigned char)len;
  } else if (len < 65536) {
    f[h++] = 126;
    f[h++] = (unsigned char)(len >> 8);
    f[h++] = (unsigned char)len;
  } else {
    f[h++] = 127;
    for (int i = 7; i >= 0; i--)
      f[h++] = (unsigned char)((uint64_t)len >> (8 * i));
  }
  memcpy(f + h, data, len);
  fp_write_raw(c, f, h + len);
  free(f);
}

static void fp_send_text(fp_conn *c, const char *text) {
  fp_write_frame(c, 1, 1, text, strlen(text));
}

/* --- closing ------------------------------------------------------------- */

static void fp_maybe_done(fake_phoenix *fp) {
  if (!fp->closing || fp->pending)
    return;
  void (*done)(void *) = fp->done;
  void *data = fp->done_data;
  cJSON_Delete(fp->messages);
  free(fp->join_error);
  free(fp->last_path);
  free(fp);
  if (done)
    done(data);
}

static void fp_on_conn_closed(uv_handle_t *h) {
  fp_conn *c = h->data;
  fake_phoenix *fp = c->fp;
  for (fp_conn **p = &fp->conns; *p; p = &(*p)->next) {
    if (*p == c) {
      *p = c->next;
      break;
    }
  }
  free(c->in);
  free(c->frag);
  free(c);
  fp->pending--;
  fp_maybe_done(fp);
}

static void fp_conn_close(fp_conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, fp_on_conn_closed);
}

static void fp_on_shutdown(uv_shutdown_t *req, int status) {
  fp_conn *c = req->data;
  (void)status;
  free(req);
  c->closing = 0; /* let fp_conn_close run */
  fp_conn_close(c);
}

/* Close once what was written has gone out (uv_close would cancel it). */
static void fp_conn_close_gently(fp_conn *c) {
  if (c->closing)
    return;
  uv_shutdown_t *req = util_malloc(sizeof *req);
  req->data = c;
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, fp_on_shutdown) < 0) {
    free(req);
    fp_conn_close(c);
    return;
  }
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->closing = 1;
}

/* --- Phoenix ------------------------------------------------------------- */

static void fp_reply(fp_conn *c, const cJSON *msg, const char *status, cJSON *response) {
  cJSON *a = cJSON_CreateArray();
  cJSON_AddItemToArray(a, cJSON_Duplicate(cJSON_GetArrayItem(msg, 0), 1));
  cJSON_AddItemToArray(a, cJSON_Duplicate(cJSON_GetArrayItem(msg, 1), 1));
  cJSON_AddItemToArray(a, cJSON_Duplicate(cJSON_GetArrayItem(msg, 2), 1));
  cJSON_AddItemToArray(a, cJSON_CreateString("phx_reply"));
  cJSON *p = cJSON_CreateObject();
  cJSON_AddStringToObject(p, "status", status);
  cJSON_AddItemToObject(p, "response", response);
  cJSON_AddItemToArray(a, p);
  char *text = cJSON_PrintUnformatted(a);
  fp_send_text(c, text);
  free(text);
  cJSON_Delete(a);
}

static void fp_on_message(fp_conn *c, const char *text, size_t len) {
  fake_phoenix *fp = c->fp;
  cJSON *msg = cJSON_ParseWithLength(text, len);
  if (!cJSON_IsArray(msg) || cJSON_GetArraySize(msg) != 5) {
    fprintf(stderr, "fake_phoenix: not a vsn 2 frame: %.*s\n", (int)len, text);
    cJSON_Delete(msg);
    return;
  }
  cJSON_AddItemToArray(fp->messages, msg);
  const cJSON *event = cJSON_GetArrayItem(msg, 3);
  const char *ev = cJSON_IsString(event) ? event->valuestring : "";
  if (strcmp(ev, "heartbeat") == 0 && fp->answer_heartbeats) {
    fp_reply(c, msg, "ok", cJSON_CreateObject());
  } else if (strcmp(ev, "phx_join") == 0 && fp->answer_joins) {
    if (fp->join_error) {
      cJSON *r = cJSON_CreateObject();
      cJSON_AddStringToObject(r, "reason", fp->join_error);
      fp_reply(c, msg, "error", r);
      return;
    }
    const cJSON *config = cJSON_GetObjectItem(cJSON_GetArrayItem(msg, 4), "config");
    const cJSON *pc = cJSON_GetObjectItem(config, "postgres_changes");
    cJSON *out = cJSON_CreateArray();
    int i = 0;
    const cJSON *b;
    cJSON_ArrayForEach(b, pc) {
      cJSON *o = cJSON_Duplicate(b, 1);
      cJSON_AddNumberToObject(o, "id", 1000 + i++);
      cJSON_AddItemToArray(out, o);
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToObject(r, "postgres_changes", out);
    fp_reply(c, msg, "ok", r);
    if (fp->subscribed && i > 0) {
      /* As Supabase does once the subscription is in place. */
      const cJSON *join_ref = cJSON_GetArrayItem(msg, 0);
      char *sys = util_printf("[\"%s\",null,\"%s\",\"system\",{\"extension\":"
                              "\"postgres_changes\",\"status\":\"ok\",\"message\":"
                              "\"Subscribed to PostgreSQL\",\"channel\":\"shelf\"}]",
                              cJSON_IsString(join_ref) ? join_ref->valuestring : "",
                              cJSON_GetStringValue(cJSON_GetArrayItem(msg, 2)));
      fp_send_text(c, sys);
      free(sys);
    }
  }
}

/* --- reading ------------------------------------------------------------- */

static void fp_handshake(fp_conn *c) {
  fake_phoenix *fp = c->fp;
  char *end = strstr(c->in, "\r\n\r\n");
  if (!end)
    return;
  *end = '\0';
  size_t used = (size_t)(end + 4 - c->in);
  char *line_end = strstr(c->in, "\r\n");
  char path[2048] = "";
  if (line_end)
    sscanf(c->in, "GET %2047s", path);
  free(fp->last_path);
  fp->last_path = util_strdup(path);
  const char *key = NULL;
  for (char *l = line_end; l && *l; l = strstr(l + 2, "\r\n")) {
    if (strncasecmp(l + 2, "Sec-WebSocket-Key:", 18) == 0) {
      key = l + 2 + 18;
      while (*key == ' ')
        key++;
    }
  }
  if (fp->refuse || !key) {
    int st = fp->refuse ? fp->refuse : 400;
    char resp[256];
    const char *body = "{\"error\":\"refused by fake_phoenix\"}";
    snprintf(resp, sizeof resp,
             "HTTP/1.1 %d Refused\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             st, strlen(body), body);
    fp_write_raw(c, resp, strlen(resp));
    fp_conn_close_gently(c);
    return;
  }
  char k[128];
  size_t kl = strcspn(key, "\r\n");
  snprintf(k, sizeof k, "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", (int)kl, key);
  unsigned char sha[SHA_DIGEST_LENGTH];
  SHA1((const unsigned char *)k, strlen(k), sha);
  char accept[64];
  EVP_EncodeBlock((unsigned char *)accept, sha, SHA_DIGEST_LENGTH);
  char resp[256];
  snprintf(resp, sizeof resp,
           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
           accept);
  fp_write_raw(c, resp, strlen(resp));
  c->upgraded = 1;
  fp->connections++;
  memmove(c->in, c->in + used, c->in_len - used);
  c->in_len -= used;
}

/* Consume whole frames from c->in. */
static void fp_frames(fp_conn *c) {
  for (;;) {
    if (c->closing || c->in_len < 2)
      return;
    const unsigned char *b = (const unsigned char *)c->in;
    int fin = b[0] & 0x80, opcode = b[0] & 0x0f, masked = b[1] & 0x80;
    uint64_t len = b[1] & 0x7f;
    size_t h = 2;
    if (len == 126) {
      if (c->in_len < 4)
        return;
      len = (uint64_t)b[2] << 8 | b[3];
      h = 4;
    } else if (len == 127) {
      if (c->in_len < 10)
        return;
      len = 0;
      for (int i = 0; i < 8; i++)
        len = len << 8 | b[2 + i];
      h = 10;
    }
    if (len > FP_MAX_INPUT) {
      fp_conn_close(c);
      return;
    }
    unsigned char mask[4] = {0};
    if (masked) {
      if (c->in_len < h + 4)
        return;
      memcpy(mask, b + h, 4);
      h += 4;
    }
    if (c->in_len < h + len)
      return;
    char *payload = c->in + h;
    for (uint64_t i = 0; i < len; i++)
      payload[i] ^= (char)mask[i & 3];
    if (opcode == 8) {
      fp_write_frame(c, 1, 8, payload, len >= 2 ? 2 : 0);
      fp_conn_close_gently(c);
      return;
    } else if (opcode == 9) {
      fp_write_frame(c, 1, 10, payload, len);
    } else if (opcode == 1 || opcode == 0) {
      c->frag = util_realloc(c->frag, c->frag_len + len + 1);
      memcpy(c->frag + c->frag_len, payload, len);
      c->frag_len += len;
      if (fin) {
        fp_on_message(c, c->frag, c->frag_len);
        c->frag_len = 0;
      }
    }
    size_t used = h + (size_t)len;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
  }
}

static void fp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  fp_conn *c = h->data;
  (void)suggested;
  if (c->in_cap - c->in_len < 65536) {
    c->in_cap = c->in_cap ? c->in_cap * 2 : 65536 + 1;
    c->in = util_realloc(c->in, c->in_cap);
  }
  *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len - 1));
}

static void fp_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  fp_conn *c = s->data;
  (void)buf;
  if (n < 0) {
    fp_conn_close(c);
    return;
  }
  c->in_len += (size_t)n;
  c->in[c->in_len] = '\0';
  if (c->in_len > FP_MAX_INPUT) {
    fp_conn_close(c);
    return;
  }
  if (!c->upgraded)
    fp_handshake(c);
  if (c->upgraded)
    fp_frames(c);
}

static void fp_on_connection(uv_stream_t *server, int status) {
  fake_phoenix *fp = server->data;
  if (status < 0 || fp->closing)
    return;
  fp_conn *c = util_calloc(1, sizeof *c);
  c->fp = fp;
  uv_tcp_init(fp->loop, &c->tcp);
  c->tcp.data = c;
  fp->pending++;
  c->next = fp->conns;
  fp->conns = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
    fp_conn_close(c);
    return;
  }
  /* As real servers do: with Nagle, a second small frame (the system
   * message after a join reply) would wait ~40 ms for the client's ACK. */
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, fp_alloc, fp_on_read);
}

/* --- API ----------------------------------------------------------------- */

fake_phoenix *fp_new(uv_loop_t *loop) {
  fake_phoenix *fp = util_calloc(1, sizeof *fp);
  fp->loop = loop;
  fp->answer_heartbeats = 1;
  fp->answer_joins = 1;
  fp->subscribed = 1;
  fp->messages = cJSON_CreateArray();
  uv_tcp_init(loop, &fp->listener);
  fp->listener.data = fp;
  fp->pending = 1;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  struct sockaddr_in bound;
  int len = sizeof bound;
  if (uv_tcp_bind(&fp->listener, (const struct sockaddr *)&addr, 0) < 0 ||
      uv_listen((uv_stream_t *)&fp->listener, 16, fp_on_connection) < 0 ||
      uv_tcp_getsockname(&fp->listener, (struct sockaddr *)&bound, &len) < 0) {
    fp_close(fp, NULL, NULL);
    return NULL;
  }
  fp->port = ntohs(bound.sin_port);
  return fp;
}

int fp_port(const fake_phoenix *fp) { return fp->port; }

static void fp_on_listener_closed(uv_handle_t *h) {
  fake_phoenix *fp = h->data;
  fp->pending--;
  fp_maybe_done(fp);
}

void fp_close(fake_phoenix *fp, void (*done)(void *data), void *data) {
  fp->closing = 1;
  fp->done = done;
  fp->done_data = data;
  for (fp_conn *c = fp->conns; c; c = c->next)
    fp_conn_close(c);
  uv_close((uv_handle_t *)&fp->listener, fp_on_listener_closed);
}

void fp_answer_heartbeats(fake_phoenix *fp, int on) { fp->answer_heartbeats = on; }
void fp_answer_joins(fake_phoenix *fp, int on) { fp->answer_joins = on; }
void fp_send_subscribed(fake_phoenix *fp, int on) { fp->subscribed = on; }

void fp_join_error(fake_phoenix *fp, const char *reason) {
  free(fp->join_error);
  fp->join_error = reason ? util_strdup(reason) : NULL;
}

void fp_refuse(fake_phoenix *fp, int http_status) { fp->refuse = http_status; }

int fp_connections(const fake_phoenix *fp) { return fp->connections; }

int fp_count(const fake_phoenix *fp, const char *event) {
  int n = 0;
  const cJSON *m;
  cJSON_ArrayForEach(m, fp->messages) {
    const cJSON *e = cJSON_GetArrayItem(m, 3);
    if (cJSON_IsString(e) && strcmp(e->valuestring, event) == 0)
      n++;
  }
  return n;
}

const cJSON *fp_last(const fake_phoenix *fp, const char *event) {
  const cJSON *last = NULL, *m;
  cJSON_ArrayForEach(m, fp->messages) {
    const cJSON *e = cJSON_GetArrayItem(m, 3);
    if (cJSON_IsString(e) && strcmp(e->valuestring, event) == 0)
      last = m;
  }
  return last;
}

const char *fp_last_path(const fake_phoenix *fp) { return fp->last_path; }

static fp_conn *fp_newest(const fake_phoenix *fp) {
  for (fp_conn *c = fp->conns; c; c = c->next) /* newest first */
    if (c->upgraded && !c->closing)
      return c;
  return NULL;
}

int fp_open(const fake_phoenix *fp) {
  int n = 0;
  for (fp_conn *c = fp->conns; c; c = c->next)
    n += c->upgraded && !c->closing;
  return n;
}

int fp_send(fake_phoenix *fp, const char *text) {
  fp_conn *c = fp_newest(fp);
  if (!c)
    return -1;
  fp_send_text(c, text);
  return 0;
}

int fp_send_fragmented(fake_phoenix *fp, const char *text, size_t chunk) {
  fp_conn *c = fp_newest(fp);
  if (!c || chunk == 0)
    return -1;
  size_t len = strlen(text);
  for (size_t off = 0; off < len; off += chunk) {
    size_t n = len - off < chunk ? len - off : chunk;
    fp_write_frame(c, off + n >= len, off == 0 ? 1 : 0, text + off, n);
  }
  return 0;
}

int fp_close_ws(fake_phoenix *fp, int code) {
  fp_conn *c = fp_newest(fp);
  if (!c)
    return -1;
  unsigned char p[2] = {(unsigned char)(code >> 8), (unsigned char)code};
  fp_write_frame(c, 1, 8, p, 2);
  fp_conn_close_gently(c);
  return 0;
}

int fp_drop(fake_phoenix *fp) {
  fp_conn *c = fp_newest(fp);
  if (!c)
    return -1;
  fp_conn_close(c);
  return 0;
}
