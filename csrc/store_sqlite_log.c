/* store_sqlite_log.c - changes made elsewhere, from the SQLite change log
 * (store_sqlite_internal.h). Triggers append every change to shelf_changes
 * (tbl, row_id, op; any writer, other programs included); a uv_fs_event on
 * the database's folder, then a short settle timer, wake a job that reads
 * the log past the last sequence seen, reads the changed rows back (without
 * content, as fetch_summaries gives them) and hands them to the watcher as
 * store events in one batch, or one resync when too much changed. This is
 * how other editors' and other programs' writes arrive. The log is kept
 * bounded (SQ_LOG_KEEP rows). Jobs run in store_sqlite.c's queue.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "map.h"
#include "store_sqlite_internal.h"
#include "util.h"

#define SQ_LOG_KEEP 10000 /* change-log rows kept (at open, and past twice as many) */
#define SQ_LOG_BATCH 2000
#define SQ_CHANGES_MAX 5000  /* rows changed elsewhere in one read; more: a full refresh */
#define SQ_SELECT_CHUNK 500  /* ids read back per SELECT */

static int sq_table_of(const char *name, store_table *t) {
  for (int i = 0; i < STORE_NTABLES; i++) {
    if (strcmp(name, store_default_table_name((store_table)i)) == 0) {
      *t = (store_table)i;
      return 0;
    }
  }
  return -1;
}

/* Keep the newest SQ_LOG_KEEP rows of the change log. Also runs on a worker
 * thread, so it does not log: a failed cut is tried again at the next read. */
int sq_prune_log(sqlite3 *db) {
  char *prune = util_printf("DELETE FROM shelf_changes WHERE seq <= "
                            "(SELECT max(seq) FROM shelf_changes) - %d", SQ_LOG_KEEP);
  int rc = sqlite3_exec(db, prune, NULL, NULL, NULL);
  free(prune);
  return rc;
}

/* Read the change log past last_seq. rows: [{table, id, record|null}] with
 * a null record for a deleted row, or [{"resync":true}]. Linear in the
 * changes: a hash set keeps the first sight of each row (the last word on it
 * is read from the table anyway), and the changed rows are read per table
 * SQ_SELECT_CHUNK at a time. More than SQ_CHANGES_MAX rows (an import by
 * another program) are one resync: a full refresh reads them in one go. */
void sq_changes_job(sq_job *j) {
  sq_store *sq = j->sq;
  sqlite3 *db = sq->db;
  j->rows = cJSON_CreateArray();
  sqlite3_stmt *st;
  sqlite3_int64 oldest = 0;
  int resync = 0;
  if (sqlite3_prepare_v2(db, "SELECT min(seq) FROM shelf_changes", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
      oldest = sqlite3_column_int64(st, 0);
      if (oldest > sq->last_seq + 1 && sq->last_seq > 0)
        resync = 1;
    }
    sqlite3_finalize(st);
  }
  map *seen = map_new();
  cJSON *ids[STORE_NTABLES];
  for (int t = 0; t < STORE_NTABLES; t++)
    ids[t] = cJSON_CreateArray();
  size_t distinct = 0;
  for (;;) {
    if (sqlite3_prepare_v2(db, "SELECT seq, tbl, row_id FROM shelf_changes WHERE seq > ? "
                               "ORDER BY seq LIMIT ?", -1, &st, NULL) != SQLITE_OK)
      break;
    sqlite3_bind_int64(st, 1, sq->last_seq);
    sqlite3_bind_int(st, 2, SQ_LOG_BATCH);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
      n++;
      sq->last_seq = sqlite3_column_int64(st, 0);
      const char *tbl = (const char *)sqlite3_column_text(st, 1);
      const char *id = (const char *)sqlite3_column_text(st, 2);
      store_table t;
      if (!tbl || !id || sq_table_of(tbl, &t) < 0 || distinct > SQ_CHANGES_MAX)
        continue;
      char *key = util_printf("%d\t%s", (int)t, id);
      if (!map_get(seen, key)) {
        map_put(seen, key, (void *)1);
        if (++distinct <= SQ_CHANGES_MAX)
          cJSON_AddItemToArray(ids[t], cJSON_CreateString(id));
      }
      free(key);
    }
    sqlite3_finalize(st);
    if (n < SQ_LOG_BATCH)
      break;
  }
  map_free(seen, NULL);
  /* A long session would grow the log without end: past twice what is kept,
   * cut it back (an editor that falls behind the cut resyncs, see above). */
  if (oldest > 0 && sq->last_seq - oldest >= 2 * SQ_LOG_KEEP)
    sq_prune_log(db);
  if (distinct > SQ_CHANGES_MAX)
    resync = 1;
  for (int t = 0; t < STORE_NTABLES && !resync; t++) {
    const cJSON *next = ids[t]->child;
    while (next && !resync) {
      /* One SELECT for a chunk of ids; what it does not return is gone. */
      cJSON *chunk = cJSON_CreateArray();
      for (int i = 0; next && i < SQ_SELECT_CHUNK; i++, next = next->next)
        cJSON_AddItemToArray(chunk, cJSON_CreateString(next->valuestring));
      int rc;
      cJSON *found = sq_select(sq, (store_table)t, NULL, chunk, 1, NULL, &rc);
      if (!found) {
        /* Not readable (busy, I/O): not deletes. A full refresh settles it
         * once the database answers again. */
        resync = 1;
        cJSON_Delete(chunk);
        break;
      }
      map *by_id = map_new();
      for (cJSON *row = found->child; row; row = row->next) {
        const cJSON *rid = cJSON_GetObjectItemCaseSensitive(row, "id");
        if (cJSON_IsString(rid))
          map_put(by_id, rid->valuestring, row);
      }
      for (const cJSON *id = chunk->child; id; id = id->next) {
        cJSON *row = map_get(by_id, id->valuestring);
        cJSON *ev = cJSON_CreateObject();
        cJSON_AddNumberToObject(ev, "table", t);
        cJSON_AddStringToObject(ev, "id", id->valuestring);
        cJSON_AddItemToObject(ev, "record", row ? cJSON_DetachItemViaPointer(found, row)
                                                : cJSON_CreateNull());
        cJSON_AddItemToArray(j->rows, ev);
      }
      map_free(by_id, NULL);
      cJSON_Delete(found);
      cJSON_Delete(chunk);
    }
  }
  for (int t = 0; t < STORE_NTABLES; t++)
    cJSON_Delete(ids[t]);
  if (resync) {
    cJSON_Delete(j->rows);
    j->rows = cJSON_CreateArray();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddTrueToObject(o, "resync");
    cJSON_AddItemToArray(j->rows, o);
  }
}

