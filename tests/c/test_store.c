/* Tests of the SQLite store: CRUD on every table, cascades, extra columns,
 * quoting, type checks, the change log seen from a second connection,
 * shutdown with work queued, and the reads of an incremental refresh. */
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "sql_elsewhere.h"
#include "store.h"
#include "test.h"
#include "util.h"

typedef struct {
  int done, status;
  char error[512];
  cJSON *rows;
} result;

static void on_done(void *data, int status, const char *error, cJSON *rows) {
  result *r = data;
  r->done++;
  r->status = status;
  snprintf(r->error, sizeof r->error, "%s", error ? error : "");
  cJSON_Delete(r->rows);
  r->rows = rows;
}

typedef struct {
  uv_loop_t loop;
  char dir[64], path[128];
  store *st;
  result r;
  int events, deletes, resyncs;
  int batches; /* events with more == 0: the ends of batches */
  char last_event_title[128];
} rig;

static void rig_open(rig *g) {
  memset(g, 0, sizeof *g);
  ASSERT_EQ(uv_loop_init(&g->loop), 0);
  snprintf(g->dir, sizeof g->dir, "/tmp/shelf-store-XXXXXX");
  ASSERT(mkdtemp(g->dir) != NULL);
  snprintf(g->path, sizeof g->path, "%s/library.db", g->dir);
  char *err = NULL;
  g->st = store_sqlite_open(&g->loop, g->path, &err);
  ASSERT(g->st != NULL);
}

/* Wait for the request just made; returns its rows (owned by the rig). */
static cJSON *rig_wait(rig *g, int rc) {
  ASSERT_EQ(rc, 0);
  int before = g->r.done;
  while (g->r.done == before)
    uv_run(&g->loop, UV_RUN_ONCE);
  return g->r.rows;
}

static void on_closed(void *data) { *(int *)data = 1; }

static void rig_close(rig *g) {
  int closed = 0;
  store_close(g->st, on_closed, &closed);
  uv_run(&g->loop, UV_RUN_DEFAULT);
  ASSERT(closed);
  ASSERT_EQ(uv_loop_close(&g->loop), 0);
  cJSON_Delete(g->r.rows);
  char *cmd = util_printf("rm -rf %s", g->dir);
  ASSERT_EQ(system(cmd), 0);
  free(cmd);
}

static cJSON *record(const char *json, char *id_out) {
  cJSON *o = cJSON_Parse(json);
  ASSERT(o != NULL);
  char id[UTIL_UUID_LEN + 1];
  util_uuid4(id);
  cJSON_AddStringToObject(o, "id", id);
  if (id_out)
    strcpy(id_out, id);
  return o;
}

