/* The store contract of store.h, for both backends: every call returns at
 * once and its callback runs later from the loop, never inside the call that
 * started it (nor inside close). A wrapping store counts how deep the caller
 * is in store calls and records every callback that runs while it is. The
 * Supabase store is tested with no session and an address where nothing
 * listens: the paths that answer without the network are the ones at risk. */
#include <stdlib.h>
#include <unistd.h>

#include "store.h"
#include "store_supabase.h"
#include "test.h"
#include "util.h"

typedef struct {
  store base;
  store *inner;
  int depth;      /* in a call into inner */
  int answered;   /* callbacks run */
  int inside;     /* ... of which inside a call */
  int started;    /* calls that returned 0 (each owes one callback) */
  int closed;
  char last_inside[128];
} checked;

typedef struct {
  checked *c;
  const char *what;
} ticket;

static void checked_done(void *data, int status, const char *error, cJSON *rows) {
  ticket *t = data;
  (void)status;
  (void)error;
  t->c->answered++;
  if (t->c->depth > 0) {
    t->c->inside++;
    snprintf(t->c->last_inside, sizeof t->c->last_inside, "%s", t->what);
  }
  cJSON_Delete(rows);
  free(t);
}

static checked *of(store *st) { return (checked *)st; }

/* Run one call of the inner store with the depth counted. */
#define CALL(C_, WHAT_, EXPR_)                                               \
  do {                                                                       \
    ticket *t_ = util_calloc(1, sizeof *t_);                                 \
    t_->c = (C_);                                                            \
    t_->what = (WHAT_);                                                      \
    (C_)->depth++;                                                           \
    int rc_ = (EXPR_);                                                       \
    (C_)->depth--;                                                           \
    if (rc_ == 0)                                                            \
      (C_)->started++;                                                       \
    else                                                                     \
      free(t_);                                                              \
    return rc_;                                                              \
  } while (0)

static int ck_insert(store *st, store_table t, const cJSON *rec, store_done_cb cb, void *d) {
  (void)cb, (void)d;
  CALL(of(st), "insert", store_insert(of(st)->inner, t, rec, checked_done, t_));
}
static int ck_update(store *st, store_table t, const char *id, const cJSON *f, store_done_cb cb,
                     void *d) {
  (void)cb, (void)d;
  CALL(of(st), "update", store_update(of(st)->inner, t, id, f, checked_done, t_));
}
static int ck_remove(store *st, store_table t, const char *id, store_done_cb cb, void *d) {
  (void)cb, (void)d;
  CALL(of(st), "remove", store_remove(of(st)->inner, t, id, checked_done, t_));
}
static int ck_stamps(store *st, store_table t, store_done_cb cb, void *d) {
  (void)cb, (void)d;
  CALL(of(st), "stamps", store_stamps(of(st)->inner, t, checked_done, t_));
}
static int ck_fetch(store *st, store_table t, const cJSON *ids, store_done_cb cb, void *d) {
  (void)cb, (void)d;
  CALL(of(st), ids ? "fetch of ids" : "fetch of all",
       store_fetch(of(st)->inner, t, ids, checked_done, t_));
}
static int ck_since(store *st, store_table t, const char *stamp, const cJSON *known,
                    store_done_cb cb, void *d) {
  (void)cb, (void)d;
  CALL(of(st), "since", store_since(of(st)->inner, t, stamp, known, checked_done, t_));
}
static int ck_count_until(store *st, store_table t, const char *stamp, store_done_cb cb,
                          void *d) {
  (void)cb, (void)d;
  CALL(of(st), "count_until", store_count_until(of(st)->inner, t, stamp, checked_done, t_));
}
static int ck_login(store *st, const char *e, const char *p, store_done_cb cb, void *d) {
  (void)cb, (void)d;
  CALL(of(st), "login", of(st)->inner->ops->login(of(st)->inner, e, p, checked_done, t_));
}
static int ck_logout(store *st, store_done_cb cb, void *d) {
  (void)cb, (void)d;
  CALL(of(st), "logout", of(st)->inner->ops->logout(of(st)->inner, checked_done, t_));
}

static int ck_search(store *st, const char *q, unsigned tables, int limit, store_done_cb cb,
                     void *d) {
  (void)cb, (void)d;
  CALL(of(st), "search", store_search(of(st)->inner, q, tables, limit, checked_done, t_));
}

static void ck_closed(void *data) { of(data)->closed = 1; }

static const struct store_ops ck_ops = {
    .name = "checked",
    .insert = ck_insert,
    .update = ck_update,
    .remove = ck_remove,
    .stamps = ck_stamps,
    .fetch = ck_fetch,
    .since = ck_since,
    .count_until = ck_count_until,
    .login = ck_login,
    .logout = ck_logout,
    .search = ck_search,
};

/* Close the inner store inside a counted call too: what it hands back must
 * come later. */
static void ck_close(checked *c) {
  c->depth++;
  store_close(c->inner, ck_closed, c);
  c->depth--;
}

static void report(const checked *c) {
  if (c->inside)
    fprintf(stderr, "  %d of %d callbacks ran inside a call (last: %s)\n", c->inside,
            c->answered, c->last_inside);
}

