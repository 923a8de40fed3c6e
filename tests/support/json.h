/*
 * json.h - parsing JSON text with cJSON, bounded and with errors a client
 * can act on ("invalid JSON at line 3, column 14", "JSON nested deeper than
 * 256 levels").  No Lua here.
 */
#ifndef JSON_H
#define JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Parses exactly `len` bytes (trailing whitespace allowed, nothing else).
 * Returns the tree (caller frees with cJSON_Delete) or NULL with err
 * filled.  Nesting beyond max_depth is refused before cJSON sees it. */
cJSON *json_parse(const char *text, size_t len, unsigned max_depth, char *err, size_t errlen);

/* Deepest nesting of arrays/objects in text, strings skipped; stops
 * counting at limit + 1. */
unsigned json_nesting_depth(const char *text, size_t len, unsigned limit);

#endif
