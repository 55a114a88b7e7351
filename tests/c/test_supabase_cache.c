/* test_supabase_cache.c - the Supabase store with its local copy (sbcache.c)
 * against the fake Auth and PostgREST server (support/fake_supabase.c),
 * Realtime off: the first load of a saved session comes from the copy
 * without a request and is followed by a full refresh asked of the engine
 * (STORE_EV_RESYNC); later loads go to the server; sign-out deletes the
 * copy; a store opened without a session never reads it. */
#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fake_supabase.h"
#include "store_supabase.h"
#include "test.h"
#include "util.h"

#define USER_ID "11111111-2222-4333-8444-555555555555"
#define ROW_ID "aaaaaaaa-0000-4000-8000-000000000001"
#define PASSWORD "pw-Secret-4711"

typedef struct {
  uv_loop_t loop;
  uv_timer_t watchdog;
  int timed_out;
  fake_sb *srv;
  store *st;
  char dir[64], session[128], cache[128], url[64];
  const char *title; /* what the server's prompt is called now */
  const char *stamp; /* and its updated_at */
  int pages;         /* > 0: the prompts are this many rows, one a page */
  int bulk;          /* > 0: the prompts are this many rows, in one page */
  size_t backlog_max;
  int answers, status, resyncs, closed;
  cJSON *rows;
} fx;

static void route(void *data, const fake_sb_req *rq, int *status, char **body) {
  fx *f = data;
  if (strncmp(rq->target, "/auth/v1/token", 14) == 0) {
    *status = 200;
    *body = util_printf("{\"access_token\":\"at\",\"token_type\":\"bearer\",\"expires_in\":3600,"
                        "\"expires_at\":%.0f,\"refresh_token\":\"rt\",\"user\":{\"id\":\"" USER_ID
                        "\",\"email\":\"ada@example.com\"}}",
                        (double)time(NULL) + 3600);
  } else if (strcmp(rq->target, "/auth/v1/logout") == 0) {
    *status = 204;
  } else if (strncmp(rq->target, "/rest/v1/prompts?", 17) == 0 && f->bulk > 0) {
    *status = 200;
    if (strstr(rq->target, "&id=gt.")) {
      *body = util_strdup("[]");
      return;
    }
    size_t cap = (size_t)f->bulk * 192 + 16, len = 0;
    *body = util_malloc(cap);
    for (int n = 1; n <= f->bulk; n++)
      len += (size_t)snprintf(*body + len, cap - len,
                              "%s{\"id\":\"aaaaaaaa-0000-4000-8000-%012d\",\"user_id\":\"" USER_ID
                              "\",\"title\":\"row %d\",\"content\":\"c\",\"tags\":[],"
                              "\"updated_at\":\"2026-01-01T00:00:00+00:00\"}",
                              n == 1 ? "[" : ",", n, n);
    snprintf(*body + len, cap - len, "]");
  } else if (strncmp(rq->target, "/rest/v1/prompts?", 17) == 0 && f->pages > 0) {
    /* Row n (n = 1..pages) is the page after row n - 1. */
    const char *gt = strstr(rq->target, "&id=gt.");
    int n = gt ? atoi(gt + strlen("&id=gt.") + 24) + 1 : 1;
    *status = 200;
    *body = n > f->pages ? util_strdup("[]")
                         : util_printf("[{\"id\":\"aaaaaaaa-0000-4000-8000-%012d\",\"user_id\":\"" USER_ID
                                       "\",\"title\":\"row %d\",\"content\":\"%0600d\",\"tags\":[],"
                                       "\"updated_at\":\"2026-01-01T00:00:00+00:00\"}]",
                                       n, n, n);
  } else if (strncmp(rq->target, "/rest/v1/prompts?", 17) == 0 && strstr(rq->target, "&id=gt.")) {
    *status = 200; /* the page after the one row: the end of a read */
    *body = util_strdup("[]");
  } else if (strncmp(rq->target, "/rest/v1/prompts?", 17) == 0) {
    *status = 200;
    *body = util_printf("[{\"id\":\"" ROW_ID "\",\"user_id\":\"" USER_ID "\",\"title\":\"%s\","
                        "\"content\":\"c\",\"tags\":[],\"updated_at\":\"%s\"}]",
                        f->title, f->stamp);
  } else if (strncmp(rq->target, "/rest/v1/", 9) == 0) {
    *status = 200;
    *body = util_strdup("[]");
  }
}

