/* sync_query.c - the sync engine's queries (see sync.h), answered through
 * answer() and never behind pushes: get (an item whole, read from the
 * store), search (in the store where it can, and in what is held) and
 * cancelling them. */
#define _GNU_SOURCE /* strcasestr */
#include "sync_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpjson.h"

/* --- reads from memory ----------------------------------------------------- */

static int sync_matches(const cJSON *rec, const char *q) {
  static const char *cols[] = {"title", "name", "description", "content", NULL};
  for (int i = 0; cols[i]; i++) {
    const char *v = mpjson_get_str(rec, cols[i]);
    if (v && strcasestr(v, q))
      return 1;
  }
  const cJSON *tag;
  cJSON_ArrayForEach(tag, cJSON_GetObjectItemCaseSensitive(rec, "tags")) {
    if (cJSON_IsString(tag) && strcasestr(tag->valuestring, q))
      return 1;
  }
  return 0;
}

static void sync_add_hit(cJSON *out, model_kind k, const char *id) {
  cJSON *hit = cJSON_CreateObject();
  cJSON_AddStringToObject(hit, "kind", model_kind_name(k));
  cJSON_AddStringToObject(hit, "id", id);
  cJSON_AddItemToArray(out, hit);
}

/* Hits held in memory: temporary blocks (never in the store), folders by
 * name, and with `held` the items too (for a store that cannot search). */
static cJSON *sync_search_memory(sync_engine *s, const char *query, int kind, size_t limit,
                                 int held) {
  cJSON *out = cJSON_CreateArray();
  size_t n = 0;
  map_iter it;
  const char *id;
  void *v;
  if (kind < 0 || kind == MODEL_BLOCK) {
    it = (map_iter){0};
    while (n < limit && map_next(s->temps, &it, &id, &v)) {
      if (sync_matches(v, query)) {
        sync_add_hit(out, MODEL_BLOCK, id);
        n++;
      }
    }
  }
  for (int t = 0; t < STORE_NTABLES; t++) {
    model_kind k = model_kind_of((store_table)t);
    if ((kind >= 0 && (int)k != kind) || (!held && k != MODEL_PROJECT))
      continue;
    it = (map_iter){0};
    while (n < limit && map_next(s->held[t], &it, &id, &v)) {
      /* Content is not held: titles, descriptions (their start) and tags. */
      if (!row_may_hold(v, query))
        continue;
      cJSON *sum = row_json((store_table)t, id, v);
      if (sum && sync_matches(sum, query)) {
        sync_add_hit(out, k, id);
        n++;
      }
      cJSON_Delete(sum);
    }
  }
  return out;
}

/* --- queries ------------------------------------------------------------------ */

static void sync_answer(sync_engine *s, uint64_t ticket, const char *error,
                        const cJSON *result) {
  if (s->cb.answer)
    s->cb.answer(s->data, ticket, error, result);
}

/* The row of a get query came (or not): answer with the whole item. */
static void sync_on_get(void *data, int status, const char *error, cJSON *rows) {
  sync_req *r = data;
  sync_engine *s = r->s;
  sync_getq *q = r->get;
  store_table t = r->table;
  int closing = sync_req_end(r);
  list_remove(&q->link);
  const cJSON *row = cJSON_GetArrayItem(rows, 0);
  char *msg = NULL;
  cJSON *item = NULL;
  if (closing)
    msg = util_strdup("shelfd is shutting down");
  else if (status < 0)
    msg = util_printf("Loading %s %s failed: %s", model_kind_label(q->kind), q->id, error);
  else if (!row || model_row_problem(t, row))
    msg = util_printf("there is no %s with id %s (deleted elsewhere?)",
                      model_kind_label(q->kind), q->id);
  else
    item = model_item(t, row, 0);
  if (!q->cancelled)
    sync_answer(s, q->ticket, msg, item);
  free(msg);
  cJSON_Delete(item);
  cJSON_Delete(rows);
  free(q);
  if (closing)
    sync_maybe_finish_close(s);
}

/* Content is not held: a get reads the row from the store (SQLite's thread
 * pool, an HTTP request), except a temporary block's, which lives here.
 * No cache: a read by primary key costs well under a millisecond on SQLite,
 * and a cache would have to follow every change made elsewhere. */
void sync_query_get(sync_engine *s, uint64_t ticket, model_kind k, const char *id) {
  store_table t = STORE_BLOCKS;
  cJSON *tmp = k == MODEL_BLOCK ? map_get(s->temps, id) : NULL;
  if (tmp) {
    cJSON *item = model_item(STORE_BLOCKS, tmp, 1);
    sync_answer(s, ticket, NULL, item);
    cJSON_Delete(item);
    return;
  }
  /* Items are read whether or not held (the first load may be under way);
   * a folder's table is known only from what is held. */
  int found = sync_find(s, k, id, &t);
  if (s->closing || (!found && k == MODEL_PROJECT)) {
    char *msg = s->closing ? util_strdup("shelfd is shutting down")
                           : util_printf("there is no %s with id %s", model_kind_label(k), id);
    sync_answer(s, ticket, msg, NULL);
    free(msg);
    return;
  }
  sync_getq *q = util_calloc(1, sizeof *q + strlen(id) + 1);
  q->ticket = ticket;
  q->kind = k;
  memcpy(q->id, id, strlen(id) + 1);
  list_push_back(&s->gets, &q->link);
  sync_req *r = sync_req_new(s, REQ_GET, t);
  r->get = q;
  int rc;
  if (s->st->ops->read) {
    /* The stamp held lets a local copy answer when it has this version. */
    row_entry *e = found ? map_get(s->held[t], id) : NULL;
    rc = s->st->ops->read(s->st, t, id, e ? row_stamp(e) : NULL, sync_on_get, r);
  } else {
    cJSON *ids = cJSON_CreateArray();
    cJSON_AddItemToArray(ids, cJSON_CreateString(id));
    rc = store_fetch(s->st, t, ids, sync_on_get, r);
    cJSON_Delete(ids);
  }
  if (rc < 0) {
    sync_req_end(r);
    list_remove(&q->link);
    free(q);
    char *msg = util_printf("Loading %s %s failed: the store refused the request",
                            model_kind_label(k), id);
    sync_answer(s, ticket, msg, NULL);
    free(msg);
  }
}