static const char *str(const cJSON *row, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* SQL run by "another program". Like a program written with care, it tries
 * again while the database is locked: shelfd's jobs take the write lock, and
 * about one run in 15 of this suite got SQLITE_BUSY here despite the 5 s
 * busy timeout (why SQLite did not wait is not known); the test then failed
 * and left work in flight for the next one's loop. */
static void rig_exec(rig *g, const char *sql) {
  ASSERT_EQ(sql_elsewhere(g->path, sql), SQLITE_OK);
}

TEST(crud_on_every_table) {
  rig g;
  rig_open(&g);
  const char *bodies[STORE_NTABLES] = {
      "{\"title\":\"b\",\"content\":\"c\",\"tags\":[\"x\",\"y\"]}",
      "{\"title\":\"p\",\"content\":\"c\",\"description\":\"d\",\"folder\":\"f\",\"tags\":[]}",
      "{\"name\":\"ds\"}", "{\"name\":\"pp\",\"icon\":\"X\"}"};
  for (int t = 0; t < STORE_NTABLES; t++) {
    char id[64];
    cJSON *rec = record(bodies[t], id);
    cJSON *rows = rig_wait(&g, store_insert(g.st, (store_table)t, rec, on_done, &g.r));
    cJSON_Delete(rec);
    ASSERT_EQ(g.r.status, 0);
    cJSON *row = cJSON_GetArrayItem(rows, 0);
    ASSERT_STR(str(row, "id"), id);
    ASSERT(str(row, "created_at") && str(row, "updated_at"));
    if (t >= STORE_DATASET_PROJECTS) {
      ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(row, "is_system")));
      ASSERT_STR(str(row, "icon"), t == STORE_DATASET_PROJECTS ? "📁" : "X");
    } else {
      ASSERT(cJSON_IsArray(cJSON_GetObjectItem(row, "tags")));
    }
    char stamp[64];
    snprintf(stamp, sizeof stamp, "%s", str(row, "updated_at"));
    usleep(2000);
    cJSON *f = cJSON_Parse(t >= STORE_DATASET_PROJECTS ? "{\"name\":\"renamed\"}"
                                                      : "{\"title\":\"renamed\"}");
    rows = rig_wait(&g, store_update(g.st, (store_table)t, id, f, on_done, &g.r));
    cJSON_Delete(f);
    ASSERT_EQ(g.r.status, 0);
    row = cJSON_GetArrayItem(rows, 0);
    ASSERT(strcmp(str(row, "updated_at"), stamp) > 0);
    if (t == STORE_PROMPTS)
      ASSERT_STR(str(row, "description"), "d"); /* untouched */
    rows = rig_wait(&g, store_stamps(g.st, (store_table)t, on_done, &g.r));
    ASSERT_EQ(cJSON_GetArraySize(rows), 1);
    ASSERT_STR(cJSON_GetArrayItem(cJSON_GetArrayItem(rows, 0), 0)->valuestring, id);
    rig_wait(&g, store_remove(g.st, (store_table)t, id, on_done, &g.r));
    ASSERT_EQ(g.r.status, 0);
    rows = rig_wait(&g, store_fetch(g.st, (store_table)t, NULL, on_done, &g.r));
    ASSERT_EQ(cJSON_GetArraySize(rows), 0);
    rig_wait(&g, store_remove(g.st, (store_table)t, id, on_done, &g.r));
    ASSERT_EQ(g.r.status, STORE_ENOTFOUND);
  }
  rig_close(&g);
}

TEST(bad_fields_are_refused_with_the_column_named) {
  rig g;
  rig_open(&g);
  cJSON *rec = record("{\"title\":\"x\",\"colour\":\"red\"}", NULL);
  rig_wait(&g, store_insert(g.st, STORE_PROMPTS, rec, on_done, &g.r));
  cJSON_Delete(rec);
  ASSERT_EQ(g.r.status, STORE_EINVALID);
  ASSERT(strstr(g.r.error, "colour") != NULL);
  rec = record("{\"content\":\"no title\"}", NULL);
  rig_wait(&g, store_insert(g.st, STORE_PROMPTS, rec, on_done, &g.r));
  cJSON_Delete(rec);
  ASSERT_EQ(g.r.status, STORE_EINVALID);
  cJSON *noid = cJSON_Parse("{\"title\":\"x\"}");
  ASSERT_EQ(store_insert(g.st, STORE_PROMPTS, noid, on_done, &g.r), STORE_EINVALID);
  cJSON_Delete(noid);
  rig_close(&g);
}

TEST(odd_text_round_trips) {
  rig g;
  rig_open(&g);
  size_t big = 1 << 20;
  char *content = malloc(big + 1);
  for (size_t i = 0; i < big; i++)
    content[i] = (char)('a' + i % 26);
  content[big] = '\0';
  const char *title = "it's \"quoted\"; DROP TABLE prompts; -- \n 🙂";
  cJSON *rec = record("{}", NULL);
  cJSON_AddStringToObject(rec, "title", title);
  cJSON_AddStringToObject(rec, "content", content);
  cJSON *tags = cJSON_AddArrayToObject(rec, "tags");
  cJSON_AddItemToArray(tags, cJSON_CreateString("it's"));
  cJSON *rows = rig_wait(&g, store_insert(g.st, STORE_PROMPTS, rec, on_done, &g.r));
  cJSON_Delete(rec);
  ASSERT_EQ(g.r.status, 0);
  rows = rig_wait(&g, store_fetch(g.st, STORE_PROMPTS, NULL, on_done, &g.r));
  cJSON *row = cJSON_GetArrayItem(rows, 0);
  ASSERT_STR(str(row, "title"), title);
  ASSERT_STR(str(row, "content"), content);
  ASSERT_STR(cJSON_GetArrayItem(cJSON_GetObjectItem(row, "tags"), 0)->valuestring, "it's");
  free(content);
  rig_close(&g);
}

/* Rows for what keeps no content: every column but content, and its size
 * in bytes (not characters). */
