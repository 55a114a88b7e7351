/* row.h - the compact form of what the sync engine holds of a row, and the
 * list of rows whose summary is owed to the editor. A row keeps no content:
 * only its stamp and its summary (model_summary), packed as msgpack map
 * entries so a push writes them as they are.
 *
 * Memory: a row is one allocation, the caller's to free(); row_json and
 * row_title return what the caller frees; a row_ids owns its buffer (free
 * buf when done). Arguments are borrowed. */
#ifndef SHELF_ROW_H
#define SHELF_ROW_H

#include <cjson/cJSON.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* A held row in one allocation: its updated_at and its summary
 * (model_summary) packed as msgpack map entries, which is what the editor
 * is sent (main.c writes them as they are), so an unchanged row is not sent
 * again and a push costs no conversion. A cJSON object per row would cost
 * some 1.5 KiB at 100k rows; this is a third of that. */
typedef struct {
  uint32_t mark;       /* the full read that last saw it (sync_on_fetch) */
  uint32_t summary_at; /* offset of the summary in text */
  uint32_t summary_len;
  uint32_t nfields;    /* key/value pairs in the summary */
  char text[];         /* updated_at NUL, then the pairs (see row_new) */
} row_entry;

/* Rows whose summary is owed to the editor: each a byte saying where it
 * is held (its store_table, or ROW_TEMP) and its id with a NUL. One
 * buffer, not a cJSON node per row: a load of 100k rows then leaves no
 * trail of small allocations between the held entries, which would keep
 * the heap at its peak once they are freed. The summary is made when the
 * push is sent, from what is held then (a row gone meanwhile is left out;
 * its delete follows). */
typedef struct {
  char *buf;
  size_t len, cap;
} row_ids;
#define ROW_TEMP ((char)0x7f)

/* Append `id`, held where `where` says (a store_table or ROW_TEMP). */
void row_ids_add(row_ids *b, char where, const char *id);
/* Step through b: 1 and *where, *id set while there is another (start
 * with *at = 0). *id points into b. */
int row_ids_next(const row_ids *b, size_t *at, char *where, const char **id);

/* The row for record rec of table t (its content is not kept). */
row_entry *row_new(store_table t, const cJSON *rec);
/* Its updated_at ("" when it had none). */
const char *row_stamp(const row_entry *e);
/* 1 when a and b hold the same stamp and summary. */
int row_same(const row_entry *a, const row_entry *b);
/* Pack the whole summary of row `id` of table t, the map the editor gets
 * (id, updated_at, kind and a folder's type put back). */
void row_pack(msgpack_packer *pk, store_table t, const char *id, const row_entry *e);
/* The same as cJSON (NULL only if it does not convert). */
cJSON *row_json(store_table t, const char *id, const row_entry *e);
/* 0 when no text in its summary holds q (ASCII letters in either case):
 * a scan of its bytes, before the row_json a search needs. */
int row_may_hold(const row_entry *e, const char *q);
/* Its title or name, for messages. */
char *row_title(store_table t, const char *id, const row_entry *e);

#endif
