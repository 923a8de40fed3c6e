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

#define MAX_REQUEST_BYTES (256u * 1024u * 1024u)

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
parse_args(int argc, char **argv, struct worker_options *o, pid_t *parent)
{
	memset(o, 0, sizeof(*o));
	o->vm.memory_bytes = 128u << 20;
	o->vm.max_result_bytes = 1u << 20;
	o->vm.max_depth = 256;
	o->vm.cache_entries = 256;
	o->grace_ms = 3;
	o->default_timeout_ms = 1000;
	o->max_timeout_ms = 60000;
	o->allow_bytecode = 1;
	o->max_request_bytes = MAX_REQUEST_BYTES;
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
		else if (strcmp(k, "--cache") == 0)
			o->vm.cache_entries = (unsigned)v;
		else if (strcmp(k, "--grace-ms") == 0)
			o->grace_ms = (unsigned)v;
		else if (strcmp(k, "--default-timeout-ms") == 0)
			o->default_timeout_ms = (unsigned)v;
		else if (strcmp(k, "--max-timeout-ms") == 0)
			o->max_timeout_ms = (unsigned)v;
		else if (strcmp(k, "--allow-bytecode") == 0)
			o->allow_bytecode = v != 0;
		else if (strcmp(k, "--ppid") == 0)
			*parent = (pid_t)v;
		else
			fatal("unknown option %s", k);
	}
}

int
main(int argc, char **argv)
{
	struct worker_options opts;
	pid_t parent;
	char err[256] = "";

	log_set_name("luapool-worker");
	parse_args(argc, argv, &opts, &parent);
	if (parent && sandbox_tie_to_parent(parent) == -1)
		return 1;
	sandbox_close_other_fds(FRAME_WORKER_FD);
	/* stdin and stdout lead nowhere; stderr stays for the log. */
	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd != -1) {
		dup2(null_fd, STDIN_FILENO);
		dup2(null_fd, STDOUT_FILENO);
		close(null_fd);
	}
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
	if (sandbox_enter() == -1)
		fatal("seccomp: %s", strerror(errno));
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
