/* store_supabase.h - the Supabase backend: PostgREST for reads and writes,
 * the Auth session (auth.h: sign-in, token refresh, the session file), and
 * Realtime postgres_changes for what changes elsewhere. The store owns its
 * HTTP client, Auth session and Realtime client and frees them in its close
 * (store.h); the configuration is copied. */
#ifndef SHELF_STORE_SUPABASE_H
#define SHELF_STORE_SUPABASE_H

#include "auth.h"
#include "store.h"

typedef struct {
  const char *url;          /* project URL, e.g. https://abc.supabase.co */
  const char *anon_key;     /* the publishable key or the legacy anon JWT; a
                               secret key is refused */
  const char *ca_file;      /* extra CA bundle, or NULL */
  const char *session_path; /* where the session is kept (mode 0600) */
  const char *cache_path;   /* the local copy of the user's rows (sbcache.h), or
                               NULL: every load goes to the server */
  const char *tables[STORE_NTABLES]; /* NULL: the default names */
  unsigned redirect_port;   /* sign-in redirect listener; 0: any free port */
  unsigned login_timeout_ms; /* how long a sign-in waits; 0: five minutes */
  int realtime;             /* 0 turns Realtime off (tests of REST alone) */
  /* Timeouts in ms; 0 means the default (connect 10000, request 30000,
   * heartbeat 25000, heartbeat_reply 10000). Set from --timeout NAME=MS. */
  unsigned connect_timeout_ms, request_timeout_ms, heartbeat_ms, heartbeat_reply_ms;
  /* Bytes of rows waiting to be written to the local copy past which a read
   * of every row asks for no next page; 0: 64 MiB (tests set it small). */
  size_t cache_backlog_max;
} store_supabase_config;

/* All strings are copied. Returns NULL and *err (caller frees) on failure.
 * A session file readable by others is refused (and reported by describe),
 * not an open failure: the user signs in again. */
store *store_supabase_open(uv_loop_t *loop, const store_supabase_config *cfg,
                           char **err);

/* The Auth session of a Supabase store, for the sign-ins main.c starts;
 * NULL for any other store. Owned by the store. */
auth_session *store_supabase_auth(store *st);

#endif
