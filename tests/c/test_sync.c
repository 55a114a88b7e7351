/* Tests of the sync engine against the fake store: first load, CRUD only
 * after the store confirms, refresh after every action, coalescing, diffs,
 * temporary blocks, events from elsewhere, failures and retries, shutdown. */
#include "fake_store.h"
#include "cols.h"
#include "mpjson.h"
#include "sync.h"
#include "test.h"
#include "util.h"

typedef struct {
  int changed[MODEL_NKINDS];
  cJSON *up, *del; /* everything upserted / deleted, all kinds */
  int done;
  uint64_t last_ticket;
  char *last_error;
  cJSON *last_item;
  cJSON *status;
  sync_engine *s; /* set once made: for sync_pushing_more */
  int mores;      /* pushes that said more of their burst follow */
  int statuses;   /* status pushes */
  int idle;       /* of them, saying nothing is loading or checking */
} rec;

static void on_changed(void *data, model_kind k, uint64_t version,
                       const cJSON *up, const cJSON *del) {
  rec *r = data;
  (void)version;
  r->changed[k]++;
  if (r->s && sync_pushing_more(r->s))
    r->mores++;
  const cJSON *v;
  cJSON_ArrayForEach(v, up) cJSON_AddItemToArray(r->up, cJSON_Duplicate(v, 1));
  cJSON_ArrayForEach(v, del) cJSON_AddItemToArray(r->del, cJSON_Duplicate(v, 1));
}

static void on_done(void *data, uint64_t ticket, const char *error,
                    const cJSON *item) {
  rec *r = data;
  r->done++;
  r->last_ticket = ticket;
  free(r->last_error);
  r->last_error = error ? util_strdup(error) : NULL;
  cJSON_Delete(r->last_item);
  r->last_item = item ? cJSON_Duplicate(item, 1) : NULL;
}

static void on_status(void *data, const cJSON *st) {
  rec *r = data;
  r->statuses++;
  if (!cJSON_GetObjectItem(st, "loading") && !cJSON_GetObjectItem(st, "checking"))
    r->idle++;
  cJSON_Delete(r->status);
  r->status = cJSON_Duplicate(st, 1);
}

/* Query answers land here (query_get). */
typedef struct {
  int answered;
  char *error;
  cJSON *result;
} answer_rec;

static void on_answer(void *data, uint64_t ticket, const char *error,
                      const cJSON *result) {
  (void)data;
  answer_rec *a = (answer_rec *)(uintptr_t)ticket;
  a->answered++;
  a->error = error ? util_strdup(error) : NULL;
  a->result = result ? cJSON_Duplicate(result, 1) : NULL;
}

static const sync_callbacks cbs = {.changed = on_changed, .done = on_done, .status = on_status,
                                   .answer = on_answer};

typedef struct {
  uv_loop_t loop;
  fake_store *fs;
  sync_engine *s;
  rec r;
} rig;

static void rig_reset(rig *g) {
  cJSON_Delete(g->r.up);
  cJSON_Delete(g->r.del);
  g->r.up = cJSON_CreateArray();
  g->r.del = cJSON_CreateArray();
  memset(g->r.changed, 0, sizeof g->r.changed);
  g->r.mores = 0;
}

static cJSON *row(const char *id, const char *title, const char *stamp) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "id", id);
  cJSON_AddStringToObject(o, "title", title);
  cJSON_AddStringToObject(o, "content", "some content");
  cJSON_AddItemToObject(o, "tags", cJSON_CreateArray());
  cJSON_AddStringToObject(o, "updated_at", stamp);
  return o;
}

#define ID1 "11111111-1111-4111-8111-111111111111"
#define ID2 "22222222-2222-4222-8222-222222222222"
#define ID3 "33333333-3333-4333-8333-333333333333"

static void rig_open(rig *g, int with_rows) {
  memset(g, 0, sizeof *g);
  ASSERT_EQ(uv_loop_init(&g->loop), 0);
  g->fs = fake_store_new();
  if (with_rows) {
    cJSON *a = row(ID1, "first prompt", "2026-01-01T00:00:01+00:00");
    cJSON *b = row(ID2, "second prompt", "2026-01-01T00:00:02+00:00");
    fake_store_put(g->fs, STORE_PROMPTS, a);
    fake_store_put(g->fs, STORE_PROMPTS, b);
    cJSON_Delete(a);
    cJSON_Delete(b);
  }
  rig_reset(g);
  sync_options opts = {.max_attempts = 3, .retry_base_ms = 5};
  g->s = sync_new(&g->loop, fake_store_base(g->fs), &cbs, &g->r, &opts);
  g->r.s = g->s;
  fake_store_drain(g->fs);
  rig_reset(g);
}

/* An engine over a store holding one row (id ID1 of table t), made but not
 * yet loaded: the first load waits in the store's queue. */
static void rig_start(rig *g, store_table t, const char *title) {
  memset(g, 0, sizeof *g);
  ASSERT_EQ(uv_loop_init(&g->loop), 0);
  g->fs = fake_store_new();
  cJSON *a = row(ID1, title, "2026-01-01T00:00:01+00:00");
  fake_store_put(g->fs, t, a);
  cJSON_Delete(a);
  rig_reset(g);
  sync_options opts = {.max_attempts = 3, .retry_base_ms = 5};
  g->s = sync_new(&g->loop, fake_store_base(g->fs), &cbs, &g->r, &opts);
  g->r.s = g->s;
}

static void on_store_closed(void *data) { *(int *)data = 1; }
static void on_sync_closed(void *data) { *(int *)data = 1; }

static void rig_close(rig *g) {
  int sync_closed = 0, store_closed = 0;
  sync_close(g->s, on_sync_closed, &sync_closed);
  store_close(fake_store_base(g->fs), on_store_closed, &store_closed);
  uv_run(&g->loop, UV_RUN_DEFAULT);
  ASSERT(sync_closed && store_closed);
  ASSERT_EQ(uv_loop_close(&g->loop), 0);
  cJSON_Delete(g->r.up);
  cJSON_Delete(g->r.del);
  cJSON_Delete(g->r.last_item);
  cJSON_Delete(g->r.status);
  free(g->r.last_error);
}

/* Ask a get query and let the store answer: the whole item (content
 * included), or NULL and *error (the caller's, if error is given). */
static cJSON *query_get(rig *g, model_kind k, const char *id, char **error) {
  answer_rec a = {0};
  sync_query_get(g->s, (uint64_t)(uintptr_t)&a, k, id);
  while (!a.answered && fake_store_step(g->fs))
    ;
  ASSERT_EQ(a.answered, 1);
  if (error)
    *error = a.error;
  else
    free(a.error);
  return a.result;
}

/* The same for a search query: its hits. */
static cJSON *query_search(rig *g, const char *query, int kind) {
  answer_rec a = {0};
  sync_query_search(g->s, (uint64_t)(uintptr_t)&a, query, kind, 100);
  while (!a.answered && fake_store_step(g->fs))
    ;
  ASSERT_EQ(a.answered, 1);
  ASSERT(a.error == NULL);
  return a.result;
}

static const char *str_of(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItem(o, key);
  return cJSON_IsString(v) ? v->valuestring : "(none)";
}

static cJSON *fields(const char *json) {
  cJSON *f = cJSON_Parse(json);
  ASSERT(f != NULL);
  return f;
}

static int status_bool(rig *g, const char *name) {
  return cJSON_IsTrue(cJSON_GetObjectItem(g->r.status, name));
}

TEST(first_load_fetches_everything_once) {
  rig g;
  memset(&g, 0, sizeof g);
  ASSERT_EQ(uv_loop_init(&g.loop), 0);
  g.fs = fake_store_new();
  cJSON *a = row(ID1, "a", "2026-01-01T00:00:01+00:00");
  fake_store_put(g.fs, STORE_BLOCKS, a);
  cJSON_Delete(a);
  rig_reset(&g);
  g.s = sync_new(&g.loop, fake_store_base(g.fs), &cbs, &g.r, NULL);
  ASSERT(!status_bool(&g, "ready"));
  fake_store_drain(g.fs);
  ASSERT_EQ(fake_store_counts_get(g.fs).fetch_alls, STORE_NTABLES);
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps, 0);
  ASSERT_EQ(g.r.changed[MODEL_BLOCK], 1);
  ASSERT_EQ(cJSON_GetArraySize(g.r.up), 1);
  /* The summary has no content, and says how big it is. */
  cJSON *s = cJSON_GetArrayItem(g.r.up, 0);
  ASSERT(cJSON_GetObjectItem(s, "content") == NULL);
  ASSERT_EQ(cJSON_GetObjectItem(s, "size")->valuedouble, strlen("some content"));
  ASSERT_STR(cJSON_GetObjectItem(s, "kind")->valuestring, "block");
  ASSERT(status_bool(&g, "ready"));
  rig_close(&g);
}

/* Records which kind the editor got first. */
static model_kind first_kind_seen;
static int kinds_seen;
static void on_changed_first(void *data, model_kind k, uint64_t version, const cJSON *up,
                             const cJSON *del) {
  if (kinds_seen++ == 0)
    first_kind_seen = k;
  on_changed(data, k, version, up, del);
}

