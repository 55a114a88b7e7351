/* store_sqlite_delta.c - the reads of the sync engine's incremental refresh
 * on the SQLite store (store_sqlite_internal.h): every [id, updated_at] pair
 * (stamps), the rows changed since a stamp (since), and the rows at or
 * before it (count_until). Stamps compare as times, through the SQL
 * function shelf_stamp_us, as the engine compares them; the stamp indexes
 * (updated_at, id) keep the count and the since a scan of an index, not of
 * the rows. Jobs run in store_sqlite.c's queue.
 */
#include <stdlib.h>

#include "store_sqlite_internal.h"
#include "util.h"

/* A row the sync engine can hold: its id read as text (as sq_row reads it,
 * up to a NUL) is not empty. Rows another program left with a NULL or empty
 * id are refused there (logged by a whole read); the stamps, since and the
 * count at or before a mark leave them out, or every refresh would find the
 * counts differ and compare every stamp. The stamp indexes cover id. */
#define SQ_HELD_ID "length(CAST(id AS TEXT)) > 0"

void sq_stamps_job(sq_job *j) {
  const char *name = store_default_table_name(j->t);
  char *sql = util_printf("SELECT id, updated_at FROM \"%s\" WHERE " SQ_HELD_ID, name);
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(j->sq->db, sql, -1, &st, NULL);
  free(sql);
  if (rc != SQLITE_OK) {
    j->status = sq_fail(j, rc, j->t);
    return;
  }
  j->rows = cJSON_CreateArray();
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    cJSON *pair = cJSON_CreateArray();
    const char *id = (const char *)sqlite3_column_text(st, 0);
    const char *stamp = (const char *)sqlite3_column_text(st, 1);
    cJSON_AddItemToArray(pair, cJSON_CreateString(id ? id : ""));
    cJSON_AddItemToArray(pair, stamp ? cJSON_CreateString(stamp) : cJSON_CreateNull());
    cJSON_AddItemToArray(j->rows, pair);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    cJSON_Delete(j->rows);
    j->rows = NULL;
    j->status = sq_fail(j, rc, j->t);
  }
}

/* shelf_stamp_us(updated_at): the stamp in microseconds (util_stamp_us), or
 * NULL. Stamps are compared as times in SQL through it, as the sync engine
 * compares them, whatever format another program wrote. */
void sq_stamp_us_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  long long us;
  const char *text = (const char *)sqlite3_value_text(argv[0]);
  if (text && util_stamp_us(text, &us) == 0)
    sqlite3_result_int64(ctx, (sqlite3_int64)us);
  else
    sqlite3_result_null(ctx);
}

/* since (rows) and count_until ([n]); j->arg is {us, known?}. Both leave
 * out the rows the sync engine cannot hold (SQ_HELD_ID): the count is
 * compared with the rows it holds. */
void sq_since_job(sq_job *j) {
  const char *name = store_default_table_name(j->t);
  const cJSON *known = cJSON_GetObjectItemCaseSensitive(j->arg, "known");
  char *sql =
      j->op == JOB_COUNT
          ? util_printf("SELECT count(*) FROM \"%s\" "
                        "WHERE shelf_stamp_us(updated_at) <= ?1 AND " SQ_HELD_ID, name)
      /* The rowids from the stamp index first, then those rows only. */
      : known ? util_printf("SELECT * FROM \"%s\" WHERE rowid IN (SELECT rowid FROM \"%s\" "
                            "WHERE (shelf_stamp_us(updated_at) > ?1 OR "
                            "(shelf_stamp_us(updated_at) = ?1 AND id NOT IN "
                            "(SELECT value FROM json_each(?2)))) AND " SQ_HELD_ID ")",
                            name, name)
              : util_printf("SELECT * FROM \"%s\" WHERE rowid IN (SELECT rowid FROM \"%s\" "
                            "WHERE shelf_stamp_us(updated_at) > ?1 AND " SQ_HELD_ID ")",
                            name, name);
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(j->sq->db, sql, -1, &st, NULL);
  free(sql);
  if (rc != SQLITE_OK) {
    j->status = sq_fail(j, rc, j->t);
    return;
  }
  sqlite3_bind_int64(st, 1, (sqlite3_int64)cJSON_GetObjectItem(j->arg, "us")->valuedouble);
  if (known && j->op == JOB_SINCE) {
    char *text = cJSON_PrintUnformatted(known);
    sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
    free(text);
  }
  j->rows = cJSON_CreateArray();
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (j->op == JOB_COUNT)
      cJSON_AddItemToArray(j->rows, cJSON_CreateNumber((double)sqlite3_column_int64(st, 0)));
    else
      cJSON_AddItemToArray(j->rows, sq_row(st, &j->sq->cols[j->t], sqlite3_column_count(st)));
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    cJSON_Delete(j->rows);
    j->rows = NULL;
    j->status = sq_fail(j, rc, j->t);
  }
}

int sq_stamps(store *st, store_table t, store_done_cb cb, void *data) {
  return sq_enqueue(sq_of(st), JOB_STAMPS, t, NULL, NULL, cb, data);
}

/* {us, known?} for a since or count_until job, or NULL if stamp is unreadable. */
static cJSON *sq_since_arg(const char *stamp, const cJSON *known) {
  long long us;
  if (util_stamp_us(stamp, &us) < 0)
    return NULL;
  cJSON *arg = cJSON_CreateObject();
  cJSON_AddNumberToObject(arg, "us", (double)us); /* < 2^53 until the year 2255 */
  if (known)
    cJSON_AddItemToObject(arg, "known", cJSON_Duplicate(known, 1));
  return arg;
}

int sq_since(store *st, store_table t, const char *stamp, const cJSON *known,
             store_done_cb cb, void *data) {
  cJSON *arg = sq_since_arg(stamp, known);
  if (!arg)
    return STORE_EINVALID;
  int rc = sq_enqueue(sq_of(st), JOB_SINCE, t, NULL, arg, cb, data);
  cJSON_Delete(arg);
  return rc;
}

int sq_count_until(store *st, store_table t, const char *stamp, store_done_cb cb,
                   void *data) {
  cJSON *arg = sq_since_arg(stamp, NULL);
  if (!arg)
    return STORE_EINVALID;
  int rc = sq_enqueue(sq_of(st), JOB_COUNT, t, NULL, arg, cb, data);
  cJSON_Delete(arg);
  return rc;
}
