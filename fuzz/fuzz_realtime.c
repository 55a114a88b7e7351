/* fuzz_realtime.c - libFuzzer target: the Phoenix frame parser and the
 * Realtime channel's handling of what it parses (phoenix.c).
 *
 * The input is a sequence of websocket text messages separated by 0x1e.
 * Each goes to phx_parse_frame (whose contract is checked) and then to
 * phx_receive on a channel that is waiting for the reply to its phx_join
 * (join_ref "1", heartbeat ref "2") with the Supabase store's eight
 * bindings: join replies, postgres_changes, system messages,
 * phx_close/phx_error and heartbeat replies all run as in shelfd, over a
 * transport that is open but drops what the channel sends (every message
 * is still built), with timers that are started but that the loop never
 * runs. Both serializers (vsn 1.0.0 objects, 2.0.0 arrays) are accepted by
 * the parser. */
#include "phoenix.h"

#include "fuzz_common.h"

#define FZ_NBINDS 8

static uv_loop_t fz_loop;
static phx_channel fz_ch;
static int fz_token_needed;
static int fz_open = 1;

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

/* The transport: open, and what is sent must be one JSON array. */
static int fz_io_is_open(void *data) {
  (void)data;
  return fz_open;
}

static void fz_io_send(void *data, const char *text, size_t len) {
  (void)data;
  cJSON *a = cJSON_ParseWithLength(text, len);
  if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 5)
    abort();
  cJSON_Delete(a);
}

static void fz_io_connect(void *data) { (void)data; }

static void fz_io_lost(void *data, const char *what) {
  (void)data;
  (void)what;
  phx_socket_gone(&fz_ch);
}

static void fz_frame(const uint8_t *p, size_t n, void *arg) {
  (void)arg;
  phx_frame f;
  char *err = NULL;
  if (phx_parse_frame((const char *)p, n, &f, &err) == 0) {
    if (!f.topic || !f.event || !cJSON_IsObject(f.payload) || !f.root ||
        (f.vsn != 1 && f.vsn != 2) || err)
      abort();
    if (f.ref)
      (void)strlen(f.ref);
    if (f.join_ref)
      (void)strlen(f.join_ref);
    phx_frame_free(&f);
  } else {
    if (!err || f.root)
      abort(); /* a refusal says why and owns nothing */
    free(err);
  }
  phx_receive(&fz_ch, (const char *)p, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fz_quiet_logs(); /* warnings are expected here */
  uv_loop_init(&fz_loop);
  static const char *tables[] = {"context_blocks", "prompts", "dataset_projects",
                                 "prompt_projects"};
  rt_binding binds[FZ_NBINDS];
  for (int i = 0; i < FZ_NBINDS; i++) {
    binds[i].event = i % 2 ? "DELETE" : "*";
    binds[i].schema = "public";
    binds[i].table = tables[i / 2];
    binds[i].filter = i % 2 ? NULL : "user_id=eq.8c3b6f7e-1d2a-4b5c-9e0f-a1b2c3d4e5f6";
  }
  rt_options o = {0};
  o.topic = "realtime:shelf-8c3b6f7e-1d2a-4b5c-9e0f-a1b2c3d4e5f6";
  o.bindings = binds;
  o.nbindings = FZ_NBINDS;
  const char *problem = phx_check_options(&o);
  if (problem) {
    fprintf(stderr, "fuzz_realtime: %s\n", problem);
    abort();
  }
  static const phx_transport io = {fz_io_is_open, fz_io_send, fz_io_connect, fz_io_lost};
  phx_init(&fz_ch, &fz_loop, &o, NULL, NULL, &io, NULL);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  phx_channel *ch = &fz_ch;
  rt_callbacks cb = {fz_rt_state, fz_rt_change, fz_rt_system, fz_rt_joined,
                     size % 2 ? fz_rt_token : NULL};
  ch->cb = cb;
  ch->state = RT_JOINING;
  ch->attempts = 0;
  ch->next_ref = 2;
  strcpy(ch->join_ref, "1");
  strcpy(ch->hb_ref, "2");
  ch->token_expired = ch->waiting_token = ch->token_changed = 0;
  /* A token that changed during the join is pushed once joined. */
  free(ch->token);
  ch->token = size % 3 == 0 ? util_strdup("eyJhbGciOiJIUzI1NiJ9.e30.sig") : NULL;
  ch->token_changed = ch->token != NULL;
  for (int i = 0; i < ch->nbinds; i++)
    ch->binds[i].has_id = 0;
  fz_token_needed = 0;
  fz_split(data, size, fz_frame, NULL);
  uv_timer_stop(&ch->retry_timer);
  phx_socket_gone(ch); /* the heartbeat, join and live timers */
  return 0;
}
