/* cols.c - summaries as columns (cols.h). Two passes over the rows: the
 * field names, then each field's values; a row is unpacked again for each
 * pass, not kept unpacked (a push holds at most a batch of rows). */
#include "cols.h"

#include <string.h>

void cols_init(cols_builder *c) {
  msgpack_sbuffer_init(&c->rows);
  c->n = 0;
}

void cols_row(cols_builder *c, msgpack_packer *pk) {
  msgpack_packer_init(pk, &c->rows, msgpack_sbuffer_write);
}

void cols_row_done(cols_builder *c) {
  c->n++;
}

void cols_free(cols_builder *c) {
  msgpack_sbuffer_destroy(&c->rows);
  c->n = 0;
}

typedef struct {
  char name[COLS_MAX_NAME];
  size_t len;
  msgpack_sbuffer values;
  msgpack_packer pk;
} cols_field;

static int cols_find(const cols_field *f, size_t nf, const char *name, size_t len) {
  for (size_t i = 0; i < nf; i++)
    if (f[i].len == len && memcmp(f[i].name, name, len) == 0)
      return (int)i;
  return -1;
}

/* Step through the rows: 1 and the next row in *u while there is one. */
static int cols_next(const cols_builder *c, size_t *off, msgpack_unpacked *u, const char **err) {
  if (*off >= c->rows.size)
    return 0;
  if (msgpack_unpack_next(u, c->rows.data, c->rows.size, off) != MSGPACK_UNPACK_SUCCESS ||
      u->data.type != MSGPACK_OBJECT_MAP) {
    *err = "cols: a row is not a msgpack map";
    return -1;
  }
  return 1;
}

/* A row's tags as the editor keeps them (shelf.mirror): a list of tags as
 * one string, each tag after a NUL ("\0" alone: none), so Neovim makes no
 * table per row and rows with the same tags share one string. Anything
 * else another client wrote goes as it is, except a bare string that
 * starts with a NUL, which could not be told from the packed form: it goes
 * as the list of it, which the editor shows the same way. */
static void cols_pack_tags(msgpack_packer *pk, const msgpack_object *v) {
  if (v->type == MSGPACK_OBJECT_STR && v->via.str.size > 0 && v->via.str.ptr[0] == '\0') {
    msgpack_pack_array(pk, 1);
    msgpack_pack_object(pk, *v);
    return;
  }
  if (v->type != MSGPACK_OBJECT_ARRAY) {
    msgpack_pack_object(pk, *v);
    return;
  }
  const msgpack_object_array *a = &v->via.array;
  size_t len = a->size == 0 ? 1 : 0;
  for (uint32_t i = 0; i < a->size; i++) {
    const msgpack_object_str *t = &a->ptr[i].via.str;
    if (a->ptr[i].type != MSGPACK_OBJECT_STR || t->size == 0 || memchr(t->ptr, '\0', t->size)) {
      msgpack_pack_object(pk, *v); /* (not a list of tags: as it is) */
      return;
    }
    len += 1 + t->size;
  }
  msgpack_pack_str(pk, len);
  if (a->size == 0)
    msgpack_pack_str_body(pk, "", 1);
  for (uint32_t i = 0; i < a->size; i++) {
    msgpack_pack_str_body(pk, "", 1);
    msgpack_pack_str_body(pk, a->ptr[i].via.str.ptr, a->ptr[i].via.str.size);
  }
}

/* A canonical UUID (36 characters, lowercase hex) as the three numbers the
 * editor keeps it as (shelf.uuid): hex digits 1-12, 13-24 and 25-32. 0, or
 * -1 for anything else. (Not util_is_uuid: it takes uppercase too, and the
 * editor writes parts back as lowercase text, so such an id stays text.) */
static int cols_uuid_parts(const msgpack_object *v, uint64_t parts[3]) {
  static const int ends[3] = {12, 24, 32};
  if (v->type != MSGPACK_OBJECT_STR || v->via.str.size != 36)
    return -1;
  const char *s = v->via.str.ptr;
  if (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
    return -1;
  int digit = 0;
  parts[0] = parts[1] = parts[2] = 0;
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23)
      continue;
    int x = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 : -1;
    if (x < 0)
      return -1;
    int p = digit < ends[0] ? 0 : digit < ends[1] ? 1 : 2;
    parts[p] = parts[p] * 16 + (uint64_t)x;
    digit++;
  }
  return 0;
}

/* Names the columns use themselves (cols.h). */
static int cols_reserved(const char *name, size_t len) {
  static const char *names[] = {"n", COLS_PACKED_TAGS, COLS_ID_A, COLS_ID_B, COLS_ID_C};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
      return 1;
  return 0;
}

