/*
 * sha256.c - see sha256.h.  A straightforward FIPS 180-4 implementation:
 * clarity over speed (the inputs are compiled chunks, kilobytes).  It
 * must never read or write outside the caller's buffers, and it wipes the
 * padded key blocks it builds.
 */
#include <string.h>

#include "common/sha256.h"

static const uint32_t round_constants[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2
};

static uint32_t
rotate_right(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static void
compress(uint32_t state[8], const unsigned char block[SHA256_BLOCK_SIZE])
{
	uint32_t w[64], v[8];

	for (unsigned i = 0; i < 16; i++)
		w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
		    (uint32_t)block[4 * i + 2] << 8 | block[4 * i + 3];
	for (unsigned i = 16; i < 64; i++) {
		uint32_t s0 = rotate_right(w[i - 15], 7) ^ rotate_right(w[i - 15], 18) ^
		    (w[i - 15] >> 3);
		uint32_t s1 = rotate_right(w[i - 2], 17) ^ rotate_right(w[i - 2], 19) ^
		    (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	memcpy(v, state, sizeof(v));
	for (unsigned i = 0; i < 64; i++) {
		uint32_t s1 = rotate_right(v[4], 6) ^ rotate_right(v[4], 11) ^ rotate_right(v[4], 25);
		uint32_t choose = (v[4] & v[5]) ^ (~v[4] & v[6]);
		uint32_t t1 = v[7] + s1 + choose + round_constants[i] + w[i];
		uint32_t s0 = rotate_right(v[0], 2) ^ rotate_right(v[0], 13) ^ rotate_right(v[0], 22);
		uint32_t majority = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
		uint32_t t2 = s0 + majority;
		memmove(v + 1, v, 7 * sizeof(v[0]));
		v[4] += t1;
		v[0] = t1 + t2;
	}
	for (unsigned i = 0; i < 8; i++)
		state[i] += v[i];
}

void
sha256_init(struct sha256 *s)
{
	static const uint32_t initial[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c,
		0x1f83d9ab, 0x5be0cd19
	};
	memcpy(s->state, initial, sizeof(initial));
	s->length = 0;
	s->used = 0;
}

void
sha256_update(struct sha256 *s, const void *data, size_t len)
{
	const unsigned char *p = data;

	s->length += len;
	if (s->used > 0) {
		size_t take = SHA256_BLOCK_SIZE - s->used;
		if (take > len)
			take = len;
		memcpy(s->block + s->used, p, take);
		s->used += take;
		p += take;
		len -= take;
		if (s->used < SHA256_BLOCK_SIZE)
			return;
		compress(s->state, s->block);
		s->used = 0;
	}
	for (; len >= SHA256_BLOCK_SIZE; p += SHA256_BLOCK_SIZE, len -= SHA256_BLOCK_SIZE)
		compress(s->state, p);
	memcpy(s->block, p, len);
	s->used = len;
}

void
sha256_final(struct sha256 *s, unsigned char out[SHA256_SIZE])
{
	uint64_t bits = s->length * 8;
	unsigned char tail[SHA256_BLOCK_SIZE + 8] = { 0x80 };
	/* Pad to 56 bytes mod 64, then the length in bits, big-endian. */
	size_t pad = (s->used < 56 ? 56 : 120) - s->used;

	for (unsigned i = 0; i < 8; i++)
		tail[pad + i] = (unsigned char)(bits >> (56 - 8 * i));
	sha256_update(s, tail, pad + 8);
	for (unsigned i = 0; i < 8; i++) {
		out[4 * i] = (unsigned char)(s->state[i] >> 24);
		out[4 * i + 1] = (unsigned char)(s->state[i] >> 16);
		out[4 * i + 2] = (unsigned char)(s->state[i] >> 8);
		out[4 * i + 3] = (unsigned char)s->state[i];
	}
}

void
sha256(const void *data, size_t len, unsigned char out[SHA256_SIZE])
{
	struct sha256 s;

	sha256_init(&s);
	sha256_update(&s, data, len);
	sha256_final(&s, out);
}

void
hmac_sha256_key_init(struct hmac_sha256_key *k, const void *key, size_t len)
{
	unsigned char block[SHA256_BLOCK_SIZE] = { 0 }, pad[SHA256_BLOCK_SIZE];

	if (len > SHA256_BLOCK_SIZE)
		sha256(key, len, block);
	else if (len > 0)
		memcpy(block, key, len);
	for (unsigned i = 0; i < SHA256_BLOCK_SIZE; i++)
		pad[i] = block[i] ^ 0x36;
	sha256_init(&k->inner);
	sha256_update(&k->inner, pad, sizeof(pad));
	for (unsigned i = 0; i < SHA256_BLOCK_SIZE; i++)
		pad[i] = block[i] ^ 0x5c;
	sha256_init(&k->outer);
	sha256_update(&k->outer, pad, sizeof(pad));
	/* volatile: the wipe must not be optimized away as a dead store. */
	volatile unsigned char *wipe = block;
	for (unsigned i = 0; i < SHA256_BLOCK_SIZE; i++)
		wipe[i] = 0;
	wipe = pad;
	for (unsigned i = 0; i < SHA256_BLOCK_SIZE; i++)
		wipe[i] = 0;
}

void
hmac_sha256_with(const struct hmac_sha256_key *k, const void *data, size_t len,
    unsigned char out[SHA256_SIZE])
{
	struct sha256 s = k->inner;
	unsigned char inner[SHA256_SIZE];

	sha256_update(&s, data, len);
	sha256_final(&s, inner);
	s = k->outer;
	sha256_update(&s, inner, sizeof(inner));
	sha256_final(&s, out);
}

void
hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
    unsigned char out[SHA256_SIZE])
{
	struct hmac_sha256_key k;

	hmac_sha256_key_init(&k, key, key_len);
	hmac_sha256_with(&k, data, len, out);
}

int
sha256_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char differ = 0;

	for (size_t i = 0; i < n; i++)
		differ |= (unsigned char)(x[i] ^ y[i]);
	return differ == 0;
}
