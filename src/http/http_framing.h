/*
 * http_framing.h - which framing headers a request may have (http_framing.c):
 * the one rule the supervisor's router and a front's server both apply.
 * Plain: no request object, no libmicrohttpd.
 */
#ifndef HTTP_FRAMING_H
#define HTTP_FRAMING_H

struct http_framing {
	const char *content_length;	/* the first */
	int lengths_differ;
	int codings;			/* Transfer-Encoding headers */
	int not_chunked;
};

/* Notes one request header: 1 if it was a framing header. */
int http_framing_see(struct http_framing *f, const char *key, const char *value);
/* Why the framing is refused (the detail of a 400 invalid_request), or NULL. */
const char *http_framing_refusal(const struct http_framing *f);

#endif
