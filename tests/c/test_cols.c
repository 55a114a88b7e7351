/* Summaries as columns (cols.h): rows of different fields make one array
 * per field, nil where a row has none; what cannot make columns says so and
 * packs nothing. */
#include <cjson/cJSON.h>
#include <string.h>

#include "cols.h"
#include "mpjson.h"
#include "test.h"

/* Add the rows of JSON array `json` to c. */
static void add_rows(cols_builder *c, const char *json) {
  cJSON *rows = cJSON_Parse(json);
  ASSERT(rows != NULL);
  msgpack_packer pk;
  cols_row(c, &pk);
  const cJSON *r;
  cJSON_ArrayForEach(r, rows) {
    mpjson_pack(&pk, r);
    cols_row_done(c);
  }
  cJSON_Delete(rows);
}

/* cols_pack's output as cJSON (NULL if it refused; *err then set). */
static cJSON *pack(const cols_builder *c, const char **err) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  cJSON *out = NULL;
  if (cols_pack(c, &pk, err) == 0) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    ASSERT(msgpack_unpack_next(&u, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS);
    ASSERT_EQ(off, sb.size); /* one value, nothing after it */
    const char *e = NULL;
    out = mpjson_from_msgpack(&u.data, &e);
    ASSERT(out != NULL);
    msgpack_unpacked_destroy(&u);
  } else {
    ASSERT_EQ(sb.size, 0);
  }
  msgpack_sbuffer_destroy(&sb);
  return out;
}

static void expect(const cJSON *got, const char *want_json) {
  cJSON *want = cJSON_Parse(want_json);
  ASSERT(want != NULL);
  char *g = cJSON_PrintUnformatted(got);
  if (!cJSON_Compare(want, got, 1))
    fprintf(stderr, "got %s\nwant %s\n", g, want_json);
  ASSERT(cJSON_Compare(want, got, 1));
  free(g);
  cJSON_Delete(want);
}

TEST(rows_of_different_fields_make_one_array_each) {
  cols_builder c;
  cols_init(&c);
  add_rows(&c, "[{\"id\":\"a\",\"title\":\"A\",\"list\":[\"x\",\"y\"],\"size\":3},"
               "{\"id\":\"b\",\"project_id\":\"f\",\"temporary\":true},"
               "{\"title\":\"C\",\"id\":\"c\",\"size\":0,\"is\":false}]");
  const char *err = NULL;
  cJSON *got = pack(&c, &err);
  expect(got, "{\"n\":3,\"id\":[\"a\",\"b\",\"c\"],\"title\":[\"A\",null,\"C\"],"
              "\"list\":[[\"x\",\"y\"],null,null],\"size\":[3,null,0],"
              "\"project_id\":[null,\"f\",null],\"temporary\":[null,true,null],"
              "\"is\":[null,null,false]}");
  cJSON_Delete(got);
  cols_free(&c);
}

TEST(no_rows_make_an_empty_map_with_the_count) {
  cols_builder c;
  cols_init(&c);
  const char *err = NULL;
  cJSON *got = pack(&c, &err);
  expect(got, "{\"n\":0}");
  cJSON_Delete(got);
  cols_free(&c);
}

