/*
 * vm_json.h - JSON <-> Lua values for the worker's VM (DESIGN §4).
 *
 * JSON to Lua: objects and arrays become tables; arrays get a shared marker
 * metatable so `[]` encodes back as `[]`; null becomes json.null (a
 * lightuserdata NULL, as lua-cjson has it) so keys and slots survive;
 * numbers become Lua numbers.
 * Lua to JSON: a marked table, or one whose keys are exactly 1..n (n >= 1),
 * is an array; any other table an object (number keys become strings; the
 * empty unmarked table is {}).  Integers print without a fraction.  NaN,
 * infinities, cycles, functions, userdata, threads, keys that are not
 * strings or numbers, and strings that are not valid UTF-8 are errors that
 * name the path, e.g. "result.items[3]: NaN is not JSON".
 *
 * These functions may raise Lua errors (out of memory): call them from
 * protected code.  Only vm*.c include the Lua headers; this header does not.
 */
#ifndef VM_JSON_H
#define VM_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/buffer.h"

typedef struct lua_State lua_State;

enum vm_json_result { VM_JSON_OK = 0, VM_JSON_NOT_SERIALIZABLE = -1, VM_JSON_TOO_LARGE = -2 };

/* Creates the array marker and the null sentinel in the registry and pushes
 * the `json` helper table {encode, decode, null}.  Call once per state. */
void vm_json_open(lua_State *L, unsigned max_depth);

/* Pushes the Lua value of `item`.  Returns 0, or -1 with err filled
 * ("context.a.b: nesting deeper than 256") and nothing pushed. */
int vm_json_push(lua_State *L, const cJSON *item, const char *root, unsigned max_depth,
    char *err, size_t errlen);

/* Appends the JSON text of the value at `index` to out (whose limit bounds
 * the size).  `root` names the value in error paths ("result"). */
enum vm_json_result vm_json_encode(lua_State *L, int index, struct buffer *out,
    const char *root, unsigned max_depth, char *err, size_t errlen);

/* Decodes JSON text straight onto the Lua stack (no cJSON tree): same
 * values as json_parse + vm_json_push (array marker, json.null, numbers as
 * doubles).  Exactly `len` bytes, trailing whitespace allowed.  Returns 0
 * with one value pushed, or -1 with nothing pushed and err filled with the
 * same kind of message as json_parse ("invalid JSON at line L, column C",
 * "JSON nested deeper than N levels").  May raise Lua errors (out of memory):
 * call from protected code. */
int vm_json_decode(lua_State *L, const char *text, size_t len, unsigned max_depth,
    char *err, size_t errlen);

/* Pushes the array marker metatable that vm_json_open created: for
 * vm_json_decode.c, so that both files mark arrays with the same table. */
void vm_json_push_array_marker(lua_State *L);

#endif
