/* fuzz_common.h - shared by the libFuzzer targets (see fuzz/README).
 *
 * Inputs that carry several messages separate them with 0x1e (ASCII record
 * separator): it cannot occur in JSON outside a string, and inside one it
 * is invalid, so seed files stay readable text. Each piece is copied into a
 * buffer of exactly its size, so an over-read is caught by ASan.
 *
 * fz_store is a store (store.h) that holds every request until the target
 * answers it, as the real backends answer later on the loop. The sync engine
 * runs over it unchanged. Header-only: each target is one file. */
#ifndef SHELF_FUZZ_COMMON_H
#define SHELF_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <msgpack.h>
#include <uv.h>

#include "log.h"
#include "mpjson.h"
#include "store.h"
#include "sync.h"
#include "util.h"

#define FZ_SEP 0x1e

/* SHELF_FUZZ_VERBOSE=1 keeps shelfd's log and traces the targets' callbacks
 * (for reading what a reproducer does). */
static int fz_verbose;
static inline void fz_quiet_logs(void) {
  fz_verbose = getenv("SHELF_FUZZ_VERBOSE") != NULL;
  log_set_level(fz_verbose ? LOG_DEBUG : (log_level)(LOG_ERROR + 1));
}
#define FZ_MAX_PENDING 64 /* requests held; more are refused, as a busy store would */

/* Call fn(piece, len, arg) for each separated piece (empty ones too). */
static inline void fz_split(const uint8_t *data, size_t size,
                            void (*fn)(const uint8_t *p, size_t n, void *arg),
                            void *arg) {
  size_t start = 0;
  for (size_t i = 0; i <= size; i++) {
    if (i == size || data[i] == FZ_SEP) {
      size_t n = i - start;
      uint8_t *copy = malloc(n ? n : 1);
      if (n)
        memcpy(copy, data + start, n);
      fn(copy, n, arg);
      free(copy);
      start = i + 1;
    }
  }
}

/* NUL-terminated copy of a piece (for APIs that take C strings). */
static inline char *fz_cstr(const uint8_t *p, size_t n) {
  char *s = malloc(n + 1);
  if (n)
    memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

/* Walk a value the way a consumer would, so a dangling or half-built cJSON
 * tree is touched (ASan sees it), and pack it as the RPC writer does. */
static inline void fz_touch(const cJSON *v) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  mpjson_pack(&pk, v);
  /* What goes to Lua must come back the same (the editor echoes records). */
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  if (msgpack_unpack_next(&u, sb.data, sb.size, &off) != MSGPACK_UNPACK_SUCCESS ||
      off != sb.size) {
    fprintf(stderr, "fuzz: mpjson_pack produced undecodable msgpack\n");
    abort();
  }
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&sb);
}

/* --- the held-request store ----------------------------------------------- */

typedef enum { FZ_INSERT, FZ_UPDATE, FZ_REMOVE, FZ_STAMPS, FZ_FETCH, FZ_LOGIN, FZ_LOGOUT,
               FZ_SEARCH } fz_op;

typedef struct fz_pending {
  fz_op op;
  store_table t;
  char *id;
  store_done_cb cb;
  void *data;
  struct fz_pending *next;
} fz_pending;

typedef struct {
  store base;
  fz_pending *head, *tail;
  int npending;
  store_event_cb watch_cb;
  void *watch_data;
} fz_store;

static inline int fz_queue(store *st, fz_op op, store_table t, const char *id,
                           store_done_cb cb, void *data) {
  fz_store *fs = (fz_store *)st;
  if (fs->npending >= FZ_MAX_PENDING)
    return STORE_EUNAVAILABLE;
  fz_pending *p = calloc(1, sizeof *p);
  p->op = op;
  p->t = t;
  p->id = id ? util_strdup(id) : NULL;
  p->cb = cb;
  p->data = data;
  if (fs->tail)
    fs->tail->next = p;
  else
    fs->head = p;
  fs->tail = p;
  fs->npending++;
  return 0;
}

/* The oldest held request, taken off the queue (the caller frees it with
 * fz_pending_free after answering it exactly once), or NULL. */
static inline fz_pending *fz_take(fz_store *fs) {
  fz_pending *p = fs->head;
  if (!p)
    return NULL;
  fs->head = p->next;
  if (!fs->head)
    fs->tail = NULL;
  fs->npending--;
  return p;
}

static inline void fz_pending_free(fz_pending *p) {
  free(p->id);
  free(p);
}

