#define _GNU_SOURCE /* strcasestr, strndup */
/* store_sqlite.c - the embedded default backend: one SQLite file, WAL mode.
 *
 * Every statement runs on libuv's thread pool, one job at a time in FIFO
 * order (the connection is never used by two threads at once), so the loop
 * never waits on disk. Rows map to cJSON generically from each table's
 * declared column types, so columns a user added are read and written too.
 * This file owns the store: the schema and its triggers, open and close,
 * the job queue, the writes and the whole reads. Changes made elsewhere (the
 * change log and the folder watch) are store_sqlite_log.c's; the reads of an
 * incremental refresh (stamps, since, count_until) store_sqlite_delta.c's;
 * both run their jobs in this queue (store_sqlite_internal.h).
 * Search (its indexes, their first build, its own read-only connection) is
 * store_sqlite_search.c's; the build's batches run in this queue between writes.
 */
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "list.h"
#include "log.h"
#include "store_sqlite_internal.h"
#include "util.h"

static const char *sq_schema =
    "CREATE TABLE IF NOT EXISTS shelf_meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE IF NOT EXISTS dataset_projects("
    " id TEXT PRIMARY KEY, user_id TEXT, name TEXT NOT NULL,"
    " icon TEXT NOT NULL DEFAULT '📁', folder_path TEXT,"
    " parent_id TEXT REFERENCES dataset_projects(id) ON DELETE CASCADE,"
    " is_system BOOLEAN NOT NULL DEFAULT 0,"
    " created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
    " UNIQUE(user_id, name, parent_id));"
    "CREATE TABLE IF NOT EXISTS prompt_projects("
    " id TEXT PRIMARY KEY, user_id TEXT, name TEXT NOT NULL,"
    " icon TEXT NOT NULL DEFAULT '📁', folder_path TEXT,"
    " parent_id TEXT REFERENCES prompt_projects(id) ON DELETE CASCADE,"
    " is_system BOOLEAN NOT NULL DEFAULT 0,"
    " created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
    " UNIQUE(user_id, name, parent_id));"
    "CREATE TABLE IF NOT EXISTS context_blocks("
    " id TEXT PRIMARY KEY, user_id TEXT,"
    " project_id TEXT REFERENCES dataset_projects(id) ON DELETE CASCADE,"
    " title TEXT NOT NULL, content TEXT NOT NULL DEFAULT '',"
    " tags JSON NOT NULL DEFAULT '[]',"
    " created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS prompts("
    " id TEXT PRIMARY KEY, user_id TEXT,"
    " project_id TEXT REFERENCES prompt_projects(id) ON DELETE CASCADE,"
    " title TEXT NOT NULL, description TEXT, content TEXT NOT NULL DEFAULT '',"
    " folder TEXT, tags JSON NOT NULL DEFAULT '[]',"
    " created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
    /* NULLs are distinct in UNIQUE, and user_id is NULL here: this index
     * makes a duplicate name in one folder a real conflict. */
    "CREATE UNIQUE INDEX IF NOT EXISTS dataset_projects_name ON"
    " dataset_projects(ifnull(user_id,''), name, ifnull(parent_id,''));"
    "CREATE UNIQUE INDEX IF NOT EXISTS prompt_projects_name ON"
    " prompt_projects(ifnull(user_id,''), name, ifnull(parent_id,''));"
    "CREATE INDEX IF NOT EXISTS context_blocks_project ON context_blocks(project_id);"
    "CREATE INDEX IF NOT EXISTS prompts_project ON prompts(project_id);"
    "CREATE INDEX IF NOT EXISTS dataset_projects_parent ON dataset_projects(parent_id);"
    "CREATE INDEX IF NOT EXISTS prompt_projects_parent ON prompt_projects(parent_id);"
    /* The refresh's since and count_until walk these, not the rows (content
     * and all): a tenth of the pages or less. */
    "CREATE INDEX IF NOT EXISTS context_blocks_stamp ON context_blocks(updated_at, id);"
    "CREATE INDEX IF NOT EXISTS prompts_stamp ON prompts(updated_at, id);"
    "CREATE INDEX IF NOT EXISTS dataset_projects_stamp ON dataset_projects(updated_at, id);"
    "CREATE INDEX IF NOT EXISTS prompt_projects_stamp ON prompt_projects(updated_at, id);"
    "CREATE TABLE IF NOT EXISTS shelf_changes(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " tbl TEXT NOT NULL, row_id TEXT NOT NULL, op TEXT NOT NULL);"
    "INSERT OR IGNORE INTO shelf_meta VALUES('schema_version', '1');";

