/* phoenix.h - the Phoenix channel protocol that Supabase Realtime speaks,
 * without a socket: parsing and building frames, and one channel's state
 * machine (join, the postgres_changes bindings, heartbeat, token pushes,
 * leave, backoff before the next try). The websocket under it is someone
 * else's (realtime.c): the channel asks it through phx_transport and is fed
 * what arrives through phx_receive. Everything runs on the loop thread.
 *
 * Memory: phx_init copies every string and array of the options; the
 * channel owns them until phx_free. Text handed to phx_transport.send and
 * to phx_receive is borrowed for the call. A phx_frame owns its cJSON tree
 * (root) until phx_frame_free; its strings point into it. */
#ifndef SHELF_PHOENIX_H
#define SHELF_PHOENIX_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "realtime.h"

/* --- frames ------------------------------------------------------------- */

/* One Phoenix message, as parsed by phx_parse_frame. */
typedef struct {
  int vsn;              /* 2: [join_ref, ref, topic, event, payload]; 1: object */
  const char *join_ref; /* NULL when null or absent */
  const char *ref;      /* NULL when null or absent */
  const char *topic;
  const char *event;
  const cJSON *payload; /* an object */
  cJSON *root;          /* owns all of the above */
  char num_refs[2][24]; /* numeric refs, printed */
} phx_frame;

/* Parse one text message of either serializer. 0 and *out filled (free with
 * phx_frame_free), or < 0 with *err set (the caller frees it; err may be
 * NULL). Pure: no socket, no state, safe on any input. */
int phx_parse_frame(const char *text, size_t len, phx_frame *out, char **err);
void phx_frame_free(phx_frame *f);

/* --- the channel ---------------------------------------------------------- */

/* What the channel needs from the socket under it; each gets io_data. */
typedef struct {
  /* 1 when a websocket is open and messages can be sent. */
  int (*is_open)(void *io_data);
  /* Queue one text message on the open websocket. text is borrowed: the
   * channel wipes it afterwards (it may hold the token). */
  void (*send)(void *io_data, const char *text, size_t len);
  /* The retry timer fired with no websocket open: open one. */
  void (*connect)(void *io_data);
  /* The websocket is unusable (no heartbeat reply): drop it and reconnect
   * (the transport calls phx_socket_gone and phx_schedule). */
  void (*lost)(void *io_data, const char *what);
} phx_transport;

typedef struct {
  char *event, *schema, *table, *filter; /* owned */
  long long id;                          /* the server's id, once joined */
  int has_id;
} phx_bind;

/* Embedded by its owner; the fields are the state machine's own (the fuzz
 * target sets some of them directly). */
typedef struct phx_channel {
  uv_loop_t *loop;
  phx_transport io;
  void *io_data;
  rt_callbacks cb;
  void *data;

  /* Options, copied. */
  char *topic, *token;
  phx_bind *binds;
  int nbinds;
  unsigned hb_ms, hb_timeout_ms, join_timeout_ms, live_timeout_ms;
  unsigned *backoff;
  int nbackoff;

  rt_state state;
  int attempts;          /* failures since the last join */
  unsigned long next_ref;
  char join_ref[24];     /* of the phx_join in flight or joined */
  char hb_ref[24];       /* of the unanswered heartbeat, or "" */
  int token_expired;     /* the server said so; cleared by phx_set_token */
  int waiting_token;     /* closed for an expired token: no rejoin timer */
  int token_changed;     /* phx_set_token during a join: push it once joined */
  double token_exp;      /* when the token expires (unix seconds), 0 unknown */
  /* The join was accepted, but the subscription is live only once the
   * server says "Subscribed to PostgreSQL" (or live_timer gives up waiting). */
  int live_pending;
  int live_by_fallback;  /* taken as live by live_timer: a late "ok" reloads */
  int closing;           /* phx_close ran: no callback any more */

  uv_timer_t retry_timer, hb_timer, hb_timeout_timer, join_timer, live_timer;
  int open_timers;
  void (*timers_closed)(void *data);
  void *timers_closed_data;
} phx_channel;

/* NULL when the channel's part of the options is usable, else why not. */
const char *phx_check_options(const rt_options *opts);

/* Set up ch (checked options, copied) with its timers on loop; nothing is
 * started. io and cb are copied. */
void phx_init(phx_channel *ch, uv_loop_t *loop, const rt_options *opts, const rt_callbacks *cb,
              void *data, const phx_transport *io, void *io_data);

/* Start the retry timer: the first try (connect or join) in ms. */
void phx_start(phx_channel *ch, unsigned ms);

/* The state changed or something happened worth saying (fmt may be NULL):
 * on_state, unless closing. */
void phx_report(phx_channel *ch, rt_state st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Something failed: after the next backoff delay (+-10 %), reconnect or
 * rejoin, and say so: "Realtime: <what>; reconnecting in 2 s". */
void phx_schedule(phx_channel *ch, rt_state st, const char *what);

/* Try again in ms without counting a failure (the transport is not ready). */
void phx_retry_in(phx_channel *ch, unsigned ms);

/* The websocket is open: join, and start the heartbeat. */
void phx_opened(phx_channel *ch);

/* The websocket is gone: stop the heartbeat and the channel's timers. */
void phx_socket_gone(phx_channel *ch);

/* One complete text message from the websocket. */
void phx_receive(phx_channel *ch, const char *text, size_t len);

/* See rt_set_token and rt_rejoin. */
void phx_set_token(phx_channel *ch, const char *jwt, double expires_at);
void phx_rejoin(phx_channel *ch);

/* Stop: no callback runs from now on. Queues a phx_leave when the channel
 * is joined and returns 1, else 0. */
int phx_close(phx_channel *ch);

/* Close the channel's timers, then done(data). Then phx_free. */
void phx_close_timers(phx_channel *ch, void (*done)(void *data), void *data);
void phx_free(phx_channel *ch);

#endif
