/*
 * http_exec.c - the routes that need a worker: POST /v1/exec and
 * /v1/compile, and job submission for the other routes that run code.
 *
 * A request that needs a worker is submitted asynchronously and its
 * connection suspended; the pool's callback (on the dispatcher thread)
 * copies the answer into the request and resumes the connection, and the
 * next call of the access handler (http.c) queues the response.  This file
 * never queues a response nor waits for a job.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "daemon/jsonscan.h"
#include "http/http_internal.h"
#include "http/problem.h"

#define TIMEOUT_SCAN_MAX (16 * 1024)

static void
take_reply(struct request *r, const struct luapool_reply *reply)
{
	r->worker_pid = reply->worker_pid;
	r->chunk_is_source = reply->chunk_is_source;
	http_usage_note(r, reply);
	http_joblog_write(r, reply);
	if (reply->status == LUAPOOL_OK && r->route == METRICS_ROUTE_COMPILE &&
	    r->http->opts.bytecode_mode == HTTP_BYTECODE_SIGNED) {
		http_bytecode_prepare_signed(r, reply);
		return;
	}
	if (reply->status == LUAPOOL_OK) {
		size_t len = 0;
		char *body = http_usage_body(r, reply, &len);
		if (body == NULL) {
			http_request_prepare_problem(r, "internal_error", "out of memory", NULL);
			return;
		}
		http_request_prepare(r, 200, body, len, "application/json");
		return;
	}
	struct problem_job_parts parts = {
		.traceback = reply->traceback, .logs = reply->logs,
		.error_value = reply->error_value,
	};
	http_request_prepare_job_problem(r, reply->code ? reply->code :
	    luapool_status_code(reply->status), reply->message, &parts);
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
	http_request_unref(r);
}

static void
prepare_submit_error(struct request *r, const struct luapool_error *err)
{
	const char *code = luapool_status_code(err->status);
	http_request_prepare_problem(r, err->status == LUAPOOL_E_INVALID ? "invalid_request" :
	    code, err->message, NULL);
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

/* A request a front forwarded with the time it had left (the front spent
 * the rest): at most that, and at least 1 ms.  When the request's own
 * timeout is not known here (0), the front's figure stands for it: the
 * front derived it from that timeout, and it cannot pass max_timeout_ms
 * (http_forwarded.c); the worker still checks the request's timeout_ms. */
static unsigned
job_timeout_ms(struct request *r)
{
	unsigned own = request_timeout_ms(r);
	if (!r->has_deadline)
		return own;
	unsigned left = r->deadline_ms > 0 ? r->deadline_ms : 1;
	return own == 0 || left < own ? left : own;
}

void
http_exec_submit(struct request *r, enum luapool_job_kind kind, const char *chunk,
    size_t chunk_len, int chunk_is_source)
{
	struct luapool_job job = {
		.kind = kind,
		.request = r->body.len ? r->body.data : "{}",
		.request_len = r->body.len ? r->body.len : 2,
		.chunk = chunk, .chunk_len = chunk_len, .chunk_is_source = chunk_is_source,
		/* A stored script runs under its own name. */
		.chunk_name = chunk_len && r->script_item ? r->name : NULL,
		.timeout_ms = kind == LUAPOOL_JOB_EXEC ? job_timeout_ms(r) : 0,
	};
	struct luapool_error err;
	/* The job copies the chunk (a stored script) too: it counts. */
	if (chunk_len && http_limits_charge(r, chunk_len) == -1)
		return;
	atomic_fetch_add(&r->refs, 1);
	if (luapool_submit_async(r->http->pool, &job, on_job_done, r, &err) == -1) {
		atomic_fetch_sub(&r->refs, 1);
		prepare_submit_error(r, &err);
		return;
	}
	/* The job holds its own copy now; the charge stays until the request
	 * ends, standing for that copy and the answer. */
	buffer_free(&r->body);
	atomic_store_explicit(&r->http->activity, 1, memory_order_relaxed);
	pthread_mutex_lock(&r->lock);
	if (!r->done) {
		MHD_suspend_connection(r->conn);
		r->suspended = 1;
	}
	pthread_mutex_unlock(&r->lock);
}

void
http_exec_handle(struct request *r)
{
	if (r->body.len == 0) {
		http_request_prepare_problem(r, "invalid_json", "the request body is empty", NULL);
		return;
	}
	if (r->route == METRICS_ROUTE_EXEC &&
	    r->http->opts.bytecode_mode == HTTP_BYTECODE_SIGNED) {
		unsigned char *chunk = NULL;
		size_t len = 0;
		if (http_bytecode_take_signed(r, &chunk, &len) >= 0)
			http_exec_submit(r, LUAPOOL_JOB_EXEC, (const char *)chunk, len, 0);
		free(chunk);
		return;
	}
	http_exec_submit(r, r->route == METRICS_ROUTE_EXEC ? LUAPOOL_JOB_EXEC :
	    LUAPOOL_JOB_COMPILE, NULL, 0, 0);
}
