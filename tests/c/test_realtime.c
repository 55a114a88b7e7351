/* test_realtime.c - the Realtime client: the frame parser on its own, then
 * the client against fake_phoenix (a Phoenix server on the same loop). Every
 * client test ends by closing everything and asserting uv_loop_close == 0. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_phoenix.h"
#include "phoenix.h"
#include "tls_front.h"
#include "realtime.h"
#include "test.h"
#include "util.h"

/* --- parser --------------------------------------------------------------- */

static int parse(const char *text, phx_frame *f, char **err) {
  return phx_parse_frame(text, strlen(text), f, err);
}

TEST(parse_v2_array) {
  phx_frame f;
  char *err = NULL;
  const char *s = "[\"3\",\"5\",\"realtime:shelf\",\"phx_reply\","
                  "{\"status\":\"ok\",\"response\":{}}]";
  ASSERT_EQ(parse(s, &f, &err), 0);
  ASSERT_EQ(f.vsn, 2);
  ASSERT_STR(f.join_ref, "3");
  ASSERT_STR(f.ref, "5");
  ASSERT_STR(f.topic, "realtime:shelf");
  ASSERT_STR(f.event, "phx_reply");
  ASSERT_STR(cJSON_GetObjectItem(f.payload, "status")->valuestring, "ok");
  phx_frame_free(&f);

  /* Server pushes carry null refs; numbers are accepted as refs. */
  ASSERT_EQ(parse(" [null, null, \"t\", \"postgres_changes\", {}]\n", &f, &err), 0);
  ASSERT(f.join_ref == NULL && f.ref == NULL);
  phx_frame_free(&f);
  ASSERT_EQ(parse("[1,26,\"phoenix\",\"phx_reply\",{}]", &f, &err), 0);
  ASSERT_STR(f.join_ref, "1");
  ASSERT_STR(f.ref, "26");
  phx_frame_free(&f);
}

TEST(parse_v1_object) {
  phx_frame f;
  char *err = NULL;
  const char *s = "{\"ref\":\"233\",\"event\":\"phx_reply\",\"payload\":{\"status\":\"ok\","
                  "\"response\":{}},\"topic\":\"phoenix\"}";
  ASSERT_EQ(parse(s, &f, &err), 0);
  ASSERT_EQ(f.vsn, 1);
  ASSERT(f.join_ref == NULL);
  ASSERT_STR(f.ref, "233");
  ASSERT_STR(f.topic, "phoenix");
  ASSERT_STR(f.event, "phx_reply");
  phx_frame_free(&f);
  ASSERT_EQ(parse("{\"topic\":\"t\",\"event\":\"e\",\"payload\":{},\"ref\":null,"
                  "\"join_ref\":\"1\"}",
                  &f, &err),
            0);
  ASSERT_STR(f.join_ref, "1");
  ASSERT(f.ref == NULL);
  phx_frame_free(&f);
}

TEST(parse_malformed) {
  static const char *bad[] = {
      "",
      "   ",
      "not json",
      "[\"1\",\"2\",\"t\",\"e\",{}",        /* truncated */
      "[\"1\",\"2\",\"t\",\"e\",{}] x",     /* trailing text */
      "[\"1\",\"2\",\"t\",\"e\",{}][]",     /* two values */
      "[\"1\",\"2\",\"t\",\"e\"]",          /* four elements */
      "[\"1\",\"2\",\"t\",\"e\",{},6]",     /* six */
      "[\"1\",\"2\",5,\"e\",{}]",           /* topic a number */
      "[\"1\",\"2\",\"t\",null,{}]",        /* event null */
      "[\"1\",\"2\",\"t\",\"e\",\"x\"]",    /* payload a string */
      "[\"1\",\"2\",\"t\",\"e\",[]]",       /* payload an array */
      "[true,\"2\",\"t\",\"e\",{}]",        /* join_ref a bool */
      "[\"1\",{},\"t\",\"e\",{}]",          /* ref an object */
      "[\"1\",1.5,\"t\",\"e\",{}]",         /* ref a fraction */
      "{\"topic\":\"t\",\"payload\":{}}",   /* no event */
      "{\"event\":\"e\",\"topic\":\"t\"}",  /* no payload */
      "\"just a string\"",
      "42",
      "null",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    phx_frame f;
    char *err = NULL;
    if (parse(bad[i], &f, &err) == 0) {
      fprintf(stderr, "  accepted: %s\n", bad[i]);
      ASSERT(0);
    }
    ASSERT(err && *err);
    ASSERT(f.root == NULL);
    free(err);
  }
  /* Embedded NUL and bytes past len are not read. */
  phx_frame f;
  char *err = NULL;
  const char with_nul[] = "[null,null,\"t\",\"e\",{}]\0garbage";
  ASSERT_EQ(phx_parse_frame(with_nul, sizeof with_nul - 1, &f, &err), -1);
  free(err);
  ASSERT_EQ(phx_parse_frame(with_nul, strlen(with_nul), &f, NULL), 0);
  phx_frame_free(&f);
  ASSERT_EQ(phx_parse_frame("[null,null,\"t\",\"e\",{}]", 10, &f, NULL), -1);
}

