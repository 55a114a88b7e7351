/* fuzz_records.c - libFuzzer target: server JSON to held records.
 *
 * What PostgREST and Realtime send goes through the Supabase store's mapping
 * (store_supabase*.c and auth.c: response bodies to rows, error bodies to messages,
 * postgres_changes records to events, the filter on other users' rows), then
 * the sync engine (sync.c) holds the rows and model.c summarises them for
 * the editor, and editor calls are validated (model.c) against what is held.
 *
 * The input is a script of steps separated by 0x1e; the first byte of a step
 * says what it is, the rest is its argument:
 *   0 'a'  answer the oldest held store request with HTTP 200 and this body
 *   1 'e'  answer it with HTTP <status from the 2nd byte> and this body
 *   2 'c'  a postgres_changes `data` object for binding <2nd byte % 10>
 *   3 'n'  create(kind <2nd byte % 3>, fields = this JSON)
 *   4 'u'  update(kind, [id, fields])
 *   5 'd'  delete(kind, id)
 *   6 'r'  reads: get(kind, id), search(text, kind) (a store request, answered
 *          by a later step), status
 *   7 'x'  control (2nd byte % 7): refresh, login, logout, save_temp(id),
 *          resync, reset, an Auth token response (this JSON), the session
 *          file (this text)
 * (the byte is taken modulo 8, so both digits and letters work in seeds).
 * Invariant checked: no row with another user's user_id is ever handed to
 * the engine. */
#include "../csrc/store_supabase.c"
#include "../csrc/store_supabase_local.c"
#include "../csrc/store_supabase_read.c"
#include "../csrc/store_supabase_rt.c"
#include "../csrc/auth.c"

#include "fuzz_common.h"

#define FZ_USER "8c3b6f7e-1d2a-4b5c-9e0f-a1b2c3d4e5f6"

static uv_loop_t fz_loop;
static sb_store fz_sb;
static fz_store fz_st;
static sync_engine *fz_sync;
static uint64_t fz_ticket;
static char fz_session_path[64];

static void fz_remove_session(void) { unlink(fz_session_path); }

/* Between the store mapping and the engine: the invariant. */
typedef struct {
  store_done_cb cb;
  void *data;
  fz_op op;
} fz_relay;

static void fz_check_rows(const cJSON *rows) {
  const cJSON *row;
  cJSON_ArrayForEach(row, rows) {
    const char *owner = mpjson_get_str(row, "user_id");
    if (owner && strcmp(owner, fz_sb.auth->user_id) != 0) {
      fprintf(stderr, "fuzz: a row of user %s reached the engine\n", owner);
      abort();
    }
  }
}

static void fz_relay_done(void *data, int status, const char *error, cJSON *rows) {
  fz_relay *r = data;
  if (status == 0 && r->op != FZ_STAMPS)
    fz_check_rows(rows);
  if (status < 0 && !error)
    abort(); /* store.h: a failure always says why */
  r->cb(r->data, status, error, rows);
  free(r);
}

static void fz_relay_event(void *data, const store_event *ev) {
  (void)data;
  if (ev->record) {
    const char *owner = mpjson_get_str(ev->record, "user_id");
    if (!owner || strcmp(owner, fz_sb.auth->user_id) != 0) {
      fprintf(stderr, "fuzz: a realtime record not of our user reached the engine\n");
      abort();
    }
  }
  fz_st.watch_cb(fz_st.watch_data, ev);
}

static const long fz_statuses[] = {0, 400, 401, 403, 404, 406, 409, 416, 429,
                                   500, 502, 503, 201, 204, 206, 301};

/* Answer the oldest held request with `status` and `body`, through the
 * Supabase store's response handling. */
static void fz_answer(long status, const uint8_t *body, size_t n) {
  fz_pending *p = fz_take(&fz_st);
  if (!p)
    return;
  if (p->op == FZ_LOGIN || p->op == FZ_LOGOUT) {
    /* Sign-in answers are [{id, email}] from the store; feed the body. */
    cJSON *rows = n ? cJSON_ParseWithLength((const char *)body, n) : NULL;
    if (status == 200 && cJSON_IsArray(rows)) {
      p->cb(p->data, 0, NULL, rows);
    } else {
      cJSON_Delete(rows);
      p->cb(p->data, STORE_EBACKEND, "sign-in failed", NULL);
    }
    fz_pending_free(p);
    return;
  }
  static const sb_op ops[] = {[FZ_INSERT] = SB_GET_ONE, [FZ_UPDATE] = SB_UPDATE,
                              [FZ_REMOVE] = SB_REMOVE,  [FZ_STAMPS] = SB_STAMPS,
                              [FZ_FETCH] = SB_FETCH,    [FZ_SEARCH] = SB_SEARCH};
  fz_relay *relay = calloc(1, sizeof *relay);
  relay->cb = p->cb;
  relay->data = p->data;
  relay->op = p->op;
  /* An insert answered with no row would be fetched again over HTTP; the
   * GET that follows is answered like any other here. */
  sb_req *r = sb_req_new(&fz_sb, ops[p->op], p->t, "GET", NULL, NULL, fz_relay_done, relay);
  r->id = util_strdup(p->id ? p->id : "00000000-0000-4000-8000-000000000000");
  char *text = fz_cstr(body, n);
  http_response res = {0};
  res.status = status;
  res.curl_code = status == 0 ? 7 : 0;
  res.error = status == 0 ? "connection refused" : NULL;
  res.body = text;
  res.body_len = n;
  sb_on_response(r, &res);
  free(text);
  fz_pending_free(p);
  /* The store answers from its completion queue, on the loop's next turn. */
  uv_run(&fz_loop, UV_RUN_NOWAIT);
}

