/*
 * test_signed.c - the integration suite for the bytecode trust modes
 * (config key `bytecode`) against the real luapoold: with signed, only
 * bytecode this server's /v1/compile returned runs or is stored, a flipped
 * byte anywhere in it or raw `luajit -b` output is refused, source still
 * works, and the key file is required at start-up; with off, bytecode is
 * refused as before; /v1/info reports the mode.  The verified mode (the
 * default) is the rest of the suites.  Each test owns its daemon.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "common/base64.h"
#include "support/apitest.h"
#include "support/httpc.h"
#include "support/server.h"
#include "support/support.h"

#define TAG_SIZE 36		/* "LPS1" and HMAC-SHA256 */
#define UNSIGNED_DETAIL \
	"bytecode must be signed by this server: compile it with /v1/compile"

static char key_path[128];
static const char *signed_options[] = { "--workers", "2", "--bytecode", "signed",
	"--bytecode-key-file", key_path, NULL };

/* A fresh key of 32 random bytes, mode 0600, in the scratch directory. */
static void
write_key(void)
{
	unsigned char key[32];
	FILE *f = fopen("/dev/urandom", "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(key, 1, sizeof(key), f), sizeof(key));
	fclose(f);
	if (!apitest_scratch[0])
		apitest_make_scratch_dir();
	snprintf(key_path, sizeof(key_path), "%s/bytecode.key", apitest_scratch);
	ck_assert_int_eq(support_write_file(key_path, key, sizeof(key)), 0);
	ck_assert_int_eq(chmod(key_path, 0600), 0);
}

static void
start_signed(void)
{
	write_key();
	apitest_start(signed_options);
}

/* The base64 that /v1/compile returns for the hello source. */
static char *
compile_hello(void)
{
	struct httpc_response r;
	char *request = apitest_source_request(HELLO_SOURCE, 0);
	post_json("/v1/compile", request, &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	char *b64 = strdup(apitest_string_member(doc, "bytecode"));
	size_t decoded = base64_decoded_max(strlen(b64));
	ck_assert_uint_ge(decoded, (size_t)apitest_number_member(doc, "size"));
	cJSON_Delete(doc);
	httpc_response_free(&r);
	cJSON_free(request);
	return b64;
}

/* b64 decoded, with byte `at` (from the end when negative) XORed with
 * 0x01, and cut to `keep` bytes (0: all); encoded again.  Caller frees. */
static char *
altered(const char *b64, long at, size_t keep)
{
	unsigned char *bytes = malloc(base64_decoded_max(strlen(b64)));
	ck_assert_ptr_nonnull(bytes);
	long n = base64_decode(b64, strlen(b64), bytes);
	ck_assert_int_gt(n, TAG_SIZE);
	if (at != 0)
		bytes[at > 0 ? at : n + at] ^= 0x01;
	char *out = apitest_encode_base64(bytes, keep ? keep : (size_t)n, 0, 1, 0);
	free(bytes);
	return out;
}

/* POSTs {"bytecode": b64, "context": {"message": "Hello"}} to /v1/exec
 * and expects status (200: the hello result) and code. */
static void
expect_exec_at(int line, const char *b64, int status, const char *code)
{
	struct httpc_response r;
	char *request = apitest_hello_request("bytecode", b64);
	apitest_ask_at(line, "POST", "/v1/exec", JSON_HEADERS, request, &r);
	if (status == 200)
		apitest_expect_json_at(line, &r, 200, HELLO_RESULT);
	else
		cJSON_Delete(apitest_problem_at(line, &r, status, code));
	httpc_response_free(&r);
	cJSON_free(request);
}
#define expect_exec(b, s, c) expect_exec_at(__LINE__, b, s, c)

static void
expect_bytecode_mode(const char *mode, int allowed)
{
	struct httpc_response r;
	get_path("/v1/info", &r);
	expect_json(&r, 200, NULL);
	cJSON *doc = parse(&r);
	ck_assert_str_eq(apitest_string_member(doc, "bytecode"), mode);
	ck_assert(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(doc, "allow_bytecode")));
	ck_assert_int_eq(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "allow_bytecode")),
	    allowed);
	cJSON_Delete(doc);
	httpc_response_free(&r);
}

/* Signed mode --------------------------------------------------------------- */

START_TEST(compiled_bytecode_should_run_again_and_again_with_its_tag)
{
	start_signed();
	expect_bytecode_mode("signed", 1);
	char *b64 = compile_hello();
	for (int i = 0; i < 5; i++)
		expect_exec(b64, 200, NULL);
	expect_hello_works();	/* source still runs */
	free(b64);
}
END_TEST

