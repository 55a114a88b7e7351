/* Tests of the incremental refresh against the test store: a refresh asks
 * each table only what changed since its mark, with the count at or before
 * the mark as the check; the check catches what a plain count would not
 * (one row deleted, one inserted), falls back to comparing every stamp,
 * loses no row stamped exactly at the mark, and drops a row held past the
 * mark that the table no longer has; the periodic full read finds a change
 * that kept its stamp. On the SQLite store: rows the engine refuses (no
 * usable id) keep no refresh comparing every stamp. */
#include <sqlite3.h>
#include <unistd.h>

#include "fake_store.h"
#include "log.h"
#include "model.h"
#include "sql_elsewhere.h"
#include "sync.h"
#include "test.h"
#include "util.h"

typedef struct {
  int done;
  char *last_error;
  char last_id[64]; /* of the item an action answered with */
} rec;

static void on_changed(void *data, model_kind k, uint64_t version, const cJSON *up,
                       const cJSON *del) {
  (void)data, (void)k, (void)version, (void)up, (void)del;
}

static void on_done(void *data, uint64_t ticket, const char *error, const cJSON *item) {
  rec *r = data;
  (void)ticket;
  r->done++;
  free(r->last_error);
  r->last_error = error ? util_strdup(error) : NULL;
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
  if (cJSON_IsString(id))
    snprintf(r->last_id, sizeof r->last_id, "%s", id->valuestring);
}

static void on_status(void *data, const cJSON *st) { (void)data, (void)st; }

static const sync_callbacks cbs = {.changed = on_changed, .done = on_done, .status = on_status};

typedef struct {
  uv_loop_t loop;
  fake_store *fs;
  sync_engine *s;
  rec r;
} rig;

static cJSON *row(const char *id, const char *title, const char *stamp) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "id", id);
  cJSON_AddStringToObject(o, "title", title);
  cJSON_AddStringToObject(o, "content", "some content");
  cJSON_AddItemToObject(o, "tags", cJSON_CreateArray());
  cJSON_AddStringToObject(o, "updated_at", stamp);
  return o;
}

#define ID1 "11111111-1111-4111-8111-111111111111"
#define ID2 "22222222-2222-4222-8222-222222222222"
#define ID3 "33333333-3333-4333-8333-333333333333"
#define ID4 "44444444-4444-4444-8444-444444444444"
#define T1 "2026-01-01T00:00:01+00:00"
#define T2 "2026-01-01T00:00:02+00:00"

static void put(rig *g, const char *id, const char *title, const char *stamp) {
  cJSON *o = row(id, title, stamp);
  fake_store_put(g->fs, STORE_PROMPTS, o);
  cJSON_Delete(o);
}

/* Two prompts (ID1 at T1, ID2 at T2), loaded whole, so each table has its
 * mark; full_ms: sync_options.full_check_ms (0: the default). */
static void rig_open_full(rig *g, double full_ms) {
  memset(g, 0, sizeof *g);
  ASSERT_EQ(uv_loop_init(&g->loop), 0);
  g->fs = fake_store_new();
  put(g, ID1, "first", T1);
  put(g, ID2, "second", T2);
  sync_options opts = {.max_attempts = 3, .retry_base_ms = 5, .full_check_ms = full_ms};
  g->s = sync_new(&g->loop, fake_store_base(g->fs), &cbs, &g->r, &opts);
  fake_store_drain(g->fs);
  ASSERT_EQ(fake_store_counts_get(g->fs).fetch_alls, STORE_NTABLES);
}

static void rig_open(rig *g) { rig_open_full(g, 0); }

/* Let the loop's clock move on by ms (the engine reads uv_now). */
static void clock_passes(rig *g, uint64_t ms) {
  uint64_t t0 = uv_now(&g->loop);
  while (uv_now(&g->loop) - t0 < ms)
    uv_update_time(&g->loop);
}

static void refresh(rig *g) {
  int done = g->r.done;
  sync_refresh(g->s, 1);
  fake_store_drain(g->fs);
  ASSERT_EQ(g->r.done, done + 1);
  ASSERT(g->r.last_error == NULL);
}

static void on_closed(void *data) { *(int *)data = 1; }

static void rig_close(rig *g) {
  int sync_closed = 0, store_closed = 0;
  sync_close(g->s, on_closed, &sync_closed);
  store_close(fake_store_base(g->fs), on_closed, &store_closed);
  uv_run(&g->loop, UV_RUN_DEFAULT);
  ASSERT(sync_closed && store_closed);
  ASSERT_EQ(uv_loop_close(&g->loop), 0);
  free(g->r.last_error);
}