TEST(summaries_leave_content_out_and_give_its_size) {
  rig g;
  rig_open(&g);
  cJSON *rec = record("{\"title\":\"sized\",\"content\":\"héllo 🙂\"}", NULL);
  rig_wait(&g, store_insert(g.st, STORE_PROMPTS, rec, on_done, &g.r));
  cJSON_Delete(rec);
  ASSERT_EQ(g.r.status, 0);
  ASSERT(g.st->ops->fetch_summaries != NULL);
  cJSON *rows = rig_wait(&g, g.st->ops->fetch_summaries(g.st, STORE_PROMPTS, NULL, on_done, &g.r));
  ASSERT_EQ(g.r.status, 0);
  cJSON *row = cJSON_GetArrayItem(rows, 0);
  ASSERT_STR(str(row, "title"), "sized");
  ASSERT(cJSON_GetObjectItem(row, "content") == NULL);
  ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(row, STORE_CONTENT_SIZE)));
  ASSERT_EQ((int)cJSON_GetObjectItem(row, STORE_CONTENT_SIZE)->valuedouble, 11);
  ASSERT(cJSON_GetObjectItem(row, "updated_at") != NULL);
  rig_close(&g);
}

typedef struct {
  int parts, ends, status;
  cJSON *rows; /* every row the parts brought, in order */
  rig *g;
  int wrote; /* the write asked for after the first part was answered
                before the last part came */
  result w;
} parts_seen;

static void on_part(void *data, int status, const char *error, cJSON *rows) {
  parts_seen *p = data;
  (void)error;
  if (status == STORE_PAGE && p->parts++ == 0) {
    /* Asked for after the first part: it waits for the part already under
     * way, not for the rest. */
    cJSON *rec = record("{\"title\":\"written meanwhile\"}", NULL);
    ASSERT_EQ(store_insert(p->g->st, STORE_PROMPTS, rec, on_done, &p->w), 0);
    cJSON_Delete(rec);
  }
  if (status != STORE_PAGE) {
    p->ends++;
    p->status = status;
    p->wrote = p->w.done;
  }
  cJSON *row;
  while (rows && (row = cJSON_DetachItemFromArray(rows, 0)) != NULL)
    cJSON_AddItemToArray(p->rows, row);
  cJSON_Delete(rows);
}

/* A read of every row's summary comes in parts (of 2000 rows), each row
 * once; a write asked for during it does not wait for the whole read. */
TEST(every_row_comes_in_parts_and_writes_go_between_them) {
  rig g;
  rig_open(&g);
  /* 4500 rows, the sqlite3 tool's way: one transaction. */
  ASSERT_EQ(sql_elsewhere(g.path,
                          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4500) "
                          "INSERT INTO prompts(id, title, content, created_at, updated_at) SELECT "
                          "printf('00000000-0000-4000-8000-%012d', i), 'p' || i, 'body', "
                          "'2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00' FROM n"),
            SQLITE_OK);
  parts_seen p = {.rows = cJSON_CreateArray(), .g = &g};
  ASSERT_EQ(g.st->ops->fetch_summaries(g.st, STORE_PROMPTS, NULL, on_part, &p), 0);
  while (p.ends == 0)
    uv_run(&g.loop, UV_RUN_ONCE);
  ASSERT_EQ(p.status, 0);
  ASSERT_EQ(p.ends, 1);
  ASSERT_EQ(p.parts, 2); /* 2000, 2000, then the last 500 (and the row written) */
  ASSERT_EQ(p.wrote, 1);
  ASSERT_EQ(p.w.status, 0);
  int n = cJSON_GetArraySize(p.rows);
  ASSERT_EQ(n, 4501);
  for (int i = 0; i < 4500; i++) {
    char want[64];
    snprintf(want, sizeof want, "p%d", i + 1);
    ASSERT_STR(str(cJSON_GetArrayItem(p.rows, i), "title"), want);
    ASSERT(cJSON_GetObjectItem(cJSON_GetArrayItem(p.rows, i), "content") == NULL);
  }
  ASSERT_STR(str(cJSON_GetArrayItem(p.rows, 4500), "title"), "written meanwhile");
  cJSON_Delete(p.rows);
  cJSON_Delete(p.w.rows);
  rig_close(&g);
}