TEST(what_cannot_make_columns_is_refused_whole) {
  const char *bad[] = {
      "[{\"id\":\"a\"},[1,2]]",            /* a row not a map */
      "[{\"id\":\"a\",\"n\":1}]",          /* a field with the count's name */
      "[{\"id\":\"a\",\"packed_tags\":1}]", /* ... or the flag's */
      "[{\"id\":\"a\",\"idb\":1}]",         /* ... or one of a UUID's parts */
      "[{\"id\":\"a\",\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}]", /* 65 bytes */
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    cols_builder c;
    cols_init(&c);
    add_rows(&c, bad[i]);
    const char *err = NULL;
    ASSERT(pack(&c, &err) == NULL);
    ASSERT(err != NULL && strncmp(err, "cols: ", 6) == 0);
    cols_free(&c);
  }
  /* More fields than COLS_MAX_FIELDS, over several rows. */
  cols_builder c;
  cols_init(&c);
  msgpack_packer pk;
  cols_row(&c, &pk);
  for (int r = 0; r < COLS_MAX_FIELDS + 1; r++) {
    char name[16];
    snprintf(name, sizeof name, "f%d", r);
    msgpack_pack_map(&pk, 1);
    mpjson_pack_str(&pk, name);
    msgpack_pack_int(&pk, r);
    cols_row_done(&c);
  }
  const char *err = NULL;
  ASSERT(pack(&c, &err) == NULL);
  ASSERT(err != NULL);
  cols_free(&c);
  /* A key not a string. */
  cols_init(&c);
  cols_row(&c, &pk);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_int(&pk, 7);
  msgpack_pack_int(&pk, 7);
  cols_row_done(&c);
  err = NULL;
  ASSERT(pack(&c, &err) == NULL);
  ASSERT(err != NULL);
  cols_free(&c);
}

/* A canonical UUID id goes as the three numbers the mirror keeps (digits
 * 1-12, 13-24, 25-32); any other id as it is, in the id column. */
TEST(uuid_ids_go_as_their_parts) {
  cols_builder c;
  cols_init(&c);
  add_rows(&c, "[{\"id\":\"0123abcd-ef01-4234-9567-89abcdef0123\",\"title\":\"U\"},"
               "{\"id\":\"not-a-uuid\",\"title\":\"S\"},"
               "{\"id\":\"0123ABCD-EF01-4234-9567-89ABCDEF0123\"},"
               "{\"id\":\"0123abcd-ef01-4234-9567-89abcdef012g\"},"
               "{\"id\":\"ffffffff-ffff-ffff-ffff-ffffffffffff\"},"
               "{\"title\":\"none\"}]");
  const char *err = NULL;
  cJSON *got = pack(&c, &err);
  expect(got, "{\"n\":6,\"ida\":[1252717883137,null,null,null,281474976710655,null],"
              "\"idb\":[72793612323243,null,null,null,281474976710655,null],"
              "\"idc\":[3454992675,null,null,null,4294967295,null],"
              "\"id\":[null,\"not-a-uuid\",\"0123ABCD-EF01-4234-9567-89ABCDEF0123\","
              "\"0123abcd-ef01-4234-9567-89abcdef012g\",null,null],"
              "\"title\":[\"U\",\"S\",null,null,null,\"none\"]}");
  cJSON_Delete(got);
  cols_free(&c);
  /* Every id one: no id column. */
  cols_init(&c);
  add_rows(&c, "[{\"id\":\"00000000-0000-4000-8000-000000000001\"}]");
  got = pack(&c, &err);
  expect(got, "{\"n\":1,\"ida\":[0],\"idb\":[70370891661312],\"idc\":[1]}");
  cJSON_Delete(got);
  cols_free(&c);
}

TEST(a_name_of_the_longest_length_is_kept) {
  cols_builder c;
  cols_init(&c);
  add_rows(&c, "[{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1},{\"b\":2}]");
  const char *err = NULL;
  cJSON *got = pack(&c, &err);
  expect(got, "{\"n\":2,\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":[1,null],\"b\":[null,2]}");
  cJSON_Delete(got);
  cols_free(&c);
}