/* Per table: the change log and the updated_at bump for other writers. */
static const char *sq_triggers =
    "CREATE TRIGGER IF NOT EXISTS %1$s_log_ins AFTER INSERT ON %1$s BEGIN"
    " INSERT INTO shelf_changes(tbl,row_id,op) VALUES('%1$s',NEW.id,'upsert'); END;"
    "CREATE TRIGGER IF NOT EXISTS %1$s_log_upd AFTER UPDATE ON %1$s BEGIN"
    " INSERT INTO shelf_changes(tbl,row_id,op) VALUES('%1$s',NEW.id,'upsert'); END;"
    "CREATE TRIGGER IF NOT EXISTS %1$s_log_del AFTER DELETE ON %1$s BEGIN"
    " INSERT INTO shelf_changes(tbl,row_id,op) VALUES('%1$s',OLD.id,'delete'); END;"
    "CREATE TRIGGER IF NOT EXISTS %1$s_stamp AFTER UPDATE ON %1$s"
    " WHEN NEW.updated_at IS OLD.updated_at BEGIN"
    " UPDATE %1$s SET updated_at = strftime('%%Y-%%m-%%dT%%H:%%M:%%f','now') || '000+00:00'"
    " WHERE id = NEW.id; END;";

static const char *sq_kind_word(store_table t) {
  return t == STORE_BLOCKS ? "context block" : t == STORE_PROMPTS ? "prompt" : "folder";
}

/* --- columns and values ------------------------------------------------------ */

static sq_coltype sq_type_of(const char *decl) {
  if (!decl)
    return COL_TEXT;
  if (strcasecmp(decl, "JSON") == 0)
    return COL_JSON;
  if (strcasecmp(decl, "BOOLEAN") == 0)
    return COL_BOOL;
  if (strcasestr(decl, "INT"))
    return COL_INT;
  if (strcasestr(decl, "REAL") || strcasestr(decl, "FLOA") || strcasestr(decl, "DOUB"))
    return COL_REAL;
  return COL_TEXT;
}

static int sq_load_columns(sq_store *sq, store_table t) {
  sq_columns *c = &sq->cols[t];
  char *sql = util_printf("PRAGMA table_info(\"%s\")", store_default_table_name(t));
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(sq->db, sql, -1, &st, NULL);
  free(sql);
  if (rc != SQLITE_OK)
    return -1;
  while (sqlite3_step(st) == SQLITE_ROW && c->n < SQ_MAX_COLS) {
    c->name[c->n] = util_strdup((const char *)sqlite3_column_text(st, 1));
    c->type[c->n] = sq_type_of((const char *)sqlite3_column_text(st, 2));
    c->n++;
  }
  sqlite3_finalize(st);
  return c->n > 0 ? 0 : -1;
}

static int sq_column(const sq_columns *c, const char *name) {
  for (int i = 0; i < c->n; i++)
    if (strcmp(c->name[i], name) == 0)
      return i;
  return -1;
}

/* The row at the statement's cursor as a cJSON object: its first ncols
 * columns (SELECT *). */
