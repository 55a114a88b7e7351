/* store_sqlite_search.c - search in the SQLite library (store_sqlite_search.h).
 *
 * Each searched table has an FTS5 index with the trigram tokenizer (matches
 * are case-insensitive substrings, like the web app's ilike) over title,
 * description, content and tags. The indexes are external-content tables:
 * content is not stored twice, only the trigrams; triggers keep them right
 * for every writer, other programs included. Tags are indexed as stored
 * (their JSON text), so FTS5's 'rebuild' can remake an index from the table
 * (after a VACUUM, which may renumber rowids).
 *
 * A library made before the indexes existed gets them built a batch at a time
 * on the write connection's queue (store_sqlite.c runs sqsearch_build_step on
 * the thread pool). shelf_meta holds, per table, the rowid up to which the
 * index is built: the triggers touch the index only for rows at or below it,
 * so a row is in the index exactly when its rowid is, and a search meanwhile
 * reads the index for those rows and scans the rest with LIKE, in one read
 * transaction (one snapshot).
 *
 * Queries of fewer than 3 characters have no trigram: they match titles,
 * descriptions and tags only (LIKE: ASCII letters fold case), a scan of a
 * covering index of those columns (a few MiB at 100k items), never of the
 * table with its content. The index is made with the table, or for an older
 * library as the first step of the build.
 *
 * Queries run one at a time on libuv's thread pool, each table's part at
 * once on a read-only connection of its own (WAL lets them read while a
 * write is under way), so a search never waits behind a write, nor one
 * table's part behind the other's; sqlite3_interrupt stops a cancelled one
 * and touches no other connection.
 */
#include "store_sqlite_search.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "log.h"
#include "util.h"

/* Rows indexed per build step: a step holds the write connection (a read
 * of a row waits for it), about 0.1-0.3 s for 250 rows of 2 KB. */
#define SQS_BUILD_BATCH 250
#define SQS_BUILT_ALL "9223372036854775807"

typedef struct {
  store_table t;
  const char *name;
  const char *cols;  /* the indexed columns, in the index's order */
  const char *short_cols; /* the covering index for short queries */
} sqs_table;

static const sqs_table sqs_tables[] = {
    {STORE_BLOCKS, "context_blocks", "title, content, tags", "title, tags, id"},
    {STORE_PROMPTS, "prompts", "title, description, content, tags",
     "title, description, tags, id"},
};
#define SQS_NTABLES ((int)(sizeof sqs_tables / sizeof sqs_tables[0]))

/* The indexed values of a row, each column prefixed with `p` ("NEW.", "OLD."
 * or ""): the columns as stored (tags as their JSON text), so that FTS5's own
 * 'rebuild' and 'integrity-check' agree with the triggers. */
static char *sqs_values(const sqs_table *tb, const char *p) {
  return tb->t == STORE_PROMPTS
             ? util_printf("%1$stitle, %1$sdescription, %1$scontent, %1$stags", p)
             : util_printf("%1$stitle, %1$scontent, %1$stags", p);
}

/* The rowid the index of tb is built up to, as an SQL expression for the
 * triggers (which take no parameters: the key is made of a constant name). */
static char *sqs_built_expr(const sqs_table *tb) {
  return util_printf("(SELECT CAST(value AS INTEGER) FROM shelf_meta WHERE key = "
                     "'fts_built:%1$s')", tb->name);
}

/* The same, read with the key bound. -1 when there is none. */
static int sqs_built(sqlite3 *db, const sqs_table *tb, sqlite3_int64 *built) {
  sqlite3_stmt *st;
  *built = -1;
  int rc = sqlite3_prepare_v2(db, "SELECT CAST(value AS INTEGER) FROM shelf_meta WHERE key = ?",
                              -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_bind_text(st, 1, util_printf("fts_built:%s", tb->name), -1, free);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    *built = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* --- schema and build (write connection) ------------------------------------------ */

static int sqs_table_exists(sqlite3 *db, const char *name) {
  sqlite3_stmt *st;
  int found = 0;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name = ?", -1, &st, NULL) ==
      SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
  }
  return found;
}

static int sqs_int_query(sqlite3 *db, const char *sql, sqlite3_int64 a, sqlite3_int64 b,
                         sqlite3_int64 *out, sqlite3_int64 *out2) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  if (sqlite3_bind_parameter_count(st) >= 1)
    sqlite3_bind_int64(st, 1, a);
  if (sqlite3_bind_parameter_count(st) >= 2)
    sqlite3_bind_int64(st, 2, b);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
    if (out2)
      *out2 = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 1);
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    *out = -1;
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

