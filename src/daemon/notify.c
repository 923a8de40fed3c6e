/*
 * notify.c - sd_notify without libsystemd: one datagram with the state text
 * to the unix socket named by $NOTIFY_SOCKET ("/path" or "@abstract").
 * Never blocks for long, never fails the daemon: a lost notification is
 * logged (once per kind of failure) and the caller carries on.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/notify.h"

enum notify_failure {
	NOTIFY_BAD_ADDRESS,
	NOTIFY_NO_SOCKET,
	NOTIFY_NOT_SENT,
	NOTIFY_FAILURE_COUNT
};

static atomic_flag already_warned[NOTIFY_FAILURE_COUNT] = {
	ATOMIC_FLAG_INIT, ATOMIC_FLAG_INIT, ATOMIC_FLAG_INIT
};

static int
first_failure_of_kind(enum notify_failure kind)
{
	return !atomic_flag_test_and_set(&already_warned[kind]);
}

/* Fills addr from "/path" or "@abstract"; returns its length or 0. */
static socklen_t
address_of(const char *name, struct sockaddr_un *addr)
{
	size_t len = strlen(name);

	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (name[0] == '@') {
		if (len > sizeof(addr->sun_path))
			return 0;
		memcpy(addr->sun_path, name, len);
		addr->sun_path[0] = '\0';
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	}
	if (name[0] != '/' || len >= sizeof(addr->sun_path))
		return 0;
	memcpy(addr->sun_path, name, len + 1);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

int
notify_send(const char *state)
{
	struct sockaddr_un addr;
	int fd = -1;

	const char *name = getenv("NOTIFY_SOCKET");
	if (name == NULL || name[0] == '\0')
		return 0;
	socklen_t addr_len = address_of(name, &addr);
	if (addr_len == 0) {
		if (first_failure_of_kind(NOTIFY_BAD_ADDRESS))
			log_warn("NOTIFY_SOCKET \"%s\" is not a unix socket address", name);
		goto fail;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		if (first_failure_of_kind(NOTIFY_NO_SOCKET))
			log_warn("cannot create a notification socket: %s", strerror(errno));
		goto fail;
	}
	size_t len = strlen(state);
	ssize_t sent = sendto(fd, state, len, MSG_NOSIGNAL,
	    (const struct sockaddr *)&addr, addr_len);
	if (sent < 0 || (size_t)sent != len) {
		if (first_failure_of_kind(NOTIFY_NOT_SENT))
			log_warn("cannot notify %s: %s", name,
			    sent < 0 ? strerror(errno) : "short write");
		goto fail;
	}
	close(fd);
	return 0;
fail:
	if (fd != -1)
		close(fd);
	return -1;
}
