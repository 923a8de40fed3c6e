/*
 * pool.c - the public luapool API: creating a pool, blocking and
 * asynchronous submit, drain, shutdown and stats.
 *
 * Never touches a worker process: dispatcher.c owns them; the queue itself
 * is queue.c.  Never parses a
 * job's context: the JSON request goes to the worker as it came.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base64.h"
#include "pool/context.h"
#include "common/log.h"
#include "pool/dispatcher.h"
#include "pool/pool_internal.h"
#include "pool/queue.h"
#include "pool/process.h"

static void
set_error(struct luapool_error *err, enum luapool_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_error(struct luapool_error *err, enum luapool_status status, const char *fmt, ...)
{
	if (err == NULL)
		return;
	err->status = status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

void
luapool_options_init(struct luapool_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->queue_depth = LUAPOOL_DEFAULT_QUEUE_DEPTH;
	opts->default_timeout_ms = LUAPOOL_DEFAULT_TIMEOUT_MS;
	opts->max_timeout_ms = LUAPOOL_DEFAULT_MAX_TIMEOUT_MS;
	opts->memory_limit_mb = LUAPOOL_DEFAULT_MEMORY_MB;
	opts->max_result_bytes = LUAPOOL_DEFAULT_MAX_RESULT;
	opts->max_jobs_per_worker = LUAPOOL_DEFAULT_MAX_JOBS;
	opts->cache_entries = LUAPOOL_DEFAULT_CACHE_ENTRIES;
	opts->grace_ms = LUAPOOL_DEFAULT_GRACE_MS;
	opts->max_json_depth = LUAPOOL_DEFAULT_MAX_DEPTH;
	opts->max_log_bytes = LUAPOOL_DEFAULT_MAX_LOG;
	opts->allow_bytecode = 1;
	opts->bytecode_jit = 1;
	opts->worker_user = LUAPOOL_DEFAULT_WORKER_USER;
}

static int
options_check(const struct luapool_options *o, struct luapool_error *err)
{
	if (o->queue_depth == 0 || o->max_timeout_ms == 0 || o->default_timeout_ms == 0 ||
	    o->default_timeout_ms > o->max_timeout_ms || o->memory_limit_mb < 4 ||
	    o->max_result_bytes < 16 || o->max_json_depth == 0 || o->workers > 1024 ||
	    o->max_log_bytes > LUAPOOL_MAX_LOG_LIMIT) {
		set_error(err, LUAPOOL_E_INVALID, "invalid pool options");
		return -1;
	}
	return 0;
}

static void
add_worker_arg(struct luapool *pool, unsigned *argc, const char *flag, unsigned long value)
{
	unsigned slot = *argc / 2;
	snprintf(pool->argv_text[slot], sizeof(pool->argv_text[slot]), "%lu", value);
	pool->worker_argv[(*argc)++] = (char *)(uintptr_t)flag;
	pool->worker_argv[(*argc)++] = pool->argv_text[slot];
}

/* The worker learns its limits from its command line (see worker_main.c). */
static void
build_worker_argv(struct luapool *pool)
{
	const struct luapool_options *o = &pool->opts;
	unsigned argc = 0;
	pool->worker_argv[argc++] = pool->worker_path;
	add_worker_arg(pool, &argc, "--memory-mb", o->memory_limit_mb);
	add_worker_arg(pool, &argc, "--max-result", o->max_result_bytes);
	add_worker_arg(pool, &argc, "--max-depth", o->max_json_depth);
	add_worker_arg(pool, &argc, "--max-log-bytes", o->max_log_bytes);
	add_worker_arg(pool, &argc, "--cache", o->cache_entries);
	add_worker_arg(pool, &argc, "--grace-ms", o->grace_ms);
	add_worker_arg(pool, &argc, "--default-timeout-ms", o->default_timeout_ms);
	add_worker_arg(pool, &argc, "--max-timeout-ms", o->max_timeout_ms);
	add_worker_arg(pool, &argc, "--allow-bytecode",
	    o->allow_bytecode == LUAPOOL_BYTECODE_BESIDE ? LUAPOOL_BYTECODE_BESIDE :
	    o->allow_bytecode ? LUAPOOL_BYTECODE_ANY : LUAPOOL_BYTECODE_NONE);
	add_worker_arg(pool, &argc, "--bytecode-jit", o->bytecode_jit != 0);
	add_worker_arg(pool, &argc, "--ppid", (unsigned long)getpid());
	pool->log_level_slot = argc / 2;
	add_worker_arg(pool, &argc, "--log-level", (unsigned long)log_get_level());
	if (pool->switch_user) {
		add_worker_arg(pool, &argc, "--uid", (unsigned long)pool->worker_uid);
		add_worker_arg(pool, &argc, "--gid", (unsigned long)pool->worker_gid);
	}
	pool->worker_argv[argc] = NULL;
}

