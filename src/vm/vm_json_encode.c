/*
 * vm_json_encode.c - Lua values to JSON text: the results scripts return
 * and json.encode.
 *
 * This runs on every request, so it writes straight into the caller's
 * buffer and allocates nothing per value.  It must never emit text that is
 * not JSON (NaN, invalid UTF-8, a cycle), never run script code (only raw
 * table access, so no metamethod can raise or yield in here) and never
 * convert a key in place while iterating a table (lua_next would lose its
 * place).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <lua.h>

#include "common/buffer.h"
#include "vm/vm_json_common.h"
#include "vm/vm_json_encode.h"
#include "vm/vm_json_path.h"

struct encoder {
	lua_State *L;
	struct buffer *out;
	int marker;			/* stack index of the array marker */
	unsigned max_depth;
	char *err;
	size_t errlen;
};

/* 0: copied as is, 1: escaped, 2: starts a multi-byte sequence. */
static const unsigned char byte_kind[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

static const char *
describe_non_finite(double x)
{
	if (isnan(x))
		return "NaN";
	return x > 0 ? "inf" : "-inf";
}

static enum vm_json_result encode_value(struct encoder *e, int index,
    const struct vm_json_path *at, unsigned depth);

static enum vm_json_result
put(struct encoder *e, const char *s, size_t len)
{
	return buffer_append(e->out, s, len) == 0 ? VM_JSON_OK : VM_JSON_TOO_LARGE;
}

static enum vm_json_result
put_char(struct encoder *e, char c)
{
	return buffer_append_char(e->out, c) == 0 ? VM_JSON_OK : VM_JSON_TOO_LARGE;
}

/* Writes the escape of c: quotes, backslashes and control characters. */
static int
append_escape(struct buffer *out, unsigned char c)
{
	/* Pairs of a character and the letter of its two-character escape. */
	static const char short_forms[] = "\"\"\\\\\bb\ff\nn\rr\tt";
	char escape[6] = { '\\', 'u', '0', '0', text_hex_digits[c >> 4],
	    text_hex_digits[c & 15] };

	for (const char *form = short_forms; *form != '\0'; form += 2) {
		if ((unsigned char)form[0] == c) {
			escape[1] = form[1];
			return buffer_append(out, escape, 2);
		}
	}
	return buffer_append(out, escape, 6);
}

/*
 * Appends s as a JSON string: quotes, backslashes and control characters
 * escaped, everything else (valid UTF-8 included) copied in runs.  Returns
 * VM_JSON_NOT_SERIALIZABLE, without filling any message, for invalid UTF-8.
 */
static enum vm_json_result
append_string(struct buffer *out, const char *s, size_t len)
{
	const unsigned char *bytes = (const unsigned char *)s;
	size_t at = 0, run = 0;

	/* The text is at least this long, so failing here is no false alarm,
	 * and most strings then need no further growth. */
	if (buffer_reserve(out, len + 2) == -1 || buffer_append_char(out, '"') == -1)
		return VM_JSON_TOO_LARGE;
	while (at < len) {
		unsigned char kind = byte_kind[bytes[at]];
		if (kind == 0) {
			at++;
		} else if (kind == 2) {
			size_t n = text_utf8_length(bytes + at, len - at);
			if (n == 0)
				return VM_JSON_NOT_SERIALIZABLE;
			at += n;
		} else {
			if (buffer_append(out, s + run, at - run) == -1 ||
			    append_escape(out, bytes[at]) == -1)
				return VM_JSON_TOO_LARGE;
			run = ++at;
		}
	}
	if (buffer_append(out, s + run, at - run) == -1 ||
	    buffer_append_char(out, '"') == -1)
		return VM_JSON_TOO_LARGE;
	return VM_JSON_OK;
}

static enum vm_json_result
encode_number(struct encoder *e, double x, const struct vm_json_path *at)
{
	char number[VM_JSON_NUMBER_TEXT_SIZE];
	size_t len = vm_json_common_format_number(x, number);

	if (len == 0) {
		vm_json_path_fail(e->err, e->errlen, at, "%s is not JSON",
		    describe_non_finite(x));
		return VM_JSON_NOT_SERIALIZABLE;
	}
	return put(e, number, len);
}

static enum vm_json_result
encode_string(struct encoder *e, int index, const struct vm_json_path *at)
{
	size_t len;
	const char *s = lua_tolstring(e->L, index, &len);
	enum vm_json_result result = append_string(e->out, s, len);

	if (result == VM_JSON_NOT_SERIALIZABLE)
		vm_json_path_fail(e->err, e->errlen, at, "string is not valid UTF-8");
	return result;
}

/*
 * True when the keys of the table are exactly 1..n, n being its length
 * (n = 0: no keys at all).  Reads the keys in place without converting.
 */
static int
keys_are_sequence(lua_State *L, int table, size_t n)
{
	size_t count = 0;

	lua_pushnil(L);
	while (lua_next(L, table) != 0) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TNUMBER)
			goto fail;
		double key = lua_tonumber(L, -1);
		if (!(key >= 1 && key <= (double)n && key == floor(key)))
			goto fail;
		count++;
	}
	return count == n;

