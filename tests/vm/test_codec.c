/*
 * test_codec.c - JSON text to cJSON to Lua to JSON text and back: every
 * type, the path of every refusal, the limits (depth, size), the json.*
 * helpers scripts see, and a seeded random round trip against cJSON.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "common/buffer.h"
#include "support/json.h"
#include "support/jsongen.h"
#include "support/jsonpush.h"
#include "vm/vm_json.h"
#include "vm/vm_json_encode.h"

#define MAX_DEPTH	256

/* Helpers ---------------------------------------------------------------- */

static lua_State *
new_state_with_depth(unsigned max_depth)
{
	lua_State *L = luaL_newstate();

	ck_assert_ptr_nonnull(L);
	luaL_openlibs(L);
	vm_json_open(L, max_depth);
	lua_setglobal(L, "json");
	return L;
}

static lua_State *
new_state(void)
{
	return new_state_with_depth(MAX_DEPTH);
}

static void
run_lua(lua_State *L, const char *code)
{
	if (luaL_dostring(L, code) != 0)
		ck_abort_msg("Lua failed: %s", lua_tostring(L, -1));
}

/* Runs `chunk` (which returns one value) and leaves that value on top. */
static void
push_chunk_result(lua_State *L, const char *chunk)
{
	int top = lua_gettop(L);

	if (luaL_loadstring(L, chunk) != 0 || lua_pcall(L, 0, 1, 0) != 0)
		ck_abort_msg("Lua failed: %s", lua_tostring(L, -1));
	ck_assert_int_eq(lua_gettop(L), top + 1);
}

/* Encodes what `chunk` returns as "result"; the text goes to out. */
static enum vm_json_result
encode_chunk(const char *chunk, unsigned max_depth, struct buffer *out, char *err,
    size_t errlen)
{
	lua_State *L = new_state();

	push_chunk_result(L, chunk);
	int top = lua_gettop(L);
	enum vm_json_result result = vm_json_encode(L, -1, out, "result", max_depth,
	    err, errlen);
	ck_assert_int_eq(lua_gettop(L), top);
	lua_close(L);
	return result;
}

static void
assert_encodes_to(const char *chunk, const char *expected)
{
	struct buffer out;
	char err[256] = "";

	buffer_init(&out, 0);
	ck_assert_msg(encode_chunk(chunk, MAX_DEPTH, &out, err, sizeof(err)) == VM_JSON_OK,
	    "%s: %s", chunk, err);
	char *text = buffer_steal(&out, NULL);
	ck_assert_str_eq(text, expected);
	free(text);
}

/* Same as assert_encodes_to where key order is the table's own. */
static void
assert_encodes_like(const char *chunk, const char *expected)
{
	struct buffer out;
	char err[256] = "";

	buffer_init(&out, 0);
	ck_assert_msg(encode_chunk(chunk, MAX_DEPTH, &out, err, sizeof(err)) == VM_JSON_OK,
	    "%s: %s", chunk, err);
	char *text = buffer_steal(&out, NULL);
	cJSON *got = cJSON_Parse(text), *want = cJSON_Parse(expected);
	ck_assert_ptr_nonnull(got);
	ck_assert_ptr_nonnull(want);
	ck_assert_msg(cJSON_Compare(got, want, 1), "%s gave %s, not %s", chunk, text, expected);
	cJSON_Delete(got);
	cJSON_Delete(want);
	free(text);
}

static void
assert_encode_fails(const char *chunk, const char *message)
{
	struct buffer out;
	char err[256] = "";

	buffer_init(&out, 0);
	ck_assert_msg(encode_chunk(chunk, MAX_DEPTH, &out, err, sizeof(err)) ==
	    VM_JSON_NOT_SERIALIZABLE, "%s should not encode", chunk);
	ck_assert_str_eq(err, message);
	ck_assert_uint_eq(out.len, 0);
	buffer_free(&out);
}

/*
 * json_parse -> jsonpush_tree -> vm_json_encode -> json_parse, and the two
 * trees must be equal.  Returns the encoded text (caller frees).
 */
