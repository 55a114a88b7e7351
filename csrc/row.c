/* row.c - the compact rows the sync engine holds (row.h): a row's stamp
 * and its summary packed as msgpack, built once from a record, compared,
 * and written out whole for the editor; and the list of ids owed to it. */
#include "row.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "mpjson.h"
#include "util.h"

void row_ids_add(row_ids *b, char where, const char *id) {
  size_t l = strlen(id) + 2;
  if (b->len + l > b->cap) {
    b->cap = b->cap ? b->cap * 2 : 4096;
    while (b->cap < b->len + l)
      b->cap *= 2;
    b->buf = util_realloc(b->buf, b->cap);
  }
  b->buf[b->len] = where;
  memcpy(b->buf + b->len + 1, id, l - 1);
  b->len += l;
}

/* The entry for row rec of table t. */
row_entry *row_new(store_table t, const cJSON *rec) {
  cJSON *sum = model_summary(t, rec, 0);
  /* Kept once, elsewhere: the id is the map's key, updated_at is before the
   * summary, and kind and type follow from the table (row_pack). */
  const char *elsewhere[] = {"id", "updated_at", "kind", "type", NULL};
  for (int i = 0; elsewhere[i]; i++)
    cJSON_DeleteItemFromObjectCaseSensitive(sum, elsewhere[i]);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  uint32_t n = 0;
  const cJSON *f;
  cJSON_ArrayForEach(f, sum) {
    mpjson_pack_str(&pk, f->string);
    mpjson_pack(&pk, f);
    n++;
  }
  cJSON_Delete(sum);
  const char *stamp = mpjson_get_str(rec, "updated_at");
  if (!stamp)
    stamp = "";
  size_t ls = strlen(stamp);
  row_entry *e = util_malloc(sizeof *e + ls + 1 + sb.size);
  e->mark = 0;
  memcpy(e->text, stamp, ls + 1);
  e->summary_at = (uint32_t)(ls + 1);
  e->summary_len = (uint32_t)sb.size;
  e->nfields = n;
  if (sb.size)
    memcpy(e->text + ls + 1, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  return e;
}

const char *row_stamp(const row_entry *e) { return e->text; }

int row_same(const row_entry *a, const row_entry *b) {
  return a->nfields == b->nfields && a->summary_len == b->summary_len &&
         strcmp(row_stamp(a), row_stamp(b)) == 0 &&
         memcmp(a->text + a->summary_at, b->text + b->summary_at, a->summary_len) == 0;
}

/* Pack the whole summary of held row `id` of table t: the map the editor
 * gets, with the fields kept elsewhere put back. */
void row_pack(msgpack_packer *pk, store_table t, const char *id,
                            const row_entry *e) {
  int folder = t == STORE_PROMPT_PROJECTS || t == STORE_DATASET_PROJECTS;
  int stamp = *row_stamp(e) != '\0';
  msgpack_pack_map(pk, e->nfields + 2 + (size_t)stamp + (size_t)folder);
  mpjson_pack_str(pk, "id");
  mpjson_pack_str(pk, id);
  if (stamp) {
    long long us;
    mpjson_pack_str(pk, "updated_at");
    if (model_lua_stamp(row_stamp(e), &us) == 0)
      msgpack_pack_int64(pk, us);
    else
      mpjson_pack_str(pk, row_stamp(e));
  }
  mpjson_pack_str(pk, "kind");
  mpjson_pack_str(pk, model_kind_name(model_kind_of(t)));
  if (folder) {
    mpjson_pack_str(pk, "type");
    mpjson_pack_str(pk, t == STORE_PROMPT_PROJECTS ? "prompts" : "datasets");
  }
  if (e->summary_len)
    pk->callback(pk->data, e->text + e->summary_at, e->summary_len);
}

/* The summary of held row `id` as cJSON (the caller's; NULL if it does not
 * convert, which a summary packed here always does). */
cJSON *row_json(store_table t, const char *id, const row_entry *e) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  row_pack(&pk, t, id, e);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  cJSON *out = NULL;
  const char *err = NULL;
  if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS)
    out = mpjson_from_msgpack(&u.data, &err);
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&sb);
  return out;
}

int row_may_hold(const row_entry *e, const char *q) {
  /* msgpack keeps strings as their bytes: a field that holds q has q's bytes
   * in the summary (which ends with no NUL: no str* function here). */
  const unsigned char *s = (const unsigned char *)e->text + e->summary_at;
  const unsigned char *uq = (const unsigned char *)q;
  size_t n = e->summary_len, m = strlen(q);
  for (size_t i = 0; i + m <= n; i++) {
    size_t k = 0;
    while (k < m && tolower(s[i + k]) == tolower(uq[k]))
      k++;
    if (k == m)
      return 1;
  }
  return 0;
}

/* The title of held row `id`, for messages (caller frees). */
char *row_title(store_table t, const char *id, const row_entry *e) {
  cJSON *sum = row_json(t, id, e);
  char *title = util_strdup(model_title(sum));
  cJSON_Delete(sum);
  return title;
}


int row_ids_next(const row_ids *b, size_t *at, char *where, const char **id) {
  if (*at >= b->len)
    return 0;
  *where = b->buf[*at];
  *id = b->buf + *at + 1;
  *at += strlen(*id) + 2;
  return 1;
}
