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
 *
 * Modules: a job's require() fetches a module from the pool through
 * fetch_module (given to the VM, vm_require.h), which blocks on the socket
 * for the answer; the timer keeps running meanwhile (a soft stop lands
 * when Lua resumes, a hard stop writes its reply and exits from there).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/log.h"
#include "vm/deadline_timer.h"
#include "vm/vm_request.h"
#include "vm/vm_require.h"
#include "vm/worker.h"

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

/* The job being run (its id goes on FRAME_MODULE) and the last module
 * fetched, valid until the next fetch. */
static uint64_t running_job_id;
static struct buffer module_in;
/* A module buffer grown past this is released after the job. */
#define MODULE_BUFFER_KEEP ((size_t)1 << 20)

static void
on_deadline(int sig)
{
	(void)sig;
	if (!job_running)
		return;
	if (!soft_stop_sent) {
		int saved_errno = errno;	/* the job may be between a call and its check */
		soft_stop_sent = 1;
		vm_interrupt(deadline_vm);
		deadline_timer_arm(deadline_timer, frame_now_ns() + grace_ns);
		errno = saved_errno;
		return;
	}
	ssize_t unused = write(FRAME_WORKER_FD, &hard_stop_reply, hard_stop_reply_len);
	(void)unused;
	_exit(FRAME_EXIT_DEADLINE);
}

/* The job's Lua code returned: what follows (encoding, a full collection)
 * is ours, and must not be taken for a job that ignored its soft stop. */
static void
lua_finished(void)
{
	job_running = 0;
}

int
worker_prepare_deadlines(struct vm *vm)
{
	deadline_vm = vm;
	vm_on_lua_done(vm, lua_finished);
	return deadline_timer_create(on_deadline, &deadline_timer);
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

static int64_t
job_deadline(const struct frame_header *h, const struct vm_request *req,
    const struct worker_options *opts)
{
	unsigned timeout = h->timeout_ms ? h->timeout_ms :
	    req->timeout_ms ? req->timeout_ms : opts->default_timeout_ms;
	return h->enqueued_ns + (int64_t)timeout * 1000000;
}

/* A chunk sent with its name in front ("name\0chunk", FRAME_CHUNK_NAMED):
 * split it.  The pool wrote it, so a malformed one only loses the name. */
static void
take_chunk_name(struct vm_request *req, const struct frame_header *h)
{
	if (!(h->flags & FRAME_CHUNK_NAMED) || req->chunk == NULL)
		return;
	size_t room = req->chunk_len < FRAME_CHUNK_NAME_MAX + 1 ? req->chunk_len :
	    FRAME_CHUNK_NAME_MAX + 1;
	const char *nul = memchr(req->chunk, '\0', room);
	if (nul == NULL)
		return;
	req->chunk_name = req->chunk;
	req->chunk_len -= (size_t)(nul + 1 - req->chunk);
	req->chunk = req->chunk_len ? nul + 1 : NULL;
}

static int
read_exactly(void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(FRAME_WORKER_FD, (char *)buf + got, len - got);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || errno != EINTR)
			return -1;
	}
	return 0;
}

/* The socket no longer carries frames we can follow: nothing sane to do
 * but leave (the pool answers the job from our exit status). */
static void
lose_the_pool(const char *what)
{
	log_error("fetching a module: %s", what);
	_exit(2);
}

/* vm_module_fetch_fn: FRAME_MODULE with the name, then the pool's
 * FRAME_MODULE_REPLY, which comes before anything else it sends. */
static enum vm_module_answer
fetch_module(void *arg, const char *name, struct vm_module *module)
{
	(void)arg;
	struct frame_header h = { .type = FRAME_MODULE, .job_id = running_job_id };
	if (frame_send(FRAME_WORKER_FD, &h, name, strlen(name)) == -1)
		lose_the_pool("cannot write to the pool");
	if (read_exactly(&h, sizeof(h)) == -1)
		lose_the_pool("no answer from the pool");
	if (h.type != FRAME_MODULE_REPLY || h.job_id != running_job_id ||
	    h.length > FRAME_MODULE_MAX_BYTES)
		lose_the_pool("unexpected frame");
	buffer_reset(&module_in);
	if (buffer_reserve_exact(&module_in, (size_t)h.length + 1) == -1) {
		/* Read it anyway, to stay in step with the pool. */
		char skip[4096];
		for (size_t left = h.length; left > 0; left -= left < sizeof(skip) ? left : sizeof(skip))
			if (read_exactly(skip, left < sizeof(skip) ? left : sizeof(skip)) == -1)
				lose_the_pool("no answer from the pool");
		return VM_MODULE_TOO_LARGE;
	}
	if (read_exactly(module_in.data, h.length) == -1)
		lose_the_pool("no answer from the pool");
	module->chunk = module_in.data;
	module->len = h.length;
	module->is_source = (h.flags & FRAME_CHUNK_IS_SOURCE) != 0;
	switch (h.status) {
	case FRAME_MODULE_FOUND:
		return VM_MODULE_FOUND;
	case FRAME_MODULE_MISSING:
		return VM_MODULE_MISSING;
	case FRAME_MODULE_TOO_LARGE:
		return VM_MODULE_TOO_LARGE;
	default:
		return VM_MODULE_UNAVAILABLE;
	}
}

