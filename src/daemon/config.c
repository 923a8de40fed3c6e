/*
 * config.c - luapoold's configuration as a whole: the defaults
 * (config_init), releasing it, setting one key by name, and the cross-field
 * validation run before serving.  The table of keys is config_keys.c, the
 * file format config_file.c, the command line and --help config_args.c.
 * This file only builds and checks a struct config; it must never start
 * anything, and it knows nothing of Lua, JSON or HTTP.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luapool.h"
#include "common/front_proto.h"
#include "daemon/config.h"
#include "daemon/config_internal.h"

#define DEFAULT_LISTEN		"127.0.0.1:8080"
#define DEFAULT_MAX_BODY	((size_t)8 * 1024 * 1024)
#define DEFAULT_MAX_CONNECTIONS	1024u
#define DEFAULT_CONN_TIMEOUT_S	30u
#define DEFAULT_READ_TIMEOUT_S	10u
#define DEFAULT_PER_IP		256u
#define DEFAULT_INFLIGHT	((size_t)256 * 1024 * 1024)
#define DEFAULT_MAX_SCRIPTS	1024u
#define DEFAULT_LOG_LEVEL	"info"
#define DEFAULT_SLOW_JOB_MS	1000u
#define DEFAULT_FAST_LANE_MS	10u

/* Lower bounds enforced by config_validate. */
#define MIN_MAX_BODY		64u
#define MIN_MEMORY_MB		4u
#define MIN_MAX_RESULT		16u
#define MIN_BYTECODE_KEY	32u	/* bytes: the size of the HMAC-SHA256 output */
#define MAX_BYTECODE_KEY	4096u

/* Start-up only: there is no sensible way to run without the defaults. */
static char *
copy_or_die(const char *s)
{
	char *copy = strdup(s);

	if (copy == NULL) {
		fputs(PROGRAM ": out of memory\n", stderr);
		abort();
	}
	return copy;
}

void
config_init(struct config *cfg)
{
	*cfg = (struct config){
		.workers = 0,
		.queue_depth = LUAPOOL_DEFAULT_QUEUE_DEPTH,
		.default_timeout_ms = LUAPOOL_DEFAULT_TIMEOUT_MS,
		.max_timeout_ms = LUAPOOL_DEFAULT_MAX_TIMEOUT_MS,
		.max_body_bytes = DEFAULT_MAX_BODY,
		.memory_limit_mb = LUAPOOL_DEFAULT_MEMORY_MB,
		.max_result_bytes = LUAPOOL_DEFAULT_MAX_RESULT,
		.max_json_depth = LUAPOOL_DEFAULT_MAX_DEPTH,
		.max_log_bytes = LUAPOOL_DEFAULT_MAX_LOG,
		.max_connections = DEFAULT_MAX_CONNECTIONS,
		.connection_timeout_s = DEFAULT_CONN_TIMEOUT_S,
		.request_read_timeout_s = DEFAULT_READ_TIMEOUT_S,
		.max_connections_per_ip = DEFAULT_PER_IP,
		.max_inflight_bytes = DEFAULT_INFLIGHT,
		.metrics_auth = 0,
		.bytecode = CONFIG_BYTECODE_VERIFIED,
		.bytecode_jit = 1,
		.max_scripts = DEFAULT_MAX_SCRIPTS,
		.max_jobs_per_worker = LUAPOOL_DEFAULT_MAX_JOBS,
		.cache_entries = LUAPOOL_DEFAULT_CACHE_ENTRIES,
		.access_log = 1,
		.slow_job_ms = DEFAULT_SLOW_JOB_MS,
		.fronts = 1,
		.front_workers = 0,
		.fast_lane_ms = DEFAULT_FAST_LANE_MS,
		.http_threads = 0,
	};
	cfg->listen = copy_or_die(DEFAULT_LISTEN);
	cfg->log_level = copy_or_die(DEFAULT_LOG_LEVEL);
	cfg->worker_user = copy_or_die(LUAPOOL_DEFAULT_WORKER_USER);
}

void
config_free(struct config *cfg)
{
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		char **string = (void *)((char *)cfg + config_keys[i].offset);

		if (config_keys[i].type == TYPE_PATH ||
		    config_keys[i].type == TYPE_LISTEN ||
		    config_keys[i].type == TYPE_LOG_LEVEL ||
		    config_keys[i].type == TYPE_NAME) {
			free(*string);
			*string = NULL;
		}
	}
	free(cfg->config_file);
	cfg->config_file = NULL;
}

int
config_set(struct config *cfg, const char *key, const char *value, char *err,
    size_t errlen)
{
	const struct config_key *found = config_keys_find(key, strlen(key),
	    '_');

	if (found == NULL)
		return config_keys_fail(err, errlen, "unknown key \"%s\"", key);
	return config_keys_set(cfg, found, value, err, errlen);
}