static void on_watchdog(uv_timer_t *t) { ((fx *)t->data)->timed_out = 1; }

static void run_until(fx *f, const int *value, int target) {
  f->timed_out = 0;
  uv_timer_start(&f->watchdog, on_watchdog, 15000, 0);
  while (*value < target && !f->timed_out)
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_timer_stop(&f->watchdog);
  ASSERT(*value >= target);
}

static void on_answer(void *data, int status, const char *error, cJSON *rows) {
  fx *f = data;
  (void)error;
  f->status = status;
  cJSON_Delete(f->rows);
  f->rows = rows;
  f->answers++;
}

static void on_event(void *data, const store_event *ev) {
  fx *f = data;
  if (ev->type == STORE_EV_RESYNC)
    f->resyncs++;
}

static void on_closed(void *data) { ((fx *)data)->closed++; }

static void fx_open_store(fx *f) {
  store_supabase_config cfg = {0};
  cfg.url = f->url;
  cfg.anon_key = "test-anon-key";
  cfg.session_path = f->session;
  cfg.cache_path = f->cache;
  cfg.cache_backlog_max = f->backlog_max;
  char *err = NULL;
  f->st = store_supabase_open(&f->loop, &cfg, &err);
  ASSERT(f->st);
  free(err);
  ASSERT_EQ(store_watch(f->st, on_event, f), 0);
}

static void fx_close_store(fx *f) {
  int before = f->closed;
  store_close(f->st, on_closed, f);
  f->st = NULL;
  run_until(f, &f->closed, before + 1);
}

static void fx_init(fx *f) {
  memset(f, 0, sizeof *f);
  ASSERT_EQ(uv_loop_init(&f->loop), 0);
  uv_timer_init(&f->loop, &f->watchdog);
  f->watchdog.data = f;
  snprintf(f->dir, sizeof f->dir, "/tmp/shelf-test-sbcache.XXXXXX");
  ASSERT(mkdtemp(f->dir));
  snprintf(f->session, sizeof f->session, "%s/session.json", f->dir);
  snprintf(f->cache, sizeof f->cache, "%s/cache.db", f->dir);
  f->srv = fake_sb_start(&f->loop, route, f);
  snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", fake_sb_port(f->srv));
  f->title = "first";
  f->stamp = "2026-01-01T00:00:00+00:00";
}

static void fx_free(fx *f) {
  if (f->st)
    fx_close_store(f);
  fake_sb_stop(f->srv);
  uv_close((uv_handle_t *)&f->watchdog, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&f->loop), 0);
  cJSON_Delete(f->rows);
  char *cmd = util_printf("rm -rf '%s'", f->dir);
  ASSERT_EQ(system(cmd), 0);
  free(cmd);
}

/* Sign in with the password (the fake takes any). */
static void log_in(fx *f) {
  int before = f->answers;
  ASSERT_EQ(f->st->ops->login(f->st, "ada@example.com", PASSWORD, on_answer, f), 0);
  run_until(f, &f->answers, before + 1);
  ASSERT_EQ(f->status, 0);
}

/* Fetch every prompt; returns the first one's title. */
static const char *fetch_title(fx *f) {
  int before = f->answers;
  ASSERT_EQ(store_fetch(f->st, STORE_PROMPTS, NULL, on_answer, f), 0);
  run_until(f, &f->answers, before + 1);
  ASSERT_EQ(f->status, 0);
  ASSERT_EQ(cJSON_GetArraySize(f->rows), 1);
  return cJSON_GetObjectItem(f->rows->child, "title")->valuestring;
}

/* Reads of the prompts (their first pages). */
static int prompt_gets(fx *f) {
  return fake_sb_count_prefix(f->srv, "/rest/v1/prompts?select=*&user_id=eq." USER_ID "&order=");
}