/*
 * A pool started as root runs its workers as opts.worker_user, resolved
 * here once (the worker switches itself, see sandbox_drop_privileges).
 * Not root: nothing to switch, and a user that is not the default is
 * worth a warning.  -1 with err filled.
 */
static int
resolve_worker_user(struct luapool *pool, const char *name, struct luapool_error *err)
{
	if (geteuid() != 0) {
		if (name != NULL && strcmp(name, LUAPOOL_DEFAULT_WORKER_USER) != 0)
			log_warn("worker_user %s ignored: luapoold is not running as root", name);
		return 0;
	}
	if (name == NULL || name[0] == '\0') {
		set_error(err, LUAPOOL_E_INVALID, "running as root needs a worker_user");
		return -1;
	}
	struct passwd pw, *found = NULL;
	char text[4096];
	int rc = getpwnam_r(name, &pw, text, sizeof(text), &found);
	if (found == NULL) {
		set_error(err, LUAPOOL_E_INVALID, "worker_user \"%s\": %s", name,
		    rc ? strerror(rc) : "no such user");
		return -1;
	}
	if (pw.pw_uid == 0 || pw.pw_gid == 0) {
		set_error(err, LUAPOOL_E_INVALID, "worker_user \"%s\" has uid or gid 0; "
		    "workers must not run as root", name);
		return -1;
	}
	pool->switch_user = 1;
	pool->worker_uid = pw.pw_uid;
	pool->worker_gid = pw.pw_gid;
	return 0;
}

/* Bounded wait until every worker said READY, so a new pool serves at full
 * strength.  -1 only if none started at all. */
static int
wait_for_workers(struct luapool *pool)
{
	for (int i = 0; i < 5000; i++) {
		if (pool->opts.external_dispatch)
			dispatcher_run_once(pool, 0);
		if (atomic_load(&pool->live) >= pool->opts.workers)
			return 0;
		pthread_mutex_lock(&pool->lock);
		int failed = pool->startup_failed;
		pthread_mutex_unlock(&pool->lock);
		if (failed && atomic_load(&pool->live) == 0)
			return -1;
		usleep(1000);
	}
	return atomic_load(&pool->live) > 0 ? 0 : -1;
}