fail:
	lua_pop(L, 1);
	return 0;
}

static int
has_array_marker(struct encoder *e, int table)
{
	if (lua_getmetatable(e->L, table) == 0)
		return 0;
	int marked = lua_rawequal(e->L, -1, e->marker);
	lua_pop(e->L, 1);
	return marked;
}

static enum vm_json_result
encode_array(struct encoder *e, int table, size_t n, const struct vm_json_path *at,
    unsigned depth)
{
	enum vm_json_result result = put_char(e, '[');
	struct vm_json_path element = { at, lua_topointer(e->L, table), NULL, 0, 0 };

	for (size_t i = 1; i <= n && result == VM_JSON_OK; i++) {
		if (i > 1 && (result = put_char(e, ',')) != VM_JSON_OK)
			break;
		lua_rawgeti(e->L, table, (int)i);
		element.index = (double)i;
		result = encode_value(e, lua_gettop(e->L), &element, depth);
		lua_pop(e->L, 1);
	}
	return result == VM_JSON_OK ? put_char(e, ']') : result;
}

/* Writes the key at `index` followed by ':' and records it in `member` for
 * error paths.  The key is read, never converted, so lua_next can go on. */
static enum vm_json_result
encode_key(struct encoder *e, int index, const struct vm_json_path *at,
    struct vm_json_path *member)
{
	char number[VM_JSON_NUMBER_TEXT_SIZE];
	enum vm_json_result result;
	int type = lua_type(e->L, index);

	if (type == LUA_TSTRING) {
		member->key = lua_tolstring(e->L, index, &member->key_len);
		result = append_string(e->out, member->key, member->key_len);
		if (result == VM_JSON_NOT_SERIALIZABLE)
			vm_json_path_fail(e->err, e->errlen, at,
			    "table key is not valid UTF-8");
	} else if (type == LUA_TNUMBER) {
		member->key = NULL;
		member->index = lua_tonumber(e->L, index);
		size_t len = vm_json_common_format_number(member->index, number);
		if (len == 0) {
			vm_json_path_fail(e->err, e->errlen, at, "table key %s is not JSON",
			    describe_non_finite(member->index));
			return VM_JSON_NOT_SERIALIZABLE;
		}
		result = put_char(e, '"');
		if (result == VM_JSON_OK)
			result = put(e, number, len);
		if (result == VM_JSON_OK)
			result = put_char(e, '"');
	} else {
		vm_json_path_fail(e->err, e->errlen, at, "table key of type %s is not JSON",
		    lua_typename(e->L, type));
		return VM_JSON_NOT_SERIALIZABLE;
	}
	return result == VM_JSON_OK ? put_char(e, ':') : result;
}

/* On error the iteration's key and value stay on the stack; the caller
 * resets the stack. */