TEST(a_saved_session_starts_from_the_copy_then_refreshes) {
  fx f;
  fx_init(&f);
  fx_open_store(&f);
  /* Signed out at open: nothing is read from the copy. */
  log_in(&f);
  ASSERT_STR(fetch_title(&f), "first");
  ASSERT_EQ(prompt_gets(&f), 1);
  fx_close_store(&f); /* the copy's writes finish first */
  struct stat st;
  ASSERT_EQ(stat(f.cache, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0600);

  /* The next start: the server has moved on. */
  f.title = "second";
  fx_open_store(&f);
  ASSERT_STR(fetch_title(&f), "first"); /* from the copy */
  ASSERT_EQ(prompt_gets(&f), 1);        /* no request for it */
  /* The full refresh is asked for once the copy answered. */
  run_until(&f, &f.resyncs, 1);
  ASSERT_STR(fetch_title(&f), "second"); /* the refresh goes to the server */
  ASSERT_EQ(prompt_gets(&f), 2);
  fx_close_store(&f);

  /* And the copy holds what the server said last. */
  fx_open_store(&f);
  ASSERT_STR(fetch_title(&f), "second");
  ASSERT_EQ(prompt_gets(&f), 2);
  /* Sign-out deletes it. */
  int before = f.answers;
  ASSERT_EQ(f.st->ops->logout(f.st, on_answer, &f), 0);
  run_until(&f, &f.answers, before + 1);
  fx_close_store(&f);
  ASSERT(stat(f.cache, &st) < 0);
  fx_free(&f);
}

TEST(without_a_saved_session_the_copy_goes) {
  fx f;
  fx_init(&f);
  fx_open_store(&f);
  log_in(&f);
  ASSERT_STR(fetch_title(&f), "first");
  fx_close_store(&f);
  struct stat st;
  ASSERT_EQ(stat(f.cache, &st), 0);
  /* The session ended while shelfd was not running. */
  ASSERT_EQ(unlink(f.session), 0);
  fx_open_store(&f);
  fx_close_store(&f); /* its forget runs before the close ends */
  ASSERT(stat(f.cache, &st) < 0);
  fx_free(&f);
}

typedef struct {
  int parts, ends, status, rows;
  char last[40]; /* the last id seen */
  int unordered; /* ids that did not come after the one before */
} parts_seen;

static void on_part(void *data, int status, const char *error, cJSON *rows) {
  parts_seen *p = data;
  (void)error;
  if (status == STORE_PAGE)
    p->parts++;
  else
    p->ends++, p->status = status;
  p->rows += cJSON_GetArraySize(rows);
  const cJSON *row;
  cJSON_ArrayForEach(row, rows) {
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(row, "id"));
    p->unordered += !id || strcmp(id, p->last) <= 0;
    snprintf(p->last, sizeof p->last, "%s", id ? id : "");
  }
  cJSON_Delete(rows);
}

/* A read of every row's summary comes to the caller a page at a time, and
 * while the local copy's writer is behind (here past 1 byte: after every
 * page) the next page waits for it, then goes on. */
TEST(a_read_in_pages_comes_in_parts_and_waits_for_the_copy) {
  fx f;
  fx_init(&f);
  f.pages = 5;
  f.backlog_max = 1;
  fx_open_store(&f);
  log_in(&f);
  parts_seen p = {0};
  ASSERT_EQ(f.st->ops->fetch_summaries(f.st, STORE_PROMPTS, NULL, on_part, &p), 0);
  run_until(&f, &p.ends, 1);
  ASSERT_EQ(p.status, 0);
  ASSERT_EQ(p.parts, 5); /* a row a part; without a count, an empty page ends it */
  ASSERT_EQ(p.rows, 5);
  ASSERT_EQ(p.unordered, 0);
  fx_close_store(&f);
  /* The copy holds them all. */
  f.pages = 0;
  fx_open_store(&f);
  int before = f.answers;
  ASSERT_EQ(store_fetch(f.st, STORE_PROMPTS, NULL, on_answer, &f), 0);
  run_until(&f, &f.answers, before + 1);
  ASSERT_EQ(cJSON_GetArraySize(f.rows), 5);
  fx_free(&f);
}