static const char *title_of_in(sync_engine *s, const char *id) {
  static char buf[64];
  cJSON *item = sync_held(s, MODEL_PROMPT, id);
  if (!item)
    return NULL;
  snprintf(buf, sizeof buf, "%s", cJSON_GetObjectItem(item, "title")->valuestring);
  cJSON_Delete(item);
  return buf;
}

static const char *title_of(rig *g, const char *id) { return title_of_in(g->s, id); }

TEST(a_refresh_asks_only_since_the_mark) {
  rig g;
  rig_open(&g);
  put(&g, ID3, "third", "2026-03-01T00:00:00.5+00:00");
  fake_store_counts c0 = fake_store_counts_get(g.fs);
  refresh(&g);
  fake_store_counts c1 = fake_store_counts_get(g.fs);
  /* The table with rows: since its newest stamp (leaving out the row known
   * there) and its count; the empty ones whole; never every stamp. */
  ASSERT_EQ(c1.sinces - c0.sinces, 1);
  ASSERT_STR(c1.last_since, T2);
  ASSERT_EQ(c1.last_known, 1);
  ASSERT_EQ(c1.count_untils - c0.count_untils, 1);
  ASSERT_EQ(c1.stamps - c0.stamps, 0);
  ASSERT_EQ(c1.fetches - c0.fetches, 0);
  ASSERT_STR(title_of(&g, ID3), "third");
  /* The mark moved to the newest stamp the answer had. */
  refresh(&g);
  ASSERT_STR(fake_store_counts_get(g.fs).last_since, "2026-03-01T00:00:00.5+00:00");
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps, 0);
  rig_close(&g);
}

TEST(a_delete_and_an_insert_between_refreshes_are_caught) {
  rig g;
  rig_open(&g);
  /* As many rows as before, so a plain count would see no change. */
  fake_store_del(g.fs, STORE_PROMPTS, ID1);
  put(&g, ID3, "third", "2026-03-01T00:00:00+00:00");
  ASSERT_EQ(fake_store_rows(g.fs, STORE_PROMPTS), 2);
  refresh(&g);
  ASSERT_STR(title_of(&g, ID3), "third");
  ASSERT(title_of(&g, ID1) == NULL);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 2);
  /* The counts at or before the mark differed: every stamp was compared. */
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps, 1);
  /* ... once: the next refresh is incremental again. */
  refresh(&g);
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps, 1);
  ASSERT_EQ(fake_store_counts_get(g.fs).sinces, 2);
  rig_close(&g);
}

TEST(a_row_deleted_before_the_mark_falls_back_to_the_stamps) {
  rig g;
  rig_open(&g);
  fake_store_del(g.fs, STORE_PROMPTS, ID1);
  refresh(&g);
  ASSERT(title_of(&g, ID1) == NULL);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 1);
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps, 1);
  rig_close(&g);
}

TEST(rows_at_the_marks_own_stamp_are_not_lost) {
  rig g;
  rig_open(&g);
  /* Written in the same microsecond as the newest row held: a new row, and
   * an old one changed to that stamp. */
  put(&g, ID3, "third, same stamp", T2);
  put(&g, ID1, "first, now at the mark", T2);
  refresh(&g);
  ASSERT_STR(title_of(&g, ID3), "third, same stamp");
  ASSERT_STR(title_of(&g, ID1), "first, now at the mark");
  /* Found by the incremental ask itself, with no fall back. */
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps, 0);
  /* The next one leaves all three out. */
  refresh(&g);
  ASSERT_EQ(fake_store_counts_get(g.fs).last_known, 3);
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps, 0);
  rig_close(&g);
}

TEST(a_row_held_past_the_mark_and_gone_there_is_dropped) {
  rig g;
  rig_open(&g);
  /* Came by an event, then was deleted elsewhere and that event was lost. */
  cJSON *o = row(ID4, "fleeting", "2026-04-01T00:00:00+00:00");
  fake_store_put(g.fs, STORE_PROMPTS, o);
  store_event ev = {STORE_EV_UPSERT, STORE_PROMPTS, ID4, o, 0};
  fake_store_emit(g.fs, &ev);
  cJSON_Delete(o);
  ASSERT_STR(title_of(&g, ID4), "fleeting");
  fake_store_del(g.fs, STORE_PROMPTS, ID4);
  refresh(&g);
  ASSERT(title_of(&g, ID4) == NULL);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 2);
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps, 0);
  rig_close(&g);
}

