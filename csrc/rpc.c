/* rpc.c - the msgpack-RPC endpoint: a bounded framer in front of msgpack-c
 * on the read side, one uv_write per message on the write side. */
#include "rpc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define RPC_READ_CHUNK (64u << 10)

struct rpc {
  uv_pipe_t in, out;
  uv_shutdown_t shutdown;
  rpc_handlers h;
  void *data;
  /* Incoming bytes: [0, len) hold the current message and what follows. */
  unsigned char *inbuf;
  size_t len, cap;
  rpc_frame frame;
  int dead;        /* on_close was called; ignore further input */
  int closing;
  int open_handles;
  size_t pending;  /* bytes in uv_write requests not yet completed */
  msgpack_sbuffer sbuf;
  msgpack_packer pk;
  void (*closed)(void *);
  void *closed_data;
};

typedef struct {
  uv_write_t req;
  rpc *r;
  char *data;
  size_t size;
} rpc_write_req;

/* --- framing --------------------------------------------------------------- */

void rpc_frame_reset(rpc_frame *f, size_t max) {
  f->pos = 0;
  f->depth = 0;
  f->max = max;
}

const char *rpc_frame_strerror(int rc) {
  switch (rc) {
  case RPC_FRAME_TOOBIG:
    return "message larger than the limit";
  case RPC_FRAME_TOODEEP:
    return "message nested too deeply";
  case RPC_FRAME_BADBYTE:
    return "invalid msgpack byte 0xc1";
  default:
    return "ok";
  }
}

