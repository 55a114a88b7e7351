/* Tests of the Supabase backend's local copy (sbcache.c): rows kept per user
 * and table, another user's never answered, the file's modes, deletion, a
 * damaged or foreign file made again, and writes that outlive close. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbcache.h"
#include "test.h"
#include "util.h"

#define URL "http://127.0.0.1:54321"
#define ADA "11111111-1111-4111-8111-111111111111"
#define BOB "22222222-2222-4222-8222-222222222222"
#define ID1 "aaaaaaaa-0000-4000-8000-000000000001"
#define ID2 "aaaaaaaa-0000-4000-8000-000000000002"
#define ID3 "aaaaaaaa-0000-4000-8000-000000000003"

typedef struct {
  uv_loop_t loop;
  char dir[64], sub[96], path[160];
  sbcache *c;
  int answers;
  cJSON *rows;
  int got_null;
} rig;

static void rig_open(rig *g) {
  memset(g, 0, sizeof *g);
  ASSERT_EQ(uv_loop_init(&g->loop), 0);
  snprintf(g->dir, sizeof g->dir, "/tmp/shelf-sbcache-XXXXXX");
  ASSERT(mkdtemp(g->dir) != NULL);
  snprintf(g->sub, sizeof g->sub, "%s/shelf", g->dir);
  ASSERT_EQ(mkdir(g->sub, 0755), 0);
  snprintf(g->path, sizeof g->path, "%s/cache.db", g->sub);
  g->c = sbcache_new(&g->loop, g->path, URL);
}

static void on_rows(void *data, cJSON *rows) {
  rig *g = data;
  g->answers++;
  cJSON_Delete(g->rows);
  g->rows = rows;
  g->got_null = rows == NULL;
}

static void rig_idle(rig *g) {
  while (sbcache_busy(g->c))
    uv_run(&g->loop, UV_RUN_ONCE);
}

/* Load table t as `user`; the rows (owned by the rig) or NULL. */
static cJSON *rig_load(rig *g, const char *user, store_table t) {
  int before = g->answers;
  sbcache_load(g->c, user, t, on_rows, g);
  ASSERT_EQ(g->answers, before); /* never inside the call */
  while (g->answers == before)
    uv_run(&g->loop, UV_RUN_ONCE);
  return g->rows;
}

static void rig_put(rig *g, const char *user, store_table t, const char *json) {
  sbcache_put(g->c, user, t, json, strlen(json));
  rig_idle(g);
}

static void on_closed(void *data) { *(int *)data = 1; }

static void rig_close(rig *g) {
  int closed = 0;
  sbcache_close(g->c, on_closed, &closed);
  while (!closed)
    uv_run(&g->loop, UV_RUN_ONCE);
  g->c = NULL;
}

static void rig_free(rig *g) {
  if (g->c)
    rig_close(g);
  cJSON_Delete(g->rows);
  g->rows = NULL;
  uv_run(&g->loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&g->loop), 0);
  char *cmd = util_printf("rm -rf '%s'", g->dir);
  ASSERT_EQ(system(cmd), 0);
  free(cmd);
}

static const char *title_of(const cJSON *rows, const char *id) {
  const cJSON *row;
  cJSON_ArrayForEach(row, rows) {
    const cJSON *rid = cJSON_GetObjectItem(row, "id");
    if (cJSON_IsString(rid) && strcmp(rid->valuestring, id) == 0) {
      const cJSON *t = cJSON_GetObjectItem(row, "title");
      return cJSON_IsString(t) ? t->valuestring : "";
    }
  }
  return NULL;
}

static char *row(const char *id, const char *user, const char *title) {
  return util_printf("{\"id\":\"%s\",\"user_id\":\"%s\",\"title\":\"%s\","
                     "\"tags\":[\"a\"],\"n\":1.5,\"extra\":null}",
                     id, user, title);
}

