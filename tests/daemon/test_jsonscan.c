/*
 * test_jsonscan.c - finding a request's top-level timeout_ms, and any
 * top-level member (the signed "bytecode"), without parsing its context.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/jsonscan.h"

static enum jsonscan_result
scan(const char *text, unsigned long *out)
{
	*out = 0;
	return jsonscan_timeout_ms(text, strlen(text), out);
}

START_TEST(scan_should_find_a_top_level_timeout)
{
	unsigned long t;
	ck_assert_int_eq(scan("{\"source\":\"return 1\",\"timeout_ms\":250}", &t), JSONSCAN_FOUND);
	ck_assert_uint_eq(t, 250);
	ck_assert_int_eq(scan(" {\n \"timeout_ms\" : 7 , \"context\":{}}\n", &t), JSONSCAN_FOUND);
	ck_assert_uint_eq(t, 7);
}
END_TEST

START_TEST(scan_should_skip_the_context_whatever_it_holds)
{
	unsigned long t;
	const char *tricky = "{\"context\":{\"timeout_ms\":1,\"s\":\"}]\\\"{[\\\\\",\"a\":[[{}],"
	    "{\"timeout_ms\":2}]},\"timeout_ms\":300,\"name\":\"x\"}";
	ck_assert_int_eq(scan(tricky, &t), JSONSCAN_FOUND);
	ck_assert_uint_eq(t, 300);
	ck_assert_int_eq(scan("{\"context\":{\"timeout_ms\":5}}", &t), JSONSCAN_ABSENT);
	ck_assert_int_eq(scan("{}", &t), JSONSCAN_ABSENT);
}
END_TEST

START_TEST(scan_should_be_unsure_rather_than_wrong)
{
	unsigned long t;
	ck_assert_int_eq(scan("{\"timeout\\u005fms\":5}", &t), JSONSCAN_UNSURE);
	ck_assert_int_eq(scan("{\"timeout_ms\":5,\"timeout_ms\":9}", &t), JSONSCAN_UNSURE);
	ck_assert_int_eq(scan("{\"timeout_ms\":2.5}", &t), JSONSCAN_UNSURE);
	ck_assert_int_eq(scan("{\"timeout_ms\":\"100\"}", &t), JSONSCAN_UNSURE);
	ck_assert_int_eq(scan("{\"timeout_ms\":-1}", &t), JSONSCAN_UNSURE);
	ck_assert_int_eq(scan("[1,2]", &t), JSONSCAN_UNSURE);
	ck_assert_int_eq(scan("{\"context\":{\"a\":\"unterminated}", &t), JSONSCAN_UNSURE);
	ck_assert_int_eq(scan("{\"a\":1", &t), JSONSCAN_UNSURE);
	ck_assert_int_eq(scan("", &t), JSONSCAN_UNSURE);
}
END_TEST

/* The member's value as written, or "" when not FOUND. */
static enum jsonscan_result
member(const char *text, const char *key, char *out, size_t outlen)
{
	const char *value = NULL;
	size_t len = 0;
	enum jsonscan_result found = jsonscan_member(text, strlen(text), key, &value, &len);
	out[0] = '\0';
	if (found == JSONSCAN_FOUND) {
		ck_assert_uint_lt(len, outlen);
		memcpy(out, value, len);
		out[len] = '\0';
	}
	return found;
}

START_TEST(member_scan_should_give_a_top_level_value_as_written)
{
	char v[128];
	ck_assert_int_eq(member("{\"context\":{\"bytecode\":1},\"bytecode\" : \"G0x\\/K\" }",
	    "bytecode", v, sizeof(v)), JSONSCAN_FOUND);
	ck_assert_str_eq(v, "\"G0x\\/K\"");
	ck_assert_int_eq(member("{\"bytecode\":[1,{\"a\":\"]\"}],\"x\":1}", "bytecode", v,
	    sizeof(v)), JSONSCAN_FOUND);
	ck_assert_str_eq(v, "[1,{\"a\":\"]\"}]");
	ck_assert_int_eq(member("{\"source\":\"return 1\"}", "bytecode", v, sizeof(v)),
	    JSONSCAN_ABSENT);
	ck_assert_int_eq(member("{\"bytecode\":\"a\",\"bytecode\":\"b\"}", "bytecode", v,
	    sizeof(v)), JSONSCAN_UNSURE);
	ck_assert_int_eq(member("{\"byte\\u0063ode\":\"a\"}", "bytecode", v, sizeof(v)),
	    JSONSCAN_UNSURE);
	ck_assert_int_eq(member("{\"bytecode\":\"a\"", "bytecode", v, sizeof(v)), JSONSCAN_UNSURE);
	ck_assert_int_eq(member("{\"bytecode\":,\"x\":1}", "bytecode", v, sizeof(v)),
	    JSONSCAN_UNSURE);
	ck_assert_int_eq(member("[\"bytecode\"]", "bytecode", v, sizeof(v)), JSONSCAN_UNSURE);
}
END_TEST

START_TEST(scan_should_walk_a_large_context)
{
	size_t n = 200000;
	char *text = malloc(n + 64);
	strcpy(text, "{\"context\":{\"items\":[");
	size_t len = strlen(text);
	while (len < n) {
		memcpy(text + len, "{\"k\":\"v}\"},", 11);
		len += 11;
	}
	strcpy(text + len - 1, "]},\"timeout_ms\":42}");
	unsigned long t;
	ck_assert_int_eq(jsonscan_timeout_ms(text, strlen(text), &t), JSONSCAN_FOUND);
	ck_assert_uint_eq(t, 42);
	free(text);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("jsonscan");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, scan_should_find_a_top_level_timeout);
	tcase_add_test(tc, scan_should_skip_the_context_whatever_it_holds);
	tcase_add_test(tc, scan_should_be_unsure_rather_than_wrong);
	tcase_add_test(tc, scan_should_walk_a_large_context);
	tcase_add_test(tc, member_scan_should_give_a_top_level_value_as_written);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