struct luapool *
luapool_new_with(const struct luapool_options *opts, struct luapool_error *err)
{
	struct luapool *pool = NULL;
	struct luapool_options defaults;
	if (opts == NULL) {
		luapool_options_init(&defaults);
		opts = &defaults;
	}
	if (options_check(opts, err) == -1)
		return NULL;
	pool = calloc(1, sizeof(*pool));
	if (pool == NULL) {
		set_error(err, LUAPOOL_E_INVALID, "out of memory");
		return NULL;
	}
	pool->opts = *opts;
	pool->opts.worker_path = NULL;
	pool->opts.worker_user = NULL;
	if (pool->opts.workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		pool->opts.workers = n > 0 ? (unsigned)n : 1;
	}
	pool->epfd = pool->wakefd = -1;
	if (process_find_worker(opts->worker_path, pool->worker_path, sizeof(pool->worker_path)) == -1) {
		if (opts->worker_path && opts->worker_path[0])
			set_error(err, LUAPOOL_E_INVALID, "worker_path %s is not an executable file",
			    opts->worker_path);
		else
			set_error(err, LUAPOOL_E_INVALID, "no executable luapool-worker found (set "
			    "the worker_path option or LUAPOOL_WORKER)");
		free(pool);
		return NULL;
	}
	if (resolve_worker_user(pool, opts->worker_user, err) == -1) {
		free(pool);
		return NULL;
	}
	build_worker_argv(pool);
	pthread_mutex_init(&pool->lock, NULL);
	pool->accepting = 1;
	pool->stats.workers_target = pool->opts.workers;
	pool->stats.queue_depth = pool->opts.queue_depth;
	if (dispatcher_start(pool, err) == -1) {
		pthread_mutex_destroy(&pool->lock);
		free(pool);
		return NULL;
	}
	if (wait_for_workers(pool) == -1) {
		set_error(err, LUAPOOL_E_INVALID, "no worker started (%s); see the log",
		    pool->worker_path);
		luapool_free(pool);
		return NULL;
	}
	return pool;
}

struct luapool *
luapool_new(unsigned num_workers, struct luapool_error *err)
{
	struct luapool_options opts;
	luapool_options_init(&opts);
	opts.workers = num_workers;
	return luapool_new_with(&opts, err);
}

static int
job_spec_check(const struct luapool *pool, const struct luapool_job *spec,
    struct luapool_error *err)
{
	if (spec == NULL || (spec->request == NULL && spec->request_len) ||
	    (spec->chunk == NULL && spec->chunk_len) ||
	    (spec->kind != LUAPOOL_JOB_EXEC && spec->kind != LUAPOOL_JOB_COMPILE &&
	    spec->kind != LUAPOOL_JOB_CHECK_SCRIPT)) {
		set_error(err, LUAPOOL_E_INVALID, "invalid job");
		return -1;
	}
	if (spec->chunk_len > FRAME_MAX_PAYLOAD || spec->request_len > FRAME_MAX_PAYLOAD ||
	    spec->chunk_len + spec->request_len + FRAME_CHUNK_NAME_MAX + 1 > FRAME_MAX_PAYLOAD) {
		set_error(err, LUAPOOL_E_INVALID, "job too large (at most %u bytes)",
		    FRAME_MAX_PAYLOAD);
		return -1;
	}
	if (spec->timeout_ms > pool->opts.max_timeout_ms) {
		set_error(err, LUAPOOL_E_INVALID, "timeout_ms %u is above the limit of %u",
		    spec->timeout_ms, pool->opts.max_timeout_ms);
		return -1;
	}
	return 0;
}

int
luapool_submit_async(struct luapool *pool, const struct luapool_job *spec,
    luapool_callback *done, void *arg, struct luapool_error *err)
{
	if (pool == NULL || done == NULL) {
		set_error(err, LUAPOOL_E_INVALID, "no pool or no callback");
		return -1;
	}
	if (job_spec_check(pool, spec, err) == -1)
		return -1;
	struct job *job = queue_job_new(spec, done, arg);
	if (job == NULL) {
		set_error(err, LUAPOOL_E_OVERLOADED, "out of memory");
		return -1;
	}
	enum luapool_status refused = queue_push(pool, job);
	if (refused == LUAPOOL_E_SHUTDOWN) {
		queue_job_free(job);
		set_error(err, LUAPOOL_E_SHUTDOWN, "the pool is shutting down");
		return -1;
	}
	if (refused != LUAPOOL_OK) {
		queue_job_free(job);
		set_error(err, LUAPOOL_E_OVERLOADED, "queue full (%u jobs waiting)",
		    pool->opts.queue_depth);
		return -1;
	}
	dispatcher_wake(pool);
	return 0;
}

/* Blocking submit: an async submit and a condition variable. */
struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
	int want_bytecode;
	cJSON *result;
	void *bytes;
	size_t bytes_len;
	struct luapool_error err;
};

