/*
 * http.c - libmicrohttpd glue for API v1: start and stop, the event loop,
 * one request object per HTTP request, routing, auth and the drain.  The
 * limits (body bytes, framing, connections and their deadlines) are
 * http_limits.c's, the log lines http_log.c's, and the routes are in
 * http_exec.c, http_scripts.c and http_status.c; this file only dispatches
 * to them and queues the answer they prepared.
 *
 * A request that needs a worker is suspended by its route (http_exec.c) and
 * resumed from the pool's completion callback; the next call of the access
 * handler here then queues the response.  The request is reference counted
 * because both MHD and the pool hold it.  Nothing here waits for a job.
 *
 * In front mode (issue 11) the listening socket is bound here and accepted
 * on by the event loop, which deals the connections out to the front
 * processes; libmicrohttpd runs without it and serves what the fronts hand
 * over, or what none of them takes (http_fronts.c).
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/buffer.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/text.h"
#include "daemon/metrics.h"
#include "http/http.h"
#include "http/http_internal.h"

#define LOOP_TICK_MS 250

/* "queue;dur=0.012, run;dur=0.004" */
static void
format_server_timing(char *out, double queued_ms, double run_ms)
{
	char *at = out;
	memcpy(at, "queue;dur=", 10);
	at = text_put_milliseconds(at + 10, queued_ms);
	memcpy(at, ", run;dur=", 10);
	at = text_put_milliseconds(at + 10, run_ms);
	*at = '\0';
}

