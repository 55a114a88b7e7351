/* store_supabase_local.c - what the Supabase backend answers from the local
 * copy of the signed-in user's rows (sbcache.h): the first load of each
 * table in a saved session (the server's full read then owed, cache_stale),
 * a read of a row whose stamp the copy has, and searches of tables a full
 * read filled; the server answers whatever the copy cannot. Also the
 * search of the server itself (ilike, as the web app searches).
 */
#include "store_supabase_internal.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mpjson.h"
#include "util.h"

/* A full refresh from the server is owed for what the copy answered. */
void sb_cache_reconcile(sb_store *sb) {
  if (!sb->cache_stale)
    return;
  sb->cache_stale = 0;
  sb_emit(sb, STORE_EV_RESYNC, STORE_BLOCKS, NULL, NULL);
}

/* Summaries come from the copy in parts of this many rows (STORE_PAGE). */
#define SB_CACHE_PART_ROWS 2000

static void sb_cache_load_free(sb_cache_load *l) {
  free(l->stamp);
  free(l->id);
  free(l->after);
  free(l);
}

static void sb_on_cache_load(void *data, cJSON *rows) {
  sb_cache_load *l = data;
  sb_store *sb = l->sb;
  list_remove(&l->link);
  if (!l->cb) {
    cJSON_Delete(rows);
    sb_cache_load_free(l);
    return;
  }
  int ours = rows && l->session == sb->session && auth_signed_in(sb->auth);
  int n = rows ? cJSON_GetArraySize(rows) : 0;
  if (ours && l->summaries && n == SB_CACHE_PART_ROWS) {
    /* A full part: shown while the next is read. */
    sb_set(&l->after, mpjson_get_str(cJSON_GetArrayItem(rows, n - 1), "id"));
    l->nrows += n;
    store_defer_done(&sb->defer, l->cb, l->data, STORE_PAGE, NULL, rows, 0);
    list_push_back(&sb->cache_loads, &l->link);
    sbcache_load_summaries(sb->cache, auth_user_id(sb->auth), l->t, l->after, SB_CACHE_PART_ROWS,
                           sb_on_cache_load, l);
    return;
  }
  if (!ours && l->nrows > 0) {
    /* Parts were taken: the server's read cannot follow them as the same
     * answer. A failure, retried from the server (the copy is used once). */
    cJSON_Delete(rows);
    store_defer_done(&sb->defer, l->cb, l->data, STORE_EUNAVAILABLE,
                     "the local copy could not be read to the end", NULL, 0);
    sb_cache_load_free(l);
    return;
  }
  if (ours) {
    log_info("supabase: %d %s rows from the local copy", l->nrows + n, sb->tables[l->t]);
    store_defer_done(&sb->defer, l->cb, l->data, 0, NULL, rows, 0);
    /* Realtime's join asks for the full refresh (sb_rt_joined), which the
     * engine runs after this load when it joined already; without Realtime
     * nothing would. */
    if (!sb->rt_state || strcmp(sb->rt_state, rt_state_name(RT_JOINED)) != 0)
      sb->cache_stale = 1;
    if (!sb->realtime_on)
      sb_cache_reconcile(sb);
  } else {
    cJSON_Delete(rows);
    sb_fetch_all(sb, l->t, l->summaries, l->cb, l->data);
  }
  sb_cache_load_free(l);
}

/* The first load of table t in a saved session: 1 if the local copy answers
 * it (whole rows, or summaries: no content, its size instead), else 0. */
int sb_cache_first_load(sb_store *sb, store_table t, int summaries, store_done_cb cb,
                        void *data) {
  if (!sb->cache_first[t])
    return 0;
  sb->cache_first[t] = 0;
  if (!auth_signed_in(sb->auth))
    return 0;
  sb_cache_load *l = util_calloc(1, sizeof *l);
  *l = (sb_cache_load){sb, t, cb, data, sb->session, {NULL, NULL}, summaries, NULL, NULL, NULL, 0};
  list_push_back(&sb->cache_loads, &l->link);
  if (summaries)
    sbcache_load_summaries(sb->cache, auth_user_id(sb->auth), t, NULL, SB_CACHE_PART_ROWS,
                           sb_on_cache_load, l);
  else
    sbcache_load(sb->cache, auth_user_id(sb->auth), t, sb_on_cache_load, l);
  return 1;
}

