/* http.c - see http.h. The client owns a curl multi handle, its uv_timer_t,
 * one heap http_sock (a uv_poll_t) per socket curl asks us to watch, and one
 * http_req per request in flight. curl's socket callback is the only place
 * a poll handle is closed (on CURL_POLL_REMOVE); memory is freed in close
 * callbacks only, and c itself once the last of its handles has closed.
 * Completions are read in both the poll and the timer path and handed to the
 * callbacks after curl_multi_socket_action has returned, never inside it. */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "list.h"
#include "log.h"
#include "mpjson.h"
#include "util.h"

#ifndef SHELF_VERSION
#define SHELF_VERSION "" /* the build passes it to shelfd; "dev" below */
#endif

#define HTTP_MAX_HOST_CONNECTIONS 8 /* parallel connections to one host */
#define HTTP_MAX_IDLE 16L           /* connections kept open for reuse */
#define HTTP_KEEPIDLE_S 60L
#define HTTP_KEEPINTVL_S 30L
#define HTTP_ERROR_MAX 512

typedef struct http_sock {
  uv_poll_t poll;
  struct http_client *c;
  curl_socket_t fd;
  int closing;
  list_node link; /* in c->socks until freed */
} http_sock;

typedef struct http_req {
  struct http_client *c;
  list_node link; /* in c->reqs while curl has it */
  long id;
  const char *method; /* static */
  char *where;        /* scheme://host/path without the query, for the log */
  CURL *easy;
  struct curl_slist *headers;
  char *req_body;
  size_t req_body_len;
  http_done_cb cb;
  void *data;
  char *body; /* response body, NUL-terminated when not NULL */
  size_t body_len, body_cap;
  char *hdrs; /* "name\0value\0" pairs of the current response */
  size_t hdrs_len, hdrs_cap;
  int body_too_big, headers_too_big;
  char errbuf[CURL_ERROR_SIZE];
} http_req;

struct http_client {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  char *ca_file;
  long connect_timeout_ms, timeout_ms;
  size_t max_body;
  int zero_timeout_is_1ms; /* libuv < 1.48, see http_on_timer_set */
  char user_agent[64];
  long next_id;
  list_node reqs; /* http_req.link */
  size_t nreqs;
  list_node socks; /* http_sock.link */
  int handles; /* uv handles not yet closed: the timer and the polls */
  int closing;
  void (*closed)(void *);
  void *closed_data;
};

/* curl_global_init/cleanup are paired with the first and last client. */
static int http_clients;

static void http_check_done(http_client *c);

/* --- handles and their close callbacks ------------------------------------ */

static void http_maybe_freed(http_client *c) {
  if (!c->closing || c->multi || c->handles > 0)
    return;
  void (*closed)(void *) = c->closed;
  void *data = c->closed_data;
  free(c->ca_file);
  free(c);
  if (--http_clients == 0)
    curl_global_cleanup();
  if (closed)
    closed(data);
}

static void http_on_sock_closed(uv_handle_t *h) {
  http_sock *k = h->data;
  http_client *c = k->c;
  list_remove(&k->link);
  free(k);
  c->handles--;
  http_maybe_freed(c);
}

static void http_on_timer_closed(uv_handle_t *h) {
  http_client *c = h->data;
  c->handles--;
  http_maybe_freed(c);
}

static void http_sock_close(http_sock *k) {
  if (k->closing)
    return;
  k->closing = 1;
  uv_close((uv_handle_t *)&k->poll, http_on_sock_closed);
}

/* --- libuv -> curl -------------------------------------------------------- */

static void http_on_poll(uv_poll_t *h, int status, int events) {
  http_sock *k = h->data;
  http_client *c = k->c;
  int flags = 0;
  int running;
  /* libuv 1.44 stops the handle itself on POLLERR and reports UV_EBADF with
   * no events: let curl see the error instead of a spurious read. */
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if (events & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
      flags |= CURL_CSELECT_OUT;
  }
  /* k may be closed inside this call (CURL_POLL_REMOVE): not used after. */
  CURLMcode mc = curl_multi_socket_action(c->multi, k->fd, flags, &running);
  if (mc != CURLM_OK)
    log_error("http: curl_multi_socket_action: %s", curl_multi_strerror(mc));
  http_check_done(c);
}

