/*
 * luapoold.c - the daemon: configuration, the pool, the script store and
 * the HTTP front end, systemd notifications, and the signal-driven
 * lifecycle (SIGHUP reload, SIGTERM/SIGINT drain and exit 0), and with
 * fronts (the default) the front processes (pool/fronts.c) that serve HTTP
 * themselves and hand the rest to this process.
 *
 * Signals are blocked in every thread and read from a signalfd by the
 * event loop, so no work ever happens in a signal handler of the
 * supervisor.  With http_threads = 0 (the default) the main thread is the
 * event loop: libmicrohttpd and the pool's dispatcher run in it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/buffer.h"
#include "daemon/config.h"
#include "common/frame.h"
#include "http/http.h"
#include "common/log.h"
#include "luapool.h"
#include "daemon/notify.h"
#include "daemon/scripts.h"
#include "pool/fronts.h"

#define DRAIN_EXTRA_MS 2000

struct daemon {
	struct config cfg;
	struct luapool *pool;
	struct scripts *scripts;
	struct http *http;
	struct fronts *fronts;		/* NULL: no fronts (config_front_count) */
	char *token;
	char *tls_cert, *tls_key;
	unsigned char *bytecode_key;	/* bytecode = signed, until http_start */
	size_t bytecode_key_len;
	char info_json[256];
};

/* The whole file, NUL-terminated; its length in *len unless NULL. */
static char *
read_small_file(const char *path, const char *what, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		log_error("cannot read %s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	struct buffer b;
	buffer_init(&b, 1 << 20);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buffer_append(&b, chunk, n) == -1) {
			log_error("%s %s is too large", what, path);
			fclose(f);
			buffer_free(&b);
			return NULL;
		}
	}
	fclose(f);
	return buffer_steal(&b, len);
}

/* The token is the file's first line, without surrounding blanks. */
static char *
read_token(const char *path)
{
	char *text = read_small_file(path, "auth token file", NULL);
	if (text == NULL)
		return NULL;
	char *start = text + strspn(text, " \t\r\n");
	size_t len = strcspn(start, "\r\n");
	while (len && (start[len - 1] == ' ' || start[len - 1] == '\t'))
		len--;
	memmove(text, start, len);
	text[len] = '\0';
	if (len == 0) {
		log_error("auth token file %s is empty", path);
		free(text);
		return NULL;
	}
	return text;
}

static void
raise_file_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
pool_options_from_config(const struct config *cfg, struct luapool_options *o)
{
	luapool_options_init(o);
	o->workers = cfg->workers;
	o->queue_depth = cfg->queue_depth;
	o->default_timeout_ms = cfg->default_timeout_ms;
	o->max_timeout_ms = cfg->max_timeout_ms;
	o->memory_limit_mb = cfg->memory_limit_mb;
	o->max_result_bytes = cfg->max_result_bytes;
	o->max_jobs_per_worker = cfg->max_jobs_per_worker;
	o->cache_entries = cfg->cache_entries;
	o->max_json_depth = cfg->max_json_depth;
	o->max_log_bytes = cfg->max_log_bytes;
	o->bytecode_jit = cfg->bytecode_jit;
	o->allow_bytecode = cfg->bytecode == CONFIG_BYTECODE_OFF ? LUAPOOL_BYTECODE_NONE :
	    cfg->bytecode == CONFIG_BYTECODE_SIGNED ? LUAPOOL_BYTECODE_BESIDE :
	    LUAPOOL_BYTECODE_ANY;
	o->worker_path = cfg->worker_path;
	o->worker_user = cfg->worker_user;
	/* With the HTTP event loop, its thread runs the dispatcher too. */
	o->external_dispatch = cfg->http_threads == 0;
}

/* require("name") in a job: the stored script `name`, copied (the pool
 * frees the copy).  Runs on the dispatcher thread; the store's own lock
 * covers a PUT or DELETE on another thread.  Stored bytecode passed the
 * verifier (and lost its signed-mode tag) when it was stored, and the
 * worker verifies it again before loading it. */
