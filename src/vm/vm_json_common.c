/*
 * vm_json_common.c - the pieces both JSON codecs of the worker use: the
 * array marker in the registry, the UTF-8 check, and numbers as JSON text.
 *
 * Both the encoder and the decoder depend on this file, so it must never
 * call either of them; it allocates nothing but the marker table and runs
 * no script code.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <lua.h>

#include "vm/vm_json_common.h"

/* Registry key: only its address matters. */
static char array_marker_key;


/* The array marker ----------------------------------------------------- */

/* The shared metatable of decoded arrays.  Its __metatable field hides and
 * locks it, so that no script can change how another script's arrays
 * behave in this long-lived state. */
void
vm_json_common_create_array_marker(lua_State *L)
{
	lua_pushlightuserdata(L, &array_marker_key);
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "json array");
	lua_setfield(L, -2, "__metatable");
	lua_rawset(L, LUA_REGISTRYINDEX);
}

void
vm_json_common_push_array_marker(lua_State *L)
{
	lua_pushlightuserdata(L, &array_marker_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
}

/* Numbers ---------------------------------------------------------------- */

static size_t
format_integer(long long value, char *out)
{
	char digits[24];
	size_t count = 0, len = 0;
	unsigned long long rest = value < 0 ? 0ULL - (unsigned long long)value :
	    (unsigned long long)value;

	do {
		digits[count++] = (char)('0' + rest % 10);
		rest /= 10;
	} while (rest != 0);
	if (value < 0)
		out[len++] = '-';
	while (count > 0)
		out[len++] = digits[--count];
	out[len] = '\0';
	return len;
}

/* The search starts at 15 digits: when 14 suffice, %.15g prints the same
 * text (a double is too precise for the 15th digit of that number to be
 * anything but 0). */
size_t
vm_json_common_format_number(double x, char *out)
{
	if (!isfinite(x))
		return 0;
	if (fabs(x) < 9007199254740992.0 && x == (double)(long long)x)
		return format_integer((long long)x, out);
	for (int digits = 15; digits < 17; digits++) {
		int len = snprintf(out, VM_JSON_NUMBER_TEXT_SIZE, "%.*g", digits, x);
		if (strtod(out, NULL) == x)
			return (size_t)len;
	}
	return (size_t)snprintf(out, VM_JSON_NUMBER_TEXT_SIZE, "%.17g", x);
}
