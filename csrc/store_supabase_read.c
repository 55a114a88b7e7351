/* store_supabase_read.c - the Supabase backend's reads of the server: every
 * row of a table a page at a time (keyset pages ordered by id, halved when
 * a page is too big to take, the local copy told which rows the read kept),
 * rows by id in requests of a bounded number of ids, and the halves of a
 * refresh (stamps, rows changed since a stamp, counts). A first load in a
 * saved session goes to the local copy instead (store_supabase_local.c).
 */
#include "store_supabase_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpjson.h"
#include "util.h"

#define SB_IDS_PER_FETCH 150    /* ids in one `id=in.(...)` query */
/* Rows per page of a fetch of every row: a whole table of 100k rows is
 * hundreds of MiB, past any answer the HTTP client takes (HTTP_DEFAULT_MAX_BODY). */
#define SB_PAGE_ROWS 1000

/* A row written to the local copy while a read of every row of its table is
 * under way is kept by that read's end (sbcache_retain), even if its page
 * came before the row existed. */
void sb_pagers_note(sb_store *sb, store_table t, const char *id) {
  list_node *n;
  list_for_each(n, &sb->pagers) {
    sb_req *p = list_entry(n, sb_req, link);
    if (p->t == t && id && p->seen)
      cJSON_AddItemToArray(p->seen, cJSON_CreateString(id));
  }
}

/* --- reads in pages ---------------------------------------------------------- */

/* The local copy's writer caught up: the pages held for it go out. */
static void sb_cache_caught_up(void *data) {
  sb_store *sb = data;
  list_node now, *n;
  list_take_all(&now, &sb->cache_behind);
  while ((n = list_pop_front(&now)) != NULL)
    sb_send(list_entry(n, sb_req, link));
}

/* Ask for the page after p->after (ordered by id, so no row is read twice or
 * missed while others are added or deleted meanwhile). The first page asks
 * for the count too: it tells a page the server cut short (its cap on rows,
 * PostgREST's max-rows: 1000 on a new Supabase project) from the last.
 * While the local copy's writer is far behind (it is slower than a server
 * can send), the page waits for it: the rows queued for the copy stay
 * bounded instead of growing with the library. */
void sb_fetch_page(sb_req *p) {
  sb_store *sb = p->sb;
  char *user = sb_filter_user(sb);
  char *after = p->after ? http_escape(p->after) : NULL;
  sb_req *part = sb_req_new(
      sb, p->op, p->t, "GET",
      util_printf("%s?select=%s%s%s%s%s%s&order=id&limit=%d", sb->tables[p->t],
                  p->op == SB_STAMPS ? "id,updated_at" : "*", p->filter ? "&" : "",
                  p->filter ? p->filter : "", user, after ? "&id=gt." : "", after ? after : "",
                  p->page_rows),
      NULL, NULL, NULL);
  part->parent = p;
  free(after);
  free(user);
  if (sb->cache && sbcache_backlog(sb->cache) > sb->cache_backlog_max) {
    if (list_empty(&sb->cache_behind))
      sbcache_when_below(sb->cache, sb->cache_backlog_max / 2, sb_cache_caught_up, sb);
    list_push_back(&sb->cache_behind, &part->link);
    return;
  }
  sb_send(part);
}

void sb_read_pages(sb_store *sb, sb_op op, store_table t, const char *filter, int summaries,
                   store_done_cb cb, void *data) {
  sb_req *p = sb_req_new(sb, op, t, "GET", NULL, NULL, cb, data);
  p->acc = cJSON_CreateArray();
  p->seen = op == SB_SINCE ? NULL : cJSON_CreateArray();
  p->filter = filter ? util_strdup(filter) : NULL;
  p->page_rows = SB_PAGE_ROWS;
  p->sent_total = -1;
  p->summaries = summaries;
  p->parts_left = 1;
  if (op == SB_FETCH && sb->cache) {
    p->holds_index = 1;
    sbcache_hold_index(sb->cache, 1);
  }
  list_push_back(&sb->pagers, &p->link);
  sb_fetch_page(p);
}

/* Every row of t, in pages of SB_PAGE_ROWS; `summaries`: each row without its
 * content, its size in bytes as STORE_CONTENT_SIZE instead (so 100k rows are
 * not all held with their content at once). */
void sb_fetch_all(sb_store *sb, store_table t, int summaries, store_done_cb cb,
                  void *data) {
  sb_read_pages(sb, SB_FETCH, t, NULL, summaries, cb, data);
}

