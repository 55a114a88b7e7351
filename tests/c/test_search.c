/* Tests of search in the SQLite store: substrings in every searched column,
 * case, quotes and FTS5 syntax in the query, 1-2 character queries, the index
 * kept right by updates and deletes and by another program's writes, a
 * library made before the index (built in batches, answering meanwhile),
 * writes after another program changed the schema, and cancellation. */
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "sql_elsewhere.h"
#include "store.h"
#include "sync.h"
#include "test.h"
#include "util.h"

#define BOTH ((1u << STORE_BLOCKS) | (1u << STORE_PROMPTS))

typedef struct {
  int done, status;
  cJSON *rows;
} result;

static void on_done(void *data, int status, const char *error, cJSON *rows) {
  result *r = data;
  (void)error;
  r->done++;
  r->status = status;
  cJSON_Delete(r->rows);
  r->rows = rows;
}

typedef struct {
  uv_loop_t loop;
  char dir[64], path[128];
  store *st;
  result r;
} rig;

static void rig_open_at(rig *g) {
  char *err = NULL;
  g->st = store_sqlite_open(&g->loop, g->path, &err);
  if (!g->st)
    fprintf(stderr, "  open: %s\n", err);
  ASSERT(g->st != NULL);
}

static void rig_init(rig *g) {
  memset(g, 0, sizeof *g);
  ASSERT_EQ(uv_loop_init(&g->loop), 0);
  snprintf(g->dir, sizeof g->dir, "/tmp/shelf-search-XXXXXX");
  ASSERT(mkdtemp(g->dir) != NULL);
  snprintf(g->path, sizeof g->path, "%s/library.db", g->dir);
}

static void rig_open(rig *g) {
  rig_init(g);
  rig_open_at(g);
}

static cJSON *rig_wait(rig *g, int rc) {
  ASSERT_EQ(rc, 0);
  int before = g->r.done;
  while (g->r.done == before)
    uv_run(&g->loop, UV_RUN_ONCE);
  return g->r.rows;
}

static void on_closed(void *data) { *(int *)data = 1; }

static void rig_close_store(rig *g) {
  if (!g->st) /* closed by the test */
    return;
  int closed = 0;
  store_close(g->st, on_closed, &closed);
  uv_run(&g->loop, UV_RUN_DEFAULT);
  ASSERT(closed);
}

static void rig_close(rig *g) {
  rig_close_store(g);
  ASSERT_EQ(uv_loop_close(&g->loop), 0);
  cJSON_Delete(g->r.rows);
  char *cmd = util_printf("rm -rf %s", g->dir);
  ASSERT_EQ(system(cmd), 0);
  free(cmd);
}

static void rig_exec(rig *g, const char *sql) {
  ASSERT_EQ(sql_elsewhere(g->path, sql), SQLITE_OK);
}

/* Insert through the store; the new id goes to id_out. */
static void add(rig *g, store_table t, const char *json, char *id_out) {
  cJSON *o = cJSON_Parse(json);
  ASSERT(o != NULL);
  char id[UTIL_UUID_LEN + 1];
  util_uuid4(id);
  cJSON_AddStringToObject(o, "id", id);
  rig_wait(g, store_insert(g->st, t, o, on_done, &g->r));
  cJSON_Delete(o);
  ASSERT_EQ(g->r.status, 0);
  if (id_out)
    strcpy(id_out, id);
}

/* The hits of a search, as "t:id,t:id" in the order given (sorted by the
 * caller when it matters): a short way to compare whole answers. */
static cJSON *search(rig *g, const char *q, unsigned tables, int limit) {
  cJSON *rows = rig_wait(g, store_search(g->st, q, tables, limit, on_done, &g->r));
  ASSERT_EQ(g->r.status, 0);
  ASSERT(cJSON_IsArray(rows));
  return rows;
}

static int has(const cJSON *rows, store_table t, const char *id) {
  const cJSON *hit;
  cJSON_ArrayForEach(hit, rows) {
    if (cJSON_GetArrayItem(hit, 0)->valueint == (int)t &&
        strcmp(cJSON_GetArrayItem(hit, 1)->valuestring, id) == 0)
      return 1;
  }
  return 0;
}

static int count(rig *g, const char *q) { return cJSON_GetArraySize(search(g, q, BOTH, 1000)); }

