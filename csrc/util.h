/* util.h - small helpers shared by every module: ids, timestamps, strings,
 * allocation that never fails, and retry jitter. Every string or block
 * returned is the caller's to free; the rest write into the caller's
 * buffers. */
#ifndef SHELF_UTIL_H
#define SHELF_UTIL_H

#include <stdarg.h>
#include <stddef.h>

#define UTIL_UUID_LEN 36  /* without the terminating NUL */
#define UTIL_STAMP_LEN 32 /* "2026-11-25T04:42:46.123456+00:00" */

/* Write a random (version 4) UUID into out[UTIL_UUID_LEN + 1]. 0 or < 0. */
int util_uuid4(char *out);

/* 1 if s is a UUID in canonical text form (any version), else 0. */
int util_is_uuid(const char *s);

/* The current UTC time as PostgreSQL prints timestamptz with microseconds,
 * into out[UTIL_STAMP_LEN + 1]. */
void util_now_stamp(char *out);
/* The same for us microseconds since 1970 UTC: 0, or -1 (out untouched)
 * when that time has no four-digit year. */
int util_us_stamp(long long us, char *out);

/* An updated_at as a backend prints it ("2026-11-25T04:42:46.123456+00:00",
 * also with a space for the T, fewer or no fraction digits, "Z", "+0200" or
 * "+02", or no zone for UTC) in microseconds since 1970 UTC, so stamps
 * printed in different zones or precisions compare as times. 0 and *us set,
 * or -1 when s is NULL or not such a stamp. */
int util_stamp_us(const char *s, long long *us);

/* printf into a new string; the caller frees it. Never returns NULL
 * (allocation failure aborts: there is nothing sensible left to do). */
char *util_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *util_vprintf(const char *fmt, va_list ap);

/* If err is not NULL, point *err at a new printf'd message (the caller
 * frees it). For functions whose caller may not want the reason. */
void util_seterr(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* strdup that never returns NULL (aborts on allocation failure). */
char *util_strdup(const char *s);

/* Allocation that never returns NULL. */
void *util_malloc(size_t n);
void *util_calloc(size_t n, size_t size);
void *util_realloc(void *p, size_t n);

/* A size as people read it, into out[cap]: "16 MiB", "1 KiB", "256 bytes"
 * (a unit only when n is a whole number of it). */
void util_fmt_size(size_t n, char *out, size_t cap);

/* Monotonic milliseconds (for backoff and timing, not for stamps). */
double util_now_ms(void);

/* ms times a random factor in [1 - spread, 1 + spread), so that many
 * editors do not retry in step (spread 0.25: +-25 %). */
double util_jitter(double ms, double spread);

#endif
