/*
 * buffer.h - a growable byte buffer with a hard size limit.
 * Appends fail (return -1) rather than grow past `limit`; the caller turns
 * that into its own error ("result too large", "body too large").
 */
#ifndef BUFFER_H
#define BUFFER_H

#include <stddef.h>

struct buffer {
	char *data;
	size_t len, cap, limit;	/* limit 0: unlimited */
};

void buffer_init(struct buffer *b, size_t limit);
/* Frees the storage and resets to empty. */
void buffer_free(struct buffer *b);
void buffer_reset(struct buffer *b);
/* Makes room for `extra` more bytes; -1 on limit or allocation failure. */
int buffer_reserve(struct buffer *b, size_t extra);
/* The same, growing to exactly that room (a body of known length). */
int buffer_reserve_exact(struct buffer *b, size_t extra);
int buffer_append(struct buffer *b, const void *data, size_t len);
int buffer_append_string(struct buffer *b, const char *s);
int buffer_append_char(struct buffer *b, char c);
int buffer_printf(struct buffer *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Gives the storage to the caller (who frees it) and resets the buffer.
 * The data is NUL-terminated; *len (if not NULL) gets its length. */
char *buffer_steal(struct buffer *b, size_t *len);

#endif
