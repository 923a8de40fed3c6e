/*
 * http_bytecode.c - bytecode trust in the front end (DESIGN §3a): the
 * verifier before a chunk is stored, and with bytecode = signed, the tag
 * that marks a chunk this server compiled.
 *
 * Signed bytecode is the dump followed by BYTECODE_TAG_MAGIC and
 * HMAC-SHA256, under bytecode_key_file, of every byte before the MAC (the
 * dump and the magic): 36 bytes after the dump, so a client sends back
 * the base64 that /v1/compile gave it.  The supervisor checks the tag in
 * constant time and strips it; a worker only ever gets the dump, beside
 * the request (luapool_job.chunk), and in this mode refuses any
 * "bytecode" inside a request.  This file never parses a context, and it
 * never signs bytes the verifier has not passed: the worker that compiled
 * them is not trusted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/base64.h"
#include "common/log.h"
#include "daemon/jsonscan.h"
#include "http/http.h"
#include "http/http_internal.h"
#include "vm/bcverify.h"

#define BYTECODE_TAG_MAGIC	"LPS1"	/* luapoold signature, version 1 */
#define BYTECODE_MAGIC_SIZE	4
#define BYTECODE_TAG_SIZE	(BYTECODE_MAGIC_SIZE + SHA256_SIZE)
#define BYTECODE_KEY_MIN	32

#define UNSIGNED_MESSAGE \
	"bytecode must be signed by this server: compile it with /v1/compile"

int
http_bytecode_setup(struct http *http, char *err, size_t errlen)
{
	struct http_options *o = &http->opts;
	int rc = 0;

	if (o->bytecode_mode == HTTP_BYTECODE_SIGNED) {
		if (o->bytecode_key == NULL || o->bytecode_key_len < BYTECODE_KEY_MIN) {
			snprintf(err, errlen, "bytecode = signed needs a key of at least %d "
			    "bytes (bytecode_key_file)", BYTECODE_KEY_MIN);
			rc = -1;
		} else {
			hmac_sha256_key_init(&http->bytecode_key, o->bytecode_key,
			    o->bytecode_key_len);
		}
	}
	o->bytecode_key = NULL;
	o->bytecode_key_len = 0;
	return rc;
}

const char *
http_bytecode_mode_name(int mode)
{
	switch (mode) {
	case HTTP_BYTECODE_OFF:
		return "off";
	case HTTP_BYTECODE_SIGNED:
		return "signed";
	default:
		return "verified";
	}
}

int
http_bytecode_verify(const void *chunk, size_t len, char *err, size_t errlen)
{
	char why[256];

	if (len < 4 || memcmp(chunk, "\033LJ", 3) != 0) {
		snprintf(err, errlen, "not LuaJIT bytecode (it must start with \\033LJ, as "
		    "luajit -b writes it)");
		return -1;
	}
	if (bcverify_chunk(chunk, len, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "bytecode rejected: %s", why);
		return -1;
	}
	return 0;
}

/* The MAC of a tagged chunk: over the dump and the magic. */
static void
tag_mac(const struct http *http, const unsigned char *tagged, size_t dump_len,
    unsigned char mac[SHA256_SIZE])
{
	hmac_sha256_with(&http->bytecode_key, tagged, dump_len + BYTECODE_MAGIC_SIZE, mac);
}

/* 0 and the dump's length if buf ends with a valid tag, else -1. */
static int
untag(const struct http *http, const unsigned char *buf, size_t len, size_t *dump_len)
{
	unsigned char mac[SHA256_SIZE];

	if (len <= BYTECODE_TAG_SIZE)
		return -1;
	size_t n = len - BYTECODE_TAG_SIZE;
	if (memcmp(buf + n, BYTECODE_TAG_MAGIC, BYTECODE_MAGIC_SIZE) != 0)
		return -1;
	tag_mac(http, buf, n, mac);
	if (!sha256_equal(mac, buf + n + BYTECODE_MAGIC_SIZE, SHA256_SIZE))
		return -1;
	*dump_len = n;
	return 0;
}

int
http_bytecode_accept(const struct http *http, const unsigned char *buf, size_t len,
    size_t *chunk_len, char *err, size_t errlen)
{
	*chunk_len = len;
	if (http->opts.bytecode_mode == HTTP_BYTECODE_SIGNED &&
	    untag(http, buf, len, chunk_len) == -1) {
		snprintf(err, errlen, UNSIGNED_MESSAGE);
		return -1;
	}
	return http_bytecode_verify(buf, *chunk_len, err, errlen);
}

/* The request's top-level "bytecode" when it is a string, decoded from
 * base64, with its place in the body: 1 found (*out malloc'd), 0 not one
 * this file can read (the worker then parses the request), -1 answered. */