START_TEST(bytecode_with_any_byte_flipped_or_no_tag_should_answer_400)
{
	start_signed();
	char *b64 = compile_hello();
	/* In the dump (its header and its last byte), the magic, the MAC. */
	const long flips[] = { 5, 20, -TAG_SIZE - 1, -TAG_SIZE, -TAG_SIZE + 3, -32, -1 };
	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		char *bad = altered(b64, flips[i], 0);
		expect_exec(bad, 400, "invalid_bytecode");
		free(bad);
	}
	unsigned char probe[4096];
	long n = base64_decode(b64, strlen(b64), probe);
	char *untagged = altered(b64, 0, (size_t)n - TAG_SIZE);
	expect_exec(untagged, 400, "invalid_bytecode");
	char *short_tag = altered(b64, 0, (size_t)n - 1);
	expect_exec(short_tag, 400, "invalid_bytecode");
	expect_exec(b64, 200, NULL);	/* the original still runs */
	free(short_tag);
	free(untagged);
	free(b64);
}
END_TEST

START_TEST(luajit_output_should_answer_400_with_how_to_get_signed_bytecode)
{
	start_signed();
	char *b64 = apitest_fixture_base64(HELLO_FIXTURE);
	struct httpc_response r;
	char *request = apitest_hello_request("bytecode", b64);
	post_json("/v1/exec", request, &r);
	cJSON *problem = parse_problem(&r, 400, "invalid_bytecode");
	ck_assert_str_eq(apitest_string_member(problem, "detail"), UNSIGNED_DETAIL);
	cJSON_Delete(problem);
	httpc_response_free(&r);
	/* A key spelled with an escape reaches the worker, which refuses it. */
	char *signed_b64 = compile_hello();
	char body[4096];
	snprintf(body, sizeof(body), "{\"byte\\u0063ode\":\"%s\",\"context\":{}}", signed_b64);
	expect_post_problem("/v1/exec", body, 400, "invalid_bytecode");
	snprintf(body, sizeof(body), "{\"bytecode\":\"%s\",\"source\":\"return 1\"}", signed_b64);
	expect_post_problem("/v1/exec", body, 400, "invalid_request");
	expect_post_problem("/v1/exec", "{\"bytecode\":\"!!!\"}", 400, "invalid_base64");
	expect_hello_works();
	free(signed_b64);
	cJSON_free(request);
	free(b64);
}
END_TEST

START_TEST(put_should_store_signed_bytecode_and_refuse_unsigned)
{
	start_signed();
	struct httpc_response r;
	char *b64 = compile_hello();
	char *request = apitest_hello_request("bytecode", b64);
	ask("PUT", "/v1/scripts/signed", JSON_HEADERS, request, &r);
	expect_json(&r, 201, NULL);
	httpc_response_free(&r);
	for (int i = 0; i < 3; i++) {
		post_json("/v1/scripts/signed", "{\"context\":{\"message\":\"Hello\"}}", &r);
		expect_json(&r, 200, HELLO_RESULT);
		httpc_response_free(&r);
	}

	char *raw = apitest_fixture_base64(HELLO_FIXTURE);
	char *unsigned_request = apitest_hello_request("bytecode", raw);
	ask("PUT", "/v1/scripts/raw", JSON_HEADERS, unsigned_request, &r);
	cJSON *problem = parse_problem(&r, 400, "invalid_bytecode");
	ck_assert_str_eq(apitest_string_member(problem, "detail"), UNSIGNED_DETAIL);
	cJSON_Delete(problem);
	httpc_response_free(&r);
	get_path("/v1/scripts/raw", &r);
	expect_problem(&r, 404, "unknown_script");
	httpc_response_free(&r);

	char *source = apitest_source_request(HELLO_SOURCE, 0);
	ask("PUT", "/v1/scripts/source", JSON_HEADERS, source, &r);
	expect_json(&r, 201, NULL);
	httpc_response_free(&r);
	post_json("/v1/scripts/source", "{\"context\":{\"message\":\"Hello\"}}", &r);
	expect_json(&r, 200, HELLO_RESULT);
	httpc_response_free(&r);
	cJSON_free(source);
	cJSON_free(unsigned_request);
	free(raw);
	cJSON_free(request);
	free(b64);
}
END_TEST

START_TEST(bytecode_signed_under_another_key_should_answer_400)
{
	start_signed();
	char *b64 = compile_hello();
	expect_exec(b64, 200, NULL);
	apitest_stop();
	write_key();
	apitest_start(signed_options);
	expect_exec(b64, 400, "invalid_bytecode");
	free(b64);
}
END_TEST

/* Start-up ----------------------------------------------------------------- */

/* Runs luapoold with these options to completion; expects it to fail with
 * `message` in its stderr. */
