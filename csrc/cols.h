/* cols.h - summaries sent as columns: a push of many rows goes to the
 * editor as one array per field ({ n = rows, id = {..}, title = {..} }),
 * not one map per row, so Neovim makes a few tables per push, not one per
 * row (at 100k items a first load made 100k tables, garbage as soon as
 * the mirror had read them: the collector's work held Neovim's loop).
 * The tags column goes packed as the mirror keeps it (cols.c), and the map
 * says so with COLS_PACKED_TAGS = true. An id that is a canonical UUID goes
 * as the three numbers the mirror keeps it as (shelf.uuid), in columns
 * COLS_ID_A, _B and _C (nil in the id column; no id column when every id
 * is one): a load of 100k rows made 100k id strings in Neovim, garbage at
 * once, and their count doubled LuaJIT's string table (a rehash of every
 * string, 12-25 ms, in one go).
 *
 * Memory: a cols_builder owns its buffers until cols_free; arguments are
 * borrowed. */
#ifndef SHELF_COLS_H
#define SHELF_COLS_H

#include <msgpack.h>
#include <stddef.h>

/* Fields in all the rows of one push at most, and the longest name: our
 * summaries (model_summary) have about ten, with short names. */
#define COLS_MAX_FIELDS 32
#define COLS_MAX_NAME 64
#define COLS_PACKED_TAGS "packed_tags"
#define COLS_ID_A "ida"
#define COLS_ID_B "idb"
#define COLS_ID_C "idc"

typedef struct {
  msgpack_sbuffer rows; /* each row's summary, a msgpack map, one after another */
  size_t n;
} cols_builder;

void cols_init(cols_builder *c);
/* The packer that appends one row: pack exactly one map with it, then call
 * cols_row_done. (pk is c's, valid until cols_free.) */
void cols_row(cols_builder *c, msgpack_packer *pk);
void cols_row_done(cols_builder *c);
/* Pack the rows as columns: a map of "n" (the row count) and each field
 * name to an array of n values, nil where a row has none; with a tags
 * field, COLS_PACKED_TAGS = true too; UUID ids as COLS_ID_A/B/C (above).
 * Returns 0, or -1 with *err set when a row is not a map of string keys,
 * or the rows have more than COLS_MAX_FIELDS fields, one longer than
 * COLS_MAX_NAME or one named "n" or as a name above; then nothing was
 * packed. */
int cols_pack(const cols_builder *c, msgpack_packer *pk, const char **err);
void cols_free(cols_builder *c);

#endif