/* A page came (or failed): keep its rows, then ask for the next, or finish
 * after the last. */
void sb_page_done(sb_req *r, int status, const char *error, cJSON *rows) {
  sb_store *sb = r->sb;
  sb_req *p = r->parent;
  int sent = r->sent_rows;
  int first = p->after == NULL;
  if (first)
    p->sent_total = r->sent_total; /* the count of all rows, or -1 */
  /* Each page must start after the one before (ids only go up): a server
   * that ignored the filter would send the same rows forever. */
  if (status == 0 && sent > 0 && (!r->sent_last || (p->after && strcmp(r->sent_last, p->after) <= 0))) {
    status = STORE_EBACKEND;
    error = "Supabase sent the same rows again for the next page (it did not follow "
            "order=id and id=gt.)";
  } else if (r->sent_last) {
    sb_set(&p->after, r->sent_last);
  }
  sb_req_free(r);
  if (status < 0 || !p->cb) {
    cJSON_Delete(rows);
    if (p->cb)
      store_defer_done(&sb->defer, p->cb, p->data, status, error, NULL,
                       sb->base.retry_after_ms);
    sb_req_free(p);
    return;
  }
  cJSON *row;
  while ((row = cJSON_DetachItemFromArray(rows, 0)) != NULL) {
    /* A row, or a stamp pair [id, updated_at]. */
    const char *id = cJSON_IsArray(row) ? cJSON_GetStringValue(cJSON_GetArrayItem(row, 0))
                                        : mpjson_get_str(row, "id");
    if (id && p->seen)
      cJSON_AddItemToArray(p->seen, cJSON_CreateString(id));
    if (p->summaries) {
      cJSON *c = cJSON_DetachItemFromObjectCaseSensitive(row, "content");
      cJSON_AddNumberToObject(row, STORE_CONTENT_SIZE,
                              cJSON_IsString(c) ? (double)strlen(c->valuestring) : 0);
      cJSON_Delete(c);
    }
    cJSON_AddItemToArray(p->acc, row);
  }
  cJSON_Delete(rows);
  /* A first page with fewer rows than asked and than the count: the server
   * caps its answers there, and a page of that size is a full one. */
  long long total = p->sent_total;
  if (first && total > sent && sent > 0 && sent < p->page_rows)
    p->page_rows = sent;
  /* A full page may have more after it; a short one was the last. Without a
   * count to tell a cap from the end, only an empty page ends the read. */
  int last = sent == 0 || (total >= 0 && sent < p->page_rows);
  if (!last) {
    if (p->op == SB_FETCH && p->summaries && cJSON_GetArraySize(p->acc) > 0) {
      /* Summaries of every row go to the engine a page at a time (STORE_PAGE):
       * shown at once in a first load, never all in memory at once. */
      store_defer_done(&sb->defer, p->cb, p->data, STORE_PAGE, NULL, p->acc, 0);
      p->acc = cJSON_CreateArray();
    }
    sb_fetch_page(p);
    return;
  }
  /* The last page: the local copy keeps exactly the rows read. */
  const char *user = auth_user_id(sb->auth);
  if (sb->cache && user && p->seen) {
    char *ids = cJSON_PrintUnformatted(p->seen);
    if (ids) {
      sbcache_retain(sb->cache, user, p->t, ids, strlen(ids));
      cJSON_free(ids);
    }
  }
  cJSON *all = p->acc;
  p->acc = NULL;
  store_defer_done(&sb->defer, p->cb, p->data, 0, NULL, all, 0);
  sb_req_free(p);
}

/* --- fetch (rows by id, or every row), and the halves of a refresh ----------- */