static int64_t
thread_cpu_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == -1)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
run_job(struct vm *vm, const struct frame_header *h, const char *payload,
    const struct worker_options *opts, struct vm_outcome *out)
{
	struct vm_request req = {
		.text = payload + h->chunk_len, .len = h->length - h->chunk_len,
		.chunk = h->chunk_len ? payload : NULL, .chunk_len = h->chunk_len,
		.chunk_is_source = (h->flags & FRAME_CHUNK_IS_SOURCE) != 0,
		.chunk_name = NULL,
		.compile = h->type == FRAME_COMPILE,
		.check_script = h->type == FRAME_COMPILE && (h->flags & FRAME_CHECK_SCRIPT),
		.allow_bytecode = opts->allow_bytecode,
		.max_timeout_ms = opts->max_timeout_ms,
	};
	out->usage = 0;
	out->cpu_ns = 0;
	take_chunk_name(&req, h);
	if (vm_request_load(vm, &req, out) == -1)
		return;
	int64_t deadline = job_deadline(h, &req, opts);
	if (deadline <= frame_now_ns()) {
		out->status = LUAPOOL_E_DEADLINE;
		out->code = "deadline_exceeded";
		snprintf(out->message, sizeof(out->message), "deadline passed while the job was queued");
		return;
	}
	prepare_hard_stop_reply(h->job_id);
	running_job_id = h->job_id;
	soft_stop_sent = 0;
	/* CPU time is a real system call (no vDSO for CPU clocks): only when
	 * asked, and from here, so decoding the request is not counted. */
	int64_t cpu_start = req.usage ? thread_cpu_ns() : 0;
	/* Re-arm before marking the job running: a signal from the previous
	 * job's timer arrives by the end of timer_settime and finds no job. */
	deadline_timer_arm(deadline_timer, deadline);
	job_running = 1;
	vm_run_loaded(vm, out);
	/* The timer stays armed: if it fires between jobs the handler sees
	 * job_running == 0, and the next job re-arms it.  One syscall less. */
	job_running = 0;
	if (req.usage) {
		int64_t cpu = thread_cpu_ns() - cpu_start;
		out->usage = 1;
		out->cpu_ns = cpu > 0 ? (uint64_t)cpu : 0;
	}
}

static int
send_reply(const struct frame_header *request, const struct vm_outcome *out, int64_t run_ns)
{
	struct frame_header h = {
		.type = FRAME_REPLY, .job_id = request->job_id, .status = out->status,
		.run_ns = (uint64_t)run_ns, .cpu_ns = out->cpu_ns,
		.heap_peak_bytes = out->heap_peak_bytes,
	};
	h.flags = (out->soft_stopped ? FRAME_SOFT_STOP : 0) |
	    (out->cache_hit ? FRAME_CACHE_HIT : 0) | (out->cache_miss ? FRAME_CACHE_MISS : 0) |
	    (out->heap_high ? FRAME_HEAP_HIGH : 0) |
	    (out->replace == VM_REPLACE_BAD_LOAD ? FRAME_REPLACE_BAD_LOAD : 0) |
	    (out->replace == VM_REPLACE_DAMAGED ? FRAME_REPLACE_DAMAGED : 0) |
	    (out->replace == VM_REPLACE_MEMORY ? FRAME_REPLACE_MEMORY : 0) |
	    (out->chunk_is_source ? FRAME_REPLY_SOURCE : 0) | (out->usage ? FRAME_USAGE : 0) |
	    (out->body_has_logs ? FRAME_REPLY_LOGS : 0);
	if (out->status == LUAPOOL_OK)
		return frame_send(FRAME_WORKER_FD, &h, out->body.data, out->body.len);
	/* code \0 message \0 traceback [\0 logs \0 error_value] */
	struct buffer err;
	buffer_init(&err, 0);
	buffer_append(&err, out->code, strlen(out->code) + 1);
	buffer_append(&err, out->message, strlen(out->message) + 1);
	if (out->traceback.len)
		buffer_append(&err, out->traceback.data, out->traceback.len);
	if (out->logs.len || out->error_value.len) {
		buffer_append_char(&err, '\0');
		buffer_append(&err, out->logs.data, out->logs.len);
		buffer_append_char(&err, '\0');
		buffer_append(&err, out->error_value.data, out->error_value.len);
	}
	int rc = frame_send(FRAME_WORKER_FD, &h, err.data, err.len);
	buffer_free(&err);
	return rc;
}