static void
expect_start_failure_at(int line, const char *const *options, const char *message)
{
	char *argv[16];
	int argc = 0, status;
	char *out, *err;
	argv[argc++] = strdup(server_daemon_path());
	argv[argc++] = strdup("--worker-path");
	argv[argc++] = strdup(server_worker_path());
	for (int i = 0; options[i]; i++)
		argv[argc++] = strdup(options[i]);
	argv[argc] = NULL;
	ck_assert_msg(support_run(argv, 10000, &status, &out, &err) == 0,
	    "line %d: luapoold did not finish", line);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0,
	    "line %d: wait status 0x%x", line, status);
	ck_assert_msg(strstr(err, message) != NULL, "line %d: stderr lacks \"%s\": %s", line,
	    message, err);
	ck_assert_ptr_null(strstr(err, "listening on"));
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(out);
	free(err);
}
#define expect_start_failure(o, m) expect_start_failure_at(__LINE__, o, m)

START_TEST(signed_mode_should_not_start_without_a_private_key_of_32_bytes)
{
	char conf[160], message[256];
	apitest_make_scratch_dir();
	snprintf(conf, sizeof(conf), "%s/signed.conf", apitest_scratch);
	static const char text[] = "listen = 127.0.0.1:0\nbytecode = signed\n";
	ck_assert_int_eq(support_write_file(conf, text, sizeof(text) - 1), 0);
	const char *const no_key[] = { "-c", conf, NULL };
	snprintf(message, sizeof(message), "%s: bytecode = signed needs bytecode_key_file", conf);
	expect_start_failure(no_key, message);

	const char *const missing[] = { "-c", conf, "--bytecode-key-file", "/nonexistent/key",
		NULL };
	expect_start_failure(missing, "bytecode_key_file \"/nonexistent/key\": No such file");

	write_key();
	ck_assert_int_eq(chmod(key_path, 0644), 0);
	const char *const shared[] = { "-c", conf, "--bytecode-key-file", key_path, NULL };
	expect_start_failure(shared, "is readable by every user");

	ck_assert_int_eq(support_write_file(key_path, "short", 5), 0);
	ck_assert_int_eq(chmod(key_path, 0600), 0);
	expect_start_failure(shared, "must hold 32 to 4096 bytes, not 5");
}
END_TEST

/* Off and the old spelling --------------------------------------------------- */

START_TEST(off_mode_should_refuse_bytecode_as_invalid_request)
{
	static const char *const options[] = { "--workers", "1", "--bytecode", "off", NULL };
	apitest_start(options);
	expect_bytecode_mode("off", 0);
	char *b64 = apitest_fixture_base64(HELLO_FIXTURE);
	expect_exec(b64, 400, "invalid_request");
	struct httpc_response r;
	char *request = apitest_hello_request("bytecode", b64);
	ask("PUT", "/v1/scripts/bc", JSON_HEADERS, request, &r);
	expect_problem(&r, 400, "invalid_request");
	httpc_response_free(&r);
	expect_hello_works();
	cJSON_free(request);
	free(b64);
}
END_TEST

START_TEST(allow_bytecode_should_still_mean_verified_or_off)
{
	static const char *const no[] = { "--workers", "1", "--allow-bytecode", "no", NULL };
	apitest_start(no);
	expect_bytecode_mode("off", 0);
	apitest_stop();
	static const char *const yes[] = { "--workers", "1", "--allow-bytecode", "yes", NULL };
	apitest_start(yes);
	expect_bytecode_mode("verified", 1);
	char *b64 = apitest_fixture_base64(HELLO_FIXTURE);
	expect_exec(b64, 200, NULL);
	free(b64);
}
END_TEST

/* Suite -------------------------------------------------------------------- */

static Suite *
signed_suite(void)
{
	Suite *s = suite_create("signed bytecode");
	TCase *own = tcase_create("own daemon");
	tcase_add_checked_fixture(own, apitest_setup, apitest_teardown);
	tcase_set_timeout(own, TEST_TIMEOUT_S);
	tcase_add_test(own, compiled_bytecode_should_run_again_and_again_with_its_tag);
	tcase_add_test(own, bytecode_with_any_byte_flipped_or_no_tag_should_answer_400);
	tcase_add_test(own, luajit_output_should_answer_400_with_how_to_get_signed_bytecode);
	tcase_add_test(own, put_should_store_signed_bytecode_and_refuse_unsigned);
	tcase_add_test(own, bytecode_signed_under_another_key_should_answer_400);
	tcase_add_test(own, signed_mode_should_not_start_without_a_private_key_of_32_bytes);
	tcase_add_test(own, off_mode_should_refuse_bytecode_as_invalid_request);
	tcase_add_test(own, allow_bytecode_should_still_mean_verified_or_off);
	suite_add_tcase(s, own);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(signed_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