static void http_on_timeout(uv_timer_t *t) {
  http_client *c = t->data;
  int running;
  CURLMcode mc =
      curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  if (mc != CURLM_OK)
    log_error("http: curl_multi_socket_action: %s", curl_multi_strerror(mc));
  /* Always: a transfer that times out ends here with running == 0. */
  http_check_done(c);
}

/* --- curl -> libuv -------------------------------------------------------- */

static int http_on_socket(CURL *easy, curl_socket_t s, int what, void *userp,
                          void *socketp) {
  http_client *c = userp;
  http_sock *k = socketp;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    /* The only place a poll handle is closed. curl forgets k with this
     * call, so it can never hand it back to us. */
    if (k) {
      curl_multi_assign(c->multi, s, NULL);
      http_sock_close(k);
    }
    return 0;
  }
  if (!k) {
    k = util_calloc(1, sizeof *k);
    int rc = uv_poll_init_socket(c->loop, &k->poll, s);
    if (rc < 0) {
      log_error("http: cannot watch socket %d: %s", (int)s, uv_strerror(rc));
      free(k);
      return -1;
    }
    k->poll.data = k;
    k->c = c;
    k->fd = s;
    list_push_back(&c->socks, &k->link);
    c->handles++;
    curl_multi_assign(c->multi, s, k);
  }
  int events = 0;
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  int rc = uv_poll_start(&k->poll, events, http_on_poll);
  if (rc < 0) {
    log_error("http: cannot poll socket %d: %s", (int)s, uv_strerror(rc));
    return -1;
  }
  return 0;
}

static int http_on_timer_set(CURLM *multi, long timeout_ms, void *userp) {
  http_client *c = userp;
  (void)multi;
  if (timeout_ms < 0) {
    uv_timer_stop(&c->timer);
    return 0;
  }
  /* 0 means "as soon as possible, but not inside this callback". Before
   * libuv 1.48 a 0 ms timer started from a timer callback runs again in the
   * same pass of the loop (libuv#4245), so wait 1 ms instead. */
  if (timeout_ms == 0 && c->zero_timeout_is_1ms)
    timeout_ms = 1;
  uv_timer_start(&c->timer, http_on_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

/* --- receiving ------------------------------------------------------------ */

static size_t http_on_body(char *ptr, size_t size, size_t nmemb, void *userp) {
  http_req *r = userp;
  size_t n = size * nmemb;
  size_t max = r->c->max_body;
  if (n > max - r->body_len) {
    r->body_too_big = 1;
    return 0; /* != n: curl stops with CURLE_WRITE_ERROR */
  }
  if (r->body_len + n + 1 > r->body_cap) {
    size_t cap = r->body_cap ? r->body_cap * 2 : 16384;
    if (cap < r->body_len + n + 1)
      cap = r->body_len + n + 1;
    if (cap > max + 1)
      cap = max + 1;
    r->body = util_realloc(r->body, cap);
    r->body_cap = cap;
  }
  memcpy(r->body + r->body_len, ptr, n);
  r->body_len += n;
  r->body[r->body_len] = '\0';
  return n;
}

/* Keep the headers of the last response (a 100 Continue comes first) as
 * "name\0value\0" pairs, names in lower case, bounded by HTTP_MAX_HEADERS. */
static size_t http_on_header(char *buf, size_t size, size_t nitems,
                             void *userp) {
  http_req *r = userp;
  size_t n = size * nitems;
  size_t len = n;
  while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == '\n'))
    len--;
  if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
    r->hdrs_len = 0;
    return n;
  }
  const char *colon = memchr(buf, ':', len);
  if (!colon)
    return n; /* the blank line, or an obsolete folded line */
  size_t name_len = (size_t)(colon - buf);
  const char *value = colon + 1;
  const char *end = buf + len;
  while (value < end && (*value == ' ' || *value == '\t'))
    value++;
  while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  size_t value_len = (size_t)(end - value);
  size_t need = name_len + value_len + 2;
  if (need > HTTP_MAX_HEADERS - r->hdrs_len) {
    r->headers_too_big = 1;
    return 0;
  }
  if (r->hdrs_len + need > r->hdrs_cap) {
    size_t cap = r->hdrs_cap ? r->hdrs_cap * 2 : 1024;
    while (cap < r->hdrs_len + need)
      cap *= 2;
    r->hdrs = util_realloc(r->hdrs, cap);
    r->hdrs_cap = cap;
  }
  char *p = r->hdrs + r->hdrs_len;
  for (size_t i = 0; i < name_len; i++) {
    unsigned char ch = (unsigned char)buf[i];
    p[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  }
  p[name_len] = '\0';
  memcpy(p + name_len + 1, value, value_len);
  p[name_len + 1 + value_len] = '\0';
  r->hdrs_len += need;
  return n;
}

