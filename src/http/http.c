/*
 * http.c - libmicrohttpd glue for API v1: one request object per HTTP
 * request, routing, auth, body limits, problem responses, and the
 * suspend/resume dance with the pool.
 *
 * A request that needs a worker is submitted asynchronously and its
 * connection suspended; the pool's callback (on the dispatcher thread)
 * copies the answer into the request and resumes the connection, and the
 * next call of the access handler queues the response.  The request is
 * reference counted because both MHD and the pool hold it.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/base64.h"
#include "common/buffer.h"
#include "common/frame.h"
#include "http/http.h"
#include "daemon/jsonscan.h"
#include "common/log.h"
#include "daemon/metrics.h"
#include "http/problem.h"

struct http {
	struct MHD_Daemon *daemon;
	struct luapool *pool;
	struct scripts *scripts;
	struct http_options opts;
	unsigned port;
	pthread_mutex_t config_lock;	/* token and reloadable limits */
	char *auth_token;
	atomic_size_t max_body_bytes;
	atomic_int access_log, metrics_auth, draining;
	atomic_uint in_flight, connections;
	char *info_json;
	int epfd;			/* event-loop mode */
	int signal_watched;
	atomic_int activity;		/* a job was submitted or answered */
};

enum { EVENT_MHD = 1, EVENT_POOL, EVENT_SIGNAL };
#define LOOP_TICK_MS 250
#define TIMEOUT_SCAN_MAX (16 * 1024)

enum route_method { ROUTE_GET = 1, ROUTE_HEAD = 2, ROUTE_POST = 4, ROUTE_PUT = 8, ROUTE_DELETE = 16 };

struct request {
	atomic_int refs;
	pthread_mutex_t lock;
	struct http *http;
	struct MHD_Connection *conn;
	enum metrics_route route;
	int method;
	int allowed;			/* route_method bits */
	int script_item;		/* /v1/scripts/{name} */
	char name[SCRIPTS_NAME_MAX + 1];
	char path[160];
	struct buffer body;
	int64_t start_ns;
	/* The answer, once known. */
	int prepared, done, suspended;
	int status;
	char *resp_body;
	size_t resp_len;
	const char *content_type;
	const char *extra_header, *extra_value;
	int close_connection;
	int worker_pid;
	/* PUT with source: store once the worker compiled it. */
	char *pending_source;
	size_t pending_source_len;
};

