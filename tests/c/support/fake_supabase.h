/* fake_supabase.h - a tiny HTTP/1.1 server on the test's loop that plays
 * Supabase Auth and PostgREST for unit tests of auth.c and store_supabase.c:
 * it records every request (method, target, headers, body) and answers
 * with what the test's route function says. Its buffers are wiped before
 * they are freed, so tests can look for secrets left in freed memory. */
#ifndef SHELF_FAKE_SUPABASE_H
#define SHELF_FAKE_SUPABASE_H

#include <stddef.h>
#include <uv.h>

#define FAKE_SB_MAX_REQS 256

typedef struct {
  char method[16];
  char *target;  /* "/auth/v1/token?grant_type=password" */
  char *headers; /* the header lines as sent, "\r\n" separated */
  char *body;
} fake_sb_req;

typedef struct fake_sb fake_sb;

/* Fill *status and *body (heap; the server frees it) for a request. */
typedef void (*fake_sb_route)(void *data, const fake_sb_req *rq, int *status, char **body);

fake_sb *fake_sb_start(uv_loop_t *loop, fake_sb_route route, void *data);
int fake_sb_port(const fake_sb *f);
int fake_sb_count(const fake_sb *f);
const fake_sb_req *fake_sb_get(const fake_sb *f, int i);
/* How many requests had a target starting with prefix. */
int fake_sb_count_prefix(const fake_sb *f, const char *prefix);
/* The last request whose target starts with prefix, or NULL. */
const fake_sb_req *fake_sb_last(const fake_sb *f, const char *prefix);
/* The value of header `name` (any case) in rq, copied (caller frees), or NULL. */
char *fake_sb_header(const fake_sb_req *rq, const char *name);
/* Header lines ("Name: value\r\n"...) added to every answer from now on;
 * NULL: none. Copied. */
void fake_sb_set_headers(fake_sb *f, const char *lines);
/* Close everything; the loop then has nothing of the server left. */
void fake_sb_stop(fake_sb *f);

#endif