static int sqs_schema_table(sqlite3 *db, const sqs_table *tb, char **err) {
  char *fts = util_printf("%s_fts", tb->name);
  int had = sqs_table_exists(db, fts);
  char *nv = sqs_values(tb, "NEW."), *ov = sqs_values(tb, "OLD."), *built = sqs_built_expr(tb);
  char *ins = util_printf("INSERT INTO \"%1$s_fts\"(rowid, %2$s) SELECT NEW.rowid, %3$s"
                          " WHERE NEW.rowid <= %4$s;",
                          tb->name, tb->cols, nv, built);
  char *del = util_printf("INSERT INTO \"%1$s_fts\"(\"%1$s_fts\", rowid, %2$s) SELECT 'delete',"
                          " OLD.rowid, %3$s WHERE OLD.rowid <= %4$s;",
                          tb->name, tb->cols, ov, built);
  /* A new index of a table with rows starts unbuilt; of an empty one, built. */
  char *sql = util_printf(
      "CREATE VIRTUAL TABLE IF NOT EXISTS \"%1$s_fts\" USING fts5(%2$s, content='%1$s',"
      " content_rowid='rowid', tokenize='trigram');"
      "INSERT OR %5$s INTO shelf_meta VALUES('fts_built:%1$s', CASE WHEN EXISTS"
      " (SELECT 1 FROM \"%1$s\") THEN '0' ELSE '" SQS_BUILT_ALL "' END);"
      "CREATE TRIGGER IF NOT EXISTS \"%1$s_fts_ins\" AFTER INSERT ON \"%1$s\" BEGIN %3$s END;"
      "CREATE TRIGGER IF NOT EXISTS \"%1$s_fts_del\" AFTER DELETE ON \"%1$s\" BEGIN %4$s END;"
      /* Only when an indexed column changes: not for the updated_at stamp. */
      "CREATE TRIGGER IF NOT EXISTS \"%1$s_fts_upd\" AFTER UPDATE OF %2$s ON \"%1$s\""
      " BEGIN %4$s %3$s END;",
      tb->name, tb->cols, ins, del, had ? "IGNORE" : "REPLACE");
  int rc = sqlite3_exec(db, sql, NULL, NULL, err);
  free(sql);
  /* The index for short queries: at once while the table is empty, else
   * by the build (sqs_build_table). */
  if (rc == SQLITE_OK) {
    sqlite3_int64 any = -1;
    const char *name = tb->name;
    sql = util_printf("SELECT 1 FROM \"%s\" LIMIT 1", name);
    rc = sqs_int_query(db, sql, 0, 0, &any, NULL);
    free(sql);
    if (rc == SQLITE_OK && any < 0) {
      sql = util_printf("CREATE INDEX IF NOT EXISTS \"%1$s_search_short\" ON \"%1$s\"(%2$s)",
                        tb->name, tb->short_cols);
      rc = sqlite3_exec(db, sql, NULL, NULL, err);
      free(sql);
    }
  }
  free(ins);
  free(del);
  free(nv);
  free(ov);
  free(built);
  free(fts);
  return rc;
}

int sqsearch_begin_write(sqlite3 *db, char **err) {
  /* Any read of the main schema checks its cookie when it runs, and on a
   * change reloads the schema and runs again (outside any other prepare).
   * sqlite3_exec prepares the read only once BEGIN has run. */
  return sqlite3_exec(db, "BEGIN IMMEDIATE; SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL,
                      err);
}