static int
find_module(void *arg, const char *name, char **chunk, size_t *len, int *is_source)
{
	return scripts_get(arg, name, is_source, chunk, len);
}

/* Stored source must compile (checked in a worker) and stored bytecode
 * must pass the verifier, when the store loads.  Files in scripts_dir are
 * the operator's: with bytecode = signed they need no tag. */
static int
validate_script(void *arg, const char *name, int is_source, const char *chunk, size_t len,
    char *err, size_t errlen)
{
	struct daemon *d = arg;
	if (!is_source)
		return http_bytecode_verify(chunk, len, err, errlen);
	struct luapool_error e;
	size_t bc_len;
	void *bc = luapool_compile(d->pool, chunk, len, name, &bc_len, &e);
	if (bc == NULL) {
		snprintf(err, errlen, "%s", e.message);
		return -1;
	}
	free(bc);
	return 0;
}

/* /v1/info learns the workers' bytecode format from a real compile. */
static void
describe_bytecode(struct daemon *d)
{
	struct luapool_error e;
	size_t len = 0;
	unsigned char *bc = luapool_compile(d->pool, "return", 6, "probe", &len, &e);
	if (bc != NULL && len >= 5)
		snprintf(d->info_json, sizeof(d->info_json), "{\"bytecode_version\":%u,"
		    "\"bytecode_flags\":%u,\"gc64\":%s}", bc[3], bc[4], bc[4] & 0x08 ? "true" : "false");
	else
		snprintf(d->info_json, sizeof(d->info_json), "{}");
	free(bc);
}

/* http_start keeps only what it derived from the key. */
static void
forget_bytecode_key(struct daemon *d)
{
	volatile unsigned char *wipe = d->bytecode_key;
	for (size_t i = 0; wipe && i < d->bytecode_key_len; i++)
		wipe[i] = 0;
	free(d->bytecode_key);
	d->bytecode_key = NULL;
	d->bytecode_key_len = 0;
}

static int
http_bytecode_mode(const struct config *cfg)
{
	return cfg->bytecode == CONFIG_BYTECODE_OFF ? HTTP_BYTECODE_OFF :
	    cfg->bytecode == CONFIG_BYTECODE_SIGNED ? HTTP_BYTECODE_SIGNED :
	    HTTP_BYTECODE_VERIFIED;
}

/* The front's own options, after the worker's: what it needs to serve
 * HTTP as this process would, as numbers (src/front/ reads them). */
#define FRONT_ARG_PAIRS 7
struct front_args {
	char values[FRONT_ARG_PAIRS][24];
	const char *argv[2 * FRONT_ARG_PAIRS + 1];
};

static void
front_args_from_config(const struct config *cfg, struct front_args *a)
{
	const struct {
		const char *flag;
		unsigned long long value;
	} pairs[] = {
		{ "--fast-lane-ms", cfg->fast_lane_ms },
		{ "--max-body-bytes", cfg->max_body_bytes },
		{ "--max-connections", cfg->max_connections },
		{ "--request-read-timeout-s", cfg->request_read_timeout_s },
		{ "--bytecode-mode", (unsigned)http_bytecode_mode(cfg) },
		{ "--access-log", cfg->access_log != 0 },
		/* the whole budget: the supervisor lends it out to the fronts */
		{ "--max-inflight-bytes", cfg->max_inflight_bytes },
	};
	_Static_assert(sizeof(pairs) / sizeof(pairs[0]) == FRONT_ARG_PAIRS,
	    "FRONT_ARG_PAIRS must count the front's options");
	for (unsigned i = 0; i < FRONT_ARG_PAIRS; i++) {
		snprintf(a->values[i], sizeof(a->values[i]), "%llu", pairs[i].value);
		a->argv[2 * i] = pairs[i].flag;
		a->argv[2 * i + 1] = a->values[i];
	}
	a->argv[2 * FRONT_ARG_PAIRS] = NULL;
}

