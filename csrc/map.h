/* map.h - a string-keyed hash map (separate chaining), used for the items the
 * sync engine holds by id. The map copies keys and owns the copies; values
 * are the caller's: map_free() hands each to free_val (if not NULL). */
#ifndef SHELF_MAP_H
#define SHELF_MAP_H

#include <stddef.h>

typedef struct map map;

typedef struct {
  size_t bucket;
  void *entry;
} map_iter;

map *map_new(void);
void map_free(map *m, void (*free_val)(void *));
size_t map_size(const map *m);
void *map_get(const map *m, const char *key);
/* Set key to val; returns the value it replaced (the caller frees it), or
 * NULL. */
void *map_put(map *m, const char *key, void *val);
/* Remove key; returns its value (the caller frees it), or NULL. */
void *map_take(map *m, const char *key);

/* Iterate: map_iter it = {0}; while (map_next(m, &it, &k, &v)) ...
 * The map must not change during iteration. */
int map_next(const map *m, map_iter *it, const char **key, void **val);

#endif