TEST(parse_huge) {
  /* Deep nesting is refused by cJSON's nesting limit, not the stack. */
  size_t depth = 200000;
  char *deep = util_malloc(depth * 2 + 1);
  memset(deep, '[', depth);
  memset(deep + depth, ']', depth);
  deep[depth * 2] = '\0';
  phx_frame f;
  char *err = NULL;
  ASSERT_EQ(phx_parse_frame(deep, depth * 2, &f, &err), -1);
  free(err);
  free(deep);

  /* A 2 MiB record parses. */
  size_t big = 2u << 20;
  char *text = util_malloc(big + 100);
  int n = snprintf(text, 100, "[null,null,\"t\",\"e\",{\"data\":\"");
  memset(text + n, 'x', big);
  strcpy(text + n + big, "\"}]");
  ASSERT_EQ(phx_parse_frame(text, strlen(text), &f, &err), 0);
  ASSERT_EQ(strlen(cJSON_GetObjectItem(f.payload, "data")->valuestring), big);
  phx_frame_free(&f);
  free(text);
}

/* --- the client against fake_phoenix -------------------------------------- */

#define MAX_SEEN 256

static struct {
  uv_loop_t loop;
  uv_timer_t tick;
  fake_phoenix *fp;
  rt_client *rt;
  rt_options opts;
  rt_callbacks cb;
  char url[64];
  int joined, token_needed, systems, rt_closed, fp_closed;
  int nchanges;
  int change_binding[MAX_SEEN];
  char *change_type[MAX_SEEN];
  int nstates;
  rt_state states[MAX_SEEN];
  uint64_t state_at[MAX_SEEN], joined_at[MAX_SEEN]; /* loop time when seen */
  char *messages[MAX_SEEN];
  int close_in_joined; /* call rt_close from on_joined */
} t;

static const rt_binding bindings[] = {
    {"*", "public", "blocks", "user_id=eq.u1"},
    {"DELETE", "public", "blocks", NULL},
    {"INSERT", "public", "tags", NULL},
};
static const unsigned fast_backoff[] = {20, 40};

static void on_state(void *data, rt_state st, const char *message) {
  (void)data;
  if (t.nstates < MAX_SEEN) {
    t.states[t.nstates] = st;
    t.state_at[t.nstates] = uv_now(&t.loop);
    t.messages[t.nstates] = message ? util_strdup(message) : NULL;
    t.nstates++;
  }
}

static void on_change(void *data, int binding, const cJSON *change) {
  (void)data;
  if (t.nchanges < MAX_SEEN) {
    const cJSON *type = cJSON_GetObjectItem(change, "type");
    t.change_binding[t.nchanges] = binding;
    t.change_type[t.nchanges] = util_strdup(cJSON_IsString(type) ? type->valuestring : "?");
    t.nchanges++;
  }
}

static void on_system(void *data, const cJSON *payload) {
  (void)data;
  (void)payload;
  t.systems++;
}

static void on_joined(void *data) {
  (void)data;
  if (t.joined < MAX_SEEN)
    t.joined_at[t.joined] = uv_now(&t.loop);
  t.joined++;
  if (t.close_in_joined) {
    rt_close(t.rt, NULL, NULL);
    t.rt = NULL;
  }
}

static void on_token_needed(void *data) {
  (void)data;
  t.token_needed++;
}

static void on_tick(uv_timer_t *h) { (void)h; }

/* A loop, a server, and options pointing at it; the test adjusts t.opts and
 * t.cb, then calls start(). */
static void forget_seen(void) {
  for (int i = 0; i < t.nstates; i++)
    free(t.messages[i]);
  for (int i = 0; i < t.nchanges; i++)
    free(t.change_type[i]);
  t.nstates = t.nchanges = 0;
}

static void setup(void) {
  forget_seen();
  memset(&t, 0, sizeof t);
  ASSERT_EQ(uv_loop_init(&t.loop), 0);
  uv_timer_init(&t.loop, &t.tick);
  uv_timer_start(&t.tick, on_tick, 5, 5); /* lets UV_RUN_ONCE come back */
  t.fp = fp_new(&t.loop);
  ASSERT(t.fp);
  snprintf(t.url, sizeof t.url, "http://127.0.0.1:%d", fp_port(t.fp));
  t.opts.url = t.url;
  t.opts.anon_key = "anon key/+=";
  t.opts.access_token = "tok1";
  t.opts.topic = "realtime:shelf";
  t.opts.bindings = bindings;
  t.opts.nbindings = 3;
  t.opts.heartbeat_ms = 5000;
  t.opts.backoff_ms = fast_backoff;
  t.opts.nbackoff = 2;
  t.cb.on_state = on_state;
  t.cb.on_change = on_change;
  t.cb.on_system = on_system;
  t.cb.on_joined = on_joined;
}

static void start(void) {
  char *err = NULL;
  t.rt = rt_new(&t.loop, &t.opts, &t.cb, NULL, &err);
  if (!t.rt)
    fprintf(stderr, "  rt_new: %s\n", err);
  ASSERT(t.rt);
}