static void put_prompts(fake_store *fs, int from, int n, const char *title) {
  for (int i = from; i < from + n; i++) {
    char id[UTIL_UUID_LEN + 1];
    snprintf(id, sizeof id, "7a1f5e1f-0000-4000-8000-%012d", i);
    cJSON *p = row(id, title, "2026-01-01T00:00:03+00:00");
    fake_store_put(fs, STORE_PROMPTS, p);
    cJSON_Delete(p);
  }
}

/* A store that answers a read of every row in parts: a first load is shown
 * a part at a time, folders first, as one burst until the status says
 * ready; a later full read keeps the rows of its earlier parts and drops
 * only what is gone. */
TEST(a_load_in_parts_is_shown_as_it_is_read) {
  rig g;
  memset(&g, 0, sizeof g);
  ASSERT_EQ(uv_loop_init(&g.loop), 0);
  g.fs = fake_store_new();
  fake_store_parts(g.fs, 2);
  put_prompts(g.fs, 0, 5, "p");
  cJSON *f = cJSON_Parse("{\"id\":\"" ID2 "\",\"name\":\"Code\",\"updated_at\":\"2026-01-01T00:00:00+00:00\"}");
  fake_store_put(g.fs, STORE_PROMPT_PROJECTS, f);
  cJSON_Delete(f);
  rig_reset(&g);
  sync_callbacks first = cbs;
  first.changed = on_changed_first;
  kinds_seen = 0;
  g.s = sync_new(&g.loop, fake_store_base(g.fs), &first, &g.r, NULL);
  g.r.s = g.s;
  /* Step until the first part of the prompts is in the editor. */
  while (g.r.changed[MODEL_PROMPT] == 0 && fake_store_step(g.fs))
    ;
  ASSERT_EQ(first_kind_seen, MODEL_PROJECT);
  ASSERT_EQ(cJSON_GetArraySize(g.r.up), 1 + 2);
  ASSERT(!status_bool(&g, "ready"));
  fake_store_drain(g.fs);
  ASSERT(status_bool(&g, "ready"));
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 5);
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 3); /* 2, 2, 1 */
  ASSERT_EQ(g.r.mores, 4);                 /* every push of the load but none said the end */
  ASSERT_EQ(fake_store_counts_get(g.fs).fetch_alls, STORE_NTABLES);

  /* A full read later: a row of its first part renamed by SQL that kept
   * its stamp (only a full read sees that), one of its last deleted, one
   * added. Only those three reach the editor. */
  put_prompts(g.fs, 0, 1, "renamed");
  fake_store_del(g.fs, STORE_PROMPTS, "7a1f5e1f-0000-4000-8000-000000000004");
  put_prompts(g.fs, 5, 1, "new");
  rig_reset(&g);
  store_event resync = {STORE_EV_RESYNC, STORE_BLOCKS, NULL, NULL, 0};
  fake_store_emit(g.fs, &resync);
  fake_store_drain(g.fs);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 5);
  ASSERT_EQ(cJSON_GetArraySize(g.r.up), 2);
  ASSERT_EQ(cJSON_GetArraySize(g.r.del), 1);
  ASSERT_STR(cJSON_GetArrayItem(g.r.del, 0)->valuestring, "7a1f5e1f-0000-4000-8000-000000000004");
  cJSON *got = sync_held(g.s, MODEL_PROMPT, "7a1f5e1f-0000-4000-8000-000000000000");
  ASSERT_STR(cJSON_GetObjectItem(got, "title")->valuestring, "renamed");
  cJSON_Delete(got);
  rig_close(&g);
}

/* A packed tags value (cols.c: a NUL before each tag) as the list. */
static cJSON *unpack_tags(const msgpack_object *v) {
  const char *err = NULL;
  if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 || v->via.str.ptr[0] != '\0')
    return mpjson_from_msgpack(v, &err);
  cJSON *list = cJSON_CreateArray();
  const char *p = v->via.str.ptr + 1, *end = v->via.str.ptr + v->via.str.size;
  while (p < end) {
    const char *nul = memchr(p, '\0', (size_t)(end - p));
    size_t n = nul ? (size_t)(nul - p) : (size_t)(end - p);
    char tag[64];
    ASSERT(n < sizeof tag);
    memcpy(tag, p, n);
    tag[n] = '\0';
    cJSON_AddItemToArray(list, cJSON_CreateString(tag));
    p += n + 1;
  }
  return list;
}

/* changed_packed: the summaries as columns (cols.h), recorded as cJSON
 * rows (a null in a column: the row has no such field), tags unpacked. */
static cJSON *packed_seen;
static void on_changed_packed(void *data, model_kind k, uint64_t version, const char *up,
                              size_t len, const cJSON *del) {
  (void)data, (void)k, (void)version, (void)del;
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  ASSERT(msgpack_unpack_next(&u, up, len, NULL) == MSGPACK_UNPACK_SUCCESS);
  ASSERT(u.data.type == MSGPACK_OBJECT_MAP);
  cJSON *cols = cJSON_CreateObject();
  int packed = 0;
  for (uint32_t i = 0; i < u.data.via.map.size; i++) {
    const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
    char key[COLS_MAX_NAME + 1];
    ASSERT(kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size <= COLS_MAX_NAME);
    memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
    key[kv->key.via.str.size] = '\0';
    const char *err = NULL;
    if (strcmp(key, COLS_PACKED_TAGS) == 0) {
      packed = kv->val.type == MSGPACK_OBJECT_BOOLEAN && kv->val.via.boolean;
    } else if (strcmp(key, "tags") == 0) {
      ASSERT(kv->val.type == MSGPACK_OBJECT_ARRAY);
      cJSON *col = cJSON_CreateArray();
      for (uint32_t r = 0; r < kv->val.via.array.size; r++)
        cJSON_AddItemToArray(col, unpack_tags(&kv->val.via.array.ptr[r]));
      cJSON_AddItemToObject(cols, key, col);
    } else {
      cJSON *col = mpjson_from_msgpack(&kv->val, &err);
      ASSERT(col != NULL);
      cJSON_AddItemToObject(cols, key, col);
    }
  }
  /* Tags come packed, and the push says so. */
  ASSERT(packed == (cJSON_GetObjectItem(cols, "tags") != NULL));
  int n = (int)cJSON_GetObjectItem(cols, "n")->valuedouble;
  for (int i = 0; i < n; i++) {
    cJSON *row = cJSON_CreateObject();
    const cJSON *col;
    cJSON_ArrayForEach(col, cols) {
      if (strcmp(col->string, "n") == 0)
        continue;
      ASSERT_EQ(cJSON_GetArraySize(col), n);
      const cJSON *v = cJSON_GetArrayItem(col, i);
      if (!cJSON_IsNull(v))
        cJSON_AddItemToObject(row, col->string, cJSON_Duplicate(v, 1));
    }
    /* A UUID id comes as its parts (cols.h): the row's id again. */
    const cJSON *a = cJSON_GetObjectItem(row, COLS_ID_A);
    if (a) {
      uint64_t pa = (uint64_t)a->valuedouble, pb = (uint64_t)cJSON_GetObjectItem(row, COLS_ID_B)->valuedouble,
               pc = (uint64_t)cJSON_GetObjectItem(row, COLS_ID_C)->valuedouble;
      ASSERT(cJSON_GetObjectItem(row, "id") == NULL);
      char id[80];
      snprintf(id, sizeof id, "%08llx-%04llx-%04llx-%04llx-%04llx%08llx", (unsigned long long)(pa >> 16),
               (unsigned long long)(pa & 0xffff), (unsigned long long)(pb >> 32),
               (unsigned long long)((pb >> 16) & 0xffff), (unsigned long long)(pb & 0xffff),
               (unsigned long long)pc);
      cJSON_AddStringToObject(row, "id", id);
      cJSON_DeleteItemFromObject(row, COLS_ID_A);
      cJSON_DeleteItemFromObject(row, COLS_ID_B);
      cJSON_DeleteItemFromObject(row, COLS_ID_C);
    }
    cJSON_AddItemToArray(packed_seen, row);
  }
  cJSON_Delete(cols);
  msgpack_unpacked_destroy(&u);
}

/* What the editor gets of a held row, written from its packed form, is
 * exactly the row's summary (model_summary): every field, a folder's type,
 * a temporary block's flag. */
