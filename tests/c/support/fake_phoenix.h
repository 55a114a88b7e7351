/* fake_phoenix.h - a tiny Phoenix (Supabase Realtime) websocket server for
 * tests, on a uv TCP handle of the test's loop at 127.0.0.1:<any port>. It
 * does the RFC 6455 handshake, answers phx_join (ok with one id per binding:
 * 1000 + its index, then the system message "Subscribed to PostgreSQL"; or
 * an error) and heartbeats, records every message it
 * receives, and lets the test push frames, drop or refuse connections. */
#ifndef SHELF_FAKE_PHOENIX_H
#define SHELF_FAKE_PHOENIX_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <uv.h>

typedef struct fake_phoenix fake_phoenix;

/* Listen on 127.0.0.1 at a port chosen by the system. NULL on failure. */
fake_phoenix *fp_new(uv_loop_t *loop);
int fp_port(const fake_phoenix *fp);
/* Close every handle, free, then call done(data). */
void fp_close(fake_phoenix *fp, void (*done)(void *data), void *data);

/* Behaviour. */
void fp_answer_heartbeats(fake_phoenix *fp, int on);    /* default on */
void fp_answer_joins(fake_phoenix *fp, int on);         /* default on */
/* Follow an ok join reply with system "Subscribed to PostgreSQL" (default on). */
void fp_send_subscribed(fake_phoenix *fp, int on);
void fp_join_error(fake_phoenix *fp, const char *reason); /* NULL: join ok */
/* Answer the next upgrades with this HTTP status (0: accept them). */
void fp_refuse(fake_phoenix *fp, int http_status);

/* What happened. Messages are parsed vsn 2.0.0 arrays
 * [join_ref, ref, topic, event, payload], owned by the server. */
int fp_connections(const fake_phoenix *fp);   /* upgrades accepted */
int fp_count(const fake_phoenix *fp, const char *event);
const cJSON *fp_last(const fake_phoenix *fp, const char *event);
const char *fp_last_path(const fake_phoenix *fp); /* of the last upgrade */
int fp_open(const fake_phoenix *fp);          /* websockets open now */

/* Actions on the newest open websocket; 0, or -1 if there is none. */
int fp_send(fake_phoenix *fp, const char *text);
/* The same message as several frames of `chunk` bytes (text + continuation). */
int fp_send_fragmented(fake_phoenix *fp, const char *text, size_t chunk);
/* A websocket close frame with this code, then the TCP close. */
int fp_close_ws(fake_phoenix *fp, int code);
/* Close the TCP connection without a close frame. */
int fp_drop(fake_phoenix *fp);

#endif