/*
 * Reads the next request frame into `in` with as few read(2) calls as the
 * socket allows (usually one: header and payload arrive together).  The
 * frame starts at in->data; returns -1 at the end of input or on a bad
 * frame (*bad set).
 */
static int
read_request(struct buffer *in, size_t *consumed, struct frame_header *h,
    const struct worker_options *opts, int *bad)
{
	/* Drop the previous frame, keep any bytes already read past it. */
	if (*consumed) {
		memmove(in->data, in->data + *consumed, in->len - *consumed);
		in->len -= *consumed;
		*consumed = 0;
	}
	size_t need = sizeof(*h);
	for (;;) {
		if (in->len >= sizeof(*h)) {
			memcpy(h, in->data, sizeof(*h));
			if ((h->type != FRAME_EXEC && h->type != FRAME_COMPILE) ||
			    h->length > opts->max_request_bytes || h->chunk_len > h->length) {
				log_error("bad frame: type %u length %u", h->type, h->length);
				*bad = 1;
				return -1;
			}
			need = sizeof(*h) + h->length;
			if (in->len >= need)
				break;
		}
		if (buffer_reserve(in, need - in->len > 65536 ? need - in->len : 65536) == -1) {
			*bad = 1;
			return -1;
		}
		ssize_t n = read(FRAME_WORKER_FD, in->data + in->len, in->cap - in->len - 1);
		if (n == 0)
			return -1;	/* the pool closed our socket: exit quietly */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		in->len += (size_t)n;
	}
	*consumed = need;
	return 0;
}

int
worker_run(struct vm *vm, const struct worker_options *opts)
{
	struct frame_header h = { .type = FRAME_READY };
	struct buffer in;
	struct vm_outcome out;
	size_t consumed = 0;
	int bad = 0;
	buffer_init(&in, 0);
	buffer_init(&out.body, opts->vm.max_result_bytes + 64);
	buffer_init(&out.traceback, 16384);
	buffer_init(&out.logs, 0);	/* bounded by max_log_bytes (vm_log.c) */
	buffer_init(&out.error_value, opts->vm.max_result_bytes);
	buffer_init(&module_in, 0);	/* bounded by FRAME_MODULE_MAX_BYTES */
	vm_require_configure(vm, fetch_module, NULL, opts->allow_bytecode);
	grace_ns = (int64_t)opts->grace_ms * 1000000;
	const char *version = vm_version();
	if (frame_send(FRAME_WORKER_FD, &h, version, strlen(version)) == -1)
		goto done;
	while (read_request(&in, &consumed, &h, opts, &bad) == 0) {
		char *payload = in.data + sizeof(h);
		char saved = payload[h.length];
		payload[h.length] = '\0';
		int64_t start = frame_now_ns();
		run_job(vm, &h, payload, opts, &out);
		out.heap_peak_bytes = vm_heap_peak(vm);
		payload[h.length] = saved;
		if (send_reply(&h, &out, frame_now_ns() - start) == -1)
			break;
		if (out.body.cap > out.body.limit + 1)
			buffer_free(&out.body);	/* a stored script's chunk: give it back */
		if (module_in.cap > MODULE_BUFFER_KEEP)
			buffer_free(&module_in);
	}
done:
	buffer_free(&in);
	buffer_free(&out.body);
	buffer_free(&out.traceback);
	buffer_free(&out.logs);
	buffer_free(&out.error_value);
	buffer_free(&module_in);
	return bad ? 2 : 0;
}