TEST(stamps_in_other_zones_compare_as_times) {
  rig g;
  rig_open(&g);
  /* 00:30 at +01:00 is 23:30 the day before in UTC: before the mark, so an
   * insert there shows in the count (and the stamps then find it). */
  put(&g, ID3, "old, other zone", "2026-01-01T00:30:00+01:00");
  refresh(&g);
  ASSERT_STR(title_of(&g, ID3), "old, other zone");
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps, 1);
  /* 01:00:03 at +01:00 is after the mark: no fall back needed. */
  put(&g, ID4, "new, other zone", "2026-01-01T01:00:03+01:00");
  refresh(&g);
  ASSERT_STR(title_of(&g, ID4), "new, other zone");
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps, 1);
  rig_close(&g);
}

TEST(the_periodic_full_read_finds_a_change_that_kept_its_stamp) {
  for (int periodic = 0; periodic < 2; periodic++) {
    rig g;
    rig_open_full(&g, periodic ? 1 : 0); /* every 1 ms, or every 10 minutes */
    put(&g, ID1, "first, edited by SQL", T1); /* updated_at kept */
    clock_passes(&g, 2);
    int alls = fake_store_counts_get(g.fs).fetch_alls;
    refresh(&g);
    if (periodic) {
      /* What changed (the empty tables read whole), then every row. */
      ASSERT_EQ(fake_store_counts_get(g.fs).fetch_alls, alls + STORE_NTABLES - 1 + STORE_NTABLES);
      ASSERT_STR(title_of(&g, ID1), "first, edited by SQL");
    } else {
      /* What changed since the mark cannot show it. */
      ASSERT_EQ(fake_store_counts_get(g.fs).fetch_alls, alls + STORE_NTABLES - 1);
      ASSERT_STR(title_of(&g, ID1), "first");
    }
    rig_close(&g);
  }
}

TEST(after_a_resync_and_its_full_read_a_change_needs_no_stamps) {
  rig g;
  rig_open(&g);
  put(&g, ID3, "third", T2); /* shares the mark's stamp with ID2 */
  refresh(&g);
  store_event ev = {STORE_EV_RESYNC, STORE_BLOCKS, NULL, NULL, 0};
  fake_store_emit(g.fs, &ev);
  fake_store_drain(g.fs);
  int stamps = fake_store_counts_get(g.fs).stamps;
  put(&g, ID1, "first, renamed", "2026-02-01T00:00:00+00:00");
  refresh(&g);
  ASSERT_STR(title_of(&g, ID1), "first, renamed");
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps, stamps);
  rig_close(&g);
}

/* A refresh whose count of prompts a write here skews: the write is
 * answered while the store still counts ID1 at its old stamp (ours is past
 * the mark, theirs is not yet), so the engine asks again; then the write is
 * in the store. Returns once the second refresh started. */
static void skew_a_count(rig *g) {
  int started = sync_refreshes_started(g->s);
  sync_refresh(g->s, 1);
  cJSON *newer = row(ID1, "first, written here", "2026-02-01T00:00:00+00:00");
  store_event ev = {STORE_EV_UPSERT, STORE_PROMPTS, ID1, newer, 0};
  fake_store_emit(g->fs, &ev);
  while (sync_refreshes_started(g->s) == started + 1 && fake_store_step(g->fs))
    ;
  ASSERT_EQ(sync_refreshes_started(g->s), started + 2); /* asked again */
  fake_store_put(g->fs, STORE_PROMPTS, newer);
  cJSON_Delete(newer);
}

TEST(a_change_here_while_the_counts_are_taken_asks_again_not_every_stamp) {
  rig g;
  rig_open(&g);
  int stamps = fake_store_counts_get(g.fs).stamps;
  int sinces = fake_store_counts_get(g.fs).sinces;
  skew_a_count(&g);
  fake_store_drain(g.fs);
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps, stamps);
  ASSERT_EQ(fake_store_counts_get(g.fs).sinces, sinces + 2);
  ASSERT_STR(title_of(&g, ID1), "first, written here");
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 2);
  /* A count that differs with nothing changed here still compares every
   * stamp (a row deleted before the mark). */
  fake_store_del(g.fs, STORE_PROMPTS, ID2);
  refresh(&g);
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps, stamps + 1);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 1);
  rig_close(&g);
}

