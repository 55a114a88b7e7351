/* sbcache.c - the Supabase backend's local copy of the signed-in user's rows
 * (see sbcache.h).
 *
 * One table per web app table holds every kept row as the JSON text PostgREST
 * sent, keyed by id; shelf_meta names the file's format, the project URL, the
 * user, and which tables a full read of the server filled ("filled:<table>").
 * The rows of context_blocks and prompts also have title, description and
 * tags copied out of the JSON, and content as a generated column (computed,
 * not stored twice), so the SQLite library's search (store_sqlite_search.h)
 * indexes and queries this file as it does a library: FTS5 trigram indexes
 * kept by triggers. Every write of a row sets its copied columns, so the
 * index's update trigger (UPDATE OF title, ..., which never fires for the
 * generated content alone) runs whenever the row changes. Searches are
 * sbcache_search.c's (sbcache_internal.h: what the two files share).
 *
 * The file is opened by the first job on a worker thread, made with
 * mode 0600 before SQLite touches it (SQLite gives its -wal and -shm files
 * the database's mode), and its folder is narrowed to 0700. A file SQLite
 * calls damaged or not a database, or one without this format or for another
 * URL, is deleted and made again. Rows go in and out through SQLite's
 * json_each, so a fetch of 10k rows is written without a pass through cJSON
 * on the loop. Worker threads never log: a job leaves a note the loop logs.
 */
#include "sbcache.h"
#include "sbcache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "list.h"
#include "log.h"
#include "mpjson.h"
#include "store_sqlite_search.h"
#include "util.h"

#define SC_LOAD_MAX ((size_t)1 << 30) /* bytes of rows one load reads, at most */
/* A write of this many bytes of rows or more leaves its new rows out of the
 * search index, built after in bounded steps (SC_INDEX): indexing every row
 * as it is written is slower than a server sends them (1-4 MB/s). */
#define SC_DEFER_INDEX_BYTES (128u << 10)

typedef enum {
  SC_LOAD, SC_SUMMARIES, SC_GET, SC_PUT, SC_REPLACE, SC_RETAIN, SC_DELETE, SC_FORGET,
  SC_INDEX /* a step of the search index's build: not counted in queued */
} sc_op;

struct sc_job {
  uv_work_t work;
  sbcache *c;
  sc_op op;
  store_table t;
  char *user;
  char *text; /* PUT, REPLACE: rows; GET: ids (JSON arrays) */
  size_t len;
  size_t backlog; /* writes: len, counted in sbcache.backlog until done */
  char *id;    /* DELETE: the row */
  char *after; /* SUMMARIES: the id its rows come after (NULL: all) */
  int limit;   /* SUMMARIES: rows at most (0: all) */
  sbcache_rows_cb cb;
  void *data;
  cJSON *rows; /* LOAD, GET: the answer */
  char *note;  /* for the log, written on the loop */
  unsigned long seq; /* its place in the queue (sbcache.queued); 0: SC_INDEX */
  int filled;        /* REPLACE: committed */
  int index_owed;    /* a write: 2 rows it left out of the index, 1 the first of a run */
  int more;          /* INDEX: more to build after this step */
  list_node link;
};

/* The columns the search reads: content computed from the row when read
 * (never stored twice); the short ones copied out of it when written, since
 * SQLite (3.40) will not take an index on a generated column as covering,
 * and short queries scan such an index (store_sqlite_search.c). */
#define SC_CONTENT ", content TEXT AS (json_extract(row, '$.content'))"
#define SC_ROWS(name, more)                                                                 \
  "CREATE TABLE IF NOT EXISTS " name "(id TEXT PRIMARY KEY, row TEXT NOT NULL,"            \
  " summary TEXT NOT NULL" more ");"
static const char *sc_schema =
    "CREATE TABLE IF NOT EXISTS shelf_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    SC_ROWS("context_blocks", ", title TEXT, tags TEXT" SC_CONTENT)
    SC_ROWS("prompts", ", title TEXT, description TEXT, tags TEXT" SC_CONTENT)
    SC_ROWS("dataset_projects", "") SC_ROWS("prompt_projects", "");

