/* lws_compat.c - the libwebsockets 4.1.6 context on a foreign libuv loop
 * (lws_compat.h): its creation and its teardown, which that version gets
 * wrong in two ways, both seen on Debian's build:
 * - The first lws_context_destroy closes the connections and lws's own uv
 *   handles but never frees the context; a second call does, and is safe
 *   only once those handles have finished closing (earlier, uv_run touches
 *   freed memory). So the destroy polls the loop until none is left.
 * - It closes its event pipe's fd inside the first destroy and a second time
 *   when that fd's poll handle has finished closing (strace): a descriptor
 *   opened in between under the same number would be closed under its
 *   owner. So every poll fd the destroy closed gets a pipe of ours parked on
 *   its number until lws closes it again (see lwsc_park_fds).
 * Parking with dup3 is only safe while no other thread opens descriptors.
 * Other 4.1.6 limits are handled by the caller (realtime.c): names are
 * resolved with uv_getaddrinfo because lws would block in getaddrinfo. */
#define _GNU_SOURCE /* pipe2, dup3 */
#include "lws_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define LWSC_POLL_MS 1
#define LWSC_MAX_PARKED 64

struct lwsc {
  uv_loop_t *loop;
  struct lws_context *ctx;
  struct lws_context *alive; /* lws writes NULL here when it is done */
  uv_timer_t timer;          /* drives the destroy */
  int destroyed_once;
  int parked[LWSC_MAX_PARKED];
  int nparked;
  ino_t parked_ino;
  void (*done)(void *);
  void *done_data;
};

static int lwsc_nteardowns;

int lwsc_teardowns(void) { return lwsc_nteardowns; }

void lwsc_set_log(void (*emit)(int level, const char *line)) {
  lws_set_log_level(LLL_ERR | LLL_WARN, emit);
}

lwsc *lwsc_create(uv_loop_t *loop, const struct lws_protocols *protocols, void *user,
                  SSL_CTX *client_ssl, char **err) {
  lwsc *c = util_calloc(1, sizeof *c);
  c->loop = loop;
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  void *loops[1] = {loop};
  /* lws 4.1.6 takes a client SSL_CTX only with DO_SSL_GLOBAL_INIT, and each
   * such context takes new OpenSSL ex_data indexes into lws's globals: with
   * two contexts alive at once the first one's own SSL_CTX is then never
   * freed. So: no TLS, no global init; with TLS, the caller's SSL_CTX, which
   * lws does not free. */
  info.options = LWS_SERVER_OPTION_LIBUV | (client_ssl ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.foreign_loops = loops;
  info.pcontext = &c->alive;
  info.user = user;
  info.gid = -1;
  info.uid = -1;
  info.connect_timeout_secs = 10;
  info.provided_client_ssl_ctx = client_ssl;
  c->ctx = lws_create_context(&info);
  if (!c->ctx) {
    if (err)
      *err = util_strdup("libwebsockets could not start (is libwebsockets-evlib-uv installed?)");
    free(c);
    return NULL;
  }
  c->alive = c->ctx;
  return c;
}

struct lws_context *lwsc_context(const lwsc *c) { return c->ctx; }

/* lws's static handles have the context as data; its poll handles (whose
 * close callbacks may close an fd) are counted while they are closing. */
static void lwsc_count_handle(uv_handle_t *h, void *arg) {
  void **a = arg;
  if (h->data == a[0] || (h->type == UV_POLL && uv_is_closing(h)))
    (*(int *)a[1])++;
}

static void lwsc_note_poll_fd(uv_handle_t *h, void *arg) {
  lwsc *c = arg;
  int fd;
  if (h->type == UV_POLL && !uv_is_closing(h) && c->nparked < LWSC_MAX_PARKED &&
      uv_fileno(h, &fd) == 0)
    c->parked[c->nparked++] = fd;
}

/* After the first destroy: of the poll fds noted before it, those it closed
 * get a pipe of ours dup3'ed onto their numbers. */
static void lwsc_park_fds(lwsc *c) {
  int n = 0;
  for (int i = 0; i < c->nparked; i++) /* keep those the destroy closed */
    if (fcntl(c->parked[i], F_GETFD) == -1 && errno == EBADF)
      c->parked[n++] = c->parked[i];
  c->nparked = 0;
  /* A pipe of our own marks the parked numbers: its inode is ours alone, so
   * the end can tell them from anything opened later. The pipe takes the
   * lowest free numbers, which may be among them: those are parked already. */
  int p[2];
  struct stat st;
  if (n == 0 || pipe2(p, O_CLOEXEC) < 0)
    return;
  if (fstat(p[0], &st) < 0) {
    close(p[0]);
    close(p[1]);
    return;
  }
  c->parked_ino = st.st_ino;
  int kept[2] = {0, 0};
  for (int i = 0; i < n; i++) {
    int fd = c->parked[i];
    if (fd == p[0] || fd == p[1])
      kept[fd == p[1]] = 1;
    else if (dup3(p[0], fd, O_CLOEXEC) != fd)
      continue;
    c->parked[c->nparked++] = fd;
  }
  for (int k = 0; k < 2; k++)
    if (!kept[k])
      close(p[k]);
}

/* Close whatever lws did not close a second time. */
static void lwsc_unpark_fds(lwsc *c) {
  struct stat st;
  for (int i = 0; i < c->nparked; i++) {
    int fd = c->parked[i];
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) && st.st_ino == c->parked_ino)
      close(fd);
  }
  c->nparked = 0;
}

static void lwsc_on_timer_closed(uv_handle_t *h) {
  lwsc *c = h->data;
  void (*done)(void *) = c->done;
  void *data = c->done_data;
  free(c);
  if (done)
    done(data);
}

static void lwsc_on_tick(uv_timer_t *t) {
  lwsc *c = t->data;
  if (!c->destroyed_once) {
    c->destroyed_once = 1;
    c->nparked = 0;
    uv_walk(c->loop, lwsc_note_poll_fd, c);
    lws_context_destroy(c->ctx);
    lwsc_park_fds(c);
    return;
  }
  int left = 0;
  void *arg[2] = {c->ctx, &left};
  uv_walk(c->loop, lwsc_count_handle, arg);
  if (left)
    return;
  uv_timer_stop(t);
  lws_context_destroy(c->ctx);
  lwsc_nteardowns--;
  if (c->alive)
    log_warn("realtime: libwebsockets did not finish its teardown");
  c->ctx = NULL;
  lwsc_unpark_fds(c);
  uv_close((uv_handle_t *)t, lwsc_on_timer_closed);
}

void lwsc_destroy(lwsc *c, void (*done)(void *data), void *data) {
  c->done = done;
  c->done_data = data;
  lwsc_nteardowns++;
  uv_timer_init(c->loop, &c->timer);
  c->timer.data = c;
  uv_timer_start(&c->timer, lwsc_on_tick, 0, LWSC_POLL_MS);
}