static int lines_with(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  ASSERT(f != NULL);
  char line[1024];
  int n = 0;
  while (fgets(line, sizeof line, f))
    n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

/* Run the loop until one more answer came (20 s at most). */
static void wait_done(uv_loop_t *loop, rec *r, int done) {
  double until = util_now_ms() + 20000;
  while (r->done == done && util_now_ms() < until)
    uv_run(loop, UV_RUN_ONCE);
  ASSERT_EQ(r->done, done + 1);
  if (r->last_error)
    fprintf(stderr, "  %s\n", r->last_error);
  ASSERT(r->last_error == NULL);
}

static void refresh_and_wait(uv_loop_t *loop, sync_engine *s, rec *r) {
  int done = r->done;
  sync_refresh(s, 1);
  wait_done(loop, r, done);
}

/* A prompt created or updated through the engine (then its refresh, as
 * after any action); the item's id in r->last_id. */
static void act_and_wait(uv_loop_t *loop, sync_engine *s, rec *r, const char *id,
                         const char *title) {
  cJSON *f = cJSON_CreateObject();
  cJSON_AddStringToObject(f, "title", title);
  int done = r->done;
  if (id)
    sync_update(s, 2, MODEL_PROMPT, id, f);
  else
    sync_create(s, 2, MODEL_PROMPT, f);
  cJSON_Delete(f);
  wait_done(loop, r, done);
  refresh_and_wait(loop, s, r);
}

/* Rows another program left without a usable id (NULL, written before
 * shelfd made its change-log triggers, which refuse a NULL id, and '') are
 * never held. The store's count at or before the mark took them in while the
 * held rows never do: every refresh (here the first and the one after each
 * action) found the counts differ and compared every stamp. */
TEST(rows_without_an_id_keep_no_refresh_comparing_every_stamp) {
  char dir[] = "/tmp/shelf-refresh-XXXXXX";
  ASSERT(mkdtemp(dir) != NULL);
  char *path = util_printf("%s/library.db", dir);
  char *logp = util_printf("%s/shelfd.log", dir);
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  char *err = NULL;
  store *st = store_sqlite_open(&loop, path, &err); /* the schema */
  ASSERT(st != NULL);
  int closed = 0;
  store_close(st, on_closed, &closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT(closed);
  ASSERT_EQ(sql_elsewhere(path,
                "DROP TRIGGER prompts_log_ins;"
                "INSERT INTO prompts(id, title, content, tags, created_at, updated_at) VALUES"
                " (NULL, 'no id', '', '[]', '" T1 "', '" T1 "'),"
                " (NULL, 'no id either', '', '[]', '" T1 "', '" T1 "'),"
                " ('', 'empty id', '', '[]', '" T1 "', '" T1 "'),"
                " ('" ID1 "', 'first', '', '[]', '" T1 "', '" T2 "')"), SQLITE_OK);
  ASSERT_EQ(log_open(logp), 0);
  st = store_sqlite_open(&loop, path, &err); /* the trigger is made again */
  ASSERT(st != NULL);
  rec r = {0};
  sync_engine *s = sync_new(&loop, st, &cbs, &r, NULL);
  refresh_and_wait(&loop, s, &r);
  ASSERT_EQ(sync_count(s, MODEL_PROMPT), 1);
  act_and_wait(&loop, s, &r, NULL, "second");
  char second[64];
  snprintf(second, sizeof second, "%s", r.last_id);
  act_and_wait(&loop, s, &r, second, "second, edited");
  act_and_wait(&loop, s, &r, NULL, "third");
  act_and_wait(&loop, s, &r, ID1, "first, edited");
  log_close();
  ASSERT_STR(title_of_in(s, second), "second, edited");
  ASSERT_STR(title_of_in(s, ID1), "first, edited");
  ASSERT_EQ(sync_count(s, MODEL_PROMPT), 3);
  int compared = lines_with(logp, "comparing every stamp");
  if (compared > 1)
    fprintf(stderr, "  every stamp compared %d times\n", compared);
  ASSERT(compared <= 1);
  int sync_closed = 0;
  closed = 0;
  sync_close(s, on_closed, &sync_closed);
  store_close(st, on_closed, &closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT(sync_closed && closed);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  free(r.last_error);
  char *cmd = util_printf("rm -rf %s", dir);
  ASSERT_EQ(system(cmd), 0);
  free(cmd);
  free(path);
  free(logp);
}

TEST(stamps_parse_in_the_forms_backends_print) {
  long long a, b;
  ASSERT_EQ(util_stamp_us("1970-01-01T00:00:00+00:00", &a), 0);
  ASSERT_EQ(a, 0);
  ASSERT_EQ(util_stamp_us("2026-11-25T04:42:46.123456+00:00", &a), 0);
  ASSERT_EQ(util_stamp_us("2026-11-25 05:42:46.123456+01", &b), 0);
  ASSERT_EQ(a, b);
  ASSERT_EQ(util_stamp_us("2026-11-25T04:42:46.1234569Z", &b), 0);
  ASSERT_EQ(a, b);
  ASSERT_EQ(util_stamp_us("2026-11-25T04:42:46.12Z", &b), 0);
  ASSERT_EQ(a - b, 3456);
  ASSERT_EQ(util_stamp_us("2026-11-24T23:12:46.123456-0530", &b), 0);
  ASSERT_EQ(a, b);
  ASSERT_EQ(util_stamp_us("2000-02-29T00:00:00", &a), 0);
  ASSERT_EQ(a, 951782400LL * 1000000);
  ASSERT(util_stamp_us("2026-11-25", &a) < 0);
  ASSERT(util_stamp_us("2026-11-25T04:42:46+00:00 ", &a) < 0);
  ASSERT(util_stamp_us("2026-13-25T04:42:46", &a) < 0);
  ASSERT(util_stamp_us("yesterday", &a) < 0);
  ASSERT(util_stamp_us(NULL, &a) < 0);
}

/* Lua gets a time as microseconds; a temporary block's times come back from
 * it so and print as before. Text that is no time stays text. */
TEST(stamps_go_to_lua_as_microseconds_and_come_back) {
  long long us;
  char out[UTIL_STAMP_LEN + 1];
  ASSERT_EQ(model_lua_stamp("2026-11-24T23:12:46.123456-0530", &us), 0);
  ASSERT_EQ(us, 1795581766123456LL);
  ASSERT_EQ(util_us_stamp(us, out), 0);
  ASSERT_STR(out, "2026-11-25T04:42:46.123456+00:00");
  ASSERT_EQ(util_us_stamp(-1, out), 0);
  ASSERT_STR(out, "1969-12-31T23:59:59.999999+00:00");
  ASSERT(model_lua_stamp("b", &us) < 0);
  ASSERT(model_lua_stamp("9999-12-31T23:59:59Z", &us) < 0); /* past what a Lua number holds */
  ASSERT(util_us_stamp(253402300800000000LL, out) < 0);    /* year 10000 */
  cJSON *row = cJSON_Parse("{\"id\":\"x\",\"title\":\"t\",\"content\":\"c\","
                           "\"created_at\":\"b\",\"updated_at\":\"1970-01-01T00:00:01Z\"}");
  cJSON *sum = model_summary(STORE_PROMPTS, row, 0);
  ASSERT_STR(cJSON_GetObjectItem(sum, "created_at")->valuestring, "b");
  ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(sum, "updated_at")));
  ASSERT(cJSON_GetObjectItem(sum, "updated_at")->valuedouble == 1e6);
  cJSON_Delete(sum);
  cJSON_Delete(row);
}

/* A store that asks since and count_until at once (store.h delta, as the
 * Supabase one does): one call a table, and the refresh takes the rows and
 * the count from its answer as from the two. */
TEST(a_store_asking_both_at_once_is_asked_once_a_table) {
  rig g;
  rig_open(&g);
  fake_store_delta(g.fs, 1);
  put(&g, ID3, "third", "2026-03-01T00:00:00.5+00:00");
  put(&g, ID4, "fourth, at the mark", T2);
  fake_store_counts c0 = fake_store_counts_get(g.fs);
  refresh(&g);
  fake_store_counts c1 = fake_store_counts_get(g.fs);
  ASSERT_EQ(c1.deltas - c0.deltas, 1);
  ASSERT_EQ(c1.sinces - c0.sinces, 0);
  ASSERT_EQ(c1.count_untils - c0.count_untils, 0);
  ASSERT_STR(c1.last_since, T2);
  ASSERT_EQ(c1.last_known, 1);
  /* The count matched: no stamp compared. */
  ASSERT_EQ(c1.stamps - c0.stamps, 0);
  ASSERT_STR(title_of(&g, ID3), "third");
  ASSERT_STR(title_of(&g, ID4), "fourth, at the mark");
  /* A delete before the mark, with an insert after it: the count tells. */
  fake_store_del(g.fs, STORE_PROMPTS, ID1);
  put(&g, "55555555-5555-4555-8555-555555555555", "fifth", "2026-04-01T00:00:00+00:00");
  refresh(&g);
  ASSERT(title_of(&g, ID1) == NULL);
  ASSERT_STR(title_of(&g, "55555555-5555-4555-8555-555555555555"), "fifth");
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 4);
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps - c0.stamps, 1);
  ASSERT_EQ(fake_store_counts_get(g.fs).deltas - c0.deltas, 2);
  rig_close(&g);
}

