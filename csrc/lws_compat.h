/* lws_compat.h - the process's one libwebsockets 4.1 context, on a libuv
 * loop that is not lws's own: made on first use, kept for the life of the
 * process (with a client vhost per TLS set-up), destroyed once at exit by
 * lwsc_shutdown, with the workarounds that version needs (lws_compat.c says
 * which and why). Nothing else about lws lives here. Loop thread only.
 *
 * Memory: the context, its vhosts and the SSL_CTXs handed to
 * lwsc_client_vhost belong to this module until lwsc_shutdown has finished.
 * The protocols array is the caller's and must outlive the context. */
#ifndef SHELF_LWS_COMPAT_H
#define SHELF_LWS_COMPAT_H

#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <uv.h>

/* The context on loop, made on the first call (client only; protocols are
 * those of every vhost). NULL and *err (the caller frees it) when lws cannot
 * start, when an earlier call used another loop, or during lwsc_shutdown. */
struct lws_context *lwsc_context(uv_loop_t *loop, const struct lws_protocols *protocols,
                                 char **err);

/* The client vhost named `name` (one per TLS set-up), or NULL if there is
 * none yet. */
struct lws_vhost *lwsc_find_vhost(const char *name);

/* Make the client vhost `name` on the context; client_ssl: the TLS context
 * for wss:// (NULL: plain ws://), owned by this module from now on (also on
 * failure). NULL and *err when lws refuses. */
struct lws_vhost *lwsc_client_vhost(const char *name, SSL_CTX *client_ssl, char **err);

/* At exit, once no connection of the context is wanted any more and no
 * other thread opens descriptors (see lws_compat.c): close every connection
 * and destroy the context over a few loop turns, then free the vhosts'
 * SSL_CTXs. Nothing stays on the loop afterwards, and the next lwsc_context
 * starts afresh. Nothing to do when there is no context. */
void lwsc_shutdown(void);

/* How many contexts this process has made: 1 from the first connect to
 * exit (the tests check it). */
int lwsc_contexts_made(void);

/* 1 while lwsc_shutdown is under way. */
int lwsc_shutting_down(void);

/* Send lws's own warnings and errors to emit (set once per process). */
void lwsc_set_log(void (*emit)(int level, const char *line));

#endif