static enum vm_json_result
encode_object(struct encoder *e, int table, const struct vm_json_path *at, unsigned depth)
{
	enum vm_json_result result = put_char(e, '{');
	struct vm_json_path member = { at, lua_topointer(e->L, table), NULL, 0, 0 };
	int first = 1;

	lua_pushnil(e->L);
	while (result == VM_JSON_OK && lua_next(e->L, table) != 0) {
		if (!first && (result = put_char(e, ',')) != VM_JSON_OK)
			break;
		first = 0;
		int value = lua_gettop(e->L);
		result = encode_key(e, value - 1, at, &member);
		if (result == VM_JSON_OK)
			result = encode_value(e, value, &member, depth);
		lua_pop(e->L, 1);
	}
	return result == VM_JSON_OK ? put_char(e, '}') : result;
}

static enum vm_json_result
encode_table(struct encoder *e, int table, const struct vm_json_path *at, unsigned depth)
{
	const void *self = lua_topointer(e->L, table);

	if (depth + 1 > e->max_depth) {
		vm_json_path_fail(e->err, e->errlen, at, "nesting deeper than %u",
		    e->max_depth);
		return VM_JSON_NOT_SERIALIZABLE;
	}
	for (const struct vm_json_path *s = at; s != NULL; s = s->parent) {
		if (s->table == self) {
			vm_json_path_fail(e->err, e->errlen, at, "cycle");
			return VM_JSON_NOT_SERIALIZABLE;
		}
	}
	/* Key and value kept per level, and at most two more while looking. */
	if (!lua_checkstack(e->L, 4)) {
		vm_json_path_fail(e->err, e->errlen, at,
		    "nesting too deep for the Lua stack");
		return VM_JSON_NOT_SERIALIZABLE;
	}
	size_t n = lua_objlen(e->L, table);
	if ((n > 0 || has_array_marker(e, table)) && keys_are_sequence(e->L, table, n))
		return encode_array(e, table, n, at, depth + 1);
	return encode_object(e, table, at, depth + 1);
}

/* `depth` counts the tables around the value. */
static enum vm_json_result
encode_value(struct encoder *e, int index, const struct vm_json_path *at, unsigned depth)
{
	int type = lua_type(e->L, index);

	switch (type) {
	case LUA_TNONE:
	case LUA_TNIL:
		return put(e, "null", 4);
	case LUA_TBOOLEAN:
		return lua_toboolean(e->L, index) ? put(e, "true", 4) : put(e, "false", 5);
	case LUA_TNUMBER:
		return encode_number(e, lua_tonumber(e->L, index), at);
	case LUA_TSTRING:
		return encode_string(e, index, at);
	case LUA_TTABLE:
		return encode_table(e, index, at, depth);
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(e->L, index) == NULL)
			return put(e, "null", 4);
		break;
	default:
		break;
	}
	vm_json_path_fail(e->err, e->errlen, at, "%s is not JSON",
	    lua_typename(e->L, type));
	return VM_JSON_NOT_SERIALIZABLE;
}

enum vm_json_result
vm_json_encode(lua_State *L, int index, struct buffer *out, const char *root,
    unsigned max_depth, char *err, size_t errlen)
{
	int top = lua_gettop(L);
	size_t start = out->len;
	struct encoder e = { L, out, top + 1, max_depth, err, errlen };
	struct vm_json_path at = { NULL, NULL, root ? root : "value", 0, 0 };
	enum vm_json_result result;

	at.key_len = strlen(at.key);
	if (index < 0 && index > LUA_REGISTRYINDEX)
		index = top + index + 1;
	if (!lua_checkstack(L, 2)) {
		vm_json_path_fail(err, errlen, &at, "Lua stack exhausted");
		return VM_JSON_NOT_SERIALIZABLE;
	}
	vm_json_common_push_array_marker(L);
	result = encode_value(&e, index, &at, 0);
	lua_settop(L, top);
	if (result == VM_JSON_OK)
		return VM_JSON_OK;
	if (result == VM_JSON_TOO_LARGE && err != NULL && errlen > 0) {
		if (out->limit > 0)
			snprintf(err, errlen, "%s: JSON text larger than %zu bytes",
			    at.key, out->limit);
		else
			snprintf(err, errlen, "%s: out of memory for the JSON text", at.key);
	}
	out->len = start;
	return result;
}