static int
take_request_bytecode(struct request *r, unsigned char **out, long *out_len, char **where,
    size_t *where_len)
{
	const char *value, *other;
	size_t len, other_len;

	r->body.data[r->body.len] = '\0';	/* the buffer keeps a spare byte */
	if (jsonscan_member(r->body.data, r->body.len, "bytecode", &value, &len) !=
	    JSONSCAN_FOUND || value[0] != '"')
		return 0;
	/* With a chunk beside it, the worker reads neither field. */
	if (jsonscan_member(r->body.data, r->body.len, "source", &other, &other_len) !=
	    JSONSCAN_ABSENT) {
		http_request_prepare_problem(r, "invalid_request",
		    "give either \"bytecode\" or \"source\", not both", NULL);
		return -1;
	}
	cJSON *text = cJSON_ParseWithLength(value, len);
	const char *b64 = cJSON_GetStringValue(text);
	if (b64 == NULL) {
		cJSON_Delete(text);
		return 0;	/* a broken string: the worker says invalid_json */
	}
	size_t b64_len = strlen(b64);
	unsigned char *bytes = malloc(base64_decoded_max(b64_len) + 1);
	long n = bytes ? base64_decode(b64, b64_len, bytes) : -1;
	int out_of_memory = bytes == NULL;
	cJSON_Delete(text);
	if (n <= 0) {
		free(bytes);
		if (out_of_memory)
			http_request_prepare_problem(r, "internal_error", "out of memory", NULL);
		else if (n == 0)
			http_request_prepare_problem(r, "invalid_bytecode", "\"bytecode\" is empty",
			    NULL);
		else
			http_request_prepare_problem(r, "invalid_base64",
			    "\"bytecode\" is not valid base64", NULL);
		return -1;
	}
	*out = bytes;
	*out_len = n;
	*where = r->body.data + (value - r->body.data);
	*where_len = len;
	return 1;
}

int
http_bytecode_take_signed(struct request *r, unsigned char **chunk, size_t *chunk_len)
{
	unsigned char *bytes = NULL;
	long n = 0;
	char *where, err[256];
	size_t where_len;

	int found = take_request_bytecode(r, &bytes, &n, &where, &where_len);
	if (found != 1)
		return found;
	/* The tag only ever goes on bytes that passed the verifier (and the
	 * worker verifies again on a cache miss): checking the tag is enough
	 * here, on the event loop, for every request. */
	if (untag(r->http, bytes, (size_t)n, chunk_len) == -1) {
		snprintf(err, sizeof(err), UNSIGNED_MESSAGE);
		http_request_prepare_problem(r, "invalid_bytecode", err, NULL);
		free(bytes);
		return -1;
	}
	/* The worker need not parse the base64 again: JSON allows the
	 * blanks, and the chunk goes beside the request. */
	memset(where, ' ', where_len);
	memcpy(where, "null", 4);
	*chunk = bytes;
	return 1;
}

void
http_bytecode_prepare_signed(struct request *r, const struct luapool_reply *reply)
{
	char why[256];
	unsigned char *tagged = NULL;
	char *b64 = NULL;
	cJSON *doc = cJSON_ParseWithLength(reply->body, reply->body_len);
	const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc,
	    "bytecode"));
	size_t text_len = text ? strlen(text) : 0;

	tagged = text ? malloc(base64_decoded_max(text_len) + BYTECODE_TAG_SIZE) : NULL;
	long n = tagged ? base64_decode(text, text_len, tagged) : -1;
	if (n <= 0 || http_bytecode_verify(tagged, (size_t)n, why, sizeof(why)) == -1) {
		log_warn("worker %d compiled bytecode that is refused: %s (request %s)",
		    reply->worker_pid, n <= 0 ? "not base64 in the reply" : why, r->request_id);
		http_request_prepare_problem(r, "internal_error",
		    "the compiled bytecode did not pass the verifier", NULL);
		goto done;
	}
	size_t dump_len = (size_t)n, total = dump_len + BYTECODE_TAG_SIZE;
	memcpy(tagged + dump_len, BYTECODE_TAG_MAGIC, BYTECODE_MAGIC_SIZE);
	tag_mac(r->http, tagged, dump_len, tagged + dump_len + BYTECODE_MAGIC_SIZE);
	b64 = malloc(base64_encoded_size(total) + 1);
	struct buffer b;
	buffer_init(&b, 0);
	if (b64 == NULL || (base64_encode(tagged, total, b64),
	    buffer_printf(&b, "{\"bytecode\":\"%s\",\"size\":%zu}", b64, total) == -1)) {
		buffer_free(&b);
		http_request_prepare_problem(r, "internal_error", "out of memory", NULL);
		goto done;
	}
	http_request_prepare_json(r, 200, &b);
done:
	free(b64);
	free(tagged);
	cJSON_Delete(doc);
}
