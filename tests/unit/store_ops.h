/* Helper of the tests over a real store (store/store.h). */
#ifndef SHOAL_TESTS_STORE_OPS_H
#define SHOAL_TESTS_STORE_OPS_H

#include <jansson.h>
#include <stddef.h>

#include "store/store.h"

/* Applies `ops` (stolen) as one entry of one group, as the leader proposes a
 * pass; the test fails unless the store applies it and the group commits.
 * Returns how many ops there were. */
size_t unit_apply_ops(struct store *st, json_t *ops);

#endif