static inline int fz_insert(store *st, store_table t, const cJSON *rec, store_done_cb cb, void *data) {
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "id");
  return fz_queue(st, FZ_INSERT, t, cJSON_IsString(id) ? id->valuestring : NULL, cb, data);
}
static inline int fz_update(store *st, store_table t, const char *id, const cJSON *fields,
                     store_done_cb cb, void *data) {
  (void)fields;
  return fz_queue(st, FZ_UPDATE, t, id, cb, data);
}
static inline int fz_remove(store *st, store_table t, const char *id, store_done_cb cb, void *data) {
  return fz_queue(st, FZ_REMOVE, t, id, cb, data);
}
static inline int fz_stamps(store *st, store_table t, store_done_cb cb, void *data) {
  return fz_queue(st, FZ_STAMPS, t, NULL, cb, data);
}
static inline int fz_fetch(store *st, store_table t, const cJSON *ids, store_done_cb cb, void *data) {
  (void)ids;
  return fz_queue(st, FZ_FETCH, t, NULL, cb, data);
}
static inline int fz_watch(store *st, store_event_cb cb, void *data) {
  fz_store *fs = (fz_store *)st;
  fs->watch_cb = cb;
  fs->watch_data = data;
  return 0;
}
static inline cJSON *fz_describe(store *st) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "held", ((fz_store *)st)->npending);
  return o;
}
static inline void fz_close(store *st, store_closed_cb closed, void *data) {
  (void)st;
  if (closed)
    closed(data);
}
static inline int fz_login(store *st, const char *email, const char *password, store_done_cb cb,
                    void *data) {
  (void)password;
  return fz_queue(st, FZ_LOGIN, STORE_BLOCKS, email, cb, data);
}
static inline int fz_logout(store *st, store_done_cb cb, void *data) {
  return fz_queue(st, FZ_LOGOUT, STORE_BLOCKS, NULL, cb, data);
}

static inline int fz_search(store *st, const char *q, unsigned tables, int limit,
                            store_done_cb cb, void *data) {
  (void)q, (void)tables, (void)limit;
  return fz_queue(st, FZ_SEARCH, STORE_BLOCKS, NULL, cb, data);
}

/* The held request is answered later as any other; the engine drops it. */
static inline int fz_search_cancel(store *st, store_done_cb cb, void *data) {
  (void)st, (void)cb, (void)data;
  return UV_ENOENT;
}

/* No since and count_until (NULL, last): every refresh compares stamps, the
 * path the fuzzers drive. */
static const struct store_ops fz_store_ops = {
    .name = "fuzz",        .insert = fz_insert,       .update = fz_update,
    .remove = fz_remove,   .stamps = fz_stamps,       .fetch = fz_fetch,
    .watch = fz_watch,     .describe = fz_describe,   .close = fz_close,
    .login = fz_login,     .logout = fz_logout,       .search = fz_search,
    .search_cancel = fz_search_cancel};

static inline void fz_store_init(fz_store *fs) {
  memset(fs, 0, sizeof *fs);
  fs->base.ops = &fz_store_ops;
}

/* Answer everything still held with STORE_ECLOSED, as a closing store does
 * (answers may queue new requests: those are refused by then, see below). */
static inline void fz_store_drain(fz_store *fs) {
  fz_pending *p;
  while ((p = fz_take(fs)) != NULL) {
    p->cb(p->data, STORE_ECLOSED, "the store is closing", NULL);
    fz_pending_free(p);
  }
}

/* --- the sync engine over it ---------------------------------------------- */

static inline void fz_on_changed(void *data, model_kind kind, uint64_t version,
                          const cJSON *upserted, const cJSON *deleted) {
  (void)data;
  if (fz_verbose)
    fprintf(stderr, "fuzz: changed %s v%llu: %d upserted, %d deleted\n", model_kind_name(kind),
            (unsigned long long)version, cJSON_GetArraySize(upserted), cJSON_GetArraySize(deleted));
  fz_touch(upserted);
  fz_touch(deleted);
}
static inline void fz_on_done(void *data, uint64_t ticket, const char *error, const cJSON *item) {
  (void)data;
  if (fz_verbose)
    fprintf(stderr, "fuzz: done %llu: %s\n", (unsigned long long)ticket, error ? error : "ok");
  if (error && strlen(error) > (1u << 20))
    abort(); /* a message for a person is never this long */
  fz_touch(item);
}
static inline void fz_on_status(void *data, const cJSON *status) {
  (void)data;
  fz_touch(status);
}

static inline void fz_flag_closed(void *data) { *(int *)data = 1; }

/* Close the engine the way shelfd does (engine, then store) and run the loop
 * until every handle is gone. */
static inline void fz_sync_finish(uv_loop_t *loop, sync_engine *s, fz_store *fs) {
  int closed = 0;
  sync_close(s, fz_flag_closed, &closed);
  fz_store_drain(fs);
  while (!closed && uv_run(loop, UV_RUN_ONCE))
    ;
  if (!closed) {
    fprintf(stderr, "fuzz: the sync engine never finished closing\n");
    abort();
  }
  fz_store_drain(fs); /* nothing should be left; free it if there is */
}

#endif