int sqsearch_schema(sqlite3 *db, char **err) {
  *err = NULL;
  /* Made already (every start but the first): no write lock to wait for
   * behind another process's build. */
  sqlite3_int64 have = -1;
  if (sqs_int_query(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('context_blocks_fts',"
                        " 'context_blocks_fts_ins', 'context_blocks_fts_del',"
                        " 'context_blocks_fts_upd', 'prompts_fts', 'prompts_fts_ins',"
                        " 'prompts_fts_del', 'prompts_fts_upd')",
                    0, 0, &have, NULL) == SQLITE_OK && have == 8)
    return SQLITE_OK;
  /* One transaction: two processes opening a library at once agree. */
  int rc = sqsearch_begin_write(db, err);
  for (int i = 0; rc == SQLITE_OK && i < SQS_NTABLES; i++)
    rc = sqs_schema_table(db, &sqs_tables[i], err);
  if (rc == SQLITE_OK)
    return sqlite3_exec(db, "COMMIT", NULL, NULL, err);
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* Index the next batch of one table: 1 done a batch, 0 nothing to do. */
static int sqs_build_table(sqlite3 *db, const sqs_table *tb) {
  char *name = util_printf("%s_search_short", tb->name);
  int have = sqs_table_exists(db, name);
  free(name);
  if (!have) {
    char *ix = util_printf("CREATE INDEX IF NOT EXISTS \"%1$s_search_short\" ON \"%1$s\"(%2$s)",
                           tb->name, tb->short_cols);
    int rc = sqlite3_exec(db, ix, NULL, NULL, NULL);
    free(ix);
    return rc == SQLITE_OK ? 1 : -rc;
  }
  sqlite3_int64 built = -1, n = 0, last = -1;
  int rc = sqs_built(db, tb, &built);
  if (rc != SQLITE_OK)
    return -rc;
  if (built < 0 || built == INT64_MAX)
    return 0;
  char *sql = util_printf("SELECT count(*), max(rowid) FROM (SELECT rowid FROM \"%s\""
                          " WHERE rowid > ? ORDER BY rowid LIMIT ?)", tb->name);
  rc = sqs_int_query(db, sql, built, SQS_BUILD_BATCH, &n, &last);
  free(sql);
  if (rc != SQLITE_OK)
    return -rc;
  if (n > 0) {
    char *vals = sqs_values(tb, "");
    sql = util_printf("INSERT INTO \"%1$s_fts\"(rowid, %2$s) SELECT rowid, %3$s FROM \"%1$s\""
                      " WHERE rowid > ?1 AND rowid <= ?2", tb->name, tb->cols, vals);
    free(vals);
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    free(sql);
    if (rc != SQLITE_OK)
      return -rc;
    sqlite3_bind_int64(st, 1, built);
    sqlite3_bind_int64(st, 2, last);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
      return -rc;
  }
  /* A short batch reached the end: later rows are the triggers' business. */
  sqlite3_int64 now = n < SQS_BUILD_BATCH ? INT64_MAX : last;
  sqlite3_stmt *st;
  rc = sqlite3_prepare_v2(db, "UPDATE shelf_meta SET value = ? WHERE key = ?", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return -rc;
  char *key = util_printf("fts_built:%s", tb->name);
  sqlite3_bind_text(st, 1, util_printf("%lld", (long long)now), -1, free);
  sqlite3_bind_text(st, 2, key, -1, free);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 1 : -rc;
}

int sqsearch_build_step(sqlite3 *db) {
  int rc = sqsearch_begin_write(db, NULL);
  if (rc != SQLITE_OK) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -rc;
  }
  int more = 0;
  for (int i = 0; i < SQS_NTABLES && more == 0; i++)
    more = sqs_build_table(db, &sqs_tables[i]);
  if (more < 0) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return more;
  }
  rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -rc;
  }
  return more;
}

/* --- queries (read-only connection) ----------------------------------------------- */