TEST(packed_summaries_are_the_rows_summaries) {
  rig g;
  memset(&g, 0, sizeof g);
  ASSERT_EQ(uv_loop_init(&g.loop), 0);
  g.fs = fake_store_new();
  cJSON *p = cJSON_Parse("{\"id\":\"" ID1 "\",\"title\":\"T \\\"q\\\" é\",\"description\":\"d\","
                         "\"content\":\"12345\",\"tags\":[\"a\",\"b\"],\"folder\":\"F\",\"project_id\":null,"
                         "\"created_at\":\"2026-01-01T00:00:00+00:00\",\"updated_at\":\"2026-01-02T00:00:00+00:00\"}");
  cJSON *f = cJSON_Parse("{\"id\":\"" ID2 "\",\"name\":\"Code\",\"icon\":\"x\",\"is_system\":false,"
                         "\"updated_at\":\"2026-01-03T00:00:00+00:00\"}");
  fake_store_put(g.fs, STORE_PROMPTS, p);
  fake_store_put(g.fs, STORE_PROMPT_PROJECTS, f);
  rig_reset(&g);
  packed_seen = cJSON_CreateArray();
  sync_callbacks packed = cbs;
  packed.changed_packed = on_changed_packed;
  g.s = sync_new(&g.loop, fake_store_base(g.fs), &packed, &g.r, NULL);
  fake_store_drain(g.fs);
  cJSON *tf = fields("{\"title\":\"tmp\",\"content\":\"abc\",\"temporary\":true}");
  sync_create(g.s, 1, MODEL_BLOCK, tf);
  cJSON_Delete(tf);
  ASSERT_EQ(cJSON_GetArraySize(g.r.up), 0); /* changed() is not called */
  ASSERT_EQ(cJSON_GetArraySize(packed_seen), 3);
  cJSON *want[2] = {model_summary(STORE_PROMPTS, p, 0), model_summary(STORE_PROMPT_PROJECTS, f, 0)};
  int found = 0;
  const cJSON *got;
  cJSON_ArrayForEach(got, packed_seen) {
    for (int i = 0; i < 2; i++)
      found += cJSON_Compare(want[i], got, 1);
    if (cJSON_IsTrue(cJSON_GetObjectItem(got, "temporary"))) {
      found++;
      ASSERT_STR(cJSON_GetObjectItem(got, "title")->valuestring, "tmp");
      ASSERT_EQ((int)cJSON_GetObjectItem(got, "size")->valuedouble, 3);
    }
  }
  ASSERT_EQ(found, 3);
  for (int i = 0; i < 2; i++)
    cJSON_Delete(want[i]);
  cJSON_Delete(p);
  cJSON_Delete(f);
  cJSON_Delete(packed_seen);
  rig_close(&g);
}

TEST(create_changes_nothing_until_confirmed_then_refreshes) {
  rig g;
  rig_open(&g, 1);
  int refreshes = sync_refreshes_started(g.s);
  fake_store_counts c0 = fake_store_counts_get(g.fs);
  cJSON *f = fields("{\"title\":\"New\",\"content\":\"x\",\"tags\":[\"a\"]}");
  sync_create(g.s, 7, MODEL_PROMPT, f);
  cJSON_Delete(f);
  /* Nothing changes before the store confirms (no optimistic update). */
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 0);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 2);
  ASSERT_EQ(g.r.done, 0);
  ASSERT(cJSON_GetObjectItem(cJSON_GetObjectItem(g.r.status, "loading"), "actions") != NULL);
  ASSERT_EQ(fake_store_step(g.fs), 1); /* the insert */
  ASSERT_EQ(g.r.done, 1);
  ASSERT_EQ(g.r.last_ticket, 7);
  ASSERT(g.r.last_error == NULL);
  ASSERT_STR(cJSON_GetObjectItem(g.r.last_item, "title")->valuestring, "New");
  ASSERT(util_is_uuid(cJSON_GetObjectItem(g.r.last_item, "id")->valuestring));
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 1);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 3);
  /* Rule 2: a refresh of all kinds follows. */
  ASSERT_EQ(sync_refreshes_started(g.s), refreshes + 1);
  fake_store_drain(g.fs);
  /* Every table asked once: what changed since its mark and its count
   * there, or whole where nothing is held; no stamp of every row. */
  fake_store_counts c1 = fake_store_counts_get(g.fs);
  ASSERT_EQ(c1.sinces - c0.sinces, 1); /* prompts: the only table with rows */
  ASSERT_EQ(c1.count_untils - c0.count_untils, 1);
  ASSERT_EQ(c1.fetch_alls - c0.fetch_alls, STORE_NTABLES - 1);
  ASSERT_EQ(c1.stamps - c0.stamps, 0);
  /* The refresh found nothing new: no extra push, nothing fetched. */
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 1);
  ASSERT_EQ(c1.fetches, 0);
  rig_close(&g);
}

TEST(refreshes_coalesce) {
  rig g;
  rig_open(&g, 1);
  int before = sync_refreshes_started(g.s);
  for (int i = 0; i < 6; i++) {
    cJSON *f = fields("{\"title\":\"t\"}");
    sync_create(g.s, (uint64_t)(10 + i), MODEL_BLOCK, f);
    cJSON_Delete(f);
  }
  /* The first insert completes and starts a refresh; the other five finish
   * while it is in flight and only mark one pending refresh. */
  fake_store_drain(g.fs);
  ASSERT_EQ(g.r.done, 6);
  ASSERT_EQ(sync_refreshes_started(g.s), before + 2);
  ASSERT_EQ(sync_count(g.s, MODEL_BLOCK), 6);
  rig_close(&g);
}

TEST(refresh_pushes_only_differences) {
  rig g;
  rig_open(&g, 1);
  /* Another program: changes ID1, deletes ID2, adds ID3. */
  cJSON *a = row(ID1, "first, renamed", "2026-02-01T00:00:00+00:00");
  cJSON *c = row(ID3, "third", "2026-02-01T00:00:00+00:00");
  fake_store_put(g.fs, STORE_PROMPTS, a);
  fake_store_put(g.fs, STORE_PROMPTS, c);
  fake_store_del(g.fs, STORE_PROMPTS, ID2);
  cJSON_Delete(a);
  cJSON_Delete(c);
  sync_refresh(g.s, 99);
  fake_store_drain(g.fs);
  ASSERT_EQ(g.r.last_ticket, 99);
  ASSERT(g.r.last_error == NULL);
  /* The two changed rows came with what changed since the mark; the
   * deleted one made the counts differ, and the stamps compared then found
   * nothing more to fetch. */
  ASSERT_EQ(fake_store_counts_get(g.fs).sinces, 1);
  ASSERT_EQ(fake_store_counts_get(g.fs).stamps, 1);
  ASSERT_EQ(fake_store_counts_get(g.fs).fetches, 0);
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 1);
  ASSERT_EQ(cJSON_GetArraySize(g.r.up), 2);
  ASSERT_EQ(cJSON_GetArraySize(g.r.del), 1);
  ASSERT_STR(cJSON_GetArrayItem(g.r.del, 0)->valuestring, ID2);
  cJSON *got = sync_held(g.s, MODEL_PROMPT, ID1);
  ASSERT_STR(cJSON_GetObjectItem(got, "title")->valuestring, "first, renamed");
  cJSON_Delete(got);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 2);
  rig_close(&g);
}

TEST(refresh_ticket_waits_for_a_refresh_started_after_it) {
  rig g;
  rig_open(&g, 1);
  sync_refresh(g.s, 1);
  sync_refresh(g.s, 2); /* in flight: this one must wait for the next */
  /* Finish the first refresh. */
  while (g.r.done == 0 && fake_store_step(g.fs))
    ;
  ASSERT_EQ(g.r.done, 1);
  ASSERT_EQ(g.r.last_ticket, 1);
  fake_store_drain(g.fs);
  ASSERT_EQ(g.r.done, 2);
  ASSERT_EQ(g.r.last_ticket, 2);
  rig_close(&g);
}

TEST(temporary_blocks_never_reach_the_store) {
  rig g;
  rig_open(&g, 0);
  fake_store_counts c0 = fake_store_counts_get(g.fs);
  cJSON *f = fields("{\"title\":\"scratch\",\"content\":\"tmp\",\"temporary\":true}");
  sync_create(g.s, 1, MODEL_BLOCK, f);
  cJSON_Delete(f);
  ASSERT_EQ(g.r.done, 1);
  ASSERT(g.r.last_error == NULL);
  ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(g.r.last_item, "temporary")));
  char id[64];
  snprintf(id, sizeof id, "%s", cJSON_GetObjectItem(g.r.last_item, "id")->valuestring);
  ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(g.r.up, 0), "temporary")));
  f = fields("{\"content\":\"edited\"}");
  sync_update(g.s, 2, MODEL_BLOCK, id, f);
  cJSON_Delete(f);
  ASSERT_EQ(g.r.done, 2);
  cJSON *got = query_get(&g, MODEL_BLOCK, id, NULL);
  ASSERT_STR(cJSON_GetObjectItem(got, "content")->valuestring, "edited");
  cJSON_Delete(got);
  fake_store_counts c1 = fake_store_counts_get(g.fs);
  ASSERT_EQ(c1.inserts + c1.updates, c0.inserts + c0.updates);
  ASSERT_EQ(fake_store_queued(g.fs), 0);
  ASSERT_EQ(fake_store_rows(g.fs, STORE_BLOCKS), 0);
  /* Saving it makes a real block with the same id. */
  rig_reset(&g);
  sync_save_temp(g.s, 3, id);
  ASSERT_EQ(fake_store_counts_get(g.fs).inserts, c0.inserts + 1);
  fake_store_drain(g.fs);
  ASSERT_EQ(g.r.last_ticket, 3);
  ASSERT(g.r.last_error == NULL);
  ASSERT_EQ(fake_store_rows(g.fs, STORE_BLOCKS), 1);
  ASSERT_EQ(sync_count(g.s, MODEL_BLOCK), 1);
  got = query_get(&g, MODEL_BLOCK, id, NULL);
  ASSERT(cJSON_GetObjectItem(got, "temporary") == NULL);
  ASSERT_STR(cJSON_GetObjectItem(got, "content")->valuestring, "edited");
  cJSON_Delete(got);
  /* A second temporary block deleted: the store is never asked. */
  f = fields("{\"title\":\"gone soon\",\"temporary\":true}");
  sync_create(g.s, 4, MODEL_BLOCK, f);
  cJSON_Delete(f);
  snprintf(id, sizeof id, "%s", cJSON_GetObjectItem(g.r.last_item, "id")->valuestring);
  int removes = fake_store_counts_get(g.fs).removes;
  sync_delete(g.s, 5, MODEL_BLOCK, id);
  ASSERT_EQ(g.r.last_ticket, 5);
  ASSERT(g.r.last_error == NULL);
  ASSERT_EQ(fake_store_counts_get(g.fs).removes, removes);
  ASSERT_EQ(sync_count(g.s, MODEL_BLOCK), 1);
  rig_close(&g);
}

