/* model.h - the library's vocabulary: the kinds Lua speaks of (block, prompt,
 * project) and how they map to the four tables; validation of fields that
 * come from Lua; the summary of a row that the Lua mirror keeps. All returned
 * cJSON values are owned by the caller. */
#ifndef SHELF_MODEL_H
#define SHELF_MODEL_H

#include <cjson/cJSON.h>

#include "store.h"

typedef enum { MODEL_BLOCK, MODEL_PROMPT, MODEL_PROJECT, MODEL_NKINDS } model_kind;

#define MODEL_MAX_TITLE 1024          /* bytes in a title or folder name */
#define MODEL_MAX_CONTENT (16u << 20) /* bytes in content or description */
#define MODEL_MAX_TAGS 64
#define MODEL_MAX_TAG 256

/* "block" | "prompt" | "project" -> kind; 0 or -1 if unknown. */
int model_kind_parse(const char *s, model_kind *out);
const char *model_kind_name(model_kind k);
/* For messages: "context block", "prompt", "folder". */
const char *model_kind_label(model_kind k);
model_kind model_kind_of(store_table t);

/* Check fields from Lua for a new item and turn them into columns.
 * Sets *table (a project's type picks its table) and *temporary. On error
 * returns NULL and *err (caller frees) says which field and why. */
cJSON *model_new_record(model_kind k, const cJSON *fields, store_table *table,
                        int *temporary, char **err);
/* The same for an update of an existing row in table t. */
cJSON *model_update_fields(store_table t, const cJSON *fields, char **err);

/* A stamp as Lua gets it (in summaries and items): 0 and *us set when it is
 * a time (util_stamp_us), microseconds since 1970 UTC, a number; else -1 and
 * it goes as written (another program's text). A hundred thousand distinct
 * stamp strings would cost Neovim's Lua heap and its string table more than
 * their items' titles. */
int model_lua_stamp(const char *stamp, long long *us);
/* What Lua's mirror holds of a row: no content, `size` instead (from the
 * content, or from STORE_CONTENT_SIZE in a row fetched without it). */
cJSON *model_summary(store_table t, const cJSON *record, int temporary);
/* The whole row for Lua: every column but nulls, plus kind/type. */
cJSON *model_item(store_table t, const cJSON *record, int temporary);
/* NULL if a row from a backend has the right types in the columns the
 * views read, else the name of the first column that does not (a static
 * string). Such a row is dropped: it cannot come from a real table. Tags are
 * not checked: any value passes, as another writer left it. */
const char *model_row_problem(store_table t, const cJSON *record);
/* The row's title (prompts, blocks) or name (folders); "" when missing. */
const char *model_title(const cJSON *record);

#endif
