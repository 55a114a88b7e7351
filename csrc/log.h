/* log.h - the only place shelfd writes text: stderr, or a file given with
 * --log. Never stdout (that is the RPC channel). Callers must not pass
 * secrets (tokens, passwords).
 * The module owns the open log file (log_close closes it); the format and
 * its arguments are borrowed for the call. */
#ifndef SHELF_LOG_H
#define SHELF_LOG_H

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

/* Send log lines to `path` (appended) instead of stderr; NULL = stderr.
 * Returns 0, or < 0 if the file cannot be opened (stderr stays in use). */
int log_open(const char *path);
void log_close(void);
void log_set_level(log_level min);
void log_msg(log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
