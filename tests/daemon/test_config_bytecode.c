/*
 * test_config_bytecode.c - the bytecode trust keys: `bytecode` (verified,
 * signed, off), its old spelling allow_bytecode (yes/no), which of the two
 * wins, config_print, and the checks on bytecode_key_file that
 * config_validate makes for bytecode = signed.  Temporary files go to /tmp
 * and are removed by the test that made them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "support/config_support.h"

static int
from_args(struct config *cfg, const char *const *args)
{
	char *argv[16];
	int argc = 0, rc;

	for (; args[argc] != NULL; argc++)
		argv[argc] = strdup(args[argc]);
	argv[argc] = NULL;
	rc = config_from_args(cfg, argc, argv);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return rc;
}

#define ARGS(...) ((const char *const[]){ "luapoold", __VA_ARGS__, NULL })

START_TEST(bytecode_should_take_verified_signed_or_off)
{
	struct config cfg;
	char err[256];

	config_init(&cfg);
	ck_assert_int_eq(cfg.bytecode, CONFIG_BYTECODE_VERIFIED);
	config_support_set_ok(&cfg, "bytecode", "signed");
	ck_assert_int_eq(cfg.bytecode, CONFIG_BYTECODE_SIGNED);
	config_support_set_ok(&cfg, "bytecode", "OFF");
	ck_assert_int_eq(cfg.bytecode, CONFIG_BYTECODE_OFF);
	config_support_set_ok(&cfg, "bytecode", "verified");
	ck_assert_int_eq(cfg.bytecode, CONFIG_BYTECODE_VERIFIED);
	ck_assert_int_eq(config_set(&cfg, "bytecode", "yes", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "not a bytecode mode: \"yes\" (verified, signed or off)");
	ck_assert_int_eq(config_set(&cfg, "bytecode", "", err, sizeof(err)), -1);
	ck_assert_int_eq(cfg.bytecode, CONFIG_BYTECODE_VERIFIED);
	config_free(&cfg);
}
END_TEST

START_TEST(allow_bytecode_should_mean_verified_or_off)
{
	struct config cfg;

	config_init(&cfg);
	config_support_set_ok(&cfg, "allow_bytecode", "no");
	ck_assert_int_eq(cfg.bytecode, CONFIG_BYTECODE_OFF);
	config_support_set_ok(&cfg, "allow_bytecode", "yes");
	ck_assert_int_eq(cfg.bytecode, CONFIG_BYTECODE_VERIFIED);
	config_free(&cfg);
}
END_TEST

START_TEST(on_the_command_line_the_later_of_the_two_should_win)
{
	struct config cfg;

	config_init(&cfg);
	ck_assert_int_eq(from_args(&cfg, ARGS("--bytecode", "signed", "--allow-bytecode",
	    "no")), 0);
	ck_assert_int_eq(cfg.bytecode, CONFIG_BYTECODE_OFF);
	ck_assert_int_eq(from_args(&cfg, ARGS("--allow-bytecode", "no", "--bytecode=signed")),
	    0);
	ck_assert_int_eq(cfg.bytecode, CONFIG_BYTECODE_SIGNED);
	config_free(&cfg);
}
END_TEST

START_TEST(a_file_should_not_set_both_spellings)
{
	struct config cfg;
	struct config_support_capture c;
	char path[64], expected[256];

	config_support_write_temp_file(path, "bytecode = signed\nworkers = 1\n"
	    "allow_bytecode = yes\n");
	config_init(&cfg);
	config_support_capture_start(&c, stderr);
	ck_assert_int_eq(config_load_file(&cfg, path), -1);
	config_support_capture_end(&c);
	snprintf(expected, sizeof(expected), "%s:3: \"allow_bytecode\" and \"bytecode\" "
	    "(line 1) set the same thing: give one\n", path);
	ck_assert_str_eq(c.text, expected);
	unlink(path);
	config_free(&cfg);
}
END_TEST

START_TEST(config_print_should_write_bytecode_and_not_its_old_spelling)
{
	struct config cfg, loaded;
	struct config_support_capture c;
	char path[64];

	config_init(&cfg);
	config_support_set_ok(&cfg, "bytecode", "signed");
	config_support_set_ok(&cfg, "bytecode_key_file", "/etc/luapoold/bytecode.key");
	config_support_capture_start(&c, stdout);
	config_print(&cfg, stdout);
	fflush(stdout);
	config_support_capture_end(&c);
	ck_assert_ptr_nonnull(strstr(c.text, "\nbytecode = signed\n"));
	ck_assert_ptr_nonnull(strstr(c.text, "\nbytecode_key_file = /etc/luapoold/bytecode.key\n"));
	ck_assert_ptr_null(strstr(c.text, "allow_bytecode"));
	config_support_write_temp_file(path, c.text);
	config_init(&loaded);
	ck_assert_int_eq(config_load_file(&loaded, path), 0);
	unlink(path);
	config_support_assert_same_config(&loaded, &cfg);
	config_free(&cfg);
	config_free(&loaded);
}
END_TEST

/* Expects config_validate of cfg to fail with a message containing `part`. */
static void
assert_invalid_with(const struct config *cfg, const char *part)
{
	char err[512] = "";

	ck_assert_int_eq(config_validate(cfg, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, part) != NULL, "\"%s\" lacks \"%s\"", err, part);
}

START_TEST(validate_should_require_a_private_key_of_32_bytes_for_signed)
{
	struct config cfg;
	char path[64], err[512];

	config_init(&cfg);
	config_support_set_ok(&cfg, "bytecode", "signed");
	assert_invalid_with(&cfg, "bytecode = signed needs bytecode_key_file");
	config_support_set_ok(&cfg, "bytecode_key_file", "/nonexistent/key");
	assert_invalid_with(&cfg, "bytecode_key_file \"/nonexistent/key\": No such file");
	config_support_set_ok(&cfg, "bytecode_key_file", "/tmp");
	assert_invalid_with(&cfg, "is not a regular file");

	config_support_write_temp_file(path, "0123456789abcdef0123456789abcdef");
	config_support_set_ok(&cfg, "bytecode_key_file", path);
	ck_assert_int_eq(chmod(path, 0644), 0);
	assert_invalid_with(&cfg, "is readable by every user");
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_msg(config_validate(&cfg, err, sizeof(err)) == 0, "%s", err);
	unlink(path);

	config_support_write_temp_file(path, "0123456789abcdef0123456789abcde");
	ck_assert_int_eq(chmod(path, 0600), 0);
	config_support_set_ok(&cfg, "bytecode_key_file", path);
	assert_invalid_with(&cfg, "must hold 32 to 4096 bytes, not 31");
	/* Without signed, the key is not looked at. */
	config_support_set_ok(&cfg, "bytecode", "verified");
	ck_assert_msg(config_validate(&cfg, err, sizeof(err)) == 0, "%s", err);
	unlink(path);
	config_free(&cfg);
}
END_TEST

static Suite *
config_bytecode_suite(void)
{
	Suite *s = suite_create("config bytecode");
	TCase *tc = tcase_create("keys");

	tcase_add_test(tc, bytecode_should_take_verified_signed_or_off);
	tcase_add_test(tc, allow_bytecode_should_mean_verified_or_off);
	tcase_add_test(tc, on_the_command_line_the_later_of_the_two_should_win);
	tcase_add_test(tc, a_file_should_not_set_both_spellings);
	tcase_add_test(tc, config_print_should_write_bytecode_and_not_its_old_spelling);
	tcase_add_test(tc, validate_should_require_a_private_key_of_32_bytes_for_signed);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(config_bytecode_suite());

	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