static cJSON *a_record(void) {
  char id[UTIL_UUID_LEN + 1];
  util_uuid4(id);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "id", id);
  cJSON_AddStringToObject(o, "title", "t");
  cJSON_AddStringToObject(o, "content", "c");
  return o;
}

/* Every kind of call, several times over, some while others are queued. */
static void exercise(checked *c, store *st) {
  char other[UTIL_UUID_LEN + 1];
  util_uuid4(other);
  cJSON *ids = cJSON_CreateArray();
  cJSON *one = cJSON_CreateArray();
  cJSON_AddItemToArray(one, cJSON_CreateString(other));
  for (int i = 0; i < 3; i++) {
    cJSON *rec = a_record();
    store_insert(st, STORE_PROMPTS, rec, NULL, NULL);
    cJSON_Delete(rec);
    cJSON *f = cJSON_Parse("{\"title\":\"u\"}");
    store_update(st, STORE_PROMPTS, other, f, NULL, NULL);
    cJSON_Delete(f);
    store_remove(st, STORE_BLOCKS, other, NULL, NULL);
    store_stamps(st, STORE_PROMPTS, NULL, NULL);
    store_fetch(st, STORE_BLOCKS, NULL, NULL, NULL);
    store_fetch(st, STORE_BLOCKS, ids, NULL, NULL); /* no ids at all */
    store_fetch(st, STORE_BLOCKS, one, NULL, NULL);
    store_since(st, STORE_PROMPTS, "2026-01-01T00:00:00+00:00", NULL, NULL, NULL);
    store_since(st, STORE_PROMPTS, "2026-01-01T00:00:00+00:00", one, NULL, NULL);
    store_count_until(st, STORE_PROMPTS, "2026-01-01T00:00:00+00:00", NULL, NULL);
    store_search(st, "text", (1u << STORE_BLOCKS) | (1u << STORE_PROMPTS), 10, NULL, NULL);
    store_search(st, "", 1u << STORE_BLOCKS, 10, NULL, NULL); /* nothing to ask */
    store_search(st, "ab", 0, 10, NULL, NULL);                 /* no table */
  }
  cJSON_Delete(ids);
  cJSON_Delete(one);
  ASSERT(c->started >= 15);
}

static void run_until_closed(uv_loop_t *loop, checked *c) {
  double until = util_now_ms() + 20000;
  while (!c->closed && util_now_ms() < until)
    uv_run(loop, UV_RUN_ONCE);
  ASSERT(c->closed);
  uv_run(loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(loop), 0);
}

TEST(sqlite_never_answers_inside_a_call) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  char dir[] = "/tmp/shelf-contract-XXXXXX";
  ASSERT(mkdtemp(dir) != NULL);
  char *path = util_printf("%s/library.db", dir);
  char *err = NULL;
  checked c = {.base.ops = &ck_ops};
  c.inner = store_sqlite_open(&loop, path, &err);
  ASSERT(c.inner != NULL);
  exercise(&c, &c.base);
  /* Half of it answered, then close with the rest still queued. */
  while (c.answered < c.started / 2)
    uv_run(&loop, UV_RUN_ONCE);
  exercise(&c, &c.base);
  ck_close(&c);
  run_until_closed(&loop, &c);
  report(&c);
  ASSERT_EQ(c.answered, c.started);
  ASSERT_EQ(c.inside, 0);
  char *cmd = util_printf("rm -rf %s", dir);
  ASSERT_EQ(system(cmd), 0);
  free(cmd);
  free(path);
}

TEST(supabase_never_answers_inside_a_call) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  char dir[] = "/tmp/shelf-contract-XXXXXX";
  ASSERT(mkdtemp(dir) != NULL);
  char *session = util_printf("%s/session.json", dir); /* none: signed out */
  store_supabase_config cfg = {0};
  cfg.url = "http://127.0.0.1:9"; /* discard: nothing listens */
  cfg.anon_key = "anon";
  cfg.session_path = session;
  cfg.realtime = 0;
  cfg.connect_timeout_ms = 2000;
  char *err = NULL;
  checked c = {.base.ops = &ck_ops};
  c.inner = store_supabase_open(&loop, &cfg, &err);
  ASSERT(c.inner != NULL);
  /* Signed out: writes fail, reads are empty, a sign-out has nothing to
   * tell the server; all of it is known without the network. */
  exercise(&c, &c.base);
  ASSERT_EQ(c.base.ops->logout(&c.base, NULL, NULL), 0);
  while (c.answered < c.started)
    uv_run(&loop, UV_RUN_ONCE);
  /* A sign-in goes to the network; close while it is under way. */
  ASSERT_EQ(c.base.ops->login(&c.base, "a@example.com", "pw", NULL, NULL), 0);
  exercise(&c, &c.base);
  ck_close(&c);
  run_until_closed(&loop, &c);
  report(&c);
  ASSERT_EQ(c.answered, c.started);
  ASSERT_EQ(c.inside, 0);
  char *cmd = util_printf("rm -rf %s", dir);
  ASSERT_EQ(system(cmd), 0);
  free(cmd);
  free(session);
}

static const test_case test_cases[] = {
    TEST_ENTRY(sqlite_never_answers_inside_a_call),
    TEST_ENTRY(supabase_never_answers_inside_a_call),
};

TEST_MAIN()