TEST(nested_folders_cascade) {
  rig g;
  rig_open(&g);
  char top[64], sub[64], blk[64];
  cJSON *rec = record("{\"name\":\"top\"}", top);
  rig_wait(&g, store_insert(g.st, STORE_DATASET_PROJECTS, rec, on_done, &g.r));
  cJSON_Delete(rec);
  rec = record("{\"name\":\"sub\"}", sub);
  cJSON_AddStringToObject(rec, "parent_id", top);
  rig_wait(&g, store_insert(g.st, STORE_DATASET_PROJECTS, rec, on_done, &g.r));
  cJSON_Delete(rec);
  rec = record("{\"title\":\"inside\"}", blk);
  cJSON_AddStringToObject(rec, "project_id", sub);
  rig_wait(&g, store_insert(g.st, STORE_BLOCKS, rec, on_done, &g.r));
  cJSON_Delete(rec);
  ASSERT_EQ(g.r.status, 0);
  /* The same name twice in one folder is a conflict. */
  rec = record("{\"name\":\"sub\"}", NULL);
  cJSON_AddStringToObject(rec, "parent_id", top);
  rig_wait(&g, store_insert(g.st, STORE_DATASET_PROJECTS, rec, on_done, &g.r));
  cJSON_Delete(rec);
  ASSERT_EQ(g.r.status, STORE_ECONFLICT);
  /* An item in a folder that does not exist is refused. */
  rec = record("{\"title\":\"orphan\",\"project_id\":\"00000000-0000-4000-8000-000000000000\"}", NULL);
  rig_wait(&g, store_insert(g.st, STORE_BLOCKS, rec, on_done, &g.r));
  cJSON_Delete(rec);
  ASSERT_EQ(g.r.status, STORE_ECONFLICT);
  rig_wait(&g, store_remove(g.st, STORE_DATASET_PROJECTS, top, on_done, &g.r));
  ASSERT_EQ(g.r.status, 0);
  cJSON *rows = rig_wait(&g, store_fetch(g.st, STORE_DATASET_PROJECTS, NULL, on_done, &g.r));
  ASSERT_EQ(cJSON_GetArraySize(rows), 0);
  rows = rig_wait(&g, store_fetch(g.st, STORE_BLOCKS, NULL, on_done, &g.r));
  ASSERT_EQ(cJSON_GetArraySize(rows), 0);
  rig_close(&g);
}

TEST(extra_columns_are_kept) {
  rig g;
  rig_open(&g);
  char id[64];
  cJSON *rec = record("{\"title\":\"with extra\"}", id);
  rig_wait(&g, store_insert(g.st, STORE_PROMPTS, rec, on_done, &g.r));
  cJSON_Delete(rec);
  store_close(g.st, NULL, NULL);
  uv_run(&g.loop, UV_RUN_DEFAULT);
  /* A column the web app has and shelf does not know. */
  char *sql = util_printf("ALTER TABLE prompts ADD COLUMN rating INTEGER;"
                          "ALTER TABLE prompts ADD COLUMN \"odd\"\"name\" TEXT;"
                          "UPDATE prompts SET rating = 5, \"odd\"\"name\" = 'q' WHERE id = '%s';",
                          id);
  rig_exec(&g, sql);
  free(sql);
  char *err = NULL;
  g.st = store_sqlite_open(&g.loop, g.path, &err);
  ASSERT(g.st != NULL);
  /* A column whose name holds a quote is read without the content too. */
  cJSON *sums = rig_wait(&g, g.st->ops->fetch_summaries(g.st, STORE_PROMPTS, NULL, on_done, &g.r));
  ASSERT_EQ(g.r.status, 0);
  ASSERT_STR(str(cJSON_GetArrayItem(sums, 0), "odd\"name"), "q");
  cJSON *f = cJSON_Parse("{\"title\":\"renamed\"}");
  cJSON *rows = rig_wait(&g, store_update(g.st, STORE_PROMPTS, id, f, on_done, &g.r));
  cJSON_Delete(f);
  ASSERT_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 0), "rating")->valuedouble, 5);
  /* And it can be written too. */
  f = cJSON_Parse("{\"rating\":4}");
  rows = rig_wait(&g, store_update(g.st, STORE_PROMPTS, id, f, on_done, &g.r));
  cJSON_Delete(f);
  ASSERT_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 0), "rating")->valuedouble, 4);
  /* A number beyond int64 is kept as SQLite keeps it, not cast (undefined). */
  f = cJSON_Parse("{\"rating\":1e300}");
  rows = rig_wait(&g, store_update(g.st, STORE_PROMPTS, id, f, on_done, &g.r));
  cJSON_Delete(f);
  ASSERT(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 0), "rating")->valuedouble == 1e300);
  rig_close(&g);
}