/* The editor gives a new shelfd back the temporary blocks the old one held:
 * same id, content and times; never over a saved block. */
TEST(temporary_block_restored_with_its_id) {
  rig g;
  rig_open(&g, 0);
  #define TMPID "44444444-4444-4444-8444-444444444444"
  cJSON *f = fields("{\"title\":\"kept\",\"content\":\"from the editor\",\"temporary\":true}");
  sync_restore_temp(g.s, 1, TMPID, f, "2026-01-01T00:00:01.000000+00:00", NULL);
  ASSERT_EQ(g.r.done, 1);
  ASSERT(g.r.last_error == NULL);
  ASSERT_STR(cJSON_GetObjectItem(g.r.last_item, "id")->valuestring, TMPID);
  /* Lua gets it in microseconds (model_lua_stamp). */
  ASSERT(cJSON_GetObjectItem(g.r.last_item, "created_at")->valuedouble == 1767225601e6);
  ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(g.r.up, 0), "temporary")));
  cJSON *got = query_get(&g, MODEL_BLOCK, TMPID, NULL);
  ASSERT_STR(cJSON_GetObjectItem(got, "content")->valuestring, "from the editor");
  ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(got, "temporary")));
  cJSON_Delete(got);
  ASSERT_EQ(fake_store_rows(g.fs, STORE_BLOCKS), 0);
  /* Given twice (a second restart before an answer): still one block. */
  sync_restore_temp(g.s, 2, TMPID, f, NULL, NULL);
  ASSERT(g.r.last_error == NULL);
  ASSERT_EQ(sync_count(g.s, MODEL_BLOCK), 1);
  /* Saved meanwhile: the saved block wins. */
  sync_save_temp(g.s, 3, TMPID);
  fake_store_drain(g.fs);
  ASSERT(g.r.last_error == NULL);
  sync_restore_temp(g.s, 4, TMPID, f, NULL, NULL);
  ASSERT_EQ(g.r.last_ticket, 4);
  ASSERT(g.r.last_error && strstr(g.r.last_error, "a saved context block has the id"));
  got = query_get(&g, MODEL_BLOCK, TMPID, NULL);
  ASSERT(cJSON_GetObjectItem(got, "temporary") == NULL);
  cJSON_Delete(got);
  /* Not an id, not temporary. */
  sync_restore_temp(g.s, 5, "nope", f, NULL, NULL);
  ASSERT(g.r.last_error && strstr(g.r.last_error, "not an id"));
  cJSON_Delete(f);
  f = fields("{\"title\":\"real\"}");
  sync_restore_temp(g.s, 6, ID3, f, NULL, NULL);
  ASSERT(g.r.last_error && strstr(g.r.last_error, "only temporary blocks"));
  cJSON_Delete(f);
  ASSERT_EQ(sync_count(g.s, MODEL_BLOCK), 1);
  #undef TMPID
  rig_close(&g);
}

TEST(failed_action_keeps_state_and_says_why) {
  rig g;
  rig_open(&g, 1);
  fake_store_fail_next(g.fs, STORE_ECONFLICT, "a prompt with that id exists");
  cJSON *f = fields("{\"title\":\"changed\"}");
  sync_update(g.s, 5, MODEL_PROMPT, ID1, f);
  cJSON_Delete(f);
  fake_store_drain(g.fs);
  ASSERT_EQ(g.r.last_ticket, 5);
  ASSERT(g.r.last_error != NULL);
  ASSERT(strstr(g.r.last_error, "Saving prompt 'first prompt' failed") != NULL);
  ASSERT(strstr(g.r.last_error, "a prompt with that id exists") != NULL);
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 0);
  cJSON *got = sync_held(g.s, MODEL_PROMPT, ID1);
  ASSERT_STR(cJSON_GetObjectItem(got, "title")->valuestring, "first prompt");
  cJSON_Delete(got);
  ASSERT(cJSON_IsString(cJSON_GetObjectItem(g.r.status, "error")));
  rig_close(&g);
}

TEST(unavailable_store_is_retried_with_backoff) {
  rig g;
  rig_open(&g, 1);
  fake_store_fail_next(g.fs, STORE_EUNAVAILABLE, "connection refused");
  cJSON *f = fields("{\"title\":\"retry me\"}");
  sync_create(g.s, 8, MODEL_PROMPT, f);
  cJSON_Delete(f);
  fake_store_step(g.fs);
  ASSERT_EQ(g.r.done, 0); /* not answered: a retry is scheduled */
  ASSERT(strstr(cJSON_GetObjectItem(g.r.status, "error")->valuestring, "retrying") != NULL);
  ASSERT_EQ(fake_store_queued(g.fs), 0);
  /* The retry timer (5 ms base) sends it again. */
  while (fake_store_queued(g.fs) == 0)
    uv_run(&g.loop, UV_RUN_ONCE);
  fake_store_drain(g.fs);
  ASSERT_EQ(g.r.done, 1);
  ASSERT(g.r.last_error == NULL);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 3);
  ASSERT(cJSON_GetObjectItem(g.r.status, "error") == NULL);
  rig_close(&g);
}

TEST(retry_waits_as_long_as_the_server_asked) {
  rig g;
  rig_open(&g, 1);
  /* 429 with Retry-After: 7 s, far over the 5 ms backoff of this rig. */
  fake_store_fail_next(g.fs, STORE_EUNAVAILABLE, "Supabase answered HTTP 429: slow down");
  fake_store_retry_after_next(g.fs, 7000);
  cJSON *f = fields("{\"title\":\"patient\"}");
  sync_create(g.s, 11, MODEL_PROMPT, f);
  cJSON_Delete(f);
  fake_store_step(g.fs);
  ASSERT_EQ(g.r.done, 0);
  const char *e = cJSON_GetObjectItem(g.r.status, "error")->valuestring;
  ASSERT(strstr(e, "HTTP 429: slow down; retrying in 7 s") != NULL);
  /* A refresh asked to wait says so too. */
  fake_store_fail_next(g.fs, STORE_EUNAVAILABLE, "Supabase answered HTTP 503: busy");
  fake_store_retry_after_next(g.fs, 4000);
  sync_refresh(g.s, 12);
  fake_store_drain(g.fs);
  ASSERT_EQ(g.r.last_ticket, 12);
  ASSERT(g.r.last_error && strstr(g.r.last_error, "retrying in 4 s"));
  rig_close(&g);
}

TEST(retried_delete_that_had_landed_is_done) {
  rig g;
  rig_open(&g, 1);
  /* The first attempt's answer is lost, but the row went. */
  fake_store_fail_next(g.fs, STORE_EUNAVAILABLE, "timed out after 3 s");
  sync_delete(g.s, 9, MODEL_PROMPT, ID1);
  fake_store_step(g.fs);
  ASSERT_EQ(g.r.done, 0);
  fake_store_del(g.fs, STORE_PROMPTS, ID1);
  while (fake_store_queued(g.fs) == 0)
    uv_run(&g.loop, UV_RUN_ONCE);
  fake_store_drain(g.fs);
  /* The retry finds nothing: what the user asked for. */
  ASSERT_EQ(g.r.done, 1);
  ASSERT_EQ(g.r.last_ticket, 9);
  ASSERT(g.r.last_error == NULL);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 1);
  ASSERT(cJSON_GetObjectItem(g.r.status, "error") == NULL);
  /* A first attempt that finds nothing is still reported: someone else
   * deleted it. */
  fake_store_del(g.fs, STORE_PROMPTS, ID2);
  sync_delete(g.s, 10, MODEL_PROMPT, ID2);
  fake_store_drain(g.fs);
  ASSERT_EQ(g.r.last_ticket, 10);
  ASSERT(g.r.last_error && strstr(g.r.last_error, "Deleting prompt 'second prompt' failed"));
  rig_close(&g);
}

/* A create whose first attempt went unanswered may land at the server long
 * after: here after the item was deleted. The row it brings back is deleted
 * again and never reaches the mirror. */
