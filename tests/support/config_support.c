/*
 * config_support.c - helpers shared by the configuration suites: stdout or
 * stderr captured into a file, temporary configuration files, and field by
 * field comparison of two configurations.  Failing here fails the running
 * test; nothing here may leave a file behind when the test passes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "support/config_support.h"

void
config_support_capture_start(struct config_support_capture *c,
    FILE *stream)
{
	int fd;

	c->stream = stream;
	strcpy(c->path, "/tmp/test_config_out_XXXXXX");
	fd = mkstemp(c->path);
	ck_assert_int_ne(fd, -1);
	fflush(stream);
	c->saved_fd = dup(fileno(stream));
	ck_assert_int_ne(dup2(fd, fileno(stream)), -1);
	close(fd);
}

const char *
config_support_capture_end(struct config_support_capture *c)
{
	FILE *f;
	size_t n;

	fflush(c->stream);
	dup2(c->saved_fd, fileno(c->stream));
	close(c->saved_fd);
	f = fopen(c->path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(c->text, 1, sizeof(c->text) - 1, f);
	c->text[n] = '\0';
	fclose(f);
	unlink(c->path);
	return c->text;
}

void
config_support_write_temp_file(char *path, const char *text)
{
	FILE *f;
	int fd;

	strcpy(path, "/tmp/test_config_XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ne(fd, -1);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void
assert_same_string(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		ck_assert_ptr_eq(a, b);
	else
		ck_assert_str_eq(a, b);
}

void
config_support_assert_same_config(const struct config *a,
    const struct config *b)
{
	assert_same_string(a->listen, b->listen);
	ck_assert_uint_eq(a->workers, b->workers);
	ck_assert_uint_eq(a->queue_depth, b->queue_depth);
	ck_assert_uint_eq(a->default_timeout_ms, b->default_timeout_ms);
	ck_assert_uint_eq(a->max_timeout_ms, b->max_timeout_ms);
	ck_assert_uint_eq(a->max_body_bytes, b->max_body_bytes);
	ck_assert_uint_eq(a->memory_limit_mb, b->memory_limit_mb);
	ck_assert_uint_eq(a->max_result_bytes, b->max_result_bytes);
	ck_assert_uint_eq(a->max_json_depth, b->max_json_depth);
	ck_assert_uint_eq(a->max_connections, b->max_connections);
	ck_assert_uint_eq(a->connection_timeout_s, b->connection_timeout_s);
	ck_assert_uint_eq(a->request_read_timeout_s, b->request_read_timeout_s);
	ck_assert_uint_eq(a->max_connections_per_ip, b->max_connections_per_ip);
	ck_assert_uint_eq(a->max_inflight_bytes, b->max_inflight_bytes);
	assert_same_string(a->auth_token_file, b->auth_token_file);
	ck_assert_int_eq(a->metrics_auth, b->metrics_auth);
	ck_assert_int_eq(a->bytecode, b->bytecode);
	assert_same_string(a->bytecode_key_file, b->bytecode_key_file);
	assert_same_string(a->scripts_dir, b->scripts_dir);
	ck_assert_uint_eq(a->max_scripts, b->max_scripts);
	ck_assert_uint_eq(a->max_jobs_per_worker, b->max_jobs_per_worker);
	ck_assert_uint_eq(a->cache_entries, b->cache_entries);
	assert_same_string(a->log_level, b->log_level);
	ck_assert_int_eq(a->log_format, b->log_format);
	ck_assert_int_eq(a->access_log, b->access_log);
	assert_same_string(a->worker_path, b->worker_path);
	assert_same_string(a->worker_user, b->worker_user);
	ck_assert_int_eq(a->fronts, b->fronts);
	ck_assert_uint_eq(a->front_workers, b->front_workers);
	ck_assert_uint_eq(a->fast_lane_ms, b->fast_lane_ms);
	assert_same_string(a->front_path, b->front_path);
	assert_same_string(a->tls_cert_file, b->tls_cert_file);
	assert_same_string(a->tls_key_file, b->tls_key_file);
	ck_assert_uint_eq(a->http_threads, b->http_threads);
}

void
config_support_set_ok(struct config *cfg, const char *key, const char *value)
{
	char err[256] = "";

	ck_assert_msg(config_set(cfg, key, value, err, sizeof(err)) == 0,
	    "%s = \"%s\": %s", key, value, err);
}
