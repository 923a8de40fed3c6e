/*
 * front_proto.h - what a front process (a worker that serves HTTP itself,
 * src/front/) and the supervisor say to each other.
 *
 * A front inherits one descriptor besides stdio: a SOCK_SEQPACKET socket
 * to the supervisor on FRONT_CONTROL_FD.  It has no listening socket: the
 * supervisor accepts and deals the connections out to the fronts over
 * that socket (FRONT_MSG_CONNECTION).  Each message is one packet: a
 * struct front_msg, then its payload; file descriptors travel beside it as
 * SCM_RIGHTS.  The supervisor trusts
 * nothing in a front's message: types, counts, lengths and every value are
 * checked, and a descriptor is only ever served as an HTTP connection.
 */
#ifndef FRONT_PROTO_H
#define FRONT_PROTO_H

#include <stdint.h>

#define FRONT_CONTROL_FD	4

/* Fronts in one set (front_workers); a reload briefly runs two sets. */
#define FRONT_SET_MAX		64u

/* Most descriptors in one message, and the largest packet. */
#define FRONT_FDS_MAX		32
#define FRONT_PACKET_MAX	8192

enum front_msg_type {
	/* supervisor -> front, once, before anything else: the payload is the
	 * auth token (empty: no auth). */
	FRONT_MSG_CONFIG = 1,
	/* front -> supervisor: one descriptor, an end of a fresh socketpair;
	 * the supervisor serves it as an internal HTTP connection, on which
	 * the front forwards the requests it does not answer itself. */
	FRONT_MSG_OPEN,
	/* front -> supervisor: 1..FRONT_FDS_MAX client connections on which
	 * no request is pending in the front (they may hold unread bytes in
	 * the kernel): the supervisor serves them from now on. */
	FRONT_MSG_ADOPT,
	/* front -> supervisor: two descriptors, a client connection and a
	 * memfd holding one complete HTTP request read from it (it asks for
	 * "Connection: close"): the supervisor answers it on the connection,
	 * then closes it. */
	FRONT_MSG_REPLAY,
	/* front -> supervisor: the payload is `count` struct front_observation. */
	FRONT_MSG_STATS,
	/* supervisor -> front: one descriptor, a new client connection to
	 * serve (the supervisor accepts and deals them out in turn, so that
	 * the fronts share the connections evenly). */
	FRONT_MSG_CONNECTION,
	/* front -> supervisor: it is draining; give it no more connections. */
	FRONT_MSG_DRAINING,
	/* front -> supervisor (with access_log): the payload is `count`
	 * access records, each a struct front_access then its five texts. */
	FRONT_MSG_ACCESS,
	/* front -> supervisor: the payload is `count` uint64_t, the inode
	 * numbers of client connections this front closed (or refused): they
	 * no longer count against max_connections. */
	FRONT_MSG_CLOSED,
	/* supervisor -> front: the connection table is full and a client
	 * waits: close your connection idle the longest, then answer ROOM
	 * with count 1, or 0 when every one is busy with a request. */
	FRONT_MSG_MAKE_ROOM,
	FRONT_MSG_ROOM,
	/* front -> supervisor: the payload is a struct front_borrow: lend me
	 * request bytes out of max_inflight_bytes.  The supervisor answers
	 * LEND with count = the KiB lent (0: none).  RETURN (count = KiB)
	 * gives some back; what a front held returns when it dies. */
	FRONT_MSG_BORROW,
	FRONT_MSG_LEND,
	FRONT_MSG_RETURN,
	/* supervisor -> front: the server drains before it exits: run no
	 * more jobs here, hand every request on (the supervisor refuses new
	 * ones with 503 shutting_down). */
	FRONT_MSG_SHUTDOWN
};

/* BORROW: want KiB if they are free, else at least need KiB, else none. */
struct front_borrow {
	uint32_t want_kib, need_kib;
};

#define FRONT_CLOSED_MAX	((FRONT_PACKET_MAX - sizeof(struct front_msg)) / sizeof(uint64_t))

struct front_msg {
	uint32_t type;
	uint32_t count;		/* entries of the payload, or the number ROOM, LEND, RETURN carry */
};

/* One answered request, for /metrics (metrics_observe and, when
 * run_seconds >= 0, metrics_observe_job with a zero queue time). */
struct front_observation {
	uint16_t route;		/* enum metrics_route */
	uint16_t status;	/* HTTP status, 100..599 */
	float seconds;		/* the whole request */
	float run_seconds;	/* the job's run time, or -1: no job */
};

/* One request a front answered itself, for the access log; followed by
 * method, path, request id, traceparent and client (no NUL), of the
 * lengths given.  The supervisor checks every field and writes the line itself. */
struct front_access {
	uint32_t pid;		/* the front's */
	uint16_t status;
	uint8_t method_len, id_len, traceparent_len, client_len;
	uint16_t path_len;
	uint32_t in_bytes, out_bytes;
	float ms, run_ms;	/* run_ms < 0: no job */
};

#define FRONT_ACCESS_PATH_MAX	255
#define FRONT_ACCESS_TEXT_MAX	128	/* method, id, traceparent, client */

#define FRONT_OBSERVATIONS_MAX \
	((FRONT_PACKET_MAX - sizeof(struct front_msg)) / sizeof(struct front_observation))

/* Headers a front adds to what it forwards on an internal connection; the
 * supervisor honours them only there. */
#define FRONT_HEADER_CLIENT	"X-Luapoold-Client"	/* the client's address */
#define FRONT_HEADER_DEADLINE	"X-Luapoold-Deadline-Ms" /* time left to answer */

#endif