TEST(create_that_lands_after_its_delete_is_deleted_again) {
  rig g;
  rig_open(&g, 0);
  fake_store_fail_next(g.fs, STORE_EUNAVAILABLE, "timed out after 4 s");
  cJSON *f = fields("{\"title\":\"late\"}");
  sync_create(g.s, 21, MODEL_PROMPT, f);
  cJSON_Delete(f);
  fake_store_step(g.fs);
  while (fake_store_queued(g.fs) == 0)
    uv_run(&g.loop, UV_RUN_ONCE);
  fake_store_drain(g.fs);
  ASSERT_EQ(g.r.last_ticket, 21);
  ASSERT(g.r.last_error == NULL);
  char id[64];
  snprintf(id, sizeof id, "%s", cJSON_GetObjectItem(g.r.last_item, "id")->valuestring);
  sync_delete(g.s, 22, MODEL_PROMPT, id);
  fake_store_drain(g.fs);
  ASSERT_EQ(g.r.last_ticket, 22);
  ASSERT(g.r.last_error == NULL);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 0);
  int removes = fake_store_counts_get(g.fs).removes;
  /* The first attempt lands now, and its row arrives as an event. */
  cJSON *ghost = row(id, "late", "2026-01-01T00:00:09+00:00");
  fake_store_put(g.fs, STORE_PROMPTS, ghost);
  store_event ev = {STORE_EV_UPSERT, STORE_PROMPTS, id, ghost, 0};
  fake_store_emit(g.fs, &ev);
  fake_store_emit(g.fs, &ev); /* twice: one delete is enough */
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 0);
  fake_store_drain(g.fs);
  ASSERT_EQ(fake_store_counts_get(g.fs).removes, removes + 1);
  ASSERT_EQ(fake_store_rows(g.fs, STORE_PROMPTS), 0);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 0);
  ASSERT_EQ(g.r.done, 2); /* shelfd's own delete answers no ticket */
  ASSERT(cJSON_GetObjectItem(g.r.status, "error") == NULL);
  /* A row of an id that never went unanswered is taken as it comes. */
  cJSON *other = row(ID3, "from elsewhere", "2026-01-01T00:00:10+00:00");
  store_event ev2 = {STORE_EV_UPSERT, STORE_PROMPTS, ID3, other, 0};
  fake_store_emit(g.fs, &ev2);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 1);
  cJSON_Delete(ghost);
  cJSON_Delete(other);
  rig_close(&g);
}

/* The content of prompt id as a get reads it from the store ("" if none). */
static const char *held_content(rig *g, const char *id) {
  static char content[128];
  content[0] = '\0';
  cJSON *item = query_get(g, MODEL_PROMPT, id, NULL);
  const cJSON *c = cJSON_GetObjectItem(item, "content");
  if (cJSON_IsString(c))
    snprintf(content, sizeof content, "%s", c->valuestring);
  cJSON_Delete(item);
  return content;
}

/* The editor chooses a new item's id once: a create that landed but whose
 * answer was lost, sent again (by the engine's retries, or by the user's :w
 * after they gave up), is stored once. */
TEST(a_create_sent_again_with_its_id_is_stored_once) {
  rig g;
  rig_open(&g, 1);
  /* Every attempt lands and none is answered: the user is told it failed. */
  fake_store_lose_answers(g.fs, 3);
  cJSON *f = fields("{\"id\":\"" ID3 "\",\"title\":\"once\",\"content\":\"v1\"}");
  sync_create(g.s, 30, MODEL_PROMPT, f);
  while (g.r.done == 0) {
    fake_store_drain(g.fs);
    if (g.r.done == 0)
      uv_run(&g.loop, UV_RUN_ONCE);
  }
  ASSERT_EQ(g.r.last_ticket, 30);
  ASSERT(g.r.last_error != NULL);
  ASSERT_EQ(fake_store_counts_get(g.fs).inserts, 3);
  ASSERT_EQ(fake_store_rows(g.fs, STORE_PROMPTS), 3); /* two rows, and this one once */
  /* The user's :w sends the same create again: answered with the row. */
  sync_create(g.s, 31, MODEL_PROMPT, f);
  cJSON_Delete(f);
  fake_store_drain(g.fs);
  ASSERT_EQ(g.r.last_ticket, 31);
  ASSERT(g.r.last_error == NULL);
  ASSERT_STR(cJSON_GetObjectItem(g.r.last_item, "id")->valuestring, ID3);
  ASSERT_EQ(fake_store_rows(g.fs, STORE_PROMPTS), 3);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 3);
  ASSERT_EQ(fake_store_counts_get(g.fs).updates, 0); /* nothing differed */
  ASSERT_STR(held_content(&g, ID3), "v1");
  /* Edited, then saved again before any answer came: still one row, and it
   * holds the newer text (the create finishes as an update). */
  f = fields("{\"id\":\"" ID3 "\",\"title\":\"once\","
             "\"content\":\"v2 typed later\"}");
  sync_create(g.s, 32, MODEL_PROMPT, f);
  cJSON_Delete(f);
  fake_store_drain(g.fs);
  ASSERT_EQ(g.r.last_ticket, 32);
  ASSERT(g.r.last_error == NULL);
  ASSERT_STR(cJSON_GetObjectItem(g.r.last_item, "content")->valuestring, "v2 typed later");
  ASSERT_EQ(fake_store_counts_get(g.fs).updates, 1);
  ASSERT_STR(held_content(&g, ID3), "v2 typed later");
  ASSERT_EQ(fake_store_rows(g.fs, STORE_PROMPTS), 3);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 3);
  /* An id in capitals is the same id. */
  f = fields("{\"id\":\"ABCDEF00-3333-4333-8333-333333333333\",\"title\":\"caps\"}");
  sync_create(g.s, 33, MODEL_PROMPT, f);
  cJSON_Delete(f);
  fake_store_drain(g.fs);
  ASSERT_STR(cJSON_GetObjectItem(g.r.last_item, "id")->valuestring,
             "abcdef00-3333-4333-8333-333333333333");
  rig_close(&g);
}

/* A temporary block created again with its id is the one already there. */
TEST(a_temporary_block_created_again_with_its_id_is_one) {
  rig g;
  rig_open(&g, 0);
  cJSON *f = fields("{\"id\":\"" ID3 "\",\"title\":\"scratch\",\"temporary\":true}");
  sync_create(g.s, 40, MODEL_BLOCK, f);
  sync_create(g.s, 41, MODEL_BLOCK, f);
  cJSON_Delete(f);
  ASSERT_EQ(g.r.done, 2);
  ASSERT(g.r.last_error == NULL);
  ASSERT_EQ(sync_count(g.s, MODEL_BLOCK), 1);
  ASSERT_EQ(fake_store_counts_get(g.fs).inserts, 0);
  rig_close(&g);
}

/* A batch of events (a bulk change elsewhere) reaches the editor as a few
 * pushes of at most 2000 items, not one push per event. */
TEST(a_batch_of_events_is_pushed_in_a_few_messages) {
  rig g;
  rig_open(&g, 1);
  for (int i = 0; i < 5000; i++) {
    char id[UTIL_UUID_LEN + 1];
    snprintf(id, sizeof id, "5e1f5e1f-0000-4000-8000-%012d", i);
    cJSON *r = row(id, "bulk", "2026-01-01T00:00:05+00:00");
    store_event ev = {STORE_EV_UPSERT, STORE_PROMPTS, id, r, i < 4999};
    fake_store_emit(g.fs, &ev);
    cJSON_Delete(r);
    if (i < 4999)
      ASSERT_EQ(g.r.changed[MODEL_PROMPT], 0); /* nothing until the batch ends */
  }
  store_event del = {STORE_EV_DELETE, STORE_PROMPTS, ID1, NULL, 0};
  fake_store_emit(g.fs, &del);
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 11);
  ASSERT_EQ(g.r.mores, 9); /* 10 of 500, the first nine say more follow; the delete */
  ASSERT_EQ(cJSON_GetArraySize(g.r.up), 5000);
  ASSERT_EQ(cJSON_GetArraySize(g.r.del), 1);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 5001);
  rig_close(&g);
}

/* With a window (the editor's flow control), pushes wait in order until the
 * editor takes one, the status after them waits too, and a change arriving
 * meanwhile goes after them. */
