/*
 * vm_json.h - the `json` table scripts see ({encode, decode, null}) and
 * the set-up JSON needs in a Lua state (DESIGN §4).
 *
 * The codecs themselves are vm_json_encode.h (Lua to JSON text) and
 * vm_json_decode.h (JSON text to Lua); both are included here, so that a
 * user of all three (vm.c) needs this header only.  Only vm*.c include the
 * Lua headers; this header does not.
 */
#ifndef VM_JSON_H
#define VM_JSON_H

#include "vm/vm_json_decode.h"
#include "vm/vm_json_encode.h"

typedef struct lua_State lua_State;

/* Creates the array marker and the null sentinel in the registry and pushes
 * the `json` helper table {encode, decode, null}.  Call once per state,
 * before any encoding or decoding. */
void vm_json_open(lua_State *L, unsigned max_depth);

#endif
