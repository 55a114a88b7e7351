/* lws_compat.c - the process's libwebsockets 4.1.6 context on a foreign
 * libuv loop (lws_compat.h). It is made on first use and destroyed only at
 * exit, because that version's teardown is wrong in two ways, both seen on
 * Debian's build:
 * - The first lws_context_destroy closes the connections and lws's own uv
 *   handles but never frees the context; a second call does, and is safe
 *   only once those handles have finished closing (earlier, uv_run touches
 *   freed memory). So the destroy polls the loop until none is left.
 * - It closes its event pipe's fd inside the first destroy and a second time
 *   when that fd's poll handle has finished closing (strace): a descriptor
 *   opened in between under the same number would be closed under its
 *   owner. So every poll fd the destroy closed gets a pipe of ours parked on
 *   its number until lws closes it again (see lwsc_park_fds). Parking with
 *   dup3 is itself safe only while no other thread opens descriptors (curl
 *   resolves names on threads of its own): hence one context for the life
 *   of the process, torn down after everything else has stopped, instead of
 *   one per connection or sign-in.
 * Two more 4.1.6 limits: each context with DO_SSL_GLOBAL_INIT takes new
 * OpenSSL ex_data indexes into lws's globals (harmless with one context),
 * and lws would resolve names with a blocking getaddrinfo (realtime.c
 * resolves with uv_getaddrinfo and passes the address). */
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
#define LWSC_MAX_VHOSTS 8

/* The process's context. */
static struct {
  uv_loop_t *loop;
  struct lws_context *ctx;
  struct lws_context *alive; /* lws writes NULL here when it is done */
  const struct lws_protocols *protocols;
  struct {
    char *name;
    struct lws_vhost *vh;
    SSL_CTX *ssl;
  } vhosts[LWSC_MAX_VHOSTS];
  int nvhosts;
  /* The teardown. */
  uv_timer_t *timer;
  int destroyed_once;
  int parked[LWSC_MAX_PARKED];
  int nparked;
  ino_t parked_ino;
} lwsc;

void lwsc_set_log(void (*emit)(int level, const char *line)) {
  lws_set_log_level(LLL_ERR | LLL_WARN, emit);
}

static int lwsc_made;

int lwsc_contexts_made(void) { return lwsc_made; }

int lwsc_shutting_down(void) { return lwsc.timer != NULL; }

struct lws_context *lwsc_context(uv_loop_t *loop, const struct lws_protocols *protocols,
                                 char **err) {
  if (lwsc.timer) {
    *err = util_strdup("libwebsockets is shutting down");
    return NULL;
  }
  if (lwsc.ctx) {
    if (loop != lwsc.loop) {
      *err = util_strdup("libwebsockets runs on another loop");
      return NULL;
    }
    return lwsc.ctx;
  }
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  void *loops[1] = {loop};
  /* Vhosts are made per TLS set-up (lwsc_client_vhost); the global init
   * lets them take a client SSL_CTX. */
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                 LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.foreign_loops = loops;
  info.pcontext = &lwsc.alive;
  info.gid = -1;
  info.uid = -1;
  info.connect_timeout_secs = 10;
  lwsc.ctx = lws_create_context(&info);
  if (!lwsc.ctx) {
    *err = util_strdup("libwebsockets could not start (is libwebsockets-evlib-uv installed?)");
    return NULL;
  }
  lwsc_made++;
  lwsc.alive = lwsc.ctx;
  lwsc.loop = loop;
  lwsc.protocols = protocols;
  return lwsc.ctx;
}

struct lws_vhost *lwsc_find_vhost(const char *name) {
  for (int i = 0; i < lwsc.nvhosts; i++)
    if (strcmp(lwsc.vhosts[i].name, name) == 0)
      return lwsc.vhosts[i].vh;
  return NULL;
}

