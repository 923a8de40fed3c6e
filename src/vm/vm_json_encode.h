/*
 * vm_json_encode.h - Lua values to JSON text (DESIGN §4).
 *
 * A table with the array marker, or one whose keys are exactly 1..n
 * (n >= 1), is an array; any other table an object (number keys become
 * strings; the empty unmarked table is {}).  json.null (a lightuserdata
 * NULL) and nil are null.  Integers print without a fraction.  NaN,
 * infinities, cycles, functions, userdata, threads, keys that are not
 * strings or numbers, and strings that are not valid UTF-8 are errors that
 * name the path, e.g. "result.items[3]: NaN is not JSON".
 *
 * Needs the array marker (vm_json_open creates it).  May raise Lua errors
 * (out of memory): call from protected code.  Only vm*.c include the Lua
 * headers; this header does not.
 */
#ifndef VM_JSON_ENCODE_H
#define VM_JSON_ENCODE_H

#include <stddef.h>

#include "common/buffer.h"

typedef struct lua_State lua_State;

enum vm_json_result { VM_JSON_OK = 0, VM_JSON_NOT_SERIALIZABLE = -1, VM_JSON_TOO_LARGE = -2 };

/* Appends the JSON text of the value at `index` to out (whose limit bounds
 * the size).  `root` names the value in error paths ("result").  On error
 * out is as it was and err is filled. */
enum vm_json_result vm_json_encode(lua_State *L, int index, struct buffer *out,
    const char *root, unsigned max_depth, char *err, size_t errlen);

#endif
