/* mpjson.c - msgpack <-> cJSON, with a depth limit on the way in, and the
 * field reader every module uses on cJSON objects (see mpjson.h). */
#include "mpjson.h"

#include <math.h>
#include <string.h>

#include "util.h"

static cJSON *mpjson_str(const char *p, uint32_t n, const char **err) {
  /* msgpack-c may give an empty string a NULL pointer: no memchr/memcpy. */
  if (n > 0 && memchr(p, '\0', n)) {
    *err = "text contains a NUL byte";
    return NULL;
  }
  char *s = util_malloc((size_t)n + 1);
  if (n > 0)
    memcpy(s, p, n);
  s[n] = '\0';
  cJSON *v = cJSON_CreateString(s);
  free(s);
  return v;
}

static cJSON *mpjson_convert(const msgpack_object *o, int depth,
                             const char **err) {
  if (depth > MPJSON_MAX_DEPTH) {
    *err = "value nested too deeply";
    return NULL;
  }
  switch (o->type) {
  case MSGPACK_OBJECT_NIL:
    return cJSON_CreateNull();
  case MSGPACK_OBJECT_BOOLEAN:
    return cJSON_CreateBool(o->via.boolean);
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    return cJSON_CreateNumber((double)o->via.u64);
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    return cJSON_CreateNumber((double)o->via.i64);
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    if (!isfinite(o->via.f64)) {
      *err = "number is not finite";
      return NULL;
    }
    return cJSON_CreateNumber(o->via.f64);
  case MSGPACK_OBJECT_STR:
    return mpjson_str(o->via.str.ptr, o->via.str.size, err);
  case MSGPACK_OBJECT_BIN:
    return mpjson_str(o->via.bin.ptr, o->via.bin.size, err);
  case MSGPACK_OBJECT_ARRAY: {
    cJSON *a = cJSON_CreateArray();
    for (uint32_t i = 0; i < o->via.array.size; i++) {
      cJSON *v = mpjson_convert(&o->via.array.ptr[i], depth + 1, err);
      if (!v) {
        cJSON_Delete(a);
        return NULL;
      }
      cJSON_AddItemToArray(a, v);
    }
    return a;
  }
  case MSGPACK_OBJECT_MAP: {
    /* Lua sends an empty table as an empty map or array; both mean "none". */
    cJSON *m = cJSON_CreateObject();
    for (uint32_t i = 0; i < o->via.map.size; i++) {
      const msgpack_object_kv *kv = &o->via.map.ptr[i];
      if (kv->key.type != MSGPACK_OBJECT_STR) {
        *err = "table keys must be strings";
        cJSON_Delete(m);
        return NULL;
      }
      cJSON *k = mpjson_str(kv->key.via.str.ptr, kv->key.via.str.size, err);
      if (!k) {
        cJSON_Delete(m);
        return NULL;
      }
      cJSON *v = mpjson_convert(&kv->val, depth + 1, err);
      if (!v) {
        cJSON_Delete(k);
        cJSON_Delete(m);
        return NULL;
      }
      cJSON_DeleteItemFromObjectCaseSensitive(m, k->valuestring);
      cJSON_AddItemToObject(m, k->valuestring, v);
      cJSON_Delete(k);
    }
    return m;
  }
  default:
    *err = "unsupported msgpack type";
    return NULL;
  }
}

cJSON *mpjson_from_msgpack(const msgpack_object *obj, const char **err) {
  *err = NULL;
  return mpjson_convert(obj, 0, err);
}

void mpjson_pack_str(msgpack_packer *pk, const char *s) {
  if (!s) {
    msgpack_pack_nil(pk);
    return;
  }
  size_t n = strlen(s);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

void mpjson_pack(msgpack_packer *pk, const cJSON *v) {
  if (!v || cJSON_IsNull(v)) {
    msgpack_pack_nil(pk);
  } else if (cJSON_IsBool(v)) {
    if (cJSON_IsTrue(v))
      msgpack_pack_true(pk);
    else
      msgpack_pack_false(pk);
  } else if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
      msgpack_pack_int64(pk, (int64_t)d);
    else
      msgpack_pack_double(pk, d);
  } else if (cJSON_IsString(v)) {
    mpjson_pack_str(pk, v->valuestring);
  } else if (cJSON_IsArray(v)) {
    msgpack_pack_array(pk, (size_t)cJSON_GetArraySize(v));
    const cJSON *c;
    cJSON_ArrayForEach(c, v) mpjson_pack(pk, c);
  } else if (cJSON_IsObject(v)) {
    msgpack_pack_map(pk, (size_t)cJSON_GetArraySize(v));
    const cJSON *c;
    cJSON_ArrayForEach(c, v) {
      mpjson_pack_str(pk, c->string);
      mpjson_pack(pk, c);
    }
  } else {
    /* cJSON_Raw and invalid items have no msgpack form. */
    msgpack_pack_nil(pk);
  }
}

const char *mpjson_get_str(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}
