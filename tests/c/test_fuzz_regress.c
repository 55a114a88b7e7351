/* test_fuzz_regress.c - plain unit tests for what the libFuzzer targets
 * (fuzz/) found, so the gcc sanitizer build checks them too. The inputs
 * themselves are in fuzz/regress/ and are replayed by every fuzz run. */
#include <math.h>

#include "mpjson.h"
#include "phoenix.h"
#include "realtime.h"
#include "test.h"

/* msgpack-c gives an empty string (and bin) a NULL pointer; mpjson used to
 * pass it to memchr and memcpy (undefined, flagged by UBSan). */
TEST(mpjson_empty_string_with_null_pointer) {
  msgpack_object o;
  memset(&o, 0, sizeof o);
  o.type = MSGPACK_OBJECT_STR;
  o.via.str.ptr = NULL;
  o.via.str.size = 0;
  const char *err = "unset";
  cJSON *v = mpjson_from_msgpack(&o, &err);
  ASSERT(v != NULL);
  ASSERT(err == NULL);
  ASSERT_STR(v->valuestring, "");
  cJSON_Delete(v);
  o.type = MSGPACK_OBJECT_BIN;
  o.via.bin.ptr = NULL;
  o.via.bin.size = 0;
  v = mpjson_from_msgpack(&o, &err);
  ASSERT(v != NULL);
  ASSERT_STR(v->valuestring, "");
  cJSON_Delete(v);
}

/* The same through msgpack-c itself: [""] as the editor sends it. */
TEST(mpjson_empty_string_from_msgpack_c) {
  static const char buf[] = {(char)0x92, (char)0xa0, (char)0xc4, 0x00};
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  ASSERT_EQ(msgpack_unpack_next(&u, buf, sizeof buf, &off), MSGPACK_UNPACK_SUCCESS);
  const char *err = NULL;
  cJSON *v = mpjson_from_msgpack(&u.data, &err);
  ASSERT(v != NULL);
  ASSERT_EQ(cJSON_GetArraySize(v), 2);
  ASSERT_STR(cJSON_GetArrayItem(v, 0)->valuestring, "");
  ASSERT_STR(cJSON_GetArrayItem(v, 1)->valuestring, "");
  cJSON_Delete(v);
  msgpack_unpacked_destroy(&u);
}

/* A numeric ref outside long long's range was cast before it was checked
 * (undefined); it must be refused as a bad ref, and a small one accepted. */
TEST(realtime_huge_numeric_refs_are_refused) {
  static const char *bad[] = {
      "[1e300,\"1\",\"t\",\"e\",{}]",
      "[\"1\",-1e300,\"t\",\"e\",{}]",
      "[1e999,null,\"t\",\"e\",{}]",
      "{\"topic\":\"t\",\"event\":\"e\",\"payload\":{},\"ref\":1e20}",
      "[1.5,null,\"t\",\"e\",{}]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    phx_frame f;
    char *err = NULL;
    ASSERT(phx_parse_frame(bad[i], strlen(bad[i]), &f, &err) < 0);
    ASSERT(err != NULL);
    ASSERT(strstr(err, "ref must be a string or null") != NULL);
    free(err);
  }
  static const char good[] = "[7,123456789012345,\"t\",\"e\",{}]";
  phx_frame f;
  ASSERT_EQ(phx_parse_frame(good, strlen(good), &f, NULL), 0);
  ASSERT_STR(f.join_ref, "7");
  ASSERT_STR(f.ref, "123456789012345");
  phx_frame_free(&f);
}

static const test_case test_cases[] = {
    TEST_ENTRY(mpjson_empty_string_with_null_pointer),
    TEST_ENTRY(mpjson_empty_string_from_msgpack_c),
    TEST_ENTRY(realtime_huge_numeric_refs_are_refused),
};

TEST_MAIN()
