/* realtime.h - a Supabase Realtime client: one Phoenix channel (phoenix.h)
 * over a websocket (libwebsockets on the caller's libuv loop) that
 * subscribes to postgres_changes and hands each change to the binding it was
 * asked for. It reconnects and rejoins by itself (1, 2, 5, 10 s, then every
 * 10 s), sends the heartbeat, and pushes new access tokens. Everything runs
 * on the loop thread; no call blocks.
 *
 * Memory: rt_new copies every string and array of rt_options; values passed
 * to the callbacks are borrowed for the call. The client is the caller's
 * until rt_close, which frees it. */
#ifndef SHELF_REALTIME_H
#define SHELF_REALTIME_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <uv.h>

typedef struct rt_client rt_client;

typedef enum {
  RT_DISCONNECTED, /* no connection; a reconnect is scheduled */
  RT_CONNECTING,   /* resolving the name, opening the websocket */
  RT_JOINING,      /* websocket open, phx_join sent, or joined and waiting
                      for the subscription to be live */
  RT_JOINED,       /* subscribed and live: changes flow */
  RT_ERROR         /* the server refused the channel (a rejoin is scheduled,
                      or, for an expired token, waits for rt_set_token) */
} rt_state;

/* "disconnected", "connecting", "joining", "joined", "error". */
const char *rt_state_name(rt_state state);

/* libwebsockets' own version text, for `shelfd --version`; static storage. */
const char *rt_library_version(void);

/* One `.on('postgres_changes', {...})` of realtime-js. */
typedef struct {
  const char *event;  /* "*", "INSERT", "UPDATE" or "DELETE" */
  const char *schema; /* e.g. "public" */
  const char *table;  /* NULL: every table of the schema */
  const char *filter; /* NULL or e.g. "user_id=eq.<uuid>" */
} rt_binding;

/* Strings and arrays are copied by rt_new. Zero means "the default". */
typedef struct {
  const char *url;          /* the project: http(s)://host[:port][/prefix] */
  const char *anon_key;     /* the apikey query parameter */
  const char *access_token; /* the user's JWT sent in phx_join; NULL = none */
  double access_token_expires_at; /* unix seconds (Auth's expires_at); 0 = unknown */
  const char *topic;        /* "realtime:<name>" */
  const rt_binding *bindings;
  int nbindings;
  const char *ca_file;           /* PEM bundle for wss://; NULL = system CAs */
  unsigned heartbeat_ms;         /* 25000 */
  unsigned heartbeat_timeout_ms; /* 10000, at most heartbeat_ms */
  unsigned join_timeout_ms;      /* 10000 */
  unsigned live_timeout_ms;      /* 5000: after the join reply, how long to
                                    wait for the system message "Subscribed
                                    to PostgreSQL" before taking the channel
                                    as live anyway (a server that sends none) */
  const unsigned *backoff_ms;    /* NULL: {1000, 2000, 5000, 10000}; the last */
  int nbackoff;                  /* value repeats; each delay gets +-10 % */
  size_t max_message;            /* 8 MiB: a bigger message drops the socket */
  unsigned close_timeout_ms;     /* 1000: how long rt_close waits for the
                                    phx_leave to go out */
} rt_options;

/* Called on the loop thread, never from inside rt_new or rt_close. Values
 * are borrowed for the call. Any of them may be NULL. The client may be
 * closed (rt_close) from inside any of them. */
typedef struct {
  /* The state changed, or something happened worth telling a person:
   * message is NULL or e.g. "Realtime: connection refused; reconnecting in
   * 2 s", "Realtime: join refused: <reason>", "Realtime: token expired". */
  void (*on_state)(void *data, rt_state state, const char *message);
  /* A change for bindings[binding]: the event's `data` object (type, schema,
   * table, commit_timestamp, columns, record, old_record, errors). */
  void (*on_change)(void *data, int binding, const cJSON *change);
  /* A `system` message of the channel (extension, status, message). An
   * error of the postgres_changes extension makes the client leave and
   * rejoin with backoff ("Realtime: subscription error: ...; rejoining"). */
  void (*on_system)(void *data, const cJSON *payload);
  /* The channel was joined (again) and its subscription is live: the server
   * said "Subscribed to PostgreSQL" (the join reply comes seconds earlier on
   * Supabase), or none came within live_timeout_ms; a late one calls this
   * again. Changes made while it was not live are lost: the caller should
   * load everything again. */
  void (*on_joined)(void *data);
  /* The token is expired: the server closed the channel or refused the join
   * for it, or its expiry (access_token_expires_at, rt_set_token) is past by
   * this machine's clock when a join is due. The client then waits: refresh the token and call
   * rt_set_token, which rejoins. When this callback is NULL the client
   * instead rejoins with backoff using whatever token it has (rt_set_token
   * still rejoins at once). */
  void (*on_token_needed)(void *data);
} rt_callbacks;

/* Create the client and start connecting on `loop` (on the next loop turn).
 * Returns NULL and sets *err (a message the caller frees) when the options
 * are unusable or libwebsockets cannot start. Free with rt_close. */
rt_client *rt_new(uv_loop_t *loop, const rt_options *opts,
                  const rt_callbacks *cb, void *data, char **err);

/* Use `jwt` from now on (copied): pushed as an `access_token` event when the
 * channel is joined, sent with every later join, and a channel closed for an
 * expired token is joined again at once. */
void rt_set_token(rt_client *rt, const char *jwt, double expires_at);

/* Join the channel again now (reconnecting first if there is no socket).
 * Resets the backoff. */
void rt_rejoin(rt_client *rt);

rt_state rt_get_state(const rt_client *rt);

/* 1 when joined and the server said the subscription is live ("Subscribed
 * to PostgreSQL"); 0 before, and while it is taken as live only because the
 * server said nothing in time (its changes may not come yet). */
int rt_confirmed(const rt_client *rt);

/* Leave the channel, close the websocket, free the client, then call
 * closed(data) (closed may be NULL). No other callback runs after rt_close.
 * Once closed has run the client has no handle left on the loop; the
 * process's libwebsockets context stays for the next client (rt_shutdown). */
void rt_close(rt_client *rt, void (*closed)(void *data), void *data);

/* At exit, once every client is closed (their closed callbacks ran) and no
 * other thread opens descriptors any more (the HTTP client is closed: curl
 * joins its resolver threads): destroy the libwebsockets context that the
 * first client made (one per process, on that client's loop; never
 * destroyed earlier: see lws_compat.c). It takes a few loop turns, after
 * which nothing of it is left on the loop. -1 (and nothing done) while a
 * client is open; 0 otherwise, also when there is no context. */
int rt_shutdown(void);

#endif
