/* sync_mark.c - a table's mark for incremental refreshes (see sync_mark.h).
 * Stamps compare as times (util_stamp_us), as the backends compare them. */
#include "sync_mark.h"

#include <stdint.h>
#include <stdlib.h>

#include "util.h"

void sync_mark_drop(sync_mark *m, const char *id, const char *stamp) {
  long long us;
  if (!m->stamp)
    return;
  if (util_stamp_us(stamp, &us) < 0)
    m->unstamped--;
  else
    map_take(m->later, id);
}

void sync_mark_add(sync_mark *m, const char *id, const char *stamp) {
  long long us;
  if (!m->stamp)
    return;
  if (util_stamp_us(stamp, &us) < 0)
    m->unstamped++;
  else if (us > m->us)
    map_put(m->later, id, (void *)1);
}

size_t sync_mark_held(const sync_mark *m, size_t nheld) {
  return nheld - m->unstamped - map_size(m->later);
}

void sync_mark_clear(sync_mark *m) {
  free(m->stamp);
  m->stamp = NULL;
  cJSON_Delete(m->ids);
  m->ids = NULL;
  map_free(m->later, NULL);
  m->later = NULL;
  m->unstamped = 0;
}

void sync_mark_next_clear(sync_mark *m) {
  m->next_set = 0;
  free(m->next_stamp);
  m->next_stamp = NULL;
  cJSON_Delete(m->next_ids);
  m->next_ids = NULL;
}

void sync_mark_begin(sync_mark *m) {
  sync_mark_next_clear(m);
  m->next_set = 1;
}

void sync_mark_see(sync_mark *m, const char *id, const char *stamp) {
  long long us;
  if (!id || util_stamp_us(stamp, &us) < 0)
    return;
  if (!m->next_stamp || us > m->next_us) {
    free(m->next_stamp);
    m->next_stamp = util_strdup(stamp);
    m->next_us = us;
    cJSON_Delete(m->next_ids);
    m->next_ids = cJSON_CreateArray();
  } else if (us < m->next_us || !m->next_ids) {
    return;
  }
  if (cJSON_GetArraySize(m->next_ids) >= SYNC_MARK_IDS) {
    cJSON_Delete(m->next_ids);
    m->next_ids = NULL; /* too many to send: a since asks for later ones only */
    return;
  }
  cJSON_AddItemToArray(m->next_ids, cJSON_CreateString(id));
}

void sync_mark_take(sync_mark *m, const map *held, sync_mark_stamp_fn stamp_of) {
  if (!m->next_set)
    return;
  sync_mark_clear(m);
  m->stamp = m->next_stamp;
  m->us = m->next_us;
  m->ids = m->next_ids;
  m->next_stamp = NULL;
  m->next_ids = NULL;
  m->next_set = 0;
  if (!m->stamp)
    return; /* the table was empty */
  /* A walk, as the whole-table answer was. */
  m->later = map_new();
  map_iter it = {0};
  const char *key;
  void *val;
  while (map_next(held, &it, &key, &val))
    sync_mark_add(m, key, stamp_of(val));
}

void sync_mark_advance(sync_mark *m, const map *held, sync_mark_stamp_fn stamp_of) {
  if (m->next_stamp && m->next_us > m->us) {
    free(m->stamp);
    m->stamp = m->next_stamp;
    m->us = m->next_us;
    cJSON_Delete(m->ids);
    m->ids = m->next_ids;
    m->next_stamp = NULL;
    m->next_ids = NULL;
    cJSON *passed = cJSON_CreateArray();
    map_iter it = {0};
    const char *key;
    while (map_next(m->later, &it, &key, NULL)) {
      void *e = map_get(held, key);
      long long us;
      if (!e || util_stamp_us(stamp_of(e), &us) < 0 || us <= m->us)
        cJSON_AddItemToArray(passed, cJSON_CreateString(key));
    }
    const cJSON *k;
    cJSON_ArrayForEach(k, passed) map_take(m->later, k->valuestring);
    cJSON_Delete(passed);
  } else if (m->next_stamp && m->next_us == m->us && m->ids) {
    /* More rows at the same stamp: known there too. */
    const cJSON *id;
    cJSON_ArrayForEach(id, m->next_ids) {
      if (cJSON_GetArraySize(m->ids) >= SYNC_MARK_IDS) {
        cJSON_Delete(m->ids);
        m->ids = NULL;
        break;
      }
      cJSON_AddItemToArray(m->ids, cJSON_CreateString(id->valuestring));
    }
    if (!m->next_ids) {
      cJSON_Delete(m->ids);
      m->ids = NULL;
    }
  }
  sync_mark_next_clear(m);
}

void sync_mark_free(sync_mark *m) {
  sync_mark_clear(m);
  sync_mark_next_clear(m);
  cJSON_Delete(m->rows);
  m->rows = NULL;
  free(m->error);
  m->error = NULL;
}
