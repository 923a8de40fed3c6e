/*
 * sandbox.c - the worker's process-level sandbox (see sandbox.h).
 *
 * The seccomp filter is an allow-list written as classic BPF by hand, so
 * the worker needs no libseccomp.  A system call outside the list kills
 * the whole process (SIGSYS); the pool sees a crash and respawns.  File
 * system calls get EPERM instead, so libc code that looks for an optional
 * file fails softly rather than killing a job.  The list is what a worker
 * was seen to use under `strace -f` over test_pool and test_exec (jobs,
 * compiles, soft and hard deadlines, heap limits, large results), plus
 * the calls libc may make on paths those did not reach (noted below);
 * docs/SECURITY.md repeats it.
 *
 *   syscall            arguments checked   why
 *   read               fd 3 only           requests from the pool
 *   write, writev      fd 2 or 3 only      replies (fd 3), log lines (fd 2, a pipe to the pool)
 *   mmap, munmap,      -                   the Lua heap (malloc), LuaJIT's machine code
 *   mremap, brk,                           (mprotect flips it between writable and
 *   madvise, mprotect                      executable); madvise: free() of large blocks
 *   timer_settime      -                   arming the job's deadline (worker.c)
 *   rt_sigreturn       -                   returning from the deadline signal handler
 *   clock_gettime,     -                   frame_now_ns, os.clock (CPU time is a real
 *   gettimeofday, time                     system call), os.time; the last two only
 *                                          when the vDSO is not used
 *   getpid             -                   the log line prefix (log.c)
 *   futex              -                   libc's internal locks (stdio, malloc)
 *   exit, exit_group   -                   the end of the process (also the hard stop)
 *   open, openat, stat, fstat, newfstatat, statx, faccessat, readlinkat:
 *                      refused with EPERM (libc probing for optional files)
 *   sigaltstack        -                   AddressSanitizer builds only: ASan
 *                                          reads it on every Lua error (unwinding)
 *
 * Everything else kills the process: no new files or sockets, no
 * ptrace, no clone/fork/execve, no kill/tgkill (the deadline timer
 * signals the worker itself, through the kernel), no prctl, setrlimit
 * or seccomp changes.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/frame.h"
#include "vm/sandbox.h"

#if defined(__x86_64__)
#define SANDBOX_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_ARCH AUDIT_ARCH_AARCH64
#else
#error "seccomp filter: unsupported architecture"
#endif

#define ALLOW(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define REFUSE(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "seccomp filter: the first argument's low word is read as little-endian"
#endif
/* The low 32 bits of the first argument: an int descriptor, as the kernel reads it. */
#define FIRST_ARG offsetof(struct seccomp_data, args[0])
/* System call `nr` only on descriptor fd1 or fd2; on any other it kills.
 * Ends with the system call number back in the accumulator. */
#define ALLOW_ON_FDS(nr, fd1, fd2) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 5), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, FIRST_ARG), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (fd1), 2, 0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (fd2), 1, 0), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

int
sandbox_tie_to_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		return -1;
	return getppid() == parent ? 0 : -1;
}

void
sandbox_close_other_fds(int keep)
{
	if (syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0) == 0)
		return;
	for (int fd = keep + 1; fd < 1024; fd++)
		close(fd);
}

int
sandbox_drop_privileges(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) == -1 || setresgid(gid, gid, gid) == -1)
		return -1;
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which
	 * the uid switch takes away.  PR_CAPBSET_READ fails past the last
	 * capability this kernel knows. */
	for (unsigned long cap = 0; ; cap++) {
		int present = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (present == -1)
			break;
		if (present == 1 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1)
			return -1;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 && errno != EINVAL)
		return -1;
	if (setresuid(uid, uid, uid) == -1)
		return -1;
	/* The uid switch already cleared the permitted and effective sets;
	 * say so explicitly (and the inheritable set too). */
	struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &header, data) == -1)
		return -1;
	/* Checked, not assumed: there must be no way back. */
	if (setuid(0) != -1 || getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid || prctl(PR_CAPBSET_READ, 0UL, 0, 0, 0) != 0) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

int
sandbox_limit_address_space(size_t bytes)
{
	struct rlimit rl = { .rlim_cur = bytes, .rlim_max = bytes };
	return setrlimit(RLIMIT_AS, &rl);
}

int
sandbox_enter(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		/* the most frequent first: each is one comparison further down */
		ALLOW(SYS_clock_gettime),
		ALLOW_ON_FDS(SYS_read, FRAME_WORKER_FD, FRAME_WORKER_FD),
		ALLOW_ON_FDS(SYS_writev, FRAME_WORKER_FD, STDERR_FILENO),
		ALLOW(SYS_timer_settime),
		ALLOW_ON_FDS(SYS_write, FRAME_WORKER_FD, STDERR_FILENO),
		ALLOW(SYS_mmap), ALLOW(SYS_munmap), ALLOW(SYS_mremap), ALLOW(SYS_mprotect),
		ALLOW(SYS_brk), ALLOW(SYS_madvise),
		ALLOW(SYS_rt_sigreturn), ALLOW(SYS_gettimeofday), ALLOW(SYS_getpid),
		ALLOW(SYS_futex), ALLOW(SYS_exit), ALLOW(SYS_exit_group),
#if SANDBOX_UNDER_ASAN
		ALLOW(SYS_sigaltstack),
#endif
#ifdef SYS_time
		ALLOW(SYS_time),
#endif
#ifdef SYS_open
		REFUSE(SYS_open), REFUSE(SYS_stat),
#endif
		REFUSE(SYS_openat), REFUSE(SYS_newfstatat), REFUSE(SYS_fstat),
		REFUSE(SYS_statx), REFUSE(SYS_faccessat), REFUSE(SYS_readlinkat),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof(filter) / sizeof(filter[0])),
		.filter = filter,
	};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

int
sandbox_enter_front(void)
{
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}
