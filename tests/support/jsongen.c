/*
 * jsongen.c - random JSON text for the codec tests (see jsongen.h).
 */
#include <stdio.h>
#include <string.h>

#include "support/jsongen.h"

#define COUNT(a)	(sizeof(a) / sizeof((a)[0]))

uint32_t
jsongen_next(struct jsongen *g)
{
	g->state ^= g->state << 13;
	g->state ^= g->state >> 7;
	g->state ^= g->state << 17;
	return (uint32_t)(g->state >> 32);
}

unsigned
jsongen_below(struct jsongen *g, unsigned n)
{
	return jsongen_next(g) % n;
}

void
jsongen_space(struct jsongen *g)
{
	static const char *const spaces[] = { "", "", "", "", " ", "\n", "\t ", "\r\n  " };

	buffer_append_string(g->out, spaces[jsongen_below(g, COUNT(spaces))]);
}

/* Keys never get \u0000: the tree path would cut them, and two keys cut
 * alike would make the tables incomparable. */
void
jsongen_string_body(struct jsongen *g, int key)
{
	static const char *const pieces[] = {
		"a", "Z", "key", " ", "0", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n",
		"\\r", "\\t", "\\u0001", "\\u001f", "\\u00e9", "\\u00E9", "\\u20AC",
		"\\ud834\\udd1e", "\\uD83D\\uDE00", "\\udbff\\udfff", "\\u0000", "\\uffff",
		"\xc3\xa9", "\xe2\x9c\x93", "\xf0\x9d\x84\x9e", "\xe6\x97\xa5\xe6\x9c\xac",
		"\xf4\x8f\xbf\xbf", "\xef\xbf\xbf", "\xc2\x80", "\x7f", "[", "]", "{", "}",
		":", ",", "a longer run of plain ASCII text, ", "0123456789abcdef",
	};
	unsigned count = jsongen_below(g, 9);

	for (unsigned i = 0; i < count; i++) {
		const char *piece = pieces[jsongen_below(g, COUNT(pieces))];
		buffer_append_string(g->out, key && strcmp(piece, "\\u0000") == 0 ?
		    "\\u0030" : piece);
	}
}

static void
write_digits(struct jsongen *g, unsigned count, int first_nonzero)
{
	for (unsigned i = 0; i < count; i++) {
		unsigned digit = first_nonzero && i == 0 ? 1 + jsongen_below(g, 9) :
		    jsongen_below(g, 10);
		buffer_append_char(g->out, (char)('0' + digit));
	}
}

void
jsongen_number(struct jsongen *g)
{
	static const char *const specials[] = {
		"0", "-0", "0.0", "-0.0", "0e0", "9007199254740991", "-9007199254740991",
		"9007199254740992", "9007199254740993", "18446744073709551615",
		"18446744073709551616", "1.7976931348623157e308", "4.9e-324", "5e-324",
		"2.2250738585072014e-308", "2.2250738585072011e-308", "1e-400", "0.1",
		"0.30000000000000004", "1e22", "1e23", "123456789012345678e-5",
		"100000000000000000000000", "0.000000000000000000000000001", "1E+2",
		"1e-0", "-1.5E-7", "3.14159265358979323846264338327950288",
		"1234567890123456789012345678901234567890123456789012345678901234567890",
	};

	if (jsongen_below(g, 8) == 0) {
		buffer_append_string(g->out, specials[jsongen_below(g, COUNT(specials))]);
		return;
	}
	if (jsongen_below(g, 3) == 0)
		buffer_append_char(g->out, '-');
	if (jsongen_below(g, 6) == 0)
		buffer_append_char(g->out, '0');
	else
		write_digits(g, 1 + jsongen_below(g, 20), 1);
	if (jsongen_below(g, 2)) {
		/* Now and then longer than the 64 bytes copied on the C stack. */
		buffer_append_char(g->out, '.');
		write_digits(g, 1 + jsongen_below(g, jsongen_below(g, 10) ? 20 : 90), 0);
	}
	if (jsongen_below(g, 3) == 0) {
		static const char *const marks[] = { "e", "E", "e+", "e-", "E-", "E+" };
		buffer_append_string(g->out, marks[jsongen_below(g, COUNT(marks))]);
		/* At most 20 + 280 digits: no overflow. */
		buffer_printf(g->out, "%u", jsongen_below(g, 2) ? jsongen_below(g, 30) :
		    jsongen_below(g, 281));
	}
}