TEST(a_delta_whose_count_was_left_out_is_taken_as_the_store_says) {
  rig g;
  rig_open(&g);
  fake_store_delta(g.fs, 2);
  put(&g, ID3, "third", "2026-03-01T00:00:00.5+00:00");
  fake_store_counts c0 = fake_store_counts_get(g.fs);
  refresh(&g);
  ASSERT_STR(title_of(&g, ID3), "third");
  /* A row gone before the mark with no event for it: the store vouched for
   * its events, so nothing compares every stamp and the row stays until its
   * event comes (a store that counts would have caught it). */
  fake_store_del(g.fs, STORE_PROMPTS, ID1);
  refresh(&g);
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps - c0.stamps, 0);
  ASSERT_EQ(fake_store_counts_get(g.fs).count_untils - c0.count_untils, 0);
  ASSERT_EQ(fake_store_counts_get(g.fs).deltas - c0.deltas, 2);
  ASSERT_STR(title_of(&g, ID1), "first");
  store_event ev = {.type = STORE_EV_DELETE, .table = STORE_PROMPTS, .id = ID1};
  fake_store_emit(g.fs, &ev);
  ASSERT(title_of(&g, ID1) == NULL);
  rig_close(&g);
}

/* A count asked again (a change here skewed the first) is asked apart from
 * the delta, which a store may answer without a count. */
