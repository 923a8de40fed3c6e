/*
 * lane.c - a job run inside a front process (see lane.h).
 *
 * One CLOCK_MONOTONIC timer, armed when the job's Lua code starts (its
 * compile is not stopped: nothing could interrupt it) at the earlier of the
 * lane's limit and the job's deadline.  When it fires the handler asks the VM to stop (soft
 * stop) and re-arms for the grace period; if the job still runs then, the
 * handler calls the front's last words and exits (hard stop).  Unlike a
 * pool worker, the front never answers a stopped job itself: it hands it
 * on, and the pool decides (another run, or deadline_exceeded).  Modules
 * are the pool's: require in the lane fails, and the job is handed on.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/text.h"
#include "vm/deadline_timer.h"
#include "vm/lane.h"
#include "vm/vm_request.h"
#include "vm/vm_require.h"

static struct vm *lane_vm;
static timer_t lane_timer;
static volatile sig_atomic_t job_running;
static volatile sig_atomic_t soft_stop_sent;
static int64_t grace_ns;
static void (*lane_last_words)(void);
static struct lane_options lane_opts;
static volatile int64_t job_deadline_ns;
/* The running job's stop time, and when the timer is armed for (0: not
 * armed).  Jobs follow each other in microseconds: instead of a
 * timer_settime per job, a timer that fires early for the job running
 * then re-arms itself for that job's time. */
static volatile int64_t stop_at_ns, armed_ns;
static int64_t lane_limit_ns;		/* of the loaded job: its run's stop time */
static int module_wanted;		/* the running job called require */

static void
on_alarm(int sig)
{
	(void)sig;
	armed_ns = 0;
	if (!job_running)
		return;
	int saved_errno = errno;
	if (!soft_stop_sent && frame_now_ns() < stop_at_ns) {
		armed_ns = stop_at_ns;	/* armed for an earlier job */
		deadline_timer_arm(lane_timer, stop_at_ns);
		errno = saved_errno;
		return;
	}
	if (!soft_stop_sent) {
		soft_stop_sent = 1;
		vm_interrupt(lane_vm);
		deadline_timer_arm(lane_timer, frame_now_ns() + grace_ns);
		errno = saved_errno;
		return;
	}
	if (lane_last_words != NULL)
		lane_last_words();
	_exit(FRAME_EXIT_DEADLINE);
}

static void
lua_returned(void)
{
	job_running = 0;
}

/* Running first: a signal from the timer as it was armed for an earlier
 * job then sees this job and re-arms for its time.  Armed for later than
 * this job's stop (or not at all): arm now. */
static void
lua_starting(void)
{
	int64_t now = frame_now_ns();
	int64_t limit = now + (int64_t)lane_opts.fast_lane_ms * 1000000;
	lane_limit_ns = limit < job_deadline_ns ? limit : job_deadline_ns;
	soft_stop_sent = 0;
	stop_at_ns = lane_limit_ns;
	job_running = 1;
	if (armed_ns == 0 || armed_ns > lane_limit_ns) {
		armed_ns = lane_limit_ns;
		deadline_timer_arm(lane_timer, lane_limit_ns);
	}
}

static enum vm_module_answer
no_modules_here(void *arg, const char *name, struct vm_module *module)
{
	(void)arg;
	(void)name;
	(void)module;
	module_wanted = 1;
	return VM_MODULE_UNAVAILABLE;
}

int
lane_prepare(struct vm *vm, const struct lane_options *o, void (*last_words)(void))
{
	lane_vm = vm;
	lane_opts = *o;
	lane_last_words = last_words;
	grace_ns = (int64_t)o->grace_ms * 1000000;
	vm_on_lua_done(vm, lua_returned);
	vm_on_lua_start(vm, lua_starting);
	/* A pcall could catch the failure: the answer is dropped anyway. */
	vm_require_configure(vm, no_modules_here, NULL, o->allow_bytecode);
	return deadline_timer_create(on_alarm, &lane_timer);
}

int64_t
lane_deadline_ns(void)
{
	return job_deadline_ns;
}

/* 128 bits over the chunk, two lanes of splitmix64 rounds.  Not a
 * cryptographic hash, and it need not be: two chunks taken for one only
 * cost the lane a stop at its limit, which a client can cause anyway with
 * a chunk that is short for one context and long for another. */
static void
digest_of(const struct vm_job *job, unsigned char digest[LANE_DIGEST_SIZE])
{
	uint64_t a = 0x9e3779b97f4a7c15ULL ^ job->chunk_len, b = job->is_source ? 0x5fULL : 0xbcULL;
	const unsigned char *p = (const unsigned char *)job->chunk;
	size_t n = job->chunk_len;
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		a = text_mix64(a ^ w);
		b = text_mix64(b + w + 0x632be59bd9b4e019ULL);
	}
	uint64_t tail = 0;
	memcpy(&tail, p, n);
	a = text_mix64(a ^ tail ^ ((uint64_t)n << 56));
	b = text_mix64(b + tail + 1);
	memcpy(digest, &a, 8);
	memcpy(digest + 8, &b, 8);
}

int
lane_load(struct vm *vm, const char *text, size_t len, int64_t start_ns,
    struct vm_outcome *out, unsigned char digest[LANE_DIGEST_SIZE])
{
	struct vm_request req = {
		.text = text, .len = len,
		.allow_bytecode = lane_opts.allow_bytecode,
		.max_timeout_ms = lane_opts.max_timeout_ms,
	};
	out->usage = 0;
	out->cpu_ns = 0;
	job_deadline_ns = start_ns + (int64_t)lane_opts.default_timeout_ms * 1000000;
	if (vm_request_load(vm, &req, out) == -1)
		return -1;
	const struct vm_job *job = vm_loaded_job(vm);
	/* "usage" is measured and reported by the supervisor. */
	if (req.usage || job == NULL || job->chunk == NULL) {
		vm_end_job(vm, 0);
		return -1;
	}
	if (req.timeout_ms)
		job_deadline_ns = start_ns + (int64_t)req.timeout_ms * 1000000;
	digest_of(job, digest);
	return 0;
}

void
lane_unload(struct vm *vm)
{
	vm_end_job(vm, 0);
}

enum lane_verdict
lane_run_loaded(struct vm *vm, struct vm_outcome *out, int64_t *run_ns, int *not_for_lane)
{
	*run_ns = 0;
	*not_for_lane = 0;
	int64_t begin = frame_now_ns();
	if (job_deadline_ns <= begin) {
		vm_end_job(vm, 0);
		return LANE_HAND_OFF;	/* its deadline passed: the pool says so */
	}
	module_wanted = 0;
	lane_limit_ns = job_deadline_ns;	/* until Lua starts (lua_starting) */
	vm_run_loaded(vm, out);
	job_running = 0;
	*run_ns = frame_now_ns() - begin;
	/* Stopped at the lane's limit, not at its own (earlier) deadline: only
	 * that says the chunk is long. */
	*not_for_lane = module_wanted || (out->soft_stopped && lane_limit_ns < job_deadline_ns);
	if (out->status != LUAPOOL_OK || out->soft_stopped || module_wanted)
		return LANE_HAND_OFF;
	return LANE_ANSWERED;
}
