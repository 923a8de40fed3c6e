/*
 * json.c - parsing request bodies with cJSON, bounded and with errors a
 * client can act on.  cJSON recurses once per nesting level, so this file
 * must never hand it a text deeper than the configured limit: the depth is
 * measured first, by a scan that cannot recurse.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "support/json.h"

/* Returns the offset just past the string whose opening quote precedes
 * `at`, or len when the string is not closed. */
static size_t
skip_string(const char *text, size_t len, size_t at)
{
	while (at < len) {
		char c = text[at++];
		if (c == '\\')
			at++;
		else if (c == '"')
			return at;
	}
	return len;
}

unsigned
json_nesting_depth(const char *text, size_t len, unsigned limit)
{
	unsigned depth = 0, deepest = 0;
	size_t at = 0;

	while (at < len) {
		char c = text[at++];
		if (c == '"') {
			at = skip_string(text, len, at);
		} else if (c == '[' || c == '{') {
			if (++depth > deepest)
				deepest = depth;
			if (deepest > limit)
				return deepest;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return deepest;
}

/* Only the four whitespace characters of RFC 8259 (cJSON also skips other
 * control characters). */
static size_t
skip_whitespace(const char *text, size_t len, size_t at)
{
	while (at < len && (text[at] == ' ' || text[at] == '\t' ||
	    text[at] == '\n' || text[at] == '\r'))
		at++;
	return at;
}

/* Line and column are 1-based; the column counts bytes, not characters. */
static void
report_position(const char *text, size_t offset, char *err, size_t errlen)
{
	unsigned long line = 1;
	size_t line_start = 0;

	for (size_t i = 0; i < offset; i++) {
		if (text[i] == '\n') {
			line++;
			line_start = i + 1;
		}
	}
	snprintf(err, errlen, "invalid JSON at line %lu, column %zu", line,
	    offset - line_start + 1);
}

/* Where cJSON stopped, as an offset into text.  The end pointer is used
 * rather than cJSON_GetErrorPtr, which is a global shared by threads. */
static size_t
offset_of(const char *text, size_t len, const char *end)
{
	if (text == NULL || end == NULL || end < text)
		return 0;
	if ((size_t)(end - text) > len)
		return len;
	return (size_t)(end - text);
}

cJSON *
json_parse(const char *text, size_t len, unsigned max_depth, char *err, size_t errlen)
{
	const char *end = NULL;
	cJSON *root = NULL;

	if (json_nesting_depth(text, len, max_depth) > max_depth) {
		snprintf(err, errlen, "JSON nested deeper than %u levels", max_depth);
		return NULL;
	}
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (root == NULL) {
		report_position(text, offset_of(text, len, end), err, errlen);
		goto fail;
	}
	size_t rest = skip_whitespace(text, len, offset_of(text, len, end));
	if (rest < len) {
		report_position(text, rest, err, errlen);
		goto fail;
	}
	return root;

fail:
	cJSON_Delete(root);
	return NULL;
}
