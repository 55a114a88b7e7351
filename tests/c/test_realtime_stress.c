/* test_realtime_stress.c - Realtime torn down and set up again 200 times
 * (sign-ins, sign-outs and user switches, as the Supabase store does them)
 * while HTTP requests run without pause (a new curl client at every switch,
 * so curl resolves names on its own threads right then) and changes arrive
 * over each channel. Checks that every change reaches the client it was
 * meant for, that every HTTP request succeeds (a descriptor closed or
 * swapped under curl would fail one), that one libwebsockets context served
 * all of it, and that the process ends with exactly the descriptors it
 * started with and an empty loop. Runs under ASan in the test build; run it
 * under valgrind from a build without sanitizers (see tests/valgrind/). */
#include <dirent.h>
#include <netdb.h>
#include <string.h>
#include <unistd.h>

#include "fake_phoenix.h"
#include "http.h"
#include "lws_compat.h"
#include "realtime.h"
#include "test.h"
#include "util.h"

#define CYCLES 200
#define HTTP_IN_FLIGHT 4

/* --- a tiny HTTP server: "ok" to every request, then close ---------------- */

typedef struct {
  uv_tcp_t tcp;
  char in[4096];
  size_t len;
  int answered;
} hs_conn;

static struct {
  uv_loop_t loop;
  uv_tcp_t listener;
  int http_port;
  fake_phoenix *fp;
  char host[256]; /* a name curl resolves on a thread of its own */
  http_client *http;
  int http_closing; /* clients still closing */
  long http_ok, http_bad, http_started;
  char http_url[300];
  rt_client *rt; /* the signed-in user's client, or NULL */
  int rt_closing;
  int cycle;            /* the current client's number */
  int joined_cycle;     /* the last cycle whose client went live */
  int changes, changes_wrong;
  int server_conns_open;
  int listener_closed;
  int fp_closed;
} s;

static void hs_on_closed(uv_handle_t *h) {
  free(h->data);
  s.server_conns_open--;
}

static void hs_on_written(uv_write_t *req, int status) {
  (void)status;
  hs_conn *c = req->data;
  free(req);
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, hs_on_closed);
}

static void hs_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  hs_conn *c = h->data;
  buf->base = c->in + c->len;
  buf->len = sizeof c->in - c->len - 1;
}

static void hs_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  hs_conn *c = st->data;
  if (n < 0 || c->len + (size_t)n >= sizeof c->in - 1) {
    if (!uv_is_closing((uv_handle_t *)st))
      uv_close((uv_handle_t *)st, hs_on_closed);
    return;
  }
  c->len += (size_t)n;
  c->in[c->len] = '\0';
  if (c->answered || !strstr(c->in, "\r\n\r\n"))
    return;
  c->answered = 1;
  static char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
  uv_buf_t b = uv_buf_init(reply, sizeof reply - 1);
  uv_write_t *w = util_malloc(sizeof *w);
  w->data = c;
  uv_read_stop(st);
  if (uv_write(w, st, &b, 1, hs_on_written) < 0) {
    free(w);
    uv_close((uv_handle_t *)st, hs_on_closed);
  }
}

static void hs_on_connection(uv_stream_t *l, int status) {
  if (status < 0)
    return;
  hs_conn *c = util_calloc(1, sizeof *c);
  uv_tcp_init(l->loop, &c->tcp);
  c->tcp.data = c;
  s.server_conns_open++;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
    uv_close((uv_handle_t *)&c->tcp, hs_on_closed);
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, hs_on_alloc, hs_on_read);
}

static void hs_on_listener_closed(uv_handle_t *h) {
  (void)h;
  s.listener_closed = 1;
}

/* --- HTTP traffic ----------------------------------------------------------- */

static void http_next(void);

static void on_http_done(void *data, const http_response *res) {
  (void)data;
  if (res->status == 200 && res->body_len == 2 && memcmp(res->body, "ok", 2) == 0) {
    s.http_ok++;
  } else {
    s.http_bad++;
    fprintf(stderr, "  HTTP request failed: status %ld, %s\n", res->status,
            res->error ? res->error : "(no error)");
  }
  http_next();
}