int sb_fetch(store *st, store_table t, const cJSON *ids, store_done_cb cb,
             void *data) {
  sb_store *sb = sb_of(st);
  if (!ids && sb_cache_first_load(sb, t, 0, cb, data))
    return 0;
  if (!ids) {
    sb_fetch_all(sb, t, 0, cb, data);
    return 0;
  }
  char *user = sb_filter_user(sb);
  /* Many ids: several requests of SB_IDS_PER_FETCH, gathered by a parent. */
  int n = cJSON_GetArraySize(ids);
  sb_req *parent = sb_req_new(sb, SB_FETCH, t, "GET", NULL, NULL, cb, data);
  parent->acc = cJSON_CreateArray();
  parent->parts_left = n == 0 ? 1 : (n + SB_IDS_PER_FETCH - 1) / SB_IDS_PER_FETCH;
  if (n == 0) {
    free(user);
    parent->parts_left = 0;
    cJSON *all = parent->acc;
    parent->acc = NULL;
    sb_req_free(parent);
    store_defer_done(&sb->defer, cb, data, 0, NULL, all, 0);
    return 0;
  }
  const cJSON *id = ids->child; /* a cursor: indexing each id would be quadratic */
  for (int start = 0; start < n; start += SB_IDS_PER_FETCH) {
    size_t cap = 64 + SB_IDS_PER_FETCH * (UTIL_UUID_LEN + 1);
    char *list = util_malloc(cap);
    size_t len = 0;
    list[0] = '\0';
    for (int i = start; i < n && i < start + SB_IDS_PER_FETCH; i++, id = id->next) {
      if (!cJSON_IsString(id) || !util_is_uuid(id->valuestring))
        continue;
      len += (size_t)snprintf(list + len, cap - len, "%s%s", len ? "," : "", id->valuestring);
    }
    sb_req *part = sb_req_new(sb, SB_FETCH, t, "GET",
                              util_printf("%s?select=*&id=in.(%s)%s", sb->tables[t], list, user),
                              NULL, NULL, NULL);
    free(list);
    part->parent = parent;
    sb_send(part);
  }
  free(user);
  return 0;
}

/* A saved session's first load of a table comes from the local copy without
 * any content (its size instead). PostgREST cannot give a size without the
 * content, so every other fetch is whole rows (the engine drops content). */
int sb_fetch_summaries(store *st, store_table t, const cJSON *ids, store_done_cb cb,
                       void *data) {
  if (!ids && sb_cache_first_load(sb_of(st), t, 1, cb, data))
    return 0;
  if (!ids) {
    sb_fetch_all(sb_of(st), t, 1, cb, data);
    return 0;
  }
  return sb_fetch(st, t, ids, cb, data);
}

int sb_stamps(store *st, store_table t, store_done_cb cb, void *data) {
  sb_read_pages(sb_of(st), SB_STAMPS, t, NULL, 0, cb, data);
  return 0;
}

/* An updated_at for a query string: as the server printed it (it compares
 * it as a time), percent-encoded ('+' would read as a space). NULL if it is
 * not a stamp. The caller frees it. */
static char *sb_stamp_arg(const char *stamp) {
  long long us;
  if (util_stamp_us(stamp, &us) < 0)
    return NULL;
  return http_escape(stamp);
}

int sb_since(store *st, store_table t, const char *stamp, const cJSON *known,
             store_done_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  char *at = sb_stamp_arg(stamp);
  if (!at)
    return STORE_EINVALID;
  int n = known ? cJSON_GetArraySize(known) : 0;
  char *filter;
  if (!known) {
    filter = util_printf("updated_at=gt.%s", at);
  } else if (n == 0) {
    filter = util_printf("updated_at=gte.%s", at);
  } else {
    size_t cap = 16 + (size_t)n * (UTIL_UUID_LEN + 1), len = 0;
    char *list = util_malloc(cap);
    list[0] = '\0';
    const cJSON *id;
    cJSON_ArrayForEach(id, known) {
      if (cJSON_IsString(id) && util_is_uuid(id->valuestring))
        len += (size_t)snprintf(list + len, cap - len, "%s%s", len ? "," : "", id->valuestring);
    }
    /* Later, or at the stamp and not among the rows held there. */
    filter = len ? util_printf("or=(updated_at.gt.%s,and(updated_at.eq.%s,id.not.in.(%s)))", at,
                               at, list)
                 : util_printf("updated_at=gte.%s", at);
    free(list);
  }
  /* In pages: a bulk change elsewhere (30k rows at once) is more than the
   * server sends in one answer. */
  sb_read_pages(sb, SB_SINCE, t, filter, 0, cb, data);
  free(filter);
  free(at);
  return 0;
}

int sb_count_until(store *st, store_table t, const char *stamp, store_done_cb cb,
                   void *data) {
  sb_store *sb = sb_of(st);
  char *at = sb_stamp_arg(stamp);
  if (!at)
    return STORE_EINVALID;
  char *user = sb_filter_user(sb);
  /* HEAD: the count comes in Content-Range, no rows are sent; limit=1 so that
   * a server that builds the body anyway builds one row of it, not all. */
  sb_send(sb_req_new(sb, SB_COUNT, t, "HEAD",
                     util_printf("%s?select=id&updated_at=lte.%s%s&limit=1", sb->tables[t], at,
                                 user),
                     NULL, cb, data));
  free(user);
  free(at);
  return 0;
}

