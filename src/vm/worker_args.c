/*
 * worker_args.c - the command line of the processes that run jobs
 * (luapool-worker and luapool-front): the limits the pool passes, who to
 * become, and the process set-up both share.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/log.h"
#include "vm/worker_args.h"

/* RLIMIT_AS beyond what the heap, result and request buffers need: the
 * binary and its libraries (about 4 MiB at idle, measured), the 8 MiB main
 * stack, LuaJIT's machine code (512 KiB by default), with room to spare.
 * See worker_args_address_space and docs/OPERATIONS.md. */
#define ADDRESS_SPACE_MARGIN ((size_t)256u << 20)

unsigned long
worker_args_number(const char *name, const char *value)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(value, &end, 10);
	if (errno || *end || end == value)
		fatal("bad value for %s: %s", name, value);
	return v;
}

void
worker_args_parse(int argc, char **argv, struct worker_options *o, pid_t *parent,
    struct worker_identity *id, worker_args_extra_fn extra, void *arg)
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
		unsigned long v = worker_args_number(k, argv[i + 1]);
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
		} else if (extra == NULL || extra(arg, k, v) == -1)
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
size_t
worker_args_address_space(const struct worker_options *o)
{
	return 2 * o->vm.memory_bytes + 2 * o->vm.max_result_bytes +
	    2 * o->vm.max_log_bytes + 2 * o->max_request_bytes + ADDRESS_SPACE_MARGIN;
}

void
worker_args_quiet_stdio(void)
{
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (in == -1 || out == -1 || dup2(in, STDIN_FILENO) == -1 ||
	    dup2(out, STDOUT_FILENO) == -1)
		fatal("/dev/null: %s", strerror(errno));
	close(in);
	close(out);
}
