/* sync_mark.h - a table's mark for the sync engine's incremental refresh
 * (doc/architecture.md, Sync rules): the newest updated_at a refresh read
 * from the store, the ids it saw at exactly that stamp, and what is needed
 * to count the held rows at or before the mark without a walk (the held ids
 * stamped later, and the held rows with no readable stamp). The engine tells
 * it every held row that comes and goes; a refresh's answers propose the
 * next mark, which is taken when that table's refresh succeeds.
 *
 * Memory: a sync_mark is the engine's (zeroed to start, released with
 * sync_mark_free); it owns its strings, arrays and map. Ids and stamps
 * passed in are borrowed for the call. */
#ifndef SHELF_SYNC_MARK_H
#define SHELF_SYNC_MARK_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "map.h"

#define SYNC_MARK_IDS 32 /* ids at the mark sent to be left out; more: none */

typedef struct {
  char *stamp;  /* the newest updated_at a refresh read, as the store printed
                   it (never this machine's clock); NULL: no mark */
  long long us; /* stamp as a time (util_stamp_us) */
  cJSON *ids;   /* the ids seen at exactly stamp; NULL if more than SYNC_MARK_IDS */
  map *later;   /* held ids stamped after the mark (values unused) */
  size_t unstamped; /* held rows without a readable stamp */
  /* The mark a refresh's answer proposes (sync_mark_begin, sync_mark_see). */
  int next_set;
  char *next_stamp;
  long long next_us;
  cJSON *next_ids;
  /* The engine's incremental refresh of this table in flight. */
  int parts;    /* answers still to come */
  cJSON *rows;  /* since's answer */
  double count; /* count_until's answer; -1 if none came, SYNC_COUNT_VOUCHED */
  int recounted; /* the last refresh asked again: a change here skewed the counts */
  char *error;
} sync_mark;

/* A delta's count the store left out: its change feed told every row that
 * went missing or came at or before the mark (store.h, delta). */
#define SYNC_COUNT_VOUCHED (-2.0)

/* The updated_at of a held entry (a value of the engine's held map). */
typedef const char *(*sync_mark_stamp_fn)(const void *entry);

/* A held row goes, or comes (no-ops while there is no mark). */
void sync_mark_drop(sync_mark *m, const char *id, const char *stamp);
void sync_mark_add(sync_mark *m, const char *id, const char *stamp);
/* How many of the nheld rows held are stamped at or before the mark. */
size_t sync_mark_held(const sync_mark *m, size_t nheld);

/* Note what a whole-table answer has, from its start (begin), one row at
 * a time (see: the newest stamp and the ids at it become the next mark). */
void sync_mark_begin(sync_mark *m);
void sync_mark_see(sync_mark *m, const char *id, const char *stamp);
/* Forget the proposed mark. */
void sync_mark_next_clear(sync_mark *m);
/* A whole-table answer was taken: its mark replaces the old one (if one was
 * begun), and the held rows (map of entries) are sorted against it once. */
void sync_mark_take(sync_mark *m, const map *held, sync_mark_stamp_fn stamp_of);
/* An incremental answer was taken: the mark moves up to the newest stamp it
 * saw, if later (held rows it passes are no longer later), or learns more
 * ids at its own stamp. */
void sync_mark_advance(sync_mark *m, const map *held, sync_mark_stamp_fn stamp_of);
/* No mark any more (another user's rows come next). */
void sync_mark_clear(sync_mark *m);
/* Release everything (sync_mark_clear, and what a refresh left). */
void sync_mark_free(sync_mark *m);

#endif
