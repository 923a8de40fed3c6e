/*
 * http_options.h - what the HTTP front end is started with (http_start),
 * apart from http.h so that the front end's own internal header can embed
 * it without including the public one.  Plain data: no function, and
 * nothing here may depend on libmicrohttpd.
 */
#ifndef HTTP_OPTIONS_H
#define HTTP_OPTIONS_H

#include <stddef.h>

struct http_options {
	const char *host;		/* "" or NULL: all interfaces */
	unsigned port;			/* 0: any free port */
	size_t max_body_bytes;
	unsigned max_timeout_ms;
	unsigned default_timeout_ms;
	unsigned max_connections;
	unsigned connection_timeout_s;
	unsigned threads;		/* 0: one event loop in the caller's thread, which
					 * must own the pool (external_dispatch); N: N
					 * libmicrohttpd threads */
	const char *auth_token;		/* NULL: no auth */
	int metrics_auth;
	int access_log;
	int allow_bytecode;
	const char *tls_cert_pem, *tls_key_pem;	/* both or neither */
	const char *info_json;		/* extra fields for /v1/info, an object */
};

#endif