/* A read answered by the local copy: its row when it has the stamp the
 * engine holds, else the server's. */
static void sb_on_cache_read(void *data, cJSON *rows) {
  sb_cache_load *l = data;
  sb_store *sb = l->sb;
  list_remove(&l->link);
  cJSON *row = rows ? rows->child : NULL;
  long long want, have;
  const char *at = row ? mpjson_get_str(row, "updated_at") : NULL;
  int same = at && util_stamp_us(l->stamp, &want) == 0 && util_stamp_us(at, &have) == 0 &&
             want == have;
  if (!l->cb) {
    cJSON_Delete(rows);
  } else if (same && l->session == sb->session && auth_signed_in(sb->auth)) {
    store_defer_done(&sb->defer, l->cb, l->data, 0, NULL, rows, 0);
  } else {
    cJSON_Delete(rows);
    cJSON *ids = cJSON_CreateArray();
    cJSON_AddItemToArray(ids, cJSON_CreateString(l->id));
    if (sb_fetch(&sb->base, l->t, ids, l->cb, l->data) < 0)
      store_defer_done(&sb->defer, l->cb, l->data, STORE_EBACKEND, "the request was refused",
                       NULL, 0);
    cJSON_Delete(ids);
  }
  sb_cache_load_free(l);
}

int sb_read(store *st, store_table t, const char *id, const char *stamp,
            store_done_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  cJSON *ids = cJSON_CreateArray();
  cJSON_AddItemToArray(ids, cJSON_CreateString(id));
  if (!sb->cache || !stamp || !*stamp || sb->closing || !auth_signed_in(sb->auth)) {
    int rc = sb_fetch(st, t, ids, cb, data);
    cJSON_Delete(ids);
    return rc;
  }
  sb_cache_load *l = util_calloc(1, sizeof *l);
  *l = (sb_cache_load){sb, t, cb, data, sb->session, {NULL, NULL}, 0, util_strdup(stamp),
                       util_strdup(id), NULL, 0};
  list_push_back(&sb->cache_loads, &l->link);
  sbcache_get(sb->cache, auth_user_id(sb->auth), t, ids, sb_on_cache_read, l);
  cJSON_Delete(ids);
  return 0;
}

/* --- search ------------------------------------------------------------------------ */

/* PostgREST's quoting of a value in `or=(...)`: "..." with " and \ escaped. */
static void sb_quote_char(char **o, char c) {
  if (c == '"' || c == '\\')
    *(*o)++ = '\\';
  *(*o)++ = c;
}

/* "*query*" for ilike: % _ \ escaped for LIKE (PostgreSQL's default escape
 * is \), and * (PostgREST's wildcard, with no escape) made _, which matches
 * it too; then quoted for `or`. */
static char *sb_ilike_value(const char *q) {
  char *out = util_malloc(strlen(q) * 4 + 8), *o = out;
  *o++ = '"';
  *o++ = '*';
  for (; *q; q++) {
    if (*q == '%' || *q == '_' || *q == '\\')
      sb_quote_char(&o, '\\');
    sb_quote_char(&o, *q == '*' ? '_' : *q);
  }
  *o++ = '*';
  *o++ = '"';
  *o = '\0';
  return out;
}

/* Rows of `tables` whose title, description or content contain `query`
 * (ilike, as the web app searches), or with a tag equal to it (PostgREST
 * cannot look inside a text[] cheaply). One GET per table, gathered. */