static void on_event(void *data, const store_event *ev) {
  rig *g = data;
  if (ev->type == STORE_EV_UPSERT && ev->record) {
    g->events++;
    snprintf(g->last_event_title, sizeof g->last_event_title, "%s",
             str(ev->record, "title") ? str(ev->record, "title") : "");
  } else if (ev->type == STORE_EV_DELETE) {
    g->deletes++;
  } else if (ev->type == STORE_EV_RESYNC) {
    g->resyncs++;
  }
  if (!ev->more)
    g->batches++;
}

static void on_tick(uv_timer_t *t) { (void)t; }

/* A ticking timer keeps uv_run from blocking forever when the event never comes. */
static void wait_for(rig *g, int *counter, int want) {
  uv_timer_t tick;
  ASSERT_EQ(uv_timer_init(&g->loop, &tick), 0);
  ASSERT_EQ(uv_timer_start(&tick, on_tick, 50, 50), 0);
  double until = util_now_ms() + 20000;
  while (*counter < want && util_now_ms() < until)
    uv_run(&g->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&g->loop, UV_RUN_NOWAIT);
  if (*counter < want)
    fprintf(stderr, "  %d of %d events\n", *counter, want);
  ASSERT(*counter >= want);
}

TEST(writes_by_another_program_arrive_as_events) {
  rig g;
  rig_open(&g);
  ASSERT_EQ(store_watch(g.st, on_event, &g), 0);
  rig_exec(&g, "INSERT INTO prompts (id, title, content, tags, created_at, updated_at) VALUES "
               "('5e1f5e1f-0000-4000-8000-000000000001', 'from elsewhere', '', '[]', 'a', 'a')");
  wait_for(&g, &g.events, 1);
  ASSERT_STR(g.last_event_title, "from elsewhere");
  /* An update that leaves updated_at alone gets it bumped by the trigger. */
  rig_exec(&g, "UPDATE prompts SET title = 'edited' WHERE id = '5e1f5e1f-0000-4000-8000-000000000001'");
  wait_for(&g, &g.events, 2);
  ASSERT_STR(g.last_event_title, "edited");
  cJSON *rows = rig_wait(&g, store_fetch(g.st, STORE_PROMPTS, NULL, on_done, &g.r));
  ASSERT(strcmp(str(cJSON_GetArrayItem(rows, 0), "updated_at"), "a") != 0);
  rig_exec(&g, "DELETE FROM prompts");
  wait_for(&g, &g.deletes, 1);
  rig_close(&g);
}

/* Idle means no timer armed: the loop then sleeps until a file or the editor
 * wakes it. The test watches the folder too; libuv hands each event of one
 * folder to every watcher in order, so once the test sees its own marker
 * file the store has seen everything written before it. */
typedef struct {
  int marks, logs;
} folder_seen;

static void on_folder(uv_fs_event_t *h, const char *filename, int events, int status) {
  folder_seen *f = h->data;
  (void)events;
  if (status < 0 || !filename)
    return;
  if (strncmp(filename, "mark", 4) == 0)
    f->marks++;
  else if (strcmp(filename, "library.db.log") == 0)
    f->logs++;
}

static void count_armed(uv_handle_t *h, void *arg) {
  if (h->type == UV_TIMER && uv_is_active(h))
    (*(int *)arg)++;
}

static void append_file(const char *path, const char *text) {
  FILE *f = fopen(path, "a");
  ASSERT(f != NULL);
  fputs(text, f);
  ASSERT_EQ(fclose(f), 0);
}

/* Write a marker file and run the loop until the test's watcher sees it;
 * then the timers armed in the loop (the guard stopped first). */