#define WAIT(cond, ms)                                                        \
  do {                                                                        \
    uint64_t deadline_ = uv_now(&t.loop) + (ms);                              \
    while (!(cond)) {                                                         \
      if (uv_now(&t.loop) > deadline_) {                                      \
        fprintf(stderr, "  %s:%d: timed out waiting for %s\n", __FILE__,      \
                __LINE__, #cond);                                             \
        longjmp(test_jmp, 1);                                                 \
      }                                                                       \
      uv_run(&t.loop, UV_RUN_ONCE);                                           \
    }                                                                         \
  } while (0)

/* Run the loop for ms (to show that something does not happen). */
static void run_for(unsigned ms) {
  uint64_t end = uv_now(&t.loop) + ms;
  while (uv_now(&t.loop) < end)
    uv_run(&t.loop, UV_RUN_ONCE);
}

static void on_rt_closed(void *data) {
  (void)data;
  t.rt_closed++;
}

static void on_rt_closed_count(void *data) { (*(int *)data)++; }

static void on_fp_closed(void *data) {
  (void)data;
  t.fp_closed++;
}

/* Close the client (if still open) and the server; the loop must end empty. */
static void finish(void) {
  if (t.rt) {
    rt_close(t.rt, on_rt_closed, NULL);
    t.rt = NULL;
    WAIT(t.rt_closed == 1, 5000);
  }
  /* Clients closed without a callback may still be closing; then the
   * process's libwebsockets context goes (as at shelfd's exit). */
  WAIT(rt_shutdown() == 0, 5000);
  fp_close(t.fp, on_fp_closed, NULL);
  uv_close((uv_handle_t *)&t.tick, NULL);
  uv_run(&t.loop, UV_RUN_DEFAULT);
  ASSERT_EQ(t.fp_closed, 1);
  ASSERT_EQ(uv_loop_close(&t.loop), 0);
  forget_seen();
}

/* The index of the first state message containing `text` at or after
 * index `from`, or -1. */
static int find_message(int from, const char *text) {
  for (int i = from; i < t.nstates; i++)
    if (t.messages[i] && strstr(t.messages[i], text))
      return i;
  return -1;
}

static int saw_message(const char *text) { return find_message(0, text) >= 0; }

static int saw_state(rt_state st) {
  for (int i = 0; i < t.nstates; i++)
    if (t.states[i] == st)
      return 1;
  return 0;
}

static const char *str_at(const cJSON *msg, int i) {
  const cJSON *v = cJSON_GetArrayItem(msg, i);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *payload_of(const cJSON *msg) { return cJSON_GetArrayItem(msg, 4); }

static void send_change(const char *ids, const char *type, const char *table) {
  char *s = util_printf("[null,null,\"realtime:shelf\",\"postgres_changes\",{\"ids\":%s,"
                        "\"data\":{\"schema\":\"public\",\"table\":\"%s\",\"type\":\"%s\","
                        "\"commit_timestamp\":\"2026-01-01T00:00:00Z\",\"columns\":[],"
                        "\"record\":{\"id\":\"r1\"},\"old_record\":{},\"errors\":null}}]",
                        ids, table, type);
  ASSERT_EQ(fp_send(t.fp, s), 0);
  free(s);
}

/* The system message a Supabase server sends once the join's subscription
 * is in place ("ok") or failed ("error"). */
static void send_system(const char *join_ref, const char *status, const char *message) {
  char *s = util_printf("[\"%s\",null,\"realtime:shelf\",\"system\",{\"extension\":"
                        "\"postgres_changes\",\"status\":\"%s\",\"message\":\"%s\","
                        "\"channel\":\"shelf\"}]",
                        join_ref, status, message);
  ASSERT_EQ(fp_send(t.fp, s), 0);
  free(s);
}

/* The join_ref of the last phx_join the server got (a copy to free). */
static char *last_join_ref(void) {
  const cJSON *join = fp_last(t.fp, "phx_join");
  ASSERT(join && cJSON_IsString(cJSON_GetArrayItem(join, 0)));
  return util_strdup(cJSON_GetArrayItem(join, 0)->valuestring);
}

TEST(connect_join_and_route) {
  setup();
  start();
  WAIT(t.joined == 1, 3000);
  ASSERT(saw_state(RT_CONNECTING));
  ASSERT(saw_state(RT_JOINING));
  ASSERT_EQ(t.states[t.nstates - 1], RT_JOINED);
  ASSERT_STR(fp_last_path(t.fp), "/realtime/v1/websocket?apikey=anon%20key%2F%2B%3D&vsn=2.0.0");

  /* The join as realtime-js sends it. */
  const cJSON *join = fp_last(t.fp, "phx_join");
  ASSERT(join);
  ASSERT(str_at(join, 0) && str_at(join, 1));
  ASSERT_STR(str_at(join, 0), str_at(join, 1));
  ASSERT_STR(str_at(join, 2), "realtime:shelf");
  const cJSON *p = payload_of(join);
  ASSERT_STR(cJSON_GetObjectItem(p, "access_token")->valuestring, "tok1");
  const cJSON *config = cJSON_GetObjectItem(p, "config");
  ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(config, "private")));
  ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(config, "broadcast"), "ack")));
  ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(config, "broadcast"), "self")));
  ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(config, "presence"), "enabled")));
  const cJSON *pc = cJSON_GetObjectItem(config, "postgres_changes");
  ASSERT_EQ(cJSON_GetArraySize(pc), 3);
  const cJSON *b0 = cJSON_GetArrayItem(pc, 0), *b1 = cJSON_GetArrayItem(pc, 1);
  ASSERT_STR(cJSON_GetObjectItem(b0, "event")->valuestring, "*");
  ASSERT_STR(cJSON_GetObjectItem(b0, "schema")->valuestring, "public");
  ASSERT_STR(cJSON_GetObjectItem(b0, "table")->valuestring, "blocks");
  ASSERT_STR(cJSON_GetObjectItem(b0, "filter")->valuestring, "user_id=eq.u1");
  ASSERT_STR(cJSON_GetObjectItem(b1, "event")->valuestring, "DELETE");
  ASSERT(cJSON_GetObjectItem(b1, "filter") == NULL);

  /* The server numbered the bindings 1000, 1001, 1002. */
  send_change("[1002]", "INSERT", "tags");
  WAIT(t.nchanges == 1, 2000);
  ASSERT_EQ(t.change_binding[0], 2);
  ASSERT_STR(t.change_type[0], "INSERT");
  /* Both bindings that asked for it; 1001 only takes DELETE. */
  send_change("[1000,1001]", "DELETE", "blocks");
  send_change("[1001]", "UPDATE", "blocks");
  send_change("[4242]", "INSERT", "blocks");
  /* Another topic is not ours. */
  fp_send(t.fp, "[null,null,\"realtime:other\",\"postgres_changes\",{\"ids\":[1000],"
                "\"data\":{\"type\":\"INSERT\"}}]");
  /* A vsn 1.0.0 object frame. */
  fp_send(t.fp, "{\"topic\":\"realtime:shelf\",\"event\":\"postgres_changes\",\"ref\":null,"
                "\"payload\":{\"ids\":[1000],\"data\":{\"type\":\"UPDATE\",\"table\":\"blocks\"}}}");
  WAIT(t.nchanges == 4, 2000);
  ASSERT_EQ(t.change_binding[1], 0);
  ASSERT_EQ(t.change_binding[2], 1);
  ASSERT_STR(t.change_type[2], "DELETE");
  ASSERT_EQ(t.change_binding[3], 0);
  ASSERT_STR(t.change_type[3], "UPDATE");
  ASSERT_EQ(fp_connections(t.fp), 1);
  ASSERT_EQ(t.joined, 1);
  finish();
}