/* --- delta: since and count_until in fewer requests ---------------------------- */

/* Stamps of the newest rows a delta's first request asks for: the row a
 * write here changed since the mark, and one before it (each more is about
 * 100 bytes on every refresh). More changed than that (another client's
 * write too, an import elsewhere): since and count_until. */
#define SB_DELTA_NEWEST 2

/* How long a table's count may be left out of the refreshes (sb_delta). */
#define SB_COUNT_EVERY_MS 30000

typedef struct {
  sb_store *sb;
  store_table t;
  char *stamp;
  long long at;  /* stamp, in microseconds */
  cJSON *known;  /* a copy of the caller's, or NULL */
  store_done_cb cb;
  void *data;
  int parts;     /* answers still to come */
  double count;  /* rows at or before the stamp (-1: not yet) */
  int uncounted; /* the count was left out (sb_count_owed) */
  unsigned long epoch; /* Realtime's epoch when the count was asked */
  uint64_t asked_ms;
  cJSON *rows;   /* the rows changed since it */
  int status;
  char *error;
} sb_delta_req;

static void sb_delta_free(sb_delta_req *d) {
  free(d->stamp);
  cJSON_Delete(d->known);
  cJSON_Delete(d->rows);
  free(d->error);
  free(d);
}

static void sb_delta_part_failed(sb_delta_req *d, int status, const char *error) {
  if (d->status == 0) {
    d->status = status;
    d->error = util_strdup(error ? error : "the delta failed");
  }
}

/* A count of t came, with the rest of the delta, asked at d's epoch: while
 * Realtime stays joined at it, the next refreshes may leave theirs out. */
static void sb_delta_counted(sb_delta_req *d) {
  d->sb->counted[d->t].epoch = d->epoch;
  d->sb->counted[d->t].ms = d->asked_ms;
}

/* Every part answered: [count, row, ...] or the first error. */
static void sb_delta_part_done(sb_delta_req *d) {
  if (--d->parts > 0)
    return;
  if (d->status < 0) {
    d->cb(d->data, d->status, d->error, NULL);
  } else {
    if (!d->uncounted && d->count >= 0)
      sb_delta_counted(d);
    cJSON *out = d->rows ? d->rows : cJSON_CreateArray();
    d->rows = NULL;
    cJSON_InsertItemInArray(out, 0, d->uncounted ? cJSON_CreateNull() : cJSON_CreateNumber(d->count));
    d->cb(d->data, 0, NULL, out);
  }
  sb_delta_free(d);
}

/* Rows of since, or of a read of one changed row: added to the answer. */
static void sb_delta_on_rows(void *data, int status, const char *error, cJSON *rows) {
  sb_delta_req *d = data;
  if (status < 0) {
    sb_delta_part_failed(d, status, error);
  } else {
    if (!d->rows)
      d->rows = cJSON_CreateArray();
    cJSON *row;
    while (rows && (row = cJSON_DetachItemFromArray(rows, 0)) != NULL)
      cJSON_AddItemToArray(d->rows, row);
  }
  cJSON_Delete(rows);
  sb_delta_part_done(d);
}

static void sb_delta_on_count(void *data, int status, const char *error, cJSON *rows) {
  sb_delta_req *d = data;
  const cJSON *n = cJSON_GetArrayItem(rows, 0);
  if (status < 0) {
    sb_delta_part_failed(d, status, error);
  } else {
    d->count = cJSON_IsNumber(n) ? n->valuedouble : -1;
  }
  cJSON_Delete(rows);
  sb_delta_part_done(d);
}

static int sb_delta_known(const sb_delta_req *d, const char *id) {
  const cJSON *k;
  cJSON_ArrayForEach(k, d->known) {
    if (cJSON_IsString(k) && strcmp(k->valuestring, id) == 0)
      return 1;
  }
  return 0;
}

/* --- the rows written here, for the next refresh ------------------------------ */