static int sb_search_server(sb_store *sb, const char *query, unsigned tables, int limit,
                            store_done_cb cb, void *data) {
  int parts = 0;
  for (int t = STORE_BLOCKS; t <= STORE_PROMPTS; t++)
    parts += (tables >> t) & 1u;
  sb_req *parent = sb_req_new(sb, SB_SEARCH, STORE_BLOCKS, "GET", NULL, NULL, cb, data);
  parent->acc = cJSON_CreateArray();
  parent->parts_left = parts;
  if (parts == 0 || !query[0]) {
    cJSON *none = parent->acc;
    parent->acc = NULL;
    sb_req_free(parent);
    store_defer_done(&sb->defer, cb, data, 0, NULL, none, 0);
    return 0;
  }
  list_push_back(&sb->searches, &parent->link);
  char *like = sb_ilike_value(query);
  /* A tag equal to the query: the array literal {"q"}, quoted for `or`. */
  char *tag = NULL;
  if (!strpbrk(query, "\"\\"))
    tag = util_printf(",tags.cs.\"{\\\"%s\\\"}\"", query);
  char *user = sb_filter_user(sb);
  for (int t = STORE_BLOCKS; t <= STORE_PROMPTS; t++) {
    if (!((tables >> t) & 1u))
      continue;
    char *or = t == STORE_PROMPTS
                   ? util_printf("(title.ilike.%1$s,description.ilike.%1$s,content.ilike.%1$s%2$s)",
                                 like, tag ? tag : "")
                   : util_printf("(title.ilike.%1$s,content.ilike.%1$s%2$s)", like,
                                 tag ? tag : "");
    char *esc = http_escape(or);
    sb_req *part = sb_req_new(sb, SB_SEARCH, (store_table)t, "GET",
                              util_printf("%s?select=id,user_id&or=%s&limit=%d%s",
                                          sb->tables[t], esc, limit, user),
                              NULL, NULL, NULL);
    free(esc);
    free(or);
    part->parent = parent;
    sb_send(part);
  }
  free(user);
  free(tag);
  free(like);
  return 0;
}

static void sb_on_cache_search(void *data, int status, const char *error, cJSON *rows) {
  sb_cache_search *s = data;
  sb_store *sb = s->sb;
  list_remove(&s->link);
  if (!s->cb) {
    cJSON_Delete(rows);
  } else if (status == 0 && s->session == sb->session) {
    store_defer_done(&sb->defer, s->cb, s->data, 0, NULL, rows, 0);
  } else {
    cJSON_Delete(rows);
    if (status != SBCACHE_UNUSABLE && status != 0)
      log_warn("supabase: %s; asking the server", error ? error : "search in the local copy failed");
    if (sb->closing || sb_search_server(sb, s->query, s->tables, s->limit, s->cb, s->data) < 0)
      store_defer_done(&sb->defer, s->cb, s->data, STORE_ECLOSED, "shelfd is shutting down",
                       NULL, 0);
  }
  free(s->query);
  free(s);
}

/* From the local copy when it can answer (sbcache_search: the signed-in
 * user's copy, each table filled by a full read), the server otherwise. */
int sb_search(store *st, const char *query, unsigned tables, int limit,
              store_done_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  if (sb->closing)
    return STORE_ECLOSED;
  if (!query || limit < 0)
    return STORE_EINVALID;
  if (!sb->cache || !query[0] || !auth_signed_in(sb->auth))
    return sb_search_server(sb, query, tables, limit, cb, data);
  sb_cache_search *s = util_calloc(1, sizeof *s);
  *s = (sb_cache_search){sb,     cb,          data, util_strdup(query), tables, limit,
                         sb->session, {NULL, NULL}};
  list_push_back(&sb->cache_searches, &s->link);
  if (sbcache_search(sb->cache, auth_user_id(sb->auth), query, tables, limit,
                     sb_on_cache_search, s) < 0) {
    list_remove(&s->link);
    free(s->query);
    free(s);
    return sb_search_server(sb, query, tables, limit, cb, data);
  }
  return 0;
}

/* The answer is dropped when it comes (a GET is cheap to let finish). */
int sb_search_cancel(store *st, store_done_cb cb, void *data) {
  sb_store *sb = sb_of(st);
  list_node *n;
  list_for_each(n, &sb->cache_searches) {
    sb_cache_search *s = list_entry(n, sb_cache_search, link);
    if (s->cb == cb && s->data == data) {
      s->cb = NULL;
      store_defer_done(&sb->defer, cb, data, UV_ECANCELED, "search: cancelled", NULL, 0);
      /* Stops it in the copy; its answer, dropped, frees s. */
      sbcache_search_cancel(sb->cache, sb_on_cache_search, s);
      return 0;
    }
  }
  list_for_each(n, &sb->searches) {
    sb_req *p = list_entry(n, sb_req, link);
    if (p->cb == cb && p->data == data) {
      /* The parts still come back: with no callback and nothing to gather. */
      p->cb = NULL;
      cJSON_Delete(p->acc);
      p->acc = NULL;
      store_defer_done(&sb->defer, cb, data, UV_ECANCELED, "search: cancelled", NULL, 0);
      return 0;
    }
  }
  return UV_ENOENT;
}