static char *
round_trip_in(lua_State *L, const char *json, size_t len)
{
	char err[256] = "";
	struct buffer out;
	int top = lua_gettop(L);

	cJSON *first = json_parse(json, len, MAX_DEPTH, err, sizeof(err));
	ck_assert_msg(first != NULL, "%s: %s", json, err);
	ck_assert_msg(jsonpush_tree(L, first, "context", MAX_DEPTH, err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert_int_eq(lua_gettop(L), top + 1);
	buffer_init(&out, 0);
	ck_assert_msg(vm_json_encode(L, -1, &out, "result", MAX_DEPTH, err,
	    sizeof(err)) == VM_JSON_OK, "%s", err);
	lua_pop(L, 1);
	size_t text_len = 0;
	char *text = buffer_steal(&out, &text_len);
	ck_assert_ptr_nonnull(text);
	cJSON *second = json_parse(text, text_len, MAX_DEPTH, err, sizeof(err));
	ck_assert_msg(second != NULL, "%s: %s", text, err);
	ck_assert_msg(cJSON_Compare(first, second, 1), "%s came back as %s", json, text);
	cJSON_Delete(first);
	cJSON_Delete(second);
	return text;
}

static void
assert_round_trip(const char *json, const char *expected)
{
	lua_State *L = new_state();
	char *text = round_trip_in(L, json, strlen(json));

	if (expected != NULL)
		ck_assert_str_eq(text, expected);
	free(text);
	lua_close(L);
}

/* Encoding --------------------------------------------------------------- */

START_TEST(encode_should_print_integers_without_fraction)
{
	assert_encodes_to("return {0, 1, -1, 42, 1e15, 9007199254740991, -9007199254740991}",
	    "[0,1,-1,42,1000000000000000,9007199254740991,-9007199254740991]");
	assert_encodes_to("return -0.0", "0");
}
END_TEST

START_TEST(encode_should_print_the_shortest_exact_doubles)
{
	static const double values[] = { 0.1, 1.0 / 3, -2.5, 1e300, 5e-324,
	    1.7976931348623157e308, 9007199254740992.0, 123456.789e-12, 0.3 - 0.1 };

	assert_encodes_to("return {0.1, -2.5, 1e300, 2^53, 0.5}",
	    "[0.1,-2.5,1e+300,9007199254740992,0.5]");
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		lua_State *L = new_state();
		struct buffer out;
		char err[256];

		buffer_init(&out, 0);
		lua_pushnumber(L, values[i]);
		ck_assert_int_eq(vm_json_encode(L, -1, &out, "result", MAX_DEPTH, err,
		    sizeof(err)), VM_JSON_OK);
		char *text = buffer_steal(&out, NULL);
		ck_assert_msg(strtod(text, NULL) == values[i], "%.17g printed as %s",
		    values[i], text);
		ck_assert_uint_le(strlen(text), 24);
		free(text);
		lua_close(L);
	}
}
END_TEST

START_TEST(encode_should_print_booleans_and_null)
{
	assert_encodes_to("return {true, false, json.null}", "[true,false,null]");
	assert_encodes_to("return nil", "null");
	assert_encodes_to("return json.null", "null");
	assert_encodes_to("return 'x'", "\"x\"");
}
END_TEST

START_TEST(encode_should_escape_quotes_backslashes_and_control_characters)
{
	assert_encodes_to("return 'a\"b\\\\c\\n\\r\\t\\b\\f\\1\\31\\127/'",
	    "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\x7f/\"");
	assert_encodes_to("return 'nul\\0byte'", "\"nul\\u0000byte\"");
	assert_encodes_to("return {['k\"\\n'] = 1}", "{\"k\\\"\\n\":1}");
}
END_TEST

START_TEST(encode_should_emit_non_ascii_as_raw_utf8)
{
	assert_encodes_to("return 'h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e'",
	    "\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e\"");
	assert_encodes_to("return '\xf4\x8f\xbf\xbf\xef\xbf\xbf\xc2\x80'",
	    "\"\xf4\x8f\xbf\xbf\xef\xbf\xbf\xc2\x80\"");
}
END_TEST

START_TEST(encode_should_refuse_invalid_utf8)
{
	static const char *const strings[] = {
		"\\255",		/* not a lead byte */
		"\\128",		/* a lone continuation byte */
		"\\192\\128",		/* overlong NUL */
		"\\193\\191",		/* overlong '\x7f' */
		"\\224\\128\\128",	/* overlong three-byte form */
		"\\240\\128\\128\\128",	/* overlong four-byte form */
		"\\237\\160\\128",	/* surrogate U+D800 */
		"\\237\\191\\191",	/* surrogate U+DFFF */
		"\\244\\144\\128\\128",	/* U+110000 */
		"\\245\\128\\128\\128",	/* lead byte above F4 */
		"\\226\\156",		/* truncated three-byte sequence */
		"ok\\195",		/* truncated at the end */
		"\\195(",		/* bad continuation byte */
	};
	char chunk[128];

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		snprintf(chunk, sizeof(chunk), "return {s = '%s'}", strings[i]);
		assert_encode_fails(chunk, "result.s: string is not valid UTF-8");
	}
	assert_encode_fails("return {['\\255'] = 1}", "result: table key is not valid UTF-8");
}
END_TEST

START_TEST(encode_should_treat_tables_with_keys_one_to_n_as_arrays)
{
	assert_encodes_to("return {1, 'two', {3}}", "[1,\"two\",[3]]");
	assert_encodes_to("return {[1] = 'a', [2] = 'b'}", "[\"a\",\"b\"]");
	assert_encodes_to("local t = {} for i = 5, 1, -1 do t[i] = i end return t",
	    "[1,2,3,4,5]");
	assert_encodes_to("local t = {} t[1.0] = 'x' return t", "[\"x\"]");
}
END_TEST