static void fz_step(const uint8_t *p, size_t n, void *arg) {
  (void)arg;
  if (n == 0)
    return;
  int cmd = p[0] % 8;
  uint8_t sub = n > 1 ? p[1] : 0;
  const uint8_t *rest = p + (n > 1 ? 2 : 1);
  size_t rn = n > 1 ? n - 2 : 0;
  model_kind k = (model_kind)(sub % 3);
  switch (cmd) {
  case 0:
    fz_answer(200, p + 1, n - 1);
    break;
  case 1:
    fz_answer(fz_statuses[sub % 16], rest, rn);
    break;
  case 2: {
    cJSON *payload = cJSON_ParseWithLength((const char *)rest, rn);
    if (payload)
      sb_rt_change(&fz_sb, sub % 10, payload);
    cJSON_Delete(payload);
    break;
  }
  case 3: {
    cJSON *fields = cJSON_ParseWithLength((const char *)rest, rn);
    if (fields)
      sync_create(fz_sync, ++fz_ticket, k, fields);
    cJSON_Delete(fields);
    break;
  }
  case 4: {
    cJSON *a = cJSON_ParseWithLength((const char *)rest, rn);
    const cJSON *id = cJSON_GetArrayItem(a, 0);
    const cJSON *fields = cJSON_GetArrayItem(a, 1);
    if (cJSON_IsString(id) && fields)
      sync_update(fz_sync, ++fz_ticket, k, id->valuestring, fields);
    cJSON_Delete(a);
    break;
  }
  case 5: {
    char *id = fz_cstr(rest, rn);
    sync_delete(fz_sync, ++fz_ticket, k, id);
    free(id);
    break;
  }
  case 6: {
    char *s = fz_cstr(rest, rn);
    sync_query_get(fz_sync, ++fz_ticket, k, s); /* answered through fz_on_done */
    cJSON *v = sync_held(fz_sync, k, s);
    fz_touch(v);
    cJSON_Delete(v);
    sync_query_search(fz_sync, ++fz_ticket, s, sub & 4 ? -1 : (int)k, 100);
    v = sync_status(fz_sync);
    fz_touch(v);
    cJSON_Delete(v);
    free(s);
    break;
  }
  case 7: {
    char *s = fz_cstr(rest, rn);
    store_event ev = {0};
    switch (sub % 8) {
    case 0: sync_refresh(fz_sync, ++fz_ticket); break;
    case 1: sync_login(fz_sync, ++fz_ticket, s, "password"); break;
    case 2: sync_logout(fz_sync, ++fz_ticket); break;
    case 3: sync_save_temp(fz_sync, ++fz_ticket, s); break;
    case 4: ev.type = STORE_EV_RESYNC; sb_emit(&fz_sb, ev.type, STORE_BLOCKS, NULL, NULL); break;
    case 5: ev.type = STORE_EV_RESET; sb_emit(&fz_sb, ev.type, STORE_BLOCKS, NULL, NULL); break;
    case 6: { /* an Auth token response: the session and its refresh timer */
      cJSON *o = cJSON_Parse(s);
      if (o && auth_take_tokens(fz_sb.auth, o, NULL) == 0)
        auth_schedule_refresh(fz_sb.auth);
      cJSON_Delete(o);
      break;
    }
    case 7: { /* the session file this JSON was saved to (mode 0600) */
      FILE *f = fopen(fz_sb.auth->session_path, "w");
      if (f) {
        fwrite(rest, 1, rn, f);
        fclose(f);
        auth_load(fz_sb.auth);
      }
      break;
    }
    }
    free(s);
    break;
  }
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fz_quiet_logs(); /* the engine's warnings are expected here */
  uv_loop_init(&fz_loop);
  fz_sb.loop = &fz_loop;
  list_init(&fz_sb.waiting);
  list_init(&fz_sb.inflight);
  list_init(&fz_sb.searches);
  list_init(&fz_sb.cache_loads);
  list_init(&fz_sb.pagers);
  list_init(&fz_sb.cache_behind);
  for (int t = 0; t < STORE_NTABLES; t++)
    fz_sb.tables[t] = (char *)store_default_table_name((store_table)t);
  /* A private file for the session step, removed at exit. */
  snprintf(fz_session_path, sizeof fz_session_path, "/tmp/shelf-fuzz-session.XXXXXX");
  int fd = mkstemp(fz_session_path);
  if (fd < 0)
    abort();
  close(fd);
  atexit(fz_remove_session);
  fz_sb.url = "http://127.0.0.1:54321";
  /* No HTTP client: a refresh the steps start fails at once. */
  auth_options aopts = {fz_sb.url, "fuzz-anon-key", fz_session_path, 0, 0};
  fz_sb.auth = auth_new(&fz_loop, NULL, &aopts, sb_on_auth, &fz_sb);
  store_defer_init(&fz_sb.defer, &fz_loop, &fz_sb.base);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_store_init(&fz_st);
  auth_set(&fz_sb.auth->user_id, FZ_USER); /* a token response may have changed it */
  static const sync_callbacks cbs = {.changed = fz_on_changed, .done = fz_on_done,
                                     .status = fz_on_status, .answer = fz_on_done};
  sync_options opts = {.max_attempts = 3, .retry_base_ms = 1000};
  fz_sync = sync_new(&fz_loop, &fz_st.base, &cbs, NULL, &opts);
  /* The Supabase store's events go to the engine through the check. */
  fz_sb.watch_cb = fz_relay_event;
  fz_sb.watch_data = NULL;
  fz_split(data, size, fz_step, NULL);
  fz_sync_finish(&fz_loop, fz_sync, &fz_st);
  fz_sync = NULL;
  uv_timer_stop(&fz_sb.auth->refresh_timer);
  return 0;
}
