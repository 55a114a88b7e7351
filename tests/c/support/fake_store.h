/* fake_store.h - an in-memory store for unit tests of the sync engine.
 * Requests queue up and complete only when the test says so, so a test can
 * hold a refresh in flight, inject failures, and count what was asked. */
#ifndef SHELF_FAKE_STORE_H
#define SHELF_FAKE_STORE_H

#include "store.h"

typedef struct fake_store fake_store;

fake_store *fake_store_new(void);
store *fake_store_base(fake_store *fs);
/* Complete the oldest queued request; returns 0 if none was queued. */
int fake_store_step(fake_store *fs);
/* Complete requests until none is queued (including ones queued meanwhile). */
int fake_store_drain(fake_store *fs);
int fake_store_queued(const fake_store *fs);
/* The next request fails with this status (and message). */
void fake_store_fail_next(fake_store *fs, int status, const char *msg);
/* ... and says the server asked to wait this long (store.retry_after_ms). */
void fake_store_retry_after_next(fake_store *fs, unsigned ms);
/* The next n requests are carried out, but each is answered with
 * STORE_EUNAVAILABLE, as when a timeout or a lost connection ate the answer. */
void fake_store_lose_answers(fake_store *fs, int n);
/* From now on a fetch of every row answers `rows` rows at a time
 * (STORE_PAGE), in the table's order, the next part queued at the back as
 * the SQLite store does; 0: whole. */
void fake_store_parts(fake_store *fs, int rows);
/* From now on the store answers since and count_until at once (store.h
 * delta), or not (0: the default); 2: at once, the count left out (null), as
 * a store whose events told every change does. */
void fake_store_delta(fake_store *fs, int on);
/* Change the "database" directly, as another program would. `row` is
 * borrowed; it must carry id and updated_at. */
void fake_store_put(fake_store *fs, store_table t, const cJSON *row);
void fake_store_del(fake_store *fs, store_table t, const char *id);
/* Deliver an event to the watcher now. */
void fake_store_emit(fake_store *fs, const store_event *ev);
size_t fake_store_rows(fake_store *fs, store_table t);

/* What was asked. */
typedef struct {
  int inserts, updates, removes, stamps, fetches, fetch_alls;
  int sinces, count_untils; /* the two halves of an incremental refresh */
  int deltas;               /* both at once (fake_store_delta) */
  char last_since[48];      /* the stamp of the last since or delta */
  int last_known;           /* ids known at it in the last since or delta; -1: NULL */
  int last_fetch_ids; /* number of ids in the last fetch */
} fake_store_counts;
fake_store_counts fake_store_counts_get(const fake_store *fs);

#endif