static int armed_after_mark(rig *g, folder_seen *seen, const char *name) {
  int before = seen->marks;
  char *path = util_printf("%s/%s", g->dir, name);
  append_file(path, "x");
  free(path);
  uv_timer_t guard; /* keeps uv_run from blocking for ever if no event comes */
  ASSERT_EQ(uv_timer_init(&g->loop, &guard), 0);
  ASSERT_EQ(uv_timer_start(&guard, on_tick, 50, 50), 0);
  double until = util_now_ms() + 20000;
  while (seen->marks == before && util_now_ms() < until)
    uv_run(&g->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(&g->loop, UV_RUN_NOWAIT);
  ASSERT(seen->marks > before);
  int armed = 0;
  uv_walk(&g->loop, count_armed, &armed);
  return armed;
}

/* shelfd's own log beside the library (helper.log = the library's name +
 * ".log", as the benchmarks have it) is no change to the library: a line
 * written there must not wake the store to read the change log. It did (a
 * prefix match on the library's name), four reads over a second after each
 * line: the idle wake-ups the benchmarks counted. A write to the library
 * itself does arm the read. */
TEST(a_log_beside_the_library_wakes_nothing) {
  rig g;
  rig_open(&g);
  ASSERT_EQ(store_watch(g.st, on_event, &g), 0);
  /* The index check queued at open has run once a later request answers. */
  rig_wait(&g, store_stamps(g.st, STORE_PROMPTS, on_done, &g.r));
  folder_seen seen = {0};
  uv_fs_event_t folder;
  ASSERT_EQ(uv_fs_event_init(&g.loop, &folder), 0);
  folder.data = &seen;
  ASSERT_EQ(uv_fs_event_start(&folder, on_folder, g.dir, 0), 0);
  ASSERT_EQ(armed_after_mark(&g, &seen, "mark0"), 0);
  char *log = util_printf("%s/library.db.log", g.dir);
  append_file(log, "2026-12-03 11:36:59 shelfd info: shelfd ready\n");
  free(log);
  ASSERT_EQ(armed_after_mark(&g, &seen, "mark1"), 0);
  ASSERT(seen.logs > 0);
  ASSERT_EQ(g.batches, 0);
  /* The other side: a write to the library arms the read, and it comes. */
  rig_exec(&g, "INSERT INTO prompts (id, title, content, tags, created_at, updated_at) VALUES "
               "('5e1f5e1f-0000-4000-8000-000000000009', 'from elsewhere', '', '[]', 'a', 'a')");
  ASSERT(armed_after_mark(&g, &seen, "mark2") > 0);
  wait_for(&g, &g.events, 1);
  uv_close((uv_handle_t *)&folder, NULL);
  rig_close(&g);
}

/* A changed row that cannot be read is not reported as deleted: the mirror
 * would drop it until the next refresh. Here the table is gone from under the
 * reader (renamed), so the read fails for sure. */
TEST(a_changed_row_that_cannot_be_read_is_no_delete) {
  rig g;
  rig_open(&g);
  ASSERT_EQ(store_watch(g.st, on_event, &g), 0);
  rig_exec(&g, "BEGIN; INSERT INTO shelf_changes(tbl, row_id, op) VALUES "
               "('prompts', '5e1f5e1f-0000-4000-8000-000000000002', 'upsert');"
               "ALTER TABLE prompts RENAME TO prompts_elsewhere; COMMIT;");
  wait_for(&g, &g.resyncs, 1);
  ASSERT_EQ(g.deletes, 0);
  rig_close(&g);
}

/* The change log is cut back during a session, not only at open. */
TEST(a_long_session_keeps_the_change_log_bounded) {
  rig g;
  rig_open(&g);
  ASSERT_EQ(store_watch(g.st, on_event, &g), 0);
  rig_exec(&g, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20001) "
               "INSERT INTO prompts (id, title, content, tags, created_at, updated_at) "
               "SELECT printf('5e1f5e1f-0000-4000-8000-%012d', i), 'p' || i, '', '[]', 'a', 'a' FROM n");
  wait_for(&g, &g.resyncs, 1); /* that many rows: one full refresh */
  sqlite3 *db;
  ASSERT_EQ(sqlite3_open(g.path, &db), SQLITE_OK);
  sqlite3_stmt *st;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM shelf_changes", -1, &st, NULL), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  int rows = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  ASSERT(rows <= 10001);
  rig_close(&g);
}

/* An insert sent again with the same id (its first answer was lost) is
 * answered with the stored row and stores nothing more, whatever it says. */
