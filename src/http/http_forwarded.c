/*
 * http_forwarded.c - requests a front forwarded on an internal connection
 * (http_fronts.c): how such a connection is known (its AF_UNIX address),
 * and the headers only a front may set, honoured there and nowhere else:
 * the client's address (for the log) and the time left of the job's
 * deadline (a lane job stopped at the lane's limit).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "common/front_proto.h"
#include "http/http_internal.h"

int
http_forwarded_is_internal(const struct http *http, struct MHD_Connection *conn)
{
	if (http->fronts == NULL)
		return 0;
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	return info && info->client_addr && info->client_addr->sa_family == AF_UNIX;
}

void
http_forwarded_take_headers(struct request *r)
{
	if (!http_forwarded_is_internal(r->http, r->conn))
		return;
	r->internal = 1;
	const char *client = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    FRONT_HEADER_CLIENT);
	unsigned char addr[sizeof(struct in6_addr)];
	if (client && strlen(client) < sizeof(r->client)) {
		int family = strchr(client, ':') ? AF_INET6 : AF_INET;
		/* Written anew: the log gets the usual form, and nothing else. */
		if (inet_pton(family, client, addr) != 1 ||
		    inet_ntop(family, addr, r->client, sizeof(r->client)) == NULL)
			r->client[0] = '\0';
	}
	const char *deadline = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    FRONT_HEADER_DEADLINE);
	if (deadline == NULL || *deadline == '\0' || strlen(deadline) > 10 ||
	    strspn(deadline, "0123456789") != strlen(deadline))
		return;
	unsigned long ms = strtoul(deadline, NULL, 10);
	if (ms <= r->http->opts.max_timeout_ms) {
		r->has_deadline = 1;
		r->deadline_ms = (unsigned)ms;
	}
}
