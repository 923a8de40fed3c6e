/*
 * httpc.c - the tests' blocking HTTP/1.1 client (see httpc.h).  It must
 * never wait without a bound: every socket carries SO_RCVTIMEO and
 * SO_SNDTIMEO, and each read or write is one bounded system call.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "support/httpc.h"

#define HEAD_MAX (64 * 1024)

int
httpc_connect(unsigned port, int timeout_ms)
{
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_port = htons((unsigned short)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	/* On Linux SO_SNDTIMEO bounds connect() too. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		goto fail;
	while (connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1) {
		if (errno != EINTR)
			goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int
httpc_send(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
httpc_send_request(int fd, const char *method, const char *path, const char *headers,
    const void *body, size_t body_len)
{
	char head[4096];
	int n;
	if (body)
		n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
		    "Content-Length: %zu\r\n\r\n", method, path, headers ? headers : "", body_len);
	else
		n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n",
		    method, path, headers ? headers : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	if (httpc_send(fd, head, (size_t)n) == -1)
		return -1;
	return body && body_len ? httpc_send(fd, body, body_len) : 0;
}

/* One bounded recv into buf[*len..cap); grows buf.  Returns the byte
 * count, 0 at the end of the connection, -1 on error or timeout. */
static ssize_t
receive_more(int fd, char **buf, size_t *len, size_t *cap)
{
	if (*len + 4096 + 1 > *cap) {
		size_t grown = *cap ? *cap * 2 : 8192;
		while (grown < *len + 4096 + 1)
			grown *= 2;
		char *p = realloc(*buf, grown);
		if (p == NULL)
			return -1;
		*buf = p;
		*cap = grown;
	}
	for (;;) {
		ssize_t n = recv(fd, *buf + *len, *cap - *len - 1, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n > 0)
			*len += (size_t)n;
		return n;
	}
}

static char *
trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* Splits the head (NUL-terminated, without the blank line) in place. */
static int
parse_head(struct httpc_response *resp)
{
	char *line = resp->head;
	char *eol = strstr(line, "\r\n");
	int major, minor, status;
	if (eol)
		*eol = '\0';
	if (sscanf(line, "HTTP/%d.%d %d", &major, &minor, &status) != 3 || status < 100 ||
	    status > 999)
		return -1;
	resp->status = status;
	while (eol) {
		line = eol + 2;
		eol = strstr(line, "\r\n");
		if (eol)
			*eol = '\0';
		char *colon = strchr(line, ':');
		if (colon == NULL || resp->header_count == HTTPC_MAX_HEADERS)
			continue;
		*colon = '\0';
		resp->headers[resp->header_count].name = trim(line);
		resp->headers[resp->header_count].value = trim(colon + 1);
		resp->header_count++;
	}
	return 0;
}

int
httpc_read_response(int fd, struct httpc_response *resp)
{
	char *buf = NULL, *end = NULL;
	size_t len = 0, cap = 0;
	memset(resp, 0, sizeof(*resp));
	while (end == NULL) {
		if (len > HEAD_MAX)
			goto fail;
		if (receive_more(fd, &buf, &len, &cap) <= 0)
			goto fail;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	size_t head_len = (size_t)(end - buf);
	size_t have = len - head_len - 4;
	resp->head = malloc(head_len + 1);
	if (resp->head == NULL)
		goto fail;
	memcpy(resp->head, buf, head_len);
	resp->head[head_len] = '\0';
	if (parse_head(resp) == -1)
		goto fail;
	/* The body moves to the front of buf. */
	memmove(buf, end + 4, have);
	len = have;
	const char *cl = httpc_header(resp, "Content-Length");
	int no_body = resp->status < 200 || resp->status == 204 || resp->status == 304;
	if (cl) {
		char *stop;
		unsigned long long want = strtoull(cl, &stop, 10);
		if (*stop || want > (1ull << 31))
			goto fail;
		while (len < want) {
			if (receive_more(fd, &buf, &len, &cap) <= 0)
				goto fail;
		}
		len = (size_t)want;
	} else if (!no_body) {
		ssize_t n;
		while ((n = receive_more(fd, &buf, &len, &cap)) > 0)
			;
		if (n < 0)
			goto fail;
	} else {
		len = 0;
	}
	if (cap < len + 1) {
		char *p = realloc(buf, len + 1);
		if (p == NULL)
			goto fail;
		buf = p;
	}
	buf[len] = '\0';
	resp->body = buf;
	resp->body_len = len;
	return 0;
fail:
	free(buf);
	return -1;
}

int
httpc_request(unsigned port, const char *method, const char *path, const char *headers,
    const void *body, size_t body_len, struct httpc_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	int fd = httpc_connect(port, HTTPC_TIMEOUT_MS);
	if (fd == -1)
		return -1;
	int rc = httpc_send_request(fd, method, path, headers, body, body_len);
	if (rc == 0)
		rc = httpc_read_response(fd, resp);
	close(fd);
	return rc;
}

const char *
httpc_header(const struct httpc_response *resp, const char *name)
{
	for (int i = 0; i < resp->header_count; i++)
		if (strcasecmp(resp->headers[i].name, name) == 0)
			return resp->headers[i].value;
	return NULL;
}

int
httpc_closes(const struct httpc_response *resp)
{
	const char *c = httpc_header(resp, "Connection");
	return c && strcasecmp(c, "close") == 0;
}

void
httpc_response_free(struct httpc_response *resp)
{
	free(resp->head);
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}
