/* model.c - the library's vocabulary (model.h): kinds and their tables, the
 * fields each kind takes and their limits, the validation of fields from
 * Lua, and the summary of a row the Lua mirror keeps. Pure functions: it
 * holds no state, and what it returns is the caller's. */
#include "model.h"

#include <string.h>

#include "mpjson.h"
#include "util.h"

static const char *model_kind_names[] = {"block", "prompt", "project"};
static const char *model_kind_labels[] = {"context block", "prompt", "folder"};

int model_kind_parse(const char *s, model_kind *out) {
  for (int k = 0; k < MODEL_NKINDS; k++) {
    if (s && strcmp(s, model_kind_names[k]) == 0) {
      *out = (model_kind)k;
      return 0;
    }
  }
  return -1;
}

const char *model_kind_name(model_kind k) { return model_kind_names[k]; }
const char *model_kind_label(model_kind k) { return model_kind_labels[k]; }

model_kind model_kind_of(store_table t) {
  switch (t) {
  case STORE_BLOCKS:
    return MODEL_BLOCK;
  case STORE_PROMPTS:
    return MODEL_PROMPT;
  default:
    return MODEL_PROJECT;
  }
}

/* A field Lua may send, and what it must be. */
typedef enum { F_TEXT, F_TEXT_OR_NULL, F_ID_OR_NULL, F_TAGS, F_BOOL } field_type;

typedef struct {
  const char *name;
  field_type type;
  size_t max;
  int required; /* on create */
} field_rule;

static const field_rule block_rules[] = {
    {"title", F_TEXT, MODEL_MAX_TITLE, 1},
    {"content", F_TEXT, MODEL_MAX_CONTENT, 0},
    {"tags", F_TAGS, 0, 0},
    {"project_id", F_ID_OR_NULL, 0, 0},
    {NULL, 0, 0, 0}};
static const field_rule prompt_rules[] = {
    {"title", F_TEXT, MODEL_MAX_TITLE, 1},
    {"description", F_TEXT_OR_NULL, MODEL_MAX_CONTENT, 0},
    {"content", F_TEXT, MODEL_MAX_CONTENT, 0},
    {"folder", F_TEXT_OR_NULL, MODEL_MAX_TITLE, 0},
    {"tags", F_TAGS, 0, 0},
    {"project_id", F_ID_OR_NULL, 0, 0},
    {NULL, 0, 0, 0}};
static const field_rule project_rules[] = {
    {"name", F_TEXT, MODEL_MAX_TITLE, 1},
    {"icon", F_TEXT, 64, 0},
    {"parent_id", F_ID_OR_NULL, 0, 0},
    {"folder_path", F_TEXT_OR_NULL, MODEL_MAX_CONTENT, 0},
    {NULL, 0, 0, 0}};

/* Set by shelfd or the database, never by the caller. */
static const char *model_reserved[] = {"id", "user_id", "created_at",
                                       "updated_at", "kind", "size",
                                       "is_system", NULL};

static const field_rule *model_rules(model_kind k) {
  return k == MODEL_BLOCK ? block_rules
         : k == MODEL_PROMPT ? prompt_rules
                             : project_rules;
}

static int model_is_reserved(const char *name) {
  for (int i = 0; model_reserved[i]; i++)
    if (strcmp(name, model_reserved[i]) == 0)
      return 1;
  return 0;
}

/* 1 if s is well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF). JSON text must be UTF-8: PostgREST refuses other bytes or a
 * proxy swaps them for U+FFFD, so they are refused here for every backend. */
