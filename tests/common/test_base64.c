/*
 * test_base64.c - base64 both ways: the RFC 4648 vectors, both alphabets,
 * missing padding, line breaks, and every kind of input that must be
 * refused rather than half decoded.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "common/base64.h"

/* Decodes s into out (NUL-terminated) and returns the decoded length. */
static long
decode_text(const char *s, char *out, size_t outlen)
{
	size_t len = strlen(s);
	unsigned char *bytes = malloc(base64_decoded_max(len) + 1);

	ck_assert_ptr_nonnull(bytes);
	long n = base64_decode(s, len, bytes);
	if (n >= 0) {
		ck_assert_uint_le((size_t)n, base64_decoded_max(len));
		ck_assert_uint_lt((size_t)n, outlen);
		memcpy(out, bytes, (size_t)n);
		out[n] = '\0';
	}
	free(bytes);
	return n;
}

static void
assert_decodes_to(const char *encoded, const char *expected)
{
	char out[256];

	ck_assert_int_eq(decode_text(encoded, out, sizeof(out)), (long)strlen(expected));
	ck_assert_str_eq(out, expected);
}

static void
assert_refused(const char *encoded)
{
	char out[256];

	ck_assert_msg(decode_text(encoded, out, sizeof(out)) == -1,
	    "\"%s\" should be refused", encoded);
}

START_TEST(encode_should_match_the_rfc_vectors)
{
	static const char *const vectors[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	char out[16];

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		size_t len = strlen(vectors[i][0]);
		ck_assert_uint_eq(base64_encoded_size(len), strlen(vectors[i][1]));
		ck_assert_uint_eq(base64_encode(vectors[i][0], len, out), strlen(vectors[i][1]));
		ck_assert_str_eq(out, vectors[i][1]);
	}
}
END_TEST

START_TEST(encode_should_use_the_standard_alphabet)
{
	static const unsigned char bytes[] = { 0xfb, 0xff, 0xbf };
	char out[8];

	base64_encode(bytes, sizeof(bytes), out);
	ck_assert_str_eq(out, "+/+/");
}
END_TEST

START_TEST(decode_should_match_the_rfc_vectors)
{
	assert_decodes_to("", "");
	assert_decodes_to("Zg==", "f");
	assert_decodes_to("Zm8=", "fo");
	assert_decodes_to("Zm9v", "foo");
	assert_decodes_to("Zm9vYg==", "foob");
	assert_decodes_to("Zm9vYmE=", "fooba");
	assert_decodes_to("Zm9vYmFy", "foobar");
}
END_TEST

START_TEST(decode_should_accept_both_alphabets)
{
	static const char *const forms[] = { "+/+/", "-_-_", "+_-/" };
	unsigned char out[8];

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		ck_assert_int_eq(base64_decode(forms[i], 4, out), 3);
		ck_assert_uint_eq(out[0], 0xfb);
		ck_assert_uint_eq(out[1], 0xff);
		ck_assert_uint_eq(out[2], 0xbf);
	}
}
END_TEST

START_TEST(decode_should_accept_missing_or_partial_padding)
{
	assert_decodes_to("Zg", "f");
	assert_decodes_to("Zg=", "f");
	assert_decodes_to("Zm8", "fo");
	assert_decodes_to("Zm9vYg", "foob");
	assert_decodes_to("Zm9vYmE", "fooba");
}
END_TEST

START_TEST(decode_should_skip_line_breaks_and_spaces)
{
	assert_decodes_to("Zm9v\nYmFy\n", "foobar");
	assert_decodes_to("Zm9v\r\nYmFy\r\n", "foobar");
	assert_decodes_to(" Zm 9v\tYm\nFy ", "foobar");
	assert_decodes_to("Zg=\n=\n", "f");
	assert_decodes_to("\n\n", "");
}
END_TEST

START_TEST(decode_should_refuse_characters_outside_the_alphabets)
{
	assert_refused("Zm9v!");
	assert_refused("Zm9v.YmFy");
	assert_refused("Zm9v\vYmFy");
	assert_refused("Zm9\xc3\xa9");

	unsigned char out[16];	/* a NUL inside the text is no terminator */
	ck_assert_int_eq(base64_decode("Zm9v\0YmFy", 9, out), -1);
}
END_TEST

START_TEST(decode_should_refuse_data_after_padding)
{
	assert_refused("Zg==Zg==");
	assert_refused("Zg=a");
	assert_refused("Zm8=Zm8=");
	assert_refused("Zg= =a");
}
END_TEST

START_TEST(decode_should_refuse_a_dangling_character)
{
	assert_refused("Z");
	assert_refused("Zm9vY");
	assert_refused("Zm9vY=");
	assert_refused("Zm9v\nY\n");
}
END_TEST

START_TEST(decode_should_refuse_misplaced_or_excess_padding)
{
	assert_refused("Zg===");
	assert_refused("=");
	assert_refused("==");
	assert_refused("Zm9v=");
	assert_refused("Zm9=="); /* three characters take one '=' at most */
}
END_TEST

START_TEST(decode_should_reverse_encode_for_every_length)
{
	unsigned char bytes[300], decoded[300];
	char encoded[404];
	unsigned seed = 12345;

	for (size_t i = 0; i < sizeof(bytes); i++) {
		seed = seed * 1103515245u + 12345u;
		bytes[i] = (unsigned char)(seed >> 16);
	}
	for (size_t len = 0; len <= sizeof(bytes); len++) {
		size_t n = base64_encode(bytes, len, encoded);
		ck_assert_uint_eq(n, base64_encoded_size(len));
		ck_assert_uint_le(len, base64_decoded_max(n));
		ck_assert_int_eq(base64_decode(encoded, n, decoded), (long)len);
		ck_assert(memcmp(bytes, decoded, len) == 0);
	}
}
END_TEST

static Suite *
base64_suite(void)
{
	Suite *suite = suite_create("base64");
	TCase *tc = tcase_create("base64");

	tcase_add_test(tc, encode_should_match_the_rfc_vectors);
	tcase_add_test(tc, encode_should_use_the_standard_alphabet);
	tcase_add_test(tc, decode_should_match_the_rfc_vectors);
	tcase_add_test(tc, decode_should_accept_both_alphabets);
	tcase_add_test(tc, decode_should_accept_missing_or_partial_padding);
	tcase_add_test(tc, decode_should_skip_line_breaks_and_spaces);
	tcase_add_test(tc, decode_should_refuse_characters_outside_the_alphabets);
	tcase_add_test(tc, decode_should_refuse_data_after_padding);
	tcase_add_test(tc, decode_should_refuse_a_dangling_character);
	tcase_add_test(tc, decode_should_refuse_misplaced_or_excess_padding);
	tcase_add_test(tc, decode_should_reverse_encode_for_every_length);
	suite_add_tcase(suite, tc);
	return suite;
}

int
main(void)
{
	SRunner *runner = srunner_create(base64_suite());

	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
