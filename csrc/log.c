/* log.c - timestamped log lines to stderr or an append-only file (log.h).
 * It owns the one log file of the process and the minimum level; nothing
 * else in shelfd writes text. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static FILE *log_file;
static log_level log_min = LOG_INFO;

int log_open(const char *path) {
  if (!path)
    return 0;
  FILE *f = fopen(path, "a");
  if (!f)
    return -1;
  setvbuf(f, NULL, _IOLBF, 0);
  log_close();
  log_file = f;
  return 0;
}

void log_close(void) {
  if (log_file)
    fclose(log_file);
  log_file = NULL;
}

void log_set_level(log_level min) { log_min = min; }

void log_msg(log_level lvl, const char *fmt, ...) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  if (lvl < log_min)
    return;
  FILE *out = log_file ? log_file : stderr;
  /* Milliseconds: the start's steps (session, local copy, first answer,
   * Realtime join) are told apart by them. */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct tm tm;
  char when[32];
  localtime_r(&now.tv_sec, &tm);
  strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  fprintf(out, "%s.%03ld shelfd %s: ", when, now.tv_nsec / 1000000L, names[lvl]);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(out, fmt, ap);
  va_end(ap);
  fputc('\n', out);
  fflush(out);
}