cJSON *sq_row(sqlite3_stmt *st, const sq_columns *c, int ncols) {
  cJSON *o = cJSON_CreateObject();
  for (int i = 0; i < ncols; i++) {
    const char *name = sqlite3_column_name(st, i);
    int ci = sq_column(c, name);
    /* Not a column: a computed value (content_size), typed as it comes. */
    sq_coltype type = ci >= 0 ? c->type[ci] : COL_REAL;
    cJSON *v;
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
      v = cJSON_CreateNull();
    } else if (type == COL_JSON) {
      v = cJSON_Parse((const char *)sqlite3_column_text(st, i));
      if (!v) /* a bad value from another writer: keep it as text */
        v = cJSON_CreateString((const char *)sqlite3_column_text(st, i));
    } else if (type == COL_BOOL) {
      v = cJSON_CreateBool(sqlite3_column_int(st, i) != 0);
    } else if (sqlite3_column_type(st, i) == SQLITE_INTEGER ||
               sqlite3_column_type(st, i) == SQLITE_FLOAT) {
      v = type == COL_TEXT ? cJSON_CreateString((const char *)sqlite3_column_text(st, i))
                           : cJSON_CreateNumber(sqlite3_column_double(st, i));
    } else {
      v = cJSON_CreateString((const char *)sqlite3_column_text(st, i));
    }
    cJSON_AddItemToObject(o, name, v);
  }
  return o;
}

/* Bind a JSON value to parameter i for a column of `type`. NULL or a
 * message (caller frees). */
static char *sq_bind(sqlite3_stmt *st, int i, const cJSON *v, sq_coltype type,
                     const char *table, const char *col) {
  if (cJSON_IsNull(v))
    return sqlite3_bind_null(st, i) == SQLITE_OK ? NULL : util_strdup("bind failed");
  if (type == COL_JSON) {
    char *text = cJSON_PrintUnformatted(v);
    sqlite3_bind_text(st, i, text, -1, SQLITE_TRANSIENT);
    free(text);
    return NULL;
  }
  if (cJSON_IsBool(v)) {
    sqlite3_bind_int(st, i, cJSON_IsTrue(v));
    return NULL;
  }
  if (cJSON_IsNumber(v)) {
    /* Out of int64's range the cast is undefined; SQLite keeps a double. */
    if ((type == COL_INT || type == COL_BOOL) && v->valuedouble > -9.2e18 &&
        v->valuedouble < 9.2e18)
      sqlite3_bind_int64(st, i, (sqlite3_int64)v->valuedouble);
    else
      sqlite3_bind_double(st, i, v->valuedouble);
    return NULL;
  }
  if (cJSON_IsString(v)) {
    sqlite3_bind_text(st, i, v->valuestring, -1, SQLITE_TRANSIENT);
    return NULL;
  }
  return util_printf("%s.%s cannot hold a list or a table", table, col);
}

/* A store code and message for a failed statement. */
int sq_fail(sq_job *j, int rc, store_table t) {
  const char *msg = sqlite3_errmsg(j->sq->db);
  int ext = sqlite3_extended_errcode(j->sq->db);
  free(j->error);
  if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
    j->error = t >= STORE_DATASET_PROJECTS
                   ? util_printf("a folder with that name already exists there")
                   : util_printf("a %s with that id already exists", sq_kind_word(t));
    return STORE_ECONFLICT;
  }
  if (ext == SQLITE_CONSTRAINT_FOREIGNKEY) {
    j->error = util_printf("the folder it refers to does not exist");
    return STORE_ECONFLICT;
  }
  if (ext == SQLITE_CONSTRAINT_NOTNULL) {
    j->error = util_printf("a required field is missing (%s)", msg);
    return STORE_EINVALID;
  }
  j->error = util_printf("SQLite: %s (%d)", msg, rc);
  return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? STORE_EUNAVAILABLE : STORE_EBACKEND;
}

/* --- jobs (run on the thread pool) -------------------------------------------- */

/* "SELECT <columns> FROM <table>": every column, or with `lean` every column but
 * content, which is replaced by its size in bytes (STORE_CONTENT_SIZE): the
 * sync engine keeps no content, so reading it only to drop it is wasted.
 * (length() of TEXT counts characters; of the same bytes cast to a BLOB it
 * counts bytes, and the cast copies nothing.) Caller frees. */
