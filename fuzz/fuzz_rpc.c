/* fuzz_rpc.c - libFuzzer target: the msgpack-RPC decoder and what it feeds.
 *
 * The input is the byte stream the editor would write to shelfd's stdin. It
 * goes through rpc.c's own read path (rpc_alloc + rpc_read, so the bounded
 * framer, buffer growth and msgpack-c decoding run as in shelfd), cut into
 * chunks whose sizes are derived from the input (1 byte at a time up to
 * 64 KiB), then rpc_dispatch hands requests and notifications to main.c's
 * real handlers over a sync engine on a store that holds every request
 * (fuzz_common.h). Answers are packed as usual and dropped unsent.
 * Invariant checked: every params array that mpjson converts survives
 * mpjson_pack and back unchanged. */
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "../csrc/rpc.c"
#define main shelfd_main /* the fuzzer has its own */
#include "../csrc/main.c"
#undef main

#include "fuzz_common.h"

static uv_loop_t fz_loop;
static shelfd fz_d;
static fz_store fz_st;
static rpc fz_rpc;
static int fz_closed_rpc;

static void fz_roundtrip(const msgpack_object *params) {
  const char *err = NULL;
  cJSON *a = mpjson_from_msgpack(params, &err);
  if (!a) {
    if (!err)
      abort(); /* a refusal always says why */
    return;
  }
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  mpjson_pack(&pk, a);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  if (msgpack_unpack_next(&u, sb.data, sb.size, &off) != MSGPACK_UNPACK_SUCCESS) {
    fprintf(stderr, "fuzz: mpjson_pack wrote what msgpack-c cannot read\n");
    abort();
  }
  cJSON *b = mpjson_from_msgpack(&u.data, &err);
  if (!b || !cJSON_Compare(a, b, 1)) {
    char *ta = cJSON_PrintUnformatted(a), *tb = b ? cJSON_PrintUnformatted(b) : NULL;
    fprintf(stderr, "fuzz: mpjson round trip changed %s into %s\n", ta, tb ? tb : "(error)");
    abort();
  }
  cJSON_Delete(b);
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&sb);
  cJSON_Delete(a);
}

static void fz_on_request(void *data, uint32_t msgid, const char *method,
                          const msgpack_object *params) {
  if (params->type != MSGPACK_OBJECT_ARRAY || strlen(method) > RPC_MAX_METHOD)
    abort(); /* rpc.h promises both */
  fz_roundtrip(params);
  shelfd_on_request(data, msgid, method, params);
}

static void fz_on_notify(void *data, const char *method, const msgpack_object *params) {
  if (params->type != MSGPACK_OBJECT_ARRAY || strlen(method) > RPC_MAX_METHOD)
    abort();
  fz_roundtrip(params);
  shelfd_on_notify(data, method, params);
}

static void fz_on_close(void *data, const char *why) {
  (void)data;
  if (!why)
    abort();
  fz_closed_rpc++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fz_quiet_logs(); /* warnings are expected here */
  uv_loop_init(&fz_loop);
  /* An endpoint whose pipes exist but are never opened: reading is driven
   * by hand below, and rpc_send drops what it would write (closing). */
  uv_pipe_init(&fz_loop, &fz_rpc.in, 0);
  uv_pipe_init(&fz_loop, &fz_rpc.out, 0);
  fz_rpc.in.data = fz_rpc.out.data = &fz_rpc;
  static const rpc_handlers h = {fz_on_request, fz_on_notify, fz_on_close};
  fz_rpc.h = h;
  fz_rpc.data = &fz_d;
  fz_rpc.closing = 1;
  msgpack_sbuffer_init(&fz_rpc.sbuf);
  msgpack_packer_init(&fz_rpc.pk, &fz_rpc.sbuf, msgpack_sbuffer_write);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_store_init(&fz_st);
  memset(&fz_d, 0, sizeof fz_d);
  fz_d.rpc = &fz_rpc;
  fz_d.st = &fz_st.base;
  static const sync_callbacks cbs = {shelfd_on_changed, shelfd_on_done, shelfd_on_status,
                                     shelfd_on_answer, shelfd_on_changed_packed};
  sync_options opts = {.max_attempts = 3, .retry_base_ms = 1000};
  fz_d.sync = sync_new(&fz_loop, &fz_st.base, &cbs, &fz_d, &opts);
  fz_rpc.len = 0;
  fz_rpc.dead = 0;
  rpc_frame_reset(&fz_rpc.frame, RPC_MAX_MESSAGE);
  fz_closed_rpc = 0;

  /* Chunk sizes from a generator seeded by the input, so a seed file is just
   * the stream and every file replays the same way. */
  uint64_t x = 0x9e3779b97f4a7c15ull ^ size;
  for (size_t i = 0; i < size && i < 8; i++)
    x = x * 31 + data[i];
  size_t pos = 0;
  while (pos < size && !fz_rpc.dead) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t want;
    switch (x % 4) {
    case 0: want = 1; break;
    case 1: want = 1 + (x >> 8) % 16; break;
    case 2: want = 1 + (x >> 8) % 4096; break;
    default: want = size - pos; break;
    }
    uv_buf_t buf;
    rpc_alloc((uv_handle_t *)&fz_rpc.in, 65536, &buf);
    if (want > size - pos)
      want = size - pos;
    if (want > buf.len)
      want = buf.len;
    memcpy(buf.base, data + pos, want);
    pos += want;
    rpc_read((uv_stream_t *)&fz_rpc.in, (ssize_t)want, &buf);
  }
  if (!fz_rpc.dead)
    rpc_read((uv_stream_t *)&fz_rpc.in, UV_EOF, NULL);
  if (fz_closed_rpc != 1)
    abort(); /* on_close runs exactly once */
  fz_sync_finish(&fz_loop, fz_d.sync, &fz_st);
  fz_d.sync = NULL;
  /* Give a big buffer back between inputs, as a finished message does. */
  free(fz_rpc.inbuf);
  fz_rpc.inbuf = NULL;
  fz_rpc.cap = 0;
  return 0;
}
