/*
 * test_scripts.c - the script store: names, put/get/replace/delete, the
 * JSON of describe and list, the max_scripts limit, files in a directory
 * (atomic writes, kind changes, deletes, loading back, a validator, files
 * dropped in by hand) and concurrent use from several threads.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <check.h>
#include <cjson/cJSON.h>

#include "common/log.h"
#include "daemon/scripts.h"

/* Every test makes its own directory under this one, which the unchecked
 * teardown removes even when a test failed. */
static char base_dir[] = "/tmp/test_scripts.XXXXXX";

static const char bytecode[] = "\x1bLJ\x02\x00\x05hello\x00\xff";
#define BYTECODE_LEN (sizeof(bytecode) - 1)

static void
make_base_dir(void)
{
	if (mkdtemp(base_dir) == NULL) {
		perror(base_dir);
		exit(EXIT_FAILURE);
	}
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
remove_base_dir(void)
{
	nftw(base_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh empty directory for one test; `path` holds at least 64 bytes. */
static void
make_test_dir(char *path, size_t size)
{
	int n = snprintf(path, size, "%s/t.XXXXXX", base_dir);
	ck_assert(n > 0 && (size_t)n < size);
	ck_assert_ptr_nonnull(mkdtemp(path));
}

static void
write_file(const char *dir, const char *file, const void *data, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static int
file_exists(const char *dir, const char *file)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return access(path, F_OK) == 0;
}

/* Entries of dir besides "." and "..". */
static int
count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *entry;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((entry = readdir(d)) != NULL) {
		if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

static int
put_text(struct scripts *s, const char *name, int is_source, const void *chunk,
    size_t len)
{
	char err[256] = "";
	int created = -1;
	int rc = scripts_put(s, name, is_source, chunk, len, &created, err, sizeof(err));
	ck_assert_msg(rc == 0, "put %s failed: %s", name, err);
	return created;
}

static void
assert_script(struct scripts *s, const char *name, int is_source, const void *chunk,
    size_t len)
{
	char *got = NULL;
	size_t got_len = 0;
	int got_source = -1;

	ck_assert_msg(scripts_get(s, name, &got_source, &got, &got_len) == 0,
	    "script %s should exist", name);
	ck_assert_int_eq(got_source, is_source);
	ck_assert_uint_eq(got_len, len);
	ck_assert(memcmp(got, chunk, len) == 0);
	ck_assert_int_eq(got[len], '\0');
	free(got);
}

/* Parses the store's describe output for name; caller deletes it. */
static cJSON *
describe_json(struct scripts *s, const char *name)
{
	struct buffer out;
	const char *end = NULL;

	buffer_init(&out, 0);
	ck_assert_int_eq(scripts_describe(s, name, &out), 0);
	cJSON *json = cJSON_ParseWithLengthOpts(out.data, out.len, &end, 0);
	ck_assert_msg(json != NULL, "invalid JSON: %.*s", (int)out.len, out.data);
	ck_assert_ptr_eq(end, out.data + out.len);
	buffer_free(&out);
	return json;
}

static cJSON *
list_json(struct scripts *s)
{
	struct buffer out;
	const char *end = NULL;

	buffer_init(&out, 0);
	ck_assert_int_eq(scripts_list(s, &out), 0);
	cJSON *json = cJSON_ParseWithLengthOpts(out.data, out.len, &end, 0);
	ck_assert_msg(json != NULL, "invalid JSON: %.*s", (int)out.len, out.data);
	ck_assert_ptr_eq(end, out.data + out.len);
	buffer_free(&out);
	return json;
}

static const char *
string_field(const cJSON *json, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, key);
	ck_assert_msg(cJSON_IsString(item), "field %s should be a string", key);
	return item->valuestring;
}

static double
number_field(const cJSON *json, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, key);
	ck_assert_msg(cJSON_IsNumber(item), "field %s should be a number", key);
	return item->valuedouble;
}

/* Names ----------------------------------------------------------------- */

START_TEST(valid_name_should_accept_letters_digits_and_punctuation)
{
	char longest[SCRIPTS_NAME_MAX + 1];

	memset(longest, 'a', SCRIPTS_NAME_MAX);
	longest[SCRIPTS_NAME_MAX] = '\0';
	ck_assert(scripts_valid_name("a"));
	ck_assert(scripts_valid_name("Hello_World-2.v1"));
	ck_assert(scripts_valid_name("x..y"));
	ck_assert(scripts_valid_name("-dash"));
	ck_assert(scripts_valid_name(longest));
}
END_TEST

START_TEST(valid_name_should_refuse_empty_long_hidden_and_path_names)
{
	static const char *const bad[] = {
		"", ".hidden", ".", "..", "../x", "a/b", "/abs", "a b", "a\\b",
		"tab\there", "new\nline", "é", "a:b", "a*",
	};
	char too_long[SCRIPTS_NAME_MAX + 2];

	memset(too_long, 'a', SCRIPTS_NAME_MAX + 1);
	too_long[SCRIPTS_NAME_MAX + 1] = '\0';
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!scripts_valid_name(bad[i]), "\"%s\" should be refused", bad[i]);
	ck_assert(!scripts_valid_name(too_long));
	ck_assert(!scripts_valid_name(NULL));
}
END_TEST

START_TEST(put_should_refuse_an_invalid_name_with_an_error)
{
	struct scripts *s = scripts_new(NULL, 8);
	char err[256] = "";
	int created = -1;

	ck_assert_int_eq(scripts_put(s, "../x", 1, "return 1", 8, &created, err,
	    sizeof(err)), -1);
	ck_assert_str_ne(err, "");
	ck_assert_uint_eq(scripts_count(s), 0);
	scripts_free(s);
}
END_TEST

/* Memory --------------------------------------------------------------- */

START_TEST(put_should_store_a_new_script_and_report_it_created)
{
	struct scripts *s = scripts_new(NULL, 8);

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(put_text(s, "hello", 1, "return 1", 8), 1);
	ck_assert_uint_eq(scripts_count(s), 1);
	assert_script(s, "hello", 1, "return 1", 8);
	scripts_free(s);
}
END_TEST

START_TEST(put_should_replace_an_existing_script)
{
	struct scripts *s = scripts_new(NULL, 8);

	ck_assert_int_eq(put_text(s, "hello", 1, "return 1", 8), 1);
	ck_assert_int_eq(put_text(s, "hello", 0, bytecode, BYTECODE_LEN), 0);
	ck_assert_uint_eq(scripts_count(s), 1);
	assert_script(s, "hello", 0, bytecode, BYTECODE_LEN);
	scripts_free(s);
}
END_TEST

START_TEST(put_should_keep_an_empty_chunk)
{
	struct scripts *s = scripts_new(NULL, 8);

	ck_assert_int_eq(put_text(s, "empty", 1, "", 0), 1);
	assert_script(s, "empty", 1, "", 0);
	scripts_free(s);
}
END_TEST

START_TEST(get_should_fail_for_an_unknown_script)
{
	struct scripts *s = scripts_new(NULL, 8);
	char *chunk = NULL;
	size_t len = 0;
	int is_source = -1;

	put_text(s, "known", 1, "return 1", 8);
	ck_assert_int_eq(scripts_get(s, "unknown", &is_source, &chunk, &len), -1);
	ck_assert_int_eq(scripts_get(s, "../known", &is_source, &chunk, &len), -1);
	ck_assert_ptr_null(chunk);
	scripts_free(s);
}
END_TEST

START_TEST(delete_should_remove_only_that_script)
{
	struct scripts *s = scripts_new(NULL, 8);
	char *chunk = NULL;
	size_t len = 0;

	put_text(s, "a", 1, "return 1", 8);
	put_text(s, "b", 1, "return 2", 8);
	ck_assert_int_eq(scripts_delete(s, "a"), 0);
	ck_assert_int_eq(scripts_get(s, "a", NULL, &chunk, &len), -1);
	ck_assert_uint_eq(scripts_count(s), 1);
	assert_script(s, "b", 1, "return 2", 8);
	ck_assert_int_eq(scripts_delete(s, "a"), -1);
	ck_assert_int_eq(scripts_delete(s, "nothing"), -1);
	scripts_free(s);
}
END_TEST

START_TEST(put_should_refuse_a_new_name_when_the_store_is_full)
{
	struct scripts *s = scripts_new(NULL, 2);
	char err[256] = "";
	int created = -1;

	put_text(s, "a", 1, "return 1", 8);
	put_text(s, "b", 1, "return 2", 8);
	ck_assert_int_eq(scripts_put(s, "c", 1, "return 3", 8, &created, err,
	    sizeof(err)), -1);
	ck_assert_msg(strstr(err, "max_scripts") != NULL, "err: %s", err);
	ck_assert_uint_eq(scripts_count(s), 2);
	/* Replacing needs no room, and a delete makes some. */
	ck_assert_int_eq(put_text(s, "b", 1, "return 4", 8), 0);
	ck_assert_int_eq(scripts_delete(s, "a"), 0);
	ck_assert_int_eq(put_text(s, "c", 1, "return 3", 8), 1);
	scripts_free(s);
}
END_TEST

/* JSON ----------------------------------------------------------------- */

START_TEST(describe_should_give_name_kind_size_digest_and_updated)
{
	struct scripts *s = scripts_new(NULL, 8);
	time_t before = time(NULL);

	put_text(s, "one", 1, "a", 1);
	put_text(s, "two", 0, bytecode, BYTECODE_LEN);
	time_t after = time(NULL);

	cJSON *json = describe_json(s, "one");
	ck_assert_str_eq(string_field(json, "name"), "one");
	ck_assert_str_eq(string_field(json, "kind"), "source");
	ck_assert(number_field(json, "size") == 1);
	/* FNV-1a 64 of "a". */
	ck_assert_str_eq(string_field(json, "digest"), "af63dc4c8601ec8c");
	double updated = number_field(json, "updated");
	ck_assert(updated >= (double)before && updated <= (double)after);
	cJSON_Delete(json);

	json = describe_json(s, "two");
	ck_assert_str_eq(string_field(json, "kind"), "bytecode");
	ck_assert(number_field(json, "size") == (double)BYTECODE_LEN);
	ck_assert_uint_eq(strlen(string_field(json, "digest")), 16);
	ck_assert_str_ne(string_field(json, "digest"), "af63dc4c8601ec8c");
	cJSON_Delete(json);
	scripts_free(s);
}
END_TEST

START_TEST(describe_should_fail_for_an_unknown_script_and_append_nothing)
{
	struct scripts *s = scripts_new(NULL, 8);
	struct buffer out;

	buffer_init(&out, 0);
	ck_assert_int_eq(scripts_describe(s, "missing", &out), -1);
	ck_assert_uint_eq(out.len, 0);
	buffer_free(&out);
	scripts_free(s);
}
END_TEST

START_TEST(describe_should_leave_the_buffer_as_it_was_when_it_is_full)
{
	struct scripts *s = scripts_new(NULL, 8);
	struct buffer out;

	put_text(s, "name", 1, "return 1", 8);
	buffer_init(&out, 24);
	buffer_append_string(&out, "prefix");
	ck_assert_int_eq(scripts_describe(s, "name", &out), -1);
	ck_assert_int_eq(scripts_list(s, &out), -1);
	ck_assert_uint_eq(out.len, 6);
	buffer_free(&out);
	scripts_free(s);
}
END_TEST

START_TEST(list_of_an_empty_store_should_be_an_empty_array)
{
	struct scripts *s = scripts_new(NULL, 8);

	cJSON *json = list_json(s);
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(json, "scripts");
	ck_assert(cJSON_IsArray(list));
	ck_assert_int_eq(cJSON_GetArraySize(list), 0);
	cJSON_Delete(json);
	scripts_free(s);
}
END_TEST

START_TEST(list_should_give_every_script_sorted_by_name)
{
	static const char *const names[] = { "zeta", "Alpha", "mid.v2", "beta", "mid" };
	static const char *const sorted[] = { "Alpha", "beta", "mid", "mid.v2", "zeta" };
	struct scripts *s = scripts_new(NULL, 8);

	for (size_t i = 0; i < 5; i++)
		put_text(s, names[i], (int)(i % 2), names[i], strlen(names[i]));
	cJSON *json = list_json(s);
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(json, "scripts");
	ck_assert(cJSON_IsArray(list));
	ck_assert_int_eq(cJSON_GetArraySize(list), 5);
	for (int i = 0; i < 5; i++) {
		const cJSON *item = cJSON_GetArrayItem(list, i);
		ck_assert_str_eq(string_field(item, "name"), sorted[i]);
		ck_assert(number_field(item, "size") == (double)strlen(sorted[i]));
		ck_assert_uint_eq(strlen(string_field(item, "digest")), 16);
		number_field(item, "updated");
		const char *kind = string_field(item, "kind");
		ck_assert(strcmp(kind, "source") == 0 || strcmp(kind, "bytecode") == 0);
	}
	cJSON_Delete(json);
	scripts_free(s);
}
END_TEST

/* Files ---------------------------------------------------------------- */

START_TEST(put_should_write_files_that_a_new_store_loads_back)
{
	char dir[256];

	make_test_dir(dir, sizeof(dir));
	struct scripts *s = scripts_new(dir, 8);
	put_text(s, "text", 1, "return ctx.x", 12);
	put_text(s, "binary", 0, bytecode, BYTECODE_LEN);
	ck_assert(file_exists(dir, "text.lua"));
	ck_assert(file_exists(dir, "binary.luac"));
	ck_assert_int_eq(count_files(dir), 2);	/* no temporary file left */
	scripts_free(s);

	s = scripts_new(dir, 8);
	ck_assert_int_eq(scripts_load_dir(s, NULL, NULL), 2);
	ck_assert_uint_eq(scripts_count(s), 2);
	assert_script(s, "text", 1, "return ctx.x", 12);
	assert_script(s, "binary", 0, bytecode, BYTECODE_LEN);
	scripts_free(s);
}
END_TEST

START_TEST(put_should_remove_the_file_of_the_other_kind)
{
	char dir[256];

	make_test_dir(dir, sizeof(dir));
	struct scripts *s = scripts_new(dir, 8);
	put_text(s, "flip", 1, "return 1", 8);
	ck_assert(file_exists(dir, "flip.lua"));
	put_text(s, "flip", 0, bytecode, BYTECODE_LEN);
	ck_assert(file_exists(dir, "flip.luac"));
	ck_assert(!file_exists(dir, "flip.lua"));
	put_text(s, "flip", 1, "return 2", 8);
	ck_assert(file_exists(dir, "flip.lua"));
	ck_assert(!file_exists(dir, "flip.luac"));
	ck_assert_int_eq(count_files(dir), 1);
	scripts_free(s);

	s = scripts_new(dir, 8);
	ck_assert_int_eq(scripts_load_dir(s, NULL, NULL), 1);
	assert_script(s, "flip", 1, "return 2", 8);
	scripts_free(s);
}
END_TEST

START_TEST(delete_should_remove_the_script_files)
{
	char dir[256];

	make_test_dir(dir, sizeof(dir));
	struct scripts *s = scripts_new(dir, 8);
	put_text(s, "gone", 1, "return 1", 8);
	put_text(s, "kept", 0, bytecode, BYTECODE_LEN);
	/* A stale file of the other kind goes too. */
	write_file(dir, "gone.luac", bytecode, BYTECODE_LEN);
	ck_assert_int_eq(scripts_delete(s, "gone"), 0);
	ck_assert(!file_exists(dir, "gone.lua"));
	ck_assert(!file_exists(dir, "gone.luac"));
	ck_assert(file_exists(dir, "kept.luac"));
	scripts_free(s);

	s = scripts_new(dir, 8);
	ck_assert_int_eq(scripts_load_dir(s, NULL, NULL), 1);
	assert_script(s, "kept", 0, bytecode, BYTECODE_LEN);
	scripts_free(s);
}
END_TEST

START_TEST(put_should_fail_when_the_directory_cannot_be_written)
{
	char dir[256], missing[300];
	char err[256] = "";
	int created = -1;

	make_test_dir(dir, sizeof(dir));
	snprintf(missing, sizeof(missing), "%s/missing", dir);
	struct scripts *s = scripts_new(missing, 8);
	ck_assert_int_eq(scripts_put(s, "x", 1, "return 1", 8, &created, err,
	    sizeof(err)), -1);
	ck_assert_str_ne(err, "");
	ck_assert_uint_eq(scripts_count(s), 0);
	scripts_free(s);
}
END_TEST

struct validation {
	int calls;
	int bad_was_source;
};

static int
reject_the_script_named_bad(void *arg, const char *name, int is_source,
    const char *chunk, size_t len, char *err, size_t errlen)
{
	struct validation *v = arg;

	v->calls++;
	(void)chunk;
	(void)len;
	if (strcmp(name, "bad") == 0) {
		v->bad_was_source = is_source;
		snprintf(err, errlen, "rejected by the test");
		return -1;
	}
	return 0;
}

START_TEST(load_dir_should_skip_only_the_files_the_validator_rejects)
{
	struct validation v = { 0, -1 };
	char dir[256];

	make_test_dir(dir, sizeof(dir));
	write_file(dir, "good.lua", "return 1", 8);
	write_file(dir, "bad.lua", "return (", 8);
	write_file(dir, "other.luac", bytecode, BYTECODE_LEN);
	struct scripts *s = scripts_new(dir, 8);
	ck_assert_int_eq(scripts_load_dir(s, reject_the_script_named_bad, &v), 2);
	ck_assert_int_eq(v.calls, 3);
	ck_assert_int_eq(v.bad_was_source, 1);
	assert_script(s, "good", 1, "return 1", 8);
	assert_script(s, "other", 0, bytecode, BYTECODE_LEN);
	ck_assert_int_eq(scripts_describe(s, "bad", &(struct buffer){ 0 }), -1);
	ck_assert(file_exists(dir, "bad.lua"));	/* skipped, not deleted */
	/* A rescan checks only what changed: the new file and the changed one. */
	write_file(dir, "new.lua", "return 2", 8);
	write_file(dir, "good.lua", "return 3", 8);
	v.calls = 0;
	ck_assert_int_eq(scripts_load_dir(s, reject_the_script_named_bad, &v), 3);
	ck_assert_int_eq(v.calls, 3);	/* good (changed), new, and bad (never stored) */
	assert_script(s, "good", 1, "return 3", 8);
	assert_script(s, "other", 0, bytecode, BYTECODE_LEN);
	scripts_free(s);
}
END_TEST

START_TEST(load_dir_should_load_a_lua_file_dropped_in_by_hand)
{
	char dir[256];

	make_test_dir(dir, sizeof(dir));
	write_file(dir, "by-hand.lua", "return 'hand'", 13);
	write_file(dir, "version.2.lua", "return 2", 8);
	write_file(dir, "README", "not a script", 12);
	write_file(dir, "notes.txt", "x", 1);
	write_file(dir, ".hidden.lua", "return 1", 8);
	write_file(dir, ".x.tmp-abcdef", "return 1", 8);
	write_file(dir, "a b.lua", "return 1", 8);
	write_file(dir, ".lua", "return 1", 8);
	struct scripts *s = scripts_new(dir, 8);
	ck_assert_int_eq(scripts_load_dir(s, NULL, NULL), 2);
	assert_script(s, "by-hand", 1, "return 'hand'", 13);
	assert_script(s, "version.2", 1, "return 2", 8);
	scripts_free(s);
}
END_TEST

START_TEST(load_dir_should_prefer_bytecode_over_source_of_the_same_name)
{
	char dir[256];

	make_test_dir(dir, sizeof(dir));
	write_file(dir, "both.lua", "return 1", 8);
	write_file(dir, "both.luac", bytecode, BYTECODE_LEN);
	struct scripts *s = scripts_new(dir, 8);
	ck_assert_int_eq(scripts_load_dir(s, NULL, NULL), 1);
	assert_script(s, "both", 0, bytecode, BYTECODE_LEN);
	scripts_free(s);
}
END_TEST

START_TEST(load_dir_should_take_updated_from_the_file_mtime)
{
	struct timeval times[2] = { { 1600000000, 0 }, { 1600000000, 0 } };
	char dir[256], path[300];

	make_test_dir(dir, sizeof(dir));
	write_file(dir, "old.lua", "return 1", 8);
	snprintf(path, sizeof(path), "%s/old.lua", dir);
	ck_assert_int_eq(utimes(path, times), 0);
	struct scripts *s = scripts_new(dir, 8);
	ck_assert_int_eq(scripts_load_dir(s, NULL, NULL), 1);
	cJSON *json = describe_json(s, "old");
	ck_assert(number_field(json, "updated") == 1600000000.0);
	cJSON_Delete(json);
	scripts_free(s);
}
END_TEST

START_TEST(load_dir_should_skip_files_larger_than_16_mib)
{
	char dir[256], path[300];

	make_test_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/huge.lua", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(ftruncate(fd, 16 * 1024 * 1024 + 1), 0);
	close(fd);
	write_file(dir, "small.lua", "return 1", 8);
	struct scripts *s = scripts_new(dir, 8);
	ck_assert_int_eq(scripts_load_dir(s, NULL, NULL), 1);
	assert_script(s, "small", 1, "return 1", 8);
	scripts_free(s);
}
END_TEST

START_TEST(load_dir_should_stop_at_max_scripts)
{
	char dir[256], file[32];

	make_test_dir(dir, sizeof(dir));
	for (int i = 0; i < 5; i++) {
		snprintf(file, sizeof(file), "s%d.lua", i);
		write_file(dir, file, "return 1", 8);
	}
	struct scripts *s = scripts_new(dir, 3);
	ck_assert_int_eq(scripts_load_dir(s, NULL, NULL), 3);
	ck_assert_uint_eq(scripts_count(s), 3);
	scripts_free(s);
}
END_TEST

START_TEST(load_dir_should_replace_the_in_memory_set)
{
	char dir[256];
	char *chunk = NULL;
	size_t len;

	make_test_dir(dir, sizeof(dir));
	struct scripts *s = scripts_new(dir, 8);
	put_text(s, "kept", 1, "return 1", 8);
	put_text(s, "removed", 1, "return 2", 8);
	char path[300];
	snprintf(path, sizeof(path), "%s/removed.lua", dir);
	ck_assert_int_eq(unlink(path), 0);
	write_file(dir, "added.lua", "return 3", 8);
	ck_assert_int_eq(scripts_load_dir(s, NULL, NULL), 2);
	ck_assert_int_eq(scripts_get(s, "removed", NULL, &chunk, &len), -1);
	assert_script(s, "kept", 1, "return 1", 8);
	assert_script(s, "added", 1, "return 3", 8);
	scripts_free(s);
}
END_TEST

START_TEST(load_dir_should_fail_for_a_missing_directory)
{
	char dir[256], missing[300];

	make_test_dir(dir, sizeof(dir));
	snprintf(missing, sizeof(missing), "%s/missing", dir);
	struct scripts *s = scripts_new(missing, 8);
	ck_assert_int_eq(scripts_load_dir(s, NULL, NULL), -1);
	scripts_free(s);
}
END_TEST

START_TEST(load_dir_without_a_directory_should_keep_the_memory_set)
{
	struct scripts *s = scripts_new(NULL, 8);

	put_text(s, "mem", 1, "return 1", 8);
	ck_assert_int_eq(scripts_load_dir(s, NULL, NULL), 0);
	assert_script(s, "mem", 1, "return 1", 8);
	scripts_free(s);
}
END_TEST

/* Threads -------------------------------------------------------------- */

#define THREADS		4
#define ROUNDS		3000
#define THREAD_NAMES	16

struct worker {
	struct scripts *s;
	int id;
	int errors;
};

/* Each chunk is "<name>:<kind>:<thread>:<round>"; a get must return a
 * chunk of the name asked for, whose kind matches the one stored with it. */
static void *
put_and_get(void *arg)
{
	struct worker *w = arg;
	char name[16], chunk[64], err[128];

	for (int i = 0; i < ROUNDS; i++) {
		int is_source = (i + w->id) % 2;
		snprintf(name, sizeof(name), "n%d", (i * 7 + w->id) % THREAD_NAMES);
		int len = snprintf(chunk, sizeof(chunk), "%s:%d:%d:%d", name, is_source,
		    w->id, i);
		if (scripts_put(w->s, name, is_source, chunk, (size_t)len, NULL, err,
		    sizeof(err)) == -1)
			w->errors++;

		char *got = NULL;
		size_t got_len = 0;
		int got_source = -1;
		snprintf(name, sizeof(name), "n%d", (i * 3 + w->id * 5) % THREAD_NAMES);
		if (scripts_get(w->s, name, &got_source, &got, &got_len) == 0) {
			char expected[32];
			snprintf(expected, sizeof(expected), "%s:%d:", name, got_source);
			if (strncmp(got, expected, strlen(expected)) != 0 ||
			    strlen(got) != got_len)
				w->errors++;
			free(got);
		}
		if (i % 500 == 0) {
			struct buffer out;
			buffer_init(&out, 0);
			if (scripts_list(w->s, &out) == -1)
				w->errors++;
			cJSON *json = cJSON_ParseWithLength(out.data, out.len);
			if (json == NULL)
				w->errors++;
			cJSON_Delete(json);
			buffer_free(&out);
		}
	}
	return NULL;
}

START_TEST(concurrent_puts_and_gets_should_stay_consistent)
{
	struct scripts *s = scripts_new(NULL, THREAD_NAMES);
	struct worker workers[THREADS];
	pthread_t threads[THREADS];

	for (int i = 0; i < THREADS; i++) {
		workers[i] = (struct worker){ s, i, 0 };
		ck_assert_int_eq(pthread_create(&threads[i], NULL, put_and_get,
		    &workers[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
		ck_assert_int_eq(workers[i].errors, 0);
	}
	ck_assert_uint_eq(scripts_count(s), THREAD_NAMES);
	scripts_free(s);
}
END_TEST

static Suite *
scripts_suite(void)
{
	Suite *suite = suite_create("scripts");
	TCase *names = tcase_create("names");
	TCase *memory = tcase_create("memory");
	TCase *files = tcase_create("files");
	TCase *threads = tcase_create("threads");

	tcase_add_test(names, valid_name_should_accept_letters_digits_and_punctuation);
	tcase_add_test(names, valid_name_should_refuse_empty_long_hidden_and_path_names);
	tcase_add_test(names, put_should_refuse_an_invalid_name_with_an_error);

	tcase_add_test(memory, put_should_store_a_new_script_and_report_it_created);
	tcase_add_test(memory, put_should_replace_an_existing_script);
	tcase_add_test(memory, put_should_keep_an_empty_chunk);
	tcase_add_test(memory, get_should_fail_for_an_unknown_script);
	tcase_add_test(memory, delete_should_remove_only_that_script);
	tcase_add_test(memory, put_should_refuse_a_new_name_when_the_store_is_full);
	tcase_add_test(memory, describe_should_give_name_kind_size_digest_and_updated);
	tcase_add_test(memory, describe_should_fail_for_an_unknown_script_and_append_nothing);
	tcase_add_test(memory, describe_should_leave_the_buffer_as_it_was_when_it_is_full);
	tcase_add_test(memory, list_of_an_empty_store_should_be_an_empty_array);
	tcase_add_test(memory, list_should_give_every_script_sorted_by_name);
	tcase_add_test(memory, load_dir_without_a_directory_should_keep_the_memory_set);

	tcase_add_unchecked_fixture(files, make_base_dir, remove_base_dir);
	tcase_add_test(files, put_should_write_files_that_a_new_store_loads_back);
	tcase_add_test(files, put_should_remove_the_file_of_the_other_kind);
	tcase_add_test(files, delete_should_remove_the_script_files);
	tcase_add_test(files, put_should_fail_when_the_directory_cannot_be_written);
	tcase_add_test(files, load_dir_should_skip_only_the_files_the_validator_rejects);
	tcase_add_test(files, load_dir_should_load_a_lua_file_dropped_in_by_hand);
	tcase_add_test(files, load_dir_should_prefer_bytecode_over_source_of_the_same_name);
	tcase_add_test(files, load_dir_should_take_updated_from_the_file_mtime);
	tcase_add_test(files, load_dir_should_skip_files_larger_than_16_mib);
	tcase_add_test(files, load_dir_should_stop_at_max_scripts);
	tcase_add_test(files, load_dir_should_replace_the_in_memory_set);
	tcase_add_test(files, load_dir_should_fail_for_a_missing_directory);

	tcase_add_test(threads, concurrent_puts_and_gets_should_stay_consistent);

	suite_add_tcase(suite, names);
	suite_add_tcase(suite, memory);
	suite_add_tcase(suite, files);
	suite_add_tcase(suite, threads);
	return suite;
}

int
main(void)
{
	/* Skipped files are logged at info and warn; keep the run quiet. */
	log_set_level(LOG_ERROR);
	SRunner *runner = srunner_create(scripts_suite());

	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