TEST(a_window_holds_pushes_until_the_editor_takes_them) {
  rig g;
  rig_open(&g, 1);
  sync_set_window(g.s, 2);
  int statuses = g.r.statuses;
  char last[UTIL_UUID_LEN + 1];
  for (int i = 0; i < 2000; i++) {
    snprintf(last, sizeof last, "5e1f5e1f-0000-4000-8000-%012d", i);
    cJSON *r = row(last, "bulk", "2026-01-01T00:00:05+00:00");
    store_event ev = {STORE_EV_UPSERT, STORE_PROMPTS, last, r, i < 1999};
    fake_store_emit(g.fs, &ev);
    cJSON_Delete(r);
  }
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 2); /* 4 pushes of 500; the window's 2 sent */
  ASSERT_EQ(g.r.statuses, statuses);       /* the status waits behind them */
  /* The last row goes again, while its upsert is held: the delete follows. */
  store_event del = {STORE_EV_DELETE, STORE_PROMPTS, last, NULL, 0};
  fake_store_emit(g.fs, &del);
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 2);
  ASSERT_EQ(cJSON_GetArraySize(g.r.del), 0);
  /* An action done meanwhile: its answer comes after its change. */
  cJSON *f = fields("{\"title\":\"mine\"}");
  sync_create(g.s, 77, MODEL_PROMPT, f);
  cJSON_Delete(f);
  ASSERT_EQ(fake_store_step(g.fs), 1); /* the insert */
  ASSERT_EQ(g.r.done, 0);
  sync_taken(g.s);
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 3);
  ASSERT_EQ(g.r.statuses, statuses);
  sync_taken(g.s);
  sync_taken(g.s);
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 5);
  ASSERT_EQ(g.r.done, 0);
  sync_taken(g.s);
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 6); /* the created prompt */
  ASSERT_EQ(g.r.done, 1);
  ASSERT_EQ(g.r.last_ticket, 77);
  ASSERT_EQ(g.r.mores, 5); /* all but the last say more follow */
  /* The held upsert of the row deleted meanwhile is left out: a push
   * carries rows as they are when it is sent. */
  ASSERT_EQ(cJSON_GetArraySize(g.r.up), 2000);
  ASSERT_EQ(cJSON_GetArraySize(g.r.del), 1);
  ASSERT_STR(cJSON_GetArrayItem(g.r.del, 0)->valuestring, last);
  ASSERT(g.r.statuses > statuses); /* sent once the last push was */
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 2002);
  /* More takes than pushes change nothing; without a window all go at once. */
  fake_store_drain(g.fs); /* the refresh after the create */
  sync_taken(g.s);
  sync_taken(g.s);
  sync_set_window(g.s, 0);
  int changed = g.r.changed[MODEL_PROMPT];
  store_event del2 = {STORE_EV_DELETE, STORE_PROMPTS, ID1, NULL, 0};
  fake_store_emit(g.fs, &del2);
  store_event del3 = {STORE_EV_DELETE, STORE_PROMPTS, ID2, NULL, 0};
  fake_store_emit(g.fs, &del3);
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], changed + 2);
  rig_close(&g);
}

TEST(invalid_fields_never_reach_the_store) {
  rig g;
  rig_open(&g, 0);
  const char *bad[] = {"{\"content\":\"no title\"}", "{\"title\":\"  \"}",
                       "{\"title\":\"x\",\"tags\":\"notalist\"}",
                       "{\"title\":\"x\",\"tags\":[1]}",
                       "{\"title\":\"x\",\"project_id\":\"not-a-uuid\"}",
                       "{\"title\":\"x\",\"id\":\"not-a-uuid\"}", "{\"title\":\"x\",\"id\":7}",
                       "{\"title\":\"x\",\"temporary\":\"yes\"}", "[1]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cJSON *f = fields(bad[i]);
    sync_create(g.s, 100 + i, MODEL_PROMPT, f);
    cJSON_Delete(f);
    ASSERT_EQ(g.r.last_ticket, 100 + i);
    ASSERT(g.r.last_error != NULL);
    ASSERT(strstr(g.r.last_error, "Creating prompt") != NULL);
  }
  cJSON *f = fields("{\"name\":\"folder\"}");
  sync_create(g.s, 200, MODEL_PROJECT, f);
  cJSON_Delete(f);
  ASSERT(strstr(g.r.last_error, "'type'") != NULL);
  ASSERT_EQ(fake_store_counts_get(g.fs).inserts, 0);
  rig_close(&g);
}

TEST(events_from_elsewhere_apply_as_deltas) {
  rig g;
  rig_open(&g, 1);
  cJSON *newer = row(ID1, "edited in the web app", "2026-03-01T00:00:00+00:00");
  store_event ev = {STORE_EV_UPSERT, STORE_PROMPTS, ID1, newer, 0};
  fake_store_emit(g.fs, &ev);
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 1);
  cJSON *got = sync_held(g.s, MODEL_PROMPT, ID1);
  ASSERT_STR(cJSON_GetObjectItem(got, "title")->valuestring, "edited in the web app");
  cJSON_Delete(got);
  /* The same record again changes nothing and pushes nothing. */
  fake_store_emit(g.fs, &ev);
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 1);
  /* A stamp from a client whose clock is behind still applies. */
  cJSON *older = row(ID1, "from a slow clock", "2026-01-15T00:00:00+00:00");
  ev.record = older;
  fake_store_emit(g.fs, &ev);
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 2);
  /* A delete carrying only the id. */
  store_event del = {STORE_EV_DELETE, STORE_PROMPTS, ID2, NULL, 0};
  fake_store_emit(g.fs, &del);
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 3);
  ASSERT_STR(cJSON_GetArrayItem(g.r.del, 0)->valuestring, ID2);
  /* An upsert without the record is fetched. */
  cJSON *c = row(ID3, "third", "2026-03-01T00:00:00+00:00");
  fake_store_put(g.fs, STORE_PROMPTS, c);
  store_event up = {STORE_EV_UPSERT, STORE_PROMPTS, ID3, NULL, 0};
  fake_store_emit(g.fs, &up);
  fake_store_drain(g.fs);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 2);
  got = sync_held(g.s, MODEL_PROMPT, ID3);
  ASSERT(got != NULL);
  cJSON_Delete(got);
  cJSON_Delete(newer);
  cJSON_Delete(older);
  cJSON_Delete(c);
  rig_close(&g);
}

/* Answer requests until the quiet full check is in flight (0 if it never
 * starts). */
static int step_until_checking(rig *g) {
  while (!status_bool(g, "checking"))
    if (!fake_store_step(g->fs))
      return 0;
  return 1;
}

TEST(resync_reads_what_changed_then_every_row_quietly) {
  rig g;
  rig_open(&g, 1);
  /* Changed by SQL without touching updated_at while realtime was away: a
   * stamp comparison cannot see it. */
  cJSON *a = row(ID1, "edited, same stamp", "2026-01-01T00:00:01+00:00");
  fake_store_put(g.fs, STORE_PROMPTS, a);
  cJSON_Delete(a);
  sync_refresh(g.s, 1);
  fake_store_drain(g.fs);
  cJSON *got = sync_held(g.s, MODEL_PROMPT, ID1);
  ASSERT_STR(cJSON_GetObjectItem(got, "title")->valuestring, "first prompt");
  cJSON_Delete(got);
  fake_store_del(g.fs, STORE_PROMPTS, ID2); /* its delete event was lost too */
  cJSON *b = row(ID3, "stamped by the web app", "2026-02-01T00:00:00+00:00");
  fake_store_put(g.fs, STORE_PROMPTS, b);
  cJSON_Delete(b);
  rig_reset(&g);
  int alls = fake_store_counts_get(g.fs).fetch_alls;
  int sinces = fake_store_counts_get(g.fs).sinces;
  int idle = g.r.idle;
  store_event ev = {STORE_EV_RESYNC, STORE_BLOCKS, NULL, NULL, 0};
  fake_store_emit(g.fs, &ev);
  /* First what changed since the mark (empty tables are read whole): the
   * stamped change and the delete are in before the full check starts,
   * which is not shown as loading. */
  ASSERT(step_until_checking(&g));
  ASSERT_EQ(fake_store_counts_get(g.fs).sinces, sinces + 1);
  ASSERT_EQ(fake_store_counts_get(g.fs).fetch_alls, alls + STORE_NTABLES - 1 + STORE_NTABLES);
  got = sync_held(g.s, MODEL_PROMPT, ID3);
  ASSERT(got != NULL);
  cJSON_Delete(got);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 2);
  ASSERT(cJSON_GetObjectItem(g.r.status, "loading") == NULL);
  got = sync_held(g.s, MODEL_PROMPT, ID1);
  ASSERT_STR(cJSON_GetObjectItem(got, "title")->valuestring, "first prompt");
  cJSON_Delete(got);
  ASSERT_EQ(g.r.idle, idle); /* never idle between the two */
  /* Someone asking for a refresh meanwhile waits for it: loading again. */
  sync_refresh(g.s, 7);
  ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(g.r.status, "loading"), "refresh")));
  fake_store_drain(g.fs);
  ASSERT_EQ(g.r.last_ticket, 7);
  ASSERT_EQ(g.r.idle, idle + 1); /* said once, at the end */
  ASSERT(!status_bool(&g, "checking"));
  got = sync_held(g.s, MODEL_PROMPT, ID1);
  ASSERT_STR(cJSON_GetObjectItem(got, "title")->valuestring, "edited, same stamp");
  cJSON_Delete(got);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 2);
  /* Only the differences reach the editor, not every row. */
  ASSERT_EQ(cJSON_GetArraySize(g.r.up), 2);
  ASSERT_EQ(cJSON_GetArraySize(g.r.del), 1);
  /* The next refresh is incremental again (in the one table with rows; an
   * empty one is always fetched whole). */
  sinces = fake_store_counts_get(g.fs).sinces;
  sync_refresh(g.s, 2);
  fake_store_drain(g.fs);
  ASSERT_EQ(fake_store_counts_get(g.fs).sinces, sinces + 1);
  rig_close(&g);
}

