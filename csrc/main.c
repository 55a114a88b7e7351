/* main.c - shelfd: wires the loop, the RPC endpoint, the sync engine and the
 * chosen backend, and owns the order of start-up and shutdown. It is the only
 * module that knows both the editor's method names and the domain's. */
#include <errno.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include <uv.h>

#include "http.h"
#include "log.h"
#include "mpjson.h"
#include "realtime.h"
#include "rpc.h"
#include "store.h"
#include "store_supabase.h"
#include "sync.h"
#include "util.h"

#ifndef SHELF_VERSION
#define SHELF_VERSION "dev"
#endif

/* Every push to the editor runs this one Lua function. */
#define SHELFD_LUA_RECEIVER "return require('shelf.client')._receive(...)"

typedef struct {
  uv_loop_t loop;
  rpc *rpc;
  store *st;
  sync_engine *sync;
  uv_signal_t sigterm, sigint;
  int signals; /* both signal handles initialised (and not yet closed) */
  int stopping;
  int exit_code;
} shelfd;

typedef struct {
  const char *sqlite_path;
  const char *log_path;
  int verbose;
  store_supabase_config supabase; /* used when supabase.url is set */
} shelfd_args;

/* --- pushes to the editor -------------------------------------------------- */

static msgpack_packer *shelfd_begin_push(shelfd *d, const char *event) {
  msgpack_packer *pk = rpc_begin_notify(d->rpc, "nvim_exec_lua", 2);
  mpjson_pack_str(pk, SHELFD_LUA_RECEIVER);
  msgpack_pack_array(pk, 2);
  mpjson_pack_str(pk, event);
  return pk;
}

/* The head of a `changed` push, up to the "upserted" key: the caller packs
 * the summaries, then calls shelfd_changed_end. */
static msgpack_packer *shelfd_changed_begin(shelfd *d, model_kind kind, uint64_t version) {
  msgpack_packer *pk = shelfd_begin_push(d, "changed");
  msgpack_pack_map(pk, 5);
  mpjson_pack_str(pk, "more");
  if (d->sync && sync_pushing_more(d->sync))
    msgpack_pack_true(pk);
  else
    msgpack_pack_false(pk);
  mpjson_pack_str(pk, "kind");
  mpjson_pack_str(pk, model_kind_name(kind));
  mpjson_pack_str(pk, "version");
  msgpack_pack_uint64(pk, version);
  mpjson_pack_str(pk, "upserted");
  return pk;
}

static void shelfd_changed_end(shelfd *d, msgpack_packer *pk, const cJSON *deleted) {
  mpjson_pack_str(pk, "deleted");
  mpjson_pack(pk, deleted);
  rpc_send(d->rpc);
}

static void shelfd_on_changed(void *data, model_kind kind, uint64_t version,
                              const cJSON *upserted, const cJSON *deleted) {
  shelfd *d = data;
  if (!d->rpc)
    return;
  msgpack_packer *pk = shelfd_changed_begin(d, kind, version);
  mpjson_pack(pk, upserted);
  shelfd_changed_end(d, pk, deleted);
}

/* changed(), with the summaries already packed by the engine (as columns,
 * cols.h: the mirror reads both forms). */
static void shelfd_on_changed_packed(void *data, model_kind kind, uint64_t version,
                                     const char *upserted, size_t len, const cJSON *deleted) {
  shelfd *d = data;
  if (!d->rpc)
    return;
  msgpack_packer *pk = shelfd_changed_begin(d, kind, version);
  pk->callback(pk->data, upserted, len);
  shelfd_changed_end(d, pk, deleted);
}

/* The answer to one ticket: `done` (an action; value under "item") or
 * `answer` (a query, sent at once, not behind `changed` pushes; value under
 * "result"). */
