/* store.c - what both backends share: the default table names (store.h). */
#include "store.h"

const char *store_default_table_name(store_table t) {
  static const char *const names[STORE_NTABLES] = {
      [STORE_BLOCKS] = "context_blocks",
      [STORE_PROMPTS] = "prompts",
      [STORE_DATASET_PROJECTS] = "dataset_projects",
      [STORE_PROMPT_PROJECTS] = "prompt_projects",
  };
  /* Callers print the result; never hand them NULL. */
  return (unsigned)t < STORE_NTABLES ? names[t] : "(unknown table)";
}
