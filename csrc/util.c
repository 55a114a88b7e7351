/* util.c - ids, timestamps, allocation that aborts rather than fail, and
 * retry jitter (util.h). No state; randomness comes from uv_random. */
#include "util.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <uv.h>

int util_uuid4(char *out) {
  unsigned char b[16];
  int rc = uv_random(NULL, NULL, b, sizeof b, 0, NULL);
  if (rc < 0)
    return rc;
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  snprintf(out, UTIL_UUID_LEN + 1,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
           b[11], b[12], b[13], b[14], b[15]);
  return 0;
}

int util_is_uuid(const char *s) {
  if (!s || strlen(s) != UTIL_UUID_LEN)
    return 0;
  for (int i = 0; i < UTIL_UUID_LEN; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return 0;
    } else if (!isxdigit((unsigned char)s[i])) {
      return 0;
    }
  }
  return 1;
}

void util_now_stamp(char *out) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  util_us_stamp((long long)tv.tv_sec * 1000000 + tv.tv_usec, out);
}

int util_us_stamp(long long us, char *out) {
  /* Years 1..9999: what the format holds, and far inside time_t. */
  if (us < -62135596800000000LL || us > 253402300799999999LL)
    return -1;
  long long sec = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
  long frac = (long)(us - sec * 1000000);
  time_t t = (time_t)sec;
  struct tm tm;
  if (!gmtime_r(&t, &tm))
    return -1;
  char buf[128]; /* roomy: the compiler cannot bound the int fields */
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld+00:00",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, frac);
  memcpy(out, buf, UTIL_STAMP_LEN);
  out[UTIL_STAMP_LEN] = '\0';
  return 0;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
static long long util_days(long long y, int m, int d) {
  y -= m <= 2;
  long long era = (y >= 0 ? y : y - 399) / 400;
  long long yoe = y - era * 400;
  long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* n digits at *p as a number (advancing p), or -1. */
static int util_digits(const char **p, int n) {
  int v = 0;
  for (int i = 0; i < n; i++, (*p)++) {
    if (**p < '0' || **p > '9')
      return -1;
    v = v * 10 + (**p - '0');
  }
  return v;
}

int util_stamp_us(const char *s, long long *us) {
  if (!s)
    return -1;
  const char *p = s;
  int y = util_digits(&p, 4);
  if (y < 0 || *p++ != '-')
    return -1;
  int mo = util_digits(&p, 2);
  if (mo < 1 || mo > 12 || *p++ != '-')
    return -1;
  int d = util_digits(&p, 2);
  if (d < 1 || d > 31 || (*p != 'T' && *p != 't' && *p != ' '))
    return -1;
  p++;
  int h = util_digits(&p, 2);
  if (h < 0 || h > 24 || *p++ != ':')
    return -1;
  int mi = util_digits(&p, 2);
  if (mi < 0 || mi > 59)
    return -1;
  int sec = 0;
  long long frac = 0;
  if (*p == ':') {
    p++;
    sec = util_digits(&p, 2);
    if (sec < 0 || sec > 60)
      return -1;
    if (*p == '.' || *p == ',') {
      p++;
      int n = 0;
      for (; *p >= '0' && *p <= '9'; p++, n++)
        if (n < 6)
          frac = frac * 10 + (*p - '0');
      if (n == 0)
        return -1;
      for (; n < 6; n++)
        frac *= 10;
    }
  }
  long long off = 0; /* seconds east of UTC */
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p++ == '-' ? -1 : 1;
    int oh = util_digits(&p, 2), om = 0;
    if (oh < 0)
      return -1;
    if (*p == ':')
      p++;
    if (*p >= '0' && *p <= '9' && (om = util_digits(&p, 2)) < 0)
      return -1;
    off = sign * (oh * 3600LL + om * 60LL);
  }
  if (*p)
    return -1;
  long long secs = util_days(y, mo, d) * 86400 + h * 3600LL + mi * 60LL + sec - off;
  *us = secs * 1000000 + frac;
  return 0;
}

static void util_oom(size_t n) {
  fprintf(stderr, "shelfd: out of memory allocating %zu bytes\n", n);
  abort();
}

void *util_malloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p)
    util_oom(n);
  return p;
}

void *util_calloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p)
    util_oom(n * size);
  return p;
}

void *util_realloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q)
    util_oom(n);
  return q;
}

char *util_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = util_malloc(n);
  memcpy(d, s, n);
  return d;
}

char *util_vprintf(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    n = 0;
  char *s = util_malloc((size_t)n + 1);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

char *util_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = util_vprintf(fmt, ap);
  va_end(ap);
  return s;
}

void util_fmt_size(size_t n, char *out, size_t cap) {
  if (n >= ((size_t)1 << 20) && n % ((size_t)1 << 20) == 0)
    snprintf(out, cap, "%zu MiB", n >> 20);
  else if (n >= 1024 && n % 1024 == 0)
    snprintf(out, cap, "%zu KiB", n >> 10);
  else
    snprintf(out, cap, "%zu bytes", n);
}

void util_seterr(char **err, const char *fmt, ...) {
  if (!err)
    return;
  va_list ap;
  va_start(ap, fmt);
  *err = util_vprintf(fmt, ap);
  va_end(ap);
}

double util_now_ms(void) { return (double)uv_hrtime() / 1e6; }

double util_jitter(double ms, double spread) {
  uint32_t r;
  if (uv_random(NULL, NULL, &r, sizeof r, 0, NULL) < 0)
    r = UINT32_MAX / 2; /* no randomness: the middle */
  return ms * (1.0 - spread + 2.0 * spread * (r / 4294967296.0));
}
