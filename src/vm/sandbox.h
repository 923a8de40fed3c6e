/*
 * sandbox.h - locking a worker or a front process down after its VM is
 * built: no descriptors but stdio and its socket, PR_SET_PDEATHSIG,
 * PR_SET_NO_NEW_PRIVS and a seccomp filter that allows only the system
 * calls a running job needs (memory, its socket, its timer, exit), and
 * for a front those of serving HTTP on the connections it is dealt.
 */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

/* 1 in AddressSanitizer builds (gcc or clang), which need a little more:
 * no RLIMIT_AS, and sigaltstack in the seccomp filter. */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_UNDER_ASAN 1
#endif
#endif
#ifndef SANDBOX_UNDER_ASAN
#define SANDBOX_UNDER_ASAN 0
#endif

/* Dies with the process `parent` (checked after arming, to close the race
 * with a parent that died first).  -1 if the parent is already gone. */
int sandbox_tie_to_parent(pid_t parent);
/* Closes every descriptor above `keep`. */
void sandbox_close_other_fds(int keep);
/* NO_NEW_PRIVS + the seccomp filter.  -1 with errno on failure. */
int sandbox_enter(void);
/* The same for a front (luapool-front): its own, wider list (sandbox.c).
 * Call it once its HTTP server and epoll set exist: no socket, epoll set
 * or file can be made after it. */
int sandbox_enter_front(void);
/*
 * For a worker started as root: no supplementary groups, gid and uid
 * switched for good, every capability dropped (bounding, ambient,
 * permitted, effective, inheritable), then checked.  Clears the
 * parent-death signal (a credential change does), so call it before
 * sandbox_tie_to_parent.  -1 with errno: the worker must not go on.
 */
int sandbox_drop_privileges(uid_t uid, gid_t gid);
/* RLIMIT_AS, soft and hard, to `bytes`.  -1 with errno. */
int sandbox_limit_address_space(size_t bytes);

#endif
