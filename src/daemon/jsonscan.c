/*
 * jsonscan.c - see jsonscan.h.  Skips values by their brackets and
 * strings only; anything it does not understand makes it say "unsure",
 * and the worker, which parses the whole request, has the last word.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/jsonscan.h"

static const char *
skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p is just past an opening quote; returns just past the closing one. */
static const char *
skip_string(const char *p, const char *end)
{
	for (;;) {
		const char *q = memchr(p, '"', (size_t)(end - p));
		if (q == NULL)
			return NULL;
		size_t backslashes = 0;
		while (q - backslashes > p && q[-1 - (ptrdiff_t)backslashes] == '\\')
			backslashes++;
		if (backslashes % 2 == 0)
			return q + 1;
		p = q + 1;
	}
}

/* p is at '{' or '['; returns just past the matching bracket. */
static const char *
skip_container(const char *p, const char *end)
{
	int depth = 0;
	while (p < end) {
		p += strcspn(p, "\"{}[]");
		if (p >= end)
			return NULL;
		switch (*p) {
		case '"':
			p = skip_string(p + 1, end);
			if (p == NULL)
				return NULL;
			continue;
		case '{':
		case '[':
			depth++;
			break;
		default:
			if (--depth == 0)
				return p + 1;
		}
		p++;
	}
	return NULL;
}

static const char *
skip_value(const char *p, const char *end)
{
	if (p >= end)
		return NULL;
	if (*p == '"')
		return skip_string(p + 1, end);
	if (*p == '{' || *p == '[')
		return skip_container(p, end);
	while (p < end && *p != ',' && *p != '}' && *p != ' ' && *p != '\t' &&
	    *p != '\n' && *p != '\r')
		p++;
	return p;
}

static enum jsonscan_result
read_unsigned(const char *p, const char *end, unsigned long *out)
{
	if (p >= end || *p < '0' || *p > '9')
		return JSONSCAN_UNSURE;
	char *stop;
	unsigned long v = strtoul(p, &stop, 10);
	if (stop > end || (stop < end && (*stop == '.' || *stop == 'e' || *stop == 'E')))
		return JSONSCAN_UNSURE;
	*out = v;
	return JSONSCAN_FOUND;
}

/* The one top-level member named key: [*value, *value_end) is its value
 * as written.  UNSURE for a repeated key, which parsers resolve
 * differently, and for any escaped key, which might spell it. */
static enum jsonscan_result
find_member(const char *text, size_t len, const char *key, const char **value,
    const char **value_end)
{
	const char *p = text, *end = text + len;
	size_t key_len = strlen(key);
	p = skip_space(p, end);
	if (p >= end || *p != '{')
		return JSONSCAN_UNSURE;
	p = skip_space(p + 1, end);
	if (p < end && *p == '}')
		return JSONSCAN_ABSENT;
	int found = 0;
	for (;;) {
		if (p >= end || *p != '"')
			return JSONSCAN_UNSURE;
		const char *name = p + 1;
		p = skip_string(name, end);
		if (p == NULL)
			return JSONSCAN_UNSURE;
		size_t name_len = (size_t)(p - 1 - name);
		if (memchr(name, '\\', name_len) != NULL)
			return JSONSCAN_UNSURE;	/* an escaped key might spell it */
		p = skip_space(p, end);
		if (p >= end || *p != ':')
			return JSONSCAN_UNSURE;
		p = skip_space(p + 1, end);
		int match = name_len == key_len && memcmp(name, key, name_len) == 0;
		/* A second one would disagree with the worker's parse. */
		if (match && found)
			return JSONSCAN_UNSURE;
		const char *start = p;
		p = skip_value(p, end);
		if (p == NULL || p == start)
			return JSONSCAN_UNSURE;
		if (match) {
			*value = start;
			*value_end = p;
			found = 1;
		}
		p = skip_space(p, end);
		if (p < end && *p == ',') {
			p = skip_space(p + 1, end);
			continue;
		}
		if (p >= end || *p != '}')
			return JSONSCAN_UNSURE;
		return found ? JSONSCAN_FOUND : JSONSCAN_ABSENT;
	}
}

enum jsonscan_result
jsonscan_timeout_ms(const char *text, size_t len, unsigned long *out)
{
	const char *value, *value_end;
	enum jsonscan_result found = find_member(text, len, "timeout_ms", &value, &value_end);
	if (found != JSONSCAN_FOUND)
		return found;
	return read_unsigned(value, value_end, out);
}

enum jsonscan_result
jsonscan_member(const char *text, size_t len, const char *key, const char **value,
    size_t *value_len)
{
	const char *start, *stop;
	enum jsonscan_result found = find_member(text, len, key, &start, &stop);
	if (found == JSONSCAN_FOUND) {
		*value = start;
		*value_len = (size_t)(stop - start);
	}
	return found;
}