START_TEST(encode_should_treat_other_tables_as_objects)
{
	assert_encodes_to("return {}", "{}");
	assert_encodes_like("return {1, 2, x = 3}", "{\"1\":1,\"2\":2,\"x\":3}");
	assert_encodes_like("return {[1] = 1, [3] = 3}", "{\"1\":1,\"3\":3}");
	assert_encodes_like("return {[0] = 'z', [1] = 'a'}", "{\"0\":\"z\",\"1\":\"a\"}");
	assert_encodes_like("return {[1.5] = 'x', [-2] = 'y'}", "{\"1.5\":\"x\",\"-2\":\"y\"}");
	assert_encodes_like("return {a = {b = {}}}", "{\"a\":{\"b\":{}}}");
}
END_TEST

START_TEST(encode_should_read_number_keys_without_converting_them)
{
	lua_State *L = new_state();
	struct buffer out;
	char err[256];

	/* Converting a key in place would break lua_next ("invalid key to
	 * 'next'") or turn the keys into strings. */
	run_lua(L, "t = {name = 'x'} for i = 1, 200 do t[i * 1.5] = i end");
	lua_getglobal(L, "t");
	buffer_init(&out, 0);
	ck_assert_int_eq(vm_json_encode(L, -1, &out, "result", MAX_DEPTH, err,
	    sizeof(err)), VM_JSON_OK);
	lua_pop(L, 1);
	char *text = buffer_steal(&out, NULL);
	cJSON *tree = cJSON_Parse(text);
	ck_assert_int_eq(cJSON_GetArraySize(tree), 201);
	ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(tree, "1.5")->valuedouble, 1);
	ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(tree, "300")->valuedouble, 200);
	run_lua(L, "for k in pairs(t) do assert(k == 'name' or type(k) == 'number') end");
	cJSON_Delete(tree);
	free(text);
	lua_close(L);
}
END_TEST

START_TEST(encode_should_keep_decoded_empty_arrays_as_arrays)
{
	assert_encodes_to("return json.decode('[]')", "[]");
	assert_encodes_to("return json.decode('{}')", "{}");
	assert_encodes_to("return json.decode('[[],[[]]]')", "[[],[[]]]");
	assert_encodes_like("return json.decode('{\"a\":[],\"b\":{},\"c\":[[],{}]}')",
	    "{\"a\":[],\"b\":{},\"c\":[[],{}]}");
	/* A decoded array grown or shrunk by the script is still an array. */
	assert_encodes_to("local a = json.decode('[]') a[1] = 7 return a", "[7]");
	assert_encodes_to("local a = json.decode('[1]') a[1] = nil return a", "[]");
}
END_TEST

START_TEST(encode_should_name_the_path_of_nan)
{
	assert_encode_fails("return {items = {1, 2, 0/0}}", "result.items[3]: NaN is not JSON");
	assert_encode_fails("return 0/0", "result: NaN is not JSON");
}
END_TEST

START_TEST(encode_should_refuse_infinities)
{
	assert_encode_fails("return {x = math.huge}", "result.x: inf is not JSON");
	assert_encode_fails("return {-math.huge}", "result[1]: -inf is not JSON");
	assert_encode_fails("return {[math.huge] = 1}", "result: table key inf is not JSON");
}
END_TEST

START_TEST(encode_should_name_the_path_of_a_function)
{
	assert_encode_fails("return {f = print}", "result.f: function is not JSON");
	assert_encode_fails("return {items = {{}, {}, {name = print}}}",
	    "result.items[3].name: function is not JSON");
	assert_encode_fails("return {co = coroutine.create(print)}",
	    "result.co: thread is not JSON");
	assert_encode_fails("return {io.stdout}", "result[1]: userdata is not JSON");
}
END_TEST

START_TEST(encode_should_refuse_light_userdata_other_than_null)
{
	static int anything;
	lua_State *L = new_state();
	struct buffer out;
	char err[256];

	buffer_init(&out, 0);
	lua_pushlightuserdata(L, &anything);
	ck_assert_int_eq(vm_json_encode(L, -1, &out, "result", MAX_DEPTH, err,
	    sizeof(err)), VM_JSON_NOT_SERIALIZABLE);
	ck_assert_str_eq(err, "result: userdata is not JSON");
	buffer_free(&out);
	lua_close(L);
}
END_TEST

START_TEST(encode_should_quote_keys_that_are_not_identifiers)
{
	assert_encode_fails("return {['a b'] = {f = print}}",
	    "result[\"a b\"].f: function is not JSON");
	assert_encode_fails("return {['1x'] = {['q\"\\n'] = print}}",
	    "result[\"1x\"][\"q\\\"\\x0a\"]: function is not JSON");
	assert_encode_fails("return {x = 1, [7] = {f = print}}",
	    "result[7].f: function is not JSON");
	assert_encode_fails("return {[2.5] = print}", "result[2.5]: function is not JSON");
}
END_TEST