const char *http_header(const http_response *res, const char *name) {
  if (!res || !res->headers || !name)
    return NULL;
  const char *p = res->headers, *end = res->headers + res->headers_len;
  while (p < end) {
    const char *value = p + strlen(p) + 1;
    if (strcasecmp(p, name) == 0)
      return value;
    p = value + strlen(value) + 1;
  }
  return NULL;
}

unsigned http_retry_after_ms(const http_response *res, unsigned max_ms, time_t now) {
  const char *v = http_header(res, "retry-after");
  if (!v)
    return 0;
  while (*v == ' ' || *v == '\t')
    v++;
  double s;
  if (*v >= '0' && *v <= '9') {
    /* delta-seconds: digits only. */
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    while (*end == ' ' || *end == '\t')
      end++;
    if (*end != '\0')
      return 0;
    s = errno == ERANGE ? 1e300 : (double)n;
  } else {
    /* An HTTP-date (IMF-fixdate, or the obsolete forms curl also reads). */
    time_t at = curl_getdate(v, NULL);
    if (at == (time_t)-1)
      return 0;
    s = at > now ? difftime(at, now) : 0;
  }
  double ms = s * 1000.0;
  return ms < max_ms ? (unsigned)ms : max_ms;
}

/* --- errors for people ---------------------------------------------------- */

static int http_is_tls_error(CURLcode result) {
  switch (result) {
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_SHUTDOWN_FAILED:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CLIENTCERT:
    return 1;
  default:
    return 0;
  }
}