static uint64_t rpc_be(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

/* Header of the value starting at p[0]: its header size, payload size (for
 * scalars, strings, bins, exts) or element count (containers, maps counting
 * keys and values). `need` is how many header bytes must be present to read
 * the lengths. */
typedef struct {
  int need;      /* header bytes */
  int lenbytes;  /* bytes of the length field after the type byte */
  int extra;     /* fixed bytes after the length field (ext type byte) */
  uint64_t fixed; /* payload size known from the type byte alone */
  int container; /* 1 array, 2 map, 0 scalar */
  int bad;
} rpc_hdr;

static rpc_hdr rpc_header(unsigned char b) {
  rpc_hdr h = {1, 0, 0, 0, 0, 0};
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
    return h;
  if ((b & 0xf0) == 0x80) {
    h.container = 2;
    h.fixed = b & 0x0f;
    return h;
  }
  if ((b & 0xf0) == 0x90) {
    h.container = 1;
    h.fixed = b & 0x0f;
    return h;
  }
  if ((b & 0xe0) == 0xa0) {
    h.fixed = b & 0x1f;
    return h;
  }
  switch (b) {
  case 0xc4: case 0xd9: h.lenbytes = 1; break;
  case 0xc5: case 0xda: h.lenbytes = 2; break;
  case 0xc6: case 0xdb: h.lenbytes = 4; break;
  case 0xc7: h.lenbytes = 1; h.extra = 1; break;
  case 0xc8: h.lenbytes = 2; h.extra = 1; break;
  case 0xc9: h.lenbytes = 4; h.extra = 1; break;
  case 0xca: h.fixed = 4; break;
  case 0xcb: h.fixed = 8; break;
  case 0xcc: case 0xd0: h.fixed = 1; break;
  case 0xcd: case 0xd1: h.fixed = 2; break;
  case 0xce: case 0xd2: h.fixed = 4; break;
  case 0xcf: case 0xd3: h.fixed = 8; break;
  case 0xd4: h.fixed = 2; break;
  case 0xd5: h.fixed = 3; break;
  case 0xd6: h.fixed = 5; break;
  case 0xd7: h.fixed = 9; break;
  case 0xd8: h.fixed = 17; break;
  case 0xdc: h.lenbytes = 2; h.container = 1; break;
  case 0xdd: h.lenbytes = 4; h.container = 1; break;
  case 0xde: h.lenbytes = 2; h.container = 2; break;
  case 0xdf: h.lenbytes = 4; h.container = 2; break;
  default: h.bad = 1; break; /* 0xc1 */
  }
  h.need = 1 + h.lenbytes + h.extra;
  return h;
}

int rpc_frame_scan(rpc_frame *f, const unsigned char *buf, size_t len) {
  for (;;) {
    if (f->pos >= len)
      return RPC_FRAME_MORE;
    rpc_hdr h = rpc_header(buf[f->pos]);
    if (h.bad)
      return RPC_FRAME_BADBYTE;
    if (f->pos + (size_t)h.need > f->max)
      return RPC_FRAME_TOOBIG;
    if (f->pos + (size_t)h.need > len)
      return RPC_FRAME_MORE;
    uint64_t n = h.lenbytes ? rpc_be(buf + f->pos + 1, h.lenbytes) : h.fixed;
    if (h.container) {
      uint64_t elems = h.container == 2 ? n * 2 : n;
      /* Every element takes at least one byte. */
      if (elems > f->max || f->pos + h.need + elems > f->max)
        return RPC_FRAME_TOOBIG;
      f->pos += (size_t)h.need;
      if (elems > 0) {
        if (f->depth >= RPC_MAX_DEPTH)
          return RPC_FRAME_TOODEEP;
        f->left[f->depth++] = elems;
        continue;
      }
    } else {
      if (n > f->max || f->pos + h.need + n > f->max)
        return RPC_FRAME_TOOBIG;
      if (f->pos + h.need + n > len)
        return RPC_FRAME_MORE;
      f->pos += (size_t)(h.need + n);
    }
    /* A value is complete; it may complete its containers too. */
    for (;;) {
      if (f->depth == 0)
        return RPC_FRAME_DONE;
      if (--f->left[f->depth - 1] > 0)
        break;
      f->depth--;
    }
  }
}

/* --- dispatch -------------------------------------------------------------- */

static void rpc_fail(rpc *r, const char *why) {
  if (r->dead)
    return;
  r->dead = 1;
  uv_read_stop((uv_stream_t *)&r->in);
  if (r->h.on_close)
    r->h.on_close(r->data, why);
}

static int rpc_copy_method(const msgpack_object *o, char *out) {
  const char *p;
  uint32_t n;
  if (o->type == MSGPACK_OBJECT_STR) {
    p = o->via.str.ptr;
    n = o->via.str.size;
  } else if (o->type == MSGPACK_OBJECT_BIN) {
    p = o->via.bin.ptr;
    n = o->via.bin.size;
  } else {
    return -1;
  }
  if (n == 0 || n > RPC_MAX_METHOD || memchr(p, '\0', n))
    return -1;
  memcpy(out, p, n);
  out[n] = '\0';
  return 0;
}

static void rpc_dispatch(rpc *r, const msgpack_object *msg) {
  char method[RPC_MAX_METHOD + 1];
  if (msg->type != MSGPACK_OBJECT_ARRAY || msg->via.array.size < 3 ||
      msg->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    log_warn("rpc: ignored a message that is not a msgpack-RPC array");
    return;
  }
  const msgpack_object *a = msg->via.array.ptr;
  uint64_t type = a[0].via.u64;
  if (type == 0 && msg->via.array.size == 4) {
    if (a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        a[1].via.u64 > UINT32_MAX) {
      log_warn("rpc: ignored a request with an invalid id");
      return;
    }
    uint32_t msgid = (uint32_t)a[1].via.u64;
    if (rpc_copy_method(&a[2], method) < 0 ||
        a[3].type != MSGPACK_OBJECT_ARRAY) {
      rpc_begin_response(r, msgid, "invalid request: method must be a short "
                                   "string and params an array");
      rpc_send(r);
      return;
    }
    r->h.on_request(r->data, msgid, method, &a[3]);
  } else if (type == 2 && msg->via.array.size == 3) {
    if (rpc_copy_method(&a[1], method) < 0 ||
        a[2].type != MSGPACK_OBJECT_ARRAY) {
      log_warn("rpc: ignored an invalid notification");
      return;
    }
    r->h.on_notify(r->data, method, &a[2]);
  } else if (type == 1 && msg->via.array.size == 4) {
    /* shelfd never sends requests, so no response is expected. */
    log_warn("rpc: ignored a response to a request never sent");
  } else {
    log_warn("rpc: ignored a message of unknown type %llu",
             (unsigned long long)type);
  }
}

static void rpc_consume(rpc *r) {
  size_t start = 0;
  while (!r->dead) {
    int rc = rpc_frame_scan(&r->frame, r->inbuf + start, r->len - start);
    if (rc == RPC_FRAME_MORE)
      break;
    if (rc < 0) {
      char *why = util_printf("rpc: input rejected: %s", rpc_frame_strerror(rc));
      rpc_fail(r, why);
      free(why);
      return;
    }
    size_t n = r->frame.pos;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int ur = msgpack_unpack_next(&u, (const char *)r->inbuf + start, n, &off);
    if (ur == MSGPACK_UNPACK_SUCCESS && off == n) {
      rpc_dispatch(r, &u.data);
    } else {
      /* The framer accepted it, so this is a malformed value inside a
       * well-framed message: skip just this message. */
      log_warn("rpc: skipped a malformed message (%zu bytes)", n);
    }
    msgpack_unpacked_destroy(&u);
    start += n;
    rpc_frame_reset(&r->frame, RPC_MAX_MESSAGE);
  }
  if (start > 0) {
    memmove(r->inbuf, r->inbuf + start, r->len - start);
    r->len -= start;
    /* Messages may carry a password or a sign-in code: what was handled
     * is overwritten by what is left, and the rest zeroed. */
    explicit_bzero(r->inbuf + r->len, start);
  }
}

/* --- libuv plumbing -------------------------------------------------------- */

/* Free the input buffer; what is left of a message in it is wiped first. */
static void rpc_free_inbuf(rpc *r) {
  if (r->inbuf)
    explicit_bzero(r->inbuf, r->len);
  free(r->inbuf);
}

static void rpc_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  rpc *r = h->data;
  (void)suggested;
  if (r->cap - r->len < RPC_READ_CHUNK) {
    size_t cap = r->cap ? r->cap : RPC_READ_CHUNK;
    while (cap - r->len < RPC_READ_CHUNK)
      cap *= 2;
    /* Not realloc: it would free the old block with a partial message in it. */
    unsigned char *grown = util_malloc(cap);
    if (r->len)
      memcpy(grown, r->inbuf, r->len);
    rpc_free_inbuf(r);
    r->inbuf = grown;
    r->cap = cap;
  }
  buf->base = (char *)r->inbuf + r->len;
  buf->len = r->cap - r->len;
}

