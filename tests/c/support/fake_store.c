/* fake_store.c - see fake_store.h. */
#include "fake_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef enum {
  OP_INSERT,
  OP_UPDATE,
  OP_REMOVE,
  OP_STAMPS,
  OP_FETCH,
  OP_SINCE,
  OP_COUNT,
  OP_DELTA
} fake_op;

typedef struct fake_req {
  fake_op op;
  store_table t;
  char *id;
  cJSON *arg;
  store_done_cb cb;
  void *data;
  int from; /* OP_FETCH of every row in parts: the first row of this part */
  struct fake_req *next;
} fake_req;

struct fake_store {
  store base;
  struct store_ops ops;
  cJSON *rows[STORE_NTABLES]; /* arrays of rows */
  fake_req *head, *tail;
  int fail_status;
  char *fail_msg;
  unsigned fail_retry_after_ms;
  int lose_answers; /* requests still to run whose answer is then lost */
  int part_rows;    /* > 0: a fetch of every row answers this many at a time */
  int delta_uncounted; /* a delta's count is null (fake_store_delta 2) */
  store_event_cb watch_cb;
  void *watch_data;
  fake_store_counts counts;
  int counter; /* for stamps */
};

static cJSON *fake_find(fake_store *fs, store_table t, const char *id, int *index) {
  int i = 0;
  cJSON *row;
  cJSON_ArrayForEach(row, fs->rows[t]) {
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(row, "id");
    if (cJSON_IsString(rid) && strcmp(rid->valuestring, id) == 0) {
      if (index)
        *index = i;
      return row;
    }
    i++;
  }
  return NULL;
}

static void fake_stamp(fake_store *fs, cJSON *row) {
  char stamp[64];
  /* A day after the tests' own rows, a microsecond apart. */
  snprintf(stamp, sizeof stamp, "2026-01-02T00:00:00.%06d+00:00", ++fs->counter % 1000000);
  cJSON_DeleteItemFromObjectCaseSensitive(row, "updated_at");
  cJSON_AddStringToObject(row, "updated_at", stamp);
}

static int fake_queue(fake_store *fs, fake_op op, store_table t, const char *id,
                      const cJSON *arg, store_done_cb cb, void *data) {
  fake_req *r = util_calloc(1, sizeof *r);
  r->op = op;
  r->t = t;
  r->id = id ? util_strdup(id) : NULL;
  r->arg = arg ? cJSON_Duplicate(arg, 1) : NULL;
  r->cb = cb;
  r->data = data;
  if (fs->tail)
    fs->tail->next = r;
  else
    fs->head = r;
  fs->tail = r;
  switch (op) {
  case OP_INSERT: fs->counts.inserts++; break;
  case OP_UPDATE: fs->counts.updates++; break;
  case OP_REMOVE: fs->counts.removes++; break;
  case OP_STAMPS: fs->counts.stamps++; break;
  case OP_SINCE:
  case OP_DELTA: {
    const cJSON *known = cJSON_GetObjectItem(arg, "known");
    if (op == OP_DELTA)
      fs->counts.deltas++;
    else
      fs->counts.sinces++;
    snprintf(fs->counts.last_since, sizeof fs->counts.last_since, "%s",
             cJSON_GetObjectItem(arg, "stamp")->valuestring);
    fs->counts.last_known = known ? cJSON_GetArraySize(known) : -1;
    break;
  }
  case OP_COUNT: fs->counts.count_untils++; break;
  case OP_FETCH:
    if (arg) {
      fs->counts.fetches++;
      fs->counts.last_fetch_ids = cJSON_GetArraySize(arg);
    } else {
      fs->counts.fetch_alls++;
    }
    break;
  }
  return 0;
}

static fake_store *fake_of(store *st) { return (fake_store *)st; }

