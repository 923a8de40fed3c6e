/*
 * http_status.c - the routes that describe the server: /healthz (for load
 * balancers, no auth), /v1/info and /metrics (Prometheus text).  Answered
 * from the pool's counters at once; this file never submits a job nor
 * changes any state.
 */
#include <stdatomic.h>
#include <string.h>

#include "common/log.h"
#include "daemon/metrics_process.h"
#include "http/http_internal.h"

void
http_status_info(struct request *r)
{
	struct buffer b;
	buffer_init(&b, 0);
	char engine[64], engine_json[6 * sizeof(engine)];
	luapool_engine_version(r->http->pool, engine, sizeof(engine));
	/* A worker's words: JSON-escaped, never trusted to be plain. */
	log_escape(engine_json, sizeof(engine_json), engine, strlen(engine), 1);
	struct luapool_stats st;
	luapool_stats(r->http->pool, &st);
	pthread_mutex_lock(&r->http->config_lock);
	int auth = r->http->auth_token != NULL;
	pthread_mutex_unlock(&r->http->config_lock);
	const struct http_options *o = &r->http->opts;
	buffer_printf(&b, "{\"name\":\"luapoold\",\"version\":\"%s\",\"engine\":\"%s\","
	    "\"workers\":{\"target\":%u,\"live\":%u,\"busy\":%u},\"queue_depth\":%u,"
	    "\"limits\":{\"max_body_bytes\":%zu,\"max_timeout_ms\":%u,\"max_connections\":%u,"
	    "\"default_timeout_ms\":%u,\"memory_limit_mb\":%u,\"max_result_bytes\":%zu,"
	    "\"max_json_depth\":%u,\"max_inflight_bytes\":%zu,\"queue_depth\":%u,"
	    "\"request_read_timeout_s\":%u,\"max_connections_per_ip\":%u,"
	    "\"connection_timeout_s\":%u,\"max_log_bytes\":%zu},"
	    "\"auth\":%s,\"allow_bytecode\":%s,\"bytecode\":\"%s\",\"extra\":%s}",
	    LUAPOOL_VERSION, engine_json, st.workers_target, st.workers_live, st.workers_busy,
	    st.queue_depth, atomic_load(&r->http->max_body_bytes), o->max_timeout_ms,
	    o->max_connections, o->default_timeout_ms, o->memory_limit_mb, o->max_result_bytes,
	    o->max_json_depth, atomic_load(&r->http->max_inflight_bytes), st.queue_depth,
	    atomic_load(&r->http->request_read_timeout_s), o->max_connections_per_ip,
	    o->connection_timeout_s, o->max_log_bytes, auth ? "true" : "false",
	    r->http->opts.bytecode_mode != HTTP_BYTECODE_OFF ? "true" : "false",
	    http_bytecode_mode_name(r->http->opts.bytecode_mode),
	    r->http->info_json ? r->http->info_json : "{}");
	http_request_prepare_json(r, 200, &b);
}

void
http_status_metrics(struct request *r)
{
	struct buffer b;
	buffer_init(&b, 0);
	struct luapool_stats st;
	luapool_stats(r->http->pool, &st);
	char engine[64];
	luapool_engine_version(r->http->pool, engine, sizeof(engine));
	/* Front mode: the clients' connections, wherever they are served. */
	unsigned connections = r->http->fronts_conns ? http_fronts_conns_count(r->http) :
	    atomic_load(&r->http->connections);
	metrics_render(&b, &st, connections, scripts_count(r->http->scripts));
	metrics_process_render(&b, engine);
	size_t len = 0;
	char *body = buffer_steal(&b, &len);
	http_request_prepare(r, 200, body, len, "text/plain; version=0.0.4; charset=utf-8");
}

void
http_status_healthz(struct request *r)
{
	struct buffer b;
	buffer_init(&b, 0);
	if (atomic_load(&r->http->draining)) {
		http_request_prepare_problem(r, "shutting_down", "draining before shutdown", NULL);
		return;
	}
	unsigned live = luapool_active_workers(r->http->pool);
	if (live == 0) {
		http_request_prepare_problem(r, "overloaded",
		    "no worker is running; the pool is starting them", NULL);
		return;
	}
	buffer_printf(&b, "{\"status\":\"ok\",\"workers\":%u}", live);
	http_request_prepare_json(r, 200, &b);
}