/* A start reads every summary (sbcache_load_summaries); in the table they sit
 * after the whole row, whose content fills overflow pages SQLite walks to
 * reach them: this covering index holds them apart (a tenth of the file at
 * 10k rows read, not all of it). Made when missing, so a copy made by an
 * earlier version gets it too. */
#define SC_SUMMARY_INDEX(name)                                                              \
  "CREATE INDEX IF NOT EXISTS " name "_summary ON " name "(id, summary);"
static const char *sc_indexes = SC_SUMMARY_INDEX("context_blocks") SC_SUMMARY_INDEX("prompts")
    SC_SUMMARY_INDEX("dataset_projects") SC_SUMMARY_INDEX("prompt_projects");

/* The columns copied out of the row for t, each with a leading ", ". */
static const char *sc_copied(store_table t) {
  return t == STORE_BLOCKS    ? ", title, tags"
         : t == STORE_PROMPTS ? ", title, description, tags"
                              : "";
}

/* The rows of ?2 (a JSON list) that are user ?3's, as (id, row, summary,
 * and the columns copied out: title, tags, description):
 * the summary is the row without its content, with the content's size in
 * bytes instead, made once here so a load of summaries reads no content. */
#define SC_INCOMING                                                                         \
  " SELECT json_extract(value, '$.id') AS id, value AS row,"                                \
  " CASE WHEN json_type(value, '$.content') IS NULL THEN value ELSE"                        \
  " json_set(json_remove(value, '$.content'), '$." STORE_CONTENT_SIZE "',"                \
  " length(CAST(json_extract(value, '$.content') AS BLOB))) END AS summary,"                \
  " json_extract(value, '$.title') AS title, json_extract(value, '$.tags') AS tags,"          \
  " json_extract(value, '$.description') AS description"                                     \
  " FROM json_each(?2) WHERE json_type(value, '$.id') = 'text'"                            \
  " AND json_extract(value, '$.user_id') = ?3"

/* --- the file (worker thread) ------------------------------------------------- */

static void sc_note(sc_job *j, char *msg) {
  if (j->note) {
    char *both = util_printf("%s; %s", j->note, msg);
    free(j->note);
    free(msg);
    j->note = both;
  } else {
    j->note = msg;
  }
}

static void sc_unlink_all(const char *path) {
  static const char *suffix[] = {"", "-wal", "-shm", "-journal"};
  for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
    char *p = util_printf("%s%s", path, suffix[i]);
    unlink(p);
    free(p);
  }
}

static void sc_drop(sbcache *c) {
  if (c->db)
    sqlite3_close(c->db);
  c->db = NULL;
  free(c->owner);
  c->owner = NULL;
  sc_unlink_all(c->path);
}

/* The folder 0700 and the file 0600, ours and a plain file. */
static int sc_prepare_file(sc_job *j) {
  sbcache *c = j->c;
  const char *slash = strrchr(c->path, '/');
  if (slash && slash != c->path) {
    char *dir = util_printf("%.*s", (int)(slash - c->path), c->path);
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
        (st.st_mode & 077) != 0)
      chmod(dir, 0700);
    free(dir);
  }
  int fd = open(c->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 && errno == ELOOP) {
    /* A link where the cache belongs is not ours to follow. */
    unlink(c->path);
    fd = open(c->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  }
  if (fd < 0) {
    sc_note(j, util_printf("cannot open %s: %s", c->path, strerror(errno)));
    return -1;
  }
  struct stat st;
  int rc = fstat(fd, &st);
  if (rc == 0 && (!S_ISREG(st.st_mode) || st.st_uid != geteuid())) {
    sc_note(j, util_printf("%s is not a file of this user: not used", c->path));
    rc = -1;
  } else if (rc == 0 && (st.st_mode & 077) != 0 && fchmod(fd, 0600) < 0) {
    sc_note(j, util_printf("cannot make %s private: %s", c->path, strerror(errno)));
    rc = -1;
  }
  close(fd);
  return rc;
}