static int fake_insert(store *st, store_table t, const cJSON *rec,
                       store_done_cb cb, void *data) {
  return fake_queue(fake_of(st), OP_INSERT, t, NULL, rec, cb, data);
}
static int fake_update(store *st, store_table t, const char *id,
                       const cJSON *fields, store_done_cb cb, void *data) {
  return fake_queue(fake_of(st), OP_UPDATE, t, id, fields, cb, data);
}
static int fake_remove(store *st, store_table t, const char *id,
                       store_done_cb cb, void *data) {
  return fake_queue(fake_of(st), OP_REMOVE, t, id, NULL, cb, data);
}
static int fake_stamps(store *st, store_table t, store_done_cb cb, void *data) {
  return fake_queue(fake_of(st), OP_STAMPS, t, NULL, NULL, cb, data);
}
static int fake_fetch(store *st, store_table t, const cJSON *ids,
                      store_done_cb cb, void *data) {
  return fake_queue(fake_of(st), OP_FETCH, t, NULL, ids, cb, data);
}
/* since (OP_SINCE), or since and count_until at once (OP_DELTA). */
static int fake_changed_since(store *st, fake_op op, store_table t, const char *stamp,
                              const cJSON *known, store_done_cb cb, void *data) {
  long long us;
  if (util_stamp_us(stamp, &us) < 0)
    return STORE_EINVALID;
  cJSON *arg = cJSON_CreateObject();
  cJSON_AddStringToObject(arg, "stamp", stamp);
  if (known)
    cJSON_AddItemToObject(arg, "known", cJSON_Duplicate(known, 1));
  int rc = fake_queue(fake_of(st), op, t, NULL, arg, cb, data);
  cJSON_Delete(arg);
  return rc;
}
static int fake_since(store *st, store_table t, const char *stamp, const cJSON *known,
                      store_done_cb cb, void *data) {
  return fake_changed_since(st, OP_SINCE, t, stamp, known, cb, data);
}
static int fake_delta(store *st, store_table t, const char *stamp, const cJSON *known,
                      store_done_cb cb, void *data) {
  return fake_changed_since(st, OP_DELTA, t, stamp, known, cb, data);
}
static int fake_count_until(store *st, store_table t, const char *stamp, store_done_cb cb,
                            void *data) {
  long long us;
  if (util_stamp_us(stamp, &us) < 0)
    return STORE_EINVALID;
  cJSON *arg = cJSON_CreateObject();
  cJSON_AddStringToObject(arg, "stamp", stamp);
  int rc = fake_queue(fake_of(st), OP_COUNT, t, NULL, arg, cb, data);
  cJSON_Delete(arg);
  return rc;
}
static int fake_watch(store *st, store_event_cb cb, void *data) {
  fake_store *fs = fake_of(st);
  fs->watch_cb = cb;
  fs->watch_data = data;
  return 0;
}
static cJSON *fake_describe(store *st) {
  (void)st;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "backend", "fake");
  return o;
}

static void fake_free_req(fake_req *r) {
  free(r->id);
  cJSON_Delete(r->arg);
  free(r);
}

static void fake_close(store *st, store_closed_cb closed, void *data) {
  fake_store *fs = fake_of(st);
  while (fs->head) {
    fake_req *r = fs->head;
    fs->head = r->next;
    r->cb(r->data, STORE_ECLOSED, "closing", NULL);
    fake_free_req(r);
  }
  for (int t = 0; t < STORE_NTABLES; t++)
    cJSON_Delete(fs->rows[t]);
  free(fs->fail_msg);
  free(fs);
  if (closed)
    closed(data);
}

static const struct store_ops fake_ops = {
    .name = "fake",
    .insert = fake_insert,
    .update = fake_update,
    .remove = fake_remove,
    .stamps = fake_stamps,
    .fetch = fake_fetch,
    .since = fake_since,
    .count_until = fake_count_until,
    .watch = fake_watch,
    .describe = fake_describe,
    .close = fake_close,
};

void fake_store_delta(fake_store *fs, int on) {
  fs->ops.delta = on ? fake_delta : NULL;
  fs->delta_uncounted = on == 2;
}

fake_store *fake_store_new(void) {
  fake_store *fs = util_calloc(1, sizeof *fs);
  fs->ops = fake_ops; /* its own: fake_store_delta changes it */
  fs->base.ops = &fs->ops;
  for (int t = 0; t < STORE_NTABLES; t++)
    fs->rows[t] = cJSON_CreateArray();
  return fs;
}