/* One table's part of a query, on a worker thread with that table's own
 * read connection: the tables are searched at once, not one after the other
 * (a phrase of several words takes 40-60 ms a table at 100k items). */
typedef struct {
  uv_work_t work;
  struct sqs_job *job;
  int table; /* index in sqs_tables */
  int rc;    /* an SQLite code */
  char *error;
  cJSON *rows;
} sqs_part;

typedef struct sqs_job {
  sqsearch *s;
  char *query;
  unsigned tables;
  int limit;
  store_done_cb cb;
  void *data;
  int cancelled;
  int parts_left;
  sqs_part parts[SQS_NTABLES];
  int counts[SQS_NTABLES]; /* each part's hits so far (sqs_out) */
  int shares[SQS_NTABLES]; /* what the answer takes of each part's, all having enough */
  list_node link; /* in s->jobs while it waits */
} sqs_job;

struct sqsearch {
  uv_loop_t *loop;
  sqlite3 *db[SQS_NTABLES]; /* a read-only connection for each table's part */
  store_defer *defer;
  list_node jobs; /* sqs_job.link, oldest first */
  sqs_job *running;
  int closing;
  void (*closed)(void *);
  void *closed_data;
};

static size_t sqs_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

/* '%q%' for LIKE ... ESCAPE '\'. */
static char *sqs_like_pattern(const char *q) {
  size_t len = strlen(q);
  char *out = util_malloc(len * 2 + 3), *o = out;
  *o++ = '%';
  for (; *q; q++) {
    if (*q == '%' || *q == '_' || *q == '\\')
      *o++ = '\\';
    *o++ = *q;
  }
  *o++ = '%';
  *o = '\0';
  return out;
}

/* The whole query as one FTS5 phrase: "...", with " doubled. */
static char *sqs_phrase(const char *q) {
  size_t len = strlen(q);
  char *out = util_malloc(len * 2 + 3), *o = out;
  *o++ = '"';
  for (; *q; q++) {
    if (*q == '"')
      *o++ = '"';
    *o++ = *q;
  }
  *o++ = '"';
  *o = '\0';
  return out;
}

/* Where a table's part puts its hits. The answer takes from each part in
 * turns (sqs_merge), so when every part holds its share of the limit
 * (`shares`, what the turns take from it then), more would go unused: a
 * part of a search whose parts run at once (`counts`: each part's hits so
 * far, written and read atomically, one writer each) stops there. */
typedef struct {
  store_table t;
  int limit;
  cJSON *rows;
  int n;
  int self;           /* this part's index in counts and shares */
  int *counts;        /* NULL: no other part runs meanwhile */
  const int *shares;
} sqs_out;

/* True when the part may stop: the limit, or every part's share, is held. */
static int sqs_enough(const sqs_out *o) {
  if (o->n >= o->limit)
    return 1;
  if (!o->counts || o->n < o->shares[o->self])
    return 0;
  for (int i = 0; i < SQS_NTABLES; i++)
    if (i != o->self && __atomic_load_n(&o->counts[i], __ATOMIC_RELAXED) < o->shares[i])
      return 0;
  return 1;
}

static void sqs_take(sqs_out *o, const char *id) {
  cJSON *hit = cJSON_CreateArray();
  cJSON_AddItemToArray(hit, cJSON_CreateNumber(o->t));
  cJSON_AddItemToArray(hit, cJSON_CreateString(id));
  cJSON_AddItemToArray(o->rows, hit);
  o->n++;
  if (o->counts)
    __atomic_store_n(&o->counts[o->self], o->n, __ATOMIC_RELAXED);
}