TEST(heartbeat_answered) {
  setup();
  t.opts.heartbeat_ms = 30;
  t.opts.heartbeat_timeout_ms = 20;
  start();
  WAIT(fp_count(t.fp, "heartbeat") >= 4, 3000);
  const cJSON *hb = fp_last(t.fp, "heartbeat");
  ASSERT(cJSON_IsNull(cJSON_GetArrayItem(hb, 0)));
  ASSERT(str_at(hb, 1));
  ASSERT_STR(str_at(hb, 2), "phoenix");
  ASSERT(cJSON_IsObject(payload_of(hb)));
  ASSERT_EQ(fp_connections(t.fp), 1);
  ASSERT_EQ(t.joined, 1);
  ASSERT(!saw_message("heartbeat timeout"));
  finish();
}

TEST(heartbeat_timeout_reconnects) {
  setup();
  t.opts.heartbeat_ms = 30;
  t.opts.heartbeat_timeout_ms = 20;
  fp_answer_heartbeats(t.fp, 0);
  start();
  WAIT(t.joined == 2, 3000);
  ASSERT(fp_connections(t.fp) >= 2);
  ASSERT(saw_message("Realtime: heartbeat timeout; reconnecting in 20 ms"));
  ASSERT(saw_state(RT_DISCONNECTED));
  ASSERT(fp_count(t.fp, "phx_join") >= 2);
  finish();
}

TEST(server_close_reconnects_with_backoff) {
  static const unsigned backoff[] = {60, 250};
  setup();
  t.opts.backoff_ms = backoff;
  start();
  WAIT(t.joined == 1, 3000);
  /* The server goes away and refuses the next upgrades. Times are those the
   * callbacks saw, so a slow machine can only make the gaps longer. */
  fp_refuse(t.fp, 503);
  uint64_t t0 = uv_now(&t.loop);
  ASSERT_EQ(fp_close_ws(t.fp, 1001), 0);
  WAIT(saw_message("HTTP 503"), 3000);
  int closed = find_message(0, "Realtime: the server closed the connection (code 1001); "
                                "reconnecting in 60 ms");
  int refused = find_message(0, "the server answered HTTP 503 instead of a websocket; "
                                "reconnecting in 250 ms");
  ASSERT(closed >= 0 && refused > closed);
  ASSERT(t.state_at[refused] - t0 >= 54); /* 60 ms - 10 % */
  fp_refuse(t.fp, 0);
  WAIT(t.joined == 2, 3000);
  ASSERT(t.joined_at[1] - t.state_at[refused] >= 225); /* 250 ms - 10 % */
  /* A successful join resets the backoff; a dropped TCP connection is seen
   * too. */
  int before = t.nstates;
  ASSERT_EQ(fp_drop(t.fp), 0);
  WAIT(t.joined == 3, 3000);
  ASSERT(find_message(before, "reconnecting in 60 ms") >= 0);
  ASSERT(find_message(before, "reconnecting in 250 ms") < 0);
  ASSERT_EQ(fp_count(t.fp, "phx_join"), 3);
  finish();
}

TEST(connection_refused_retries) {
  setup();
  /* A port nobody listens on: bind one, note it, close it. */
  uv_tcp_t probe;
  struct sockaddr_in addr, bound;
  int len = sizeof bound;
  uv_tcp_init(&t.loop, &probe);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  ASSERT_EQ(uv_tcp_bind(&probe, (const struct sockaddr *)&addr, 0), 0);
  ASSERT_EQ(uv_tcp_getsockname(&probe, (struct sockaddr *)&bound, &len), 0);
  uv_close((uv_handle_t *)&probe, NULL);
  snprintf(t.url, sizeof t.url, "http://127.0.0.1:%d", ntohs(bound.sin_port));
  start();
  WAIT(saw_message("Realtime: connection refused; reconnecting in 40 ms"), 3000);
  ASSERT(saw_message("Realtime: connection refused; reconnecting in 20 ms"));
  ASSERT_EQ(t.joined, 0);
  finish();
}

TEST(join_error_reported) {
  setup();
  fp_join_error(t.fp, "Unauthorized: you may not");
  start();
  WAIT(saw_message("Realtime: join refused: Unauthorized: you may not; rejoining in 20 ms"), 3000);
  ASSERT(saw_state(RT_ERROR));
  ASSERT_EQ(t.joined, 0);
  /* The server relents: the channel is joined on the same socket. */
  fp_join_error(t.fp, NULL);
  WAIT(t.joined == 1, 3000);
  ASSERT_EQ(fp_connections(t.fp), 1);
  ASSERT(fp_count(t.fp, "phx_join") >= 2);
  finish();
}

