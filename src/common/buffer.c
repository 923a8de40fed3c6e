/*
 * buffer.c - growable byte buffer with a limit.  Always keeps one spare byte
 * so the contents can be NUL-terminated without another allocation.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buffer.h"

void
buffer_init(struct buffer *b, size_t limit)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->limit = limit;
}

void
buffer_free(struct buffer *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buffer_reset(struct buffer *b)
{
	b->len = 0;
}

/* The capacity b needs for extra more bytes and its spare byte: 0 if it
 * has it already, -1 past the limit (or overflow). */
static int
capacity_needed(const struct buffer *b, size_t extra, size_t *need)
{
	if (extra > (size_t)-1 / 2 - b->len)
		return -1;
	*need = b->len + extra;
	if (b->limit && *need > b->limit)
		return -1;
	return *need + 1 <= b->cap ? 0 : 1;
}

static int
grow_to(struct buffer *b, size_t cap)
{
	char *data = realloc(b->data, cap);
	if (data == NULL)
		return -1;
	b->data = data;
	b->cap = cap;
	return 0;
}

int
buffer_reserve(struct buffer *b, size_t extra)
{
	size_t need;
	int rc = capacity_needed(b, extra, &need);
	if (rc <= 0)
		return rc;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need + 1)
		cap *= 2;
	return grow_to(b, cap);
}

int
buffer_reserve_exact(struct buffer *b, size_t extra)
{
	size_t need;
	int rc = capacity_needed(b, extra, &need);
	if (rc <= 0)
		return rc;
	return grow_to(b, need + 1);
}

int
buffer_append(struct buffer *b, const void *data, size_t len)
{
	if (buffer_reserve(b, len) == -1)
		return -1;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

int
buffer_append_string(struct buffer *b, const char *s)
{
	return buffer_append(b, s, strlen(s));
}

int
buffer_append_char(struct buffer *b, char c)
{
	if (b->len + 1 >= b->cap && buffer_reserve(b, 1) == -1)
		return -1;
	if (b->limit && b->len + 1 > b->limit)
		return -1;
	b->data[b->len++] = c;
	return 0;
}

int
buffer_printf(struct buffer *b, const char *fmt, ...)
{
	char small[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return buffer_append(b, small, (size_t)n);
	if (buffer_reserve(b, (size_t)n) == -1)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *
buffer_steal(struct buffer *b, size_t *len)
{
	if (buffer_reserve(b, 0) == -1 && b->data == NULL)
		return NULL;
	if (b->data == NULL)
		return NULL;
	b->data[b->len] = '\0';
	char *data = b->data;
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return data;
}
