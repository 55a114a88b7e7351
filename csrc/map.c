/* map.c - the string-keyed hash map (map.h): separate chaining with
 * FNV-1a, growing at load factor 1. It owns its buckets, its entries and
 * the copies of the keys; the values are the caller's. */
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct map_entry {
  struct map_entry *next;
  void *val;
  char key[];
} map_entry;

struct map {
  map_entry **buckets;
  size_t nbuckets; /* a power of two */
  size_t size;
};

static uint64_t map_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

map *map_new(void) {
  map *m = util_calloc(1, sizeof *m);
  m->nbuckets = 16;
  m->buckets = util_calloc(m->nbuckets, sizeof *m->buckets);
  return m;
}

void map_free(map *m, void (*free_val)(void *)) {
  if (!m)
    return;
  for (size_t i = 0; i < m->nbuckets; i++) {
    map_entry *e = m->buckets[i];
    while (e) {
      map_entry *next = e->next;
      if (free_val)
        free_val(e->val);
      free(e);
      e = next;
    }
  }
  free(m->buckets);
  free(m);
}

size_t map_size(const map *m) { return m->size; }

static map_entry **map_slot(const map *m, const char *key) {
  map_entry **p = &m->buckets[map_hash(key) & (m->nbuckets - 1)];
  while (*p && strcmp((*p)->key, key) != 0)
    p = &(*p)->next;
  return p;
}

void *map_get(const map *m, const char *key) {
  map_entry *e = *map_slot(m, key);
  return e ? e->val : NULL;
}

static void map_grow(map *m) {
  size_t n = m->nbuckets * 2;
  map_entry **b = util_calloc(n, sizeof *b);
  for (size_t i = 0; i < m->nbuckets; i++) {
    map_entry *e = m->buckets[i];
    while (e) {
      map_entry *next = e->next;
      size_t j = map_hash(e->key) & (n - 1);
      e->next = b[j];
      b[j] = e;
      e = next;
    }
  }
  free(m->buckets);
  m->buckets = b;
  m->nbuckets = n;
}

void *map_put(map *m, const char *key, void *val) {
  map_entry **p = map_slot(m, key);
  if (*p) {
    void *old = (*p)->val;
    (*p)->val = val;
    return old;
  }
  size_t klen = strlen(key) + 1;
  map_entry *e = util_malloc(sizeof *e + klen);
  memcpy(e->key, key, klen);
  e->val = val;
  e->next = NULL;
  *p = e;
  if (++m->size > m->nbuckets)
    map_grow(m);
  return NULL;
}

void *map_take(map *m, const char *key) {
  map_entry **p = map_slot(m, key);
  map_entry *e = *p;
  if (!e)
    return NULL;
  void *val = e->val;
  *p = e->next;
  free(e);
  m->size--;
  return val;
}

int map_next(const map *m, map_iter *it, const char **key, void **val) {
  map_entry *e = it->entry;
  if (e)
    e = e->next;
  while (!e && it->bucket < m->nbuckets)
    e = m->buckets[it->bucket++];
  it->entry = e;
  if (!e)
    return 0;
  if (key)
    *key = e->key;
  if (val)
    *val = e->val;
  return 1;
}