TEST(join_token_expired_waits_for_token) {
  setup();
  t.cb.on_token_needed = on_token_needed;
  fp_join_error(t.fp, "InvalidJWTToken: Token has expired 5 seconds ago");
  start();
  WAIT(t.token_needed == 1, 3000);
  ASSERT(saw_message("Realtime: token expired"));
  ASSERT_EQ(t.states[t.nstates - 1], RT_ERROR);
  run_for(100); /* five backoff periods: no rejoin without a token */
  ASSERT_EQ(fp_count(t.fp, "phx_join"), 1);
  fp_join_error(t.fp, NULL);
  rt_set_token(t.rt, "tok2", 0);
  WAIT(t.joined == 1, 3000);
  const cJSON *join = fp_last(t.fp, "phx_join");
  ASSERT_STR(cJSON_GetObjectItem(payload_of(join), "access_token")->valuestring, "tok2");
  ASSERT_EQ(fp_count(t.fp, "access_token"), 0);
  finish();
}

TEST(set_token_sends_access_token) {
  setup();
  start();
  WAIT(t.joined == 1, 3000);
  const cJSON *join = fp_last(t.fp, "phx_join");
  char *join_ref = util_strdup(str_at(join, 0));
  rt_set_token(t.rt, "tok2", 0);
  WAIT(fp_count(t.fp, "access_token") == 1, 3000);
  const cJSON *at = fp_last(t.fp, "access_token");
  ASSERT_STR(str_at(at, 0), join_ref);
  ASSERT(str_at(at, 1));
  ASSERT_STR(str_at(at, 2), "realtime:shelf");
  ASSERT_STR(cJSON_GetObjectItem(payload_of(at), "access_token")->valuestring, "tok2");
  /* The same token again is not sent. */
  rt_set_token(t.rt, "tok2", 0);
  /* The server closes the channel: it is joined again with the new token. */
  char *close = util_printf("[\"%s\",\"%s\",\"realtime:shelf\",\"phx_close\",{}]", join_ref,
                            join_ref);
  fp_send(t.fp, close);
  free(close);
  free(join_ref);
  WAIT(t.joined == 2, 3000);
  ASSERT(saw_message("Realtime: the server closed the channel; rejoining in 20 ms"));
  join = fp_last(t.fp, "phx_join");
  ASSERT_STR(cJSON_GetObjectItem(payload_of(join), "access_token")->valuestring, "tok2");
  ASSERT_EQ(fp_count(t.fp, "access_token"), 1);
  ASSERT_EQ(fp_connections(t.fp), 1);
  finish();
}

TEST(token_set_while_joining_is_pushed) {
  setup();
  fp_answer_joins(t.fp, 0);
  start();
  WAIT(fp_count(t.fp, "phx_join") == 1, 3000);
  rt_set_token(t.rt, "tok2", 0);
  const cJSON *join = fp_last(t.fp, "phx_join");
  char *reply = util_printf("[\"%s\",\"%s\",\"realtime:shelf\",\"phx_reply\",{\"status\":\"ok\","
                            "\"response\":{\"postgres_changes\":[{\"id\":1,\"event\":\"*\","
                            "\"schema\":\"public\",\"table\":\"blocks\",\"filter\":\"user_id=eq.u1\"},"
                            "{\"id\":2,\"event\":\"DELETE\",\"schema\":\"public\",\"table\":\"blocks\"},"
                            "{\"id\":3,\"event\":\"INSERT\",\"schema\":\"public\",\"table\":\"tags\","
                            "\"filter\":\"\"}]}}]",
                            str_at(join, 0), str_at(join, 1));
  fp_send(t.fp, reply);
  free(reply);
  char *jr = last_join_ref();
  send_system(jr, "ok", "Subscribed to PostgreSQL");
  free(jr);
  WAIT(t.joined == 1, 3000);
  WAIT(fp_count(t.fp, "access_token") == 1, 3000);
  ASSERT_STR(cJSON_GetObjectItem(payload_of(fp_last(t.fp, "access_token")), "access_token")->valuestring,
             "tok2");
  /* The ids came from this reply. */
  send_change("[3]", "INSERT", "tags");
  WAIT(t.nchanges == 1, 3000);
  ASSERT_EQ(t.change_binding[0], 2);
  finish();
}

TEST(bindings_mismatch_is_an_error) {
  setup();
  fp_answer_joins(t.fp, 0);
  start();
  WAIT(fp_count(t.fp, "phx_join") == 1, 3000);
  const cJSON *join = fp_last(t.fp, "phx_join");
  /* The server lists the bindings in another order. */
  char *reply = util_printf("[\"%s\",\"%s\",\"realtime:shelf\",\"phx_reply\",{\"status\":\"ok\","
                            "\"response\":{\"postgres_changes\":[{\"id\":2,\"event\":\"DELETE\","
                            "\"schema\":\"public\",\"table\":\"blocks\"},{\"id\":1,\"event\":\"*\","
                            "\"schema\":\"public\",\"table\":\"blocks\",\"filter\":\"user_id=eq.u1\"},"
                            "{\"id\":3,\"event\":\"INSERT\",\"schema\":\"public\",\"table\":\"tags\"}]}}]",
                            str_at(join, 0), str_at(join, 1));
  fp_send(t.fp, reply);
  free(reply);
  WAIT(saw_message("mismatch between server and client bindings"), 3000);
  ASSERT_EQ(t.joined, 0);
  ASSERT_EQ(t.states[t.nstates - 1], RT_ERROR);
  finish();
}