static void
waiter_take_result(struct waiter *w, const struct luapool_reply *reply)
{
	cJSON *body = cJSON_ParseWithLength(reply->body, reply->body_len);
	const char *field = w->want_bytecode ? "bytecode" : "result";
	cJSON *value = body ? cJSON_DetachItemFromObjectCaseSensitive(body, field) : NULL;
	cJSON_Delete(body);
	if (value == NULL) {
		set_error(&w->err, LUAPOOL_E_RESULT, "worker reply without %s", field);
		return;
	}
	if (!w->want_bytecode) {
		w->result = value;
		return;
	}
	const char *b64 = cJSON_GetStringValue(value);
	size_t len = b64 ? strlen(b64) : 0;
	w->bytes = malloc(base64_decoded_max(len) + 1);
	long n = w->bytes && b64 ? base64_decode(b64, len, w->bytes) : -1;
	cJSON_Delete(value);
	if (n < 0) {
		free(w->bytes);
		w->bytes = NULL;
		set_error(&w->err, LUAPOOL_E_RESULT, "worker reply with bad bytecode");
		return;
	}
	w->bytes_len = (size_t)n;
}

static void
waiter_done(void *arg, const struct luapool_reply *reply)
{
	struct waiter *w = arg;
	if (reply->status == LUAPOOL_OK)
		waiter_take_result(w, reply);
	else
		set_error(&w->err, reply->status, "%s", reply->message ? reply->message :
		    luapool_status_code(reply->status));
	pthread_mutex_lock(&w->lock);
	w->done = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static int
submit_and_wait(struct luapool *pool, const struct luapool_job *spec, struct waiter *w,
    struct luapool_error *err)
{
	memset(w, 0, sizeof(*w));
	w->want_bytecode = spec->kind == LUAPOOL_JOB_COMPILE;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	int rc = luapool_submit_async(pool, spec, waiter_done, w, err);
	if (rc == 0) {
		pthread_mutex_lock(&w->lock);
		while (!w->done) {
			if (pool->opts.external_dispatch && pthread_equal(pthread_self(), pool->owner)) {
				/* We are the dispatcher: run it until our job is back. */
				pthread_mutex_unlock(&w->lock);
				dispatcher_run_once(pool, 10);
				pthread_mutex_lock(&w->lock);
				continue;
			}
			pthread_cond_wait(&w->cond, &w->lock);
		}
		pthread_mutex_unlock(&w->lock);
		if (w->err.status != LUAPOOL_OK) {
			if (err)
				*err = w->err;
			rc = -1;
		}
	}
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	return rc;
}

static cJSON *
submit_chunk(struct luapool *pool, const void *chunk, size_t len, int is_source,
    const struct luapool_context *ctx, unsigned timeout_ms, struct luapool_error *err)
{
	if (chunk == NULL || len == 0) {
		set_error(err, LUAPOOL_E_INVALID, "empty chunk");
		return NULL;
	}
	char *request = context_request_json(ctx);
	if (request == NULL) {
		set_error(err, LUAPOOL_E_INVALID, "context cannot be serialized");
		return NULL;
	}
	struct luapool_job spec = {
		.kind = LUAPOOL_JOB_EXEC,
		.request = request, .request_len = strlen(request),
		.chunk = chunk, .chunk_len = len, .chunk_is_source = is_source,
		.timeout_ms = timeout_ms ? timeout_ms : pool->opts.default_timeout_ms,
	};
	struct waiter w;
	int rc = submit_and_wait(pool, &spec, &w, err);
	cJSON_free(request);
	if (rc == -1)
		return NULL;
	if (err) {
		err->status = LUAPOOL_OK;
		err->message[0] = '\0';
	}
	return w.result;
}

cJSON *
luapool_submit_timeout(struct luapool *pool, const void *bytecode, size_t len,
    const struct luapool_context *ctx, unsigned timeout_ms, struct luapool_error *err)
{
	return submit_chunk(pool, bytecode, len, 0, ctx, timeout_ms, err);
}

cJSON *
luapool_submit(struct luapool *pool, const void *bytecode, size_t len,
    const struct luapool_context *ctx, struct luapool_error *err)
{
	return submit_chunk(pool, bytecode, len, 0, ctx, 0, err);
}

cJSON *
luapool_submit_source(struct luapool *pool, const char *source, size_t len,
    const struct luapool_context *ctx, unsigned timeout_ms, struct luapool_error *err)
{
	return submit_chunk(pool, source, len, 1, ctx, timeout_ms, err);
}

void *
luapool_compile(struct luapool *pool, const char *source, size_t len,
    const char *chunkname, size_t *out_len, struct luapool_error *err)
{
	cJSON *request = cJSON_CreateObject();
	if (request == NULL)
		return NULL;
	if (chunkname)
		cJSON_AddStringToObject(request, "name", chunkname);
	char *text = cJSON_PrintUnformatted(request);
	cJSON_Delete(request);
	if (text == NULL)
		return NULL;
	struct luapool_job spec = {
		.kind = LUAPOOL_JOB_COMPILE,
		.request = text, .request_len = strlen(text),
		.chunk = source, .chunk_len = len, .chunk_is_source = 1,
		.timeout_ms = pool->opts.default_timeout_ms,
	};
	struct waiter w;
	int rc = submit_and_wait(pool, &spec, &w, err);
	cJSON_free(text);
	if (rc == -1)
		return NULL;
	*out_len = w.bytes_len;
	return w.bytes;
}

unsigned
luapool_active_workers(const struct luapool *pool)
{
	return pool ? atomic_load(&pool->live) : 0;
}

void
luapool_stats(const struct luapool *pool, struct luapool_stats *out)
{
	struct luapool *p = (struct luapool *)(uintptr_t)pool;
	pthread_mutex_lock(&p->lock);
	*out = p->stats;
	out->queued = p->queued;
	pthread_mutex_unlock(&p->lock);
	out->workers_live = atomic_load(&p->live);
	out->workers_busy = atomic_load(&p->busy);
	out->workers_idle = out->workers_live > out->workers_busy ?
	    out->workers_live - out->workers_busy : 0;
}

int
luapool_poll_fd(const struct luapool *pool)
{
	return pool->epfd;
}

int
luapool_dispatch(struct luapool *pool)
{
	if (pool->workers == NULL)
		return -1;		/* shut down: nothing to dispatch */
	dispatcher_run_once(pool, 0);
	return dispatcher_next_timeout_ms(pool);
}

void
luapool_engine_version(const struct luapool *pool, char *out, size_t outlen)
{
	struct luapool *p = (struct luapool *)(uintptr_t)pool;
	pthread_mutex_lock(&p->lock);
	snprintf(out, outlen, "%s", p->engine_version);
	pthread_mutex_unlock(&p->lock);
}

unsigned
luapool_drain(struct luapool *pool)
{
	pthread_mutex_lock(&pool->lock);
	pool->accepting = 0;
	unsigned left = pool->outstanding;
	pthread_mutex_unlock(&pool->lock);
	return left;
}

int
luapool_shutdown(struct luapool *pool)
{
	if (pool == NULL)
		return 0;
	pthread_mutex_lock(&pool->lock);
	if (pool->shut_down) {
		pthread_mutex_unlock(&pool->lock);
		return 0;
	}
	pool->accepting = 0;
	pool->stopping = 1;
	pthread_mutex_unlock(&pool->lock);
	dispatcher_wake(pool);
	dispatcher_join(pool);
	pthread_mutex_lock(&pool->lock);
	pool->shut_down = 1;
	pthread_mutex_unlock(&pool->lock);
	return pool->kill_needed ? -1 : 0;
}

void
luapool_free(struct luapool *pool)
{
	if (pool == NULL)
		return;
	luapool_shutdown(pool);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}