/* The fronts hand their control sockets to the server, which accepts and
 * deals them connections over those; after http_start, before READY. */
static int
start_fronts(struct daemon *d, unsigned count, char *err, size_t errlen)
{
	struct front_args args;
	/* Said once: a TLS or threaded setup that meant to have fronts should
	 * see why it has none; fronts = no is the operator's own choice. */
	const char *off = config_fronts_off_reason(&d->cfg);
	if (off != NULL)
		log_info("fronts: off (%s)", off);
	if (count == 0)
		return 0;
	front_args_from_config(&d->cfg, &args);
	struct fronts_options o = {
		.count = count,
		.front_path = d->cfg.front_path,
		.extra_args = args.argv,
		.auth_token = d->token,
		.attach = http_fronts_attach,
		.attach_arg = d->http,
	};
	d->fronts = fronts_start(d->pool, &o, err, errlen);
	return d->fronts != NULL ? 0 : -1;
}

/* What the front end takes from the configuration, at start and reload. */
static void
http_options_from_config(const struct config *cfg, struct http_options *o)
{
	o->max_body_bytes = cfg->max_body_bytes;
	o->max_inflight_bytes = cfg->max_inflight_bytes;
	o->request_read_timeout_s = cfg->request_read_timeout_s;
	o->metrics_auth = cfg->metrics_auth;
	o->access_log = cfg->access_log;
	o->slow_job_ms = cfg->slow_job_ms;
}

static int
start_http(struct daemon *d, char *err, size_t errlen)
{
	char host[256];
	unsigned port;
	if (config_parse_listen(d->cfg.listen, host, sizeof(host), &port, err, errlen) == -1)
		return -1;
	unsigned front_count = config_front_count(&d->cfg);
	struct http_options o = {
		.host = host, .port = port,
		.max_timeout_ms = d->cfg.max_timeout_ms,
		.default_timeout_ms = d->cfg.default_timeout_ms,
		.max_connections = d->cfg.max_connections,
		.max_connections_per_ip = d->cfg.max_connections_per_ip,
		.connection_timeout_s = d->cfg.connection_timeout_s,
		.threads = d->cfg.http_threads,
		.fronts = front_count > 0,
		.auth_token = d->token,
		.bytecode_mode = http_bytecode_mode(&d->cfg),
		.bytecode_key = d->bytecode_key, .bytecode_key_len = d->bytecode_key_len,
		.tls_cert_pem = d->tls_cert, .tls_key_pem = d->tls_key,
		.info_json = d->info_json,
		.memory_limit_mb = d->cfg.memory_limit_mb,
		.max_result_bytes = d->cfg.max_result_bytes,
		.max_json_depth = d->cfg.max_json_depth,
		.max_log_bytes = d->cfg.max_log_bytes,
	};
	http_options_from_config(&d->cfg, &o);
	d->http = http_start(&o, d->pool, d->scripts, err, errlen);
	forget_bytecode_key(d);
	if (d->http == NULL || start_fronts(d, front_count, err, errlen) == -1)
		return -1;
	char status[320], fronts[32] = "";
	unsigned workers = luapool_active_workers(d->pool);
	const char *plural = workers == 1 ? "" : "s";
	if (d->fronts != NULL)
		snprintf(fronts, sizeof(fronts), " and %u front%s", front_count,
		    front_count == 1 ? "" : "s");
	snprintf(status, sizeof(status), "READY=1\nSTATUS=serving on %s:%u with %u worker%s%s",
	    *host ? host : "*", http_port(d->http), workers, plural, fronts);
	log_info("listening on %s%s%s:%u (%s), %u worker%s%s", strchr(host, ':') ? "[" : "",
	    *host ? host : "*", strchr(host, ':') ? "]" : "", http_port(d->http),
	    d->tls_cert ? "https" : "http", workers, plural, fronts);
	notify_send(status);
	return 0;
}

