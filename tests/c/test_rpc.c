/* Tests of the RPC framer and endpoint: partial reads, several messages in
 * one read, oversized, too deep and malformed input, responses, EOF. */
#include <sys/socket.h>
#include <unistd.h>

#include "rpc.h"
#include "test.h"

/* Pack into a fresh sbuffer; the caller destroys it. */
static void pack_request(msgpack_sbuffer *sb, uint32_t id, const char *method,
                         int arg) {
  msgpack_packer pk;
  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 4);
  msgpack_pack_int(&pk, 0);
  msgpack_pack_uint32(&pk, id);
  msgpack_pack_str_with_body(&pk, method, strlen(method));
  msgpack_pack_array(&pk, 1);
  msgpack_pack_int(&pk, arg);
}

TEST(frame_byte_by_byte) {
  msgpack_sbuffer sb;
  pack_request(&sb, 7, "get", 42);
  rpc_frame f;
  rpc_frame_reset(&f, RPC_MAX_MESSAGE);
  for (size_t n = 1; n < sb.size; n++)
    ASSERT_EQ(rpc_frame_scan(&f, (unsigned char *)sb.data, n), RPC_FRAME_MORE);
  ASSERT_EQ(rpc_frame_scan(&f, (unsigned char *)sb.data, sb.size), RPC_FRAME_DONE);
  ASSERT_EQ(f.pos, sb.size);
  msgpack_sbuffer_destroy(&sb);
}

TEST(frame_stops_at_message_end) {
  msgpack_sbuffer a, b;
  pack_request(&a, 1, "x", 1);
  pack_request(&b, 2, "yy", 2);
  unsigned char buf[256];
  memcpy(buf, a.data, a.size);
  memcpy(buf + a.size, b.data, b.size);
  rpc_frame f;
  rpc_frame_reset(&f, RPC_MAX_MESSAGE);
  ASSERT_EQ(rpc_frame_scan(&f, buf, a.size + b.size), RPC_FRAME_DONE);
  ASSERT_EQ(f.pos, a.size);
  msgpack_sbuffer_destroy(&a);
  msgpack_sbuffer_destroy(&b);
}

TEST(frame_rejects_huge_string_header_early) {
  /* [str32 claiming 2 GiB: only the header has arrived. */
  unsigned char buf[] = {0x91, 0xdb, 0x80, 0x00, 0x00, 0x00};
  rpc_frame f;
  rpc_frame_reset(&f, RPC_MAX_MESSAGE);
  ASSERT_EQ(rpc_frame_scan(&f, buf, sizeof buf), RPC_FRAME_TOOBIG);
}

TEST(frame_rejects_huge_map_header) {
  /* The 12-byte input that made msgpack-c try a 256 GiB allocation. */
  unsigned char buf[] = {0x01, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf};
  rpc_frame f;
  rpc_frame_reset(&f, RPC_MAX_MESSAGE);
  /* 0x01 alone is a whole (if useless) message. */
  ASSERT_EQ(rpc_frame_scan(&f, buf, sizeof buf), RPC_FRAME_DONE);
  ASSERT_EQ(f.pos, 1);
  rpc_frame_reset(&f, RPC_MAX_MESSAGE);
  ASSERT_EQ(rpc_frame_scan(&f, buf + 1, sizeof buf - 1), RPC_FRAME_TOOBIG);
}

TEST(frame_rejects_deep_nesting) {
  unsigned char buf[64];
  memset(buf, 0x91, sizeof buf); /* [[[[... */
  rpc_frame f;
  rpc_frame_reset(&f, RPC_MAX_MESSAGE);
  ASSERT_EQ(rpc_frame_scan(&f, buf, sizeof buf), RPC_FRAME_TOODEEP);
  /* Just inside the limit is fine. */
  unsigned char ok[RPC_MAX_DEPTH + 1];
  memset(ok, 0x91, RPC_MAX_DEPTH);
  ok[RPC_MAX_DEPTH] = 0xc0;
  rpc_frame_reset(&f, RPC_MAX_MESSAGE);
  ASSERT_EQ(rpc_frame_scan(&f, ok, sizeof ok), RPC_FRAME_DONE);
}