TEST(substrings_in_every_column_any_case) {
  rig g;
  rig_open(&g);
  char b1[40], b2[40], p1[40], p2[40];
  add(&g, STORE_BLOCKS, "{\"title\":\"Kubernetes notes\",\"content\":\"use kubectl apply\"}", b1);
  add(&g, STORE_BLOCKS, "{\"title\":\"Other\",\"content\":\"nothing\",\"tags\":[\"DevOps\"]}", b2);
  add(&g, STORE_PROMPTS, "{\"title\":\"Review\",\"description\":\"Äpfel für alle\","
                         "\"content\":\"be kind\"}", p1);
  add(&g, STORE_PROMPTS, "{\"title\":\"Plain\",\"content\":\"deep in the text: needle\"}", p2);
  cJSON *rows = search(&g, "KUBECTL", BOTH, 100);
  ASSERT_EQ(cJSON_GetArraySize(rows), 1);
  ASSERT(has(rows, STORE_BLOCKS, b1));
  ASSERT(has(search(&g, "bernetes no", BOTH, 100), STORE_BLOCKS, b1));
  ASSERT(has(search(&g, "devop", BOTH, 100), STORE_BLOCKS, b2));
  ASSERT(has(search(&g, "äpfel FÜR", BOTH, 100), STORE_PROMPTS, p1));
  ASSERT(has(search(&g, "needle", BOTH, 100), STORE_PROMPTS, p2));
  ASSERT_EQ(count(&g, "no such text"), 0);
  /* Only the tables asked for. */
  ASSERT_EQ(cJSON_GetArraySize(search(&g, "needle", 1u << STORE_BLOCKS, 100)), 0);
  ASSERT_EQ(cJSON_GetArraySize(search(&g, "i", 1u << STORE_PROMPTS, 100)), 2);
  /* The limit holds. */
  ASSERT_EQ(cJSON_GetArraySize(search(&g, "e", BOTH, 3)), 3);
  rig_close(&g);
}

/* A phrase of several words is looked up by its 5 characters around the
 * first space ('oy ro'), each row of those checked for the whole query: the
 * rows hold it in any column and any case, and no row holding only the
 * window ('the boy rode') is a hit, however many there are. */
TEST(a_phrase_of_words_is_found_in_every_column_and_only_there) {
  rig g;
  rig_open(&g);
  char bt[40], bc[40], bg[40], pd[40];
  add(&g, STORE_BLOCKS, "{\"title\":\"Deploy Rollback plan\",\"content\":\"x\"}", bt);
  add(&g, STORE_BLOCKS, "{\"title\":\"Steps\",\"content\":\"then deploy rollback now\"}", bc);
  add(&g, STORE_BLOCKS, "{\"title\":\"Tagged\",\"content\":\"x\",\"tags\":[\"deploy rollback\"]}", bg);
  add(&g, STORE_PROMPTS, "{\"title\":\"Ops\",\"description\":\"how to DEPLOY ROLLBACK\","
                         "\"content\":\"x\"}", pd);
  /* A KELVIN SIGN for its k, and a LONG S for its s: the index folds them. */
  char kelvin[40], long_s[40];
  add(&g, STORE_BLOCKS, "{\"title\":\"deploy rollbac\u212a\",\"content\":\"x\"}", kelvin);
  add(&g, STORE_PROMPTS, "{\"title\":\"x\",\"content\":\"DEPLOY ROLLBACK ma\u017fs\"}", long_s);
  add(&g, STORE_BLOCKS, "{\"title\":\"the boy rode\",\"content\":\"deploy, rollback\"}", NULL);
  add(&g, STORE_PROMPTS, "{\"title\":\"Decoy\",\"content\":\"a boy rolled the deploy back\"}", NULL);
  for (int round = 0; round < 2; round++) {
    cJSON *rows = search(&g, "deploy rollback", BOTH, 100);
    ASSERT_EQ(cJSON_GetArraySize(rows), 6);
    ASSERT(has(rows, STORE_BLOCKS, bt) && has(rows, STORE_BLOCKS, bc) && has(rows, STORE_BLOCKS, bg));
    ASSERT(has(rows, STORE_PROMPTS, pd) && has(rows, STORE_BLOCKS, kelvin));
    ASSERT(has(search(&g, "rollback mass", BOTH, 100), STORE_PROMPTS, long_s));
    ASSERT_EQ(count(&g, "deploy  rollback"), 0);
    ASSERT_EQ(cJSON_GetArraySize(search(&g, "deploy rollback", BOTH, 2)), 2);
    /* A query too long for a LIKE pattern (50,000 bytes) asks the whole
     * phrase: a content of as many bytes is found by all of it. Just past
     * the limit: the phrase has a term per character, SQLite grows it a few
     * terms at a time, and under ASan every realloc copies (60,000 bytes
     * took 85-140 s of the test's time on a 2-core machine). */
    if (round == 0) {
      size_t big = 50100;
      char *longq = util_malloc(big + 1);
      for (size_t i = 0; i < big; i++)
        longq[i] = i % 7 == 6 ? ' ' : (char)('a' + i % 7);
      longq[big] = '\0';
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "title", "long");
      cJSON_AddStringToObject(o, "content", longq);
      char *json = cJSON_PrintUnformatted(o);
      char lid[40];
      add(&g, STORE_BLOCKS, json, lid);
      rows = search(&g, longq, BOTH, 100);
      ASSERT_EQ(cJSON_GetArraySize(rows), 1);
      ASSERT(has(rows, STORE_BLOCKS, lid));
      free(json);
      cJSON_Delete(o);
      free(longq);
    }
    /* More rows with the window than are checked one by one: the whole
     * phrase is asked, with the same answer. */
    if (round == 0)
      rig_exec(&g, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)"
                   " INSERT INTO context_blocks(id, title, content, created_at, updated_at)"
                   " SELECT printf('6e1f5e1f-0000-4000-8000-%012d', i), 'the boy rode ' || i,"
                   " 'deploy rollbak', 'a', 'a' FROM n;");
  }
  rig_close(&g);
}