static int
start(struct daemon *d)
{
	char err[512] = "";
	struct luapool_options po;
	struct luapool_error pe;
	if (d->cfg.auth_token_file && (d->token = read_token(d->cfg.auth_token_file)) == NULL)
		return -1;
	if (d->cfg.tls_cert_file) {
		d->tls_cert = read_small_file(d->cfg.tls_cert_file, "TLS certificate", NULL);
		d->tls_key = read_small_file(d->cfg.tls_key_file, "TLS key", NULL);
		if (d->tls_cert == NULL || d->tls_key == NULL)
			return -1;
	}
	if (d->cfg.bytecode == CONFIG_BYTECODE_SIGNED && (d->bytecode_key = (unsigned char *)
	    read_small_file(d->cfg.bytecode_key_file, "bytecode key file",
	    &d->bytecode_key_len)) == NULL)
		return -1;
	/* Before the pool, whose module lookup reads it. */
	d->scripts = scripts_new(d->cfg.scripts_dir, d->cfg.max_scripts);
	if (d->scripts == NULL)
		return -1;
	pool_options_from_config(&d->cfg, &po);
	po.module_lookup = find_module;
	po.module_lookup_arg = d->scripts;
	d->pool = luapool_new_with(&po, &pe);
	if (d->pool == NULL) {
		log_error("cannot start the worker pool: %s", pe.message);
		return -1;
	}
	describe_bytecode(d);
	if (d->cfg.scripts_dir && scripts_load_dir(d->scripts, validate_script, d) == -1)
		log_warn("cannot read scripts_dir %s; starting with no scripts", d->cfg.scripts_dir);
	if (start_http(d, err, sizeof(err)) == -1) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

static void
set_logging(const struct config *cfg)
{
	enum log_level level;
	if (log_parse_level(cfg->log_level, &level) == 0)
		log_set_level(level);
	log_set_format(cfg->log_format == CONFIG_LOG_JSON ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT);
}

static void
warn_if_changed(int changed, const char *key)
{
	if (changed)
		log_warn("reload: %s changed; that takes a restart", key);
}

static int
strings_differ(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

static void
reload(struct daemon *d, int argc, char **argv)
{
	struct config fresh;
	char err[512] = "";
	config_init(&fresh);
	/* config_from_args prints its own errors (file:line) on stderr. */
	if (config_from_args(&fresh, argc, argv) != 0 ||
	    config_validate(&fresh, err, sizeof(err)) == -1) {
		log_error("configuration rejected%s%s; keeping the running one",
		    err[0] ? ": " : "", err);
		config_free(&fresh);
		return;
	}
	char *token = NULL;
	if (fresh.auth_token_file && (token = read_token(fresh.auth_token_file)) == NULL) {
		log_error("reload: keeping the running configuration");
		config_free(&fresh);
		return;
	}
	/* Checked before anything changes: fronts left with the old token
	 * would go on accepting it. */
	if (d->fronts != NULL && !fronts_token_fits(token)) {
		log_error("reload: the auth token is too long for the fronts; keeping the "
		    "running configuration");
		free(token);
		config_free(&fresh);
		return;
	}
	set_logging(&fresh);
	struct http_options ho = { .auth_token = token };
	http_options_from_config(&fresh, &ho);
	http_reload(d->http, &ho);
	free(d->token);
	d->token = token;
	const struct config *o = &d->cfg;
	warn_if_changed(strings_differ(o->listen, fresh.listen), "listen");
	warn_if_changed(o->workers != fresh.workers, "workers");
	warn_if_changed(o->queue_depth != fresh.queue_depth, "queue_depth");
	warn_if_changed(o->default_timeout_ms != fresh.default_timeout_ms, "default_timeout_ms");
	warn_if_changed(o->max_timeout_ms != fresh.max_timeout_ms, "max_timeout_ms");
	warn_if_changed(o->memory_limit_mb != fresh.memory_limit_mb, "memory_limit_mb");
	warn_if_changed(o->max_result_bytes != fresh.max_result_bytes, "max_result_bytes");
	warn_if_changed(o->max_connections != fresh.max_connections, "max_connections");
	warn_if_changed(o->max_connections_per_ip != fresh.max_connections_per_ip,
	    "max_connections_per_ip");
	warn_if_changed(o->bytecode != fresh.bytecode, "bytecode");
	warn_if_changed(strings_differ(o->bytecode_key_file, fresh.bytecode_key_file),
	    "bytecode_key_file");
	warn_if_changed(strings_differ(o->scripts_dir, fresh.scripts_dir), "scripts_dir");
	warn_if_changed(strings_differ(o->tls_cert_file, fresh.tls_cert_file), "tls_cert_file");
	warn_if_changed(strings_differ(o->tls_key_file, fresh.tls_key_file), "tls_key_file");
	warn_if_changed(strings_differ(o->worker_path, fresh.worker_path), "worker_path");
	warn_if_changed(strings_differ(o->worker_user, fresh.worker_user), "worker_user");
	warn_if_changed(o->max_json_depth != fresh.max_json_depth, "max_json_depth");
	warn_if_changed(o->max_log_bytes != fresh.max_log_bytes, "max_log_bytes");
	warn_if_changed(o->connection_timeout_s != fresh.connection_timeout_s,
	    "connection_timeout_s");
	warn_if_changed(o->max_scripts != fresh.max_scripts, "max_scripts");
	warn_if_changed(o->max_jobs_per_worker != fresh.max_jobs_per_worker,
	    "max_jobs_per_worker");
	warn_if_changed(o->cache_entries != fresh.cache_entries, "cache_entries");
	warn_if_changed(o->bytecode_jit != fresh.bytecode_jit, "bytecode_jit");
	warn_if_changed(o->http_threads != fresh.http_threads, "http_threads");
	warn_if_changed(o->fronts != fresh.fronts, "fronts");
	warn_if_changed(o->front_workers != fresh.front_workers, "front_workers");
	warn_if_changed(strings_differ(o->front_path, fresh.front_path), "front_path");
	if (d->cfg.scripts_dir)
		scripts_load_dir(d->scripts, validate_script, d);
	/* Keep what needs a restart as it runs; take the rest. */
	d->cfg.max_body_bytes = fresh.max_body_bytes;
	d->cfg.max_inflight_bytes = fresh.max_inflight_bytes;
	d->cfg.request_read_timeout_s = fresh.request_read_timeout_s;
	d->cfg.access_log = fresh.access_log;
	d->cfg.slow_job_ms = fresh.slow_job_ms;
	d->cfg.metrics_auth = fresh.metrics_auth;
	d->cfg.fast_lane_ms = fresh.fast_lane_ms;
	config_free(&fresh);
	/* A new set of fronts with what was taken (the rest as it runs),
	 * then the old set finishes and goes. */
	int fronts_replaced = 0;
	if (d->fronts != NULL) {
		struct front_args args;
		front_args_from_config(&d->cfg, &args);
		fronts_replaced = fronts_reload(d->fronts, d->token, args.argv) == 0;
	}
	log_info("reloaded: log level and format, body limits, request read timeout, "
	    "access log, slow_job_ms, auth token%s%s",
	    d->cfg.scripts_dir ? ", scripts" : "",
	    fronts_replaced ? ", fast_lane_ms (fronts replaced)" : "");
}

/*
 * Drain, after HTTP's first step (no listening socket, new requests get
 * 503 shutting_down, the fronts run no more jobs themselves and hand every
 * request here): the fronts finish what they hold, some of it through us
 * (their internal connections, adopted and replayed ones), so this loop
 * keeps serving meanwhile; the pool's drain comes after, under the same
 * bound.  A front still alive at the bound gets SIGKILL (fronts_free).
 */
static void
stop_fronts(struct daemon *d, int signal_fd, int64_t bound)
{
	if (d->fronts == NULL)
		return;
	log_info("draining: stopping %u fronts", fronts_alive(d->fronts));
	fronts_begin_stop(d->fronts);
	while (fronts_alive(d->fronts) > 0 && frame_now_ns() < bound)
		http_serve_once(d->http, signal_fd, 2);
	fronts_free(d->fronts);
	d->fronts = NULL;
}

/* SIGTERM: no new connections or requests, the fronts finish and go
 * (stop_fronts), in-flight jobs finish (bounded by their deadlines), then
 * workers stop. */
static void
drain_and_stop(struct daemon *d, int signal_fd)
{
	notify_send("STOPPING=1\nSTATUS=draining");
	int64_t bound = frame_now_ns() + ((int64_t)d->cfg.max_timeout_ms + DRAIN_EXTRA_MS) * 1000000;
	log_info("draining: %u requests in flight", http_in_flight(d->http));
	http_begin_drain(d->http);
	stop_fronts(d, signal_fd, bound);
	while (luapool_drain(d->pool) > 0 && frame_now_ns() < bound)
		http_serve_once(d->http, signal_fd, 2);
	/* The pool first: it answers every job it still holds, which resumes
	 * their connections; libmicrohttpd must not be stopped with a
	 * connection suspended. */
	if (luapool_shutdown(d->pool) != 0)
		log_warn("a worker had to be killed at shutdown");
	/* Answers are queued; let them be written out. */
	int64_t flush = frame_now_ns() + (int64_t)DRAIN_EXTRA_MS * 1000000;
	while (http_in_flight(d->http) > 0 && frame_now_ns() < flush)
		http_serve_once(d->http, signal_fd, 2);
	http_stop(d->http);
	d->http = NULL;
	luapool_free(d->pool);
	d->pool = NULL;
	log_info("stopped");
}

static void
release(struct daemon *d)
{
	fronts_free(d->fronts);		/* before http_stop: they attach to it */
	http_stop(d->http);
	luapool_free(d->pool);
	scripts_free(d->scripts);
	free(d->token);
	free(d->tls_cert);
	free(d->tls_key);
	forget_bytecode_key(d);
	config_free(&d->cfg);
}

static int
check_config(struct daemon *d)
{
	char err[512];
	if (config_validate(&d->cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", d->cfg.config_file ? d->cfg.config_file : "luapoold", err);
		return -1;
	}
	set_logging(&d->cfg);
	return 0;
}

int
main(int argc, char **argv)
{
	struct daemon d;
	memset(&d, 0, sizeof(d));
	config_init(&d.cfg);
	int rc = config_from_args(&d.cfg, argc, argv);
	if (rc != 0) {
		config_free(&d.cfg);
		return rc > 0 ? 0 : 2;
	}
	if (check_config(&d) == -1) {
		config_free(&d.cfg);
		return 2;
	}
	if (d.cfg.check_only) {
		printf("%s: configuration OK\n", d.cfg.config_file ? d.cfg.config_file : "defaults");
		config_free(&d.cfg);
		return 0;
	}
	sigset_t signals;
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_file_limit();
	if (start(&d) == -1) {
		release(&d);
		return 1;
	}
	int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
	if (signal_fd == -1) {
		log_error("signalfd: %s", strerror(errno));
		release(&d);
		return 1;
	}
	for (;;) {
		int sig = http_serve_once(d.http, signal_fd, -1);
		if (sig == 0)
			continue;
		if (sig == SIGHUP) {
			notify_send("RELOADING=1");
			reload(&d, argc, argv);
			notify_send("READY=1");
			continue;
		}
		log_info("%s received", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	}
	drain_and_stop(&d, signal_fd);
	close(signal_fd);
	release(&d);
	return 0;
}
