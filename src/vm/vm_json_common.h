/*
 * vm_json_common.h - what the JSON encoder (vm_json_encode.c), the direct
 * decoder (vm_json_decode.c) and error paths (vm_json_path.c) share: the
 * array marker, UTF-8 checking and the text of numbers.
 *
 * How JSON values look in Lua, on both sides: arrays are tables with the
 * shared array marker as metatable (so `[]` encodes back as `[]`); null is
 * json.null, a lightuserdata NULL (as lua-cjson has it), so keys and slots
 * survive; numbers are Lua numbers.
 *
 * This unit must never call either codec: both depend on it.  Only vm*.c
 * include the Lua headers; this header does not.
 */
#ifndef VM_JSON_COMMON_H
#define VM_JSON_COMMON_H

#include <stddef.h>

#include "common/text.h"

typedef struct lua_State lua_State;

/* Room for a number: "-1.2345678901234567e-308" and a NUL. */
#define VM_JSON_NUMBER_TEXT_SIZE	32

/* Creates the shared metatable of arrays in the registry.  Its __metatable
 * field hides and locks it.  Call once per state (vm_json_open does). */
void vm_json_common_create_array_marker(lua_State *L);

/* Pushes the array marker metatable, so that every file marks arrays with
 * the same table. */
void vm_json_common_push_array_marker(lua_State *L);

/*
 * Writes x as JSON into out (VM_JSON_NUMBER_TEXT_SIZE bytes) and returns
 * the length, or 0 when x is NaN or infinite.  Integers below 2^53 print
 * without a fraction (-0 as 0); other numbers use the fewest significant
 * digits (14 to 17) that read back as the same double.
 */
size_t vm_json_common_format_number(double x, char *out);

#endif