static void shelfd_reply(shelfd *d, const char *event, const char *key, uint64_t ticket,
                         const char *error, const cJSON *value) {
  if (!d->rpc)
    return;
  msgpack_packer *pk = shelfd_begin_push(d, event);
  msgpack_pack_map(pk, 3);
  mpjson_pack_str(pk, "ticket");
  msgpack_pack_uint64(pk, ticket);
  mpjson_pack_str(pk, "error");
  mpjson_pack_str(pk, error);
  mpjson_pack_str(pk, key);
  mpjson_pack(pk, value);
  rpc_send(d->rpc);
}

static void shelfd_on_done(void *data, uint64_t ticket, const char *error,
                           const cJSON *item) {
  shelfd_reply(data, "done", "item", ticket, error, item);
}

static void shelfd_on_answer(void *data, uint64_t ticket, const char *error,
                             const cJSON *result) {
  shelfd_reply(data, "answer", "result", ticket, error, result);
}

static void shelfd_on_status(void *data, const cJSON *status);

static void shelfd_push_status(shelfd *d) {
  if (!d->sync || d->stopping)
    return;
  cJSON *st = sync_status(d->sync);
  shelfd_on_status(d, st);
  cJSON_Delete(st);
}

/* A sign-in waiting for the browser or a mail moved on (auth.h). */
static void shelfd_on_auth_progress(void *data, uint64_t ticket, const cJSON *info) {
  shelfd *d = data;
  if (!d->rpc)
    return;
  cJSON *o = cJSON_Duplicate(info, 1);
  cJSON_AddNumberToObject(o, "ticket", (double)ticket);
  mpjson_pack(shelfd_begin_push(d, "auth"), o);
  rpc_send(d->rpc);
  cJSON_Delete(o);
}

/* A sign-in's end, or a step's answer (auth_flow.c words the error: only
 * one that ended the sign-in says "Signing in failed"). */
static void shelfd_on_auth_done(void *data, uint64_t ticket, const char *error,
                                const cJSON *user) {
  shelfd *d = data;
  shelfd_on_done(d, ticket, error, error ? NULL : user);
  shelfd_push_status(d); /* who is signed in, and how */
}

static void shelfd_on_status(void *data, const cJSON *status) {
  shelfd *d = data;
  if (!d->rpc)
    return;
  msgpack_packer *pk = shelfd_begin_push(d, "status");
  mpjson_pack(pk, status);
  rpc_send(d->rpc);
}

/* --- arguments from the editor --------------------------------------------- */

/* Copy a string argument into buf; NULL if it is not a string (or too long). */
static const char *shelfd_arg_str(const msgpack_object *params, uint32_t i,
                                  char *buf, size_t size) {
  if (i >= params->via.array.size)
    return NULL;
  const msgpack_object *o = &params->via.array.ptr[i];
  /* An empty string may have a NULL pointer: no memchr/memcpy on it. */
  if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size ||
      (o->via.str.size > 0 && memchr(o->via.str.ptr, '\0', o->via.str.size)))
    return NULL;
  if (o->via.str.size > 0)
    memcpy(buf, o->via.str.ptr, o->via.str.size);
  buf[o->via.str.size] = '\0';
  return buf;
}

/* A stamp argument: as Lua got it (model_lua_stamp: microseconds, a number)
 * or a string; into buf[UTIL_STAMP_LEN + 1] at least. NULL if neither. */
static const char *shelfd_arg_stamp(const msgpack_object *params, uint32_t i,
                                    char *buf, size_t size) {
  if (i >= params->via.array.size || size <= UTIL_STAMP_LEN)
    return NULL;
  const msgpack_object *o = &params->via.array.ptr[i];
  long long us;
  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)LLONG_MAX)
    us = (long long)o->via.u64;
  else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
    us = (long long)o->via.i64;
  else if (o->type == MSGPACK_OBJECT_FLOAT64 && o->via.f64 > -9.2e18 && o->via.f64 < 9.2e18)
    us = (long long)o->via.f64;
  else
    return shelfd_arg_str(params, i, buf, size);
  return util_us_stamp(us, buf) == 0 ? buf : NULL;
}