TEST(rows_per_user_and_table) {
  rig g;
  rig_open(&g);
  ASSERT(rig_load(&g, ADA, STORE_PROMPTS) == NULL); /* nothing kept yet */
  char *a = row(ID1, ADA, "one"), *b = row(ID2, ADA, "two"), *x = row(ID3, BOB, "bob's");
  char *list = util_printf("[%s,%s,%s]", a, b, x);
  rig_put(&g, ADA, STORE_PROMPTS, list);
  cJSON *rows = rig_load(&g, ADA, STORE_PROMPTS);
  ASSERT(rows != NULL);
  ASSERT_EQ(cJSON_GetArraySize(rows), 2); /* bob's row was not ada's to keep */
  ASSERT_STR(title_of(rows, ID1), "one");
  /* Rows come back as they went in, extra columns and all. */
  cJSON *want = cJSON_Parse(a);
  ASSERT(cJSON_Compare(cJSON_GetArrayItem(rows, 0), want, 1) ||
         cJSON_Compare(cJSON_GetArrayItem(rows, 1), want, 1));
  cJSON_Delete(want);
  /* Another table is apart; another user gets nothing. */
  rows = rig_load(&g, ADA, STORE_BLOCKS);
  ASSERT(rows != NULL);
  ASSERT_EQ(cJSON_GetArraySize(rows), 0);
  ASSERT(rig_load(&g, BOB, STORE_PROMPTS) == NULL);
  ASSERT(rig_load(&g, "", STORE_PROMPTS) == NULL);
  /* An update replaces, a delete forgets. */
  char *a2 = row(ID1, ADA, "one, renamed");
  char *one = util_printf("[%s]", a2);
  rig_put(&g, ADA, STORE_PROMPTS, one);
  sbcache_delete(g.c, ADA, STORE_PROMPTS, ID2);
  rig_idle(&g);
  rows = rig_load(&g, ADA, STORE_PROMPTS);
  ASSERT_EQ(cJSON_GetArraySize(rows), 1);
  ASSERT_STR(title_of(rows, ID1), "one, renamed");
  /* get: only the ids asked for. */
  rig_put(&g, ADA, STORE_PROMPTS, list);
  cJSON *ids = cJSON_CreateArray();
  cJSON_AddItemToArray(ids, cJSON_CreateString(ID2));
  cJSON_AddItemToArray(ids, cJSON_CreateString(ID3));
  int before = g.answers;
  sbcache_get(g.c, ADA, STORE_PROMPTS, ids, on_rows, &g);
  while (g.answers == before)
    uv_run(&g.loop, UV_RUN_ONCE);
  ASSERT_EQ(cJSON_GetArraySize(g.rows), 1);
  ASSERT_STR(title_of(g.rows, ID2), "two");
  cJSON_Delete(ids);
  /* replace: the table holds exactly the rows given. */
  char *only = util_printf("[%s]", b);
  sbcache_replace(g.c, ADA, STORE_PROMPTS, only, strlen(only));
  rig_idle(&g);
  rows = rig_load(&g, ADA, STORE_PROMPTS);
  ASSERT_EQ(cJSON_GetArraySize(rows), 1);
  ASSERT_STR(title_of(rows, ID2), "two");
  free(a), free(b), free(x), free(list), free(a2), free(one), free(only);
  rig_free(&g);
}

TEST(another_user_empties_the_file) {
  rig g;
  rig_open(&g);
  char *a = row(ID1, ADA, "ada's"), *b = row(ID2, BOB, "bob's");
  char *la = util_printf("[%s]", a), *lb = util_printf("[%s]", b);
  rig_put(&g, ADA, STORE_BLOCKS, la);
  rig_put(&g, BOB, STORE_PROMPTS, lb);
  ASSERT(rig_load(&g, ADA, STORE_BLOCKS) == NULL);
  cJSON *rows = rig_load(&g, BOB, STORE_BLOCKS);
  ASSERT(rows != NULL);
  ASSERT_EQ(cJSON_GetArraySize(rows), 0); /* ada's blocks went with her */
  ASSERT_EQ(cJSON_GetArraySize(rig_load(&g, BOB, STORE_PROMPTS)), 1);
  /* Kept across a close and a new cache on the same file. */
  rig_close(&g);
  g.c = sbcache_new(&g.loop, g.path, URL);
  ASSERT_STR(title_of(rig_load(&g, BOB, STORE_PROMPTS), ID2), "bob's");
  /* Another project's cache on that path is not read, and is made again. */
  rig_close(&g);
  g.c = sbcache_new(&g.loop, g.path, "https://other.example.com");
  ASSERT(rig_load(&g, BOB, STORE_PROMPTS) == NULL);
  rig_put(&g, BOB, STORE_PROMPTS, lb);
  ASSERT_EQ(cJSON_GetArraySize(rig_load(&g, BOB, STORE_PROMPTS)), 1);
  free(a), free(b), free(la), free(lb);
  rig_free(&g);
}