void sb_written_keep(sb_store *sb, store_table t, const cJSON *row) {
  const char *id = mpjson_get_str(row, "id"), *stamp = mpjson_get_str(row, "updated_at");
  const char *content = mpjson_get_str(row, "content");
  long long us;
  if (!id || util_stamp_us(stamp, &us) < 0 || (content && strlen(content) > SB_WRITTEN_MAX))
    return;
  int slot = sb->written_next;
  for (int i = 0; i < SB_WRITTEN; i++) {
    if (sb->written[i].id && sb->written[i].t == t && strcmp(sb->written[i].id, id) == 0)
      slot = i; /* its row before: replaced */
  }
  if (slot == sb->written_next)
    sb->written_next = (sb->written_next + 1) % SB_WRITTEN;
  free(sb->written[slot].id);
  cJSON_Delete(sb->written[slot].row);
  sb->written[slot].t = t;
  sb->written[slot].id = util_strdup(id);
  sb->written[slot].us = us;
  sb->written[slot].row = cJSON_Duplicate(row, 1);
}

cJSON *sb_written_get(sb_store *sb, store_table t, const char *id, const char *stamp) {
  long long want;
  if (util_stamp_us(stamp, &want) < 0)
    return NULL;
  for (int i = 0; i < SB_WRITTEN; i++) {
    if (sb->written[i].id && sb->written[i].t == t && strcmp(sb->written[i].id, id) == 0 &&
        sb->written[i].us == want)
      return cJSON_Duplicate(sb->written[i].row, 1);
  }
  return NULL;
}

void sb_written_clear(sb_store *sb) {
  for (int i = 0; i < SB_WRITTEN; i++) {
    free(sb->written[i].id);
    cJSON_Delete(sb->written[i].row);
    sb->written[i].id = NULL;
    sb->written[i].row = NULL;
  }
}

/* Read the rows changed ([id, stamp] pairs) into the answer: a row written
 * here at that stamp from what this store kept of it; the others from the
 * local copy, which has them if it has seen that stamp, when nothing is
 * queued there (a read waits behind the writer, and a step of an index build
 * takes 0.1-0.3 s); else from the server, in one request. */
static void sb_delta_read(sb_delta_req *d, const cJSON *changed) {
  sb_store *sb = d->sb;
  cJSON *rest = cJSON_CreateArray();
  const cJSON *pair;
  cJSON_ArrayForEach(pair, changed) {
    cJSON *row = sb_written_get(sb, d->t, cJSON_GetArrayItem(pair, 0)->valuestring,
                                cJSON_GetArrayItem(pair, 1)->valuestring);
    if (!row) {
      cJSON_AddItemReferenceToArray(rest, (cJSON *)pair);
      continue;
    }
    if (!d->rows)
      d->rows = cJSON_CreateArray();
    cJSON_AddItemToArray(d->rows, row);
  }
  changed = rest;
  if (sb->cache && !sbcache_busy(sb->cache)) {
    cJSON_ArrayForEach(pair, changed) {
      d->parts++;
      if (sb_read(&sb->base, d->t, cJSON_GetArrayItem(pair, 0)->valuestring,
                  cJSON_GetArrayItem(pair, 1)->valuestring, sb_delta_on_rows, d) < 0) {
        sb_delta_part_failed(d, STORE_EBACKEND, "the request was refused");
        d->parts--;
      }
    }
    cJSON_Delete(rest);
    return;
  }
  cJSON *ids = cJSON_CreateArray();
  cJSON_ArrayForEach(pair, changed)
    cJSON_AddItemToArray(ids, cJSON_Duplicate(cJSON_GetArrayItem(pair, 0), 1));
  if (cJSON_GetArraySize(ids) > 0) {
    d->parts++;
    if (sb_fetch(&sb->base, d->t, ids, sb_delta_on_rows, d) < 0) {
      sb_delta_part_failed(d, STORE_EBACKEND, "the request was refused");
      d->parts--;
    }
  }
  cJSON_Delete(ids);
  cJSON_Delete(rest);
}

/* The newest stamps came, with the count of every stamped row: the count at
 * or before the mark is that less the rows after it, and each row changed
 * is read (from the local copy when it has that stamp: the row a write here
 * changed is there already). Unless every stamp sent is after the mark:
 * then there may be more, and since and count_until tell. */