TEST(frame_rejects_c1_and_small_limit) {
  unsigned char bad[] = {0x92, 0x01, 0xc1};
  rpc_frame f;
  rpc_frame_reset(&f, RPC_MAX_MESSAGE);
  ASSERT_EQ(rpc_frame_scan(&f, bad, sizeof bad), RPC_FRAME_BADBYTE);
  unsigned char str[] = {0xa5, 'h', 'e', 'l', 'l', 'o'};
  rpc_frame_reset(&f, 4);
  ASSERT_EQ(rpc_frame_scan(&f, str, sizeof str), RPC_FRAME_TOOBIG);
}

/* --- the endpoint over socket pairs --------------------------------------- */

typedef struct {
  int requests, notifications, closed;
  char last_method[RPC_MAX_METHOD + 1];
  int last_arg;
  rpc *r;
  char why[256];
} probe;

static void on_request(void *data, uint32_t msgid, const char *method,
                       const msgpack_object *params) {
  probe *p = data;
  p->requests++;
  snprintf(p->last_method, sizeof p->last_method, "%s", method);
  p->last_arg = params->via.array.size ? (int)params->via.array.ptr[0].via.i64 : -1;
  msgpack_packer *pk = rpc_begin_response(p->r, msgid, NULL);
  msgpack_pack_int(pk, p->last_arg * 2);
  rpc_send(p->r);
}

static void on_notify(void *data, const char *method, const msgpack_object *params) {
  probe *p = data;
  (void)params;
  p->notifications++;
  snprintf(p->last_method, sizeof p->last_method, "%s", method);
}

static void on_close(void *data, const char *why) {
  probe *p = data;
  p->closed++;
  snprintf(p->why, sizeof p->why, "%s", why);
}

static const rpc_handlers handlers = {on_request, on_notify, on_close};

typedef struct {
  uv_loop_t loop;
  int in[2], out[2]; /* [0] rpc's end, [1] the test's end */
  probe p;
} rig;

static void rig_open(rig *g) {
  memset(g, 0, sizeof *g);
  ASSERT_EQ(uv_loop_init(&g->loop), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, g->in), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, g->out), 0);
  ASSERT_EQ(rpc_open(&g->p.r, &g->loop, g->in[0], g->out[0], &handlers, &g->p), 0);
}

static void rig_spin(rig *g) {
  for (int i = 0; i < 20; i++)
    uv_run(&g->loop, UV_RUN_NOWAIT);
}

static void rig_close(rig *g) {
  rpc_close(g->p.r, NULL, NULL);
  uv_run(&g->loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&g->loop), 0);
  close(g->in[1]);
  close(g->out[1]);
}

static void rig_write(rig *g, const void *p, size_t n) {
  ASSERT_EQ(write(g->in[1], p, n), (ssize_t)n);
}

