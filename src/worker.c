/*
 * worker.c - the job loop of a worker process (see worker.h).
 *
 * Deadlines: each job arms a CLOCK_MONOTONIC timer at enqueue time +
 * timeout, so time spent queued counts.  When it fires, the signal handler
 * makes the VM stop at its next Lua instruction (soft stop) and re-arms
 * the timer for the grace period; if the job is still running then (JIT
 * traces and C functions never look at hooks), the handler writes the
 * deadline reply itself and exits the process (hard stop).  The pool then
 * starts a fresh worker.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "frame.h"
#include "json.h"
#include "log.h"
#include "worker.h"

static struct vm *deadline_vm;
static timer_t deadline_timer;
static volatile sig_atomic_t job_running;
static volatile sig_atomic_t soft_stop_sent;
static int64_t grace_ns;

/* Prepared before each job so the handler only has to write it. */
static struct {
	struct frame_header header;
	char payload[96];
} hard_stop_reply;
static size_t hard_stop_reply_len;

static void
arm_timer_at(int64_t when_ns)
{
	struct itimerspec its = { 0 };
	if (when_ns > 0) {
		its.it_value.tv_sec = when_ns / 1000000000;
		its.it_value.tv_nsec = when_ns % 1000000000;
	}
	timer_settime(deadline_timer, TIMER_ABSTIME, &its, NULL);
}

static void
on_deadline(int sig)
{
	(void)sig;
	if (!job_running)
		return;
	if (!soft_stop_sent) {
		soft_stop_sent = 1;
		vm_interrupt(deadline_vm);
		arm_timer_at(frame_now_ns() + grace_ns);
		return;
	}
	ssize_t unused = write(FRAME_WORKER_FD, &hard_stop_reply, hard_stop_reply_len);
	(void)unused;
	_exit(FRAME_EXIT_DEADLINE);
}

int
worker_prepare_deadlines(struct vm *vm)
{
	deadline_vm = vm;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_deadline;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGALRM, &sa, NULL) == -1)
		return -1;
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGALRM;
	return timer_create(CLOCK_MONOTONIC, &sev, &deadline_timer);
}

static void
prepare_hard_stop_reply(uint64_t job_id)
{
	static const char payload[] = "deadline_exceeded\0deadline exceeded (hard stop: "
	    "the job ignored the soft stop)";
	memset(&hard_stop_reply.header, 0, sizeof(hard_stop_reply.header));
	hard_stop_reply.header.type = FRAME_REPLY;
	hard_stop_reply.header.job_id = job_id;
	hard_stop_reply.header.status = LUAPOOL_E_DEADLINE;
	hard_stop_reply.header.flags = FRAME_EXITING;
	hard_stop_reply.header.length = sizeof(payload);
	memcpy(hard_stop_reply.payload, payload, sizeof(payload));
	hard_stop_reply_len = sizeof(hard_stop_reply.header) + sizeof(payload);
}

/* What the worker needs of a request, pointers into the parsed tree. */
struct request {
	cJSON *root;
	const char *chunk;
	size_t chunk_len;
	int is_source;
	const char *name;
	const cJSON *context;
	unsigned timeout_ms;
	unsigned char *decoded;		/* base64-decoded bytecode, freed after */
};

static int
fail(struct vm_outcome *out, enum luapool_status status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(struct vm_outcome *out, enum luapool_status status, const char *code, const char *fmt, ...)
{
	out->status = status;
	out->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof(out->message), fmt, ap);
	va_end(ap);
	return -1;
}

static int
take_timeout(struct request *req, const struct worker_options *opts, struct vm_outcome *out)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(req->root, "timeout_ms");
	if (t == NULL || cJSON_IsNull(t))
		return 0;
	if (!cJSON_IsNumber(t) || t->valuedouble < 1 || t->valuedouble != (double)(long)t->valuedouble)
		return fail(out, LUAPOOL_E_INVALID, "invalid_request",
		    "timeout_ms must be a positive integer");
	if (t->valuedouble > opts->max_timeout_ms)
		return fail(out, LUAPOOL_E_INVALID, "invalid_request",
		    "timeout_ms %.0f is above the limit of %u", t->valuedouble, opts->max_timeout_ms);
	req->timeout_ms = (unsigned)t->valuedouble;
	return 0;
}