TEST(a_refresh_owed_during_the_first_load_waits_until_the_editor_took_it) {
  rig g;
  rig_start(&g, STORE_PROMPTS, "first prompt");
  sync_set_window(g.s, 1);
  /* The store asks for a full read while the first load is under way (a
   * start from the local copy: Realtime joined meanwhile). */
  store_event resync = {STORE_EV_RESYNC, STORE_BLOCKS, NULL, NULL, 0};
  fake_store_emit(g.fs, &resync);
  fake_store_drain(g.fs);
  ASSERT_EQ(fake_store_counts_get(g.fs).fetch_alls, STORE_NTABLES);
  ASSERT_EQ(g.r.changed[MODEL_PROMPT], 1); /* the load went to the editor */
  /* Owed, not started, and said: ready, but loading. */
  ASSERT(status_bool(&g, "ready"));
  ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(g.r.status, "loading"), "refresh")));
  /* The editor took the load's pushes: the refresh of what changed starts
   * (empty tables are read whole), then the full check. */
  int sinces = fake_store_counts_get(g.fs).sinces;
  sync_taken(g.s);
  ASSERT_EQ(fake_store_counts_get(g.fs).sinces, sinces + 1);
  ASSERT_EQ(fake_store_counts_get(g.fs).fetch_alls, 2 * STORE_NTABLES - 1);
  fake_store_drain(g.fs);
  ASSERT_EQ(fake_store_counts_get(g.fs).fetch_alls, 3 * STORE_NTABLES - 1);
  ASSERT(status_bool(&g, "ready"));
  ASSERT(cJSON_GetObjectItem(g.r.status, "loading") == NULL);
  /* Later refreshes owed meanwhile start at once, window or not. */
  sync_refresh(g.s, 1);
  sync_refresh(g.s, 2); /* pending behind the first */
  int started = sync_refreshes_started(g.s);
  int idle = g.r.idle;
  fake_store_drain(g.fs);
  ASSERT_EQ(sync_refreshes_started(g.s), started + 1);
  /* Nothing said idle between the two: one waiting for the end of a refresh
   * would not see the one after it. */
  ASSERT_EQ(g.r.idle, idle + 1);
  rig_close(&g);
}

static int has_id(const cJSON *list, const char *id) {
  const cJSON *v;
  cJSON_ArrayForEach(v, list) {
    const char *s = cJSON_IsString(v) ? v->valuestring : str_of(v, "id");
    if (strcmp(s, id) == 0)
      return 1;
  }
  return 0;
}

TEST(answers_to_a_refresh_begun_before_a_reset_are_dropped) {
  rig g;
  rig_start(&g, STORE_PROMPTS, "the first user's");
  uint64_t ticket = 41;
  sync_refresh(g.s, ticket); /* waits for a refresh after this one */
  /* Another user signs in while the first load is under way; the answers
   * to it are the first user's. */
  store_event reset = {STORE_EV_RESET, STORE_BLOCKS, NULL, NULL, 0};
  fake_store_emit(g.fs, &reset);
  for (int t = 0; t < STORE_NTABLES; t++)
    ASSERT(fake_store_step(g.fs));
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 0);
  ASSERT(!has_id(g.r.up, ID1));
  ASSERT(!status_bool(&g, "ready"));
  /* The load the reset asked for is the second user's. */
  fake_store_del(g.fs, STORE_PROMPTS, ID1);
  cJSON *b = row(ID2, "the second user's", "2026-01-01T00:00:02+00:00");
  fake_store_put(g.fs, STORE_PROMPTS, b);
  cJSON_Delete(b);
  fake_store_drain(g.fs);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 1);
  ASSERT(has_id(g.r.up, ID2));
  ASSERT(!has_id(g.r.up, ID1));
  ASSERT(status_bool(&g, "ready"));
  ASSERT(g.r.done >= 1 && g.r.last_ticket == ticket); /* answered by a refresh that counted */
  rig_close(&g);
}

TEST(reset_forgets_everything_and_reloads) {
  rig g;
  rig_open(&g, 1);
  cJSON *f = fields("{\"title\":\"tmp\",\"temporary\":true}");
  sync_create(g.s, 1, MODEL_BLOCK, f);
  cJSON_Delete(f);
  rig_reset(&g);
  int before = sync_refreshes_started(g.s);
  store_event ev = {STORE_EV_RESET, STORE_BLOCKS, NULL, NULL, 0};
  fake_store_emit(g.fs, &ev);
  ASSERT_EQ(cJSON_GetArraySize(g.r.del), 3); /* two prompts, one temporary */
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 0);
  ASSERT_EQ(sync_count(g.s, MODEL_BLOCK), 0);
  ASSERT_EQ(sync_refreshes_started(g.s), before + 1);
  ASSERT(!status_bool(&g, "ready"));
  fake_store_drain(g.fs);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 2); /* loaded again */
  ASSERT(status_bool(&g, "ready"));
  rig_close(&g);
}

TEST(login_without_accounts_says_so) {
  rig g;
  rig_open(&g, 0);
  sync_login(g.s, 3, "a@b.c", "pw");
  ASSERT_EQ(g.r.last_ticket, 3);
  ASSERT(strstr(g.r.last_error, "has no accounts") != NULL);
  rig_close(&g);
}

TEST(partial_event_record_is_fetched_not_applied) {
  rig g;
  rig_open(&g, 1);
  /* An UPDATE event without the (unchanged, large) content column. */
  cJSON *partial = cJSON_Parse("{\"id\":\"" ID1 "\",\"title\":\"new title\","
                               "\"tags\":[],\"updated_at\":\"2026-05-01T00:00:00+00:00\"}");
  cJSON *full = row(ID1, "new title", "2026-05-01T00:00:00+00:00");
  fake_store_put(g.fs, STORE_PROMPTS, full);
  store_event ev = {STORE_EV_UPSERT, STORE_PROMPTS, ID1, partial, 0};
  int fetches = fake_store_counts_get(g.fs).fetches;
  fake_store_emit(g.fs, &ev);
  ASSERT_EQ(fake_store_counts_get(g.fs).fetches, fetches + 1);
  fake_store_drain(g.fs);
  cJSON *got = sync_held(g.s, MODEL_PROMPT, ID1);
  ASSERT_STR(cJSON_GetObjectItem(got, "title")->valuestring, "new title");
  ASSERT_EQ((int)cJSON_GetObjectItem(got, "size")->valuedouble, (int)strlen("some content"));
  cJSON_Delete(got);
  cJSON_Delete(partial);
  cJSON_Delete(full);
  rig_close(&g);
}

/* The engine holds no content: what it keeps of a row is the summary the
 * editor gets (with the content's size), and a get reads the row from the
 * store, so content changed there (even with the same stamp) is what it
 * answers. */
TEST(content_is_read_from_the_store_not_held) {
  rig g;
  rig_open(&g, 1);
  cJSON *held = sync_held(g.s, MODEL_PROMPT, ID1);
  ASSERT(held != NULL);
  ASSERT(cJSON_GetObjectItem(held, "content") == NULL);
  ASSERT_EQ((int)cJSON_GetObjectItem(held, "size")->valuedouble, (int)strlen("some content"));
  cJSON_Delete(held);
  cJSON *changed = row(ID1, "first prompt", "2026-01-01T00:00:01+00:00");
  cJSON_ReplaceItemInObject(changed, "content", cJSON_CreateString("changed in the store"));
  fake_store_put(g.fs, STORE_PROMPTS, changed);
  cJSON_Delete(changed);
  int fetches = fake_store_counts_get(g.fs).fetches;
  char *err = NULL;
  cJSON *item = query_get(&g, MODEL_PROMPT, ID1, &err);
  ASSERT(err == NULL);
  ASSERT_EQ(fake_store_counts_get(g.fs).fetches, fetches + 1);
  ASSERT_STR(str_of(item, "content"), "changed in the store");
  ASSERT_STR(str_of(item, "kind"), "prompt");
  cJSON_Delete(item);
  rig_close(&g);
}

TEST(get_of_a_deleted_item_or_a_failing_store_says_so) {
  rig g;
  rig_open(&g, 1);
  /* Deleted elsewhere, and the engine has not heard yet. */
  fake_store_del(g.fs, STORE_PROMPTS, ID2);
  char *err = NULL;
  cJSON *item = query_get(&g, MODEL_PROMPT, ID2, &err);
  ASSERT(item == NULL);
  ASSERT(err && strstr(err, "there is no prompt with id " ID2));
  free(err);
  /* The backend down. */
  fake_store_fail_next(g.fs, STORE_EUNAVAILABLE, "connection refused");
  item = query_get(&g, MODEL_PROMPT, ID1, &err);
  ASSERT(item == NULL);
  ASSERT(err && strstr(err, "connection refused") && strstr(err, "Loading prompt"));
  free(err);
  /* A folder the engine does not hold: its table is unknown. */
  item = query_get(&g, MODEL_PROJECT, ID3, &err);
  ASSERT(item == NULL && err && strstr(err, "no folder"));
  free(err);
  rig_close(&g);
}

TEST(a_cancelled_get_is_not_answered) {
  rig g;
  rig_open(&g, 1);
  answer_rec a = {0};
  sync_query_get(g.s, (uint64_t)(uintptr_t)&a, MODEL_PROMPT, ID1);
  ASSERT_EQ(a.answered, 0); /* the store has not answered yet */
  sync_cancel(g.s, (uint64_t)(uintptr_t)&a);
  fake_store_drain(g.fs);
  ASSERT_EQ(a.answered, 0);
  /* Shutting down with a get in the store answers it with an error. */
  answer_rec b = {0};
  sync_query_get(g.s, (uint64_t)(uintptr_t)&b, MODEL_PROMPT, ID1);
  rig_close(&g);
  ASSERT_EQ(b.answered, 1);
  ASSERT(b.error && strstr(b.error, "shutting down"));
  free(b.error);
}

