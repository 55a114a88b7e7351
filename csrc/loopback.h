/* loopback.h - the one-shot HTTP listener a native app uses to receive an
 * OAuth redirect (RFC 8252 section 7.3): it binds 127.0.0.1 only, reads at
 * most LOOPBACK_MAX_REQUEST bytes of each request, hands the owner the query
 * of a GET on LOOPBACK_PATH that carries `code` or `error`, answers the
 * browser a short page, and answers everything else 404. It knows nothing
 * of Supabase: auth.c decides what an answer means. The listener is the
 * caller's until loopback_close, which frees it once its handles (and its
 * connections') have closed; it wipes each request it read before freeing. */
#ifndef SHELF_LOOPBACK_H
#define SHELF_LOOPBACK_H

#include <uv.h>

#define LOOPBACK_PATH "/auth/callback"
#define LOOPBACK_MAX_REQUEST 8192     /* bytes of request line and headers */
#define LOOPBACK_REQUEST_TIMEOUT_MS 10000
#define LOOPBACK_MAX_CONNECTIONS 8

typedef struct loopback loopback;

/* What the browser brought back; each NULL when absent. Borrowed for the
 * call. */
typedef struct {
  const char *code, *state, *error, *error_description;
} loopback_answer;

typedef enum {
  LOOPBACK_ACCEPTED, /* 200: "signed in, you can close this tab" */
  LOOPBACK_REFUSED,  /* 400: the page shows `why` */
} loopback_verdict;

/* The callback may call loopback_close (the page is still sent). For
 * LOOPBACK_REFUSED it writes a message for the page into why[why_size]. */
typedef loopback_verdict (*loopback_cb)(void *data, const loopback_answer *answer,
                                        char *why, size_t why_size);

/* Listen on 127.0.0.1:port (0: a free port). Returns the listener and sets
 * *port_out to the port in use, or NULL and *err (caller frees), e.g. when
 * the port is taken. Freed by loopback_close only. */
loopback *loopback_open(uv_loop_t *loop, unsigned port, loopback_cb cb, void *data,
                        unsigned *port_out, char **err);

/* Stop listening and drop open connections (one whose answer is being
 * written finishes first); closed(data) (may be NULL) runs once every
 * handle is released. cb is never called after this. */
void loopback_close(loopback *lb, void (*closed)(void *), void *data);

/* The value of query parameter `name` in an absolute URL (`+` read as a
 * space, percent-decoded by libcurl), or NULL if absent or the URL is not
 * one. The caller frees. */
char *loopback_url_param(const char *url, const char *name);

#endif
