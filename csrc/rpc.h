/* rpc.h - msgpack-RPC over a pair of pipes (stdin/stdout of shelfd).
 *
 * The reader frames the byte stream itself before msgpack-c sees it, so a
 * message is only decoded once it is complete, and never when it is larger
 * than RPC_MAX_MESSAGE or nested deeper than RPC_MAX_DEPTH: a hostile header
 * cannot make msgpack-c allocate gigabytes. The layer knows no domain words:
 * it hands requests and notifications to callbacks and sends what it is
 * given. Outgoing messages are packed in place with rpc_begin_*() +
 * rpc_send().
 *
 * Memory: the endpoint owns its buffers and both descriptors and frees them
 * in rpc_close. Method names and params handed to the handlers are borrowed
 * for the call; a packer returned by rpc_begin_* is the endpoint's, valid
 * until rpc_send. */
#ifndef SHELF_RPC_H
#define SHELF_RPC_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define RPC_MAX_MESSAGE (64u << 20) /* bytes in one incoming message */
#define RPC_MAX_DEPTH 24            /* nesting of arrays and maps */
#define RPC_MAX_METHOD 64           /* bytes in a method name */

/* --- framing (no I/O; used by rpc and by the tests) ----------------------- */

typedef struct {
  size_t pos;                    /* bytes of the current message scanned */
  int depth;                     /* open containers */
  uint64_t left[RPC_MAX_DEPTH];  /* elements still to come in each */
  size_t max;                    /* message size limit */
} rpc_frame;

enum {
  RPC_FRAME_MORE = 0,        /* need more bytes */
  RPC_FRAME_DONE = 1,        /* a whole message of `pos` bytes is there */
  RPC_FRAME_TOOBIG = -1,     /* larger than the limit */
  RPC_FRAME_TOODEEP = -2,    /* nested deeper than RPC_MAX_DEPTH */
  RPC_FRAME_BADBYTE = -3,    /* 0xc1, which msgpack never uses */
};

void rpc_frame_reset(rpc_frame *f, size_t max);
/* Continue scanning `buf` (the current message's bytes so far, from its
 * start; len grows between calls). Returns one of RPC_FRAME_*. */
int rpc_frame_scan(rpc_frame *f, const unsigned char *buf, size_t len);
const char *rpc_frame_strerror(int rc);

/* --- the endpoint ---------------------------------------------------------- */

typedef struct rpc rpc;

typedef struct {
  /* A request [0, msgid, method, params]: answer it with rpc_begin_response
   * + rpc_send, now or later. params is an array, borrowed for the call. */
  void (*on_request)(void *data, uint32_t msgid, const char *method,
                     const msgpack_object *params);
  /* A notification [2, method, params]. */
  void (*on_notify)(void *data, const char *method,
                    const msgpack_object *params);
  /* The peer went away (EOF), or the stream is beyond repair. `why` is a
   * message for the log. After this no callback runs; call rpc_close. */
  void (*on_close)(void *data, const char *why);
} rpc_handlers;

/* Start reading in_fd and writing out_fd (pipes). *out is freed by rpc_close.
 * Returns 0 or a negative libuv error. The descriptors belong to rpc from
 * this call on, even when it fails: it closes them (but never 0, 1 or 2),
 * so the caller must not. */
int rpc_open(rpc **out, uv_loop_t *loop, int in_fd, int out_fd,
             const rpc_handlers *h, void *data);

/* Begin [1, msgid, error, result]: if error is NULL, pack the result with the
 * returned packer; if not NULL, the result is nil and is packed for you. */
msgpack_packer *rpc_begin_response(rpc *r, uint32_t msgid, const char *error);
/* Begin [2, method, [params...]]: pack exactly nparams values next. */
msgpack_packer *rpc_begin_notify(rpc *r, const char *method, size_t nparams);
/* Queue the message begun last. Returns 0 or a negative libuv error. */
int rpc_send(rpc *r);

/* Bytes queued and not yet written (for back-pressure and tests). */
size_t rpc_pending(const rpc *r);

/* Stop reading, flush what is queued, close both pipes, free r, then call
 * closed (may be NULL). */
void rpc_close(rpc *r, void (*closed)(void *), void *data);

#endif