static void on_second_state(void *data, rt_state st, const char *message) {
  (void)message;
  if (st == RT_JOINED)
    (*(int *)data)++;
}

TEST(two_clients_on_one_loop) {
  setup();
  start();
  int second_joined = 0;
  rt_callbacks cb2 = {0};
  cb2.on_state = on_second_state;
  rt_client *rt2 = rt_new(&t.loop, &t.opts, &cb2, &second_joined, NULL);
  ASSERT(rt2);
  WAIT(t.joined == 1 && second_joined == 1, 3000);
  /* Closing one (as the store does before a new sign-in) leaves the other
   * working, and a third can start meanwhile. */
  int closed2 = 0;
  rt_close(rt2, on_rt_closed_count, &closed2);
  rt_client *rt3 = rt_new(&t.loop, &t.opts, &cb2, &second_joined, NULL);
  ASSERT(rt3);
  WAIT(closed2 == 1 && second_joined == 2, 3000);
  rt_close(rt3, on_rt_closed_count, &closed2);
  WAIT(closed2 == 2 && fp_open(t.fp) == 1, 3000);
  /* The first client still gets its changes. */
  send_change("[1000]", "INSERT", "blocks");
  WAIT(t.nchanges == 1, 3000);
  ASSERT_EQ(t.joined, 1);
  finish();
}

TEST(token_expired_system_then_close) {
  setup();
  t.cb.on_token_needed = on_token_needed;
  start();
  WAIT(t.joined == 1, 3000);
  const char *jr = str_at(fp_last(t.fp, "phx_join"), 0);
  char *sys = util_printf("[\"%s\",null,\"realtime:shelf\",\"system\",{\"extension\":\"system\","
                          "\"status\":\"error\",\"message\":\"Token has expired 3 seconds ago\","
                          "\"channel\":\"shelf\"}]",
                          jr);
  char *close = util_printf("[\"%s\",\"%s\",\"realtime:shelf\",\"phx_close\",{}]", jr, jr);
  fp_send(t.fp, sys);
  fp_send(t.fp, close);
  free(sys);
  free(close);
  WAIT(t.token_needed == 1, 3000);
  ASSERT_EQ(t.systems, 2); /* "Subscribed to PostgreSQL", then the expiry */
  ASSERT(saw_message("Realtime: Token has expired 3 seconds ago"));
  ASSERT(saw_message("Realtime: token expired"));
  rt_set_token(t.rt, "tok3", 0);
  WAIT(t.joined == 2, 3000);
  ASSERT_STR(cJSON_GetObjectItem(payload_of(fp_last(t.fp, "phx_join")), "access_token")->valuestring,
             "tok3");
  finish();
}

TEST(joined_once_the_subscription_is_live) {
  setup();
  t.opts.live_timeout_ms = 60000;
  fp_send_subscribed(t.fp, 0);
  start();
  WAIT(fp_count(t.fp, "phx_join") == 1, 3000);
  /* Replied to, not yet live: changes are taken, but the channel is not
   * reported joined, so the caller does not reload yet (a reload now could
   * miss what is committed before the subscription is live). */
  send_change("[1002]", "INSERT", "tags");
  WAIT(t.nchanges == 1, 3000);
  run_for(100);
  ASSERT_EQ(t.joined, 0);
  ASSERT_EQ(t.states[t.nstates - 1], RT_JOINING);
  /* An "ok" for another join is not this one's. */
  send_system("999", "ok", "Subscribed to PostgreSQL");
  run_for(100);
  ASSERT_EQ(t.joined, 0);
  char *jr = last_join_ref();
  send_system(jr, "ok", "Subscribed to PostgreSQL");
  free(jr);
  WAIT(t.joined == 1, 3000);
  ASSERT_EQ(t.states[t.nstates - 1], RT_JOINED);
  ASSERT_EQ(t.systems, 2);
  finish();
}

TEST(live_fallback_without_a_system_message) {
  setup();
  t.opts.live_timeout_ms = 150;
  fp_send_subscribed(t.fp, 0);
  start();
  /* A server that never says "Subscribed to PostgreSQL" still works. */
  WAIT(t.joined == 1, 3000);
  ASSERT_EQ(t.states[t.nstates - 1], RT_JOINED);
  ASSERT_EQ(t.systems, 0);
  /* One that says it late makes the caller load again. */
  char *jr = last_join_ref();
  send_system(jr, "ok", "Subscribed to PostgreSQL");
  free(jr);
  WAIT(t.joined == 2, 3000);
  ASSERT_EQ(fp_count(t.fp, "phx_join"), 1);
  finish();
}

TEST(subscription_error_rejoins) {
  setup();
  t.opts.live_timeout_ms = 60000;
  fp_send_subscribed(t.fp, 0);
  start();
  WAIT(fp_count(t.fp, "phx_join") == 1, 3000);
  send_change("[1000]", "INSERT", "blocks"); /* proves the reply was read */
  WAIT(t.nchanges == 1, 3000);
  char *jr = last_join_ref();
  send_system(jr, "error", "Error parsing `filter` params");
  fp_send_subscribed(t.fp, 1);
  WAIT(saw_message("Realtime: subscription error: Error parsing `filter` params; "
                   "rejoining in 20 ms"),
       3000);
  ASSERT(saw_state(RT_ERROR));
  WAIT(t.joined == 1, 3000);
  /* It left the failed channel and joined again on the same socket. */
  const cJSON *leave = fp_last(t.fp, "phx_leave");
  ASSERT(leave);
  ASSERT_STR(str_at(leave, 0), jr);
  free(jr);
  ASSERT_EQ(fp_count(t.fp, "phx_join"), 2);
  ASSERT_EQ(fp_connections(t.fp), 1);
  ASSERT_EQ(t.states[t.nstates - 1], RT_JOINED);
  finish();
}