static char *sq_select_head(const sq_columns *c, int lean, const char *name, int rowid) {
  if (!lean || sq_column(c, "content") < 0)
    return util_printf(rowid ? "SELECT *, rowid FROM \"%s\"" : "SELECT * FROM \"%s\"", name);
  size_t cap = 104 + strlen(name);
  for (int i = 0; i < c->n; i++)
    cap += 2 * strlen(c->name[i]) + 4;
  char *out = util_malloc(cap);
  size_t len = (size_t)snprintf(out, cap, "SELECT ");
  for (int i = 0; i < c->n; i++) {
    if (strcmp(c->name[i], "content") == 0)
      continue;
    /* A quote inside a column's name is doubled, as SQL quotes it. */
    out[len++] = '"';
    for (const char *q = c->name[i]; *q; q++) {
      if (*q == '"')
        out[len++] = '"';
      out[len++] = *q;
    }
    len += (size_t)snprintf(out + len, cap - len, "\", ");
  }
  snprintf(out + len, cap - len,
           rowid ? "length(CAST(content AS BLOB)) AS " STORE_CONTENT_SIZE ", rowid FROM \"%s\""
                 : "length(CAST(content AS BLOB)) AS " STORE_CONTENT_SIZE " FROM \"%s\"",
           name);
  return out;
}

cJSON *sq_select(sq_store *sq, store_table t, const char *id, const cJSON *ids,
                 int lean, int64_t *page, int *rc_out) {
  const char *name = store_default_table_name(t);
  if (id || ids)
    page = NULL;
  char *head = sq_select_head(&sq->cols[t], lean, name, page != NULL);
  /* A page is the rows past the last one the page before read, in rowid
   * order (rowid is its last column): each page is a seek, not a scan. */
  char *sql = id     ? util_printf("%s WHERE id = ?", head)
              : ids  ? util_printf("%s WHERE id IN (SELECT value FROM json_each(?))", head)
              : page ? util_printf("%s WHERE rowid > ? ORDER BY rowid LIMIT %d", head, SQ_PAGE_ROWS)
                     : util_strdup(head);
  free(head);
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(sq->db, sql, -1, &st, NULL);
  free(sql);
  if (rc != SQLITE_OK) {
    *rc_out = rc;
    return NULL;
  }
  if (id)
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
  else if (ids) {
    char *text = cJSON_PrintUnformatted(ids);
    sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT);
    free(text);
  } else if (page) {
    sqlite3_bind_int64(st, 1, *page);
  }
  cJSON *rows = cJSON_CreateArray();
  int ncols = sqlite3_column_count(st) - (page != NULL);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    cJSON_AddItemToArray(rows, sq_row(st, &sq->cols[t], ncols));
    if (page)
      *page = sqlite3_column_int64(st, ncols);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    cJSON_Delete(rows);
    *rc_out = rc;
    return NULL;
  }
  *rc_out = SQLITE_OK;
  return rows;
}