/* A saved session's first load of summaries from the local copy comes in
 * parts of 2000 rows, in id order, each row once. */
TEST(the_first_load_from_the_copy_comes_in_parts) {
  fx f;
  fx_init(&f);
  f.bulk = 4500;
  fx_open_store(&f);
  log_in(&f);
  parts_seen p = {0};
  ASSERT_EQ(f.st->ops->fetch_summaries(f.st, STORE_PROMPTS, NULL, on_part, &p), 0);
  run_until(&f, &p.ends, 1);
  ASSERT_EQ(p.rows, 4500);
  fx_close_store(&f);
  int gets = prompt_gets(&f);
  fx_open_store(&f);
  p = (parts_seen){0};
  ASSERT_EQ(f.st->ops->fetch_summaries(f.st, STORE_PROMPTS, NULL, on_part, &p), 0);
  run_until(&f, &p.ends, 1);
  ASSERT_EQ(p.status, 0);
  ASSERT_EQ(p.parts, 2); /* 2000, 2000, and the last 500 */
  ASSERT_EQ(p.rows, 4500);
  ASSERT_EQ(p.unordered, 0);
  ASSERT_EQ(prompt_gets(&f), gets); /* none from the server */
  fx_free(&f);
}

/* A refresh's delta reads a changed row from the copy when the copy has it
 * at the stamp the server reports (the row a write here changed), and from
 * the server when not. */
TEST(a_delta_reads_a_changed_row_from_the_copy_when_it_has_that_stamp) {
  fx f;
  fx_init(&f);
  fx_open_store(&f);
  log_in(&f);
  ASSERT_STR(fetch_title(&f), "first");
  fx_close_store(&f); /* the copy's writes finish first */
  fx_open_store(&f);
  ASSERT_STR(fetch_title(&f), "first"); /* the first load, from the copy */
  run_until(&f, &f.resyncs, 1);
  fake_sb_set_headers(f.srv, "Content-Range: 0-0/1\r\n");
  const char *by_id = "/rest/v1/prompts?select=*&id=in.";
  int reads = fake_sb_count_prefix(f.srv, by_id);
  int before = f.answers;
  ASSERT_EQ(store_delta(f.st, STORE_PROMPTS, "2025-12-31T00:00:00+00:00", NULL, on_answer, &f), 0);
  run_until(&f, &f.answers, before + 1);
  ASSERT_EQ(f.status, 0);
  ASSERT_EQ(cJSON_GetArraySize(f.rows), 2);
  ASSERT_EQ(cJSON_GetArrayItem(f.rows, 0)->valuedouble, 0); /* none at or before the mark */
  ASSERT_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(f.rows, 1), "title")->valuestring, "first");
  ASSERT_EQ(fake_sb_count_prefix(f.srv, by_id), reads);
  /* Changed again on the server: the copy's stamp is older, so it is read there. */
  f.title = "second";
  f.stamp = "2026-02-01T00:00:00+00:00";
  before = f.answers;
  ASSERT_EQ(store_delta(f.st, STORE_PROMPTS, "2026-01-01T00:00:00+00:00", NULL, on_answer, &f), 0);
  run_until(&f, &f.answers, before + 1);
  ASSERT_EQ(f.status, 0);
  ASSERT_EQ(cJSON_GetArraySize(f.rows), 2);
  ASSERT_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(f.rows, 1), "title")->valuestring, "second");
  ASSERT_EQ(fake_sb_count_prefix(f.srv, by_id), reads + 1);
  fake_sb_set_headers(f.srv, NULL);
  fx_free(&f);
}

static const test_case test_cases[] = {
    TEST_ENTRY(a_saved_session_starts_from_the_copy_then_refreshes),
    TEST_ENTRY(without_a_saved_session_the_copy_goes),
    TEST_ENTRY(a_read_in_pages_comes_in_parts_and_waits_for_the_copy),
    TEST_ENTRY(the_first_load_from_the_copy_comes_in_parts),
    TEST_ENTRY(a_delta_reads_a_changed_row_from_the_copy_when_it_has_that_stamp),
};

TEST_MAIN()