/* A message for a failed transfer, from curl's code and error buffer. */
static void http_describe(const http_req *r, CURLcode result, char *out,
                          size_t cap) {
  const http_client *c = r->c;
  const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(result);
  char size[32];
  if (r->body_too_big || result == CURLE_FILESIZE_EXCEEDED) {
    util_fmt_size(c->max_body, size, sizeof size);
    snprintf(out, cap, "response larger than %s", size);
  } else if (r->headers_too_big) {
    util_fmt_size(HTTP_MAX_HEADERS, size, sizeof size);
    snprintf(out, cap, "response headers larger than %s", size);
  } else if (result == CURLE_COULDNT_CONNECT) {
    long os_errno = 0;
    curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
    if (os_errno == ECONNREFUSED)
      snprintf(out, cap, "connection refused");
    else
      snprintf(out, cap, "cannot connect: %s", detail);
  } else if (result == CURLE_OPERATION_TIMEDOUT) {
    /* A reused connection has no connect time at all: whether the request
     * was ready to go out (pretransfer) tells the two timeouts apart. */
    curl_off_t connected_us = 0, pretransfer_us = 0;
    curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T, &connected_us);
    curl_easy_getinfo(r->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
    long ms = c->timeout_ms;
    const char *what = "timed out";
    if (connected_us == 0 && pretransfer_us == 0 && c->connect_timeout_ms < c->timeout_ms) {
      ms = c->connect_timeout_ms;
      what = "connect timed out";
    }
    snprintf(out, cap, "%s after %g s", what, (double)ms / 1000.0);
  } else if (result == CURLE_PEER_FAILED_VERIFICATION &&
             strncmp(r->errbuf, "SSL certificate problem: ", 25) == 0) {
    snprintf(out, cap, "TLS: certificate verify failed (%s)", r->errbuf + 25);
  } else if (http_is_tls_error(result)) {
    if (strncmp(detail, "SSL: ", 5) == 0)
      detail += 5;
    snprintf(out, cap, "TLS: %s", detail);
  } else if (result == CURLE_COULDNT_RESOLVE_HOST) {
    snprintf(out, cap, "cannot resolve host (%s)", detail);
  } else if (result == CURLE_GOT_NOTHING) {
    snprintf(out, cap, "the server closed the connection without answering");
  } else if (result == CURLE_SEND_ERROR || result == CURLE_RECV_ERROR ||
             result == CURLE_PARTIAL_FILE) {
    snprintf(out, cap, "connection lost (%s)", detail);
  } else {
    snprintf(out, cap, "%s", detail);
  }
}

/* --- requests ------------------------------------------------------------- */

static void http_req_free(http_req *r) {
  curl_easy_cleanup(r->easy);
  /* Requests carry passwords and tokens (bodies, Authorization) and answers
   * carry tokens: none is left behind in freed memory. */
  for (struct curl_slist *h = r->headers; h; h = h->next)
    explicit_bzero(h->data, strlen(h->data));
  curl_slist_free_all(r->headers);
  if (r->req_body)
    explicit_bzero(r->req_body, r->req_body_len);
  free(r->req_body);
  if (r->body)
    explicit_bzero(r->body, r->body_len);
  free(r->body);
  free(r->hdrs);
  free(r->where);
  free(r);
}

static void http_req_unlink(http_client *c, http_req *r) {
  list_remove(&r->link);
  c->nreqs--;
}

/* Forget r without calling its callback. Not from inside a curl callback. */
static void http_req_drop(http_client *c, http_req *r) {
  curl_multi_remove_handle(c->multi, r->easy);
  http_req_unlink(c, r);
  http_req_free(r);
}

static void http_finish(http_client *c, http_req *r, CURLcode result) {
  http_response res;
  char errmsg[HTTP_ERROR_MAX];
  long status = 0, header_size = 0, request_size = 0, connects = 0;
  curl_off_t total_us = 0, down = 0, up = 0;
  memset(&res, 0, sizeof res);
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &total_us);
  curl_easy_getinfo(r->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
  curl_easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T, &up);
  curl_easy_getinfo(r->easy, CURLINFO_HEADER_SIZE, &header_size);
  curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &request_size);
  curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &connects);
  res.curl_code = (int)result;
  res.body = "";
  if (result == CURLE_OK) {
    res.status = status;
    if (r->body) {
      res.body = r->body;
      res.body_len = r->body_len;
    }
    res.headers = r->hdrs;
    res.headers_len = r->hdrs_len;
    res.content_range = http_header(&res, "content-range");
    log_debug("http: %s %s: %ld, %zu bytes", r->method, r->where, status,
              r->body_len);
  } else {
    http_describe(r, result, errmsg, sizeof errmsg);
    res.error = errmsg;
    res.body_too_big = r->body_too_big || result == CURLE_FILESIZE_EXCEEDED;
    res.cert_rejected = result == CURLE_PEER_FAILED_VERIFICATION ||
                        result == CURLE_SSL_CACERT_BADFILE || result == CURLE_SSL_ISSUER_ERROR ||
                        result == CURLE_SSL_PINNEDPUBKEYNOTMATCH ||
                        result == CURLE_SSL_INVALIDCERTSTATUS;
    log_debug("http: %s %s: %s", r->method, r->where, errmsg);
  }
  res.total_ms = (double)total_us / 1000.0;
  res.bytes_in = (size_t)header_size + (size_t)down;
  res.bytes_out = (size_t)request_size + (size_t)up;
  res.new_connections = connects;

  /* Out of curl's hands and out of the list before the callback, which may
   * start, cancel or close anything. */
  curl_multi_remove_handle(c->multi, r->easy);
  http_req_unlink(c, r);
  r->cb(r->data, &res);
  http_req_free(r);
}