store *fake_store_base(fake_store *fs) { return &fs->base; }

static int fake_run(fake_store *fs, fake_req *r, cJSON **out, char **err) {
  cJSON *rows = cJSON_CreateArray();
  *out = NULL;
  if (fs->fail_status) {
    int st = fs->fail_status;
    fs->fail_status = 0;
    *err = fs->fail_msg;
    fs->fail_msg = NULL;
    cJSON_Delete(rows);
    return st;
  }
  switch (r->op) {
  case OP_INSERT: {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(r->arg, "id");
    cJSON *had = cJSON_IsString(id) ? fake_find(fs, r->t, id->valuestring, NULL) : NULL;
    if (had) {
      /* As store.h asks: an insert of a stored id answers with that row. */
      cJSON_AddItemToArray(rows, cJSON_Duplicate(had, 1));
      break;
    }
    cJSON *row = cJSON_Duplicate(r->arg, 1);
    cJSON_AddStringToObject(row, "created_at", "2026-01-01T00:00:00+00:00");
    fake_stamp(fs, row);
    cJSON_AddItemToArray(fs->rows[r->t], row);
    cJSON_AddItemToArray(rows, cJSON_Duplicate(row, 1));
    break;
  }
  case OP_UPDATE: {
    cJSON *row = fake_find(fs, r->t, r->id, NULL);
    if (!row) {
      cJSON_Delete(rows);
      *err = util_strdup("no such row");
      return STORE_ENOTFOUND;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, r->arg) {
      cJSON_DeleteItemFromObjectCaseSensitive(row, f->string);
      cJSON_AddItemToObject(row, f->string, cJSON_Duplicate(f, 1));
    }
    fake_stamp(fs, row);
    cJSON_AddItemToArray(rows, cJSON_Duplicate(row, 1));
    break;
  }
  case OP_REMOVE: {
    int i;
    if (!fake_find(fs, r->t, r->id, &i)) {
      cJSON_Delete(rows);
      *err = util_strdup("no such row");
      return STORE_ENOTFOUND;
    }
    cJSON_DeleteItemFromArray(fs->rows[r->t], i);
    break;
  }
  case OP_STAMPS: {
    cJSON *row;
    cJSON_ArrayForEach(row, fs->rows[r->t]) {
      cJSON *pair = cJSON_CreateArray();
      cJSON_AddItemToArray(pair, cJSON_Duplicate(cJSON_GetObjectItem(row, "id"), 1));
      cJSON_AddItemToArray(pair, cJSON_Duplicate(cJSON_GetObjectItem(row, "updated_at"), 1));
      cJSON_AddItemToArray(rows, pair);
    }
    break;
  }
  case OP_SINCE:
  case OP_COUNT:
  case OP_DELTA: {
    /* Compared as times, as the backends do. */
    long long at, us;
    util_stamp_us(cJSON_GetObjectItem(r->arg, "stamp")->valuestring, &at);
    const cJSON *known = cJSON_GetObjectItem(r->arg, "known");
    int n = 0;
    cJSON *row;
    cJSON_ArrayForEach(row, fs->rows[r->t]) {
      const cJSON *stamp = cJSON_GetObjectItem(row, "updated_at");
      if (!cJSON_IsString(stamp) || util_stamp_us(stamp->valuestring, &us) < 0)
        continue;
      n += us <= at;
      if (r->op == OP_COUNT)
        continue;
      int want = us > at;
      if (us == at && known) {
        want = 1;
        const cJSON *id;
        cJSON_ArrayForEach(id, known) {
          if (strcmp(id->valuestring, cJSON_GetObjectItem(row, "id")->valuestring) == 0)
            want = 0;
        }
      }
      if (want)
        cJSON_AddItemToArray(rows, cJSON_Duplicate(row, 1));
    }
    if (r->op == OP_COUNT)
      cJSON_AddItemToArray(rows, cJSON_CreateNumber(n));
    else if (r->op == OP_DELTA)
      cJSON_InsertItemInArray(rows, 0, fs->delta_uncounted ? cJSON_CreateNull() : cJSON_CreateNumber(n));
    break;
  }
  case OP_FETCH: {
    if (!r->arg && fs->part_rows > 0) {
      /* A part, as the SQLite store's: the next is queued at the back. */
      int n = cJSON_GetArraySize(fs->rows[r->t]);
      for (int i = r->from; i < n && i < r->from + fs->part_rows; i++)
        cJSON_AddItemToArray(rows, cJSON_Duplicate(cJSON_GetArrayItem(fs->rows[r->t], i), 1));
      if (r->from + fs->part_rows < n) {
        fake_queue(fs, OP_FETCH, r->t, NULL, NULL, r->cb, r->data);
        fs->counts.fetch_alls--; /* the same read */
        fs->tail->from = r->from + fs->part_rows;
        *out = rows;
        return STORE_PAGE;
      }
      break;
    }
    cJSON *row;
    cJSON_ArrayForEach(row, fs->rows[r->t]) {
      int want = r->arg == NULL;
      const cJSON *id;
      cJSON_ArrayForEach(id, r->arg) {
        if (strcmp(id->valuestring, cJSON_GetObjectItem(row, "id")->valuestring) == 0)
          want = 1;
      }
      if (want)
        cJSON_AddItemToArray(rows, cJSON_Duplicate(row, 1));
    }
    break;
  }
  }
  *out = rows;
  return 0;
}

