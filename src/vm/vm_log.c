/*
 * vm_log.c - what a job prints: print(...) and log.debug/info/warn/error(...)
 * append {"level", "text"} entries to the job's log, JSON array text kept
 * in C memory and bounded by max_log_bytes.  The entry that would pass the
 * bound is cut (before a character), one marker entry follows, and later
 * output is dropped.  The answer carries the array (vm.c, worker.c).
 *
 * Everything a job writes here reaches its client: arguments go through
 * the sandbox's address-free tostring, and bytes that start no valid UTF-8
 * character become U+FFFD, so the array is always valid JSON.  This file
 * must never let the log pass its bound (but for the marker), nor keep an
 * entry past the job, nor leave half an entry behind when a tostring fails.
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "vm/vm_internal.h"
#include "vm/vm_json_common.h"
#include "vm/vm_log.h"

static const char *const levels[] = { "debug", "info", "warn", "error" };
#define PRINT_LEVEL 1	/* print is log.info */

/* The worst case of one input byte as JSON string text: \u00XX. */
#define ESCAPE_MAX 6

/*
 * Writes the escape of the ASCII character c into out (ESCAPE_MAX bytes)
 * and returns its length: quotes, backslashes and control characters are
 * escaped, anything else is copied.
 */
static size_t
escape_ascii(unsigned char c, char *out)
{
	static const char short_forms[] = "\"\"\\\\\bb\ff\nn\rr\tt";
	for (const char *form = short_forms; *form != '\0'; form += 2) {
		if ((unsigned char)form[0] == c) {
			out[0] = '\\';
			out[1] = form[1];
			return 2;
		}
	}
	if (c >= 0x20) {
		out[0] = (char)c;
		return 1;
	}
	memcpy(out, "\\u00", 4);
	out[4] = text_hex_digits[c >> 4];
	out[5] = text_hex_digits[c & 15];
	return 6;
}

/*
 * Appends s as JSON string content (no quotes) while b stays at most
 * max_len bytes long: 0 when all of it fit, 1 when it was cut before the
 * first character that did not, -1 when out of memory.
 */
static int
append_text(struct buffer *b, const char *s, size_t len, size_t max_len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t room = max_len > b->len ? max_len - b->len : 0;
	if (buffer_reserve(b, len <= room / ESCAPE_MAX ? len * ESCAPE_MAX : room) == -1)
		return -1;
	size_t i = 0;
	while (i < len) {
		char piece[ESCAPE_MAX];
		const char *from = piece;
		size_t n, used;
		if (p[i] < 0x80) {
			n = escape_ascii(p[i], piece);
			used = 1;
		} else if ((n = text_utf8_length(p + i, len - i)) != 0) {
			from = s + i;
			used = n;
		} else {
			from = "\xEF\xBF\xBD";	/* U+FFFD for a byte that starts nothing */
			n = 3;
			used = 1;
		}
		if (b->len + n > max_len)
			return 1;
		memcpy(b->data + b->len, from, n);
		b->len += n;
		i += used;
	}
	return 0;
}

/* The one entry that says the log is full; beyond the bound on purpose. */
static void
add_marker(struct vm *vm)
{
	vm->log_truncated = 1;
	buffer_printf(&vm->log, "%s{\"level\":\"warn\",\"text\":\"log truncated: "
	    "max_log_bytes (%zu) reached; later output dropped\",\"truncated\":true}",
	    vm->log.len ? "," : "", vm->limits.max_log_bytes);
}

/*
 * One entry of the level at upvalue 2 from the arguments, each formatted
 * with the tostring at upvalue 1 and separated by tabs.  Every tostring
 * runs before the first byte is written: one that raises leaves the log
 * as it was.
 */
static int
capture(lua_State *L)
{
	struct vm *vm = vm_of(L);
	if (vm->limits.max_log_bytes == 0 || vm->log_truncated)
		return 0;
	int n = lua_gettop(L);
	luaL_checkstack(L, 2, "too many arguments to print");
	for (int i = 1; i <= n; i++) {
		lua_pushvalue(L, lua_upvalueindex(1));
		lua_pushvalue(L, i);
		lua_call(L, 1, 1);
		if (!lua_isstring(L, -1))
			return luaL_error(L, "'tostring' must return a string to 'print'");
		lua_replace(L, i);
	}
	struct buffer *log = &vm->log;
	size_t start = log->len;
	/* The array is "[" entries "]": entries may take all but two bytes,
	 * and an entry's text must leave room for its closing "\"}". */
	size_t max_len = vm->limits.max_log_bytes > 2 ? vm->limits.max_log_bytes - 2 : 0;
	size_t text_max = max_len > 2 ? max_len - 2 : 0;
	const char *level = levels[lua_tointeger(L, lua_upvalueindex(2))];
	int cut = buffer_printf(log, "%s{\"level\":\"%s\",\"text\":\"", start ? "," : "",
	    level) == -1 ? -1 : log->len > text_max;
	size_t text_start = log->len;
	for (int i = 1; i <= n && cut == 0; i++) {
		size_t len;
		const char *text = lua_tolstring(L, i, &len);
		if (i > 1)
			cut = append_text(log, "\t", 1, text_max);
		if (cut == 0)
			cut = append_text(log, text, len, text_max);
	}
	/* A cut entry keeps the text that fit, if any. */
	if (cut == -1 || (cut == 1 && log->len <= text_start) ||
	    buffer_append(log, "\"}", 2) == -1)
		log->len = start;
	if (cut != 0)
		add_marker(vm);
	return 0;
}

void
vm_log_push_functions(lua_State *L, int tostring_index)
{
	if (tostring_index < 0)
		tostring_index = lua_gettop(L) + tostring_index + 1;
	lua_pushvalue(L, tostring_index);
	lua_pushinteger(L, PRINT_LEVEL);
	lua_pushcclosure(L, capture, 2);
	lua_createtable(L, 0, 4);
	for (int i = 0; i < 4; i++) {
		lua_pushvalue(L, tostring_index);
		lua_pushinteger(L, i);
		lua_pushcclosure(L, capture, 2);
		lua_setfield(L, -2, levels[i]);
	}
}

int
vm_log_has_entries(const struct vm *vm)
{
	return vm->log.len > 0;
}

int
vm_log_append_array(const struct vm *vm, struct buffer *out)
{
	if (buffer_append_char(out, '[') == -1 ||
	    buffer_append(out, vm->log.data, vm->log.len) == -1 ||
	    buffer_append_char(out, ']') == -1)
		return -1;
	return 0;
}

void
vm_log_clear(struct vm *vm)
{
	buffer_reset(&vm->log);
	vm->log_truncated = 0;
}