static int
take_chunk(struct request *req, const struct worker_options *opts, struct vm_outcome *out)
{
	const cJSON *bc = cJSON_GetObjectItemCaseSensitive(req->root, "bytecode");
	const cJSON *src = cJSON_GetObjectItemCaseSensitive(req->root, "source");
	if (bc && src)
		return fail(out, LUAPOOL_E_INVALID, "invalid_request",
		    "give either \"bytecode\" or \"source\", not both");
	if (src) {
		if (!cJSON_IsString(src))
			return fail(out, LUAPOOL_E_INVALID, "invalid_request",
			    "\"source\" must be a string");
		req->chunk = src->valuestring;
		req->chunk_len = strlen(src->valuestring);
		req->is_source = 1;
		return 0;
	}
	if (bc == NULL)
		return fail(out, LUAPOOL_E_INVALID, "invalid_request",
		    "the request needs \"bytecode\" (base64) or \"source\"");
	if (!cJSON_IsString(bc))
		return fail(out, LUAPOOL_E_INVALID, "invalid_request",
		    "\"bytecode\" must be a base64 string");
	if (!opts->allow_bytecode)
		return fail(out, LUAPOOL_E_INVALID, "invalid_request",
		    "bytecode is disabled on this server (allow_bytecode = no); send source");
	size_t len = strlen(bc->valuestring);
	req->decoded = malloc(base64_decoded_max(len) + 1);
	if (req->decoded == NULL)
		return fail(out, LUAPOOL_E_MEMORY, "memory_limit_exceeded", "out of memory");
	long n = base64_decode(bc->valuestring, len, req->decoded);
	if (n < 0)
		return fail(out, LUAPOOL_E_INVALID, "invalid_base64",
		    "\"bytecode\" is not valid base64");
	if (n == 0)
		return fail(out, LUAPOOL_E_BYTECODE, "invalid_bytecode", "\"bytecode\" is empty");
	req->chunk = (const char *)req->decoded;
	req->chunk_len = (size_t)n;
	return 0;
}

/* Parses the JSON request of a frame; the chunk may come with the frame. */
static int
parse_request(struct request *req, const struct frame_header *h, const char *payload,
    const struct worker_options *opts, struct vm_outcome *out)
{
	char err[256];
	memset(req, 0, sizeof(*req));
	const char *text = payload + h->chunk_len;
	size_t text_len = h->length - h->chunk_len;
	/* Two levels above the context's own limit: the request and "context". */
	req->root = json_parse(text, text_len, opts->vm.max_depth + 2, err, sizeof(err));
	if (req->root == NULL)
		return fail(out, LUAPOOL_E_INVALID, "invalid_json", "%s", err);
	if (!cJSON_IsObject(req->root))
		return fail(out, LUAPOOL_E_INVALID, "invalid_request", "the request must be a JSON object");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(req->root, "name");
	if (name && !cJSON_IsString(name))
		return fail(out, LUAPOOL_E_INVALID, "invalid_request", "\"name\" must be a string");
	req->name = name ? name->valuestring : NULL;
	const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(req->root, "context");
	if (ctx && !cJSON_IsNull(ctx) && !cJSON_IsObject(ctx))
		return fail(out, LUAPOOL_E_INVALID, "invalid_request", "\"context\" must be an object");
	req->context = ctx && cJSON_IsObject(ctx) ? ctx : NULL;
	if (take_timeout(req, opts, out) == -1)
		return -1;
	if (h->chunk_len) {
		req->chunk = payload;
		req->chunk_len = h->chunk_len;
		req->is_source = (h->flags & FRAME_CHUNK_IS_SOURCE) != 0;
		if (!req->is_source && !opts->allow_bytecode)
			return fail(out, LUAPOOL_E_INVALID, "invalid_request",
			    "bytecode is disabled on this server");
		return 0;
	}
	if (h->type == FRAME_COMPILE) {
		const cJSON *src = cJSON_GetObjectItemCaseSensitive(req->root, "source");
		if (!cJSON_IsString(src))
			return fail(out, LUAPOOL_E_INVALID, "invalid_request",
			    "\"source\" (a string) is required");
		req->chunk = src->valuestring;
		req->chunk_len = strlen(src->valuestring);
		req->is_source = 1;
		return 0;
	}
	return take_chunk(req, opts, out);
}