/* Validation ------------------------------------------------------------- */

#define MAX_MAX_BODY (255u * 1024u * 1024u)
#define MAX_WORKERS 1024u
#define MAX_JSON_DEPTH 998u
#define MAX_FRONT_WORKERS FRONT_SET_MAX
#define MAX_FAST_LANE_MS 1000u

static int
check_limits(const struct config *cfg, char *err, size_t errlen)
{
	if (cfg->max_timeout_ms < 1)
		return config_keys_fail(err, errlen,
		    "max_timeout_ms must be at least 1");
	if (cfg->default_timeout_ms < 1)
		return config_keys_fail(err, errlen,
		    "default_timeout_ms must be at least 1");
	if (cfg->default_timeout_ms > cfg->max_timeout_ms)
		return config_keys_fail(err, errlen,
		    "default_timeout_ms (%u) is larger than "
		    "max_timeout_ms (%u)", cfg->default_timeout_ms,
		    cfg->max_timeout_ms);
	if (cfg->queue_depth < 1)
		return config_keys_fail(err, errlen,
		    "queue_depth must be at least 1");
	if (cfg->max_body_bytes < MIN_MAX_BODY)
		return config_keys_fail(err, errlen,
		    "max_body_bytes must be at least %u",
		    MIN_MAX_BODY);
	if (cfg->memory_limit_mb < MIN_MEMORY_MB)
		return config_keys_fail(err, errlen,
		    "memory_limit_mb must be at least %u",
		    MIN_MEMORY_MB);
	if (cfg->max_result_bytes < MIN_MAX_RESULT)
		return config_keys_fail(err, errlen,
		    "max_result_bytes must be at least %u",
		    MIN_MAX_RESULT);
	/* The worker refuses frames above 256 MiB. */
	if (cfg->max_body_bytes > MAX_MAX_BODY)
		return config_keys_fail(err, errlen,
		    "max_body_bytes must be at most %u", MAX_MAX_BODY);
	if (cfg->request_read_timeout_s < 1)
		return config_keys_fail(err, errlen,
		    "request_read_timeout_s must be at least 1");
	/* Else a body of the largest size could never be taken. */
	if (cfg->max_inflight_bytes < cfg->max_body_bytes)
		return config_keys_fail(err, errlen,
		    "max_inflight_bytes (%zu) is smaller than max_body_bytes (%zu)",
		    cfg->max_inflight_bytes, cfg->max_body_bytes);
	if (cfg->workers > MAX_WORKERS)
		return config_keys_fail(err, errlen,
		    "workers must be at most %u", MAX_WORKERS);
	/* cJSON, which still parses some bodies, stops at 1000 levels. */
	if (cfg->max_json_depth < 1 || cfg->max_json_depth > MAX_JSON_DEPTH)
		return config_keys_fail(err, errlen,
		    "max_json_depth must be between 1 and %u",
		    MAX_JSON_DEPTH);
	if (cfg->max_log_bytes > LUAPOOL_MAX_LOG_LIMIT)
		return config_keys_fail(err, errlen,
		    "max_log_bytes must be at most %u", LUAPOOL_MAX_LOG_LIMIT);
	if (cfg->front_workers > MAX_FRONT_WORKERS)
		return config_keys_fail(err, errlen,
		    "front_workers must be at most %u", MAX_FRONT_WORKERS);
	if (cfg->fast_lane_ms < 1 || cfg->fast_lane_ms > MAX_FAST_LANE_MS)
		return config_keys_fail(err, errlen,
		    "fast_lane_ms must be between 1 and %u", MAX_FAST_LANE_MS);
	return 0;
}

/* The token must be there now: finding out at the first request that
 * nobody can authenticate would be worse. */
static int
check_token_file(const char *path, char *err, size_t errlen)
{
	int c, found = 0, error;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return config_keys_fail(err, errlen,
		    "auth_token_file \"%s\": %s", path,
		    strerror(errno));
	while (!found && (c = getc(f)) != EOF)
		found = !isspace(c);
	error = ferror(f) ? errno : 0;
	fclose(f);
	if (error != 0)
		return config_keys_fail(err, errlen,
		    "auth_token_file \"%s\": %s", path,
		    strerror(error));
	if (!found)
		return config_keys_fail(err, errlen,
		    "auth_token_file \"%s\" is empty", path);
	return 0;
}

static int
check_readable(const char *name, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		return config_keys_fail(err, errlen,
		    "%s \"%s\": %s", name, path,
		    strerror(errno));
	close(fd);
	return 0;
}

/* The key of bytecode = signed: there, long enough, and private, since
 * whoever reads it can sign any bytes.  Read at start-up (luapoold.c). */
