/*
 * http.h - the HTTP front end of luapoold: libmicrohttpd, routing, auth,
 * limits and responses for API v1 (DESIGN §4).  Only src/http/ includes
 * microhttpd.h, and this is its only public header.  No HTTP thread ever
 * waits for a job: the connection is suspended and resumed from the pool's
 * completion callback.
 */
#ifndef HTTP_H
#define HTTP_H

#include <stddef.h>

#include "luapool.h"
#include "daemon/scripts.h"
#include "http/http_options.h"

struct http;

/* Starts serving.  NULL with err filled on failure. */
struct http *http_start(const struct http_options *opts, struct luapool *pool,
    struct scripts *scripts, char *err, size_t errlen);
/* Serves for up to max_wait_ms: in event-loop mode this thread does all
 * HTTP and dispatch work; otherwise it only waits.  Returns a signal
 * number read from signal_fd (a signalfd), or 0. */
int http_serve_once(struct http *http, int signal_fd, int max_wait_ms);
/* The port actually bound. */
unsigned http_port(const struct http *http);
/*
 * Front mode: takes ownership of control_fd, a front's end of its
 * SOCK_SEQPACKET control socket (non-blocking, close-on-exec, CONFIG
 * already sent), and serves the front's messages from the event loop
 * (src/common/front_proto.h); the socket is closed when the front hangs up
 * or at http_stop.  http is the struct http, a void * so that it fits a
 * callback.  Any thread may call this, but never once http_stop has begun.
 * At most 64 fronts at once: beyond that, or outside front mode, the
 * socket is closed and the refusal logged.
 */
void http_fronts_attach(void *http, int control_fd);
/* What SIGHUP may change while serving, taken from opts: max_body_bytes,
 * max_inflight_bytes, request_read_timeout_s, access_log, auth_token
 * (copied) and metrics_auth; the other fields are ignored. */
void http_reload(struct http *http, const struct http_options *opts);
/* Stops accepting connections; requests on open connections get 503
 * shutting_down, /healthz answers 503. */
void http_begin_drain(struct http *http);
/* Requests received and not yet answered. */
unsigned http_in_flight(const struct http *http);
/* Closes every connection and frees; every job must be answered before. */
void http_stop(struct http *http);

/* Whether chunk is bytecode this server would run: the \033LJ signature
 * and the verifier (vm/bcverify.h).  -1 with err filled.  For scripts the
 * daemon loads from scripts_dir (http_bytecode.c). */
int http_bytecode_verify(const void *chunk, size_t len, char *err, size_t errlen);

#endif