START_TEST(encode_should_cut_long_paths_but_keep_the_message)
{
	struct buffer out;
	char err[256] = "";

	buffer_init(&out, 0);
	ck_assert_int_eq(encode_chunk("local t = {f = print} for i = 1, 100 do "
	    "t = {['a long key number ' .. i] = t} end return t", MAX_DEPTH, &out, err,
	    sizeof(err)), VM_JSON_NOT_SERIALIZABLE);
	ck_assert_msg(strncmp(err, "result[\"a long key number 100\"]", 31) == 0, "%s", err);
	ck_assert_msg(strstr(err, "...: function is not JSON") != NULL, "%s", err);
	ck_assert_uint_lt(strlen(err), sizeof(err) - 1);
	buffer_free(&out);
}
END_TEST

START_TEST(encode_should_refuse_keys_that_are_not_strings_or_numbers)
{
	assert_encode_fails("return {[true] = 1}", "result: table key of type boolean is not JSON");
	assert_encode_fails("return {a = {[{}] = 1}}", "result.a: table key of type table is not JSON");
}
END_TEST

START_TEST(encode_should_detect_cycles)
{
	assert_encode_fails("local t = {a = {}} t.a.b = t return t", "result.a.b: cycle");
	assert_encode_fails("local t = {} t[1] = t return t", "result[1]: cycle");
	/* Sharing without a cycle is fine. */
	assert_encodes_to("local s = {1} return {s, s, {s}}", "[[1],[1],[[1]]]");
}
END_TEST

START_TEST(encode_should_refuse_nesting_deeper_than_the_limit)
{
	struct buffer out;
	char err[256] = "";

	buffer_init(&out, 0);
	ck_assert_int_eq(encode_chunk("return {{{{}}}}", 3, &out, err, sizeof(err)),
	    VM_JSON_NOT_SERIALIZABLE);
	ck_assert_str_eq(err, "result[1][1][1]: nesting deeper than 3");
	ck_assert_int_eq(encode_chunk("return {{{}}}", 3, &out, err, sizeof(err)), VM_JSON_OK);
	char *text = buffer_steal(&out, NULL);
	ck_assert_str_eq(text, "[[{}]]");
	free(text);
}
END_TEST

START_TEST(encode_should_report_too_large_output_and_restore_the_buffer)
{
	struct buffer out;
	char err[256] = "";

	buffer_init(&out, 10);
	ck_assert_int_eq(buffer_append_string(&out, "ab"), 0);
	ck_assert_int_eq(encode_chunk("return {1, 2, 3, 4, 5, 6, 7, 8, 9}", MAX_DEPTH, &out,
	    err, sizeof(err)), VM_JSON_TOO_LARGE);
	ck_assert_str_eq(err, "result: JSON text larger than 10 bytes");
	ck_assert_uint_eq(out.len, 2);
	ck_assert_int_eq(encode_chunk("return string.rep('x', 100)", MAX_DEPTH, &out,
	    err, sizeof(err)), VM_JSON_TOO_LARGE);
	ck_assert_int_eq(encode_chunk("return string.rep('\\n', 4)", MAX_DEPTH, &out,
	    err, sizeof(err)), VM_JSON_TOO_LARGE);
	ck_assert_uint_eq(out.len, 2);
	ck_assert_int_eq(encode_chunk("return {1, 2}", MAX_DEPTH, &out, err, sizeof(err)),
	    VM_JSON_OK);
	char *text = buffer_steal(&out, NULL);
	ck_assert_str_eq(text, "ab[1,2]");
	free(text);
}
END_TEST

START_TEST(encode_should_leave_the_stack_as_it_was)
{
	lua_State *L = new_state();
	struct buffer out;
	char err[256];

	buffer_init(&out, 0);
	push_chunk_result(L, "return {a = {1, 2, {b = 'c'}}}");
	lua_pushinteger(L, 5);
	ck_assert_int_eq(vm_json_encode(L, -2, &out, "result", MAX_DEPTH, err, sizeof(err)),
	    VM_JSON_OK);
	ck_assert_int_eq(lua_gettop(L), 2);
	ck_assert_int_eq(vm_json_encode(L, 2, &out, "result", MAX_DEPTH, err, sizeof(err)),
	    VM_JSON_OK);
	push_chunk_result(L, "return {a = {1, 2, {b = print}}}");
	ck_assert_int_eq(vm_json_encode(L, 3, &out, "result", MAX_DEPTH, err, sizeof(err)),
	    VM_JSON_NOT_SERIALIZABLE);
	ck_assert_str_eq(err, "result.a[3].b: function is not JSON");
	ck_assert_int_eq(lua_gettop(L), 3);
	char *text = buffer_steal(&out, NULL);
	ck_assert_str_eq(text, "{\"a\":[1,2,{\"b\":\"c\"}]}5");
	free(text);
	lua_close(L);
}
END_TEST

/* Pushing ---------------------------------------------------------------- */

