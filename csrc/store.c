/* store.c - what both backends share: the default table names and the queue
 * of deferred completions (store.h). The queue owns each completion it holds
 * (its copied error and its rows) until the completion has run. */
#include "store.h"

#include <stdlib.h>

#include "log.h"
#include "util.h"

const char *store_default_table_name(store_table t) {
  static const char *const names[STORE_NTABLES] = {
      [STORE_BLOCKS] = "context_blocks",
      [STORE_PROMPTS] = "prompts",
      [STORE_DATASET_PROJECTS] = "dataset_projects",
      [STORE_PROMPT_PROJECTS] = "prompt_projects",
  };
  /* Callers print the result; never hand them NULL. */
  return (unsigned)t < STORE_NTABLES ? names[t] : "(unknown table)";
}

/* --- deferred completions ------------------------------------------------------ */

struct store_defer_item {
  store_done_cb cb;
  void *data;
  int status;
  char *error;
  cJSON *rows;
  unsigned retry_after_ms;
  list_node link; /* in q->items */
};

static void store_defer_closed(uv_handle_t *h) {
  store_defer *q = h->data;
  if (q->closed)
    q->closed(q->closed_data);
}

static void store_defer_run(uv_idle_t *h) {
  store_defer *q = h->data;
  /* Only what is queued now: a callback that queues more (a store call that
   * fails at once) waits for the next turn of the loop. */
  list_node now, *n;
  list_take_all(&now, &q->items);
  while ((n = list_pop_front(&now)) != NULL) {
    store_defer_item *it = list_entry(n, store_defer_item, link);
    q->owner->retry_after_ms = it->retry_after_ms;
    it->cb(it->data, it->status, it->status < 0 ? (it->error ? it->error : "failed") : NULL,
           it->status < 0 ? NULL : it->rows);
    q->owner->retry_after_ms = 0;
    if (it->status < 0)
      cJSON_Delete(it->rows);
    free(it->error);
    free(it);
  }
  if (!list_empty(&q->items))
    return;
  uv_idle_stop(&q->idle);
  if (q->closing == 1) {
    q->closing = 2;
    uv_close((uv_handle_t *)&q->idle, store_defer_closed);
  }
}

void store_defer_init(store_defer *q, uv_loop_t *loop, store *owner) {
  q->owner = owner;
  list_init(&q->items);
  q->closing = 0;
  q->closed = NULL;
  q->closed_data = NULL;
  uv_idle_init(loop, &q->idle); /* cannot fail on Unix */
  q->idle.data = q;
}

void store_defer_done(store_defer *q, store_done_cb cb, void *data, int status,
                      const char *error, cJSON *rows, unsigned retry_after_ms) {
  if (!cb) {
    cJSON_Delete(rows);
    return;
  }
  if (q->closing == 2) {
    /* A backend bug; answering late beats never answering. */
    log_error("a store completion came after its queue was closed");
    cb(data, status, status < 0 ? (error ? error : "failed") : NULL, status < 0 ? NULL : rows);
    if (status < 0)
      cJSON_Delete(rows);
    return;
  }
  store_defer_item *it = util_calloc(1, sizeof *it);
  it->cb = cb;
  it->data = data;
  it->status = status;
  it->error = error ? util_strdup(error) : NULL;
  it->rows = rows;
  it->retry_after_ms = retry_after_ms;
  list_push_back(&q->items, &it->link);
  uv_idle_start(&q->idle, store_defer_run);
}

void store_defer_close(store_defer *q, void (*closed)(void *), void *data) {
  if (q->closing)
    return;
  q->closed = closed;
  q->closed_data = data;
  q->closing = 1;
  if (list_empty(&q->items)) {
    q->closing = 2;
    uv_idle_stop(&q->idle);
    uv_close((uv_handle_t *)&q->idle, store_defer_closed);
  }
}