TEST(modes_and_forget) {
  rig g;
  rig_open(&g);
  char *a = row(ID1, ADA, "x");
  char *la = util_printf("[%s]", a);
  rig_put(&g, ADA, STORE_PROMPTS, la);
  struct stat st;
  ASSERT_EQ(stat(g.path, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0600);
  ASSERT_EQ(stat(g.sub, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0700);
  char *wal = util_printf("%s-wal", g.path);
  if (stat(wal, &st) == 0)
    ASSERT_EQ(st.st_mode & 0777, 0600);
  /* A file made readable by others is made private again when opened. */
  rig_close(&g);
  ASSERT_EQ(chmod(g.path, 0644), 0);
  g.c = sbcache_new(&g.loop, g.path, URL);
  ASSERT(rig_load(&g, ADA, STORE_PROMPTS) != NULL);
  ASSERT_EQ(stat(g.path, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0600);
  sbcache_forget(g.c);
  rig_idle(&g);
  ASSERT(stat(g.path, &st) < 0);
  ASSERT(stat(wal, &st) < 0);
  ASSERT(rig_load(&g, ADA, STORE_PROMPTS) == NULL);
  free(wal), free(a), free(la);
  rig_free(&g);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ASSERT(f != NULL);
  fputs(text, f);
  fclose(f);
}

TEST(damaged_and_foreign_files_are_made_again) {
  rig g;
  rig_open(&g);
  char *a = row(ID1, ADA, "x");
  char *la = util_printf("[%s]", a);
  /* Not a database at all. */
  write_file(g.path, "this is not a database, and long enough to look like a header....."
                     "................................................................");
  ASSERT(rig_load(&g, ADA, STORE_PROMPTS) == NULL);
  rig_put(&g, ADA, STORE_PROMPTS, la);
  ASSERT_EQ(cJSON_GetArraySize(rig_load(&g, ADA, STORE_PROMPTS)), 1);
  rig_close(&g);
  /* Another program's database. */
  unlink(g.path);
  sqlite3 *db;
  ASSERT_EQ(sqlite3_open(g.path, &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE notes(x); INSERT INTO notes VALUES(1);", NULL, NULL,
                         NULL), SQLITE_OK);
  sqlite3_close(db);
  g.c = sbcache_new(&g.loop, g.path, URL);
  ASSERT(rig_load(&g, ADA, STORE_PROMPTS) == NULL);
  rig_put(&g, ADA, STORE_PROMPTS, la);
  ASSERT_EQ(cJSON_GetArraySize(rig_load(&g, ADA, STORE_PROMPTS)), 1);
  /* A row that is not JSON (written by hand) is skipped, not a crash. */
  rig_close(&g);
  ASSERT_EQ(sqlite3_open(g.path, &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO sbcache_rows VALUES(1, 'x', '{not json', '{not');", NULL, NULL,
                         NULL), SQLITE_OK);
  sqlite3_close(db);
  g.c = sbcache_new(&g.loop, g.path, URL);
  ASSERT_EQ(cJSON_GetArraySize(rig_load(&g, ADA, STORE_PROMPTS)), 1);
  /* Rows that are not a JSON list are refused, and the file stays usable. */
  rig_put(&g, ADA, STORE_PROMPTS, "{\"id\":");
  ASSERT_EQ(cJSON_GetArraySize(rig_load(&g, ADA, STORE_PROMPTS)), 1);
  free(a), free(la);
  rig_free(&g);
}

TEST(writes_outlive_close) {
  rig g;
  rig_open(&g);
  char *a = row(ID1, ADA, "last word");
  char *la = util_printf("[%s]", a);
  sbcache_put(g.c, ADA, STORE_PROMPTS, la, strlen(la));
  int before = g.answers;
  sbcache_load(g.c, ADA, STORE_PROMPTS, on_rows, &g);
  sbcache_put(g.c, ADA, STORE_BLOCKS, la, strlen(la));
  int closed = 0;
  sbcache_close(g.c, on_closed, &closed);
  ASSERT_EQ(g.answers, before + 1); /* the waiting read answered at once */
  ASSERT(g.got_null);
  while (!closed)
    uv_run(&g.loop, UV_RUN_ONCE);
  g.c = sbcache_new(&g.loop, g.path, URL);
  ASSERT_STR(title_of(rig_load(&g, ADA, STORE_PROMPTS), ID1), "last word");
  ASSERT_STR(title_of(rig_load(&g, ADA, STORE_BLOCKS), ID1), "last word");
  free(a), free(la);
  rig_free(&g);
}

TEST(summaries_leave_the_content_out) {
  rig g;
  rig_open(&g);
  const char *rows = "[{\"id\":\"" ID1 "\",\"user_id\":\"" ADA "\",\"title\":\"t\","
                     "\"content\":\"h\\u00e9llo\",\"tags\":[]},"
                     "{\"id\":\"" ID2 "\",\"user_id\":\"" ADA "\",\"title\":\"u\","
                     "\"content\":\"\"}]";
  rig_put(&g, ADA, STORE_PROMPTS, rows);
  rig_put(&g, ADA, STORE_PROMPT_PROJECTS,
          "[{\"id\":\"" ID3 "\",\"user_id\":\"" ADA "\",\"name\":\"f\"}]");
  int before = g.answers;
  sbcache_load_summaries(g.c, ADA, STORE_PROMPTS, on_rows, &g);
  while (g.answers == before)
    uv_run(&g.loop, UV_RUN_ONCE);
  ASSERT_EQ(cJSON_GetArraySize(g.rows), 2);
  const cJSON *row;
  cJSON_ArrayForEach(row, g.rows) {
    ASSERT(cJSON_GetObjectItem(row, "content") == NULL);
    const cJSON *size = cJSON_GetObjectItem(row, STORE_CONTENT_SIZE);
    ASSERT(cJSON_IsNumber(size));
    const char *title = cJSON_GetObjectItem(row, "title")->valuestring;
    ASSERT_EQ(size->valueint, strcmp(title, "t") == 0 ? 6 : 0); /* bytes, not characters */
    ASSERT(cJSON_IsArray(cJSON_GetObjectItem(row, "tags")) || strcmp(title, "u") == 0);
  }
  before = g.answers;
  sbcache_load_summaries(g.c, ADA, STORE_PROMPT_PROJECTS, on_rows, &g);
  while (g.answers == before)
    uv_run(&g.loop, UV_RUN_ONCE);
  ASSERT_EQ(cJSON_GetArraySize(g.rows), 1);
  ASSERT(cJSON_GetObjectItem(g.rows->child, STORE_CONTENT_SIZE) == NULL); /* folders have none */
  ASSERT_STR(cJSON_GetObjectItem(g.rows->child, "name")->valuestring, "f");
  /* The whole rows still have their content. */
  ASSERT_STR(cJSON_GetObjectItem(rig_load(&g, ADA, STORE_PROMPTS)->child, "content")->valuestring,
             "h\xc3\xa9llo");
  rig_free(&g);
}

static const test_case test_cases[] = {
    TEST_ENTRY(summaries_leave_the_content_out),
    TEST_ENTRY(rows_per_user_and_table),
    TEST_ENTRY(another_user_empties_the_file),
    TEST_ENTRY(modes_and_forget),
    TEST_ENTRY(damaged_and_foreign_files_are_made_again),
    TEST_ENTRY(writes_outlive_close),
};

TEST_MAIN()