/* Run sql (?1 text, ?2 text, ?3 int limit, ?4 int rowid) adding [t, id] rows. */
static int sqs_collect(sqlite3 *db, const char *sql, const char *a1, const char *a2,
                       sqlite3_int64 a4, sqs_out *o) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  int np = sqlite3_bind_parameter_count(st);
  if (np >= 1)
    sqlite3_bind_text(st, 1, a1, -1, SQLITE_STATIC);
  if (np >= 2)
    sqlite3_bind_text(st, 2, a2, -1, SQLITE_STATIC);
  if (np >= 3)
    sqlite3_bind_int(st, 3, o->limit - o->n);
  if (np >= 4)
    sqlite3_bind_int64(st, 4, a4);
  while (!sqs_enough(o) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *id = (const char *)sqlite3_column_text(st, 0);
    if (id)
      sqs_take(o, id);
  }
  sqlite3_finalize(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The cost of an FTS5 phrase is the reading of every one of its trigrams'
 * lists: a phrase of words common in the library ('deploy rollback', 13
 * trigrams) takes 20-40 ms a table at 100k items, though few rows hold the
 * words side by side. Its 5 characters around a space between words (3
 * trigrams) are read in a fifth of that and are as rare, or nearly: their
 * rows, when at most SQS_WINDOW_ROWS, are each checked for the whole query
 * with LIKE, a few microseconds a row. */
#define SQS_WINDOW_ROWS 256
/* Past this many bytes a query asks its whole phrase (LIKE refuses a
 * pattern of more than 50,000). */
#define SQS_WINDOW_QUERY_MAX 1024

/* A column for LIKE as the index folds it: LIKE folds the case of ASCII
 * letters only, the index every letter, and two past ASCII fold to ASCII
 * ones (KELVIN SIGN to k, LONG S to s). */
#define SQS_FOLDED(col) "replace(replace(" col ", char(8490), 'k'), char(383), 's')"

/* The window of q (sqs_collect_window), or NULL: a query without a space
 * inside, shorter than 8 characters (its phrase is cheap) or longer than
 * SQS_WINDOW_QUERY_MAX, or with a character past ASCII (checked with LIKE,
 * it would match as ASCII letters only). */
static char *sqs_window(const char *q) {
  size_t len = strlen(q);
  if (len > SQS_WINDOW_QUERY_MAX)
    return NULL;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)q[i] >= 0x80)
      return NULL;
  for (size_t i = 2; len >= 8 && i + 2 < len; i++)
    if (q[i] == ' ' && q[i - 1] != ' ' && q[i + 1] != ' ')
      return util_printf("%.5s", q + i - 2);
  return NULL;
}

/* The indexed rows that hold q, through its window's phrase (`window`, as
 * sqs_phrase makes it): each row of the window's checked with `like` in
 * title, description, content and tags as indexed (the JSON text). *used is
 * 0 when the window has more than SQS_WINDOW_ROWS rows: nothing was added,
 * and the whole phrase is asked instead. Rows come in rowid order, as the
 * whole phrase's do. */
static int sqs_collect_window(sqlite3 *db, const sqs_table *tb, const char *window,
                              const char *like, sqs_out *o, int *used) {
  sqlite3_int64 ids[SQS_WINDOW_ROWS + 1];
  int nids = 0;
  sqlite3_stmt *st;
  *used = 0;
  char *sql = util_printf("SELECT rowid FROM \"%1$s_fts\" WHERE \"%1$s_fts\" MATCH ?1"
                          " LIMIT ?2", tb->name);
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  free(sql);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_bind_text(st, 1, window, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, SQS_WINDOW_ROWS + 1);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    ids[nids++] = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE)
    return rc;
  if (nids > SQS_WINDOW_ROWS)
    return SQLITE_OK;
  sql = util_printf("SELECT id FROM \"%1$s\" WHERE rowid = ?1 AND ("
                    SQS_FOLDED("title") " LIKE ?2 ESCAPE '\\'%2$s OR " SQS_FOLDED("content")
                    " LIKE ?2 ESCAPE '\\' OR " SQS_FOLDED("tags") " LIKE ?2 ESCAPE '\\')",
                    tb->name,
                    tb->t == STORE_PROMPTS ? " OR " SQS_FOLDED("description") " LIKE ?2 ESCAPE '\\'"
                                           : "");
  rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  free(sql);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_bind_text(st, 2, like, -1, SQLITE_STATIC);
  for (int i = 0; i < nids && !sqs_enough(o) && rc == SQLITE_OK; i++) {
    sqlite3_bind_int64(st, 1, ids[i]);
    rc = sqlite3_step(st);
    const char *id = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (id)
      sqs_take(o, id);
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  *used = rc == SQLITE_OK;
  return rc;
}

