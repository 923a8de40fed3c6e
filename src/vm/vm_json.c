/*
 * vm_json.c - the `json` table scripts see: json.encode and json.decode
 * over the two codecs, and json.null; and the set-up of both codecs in a
 * new Lua state.
 *
 * The helpers must never leak the text they build when Lua raises (out of
 * memory): it sits in a userdata the collector frees.  They run no script
 * code and leave the codecs' rules (what is JSON, error messages) to them.
 */
#include <lauxlib.h>
#include <lua.h>

#include "common/buffer.h"
#include "vm/vm_json.h"
#include "vm/vm_json_common.h"
#include "vm/vm_json_decode.h"
#include "vm/vm_json_encode.h"

/* json.encode output bound.  The text is malloc'd outside the Lua heap
 * limit, and a table reached many times (not a cycle) can expand
 * exponentially, so it needs a bound of its own. */
#define HELPER_TEXT_LIMIT	((size_t)16 * 1024 * 1024)

/* Registry key: only its address matters. */
static char scratch_metatable_key;

/* What json.encode allocates outside the Lua heap, kept in a userdata so
 * that a Lua error (out of memory) cannot leak it. */
struct scratch {
	struct buffer text;
};

static int
release_scratch(lua_State *L)
{
	struct scratch *s = lua_touserdata(L, 1);

	buffer_free(&s->text);
	return 0;
}

static struct scratch *
push_scratch(lua_State *L, size_t text_limit)
{
	struct scratch *s = lua_newuserdata(L, sizeof(*s));

	buffer_init(&s->text, text_limit);
	lua_pushlightuserdata(L, &scratch_metatable_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
	lua_setmetatable(L, -2);
	return s;
}

static unsigned
helper_max_depth(lua_State *L)
{
	return (unsigned)lua_tonumber(L, lua_upvalueindex(1));
}

/* json.encode(v): the JSON text of v; raises "value.a: ... is not JSON". */
static int
helper_encode(lua_State *L)
{
	char err[256];

	luaL_checkany(L, 1);
	lua_settop(L, 1);
	struct scratch *s = push_scratch(L, HELPER_TEXT_LIMIT);
	if (vm_json_encode(L, 1, &s->text, "value", helper_max_depth(L), err,
	    sizeof(err)) != VM_JSON_OK) {
		buffer_free(&s->text);
		return luaL_error(L, "%s", err);
	}
	lua_pushlstring(L, s->text.data, s->text.len);
	buffer_free(&s->text);
	return 1;
}

/* json.decode(s): the Lua value of the JSON text s; raises on bad JSON. */
static int
helper_decode(lua_State *L)
{
	char err[256];
	size_t len;
	const char *text = luaL_checklstring(L, 1, &len);

	if (vm_json_decode(L, text, len, helper_max_depth(L), err, sizeof(err)) == -1)
		return luaL_error(L, "%s", err);
	return 1;
}

static void
create_scratch_metatable(lua_State *L)
{
	lua_pushlightuserdata(L, &scratch_metatable_key);
	lua_createtable(L, 0, 2);
	lua_pushcfunction(L, release_scratch);
	lua_setfield(L, -2, "__gc");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_rawset(L, LUA_REGISTRYINDEX);
}

static void
set_helper(lua_State *L, const char *name, lua_CFunction helper, unsigned max_depth)
{
	lua_pushnumber(L, max_depth);
	lua_pushcclosure(L, helper, 1);
	lua_setfield(L, -2, name);
}

void
vm_json_open(lua_State *L, unsigned max_depth)
{
	vm_json_common_create_array_marker(L);
	create_scratch_metatable(L);
	lua_createtable(L, 0, 3);
	set_helper(L, "encode", helper_encode, max_depth);
	set_helper(L, "decode", helper_decode, max_depth);
	lua_pushlightuserdata(L, NULL);
	lua_setfield(L, -2, "null");
}
