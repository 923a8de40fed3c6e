/*
 * http_fronts_fds.c - front mode: the descriptors a front hands over,
 * checked to be what their message says, and served by libmicrohttpd.
 *
 * Internal connections (the socketpair ends of OPEN and REPLAY) reach
 * libmicrohttpd with an AF_UNIX address of sizeof(sa_family_t) bytes:
 * 0.9.75 copies the address as given and its per-IP limit lets any
 * address that is neither sockaddr_in nor sockaddr_in6 through, so such a
 * connection is known by its family and never counts against
 * max_connections_per_ip.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/log.h"
#include "http/http_internal.h"

/* The address of every internal connection: the family alone. */
static const struct sockaddr_un internal_address = { .sun_family = AF_UNIX };

static int
socket_option(int fd, int option)
{
	int value = -1;
	socklen_t len = sizeof(value);
	if (getsockopt(fd, SOL_SOCKET, option, &value, &len) == -1 || len != sizeof(value))
		return -1;
	return value;
}

/* Whether fd is a connected stream socket of the Unix domain (unix_domain
 * 1) or of the internet (0), with its peer's address in *ss, *len. */
int
http_fronts_fds_is_stream(int fd, int unix_domain, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct stat st;
	if (fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode))
		return 0;
	int domain = socket_option(fd, SO_DOMAIN);
	if (socket_option(fd, SO_TYPE) != SOCK_STREAM || socket_option(fd, SO_ACCEPTCONN) != 0)
		return 0;
	*len = sizeof(*ss);
	if (getpeername(fd, (struct sockaddr *)ss, len) == -1 || ss->ss_family != domain)
		return 0;
	if (unix_domain)
		return domain == AF_UNIX;
	/* What libmicrohttpd's per-IP limit takes the address by: its size. */
	return (domain == AF_INET && *len == sizeof(struct sockaddr_in)) ||
	    (domain == AF_INET6 && *len == sizeof(struct sockaddr_in6));
}

/* Hands fd to libmicrohttpd, which closes it in every case.  Non-blocking
 * first: in epoll mode 0.9.75 would go on with a blocking socket if it
 * could not make it non-blocking itself, and stall the event loop. */
int
http_fronts_fds_serve(struct http *http, int fd, const struct sockaddr *addr, socklen_t len)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		close(fd);
		return -1;
	}
	if (MHD_add_connection(http->daemon, fd, addr, len) != MHD_YES) {
		/* Past a connection limit, logged by http_log_mhd. */
		log_debug("libmicrohttpd refused a front's connection: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
http_fronts_fds_serve_internal(struct http *http, int fd)
{
	return http_fronts_fds_serve(http, fd, (const struct sockaddr *)&internal_address,
	    sizeof(sa_family_t));
}