/* Tokens said to expire in 1970 and in 2100 (what Auth's expires_at says). */
#define JWT_EXPIRED "token-of-1970"
#define JWT_FRESH "token-of-2100"

TEST(token_expired_by_the_wall_clock_is_not_joined_with) {
  setup();
  t.cb.on_token_needed = on_token_needed;
  t.opts.access_token = JWT_EXPIRED;
  t.opts.access_token_expires_at = 1000;
  start();
  /* After a sleep the token may be dead before any timer noticed: a new one
   * is asked for instead of a join bound to be refused. */
  WAIT(t.token_needed == 1, 3000);
  ASSERT(saw_message("Realtime: token expired (by this machine's clock it expired"));
  ASSERT(saw_message("waiting for a new token"));
  run_for(100);
  ASSERT_EQ(fp_count(t.fp, "phx_join"), 0);
  rt_set_token(t.rt, JWT_FRESH, 4102444800.0);
  WAIT(t.joined == 1, 3000);
  ASSERT_STR(cJSON_GetObjectItem(payload_of(fp_last(t.fp, "phx_join")), "access_token")->valuestring,
             JWT_FRESH);
  ASSERT_EQ(t.token_needed, 1);
  finish();
}

TEST(token_expired_by_the_wall_clock_without_a_callback_joins) {
  setup();
  t.opts.access_token = JWT_EXPIRED;
  t.opts.access_token_expires_at = 1000;
  start();
  /* Nobody to ask for a token: the server decides, as before. */
  WAIT(t.joined == 1, 3000);
  ASSERT_STR(cJSON_GetObjectItem(payload_of(fp_last(t.fp, "phx_join")), "access_token")->valuestring,
             JWT_EXPIRED);
  finish();
}

TEST(fragmented_message) {
  setup();
  start();
  WAIT(t.joined == 1, 3000);
  const char *s = "[null,null,\"realtime:shelf\",\"postgres_changes\",{\"ids\":[1002],"
                  "\"data\":{\"type\":\"INSERT\",\"table\":\"tags\",\"record\":{\"id\":\"x\"}}}]";
  ASSERT_EQ(fp_send_fragmented(t.fp, s, 7), 0);
  WAIT(t.nchanges == 1, 3000);
  ASSERT_EQ(t.change_binding[0], 2);
  ASSERT_STR(t.change_type[0], "INSERT");
  finish();
}

TEST(oversized_message_reconnects) {
  setup();
  t.opts.max_message = 1024;
  start();
  WAIT(t.joined == 1, 3000);
  size_t n = 4000;
  char *s = util_malloc(n + 100);
  int h = snprintf(s, 100, "[null,null,\"realtime:shelf\",\"system\",{\"message\":\"");
  memset(s + h, 'y', n);
  strcpy(s + h + n, "\"}]");
  ASSERT_EQ(fp_send(t.fp, s), 0);
  free(s);
  WAIT(t.joined == 2, 3000);
  ASSERT(saw_message("Realtime: a message over 1 KiB arrived; reconnecting in 20 ms"));
  ASSERT_EQ(t.systems, 2); /* each join's "Subscribed", not the oversized one */
  ASSERT_EQ(fp_connections(t.fp), 2);
  finish();
}

TEST(malformed_frames_skipped) {
  setup();
  start();
  WAIT(t.joined == 1, 3000);
  fp_send(t.fp, "not json");
  fp_send(t.fp, "[1,2]");
  fp_send(t.fp, "{\"topic\":5}");
  fp_send(t.fp, "[null,null,\"realtime:shelf\",\"postgres_changes\",{\"ids\":\"x\"}]");
  fp_send(t.fp, "[null,null,\"realtime:shelf\",\"postgres_changes\",{\"ids\":[1000],\"data\":{}}]");
  send_change("[1000]", "UPDATE", "blocks");
  WAIT(t.nchanges == 1, 3000);
  ASSERT_EQ(t.change_binding[0], 0);
  ASSERT_EQ(fp_connections(t.fp), 1);
  ASSERT_EQ(t.joined, 1);
  finish();
}

TEST(close_while_joined) {
  setup();
  start();
  WAIT(t.joined == 1, 3000);
  int states_before = t.nstates;
  rt_close(t.rt, on_rt_closed, NULL);
  t.rt = NULL;
  ASSERT_EQ(t.rt_closed, 0); /* never from inside rt_close */
  WAIT(t.rt_closed == 1, 3000);
  WAIT(fp_count(t.fp, "phx_leave") == 1, 3000);
  WAIT(fp_open(t.fp) == 0, 3000);
  ASSERT_EQ(t.nstates, states_before); /* no callback after rt_close */
  finish();
}

TEST(close_while_connecting) {
  setup();
  start();
  rt_close(t.rt, on_rt_closed, NULL); /* before it even started */
  t.rt = NULL;
  WAIT(t.rt_closed == 1, 3000);
  ASSERT_EQ(t.nstates, 0);
  /* And with the name lookup in flight. */
  snprintf(t.url, sizeof t.url, "http://localhost:%d", fp_port(t.fp));
  start();
  WAIT(saw_state(RT_CONNECTING), 3000);
  rt_close(t.rt, on_rt_closed, NULL);
  t.rt = NULL;
  WAIT(t.rt_closed == 2, 3000);
  finish();
}