/* The prepared answer, queued on its connection (MHD frees the body). */
static enum MHD_Result
queue_prepared(struct request *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(r->resp_len,
	    r->resp_body ? r->resp_body : (void *)(uintptr_t)"", r->resp_body ?
	    MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	r->resp_body = NULL;	/* MHD frees it now */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type ?
	    r->content_type : "application/json");
	if (r->extra_header)
		MHD_add_response_header(resp, r->extra_header, r->extra_value);
	if (r->close_connection)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	MHD_add_response_header(resp, "X-Request-Id", r->request_id);
	if (r->job_answered) {
		char timing[80];	/* two numbers of at most 21 digits */
		format_server_timing(timing, r->queued_ms, r->run_ms);
		MHD_add_response_header(resp, "Server-Timing", timing);
	}
	enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Dispatch --------------------------------------------------------------- */

static void
handle_request(struct request *r)
{
	switch (r->route) {
	case METRICS_ROUTE_EXEC:
	case METRICS_ROUTE_COMPILE:
		http_exec_handle(r);
		return;
	case METRICS_ROUTE_HEALTHZ:
		http_status_healthz(r);
		return;
	case METRICS_ROUTE_INFO:
		http_status_info(r);
		return;
	case METRICS_ROUTE_METRICS:
		http_status_metrics(r);
		return;
	case METRICS_ROUTE_SCRIPTS:
	case METRICS_ROUTE_SCRIPT_RUN:
		http_scripts_handle(r);
		return;
	default:
		http_request_prepare_problemf(r, "not_found", "no resource at %s", r->path);
	}
}

/* libmicrohttpd callbacks ------------------------------------------------ */

static struct request *
request_new(struct http *http, struct MHD_Connection *conn, const char *url, const char *method)
{
	struct request *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	atomic_init(&r->refs, 1);
	pthread_mutex_init(&r->lock, NULL);
	r->http = http;
	r->conn = conn;
	r->start_ns = frame_now_ns();
	http_route_scan_headers(r);
	http_forwarded_take_headers(r);
	http_request_id_take(r);
	r->method = http_route_method(method);
	snprintf(r->path, sizeof(r->path), "%s", url);
	buffer_init(&r->body, atomic_load(&http->max_body_bytes));
	http_route_request(r, url);
	atomic_fetch_add(&http->in_flight, 1);
	return r;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)version;
	struct http *http = cls;
	struct request *r = *con_cls;
	if (r == NULL) {
		r = request_new(http, conn, url, method);
		if (r == NULL)
			return MHD_NO;
		*con_cls = r;
		http_limits_request_started(http, conn);
		http_route_check_headers(http, r);
		if (r->prepared) {
			r->close_connection = 1;	/* the body, if any, stays unread */
			return queue_prepared(r);
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		/* A body without Content-Length (chunked) that outgrows the limit
		 * or the budget: libmicrohttpd 0.9.75 refuses a response queued
		 * before the upload ends (the client would get no answer at all),
		 * so the rest is dropped as it comes and the 413 or 503 goes out
		 * after the last chunk. */
		http_limits_take_upload(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	http_limits_request_received(http, conn);
	pthread_mutex_lock(&r->lock);
	int answered = r->prepared;
	pthread_mutex_unlock(&r->lock);
	if (!answered)
		handle_request(r);
	pthread_mutex_lock(&r->lock);
	int ready = r->prepared && !r->suspended;
	pthread_mutex_unlock(&r->lock);
	if (!ready)
		return MHD_YES;		/* suspended until the job is answered */
	if (r->checking_script)
		http_scripts_finish_put(r);
	return queue_prepared(r);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http *http = cls;
	struct request *r = *con_cls;
	if (r == NULL)
		return;
	*con_cls = NULL;
	double seconds = (double)(frame_now_ns() - r->start_ns) / 1e9;
	int status = r->prepared ? r->status : 0;
	metrics_observe(r->route, status, seconds);
	if (atomic_load(&http->access_log))
		http_log_request(r, status, seconds, toe != MHD_REQUEST_TERMINATED_COMPLETED_OK);
	http_limits_request_ended(http, conn);
	atomic_fetch_sub(&http->in_flight, 1);
	http_request_unref(r);
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct http *http = cls;
	/* Front mode counts a client's connection wherever it is served. */
	const union MHD_ConnectionInfo *fd = http->fronts_conns &&
	    !http_forwarded_is_internal(http, conn) ?
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		atomic_fetch_add(&http->connections, 1);
		http_limits_connection_opened(http, conn, socket_context);
		if (fd)
			http_fronts_conns_serve_here(http, fd->connect_fd);
	} else {
		atomic_fetch_sub(&http->connections, 1);
		http_limits_connection_closed(http, *socket_context);
		*socket_context = NULL;
		if (fd)
			http_fronts_conns_done_here(http, fd->connect_fd);
	}
}

/* Start and stop --------------------------------------------------------- */

static int
resolve_listen(const char *host, unsigned port, struct sockaddr_storage *ss, int *ipv6)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char service[8];
	snprintf(service, sizeof(service), "%u", port);
	if (getaddrinfo(host && *host ? host : "0.0.0.0", service, &hints, &res) != 0 || res == NULL)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*ipv6 = res->ai_family == AF_INET6;
	freeaddrinfo(res);
	return 0;
}

/* Front mode: the listening socket is ours, its connections dealt to the
 * fronts; made as libmicrohttpd 0.9.75 makes its own (SO_REUSEADDR, IPv6
 * only on an IPv6 address), but non-blocking: the event loop accepts until
 * there is nothing left (http_fronts_accept). */
static int
open_listen_socket(struct http *http, const struct sockaddr_storage *ss, int ipv6,
    char *err, size_t errlen)
{
	int one = 1;
	socklen_t len = ipv6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (ipv6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(fd, (const struct sockaddr *)ss, len) == -1 || listen(fd, 1024) == -1) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", http->opts.host &&
		    *http->opts.host ? http->opts.host : "*", http->opts.port, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	struct sockaddr_storage bound;
	len = sizeof(bound);
	if (getsockname(fd, (struct sockaddr *)&bound, &len) == -1) {
		snprintf(err, errlen, "cannot read the bound address: %s", strerror(errno));
		close(fd);
		return -1;
	}
	http->port = ntohs(bound.ss_family == AF_INET6 ?
	    ((const struct sockaddr_in6 *)&bound)->sin6_port :
	    ((const struct sockaddr_in *)&bound)->sin_port);
	http->listen_fd = fd;
	return 0;
}

/* Event-loop mode: one epoll set over MHD's own epoll fd and the pool's. */
static int
watch_event_sources(struct http *http, char *err, size_t errlen)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->daemon,
	    MHD_DAEMON_INFO_EPOLL_FD);
	http->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (info == NULL || http->epfd == -1) {
		snprintf(err, errlen, "cannot set up the event loop");
		return -1;
	}
	struct epoll_event mhd = { .events = EPOLLIN, .data.u64 = HTTP_EVENT_MHD };
	struct epoll_event pool = { .events = EPOLLIN, .data.u64 = HTTP_EVENT_POOL };
	if (epoll_ctl(http->epfd, EPOLL_CTL_ADD, info->epoll_fd, &mhd) == -1 ||
	    epoll_ctl(http->epfd, EPOLL_CTL_ADD, luapool_poll_fd(http->pool), &pool) == -1) {
		snprintf(err, errlen, "cannot set up the event loop: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Front mode: this process accepts and deals connections to the fronts. */
static int
watch_listen_socket(struct http *http, char *err, size_t errlen)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = HTTP_EVENT_LISTEN };
	if (epoll_ctl(http->epfd, EPOLL_CTL_ADD, http->listen_fd, &ev) == -1) {
		snprintf(err, errlen, "cannot watch the listening socket: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int
mhd_timeout_ms(struct http *http)
{
	MHD_UNSIGNED_LONG_LONG ms;
	if (MHD_get_timeout(http->daemon, &ms) != MHD_YES)
		return -1;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static int
earliest(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static int
take_signal(int signal_fd)
{
	struct signalfd_siginfo si;
	if (read(signal_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

int
http_serve_once(struct http *http, int signal_fd, int max_wait_ms)
{
	int sweep_ms = http_limits_sweep(http);
	if (http->opts.threads) {
		struct pollfd pfd = { .fd = signal_fd, .events = POLLIN };
		return poll(&pfd, 1, earliest(max_wait_ms, sweep_ms)) == 1 ?
		    take_signal(signal_fd) : 0;
	}
	if (!http->signal_watched && signal_fd >= 0) {
		struct epoll_event sig = { .events = EPOLLIN, .data.u64 = HTTP_EVENT_SIGNAL };
		epoll_ctl(http->epfd, EPOLL_CTL_ADD, signal_fd, &sig);
		http->signal_watched = 1;
	}
	/* MHD reads requests and submits jobs; the dispatcher sends them and
	 * takes replies, resuming connections; MHD writes the answers.  In
	 * external mode MHD only sees a resume when run again, and the pool
	 * only sends a job when dispatched again: go round until a round
	 * neither submits nor resumes anything. */
	int pool_timeout = -1;
	for (int round = 0;; round++) {
		atomic_store_explicit(&http->activity, 0, memory_order_relaxed);
		MHD_run(http->daemon);
		pool_timeout = luapool_dispatch(http->pool);
		if (!atomic_load_explicit(&http->activity, memory_order_relaxed))
			break;
		if (round == 16) {
			pool_timeout = 0;	/* busy: come back without sleeping */
			break;
		}
	}
	/* MHD re-arms its listening socket, after the connection limit was
	 * reached, only in a later MHD_run: never sleep long without one. */
	int mhd_timeout = earliest(earliest(mhd_timeout_ms(http), LOOP_TICK_MS), sweep_ms);
	int timeout = earliest(earliest(pool_timeout, mhd_timeout), max_wait_ms);
	/* Each front's control socket is an event of its own, which names it;
	 * those not seen this time stay ready (level-triggered). */
	struct epoll_event events[8];
	int n = epoll_wait(http->epfd, events, 8, timeout);
	int signo = 0;
	for (int i = 0; i < n; i++) {
		uint32_t event = (uint32_t)events[i].data.u64;
		if (event == HTTP_EVENT_SIGNAL)
			signo = take_signal(signal_fd);
		else if (event == HTTP_EVENT_FRONTS)	/* the connections it adds are
							 * served by the next MHD_run */
			http_fronts_serve(http, (int)(events[i].data.u64 >> 32));
		else if (event == HTTP_EVENT_LISTEN)
			http_fronts_accept(http);
	}
	if (http->listen_paused)
		http_fronts_accept_again(http);
	/* The full table's way out in front mode (http_limits_sweep asks,
	 * a front answers). */
	if (http->room_wanted) {
		http->room_wanted = 0;
		http_fronts_make_room(http);
	}
	if (http->room_answer) {
		http_limits_log_full(http, http->room_answer - 1);
		http->room_answer = 0;
	}
	return signo;
}

struct http *
http_start(const struct http_options *opts, struct luapool *pool, struct scripts *scripts,
    char *err, size_t errlen)
{
	struct http *http = calloc(1, sizeof(*http));
	struct sockaddr_storage ss;
	int ipv6 = 0;
	if (errlen > 0)
		err[0] = '\0';
	if (http == NULL)
		goto fail;
	http->listen_fd = -1;
	http->opts = *opts;
	http->pool = pool;
	http->scripts = scripts;
	pthread_mutex_init(&http->config_lock, NULL);
	http->auth_token = opts->auth_token ? strdup(opts->auth_token) : NULL;
	http->info_json = opts->info_json ? strdup(opts->info_json) : NULL;
	/* No token copy would mean no authentication: never start so. */
	if ((opts->auth_token && http->auth_token == NULL) ||
	    (opts->info_json && http->info_json == NULL))
		goto fail;
	atomic_init(&http->max_body_bytes, opts->max_body_bytes);
	atomic_init(&http->max_inflight_bytes, opts->max_inflight_bytes);
	atomic_init(&http->request_read_timeout_s, opts->request_read_timeout_s);
	atomic_init(&http->access_log, opts->access_log);
	atomic_init(&http->metrics_auth, opts->metrics_auth);
	atomic_init(&http->slow_job_ms, opts->slow_job_ms);
	http_request_id_seed(http);
	if (http_limits_init(http) == -1) {
		snprintf(err, errlen, "cannot set up the connection table");
		free(http);
		return NULL;
	}
	if (http_bytecode_setup(http, err, errlen) == -1)
		goto fail;
	if (resolve_listen(opts->host, opts->port, &ss, &ipv6) == -1) {
		snprintf(err, errlen, "cannot use listen address \"%s\"", opts->host);
		goto fail;
	}
	/* The fronts accept on the socket and hand connections over through
	 * the event loop; a TLS session cannot be handed over. */
	if (opts->fronts && (opts->threads || opts->tls_cert_pem)) {
		snprintf(err, errlen, "front processes need http_threads = 0 and no TLS");
		goto fail;
	}
	if (opts->fronts && open_listen_socket(http, &ss, ipv6, err, errlen) == -1)
		goto fail;
	/* threads 0: this thread runs MHD and the pool's dispatcher in one
	 * event loop (http_serve_once); N: MHD's own N threads. */
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
	    MHD_USE_TURBO;
	if (opts->threads)
		flags |= MHD_USE_INTERNAL_POLLING_THREAD;
	if (ipv6)
		flags |= MHD_USE_IPv6;
	if (opts->fronts)
		flags |= MHD_USE_NO_LISTEN_SOCKET;
	if (opts->tls_cert_pem) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(err, errlen, "this libmicrohttpd has no TLS support");
			goto fail;
		}
		flags |= MHD_USE_TLS;
	}
	/* Options that are only given when they apply. */
	struct MHD_OptionItem extra[4];
	unsigned n = 0;
	if (opts->threads > 1)
		extra[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, opts->threads, NULL };
	if (opts->tls_cert_pem) {
		extra[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
		    (void *)(uintptr_t)opts->tls_cert_pem };
		extra[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
		    (void *)(uintptr_t)opts->tls_key_pem };
	}
	extra[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	http->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, http,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    /* Front mode: the fronts' internal connections come on top, and
	     * every client's is counted where it is accepted. */
	    MHD_OPTION_CONNECTION_LIMIT, opts->fronts ? 2 * opts->max_connections + 256 :
	    opts->max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, opts->fronts ? 0u : opts->max_connections_per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, opts->connection_timeout_s,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
	    /* A connection's memory pool bounds how much of a body MHD reads
	     * per call: 64 KiB reads a 66 KiB context in two.  (MHD clears
	     * the pool per request, which costs hello ~5 %; bigctx gains
	     * 7-17 %, measured alternately.) */
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, http,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, http,
	    MHD_OPTION_EXTERNAL_LOGGER, http_log_mhd, http,
	    MHD_OPTION_ARRAY, extra,
	    MHD_OPTION_END);
	if (http->daemon == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%u (address in use or not "
		    "available?)", opts->host && *opts->host ? opts->host : "*", opts->port);
		goto fail;
	}
	if (!opts->fronts) {
		const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->daemon,
		    MHD_DAEMON_INFO_BIND_PORT);
		http->port = info ? info->port : opts->port;
	}
	if (opts->threads == 0 && watch_event_sources(http, err, errlen) == -1)
		goto fail;
	if (opts->fronts && (http_fronts_init(http, HTTP_EVENT_FRONTS) == -1 ||
	    http_fronts_conns_init(http) == -1 || http_fronts_lend_init(http) == -1 ||
	    watch_listen_socket(http, err, errlen) == -1))
		goto fail;
	return http;
fail:
	if (errlen > 0 && err[0] == '\0')
		snprintf(err, errlen, "out of memory");
	if (http) {
		if (http->daemon)
			MHD_stop_daemon(http->daemon);
		if (http->epfd > 0)
			close(http->epfd);
		if (http->listen_fd != -1)
			close(http->listen_fd);
		free(http->auth_token);
		free(http->info_json);
		http_fronts_free(http);
		http_limits_free(http);
		http_fronts_conns_free(http);
		http_fronts_lend_free(http);
		free(http);
	}
	return NULL;
}

unsigned
http_port(const struct http *http)
{
	return http->port;
}

void
http_reload(struct http *http, const struct http_options *opts)
{
	atomic_store(&http->max_body_bytes, opts->max_body_bytes);
	atomic_store(&http->max_inflight_bytes, opts->max_inflight_bytes);
	atomic_store(&http->request_read_timeout_s, opts->request_read_timeout_s);
	atomic_store(&http->access_log, opts->access_log);
	atomic_store(&http->metrics_auth, opts->metrics_auth);
	atomic_store(&http->slow_job_ms, opts->slow_job_ms);
	char *token = opts->auth_token ? strdup(opts->auth_token) : NULL;
	if (opts->auth_token && token == NULL) {
		log_error("out of memory: the previous auth token stays");
		return;
	}
	pthread_mutex_lock(&http->config_lock);
	free(http->auth_token);
	http->auth_token = token;
	pthread_mutex_unlock(&http->config_lock);
}

void
http_begin_drain(struct http *http)
{
	atomic_store(&http->draining, 1);
	MHD_socket fd = MHD_quiesce_daemon(http->daemon);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	/* Front mode: the listening socket is ours, and the fronts' lanes
	 * stop, so that every new request meets the drain here. */
	http_fronts_shutdown(http);
}

unsigned
http_in_flight(const struct http *http)
{
	return atomic_load(&http->in_flight);
}

void
http_stop(struct http *http)
{
	if (http == NULL)
		return;
	/* No front adds a connection after this. */
	if (http->fronts)
		http_fronts_free(http);
	MHD_stop_daemon(http->daemon);
	if (http->epfd > 0)
		close(http->epfd);
	if (http->listen_fd != -1)
		close(http->listen_fd);
	pthread_mutex_destroy(&http->config_lock);
	http_limits_free(http);
	http_fronts_conns_free(http);
	http_fronts_lend_free(http);
	free(http->auth_token);
	free(http->info_json);
	free(http);
}