/* Hand every finished transfer to its callback. Called after each
 * curl_multi_socket_action, from the poll and the timer path alike. */
static void http_check_done(http_client *c) {
  CURLMsg *msg;
  int left;
  /* A callback may close the client: then the multi handle is gone. */
  while (!c->closing && (msg = curl_multi_info_read(c->multi, &left))) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    /* msg dies with curl_multi_remove_handle: copy what we need. */
    CURL *easy = msg->easy_handle;
    CURLcode result = msg->data.result;
    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    http_req *r = (http_req *)priv;
    if (r)
      http_finish(c, r, result);
  }
}

static const char *const http_methods[] = {"GET", "HEAD",  "POST",
                                           "PUT", "PATCH", "DELETE"};

static const char *http_known_method(const char *method) {
  for (size_t i = 0; i < sizeof http_methods / sizeof http_methods[0]; i++)
    if (strcmp(method, http_methods[i]) == 0)
      return http_methods[i];
  return NULL;
}

/* "https://host/path" of an http(s) URL, without query or credentials; NULL
 * if url is not an absolute http or https URL. The caller frees. */
static char *http_check_url(const char *url) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *path = NULL, *out = NULL;
  if (!u)
    return NULL;
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK &&
      (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0))
    out = util_printf("%s://%s%s", scheme, host, path);
  curl_free(scheme);
  curl_free(host);
  curl_free(path);
  curl_url_cleanup(u);
  return out;
}

char *http_error_text(const http_response *res, char **code) {
  cJSON *o = res->body_len ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
  const char *msg = mpjson_get_str(o, "msg");
  if (!msg)
    msg = mpjson_get_str(o, "message");
  if (!msg)
    msg = mpjson_get_str(o, "error_description");
  const char *c = mpjson_get_str(o, "error_code");
  if (!c)
    c = mpjson_get_str(o, "code");
  char *out = msg ? util_printf("%s%s%s%s", msg, c ? " (" : "", c ? c : "", c ? ")" : "") : NULL;
  if (code)
    *code = c ? util_strdup(c) : NULL;
  cJSON_Delete(o);
  return out;
}

char *http_url_authority(const char *url) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;
  if (!u)
    abort(); /* out of memory: as util_malloc does */
  if (url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && *host) {
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
      out = util_printf("%s:%s", host, port);
    else
      out = util_strdup(host);
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return out;
}

static int http_header_ok(const char *h) {
  return strchr(h, ':') && !strpbrk(h, "\r\n");
}