/* Content is not held, so the engine's search sees titles and tags (the
 * store's search covers content). */
TEST(search_looks_at_title_and_tags) {
  rig g;
  rig_open(&g, 1);
  cJSON *f = fields("{\"title\":\"Deploy checklist\",\"content\":\"kubectl apply\","
                    "\"tags\":[\"ops\"]}");
  sync_create(g.s, 1, MODEL_BLOCK, f);
  cJSON_Delete(f);
  fake_store_drain(g.fs);
  /* The fake store cannot search: the engine answers from what it holds. */
  cJSON *hits = query_search(&g, "CHECKLIST", -1);
  ASSERT_EQ(cJSON_GetArraySize(hits), 1);
  cJSON_Delete(hits);
  hits = query_search(&g, "ops", MODEL_BLOCK);
  ASSERT_EQ(cJSON_GetArraySize(hits), 1);
  cJSON_Delete(hits);
  hits = query_search(&g, "prompt", MODEL_PROMPT);
  ASSERT_EQ(cJSON_GetArraySize(hits), 2);
  cJSON_Delete(hits);
  hits = query_search(&g, "prompt", MODEL_BLOCK);
  ASSERT_EQ(cJSON_GetArraySize(hits), 0);
  cJSON_Delete(hits);
  hits = query_search(&g, "SeCoNd PrOmPt", -1);
  ASSERT_EQ(cJSON_GetArraySize(hits), 1);
  cJSON_Delete(hits);
  /* A field's name and an id are in every summary's bytes, and no text. */
  hits = query_search(&g, "TITLE", -1);
  ASSERT_EQ(cJSON_GetArraySize(hits), 0);
  cJSON_Delete(hits);
  hits = query_search(&g, ID1 + 9, -1);
  ASSERT_EQ(cJSON_GetArraySize(hits), 0);
  cJSON_Delete(hits);
  rig_close(&g);
}

TEST(close_answers_pending_actions) {
  rig g;
  rig_open(&g, 1);
  cJSON *f = fields("{\"title\":\"in flight\"}");
  sync_create(g.s, 42, MODEL_PROMPT, f);
  cJSON_Delete(f);
  ASSERT_EQ(g.r.done, 0);
  int sync_closed = 0, store_closed = 0;
  sync_close(g.s, on_sync_closed, &sync_closed);
  store_close(fake_store_base(g.fs), on_store_closed, &store_closed);
  uv_run(&g.loop, UV_RUN_DEFAULT);
  ASSERT(sync_closed && store_closed);
  ASSERT_EQ(g.r.done, 1);
  ASSERT_EQ(g.r.last_ticket, 42);
  ASSERT(g.r.last_error != NULL);
  ASSERT_EQ(uv_loop_close(&g.loop), 0);
  cJSON_Delete(g.r.up);
  cJSON_Delete(g.r.del);
  cJSON_Delete(g.r.last_item);
  cJSON_Delete(g.r.status);
  free(g.r.last_error);
}

/* Reads answer with what the database held when they were sent. An event
 * applied while one is in flight is newer than its answer; the tests leave
 * the event's change out of the fake database to play that answer. */
TEST(answer_older_than_an_event_does_not_overwrite_it) {
  rig g;
  rig_open(&g, 1);
  cJSON *a = row(ID1, "renamed in the database", "2026-02-01T00:00:00+00:00");
  fake_store_put(g.fs, STORE_PROMPTS, a);
  cJSON_Delete(a);
  sync_refresh(g.s, 1);
  for (int i = 0; i < STORE_NTABLES; i++)
    ASSERT(fake_store_step(g.fs));
  ASSERT_EQ(fake_store_queued(g.fs), 1); /* the fetch of ID1 */
  cJSON *newer = row(ID1, "from the event", "2026-03-01T00:00:00+00:00");
  store_event ev = {STORE_EV_UPSERT, STORE_PROMPTS, ID1, newer, 0};
  fake_store_emit(g.fs, &ev);
  fake_store_drain(g.fs);
  ASSERT_EQ(g.r.last_ticket, 1);
  cJSON *got = sync_held(g.s, MODEL_PROMPT, ID1);
  ASSERT_STR(cJSON_GetObjectItem(got, "title")->valuestring, "from the event");
  cJSON_Delete(got);
  /* Once nothing is in flight, a read applies again. */
  fake_store_put(g.fs, STORE_PROMPTS, newer);
  cJSON *later = row(ID1, "renamed again", "2026-04-01T00:00:00+00:00");
  fake_store_put(g.fs, STORE_PROMPTS, later);
  sync_refresh(g.s, 2);
  fake_store_drain(g.fs);
  got = sync_held(g.s, MODEL_PROMPT, ID1);
  ASSERT_STR(cJSON_GetObjectItem(got, "title")->valuestring, "renamed again");
  cJSON_Delete(got);
  cJSON_Delete(newer);
  cJSON_Delete(later);
  rig_close(&g);
}

TEST(row_deleted_during_a_refresh_is_not_brought_back) {
  rig g;
  rig_open(&g, 1);
  store_event resync = {STORE_EV_RESYNC, STORE_BLOCKS, NULL, NULL, 0};
  fake_store_emit(g.fs, &resync);
  ASSERT(step_until_checking(&g)); /* a full fetch of every table, in flight */
  store_event del = {STORE_EV_DELETE, STORE_PROMPTS, ID2, NULL, 0};
  fake_store_emit(g.fs, &del);
  fake_store_drain(g.fs);
  cJSON *got = sync_held(g.s, MODEL_PROMPT, ID2);
  ASSERT(got == NULL);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 1);
  rig_close(&g);
}

TEST(row_created_during_a_refresh_is_not_taken_for_gone) {
  rig g;
  rig_open(&g, 1);
  sync_refresh(g.s, 1); /* compares stamps: the answer will not have ID3 */
  cJSON *c = row(ID3, "created in the web app", "2026-03-01T00:00:00+00:00");
  store_event ev = {STORE_EV_UPSERT, STORE_PROMPTS, ID3, c, 0};
  fake_store_emit(g.fs, &ev);
  fake_store_drain(g.fs);
  ASSERT_EQ(sync_count(g.s, MODEL_PROMPT), 3);
  cJSON *got = sync_held(g.s, MODEL_PROMPT, ID3);
  ASSERT(got != NULL);
  cJSON_Delete(got);
  ASSERT_EQ(cJSON_GetArraySize(g.r.del), 0);
  cJSON_Delete(c);
  rig_close(&g);
}

static const test_case test_cases[] = {
    TEST_ENTRY(first_load_fetches_everything_once),
    TEST_ENTRY(a_load_in_parts_is_shown_as_it_is_read),
    TEST_ENTRY(create_changes_nothing_until_confirmed_then_refreshes),
    TEST_ENTRY(refreshes_coalesce),
    TEST_ENTRY(refresh_pushes_only_differences),
    TEST_ENTRY(refresh_ticket_waits_for_a_refresh_started_after_it),
    TEST_ENTRY(temporary_blocks_never_reach_the_store),
    TEST_ENTRY(temporary_block_restored_with_its_id),
    TEST_ENTRY(failed_action_keeps_state_and_says_why),
    TEST_ENTRY(unavailable_store_is_retried_with_backoff),
    TEST_ENTRY(retry_waits_as_long_as_the_server_asked),
    TEST_ENTRY(retried_delete_that_had_landed_is_done),
    TEST_ENTRY(create_that_lands_after_its_delete_is_deleted_again),
    TEST_ENTRY(a_create_sent_again_with_its_id_is_stored_once),
    TEST_ENTRY(a_temporary_block_created_again_with_its_id_is_one),
    TEST_ENTRY(a_batch_of_events_is_pushed_in_a_few_messages),
    TEST_ENTRY(a_window_holds_pushes_until_the_editor_takes_them),
    TEST_ENTRY(invalid_fields_never_reach_the_store),
    TEST_ENTRY(events_from_elsewhere_apply_as_deltas),
    TEST_ENTRY(resync_reads_what_changed_then_every_row_quietly),
    TEST_ENTRY(a_refresh_owed_during_the_first_load_waits_until_the_editor_took_it),
    TEST_ENTRY(answers_to_a_refresh_begun_before_a_reset_are_dropped),
    TEST_ENTRY(reset_forgets_everything_and_reloads),
    TEST_ENTRY(login_without_accounts_says_so),
    TEST_ENTRY(partial_event_record_is_fetched_not_applied),
    TEST_ENTRY(content_is_read_from_the_store_not_held),
    TEST_ENTRY(packed_summaries_are_the_rows_summaries),
    TEST_ENTRY(get_of_a_deleted_item_or_a_failing_store_says_so),
    TEST_ENTRY(a_cancelled_get_is_not_answered),
    TEST_ENTRY(search_looks_at_title_and_tags),
    TEST_ENTRY(close_answers_pending_actions),
    TEST_ENTRY(answer_older_than_an_event_does_not_overwrite_it),
    TEST_ENTRY(row_deleted_during_a_refresh_is_not_brought_back),
    TEST_ENTRY(row_created_during_a_refresh_is_not_taken_for_gone),
};

TEST_MAIN()