TEST(an_insert_sent_again_answers_with_the_stored_row) {
  rig g;
  rig_open(&g);
  char id[64];
  cJSON *rec = record("{\"title\":\"once\",\"content\":\"v1\"}", id);
  cJSON *rows = rig_wait(&g, store_insert(g.st, STORE_PROMPTS, rec, on_done, &g.r));
  ASSERT_EQ(g.r.status, 0);
  char stamp[64];
  snprintf(stamp, sizeof stamp, "%s", str(cJSON_GetArrayItem(rows, 0), "created_at"));
  rows = rig_wait(&g, store_insert(g.st, STORE_PROMPTS, rec, on_done, &g.r));
  ASSERT_EQ(g.r.status, 0);
  ASSERT_STR(str(cJSON_GetArrayItem(rows, 0), "id"), id);
  ASSERT_STR(str(cJSON_GetArrayItem(rows, 0), "created_at"), stamp);
  cJSON_ReplaceItemInObject(rec, "content", cJSON_CreateString("v2"));
  rows = rig_wait(&g, store_insert(g.st, STORE_PROMPTS, rec, on_done, &g.r));
  ASSERT_EQ(g.r.status, 0);
  ASSERT_STR(str(cJSON_GetArrayItem(rows, 0), "content"), "v1");
  cJSON_Delete(rec);
  rows = rig_wait(&g, store_fetch(g.st, STORE_PROMPTS, NULL, on_done, &g.r));
  ASSERT_EQ(cJSON_GetArraySize(rows), 1);
  /* Other unique rules still hold: a second folder of the same name is a
   * conflict, not the first one. */
  rec = record("{\"name\":\"dup\"}", NULL);
  rig_wait(&g, store_insert(g.st, STORE_PROMPT_PROJECTS, rec, on_done, &g.r));
  cJSON_Delete(rec);
  ASSERT_EQ(g.r.status, 0);
  rec = record("{\"name\":\"dup\"}", NULL);
  rig_wait(&g, store_insert(g.st, STORE_PROMPT_PROJECTS, rec, on_done, &g.r));
  cJSON_Delete(rec);
  ASSERT_EQ(g.r.status, STORE_ECONFLICT);
  rig_close(&g);
}

/* Rows written by another program in bulk come as one batch of events, each
 * with its record (read back a chunk at a time), deletes included; past the
 * limit they come as one resync instead. */
TEST(bulk_changes_elsewhere_come_as_one_batch) {
  rig g;
  rig_open(&g);
  ASSERT_EQ(store_watch(g.st, on_event, &g), 0);
  rig_exec(&g, "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) "
               "INSERT INTO prompts (id, title, content, tags, created_at, updated_at) "
               "SELECT printf('5e1f5e1f-0000-4000-8000-%012d', i), 'p' || i, '', '[]', 'a', 'a' FROM n;"
               "UPDATE prompts SET title = 'last word' WHERE id = '5e1f5e1f-0000-4000-8000-000000001500';"
               "DELETE FROM prompts WHERE id = '5e1f5e1f-0000-4000-8000-000000000001'; COMMIT;");
  wait_for(&g, &g.events, 1499);
  wait_for(&g, &g.deletes, 1);
  ASSERT_EQ(g.events, 1499);
  ASSERT_EQ(g.resyncs, 0);
  ASSERT_EQ(g.batches, 1);
  /* The last word on a row is what came. */
  ASSERT_STR(g.last_event_title, "last word");
  /* Past SQ_CHANGES_MAX (5000) rows: no events, one resync. */
  rig_exec(&g, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000) "
               "INSERT INTO context_blocks (id, title, content, tags, created_at, updated_at) "
               "SELECT printf('6e1f5e1f-0000-4000-8000-%012d', i), 'b' || i, '', '[]', 'a', 'a' FROM n");
  wait_for(&g, &g.resyncs, 1);
  ASSERT_EQ(g.events, 1499);
  ASSERT_EQ(g.batches, 2);
  rig_close(&g);
}

TEST(close_hands_back_queued_work) {
  rig g;
  rig_open(&g);
  for (int i = 0; i < 5; i++)
    ASSERT_EQ(store_stamps(g.st, STORE_PROMPTS, on_done, &g.r), 0);
  int closed = 0;
  store_close(g.st, on_closed, &closed);
  uv_run(&g.loop, UV_RUN_DEFAULT);
  ASSERT(closed);
  ASSERT_EQ(g.r.done, 5);
  ASSERT_EQ(g.r.status, STORE_ECLOSED);
  ASSERT_EQ(uv_loop_close(&g.loop), 0);
  char *cmd = util_printf("rm -rf %s", g.dir);
  ASSERT_EQ(system(cmd), 0);
  free(cmd);
}

