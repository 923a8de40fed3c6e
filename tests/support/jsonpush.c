/*
 * jsonpush.c - a cJSON tree onto the Lua stack: the reference the direct
 * decoder (src/vm/vm_json_decode.c) is held to by the differential tests
 * and the fuzzer (jsoncompare.c).  No request runs through it any more.
 *
 * It must give the values the worker's JSON gives (the array marker,
 * json.null, error paths from vm_json_path), so it uses their code rather
 * than a copy; it never runs script code (only raw table access).
 */
#include <string.h>

#include <cjson/cJSON.h>
#include <lua.h>

#include "support/jsonpush.h"
#include "vm/vm_json_common.h"
#include "vm/vm_json_path.h"

struct pusher {
	lua_State *L;
	int marker;
	unsigned max_depth;
	char *err;
	size_t errlen;
};

static int push_item(struct pusher *p, const cJSON *item, const struct vm_json_path *at,
    unsigned depth);

static int
count_children(const cJSON *item)
{
	int count = 0;

	for (const cJSON *child = item->child; child != NULL; child = child->next)
		count++;
	return count;
}

static int
enter_container(struct pusher *p, const struct vm_json_path *at, unsigned depth)
{
	if (depth + 1 > p->max_depth) {
		vm_json_path_fail(p->err, p->errlen, at, "nesting deeper than %u",
		    p->max_depth);
		return -1;
	}
	if (!lua_checkstack(p->L, 3)) {
		vm_json_path_fail(p->err, p->errlen, at,
		    "nesting too deep for the Lua stack");
		return -1;
	}
	return 0;
}

static int
push_array(struct pusher *p, const cJSON *array, const struct vm_json_path *at,
    unsigned depth)
{
	struct vm_json_path element = { at, NULL, NULL, 0, 0 };
	int i = 0;

	if (enter_container(p, at, depth) == -1)
		return -1;
	lua_createtable(p->L, count_children(array), 0);
	lua_pushvalue(p->L, p->marker);
	lua_setmetatable(p->L, -2);
	for (const cJSON *child = array->child; child != NULL; child = child->next) {
		element.index = ++i;
		if (push_item(p, child, &element, depth + 1) == -1)
			return -1;
		lua_rawseti(p->L, -2, i);
	}
	return 0;
}

static int
push_object(struct pusher *p, const cJSON *object, const struct vm_json_path *at,
    unsigned depth)
{
	struct vm_json_path member = { at, NULL, NULL, 0, 0 };

	if (enter_container(p, at, depth) == -1)
		return -1;
	lua_createtable(p->L, 0, count_children(object));
	for (const cJSON *child = object->child; child != NULL; child = child->next) {
		member.key = child->string ? child->string : "";
		member.key_len = strlen(member.key);
		lua_pushlstring(p->L, member.key, member.key_len);
		if (push_item(p, child, &member, depth + 1) == -1)
			return -1;
		lua_rawset(p->L, -3);
	}
	return 0;
}

/* On error the partly built tables stay on the stack; the caller resets
 * the stack. */
static int
push_item(struct pusher *p, const cJSON *item, const struct vm_json_path *at,
    unsigned depth)
{
	switch (item->type & 0xff) {
	case cJSON_NULL:
		lua_pushlightuserdata(p->L, NULL);
		return 0;
	case cJSON_False:
		lua_pushboolean(p->L, 0);
		return 0;
	case cJSON_True:
		lua_pushboolean(p->L, 1);
		return 0;
	case cJSON_Number:
		lua_pushnumber(p->L, item->valuedouble);
		return 0;
	case cJSON_String:
		lua_pushstring(p->L, item->valuestring ? item->valuestring : "");
		return 0;
	case cJSON_Array:
		return push_array(p, item, at, depth);
	case cJSON_Object:
		return push_object(p, item, at, depth);
	default:
		vm_json_path_fail(p->err, p->errlen, at, "not a JSON value (cJSON type %d)",
		    item->type & 0xff);
		return -1;
	}
}

int
jsonpush_tree(lua_State *L, const cJSON *item, const char *root, unsigned max_depth,
    char *err, size_t errlen)
{
	int top = lua_gettop(L);
	struct pusher p = { L, top + 1, max_depth, err, errlen };
	struct vm_json_path at = { NULL, NULL, root ? root : "value", 0, 0 };

	at.key_len = strlen(at.key);
	if (!lua_checkstack(L, 3)) {
		vm_json_path_fail(err, errlen, &at, "Lua stack exhausted");
		return -1;
	}
	vm_json_common_push_array_marker(L);
	if (item == NULL)
		lua_pushlightuserdata(L, NULL);
	else if (push_item(&p, item, &at, 0) == -1)
		goto fail;
	lua_remove(L, top + 1);
	return 0;

fail:
	lua_settop(L, top);
	return -1;
}
