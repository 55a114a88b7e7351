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
          (key->via.str.size == 1 && key->via.str.ptr[0] == 'n') ||
          (key->via.str.size == sizeof COLS_PACKED_TAGS - 1 &&
           memcmp(key->via.str.ptr, COLS_PACKED_TAGS, sizeof COLS_PACKED_TAGS - 1) == 0)) {
        *err = "cols: too many fields, a name too long, or one named n or " COLS_PACKED_TAGS;
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
  /* Each row's value of each field, or nil. */
  off = 0;
  unsigned char seen[COLS_MAX_FIELDS];
  int tags = cols_find(f, nf, "tags", 4);
  while (rc == 0 && (more = cols_next(c, &off, &u, err)) > 0) {
    const msgpack_object_map *m = &u.data.via.map;
    memset(seen, 0, nf);
    for (uint32_t k = 0; k < m->size; k++) {
      const msgpack_object *key = &m->ptr[k].key;
      int i = cols_find(f, nf, key->via.str.ptr, key->via.str.size);
      if (i >= 0 && !seen[i]) { /* (a key twice in a row: the first wins) */
        seen[i] = 1;
        if (i == tags)
          cols_pack_tags(&f[i].pk, &m->ptr[k].val);
        else
          msgpack_pack_object(&f[i].pk, m->ptr[k].val);
      }
    }
    for (size_t i = 0; i < nf; i++)
      if (!seen[i])
        msgpack_pack_nil(&f[i].pk);
  }
  msgpack_unpacked_destroy(&u);
  if (rc == 0) {
    msgpack_pack_map(pk, nf + 1 + (tags >= 0));
    msgpack_pack_str_with_body(pk, "n", 1);
    msgpack_pack_uint64(pk, c->n);
    if (tags >= 0) {
      msgpack_pack_str_with_body(pk, COLS_PACKED_TAGS, sizeof COLS_PACKED_TAGS - 1);
      msgpack_pack_true(pk);
    }
    for (size_t i = 0; i < nf; i++) {
      msgpack_pack_str_with_body(pk, f[i].name, f[i].len);
      msgpack_pack_array(pk, c->n);
      pk->callback(pk->data, f[i].values.data, f[i].values.size);
    }
  }
  for (size_t i = 0; i < nf; i++)
    msgpack_sbuffer_destroy(&f[i].values);
  return rc;
}
