/*
 * sha256.h - SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for the
 * tags that mark bytecode this server compiled (bytecode = signed).  Pure
 * arithmetic on caller memory: no allocation, no global state, so any
 * thread may use it.  Never use it for passwords or anything needing a
 * slow hash.
 */
#ifndef SHA256_H
#define SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_SIZE		32	/* bytes of a digest */
#define SHA256_BLOCK_SIZE	64

struct sha256 {
	uint32_t state[8];
	uint64_t length;		/* bytes hashed so far */
	unsigned char block[SHA256_BLOCK_SIZE];
	size_t used;			/* bytes waiting in block */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
/* Writes the digest; s must be initialized again before reuse. */
void sha256_final(struct sha256 *s, unsigned char out[SHA256_SIZE]);
/* The digest of one buffer. */
void sha256(const void *data, size_t len, unsigned char out[SHA256_SIZE]);

/* A key made ready for many HMACs: the hash states after the inner and
 * outer padded key blocks, so the key itself need not be kept. */
struct hmac_sha256_key {
	struct sha256 inner, outer;
};

/* Any length of key (longer than a block is hashed first, per RFC 2104). */
void hmac_sha256_key_init(struct hmac_sha256_key *k, const void *key, size_t len);
void hmac_sha256_with(const struct hmac_sha256_key *k, const void *data, size_t len,
    unsigned char out[SHA256_SIZE]);
void hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
    unsigned char out[SHA256_SIZE]);

/* 1 if the n bytes are equal, in a time that depends on n only. */
int sha256_equal(const void *a, const void *b, size_t n);

#endif