static void rpc_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  rpc *r = s->data;
  (void)buf;
  if (nread == UV_EOF) {
    rpc_fail(r, "rpc: the editor closed the channel");
    return;
  }
  if (nread < 0) {
    char *why = util_printf("rpc: read failed: %s", uv_strerror((int)nread));
    rpc_fail(r, why);
    free(why);
    return;
  }
  r->len += (size_t)nread;
  rpc_consume(r);
  /* A message that never completes must not keep its buffer at 64 MiB; the
   * framer already bounds it, and a finished one gives memory back here. */
  if (r->len == 0 && r->cap > 4 * RPC_READ_CHUNK) {
    rpc_free_inbuf(r);
    r->inbuf = NULL;
    r->cap = 0;
  }
}

int rpc_open(rpc **out, uv_loop_t *loop, int in_fd, int out_fd,
             const rpc_handlers *h, void *data) {
  rpc *r = util_calloc(1, sizeof *r);
  r->h = *h;
  r->data = data;
  rpc_frame_reset(&r->frame, RPC_MAX_MESSAGE);
  msgpack_sbuffer_init(&r->sbuf);
  msgpack_packer_init(&r->pk, &r->sbuf, msgpack_sbuffer_write);
  int in_taken = 0, out_taken = 0;
  int rc = uv_pipe_init(loop, &r->in, 0);
  if (rc == 0)
    rc = uv_pipe_init(loop, &r->out, 0);
  if (rc == 0 && (rc = uv_pipe_open(&r->in, in_fd)) == 0)
    in_taken = 1;
  if (rc == 0 && (rc = uv_pipe_open(&r->out, out_fd)) == 0)
    out_taken = 1;
  if (rc < 0) {
    /* The caller gave both descriptors away: close the ones libuv did not
     * take (libuv itself never closes stdio). */
    if (!in_taken && in_fd > STDERR_FILENO)
      close(in_fd);
    if (!out_taken && out_fd > STDERR_FILENO)
      close(out_fd);
    /* Both handles were initialised (init cannot fail on Unix); closing
     * them is the only way to free r, so hand r to rpc_close. */
    r->in.data = r->out.data = r;
    r->dead = 1;
    *out = NULL;
    rpc_close(r, NULL, NULL);
    return rc;
  }
  r->in.data = r->out.data = r;
  rc = uv_read_start((uv_stream_t *)&r->in, rpc_alloc, rpc_read);
  if (rc < 0) {
    r->dead = 1;
    *out = NULL;
    rpc_close(r, NULL, NULL);
    return rc;
  }
  *out = r;
  return 0;
}

