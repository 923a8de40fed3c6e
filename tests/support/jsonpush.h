/*
 * jsonpush.h - a cJSON tree as Lua values, as the worker's JSON has them:
 * objects and arrays become tables, arrays with the shared array marker
 * metatable, null becomes json.null (a lightuserdata NULL), numbers Lua
 * numbers.  The tests' reference for the direct decoder vm_json_decode.
 */
#ifndef JSONPUSH_H
#define JSONPUSH_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct lua_State lua_State;

/* Pushes the Lua value of `item` (NULL: json.null) in a state where
 * vm_json_open ran.  Returns 0, or -1 with err filled ("context.a.b:
 * nesting deeper than 256") and nothing pushed.  May raise Lua errors (out
 * of memory): call from protected code. */
int jsonpush_tree(lua_State *L, const cJSON *item, const char *root, unsigned max_depth,
    char *err, size_t errlen);

#endif