TEST(a_limit_takes_from_both_tables_in_turn) {
  rig g;
  rig_open(&g);
  for (int i = 0; i < 3; i++) {
    add(&g, STORE_BLOCKS, "{\"title\":\"block\",\"content\":\"shared text\"}", NULL);
    add(&g, STORE_PROMPTS, "{\"title\":\"prompt\",\"content\":\"shared text\"}", NULL);
  }
  cJSON *rows = search(&g, "shared", BOTH, 4);
  ASSERT_EQ(cJSON_GetArraySize(rows), 4);
  int prompts = 0;
  const cJSON *hit;
  cJSON_ArrayForEach(hit, rows) prompts += cJSON_GetArrayItem(hit, 0)->valueint == STORE_PROMPTS;
  ASSERT_EQ(prompts, 2);
  ASSERT_EQ(cJSON_GetArraySize(search(&g, "shared", BOTH, 100)), 6);
  /* Each table's part stops once both hold their turns' share, unless the
   * other has fewer: then it gives more. 3 blocks, 5 prompts. */
  for (int i = 0; i < 2; i++)
    add(&g, STORE_PROMPTS, "{\"title\":\"prompt\",\"content\":\"shared text\"}", NULL);
  int limits[] = {5, 7, 8, 100}, want_prompts[] = {2, 4, 5, 5};
  for (int k = 0; k < 4; k++) {
    rows = search(&g, "shared", BOTH, limits[k]);
    prompts = 0;
    cJSON_ArrayForEach(hit, rows) prompts += cJSON_GetArrayItem(hit, 0)->valueint == STORE_PROMPTS;
    ASSERT_EQ(cJSON_GetArraySize(rows) - prompts, limits[k] - want_prompts[k] < 3 ? limits[k] - want_prompts[k] : 3);
    ASSERT_EQ(prompts, want_prompts[k]);
  }
  rig_close(&g);
}