static int model_utf8_ok(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p;
    int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (n < 0)
      return 0;
    unsigned cp = n == 0 ? c : n == 1 ? c & 0x1F : n == 2 ? c & 0x0F : c & 0x07;
    for (int i = 1; i <= n; i++) {
      if ((p[i] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    p += n + 1;
  }
  return 1;
}

static char *model_check(const field_rule *r, const cJSON *v) {
  switch (r->type) {
  case F_TEXT_OR_NULL:
    if (cJSON_IsNull(v))
      return NULL;
    /* fall through */
  case F_TEXT:
    if (!cJSON_IsString(v))
      return util_printf("'%s' must be a string", r->name);
    if (strlen(v->valuestring) > r->max) {
      char limit[32];
      util_fmt_size(r->max, limit, sizeof limit);
      return util_printf("'%s' is longer than %s", r->name, limit);
    }
    if (!model_utf8_ok(v->valuestring))
      return util_printf("'%s' is not valid UTF-8 text", r->name);
    if (r->required && v->valuestring[strspn(v->valuestring, " \t\r\n")] == '\0')
      return util_printf("'%s' must not be empty", r->name);
    return NULL;
  case F_ID_OR_NULL:
    if (cJSON_IsNull(v))
      return NULL;
    if (!cJSON_IsString(v) || !util_is_uuid(v->valuestring))
      return util_printf("'%s' must be the id of a folder (a UUID) or nil",
                         r->name);
    return NULL;
  case F_TAGS: {
    /* Lua sends an empty table as an empty map. */
    if (cJSON_IsObject(v) && cJSON_GetArraySize(v) == 0)
      return NULL;
    if (!cJSON_IsArray(v))
      return util_printf("'tags' must be a list of strings");
    if (cJSON_GetArraySize(v) > MODEL_MAX_TAGS)
      return util_printf("at most %d tags", MODEL_MAX_TAGS);
    const cJSON *t;
    cJSON_ArrayForEach(t, v) {
      if (!cJSON_IsString(t) || t->valuestring[0] == '\0')
        return util_printf("'tags' must be a list of non-empty strings");
      if (strlen(t->valuestring) > MODEL_MAX_TAG)
        return util_printf("a tag is longer than %d bytes", MODEL_MAX_TAG);
      if (!model_utf8_ok(t->valuestring))
        return util_printf("a tag is not valid UTF-8 text");
    }
    return NULL;
  }
  case F_BOOL:
    return cJSON_IsBool(v) ? NULL : util_printf("'%s' must be a boolean", r->name);
  }
  return NULL;
}

/* Copy the checked fields into a new object. `creating` also enforces the
 * required ones. Fields not in the rules pass through to the store, which
 * accepts them only if the table has such a column (extra columns). */
static cJSON *model_columns(model_kind k, const cJSON *fields, int creating,
                            char **err) {
  const field_rule *rules = model_rules(k);
  cJSON *out = cJSON_CreateObject();
  const cJSON *f;
  if (!cJSON_IsObject(fields) &&
      !(cJSON_IsArray(fields) && cJSON_GetArraySize(fields) == 0)) {
    *err = util_printf("fields must be a table");
    cJSON_Delete(out);
    return NULL;
  }
  cJSON_ArrayForEach(f, fields) {
    const char *name = f->string;
    if (strcmp(name, "temporary") == 0 || strcmp(name, "type") == 0)
      continue; /* handled by the caller */
    if (model_is_reserved(name)) {
      *err = util_printf("'%s' is set by shelf, not by the caller", name);
      cJSON_Delete(out);
      return NULL;
    }
    const field_rule *r = rules;
    while (r->name && strcmp(r->name, name) != 0)
      r++;
    if (r->name) {
      char *why = model_check(r, f);
      if (why) {
        *err = why;
        cJSON_Delete(out);
        return NULL;
      }
    }
    cJSON *copy = cJSON_Duplicate(f, 1);
    if (r->name && r->type == F_TAGS && !cJSON_IsArray(copy)) {
      cJSON_Delete(copy);
      copy = cJSON_CreateArray();
    }
    cJSON_AddItemToObject(out, name, copy);
  }
  for (const field_rule *r = rules; creating && r->name; r++) {
    if (r->required && !cJSON_GetObjectItemCaseSensitive(out, r->name)) {
      *err = util_printf("'%s' is required", r->name);
      cJSON_Delete(out);
      return NULL;
    }
  }
  return out;
}

cJSON *model_new_record(model_kind k, const cJSON *fields, store_table *table,
                        int *temporary, char **err) {
  *temporary = 0;
  *err = NULL;
  const cJSON *tmp = cJSON_GetObjectItemCaseSensitive(fields, "temporary");
  if (tmp && !cJSON_IsBool(tmp) && !cJSON_IsNull(tmp)) {
    *err = util_printf("'temporary' must be a boolean");
    return NULL;
  }
  if (cJSON_IsTrue(tmp)) {
    if (k != MODEL_BLOCK) {
      *err = util_printf("only context blocks can be temporary");
      return NULL;
    }
    *temporary = 1;
  }
  if (k == MODEL_PROJECT) {
    const char *t = mpjson_get_str(fields, "type");
    if (!t)
      t = "";
    if (strcmp(t, "prompts") == 0)
      *table = STORE_PROMPT_PROJECTS;
    else if (strcmp(t, "datasets") == 0)
      *table = STORE_DATASET_PROJECTS;
    else {
      *err = util_printf("a folder needs 'type': \"prompts\" or \"datasets\"");
      return NULL;
    }
  } else {
    *table = k == MODEL_BLOCK ? STORE_BLOCKS : STORE_PROMPTS;
  }
  cJSON *rec = model_columns(k, fields, 1, err);
  if (!rec)
    return NULL;
  if (k != MODEL_PROJECT && !cJSON_GetObjectItemCaseSensitive(rec, "content"))
    cJSON_AddStringToObject(rec, "content", "");
  if (k != MODEL_PROJECT && !cJSON_GetObjectItemCaseSensitive(rec, "tags"))
    cJSON_AddItemToObject(rec, "tags", cJSON_CreateArray());
  return rec;
}

cJSON *model_update_fields(store_table t, const cJSON *fields, char **err) {
  *err = NULL;
  model_kind k = model_kind_of(t);
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(fields, "type");
  if (type) {
    const char *want = t == STORE_PROMPT_PROJECTS ? "prompts" : "datasets";
    if (k != MODEL_PROJECT || !cJSON_IsString(type) ||
        strcmp(type->valuestring, want) != 0) {
      *err = util_printf("the type of a folder cannot change");
      return NULL;
    }
  }
  if (cJSON_GetObjectItemCaseSensitive(fields, "temporary")) {
    *err = util_printf("'temporary' cannot change; save the block instead");
    return NULL;
  }
  cJSON *cols = model_columns(k, fields, 0, err);
  if (cols && cJSON_GetArraySize(cols) == 0) {
    cJSON_Delete(cols);
    *err = util_printf("nothing to change");
    return NULL;
  }
  return cols;
}

const char *model_row_problem(store_table t, const cJSON *record) {
  /* Column -> what a server may send: 's' string, 'b' boolean. Tags pass
   * as written: SQLite's JSON column holds whatever another writer put there
   * and a Postgres text[] may hold NULLs; the views show only the non-empty
   * strings (lua/shelf/display.lua). */
  static const char *const cols[][2] = {
      {"title", "s"},      {"name", "s"},       {"content", "s"},    {"description", "s"},
      {"folder", "s"},     {"icon", "s"},       {"folder_path", "s"}, {"project_id", "s"},
      {"parent_id", "s"},  {"user_id", "s"},    {"created_at", "s"}, {"updated_at", "s"},
      {"is_system", "b"},  {NULL, NULL}};
  (void)t;
  if (!cJSON_IsObject(record))
    return "a row that is not an object";
  for (int i = 0; cols[i][0]; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(record, cols[i][0]);
    if (!v || cJSON_IsNull(v))
      continue;
    int good = cols[i][1][0] == 's' ? cJSON_IsString(v) : cJSON_IsBool(v) || cJSON_IsNumber(v);
    if (!good)
      return cols[i][0];
  }
  return NULL;
}

const char *model_title(const cJSON *record) {
  const char *t = mpjson_get_str(record, "title");
  if (!t)
    t = mpjson_get_str(record, "name");
  return t ? t : "";
}

static void model_add_kind(cJSON *out, store_table t, int temporary) {
  cJSON_AddStringToObject(out, "kind", model_kind_name(model_kind_of(t)));
  if (t == STORE_PROMPT_PROJECTS)
    cJSON_AddStringToObject(out, "type", "prompts");
  else if (t == STORE_DATASET_PROJECTS)
    cJSON_AddStringToObject(out, "type", "datasets");
  if (temporary)
    cJSON_AddTrueToObject(out, "temporary");
}

int model_lua_stamp(const char *stamp, long long *us) {
  /* Within 2^53: a Lua number holds it exactly (until the year 2255). */
  return util_stamp_us(stamp, us) == 0 && *us > -(1LL << 53) && *us < (1LL << 53) ? 0 : -1;
}

static void model_lua_stamps(cJSON *out) {
  static const char *names[] = {"created_at", "updated_at"};
  for (int i = 0; i < 2; i++) {
    long long us;
    if (model_lua_stamp(mpjson_get_str(out, names[i]), &us) == 0)
      cJSON_ReplaceItemInObjectCaseSensitive(out, names[i], cJSON_CreateNumber((double)us));
  }
}

static void model_copy(cJSON *out, const cJSON *record, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(record, name);
  if (v && !cJSON_IsNull(v))
    cJSON_AddItemToObject(out, name, cJSON_Duplicate(v, 1));
}

cJSON *model_summary(store_table t, const cJSON *record, int temporary) {
  static const char *item_cols[] = {"id", "title", "description", "project_id",
                                    "folder", "tags", "created_at",
                                    "updated_at", NULL};
  static const char *folder_cols[] = {"id", "name", "icon", "parent_id",
                                      "folder_path", "is_system",
                                      "created_at", "updated_at", NULL};
  cJSON *out = cJSON_CreateObject();
  const char **cols = model_kind_of(t) == MODEL_PROJECT ? folder_cols : item_cols;
  for (int i = 0; cols[i]; i++)
    model_copy(out, record, cols[i]);
  const cJSON *desc = cJSON_GetObjectItemCaseSensitive(out, "description");
  if (cJSON_IsString(desc) && strlen(desc->valuestring) > 200) {
    /* A list needs a hint, not the whole text. */
    char cut[201];
    memcpy(cut, desc->valuestring, 200);
    cut[200] = '\0';
    /* Do not end inside a UTF-8 sequence. */
    int n = 200;
    while (n > 0 && ((unsigned char)cut[n - 1] & 0xC0) == 0x80)
      n--;
    if (n > 0 && ((unsigned char)cut[n - 1] & 0xC0) == 0xC0)
      n--;
    cut[n] = '\0';
    cJSON_ReplaceItemInObjectCaseSensitive(out, "description",
                                           cJSON_CreateString(cut));
  }
  if (model_kind_of(t) != MODEL_PROJECT) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(record, "content");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(record, STORE_CONTENT_SIZE);
    double size = cJSON_IsString(c) ? (double)strlen(c->valuestring)
                  : cJSON_IsNumber(n) && n->valuedouble > 0 ? n->valuedouble
                                                            : 0;
    cJSON_AddNumberToObject(out, "size", size);
  }
  model_add_kind(out, t, temporary);
  model_lua_stamps(out);
  return out;
}

cJSON *model_item(store_table t, const cJSON *record, int temporary) {
  cJSON *out = cJSON_CreateObject();
  const cJSON *v;
  cJSON_ArrayForEach(v, record) {
    if (!cJSON_IsNull(v))
      cJSON_AddItemToObject(out, v->string, cJSON_Duplicate(v, 1));
  }
  model_add_kind(out, t, temporary);
  model_lua_stamps(out);
  return out;
}
