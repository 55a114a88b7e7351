/* fuzz_realtime.c - libFuzzer target: the Phoenix frame parser and the
 * Realtime client's handling of what it parses.
 *
 * The input is a sequence of websocket text messages separated by 0x1e.
 * Each goes to rt_parse_frame (whose contract is checked) and then to
 * realtime.c's own rt_dispatch on a client that is waiting for the reply to
 * its phx_join (join_ref "1", heartbeat ref "2") with the Supabase store's
 * eight bindings: join replies, postgres_changes, system messages,
 * phx_close/phx_error and heartbeat replies all run as in shelfd, over a
 * client with no socket (what it would send is dropped; timers are started
 * but the loop never runs them). Both serializers (vsn 1.0.0 objects,
 * 2.0.0 arrays) are accepted by the parser. */
#include "../csrc/realtime.c"

#include "fuzz_common.h"

#define FZ_NBINDS 8

static uv_loop_t fz_loop;
static rt_client fz_rt;
static int fz_token_needed;
static const unsigned fz_backoff[] = {1000, 2000, 5000, 10000};

static void fz_rt_state(void *data, rt_state st, const char *message) {
  (void)data;
  if (st > RT_ERROR || (message && strlen(message) > (1u << 20)))
    abort();
  if (fz_verbose)
    fprintf(stderr, "fuzz: state %s: %s\n", rt_state_name(st), message ? message : "");
}

static void fz_rt_change(void *data, int binding, const cJSON *change) {
  (void)data;
  if (binding < 0 || binding >= FZ_NBINDS || !cJSON_IsObject(change))
    abort(); /* realtime.h: a change is the event's data object, for a binding */
  if (fz_verbose)
    fprintf(stderr, "fuzz: change for binding %d\n", binding);
  fz_touch(change);
}

static void fz_rt_system(void *data, const cJSON *payload) {
  (void)data;
  fz_touch(payload);
}

static void fz_rt_joined(void *data) { (void)data; }

static void fz_rt_token(void *data) {
  (void)data;
  fz_token_needed++;
}

static void fz_frame(const uint8_t *p, size_t n, void *arg) {
  (void)arg;
  rt_frame f;
  char *err = NULL;
  if (rt_parse_frame((const char *)p, n, &f, &err) == 0) {
    if (!f.topic || !f.event || !cJSON_IsObject(f.payload) || !f.root ||
        (f.vsn != 1 && f.vsn != 2) || err)
      abort();
    if (f.ref)
      (void)strlen(f.ref);
    if (f.join_ref)
      (void)strlen(f.join_ref);
    rt_frame_free(&f);
  } else {
    if (!err || f.root)
      abort(); /* a refusal says why and owns nothing */
    free(err);
  }
  rt_dispatch(&fz_rt, (const char *)p, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fz_quiet_logs(); /* warnings are expected here */
  uv_loop_init(&fz_loop);
  rt_client *rt = &fz_rt;
  rt->loop = &fz_loop;
  rt->topic = util_strdup("realtime:shelf-8c3b6f7e-1d2a-4b5c-9e0f-a1b2c3d4e5f6");
  static const char *tables[] = {"context_blocks", "prompts", "dataset_projects",
                                 "prompt_projects"};
  rt->nbinds = FZ_NBINDS;
  rt->binds = util_calloc(FZ_NBINDS, sizeof *rt->binds);
  for (int i = 0; i < FZ_NBINDS; i++) {
    rt->binds[i].event = util_strdup(i % 2 ? "DELETE" : "*");
    rt->binds[i].schema = util_strdup("public");
    rt->binds[i].table = util_strdup(tables[i / 2]);
    rt->binds[i].filter =
        i % 2 ? NULL : util_strdup("user_id=eq.8c3b6f7e-1d2a-4b5c-9e0f-a1b2c3d4e5f6");
  }
  rt->backoff = (unsigned *)fz_backoff;
  rt->nbackoff = 4;
  rt->hb_ms = 25000;
  rt->hb_timeout_ms = 10000;
  rt->join_timeout_ms = 10000;
  rt->live_timeout_ms = 5000;
  rt->max_message = RT_MAX_MESSAGE;
  rt->rng = 0x2545f4914f6cdd1dull;
  uv_timer_t *timers[] = {&rt->retry_timer, &rt->hb_timer, &rt->hb_timeout_timer,
                          &rt->join_timer, &rt->close_timer, &rt->teardown_timer,
                          &rt->live_timer};
  for (size_t i = 0; i < sizeof timers / sizeof *timers; i++) {
    uv_timer_init(&fz_loop, timers[i]);
    timers[i]->data = rt;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rt_client *rt = &fz_rt;
  rt_callbacks cb = {fz_rt_state, fz_rt_change, fz_rt_system, fz_rt_joined,
                     size % 2 ? fz_rt_token : NULL};
  rt->cb = cb;
  rt->state = RT_JOINING;
  rt->attempts = 0;
  rt->next_ref = 2;
  strcpy(rt->join_ref, "1");
  strcpy(rt->hb_ref, "2");
  rt->token_expired = rt->waiting_token = rt->token_changed = 0;
  /* A token that changed during the join is pushed once joined. */
  free(rt->token);
  rt->token = size % 3 == 0 ? util_strdup("eyJhbGciOiJIUzI1NiJ9.e30.sig") : NULL;
  rt->token_changed = rt->token != NULL;
  for (int i = 0; i < rt->nbinds; i++)
    rt->binds[i].has_id = 0;
  fz_token_needed = 0;
  fz_split(data, size, fz_frame, NULL);
  uv_timer_stop(&rt->retry_timer);
  uv_timer_stop(&rt->hb_timer);
  uv_timer_stop(&rt->hb_timeout_timer);
  uv_timer_stop(&rt->live_timer);
  rt->live_pending = rt->live_by_fallback = 0;
  uv_timer_stop(&rt->join_timer);
  return 0;
}