static void write_value(struct jsongen *g, unsigned depth);

void
jsongen_container(struct jsongen *g, unsigned depth, int object)
{
	unsigned count = jsongen_below(g, 7);

	buffer_append_char(g->out, object ? '{' : '[');
	jsongen_space(g);
	for (unsigned i = 0; i < count; i++) {
		if (i > 0) {
			buffer_append_char(g->out, ',');
			jsongen_space(g);
		}
		if (object) {
			/* Now and then a key again: the last one must win.  The
			 * index and a separator keep the others apart. */
			if (!g->unique_keys && jsongen_below(g, 6) == 0) {
				buffer_append_string(g->out, "\"again\":");
			} else {
				buffer_printf(g->out, "\"k%u|", i);
				jsongen_string_body(g, 1);
				buffer_append_string(g->out, "\":");
			}
			jsongen_space(g);
		}
		write_value(g, depth + 1);
		jsongen_space(g);
	}
	buffer_append_char(g->out, object ? '}' : ']');
}

static void
write_value(struct jsongen *g, unsigned depth)
{
	unsigned kind = jsongen_below(g, depth < 7 ? 9 : 7);

	switch (kind) {
	case 0:
		buffer_append_string(g->out, "null");
		break;
	case 1:
		buffer_append_string(g->out, jsongen_below(g, 2) ? "true" : "false");
		break;
	case 2:
	case 3:
		jsongen_number(g);
		break;
	case 4:
	case 5:
	case 6:
		buffer_append_char(g->out, '"');
		jsongen_string_body(g, 0);
		buffer_append_char(g->out, '"');
		break;
	default:
		jsongen_container(g, depth, kind == 7);
		break;
	}
}

/* A document: usually a container, sometimes a scalar, sometimes wrapped
 * in enough containers to pass DIFFERENTIAL_DEPTH. */
void
jsongen_document(struct jsongen *g)
{
	unsigned wrap = jsongen_below(g, 10) == 0 ? 6 + jsongen_below(g, 10) : 0;

	buffer_reset(g->out);
	jsongen_space(g);
	for (unsigned i = 0; i < wrap; i++)
		buffer_append_string(g->out, i % 2 ? "{\"w\":" : "[");
	if (jsongen_below(g, 8) == 0)
		write_value(g, 7);
	else
		jsongen_container(g, 0, jsongen_below(g, 2));
	for (unsigned i = wrap; i > 0; i--)
		buffer_append_string(g->out, (i - 1) % 2 ? "}" : "]");
	jsongen_space(g);
}

/* Bytes a mutation writes: the ones the grammar turns on, and some it
 * must refuse. */
static const char mutation_bytes[] = "\"\\/[]{},:-+.0123456789eEtfnulrsabu \t\n\r\x00\x01\x1f"
    "\x7f\x80\xbf\xc0\xc3\xe2\xed\xf0\xf4\xf5\xff";

static char
mutation_byte(struct jsongen *g)
{
	if (jsongen_below(g, 4) == 0)
		return (char)jsongen_below(g, 256);
	return mutation_bytes[jsongen_below(g, sizeof(mutation_bytes) - 1)];
}

/* Changes the text of `in` in one to three random places into `out`. */
void
jsongen_mutate(struct jsongen *g, const struct buffer *in, struct buffer *out)
{
	unsigned changes = 1 + jsongen_below(g, 3);

	buffer_reset(out);
	buffer_append(out, in->data, in->len);
	for (unsigned i = 0; i < changes && out->len > 0; i++) {
		size_t at = jsongen_below(g, (unsigned)out->len);
		switch (jsongen_below(g, 5)) {
		case 0:		/* replace a byte */
			out->data[at] = mutation_byte(g);
			break;
		case 1:		/* insert a byte */
			buffer_append_char(out, 0);
			memmove(out->data + at + 1, out->data + at, out->len - at - 1);
			out->data[at] = mutation_byte(g);
			break;
		case 2:		/* delete a byte */
			memmove(out->data + at, out->data + at + 1, out->len - at - 1);
			out->len--;
			break;
		case 3:		/* cut the end */
			out->len = at;
			break;
		default: {	/* repeat a piece */
			size_t n = 1 + jsongen_below(g, 8);
			if (n > out->len - at)
				n = out->len - at;
			char piece[8];
			memcpy(piece, out->data + at, n);
			buffer_append(out, piece, n);
			break;
		}
		}
	}
}