/* The value of meta `key` (caller frees), or NULL; *rc the SQLite code. */
char *sc_meta(sqlite3 *db, const char *key, int *rc) {
  sqlite3_stmt *st;
  char *value = NULL;
  *rc = sqlite3_prepare_v2(db, "SELECT value FROM shelf_meta WHERE key = ?", -1, &st, NULL);
  if (*rc != SQLITE_OK)
    return NULL;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  *rc = sqlite3_step(st);
  if (*rc == SQLITE_ROW)
    value = util_strdup((const char *)sqlite3_column_text(st, 0));
  *rc = *rc == SQLITE_ROW || *rc == SQLITE_DONE ? SQLITE_OK : *rc;
  sqlite3_finalize(st);
  return value;
}

static int sc_set_meta(sqlite3 *db, const char *key, const char *value) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO shelf_meta VALUES(?, ?)", -1, &st,
                              NULL);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* 1 if the file has no table yet (just made). */
static int sc_is_empty(sqlite3 *db, int *rc) {
  sqlite3_stmt *st;
  int empty = 0;
  *rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL);
  if (*rc != SQLITE_OK)
    return 0;
  if ((*rc = sqlite3_step(st)) == SQLITE_ROW) {
    empty = sqlite3_column_int(st, 0) == 0;
    *rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return empty;
}

/* Open the file as it is: 0 (c->db, c->owner set), 1 when it is not a cache
 * of this project (or damaged), -1 when it cannot be opened at all. */
static int sc_open_once(sc_job *j) {
  sbcache *c = j->c;
  if (sc_prepare_file(j) < 0)
    return -1;
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
  if (rc != SQLITE_OK) {
    sc_note(j, util_printf("cannot open %s: %s", c->path, db ? sqlite3_errmsg(db) : "no memory"));
    sqlite3_close(db);
    return -1;
  }
  sqlite3_busy_timeout(db, 2000);
  const char *foreign = NULL; /* why the file is not this project's copy */
  int empty = sc_is_empty(db, &rc);
  if (rc == SQLITE_OK && empty) {
    rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL;", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
      rc = sqlite3_exec(db, sc_schema, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
      rc = sc_set_meta(db, "format", SC_FORMAT);
    if (rc == SQLITE_OK)
      rc = sc_set_meta(db, "url", c->url);
    char *err = NULL;
    if (rc == SQLITE_OK && sqsearch_schema(db, &err) != SQLITE_OK) {
      /* An SQLite without FTS5, say: the copy still serves, and its
       * searches read every row. */
      sc_note(j, util_printf("no search index in the local copy (%s)", err ? err : "?"));
    }
    sqlite3_free(err);
  } else if (rc == SQLITE_OK) {
    int mrc;
    char *format = sc_meta(db, "format", &mrc);
    char *url = mrc == SQLITE_OK ? sc_meta(db, "url", &mrc) : NULL;
    if (mrc != SQLITE_OK || !format || strcmp(format, SC_FORMAT) != 0)
      foreign = "not a local copy of this version: an older one, or another program's file";
    else if (!url || strcmp(url, c->url) != 0)
      foreign = "another project's copy";
    free(format);
    free(url);
    if (!foreign)
      rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL;", NULL, NULL, NULL);
  }
  if (rc == SQLITE_OK && !foreign)
    rc = sqlite3_exec(db, "PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
  if (rc == SQLITE_OK && !foreign)
    rc = sqlite3_exec(db, sc_indexes, NULL, NULL, NULL);
  if (rc == SQLITE_OK && !foreign) {
    c->db = db;
    free(c->owner);
    c->owner = sc_meta(db, "user", &rc);
    if (rc == SQLITE_OK)
      return 0;
    c->db = NULL;
  }
  sqlite3_close(db);
  /* Whatever made a read fail, the file is only a copy: it is made again. */
  sc_note(j, util_printf("the local copy %s was not usable (%s): deleted and made again",
                         c->path, foreign ? foreign : sqlite3_errstr(rc)));
  return 1;
}

static int sc_open(sc_job *j) {
  sbcache *c = j->c;
  if (c->db)
    return 0;
  int rc = sc_open_once(j);
  if (rc == 1) {
    sc_drop(c);
    rc = sc_open_once(j);
  }
  return rc == 0 ? 0 : -1;
}

/* A failed statement: a damaged file goes, anything else is noted. */
static void sc_failed(sc_job *j, const char *what) {
  sbcache *c = j->c;
  int rc = c->db ? sqlite3_errcode(c->db) : SQLITE_ERROR;
  sc_note(j, util_printf("%s failed: %s", what, c->db ? sqlite3_errmsg(c->db) : "not open"));
  if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) {
    sc_note(j, util_printf("the local copy %s is damaged: deleted", c->path));
    sc_drop(c);
  }
}

/* The file holds `user`'s rows from here on (another user's are dropped). */
static int sc_claim(sc_job *j) {
  sbcache *c = j->c;
  if (sc_open(j) < 0)
    return -1;
  if (c->owner && strcmp(c->owner, j->user) == 0)
    return 0;
  int rc = sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL);
  for (int t = 0; rc == SQLITE_OK && t < STORE_NTABLES; t++) {
    char *sql = util_printf("DELETE FROM \"%s\"", sc_table((store_table)t));
    rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    free(sql);
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(c->db, "DELETE FROM shelf_meta WHERE key LIKE 'filled:%'", NULL, NULL,
                      NULL);
  if (rc == SQLITE_OK)
    rc = sc_set_meta(c->db, "user", j->user);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    sc_failed(j, "emptying the local copy");
    if (c->db)
      sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
  }
  free(c->owner);
  c->owner = util_strdup(j->user);
  return 0;
}

