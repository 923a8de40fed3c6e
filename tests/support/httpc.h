/*
 * httpc.h - a small blocking HTTP/1.1 client for the integration tests:
 * one request at a time on a TCP connection to 127.0.0.1, the answer read
 * by Content-Length (or to the end of the connection).  Every socket
 * operation is bounded by the connection's timeout (SO_RCVTIMEO and
 * SO_SNDTIMEO), so a test can fail but never hang.  No TLS, no chunked
 * answers, no redirects, no HEAD (the reader would wait for the announced
 * body until the timeout): only what luapoold sends.
 */
#ifndef HTTPC_H
#define HTTPC_H

#include <stddef.h>

#define HTTPC_TIMEOUT_MS 15000
#define HTTPC_MAX_HEADERS 32

struct httpc_header {
	const char *name;		/* both point into httpc_response.head */
	const char *value;
};

struct httpc_response {
	int status;			/* 0 until a status line was read */
	char *head;			/* status line and headers, split in place */
	struct httpc_header headers[HTTPC_MAX_HEADERS];
	int header_count;
	char *body;			/* NUL-terminated; body_len excludes the NUL */
	size_t body_len;
};

/* Connects to 127.0.0.1:port with every later send and receive bounded by
 * timeout_ms.  Returns the socket (caller closes) or -1. */
int httpc_connect(unsigned port, int timeout_ms);

/* Sends all of data (no SIGPIPE).  0, or -1 on error or timeout. */
int httpc_send(int fd, const void *data, size_t len);

/*
 * Sends one request.  headers: extra header lines, each ending in "\r\n",
 * or NULL.  A body (may be empty, not NULL) gets its Content-Length; NULL
 * sends none.  0 or -1.
 */
int httpc_send_request(int fd, const char *method, const char *path, const char *headers,
    const void *body, size_t body_len);

/* Reads one response into resp (release it with httpc_response_free, also
 * after a failure).  0, or -1 if the connection failed, timed out or sent
 * something that is not HTTP. */
int httpc_read_response(int fd, struct httpc_response *resp);

/* A request on a connection of its own, closed afterwards; timeout
 * HTTPC_TIMEOUT_MS.  0 or -1 as above. */
int httpc_request(unsigned port, const char *method, const char *path, const char *headers,
    const void *body, size_t body_len, struct httpc_response *resp);

/* The value of the first header called name (any case), or NULL. */
const char *httpc_header(const struct httpc_response *resp, const char *name);

/* True if the server closes the connection after this response. */
int httpc_closes(const struct httpc_response *resp);

void httpc_response_free(struct httpc_response *resp);

#endif