static int shelfd_arg_kind(const msgpack_object *params, uint32_t i,
                           model_kind *k) {
  char buf[16];
  const char *s = shelfd_arg_str(params, i, buf, sizeof buf);
  return s ? model_kind_parse(s, k) : -1;
}

static cJSON *shelfd_arg_json(const msgpack_object *params, uint32_t i,
                              const char **err) {
  if (i >= params->via.array.size) {
    *err = "missing argument";
    return NULL;
  }
  return mpjson_from_msgpack(&params->via.array.ptr[i], err);
}

/* --- requests: answered at once from memory -------------------------------- */

static void shelfd_on_request(void *data, uint32_t msgid, const char *method,
                              const msgpack_object *params) {
  shelfd *d = data;
  (void)params; /* status and ping take none */
  if (strcmp(method, "status") == 0) {
    cJSON *st = sync_status(d->sync);
    mpjson_pack(rpc_begin_response(d->rpc, msgid, NULL), st);
    cJSON_Delete(st);
  } else if (strcmp(method, "ping") == 0) {
    mpjson_pack_str(rpc_begin_response(d->rpc, msgid, NULL), SHELF_VERSION);
  } else {
    char *msg = util_printf("unknown method '%s'", method);
    rpc_begin_response(d->rpc, msgid, msg);
    free(msg);
  }
  rpc_send(d->rpc);
}

/* --- notifications: actions answered later with `done` --------------------- */

static void shelfd_bad_call(shelfd *d, uint64_t ticket, const char *method,
                            const char *usage, const char *why) {
  char *msg = why ? util_printf("%s: %s (%s)", method, usage, why)
                  : util_printf("%s: %s", method, usage);
  log_warn("rejected a call: %s", msg);
  if (ticket)
    shelfd_on_done(d, ticket, msg, NULL);
  free(msg);
}

/* login_oauth, login_email, login_verify, login_paste, login_cancel
 * (doc/architecture-auth.md): answered by a `done` from auth.c, or at once. */
static void shelfd_login_flow(shelfd *d, uint64_t ticket, const char *method,
                              const msgpack_object *params) {
  auth_session *a = store_supabase_auth(d->st);
  if (!a) {
    shelfd_on_done(d, ticket, "the sqlite backend has no accounts; set backend = 'supabase' "
                              "to sign in", NULL);
    return;
  }
  /* The code and the pasted text are secrets: on the stack, wiped after. */
  char arg1[4097], arg2[4097];
  const char *x = shelfd_arg_str(params, 1, arg1, sizeof arg1);
  const char *y = shelfd_arg_str(params, 2, arg2, sizeof arg2);
  char *err = NULL;
  int rc = 0;
  const char *usage = NULL;
  if (strcmp(method, "login_oauth") == 0) {
    usage = "login_oauth(ticket, provider)";
    rc = x ? auth_login_oauth(a, ticket, x, &err) : -2;
  } else if (strcmp(method, "login_email") == 0) {
    usage = "login_email(ticket, email)";
    rc = x ? auth_login_email(a, ticket, x, &err) : -2;
  } else if (strcmp(method, "login_verify") == 0) {
    usage = "login_verify(ticket, email, code)";
    rc = x && y ? auth_login_verify(a, ticket, x, y, &err) : -2;
  } else if (strcmp(method, "login_paste") == 0) {
    usage = "login_paste(ticket, text)";
    rc = x ? auth_login_paste(a, ticket, x, &err) : -2;
  } else if (strcmp(method, "login_cancel") == 0) {
    auth_login_cancel(a);
    shelfd_on_done(d, ticket, NULL, NULL);
  } else {
    shelfd_bad_call(d, ticket, method, "unknown method", NULL);
  }
  explicit_bzero(arg1, sizeof arg1);
  explicit_bzero(arg2, sizeof arg2);
  if (rc == -2) {
    shelfd_bad_call(d, ticket, method, usage, "arguments must be strings under 4 KiB");
  } else if (rc < 0) {
    /* A sign-in that could not start failed; a refused code or paste leaves
     * the waiting one as it was. */
    int starting = strcmp(method, "login_oauth") == 0 || strcmp(method, "login_email") == 0;
    char *msg = starting ? util_printf("Signing in failed: %s", err) : NULL;
    shelfd_on_auth_done(d, ticket, msg ? msg : err, NULL);
    free(msg);
  } else if (usage) {
    shelfd_push_status(d); /* a sign-in is waiting */
  }
  free(err);
}