static int sqs_search_table(sqlite3 *db, const sqs_table *tb, const char *q, sqs_out *o) {
  char *like = sqs_like_pattern(q);
  const char *desc = tb->t == STORE_PROMPTS ? " OR description LIKE ?2 ESCAPE '\\'" : "";
  /* Tags by their values, read only for rows whose JSON text matches. */
  const char *tags = "tags LIKE ?2 ESCAPE '\\' AND EXISTS(SELECT 1 FROM json_each(CASE WHEN"
                     " json_valid(tags) THEN tags ELSE '[]' END) WHERE value LIKE ?2"
                     " ESCAPE '\\')";
  int rc;
  if (sqs_chars(q) < 3) {
    char *sql = util_printf("SELECT id FROM \"%1$s\" WHERE title LIKE ?2 ESCAPE '\\'%2$s"
                            " OR (%3$s) LIMIT ?3", tb->name, desc, tags);
    rc = sqs_collect(db, sql, like, like, 0, o);
    free(sql);
    free(like);
    return rc;
  }
  sqlite3_int64 built = -1;
  char *sql;
  rc = sqs_built(db, tb, &built);
  char *phrase = sqs_phrase(q);
  /* No progress row: no index (an SQLite without FTS5), every row scanned. */
  if (rc == SQLITE_OK && built >= 0) {
    char *window = sqs_window(q), *wphrase = window ? sqs_phrase(window) : NULL;
    int used = 0;
    if (wphrase)
      rc = sqs_collect_window(db, tb, wphrase, like, o, &used);
    free(wphrase);
    free(window);
    if (rc == SQLITE_OK && !used) {
      sql = util_printf("SELECT t.id FROM \"%1$s_fts\" f JOIN \"%1$s\" t ON t.rowid = f.rowid"
                        " WHERE \"%1$s_fts\" MATCH ?1 LIMIT ?3", tb->name);
      rc = sqs_collect(db, sql, phrase, like, 0, o);
      free(sql);
    }
  }
  /* While the index is being built: the rows past it, scanned. */
  if (rc == SQLITE_OK && built != INT64_MAX && !sqs_enough(o)) {
    sql = util_printf("SELECT id FROM \"%1$s\" WHERE rowid > ?4 AND (title LIKE ?2 ESCAPE '\\'"
                      "%2$s OR content LIKE ?2 ESCAPE '\\' OR (%3$s)) LIMIT ?3",
                      tb->name, desc, tags);
    rc = sqs_collect(db, sql, phrase, like, built < 0 ? INT64_MIN : built, o);
    free(sql);
  }
  free(phrase);
  free(like);
  return rc;
}

/* Each table's hits (per[i] for sqs_tables[i], NULL: none), taken in turns:
 * a common word shows prompts and blocks alike, not only the first table's,
 * when the limit cuts. Empties per. */
static cJSON *sqs_merge(cJSON *per[SQS_NTABLES], int limit) {
  cJSON *rows = cJSON_CreateArray();
  for (int n = 0, more = 1; more && n < limit;) {
    more = 0;
    for (int i = 0; i < SQS_NTABLES && n < limit; i++) {
      cJSON *hit = per[i] && per[i]->child ? cJSON_DetachItemViaPointer(per[i], per[i]->child)
                                           : NULL;
      if (hit) {
        cJSON_AddItemToArray(rows, hit);
        n++;
        more = 1;
      }
    }
  }
  return rows;
}