static void
request_unref(struct request *r)
{
	if (atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	buffer_free(&r->body);
	free(r->resp_body);
	free(r->pending_source);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static void
prepare(struct request *r, int status, char *body, size_t len, const char *content_type)
{
	free(r->resp_body);
	r->status = status;
	r->resp_body = body;
	r->resp_len = len;
	r->content_type = content_type;
	r->prepared = 1;
}

static void
prepare_problem(struct request *r, const char *code, const char *detail, const char *traceback)
{
	size_t len = 0;
	char *body = problem_body(code, detail, traceback, &len);
	prepare(r, problem_status(code), body, len, "application/problem+json");
	if (strcmp(code, "overloaded") == 0 || strcmp(code, "shutting_down") == 0) {
		r->extra_header = MHD_HTTP_HEADER_RETRY_AFTER;
		r->extra_value = "1";
	} else if (strcmp(code, "unauthorized") == 0) {
		r->extra_header = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
		r->extra_value = "Bearer realm=\"luapoold\"";
	}
}

static void
prepare_problemf(struct request *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
prepare_problemf(struct request *r, const char *code, const char *fmt, ...)
{
	char detail[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	prepare_problem(r, code, detail, NULL);
}

static void
prepare_json(struct request *r, int status, struct buffer *b)
{
	size_t len = 0;
	char *body = buffer_steal(b, &len);
	prepare(r, status, body, len, "application/json");
}

static enum MHD_Result
queue_prepared(struct request *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(r->resp_len,
	    r->resp_body ? r->resp_body : (void *)(uintptr_t)"", r->resp_body ?
	    MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	r->resp_body = NULL;	/* MHD frees it now */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type ?
	    r->content_type : "application/json");
	if (r->extra_header)
		MHD_add_response_header(resp, r->extra_header, r->extra_value);
	if (r->close_connection)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Routing ---------------------------------------------------------------- */

static int
method_bit(const char *method)
{
	if (strcmp(method, "GET") == 0) return ROUTE_GET;
	if (strcmp(method, "HEAD") == 0) return ROUTE_HEAD;
	if (strcmp(method, "POST") == 0) return ROUTE_POST;
	if (strcmp(method, "PUT") == 0) return ROUTE_PUT;
	if (strcmp(method, "DELETE") == 0) return ROUTE_DELETE;
	return 0;
}

static const char *
method_name(int bit)
{
	switch (bit) {
	case ROUTE_GET: return "GET";
	case ROUTE_HEAD: return "HEAD";
	case ROUTE_POST: return "POST";
	case ROUTE_PUT: return "PUT";
	case ROUTE_DELETE: return "DELETE";
	}
	return "OTHER";
}

static void
route_request(struct request *r, const char *url)
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
	r->route = METRICS_ROUTE_OTHER;
	r->allowed = 0;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (strcmp(url, fixed[i].path) == 0) {
			r->route = fixed[i].route;
			r->allowed = fixed[i].allowed;
			return;
		}
	}
	const char *prefix = "/v1/scripts/";
	if (strncmp(url, prefix, strlen(prefix)) == 0) {
		const char *name = url + strlen(prefix);
		if (strlen(name) > SCRIPTS_NAME_MAX)
			return;
		strcpy(r->name, name);
		r->script_item = 1;
		r->allowed = ROUTE_GET | ROUTE_HEAD | ROUTE_PUT | ROUTE_POST | ROUTE_DELETE;
		r->route = r->method == ROUTE_POST ? METRICS_ROUTE_SCRIPT_RUN : METRICS_ROUTE_SCRIPTS;
	}
}

static void
prepare_not_allowed(struct request *r)
{
	const char *allow;
	switch (r->allowed) {
	case ROUTE_POST: allow = "POST"; break;
	case ROUTE_GET | ROUTE_HEAD: allow = "GET, HEAD"; break;
	default: allow = "GET, HEAD, PUT, POST, DELETE"; break;
	}
	prepare_problemf(r, "method_not_allowed", "%s does not take this method", r->path);
	r->extra_header = MHD_HTTP_HEADER_ALLOW;
	r->extra_value = allow;
}

/* Auth ------------------------------------------------------------------- */

static int
tokens_equal(const char *given, const char *expected)
{
	size_t a = strlen(given), b = strlen(expected);
	unsigned char diff = a != b;
	for (size_t i = 0; i < b; i++)
		diff |= (unsigned char)(given[i < a ? i : 0] ^ expected[i]);
	return diff == 0;
}

static int
needs_auth(struct http *http, const struct request *r)
{
	if (r->route == METRICS_ROUTE_HEALTHZ)
		return 0;
	if (r->route == METRICS_ROUTE_METRICS)
		return atomic_load(&http->metrics_auth);
	return 1;
}

static int
authorized(struct http *http, struct request *r)
{
	pthread_mutex_lock(&http->config_lock);
	int ok = 1;
	if (http->auth_token && needs_auth(http, r)) {
		const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_AUTHORIZATION);
		ok = h && strncasecmp(h, "Bearer ", 7) == 0 && tokens_equal(h + 7, http->auth_token);
	}
	pthread_mutex_unlock(&http->config_lock);
	return ok;
}

/* Jobs ------------------------------------------------------------------- */

static void
take_reply(struct request *r, const struct luapool_reply *reply)
{
	r->worker_pid = reply->worker_pid;
	if (reply->status == LUAPOOL_OK) {
		char *body = malloc(reply->body_len + 1);
		if (body == NULL) {
			prepare_problem(r, "internal_error", "out of memory", NULL);
			return;
		}
		memcpy(body, reply->body, reply->body_len);
		prepare(r, 200, body, reply->body_len, "application/json");
		return;
	}
	prepare_problem(r, reply->code ? reply->code : luapool_status_code(reply->status),
	    reply->message, reply->traceback);
}

static void
on_job_done(void *arg, const struct luapool_reply *reply)
{
	struct request *r = arg;
	pthread_mutex_lock(&r->lock);
	take_reply(r, reply);
	r->done = 1;
	int resume = r->suspended;
	r->suspended = 0;
	pthread_mutex_unlock(&r->lock);
	if (resume)
		MHD_resume_connection(r->conn);
	atomic_store_explicit(&r->http->activity, 1, memory_order_relaxed);
	request_unref(r);
}

static void
prepare_submit_error(struct request *r, const struct luapool_error *err)
{
	const char *code = luapool_status_code(err->status);
	prepare_problem(r, err->status == LUAPOOL_E_INVALID ? "invalid_request" : code,
	    err->message, NULL);
}

/* The job's timeout as the pool should know it, so a queued job expires
 * at its deadline: the request's own timeout_ms, found without parsing
 * the context, or the default when it certainly has none.  0 leaves it to
 * the worker (unsure, or out of range: the worker explains). */
static unsigned
request_timeout_ms(struct request *r)
{
	if (r->body.len == 0)
		return r->http->opts.default_timeout_ms;
	/* Skipping a large context costs the event loop more than it saves
	 * (a 66 KiB one: a quarter of its time); the worker still applies the
	 * deadline, queued time included, when it takes the job. */
	if (r->body.len > TIMEOUT_SCAN_MAX)
		return 0;
	r->body.data[r->body.len] = '\0';	/* the buffer keeps a spare byte */
	unsigned long t = 0;
	switch (jsonscan_timeout_ms(r->body.data, r->body.len, &t)) {
	case JSONSCAN_FOUND:
		return t >= 1 && t <= r->http->opts.max_timeout_ms ? (unsigned)t : 0;
	case JSONSCAN_ABSENT:
		return r->http->opts.default_timeout_ms;
	default:
		return 0;
	}
}

/* Submits a job for this request and suspends its connection until the
 * answer comes; prepares an error response if the pool refuses. */
static void
submit_job(struct request *r, enum luapool_job_kind kind, const char *chunk, size_t chunk_len,
    int chunk_is_source)
{
	struct luapool_job job = {
		.kind = kind,
		.request = r->body.len ? r->body.data : "{}",
		.request_len = r->body.len ? r->body.len : 2,
		.chunk = chunk, .chunk_len = chunk_len, .chunk_is_source = chunk_is_source,
		.timeout_ms = kind == LUAPOOL_JOB_EXEC ? request_timeout_ms(r) : 0,
	};
	struct luapool_error err;
	atomic_fetch_add(&r->refs, 1);
	if (luapool_submit_async(r->http->pool, &job, on_job_done, r, &err) == -1) {
		atomic_fetch_sub(&r->refs, 1);
		prepare_submit_error(r, &err);
		return;
	}
	atomic_store_explicit(&r->http->activity, 1, memory_order_relaxed);
	pthread_mutex_lock(&r->lock);
	if (!r->done) {
		MHD_suspend_connection(r->conn);
		r->suspended = 1;
	}
	pthread_mutex_unlock(&r->lock);
}

/* Handlers --------------------------------------------------------------- */

static void
handle_info(struct request *r)
{
	struct buffer b;
	buffer_init(&b, 0);
	char engine[64];
	luapool_engine_version(r->http->pool, engine, sizeof(engine));
	struct luapool_stats st;
	luapool_stats(r->http->pool, &st);
	pthread_mutex_lock(&r->http->config_lock);
	int auth = r->http->auth_token != NULL;
	pthread_mutex_unlock(&r->http->config_lock);
	buffer_printf(&b, "{\"name\":\"luapoold\",\"version\":\"%s\",\"engine\":\"%s\","
	    "\"workers\":{\"target\":%u,\"live\":%u,\"busy\":%u},\"queue_depth\":%u,"
	    "\"limits\":{\"max_body_bytes\":%zu,\"max_timeout_ms\":%u,\"max_connections\":%u},"
	    "\"auth\":%s,\"allow_bytecode\":%s,\"extra\":%s}",
	    LUAPOOL_VERSION, engine, st.workers_target, st.workers_live, st.workers_busy,
	    st.queue_depth, atomic_load(&r->http->max_body_bytes), r->http->opts.max_timeout_ms,
	    r->http->opts.max_connections, auth ? "true" : "false",
	    r->http->opts.allow_bytecode ? "true" : "false",
	    r->http->info_json ? r->http->info_json : "{}");
	prepare_json(r, 200, &b);
}

static void
handle_metrics(struct request *r)
{
	struct buffer b;
	buffer_init(&b, 0);
	struct luapool_stats st;
	luapool_stats(r->http->pool, &st);
	metrics_render(&b, &st, atomic_load(&r->http->connections),
	    scripts_count(r->http->scripts));
	size_t len = 0;
	char *body = buffer_steal(&b, &len);
	prepare(r, 200, body, len, "text/plain; version=0.0.4; charset=utf-8");
}

static void
handle_healthz(struct request *r)
{
	struct buffer b;
	buffer_init(&b, 0);
	if (atomic_load(&r->http->draining)) {
		prepare_problem(r, "shutting_down", "draining before shutdown", NULL);
		return;
	}
	unsigned live = luapool_active_workers(r->http->pool);
	if (live == 0) {
		prepare_problem(r, "overloaded", "no worker is running; the pool is starting them",
		    NULL);
		return;
	}
	buffer_printf(&b, "{\"status\":\"ok\",\"workers\":%u}", live);
	prepare_json(r, 200, &b);
}

/* Stores the script; answers 201 (new) or 200 with its description. */
static void
store_script(struct request *r, int is_source, const void *chunk, size_t len)
{
	char err[256];
	int created = 0;
	if (scripts_put(r->http->scripts, r->name, is_source, chunk, len, &created, err,
	    sizeof(err)) == -1) {
		prepare_problem(r, "invalid_request", err, NULL);
		return;
	}
	struct buffer b;
	buffer_init(&b, 0);
	scripts_describe(r->http->scripts, r->name, &b);
	prepare_json(r, created ? 201 : 200, &b);
}

/* PUT /v1/scripts/{name}: {"source": text} or {"bytecode": base64}. */
static void
handle_script_put(struct request *r)
{
	cJSON *root = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
	if (root == NULL) {
		prepare_problem(r, "invalid_json", "the body must be a JSON object", NULL);
		return;
	}
	const cJSON *src = cJSON_GetObjectItemCaseSensitive(root, "source");
	const cJSON *bc = cJSON_GetObjectItemCaseSensitive(root, "bytecode");
	if (cJSON_IsString(src) && bc == NULL) {
		/* Compile in a worker first; store on success (finish_script_put). */
		r->pending_source = strdup(src->valuestring);
		r->pending_source_len = strlen(src->valuestring);
		cJSON_Delete(root);
		submit_job(r, LUAPOOL_JOB_COMPILE, r->pending_source, r->pending_source_len, 1);
		return;
	}
	if (!cJSON_IsString(bc) || src != NULL) {
		cJSON_Delete(root);
		prepare_problem(r, "invalid_request",
		    "give either \"source\" (text) or \"bytecode\" (base64)", NULL);
		return;
	}
	if (!r->http->opts.allow_bytecode) {
		cJSON_Delete(root);
		prepare_problem(r, "invalid_request", "bytecode is disabled on this server", NULL);
		return;
	}
	size_t len = strlen(bc->valuestring);
	unsigned char *chunk = malloc(base64_decoded_max(len) + 1);
	long n = chunk ? base64_decode(bc->valuestring, len, chunk) : -1;
	cJSON_Delete(root);
	if (n < 0) {
		prepare_problem(r, "invalid_base64", "\"bytecode\" is not valid base64", NULL);
	} else if (n < 4 || memcmp(chunk, "\033LJ", 3) != 0) {
		prepare_problem(r, "invalid_bytecode", "not LuaJIT bytecode", NULL);
	} else {
		store_script(r, 0, chunk, (size_t)n);
	}
	free(chunk);
}

/* After the compile job of a PUT with source came back. */
static void
finish_script_put(struct request *r)
{
	char *source = r->pending_source;
	r->pending_source = NULL;
	if (r->status == 200)
		store_script(r, 1, source, r->pending_source_len);
	free(source);
}

static void
handle_script_run(struct request *r)
{
	int is_source;
	char *chunk;
	size_t len;
	if (scripts_get(r->http->scripts, r->name, &is_source, &chunk, &len) == -1) {
		prepare_problemf(r, "unknown_script", "no script named \"%s\"", r->name);
		return;
	}
	submit_job(r, LUAPOOL_JOB_EXEC, chunk, len, is_source);
	free(chunk);
}

static void
handle_script_item(struct request *r)
{
	struct buffer b;
	if (!scripts_valid_name(r->name)) {
		prepare_problemf(r, "invalid_request", "script names are 1 to %d characters of "
		    "A-Z a-z 0-9 _ . - and do not start with '.'", SCRIPTS_NAME_MAX);
		return;
	}
	switch (r->method) {
	case ROUTE_PUT:
		handle_script_put(r);
		return;
	case ROUTE_POST:
		handle_script_run(r);
		return;
	case ROUTE_DELETE:
		if (scripts_delete(r->http->scripts, r->name) == -1)
			prepare_problemf(r, "unknown_script", "no script named \"%s\"", r->name);
		else
			prepare(r, 204, NULL, 0, "application/json");
		return;
	default:
		buffer_init(&b, 0);
		if (scripts_describe(r->http->scripts, r->name, &b) == -1) {
			buffer_free(&b);
			prepare_problemf(r, "unknown_script", "no script named \"%s\"", r->name);
		} else {
			prepare_json(r, 200, &b);
		}
	}
}

static void
handle_request(struct request *r)
{
	struct buffer b;
	switch (r->route) {
	case METRICS_ROUTE_EXEC:
	case METRICS_ROUTE_COMPILE:
		if (r->body.len == 0) {
			prepare_problem(r, "invalid_json", "the request body is empty", NULL);
			return;
		}
		submit_job(r, r->route == METRICS_ROUTE_EXEC ? LUAPOOL_JOB_EXEC :
		    LUAPOOL_JOB_COMPILE, NULL, 0, 0);
		return;
	case METRICS_ROUTE_HEALTHZ:
		handle_healthz(r);
		return;
	case METRICS_ROUTE_INFO:
		handle_info(r);
		return;
	case METRICS_ROUTE_METRICS:
		handle_metrics(r);
		return;
	case METRICS_ROUTE_SCRIPTS:
	case METRICS_ROUTE_SCRIPT_RUN:
		if (r->script_item) {
			handle_script_item(r);
			return;
		}
		buffer_init(&b, 0);
		scripts_list(r->http->scripts, &b);
		prepare_json(r, 200, &b);
		return;
	default:
		prepare_problemf(r, "not_found", "no resource at %s", r->path);
	}
}

/* libmicrohttpd callbacks ------------------------------------------------ */

static struct request *
request_new(struct http *http, struct MHD_Connection *conn, const char *url, const char *method)
{
	struct request *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	atomic_init(&r->refs, 1);
	pthread_mutex_init(&r->lock, NULL);
	r->http = http;
	r->conn = conn;
	r->start_ns = frame_now_ns();
	r->method = method_bit(method);
	snprintf(r->path, sizeof(r->path), "%s", url);
	buffer_init(&r->body, atomic_load(&http->max_body_bytes));
	route_request(r, url);
	atomic_fetch_add(&http->in_flight, 1);
	return r;
}

/* Decisions made from the headers alone, before any body is read. */
static void
check_headers(struct http *http, struct request *r)
{
	if (r->route == METRICS_ROUTE_OTHER) {
		prepare_problemf(r, "not_found", "no resource at %s", r->path);
		return;
	}
	if (!(r->allowed & r->method)) {
		prepare_not_allowed(r);
		return;
	}
	if (!authorized(http, r)) {
		prepare_problem(r, "unauthorized", "send Authorization: Bearer <token>", NULL);
		return;
	}
	if (atomic_load(&http->draining) && r->route != METRICS_ROUTE_HEALTHZ &&
	    r->route != METRICS_ROUTE_METRICS) {
		prepare_problem(r, "shutting_down", "the server is draining", NULL);
		r->close_connection = 1;
		return;
	}
	const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && strtoull(cl, NULL, 10) > r->body.limit)
		prepare_problemf(r, "payload_too_large", "the body is larger than %zu bytes",
		    r->body.limit);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)version;
	struct http *http = cls;
	struct request *r = *con_cls;
	if (r == NULL) {
		r = request_new(http, conn, url, method);
		if (r == NULL)
			return MHD_NO;
		*con_cls = r;
		check_headers(http, r);
		if (r->prepared) {
			r->close_connection = 1;	/* the body, if any, stays unread */
			return queue_prepared(r);
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		/* A body without Content-Length (chunked) that outgrows the limit:
		 * libmicrohttpd 0.9.75 refuses a response queued before the upload
		 * ends (the client would get no answer at all), so the rest is
		 * dropped as it comes and the 413 goes out after the last chunk. */
		if (!r->prepared && buffer_append(&r->body, upload_data, *upload_data_size) == -1) {
			prepare_problemf(r, "payload_too_large", "the body is larger than %zu bytes",
			    r->body.limit);
			r->close_connection = 1;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&r->lock);
	int answered = r->prepared;
	pthread_mutex_unlock(&r->lock);
	if (!answered)
		handle_request(r);
	pthread_mutex_lock(&r->lock);
	int ready = r->prepared && !r->suspended;
	pthread_mutex_unlock(&r->lock);
	if (!ready)
		return MHD_YES;		/* suspended until the job is answered */
	if (r->pending_source)
		finish_script_put(r);
	return queue_prepared(r);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)conn;
	struct http *http = cls;
	struct request *r = *con_cls;
	if (r == NULL)
		return;
	*con_cls = NULL;
	double seconds = (double)(frame_now_ns() - r->start_ns) / 1e9;
	int status = r->prepared ? r->status : 0;
	metrics_observe(r->route, status, seconds);
	if (atomic_load(&http->access_log))
		log_info("%s %s %d %.3f ms worker=%d in=%zu out=%zu%s",
		    method_name(r->method), r->path, status,
		    seconds * 1e3, r->worker_pid, r->body.len, r->resp_len,
		    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
	atomic_fetch_sub(&http->in_flight, 1);
	request_unref(r);
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	(void)conn;
	(void)socket_context;
	struct http *http = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add(&http->connections, 1);
	else
		atomic_fetch_sub(&http->connections, 1);
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("libmicrohttpd: %s", line);
}

/* Start and stop --------------------------------------------------------- */

static int
resolve_listen(const char *host, unsigned port, struct sockaddr_storage *ss, int *ipv6)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char service[8];
	snprintf(service, sizeof(service), "%u", port);
	if (getaddrinfo(host && *host ? host : "0.0.0.0", service, &hints, &res) != 0 || res == NULL)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*ipv6 = res->ai_family == AF_INET6;
	freeaddrinfo(res);
	return 0;
}

/* Event-loop mode: one epoll set over MHD's own epoll fd and the pool's. */
static int
watch_event_sources(struct http *http, char *err, size_t errlen)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->daemon,
	    MHD_DAEMON_INFO_EPOLL_FD);
	http->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (info == NULL || http->epfd == -1) {
		snprintf(err, errlen, "cannot set up the event loop");
		return -1;
	}
	struct epoll_event mhd = { .events = EPOLLIN, .data.u32 = EVENT_MHD };
	struct epoll_event pool = { .events = EPOLLIN, .data.u32 = EVENT_POOL };
	if (epoll_ctl(http->epfd, EPOLL_CTL_ADD, info->epoll_fd, &mhd) == -1 ||
	    epoll_ctl(http->epfd, EPOLL_CTL_ADD, luapool_poll_fd(http->pool), &pool) == -1) {
		snprintf(err, errlen, "cannot set up the event loop: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int
mhd_timeout_ms(struct http *http)
{
	MHD_UNSIGNED_LONG_LONG ms;
	if (MHD_get_timeout(http->daemon, &ms) != MHD_YES)
		return -1;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static int
earliest(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static int
take_signal(int signal_fd)
{
	struct signalfd_siginfo si;
	if (read(signal_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

int
http_serve_once(struct http *http, int signal_fd, int max_wait_ms)
{
	if (http->opts.threads) {
		struct pollfd pfd = { .fd = signal_fd, .events = POLLIN };
		return poll(&pfd, 1, max_wait_ms) == 1 ? take_signal(signal_fd) : 0;
	}
	if (!http->signal_watched && signal_fd >= 0) {
		struct epoll_event sig = { .events = EPOLLIN, .data.u32 = EVENT_SIGNAL };
		epoll_ctl(http->epfd, EPOLL_CTL_ADD, signal_fd, &sig);
		http->signal_watched = 1;
	}
	/* MHD reads requests and submits jobs; the dispatcher sends them and
	 * takes replies, resuming connections; MHD writes the answers.  In
	 * external mode MHD only sees a resume when run again, and the pool
	 * only sends a job when dispatched again: go round until a round
	 * neither submits nor resumes anything. */
	int pool_timeout = -1;
	for (int round = 0;; round++) {
		atomic_store_explicit(&http->activity, 0, memory_order_relaxed);
		MHD_run(http->daemon);
		pool_timeout = luapool_dispatch(http->pool);
		if (!atomic_load_explicit(&http->activity, memory_order_relaxed))
			break;
		if (round == 16) {
			pool_timeout = 0;	/* busy: come back without sleeping */
			break;
		}
	}
	/* MHD re-arms its listening socket, after the connection limit was
	 * reached, only in a later MHD_run: never sleep long without one. */
	int mhd_timeout = earliest(mhd_timeout_ms(http), LOOP_TICK_MS);
	int timeout = earliest(earliest(pool_timeout, mhd_timeout), max_wait_ms);
	struct epoll_event events[4];
	int n = epoll_wait(http->epfd, events, 4, timeout);
	int signo = 0;
	for (int i = 0; i < n; i++)
		if (events[i].data.u32 == EVENT_SIGNAL)
			signo = take_signal(signal_fd);
	return signo;
}

struct http *
http_start(const struct http_options *opts, struct luapool *pool, struct scripts *scripts,
    char *err, size_t errlen)
{
	struct http *http = calloc(1, sizeof(*http));
	struct sockaddr_storage ss;
	int ipv6 = 0;
	if (http == NULL)
		goto fail;
	http->opts = *opts;
	http->pool = pool;
	http->scripts = scripts;
	pthread_mutex_init(&http->config_lock, NULL);
	http->auth_token = opts->auth_token ? strdup(opts->auth_token) : NULL;
	http->info_json = opts->info_json ? strdup(opts->info_json) : NULL;
	atomic_init(&http->max_body_bytes, opts->max_body_bytes);
	atomic_init(&http->access_log, opts->access_log);
	atomic_init(&http->metrics_auth, opts->metrics_auth);
	if (resolve_listen(opts->host, opts->port, &ss, &ipv6) == -1) {
		snprintf(err, errlen, "cannot use listen address \"%s\"", opts->host);
		goto fail;
	}
	/* threads 0: this thread runs MHD and the pool's dispatcher in one
	 * event loop (http_serve_once); N: MHD's own N threads. */
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
	    MHD_USE_TURBO;
	if (opts->threads)
		flags |= MHD_USE_INTERNAL_POLLING_THREAD;
	if (ipv6)
		flags |= MHD_USE_IPv6;
	if (opts->tls_cert_pem) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(err, errlen, "this libmicrohttpd has no TLS support");
			goto fail;
		}
		flags |= MHD_USE_TLS;
	}
	/* Options that are only given when they apply. */
	struct MHD_OptionItem extra[4];
	unsigned n = 0;
	if (opts->threads > 1)
		extra[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, opts->threads, NULL };
	if (opts->tls_cert_pem) {
		extra[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
		    (void *)(uintptr_t)opts->tls_cert_pem };
		extra[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
		    (void *)(uintptr_t)opts->tls_key_pem };
	}
	extra[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	http->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, http,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, opts->max_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, opts->connection_timeout_s,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
	    /* A connection's memory pool bounds how much of a body MHD reads
	     * per call: 64 KiB reads a 66 KiB context in two.  (MHD clears
	     * the pool per request, which costs hello ~5 %; bigctx gains
	     * 7-17 %, measured alternately.) */
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, http,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, http,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, http,
	    MHD_OPTION_ARRAY, extra,
	    MHD_OPTION_END);
	if (http->daemon == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%u (address in use or not "
		    "available?)", opts->host && *opts->host ? opts->host : "*", opts->port);
		goto fail;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->daemon,
	    MHD_DAEMON_INFO_BIND_PORT);
	http->port = info ? info->port : opts->port;
	if (opts->threads == 0 && watch_event_sources(http, err, errlen) == -1)
		goto fail;
	return http;
fail:
	if (http) {
		if (http->daemon)
			MHD_stop_daemon(http->daemon);
		if (http->epfd > 0)
			close(http->epfd);
		free(http->auth_token);
		free(http->info_json);
		free(http);
	}
	return NULL;
}

unsigned
http_port(const struct http *http)
{
	return http->port;
}

void
http_reload(struct http *http, size_t max_body_bytes, int access_log, const char *auth_token,
    int metrics_auth)
{
	atomic_store(&http->max_body_bytes, max_body_bytes);
	atomic_store(&http->access_log, access_log);
	atomic_store(&http->metrics_auth, metrics_auth);
	pthread_mutex_lock(&http->config_lock);
	free(http->auth_token);
	http->auth_token = auth_token ? strdup(auth_token) : NULL;
	pthread_mutex_unlock(&http->config_lock);
}

void
http_begin_drain(struct http *http)
{
	atomic_store(&http->draining, 1);
	MHD_socket fd = MHD_quiesce_daemon(http->daemon);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

unsigned
http_in_flight(const struct http *http)
{
	return atomic_load(&http->in_flight);
}

void
http_stop(struct http *http)
{
	if (http == NULL)
		return;
	MHD_stop_daemon(http->daemon);
	if (http->epfd > 0)
		close(http->epfd);
	pthread_mutex_destroy(&http->config_lock);
	free(http->auth_token);
	free(http->info_json);
	free(http);
}