static void shelfd_on_notify(void *data, const char *method,
                             const msgpack_object *params) {
  shelfd *d = data;
  if (strcmp(method, "nvim_error_event") == 0) {
    /* Never answer: replying to errors can loop until Neovim crashes. */
    char msg[512];
    const char *m = shelfd_arg_str(params, 1, msg, sizeof msg);
    log_error("the editor reported an error: %s", m ? m : "(unreadable)");
    return;
  }
  /* Flow control of `changed` pushes (sync.h): flow(n) sets the window,
   * taken() says the editor took one. No ticket, no answer. */
  if (strcmp(method, "flow") == 0 || strcmp(method, "taken") == 0) {
    if (!d->sync)
      return;
    if (method[0] == 't') {
      sync_taken(d->sync);
    } else if (params->via.array.size > 0 &&
               params->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
               params->via.array.ptr[0].via.u64 <= 64) {
      sync_set_window(d->sync, (int)params->via.array.ptr[0].via.u64);
    } else {
      log_warn("rejected 'flow': its argument must be a number of pushes from 0 to 64");
    }
    return;
  }
  uint64_t ticket = 0;
  if (params->via.array.size > 0 &&
      params->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
    ticket = params->via.array.ptr[0].via.u64;
  if (ticket == 0) {
    log_warn("rejected '%s': the first argument must be a ticket number", method);
    return;
  }
  char id[128], query[1024];
  model_kind k;
  const char *err = NULL;
  /* Queries (answered by an `answer` push) and their cancel. */
  if (strcmp(method, "get") == 0) {
    if (shelfd_arg_kind(params, 1, &k) < 0 || !shelfd_arg_str(params, 2, id, sizeof id)) {
      shelfd_on_answer(d, ticket, "get(ticket, kind, id): kind is 'block', 'prompt' or "
                       "'project' and id a string", NULL);
      return;
    }
    sync_query_get(d->sync, ticket, k, id);
    return;
  } else if (strcmp(method, "search") == 0) {
    int kind = -1;
    if (params->via.array.size > 2 && params->via.array.ptr[2].type != MSGPACK_OBJECT_NIL)
      kind = shelfd_arg_kind(params, 2, &k) < 0 ? -2 : (int)k;
    /* At most this many hits (the tab asks for fewer: it shows them all). */
    uint64_t limit = 10000;
    if (params->via.array.size > 3 && params->via.array.ptr[3].type != MSGPACK_OBJECT_NIL) {
      const msgpack_object *l = &params->via.array.ptr[3];
      limit = l->type == MSGPACK_OBJECT_POSITIVE_INTEGER && l->via.u64 > 0 && l->via.u64 <= 10000
                  ? l->via.u64 : 0;
    }
    if (!shelfd_arg_str(params, 1, query, sizeof query) || kind == -2 || limit == 0) {
      shelfd_on_answer(d, ticket, "search(ticket, query, kind?, limit?): query is a string under "
                       "1 KiB, kind 'block', 'prompt' or nil, limit 1 to 10000 or nil", NULL);
      return;
    }
    sync_query_search(d->sync, ticket, query, kind, (size_t)limit);
    return;
  } else if (strcmp(method, "cancel") == 0) {
    sync_cancel(d->sync, ticket);
    return;
  }
  if (strcmp(method, "create") == 0) {
    const char *usage = "create(ticket, kind, fields)";
    if (shelfd_arg_kind(params, 1, &k) < 0) {
      shelfd_bad_call(d, ticket, method, usage, "unknown kind");
      return;
    }
    cJSON *fields = shelfd_arg_json(params, 2, &err);
    if (!fields) {
      shelfd_bad_call(d, ticket, method, usage, err);
      return;
    }
    sync_create(d->sync, ticket, k, fields);
    cJSON_Delete(fields);
  } else if (strcmp(method, "update") == 0) {
    const char *usage = "update(ticket, kind, id, fields)";
    if (shelfd_arg_kind(params, 1, &k) < 0 ||
        !shelfd_arg_str(params, 2, id, sizeof id)) {
      shelfd_bad_call(d, ticket, method, usage, "unknown kind or bad id");
      return;
    }
    cJSON *fields = shelfd_arg_json(params, 3, &err);
    if (!fields) {
      shelfd_bad_call(d, ticket, method, usage, err);
      return;
    }
    sync_update(d->sync, ticket, k, id, fields);
    cJSON_Delete(fields);
  } else if (strcmp(method, "delete") == 0) {
    if (shelfd_arg_kind(params, 1, &k) < 0 ||
        !shelfd_arg_str(params, 2, id, sizeof id)) {
      shelfd_bad_call(d, ticket, method, "delete(ticket, kind, id)",
                      "unknown kind or bad id");
      return;
    }
    sync_delete(d->sync, ticket, k, id);
  } else if (strcmp(method, "save_temp") == 0) {
    if (!shelfd_arg_str(params, 1, id, sizeof id)) {
      shelfd_bad_call(d, ticket, method, "save_temp(ticket, id)", "bad id");
      return;
    }
    sync_save_temp(d->sync, ticket, id);
  } else if (strcmp(method, "restore_temp") == 0) {
    const char *usage = "restore_temp(ticket, id, fields, created_at?, updated_at?)";
    char created[64], updated[64];
    if (!shelfd_arg_str(params, 1, id, sizeof id)) {
      shelfd_bad_call(d, ticket, method, usage, "bad id");
      return;
    }
    cJSON *fields = shelfd_arg_json(params, 2, &err);
    if (!fields) {
      shelfd_bad_call(d, ticket, method, usage, err);
      return;
    }
    sync_restore_temp(d->sync, ticket, id, fields,
                      shelfd_arg_stamp(params, 3, created, sizeof created),
                      shelfd_arg_stamp(params, 4, updated, sizeof updated));
    cJSON_Delete(fields);
  } else if (strcmp(method, "refresh") == 0) {
    sync_refresh(d->sync, ticket);
  } else if (strcmp(method, "login") == 0) {
    char email[512], password[1024];
    if (!shelfd_arg_str(params, 1, email, sizeof email) ||
        !shelfd_arg_str(params, 2, password, sizeof password)) {
      shelfd_bad_call(d, ticket, method, "login(ticket, email, password)",
                      "email and password must be short strings");
      return;
    }
    sync_login(d->sync, ticket, email, password);
    /* The password is not kept a moment longer than needed. */
    explicit_bzero(password, sizeof password);
  } else if (strcmp(method, "logout") == 0) {
    sync_logout(d->sync, ticket);
  } else if (strncmp(method, "login_", 6) == 0) {
    shelfd_login_flow(d, ticket, method, params);
  } else {
    shelfd_bad_call(d, ticket, method, "unknown method", NULL);
  }
}

/* --- shutdown -------------------------------------------------------------- */

/* Every module closes its own handles on shutdown; one still open here is a
 * leak: named in the log and counted (arg), then closed. */
static void shelfd_close_walk(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) {
    log_error("a %s handle was still open at exit", uv_handle_type_name(uv_handle_get_type(h)));
    (*(int *)arg)++;
    uv_close(h, NULL);
  }
}