/* A read of the change log, delivered in its turn in the completion queue
 * (after the writes before it were answered). */
void sq_deliver_changes(void *data, int status, const char *error, cJSON *rows) {
  sq_store *sq = data;
  (void)status;
  (void)error;
  const cJSON *ev;
  log_debug("sqlite: %d rows changed", cJSON_GetArraySize(rows));
  cJSON_ArrayForEach(ev, rows) {
    if (!sq->watch_cb || sq->closing)
      break;
    store_event e = {0};
    if (cJSON_GetObjectItem(ev, "resync")) {
      e.type = STORE_EV_RESYNC;
    } else {
      e.table = (store_table)cJSON_GetObjectItem(ev, "table")->valuedouble;
      e.id = cJSON_GetObjectItem(ev, "id")->valuestring;
      const cJSON *rec = cJSON_GetObjectItem(ev, "record");
      e.type = cJSON_IsNull(rec) ? STORE_EV_DELETE : STORE_EV_UPSERT;
      e.record = cJSON_IsNull(rec) ? NULL : rec;
    }
    e.more = ev->next != NULL;
    sq->watch_cb(sq->watch_data, &e);
  }
  cJSON_Delete(rows);
}

static void sq_no_cb(void *data, int status, const char *error, cJSON *rows) {
  (void)data;
  (void)status;
  (void)error;
  cJSON_Delete(rows);
}

static void sq_read_changes(sq_store *sq) {
  if (sq->changes_queued || sq->closing)
    return;
  sq->changes_queued = 1;
  sq_enqueue(sq, JOB_CHANGES, STORE_BLOCKS, NULL, NULL, sq_no_cb, NULL);
}

/* A writer appends to the -wal file (an inotify event) but publishes the
 * commit in the -shm index through mmap (no event), so a read right at the
 * event can miss it, and on a loaded machine the writer may publish well
 * after its last event. Read shortly after the burst, then again further
 * apart (the delays after each read); no timer runs while nothing changes. */
static const unsigned sq_settle_ms[] = {5, 50, 200, 1000};
#define SQ_SETTLE_READS ((int)(sizeof sq_settle_ms / sizeof sq_settle_ms[0]))

static void sq_on_settle(uv_timer_t *t) {
  sq_store *sq = t->data;
  sq_read_changes(sq);
  if (sq->trailing < SQ_SETTLE_READS)
    uv_timer_start(&sq->settle, sq_on_settle, sq_settle_ms[sq->trailing++], 0);
}

/* The database, its -wal and -shm files, by their exact names: nothing else
 * in the folder. A prefix would take in "<name>.log" (the log kept beside the
 * library, as the benchmarks do): each line shelfd logs there woke it for the
 * settle reads above, four of them over a second, after every log line. */
static int sq_is_db_file(const sq_store *sq, const char *filename) {
  size_t n = strlen(sq->base_name);
  if (strncmp(filename, sq->base_name, n) != 0)
    return 0;
  return filename[n] == '\0' || strcmp(filename + n, "-wal") == 0 ||
         strcmp(filename + n, "-shm") == 0;
}

static void sq_on_fs(uv_fs_event_t *h, const char *filename, int events, int status) {
  sq_store *sq = h->data;
  (void)events;
  if (status < 0 || sq->closing)
    return;
  if (filename && !sq_is_db_file(sq, filename))
    return;
  sq->trailing = 1;
  uv_timer_start(&sq->settle, sq_on_settle, sq_settle_ms[0], 0);
}

int sq_watch(store *st, store_event_cb cb, void *data) {
  sq_store *sq = sq_of(st);
  sq->watch_cb = cb;
  sq->watch_data = data;
  int rc = uv_fs_event_init(sq->loop, &sq->watcher);
  if (rc < 0)
    return rc;
  uv_timer_init(sq->loop, &sq->settle);
  sq->watcher.data = sq->settle.data = sq;
  sq->watching = 2;
  return uv_fs_event_start(&sq->watcher, sq_on_fs, sq->dir, 0);
}
