/*
 * http_internal.h - what the files of src/http/ share and nobody else may
 * see: the server and request objects, and the entry points of the routes.
 * http.c (the router) calls the routes (http_exec.c, http_scripts.c,
 * http_status.c); they answer through http_request.c; never the other way
 * round.  Never include this outside src/http/.
 */
#ifndef HTTP_INTERNAL_H
#define HTTP_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/buffer.h"
#include "common/sha256.h"
#include "daemon/metrics.h"
#include "daemon/scripts.h"
#include "http/http_framing.h"
#include "http/http_options.h"
#include "http/http_route_of.h"
#include "luapool.h"

struct MHD_Daemon;
struct MHD_Connection;
struct http_conn;
struct problem_job_parts;
struct http_fronts;
struct http_fronts_conns;
struct http_fronts_lend;
struct sockaddr_storage;

/* Every open connection, for the request read deadline and for making room
 * when the table is full (http_limits.c); under its lock. */
struct http_conn_table {
	pthread_mutex_t lock;
	struct http_conn *head;
	unsigned count;
	int64_t next_sweep_ns;
	int64_t full_logged_ns, closed_logged_ns;
	unsigned closed_unlogged;
};

struct http {
	struct MHD_Daemon *daemon;
	struct luapool *pool;
	struct scripts *scripts;
	struct http_options opts;
	unsigned port;
	pthread_mutex_t config_lock;	/* token and reloadable limits */
	char *auth_token;
	atomic_size_t max_body_bytes;
	atomic_size_t max_inflight_bytes, inflight_bytes;	/* the request byte budget */
	atomic_uint request_read_timeout_s;
	struct http_conn_table conns;
	atomic_int access_log, metrics_auth, draining;
	atomic_uint in_flight, connections;
	char *info_json;
	int epfd;			/* event-loop mode */
	int signal_watched;
	atomic_int activity;		/* a job was submitted or answered */
	struct hmac_sha256_key bytecode_key;	/* bytecode = signed */
	uint64_t request_id_seed;	/* generated request ids (http_request_id.c) */
	atomic_uint_fast64_t request_id_counter;
	atomic_uint slow_job_ms;	/* 0: no slow-job log */
	int listen_fd;			/* front mode: accepted here for the fronts; else -1 */
	struct http_fronts *fronts;	/* front mode: their control sockets; else NULL */
	struct http_fronts_conns *fronts_conns;	/* front mode: every client connection */
	struct http_fronts_lend *fronts_lend;	/* front mode: bytes lent to the fronts */
	int listen_paused;		/* front mode: the table is full, accept none */
	atomic_size_t internal_inflight_bytes;	/* bodies fronts forwarded (they lent them) */
	atomic_size_t lent_bytes;	/* of inflight_bytes, lent to the fronts */
	int room_wanted;		/* front mode: ask a front to make room */
	int room_answer;		/* a front's ROOM: 1 + what it said; 0: none */
};

/* What the event loop's epoll set (http->epfd) tells apart. */
enum { HTTP_EVENT_MHD = 1, HTTP_EVENT_POOL, HTTP_EVENT_SIGNAL, HTTP_EVENT_FRONTS,
	HTTP_EVENT_LISTEN };

/* Longest X-Request-Id kept; a longer one is replaced by a generated one. */
#define HTTP_REQUEST_ID_MAX	128


/* The headers the server acts on, found in one pass over the request's
 * headers (pointers into libmicrohttpd's copy, valid for the request). */
struct request_headers {
	struct http_framing framing;
	const char *authorization;
	const char *request_id;		/* X-Request-Id, as given */
	const char *traceparent;
};

/* One HTTP request.  Reference counted because both MHD and the pool hold
 * it: created by http.c with one reference (MHD's), one more for each job
 * submitted; the last http_request_unref frees it. */
struct request {
	atomic_int refs;
	pthread_mutex_t lock;
	struct http *http;
	struct MHD_Connection *conn;
	enum metrics_route route;
	int method;
	int allowed;			/* route_method bits */
	int script_item;		/* /v1/scripts/{name} */
	char name[SCRIPTS_NAME_MAX + 1];
	char path[160];
	struct request_headers headers;
	struct buffer body;		/* released once a job holds its copy */
	size_t in_bytes;		/* body bytes read, for the access log */
	size_t charged;			/* against http->inflight_bytes */
	size_t body_charged;		/* of which for body's capacity */
	int64_t start_ns;
	char request_id[HTTP_REQUEST_ID_MAX + 1];	/* given or generated */
	char traceparent[56];		/* a well-formed incoming one, else "" */
	/* On a front's internal connection only (http_forwarded.c): the client's
	 * address as the front saw it (an IPv4 or IPv6 address, else ""), and
	 * the milliseconds the front left the job, if it said. */
	char client[48];
	int internal;			/* its bytes are charged as a front's (lent) */
	int has_deadline;
	unsigned deadline_ms;
	/* The job's numbers, once a worker (or the queue) answered it. */
	int job_answered;
	double queued_ms, run_ms;
	char problem_code[32];		/* the answer's problem code, "" for none */
	/* The answer, once known. */
	int prepared, done, suspended;
	int status;
	char *resp_body;
	size_t resp_len;
	const char *content_type;
	const char *extra_header, *extra_value;
	int close_connection;
	int worker_pid;
	/* PUT: a worker parses the body (and compiles source); its answer is
	 * the chunk, stored by http_scripts_finish_put. */
	int checking_script;
	int chunk_is_source;
};