START_TEST(push_should_convert_every_json_type)
{
	static const char json[] = "{\"s\":\"x\",\"n\":1.5,\"i\":-7,\"t\":true,\"f\":false,"
	    "\"z\":null,\"a\":[1,\"b\"],\"o\":{\"k\":{}},\"e\":[]}";
	lua_State *L = new_state();
	char err[256];
	cJSON *tree = json_parse(json, strlen(json), MAX_DEPTH, err, sizeof(err));

	ck_assert_ptr_nonnull(tree);
	ck_assert_int_eq(jsonpush_tree(L, tree, "context", MAX_DEPTH, err, sizeof(err)), 0);
	ck_assert_int_eq(lua_gettop(L), 1);
	lua_setglobal(L, "v");
	run_lua(L, "assert(v.s == 'x' and v.n == 1.5 and v.i == -7)\n"
	    "assert(v.t == true and v.f == false)\n"
	    "assert(v.z == json.null and type(v.z) == 'userdata')\n"
	    "assert(#v.a == 2 and v.a[1] == 1 and v.a[2] == 'b')\n"
	    "assert(type(v.o.k) == 'table' and next(v.o.k) == nil)\n"
	    "assert(#v.e == 0 and getmetatable(v.e) == getmetatable(v.a))\n"
	    "assert(getmetatable(v.o) == nil)\n");
	cJSON_Delete(tree);
	lua_close(L);
}
END_TEST

START_TEST(push_should_keep_nulls_in_arrays_and_objects)
{
	assert_round_trip("[1,null,3]", "[1,null,3]");
	assert_round_trip("{\"a\":null}", "{\"a\":null}");
	assert_round_trip("[null]", "[null]");
	assert_round_trip("null", "null");
}
END_TEST

