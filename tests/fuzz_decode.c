/*
 * fuzz_decode.c - libFuzzer harness: vm_json_decode against json_parse +
 * vm_json_push on every input, at a small depth limit and at none.  Aborts
 * when the decoder accepts what json_parse refuses, refuses what it accepts
 * for a reason src/vm_json_decode.c does not document, or gives another
 * value (numbers bit for bit; a string may hold \u0000 where the tree path
 * cut it).  Built by `make fuzz` with clang, never by `make all`/`check`;
 * tests/test_decode.c runs the same check on seeded random documents.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "json.h"
#include "vm_json.h"

#define SMALL_DEPTH	16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *current_text;
static size_t current_len;

static void
disagree(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_decode: %s%s\n", what, detail);
	fprintf(stderr, "input (%zu bytes): %.*s\n", current_len, (int)current_len,
	    current_text);
	abort();
}

/* Values ------------------------------------------------------------------ */

static int values_equal(lua_State *L, int a, int b);

static int
strings_equal(lua_State *L, int a, int b)
{
	size_t la, lb;
	const char *sa = lua_tolstring(L, a, &la), *sb = lua_tolstring(L, b, &lb);
	const char *nul = memchr(sb, '\0', lb);

	if (la == lb && memcmp(sa, sb, la) == 0)
		return 1;
	/* The tree path pushes C strings: cut at the first NUL. */
	return nul != NULL && (size_t)(nul - sb) == la && memcmp(sa, sb, la) == 0;
}

/* Keys in b, or -1 when one holds a NUL (the tree path cut those keys,
 * maybe into duplicates, so such tables are not compared). */
static int
count_keys(lua_State *L, int table)
{
	int count = 0, nul_key = 0;
	size_t len;

	lua_pushnil(L);
	while (lua_next(L, table) != 0) {
		lua_pop(L, 1);
		if (lua_type(L, -1) == LUA_TSTRING) {
			const char *key = lua_tolstring(L, -1, &len);
			nul_key |= memchr(key, '\0', len) != NULL;
		}
		count++;
	}
	return nul_key ? -1 : count;
}

static int
tables_equal(lua_State *L, int a, int b)
{
	int equal = 1;

	if (!lua_checkstack(L, 8))
		disagree("Lua stack exhausted while comparing", "");
	int meta_a = lua_getmetatable(L, a), meta_b = lua_getmetatable(L, b);
	equal = meta_a == meta_b && (!meta_a || lua_rawequal(L, -1, -2));
	lua_pop(L, meta_a + meta_b);
	if (!equal)
		return 0;
	int count_b = count_keys(L, b);
	if (count_b == -1)
		return 1;
	if (count_keys(L, a) != count_b)
		return 0;
	lua_pushnil(L);
	while (equal && lua_next(L, a) != 0) {
		int value_a = lua_gettop(L);
		lua_pushvalue(L, -2);
		lua_rawget(L, b);
		equal = !lua_isnil(L, -1) && values_equal(L, value_a, value_a + 1);
		lua_pop(L, 2);
	}
	if (!equal)
		lua_pop(L, 1);
	return equal;
}

static int
values_equal(lua_State *L, int a, int b)
{
	double x, y;

	if (lua_type(L, a) != lua_type(L, b))
		return 0;
	switch (lua_type(L, a)) {
	case LUA_TNUMBER:
		x = lua_tonumber(L, a);
		y = lua_tonumber(L, b);
		return memcmp(&x, &y, sizeof(x)) == 0;
	case LUA_TSTRING:
		return strings_equal(L, a, b);
	case LUA_TTABLE:
		return tables_equal(L, a, b);
	case LUA_TBOOLEAN:
		return lua_toboolean(L, a) == lua_toboolean(L, b);
	case LUA_TLIGHTUSERDATA:
		return lua_touserdata(L, a) == lua_touserdata(L, b);
	default:
		return 0;
	}
}

/* Documented strictness ----------------------------------------------------- */

static int
is_number_byte(char c)
{
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' ||
	    c == 'E';
}

