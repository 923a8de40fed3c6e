/*
 * test_sha256.c - SHA-256 against the FIPS 180-2 examples (and the
 * empty message), fed whole and in awkward pieces; HMAC-SHA256 against
 * every test case of RFC 4231, with keys shorter than, equal to and
 * longer than a block; and the constant-time comparison.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "common/sha256.h"

static void
to_hex(const unsigned char *bytes, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", bytes[i]);
}

static void
assert_sha256(const void *data, size_t len, const char *expected)
{
	unsigned char digest[SHA256_SIZE];
	char hex[2 * SHA256_SIZE + 1];

	sha256(data, len, digest);
	to_hex(digest, sizeof(digest), hex);
	ck_assert_str_eq(hex, expected);
}

static void
assert_hmac(const void *key, size_t key_len, const void *data, size_t len,
    const char *expected)
{
	unsigned char mac[SHA256_SIZE];
	char hex[2 * SHA256_SIZE + 1];

	hmac_sha256(key, key_len, data, len, mac);
	to_hex(mac, sizeof(mac), hex);
	ck_assert_int_eq(strncmp(hex, expected, strlen(expected)), 0);
}

START_TEST(sha256_should_match_the_fips_180_2_examples)
{
	assert_sha256("abc", 3,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	assert_sha256(two_blocks, strlen(two_blocks),
	    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	assert_sha256("", 0,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	const char *long_one = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
	    "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	assert_sha256(long_one, strlen(long_one),
	    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}
END_TEST

START_TEST(sha256_should_hash_a_million_a_fed_in_uneven_pieces)
{
	static const char expected[] =
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
	char *a = malloc(1000000);
	ck_assert_ptr_nonnull(a);
	memset(a, 'a', 1000000);
	assert_sha256(a, 1000000, expected);

	struct sha256 s;
	unsigned char digest[SHA256_SIZE];
	char hex[2 * SHA256_SIZE + 1];
	sha256_init(&s);
	size_t done = 0, step = 1;
	while (done < 1000000) {
		size_t n = step < 1000000 - done ? step : 1000000 - done;
		sha256_update(&s, a + done, n);
		done += n;
		step = step * 7 % 193 + 1;	/* 1..193: inside, across and past blocks */
	}
	sha256_final(&s, digest);
	to_hex(digest, sizeof(digest), hex);
	ck_assert_str_eq(hex, expected);
	free(a);
}
END_TEST

START_TEST(sha256_should_pad_messages_of_every_length_around_a_block)
{
	/* 55, 56 and 64 bytes are where the padding takes one more block. */
	static const struct { size_t len; const char *digest; } cases[] = {
		{ 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
		{ 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
		{ 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
		{ 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
	};
	char text[64];
	memset(text, 'a', sizeof(text));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_sha256(text, cases[i].len, cases[i].digest);
}
END_TEST

START_TEST(hmac_sha256_should_match_rfc_4231)
{
	unsigned char key[131], data[50];

	memset(key, 0x0b, 20);
	assert_hmac(key, 20, "Hi There", 8,
	    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	assert_hmac("Jefe", 4, "what do ya want for nothing?", 28,
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	assert_hmac(key, 20, data, 50,
	    "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
	for (unsigned i = 0; i < 25; i++)
		key[i] = (unsigned char)(i + 1);
	memset(data, 0xcd, 50);
	assert_hmac(key, 25, data, 50,
	    "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
	memset(key, 0x0c, 20);
	assert_hmac(key, 20, "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b");
	memset(key, 0xaa, 131);
	const char *case6 = "Test Using Larger Than Block-Size Key - Hash Key First";
	assert_hmac(key, 131, case6, strlen(case6),
	    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	const char *case7 = "This is a test using a larger than block-size key and a larger "
	    "than block-size data. The key needs to be hashed before being used by the HMAC "
	    "algorithm.";
	assert_hmac(key, 131, case7, strlen(case7),
	    "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}
END_TEST

START_TEST(a_prepared_hmac_key_should_give_the_same_mac_every_time)
{
	struct hmac_sha256_key k;
	unsigned char once[SHA256_SIZE], again[SHA256_SIZE], direct[SHA256_SIZE];

	hmac_sha256_key_init(&k, "Jefe", 4);
	hmac_sha256_with(&k, "what do ya want for nothing?", 28, once);
	hmac_sha256_with(&k, "what do ya want for nothing?", 28, again);
	hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, direct);
	ck_assert_mem_eq(once, again, SHA256_SIZE);
	ck_assert_mem_eq(once, direct, SHA256_SIZE);
}
END_TEST

START_TEST(sha256_equal_should_compare_every_byte)
{
	unsigned char a[SHA256_SIZE] = { 0 }, b[SHA256_SIZE] = { 0 };

	ck_assert_int_eq(sha256_equal(a, b, sizeof(a)), 1);
	for (unsigned i = 0; i < SHA256_SIZE; i++) {
		b[i] = 0x80;
		ck_assert_int_eq(sha256_equal(a, b, sizeof(a)), 0);
		b[i] = 0;
	}
	ck_assert_int_eq(sha256_equal(a, b, 0), 1);
}
END_TEST

static Suite *
sha256_suite(void)
{
	Suite *s = suite_create("sha256");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, sha256_should_match_the_fips_180_2_examples);
	tcase_add_test(tc, sha256_should_hash_a_million_a_fed_in_uneven_pieces);
	tcase_add_test(tc, sha256_should_pad_messages_of_every_length_around_a_block);
	tcase_add_test(tc, hmac_sha256_should_match_rfc_4231);
	tcase_add_test(tc, a_prepared_hmac_key_should_give_the_same_mac_every_time);
	tcase_add_test(tc, sha256_equal_should_compare_every_byte);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sha256_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