long http_request(http_client *c, const char *method, const char *url,
                  const char *const *headers, const char *body, size_t body_len,
                  http_done_cb cb, void *data) {
  if (!c || c->closing || !method || !url || !cb || (body_len && !body))
    return UV_EINVAL;
  const char *m = http_known_method(method);
  if (!m)
    return UV_EINVAL;
  for (size_t i = 0; headers && headers[i]; i++)
    if (!http_header_ok(headers[i]))
      return UV_EINVAL;
  char *where = http_check_url(url);
  if (!where)
    return UV_EINVAL;

  http_req *r = util_calloc(1, sizeof *r);
  r->c = c;
  r->method = m;
  r->where = where;
  r->cb = cb;
  r->data = data;
  r->easy = curl_easy_init();
  if (!r->easy) {
    http_req_free(r);
    return UV_ENOMEM;
  }
  for (size_t i = 0; headers && headers[i]; i++)
    r->headers = curl_slist_append(r->headers, headers[i]);
  /* No "Expect: 100-continue" wait before larger bodies. */
  r->headers = curl_slist_append(r->headers, "Expect:");

  CURL *e = r->easy;
  CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                          \
  do {                                                                         \
    if (rc == CURLE_OK)                                                        \
      rc = curl_easy_setopt(e, opt, val);                                      \
  } while (0)
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
  SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  SET(CURLOPT_PRIVATE, r);
  SET(CURLOPT_ERRORBUFFER, r->errbuf);
  /* Without these curl would fwrite to stdout: shelfd's RPC channel. */
  SET(CURLOPT_WRITEFUNCTION, http_on_body);
  SET(CURLOPT_WRITEDATA, r);
  SET(CURLOPT_HEADERFUNCTION, http_on_header);
  SET(CURLOPT_HEADERDATA, r);
  SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_body);
  SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
  SET(CURLOPT_TIMEOUT_MS, c->timeout_ms);
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  if (c->ca_file)
    SET(CURLOPT_CAINFO, c->ca_file);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_TCP_KEEPIDLE, HTTP_KEEPIDLE_S);
  SET(CURLOPT_TCP_KEEPINTVL, HTTP_KEEPINTVL_S);
  /* Parallel requests wait to share a new connection if it turns out to
   * speak HTTP/2. Over https ALPN settles that in the handshake; over plain
   * http (always HTTP/1.1 here) curl would only know from the first answer,
   * so a slow first request would hold back all the others. */
  SET(CURLOPT_PIPEWAIT, strncmp(where, "https:", 6) == 0 ? 1L : 0L);
  SET(CURLOPT_USERAGENT, c->user_agent);
  SET(CURLOPT_ACCEPT_ENCODING, "gzip");
  SET(CURLOPT_HTTPHEADER, r->headers);
  if (strcmp(m, "GET") == 0) {
    SET(CURLOPT_HTTPGET, 1L);
  } else if (strcmp(m, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else {
    /* POST, PUT and PATCH always send a body (maybe empty, with its
     * Content-Length); DELETE only when given one. */
    if (body || strcmp(m, "DELETE") != 0) {
      r->req_body = util_malloc(body_len + 1);
      r->req_body_len = body_len;
      if (body_len)
        memcpy(r->req_body, body, body_len);
      r->req_body[body_len] = '\0';
      SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
      SET(CURLOPT_POSTFIELDS, r->req_body);
    }
    if (strcmp(m, "POST") != 0)
      SET(CURLOPT_CUSTOMREQUEST, m);
  }
#undef SET
  if (rc != CURLE_OK) {
    log_error("http: cannot set up a request: %s", curl_easy_strerror(rc));
    http_req_free(r);
    return UV_EIO;
  }

  /* Linked first: curl_multi_add_handle calls the timer callback. */
  r->id = ++c->next_id;
  list_push_back(&c->reqs, &r->link);
  c->nreqs++;
  CURLMcode mc = curl_multi_add_handle(c->multi, e);
  if (mc != CURLM_OK) {
    log_error("http: cannot start a request: %s", curl_multi_strerror(mc));
    http_req_unlink(c, r);
    http_req_free(r);
    return UV_EIO;
  }
  return r->id;
}

void http_cancel(http_client *c, long id) {
  if (!c || id <= 0 || !c->multi)
    return;
  list_node *n;
  list_for_each(n, &c->reqs) {
    http_req *r = list_entry(n, http_req, link);
    if (r->id == id) {
      http_req_drop(c, r);
      return;
    }
  }
}

size_t http_pending(const http_client *c) { return c ? c->nreqs : 0; }

/* --- the client ----------------------------------------------------------- */

http_client *http_client_new(uv_loop_t *loop, const http_options *opts,
                             char **err) {
  http_options none;
  memset(&none, 0, sizeof none);
  if (!opts)
    opts = &none;
  if (err)
    *err = NULL;
  if (!loop) {
    if (err)
      *err = util_strdup("no event loop");
    return NULL;
  }
  if (opts->ca_file && access(opts->ca_file, R_OK) != 0) {
    if (err)
      *err = util_printf("cannot read the CA file %s: %s", opts->ca_file,
                         strerror(errno));
    return NULL;
  }
  if (http_clients == 0) {
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
      if (err)
        *err = util_printf("libcurl: %s", curl_easy_strerror(rc));
      return NULL;
    }
  }
  http_clients++;

  http_client *c = util_calloc(1, sizeof *c);
  list_init(&c->reqs);
  list_init(&c->socks);
  c->loop = loop;
  c->multi = curl_multi_init();
  int rc = c->multi ? uv_timer_init(loop, &c->timer) : UV_ENOMEM;
  if (rc < 0) {
    if (err)
      *err = util_printf("cannot start the HTTP client: %s", uv_strerror(rc));
    if (c->multi)
      curl_multi_cleanup(c->multi);
    free(c);
    if (--http_clients == 0)
      curl_global_cleanup();
    return NULL;
  }
  c->timer.data = c;
  c->handles = 1;
  c->ca_file = opts->ca_file ? util_strdup(opts->ca_file) : NULL;
  c->connect_timeout_ms = opts->connect_timeout_ms > 0
                              ? opts->connect_timeout_ms
                              : HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
  c->timeout_ms =
      opts->timeout_ms > 0 ? opts->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
  c->max_body = opts->max_body > 0 ? opts->max_body : HTTP_DEFAULT_MAX_BODY;
  c->zero_timeout_is_1ms = uv_version() < 0x013000; /* 1.48.0 */
  snprintf(c->user_agent, sizeof c->user_agent, "shelf.nvim/%s",
           SHELF_VERSION[0] ? SHELF_VERSION : "dev");

  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, http_on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, http_on_timer_set);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                    (long)HTTP_MAX_HOST_CONNECTIONS);
  /* The default (4 x the transfers in progress) shrinks as a burst drains
   * and closes idle connections we are about to need again. */
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)HTTP_MAX_IDLE);
  return c;
}