static int
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Leading zero, empty fraction or "-." in the run of number bytes around
 * `at`: forms strtod reads and RFC 8259 does not. */
static int
is_lenient_number(const char *text, size_t len, size_t at)
{
	size_t start = at, end = at;

	while (start > 0 && is_number_byte(text[start - 1]))
		start--;
	while (end < len && is_number_byte(text[end]))
		end++;
	if (end - start < 2)
		return 0;
	const char *n = text + start + (text[start] == '-');
	if (n[0] == '.' || (n[0] == '0' && n + 1 < text + end && n[1] >= '0' && n[1] <= '9'))
		return 1;
	for (const char *c = n; c < text + end; c++)
		if (*c == '.' && (c + 1 == text + end || !(c[1] >= '0' && c[1] <= '9')))
			return 1;
	return 0;
}

/* Whether the decoder's refusal err of a text json_parse accepts is one of
 * the documented ones, judged by the byte it names. */
static int
is_documented_refusal(const char *text, size_t len, const char *err)
{
	const char *where = strstr(err, " at line ");
	unsigned long line, column, current = 1;
	size_t at = 0;

	if (where == NULL || sscanf(where, " at line %lu, column %lu", &line, &column) != 2)
		return 0;
	while (current < line && at < len)
		if (text[at++] == '\n')
			current++;
	at += column - 1;
	if (at >= len)
		return 0;
	if (strncmp(err, "JSON number out of range", 24) == 0) {
		/* The whole number: its exponent may come late. */
		char *copy = malloc(len - at + 1);
		size_t n = 0;
		if (copy == NULL)
			return 0;
		while (at + n < len && is_number_byte(text[at + n])) {
			copy[n] = text[at + n];
			n++;
		}
		copy[n] = '\0';
		int overflows = isinf(strtod(copy, NULL));
		free(copy);
		return overflows;
	}
	if (strncmp(err, "invalid JSON", 12) != 0)
		return 0;
	unsigned char c = (unsigned char)text[at];
	if (c < 0x20 || c >= 0x80)
		return 1;	/* control character, invalid UTF-8, BOM */
	if (c == '\\' && at + 5 < len && text[at + 1] == 'u' && !(is_hex(text[at + 2]) &&
	    is_hex(text[at + 3]) && is_hex(text[at + 4]) && is_hex(text[at + 5])))
		return 1;	/* cJSON reads a bad digit as U+0000 */
	return is_lenient_number(text, len, at);
}

/* The check --------------------------------------------------------------- */

static void
compare_paths(lua_State *L, const char *text, size_t len, unsigned max_depth)
{
	char err_tree[256] = "", err_direct[256] = "";
	cJSON *tree = json_parse(text, len, max_depth, err_tree, sizeof(err_tree));
	int tree_ok = tree != NULL && vm_json_push(L, tree, "value", max_depth, err_tree,
	    sizeof(err_tree)) == 0;
	int direct_ok = vm_json_decode(L, text, len, max_depth, err_direct,
	    sizeof(err_direct)) == 0;

	cJSON_Delete(tree);
	if (lua_gettop(L) != tree_ok + direct_ok)
		disagree("the Lua stack is off", "");
	if (tree_ok && direct_ok && !values_equal(L, 1, 2))
		disagree("values differ", "");
	if (!tree_ok && direct_ok)
		disagree("decoder accepts what json_parse refuses: ", err_tree);
	if (tree_ok && !direct_ok && !is_documented_refusal(text, len, err_direct))
		disagree("decoder refuses what json_parse accepts: ", err_direct);
	lua_settop(L, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static lua_State *L;

	if (L == NULL) {
		L = luaL_newstate();
		if (L == NULL)
			abort();
		luaL_openlibs(L);
		vm_json_open(L, SMALL_DEPTH);
		lua_setglobal(L, "json");
	}
	current_text = (const char *)data;
	current_len = size;
	compare_paths(L, current_text, size, SMALL_DEPTH);
	compare_paths(L, current_text, size, UINT_MAX);
	return 0;
}