/* The packed column's values, raw (cJSON strings end at a NUL). */
TEST(tags_go_as_one_string_each_and_the_push_says_so) {
  cols_builder c;
  cols_init(&c);
  msgpack_packer pk;
  cols_row(&c, &pk);
  /* Rows: ["x","y"]; []; none; "\0odd" (bare, starting with a NUL);
   * ["a",1]; ["a",""]; ["a\0b"]; "plain". */
  static const char odd[] = {'\0', 'o', 'd', 'd'};
  static const char nul_inside[] = {'a', '\0', 'b'};
  for (int r = 0; r < 8; r++) {
    msgpack_pack_map(&pk, r == 2 ? 1 : 2);
    mpjson_pack_str(&pk, "id");
    msgpack_pack_int(&pk, r);
    if (r == 2) {
      cols_row_done(&c);
      continue;
    }
    mpjson_pack_str(&pk, "tags");
    switch (r) {
    case 0:
      msgpack_pack_array(&pk, 2);
      mpjson_pack_str(&pk, "x");
      mpjson_pack_str(&pk, "y");
      break;
    case 1:
      msgpack_pack_array(&pk, 0);
      break;
    case 3:
      msgpack_pack_str_with_body(&pk, odd, sizeof odd);
      break;
    case 4:
      msgpack_pack_array(&pk, 2);
      mpjson_pack_str(&pk, "a");
      msgpack_pack_int(&pk, 1);
      break;
    case 5:
      msgpack_pack_array(&pk, 2);
      mpjson_pack_str(&pk, "a");
      mpjson_pack_str(&pk, "");
      break;
    case 6:
      msgpack_pack_array(&pk, 1);
      msgpack_pack_str_with_body(&pk, nul_inside, sizeof nul_inside);
      break;
    default:
      mpjson_pack_str(&pk, "plain");
    }
    cols_row_done(&c);
  }
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer out;
  msgpack_packer_init(&out, &sb, msgpack_sbuffer_write);
  const char *err = NULL;
  ASSERT_EQ(cols_pack(&c, &out, &err), 0);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  ASSERT(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
  const msgpack_object_map *m = &u.data.via.map;
  const msgpack_object *tags = NULL;
  int flag = 0;
  for (uint32_t k = 0; k < m->size; k++) {
    const msgpack_object_str *key = &m->ptr[k].key.via.str;
    if (key->size == 4 && memcmp(key->ptr, "tags", 4) == 0)
      tags = &m->ptr[k].val;
    if (key->size == 11 && memcmp(key->ptr, "packed_tags", 11) == 0)
      flag = m->ptr[k].val.type == MSGPACK_OBJECT_BOOLEAN && m->ptr[k].val.via.boolean;
  }
  ASSERT(flag);
  ASSERT(tags != NULL && tags->type == MSGPACK_OBJECT_ARRAY && tags->via.array.size == 8);
  const msgpack_object *v = tags->via.array.ptr;
  ASSERT(v[0].type == MSGPACK_OBJECT_STR && v[0].via.str.size == 4 && memcmp(v[0].via.str.ptr, "\0x\0y", 4) == 0);
  ASSERT(v[1].type == MSGPACK_OBJECT_STR && v[1].via.str.size == 1 && v[1].via.str.ptr[0] == '\0');
  ASSERT(v[2].type == MSGPACK_OBJECT_NIL);
  /* The bare string that starts with a NUL: the list of it. */
  ASSERT(v[3].type == MSGPACK_OBJECT_ARRAY && v[3].via.array.size == 1);
  ASSERT(v[3].via.array.ptr[0].via.str.size == 4 && memcmp(v[3].via.array.ptr[0].via.str.ptr, odd, 4) == 0);
  /* No list of tags: as sent. */
  ASSERT(v[4].type == MSGPACK_OBJECT_ARRAY && v[4].via.array.size == 2);
  ASSERT(v[5].type == MSGPACK_OBJECT_ARRAY && v[5].via.array.size == 2);
  ASSERT(v[6].type == MSGPACK_OBJECT_ARRAY && v[6].via.array.size == 1);
  ASSERT(v[7].type == MSGPACK_OBJECT_STR && v[7].via.str.size == 5);
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&sb);
  cols_free(&c);
}

static const test_case test_cases[] = {
    TEST_ENTRY(rows_of_different_fields_make_one_array_each),
    TEST_ENTRY(no_rows_make_an_empty_map_with_the_count),
    TEST_ENTRY(what_cannot_make_columns_is_refused_whole),
    TEST_ENTRY(uuid_ids_go_as_their_parts),
    TEST_ENTRY(a_name_of_the_longest_length_is_kept),
    TEST_ENTRY(tags_go_as_one_string_each_and_the_push_says_so),
};

TEST_MAIN()