/* The budget r's bytes are charged to.  A front's forwarded request was
 * charged in the front, out of the server's budget (it borrowed it):
 * charged there again it would count twice.  Its copy here has a budget
 * of its own, so that a front that forwards more than it borrowed cannot
 * make this process hold more. */
static inline atomic_size_t *
http_request_budget(struct request *r)
{
	return r->internal ? &r->http->internal_inflight_bytes : &r->http->inflight_bytes;
}

/* http_request.c: the request's last reference and its answer. */

/* Drops one reference; the last one frees the request. */
void http_request_unref(struct request *r);
/* Sets the answer; takes ownership of body (malloc'd, may be NULL). */
void http_request_prepare(struct request *r, int status, char *body, size_t len,
    const char *content_type);
/* A problem answer for an error code, with its extra header if any. */
void http_request_prepare_problem(struct request *r, const char *code, const char *detail,
    const char *traceback);
void http_request_prepare_problemf(struct request *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with what a job's error adds (problem.h): its traceback, logs
 * and error value, checked before they are used. */
void http_request_prepare_job_problem(struct request *r, const char *code, const char *detail,
    const struct problem_job_parts *parts);
/* A JSON answer; takes b's contents. */
void http_request_prepare_json(struct request *r, int status, struct buffer *b);

/* http_request_id.c: request ids and trace context. */

/* Draws the seed of generated ids (http_start). */
void http_request_id_seed(struct http *http);
/* r's id, from X-Request-Id (1 to HTTP_REQUEST_ID_MAX bytes of visible
 * ASCII) or generated (16 hex digits), and its traceparent when well
 * formed; r->conn must be set. */
void http_request_id_take(struct request *r);
/* id with '"' and '\' escaped for a JSON string, into out (cap bytes,
 * 2 x HTTP_REQUEST_ID_MAX + 1 is enough); returns its length. */
size_t http_request_id_json(const char *id, char *out, size_t cap);
/* Whether tp is a well-formed traceparent; if so it is cut to the 55
 * bytes kept (as for a request's own). */
int http_request_id_clean_traceparent(char *tp);

/* http_usage.c: what a job cost (timings, slow-job log, "usage"). */

/* Keeps the job's timings for Server-Timing and the access log; logs a
 * job slower than slow_job_ms.  Dispatcher thread, under r->lock. */
void http_usage_note(struct request *r, const struct luapool_reply *reply);
/* The body of an OK reply, with "usage" added when the request asked for
 * it (exec and script runs): malloc'd (caller frees), length in *len;
 * NULL when out of memory. */
char *http_usage_body(const struct request *r, const struct luapool_reply *reply,
    size_t *len);

/* http_joblog.c: a job's captured print and log.* output in the server log. */

/* At debug level, one line per entry of the job's logs (in an error
 * reply's logs, or in an OK body's "logs"), with the request's id. */
void http_joblog_write(const struct request *r, const struct luapool_reply *reply);

/* http_exec.c: the routes that run code, and job submission. */

/* POST /v1/exec and /v1/compile. */
void http_exec_handle(struct request *r);
/* Submits a job for this request and suspends its connection until the
 * answer comes; prepares an error response if the pool refuses.  chunk
 * stays the caller's. */
void http_exec_submit(struct request *r, enum luapool_job_kind kind, const char *chunk,
    size_t chunk_len, int chunk_is_source);

/* http_scripts.c: /v1/scripts and /v1/scripts/{name}. */

void http_scripts_handle(struct request *r);
/* After the check job of a PUT came back (its answer, the chunk, is in
 * r->resp_body): stores the chunk, bytecode once it passed the verifier
 * and the tag check, and prepares the answer. */
void http_scripts_finish_put(struct request *r);

/* http_bytecode.c: bytecode trust (the `bytecode` mode, signed chunks). */

/* Derives the HMAC key of bytecode = signed from opts (which keep no
 * copy).  -1 with err filled if the key is missing or short. */
int http_bytecode_setup(struct http *http, char *err, size_t errlen);
/* "off", "verified" or "signed". */
const char *http_bytecode_mode_name(int mode);
/* Whether buf (len bytes, as a client sent it) may be stored or run as
 * bytecode: in signed mode it must carry this server's tag, which is then
 * not part of the chunk (*chunk_len tells its length); in every mode the
 * chunk must pass the verifier.  -1 with err filled (the detail of an
 * invalid_bytecode answer). */
int http_bytecode_accept(const struct http *http, const unsigned char *buf, size_t len,
    size_t *chunk_len, char *err, size_t errlen);
/* POST /v1/exec with bytecode = signed: the request's "bytecode" with its
 * tag checked and stripped, to be submitted beside the request (whose
 * base64 is replaced with null).  1 with *chunk (malloc'd, caller frees)
 * and *chunk_len; 0 when the request has no "bytecode" string this can
 * read (submit it as it is: in this mode the worker refuses bytecode
 * inside a request); -1 when the error answer is prepared. */
int http_bytecode_take_signed(struct request *r, unsigned char **chunk, size_t *chunk_len);
/* The answer of a /v1/compile job with bytecode = signed: the worker's
 * bytecode, verified, with this server's tag. */
void http_bytecode_prepare_signed(struct request *r, const struct luapool_reply *reply);

/* http_route.c: a request's route and the answers its headers decide. */

/* ROUTE_GET ... for a method name; 0 for any other. */
int http_route_method(const char *method);
/* Sets r's route, allowed methods and (for /v1/scripts/{name}) name. */
void http_route_request(struct request *r, const char *url);
/* Fills r->headers in one pass (before anything reads them). */
void http_route_scan_headers(struct request *r);
/* Every decision the headers allow, before any body is read; an answer
 * is prepared when the request is refused here. */
void http_route_check_headers(struct http *http, struct request *r);

/* http_limits.c: the request byte budget, the framing checks, and the
 * connection table (whole-request deadline, room for new connections). */

/* Set up and release the connection table (http_start, http_stop). */
int http_limits_init(struct http *http);
void http_limits_free(struct http *http);
/* From MHD's connection notifications: an entry for the new connection
 * in *socket_context (NULL when out of memory: it is then not tracked),
 * and its removal (called before MHD closes the socket). */
void http_limits_connection_opened(struct http *http, struct MHD_Connection *conn,
    void **socket_context);
void http_limits_connection_closed(struct http *http, void *socket_context);
/* The request on conn: its headers are read; all of it is read (no
 * deadline while it is served); it ended (the connection waits for the
 * next request, with a fresh deadline). */
void http_limits_request_started(struct http *http, struct MHD_Connection *conn);
void http_limits_request_received(struct http *http, struct MHD_Connection *conn);
void http_limits_request_ended(struct http *http, struct MHD_Connection *conn);
/* Closes the connections past their read deadline and, when the table is
 * full and a client waits to connect, the one idle the longest; at most
 * every 100 ms.  Returns the milliseconds until the next sweep. */
int http_limits_sweep(struct http *http);
/* The table was full and a client waited: whether a connection was closed
 * to let it in; logged at most every 10 s. */
void http_limits_log_full(struct http *http, int closed_one);
/* 0, or -1 with a 400 prepared: Content-Length twice with different
 * values, beside Transfer-Encoding, or a transfer coding but chunked. */
int http_limits_check_framing(struct request *r);
/* Charges n bytes to the budget: 0, or -1 (nothing charged) with 503
 * overloaded prepared.  The charge lasts until the request is freed. */
int http_limits_charge(struct request *r, size_t n);
/* A body of known length: room for all of it, charged at once.  0, or -1
 * with the answer prepared. */
int http_limits_reserve_body(struct request *r, size_t content_length);
/* Appends a piece of the body (charging what the buffer grew by); once
 * the body is refused (413, 503 prepared) the rest is dropped. */
void http_limits_take_upload(struct request *r, const char *data, size_t size);

/* http_log.c: the access log and libmicrohttpd's messages. */

/* One line for a finished request: the path escaped so that it stays one
 * field; status 0 when no answer was ready. */
struct http_access {
	const char *method, *path;
	int status;
	double seconds;
	int worker_pid;
	size_t in_bytes, out_bytes;
	const char *request_id, *script, *code, *traceparent, *client;	/* NULL: none */
	int job;
	double queued_ms, run_ms;
	int aborted;
};
void http_log_access(const struct http_access *a);
/* The access-log line of r. */
void http_log_request(const struct request *r, int status, double seconds, int aborted);
/* MHD_OPTION_EXTERNAL_LOGGER: debug, but connection limits as a warning
 * (at most one every 10 s). */
void http_log_mhd(void *cls, const char *fmt, va_list ap);

/* http_fronts.c: front mode, the supervisor's side of front_proto.h. */

/* The table of control sockets, whose epoll events carry event_id in
 * http->epfd; http_fronts_free closes every one of them. */
int http_fronts_init(struct http *http, uint32_t event_id);
void http_fronts_free(struct http *http);
/* Reads the control socket fd (one epoll event names it) until it would
 * block (or a bounded number of messages) and acts on what that front
 * said; the event-loop thread. */
void http_fronts_serve(struct http *http, int fd);
/* New connections on the listening socket, dealt to the fronts in turn
 * (served here when none takes one), while the table has room. */
void http_fronts_accept(struct http *http);
/* Watches the listening socket again once the table has room. */
void http_fronts_accept_again(struct http *http);
/* The table is full and a client waits: asks the fronts in turn, one at
 * a time, to close their connection idle the longest. */
void http_fronts_make_room(struct http *http);
/* The drain: the listening socket closed, the fronts told (their lanes
 * stop).  A no-op outside front mode. */
void http_fronts_shutdown(struct http *http);
/* At most one warning every 10 s, with the count of those held back. */
void http_fronts_warn(struct http *http, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* http_fronts_fds.c: the descriptors fronts hand over. */

/* Whether fd is a connected stream socket of the Unix domain (unix_domain
 * 1) or of the internet (0), with its peer's address in *ss, *len. */
int http_fronts_fds_is_stream(int fd, int unix_domain, struct sockaddr_storage *ss,
    socklen_t *len);
/* Serves fd as a client's connection from addr / as an internal one;
 * libmicrohttpd closes it in every case.  0, or -1 when refused. */
int http_fronts_fds_serve(struct http *http, int fd, const struct sockaddr *addr,
    socklen_t len);
int http_fronts_fds_serve_internal(struct http *http, int fd);

/* http_fronts_lend.c: the request bytes lent to the fronts. */

int http_fronts_lend_init(struct http *http);
void http_fronts_lend_free(struct http *http);
/* BORROW from front: answers LEND.  -1 if the message is malformed. */
int http_fronts_lend(struct http *http, int front, const unsigned char *payload, size_t len);
/* RETURN: -1 if front gives back more than it was lent (nothing done). */
int http_fronts_lend_take_back(struct http *http, int front, uint32_t kib);
/* What it was lent comes back. */
void http_fronts_lend_front_gone(struct http *http, int front);

/* http_fronts_replay.c: FRONT_MSG_REPLAY, a request a front read and could
 * not answer, answered here on its client's connection; takes ownership of
 * both descriptors.  NULL, or why it was refused (both closed). */
const char *http_fronts_replay(struct http *http, int client, int memfd);

/* http_fronts_conns.c: front mode, every client connection of the
 * server counted where it was accepted, whoever serves it. */

int http_fronts_conns_init(struct http *http);
void http_fronts_conns_free(struct http *http);
enum http_admission {
	HTTP_ADMITTED,		/* counted: deal it or serve it */
	HTTP_PER_IP_LIMIT,	/* max_connections_per_ip from its address */
	HTTP_TABLE_FULL		/* max_connections, or it cannot be told apart */
};
/* A connection just accepted from *ss; *ino is what knows it from now on. */
enum http_admission http_fronts_conns_admit(struct http *http, int fd,
    const struct sockaddr_storage *ss, uint64_t *ino);
/* It went to the front whose control socket is front (-1: to nobody). */
void http_fronts_conns_dealt(struct http *http, uint64_t ino, int front);
/* This process's libmicrohttpd serves fd / no longer does.  No-ops
 * outside front mode. */
void http_fronts_conns_serve_here(struct http *http, int fd);
void http_fronts_conns_done_here(struct http *http, int fd);
/* FRONT_MSG_CLOSED from front: only its own entries are released. */
void http_fronts_conns_closed_by(struct http *http, int front, const uint64_t *inos, size_t n);
void http_fronts_conns_front_gone(struct http *http, int front);
unsigned http_fronts_conns_count(const struct http *http);

/* http_fronts_reports.c: what fronts report of the answers they wrote. */

/* STATS: counted in /metrics.  -1 if the message is malformed, else how
 * many observations were invalid (skipped). */
int http_fronts_take_stats(const unsigned char *payload, size_t len, uint32_t count);
/* ACCESS: one access-log line each, checked field by field and written
 * by this process.  The same return. */
int http_fronts_take_access(const unsigned char *payload, size_t len, uint32_t count);

/* http_forwarded.c: what a front forwards on an internal connection. */

/* Whether conn is an internal connection, one a front forwards requests
 * on (never a client's). */
int http_forwarded_is_internal(const struct http *http, struct MHD_Connection *conn);
/* On an internal connection, r->client and r->deadline_ms from the
 * headers the front added (each only when valid); nothing elsewhere. */
void http_forwarded_take_headers(struct request *r);

/* http_status.c: /healthz, /v1/info, /metrics. */

void http_status_healthz(struct request *r);
void http_status_info(struct request *r);
void http_status_metrics(struct request *r);

#endif