TEST(a_count_asked_again_is_asked_apart_from_the_delta) {
  rig g;
  rig_open(&g);
  fake_store_delta(g.fs, 1);
  fake_store_counts c0 = fake_store_counts_get(g.fs);
  skew_a_count(&g);
  fake_store_delta(g.fs, 2); /* from now on a delta leaves its count out */
  fake_store_drain(g.fs);
  fake_store_counts c1 = fake_store_counts_get(g.fs);
  ASSERT_EQ(c1.count_untils - c0.count_untils, 1);
  ASSERT_EQ(c1.sinces - c0.sinces, 1);
  ASSERT_EQ(c1.stamps - c0.stamps, 0);
  ASSERT_STR(title_of(&g, ID1), "first, written here");
  rig_close(&g);
}

static const test_case test_cases[] = {
    TEST_ENTRY(a_count_asked_again_is_asked_apart_from_the_delta),
    TEST_ENTRY(a_delta_whose_count_was_left_out_is_taken_as_the_store_says),
    TEST_ENTRY(a_refresh_asks_only_since_the_mark),
    TEST_ENTRY(a_store_asking_both_at_once_is_asked_once_a_table),
    TEST_ENTRY(after_a_resync_and_its_full_read_a_change_needs_no_stamps),
    TEST_ENTRY(a_change_here_while_the_counts_are_taken_asks_again_not_every_stamp),
    TEST_ENTRY(a_delete_and_an_insert_between_refreshes_are_caught),
    TEST_ENTRY(a_row_deleted_before_the_mark_falls_back_to_the_stamps),
    TEST_ENTRY(rows_at_the_marks_own_stamp_are_not_lost),
    TEST_ENTRY(a_row_held_past_the_mark_and_gone_there_is_dropped),
    TEST_ENTRY(stamps_in_other_zones_compare_as_times),
    TEST_ENTRY(the_periodic_full_read_finds_a_change_that_kept_its_stamp),
    TEST_ENTRY(rows_without_an_id_keep_no_refresh_comparing_every_stamp),
    TEST_ENTRY(stamps_parse_in_the_forms_backends_print),
    TEST_ENTRY(stamps_go_to_lua_as_microseconds_and_come_back),
};

TEST_MAIN()
