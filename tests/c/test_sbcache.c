/* Tests of the Supabase backend's local copy (sbcache.c): rows kept per user
 * and table, another user's never answered, the file's modes, deletion, a
 * damaged or foreign file made again, writes that outlive close, and search
 * over the kept rows. */
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
  rig_put(&g, ADA, STORE_PROMPT_PROJECTS, la);
  rig_close(&g);
  ASSERT_EQ(sqlite3_open(g.path, &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO prompt_projects VALUES('x', '{not json', '{not');",
                         NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  g.c = sbcache_new(&g.loop, g.path, URL);
  ASSERT_EQ(cJSON_GetArraySize(rig_load(&g, ADA, STORE_PROMPT_PROJECTS)), 1);
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

static void on_below(void *data) { (*(int *)data)++; }

/* The bytes of rows waiting to be written are counted, and a reader that
 * waits for them to drop is woken once, when they did. */
TEST(the_write_backlog_is_counted_and_its_drop_wakes) {
  rig g;
  rig_open(&g);
  ASSERT_EQ((long)sbcache_backlog(g.c), 0);
  char *a = row(ID1, ADA, "one");
  char *la = util_printf("[%s]", a);
  sbcache_put(g.c, ADA, STORE_PROMPTS, la, strlen(la));
  sbcache_put(g.c, ADA, STORE_BLOCKS, la, strlen(la));
  ASSERT_EQ((long)sbcache_backlog(g.c), 2 * (long)strlen(la));
  int woken = 0;
  sbcache_when_below(g.c, 0, on_below, &woken);
  /* The first write done leaves one queued: not yet. */
  while (sbcache_backlog(g.c) > strlen(la))
    uv_run(&g.loop, UV_RUN_ONCE);
  ASSERT_EQ(woken, 0);
  rig_idle(&g);
  ASSERT_EQ(woken, 1);
  ASSERT_EQ((long)sbcache_backlog(g.c), 0);
  rig_put(&g, ADA, STORE_PROMPTS, la); /* once: no second wake */
  ASSERT_EQ(woken, 1);
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
  sbcache_load_summaries(g.c, ADA, STORE_PROMPTS, NULL, 0, on_rows, &g);
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
  sbcache_load_summaries(g.c, ADA, STORE_PROMPT_PROJECTS, NULL, 0, on_rows, &g);
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

/* --- search ------------------------------------------------------------------ */

typedef struct {
  int answers, status;
  cJSON *rows;
} hits;

static void on_hits(void *data, int status, const char *error, cJSON *rows) {
  hits *h = data;
  (void)error;
  h->answers++;
  h->status = status;
  cJSON_Delete(h->rows);
  h->rows = rows;
}

/* Search as `user`: the status; the hits in h->rows. */
static int rig_search(rig *g, hits *h, const char *user, const char *q, unsigned tables) {
  int before = h->answers;
  ASSERT_EQ(sbcache_search(g->c, user, q, tables, 100, on_hits, h), 0);
  ASSERT_EQ(h->answers, before); /* never inside the call */
  while (h->answers == before)
    uv_run(&g->loop, UV_RUN_ONCE);
  return h->status;
}

/* 1 if hits holds [t, id]. */
static int has_hit(const hits *h, store_table t, const char *id) {
  const cJSON *hit;
  cJSON_ArrayForEach(hit, h->rows) {
    if (cJSON_GetArrayItem(hit, 0)->valueint == (int)t &&
        strcmp(cJSON_GetArrayItem(hit, 1)->valuestring, id) == 0)
      return 1;
  }
  return 0;
}

#define BOTH ((1u << STORE_BLOCKS) | (1u << STORE_PROMPTS))

static char *item(const char *id, const char *user, const char *title, const char *content) {
  return util_printf("{\"id\":\"%s\",\"user_id\":\"%s\",\"title\":\"%s\","
                     "\"description\":\"Apples for all\",\"content\":\"%s\","
                     "\"tags\":[\"DevOps\",\"ml\"]}",
                     id, user, title, content);
}

static void rig_replace(rig *g, const char *user, store_table t, const char *json) {
  sbcache_replace(g->c, user, t, json, strlen(json));
  rig_idle(g);
}

TEST(search_answers_from_the_kept_rows) {
  rig g;
  rig_open(&g);
  hits h = {0};
  /* Nothing kept: the server must answer. */
  ASSERT_EQ(rig_search(&g, &h, ADA, "kubectl", BOTH), SBCACHE_UNUSABLE);
  char *p1 = item(ID1, ADA, "Review", "use KUBECTL apply");
  char *p2 = item(ID2, ADA, "Plain", "nothing here");
  char *b1 = item(ID3, ADA, "Deploy rollback", "helm chart");
  char *prompts = util_printf("[%s,%s]", p1, p2), *blocks = util_printf("[%s]", b1);
  /* Rows put but never filled by a full read: not answered from. */
  rig_put(&g, ADA, STORE_PROMPTS, prompts);
  ASSERT_EQ(rig_search(&g, &h, ADA, "kubectl", 1u << STORE_PROMPTS), SBCACHE_UNUSABLE);
  rig_replace(&g, ADA, STORE_PROMPTS, prompts);
  ASSERT_EQ(rig_search(&g, &h, ADA, "kubectl", 1u << STORE_PROMPTS), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 1);
  ASSERT(has_hit(&h, STORE_PROMPTS, ID1));
  /* Both tables asked: blocks were never filled. */
  ASSERT_EQ(rig_search(&g, &h, ADA, "kubectl", BOTH), SBCACHE_UNUSABLE);
  rig_replace(&g, ADA, STORE_BLOCKS, blocks);
  /* Any case, across words, the description, tags; blocks and prompts. */
  ASSERT_EQ(rig_search(&g, &h, ADA, "deploy ROLL", BOTH), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 1);
  ASSERT(has_hit(&h, STORE_BLOCKS, ID3));
  ASSERT_EQ(rig_search(&g, &h, ADA, "aPPLES FOR", 1u << STORE_PROMPTS), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 2);
  ASSERT_EQ(rig_search(&g, &h, ADA, "devop", BOTH), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 3);
  /* 1-2 characters: titles, descriptions and tags, not content. */
  ASSERT_EQ(rig_search(&g, &h, ADA, "ML", BOTH), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 3); /* the tag */
  ASSERT_EQ(rig_search(&g, &h, ADA, "he", 1u << STORE_BLOCKS), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 0); /* "helm" is content only */
  /* The limit. */
  ASSERT_EQ(sbcache_search(g.c, ADA, "devops", BOTH, 2, on_hits, &h), 0);
  int before = h.answers;
  while (h.answers == before)
    uv_run(&g.loop, UV_RUN_ONCE);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 2);
  /* Updates and deletes are followed: the old words go with the old text. */
  char *p1b = item(ID1, ADA, "Review", "now about terraform");
  char *one = util_printf("[%s]", p1b);
  rig_put(&g, ADA, STORE_PROMPTS, one);
  ASSERT_EQ(rig_search(&g, &h, ADA, "kubectl", BOTH), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 0);
  ASSERT_EQ(rig_search(&g, &h, ADA, "TERRAFORM", BOTH), 0);
  ASSERT(has_hit(&h, STORE_PROMPTS, ID1));
  sbcache_delete(g.c, ADA, STORE_PROMPTS, ID1);
  rig_idle(&g);
  ASSERT_EQ(rig_search(&g, &h, ADA, "terraform", BOTH), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 0);
  /* A full read that no longer has a row drops it from the search too. */
  rig_replace(&g, ADA, STORE_BLOCKS, "[]");
  ASSERT_EQ(rig_search(&g, &h, ADA, "rollback", BOTH), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 0);
  /* Kept across a close. */
  rig_close(&g);
  g.c = sbcache_new(&g.loop, g.path, URL);
  ASSERT_EQ(rig_search(&g, &h, ADA, "plain", BOTH), 0);
  ASSERT(has_hit(&h, STORE_PROMPTS, ID2));
  cJSON_Delete(h.rows);
  free(p1), free(p2), free(b1), free(prompts), free(blocks), free(p1b), free(one);
  rig_free(&g);
}

TEST(search_never_finds_another_users_rows) {
  rig g;
  rig_open(&g);
  hits h = {0};
  char *a = item(ID1, ADA, "ada secret", "x"), *b = item(ID2, BOB, "bob secret", "y");
  char *both = util_printf("[%s,%s]", a, b), *lb = util_printf("[%s]", b);
  rig_replace(&g, ADA, STORE_PROMPTS, both);
  ASSERT_EQ(rig_search(&g, &h, ADA, "secret", 1u << STORE_PROMPTS), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 1); /* bob's row was never kept */
  ASSERT(has_hit(&h, STORE_PROMPTS, ID1));
  /* Another user asks ada's copy: not answered from. */
  ASSERT_EQ(rig_search(&g, &h, BOB, "secret", 1u << STORE_PROMPTS), SBCACHE_UNUSABLE);
  /* Bob's rows empty the file of ada's: his search finds only his, and
   * only once a full read filled his table. */
  rig_put(&g, BOB, STORE_PROMPTS, lb);
  ASSERT_EQ(rig_search(&g, &h, BOB, "secret", 1u << STORE_PROMPTS), SBCACHE_UNUSABLE);
  rig_replace(&g, BOB, STORE_PROMPTS, lb);
  ASSERT_EQ(rig_search(&g, &h, BOB, "secret", 1u << STORE_PROMPTS), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 1);
  ASSERT(has_hit(&h, STORE_PROMPTS, ID2));
  ASSERT_EQ(rig_search(&g, &h, ADA, "secret", 1u << STORE_PROMPTS), SBCACHE_UNUSABLE);
  /* Forgotten (sign-out): no file, nothing answered, even to bob. */
  sbcache_forget(g.c);
  rig_idle(&g);
  ASSERT_EQ(rig_search(&g, &h, BOB, "secret", 1u << STORE_PROMPTS), SBCACHE_UNUSABLE);
  /* Made again for ada: the search reads the new file, not the old one it
   * had open. */
  char *la = util_printf("[%s]", a);
  rig_replace(&g, ADA, STORE_PROMPTS, la);
  ASSERT_EQ(rig_search(&g, &h, ADA, "secret", 1u << STORE_PROMPTS), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 1);
  ASSERT(has_hit(&h, STORE_PROMPTS, ID1));
  cJSON_Delete(h.rows);
  free(a), free(b), free(both), free(lb), free(la);
  rig_free(&g);
}

TEST(search_sees_the_writes_asked_before_it) {
  rig g;
  rig_open(&g);
  hits h = {0};
  /* Once the copy answered for the table, a write of 3000 rows, then at
   * once a search for the last: it waits for the write. */
  rig_replace(&g, ADA, STORE_PROMPTS, "[]");
  ASSERT_EQ(rig_search(&g, &h, ADA, "body of row", 1u << STORE_PROMPTS), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 0);
  size_t cap = 3000 * 200, len = 0;
  char *list = malloc(cap);
  len += (size_t)snprintf(list + len, cap - len, "[");
  for (int i = 0; i < 3000; i++)
    len += (size_t)snprintf(list + len, cap - len,
                            "%s{\"id\":\"aaaaaaaa-0000-4000-8000-%012d\",\"user_id\":\"%s\","
                            "\"title\":\"row %d\",\"content\":\"body of row %d\"}",
                            i ? "," : "", i, ADA, i, i);
  len += (size_t)snprintf(list + len, cap - len, "]");
  sbcache_put(g.c, ADA, STORE_PROMPTS, list, len);
  ASSERT_EQ(rig_search(&g, &h, ADA, "body of row 2999", 1u << STORE_PROMPTS), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 1);
  /* A delete asked before a search is not found by it. */
  sbcache_delete(g.c, ADA, STORE_PROMPTS, "aaaaaaaa-0000-4000-8000-000000002999");
  ASSERT_EQ(rig_search(&g, &h, ADA, "body of row 2999", 1u << STORE_PROMPTS), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 0);
  cJSON_Delete(h.rows);
  free(list);
  rig_free(&g);
}

TEST(search_cancel_and_close) {
  rig g;
  rig_open(&g);
  hits h1 = {0}, h2 = {0}, h3 = {0};
  char *a = item(ID1, ADA, "kept", "x");
  char *la = util_printf("[%s]", a);
  rig_replace(&g, ADA, STORE_PROMPTS, la);
  /* The first runs, the second waits: cancelling the second answers it at
   * once, the first still answers. */
  ASSERT_EQ(sbcache_search(g.c, ADA, "kept", 1u << STORE_PROMPTS, 10, on_hits, &h1), 0);
  ASSERT_EQ(sbcache_search(g.c, ADA, "kept", 1u << STORE_PROMPTS, 10, on_hits, &h2), 0);
  ASSERT_EQ(sbcache_search_cancel(g.c, on_hits, &h2), 0);
  ASSERT_EQ(h2.answers, 1);
  ASSERT_EQ(h2.status, UV_ECANCELED);
  ASSERT_EQ(sbcache_search_cancel(g.c, on_hits, &h3), UV_ENOENT);
  rig_idle(&g);
  ASSERT_EQ(h1.answers, 1);
  ASSERT_EQ(h1.status, 0);
  ASSERT_EQ(sbcache_search_cancel(g.c, on_hits, &h1), UV_ENOENT); /* answered already */
  /* A running search cancelled answers UV_ECANCELED, once. */
  ASSERT_EQ(sbcache_search(g.c, ADA, "kept", 1u << STORE_PROMPTS, 10, on_hits, &h1), 0);
  ASSERT_EQ(sbcache_search_cancel(g.c, on_hits, &h1), 0);
  rig_idle(&g);
  ASSERT_EQ(h1.answers, 2);
  ASSERT_EQ(h1.status, UV_ECANCELED);
  /* Close: the waiting one answers inside it, the running one later. */
  ASSERT_EQ(sbcache_search(g.c, ADA, "kept", 1u << STORE_PROMPTS, 10, on_hits, &h2), 0);
  ASSERT_EQ(sbcache_search(g.c, ADA, "kept", 1u << STORE_PROMPTS, 10, on_hits, &h3), 0);
  int closed = 0;
  sbcache_close(g.c, on_closed, &closed);
  ASSERT_EQ(h3.answers, 1);
  ASSERT_EQ(h3.status, STORE_ECLOSED);
  while (!closed)
    uv_run(&g.loop, UV_RUN_ONCE);
  g.c = NULL;
  ASSERT_EQ(h2.answers, 2);
  ASSERT_EQ(h2.status, STORE_ECLOSED);
  cJSON_Delete(h1.rows), cJSON_Delete(h2.rows), cJSON_Delete(h3.rows);
  free(a), free(la);
  rig_free(&g);
}

TEST(an_older_format_is_made_again) {
  rig g;
  rig_open(&g);
  /* The format before search: one table for every row. */
  sqlite3 *db;
  ASSERT_EQ(sqlite3_open(g.path, &db), SQLITE_OK);
  char *sql = util_printf(
      "CREATE TABLE sbcache_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE sbcache_rows(tbl INTEGER NOT NULL, id TEXT NOT NULL, row TEXT NOT NULL,"
      " summary TEXT NOT NULL, PRIMARY KEY(tbl, id));"
      "INSERT INTO sbcache_meta VALUES('format', 'shelf supabase cache 2'), ('url', '%s'),"
      " ('user', '%s');"
      "INSERT INTO sbcache_rows VALUES(1, '%s', '{\"id\":\"%s\",\"user_id\":\"%s\"}', '{}');",
      URL, ADA, ID1, ID1, ADA);
  ASSERT_EQ(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  free(sql);
  sqlite3_close(db);
  hits h = {0};
  ASSERT_EQ(rig_search(&g, &h, ADA, "anything", BOTH), SBCACHE_UNUSABLE);
  ASSERT(rig_load(&g, ADA, STORE_PROMPTS) == NULL); /* not read: made again */
  char *a = item(ID1, ADA, "new format", "x");
  char *la = util_printf("[%s]", a);
  rig_replace(&g, ADA, STORE_PROMPTS, la);
  ASSERT_EQ(rig_search(&g, &h, ADA, "FORMAT", 1u << STORE_PROMPTS), 0);
  ASSERT(has_hit(&h, STORE_PROMPTS, ID1));
  cJSON_Delete(h.rows);
  free(a), free(la);
  rig_free(&g);
}

/* How SQLite reads every summary of prompts: 1 when from an index alone
 * (not walking each row's content to reach its summary). */
static int summaries_from_an_index(const char *path) {
  sqlite3 *db;
  sqlite3_stmt *st;
  ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN SELECT summary FROM prompts", -1, &st, NULL),
            SQLITE_OK);
  int covering = 0;
  while (sqlite3_step(st) == SQLITE_ROW)
    covering |= strstr((const char *)sqlite3_column_text(st, 3), "COVERING INDEX") != NULL;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return covering;
}

TEST(summaries_are_read_without_the_content) {
  rig g;
  rig_open(&g);
  char *a = item(ID1, ADA, "kept", "a long content");
  char *la = util_printf("[%s]", a);
  rig_put(&g, ADA, STORE_PROMPTS, la);
  ASSERT(summaries_from_an_index(g.path));
  /* A copy made before the index (an earlier version) gets it when opened. */
  rig_close(&g);
  sqlite3 *db;
  ASSERT_EQ(sqlite3_open(g.path, &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP INDEX prompts_summary", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  ASSERT(!summaries_from_an_index(g.path));
  g.c = sbcache_new(&g.loop, g.path, URL);
  int before = g.answers;
  sbcache_load_summaries(g.c, ADA, STORE_PROMPTS, NULL, 0, on_rows, &g);
  while (g.answers == before)
    uv_run(&g.loop, UV_RUN_ONCE);
  ASSERT_EQ(cJSON_GetArraySize(g.rows), 1);
  ASSERT_STR(cJSON_GetObjectItem(g.rows->child, "title")->valuestring, "kept");
  ASSERT(summaries_from_an_index(g.path));
  free(a), free(la);
  rig_free(&g);
}

/* One number from the file, read as another program would. */
static long long file_int(const char *path, const char *sql) {
  sqlite3 *db;
  long long v = -1;
  ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st;
  ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  if (sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

#define NEEDLE_HITS "SELECT count(*) FROM prompts_fts WHERE prompts_fts MATCH '\"needle0042\"'"
#define PROMPTS_BUILT "SELECT CAST(value AS INTEGER) FROM shelf_meta WHERE key = 'fts_built:prompts'"

typedef struct {
  rig *g;
  long long hits; /* the index's hits when the write was done */
} at_write;

/* Runs as the write finishes, before the next job starts. */
static void look_at_write(void *data) {
  at_write *a = data;
  a->hits = file_int(a->g->path, NEEDLE_HITS);
}

/* A big write (a page of a full read) leaves its new rows out of the search
 * index: they are indexed after, in steps behind later jobs. Searches find
 * them meanwhile. A build left unfinished goes on at the next start. */
/* 300 prompts of Ada's, 150 KB: a big write. Caller frees. */
static char *big_rows(void) {
  size_t cap = 300 * 700 + 16, len = 0;
  char *rows = util_malloc(cap);
  for (int i = 0; i < 300; i++)
    len += (size_t)snprintf(rows + len, cap - len,
                            "%s{\"id\":\"aaaaaaaa-0000-4000-8000-%012d\",\"user_id\":\"%s\","
                            "\"title\":\"t%d\",\"content\":\"needle%04d %0500d\"}",
                            i ? "," : "[", i, ADA, i, i, i);
  snprintf(rows + len, cap - len, "]");
  ASSERT(strlen(rows) >= 128 * 1024);
  return rows;
}

TEST(a_big_write_is_indexed_after) {
  rig g;
  rig_open(&g);
  char *rows = big_rows();
  at_write a = {&g, -1};
  sbcache_replace(g.c, ADA, STORE_PROMPTS, rows, strlen(rows));
  sbcache_when_below(g.c, 0, look_at_write, &a);
  rig_idle(&g);
  ASSERT_EQ(a.hits, 0);                              /* written, not indexed */
  ASSERT_EQ(file_int(g.path, NEEDLE_HITS), 1);       /* then indexed */
  ASSERT_EQ(file_int(g.path, PROMPTS_BUILT), INT64_MAX);
  rig_close(&g);
  /* A build cut short: the rows past its mark are not in the index. */
  sqlite3 *db;
  ASSERT_EQ(sqlite3_open(g.path, &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DELETE FROM prompts_fts; UPDATE shelf_meta SET value = '0' WHERE "
                             "key = 'fts_built:prompts'", NULL, NULL, NULL),
            SQLITE_OK);
  sqlite3_close(db);
  ASSERT_EQ(file_int(g.path, NEEDLE_HITS), 0);
  g.c = sbcache_new(&g.loop, g.path, URL);
  hits h = {0};
  ASSERT_EQ(rig_search(&g, &h, ADA, "needle0042", 1u << STORE_PROMPTS), 0);
  ASSERT_EQ(cJSON_GetArraySize(h.rows), 1); /* found without the index */
  /* The next start's first write resumes the build. */
  rig_put(&g, ADA, STORE_BLOCKS, "[]");
  rig_idle(&g);
  ASSERT_EQ(file_int(g.path, NEEDLE_HITS), 1);
  ASSERT_EQ(file_int(g.path, PROMPTS_BUILT), INT64_MAX);
  cJSON_Delete(h.rows);
  free(rows);
  rig_free(&g);
}

/* What sbcache_on_indexing said, in order. */
typedef struct {
  rig *g;
  int said[8];
  int n;
} told;

static void on_indexing(void *data, int indexing) {
  told *t = data;
  if (t->n < 8)
    t->said[t->n++] = indexing;
}

/* As a write finishes: 2 when sbcache_indexing says rows wait, else -1. */
static void note_building(void *data) {
  told *t = data;
  if (t->n < 8)
    t->said[t->n++] = sbcache_indexing(t->g->c) ? 2 : -1;
}

/* Rows left to the build are told as they start and stop waiting, once
 * each; the check of a run's first write, and small writes, tell nothing. */
TEST(the_index_build_is_told_as_it_starts_and_ends) {
  rig g;
  rig_open(&g);
  told t = {&g, {0}, 0};
  sbcache_on_indexing(g.c, on_indexing, &t);
  rig_put(&g, ADA, STORE_BLOCKS, "[]"); /* the first write: a check, no build */
  rig_idle(&g);
  ASSERT_EQ(t.n, 0);
  ASSERT_EQ(sbcache_indexing(g.c), 0);
  char *rows = big_rows();
  sbcache_replace(g.c, ADA, STORE_PROMPTS, rows, strlen(rows));
  sbcache_when_below(g.c, 0, note_building, &t);
  rig_idle(&g);
  ASSERT_EQ(t.n, 3);
  ASSERT_EQ(t.said[0], 1);
  ASSERT_EQ(t.said[1], 2); /* sbcache_indexing as the write finished */
  ASSERT_EQ(t.said[2], 0);
  ASSERT_EQ(sbcache_indexing(g.c), 0);
  rig_put(&g, ADA, STORE_BLOCKS, "[]");
  rig_idle(&g);
  ASSERT_EQ(t.n, 3);
  free(rows);
  rig_close(&g);
  rig_free(&g);
}

static void note_wake(void *data) { (*(int *)data)++; }
static void on_fired(uv_timer_t *t) { (*(int *)t->data)++; }

/* While a full read holds it, the index build waits; it runs when the hold
 * ends. */
TEST(the_index_build_waits_while_held) {
  rig g;
  rig_open(&g);
  char *rows = big_rows();
  sbcache_hold_index(g.c, 1);
  int written = 0;
  sbcache_replace(g.c, ADA, STORE_PROMPTS, rows, strlen(rows));
  sbcache_when_below(g.c, 0, note_wake, &written);
  while (!written)
    uv_run(&g.loop, UV_RUN_ONCE);
  /* 200 ms, time for a step of 300 rows many times over: it waits. */
  uv_timer_t t;
  int fired = 0;
  uv_timer_init(&g.loop, &t);
  t.data = &fired;
  uv_timer_start(&t, on_fired, 200, 0);
  while (!fired)
    uv_run(&g.loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  ASSERT_EQ(sbcache_busy(g.c), 1); /* the build's step, queued */
  ASSERT_EQ(file_int(g.path, NEEDLE_HITS), 0);
  sbcache_hold_index(g.c, 0);
  rig_idle(&g);
  ASSERT_EQ(file_int(g.path, NEEDLE_HITS), 1);
  free(rows);
  rig_free(&g);
}

static const test_case test_cases[] = {
    TEST_ENTRY(search_answers_from_the_kept_rows),
    TEST_ENTRY(search_never_finds_another_users_rows),
    TEST_ENTRY(search_sees_the_writes_asked_before_it),
    TEST_ENTRY(search_cancel_and_close),
    TEST_ENTRY(an_older_format_is_made_again),
    TEST_ENTRY(summaries_leave_the_content_out),
    TEST_ENTRY(summaries_are_read_without_the_content),
    TEST_ENTRY(rows_per_user_and_table),
    TEST_ENTRY(another_user_empties_the_file),
    TEST_ENTRY(modes_and_forget),
    TEST_ENTRY(damaged_and_foreign_files_are_made_again),
    TEST_ENTRY(writes_outlive_close),
    TEST_ENTRY(the_write_backlog_is_counted_and_its_drop_wakes),
    TEST_ENTRY(a_big_write_is_indexed_after),
    TEST_ENTRY(the_index_build_is_told_as_it_starts_and_ends),
    TEST_ENTRY(the_index_build_waits_while_held),
};

TEST_MAIN()