TEST(quotes_and_fts_syntax_are_plain_text) {
  rig g;
  rig_open(&g);
  char a[40], b[40], c[40];
  add(&g, STORE_BLOCKS, "{\"title\":\"say \\\"hi\\\" now\",\"content\":\"x\"}", a);
  add(&g, STORE_BLOCKS, "{\"title\":\"t\",\"content\":\"a AND b OR NOT c* NEAR(d e) col:f ^g\"}", b);
  add(&g, STORE_BLOCKS, "{\"title\":\"100% of a_b\",\"content\":\"back\\\\slash\"}", c);
  const char *qs[] = {"\"hi\"", "y \"h", "AND b OR", "NOT c*", "NEAR(d e)", "col:f", " ^g",
                      "100%", "a_b", "k\\sl", NULL};
  const char *want[] = {a, a, b, b, b, b, b, c, c, c};
  for (int i = 0; qs[i]; i++) {
    cJSON *rows = search(&g, qs[i], BOTH, 100);
    if (cJSON_GetArraySize(rows) != 1 || !has(rows, STORE_BLOCKS, want[i]))
      fprintf(stderr, "  query %s\n", qs[i]);
    ASSERT_EQ(cJSON_GetArraySize(rows), 1);
    ASSERT(has(rows, STORE_BLOCKS, want[i]));
  }
  /* % and _ are no wildcards in a short query either. */
  ASSERT_EQ(count(&g, "0%"), 1);
  ASSERT_EQ(count(&g, "_"), 1);
  ASSERT_EQ(count(&g, "\""), 1);
  rig_close(&g);
}

TEST(short_queries_match_titles_descriptions_and_tags) {
  rig g;
  rig_open(&g);
  char a[40], b[40], c[40], d[40];
  add(&g, STORE_BLOCKS, "{\"title\":\"Qx here\",\"content\":\"zz\"}", a);
  add(&g, STORE_BLOCKS, "{\"title\":\"t\",\"content\":\"qx only in content\",\"tags\":[\"zz\"]}", b);
  add(&g, STORE_PROMPTS, "{\"title\":\"p\",\"description\":\"about qX\",\"content\":\"\"}", c);
  add(&g, STORE_PROMPTS, "{\"title\":\"p\",\"content\":\"\",\"tags\":[\"aqxb\"]}", d);
  cJSON *rows = search(&g, "qx", BOTH, 100);
  ASSERT_EQ(cJSON_GetArraySize(rows), 3);
  ASSERT(has(rows, STORE_BLOCKS, a));
  ASSERT(has(rows, STORE_PROMPTS, c));
  ASSERT(has(rows, STORE_PROMPTS, d));
  /* Content is not read for 1-2 characters. */
  ASSERT(!has(rows, STORE_BLOCKS, b));
  rows = search(&g, "Z", BOTH, 100);
  ASSERT_EQ(cJSON_GetArraySize(rows), 1);
  ASSERT(has(rows, STORE_BLOCKS, b));
  /* Three characters: content too. */
  ASSERT_EQ(count(&g, "qx "), 2);
  rig_close(&g);
}

TEST(updates_and_deletes_keep_the_index_right) {
  rig g;
  rig_open(&g);
  char a[40], b[40];
  add(&g, STORE_BLOCKS, "{\"title\":\"alpha\",\"content\":\"first words\",\"tags\":[\"red\"]}", a);
  add(&g, STORE_PROMPTS, "{\"title\":\"beta\",\"content\":\"second words\"}", b);
  ASSERT_EQ(count(&g, "words"), 2);
  cJSON *f = cJSON_Parse("{\"content\":\"replaced text\",\"tags\":[\"green\"]}");
  rig_wait(&g, store_update(g.st, STORE_BLOCKS, a, f, on_done, &g.r));
  cJSON_Delete(f);
  ASSERT_EQ(g.r.status, 0);
  ASSERT_EQ(count(&g, "words"), 1);
  ASSERT_EQ(count(&g, "first"), 0);
  ASSERT_EQ(count(&g, "replaced"), 1);
  ASSERT_EQ(count(&g, "green"), 1);
  ASSERT_EQ(count(&g, "red"), 0);
  ASSERT_EQ(count(&g, "alpha"), 1);
  rig_wait(&g, store_remove(g.st, STORE_PROMPTS, b, on_done, &g.r));
  ASSERT_EQ(g.r.status, 0);
  ASSERT_EQ(count(&g, "words"), 0);
  ASSERT_EQ(count(&g, "beta"), 0);
  /* What FTS5 itself says about its index against the table. */
  rig_exec(&g, "INSERT INTO context_blocks_fts(context_blocks_fts, rank) VALUES('integrity-check', 1);"
               "INSERT INTO prompts_fts(prompts_fts, rank) VALUES('integrity-check', 1);");
  rig_close(&g);
}