static void
request_free(struct request *req)
{
	cJSON_Delete(req->root);
	free(req->decoded);
}

static int64_t
job_deadline(const struct frame_header *h, const struct request *req,
    const struct worker_options *opts)
{
	unsigned timeout = h->timeout_ms ? h->timeout_ms :
	    req->timeout_ms ? req->timeout_ms : opts->default_timeout_ms;
	return h->enqueued_ns + (int64_t)timeout * 1000000;
}

static void
run_job(struct vm *vm, const struct frame_header *h, const char *payload,
    const struct worker_options *opts, struct vm_outcome *out)
{
	struct request req;
	if (parse_request(&req, h, payload, opts, out) == -1) {
		request_free(&req);
		return;
	}
	int64_t deadline = job_deadline(h, &req, opts);
	if (deadline <= frame_now_ns()) {
		fail(out, LUAPOOL_E_DEADLINE, "deadline_exceeded",
		    "deadline passed while the job was queued");
		request_free(&req);
		return;
	}
	prepare_hard_stop_reply(h->job_id);
	soft_stop_sent = 0;
	job_running = 1;
	arm_timer_at(deadline);
	if (h->type == FRAME_COMPILE) {
		vm_compile(vm, req.chunk, req.chunk_len, req.name, out);
	} else {
		struct vm_job job = {
			.chunk = req.chunk, .chunk_len = req.chunk_len, .is_source = req.is_source,
			.name = req.name, .context = req.context,
		};
		vm_run(vm, &job, out);
	}
	arm_timer_at(0);
	job_running = 0;
	request_free(&req);
}

static int
send_reply(const struct frame_header *request, const struct vm_outcome *out, int64_t run_ns)
{
	struct frame_header h = {
		.type = FRAME_REPLY, .job_id = request->job_id, .status = out->status,
		.run_ns = (uint64_t)run_ns,
	};
	h.flags = (out->soft_stopped ? FRAME_SOFT_STOP : 0) |
	    (out->cache_hit ? FRAME_CACHE_HIT : 0) | (out->cache_miss ? FRAME_CACHE_MISS : 0);
	if (out->status == LUAPOOL_OK)
		return frame_send(FRAME_WORKER_FD, &h, out->body.data, out->body.len);
	/* code \0 message \0 traceback */
	struct buffer err;
	buffer_init(&err, 0);
	buffer_append(&err, out->code, strlen(out->code) + 1);
	buffer_append(&err, out->message, strlen(out->message) + 1);
	if (out->traceback.len)
		buffer_append(&err, out->traceback.data, out->traceback.len);
	int rc = frame_send(FRAME_WORKER_FD, &h, err.data, err.len);
	buffer_free(&err);
	return rc;
}

int
worker_run(struct vm *vm, const struct worker_options *opts)
{
	struct frame_header h = { .type = FRAME_READY };
	struct buffer payload;
	struct vm_outcome out;
	int status = 0;
	buffer_init(&payload, 0);
	buffer_init(&out.body, opts->vm.max_result_bytes + 64);
	buffer_init(&out.traceback, 16384);
	grace_ns = (int64_t)opts->grace_ms * 1000000;
	const char *version = vm_version();
	if (frame_send(FRAME_WORKER_FD, &h, version, strlen(version)) == -1)
		goto done;
	for (;;) {
		if (frame_read_all(FRAME_WORKER_FD, &h, sizeof(h)) == -1)
			break;		/* the pool closed our socket: exit quietly */
		if ((h.type != FRAME_EXEC && h.type != FRAME_COMPILE) ||
		    h.length > opts->max_request_bytes || h.chunk_len > h.length) {
			log_error("bad frame: type %u length %u", h.type, h.length);
			status = 2;
			break;
		}
		buffer_reset(&payload);
		if (buffer_reserve(&payload, h.length) == -1 ||
		    frame_read_all(FRAME_WORKER_FD, payload.data, h.length) == -1) {
			status = 2;
			break;
		}
		payload.data[h.length] = '\0';
		int64_t start = frame_now_ns();
		run_job(vm, &h, payload.data, opts, &out);
		if (send_reply(&h, &out, frame_now_ns() - start) == -1)
			break;
	}
done:
	buffer_free(&payload);
	buffer_free(&out.body);
	buffer_free(&out.traceback);
	return status;
}