struct lws_vhost *lwsc_client_vhost(const char *name, SSL_CTX *client_ssl, char **err) {
  if (!lwsc.ctx || lwsc.timer || lwsc.nvhosts == LWSC_MAX_VHOSTS) {
    SSL_CTX_free(client_ssl);
    *err = util_strdup(lwsc.ctx && !lwsc.timer ? "too many TLS set-ups for libwebsockets"
                                               : "libwebsockets is not running");
    return NULL;
  }
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  /* lws 4.1.6 takes a client SSL_CTX only with DO_SSL_GLOBAL_INIT; it does
   * not free one it was given. */
  info.options = client_ssl ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = lwsc.protocols;
  info.vhost_name = name;
  info.gid = -1;
  info.uid = -1;
  info.provided_client_ssl_ctx = client_ssl;
  struct lws_vhost *vh = lws_create_vhost(lwsc.ctx, &info);
  if (!vh) {
    SSL_CTX_free(client_ssl);
    *err = util_strdup("libwebsockets could not make a client vhost");
    return NULL;
  }
  lwsc.vhosts[lwsc.nvhosts].name = util_strdup(name);
  lwsc.vhosts[lwsc.nvhosts].vh = vh;
  lwsc.vhosts[lwsc.nvhosts].ssl = client_ssl;
  lwsc.nvhosts++;
  return vh;
}

/* lws's static handles have the context as data; its poll handles (whose
 * close callbacks may close an fd) are counted while they are closing. */
static void lwsc_count_handle(uv_handle_t *h, void *arg) {
  void **a = arg;
  if (h->data == a[0] || (h->type == UV_POLL && uv_is_closing(h)))
    (*(int *)a[1])++;
}

static void lwsc_note_poll_fd(uv_handle_t *h, void *arg) {
  (void)arg;
  int fd;
  if (h->type == UV_POLL && !uv_is_closing(h) && lwsc.nparked < LWSC_MAX_PARKED &&
      uv_fileno(h, &fd) == 0)
    lwsc.parked[lwsc.nparked++] = fd;
}

/* After the first destroy: of the poll fds noted before it, those it closed
 * get a pipe of ours dup3'ed onto their numbers. */
static void lwsc_park_fds(void) {
  int n = 0;
  for (int i = 0; i < lwsc.nparked; i++) /* keep those the destroy closed */
    if (fcntl(lwsc.parked[i], F_GETFD) == -1 && errno == EBADF)
      lwsc.parked[n++] = lwsc.parked[i];
  lwsc.nparked = 0;
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
  lwsc.parked_ino = st.st_ino;
  int kept[2] = {0, 0};
  for (int i = 0; i < n; i++) {
    int fd = lwsc.parked[i];
    if (fd == p[0] || fd == p[1])
      kept[fd == p[1]] = 1;
    else if (dup3(p[0], fd, O_CLOEXEC) != fd)
      continue;
    lwsc.parked[lwsc.nparked++] = fd;
  }
  for (int k = 0; k < 2; k++)
    if (!kept[k])
      close(p[k]);
}

/* Close whatever lws did not close a second time. */
static void lwsc_unpark_fds(void) {
  struct stat st;
  for (int i = 0; i < lwsc.nparked; i++) {
    int fd = lwsc.parked[i];
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) && st.st_ino == lwsc.parked_ino)
      close(fd);
  }
  lwsc.nparked = 0;
}

static void lwsc_on_timer_closed(uv_handle_t *h) { free(h); }

static void lwsc_on_tick(uv_timer_t *t) {
  if (!lwsc.destroyed_once) {
    lwsc.destroyed_once = 1;
    lwsc.nparked = 0;
    uv_walk(lwsc.loop, lwsc_note_poll_fd, NULL);
    lws_context_destroy(lwsc.ctx);
    lwsc_park_fds();
    return;
  }
  int left = 0;
  void *arg[2] = {lwsc.ctx, &left};
  uv_walk(lwsc.loop, lwsc_count_handle, arg);
  if (left)
    return;
  uv_timer_stop(t);
  lws_context_destroy(lwsc.ctx);
  if (lwsc.alive)
    log_warn("realtime: libwebsockets did not finish its teardown");
  lwsc_unpark_fds();
  for (int i = 0; i < lwsc.nvhosts; i++) {
    free(lwsc.vhosts[i].name);
    SSL_CTX_free(lwsc.vhosts[i].ssl);
  }
  uv_close((uv_handle_t *)t, lwsc_on_timer_closed);
  memset(&lwsc, 0, sizeof lwsc);
}

void lwsc_shutdown(void) {
  if (!lwsc.ctx || lwsc.timer)
    return;
  lwsc.timer = util_malloc(sizeof *lwsc.timer);
  uv_timer_init(lwsc.loop, lwsc.timer);
  lwsc.timer->data = NULL;
  /* Never inside one of the context's callbacks: from the next loop turn. */
  uv_timer_start(lwsc.timer, lwsc_on_tick, 0, LWSC_POLL_MS);
}