TEST(another_programs_rows_are_found) {
  rig g;
  rig_open(&g);
  rig_exec(&g, "INSERT INTO prompts(id, title, content, created_at, updated_at) VALUES"
               "('6e1f5e1f-0000-4000-8000-000000000001', 'from the shell', 'sqlite3 wrote me',"
               " 'a', 'a');"
               "UPDATE prompts SET content = 'sqlite3 changed me' WHERE title = 'from the shell';");
  ASSERT_EQ(count(&g, "wrote me"), 0);
  ASSERT(has(search(&g, "CHANGED ME", BOTH, 10), STORE_PROMPTS,
             "6e1f5e1f-0000-4000-8000-000000000001"));
  rig_exec(&g, "DELETE FROM prompts;");
  ASSERT_EQ(count(&g, "changed me"), 0);
  rig_close(&g);
}

/* Another program changes the schema while the store is open. A write's
 * triggers make FTS5 connect the index while the write is prepared, reading
 * its own tables: with the connection's schema out of date that reset the
 * schema under the write, which failed with "no such table: prompts". */
TEST(writes_work_after_another_program_changes_the_schema) {
  rig g;
  rig_open(&g);
  /* Opened again, as at every start but the first: the index is not made
   * (and so connected) by this connection. A read: the jobs from opening are
   * done, and the schema read, but no index connected. */
  rig_close_store(&g);
  rig_open_at(&g);
  rig_wait(&g, store_stamps(g.st, STORE_PROMPTS, on_done, &g.r));
  ASSERT_EQ(g.r.status, 0);
  rig_exec(&g, "CREATE TABLE another_app(x);");
  char a[40];
  add(&g, STORE_PROMPTS, "{\"title\":\"first\",\"content\":\"written after a change\"}", a);
  ASSERT(has(search(&g, "after a change", BOTH, 10), STORE_PROMPTS, a));
  /* Again once a read has reloaded the schema (which lets go of the index
   * connected by the insert): an update, then a delete. */
  rig_exec(&g, "DROP TABLE another_app;");
  rig_wait(&g, store_stamps(g.st, STORE_PROMPTS, on_done, &g.r));
  ASSERT_EQ(g.r.status, 0);
  rig_exec(&g, "CREATE TABLE another_app(y);");
  cJSON *f = cJSON_Parse("{\"content\":\"updated after a change\"}");
  rig_wait(&g, store_update(g.st, STORE_PROMPTS, a, f, on_done, &g.r));
  cJSON_Delete(f);
  ASSERT_EQ(g.r.status, 0);
  ASSERT(has(search(&g, "updated after", BOTH, 10), STORE_PROMPTS, a));
  rig_exec(&g, "DROP TABLE another_app;");
  rig_wait(&g, store_stamps(g.st, STORE_PROMPTS, on_done, &g.r));
  ASSERT_EQ(g.r.status, 0);
  rig_exec(&g, "CREATE INDEX another_app_ix ON prompts(folder);");
  rig_wait(&g, store_remove(g.st, STORE_PROMPTS, a, on_done, &g.r));
  ASSERT_EQ(g.r.status, 0);
  ASSERT_EQ(count(&g, "after a change"), 0);
  rig_close(&g);
}

/* A library filled before the index existed: opening builds it in batches,
 * and a search answers right at every point meanwhile. */