TEST(endpoint_answers_a_request) {
  rig g;
  rig_open(&g);
  msgpack_sbuffer sb;
  pack_request(&sb, 9, "double", 21);
  rig_write(&g, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  rig_spin(&g);
  ASSERT_EQ(g.p.requests, 1);
  ASSERT_STR(g.p.last_method, "double");
  char buf[64];
  ssize_t n = read(g.out[1], buf, sizeof buf);
  ASSERT(n > 0);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  ASSERT_EQ(msgpack_unpack_next(&u, buf, (size_t)n, NULL), MSGPACK_UNPACK_SUCCESS);
  msgpack_object *a = u.data.via.array.ptr;
  ASSERT_EQ(u.data.via.array.size, 4);
  ASSERT_EQ(a[0].via.u64, 1);
  ASSERT_EQ(a[1].via.u64, 9);
  ASSERT_EQ(a[2].type, MSGPACK_OBJECT_NIL);
  ASSERT_EQ(a[3].via.i64, 42);
  msgpack_unpacked_destroy(&u);
  rig_close(&g);
}

TEST(endpoint_several_messages_in_one_read) {
  rig g;
  rig_open(&g);
  unsigned char buf[4096];
  size_t len = 0;
  for (int i = 0; i < 5; i++) {
    msgpack_sbuffer sb;
    pack_request(&sb, (uint32_t)i + 1, "m", i);
    memcpy(buf + len, sb.data, sb.size);
    len += sb.size;
    msgpack_sbuffer_destroy(&sb);
  }
  rig_write(&g, buf, len);
  rig_spin(&g);
  ASSERT_EQ(g.p.requests, 5);
  ASSERT_EQ(g.p.last_arg, 4);
  rig_close(&g);
}

TEST(endpoint_split_message) {
  rig g;
  rig_open(&g);
  msgpack_sbuffer sb;
  pack_request(&sb, 3, "split", 5);
  for (size_t i = 0; i < sb.size; i++) {
    rig_write(&g, sb.data + i, 1);
    rig_spin(&g);
    ASSERT_EQ(g.p.requests, i + 1 == sb.size ? 1 : 0);
  }
  msgpack_sbuffer_destroy(&sb);
  rig_close(&g);
}

TEST(endpoint_skips_bad_shapes_and_keeps_going) {
  rig g;
  rig_open(&g);
  /* [5, "x", []]: unknown type; 7: not an array; [2, 1, []]: method not a
   * string; then a good notification [2, "ok", []]. */
  unsigned char bad[] = {0x93, 0x05, 0xa1, 'x', 0x90, 0x07, 0x93, 0x02, 0x01, 0x90,
                         0x93, 0x02, 0xa2, 'o', 'k', 0x90};
  rig_write(&g, bad, sizeof bad);
  rig_spin(&g);
  ASSERT_EQ(g.p.notifications, 1);
  ASSERT_STR(g.p.last_method, "ok");
  ASSERT_EQ(g.p.closed, 0);
  /* A request whose params are not an array gets an error response. */
  unsigned char req[] = {0x94, 0x00, 0x05, 0xa1, 'm', 0x07};
  rig_write(&g, req, sizeof req);
  rig_spin(&g);
  ASSERT_EQ(g.p.requests, 0);
  char buf[256];
  ssize_t n = read(g.out[1], buf, sizeof buf);
  ASSERT(n > 0);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  ASSERT_EQ(msgpack_unpack_next(&u, buf, (size_t)n, NULL), MSGPACK_UNPACK_SUCCESS);
  ASSERT_EQ(u.data.via.array.ptr[1].via.u64, 5);
  ASSERT_EQ(u.data.via.array.ptr[2].type, MSGPACK_OBJECT_STR);
  msgpack_unpacked_destroy(&u);
  rig_close(&g);
}

TEST(endpoint_closes_on_oversized_input) {
  rig g;
  rig_open(&g);
  unsigned char huge[] = {0x94, 0x00, 0x01, 0xa1, 'm', 0x91, 0xdb, 0x7f, 0xff, 0xff, 0xff};
  rig_write(&g, huge, sizeof huge);
  rig_spin(&g);
  ASSERT_EQ(g.p.closed, 1);
  ASSERT(strstr(g.p.why, "larger than the limit") != NULL);
  rig_close(&g);
}

TEST(endpoint_reports_eof) {
  rig g;
  rig_open(&g);
  close(g.in[1]);
  g.in[1] = -1;
  rig_spin(&g);
  ASSERT_EQ(g.p.closed, 1);
  ASSERT(strstr(g.p.why, "closed") != NULL);
  rpc_close(g.p.r, NULL, NULL);
  uv_run(&g.loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&g.loop), 0);
  close(g.out[1]);
}

static const test_case test_cases[] = {
    TEST_ENTRY(frame_byte_by_byte),
    TEST_ENTRY(frame_stops_at_message_end),
    TEST_ENTRY(frame_rejects_huge_string_header_early),
    TEST_ENTRY(frame_rejects_huge_map_header),
    TEST_ENTRY(frame_rejects_deep_nesting),
    TEST_ENTRY(frame_rejects_c1_and_small_limit),
    TEST_ENTRY(endpoint_answers_a_request),
    TEST_ENTRY(endpoint_several_messages_in_one_read),
    TEST_ENTRY(endpoint_split_message),
    TEST_ENTRY(endpoint_skips_bad_shapes_and_keeps_going),
    TEST_ENTRY(endpoint_closes_on_oversized_input),
    TEST_ENTRY(endpoint_reports_eof),
};

TEST_MAIN()
