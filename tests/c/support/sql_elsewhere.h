/* sql_elsewhere.h - SQL run on a SQLite library by "another program" (its
 * own connection, as the sqlite3 tool would), for tests of what shelfd sees
 * of changes it did not make. */
#ifndef SHELF_SQL_ELSEWHERE_H
#define SHELF_SQL_ELSEWHERE_H

/* Run sql on the file at path; tries again while the database is locked.
 * Returns the SQLite result code (SQLITE_OK: done), the error printed to
 * stderr otherwise. */
int sql_elsewhere(const char *path, const char *sql);

#endif