TEST(an_older_library_is_indexed_and_searchable_meanwhile) {
  rig g;
  rig_open(&g);
  rig_close_store(&g);
  rig_exec(&g, "DROP TABLE context_blocks_fts; DROP TABLE prompts_fts;"
               "DROP TRIGGER context_blocks_fts_ins; DROP TRIGGER context_blocks_fts_upd;"
               "DROP TRIGGER context_blocks_fts_del; DROP TRIGGER prompts_fts_ins;"
               "DROP TRIGGER prompts_fts_upd; DROP TRIGGER prompts_fts_del;"
               "DELETE FROM shelf_meta WHERE key LIKE 'fts_built:%';"
               "DROP INDEX context_blocks_search_short; DROP INDEX prompts_search_short;"
               "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)"
               " INSERT INTO context_blocks(id, title, content, tags, created_at, updated_at)"
               " SELECT printf('6e1f5e1f-0000-4000-8000-%012d', i), 'block ' || i,"
               " CASE WHEN i % 1000 = 7 THEN 'the rare word zebra' ELSE 'common text' END,"
               " '[\"t' || i || '\"]', 'a', 'a' FROM n;");
  rig_open_at(&g);
  /* Right after open: nothing indexed yet, the scan answers. */
  int seen_partial = 0;
  for (;;) {
    cJSON *rows = search(&g, "zebra", BOTH, 100);
    ASSERT_EQ(cJSON_GetArraySize(rows), 3);
    ASSERT(has(rows, STORE_BLOCKS, "6e1f5e1f-0000-4000-8000-000000002007"));
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(g.path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT CAST(value AS INTEGER) FROM shelf_meta WHERE key"
                                     " = 'fts_built:context_blocks'", -1, &st, NULL),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    sqlite3_int64 built = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (built > 0 && built < 2500)
      seen_partial = 1;
    if (built == INT64_MAX)
      break;
    uv_run(&g.loop, UV_RUN_NOWAIT);
  }
  ASSERT(seen_partial);
  ASSERT_EQ(count(&g, "t2499"), 1);
  /* Short queries got their covering index too. */
  rig_exec(&g, "SELECT CASE WHEN (SELECT count(*) FROM sqlite_master WHERE name IN"
               " ('context_blocks_search_short', 'prompts_search_short')) = 2 THEN 1"
               " ELSE abs(-9223372036854775807 - 1) END;");
  rig_exec(&g, "INSERT INTO context_blocks_fts(context_blocks_fts, rank) VALUES('integrity-check', 1);");
  rig_close(&g);
}

/* A write held up (another program holds the write lock) does not hold a
 * search: it has its own connection and queue. */
TEST(a_search_does_not_wait_behind_a_write) {
  rig g;
  rig_open(&g);
  char a[40];
  add(&g, STORE_BLOCKS, "{\"title\":\"findme\",\"content\":\"x\"}", a);
  sqlite3 *other;
  ASSERT_EQ(sqlite3_open(g.path, &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE; INSERT INTO shelf_meta VALUES('held', 'x');",
                         NULL, NULL, NULL), SQLITE_OK);
  result ins = {0};
  cJSON *o = cJSON_Parse("{\"title\":\"later\",\"content\":\"y\"}");
  char id[UTIL_UUID_LEN + 1];
  util_uuid4(id);
  cJSON_AddStringToObject(o, "id", id);
  ASSERT_EQ(store_insert(g.st, STORE_BLOCKS, o, on_done, &ins), 0);
  cJSON_Delete(o);
  cJSON *rows = search(&g, "findme", BOTH, 10);
  ASSERT(has(rows, STORE_BLOCKS, a));
  ASSERT_EQ(ins.done, 0); /* the write still waits for the lock */
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(other);
  while (ins.done == 0)
    uv_run(&g.loop, UV_RUN_ONCE);
  ASSERT_EQ(ins.status, 0);
  cJSON_Delete(ins.rows);
  rig_close(&g);
}

/* Without an index at all (an SQLite without FTS5): every row is read. */
TEST(without_an_index_rows_are_scanned) {
  rig g;
  rig_open(&g);
  char a[40];
  add(&g, STORE_PROMPTS, "{\"title\":\"t\",\"content\":\"only in Content here\"}", a);
  rig_exec(&g, "DROP TRIGGER prompts_fts_ins; DROP TRIGGER prompts_fts_upd;"
               " DROP TRIGGER prompts_fts_del; DROP TABLE prompts_fts;"
               " DELETE FROM shelf_meta WHERE key = 'fts_built:prompts';");
  cJSON *rows = search(&g, "content HERE", BOTH, 10);
  ASSERT_EQ(cJSON_GetArraySize(rows), 1);
  ASSERT(has(rows, STORE_PROMPTS, a));
  rig_close(&g);
}

static int cancelled_status;
static void on_cancelled(void *data, int status, const char *error, cJSON *rows) {
  (void)error;
  (void)rows;
  *(int *)data += 1;
  cancelled_status = status;
}

