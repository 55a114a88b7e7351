/* lws_compat.h - creating and destroying a libwebsockets 4.1 context on a
 * libuv loop that is not lws's own, with the workarounds that version needs
 * (lws_compat.c says which and why). Nothing else about lws lives here.
 *
 * Memory: lwsc_create returns a holder the caller owns until it hands it to
 * lwsc_destroy, which frees it (and the lws context) before calling done.
 * The protocols array and the SSL_CTX stay the caller's; both must outlive
 * the holder (the caller frees the SSL_CTX in or after done). */
#ifndef SHELF_LWS_COMPAT_H
#define SHELF_LWS_COMPAT_H

#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <uv.h>

typedef struct lwsc lwsc;

/* A client-only context on loop. client_ssl: the TLS context for wss://
 * (NULL: no TLS). user: what lws_context_user gives back. NULL and *err (the
 * caller frees it) when lws cannot start. */
lwsc *lwsc_create(uv_loop_t *loop, const struct lws_protocols *protocols, void *user,
                  SSL_CTX *client_ssl, char **err);

struct lws_context *lwsc_context(const lwsc *c);

/* Close every connection of the context and destroy it, over a few loop
 * turns; then done(data) on the loop. Never call it from inside one of the
 * context's own callbacks. */
void lwsc_destroy(lwsc *c, void (*done)(void *data), void *data);

/* How many destroys are under way in this process. */
int lwsc_teardowns(void);

/* Send lws's own warnings and errors to emit (set once per process). */
void lwsc_set_log(void (*emit)(int level, const char *line));

#endif
