/* store_sqlite_schema.h - the SQL that store_sqlite.c runs when it opens a
 * database: the web app's four tables (DESIGN.md, data model), the change log
 * other shelfd processes read, and the triggers that feed it. Every statement
 * is idempotent, so two editors opening one new file at once is harmless.
 * Private to store_sqlite.c. */
#ifndef SHELF_STORE_SQLITE_SCHEMA_H
#define SHELF_STORE_SQLITE_SCHEMA_H

#define SQ_SCHEMA_VERSION 1

/* Folders of both kinds have the same shape. user_id is NULL in a local
 * library and NULLs are distinct in UNIQUE, so the expression index is what
 * makes a second folder of one name in one parent a conflict. */
#define SQ_PROJECTS_TABLE(T)                                                   \
  "CREATE TABLE IF NOT EXISTS " T "("                                          \
  " id TEXT PRIMARY KEY,"                                                      \
  " user_id TEXT,"                                                             \
  " name TEXT NOT NULL,"                                                       \
  " icon TEXT NOT NULL DEFAULT '📁',"                                          \
  " folder_path TEXT,"                                                         \
  " parent_id TEXT REFERENCES " T "(id) ON DELETE CASCADE,"                    \
  " is_system BOOLEAN NOT NULL DEFAULT 0,"                                     \
  " created_at TEXT NOT NULL,"                                                 \
  " updated_at TEXT NOT NULL,"                                                 \
  " UNIQUE(user_id, name, parent_id));"                                        \
  "CREATE UNIQUE INDEX IF NOT EXISTS " T "_name_in_parent ON " T               \
  "(ifnull(user_id, ''), name, ifnull(parent_id, ''));"                        \
  "CREATE INDEX IF NOT EXISTS " T "_parent ON " T "(parent_id);"

static const char sq_schema_sql[] =
    "CREATE TABLE IF NOT EXISTS shelf_meta(key TEXT PRIMARY KEY, value TEXT);"
    SQ_PROJECTS_TABLE("dataset_projects")
    SQ_PROJECTS_TABLE("prompt_projects")
    "CREATE TABLE IF NOT EXISTS context_blocks("
    " id TEXT PRIMARY KEY,"
    " user_id TEXT,"
    " project_id TEXT REFERENCES dataset_projects(id) ON DELETE CASCADE,"
    " title TEXT NOT NULL,"
    " content TEXT NOT NULL DEFAULT '',"
    " tags JSON NOT NULL DEFAULT '[]',"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS context_blocks_project"
    " ON context_blocks(project_id);"
    "CREATE TABLE IF NOT EXISTS prompts("
    " id TEXT PRIMARY KEY,"
    " user_id TEXT,"
    " project_id TEXT REFERENCES prompt_projects(id) ON DELETE CASCADE,"
    " title TEXT NOT NULL,"
    " description TEXT,"
    " content TEXT NOT NULL DEFAULT '',"
    " folder TEXT,"
    " tags JSON NOT NULL DEFAULT '[]',"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS prompts_project ON prompts(project_id);"
    "CREATE TABLE IF NOT EXISTS shelf_changes("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " tbl TEXT NOT NULL,"
    " row_id TEXT NOT NULL,"
    " op TEXT NOT NULL);";

/* Per table (T is one of the four names above, never user input). The log
 * triggers also fire for cascade deletes, since foreign_keys is on in every
 * shelfd connection. The stamp trigger covers writers that do not set
 * updated_at (the sqlite3 shell, scripts): their change still sorts as new.
 * It writes the same format as util_now_stamp(), at millisecond precision. */
#define SQ_TRIGGERS(T)                                                         \
  "CREATE TRIGGER IF NOT EXISTS " T "_log_insert AFTER INSERT ON " T " BEGIN"  \
  " INSERT INTO shelf_changes(tbl, row_id, op)"                                \
  " VALUES('" T "', NEW.id, 'upsert'); END;"                                   \
  "CREATE TRIGGER IF NOT EXISTS " T "_log_update AFTER UPDATE ON " T " BEGIN"  \
  " INSERT INTO shelf_changes(tbl, row_id, op)"                                \
  " VALUES('" T "', NEW.id, 'upsert'); END;"                                   \
  "CREATE TRIGGER IF NOT EXISTS " T "_log_delete AFTER DELETE ON " T " BEGIN"  \
  " INSERT INTO shelf_changes(tbl, row_id, op)"                                \
  " VALUES('" T "', OLD.id, 'delete'); END;"                                   \
  "CREATE TRIGGER IF NOT EXISTS " T "_stamp AFTER UPDATE ON " T                \
  " WHEN NEW.updated_at IS OLD.updated_at BEGIN"                               \
  " UPDATE " T " SET updated_at ="                                             \
  " strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000+00:00'"                       \
  " WHERE id = NEW.id; END;"

static const char sq_triggers_sql[] =
    SQ_TRIGGERS("context_blocks")
    SQ_TRIGGERS("prompts")
    SQ_TRIGGERS("dataset_projects")
    SQ_TRIGGERS("prompt_projects");

#endif