static void http_next(void) {
  while (s.http && http_pending(s.http) < HTTP_IN_FLIGHT) {
    long id = http_request(s.http, "GET", s.http_url, NULL, NULL, 0, on_http_done, NULL);
    ASSERT(id > 0);
    s.http_started++;
  }
}

static void on_http_closed(void *data) {
  (void)data;
  s.http_closing--;
}

/* A fresh curl client (its own DNS cache: the name is resolved again, on a
 * thread) in place of the current one, whose requests are cancelled. */
static void http_swap(void) {
  if (s.http) {
    s.http_closing++;
    http_client_close(s.http, on_http_closed, NULL);
  }
  char *err = NULL;
  s.http = http_client_new(&s.loop, NULL, &err);
  if (!s.http)
    fprintf(stderr, "  http_client_new: %s\n", err);
  ASSERT(s.http);
  http_next();
}

/* --- Realtime ----------------------------------------------------------------- */

static const rt_binding bindings[] = {
    {"*", "public", "blocks", NULL},
    {"DELETE", "public", "blocks", NULL},
};

static void on_joined(void *data) {
  int cycle = (int)(intptr_t)data;
  if (cycle == s.cycle)
    s.joined_cycle = cycle;
}

static void on_change(void *data, int binding, const cJSON *change) {
  int cycle = (int)(intptr_t)data;
  const cJSON *rec = cJSON_GetObjectItem(change, "record");
  const cJSON *id = cJSON_GetObjectItem(rec, "id");
  char want[32];
  snprintf(want, sizeof want, "r%d", cycle);
  if (cycle == s.cycle && binding == 0 && cJSON_IsString(id) && strcmp(id->valuestring, want) == 0)
    s.changes++;
  else
    s.changes_wrong++;
}

static void on_rt_closed(void *data) {
  (void)data;
  s.rt_closing--;
}

static void sign_in(int cycle) {
  char url[300], topic[64], token[64];
  snprintf(url, sizeof url, "http://%s:%d", s.host, fp_port(s.fp));
  snprintf(topic, sizeof topic, "realtime:user-%d", cycle % 3); /* three users */
  snprintf(token, sizeof token, "token-%d", cycle);
  rt_options o = {0};
  o.url = url;
  o.anon_key = "anon";
  o.access_token = token;
  o.topic = topic;
  o.bindings = bindings;
  o.nbindings = 2;
  rt_callbacks cb = {0};
  cb.on_joined = on_joined;
  cb.on_change = on_change;
  s.cycle = cycle;
  char *err = NULL;
  s.rt = rt_new(&s.loop, &o, &cb, (void *)(intptr_t)cycle, &err);
  if (!s.rt)
    fprintf(stderr, "  rt_new: %s\n", err);
  ASSERT(s.rt);
}

static void sign_out(void) {
  if (!s.rt)
    return;
  s.rt_closing++;
  rt_close(s.rt, on_rt_closed, NULL);
  s.rt = NULL;
}

