/*
 * vm_json_decode.h - JSON text straight onto the Lua stack (DESIGN §4),
 * with no cJSON tree in between: contexts and json.decode.
 *
 * Objects and arrays become tables; arrays get the shared array marker
 * metatable so `[]` encodes back as `[]`; null becomes json.null (a
 * lightuserdata NULL) so keys and slots survive; numbers become the double
 * strtod reads.  Where this reads RFC 8259 more strictly than cJSON, see
 * the top of vm_json_decode.c.
 *
 * Needs the array marker (vm_json_open creates it).  Only vm*.c include
 * the Lua headers; this header does not.
 */
#ifndef VM_JSON_DECODE_H
#define VM_JSON_DECODE_H

#include <stddef.h>

typedef struct lua_State lua_State;

/* Decodes exactly `len` bytes of text, trailing whitespace allowed.
 * Returns 0 with one value pushed, or -1 with nothing pushed and err
 * filled ("invalid JSON at line L, column C", "JSON nested deeper than N
 * levels").  May raise Lua errors (out of memory): call from protected
 * code. */
int vm_json_decode(lua_State *L, const char *text, size_t len, unsigned max_depth,
    char *err, size_t errlen);
/* The same for a request body, where a key given twice at any level is
 * ambiguous (the supervisor and the worker could read different ones):
 * -1 with "duplicate key \"k\" at line L, column C".  A value nested deeper
 * than max_depth returns -2, and err names where, below the request:
 * "context.a[2]: nested deeper than max_json_depth (N)", N = max_depth - 1
 * (the request object is the first level). */
int vm_json_decode_request(lua_State *L, const char *text, size_t len, unsigned max_depth,
    char *err, size_t errlen);

#endif
