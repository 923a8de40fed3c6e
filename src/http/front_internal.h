/*
 * front_internal.h - what the files of the front server share
 * (front.c: libmicrohttpd and the lane; front_forward.c: hand-offs to the
 * supervisor; front_set.c: which chunks are short; front_answer.c: the
 * answers and reports; front_control.c: the other control messages;
 * front_limits.c: the limits; front_crash.c: crashes).  Never include this
 * outside src/http/front*.c.
 */
#ifndef FRONT_INTERNAL_H
#define FRONT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <microhttpd.h>

#include "common/buffer.h"
#include "common/front_proto.h"


/* Where a connection is, for the hand-over when the process must die. */
enum front_conn_state {
	FRONT_IDLE,		/* between requests: the supervisor may take it */
	FRONT_READING,		/* a request is being read or answered */
	FRONT_HANDED,		/* its request is with the supervisor or the lane:
				 * replayable from req->head and req->body */
};

struct front_req;

struct front_conn {
	struct front_conn *prev, *next;
	int fd;
	volatile enum front_conn_state state;
	struct front_req *req;		/* FRONT_HANDED: the request to replay */
	int64_t read_deadline_ns;	/* the next request must be in by then; 0: none */
	uint64_t ino;			/* its socket's inode: the supervisor's name for it */
	char client[46];		/* the client's address as text, "" if unknown */
};

/* One request.  Its head is the request as forwarded to the supervisor,
 * so a replay needs nothing built in a signal handler. */
struct front_req {
	struct front_conn *conn;
	struct MHD_Connection *mhd;
	int64_t start_ns;
	char method[32];		/* longer ones are cut (and unknown here) */
	char request_id[129];
	struct buffer body;
	size_t charged;			/* against the front's byte budget */
	int too_large, over_budget;	/* the body is dropped: 413, or 503 */
	const char *url;		/* libmicrohttpd's, valid for the request */
	struct buffer head;		/* empty for a lane job: a replay writes it */
	int64_t deadline_ns;		/* absolute, when deadline_at != 0 */
	size_t deadline_at;		/* offset of the deadline digits in head, 0: none */
	/* The fast lane. */
	int eligible;			/* a /v1/exec the lane may learn */
	unsigned char digest[16];
	/* The hand-off: our end of the internal connection, what is left to
	 * write, what came back. */
	int fd;
	size_t sent;
	struct buffer in;
	int suspended;
	/* The answer. */
	int ready;
	unsigned status;
	char *resp_body;
	size_t resp_len;
	struct buffer resp_headers;	/* "Name\0Value\0" pairs */
	double run_ms;			/* < 0: no job ran */
	/* A lane answer: the lane's buffer (valid until the answer is queued,
	 * right after the run) and its Server-Timing. */
	const struct buffer *lane_body;
	char timing[48];
};

#define FRONT_DEADLINE_DIGITS 10

/* front_answer.c */

/* access_log: records of the answers this front writes go to the
 * supervisor (FRONT_MSG_ACCESS), which logs them. */
void front_answer_init(uint64_t id_seed, int access_log);
/* A problem answer for code (problem.c), with the request's id. */
void front_answer_problem(struct front_req *req, const char *code, const char *detail);
/* The OK answer of a lane job: body is its JSON, which must stay as it is
 * until front_answer_queue. */
void front_answer_ok(struct front_req *req, const struct buffer *body, double run_ms);
/* Queues req's answer on its connection. */
enum MHD_Result front_answer_queue(struct front_req *req);
/* From now on (the front drains) every answer closes its connection. */
void front_answer_close_connections(void);
/* Observations wait at most 100 ms, or until a packet is full. */
int front_answer_stats_due(void);
void front_answer_send_stats(void);

/* front_forward.c */

/* Answers past max_answer_bytes are refused (500: the hand-off failed). */
void front_forward_init(size_t max_answer_bytes);

/* The client's address, as text, for the heads of c's requests. */
void front_forward_name_client(struct front_conn *c, struct MHD_Connection *mhd);
/* Builds req->head: the request line, the client's headers (minus those
 * about the connection), the client's address and, with_deadline, room
 * for the time left.  0, or -1 when out of memory. */