TEST(close_from_callback) {
  setup();
  t.close_in_joined = 1;
  start();
  WAIT(t.joined == 1 && fp_open(t.fp) == 0, 3000);
  finish();
}

TEST(bad_options) {
  setup();
  static const char *urls[] = {"ws://x", "http://", "http://h:0", "http://h:99999",
                               "http://[::1", "http://h:80x"};
  for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
    char *err = NULL;
    t.opts.url = urls[i];
    ASSERT(rt_new(&t.loop, &t.opts, &t.cb, NULL, &err) == NULL);
    ASSERT(err && strstr(err, "URL"));
    free(err);
  }
  t.opts.url = t.url;
  char *err = NULL;
  t.opts.topic = "shelf";
  ASSERT(rt_new(&t.loop, &t.opts, &t.cb, NULL, &err) == NULL);
  ASSERT(err && strstr(err, "topic"));
  free(err);
  t.opts.topic = "realtime:shelf";
  rt_binding bad = {"upsert", "public", "blocks", NULL};
  t.opts.bindings = &bad;
  t.opts.nbindings = 1;
  ASSERT(rt_new(&t.loop, &t.opts, &t.cb, NULL, &err) == NULL);
  ASSERT(err && strstr(err, "event"));
  free(err);
  finish();
}


/* supabase.ca_file adds to the system's CAs for the websocket, as it does
 * for HTTP: with the same options, a server signed by the file's CA and one
 * signed by a "system" CA (OpenSSL's SSL_CERT_FILE, for this process) are
 * both trusted, and one signed by neither is refused. */
TEST(wss_ca_file_adds_to_the_system_cas) {
  char dir[] = "/tmp/shelf-rt-tls.XXXXXX";
  ASSERT(mkdtemp(dir) != NULL);
  ASSERT_EQ(tls_make_ca_and_cert(dir, "private"), 0);
  ASSERT_EQ(tls_make_ca_and_cert(dir, "system"), 0);
  ASSERT_EQ(tls_make_ca_and_cert(dir, "stranger"), 0);
  char system_ca[256], private_ca[256];
  snprintf(system_ca, sizeof system_ca, "%s/system-ca.pem", dir);
  snprintf(private_ca, sizeof private_ca, "%s/private-ca.pem", dir);
  setenv("SSL_CERT_FILE", system_ca, 1);
  setup();
  pid_t pids[3] = {0, 0, 0};
  const char *names[3] = {"private", "system", "stranger"};
  int ports[3];
  for (int i = 0; i < 3; i++) {
    ports[i] = tls_front_start(dir, names[i], fp_port(t.fp), &pids[i]);
    if (ports[i] < 0)
      fprintf(stderr, "  cannot start the TLS front (node tests/stack/tls-proxy.mjs)\n");
    ASSERT(ports[i] > 0);
  }
  t.opts.ca_file = private_ca;
  int closed = 0;
  for (int i = 0; i < 2; i++) {
    snprintf(t.url, sizeof t.url, "https://localhost:%d", ports[i]);
    start();
    WAIT(t.joined == i + 1, 5000);
    rt_close(t.rt, on_rt_closed_count, &closed);
    t.rt = NULL;
    WAIT(closed == i + 1, 5000);
  }
  ASSERT_EQ(fp_connections(t.fp), 2);
  /* Verification is on: a certificate from an unknown CA is refused. */
  int before = t.nstates;
  snprintf(t.url, sizeof t.url, "https://localhost:%d", ports[2]);
  start();
  WAIT(find_message(before, "reconnecting") >= 0, 5000);
  ASSERT_EQ(t.joined, 2);
  ASSERT_EQ(fp_connections(t.fp), 2);
  finish();
  for (int i = 0; i < 3; i++)
    tls_front_stop(pids[i]);
  unsetenv("SSL_CERT_FILE");
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ASSERT_EQ(system(cmd), 0);
}

static const test_case test_cases[] = {
    TEST_ENTRY(parse_v2_array),
    TEST_ENTRY(parse_v1_object),
    TEST_ENTRY(parse_malformed),
    TEST_ENTRY(parse_huge),
    TEST_ENTRY(connect_join_and_route),
    TEST_ENTRY(heartbeat_answered),
    TEST_ENTRY(heartbeat_timeout_reconnects),
    TEST_ENTRY(server_close_reconnects_with_backoff),
    TEST_ENTRY(connection_refused_retries),
    TEST_ENTRY(join_error_reported),
    TEST_ENTRY(join_token_expired_waits_for_token),
    TEST_ENTRY(set_token_sends_access_token),
    TEST_ENTRY(token_set_while_joining_is_pushed),
    TEST_ENTRY(bindings_mismatch_is_an_error),
    TEST_ENTRY(two_clients_on_one_loop),
    TEST_ENTRY(token_expired_system_then_close),
    TEST_ENTRY(joined_once_the_subscription_is_live),
    TEST_ENTRY(live_fallback_without_a_system_message),
    TEST_ENTRY(subscription_error_rejoins),
    TEST_ENTRY(token_expired_by_the_wall_clock_is_not_joined_with),
    TEST_ENTRY(token_expired_by_the_wall_clock_without_a_callback_joins),
    TEST_ENTRY(fragmented_message),
    TEST_ENTRY(oversized_message_reconnects),
    TEST_ENTRY(malformed_frames_skipped),
    TEST_ENTRY(close_while_joined),
    TEST_ENTRY(close_while_connecting),
    TEST_ENTRY(close_from_callback),
    TEST_ENTRY(bad_options),
    TEST_ENTRY(wss_ca_file_adds_to_the_system_cas),
};

TEST_MAIN()