/* A search in the store. One at a time: a newer one, sync_cancel and
 * sync_close stop it (`quiet`: its answer, if any, is dropped). */
typedef struct sync_search_req {
  sync_engine *s;
  uint64_t ticket;
  cJSON *early; /* the hits found in memory, first in the answer */
  size_t limit;
  int quiet;
} sync_search_req;

static void sync_on_search(void *data, int status, const char *error, cJSON *rows) {
  sync_search_req *r = data;
  sync_engine *s = r->s;
  s->searching--;
  if (s->search == r)
    s->search = NULL;
  if (!r->quiet && status < 0) {
    sync_answer(s, r->ticket, error, NULL);
  } else if (!r->quiet) {
    /* Kinds in turn when the limit cuts (a backend may answer one table's
     * hits after the other's). */
    size_t n = (size_t)cJSON_GetArraySize(r->early);
    const cJSON *next[STORE_NTABLES];
    for (int t = 0; t < STORE_NTABLES; t++)
      next[t] = rows ? rows->child : NULL;
    for (int more = 1; more && n < r->limit;) {
      more = 0;
      for (int t = 0; t < STORE_NTABLES && n < r->limit; t++) {
        const cJSON *hit = next[t];
        const cJSON *tt = NULL, *id = NULL;
        for (; hit; hit = hit->next) {
          tt = cJSON_GetArrayItem(hit, 0);
          id = cJSON_GetArrayItem(hit, 1);
          if (cJSON_IsNumber(tt) && tt->valueint == t && cJSON_IsString(id))
            break;
        }
        next[t] = hit ? hit->next : NULL;
        if (hit) {
          sync_add_hit(r->early, model_kind_of((store_table)t), id->valuestring);
          n++;
          more = 1;
        }
      }
    }
    sync_answer(s, r->ticket, NULL, r->early);
  }
  cJSON_Delete(rows);
  cJSON_Delete(r->early);
  free(r);
  sync_maybe_finish_close(s);
}

/* Stop the search under way; answer it with `why` unless NULL. */
void sync_search_stop(sync_engine *s, const char *why) {
  sync_search_req *r = s->search;
  if (!r)
    return;
  s->search = NULL;
  r->quiet = 1;
  if (why)
    sync_answer(s, r->ticket, why, NULL);
  store_search_cancel(s->st, sync_on_search, r);
}

void sync_query_search(sync_engine *s, uint64_t ticket, const char *query,
                       int kind_or_minus1, size_t limit) {
  sync_search_stop(s, "cancelled: a newer search replaced it");
  unsigned tables = 0;
  if (kind_or_minus1 < 0 || kind_or_minus1 == MODEL_BLOCK)
    tables |= 1u << STORE_BLOCKS;
  if (kind_or_minus1 < 0 || kind_or_minus1 == MODEL_PROMPT)
    tables |= 1u << STORE_PROMPTS;
  int in_store = tables && s->st->ops->search && !s->closing && query[0];
  if (!in_store) {
    cJSON *held = sync_search_memory(s, query, kind_or_minus1, limit, 1);
    sync_answer(s, ticket, NULL, held);
    cJSON_Delete(held);
    return;
  }
  sync_search_req *r = util_calloc(1, sizeof *r);
  r->s = s;
  r->ticket = ticket;
  r->limit = limit;
  int rc = store_search(s->st, query, tables, limit > INT32_MAX ? INT32_MAX : (int)limit,
                        sync_on_search, r);
  if (rc < 0) {
    sync_answer(s, ticket, rc == STORE_ECLOSED ? "shelfd is shutting down"
                                               : "the search could not start", NULL);
    free(r);
    return;
  }
  /* After the store's search has started (its answer never comes before
   * this returns): the folders held are matched here meanwhile. */
  r->early = sync_search_memory(s, query, kind_or_minus1, limit, 0);
  s->search = r;
  s->searching++;
}

void sync_cancel(sync_engine *s, uint64_t ticket) {
  if (s->search && s->search->ticket == ticket)
    sync_search_stop(s, NULL);
  /* A read under way is not stopped (it is one row); its answer is dropped. */
  list_node *n;
  list_for_each(n, &s->gets) {
    sync_getq *q = list_entry(n, sync_getq, link);
    if (q->ticket == ticket)
      q->cancelled = 1;
  }
}
