/*
 * config.h - luapoold's configuration: defaults, the `key = value` file, the
 * long options that mirror every key, and validation.
 *
 * Precedence: defaults < configuration file < command line.  Every key of
 * the file is also `--key-with-dashes VALUE` (or `--key-with-dashes=VALUE`).
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define CONFIG_DEFAULT_FILE "/etc/luapoold/luapoold.conf"

/* Values of `bytecode` (allow_bytecode = yes/no is an old spelling of
 * verified/off, so those two keep the values of a boolean). */
enum config_bytecode {
	CONFIG_BYTECODE_OFF = 0,	/* source only */
	CONFIG_BYTECODE_VERIFIED = 1,	/* bytecode that passes the verifier */
	CONFIG_BYTECODE_SIGNED = 2	/* only bytecode this server compiled */
};

/* Values of `log_format` (the same as common/log.h's enum log_format). */
enum config_log_format {
	CONFIG_LOG_TEXT = 0,
	CONFIG_LOG_JSON = 1
};

struct config {
	char *listen;			/* "127.0.0.1:8080", "[::1]:8080", ":8080" */
	unsigned workers;		/* 0: one per CPU */
	unsigned queue_depth;
	unsigned default_timeout_ms;
	unsigned max_timeout_ms;
	size_t max_body_bytes;
	unsigned memory_limit_mb;
	size_t max_result_bytes;
	unsigned max_json_depth;
	size_t max_log_bytes;		/* a job's print and log.* capture; 0: none */
	unsigned max_connections;
	unsigned connection_timeout_s;	/* idle or slow client */
	unsigned request_read_timeout_s;	/* a whole request: headers and body */
	unsigned max_connections_per_ip;	/* 0: no limit */
	size_t max_inflight_bytes;	/* request bytes held at once, all clients */
	char *auth_token_file;		/* NULL: no auth */
	int metrics_auth;		/* 1: /metrics needs the token too */
	int bytecode;			/* enum config_bytecode; also allow_bytecode */
	char *bytecode_key_file;	/* HMAC key of bytecode = signed */
	int bytecode_jit;		/* 0: client bytecode is never JIT-compiled */
	char *scripts_dir;		/* NULL: scripts kept in memory only */
	unsigned max_scripts;
	unsigned max_jobs_per_worker;
	unsigned cache_entries;
	char *log_level;		/* error warn info debug */
	int log_format;			/* enum config_log_format */
	int access_log;
	unsigned slow_job_ms;		/* jobs longer than this are logged at warn; 0: off */
	char *worker_path;		/* NULL: the pool's search order */
	char *worker_user;		/* workers run as this user when luapoold is root */
	int fronts;			/* 1: front processes serve HTTP (config_front_count) */
	unsigned front_workers;		/* front processes (src/front/); 0: one per CPU */
	unsigned fast_lane_ms;		/* a front's bound for running a job itself */
	char *front_path;		/* NULL: the search order of process_find_front */
	char *tls_cert_file, *tls_key_file;
	unsigned http_threads;		/* 0: one per CPU */

	/* Not keys: set by the command line only. */
	char *config_file;		/* -c/--config; NULL: none */
	int check_only;			/* --check-config */
};

/* Fills defaults (aborts if out of memory: start-up only).  config_free
 * releases every string and may be called again. */
void config_init(struct config *cfg);
void config_free(struct config *cfg);

/*
 * Parses the command line into cfg: first it finds -c/--config and loads
 * that file (if given; without it no file is read), then it applies every
 * other option over it, whatever the order on the command line.
 * --help and --version print to stdout and return 1 (caller exits 0).
 * --check-config sets cfg->check_only and returns 0: the caller then runs
 * config_validate, reports, and exits 0 or 1 without serving.
 * Errors are printed to stderr ("file:line: message" for the file,
 * "luapoold: message" for options) and return -1.  Returns 0 to run.
 */
int config_from_args(struct config *cfg, int argc, char **argv);

/* Loads one file over cfg.  -1 with an error printed as "path:line: msg";
 * cfg may then be partly changed, so a reload loads into a fresh config. */
int config_load_file(struct config *cfg, const char *path);

/* Sets one key (underscored name) from text.  -1 with `err` filled; err
 * names the key only when it is unknown (callers prefix it otherwise).
 * An empty value unsets a path key (auth_token_file, scripts_dir, ...). */
int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen);

/* Cross-field checks (timeouts, sizes, files readable).  -1 with err filled. */
int config_validate(const struct config *cfg, char *err, size_t errlen);

/*
 * Fronts to start: 0 with fronts = no, tls_cert_file set or http_threads
 * > 0 (fronts serve plain HTTP from the supervisor's one event loop);
 * else front_workers, or with front_workers = 0 one per online CPU (1 to
 * 64).  Call it once at start: the CPU count may change later.
 */
unsigned config_front_count(const struct config *cfg);

/* Why fronts = yes starts none ("TLS is served by the supervisor",
 * "http_threads > 0"), for the start-up log; NULL when fronts run or
 * fronts = no. */
const char *config_fronts_off_reason(const struct config *cfg);

/* Prints --help to stdout: the built-in options, then every key as an
 * option with its default (from config_init) and a one-line description. */
void config_print_usage(const char *program);

/* Prints the man page of section "8" (luapoold) or "5" (luapoold.conf) as
 * roff to stdout, keys and defaults from the same table as --help.  -1
 * (and a message on stderr) for another section. */
int config_print_man(const char *section);

/* Writes every key with its current value to `out`, in file format (unset
 * keys as "# key ="); reading it back gives the same configuration. */
void config_print(const struct config *cfg, FILE *out);

/*
 * Splits a listen value, "host:port", "[v6]:port" or ":port": host gets the
 * name or address without brackets ("" for all interfaces), port 0..65535
 * (0: any free port).  host and port may be NULL to only check the text.
 * -1 with err filled.
 */
int config_parse_listen(const char *listen, char *host, size_t host_len,
    unsigned *port, char *err, size_t errlen);

#endif