/* INSERT or UPDATE from a JSON object of columns. */
static void sq_write(sq_job *j) {
  sq_store *sq = j->sq;
  const sq_columns *c = &sq->cols[j->t];
  const char *table = store_default_table_name(j->t);
  char stamp[UTIL_STAMP_LEN + 1];
  util_now_stamp(stamp);
  cJSON *vals = cJSON_Duplicate(j->arg, 1);
  cJSON_DeleteItemFromObjectCaseSensitive(vals, "updated_at");
  cJSON_AddStringToObject(vals, "updated_at", stamp);
  if (j->op == JOB_INSERT) {
    cJSON_DeleteItemFromObjectCaseSensitive(vals, "created_at");
    cJSON_AddStringToObject(vals, "created_at", stamp);
  } else {
    cJSON_DeleteItemFromObjectCaseSensitive(vals, "id");
  }
  /* Column names come only from table_info, so quoting them is safe. */
  size_t cap = 288;
  const cJSON *v;
  cJSON_ArrayForEach(v, vals) cap += strlen(v->string) * 2 + 16;
  char *sql = util_malloc(cap);
  size_t len = 0;
  int nvals = 0;
  len += (size_t)snprintf(sql + len, cap - len, j->op == JOB_INSERT ? "INSERT INTO \"%s\" ("
                                                                     : "UPDATE \"%s\" SET ",
                          table);
  cJSON_ArrayForEach(v, vals) {
    if (sq_column(c, v->string) < 0) {
      j->status = STORE_EINVALID;
      j->error = util_printf("%s has no column '%s'", table, v->string);
      free(sql);
      cJSON_Delete(vals);
      return;
    }
    len += (size_t)snprintf(sql + len, cap - len, j->op == JOB_INSERT ? "%s\"%s\"" : "%s\"%s\" = ?",
                            nvals ? ", " : "", v->string);
    nvals++;
  }
  if (j->op == JOB_INSERT) {
    len += (size_t)snprintf(sql + len, cap - len, ") VALUES (");
    for (int i = 0; i < nvals; i++)
      len += (size_t)snprintf(sql + len, cap - len, i ? ", ?" : "?");
    /* The id is chosen once per new item by the caller: an insert sent
     * again after its answer was lost finds its row and answers with it. */
    snprintf(sql + len, cap - len, ") ON CONFLICT(id) DO NOTHING");
  } else {
    snprintf(sql + len, cap - len, " WHERE id = ?");
  }
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(sq->db, sql, -1, &st, NULL);
  free(sql);
  if (rc != SQLITE_OK) {
    j->status = sq_fail(j, rc, j->t);
    cJSON_Delete(vals);
    return;
  }
  int i = 1;
  cJSON_ArrayForEach(v, vals) {
    int ci = sq_column(c, v->string);
    char *why = sq_bind(st, i++, v, c->type[ci], table, v->string);
    if (why) {
      j->status = STORE_EINVALID;
      j->error = why;
      sqlite3_finalize(st);
      cJSON_Delete(vals);
      return;
    }
  }
  if (j->op == JOB_UPDATE)
    sqlite3_bind_text(st, i, j->id, -1, SQLITE_TRANSIENT);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  cJSON_Delete(vals);
  if (rc != SQLITE_DONE) {
    j->status = sq_fail(j, rc, j->t);
    return;
  }
  if (j->op == JOB_UPDATE && sqlite3_changes(sq->db) == 0) {
    j->status = STORE_ENOTFOUND;
    j->error = util_printf("no %s with id %s", sq_kind_word(j->t), j->id);
    return;
  }
  j->rows = sq_select(sq, j->t, j->id, NULL, 0, NULL, &rc);
  if (!j->rows)
    j->status = sq_fail(j, rc, j->t);
}

static void sq_remove_row(sq_job *j) {
  char *sql = util_printf("DELETE FROM \"%s\" WHERE id = ?", store_default_table_name(j->t));
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(j->sq->db, sql, -1, &st, NULL);
  free(sql);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, j->id, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
  }
  if (rc != SQLITE_DONE && rc != SQLITE_OK) {
    j->status = sq_fail(j, rc, j->t);
  } else if (sqlite3_changes(j->sq->db) == 0) {
    j->status = STORE_ENOTFOUND;
    j->error = util_printf("no %s with id %s", sq_kind_word(j->t), j->id);
  } else {
    j->rows = cJSON_CreateArray();
  }
}

/* A write (insert, update, remove) in a transaction of its own, begun with
 * the schema current (sqsearch_begin_write: the triggers that keep the
 * search indexes make FTS5 read its tables while the write is prepared). */
