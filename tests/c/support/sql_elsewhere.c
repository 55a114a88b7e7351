/* sql_elsewhere.c - see sql_elsewhere.h. */
#include "sql_elsewhere.h"

#include <sqlite3.h>
#include <stdio.h>
#include <uv.h>

int sql_elsewhere(const char *path, const char *sql) {
  sqlite3 *db;
  int rc = sqlite3_open(path, &db);
  if (rc != SQLITE_OK) {
    fprintf(stderr, "  sql: cannot open %s: %s\n", path, sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc;
  }
  sqlite3_busy_timeout(db, 5000);
  char *msg = NULL;
  /* The busy timeout does not cover every lock wait (one run in 15 saw
   * SQLITE_BUSY at once while shelfd wrote): try again a while. */
  for (int tries = 0;; tries++) {
    rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || tries == 20)
      break;
    sqlite3_free(msg);
    msg = NULL;
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    uv_sleep(50);
  }
  if (rc != SQLITE_OK)
    fprintf(stderr, "  sql: %s\n", msg ? msg : sqlite3_errstr(rc));
  sqlite3_free(msg);
  sqlite3_close(db);
  return rc;
}