TEST(a_search_is_cancelled_waiting_or_running) {
  rig g;
  rig_open(&g);
  rig_exec(&g, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)"
               " INSERT INTO context_blocks(id, title, content, created_at, updated_at)"
               " SELECT printf('6e1f5e1f-0000-4000-8000-%012d', i), 'title ' || i,"
               " hex(randomblob(100)), 'a', 'a' FROM n;");
  int a = 0, b = 0;
  /* A waits behind nothing and runs; B waits behind A. */
  ASSERT_EQ(store_search(g.st, "no such text at all", BOTH, 100, on_cancelled, &a), 0);
  ASSERT_EQ(store_search(g.st, "no such text either", BOTH, 100, on_cancelled, &b), 0);
  ASSERT_EQ(store_search_cancel(g.st, on_cancelled, &b), 0);
  ASSERT_EQ(store_search_cancel(g.st, on_cancelled, &a), 0);
  while (a + b < 2)
    uv_run(&g.loop, UV_RUN_ONCE);
  ASSERT_EQ(a, 1);
  ASSERT_EQ(b, 1);
  ASSERT_EQ(cancelled_status, UV_ECANCELED);
  /* Done with: nothing to cancel. */
  ASSERT_EQ(store_search_cancel(g.st, on_cancelled, &a), UV_ENOENT);
  /* The connection still answers after an interrupt. */
  ASSERT_EQ(count(&g, "title 2999"), 1);
  rig_close(&g);
}

/* Closing answers every search, waiting or running. */
TEST(close_answers_a_waiting_search) {
  rig g;
  rig_open(&g);
  int a = 0, b = 0;
  ASSERT_EQ(store_search(g.st, "abc", BOTH, 100, on_cancelled, &a), 0);
  ASSERT_EQ(store_search(g.st, "abd", BOTH, 100, on_cancelled, &b), 0);
  int closed = 0;
  store_close(g.st, on_closed, &closed);
  uv_run(&g.loop, UV_RUN_DEFAULT);
  ASSERT(closed);
  ASSERT_EQ(a, 1);
  ASSERT_EQ(b, 1);
  ASSERT_EQ(uv_loop_close(&g.loop), 0);
  char *cmd = util_printf("rm -rf %s", g.dir);
  ASSERT_EQ(system(cmd), 0);
  free(cmd);
}

/* --- through the sync engine: temporary blocks merged, one search at a time --- */

typedef struct {
  int answers, dones;
  uint64_t ticket;
  char error[256];
  cJSON *result;
} answers;

static void sa_changed(void *data, model_kind k, uint64_t v, const cJSON *u, const cJSON *d) {
  (void)data, (void)k, (void)v, (void)u, (void)d;
}
static void sa_done(void *data, uint64_t ticket, const char *error, const cJSON *item) {
  (void)ticket, (void)error, (void)item;
  ((answers *)data)->dones++;
}
static void sa_status(void *data, const cJSON *st) { (void)data, (void)st; }
static void sa_answer(void *data, uint64_t ticket, const char *error, const cJSON *res) {
  answers *a = data;
  a->answers++;
  a->ticket = ticket;
  snprintf(a->error, sizeof a->error, "%s", error ? error : "");
  cJSON_Delete(a->result);
  a->result = res ? cJSON_Duplicate(res, 1) : NULL;
}
static const sync_callbacks sa_cbs = {.changed = sa_changed, .done = sa_done, .status = sa_status,
                                      .answer = sa_answer};

static int hit_of(const cJSON *hits, const char *kind, const char *id) {
  const cJSON *h;
  cJSON_ArrayForEach(h, hits) {
    if (strcmp(cJSON_GetObjectItem(h, "kind")->valuestring, kind) == 0 &&
        strcmp(cJSON_GetObjectItem(h, "id")->valuestring, id) == 0)
      return 1;
  }
  return 0;
}

static void sync_closed(void *data) { *(int *)data = 1; }