static void rpc_reset_sbuf(rpc *r) { msgpack_sbuffer_clear(&r->sbuf); }

msgpack_packer *rpc_begin_response(rpc *r, uint32_t msgid, const char *error) {
  rpc_reset_sbuf(r);
  msgpack_pack_array(&r->pk, 4);
  msgpack_pack_int(&r->pk, 1);
  msgpack_pack_uint32(&r->pk, msgid);
  if (error) {
    size_t n = strlen(error);
    msgpack_pack_str(&r->pk, n);
    msgpack_pack_str_body(&r->pk, error, n);
    msgpack_pack_nil(&r->pk);
  } else {
    msgpack_pack_nil(&r->pk);
  }
  return &r->pk;
}

msgpack_packer *rpc_begin_notify(rpc *r, const char *method, size_t nparams) {
  rpc_reset_sbuf(r);
  size_t n = strlen(method);
  msgpack_pack_array(&r->pk, 3);
  msgpack_pack_int(&r->pk, 2);
  msgpack_pack_str(&r->pk, n);
  msgpack_pack_str_body(&r->pk, method, n);
  msgpack_pack_array(&r->pk, nparams);
  return &r->pk;
}

static void rpc_written(uv_write_t *req, int status) {
  rpc_write_req *w = (rpc_write_req *)req;
  rpc *r = w->r;
  r->pending -= w->size;
  if (status < 0 && status != UV_ECANCELED)
    rpc_fail(r, status == UV_EPIPE ? "rpc: the editor closed the channel"
                                   : "rpc: write failed");
  free(w->data);
  free(w);
}

int rpc_send(rpc *r) {
  size_t size = r->sbuf.size; /* release() zeroes it */
  char *data = msgpack_sbuffer_release(&r->sbuf);
  if (r->closing || r->dead) {
    free(data);
    return UV_EPIPE;
  }
  rpc_write_req *w = util_malloc(sizeof *w);
  w->r = r;
  w->data = data;
  w->size = size;
  uv_buf_t buf = uv_buf_init(data, (unsigned int)size);
  int rc = uv_write(&w->req, (uv_stream_t *)&r->out, &buf, 1, rpc_written);
  if (rc < 0) {
    free(data);
    free(w);
    return rc;
  }
  r->pending += size;
  return 0;
}

size_t rpc_pending(const rpc *r) { return r->pending; }

static void rpc_handle_closed(uv_handle_t *h) {
  rpc *r = h->data;
  if (--r->open_handles > 0)
    return;
  void (*closed)(void *) = r->closed;
  void *data = r->closed_data;
  msgpack_sbuffer_destroy(&r->sbuf);
  rpc_free_inbuf(r);
  free(r);
  if (closed)
    closed(data);
}

static void rpc_close_handles(rpc *r) {
  r->open_handles = 2;
  uv_close((uv_handle_t *)&r->in, rpc_handle_closed);
  uv_close((uv_handle_t *)&r->out, rpc_handle_closed);
}

static void rpc_flushed(uv_shutdown_t *req, int status) {
  (void)status;
  rpc_close_handles(req->data);
}

void rpc_close(rpc *r, void (*closed)(void *), void *data) {
  if (r->closing)
    return;
  r->closing = 1;
  r->closed = closed;
  r->closed_data = data;
  uv_read_stop((uv_stream_t *)&r->in);
  r->shutdown.data = r;
  /* Let queued writes (a last status, say) reach the editor first. */
  if (uv_is_writable((uv_stream_t *)&r->out) &&
      uv_shutdown(&r->shutdown, (uv_stream_t *)&r->out, rpc_flushed) == 0)
    return;
  rpc_close_handles(r);
}