static int
check_bytecode_key(const struct config *cfg, char *err, size_t errlen)
{
	struct stat st;
	const char *path = cfg->bytecode_key_file;

	if (cfg->bytecode != CONFIG_BYTECODE_SIGNED)
		return 0;
	if (path == NULL)
		return config_keys_fail(err, errlen,
		    "bytecode = signed needs bytecode_key_file (make one with "
		    "head -c 32 /dev/urandom > key; chmod 600 key)");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1) {
		int error = errno;
		if (fd != -1)
			close(fd);
		return config_keys_fail(err, errlen,
		    "bytecode_key_file \"%s\": %s", path, strerror(error));
	}
	close(fd);
	if (!S_ISREG(st.st_mode))
		return config_keys_fail(err, errlen,
		    "bytecode_key_file \"%s\" is not a regular file", path);
	if (st.st_mode & S_IROTH)
		return config_keys_fail(err, errlen,
		    "bytecode_key_file \"%s\" is readable by every user: "
		    "chmod o-r it (or 600)", path);
	if (st.st_size < MIN_BYTECODE_KEY || st.st_size > MAX_BYTECODE_KEY)
		return config_keys_fail(err, errlen,
		    "bytecode_key_file \"%s\" must hold %u to %u bytes, not "
		    "%lld", path, MIN_BYTECODE_KEY, MAX_BYTECODE_KEY,
		    (long long)st.st_size);
	return 0;
}

static int
check_files(const struct config *cfg, char *err, size_t errlen)
{
	struct stat st;

	if (cfg->auth_token_file != NULL &&
	    check_token_file(cfg->auth_token_file, err, errlen) == -1)
		return -1;
	if (check_bytecode_key(cfg, err, errlen) == -1)
		return -1;
	if (cfg->worker_path != NULL && access(cfg->worker_path, X_OK) == -1)
		return config_keys_fail(err, errlen,
		    "worker_path \"%s\": %s", cfg->worker_path, strerror(errno));
	if (cfg->front_path != NULL && access(cfg->front_path, X_OK) == -1)
		return config_keys_fail(err, errlen,
		    "front_path \"%s\": %s", cfg->front_path, strerror(errno));
	if ((cfg->tls_cert_file == NULL) != (cfg->tls_key_file == NULL))
		return config_keys_fail(err, errlen,
		    "tls_cert_file and tls_key_file go "
		    "together: set both or neither");
	if (cfg->tls_cert_file != NULL &&
	    (check_readable("tls_cert_file", cfg->tls_cert_file, err,
	    errlen) == -1 ||
	    check_readable("tls_key_file", cfg->tls_key_file, err,
	    errlen) == -1))
		return -1;
	if (cfg->scripts_dir != NULL) {
		if (stat(cfg->scripts_dir, &st) == -1)
			return config_keys_fail(err, errlen,
			    "scripts_dir \"%s\": %s",
			    cfg->scripts_dir, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return config_keys_fail(err, errlen,
			    "scripts_dir \"%s\" is not a "
			    "directory", cfg->scripts_dir);
	}
	return 0;
}

int
config_validate(const struct config *cfg, char *err, size_t errlen)
{
	char why[512];

	if (cfg->listen == NULL || config_parse_listen(cfg->listen, NULL, 0,
	    NULL, why, sizeof(why)) == -1)
		return config_keys_fail(err, errlen,
		    "listen: %s", cfg->listen ? why :
		    "missing value");
	if (cfg->log_level == NULL ||
	    config_keys_canonical_log_level(cfg->log_level) == NULL)
		return config_keys_fail(err, errlen,
		    "log_level: not a log level: \"%s\"",
		    cfg->log_level ? cfg->log_level : "");
	if (check_limits(cfg, err, errlen) == -1)
		return -1;
	return check_files(cfg, err, errlen);
}

/* Fronts ----------------------------------------------------------------- */

/*
 * TLS and http_threads > 0 turn fronts off instead of being refused: fronts
 * are the default, and a configuration that asks for either must still
 * start.  A TLS session cannot move between processes (a front serves
 * plain HTTP), and the supervisor's side of the fronts runs in its one
 * event loop.
 */
const char *
config_fronts_off_reason(const struct config *cfg)
{
	if (!cfg->fronts)
		return NULL;
	if (cfg->tls_cert_file != NULL)
		return "TLS is served by the supervisor";
	if (cfg->http_threads > 0)
		return "http_threads > 0";
	return NULL;
}

unsigned
config_front_count(const struct config *cfg)
{
	if (!cfg->fronts || config_fronts_off_reason(cfg) != NULL)
		return 0;
	if (cfg->front_workers > 0)
		return cfg->front_workers;
	/* As workers = 0 (pool.c), bounded as front_workers is. */
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return n > (long)MAX_FRONT_WORKERS ? MAX_FRONT_WORKERS : (unsigned)n;
}
