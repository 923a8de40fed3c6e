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

enum jsonscan_result
jsonscan_timeout_ms(const char *text, size_t len, unsigned long *out)
{
	static const char key[] = "timeout_ms";
	const char *p = text, *end = text + len;
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
		if (name_len == sizeof(key) - 1 && memcmp(name, key, name_len) == 0) {
			/* A second one would disagree with the worker's parse. */
			if (found || read_unsigned(p, end, out) != JSONSCAN_FOUND)
				return JSONSCAN_UNSURE;
			found = 1;
		}
		p = skip_value(p, end);
		if (p == NULL)
			return JSONSCAN_UNSURE;
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