/* One statement over the rows of j->text that are j->user's (SC_INCOMING);
 * in `fmt`, %1$s is the table's name, %2$s its copied columns and %3$s
 * their updates. */
static int sc_run_rows(sc_job *j, const char *fmt) {
  sqlite3_stmt *st;
  const char *copied = sc_copied(j->t);
  char *set = util_strdup("");
  for (const char *c = copied; *c;) {
    c += 2; /* ", " */
    size_t n = strcspn(c, ",");
    char *more = util_printf("%s, %.*s = excluded.%.*s", set, (int)n, c, (int)n, c);
    free(set);
    set = more;
    c += n;
  }
  char *sql = util_printf(fmt, sc_table(j->t), copied, set);
  free(set);
  int rc = sqlite3_prepare_v2(j->c->db, sql, -1, &st, NULL);
  free(sql);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_bind_text64(st, 2, j->text, (sqlite3_uint64)j->len, SQLITE_STATIC, SQLITE_UTF8);
  sqlite3_bind_text(st, 3, j->user, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Insert the rows, or update those whose text changed: a full fetch sends
 * every row again, and rewriting megabytes that did not change costs more
 * than comparing them. Rows kept as they are leave before their summary and
 * copied columns are made (most of a full read's cost here). */
static int sc_put_rows(sc_job *j) {
  return sc_run_rows(j, "INSERT INTO \"%1$s\"(id, row, summary%2$s)"
                        " SELECT id, row, summary%2$s FROM (" SC_INCOMING ") AS i"
                        " WHERE NOT EXISTS (SELECT 1 FROM \"%1$s\" AS k"
                        " WHERE k.id = i.id AND k.row = i.row)"
                        " ON CONFLICT(id) DO UPDATE SET row = excluded.row,"
                        " summary = excluded.summary%3$s WHERE row IS NOT excluded.row");
}

/* A big write to an indexed table: the rows it adds (rowids past the last
 * now) are left to the build, unless one is under way already (its mark is
 * below the last rowid: those rows are the build's anyway). */
static int sc_defer_index(sc_job *j) {
  if ((j->op != SC_PUT && j->op != SC_REPLACE) || j->len < SC_DEFER_INDEX_BYTES ||
      (j->t != STORE_BLOCKS && j->t != STORE_PROMPTS))
    return SQLITE_OK;
  char *sql = util_printf("UPDATE shelf_meta SET value = CAST((SELECT ifnull(max(rowid), 0) FROM"
                          " \"%1$s\") AS TEXT) WHERE key = 'fts_built:%1$s' AND"
                          " CAST(value AS INTEGER) > (SELECT ifnull(max(rowid), 0) FROM \"%1$s\")",
                          sc_table(j->t));
  int rc = sqlite3_exec(j->c->db, sql, NULL, NULL, NULL);
  free(sql);
  j->index_owed = 2; /* rows wait for the build */
  return rc;
}

static void sc_write(sc_job *j) {
  sbcache *c = j->c;
  if (sc_claim(j) < 0)
    return;
  /* Once a run: a build an earlier one left unfinished goes on. */
  j->index_owed = !c->index_checked;
  int rc = SQLITE_OK;
  if (j->op == SC_REPLACE || j->op == SC_RETAIN) {
    /* REPLACE: these rows and no others; RETAIN: the end of a full read that
     * came in pages (each page put): no rows but those ids. */
    rc = sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
      rc = sc_defer_index(j);
    if (rc == SQLITE_OK && j->op == SC_REPLACE)
      rc = sc_run_rows(j, "DELETE FROM \"%1$s\" WHERE id NOT IN"
                          " (SELECT id FROM (" SC_INCOMING "))");
    if (rc == SQLITE_OK && j->op == SC_REPLACE)
      rc = sc_put_rows(j);
    if (rc == SQLITE_OK && j->op == SC_RETAIN)
      rc = sc_run_rows(j, "DELETE FROM \"%1$s\" WHERE ?3 IS NOT NULL AND id NOT IN"
                          " (SELECT value FROM json_each(?2))");
    /* The table is the server's now: the copy may answer searches of it. */
    if (rc == SQLITE_OK) {
      char *key = util_printf("filled:%s", sc_table(j->t));
      rc = sc_set_meta(c->db, key, "1");
      free(key);
    }
    if (rc == SQLITE_OK)
      rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    j->filled = rc == SQLITE_OK;
    if (rc != SQLITE_OK) {
      sc_failed(j, "writing the local copy");
      if (c->db)
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return;
  }
  if (j->op == SC_PUT) {
    rc = sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
      rc = sc_defer_index(j);
    if (rc == SQLITE_OK)
      rc = sc_put_rows(j);
    if (rc == SQLITE_OK)
      rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
      sc_failed(j, "writing the local copy"); /* before the rollback: it reads why */
      if (c->db)
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return;
  }
  sqlite3_stmt *st;
  char *sql = util_printf("DELETE FROM \"%s\" WHERE id = ?", sc_table(j->t));
  rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
  free(sql);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, j->id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    sqlite3_finalize(st);
  }
  if (rc != SQLITE_OK)
    sc_failed(j, "writing the local copy");
}

/* LOAD and GET: j->rows, or NULL when the file is not j->user's. */
static void sc_read(sc_job *j) {
  sbcache *c = j->c;
  /* Nobody signed in: nothing is anybody's, and the file is left shut. */
  if (!*j->user || sc_open(j) < 0 || !c->owner || strcmp(c->owner, j->user) != 0)
    return;
  sqlite3_stmt *st;
  char *sql = util_printf(j->op == SC_LOAD ? "SELECT row FROM \"%s\""
                          : j->op == SC_SUMMARIES
                              ? "SELECT summary FROM \"%s\" WHERE id > ?1 ORDER BY id LIMIT ?2"
                              : "SELECT row FROM \"%s\""
                                " WHERE id IN (SELECT value FROM json_each(?1))",
                          sc_table(j->t));
  int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
  free(sql);
  if (rc != SQLITE_OK) {
    sc_failed(j, "reading the local copy");
    return;
  }
  if (j->op == SC_GET)
    sqlite3_bind_text64(st, 1, j->text, (sqlite3_uint64)j->len, SQLITE_STATIC, SQLITE_UTF8);
  if (j->op == SC_SUMMARIES) {
    sqlite3_bind_text(st, 1, j->after ? j->after : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, j->limit > 0 ? j->limit : -1);
  }
  cJSON *rows = cJSON_CreateArray();
  size_t bytes = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int n = sqlite3_column_bytes(st, 0);
    const char *text = (const char *)sqlite3_column_text(st, 0);
    bytes += (size_t)n;
    if (bytes > SC_LOAD_MAX) {
      rc = SQLITE_TOOBIG;
      break;
    }
    cJSON *row = text ? cJSON_ParseWithLength(text, (size_t)n) : NULL;
    const char *owner = mpjson_get_str(row, "user_id");
    if (!cJSON_IsObject(row) || !owner || strcmp(owner, j->user) != 0) {
      cJSON_Delete(row);
      continue;
    }
    cJSON_AddItemToArray(rows, row); /* cJSON keeps the tail: no walk */
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    cJSON_Delete(rows);
    if (rc == SQLITE_TOOBIG)
      sc_note(j, util_printf("the local copy holds more than %zu bytes of rows: not read",
                             SC_LOAD_MAX));
    else
      sc_failed(j, "reading the local copy");
    return;
  }
  j->rows = rows;
}

static void sc_work(uv_work_t *w) {
  sc_job *j = w->data;
  switch (j->op) {
  case SC_LOAD:
  case SC_SUMMARIES:
  case SC_GET:
    sc_read(j);
    break;
  case SC_PUT:
  case SC_REPLACE:
  case SC_RETAIN:
  case SC_DELETE:
    sc_write(j);
    break;
  case SC_FORGET:
    sc_drop(j->c);
    break;
  case SC_INDEX:
    /* On a file some write opened this run (a step never makes one). */
    j->more = j->c->db ? sqsearch_build_step(j->c->db) : 0;
    break;
  }
}

/* --- the queue (loop thread) ------------------------------------------------- */

static void sc_job_free(sc_job *j) {
  free(j->user);
  free(j->text);
  free(j->id);
  free(j->after);
  free(j->note);
  cJSON_Delete(j->rows);
  free(j);
}

void sc_free(sbcache *c) {
  if (c->db)
    sqlite3_close(c->db);
  if (c->sdb)
    sqlite3_close(c->sdb);
  uv_mutex_destroy(&c->slock);
  free(c->owner);
  free(c->path);
  free(c->url);
  void (*closed)(void *) = c->closed;
  void *data = c->closed_data;
  free(c);
  if (closed)
    closed(data);
}

static void sc_next(sbcache *c);
static sc_job *sc_job_new(sbcache *c, sc_op op, const char *user, store_table t);

/* Rows start (1) or stop (0) waiting for the search index: whoever asked
 * hears of it. The check of each run's first write is no build. */
static void sc_building_told(sbcache *c, int was) {
  if (c->building != was && c->on_indexing && !c->closing)
    c->on_indexing(c->on_indexing_data, c->building);
}

static void sc_after(uv_work_t *w, int status) {
  sc_job *j = w->data;
  sbcache *c = j->c;
  int was_building = c->building;
  (void)status;
  c->running = NULL;
  if (j->seq)
    c->done = j->seq;
  c->backlog -= j->backlog;
  if (j->op == SC_INDEX) {
    c->indexing = 0;
    if (j->more < 0)
      log_warn("supabase cache: building the search index failed (SQLite code %d); searches "
               "read the rows not yet indexed",
               -j->more);
  }
  if (j->index_owed)
    c->index_checked = 1;
  if ((j->index_owed || (j->op == SC_INDEX && j->more > 0)) && !c->indexing && !c->closing) {
    /* At the back: writes and reads asked for meanwhile go first. */
    c->indexing = 1;
    list_push_back(&c->jobs, &sc_job_new(c, SC_INDEX, NULL, STORE_BLOCKS)->link);
  }
  if (j->index_owed == 2)
    c->building = 1;
  if (j->op == SC_INDEX)
    c->building = j->more > 0;
  sc_building_told(c, was_building);
  if (j->filled)
    c->filled |= 1u << j->t;
  if (j->note)
    log_warn("supabase cache: %s", j->note);
  if (j->cb) {
    cJSON *rows = c->closing ? NULL : j->rows;
    if (rows == j->rows)
      j->rows = NULL;
    j->cb(j->data, rows);
  }
  sc_job_free(j);
  if (c->closing && list_empty(&c->jobs) && !c->searching) {
    sc_free(c);
    return;
  }
  if (c->wake && c->backlog <= c->wake_below && !c->closing) {
    void (*wake)(void *) = c->wake;
    c->wake = NULL;
    wake(c->wake_data);
  }
  sc_next(c);
  sc_search_next(c);
}

static void sc_next(sbcache *c) {
  if (c->running || list_empty(&c->jobs))
    return;
  /* The build waits (at the back: it is alone) while a full read is held
   * for: its writes then keep pace with the server. */
  if (c->index_holds > 0 && list_entry(c->jobs.next, sc_job, link)->op == SC_INDEX)
    return;
  sc_job *j = list_entry(list_pop_front(&c->jobs), sc_job, link);
  c->running = j;
  j->work.data = j;
  if (uv_queue_work(c->loop, &j->work, sc_work, sc_after) < 0) {
    c->running = NULL;
    if (j->seq)
      c->done = j->seq;
    c->backlog -= j->backlog;
    if (j->op == SC_INDEX) {
      int was_building = c->building;
      c->indexing = c->building = 0;
      sc_building_told(c, was_building);
    }
    log_warn("supabase cache: the thread pool refused a job");
    if (j->cb)
      j->cb(j->data, NULL);
    sc_job_free(j);
  }
}

static sc_job *sc_job_new(sbcache *c, sc_op op, const char *user, store_table t) {
  sc_job *j = util_calloc(1, sizeof *j);
  j->c = c;
  j->op = op;
  j->t = t;
  j->user = user ? util_strdup(user) : NULL;
  return j;
}

static void sc_enqueue(sbcache *c, sc_job *j) {
  j->seq = ++c->queued;
  /* Before a step of the index build waiting at the back: the build runs
   * when nothing else waits, and the next part of a read asked for as the
   * last one was answered goes first. */
  list_node *last = c->jobs.prev;
  if (last != &c->jobs && list_entry(last, sc_job, link)->op == SC_INDEX)
    list_push_back(last, &j->link);
  else
    list_push_back(&c->jobs, &j->link);
  sc_next(c);
}

sbcache *sbcache_new(uv_loop_t *loop, const char *path, const char *url) {
  sbcache *c = util_calloc(1, sizeof *c);
  c->loop = loop;
  c->path = util_strdup(path);
  c->url = util_strdup(url);
  list_init(&c->jobs);
  list_init(&c->searches);
  if (uv_mutex_init(&c->slock) != 0)
    abort(); /* only without memory */
  return c;
}

static void sc_read_job(sbcache *c, sc_op op, const char *user, store_table t,
                        const cJSON *ids, sbcache_rows_cb cb, void *data) {
  sc_job *j = sc_job_new(c, op, user, t);
  j->cb = cb;
  j->data = data;
  if (ids) {
    j->text = cJSON_PrintUnformatted(ids);
    j->len = strlen(j->text);
  }
  sc_enqueue(c, j);
}

void sbcache_load(sbcache *c, const char *user, store_table t, sbcache_rows_cb cb, void *data) {
  sc_read_job(c, SC_LOAD, user ? user : "", t, NULL, cb, data);
}

void sbcache_load_summaries(sbcache *c, const char *user, store_table t, const char *after,
                            int limit, sbcache_rows_cb cb, void *data) {
  sc_job *j = sc_job_new(c, SC_SUMMARIES, user ? user : "", t);
  j->cb = cb;
  j->data = data;
  j->after = after ? util_strdup(after) : NULL;
  j->limit = limit;
  sc_enqueue(c, j);
}

void sbcache_get(sbcache *c, const char *user, store_table t, const cJSON *ids,
                 sbcache_rows_cb cb, void *data) {
  sc_read_job(c, SC_GET, user ? user : "", t, ids, cb, data);
}

static void sc_write_job(sbcache *c, sc_op op, const char *user, store_table t,
                         const char *json, size_t len) {
  if (c->closing || !user || !*user)
    return;
  sc_job *j = sc_job_new(c, op, user, t);
  if (json) {
    j->text = util_malloc(len + 1);
    memcpy(j->text, json, len);
    j->text[len] = '\0';
    j->len = len;
    j->backlog = len;
    c->backlog += len;
  }
  sc_enqueue(c, j);
}

void sbcache_put(sbcache *c, const char *user, store_table t, const char *json, size_t len) {
  sc_write_job(c, SC_PUT, user, t, json, len);
}

void sbcache_replace(sbcache *c, const char *user, store_table t, const char *json,
                     size_t len) {
  sc_write_job(c, SC_REPLACE, user, t, json, len);
}

void sbcache_retain(sbcache *c, const char *user, store_table t, const char *ids_json,
                    size_t len) {
  sc_write_job(c, SC_RETAIN, user, t, ids_json, len);
}

void sbcache_delete(sbcache *c, const char *user, store_table t, const char *id) {
  if (c->closing || !user || !*user || !id)
    return;
  sc_job *j = sc_job_new(c, SC_DELETE, user, t);
  j->id = util_strdup(id);
  sc_enqueue(c, j);
}

void sbcache_forget(sbcache *c) {
  if (c->closing)
    return;
  c->filled = 0;
  sc_enqueue(c, sc_job_new(c, SC_FORGET, NULL, STORE_BLOCKS));
}

size_t sbcache_backlog(const sbcache *c) { return c->backlog; }

void sbcache_hold_index(sbcache *c, int hold) {
  c->index_holds += hold ? 1 : -1;
  if (c->index_holds == 0 && !c->closing)
    sc_next(c);
}

void sbcache_when_below(sbcache *c, size_t bytes, void (*wake)(void *), void *data) {
  c->wake_below = bytes;
  c->wake = wake;
  c->wake_data = data;
}

int sbcache_indexing(const sbcache *c) {
  return c->building;
}

void sbcache_on_indexing(sbcache *c, void (*cb)(void *data, int indexing), void *data) {
  c->on_indexing = cb;
  c->on_indexing_data = data;
}

int sbcache_busy(const sbcache *c) {
  int n = (c->running ? 1 : 0) + (c->searching ? 1 : 0);
  for (const list_node *it = c->jobs.next; it != &c->jobs; it = it->next)
    n++;
  for (const list_node *it = c->searches.next; it != &c->searches; it = it->next)
    n++;
  return n;
}

void sbcache_close(sbcache *c, void (*closed)(void *), void *data) {
  if (c->closing)
    return;
  c->closing = 1;
  c->closed = closed;
  c->closed_data = data;
  /* Reads are answered now; writes still run, so what the server confirmed
   * last is kept for the next start. */
  list_node keep, *n;
  list_init(&keep);
  while ((n = list_pop_front(&c->jobs)) != NULL) {
    sc_job *j = list_entry(n, sc_job, link);
    if (j->cb || j->op == SC_INDEX) { /* a build goes on at the next start */
      if (j->cb)
        j->cb(j->data, NULL);
      sc_job_free(j);
    } else {
      list_push_back(&keep, n);
    }
  }
  list_take_all(&c->jobs, &keep);
  sc_search_close(c);
  if (!c->running && list_empty(&c->jobs) && !c->searching)
    sc_free(c);
  else
    sc_next(c);
}