/* The rows' titles of an answer, sorted and joined ("a,c"). */
static void titles(const cJSON *rows, char *out, size_t cap) {
  const char *t[8];
  int n = 0;
  const cJSON *r;
  cJSON_ArrayForEach(r, rows) if (n < 8) t[n++] = str(r, "title");
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && strcmp(t[j - 1], t[j]) > 0; j--) {
      const char *x = t[j];
      t[j] = t[j - 1];
      t[j - 1] = x;
    }
  size_t len = 0;
  out[0] = '\0';
  for (int i = 0; i < n; i++)
    len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : "", t[i]);
}

TEST(since_and_count_until_compare_stamps_as_times) {
  rig g;
  rig_open(&g);
  /* Stamps another program wrote in other forms and zones (b is 00:00:02
   * UTC, the stamp asked about), and one that is no time at all (e). */
  rig_exec(&g,
           "INSERT INTO prompts(id, title, content, tags, created_at, updated_at) VALUES "
           "('6e1f5e1f-0000-4000-8000-000000000001', 'a', '', '[]', 'x',"
           " '2026-01-01T00:00:01+00:00'),"
           "('6e1f5e1f-0000-4000-8000-000000000002', 'b', '', '[]', 'x',"
           " '2026-01-01 01:00:02+01:00'),"
           "('6e1f5e1f-0000-4000-8000-000000000003', 'c', '', '[]', 'x',"
           " '2026-01-01T00:00:02.5Z'),"
           "('6e1f5e1f-0000-4000-8000-000000000004', 'd', '', '[]', 'x',"
           " '2025-12-31T23:59:59-01:00'),"
           "('6e1f5e1f-0000-4000-8000-000000000005', 'e', '', '[]', 'x',"
           " 'soon')");
  const char *at = "2026-01-01T00:00:02.000000+00:00";
  char got[64];
  cJSON *rows = rig_wait(&g, store_count_until(g.st, STORE_PROMPTS, at, on_done, &g.r));
  ASSERT_EQ(g.r.status, 0);
  ASSERT_EQ(cJSON_GetArrayItem(rows, 0)->valueint, 2); /* a, b */
  rows = rig_wait(&g, store_since(g.st, STORE_PROMPTS, at, NULL, on_done, &g.r));
  titles(rows, got, sizeof got);
  ASSERT_STR(got, "c,d"); /* later only */
  cJSON *known = cJSON_CreateArray();
  rows = rig_wait(&g, store_since(g.st, STORE_PROMPTS, at, known, on_done, &g.r));
  titles(rows, got, sizeof got);
  ASSERT_STR(got, "b,c,d"); /* and those at it */
  cJSON_AddItemToArray(known, cJSON_CreateString("6e1f5e1f-0000-4000-8000-000000000002"));
  rows = rig_wait(&g, store_since(g.st, STORE_PROMPTS, at, known, on_done, &g.r));
  titles(rows, got, sizeof got);
  ASSERT_STR(got, "c,d"); /* but not the ones known there */
  ASSERT_EQ(store_since(g.st, STORE_PROMPTS, "yesterday", known, on_done, &g.r), STORE_EINVALID);
  ASSERT_EQ(store_count_until(g.st, STORE_PROMPTS, "", on_done, &g.r), STORE_EINVALID);
  cJSON_Delete(known);
  rig_close(&g);
}

static const test_case test_cases[] = {
    TEST_ENTRY(crud_on_every_table),
    TEST_ENTRY(bad_fields_are_refused_with_the_column_named),
    TEST_ENTRY(odd_text_round_trips),
    TEST_ENTRY(summaries_leave_content_out_and_give_its_size),
    TEST_ENTRY(every_row_comes_in_parts_and_writes_go_between_them),
    TEST_ENTRY(nested_folders_cascade),
    TEST_ENTRY(extra_columns_are_kept),
    TEST_ENTRY(writes_by_another_program_arrive_as_events),
    TEST_ENTRY(a_log_beside_the_library_wakes_nothing),
    TEST_ENTRY(a_changed_row_that_cannot_be_read_is_no_delete),
    TEST_ENTRY(a_long_session_keeps_the_change_log_bounded),
    TEST_ENTRY(an_insert_sent_again_answers_with_the_stored_row),
    TEST_ENTRY(bulk_changes_elsewhere_come_as_one_batch),
    TEST_ENTRY(close_hands_back_queued_work),
    TEST_ENTRY(since_and_count_until_compare_stamps_as_times),
};

TEST_MAIN()