int fake_store_step(fake_store *fs) {
  fake_req *r = fs->head;
  if (!r)
    return 0;
  fs->head = r->next;
  if (!fs->head)
    fs->tail = NULL;
  cJSON *rows;
  char *err = NULL;
  unsigned retry_after = fs->fail_status ? fs->fail_retry_after_ms : 0;
  fs->fail_retry_after_ms = 0;
  int st = fake_run(fs, r, &rows, &err);
  if (st == 0 && fs->lose_answers > 0) {
    /* Done in the "database", but the answer never came back. */
    fs->lose_answers--;
    cJSON_Delete(rows);
    rows = NULL;
    st = STORE_EUNAVAILABLE;
    err = util_strdup("timed out (the answer was lost)");
  }
  fs->base.retry_after_ms = retry_after;
  r->cb(r->data, st, st < 0 ? (err ? err : "failed") : NULL, rows);
  fs->base.retry_after_ms = 0;
  free(err);
  fake_free_req(r);
  return 1;
}

int fake_store_drain(fake_store *fs) {
  int n = 0;
  while (fake_store_step(fs))
    n++;
  return n;
}

int fake_store_queued(const fake_store *fs) {
  int n = 0;
  for (fake_req *r = fs->head; r; r = r->next)
    n++;
  return n;
}

void fake_store_fail_next(fake_store *fs, int status, const char *msg) {
  fs->fail_status = status;
  free(fs->fail_msg);
  fs->fail_msg = util_strdup(msg);
}

void fake_store_retry_after_next(fake_store *fs, unsigned ms) { fs->fail_retry_after_ms = ms; }

void fake_store_lose_answers(fake_store *fs, int n) { fs->lose_answers = n; }

void fake_store_parts(fake_store *fs, int rows) { fs->part_rows = rows; }

void fake_store_put(fake_store *fs, store_table t, const cJSON *row) {
  int i;
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(row, "id");
  if (fake_find(fs, t, id->valuestring, &i))
    cJSON_DeleteItemFromArray(fs->rows[t], i);
  cJSON_AddItemToArray(fs->rows[t], cJSON_Duplicate(row, 1));
}

void fake_store_del(fake_store *fs, store_table t, const char *id) {
  int i;
  if (fake_find(fs, t, id, &i))
    cJSON_DeleteItemFromArray(fs->rows[t], i);
}

void fake_store_emit(fake_store *fs, const store_event *ev) {
  if (fs->watch_cb)
    fs->watch_cb(fs->watch_data, ev);
}

size_t fake_store_rows(fake_store *fs, store_table t) {
  return (size_t)cJSON_GetArraySize(fs->rows[t]);
}

fake_store_counts fake_store_counts_get(const fake_store *fs) { return fs->counts; }