static void shelfd_store_closed(void *data) {
  shelfd *d = data;
  d->st = NULL;
  /* The store has closed its Realtime client and its HTTP client (curl has
   * joined its resolver threads): libwebsockets' context can go now. */
  rt_shutdown();
}

static void shelfd_sync_closed(void *data) {
  shelfd *d = data;
  d->sync = NULL;
}

static void shelfd_rpc_closed(void *data) { (void)data; }

/* Ordered teardown: the engine first (it answers what is pending), then the
 * store (it hands back what it still holds), then the channel. */
static void shelfd_stop(shelfd *d, const char *why) {
  if (d->stopping)
    return;
  d->stopping = 1;
  log_info("stopping: %s", why);
  if (d->signals) {
    uv_signal_stop(&d->sigterm);
    uv_signal_stop(&d->sigint);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    d->signals = 0;
  }
  if (d->sync)
    sync_close(d->sync, shelfd_sync_closed, d);
  if (d->st)
    store_close(d->st, shelfd_store_closed, d);
  rpc *r = d->rpc;
  d->rpc = NULL;
  if (r)
    rpc_close(r, shelfd_rpc_closed, d);
}

static void shelfd_on_rpc_close(void *data, const char *why) {
  shelfd_stop(data, why);
}

static void shelfd_on_signal(uv_signal_t *h, int signum) {
  shelfd_stop(h->data, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* --- start-up -------------------------------------------------------------- */

static void shelfd_usage(FILE *out) {
  fprintf(out,
          "usage: shelfd --sqlite PATH [--log FILE] [--verbose]\n"
          "       shelfd --supabase URL --session FILE [--cache FILE] [--ca-file FILE]\n"
          "              [--table KIND=NAME]... [--timeout NAME=MS]...\n"
          "              [--redirect-port PORT]\n"
          "              [--no-realtime] [--log FILE]\n"
          "       shelfd --version\n"
          "The Supabase anon key comes from $SHELF_SUPABASE_ANON_KEY (not argv,\n"
          "which other users can read). KIND is blocks, prompts, dataset_projects\n"
          "or prompt_projects. NAME is connect, request, heartbeat or\n"
          "heartbeat_reply. shelfd speaks msgpack-RPC on stdin and stdout and is\n"
          "started by shelf.nvim, not by hand.\n");
}

static int shelfd_parse(int argc, char **argv, shelfd_args *a) {
  static const char *table_keys[STORE_NTABLES] = {"blocks", "prompts", "dataset_projects",
                                                  "prompt_projects"};
  memset(a, 0, sizeof *a);
  a->supabase.realtime = 1;
  a->supabase.redirect_port = AUTH_DEFAULT_REDIRECT_PORT;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *next = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(arg, "--verbose") == 0) {
      a->verbose = 1;
      continue;
    }
    if (strcmp(arg, "--no-realtime") == 0) {
      a->supabase.realtime = 0;
      continue;
    }
    if (!next) {
      fprintf(stderr, "shelfd: '%s' needs a value (or is unknown)\n", arg);
      return -1;
    }
    i++;
    if (strcmp(arg, "--sqlite") == 0) {
      a->sqlite_path = next;
    } else if (strcmp(arg, "--log") == 0) {
      a->log_path = next;
    } else if (strcmp(arg, "--supabase") == 0) {
      a->supabase.url = next;
    } else if (strcmp(arg, "--session") == 0) {
      a->supabase.session_path = next;
    } else if (strcmp(arg, "--cache") == 0) {
      a->supabase.cache_path = next;
    } else if (strcmp(arg, "--redirect-port") == 0) {
      /* The sign-in redirect listener's port; 0 picks a free one (tests). */
      char *end = NULL;
      long port = strtol(next, &end, 10);
      if (end == next || *end != '\0' || port < 0 || port > 65535) {
        fprintf(stderr, "shelfd: --redirect-port wants 0..65535, not '%s'\n", next);
        return -1;
      }
      a->supabase.redirect_port = (unsigned)port;
    } else if (strcmp(arg, "--ca-file") == 0) {
      a->supabase.ca_file = next;
    } else if (strcmp(arg, "--timeout") == 0) {
      /* NAME=MS: connect, request, heartbeat or heartbeat_reply. */
      static const char *names[] = {"connect", "request", "heartbeat", "heartbeat_reply"};
      unsigned *slots[] = {&a->supabase.connect_timeout_ms, &a->supabase.request_timeout_ms,
                           &a->supabase.heartbeat_ms, &a->supabase.heartbeat_reply_ms};
      const char *eq = strchr(next, '=');
      char *end = NULL;
      long ms = eq ? strtol(eq + 1, &end, 10) : 0;
      int found = 0;
      for (int t = 0; eq && end && *end == '\0' && ms > 0 && ms <= 3600000 && t < 4; t++) {
        if (strlen(names[t]) == (size_t)(eq - next) && strncmp(next, names[t], (size_t)(eq - next)) == 0) {
          *slots[t] = (unsigned)ms;
          found = 1;
        }
      }
      if (!found) {
        fprintf(stderr, "shelfd: --timeout wants NAME=MS (NAME: connect, request, heartbeat, "
                        "heartbeat_reply; MS 1..3600000), not '%s'\n", next);
        return -1;
      }
    } else if (strcmp(arg, "--table") == 0) {
      const char *eq = strchr(next, '=');
      int found = 0;
      for (int t = 0; eq && t < STORE_NTABLES; t++) {
        if (strlen(table_keys[t]) == (size_t)(eq - next) &&
            strncmp(next, table_keys[t], (size_t)(eq - next)) == 0) {
          a->supabase.tables[t] = eq + 1;
          found = 1;
        }
      }
      if (!found) {
        fprintf(stderr, "shelfd: --table wants KIND=NAME, not '%s'\n", next);
        return -1;
      }
    } else {
      fprintf(stderr, "shelfd: unknown argument '%s'\n", arg);
      return -1;
    }
  }
  if (!a->sqlite_path == !a->supabase.url) {
    fprintf(stderr, "shelfd: give exactly one of --sqlite PATH and --supabase URL\n");
    return -1;
  }
  a->supabase.anon_key = getenv("SHELF_SUPABASE_ANON_KEY");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    /* Not the RPC channel yet: a person or :checkhealth asked. */
    fprintf(stdout, "shelfd %s (libuv %s, sqlite %s, %s, libwebsockets %s, msgpack %s, cJSON %s)\n",
            SHELF_VERSION, uv_version_string(), sqlite3_libversion(), http_library_version(),
            rt_library_version(), msgpack_version(), cJSON_Version());
    return 0;
  }
  if (argc == 2 && strcmp(argv[1], "--help") == 0) {
    shelfd_usage(stdout);
    return 0;
  }