int front_forward_build_head(struct front_req *req, const char *url, int with_deadline);
/* Writes the time left before deadline_ns into req's head. */
void front_forward_set_deadline(struct front_req *req, int64_t deadline_ns, int64_t now_ns);
/* Hands req to the supervisor on a fresh internal connection; its
 * answer comes through front_forward_io.  0, or -1 (nothing started). */
int front_forward_start(struct front_req *req, int epfd);
/* The internal connection is ready: writes, reads, and when the answer is
 * whole parses it into req.  1 when req has its answer, 0 to wait, -1 when
 * the hand-off failed (req has no answer). */
int front_forward_io(struct front_req *req, int epfd);
/* Closes the internal connection. */
void front_forward_end(struct front_req *req, int epfd);
/* Hands one connection to the supervisor, and closes our copy. */
void front_forward_adopt_one(int fd);
/* Hands every idle connection on the list to the supervisor (drain). */
void front_forward_adopt_idle(struct front_conn *head);
/* One message from the supervisor, if any: 1 with *m and its descriptors
 * (m->type 0 when it was no struct front_msg), 0 when none waits, -1 when
 * the supervisor is gone.  Async-signal-safe. */
int front_forward_receive(struct front_msg *m, int *fds, unsigned *nfds);
/* Gives back the connections dealt but not taken yet (in the control
 * socket). */
void front_forward_adopt_undelivered(void);
/* The last words: idle connections adopted, handed requests replayed. */
void front_forward_hand_over(struct front_conn *head);

/* front_control.c: what a front tells the supervisor besides hand-offs. */

/* Before the sandbox: bounds the wait for the supervisor's LEND. */
int front_control_init(void);
/* The inode of a socket (0 if unknown): how the supervisor knows it. */
uint64_t front_control_inode(int fd);
/* A client connection closed here (or refused). */
void front_control_closed(uint64_t ino);
/* MAKE_ROOM: closes the connection idle the longest, if any, and says
 * so; 1 if it closed one (libmicrohttpd should run again soon). */
int front_control_make_room(struct front_conn *head);
/* Asks for request bytes out of the server's budget: want if free, else
 * at least need; waits for the answer (up to 1 s).  The bytes lent, or 0. */
size_t front_control_borrow(size_t need, size_t want);
/* Gives lent bytes back (whole KiB): 0, or -1 when it could not be said
 * (they stay lent). */
int front_control_return(size_t bytes);
/* The next message from the supervisor: those kept while a LEND was
 * awaited, then the socket's (front_forward_receive's contract). */
int front_control_next(struct front_msg *m, int *fds, unsigned *nfds);
/* Whether kept messages wait (the socket may be quiet meanwhile). */
int front_control_pending(void);
/* Kept connections go to the supervisor (the front ends). */
void front_control_adopt_kept(void);

/* front_crash.c: last_words (async-signal-safe) run on SIGSEGV, SIGBUS,
 * SIGILL and SIGFPE, then the process exits 128 + the signal.  0 or -1. */
int front_crash_catch(void (*last_words)(void));

/* front_limits.c: framing, the byte budget, the read deadline. */

/* inflight_budget: the server's max_inflight_bytes, lent out by the
 * supervisor as needed. */
void front_limits_init(size_t inflight_budget, unsigned read_timeout_s);
/* Why the request's framing headers are refused, or NULL. */
const char *front_limits_framing(struct MHD_Connection *mhd);
/* n more request bytes held: 0, or -1 (nothing charged) over the budget. */
int front_limits_charge(size_t n);
void front_limits_release(size_t n);
/* c waits for a request (opened, or its last one answered) / has it. */
void front_limits_wait_for_request(struct front_conn *c);
void front_limits_request_received(struct front_conn *c);
/* Closes the connections past their read deadline; at most every 100 ms. */
void front_limits_sweep(struct front_conn *head);

/* front_set.c: the chunks known to be short. */

void front_set_init(unsigned fast_lane_ms);
/* Whether the chunk with this digest may run in the lane. */
int front_set_is_short(const unsigned char digest[16]);
/* A run of the chunk (in the lane or in the pool) took run_ms. */
void front_set_observe(const unsigned char digest[16], double run_ms);
/* The chunk was stopped at the lane's limit: never short again here. */
void front_set_demote(const unsigned char digest[16]);

#endif