static void sq_write_job(sq_job *j) {
  sqlite3 *db = j->sq->db;
  int rc = sqsearch_begin_write(db, NULL);
  if (rc != SQLITE_OK)
    j->status = sq_fail(j, rc, j->t);
  else if (j->op == JOB_REMOVE)
    sq_remove_row(j);
  else
    sq_write(j);
  if (j->status == 0 && (rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
    j->status = sq_fail(j, rc, j->t);
    cJSON_Delete(j->rows);
    j->rows = NULL;
  }
  if (j->status != 0)
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

static void sq_work(uv_work_t *w) {
  sq_job *j = w->data;
  switch (j->op) {
  case JOB_INSERT:
  case JOB_UPDATE:
  case JOB_REMOVE:
    sq_write_job(j);
    break;
  case JOB_STAMPS:
    sq_stamps_job(j);
    break;
  case JOB_FETCH:
  case JOB_FETCH_SUMMARIES:
  case JOB_PAGE: {
    int rc;
    j->rows = sq_select(j->sq, j->t, NULL, j->arg, j->op != JOB_FETCH,
                        j->op == JOB_PAGE ? &j->page : NULL, &rc);
    if (!j->rows)
      j->status = sq_fail(j, rc, j->t);
    break;
  }
  case JOB_SINCE:
  case JOB_COUNT:
    sq_since_job(j);
    break;
  case JOB_CHANGES:
    sq_changes_job(j);
    break;
  case JOB_INDEX:
    j->status = sqsearch_build_step(j->sq->db);
    break;
  }
}

/* --- the queue (loop thread) --------------------------------------------------- */

static void sq_next(sq_store *sq);
static void sq_maybe_closed(sq_store *sq);
static sq_job *sq_push(sq_store *sq, sq_op op, store_table t, const char *id, const cJSON *arg,
                       store_done_cb cb, void *data);

static void sq_job_free(sq_job *j) {
  free(j->id);
  free(j->error);
  cJSON_Delete(j->arg);
  cJSON_Delete(j->rows);
  free(j);
}

static void sq_after(uv_work_t *w, int status) {
  sq_job *j = w->data;
  sq_store *sq = j->sq;
  sq->running = NULL;
  (void)status;
  if (j->op == JOB_CHANGES) {
    store_defer_done(&sq->defer, sq_deliver_changes, sq, 0, NULL, j->rows, 0);
    j->rows = NULL;
  } else if (j->op == JOB_INDEX) {
    /* The next batch goes to the back: writes queued meanwhile go first. A
     * failed one is tried again at the next start. */
    if (j->status < 0)
      log_warn("sqlite: building the search index failed (SQLite code %d); searches scan "
               "the rows not yet indexed", -j->status);
    else if (j->status == 0 && sq->index_steps > 0)
      log_info("sqlite: the search index is built (%d batches)", sq->index_steps);
    else if (j->status > 0 && !sq->closing) {
      if (sq->index_steps++ == 0)
        log_info("sqlite: building the search index of a library made before it");
      sq_enqueue(sq, JOB_INDEX, STORE_BLOCKS, NULL, NULL, NULL, NULL);
    }
  } else if (sq->closing) {
    store_defer_done(&sq->defer, j->cb, j->data, STORE_ECLOSED, "shelfd is shutting down",
                     NULL, 0);
  } else if (j->op == JOB_PAGE && j->status == 0 &&
             cJSON_GetArraySize(j->rows) == SQ_PAGE_ROWS) {
    /* A full part: the next goes to the back of the queue, so writes asked
     * for meanwhile do not wait for the whole read. */
    sq_job *next = sq_push(sq, JOB_PAGE, j->t, NULL, NULL, j->cb, j->data);
    next->page = j->page;
    store_defer_done(&sq->defer, j->cb, j->data, STORE_PAGE, NULL, j->rows, 0);
    j->rows = NULL;
  } else {
    store_defer_done(&sq->defer, j->cb, j->data, j->status, j->error, j->rows, 0);
    j->rows = NULL;
  }
  sq_job_free(j);
  if (sq->closing)
    sq_maybe_closed(sq);
  else
    sq_next(sq);
}

static void sq_next(sq_store *sq) {
  if (sq->running || list_empty(&sq->jobs))
    return;
  sq_job *j = list_entry(list_pop_front(&sq->jobs), sq_job, link);
  if (j->op == JOB_CHANGES)
    sq->changes_queued = 0;
  sq->running = j;
  j->work.data = j;
  uv_queue_work(sq->loop, &j->work, sq_work, sq_after);
}

/* Queue a job (sq_enqueue); NULL while closing. */
static sq_job *sq_push(sq_store *sq, sq_op op, store_table t, const char *id, const cJSON *arg,
                       store_done_cb cb, void *data) {
  if (sq->closing)
    return NULL;
  sq_job *j = util_calloc(1, sizeof *j);
  j->sq = sq;
  j->op = op;
  j->t = t;
  j->id = id ? util_strdup(id) : NULL;
  j->arg = arg ? cJSON_Duplicate(arg, 1) : NULL;
  j->cb = cb;
  j->data = data;
  list_push_back(&sq->jobs, &j->link);
  return j;
}

int sq_enqueue(sq_store *sq, sq_op op, store_table t, const char *id, const cJSON *arg,
               store_done_cb cb, void *data) {
  if (!sq_push(sq, op, t, id, arg, cb, data))
    return STORE_ECLOSED;
  sq_next(sq);
  return 0;
}

static int sq_insert(store *st, store_table t, const cJSON *record, store_done_cb cb,
                     void *data) {
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(record, "id");
  if (!cJSON_IsString(id) || !util_is_uuid(id->valuestring))
    return STORE_EINVALID;
  return sq_enqueue(sq_of(st), JOB_INSERT, t, id->valuestring, record, cb, data);
}

static int sq_update(store *st, store_table t, const char *id, const cJSON *fields,
                     store_done_cb cb, void *data) {
  if (!cJSON_IsObject(fields))
    return STORE_EINVALID;
  return sq_enqueue(sq_of(st), JOB_UPDATE, t, id, fields, cb, data);
}

static int sq_remove(store *st, store_table t, const char *id, store_done_cb cb, void *data) {
  return sq_enqueue(sq_of(st), JOB_REMOVE, t, id, NULL, cb, data);
}

static int sq_fetch(store *st, store_table t, const cJSON *ids, store_done_cb cb, void *data) {
  return sq_enqueue(sq_of(st), JOB_FETCH, t, NULL, ids, cb, data);
}

static int sq_search(store *st, const char *query, unsigned tables, int limit,
                     store_done_cb cb, void *data) {
  sq_store *sq = sq_of(st);
  if (sq->closing)
    return STORE_ECLOSED;
  if (!sq->search)
    return STORE_EBACKEND; /* its connection did not open (logged) */
  return sqsearch_query(sq->search, query, tables, limit, cb, data);
}

static int sq_search_cancel(store *st, store_done_cb cb, void *data) {
  sq_store *sq = sq_of(st);
  return sq->search ? sqsearch_cancel(sq->search, cb, data) : UV_ENOENT;
}

static int sq_fetch_summaries(store *st, store_table t, const cJSON *ids, store_done_cb cb,
                              void *data) {
  return sq_enqueue(sq_of(st), ids ? JOB_FETCH_SUMMARIES : JOB_PAGE, t, NULL, ids, cb, data);
}

static cJSON *sq_describe(store *st) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "backend", "sqlite");
  cJSON_AddStringToObject(o, "path", sq_of(st)->path);
  return o;
}