int cols_pack(const cols_builder *c, msgpack_packer *pk, const char **err) {
  cols_field f[COLS_MAX_FIELDS];
  size_t nf = 0;
  int rc = 0, more;
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  /* The fields, in the order they first come. */
  while (rc == 0 && (more = cols_next(c, &off, &u, err)) != 0) {
    if (more < 0) {
      rc = -1;
      break;
    }
    const msgpack_object_map *m = &u.data.via.map;
    for (uint32_t k = 0; k < m->size; k++) {
      const msgpack_object *key = &m->ptr[k].key;
      if (key->type != MSGPACK_OBJECT_STR) {
        *err = "cols: a field name is not a string";
        rc = -1;
        break;
      }
      if (cols_find(f, nf, key->via.str.ptr, key->via.str.size) >= 0)
        continue;
      if (nf == COLS_MAX_FIELDS || key->via.str.size > COLS_MAX_NAME ||
          cols_reserved(key->via.str.ptr, key->via.str.size)) {
        *err = "cols: too many fields, a name too long, or one the columns use (n, " COLS_PACKED_TAGS
               ", " COLS_ID_A ", " COLS_ID_B ", " COLS_ID_C ")";
        rc = -1;
        break;
      }
      memcpy(f[nf].name, key->via.str.ptr, key->via.str.size);
      f[nf].len = key->via.str.size;
      msgpack_sbuffer_init(&f[nf].values);
      msgpack_packer_init(&f[nf].pk, &f[nf].values, msgpack_sbuffer_write);
      nf++;
    }
  }
  /* Each row's value of each field, or nil. A UUID id goes as its parts,
   * in three columns of their own (nil in the id column). */
  off = 0;
  unsigned char seen[COLS_MAX_FIELDS];
  int tags = cols_find(f, nf, "tags", 4);
  int idf = cols_find(f, nf, "id", 2);
  size_t uuids = 0, others = 0;
  msgpack_sbuffer idv[3];
  msgpack_packer idpk[3];
  for (int p = 0; p < 3; p++) {
    msgpack_sbuffer_init(&idv[p]);
    msgpack_packer_init(&idpk[p], &idv[p], msgpack_sbuffer_write);
  }
  while (rc == 0 && (more = cols_next(c, &off, &u, err)) > 0) {
    const msgpack_object_map *m = &u.data.via.map;
    memset(seen, 0, nf);
    int uuid = 0;
    for (uint32_t k = 0; k < m->size; k++) {
      const msgpack_object *key = &m->ptr[k].key;
      int i = cols_find(f, nf, key->via.str.ptr, key->via.str.size);
      if (i >= 0 && !seen[i]) { /* (a key twice in a row: the first wins) */
        seen[i] = 1;
        uint64_t parts[3];
        if (i == tags) {
          cols_pack_tags(&f[i].pk, &m->ptr[k].val);
        } else if (i == idf && cols_uuid_parts(&m->ptr[k].val, parts) == 0) {
          uuid = 1;
          msgpack_pack_nil(&f[i].pk);
          for (int p = 0; p < 3; p++)
            msgpack_pack_uint64(&idpk[p], parts[p]);
        } else {
          msgpack_pack_object(&f[i].pk, m->ptr[k].val);
        }
      }
    }
    if (uuid) {
      uuids++;
    } else {
      others += idf >= 0 && seen[idf];
      for (int p = 0; p < 3; p++)
        msgpack_pack_nil(&idpk[p]);
    }
    for (size_t i = 0; i < nf; i++)
      if (!seen[i])
        msgpack_pack_nil(&f[i].pk);
  }
  msgpack_unpacked_destroy(&u);
  if (rc == 0) {
    int skip_id = idf >= 0 && others == 0; /* every id a UUID: no id column */
    msgpack_pack_map(pk, nf + 1 + (tags >= 0) + (uuids ? 3 : 0) - (size_t)skip_id);
    msgpack_pack_str_with_body(pk, "n", 1);
    msgpack_pack_uint64(pk, c->n);
    if (tags >= 0) {
      msgpack_pack_str_with_body(pk, COLS_PACKED_TAGS, sizeof COLS_PACKED_TAGS - 1);
      msgpack_pack_true(pk);
    }
    for (int p = 0; uuids && p < 3; p++) {
      static const char *names[3] = {COLS_ID_A, COLS_ID_B, COLS_ID_C};
      msgpack_pack_str_with_body(pk, names[p], strlen(names[p]));
      msgpack_pack_array(pk, c->n);
      pk->callback(pk->data, idv[p].data, idv[p].size);
    }
    for (size_t i = 0; i < nf; i++) {
      if (skip_id && (int)i == idf)
        continue;
      msgpack_pack_str_with_body(pk, f[i].name, f[i].len);
      msgpack_pack_array(pk, c->n);
      pk->callback(pk->data, f[i].values.data, f[i].values.size);
    }
  }
  for (size_t i = 0; i < nf; i++)
    msgpack_sbuffer_destroy(&f[i].values);
  for (int p = 0; p < 3; p++)
    msgpack_sbuffer_destroy(&idv[p]);
  return rc;
}
