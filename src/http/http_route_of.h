/*
 * http_route_of.h - a URL's route (http_route_of.c).  Plain: no request
 * object, no libmicrohttpd.
 */
#ifndef HTTP_ROUTE_OF_H
#define HTTP_ROUTE_OF_H

#include "daemon/metrics.h"

enum route_method {
	ROUTE_GET = 1, ROUTE_HEAD = 2, ROUTE_POST = 4, ROUTE_PUT = 8, ROUTE_DELETE = 16
};

/* The route of url; *allowed: its methods (route_method bits, 0 for an
 * unknown path); *name: the script name of /v1/scripts/{name}, else NULL
 * (at most SCRIPTS_NAME_MAX bytes, a pointer into url). */
enum metrics_route http_route_of(const char *url, int is_post, int *allowed, const char **name);

#endif