#ifdef __GLIBC__
  /* Fixed thresholds: glibc otherwise raises both after a big buffer is
   * freed (up to 32 and 64 MiB), and then keeps what a load of the library
   * freed in its threads' heaps instead of giving it back. */
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
#endif
  shelfd_args args;
  if (shelfd_parse(argc, argv, &args) < 0) {
    shelfd_usage(stderr);
    return 2;
  }
  /* A write to a closed pipe must be an error, not a silent death. */
  signal(SIGPIPE, SIG_IGN);
  /* shelfd works for the editor: when both want a core (a first load, an
   * index build beside it), Neovim's loop goes first. The threads made
   * later (libuv's pool) take this from the main thread. */
  int nice_rc = uv_os_setpriority(uv_os_getpid(), UV_PRIORITY_BELOW_NORMAL);
  /* stdout is the RPC channel: keep it for RPC alone and point fd 1 at
   * stderr, so a stray write from any library cannot corrupt the channel. */
  int rpc_out = dup(STDOUT_FILENO);
  if (rpc_out < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    fprintf(stderr, "shelfd: cannot set up the RPC channel: %s\n", strerror(errno));
    return 1;
  }
  if (args.log_path && log_open(args.log_path) < 0)
    fprintf(stderr, "shelfd: cannot open log file %s: %s; logging to stderr\n",
            args.log_path, strerror(errno));
  if (args.verbose)
    log_set_level(LOG_DEBUG);
  if (nice_rc < 0)
    log_debug("cannot lower shelfd's priority: %s", uv_strerror(nice_rc));

  shelfd d;
  memset(&d, 0, sizeof d);
  int rc = uv_loop_init(&d.loop);
  if (rc < 0) {
    /* Nothing runs without the loop: say why (often no file descriptors
     * left) instead of using a half-made one. */
    log_error("cannot start the event loop: %s", uv_strerror(rc));
    fprintf(stderr, "shelfd: cannot start the event loop: %s\n", uv_strerror(rc));
    close(rpc_out);
    log_close();
    return 1;
  }

  char *err = NULL;
  d.st = args.sqlite_path ? store_sqlite_open(&d.loop, args.sqlite_path, &err)
                          : store_supabase_open(&d.loop, &args.supabase, &err);
  if (!d.st) {
    log_error("cannot open the library: %s", err ? err : "unknown error");
    d.exit_code = 3;
  }
  static const rpc_handlers handlers = {shelfd_on_request, shelfd_on_notify,
                                        shelfd_on_rpc_close};
  /* rpc_open owns rpc_out from here on, failed or not: libuv closes it with
   * the pipe, so it must not be closed again below (by then its number may
   * belong to another file). */
  if (d.st) {
    rc = rpc_open(&d.rpc, &d.loop, STDIN_FILENO, rpc_out, &handlers, &d);
    rpc_out = -1;
  }
  if (rc < 0) {
    log_error("cannot use stdin/stdout as the RPC channel: %s "
              "(shelfd is started by the plugin, not by hand)", uv_strerror(rc));
    d.exit_code = 2;
  }
  /* uv_loop_init made the loop's signal pipe already, so these cannot fail
   * today; if they ever do, a handle not initialised must not reach uv_close. */
  if (uv_signal_init(&d.loop, &d.sigterm) == 0) {
    if (uv_signal_init(&d.loop, &d.sigint) == 0)
      d.signals = 1;
    else
      uv_close((uv_handle_t *)&d.sigterm, NULL);
  }
  if (!d.signals && d.exit_code == 0) {
    log_error("cannot watch for signals");
    d.exit_code = 1;
  }
  d.sigterm.data = d.sigint.data = &d;
  if (d.exit_code == 0) {
    uv_signal_start(&d.sigterm, shelfd_on_signal, SIGTERM);
    uv_signal_start(&d.sigint, shelfd_on_signal, SIGINT);
    static const sync_callbacks cbs = {shelfd_on_changed, shelfd_on_done, shelfd_on_status,
                                       shelfd_on_answer, shelfd_on_changed_packed};
    d.sync = sync_new(&d.loop, d.st, &cbs, &d, NULL);
    auth_session *auth = store_supabase_auth(d.st);
    if (auth) {
      static const auth_flow_callbacks acbs = {shelfd_on_auth_progress, shelfd_on_auth_done};
      auth_set_flow_callbacks(auth, &acbs, &d);
    }
    log_info("shelfd %s ready (%s)", SHELF_VERSION,
             args.sqlite_path ? args.sqlite_path : args.supabase.url);
  } else {
    if (err) {
      /* Tell the editor why, through stderr (the plugin shows it). */
      fprintf(stderr, "shelfd: %s\n", err);
    }
    shelfd_stop(&d, "start-up failed");
  }
  free(err);
  uv_run(&d.loop, UV_RUN_DEFAULT);
  int left_open = 0;
  uv_walk(&d.loop, shelfd_close_walk, &left_open);
  uv_run(&d.loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&d.loop);
  if (rc != 0)
    log_error("the event loop did not close cleanly: %s", uv_strerror(rc));
  /* A clean exit is one that left nothing behind; the tests check for 0. */
  if (d.exit_code == 0 && (left_open > 0 || rc != 0))
    d.exit_code = 4;
  if (rpc_out >= 0)
    close(rpc_out);
  log_close();
  return d.exit_code;
}
