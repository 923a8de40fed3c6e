/*
 * fuzz_bytecode.c - libFuzzer harness: every input is a bytecode chunk run
 * through vm_run exactly as the worker runs a job (verifier, lua_load,
 * fresh environment, run, JSON encoding of the result) in one VM built once
 * per process with small limits.  A crash here on an input the verifier
 * accepted is a verifier gap (docs/BYTECODE.md).  Built by
 * `make fuzz-bytecode` with clang, never by `make all`/`check`; seeds come
 * from tests/fixtures/fuzz-bytecode-seeds/make_seeds.sh.  Set
 * FUZZ_BYTECODE_VERBOSE to print each input's outcome code and message.
 *
 * Runaway code is soft-stopped by a per-input CPU-time timer that calls
 * vm_interrupt, as the worker's deadline does.  The JIT is turned off in
 * this state: compiled loops do not run hooks, so the soft stop could not
 * end them (the worker has a hard kill for that; a harness has not).  It
 * must never change src/: it reaches the lua_State through vm_internal.h.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lua.h>
#include <luajit.h>

#include "common/buffer.h"
#include "vm/vm.h"
#include "vm/vm_internal.h"

#define FUZZ_MEMORY_BYTES	(32u * 1024u * 1024u)
#define FUZZ_RESULT_BYTES	(64u * 1024u)
#define FUZZ_TRACEBACK_BYTES	16384u
#define FUZZ_MAX_DEPTH		32u
#define FUZZ_CACHE_ENTRIES	8u
#define FUZZ_DEADLINE_NS	20000000L	/* 20 ms of CPU time per input */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm *fuzz_vm;
static timer_t deadline_timer;
static volatile sig_atomic_t deadline_fired;

static void
deadline_signal(int sig)
{
	(void)sig;
	deadline_fired = 1;
	vm_interrupt(fuzz_vm);
}

static void
deadline_arm(long ns)
{
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_nsec = ns;
	if (timer_settime(deadline_timer, 0, &its, NULL) == -1)
		abort();
}

/* Builds the VM and the timer once; aborts if either fails (a broken
 * harness must not look like a clean run). */
static void
fuzz_setup(void)
{
	struct vm_limits limits = {
		.memory_bytes = FUZZ_MEMORY_BYTES,
		.max_result_bytes = FUZZ_RESULT_BYTES,
		.max_depth = FUZZ_MAX_DEPTH,
		.cache_entries = FUZZ_CACHE_ENTRIES,
	};
	char err[256] = "";
	fuzz_vm = vm_new(&limits, err, sizeof(err));
	if (fuzz_vm == NULL) {
		fprintf(stderr, "fuzz_bytecode: vm_new: %s\n", err);
		abort();
	}
	if (luaJIT_setmode(fuzz_vm->L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF) == 0)
		abort();

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = deadline_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGRTMIN, &sa, NULL) == -1)
		abort();
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	/* To this thread: libFuzzer's own threads must not take the signal. */
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev._sigev_un._tid = gettid();	/* glibc 2.36 has no sigev_notify_thread_id */
	sev.sigev_signo = SIGRTMIN;
	if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &deadline_timer) == -1)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm_outcome out;
	static int verbose;

	if (fuzz_vm == NULL) {
		fuzz_setup();
		/* As worker.c sizes them: the body limit is what stops the
		 * encoder at max_result_bytes. */
		buffer_init(&out.body, FUZZ_RESULT_BYTES + 64);
		buffer_init(&out.traceback, FUZZ_TRACEBACK_BYTES);
		verbose = getenv("FUZZ_BYTECODE_VERBOSE") != NULL;
	}
	struct vm_job job = {
		.chunk = (const char *)data,
		.chunk_len = size,
		.is_source = 0,
		.name = "fuzz",
	};
	deadline_fired = 0;
	deadline_arm(FUZZ_DEADLINE_NS);
	vm_run(fuzz_vm, &job, &out);
	deadline_arm(0);
	/* A stop that landed after vm_run ended left its hook set: clear it
	 * so it cannot stop the next input at its first instruction. */
	if (deadline_fired)
		vm_end_job(fuzz_vm, 0);
	if (verbose)
		fprintf(stderr, "fuzz_bytecode: %zu bytes: %s %s\n", size, out.code, out.message);
	/* LuaJIT refusing verified bytes, or a state that no longer looks as
	 * built, is what the worker replaces itself for: a verifier gap. */
	if (out.replace == VM_REPLACE_BAD_LOAD || out.replace == VM_REPLACE_DAMAGED) {
		fprintf(stderr, "fuzz_bytecode: verified chunk %s: %s\n",
		    out.replace == VM_REPLACE_BAD_LOAD ? "refused by lua_load" :
		    "damaged the state", out.message);
		abort();
	}
	return 0;
}