#define WAIT(cond, ms)                                                        \
  do {                                                                        \
    uint64_t deadline_ = uv_now(&s.loop) + (ms);                              \
    while (!(cond)) {                                                         \
      if (uv_now(&s.loop) > deadline_) {                                      \
        fprintf(stderr, "  %s:%d: timed out waiting for %s\n", __FILE__,      \
                __LINE__, #cond);                                             \
        longjmp(test_jmp, 1);                                                 \
      }                                                                       \
      uv_run(&s.loop, UV_RUN_ONCE);                                           \
    }                                                                         \
  } while (0)

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (!d)
    return -1;
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

/* The machine's own name when it resolves to this machine (curl resolves it
 * on a thread; "localhost" it answers itself), else "localhost". */
static void pick_host(void) {
  snprintf(s.host, sizeof s.host, "localhost");
  char name[200];
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (gethostname(name, sizeof name) != 0 || getaddrinfo(name, NULL, &hints, &res) != 0)
    return;
  const struct sockaddr_in *a = (const struct sockaddr_in *)res->ai_addr;
  if (ntohl(a->sin_addr.s_addr) == INADDR_LOOPBACK)
    snprintf(s.host, sizeof s.host, "%s", name);
  freeaddrinfo(res);
}

static void on_fp_closed(void *data) {
  (void)data;
  s.fp_closed = 1;
}

TEST(sign_in_out_and_switch_during_http_traffic) {
  /* Before counting: the resolver's first use loads its modules, and
   * libuv's first loop makes the pipe it keeps for the process's life. */
  pick_host();
  uv_loop_t first;
  ASSERT_EQ(uv_loop_init(&first), 0);
  ASSERT_EQ(uv_loop_close(&first), 0);
  int fds_before = count_fds();
  ASSERT(fds_before > 0);
  ASSERT_EQ(uv_loop_init(&s.loop), 0);
  s.fp = fp_new(&s.loop);
  ASSERT(s.fp);
  uv_tcp_init(&s.loop, &s.listener);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  ASSERT_EQ(uv_tcp_bind(&s.listener, (const struct sockaddr *)&addr, 0), 0);
  ASSERT_EQ(uv_listen((uv_stream_t *)&s.listener, 128, hs_on_connection), 0);
  int len = sizeof addr;
  uv_tcp_getsockname(&s.listener, (struct sockaddr *)&addr, &len);
  s.http_port = ntohs(addr.sin_port);
  snprintf(s.http_url, sizeof s.http_url, "http://%s:%d/items", s.host, s.http_port);
  s.joined_cycle = -1;
  http_swap();

  for (int i = 0; i < CYCLES; i++) {
    switch (i % 4) {
    case 0: /* sign out, then sign in once the old client has gone */
      sign_out();
      http_swap();
      WAIT(s.rt_closing == 0, 5000);
      sign_in(i);
      break;
    default: /* switch user: the new client starts while the old one closes */
      sign_out();
      http_swap();
      sign_in(i);
      break;
    }
    WAIT(s.joined_cycle == i, 5000);
    int want = s.changes + 1;
    char *msg = util_printf("[null,null,\"realtime:user-%d\",\"postgres_changes\",{\"ids\":[1000],"
                            "\"data\":{\"schema\":\"public\",\"table\":\"blocks\",\"type\":"
                            "\"INSERT\",\"record\":{\"id\":\"r%d\"}}}]",
                            i % 3, i);
    ASSERT_EQ(fp_send(s.fp, msg), 0);
    free(msg);
    WAIT(s.changes == want, 5000);
  }
  sign_out();
  WAIT(s.rt_closing == 0, 5000);
  ASSERT_EQ(s.changes, CYCLES);
  ASSERT_EQ(s.changes_wrong, 0);
  ASSERT_EQ(s.http_bad, 0);
  ASSERT(s.http_ok > CYCLES); /* traffic ran all along */
  ASSERT_EQ(lwsc_contexts_made(), 1);
  fprintf(stderr, "  %d cycles, %ld HTTP requests answered, host %s\n", CYCLES, s.http_ok,
          s.host);

  /* Exit, in shelfd's order: the HTTP client, then libwebsockets. */
  s.http_closing++;
  http_client_close(s.http, on_http_closed, NULL);
  s.http = NULL;
  WAIT(s.http_closing == 0, 5000);
  ASSERT_EQ(rt_shutdown(), 0);
  fp_close(s.fp, on_fp_closed, NULL);
  uv_close((uv_handle_t *)&s.listener, hs_on_listener_closed);
  WAIT(!uv_loop_alive(&s.loop), 5000); /* lws's handles too are gone */
  ASSERT(s.fp_closed && s.listener_closed);
  ASSERT_EQ(s.server_conns_open, 0);
  ASSERT_EQ(uv_loop_close(&s.loop), 0);
  ASSERT_EQ(count_fds(), fds_before);
}

static const test_case test_cases[] = {
    TEST_ENTRY(sign_in_out_and_switch_during_http_traffic),
};

TEST_MAIN()
