/* Helpers of the table tests (test_*_table.c): their cases hold JSON
 * written with ' for " so that it reads as JSON. */
#ifndef SHOAL_TESTS_TABLE_H
#define SHOAL_TESTS_TABLE_H

#include <jansson.h>

/* Parses `text` (' standing for ") into a new reference; a bad text fails the test. */
json_t *table_json(const char *text);

/* Fills what a table's node (taken, returned) leaves out: hostname = id,
 * role worker, status ready, availability active, updated_at 0. */
json_t *table_node(json_t *node);

#endif