TEST(the_engine_merges_temporary_blocks_and_keeps_one_search) {
  rig g;
  rig_open(&g);
  char b[40], p[40];
  add(&g, STORE_BLOCKS, "{\"title\":\"stored block\",\"content\":\"shared word\"}", b);
  add(&g, STORE_PROMPTS, "{\"title\":\"stored prompt\",\"content\":\"shared word\"}", p);
  char fo[40];
  add(&g, STORE_PROMPT_PROJECTS, "{\"name\":\"Shared Folder\"}", fo);
  answers a = {0};
  sync_engine *s = sync_new(&g.loop, g.st, &sa_cbs, &a, NULL);
  cJSON *f = cJSON_Parse("{\"title\":\"scratch\",\"content\":\"a shared word\","
                         "\"temporary\":true}");
  sync_create(s, 1, MODEL_BLOCK, f);
  cJSON_Delete(f);
  while (a.dones < 1)
    uv_run(&g.loop, UV_RUN_ONCE);
  /* Two searches at once: the first is answered as replaced, at once. */
  sync_query_search(s, 10, "nothing like this", -1, 100);
  sync_query_search(s, 11, "SHARED word", -1, 100);
  ASSERT_EQ(a.answers, 1);
  ASSERT_EQ(a.ticket, 10);
  ASSERT(strstr(a.error, "newer search") != NULL);
  while (a.answers < 2)
    uv_run(&g.loop, UV_RUN_ONCE);
  ASSERT_EQ(a.ticket, 11);
  ASSERT_STR(a.error, "");
  ASSERT_EQ(cJSON_GetArraySize(a.result), 3);
  ASSERT(hit_of(a.result, "block", b));
  ASSERT(hit_of(a.result, "prompt", p));
  /* One kind only: the prompt. */
  sync_query_search(s, 12, "shared", MODEL_PROMPT, 100);
  while (a.answers < 3)
    uv_run(&g.loop, UV_RUN_ONCE);
  ASSERT_EQ(cJSON_GetArraySize(a.result), 1);
  ASSERT(hit_of(a.result, "prompt", p));
  /* Cancelled by the editor: never answered. */
  sync_query_search(s, 13, "shared", -1, 100);
  sync_cancel(s, 13);
  sync_query_search(s, 14, "stored", -1, 100);
  while (a.answers < 4)
    uv_run(&g.loop, UV_RUN_ONCE);
  ASSERT_EQ(a.ticket, 14);
  ASSERT_EQ(cJSON_GetArraySize(a.result), 2);
  /* Folders by name, from what the engine holds, beside the store's hits. */
  sync_query_search(s, 16, "SHARED F", -1, 100);
  while (a.answers < 5)
    uv_run(&g.loop, UV_RUN_ONCE);
  ASSERT_EQ(a.ticket, 16);
  ASSERT_EQ(cJSON_GetArraySize(a.result), 1);
  ASSERT(hit_of(a.result, "project", fo));
  /* Closing with a search under way answers it. The store closes in the
   * same turn, as shelfd closes them: a change-log read it still delivered
   * would reach an engine that is gone. */
  sync_query_search(s, 15, "stored", -1, 100);
  int closed = 0, store_closed = 0;
  sync_close(s, sync_closed, &closed);
  store_close(g.st, sync_closed, &store_closed);
  g.st = NULL;
  while (!closed || !store_closed)
    uv_run(&g.loop, UV_RUN_ONCE);
  uv_run(&g.loop, UV_RUN_DEFAULT);
  ASSERT_EQ(a.answers, 6);
  ASSERT_EQ(a.ticket, 15);
  cJSON_Delete(a.result);
  rig_close(&g);
}

static const test_case test_cases[] = {
    TEST_ENTRY(a_phrase_of_words_is_found_in_every_column_and_only_there),
    TEST_ENTRY(substrings_in_every_column_any_case),
    TEST_ENTRY(a_limit_takes_from_both_tables_in_turn),
    TEST_ENTRY(quotes_and_fts_syntax_are_plain_text),
    TEST_ENTRY(short_queries_match_titles_descriptions_and_tags),
    TEST_ENTRY(updates_and_deletes_keep_the_index_right),
    TEST_ENTRY(another_programs_rows_are_found),
    TEST_ENTRY(writes_work_after_another_program_changes_the_schema),
    TEST_ENTRY(an_older_library_is_indexed_and_searchable_meanwhile),
    TEST_ENTRY(a_search_does_not_wait_behind_a_write),
    TEST_ENTRY(without_an_index_rows_are_scanned),
    TEST_ENTRY(a_search_is_cancelled_waiting_or_running),
    TEST_ENTRY(close_answers_a_waiting_search),
    TEST_ENTRY(the_engine_merges_temporary_blocks_and_keeps_one_search),
};

TEST_MAIN()