static void sq_free(sq_store *sq) {
  sqlite3_close(sq->db);
  for (int t = 0; t < STORE_NTABLES; t++)
    for (int i = 0; i < sq->cols[t].n; i++)
      free(sq->cols[t].name[i]);
  free(sq->path);
  free(sq->dir);
  free(sq->base_name);
  store_closed_cb closed = sq->closed;
  void *data = sq->closed_data;
  free(sq);
  if (closed)
    closed(data);
}

static void sq_defer_closed(void *data) { sq_free(data); }

/* The completion queue closes last: what it holds still runs first. */
static void sq_maybe_closed(sq_store *sq) {
  if (sq->closing == 1 && !sq->running && !sq->watching && !sq->search) {
    sq->closing = 2;
    store_defer_close(&sq->defer, sq_defer_closed, sq);
  }
}

static void sq_watcher_closed(uv_handle_t *h) {
  sq_store *sq = h->data;
  sq->watching--;
  sq_maybe_closed(sq);
}

static void sq_search_closed(void *data) {
  sq_store *sq = data;
  sq->search = NULL;
  sq_maybe_closed(sq);
}

static void sq_close(store *st, store_closed_cb closed, void *data) {
  sq_store *sq = sq_of(st);
  if (sq->closing)
    return;
  sq->closing = 1;
  sq->closed = closed;
  sq->closed_data = data;
  list_node *n;
  while ((n = list_pop_front(&sq->jobs)) != NULL) {
    sq_job *j = list_entry(n, sq_job, link);
    if (j->op != JOB_CHANGES && j->op != JOB_INDEX)
      store_defer_done(&sq->defer, j->cb, j->data, STORE_ECLOSED, "shelfd is shutting down",
                       NULL, 0);
    sq_job_free(j);
  }
  if (sq->watching) {
    uv_close((uv_handle_t *)&sq->watcher, sq_watcher_closed);
    uv_close((uv_handle_t *)&sq->settle, sq_watcher_closed);
  }
  if (sq->search)
    sqsearch_close(sq->search, sq_search_closed, sq);
  else
    sq_maybe_closed(sq);
}