/* Drop every request, let curl close its sockets (each one reaches
 * http_on_socket as CURL_POLL_REMOVE), then close the timer. c is freed by
 * the last close callback. */
static void http_teardown(http_client *c) {
  list_node *n, *tmp;
  list_for_each_safe(n, tmp, &c->reqs) http_req_drop(c, list_entry(n, http_req, link));
  curl_multi_cleanup(c->multi);
  c->multi = NULL;
  /* curl is gone, so nothing else can close a poll handle it left open. */
  list_for_each(n, &c->socks) {
    http_sock *k = list_entry(n, http_sock, link);
    if (!k->closing) {
      log_warn("http: socket %d left open by curl", (int)k->fd);
      http_sock_close(k);
    }
  }
  uv_close((uv_handle_t *)&c->timer, http_on_timer_closed);
}

void http_client_close(http_client *c, void (*closed)(void *), void *data) {
  if (!c || c->closing)
    return;
  c->closing = 1;
  c->closed = closed;
  c->closed_data = data;
  http_teardown(c);
}

/* --- helpers -------------------------------------------------------------- */

char *http_escape(const char *s) {
  if (!s)
    return NULL;
  char *e = curl_easy_escape(NULL, s, 0);
  if (!e)
    abort(); /* out of memory (the longest input curl takes is 8 MB): as util_malloc does */
  char *out = util_strdup(e);
  explicit_bzero(e, strlen(e)); /* it may be a key */
  curl_free(e);
  return out;
}

const char *http_library_version(void) {
  static char text[128];
  const curl_version_info_data *d = curl_version_info(CURLVERSION_NOW);
  snprintf(text, sizeof text, "libcurl %s (%s)", d->version, d->ssl_version ? d->ssl_version : "no TLS");
  return text;
}
