/*
 * http_framing.c - see http_framing.h.  Content-Length twice with
 * different values, beside Transfer-Encoding, or a transfer coding but
 * chunked: each lets two parsers disagree on where the body ends.
 */
#include <string.h>
#include <strings.h>

#include "http/http_framing.h"

int
http_framing_see(struct http_framing *f, const char *key, const char *value)
{
	if (strcasecmp(key, "Content-Length") == 0) {
		if (f->content_length == NULL)
			f->content_length = value;
		else if (strcmp(f->content_length, value) != 0)
			f->lengths_differ = 1;
		return 1;
	}
	if (strcasecmp(key, "Transfer-Encoding") == 0) {
		f->codings++;
		f->not_chunked |= strcasecmp(value, "chunked") != 0;
		return 1;
	}
	return 0;
}

const char *
http_framing_refusal(const struct http_framing *f)
{
	if (f->lengths_differ)
		return "Content-Length is given twice with different values";
	if (f->content_length && f->codings)
		return "Content-Length and Transfer-Encoding are both given";
	if (f->codings > 1 || f->not_chunked)
		return "the only Transfer-Encoding taken is chunked";
	return NULL;
}
