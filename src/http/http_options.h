/*
 * http_options.h - what the HTTP front end is started with (http_start),
 * apart from http.h so that the front end's own internal header can embed
 * it without including the public one.  Plain data: no function, and
 * nothing here may depend on libmicrohttpd.
 */
#ifndef HTTP_OPTIONS_H
#define HTTP_OPTIONS_H

#include <stddef.h>

/* What the server does with client bytecode (config key `bytecode`). */
enum http_bytecode_mode {
	HTTP_BYTECODE_OFF = 0,		/* source only */
	HTTP_BYTECODE_VERIFIED = 1,	/* any bytecode the verifier passes */
	HTTP_BYTECODE_SIGNED = 2	/* only bytecode this server compiled (HMAC tag) */
};

struct http_options {
	const char *host;		/* "" or NULL: all interfaces */
	unsigned port;			/* 0: any free port */
	size_t max_body_bytes;
	size_t max_inflight_bytes;	/* request bytes held at once, all clients */
	unsigned request_read_timeout_s;	/* a whole request, from when the
					 * connection waits for one */
	unsigned max_timeout_ms;
	unsigned default_timeout_ms;
	unsigned max_connections;
	unsigned max_connections_per_ip;	/* 0: no limit */
	unsigned connection_timeout_s;
	unsigned threads;		/* 0: one event loop in the caller's thread, which
					 * must own the pool (external_dispatch); N: N
					 * libmicrohttpd threads */
	int fronts;			/* 1: front processes serve clients (issue 11):
					 * the event loop accepts and deals connections to
					 * them (http_fronts_attach), and libmicrohttpd
					 * serves only what they hand back or none takes;
					 * needs threads 0 and no TLS */
	const char *auth_token;		/* NULL: no auth */
	int metrics_auth;
	int access_log;
	unsigned slow_job_ms;		/* jobs longer than this are logged; 0: none */
	/* For /v1/info: the pool's limits. */
	unsigned memory_limit_mb;
	size_t max_result_bytes;
	unsigned max_json_depth;
	size_t max_log_bytes;
	int bytecode_mode;		/* enum http_bytecode_mode */
	const void *bytecode_key;	/* signed: the HMAC key (at least 32 bytes), */
	size_t bytecode_key_len;	/* used by http_start and not kept */
	const char *tls_cert_pem, *tls_key_pem;	/* both or neither */
	const char *info_json;		/* extra fields for /v1/info, an object */
};

#endif