int sqsearch_run(sqlite3 *db, const char *query, unsigned tables, int limit, cJSON **rows) {
  cJSON *per[SQS_NTABLES] = {0};
  int rc = SQLITE_OK;
  if (limit > SQSEARCH_MAX_LIMIT)
    limit = SQSEARCH_MAX_LIMIT;
  for (int i = 0; rc == SQLITE_OK && i < SQS_NTABLES; i++) {
    per[i] = cJSON_CreateArray();
    sqs_out o = {.t = sqs_tables[i].t, .limit = limit, .rows = per[i]};
    if (tables & (1u << sqs_tables[i].t))
      rc = sqs_search_table(db, &sqs_tables[i], query, &o);
  }
  *rows = sqs_merge(per, limit);
  for (int i = 0; i < SQS_NTABLES; i++)
    cJSON_Delete(per[i]);
  return rc;
}

static void sqs_work(uv_work_t *w) {
  sqs_part *p = w->data;
  sqs_job *j = p->job;
  sqlite3 *db = j->s->db[p->table];
  p->rows = cJSON_CreateArray();
  sqs_out o = {.t = sqs_tables[p->table].t, .limit = j->limit, .rows = p->rows, .self = p->table,
               .counts = j->counts, .shares = j->shares};
  /* One snapshot: the build's progress and the index agree. */
  int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqs_search_table(db, &sqs_tables[p->table], j->query, &o);
  if (rc != SQLITE_OK)
    p->error = util_printf("search: %s", rc == SQLITE_INTERRUPT ? "cancelled" : sqlite3_errmsg(db));
  p->rc = rc;
  /* A cancel (sqlite3_interrupt) can stop the COMMIT too, which leaves the
   * read open: the next search's BEGIN would fail. Rolled back then (a cancel
   * met after the last statement ends touches nothing). */
  if (!sqlite3_get_autocommit(db) && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

static void sqs_next(sqsearch *s);
static void sqs_finish_close(sqsearch *s);

static void sqs_job_free(sqs_job *j) {
  free(j->query);
  for (int i = 0; i < SQS_NTABLES; i++) {
    free(j->parts[i].error);
    cJSON_Delete(j->parts[i].rows);
  }
  free(j);
}

/* Every part of the running job is over: its answer, then the next job. */
static void sqs_job_done(sqs_job *j) {
  sqsearch *s = j->s;
  s->running = NULL;
  const sqs_part *failed = NULL;
  cJSON *per[SQS_NTABLES] = {0};
  for (int i = 0; i < SQS_NTABLES; i++) {
    per[i] = j->parts[i].rows;
    if (!failed && j->parts[i].rc != SQLITE_OK)
      failed = &j->parts[i];
  }
  if (s->closing) {
    store_defer_done(s->defer, j->cb, j->data, STORE_ECLOSED, "shelfd is shutting down", NULL,
                     0);
  } else if (j->cancelled) {
    store_defer_done(s->defer, j->cb, j->data, UV_ECANCELED, "search: cancelled", NULL, 0);
  } else if (failed) {
    int status = failed->rc == SQLITE_INTERRUPT ? UV_ECANCELED
                 : failed->rc == SQLITE_BUSY    ? STORE_EUNAVAILABLE
                                                : STORE_EBACKEND;
    store_defer_done(s->defer, j->cb, j->data, status, failed->error, NULL, 0);
  } else {
    store_defer_done(s->defer, j->cb, j->data, 0, NULL, sqs_merge(per, j->limit), 0);
  }
  sqs_job_free(j);
  if (s->closing)
    sqs_finish_close(s);
  else
    sqs_next(s);
}

static void sqs_after(uv_work_t *w, int status) {
  (void)status;
  sqs_part *p = w->data;
  if (--p->job->parts_left == 0)
    sqs_job_done(p->job);
}

static void sqs_next(sqsearch *s) {
  if (s->running || list_empty(&s->jobs))
    return;
  sqs_job *j = list_entry(list_pop_front(&s->jobs), sqs_job, link);
  s->running = j;
  for (int i = 0; i < SQS_NTABLES; i++) {
    sqs_part *p = &j->parts[i];
    p->job = j;
    p->table = i;
    p->work.data = p;
    if (j->tables & (1u << sqs_tables[i].t))
      j->parts_left++;
  }
  if (j->parts_left == 0) { /* no table asked for: no hits */
    sqs_job_done(j);
    return;
  }
  /* The turns of sqs_merge: k parts asked, the first limit % k of them one
   * more than the rest. Set before any part runs: they read them. */
  for (int i = 0, asked = 0; i < SQS_NTABLES; i++) {
    if (j->tables & (1u << sqs_tables[i].t)) {
      j->shares[i] = j->limit / j->parts_left + (asked < j->limit % j->parts_left);
      asked++;
    }
  }
  for (int i = 0; i < SQS_NTABLES; i++)
    if (j->tables & (1u << sqs_tables[i].t))
      uv_queue_work(s->loop, &j->parts[i].work, sqs_work, sqs_after);
}

sqsearch *sqsearch_open(uv_loop_t *loop, const char *path, store_defer *defer, char **err) {
  *err = NULL;
  sqsearch *s = util_calloc(1, sizeof *s);
  s->loop = loop;
  s->defer = defer;
  list_init(&s->jobs);
  for (int i = 0; i < SQS_NTABLES; i++) {
    int rc = sqlite3_open_v2(path, &s->db[i], SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
      *err = util_printf("cannot open %s for searching: %s", path,
                         s->db[i] ? sqlite3_errmsg(s->db[i]) : "out of memory");
      for (int k = 0; k <= i; k++)
        sqlite3_close(s->db[k]);
      free(s);
      return NULL;
    }
    sqlite3_busy_timeout(s->db[i], 2000);
  }
  return s;
}

int sqsearch_query(sqsearch *s, const char *query, unsigned tables, int limit,
                   store_done_cb cb, void *data) {
  if (s->closing)
    return STORE_ECLOSED;
  if (!query || limit < 0)
    return STORE_EINVALID;
  sqs_job *j = util_calloc(1, sizeof *j);
  j->s = s;
  j->query = util_strdup(query);
  j->tables = tables;
  j->limit = limit > SQSEARCH_MAX_LIMIT ? SQSEARCH_MAX_LIMIT : limit;
  j->cb = cb;
  j->data = data;
  list_push_back(&s->jobs, &j->link);
  sqs_next(s);
  return 0;
}

int sqsearch_cancel(sqsearch *s, store_done_cb cb, void *data) {
  if (s->running && s->running->cb == cb && s->running->data == data) {
    if (!s->running->cancelled) {
      s->running->cancelled = 1;
      for (int i = 0; i < SQS_NTABLES; i++)
        sqlite3_interrupt(s->db[i]);
    }
    return 0;
  }
  list_node *n;
  list_for_each(n, &s->jobs) {
    sqs_job *j = list_entry(n, sqs_job, link);
    if (j->cb == cb && j->data == data) {
      list_remove(&j->link);
      store_defer_done(s->defer, cb, data, UV_ECANCELED, "search: cancelled", NULL, 0);
      sqs_job_free(j);
      return 0;
    }
  }
  return UV_ENOENT;
}

static void sqs_finish_close(sqsearch *s) {
  if (s->running)
    return;
  for (int i = 0; i < SQS_NTABLES; i++)
    sqlite3_close(s->db[i]);
  void (*closed)(void *) = s->closed;
  void *data = s->closed_data;
  free(s);
  if (closed)
    closed(data);
}

void sqsearch_close(sqsearch *s, void (*closed)(void *), void *data) {
  if (s->closing)
    return;
  s->closing = 1;
  s->closed = closed;
  s->closed_data = data;
  list_node *n;
  while ((n = list_pop_front(&s->jobs)) != NULL) {
    sqs_job *j = list_entry(n, sqs_job, link);
    store_defer_done(s->defer, j->cb, j->data, STORE_ECLOSED, "shelfd is shutting down", NULL,
                     0);
    sqs_job_free(j);
  }
  if (s->running)
    for (int i = 0; i < SQS_NTABLES; i++)
      sqlite3_interrupt(s->db[i]);
  sqs_finish_close(s);
}
