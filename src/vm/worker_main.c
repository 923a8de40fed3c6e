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
#include "vm/worker_args.h"

int
main(int argc, char **argv)
{
	struct worker_options opts;
	struct worker_identity id;
	pid_t parent;
	char err[256] = "";

	log_set_name("luapool-worker");
	log_set_raw(1);
	worker_args_parse(argc, argv, &opts, &parent, &id, NULL, NULL);
	/* First, so nothing else runs as root; before the parent tie, which
	 * a change of credentials clears. */
	if (id.switch_user && sandbox_drop_privileges(id.uid, id.gid) == -1)
		fatal("cannot switch to uid %u gid %u: %s", (unsigned)id.uid,
		    (unsigned)id.gid, strerror(errno));
	if (parent && sandbox_tie_to_parent(parent) == -1)
		return 1;
	sandbox_close_other_fds(FRAME_WORKER_FD);
	worker_args_quiet_stdio();
#if SANDBOX_UNDER_ASAN
	/* AddressSanitizer reserves terabytes of shadow memory: no RLIMIT_AS. */
#else
	if (sandbox_limit_address_space(worker_args_address_space(&opts)) == -1)
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
	    SANDBOX_UNDER_ASAN ? 0 : worker_args_address_space(&opts) >> 20, opts.vm.memory_bytes >> 20);
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