START_TEST(push_should_name_the_path_when_too_deep)
{
	static const char json[] = "{\"a\":[1,[2]]}";
	lua_State *L = new_state();
	char err[256];
	cJSON *tree = json_parse(json, strlen(json), MAX_DEPTH, err, sizeof(err));

	lua_pushinteger(L, 1);
	ck_assert_int_eq(jsonpush_tree(L, tree, "context", 2, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "context.a[2]: nesting deeper than 2");
	ck_assert_int_eq(lua_gettop(L), 1);
	ck_assert_int_eq(jsonpush_tree(L, tree, "context", 3, err, sizeof(err)), 0);
	ck_assert_int_eq(lua_gettop(L), 2);
	cJSON_Delete(tree);
	lua_close(L);
}
END_TEST

START_TEST(push_should_refuse_trees_deeper_than_the_limit_without_parsing)
{
	lua_State *L = new_state();
	cJSON *root = cJSON_CreateArray(), *inner = root;
	char err[256];

	/* Deeper than cJSON would parse, so built by hand. */
	for (int i = 0; i < 2000; i++) {
		cJSON *next = cJSON_CreateObject();
		cJSON_AddItemToArray(inner, next);
		inner = cJSON_AddArrayToObject(next, "k");
	}
	ck_assert_int_eq(jsonpush_tree(L, root, "context", MAX_DEPTH, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, "context[1].k[1].k", 17) == 0, "%s", err);
	ck_assert_msg(strstr(err, "...: nesting deeper than 256") != NULL, "%s", err);
	ck_assert_int_eq(lua_gettop(L), 0);
	cJSON_Delete(root);
	lua_close(L);
}
END_TEST

START_TEST(push_should_push_a_missing_item_as_null)
{
	lua_State *L = new_state();
	char err[256];

	ck_assert_int_eq(jsonpush_tree(L, NULL, "context", MAX_DEPTH, err, sizeof(err)), 0);
	ck_assert_int_eq(lua_type(L, -1), LUA_TLIGHTUSERDATA);
	ck_assert_ptr_null(lua_touserdata(L, -1));
	lua_close(L);
}
END_TEST

/* Round trips ------------------------------------------------------------ */

START_TEST(round_trip_should_preserve_every_type)
{
	assert_round_trip("{\"s\":\"x\",\"n\":1.5,\"t\":true,\"f\":false,\"z\":null,"
	    "\"a\":[1,\"b\",[true]],\"o\":{\"k\":{\"j\":-0.25}}}", NULL);
	assert_round_trip("\"just a string\"", "\"just a string\"");
	assert_round_trip("-12.5e-3", "-0.0125");
	assert_round_trip("true", "true");
	assert_round_trip(" [ 1 , 2 ] ", "[1,2]");
}
END_TEST

START_TEST(round_trip_should_preserve_two_to_the_53_minus_one)
{
	assert_round_trip("[9007199254740991,-9007199254740991]",
	    "[9007199254740991,-9007199254740991]");
	assert_round_trip("[0.1,1e-7,123456789.125]", "[0.1,1e-07,123456789.125]");
}
END_TEST

START_TEST(round_trip_should_preserve_empty_arrays_and_objects)
{
	assert_round_trip("{\"a\":[],\"b\":{},\"c\":[[],{}]}", NULL);
	assert_round_trip("[]", "[]");
	assert_round_trip("{}", "{}");
	assert_round_trip("[[[]]]", "[[[]]]");
}
END_TEST

START_TEST(round_trip_should_preserve_non_ascii_and_escapes)
{
	assert_round_trip("[\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e\"]",
	    "[\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e\"]");
	assert_round_trip("[\"\\u00e9\\u2713\\ud834\\udd1e\"]",
	    "[\"\xc3\xa9\xe2\x9c\x93\xf0\x9d\x84\x9e\"]");
	assert_round_trip("[\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u001F\"]",
	    "[\"a\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\"]");
	assert_round_trip("{\"k\\u00e9 y\":\"\\\"\"}", "{\"k\xc3\xa9 y\":\"\\\"\"}");
}
END_TEST

START_TEST(round_trip_should_handle_a_million_elements)
{
	struct buffer in;
	lua_State *L = new_state();

	/* One check at the end: each Check assertion costs a write. */
	int failed = 0;
	buffer_init(&in, 0);
	failed |= buffer_append_char(&in, '[');
	for (int i = 0; i < 1000000; i++)
		failed |= buffer_printf(&in, i ? ",%d" : "%d", i - 500000);
	failed |= buffer_append_char(&in, ']');
	ck_assert_int_eq(failed, 0);
	size_t len = 0;
	char *json = buffer_steal(&in, &len);
	ck_assert_ptr_nonnull(json);
	char *text = round_trip_in(L, json, len);
	ck_assert_uint_eq(strlen(text), len);
	ck_assert(memcmp(text, json, len) == 0);
	free(text);
	free(json);
	lua_close(L);
}
END_TEST

START_TEST(round_trip_should_survive_random_documents)
{
	/* Unique keys: cJSON_Compare cannot compare objects that repeat one. */
	struct jsongen g = { 0x9e3779b97f4a7c15ULL, NULL, 1 };
	struct buffer in;
	lua_State *L = new_state();

	buffer_init(&in, 0);
	g.out = &in;
	for (int i = 0; i < 3000; i++) {
		jsongen_document(&g);
		free(round_trip_in(L, in.data, in.len));
	}
	buffer_free(&in);
	lua_close(L);
}
END_TEST

/* Parsing ---------------------------------------------------------------- */

START_TEST(parse_should_refuse_deep_nesting_before_cjson_sees_it)
{
	static const size_t levels = 100000;
	char *text = malloc(2 * levels);
	char err[256];

	ck_assert_ptr_nonnull(text);
	memset(text, '[', levels);
	memset(text + levels, ']', levels);
	ck_assert_ptr_null(json_parse(text, levels, MAX_DEPTH, err, sizeof(err)));
	ck_assert_str_eq(err, "JSON nested deeper than 256 levels");
	ck_assert_ptr_null(json_parse(text, 2 * levels, MAX_DEPTH, err, sizeof(err)));
	ck_assert_str_eq(err, "JSON nested deeper than 256 levels");
	free(text);
}
END_TEST

START_TEST(parse_should_accept_nesting_up_to_the_limit)
{
	char text[2 * 257];
	char err[256];

	memset(text, '[', 257);
	memset(text + 257, ']', 257);
	cJSON *tree = json_parse(text + 1, 2 * 256, MAX_DEPTH, err, sizeof(err));
	ck_assert_msg(tree != NULL, "%s", err);
	cJSON_Delete(tree);
	ck_assert_ptr_null(json_parse(text, sizeof(text), MAX_DEPTH, err, sizeof(err)));
	ck_assert_str_eq(err, "JSON nested deeper than 256 levels");
}
END_TEST

START_TEST(nesting_depth_should_skip_strings_and_escapes)
{
	static const char text[] = "[\"[[\\\"[\", {\"a\":\"\\\\\"}, \"]]]\", [\"{\"]]";

	ck_assert_uint_eq(json_nesting_depth(text, strlen(text), 100), 2);
	ck_assert_uint_eq(json_nesting_depth("[[[[[", 5, 2), 3);
	ck_assert_uint_eq(json_nesting_depth("]]][", 4, 10), 1);
	ck_assert_uint_eq(json_nesting_depth("\"[[[", 4, 10), 0);
	ck_assert_uint_eq(json_nesting_depth("", 0, 10), 0);
}
END_TEST

START_TEST(parse_should_report_line_and_column)
{
	static const char text[] = "{\n  \"a\": tru\n}";
	char err[256];

	ck_assert_ptr_null(json_parse(text, strlen(text), MAX_DEPTH, err, sizeof(err)));
	ck_assert_str_eq(err, "invalid JSON at line 2, column 8");
	ck_assert_ptr_null(json_parse("[1,]", 4, MAX_DEPTH, err, sizeof(err)));
	ck_assert_str_eq(err, "invalid JSON at line 1, column 4");
	ck_assert_ptr_null(json_parse("", 0, MAX_DEPTH, err, sizeof(err)));
	ck_assert_str_eq(err, "invalid JSON at line 1, column 1");
	ck_assert_ptr_null(json_parse(NULL, 0, MAX_DEPTH, err, sizeof(err)));
	ck_assert_str_eq(err, "invalid JSON at line 1, column 1");
}
END_TEST

START_TEST(parse_should_refuse_trailing_garbage)
{
	char err[256];

	ck_assert_ptr_null(json_parse("[1] x", 5, MAX_DEPTH, err, sizeof(err)));
	ck_assert_str_eq(err, "invalid JSON at line 1, column 5");
	ck_assert_ptr_null(json_parse("[1]]", 4, MAX_DEPTH, err, sizeof(err)));
	ck_assert_str_eq(err, "invalid JSON at line 1, column 4");
	ck_assert_ptr_null(json_parse("{}\n\x01", 4, MAX_DEPTH, err, sizeof(err)));
	ck_assert_str_eq(err, "invalid JSON at line 2, column 1");
	ck_assert_ptr_null(json_parse("1 2", 3, MAX_DEPTH, err, sizeof(err)));
	ck_assert_str_eq(err, "invalid JSON at line 1, column 3");
}
END_TEST

START_TEST(parse_should_allow_trailing_whitespace)
{
	char err[256];
	cJSON *tree = json_parse("[1] \n\t\r ", 8, MAX_DEPTH, err, sizeof(err));

	ck_assert_msg(tree != NULL, "%s", err);
	ck_assert(cJSON_IsArray(tree));
	cJSON_Delete(tree);
}
END_TEST

START_TEST(parse_should_respect_the_length)
{
	static const char json[] = "{\"a\":[1,2]}";
	char err[256];
	/* Exactly the bytes, with no NUL after them: ASan checks the reads. */
	char *text = malloc(sizeof(json) - 1);

	memcpy(text, json, sizeof(json) - 1);
	cJSON *tree = json_parse(text, sizeof(json) - 1, MAX_DEPTH, err, sizeof(err));
	ck_assert_msg(tree != NULL, "%s", err);
	cJSON_Delete(tree);
	ck_assert_ptr_null(json_parse(text, sizeof(json) - 2, MAX_DEPTH, err, sizeof(err)));
	free(text);

	tree = json_parse("[1]]]", 3, MAX_DEPTH, err, sizeof(err));
	ck_assert_ptr_nonnull(tree);
	cJSON_Delete(tree);
	tree = json_parse("12345", 2, MAX_DEPTH, err, sizeof(err));
	ck_assert_ptr_nonnull(tree);
	ck_assert_double_eq(tree->valuedouble, 12);
	cJSON_Delete(tree);
	ck_assert_ptr_null(json_parse("\"abc\"", 4, MAX_DEPTH, err, sizeof(err)));
	ck_assert_ptr_null(json_parse("true", 3, MAX_DEPTH, err, sizeof(err)));
}
END_TEST

/* The json table --------------------------------------------------------- */

START_TEST(json_helpers_should_encode_and_decode_from_lua)
{
	lua_State *L = new_state();

	run_lua(L, "local v = json.decode('{\"a\":[],\"b\":[1,null,3],\"c\":\"\\\\u00e9\"}')\n"
	    "assert(#v.a == 0 and v.b[2] == json.null and v.c == '\\195\\169')\n"
	    "assert(json.decode(json.encode(v)).b[3] == 3)\n"
	    "assert(json.encode(v.a) == '[]')\n"
	    "assert(json.encode({1, 2, 3}) == '[1,2,3]')\n"
	    "assert(json.encode({x = {y = 'z'}}) == '{\"x\":{\"y\":\"z\"}}')\n"
	    "assert(json.encode('a\"b') == '\"a\\\\\"b\"')\n"
	    "assert(json.encode(nil) == 'null' and json.encode(json.null) == 'null')\n"
	    "assert(json.decode('null') == json.null)\n"
	    "assert(json.decode(' 12.5 ') == 12.5)\n"
	    "assert(json.decode('\"x\"') == 'x')\n");
	lua_close(L);
}
END_TEST

START_TEST(json_helpers_should_raise_errors_with_paths)
{
	lua_State *L = new_state();

	run_lua(L, "local ok, e = pcall(json.encode, {f = print})\n"
	    "assert(not ok and e:find('value.f: function is not JSON', 1, true), e)\n"
	    "ok, e = pcall(json.encode, {items = {1, 0/0}})\n"
	    "assert(not ok and e:find('value.items[2]: NaN is not JSON', 1, true), e)\n"
	    "local t = {} t.self = t\n"
	    "ok, e = pcall(json.encode, t)\n"
	    "assert(not ok and e:find('value.self: cycle', 1, true), e)\n"
	    "ok, e = pcall(json.decode, '[1,')\n"
	    "assert(not ok and e:find('invalid JSON at line 1, column 3', 1, true), e)\n"
	    "ok, e = pcall(json.decode, '[1] 2')\n"
	    "assert(not ok and e:find('invalid JSON at line 1, column 5', 1, true), e)\n"
	    "ok, e = pcall(json.decode, {})\n"
	    "assert(not ok)\n"
	    "ok, e = pcall(json.encode)\n"
	    "assert(not ok)\n");
	lua_close(L);
}
END_TEST

START_TEST(json_helpers_should_apply_the_max_depth_of_open)
{
	lua_State *L = new_state_with_depth(2);

	run_lua(L, "local ok, e = pcall(json.decode, '[[[1]]]')\n"
	    "assert(not ok and e:find('JSON nested deeper than 2 levels', 1, true), e)\n"
	    "assert(json.decode('[[1]]')[1][1] == 1)\n"
	    "ok, e = pcall(json.encode, {{{1}}})\n"
	    "assert(not ok and e:find('value[1][1]: nesting deeper than 2', 1, true), e)\n"
	    "assert(json.encode({{1}}) == '[[1]]')\n");
	lua_close(L);
}
END_TEST

START_TEST(array_marker_should_be_shared_and_locked)
{
	lua_State *L = new_state();

	run_lua(L, "local a, b = json.decode('[]'), json.decode('[[1]]')\n"
	    "assert(getmetatable(a) == 'json array' and getmetatable(b[1]) == 'json array')\n"
	    "assert(not pcall(setmetatable, a, {}))\n"
	    "assert(getmetatable(json.decode('{}')) == nil)\n");
	lua_close(L);
}
END_TEST

static Suite *
codec_suite(void)
{
	Suite *suite = suite_create("codec");
	TCase *encode = tcase_create("encode");
	TCase *push = tcase_create("push");
	TCase *round_trip = tcase_create("round_trip");
	TCase *volume = tcase_create("volume");
	TCase *parse = tcase_create("parse");
	TCase *helpers = tcase_create("helpers");

	tcase_add_test(encode, encode_should_print_integers_without_fraction);
	tcase_add_test(encode, encode_should_print_the_shortest_exact_doubles);
	tcase_add_test(encode, encode_should_print_booleans_and_null);
	tcase_add_test(encode, encode_should_escape_quotes_backslashes_and_control_characters);
	tcase_add_test(encode, encode_should_emit_non_ascii_as_raw_utf8);
	tcase_add_test(encode, encode_should_refuse_invalid_utf8);
	tcase_add_test(encode, encode_should_treat_tables_with_keys_one_to_n_as_arrays);
	tcase_add_test(encode, encode_should_treat_other_tables_as_objects);
	tcase_add_test(encode, encode_should_read_number_keys_without_converting_them);
	tcase_add_test(encode, encode_should_keep_decoded_empty_arrays_as_arrays);
	tcase_add_test(encode, encode_should_name_the_path_of_nan);
	tcase_add_test(encode, encode_should_refuse_infinities);
	tcase_add_test(encode, encode_should_name_the_path_of_a_function);
	tcase_add_test(encode, encode_should_refuse_light_userdata_other_than_null);
	tcase_add_test(encode, encode_should_quote_keys_that_are_not_identifiers);
	tcase_add_test(encode, encode_should_cut_long_paths_but_keep_the_message);
	tcase_add_test(encode, encode_should_refuse_keys_that_are_not_strings_or_numbers);
	tcase_add_test(encode, encode_should_detect_cycles);
	tcase_add_test(encode, encode_should_refuse_nesting_deeper_than_the_limit);
	tcase_add_test(encode, encode_should_report_too_large_output_and_restore_the_buffer);
	tcase_add_test(encode, encode_should_leave_the_stack_as_it_was);
	suite_add_tcase(suite, encode);

	tcase_add_test(push, push_should_convert_every_json_type);
	tcase_add_test(push, push_should_keep_nulls_in_arrays_and_objects);
	tcase_add_test(push, push_should_name_the_path_when_too_deep);
	tcase_add_test(push, push_should_refuse_trees_deeper_than_the_limit_without_parsing);
	tcase_add_test(push, push_should_push_a_missing_item_as_null);
	suite_add_tcase(suite, push);

	tcase_add_test(round_trip, round_trip_should_preserve_every_type);
	tcase_add_test(round_trip, round_trip_should_preserve_two_to_the_53_minus_one);
	tcase_add_test(round_trip, round_trip_should_preserve_empty_arrays_and_objects);
	tcase_add_test(round_trip, round_trip_should_preserve_non_ascii_and_escapes);
	suite_add_tcase(suite, round_trip);

	tcase_add_test(volume, round_trip_should_handle_a_million_elements);
	tcase_add_test(volume, round_trip_should_survive_random_documents);
	tcase_set_timeout(volume, 30);
	suite_add_tcase(suite, volume);

	tcase_add_test(parse, parse_should_refuse_deep_nesting_before_cjson_sees_it);
	tcase_add_test(parse, parse_should_accept_nesting_up_to_the_limit);
	tcase_add_test(parse, nesting_depth_should_skip_strings_and_escapes);
	tcase_add_test(parse, parse_should_report_line_and_column);
	tcase_add_test(parse, parse_should_refuse_trailing_garbage);
	tcase_add_test(parse, parse_should_allow_trailing_whitespace);
	tcase_add_test(parse, parse_should_respect_the_length);
	suite_add_tcase(suite, parse);

	tcase_add_test(helpers, json_helpers_should_encode_and_decode_from_lua);
	tcase_add_test(helpers, json_helpers_should_raise_errors_with_paths);
	tcase_add_test(helpers, json_helpers_should_apply_the_max_depth_of_open);
	tcase_add_test(helpers, array_marker_should_be_shared_and_locked);
	suite_add_tcase(suite, helpers);
	return suite;
}

int
main(void)
{
	SRunner *runner = srunner_create(codec_suite());

	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
