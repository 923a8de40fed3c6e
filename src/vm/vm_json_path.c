/*
 * vm_json_path.c - "path: message" errors for JSON values: the path of a
 * value written root first (result.items[3]["a b"]), bounded, with keys
 * quoted and escaped when they would not read well.
 *
 * It must never cut a multi-byte character in two or print a key's
 * control characters or invalid UTF-8 as they are: the message goes back
 * to a client as JSON text.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vm/vm_json_common.h"
#include "vm/vm_json_path.h"

/* Error paths are cut here so that the message after them survives. */
#define PATH_TEXT_SIZE		192
#define KEY_SHOWN_BYTES		40

/* Text of a bounded size that drops, rather than cuts, a piece that does
 * not fit, so multi-byte characters stay whole. */
struct text {
	char *data;
	size_t len, cap;
	int truncated;
};

static void
text_append(struct text *t, const char *s, size_t len)
{
	if (t->truncated || len >= t->cap - t->len) {
		t->truncated = 1;
		return;
	}
	memcpy(t->data + t->len, s, len);
	t->len += len;
	t->data[t->len] = '\0';
}

static int
key_is_identifier(const char *key, size_t len)
{
	if (len == 0 || (key[0] >= '0' && key[0] <= '9'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = key[i];
		if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

/* Appends at most KEY_SHOWN_BYTES of key in quotes, escaping what would not
 * be printable or valid UTF-8 in a message. */
static void
path_append_quoted_key(struct text *t, const char *key, size_t len)
{
	const unsigned char *s = (const unsigned char *)key;
	size_t at = 0;

	text_append(t, "[\"", 2);
	while (at < len && at < KEY_SHOWN_BYTES) {
		size_t n = s[at] >= 0x80 ? text_utf8_length(s + at, len - at) : 1;
		if (s[at] == '"' || s[at] == '\\') {
			char escape[2] = { '\\', key[at] };
			text_append(t, escape, 2);
		} else if (n == 0 || s[at] < 0x20 || s[at] == 0x7f) {
			char escape[4] = { '\\', 'x', text_hex_digits[s[at] >> 4],
			    text_hex_digits[s[at] & 15] };
			text_append(t, escape, 4);
			n = 1;
		} else {
			text_append(t, key + at, n);
		}
		at += n;
	}
	if (at < len)
		text_append(t, "...", 3);
	text_append(t, "\"]", 2);
}

/* Writes the path of `at`, root first: result.items[3]["a b"].  Indexes
 * are 1-based, as the script sees them, not 0-based as in the JSON. */
static void
path_append(struct text *t, const struct vm_json_path *at)
{
	char number[VM_JSON_NUMBER_TEXT_SIZE];

	if (at->parent == NULL) {
		text_append(t, at->key, at->key_len);
		return;
	}
	path_append(t, at->parent);
	if (at->key == NULL) {
		size_t len = vm_json_common_format_number(at->index, number);
		text_append(t, "[", 1);
		text_append(t, number, len);
		text_append(t, "]", 1);
	} else if (key_is_identifier(at->key, at->key_len) &&
	    at->key_len <= KEY_SHOWN_BYTES) {
		text_append(t, ".", 1);
		text_append(t, at->key, at->key_len);
	} else {
		path_append_quoted_key(t, at->key, at->key_len);
	}
}

/* The path and message, as vm_json_path_fail describes. */
static void
fail_at(char *err, size_t errlen, const struct vm_json_path *at, const char *format,
    va_list ap)
{
	char path[PATH_TEXT_SIZE], message[128];
	/* Half of err at most for the path, three bytes kept for "...". */
	size_t room = errlen / 2 < sizeof(path) ? errlen / 2 : sizeof(path);
	struct text t = { path, 0, room > 8 ? room - 3 : 5, 0 };

	if (err == NULL || errlen == 0)
		return;
	path[0] = '\0';
	path_append(&t, at);
	if (t.truncated)
		memcpy(path + t.len, "...", 4);
	vsnprintf(message, sizeof(message), format, ap);
	snprintf(err, errlen, "%s: %s", path, message);
}

void
vm_json_path_fail(char *err, size_t errlen, const struct vm_json_path *at,
    const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	fail_at(err, errlen, at, format, ap);
	va_end(ap);
}

void
vm_json_path_fail_levels(char *err, size_t errlen, const char *root,
    struct vm_json_path *levels, unsigned count, const char *format, ...)
{
	struct vm_json_path top = { .key = root, .key_len = strlen(root) };
	const struct vm_json_path *parent = &top;
	va_list ap;

	for (unsigned i = 0; i < count; i++) {
		levels[i].parent = parent;
		parent = &levels[i];
	}
	va_start(ap, format);
	fail_at(err, errlen, parent, format, ap);
	va_end(ap);
}
