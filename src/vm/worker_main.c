/*
 * worker_main.c - luapool-worker: started by the pool with its socket on
 * fd 3 and its limits on the command line.  Builds the VM, locks itself
 * into the sandbox, then serves jobs.  Not meant to be run by hand.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/log.h"
#include "vm/sandbox.h"
#include "vm/worker.h"

/* RLIMIT_AS beyond what the heap, result and request buffers need: the
 * binary and its libraries (about 4 MiB at idle, measured), the 8 MiB main
 * stack, LuaJIT's machine code (512 KiB by default), with room to spare.
 * See address_space_limit and docs/OPERATIONS.md. */
#define ADDRESS_SPACE_MARGIN ((size_t)256u << 20)

/* Who the worker becomes when started as root (--uid/--gid). */
struct identity {
	int switch_user;
	uid_t uid;
	gid_t gid;
};

static unsigned long
number_arg(const char *name, const char *value)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(value, &end, 10);
	if (errno || *end || end == value)
		fatal("bad value for %s: %s", name, value);
	return v;
}

static void
parse_args(int argc, char **argv, struct worker_options *o, pid_t *parent,
    struct identity *id)
{
	memset(o, 0, sizeof(*o));
	memset(id, 0, sizeof(*id));
	o->vm.memory_bytes = 128u << 20;
	o->vm.max_result_bytes = 1u << 20;
	o->vm.max_depth = 256;
	o->vm.max_log_bytes = 64u << 10;
	o->vm.cache_entries = 256;
	o->vm.bytecode_jit = 1;
	o->grace_ms = 3;
	o->default_timeout_ms = 1000;
	o->max_timeout_ms = 60000;
	o->allow_bytecode = 1;
	o->max_request_bytes = FRAME_MAX_PAYLOAD;
	*parent = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i];
		unsigned long v = number_arg(k, argv[i + 1]);
		if (strcmp(k, "--memory-mb") == 0)
			o->vm.memory_bytes = (size_t)v << 20;
		else if (strcmp(k, "--max-result") == 0)
			o->vm.max_result_bytes = v;
		else if (strcmp(k, "--max-depth") == 0)
			o->vm.max_depth = (unsigned)v;
		else if (strcmp(k, "--max-log-bytes") == 0)
			o->vm.max_log_bytes = v;
		else if (strcmp(k, "--cache") == 0)
			o->vm.cache_entries = (unsigned)v;
		else if (strcmp(k, "--grace-ms") == 0)
			o->grace_ms = (unsigned)v;
		else if (strcmp(k, "--default-timeout-ms") == 0)
			o->default_timeout_ms = (unsigned)v;
		else if (strcmp(k, "--max-timeout-ms") == 0)
			o->max_timeout_ms = (unsigned)v;
		else if (strcmp(k, "--allow-bytecode") == 0)
			o->allow_bytecode = v == LUAPOOL_BYTECODE_BESIDE ?
			    LUAPOOL_BYTECODE_BESIDE : v != 0;
		else if (strcmp(k, "--bytecode-jit") == 0)
			o->vm.bytecode_jit = v != 0;
		else if (strcmp(k, "--ppid") == 0)
			*parent = (pid_t)v;
		else if (strcmp(k, "--log-level") == 0 && v <= LOG_DEBUG)
			log_set_level((enum log_level)v);
		else if (strcmp(k, "--uid") == 0) {
			id->uid = (uid_t)v;
			id->switch_user |= 1;
		} else if (strcmp(k, "--gid") == 0) {
			id->gid = (gid_t)v;
			id->switch_user |= 2;
		} else
			fatal("unknown option %s", k);
	}
	if (id->switch_user != 0 && id->switch_user != 3)
		fatal("--uid and --gid go together");
}

/*
 * The Lua heap can hold its limit in freed-but-mapped memory (malloc keeps
 * it) while a job maps as much again; the reply and request buffers grow
 * by doubling up to twice their limits; the rest is the fixed margin.
 */
static size_t
address_space_limit(const struct worker_options *o)
{
	return 2 * o->vm.memory_bytes + 2 * o->vm.max_result_bytes +
	    2 * o->vm.max_log_bytes + 2 * o->max_request_bytes + ADDRESS_SPACE_MARGIN;
}

/* stdin reads nothing and stdout writes nowhere; stderr is the pool's log pipe. */
static void
quiet_stdio(void)
{
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (in == -1 || out == -1 || dup2(in, STDIN_FILENO) == -1 ||
	    dup2(out, STDOUT_FILENO) == -1)
		fatal("/dev/null: %s", strerror(errno));
	close(in);
	close(out);
}

int
main(int argc, char **argv)
{
	struct worker_options opts;
	struct identity id;
	pid_t parent;
	char err[256] = "";

	log_set_name("luapool-worker");
	log_set_raw(1);
	parse_args(argc, argv, &opts, &parent, &id);
	/* First, so nothing else runs as root; before the parent tie, which
	 * a change of credentials clears. */
	if (id.switch_user && sandbox_drop_privileges(id.uid, id.gid) == -1)
		fatal("cannot switch to uid %u gid %u: %s", (unsigned)id.uid,
		    (unsigned)id.gid, strerror(errno));
	if (parent && sandbox_tie_to_parent(parent) == -1)
		return 1;
	sandbox_close_other_fds(FRAME_WORKER_FD);
	quiet_stdio();
#if SANDBOX_UNDER_ASAN
	/* AddressSanitizer reserves terabytes of shadow memory: no RLIMIT_AS. */
#else
	if (sandbox_limit_address_space(address_space_limit(&opts)) == -1)
		fatal("RLIMIT_AS: %s", strerror(errno));
#endif
	/* os.date must not need the file system once sandboxed. */
	tzset();
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);

	struct vm *vm = vm_new(&opts.vm, err, sizeof(err));
	if (vm == NULL)
		fatal("cannot build the VM: %s", err);
	if (worker_prepare_deadlines(vm) == -1)
		fatal("deadline timer: %s", strerror(errno));
	unsigned uid = (unsigned)getuid();	/* getuid is not allowed past this point */
	if (sandbox_enter() == -1)
		fatal("seccomp: %s", strerror(errno));
	log_debug("sandboxed as uid %u: address space %zu MiB, heap %zu MiB", uid,
	    SANDBOX_UNDER_ASAN ? 0 : address_space_limit(&opts) >> 20, opts.vm.memory_bytes >> 20);
	int status = worker_run(vm, &opts);
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer needs system calls the sandbox forbids; the VM's
	 * leaks are checked in-process by the unit tests instead. */
	_exit(status);
#else
	vm_free(vm);
	return status;
#endif
}
