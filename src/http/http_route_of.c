/*
 * http_route_of.c - which route a URL is (for answers and /metrics), with
 * no request object: the supervisor's router and a front's own answers
 * (src/http/front_answer.c) count a request under the same route.
 */
#include <string.h>

#include "daemon/scripts.h"
#include "http/http_route_of.h"

enum metrics_route
http_route_of(const char *url, int is_post, int *allowed, const char **name)
{
	static const struct {
		const char *path;
		enum metrics_route route;
		int allowed;
	} fixed[] = {
		{ "/v1/exec", METRICS_ROUTE_EXEC, ROUTE_POST },
		{ "/v1/compile", METRICS_ROUTE_COMPILE, ROUTE_POST },
		{ "/healthz", METRICS_ROUTE_HEALTHZ, ROUTE_GET | ROUTE_HEAD },
		{ "/v1/info", METRICS_ROUTE_INFO, ROUTE_GET | ROUTE_HEAD },
		{ "/metrics", METRICS_ROUTE_METRICS, ROUTE_GET | ROUTE_HEAD },
		{ "/v1/scripts", METRICS_ROUTE_SCRIPTS, ROUTE_GET | ROUTE_HEAD },
	};
	*allowed = 0;
	*name = NULL;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (strcmp(url, fixed[i].path) == 0) {
			*allowed = fixed[i].allowed;
			return fixed[i].route;
		}
	}
	const char *prefix = "/v1/scripts/";
	if (strncmp(url, prefix, strlen(prefix)) != 0 || strlen(url + strlen(prefix)) > SCRIPTS_NAME_MAX)
		return METRICS_ROUTE_OTHER;
	*name = url + strlen(prefix);
	*allowed = ROUTE_GET | ROUTE_HEAD | ROUTE_PUT | ROUTE_POST | ROUTE_DELETE;
	return is_post ? METRICS_ROUTE_SCRIPT_RUN : METRICS_ROUTE_SCRIPTS;
}
