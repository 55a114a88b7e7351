/* http.h - an asynchronous HTTP(S) client: libcurl's multi_socket interface
 * driven by shelfd's libuv loop. One http_client owns one curl multi handle
 * (so connections are kept alive and reused, HTTP/2 multiplexed when the
 * server offers it), one uv_timer_t and one uv_poll_t per socket curl asks
 * to watch. Requests are started with http_request() and end with exactly one
 * call of their callback, unless cancelled. TLS verification is always on.
 *
 * Memory: the client is the caller's until http_client_close, which frees it
 * once its handles have closed. The client copies the options, the URL, the
 * headers and the body of each request (and wipes its copies when done); a
 * response and all it points to are the client's, valid during the callback
 * only. Strings returned by the helpers below are the caller's to free. */
#ifndef SHELF_HTTP_H
#define SHELF_HTTP_H

#include <stddef.h>
#include <time.h>
#include <uv.h>

#define HTTP_DEFAULT_MAX_BODY ((size_t)32 << 20) /* 32 MiB */
#define HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define HTTP_DEFAULT_TIMEOUT_MS 30000L
#define HTTP_MAX_HEADERS ((size_t)64 << 10) /* response headers kept */

typedef struct http_client http_client;

/* Everything in a response is owned by the client and valid only during the
 * callback; copy what you keep. */
typedef struct {
  long status;   /* HTTP status; 0 whenever curl_code != CURLE_OK */
  int curl_code; /* CURLE_OK, or why the transfer failed */
  /* For a person, when curl_code != CURLE_OK ("connection refused", "timed
   * out after 10 s", "TLS: certificate verify failed (...)", "response
   * larger than 32 MiB"); NULL otherwise. Never contains headers. */
  const char *error;
  /* 1 when the server's certificate failed verification (or the CA file is
   * unusable): trying again will not help until someone fixes it. */
  int cert_rejected;
  /* 1 when the body passed the client's max_body (error says so): a smaller
   * request may succeed. */
  int body_too_big;
  const char *body;          /* never NULL; NUL-terminated; "" on failure */
  size_t body_len;           /* at most max_body */
  const char *content_range; /* the Content-Range header, or NULL */
  /* All headers of the final response as "name\0value\0" pairs, names in
   * lower case; read them with http_header(). */
  const char *headers;
  size_t headers_len;
  double total_ms;      /* from the start of the request to its end */
  size_t bytes_in;      /* response headers + body as received */
  size_t bytes_out;     /* request headers + body as sent */
  long new_connections; /* connections this request had to open (0: reused) */
} http_response;

/* res (and everything it points to) is valid only during the call. The
 * callback may call http_request, http_cancel and http_client_close. */
typedef void (*http_done_cb)(void *data, const http_response *res);

typedef struct {
  /* PEM file of extra CAs to trust (CURLOPT_CAINFO, in place of the system
   * bundle file; Debian's libcurl still trusts the system CA directory).
   * NULL: the system's CAs only. Copied. */
  const char *ca_file;
  long connect_timeout_ms; /* 0: HTTP_DEFAULT_CONNECT_TIMEOUT_MS */
  long timeout_ms;         /* whole request; 0: HTTP_DEFAULT_TIMEOUT_MS */
  size_t max_body;         /* response body limit; 0: HTTP_DEFAULT_MAX_BODY */
} http_options;

/* A client on loop; opts may be NULL for the defaults. Returns NULL and sets
 * *err (caller frees) on failure. Freed only by http_client_close. */
http_client *http_client_new(uv_loop_t *loop, const http_options *opts,
                             char **err);

/* Start a request. method: GET, HEAD, POST, PUT, PATCH or DELETE; url: http
 * or https only; headers: NULL or a NULL-terminated array of "Name: value"
 * (copied; no CR or LF); body: body_len bytes or NULL (copied; POST, PUT
 * and PATCH always send one, maybe empty). Returns an id > 0, or a negative
 * libuv error (UV_EINVAL for bad arguments or a closing client, UV_ENOMEM,
 * UV_EIO if curl refuses) and then cb is never called. */
long http_request(http_client *c, const char *method, const char *url,
                  const char *const *headers, const char *body, size_t body_len,
                  http_done_cb cb, void *data);

/* Abort a request; its callback is not called. Ids that are unknown, already
 * finished or <= 0 are ignored. */
void http_cancel(http_client *c, long id);

/* Number of requests started and not yet finished or cancelled. */
size_t http_pending(const http_client *c);

/* Cancel every request (their callbacks are not called), release every
 * handle and free c; closed(data) (closed may be NULL) runs once the loop has
 * run all the close callbacks. c must not be used after this call. */
void http_client_close(http_client *c, void (*closed)(void *), void *data);

/* The value of response header `name` (any case), or NULL. Valid as long as
 * res is. */
const char *http_header(const http_response *res, const char *name);

/* How long the server asked to be left alone (its Retry-After: seconds, or
 * an HTTP-date read against `now`), in ms and at most max_ms; 0 when it did
 * not ask, asked for a moment already past, or the value is unreadable. */
unsigned http_retry_after_ms(const http_response *res, unsigned max_ms, time_t now);

/* "libcurl 7.88.1 (OpenSSL/3.0.15)", for `shelfd --version`; static storage. */
const char *http_library_version(void);

/* The message of a JSON error body as Supabase's APIs (Auth, PostgREST) and
 * OAuth write it: {msg | message | error_description} with {error_code |
 * code} when those are strings, as "message (code)"; NULL when the body holds
 * no message. If code is not NULL, *code is set to a copy of the code or
 * NULL. The caller frees the result and *code. */
char *http_error_text(const http_response *res, char **code);

/* "host[:port]" of an absolute http or https URL (the port only when the
 * URL names one), read by curl's URL parser; NULL if url is none. The caller
 * frees the result. */
char *http_url_authority(const char *url);

/* s percent-encoded for a URL query value by curl_easy_escape: everything
 * but RFC 3986 unreserved characters becomes %XX. The caller frees the
 * result (with free; curl's own copy is wiped, so s may be a secret). */
char *http_escape(const char *s);

#endif