static void sb_delta_on_newest(void *data, int status, const char *error, cJSON *rows) {
  sb_delta_req *d = data;
  if (status < 0) {
    sb_delta_part_failed(d, status, error);
    cJSON_Delete(rows);
    sb_delta_part_done(d);
    return;
  }
  cJSON *total = cJSON_DetachItemFromArray(rows, 0);
  int n = cJSON_GetArraySize(rows), later = 0, all_later = n == SB_DELTA_NEWEST;
  cJSON *changed = cJSON_CreateArray(); /* [id, stamp] pairs */
  const cJSON *pair;
  cJSON_ArrayForEach(pair, rows) {
    const char *id = cJSON_GetStringValue(cJSON_GetArrayItem(pair, 0));
    long long us;
    if (!id || util_stamp_us(cJSON_GetStringValue(cJSON_GetArrayItem(pair, 1)), &us) < 0) {
      all_later = 1; /* a stamp we cannot read: let since and count_until judge */
      break;
    }
    if (us > d->at)
      later++;
    else
      all_later = 0;
    /* At the stamp and not among the rows known there (none are when there
     * were too many to list: the count tells of one that came there). */
    if (us > d->at || (us == d->at && d->known && !sb_delta_known(d, id)))
      cJSON_AddItemReferenceToArray(changed, (cJSON *)pair);
  }
  sb_store *sb = d->sb;
  if (all_later || (!d->uncounted && !cJSON_IsNumber(total))) {
    d->parts += d->uncounted ? 1 : 2;
    if (sb_since(&sb->base, d->t, d->stamp, d->known, sb_delta_on_rows, d) < 0) {
      sb_delta_part_failed(d, STORE_EINVALID, "the mark is not a stamp");
      d->parts--;
    }
    if (!d->uncounted && sb_count_until(&sb->base, d->t, d->stamp, sb_delta_on_count, d) < 0) {
      sb_delta_part_failed(d, STORE_EINVALID, "the mark is not a stamp");
      d->parts--;
    }
  } else {
    if (!d->uncounted)
      d->count = total->valuedouble - later;
    sb_delta_read(d, changed);
  }
  cJSON_Delete(changed);
  cJSON_Delete(rows);
  cJSON_Delete(total);
  sb_delta_part_done(d);
}

/* Whether a refresh of t must count its rows. The count is a pass over
 * every row of the user's in PostgreSQL (10 ms for 50k rows), the most of a
 * refresh at 100k. It can be left out while Realtime has been joined since
 * t was last counted: a row deleted there (the DELETE binding is
 * unfiltered), or one that came with an old stamp, came as an event
 * meanwhile (not while the channel is only taken as live: the server has
 * not said its changes flow). Counted again every SB_COUNT_EVERY_MS all the
 * same, for what sends no event: one the server dropped, a row given to
 * another user, a TRUNCATE. */
static int sb_count_owed(const sb_store *sb, store_table t) {
  return !sb->rt || !rt_confirmed(sb->rt) || sb->counted[t].epoch != sb->rt_epoch ||
         uv_now(sb->loop) - sb->counted[t].ms >= SB_COUNT_EVERY_MS;
}

/* One request where since and count_until make two each table: the newest
 * stamps with the count of every stamped row (the same snapshot), then the
 * changed rows by id, only when some changed. A refresh after a write here
 * asks four tables, so this halves its requests and bytes. The count is left
 * out when it is not owed (sb_count_owed): the answer's count is null then. */
int sb_delta(store *st, store_table t, const char *stamp, const cJSON *known,
             store_done_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  long long at;
  if (util_stamp_us(stamp, &at) < 0)
    return STORE_EINVALID;
  sb_delta_req *d = util_calloc(1, sizeof *d);
  d->sb = sb;
  d->t = t;
  d->stamp = util_strdup(stamp);
  d->at = at;
  d->known = known ? cJSON_Duplicate(known, 1) : NULL;
  d->cb = cb;
  d->data = data;
  d->parts = 1;
  d->count = -1;
  d->uncounted = !sb_count_owed(sb, t);
  d->epoch = sb->rt_epoch;
  d->asked_ms = uv_now(sb->loop);
  char *user = sb_filter_user(sb);
  sb_req *r = sb_req_new(sb, SB_NEWEST, t, "GET",
                         util_printf("%s?select=id,updated_at&updated_at=not.is.null%s"
                                     "&order=updated_at.desc&limit=%d",
                                     sb->tables[t], user, SB_DELTA_NEWEST),
                         NULL, sb_delta_on_newest, d);
  r->uncounted = d->uncounted;
  sb_send(r);
  free(user);
  return 0;
}