static const struct store_ops sq_ops = {
    .name = "sqlite",
    .insert = sq_insert,
    .update = sq_update,
    .remove = sq_remove,
    .stamps = sq_stamps,
    .fetch = sq_fetch,
    .since = sq_since,
    .count_until = sq_count_until,
    .search = sq_search,
    .search_cancel = sq_search_cancel,
    .fetch_summaries = sq_fetch_summaries,
    .watch = sq_watch,
    .describe = sq_describe,
    .close = sq_close,
};

/* Opening runs on the loop thread, once, before anything else happens. */
store *store_sqlite_open(uv_loop_t *loop, const char *path, char **err) {
  *err = NULL;
  sq_store *sq = util_calloc(1, sizeof *sq);
  list_init(&sq->jobs);
  sq->base.ops = &sq_ops;
  sq->loop = loop;
  sq->path = util_strdup(path);
  const char *slash = strrchr(path, '/');
  sq->dir = slash ? (slash == path ? util_strdup("/") : strndup(path, (size_t)(slash - path)))
                  : util_strdup(".");
  sq->base_name = util_strdup(slash ? slash + 1 : path);
  int rc = sqlite3_open_v2(path, &sq->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           NULL);
  char *msg = NULL;
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(sq->db, 5000);
    rc = sqlite3_create_function(sq->db, "shelf_stamp_us", 1,
                                 SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                 sq_stamp_us_fn, NULL, NULL);
  }
  if (rc == SQLITE_OK) {
    rc = sqlite3_exec(sq->db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;"
                              "PRAGMA synchronous=NORMAL;", NULL, NULL, &msg);
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(sq->db, sq_schema, NULL, NULL, &msg);
  for (int t = 0; rc == SQLITE_OK && t < STORE_NTABLES; t++) {
    char *sql = util_printf(sq_triggers, store_default_table_name((store_table)t));
    rc = sqlite3_exec(sq->db, sql, NULL, NULL, &msg);
    free(sql);
  }
  if (rc == SQLITE_OK && sqsearch_schema(sq->db, &msg) != SQLITE_OK) {
    /* An SQLite without FTS5, say: the library still opens, and searches
     * scan the rows. */
    log_warn("sqlite: no search index (%s); searches read every row", msg ? msg : "?");
    sqlite3_free(msg);
    msg = NULL;
  }
  if (rc == SQLITE_OK)
    rc = sq_prune_log(sq->db);
  for (int t = 0; rc == SQLITE_OK && t < STORE_NTABLES; t++)
    if (sq_load_columns(sq, (store_table)t) < 0)
      rc = SQLITE_ERROR;
  if (rc == SQLITE_OK) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(sq->db, "SELECT ifnull(max(seq),0) FROM shelf_changes", -1, &st,
                           NULL) == SQLITE_OK) {
      if (sqlite3_step(st) == SQLITE_ROW)
        sq->last_seq = sqlite3_column_int64(st, 0);
      sqlite3_finalize(st);
    }
  }
  if (rc != SQLITE_OK) {
    *err = util_printf("cannot open the database %s: %s", path,
                       msg ? msg : sq->db ? sqlite3_errmsg(sq->db) : "out of memory");
    sqlite3_free(msg);
    sq_free(sq);
    return NULL;
  }
  store_defer_init(&sq->defer, loop, &sq->base);
  char *why = NULL;
  sq->search = sqsearch_open(loop, path, &sq->defer, &why);
  if (!sq->search) {
    /* The library still works; searches answer with an error. */
    log_warn("sqlite: %s", why);
    free(why);
  }
  /* Indexes still to build (a library older than them): nothing to do once
   * built, so one cheap step finds out. */
  sq_enqueue(sq, JOB_INDEX, STORE_BLOCKS, NULL, NULL, NULL, NULL);
  return &sq->base;
}
