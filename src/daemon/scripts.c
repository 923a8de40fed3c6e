/*
 * scripts.c - the named script store: a sorted table of scripts in memory,
 * the store's API, and its JSON descriptions.  When a directory is set,
 * every change goes to its file first (scripts_dir.c) and a rescan replaces
 * the table with what the directory holds.
 *
 * Two locks: `write_lock` serializes every change (file first, then the
 * table), `lock` guards the table only, so readers never wait for an fsync.
 * Never runs or parses Lua, and never touches a file itself.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "daemon/scripts.h"
#include "daemon/scripts_dir.h"

struct script {
	char name[SCRIPTS_NAME_MAX + 1];
	int is_source;
	char *chunk;		/* NUL-terminated copy, len bytes before the NUL */
	size_t len;
	char digest[17];	/* FNV-1a 64 of the chunk, hex */
	long long updated;	/* Unix seconds */
};

struct script_table {
	struct script **items;	/* sorted by name (strcmp) */
	unsigned count, capacity;
};

struct scripts {
	pthread_mutex_t lock;		/* guards table */
	pthread_mutex_t write_lock;	/* serializes put, delete and load_dir */
	char *dir;			/* NULL: memory only */
	unsigned max_scripts;
	struct script_table table;
};

static void set_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_error(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Scripts ------------------------------------------------------------- */

static void
digest_of_chunk(const char *chunk, size_t len, char out[17])
{
	uint64_t hash = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		hash ^= (unsigned char)chunk[i];
		hash *= 0x100000001b3ull;
	}
	snprintf(out, 17, "%016llx", (unsigned long long)hash);
}

static void
script_free(struct script *script)
{
	if (script == NULL)
		return;
	free(script->chunk);
	free(script);
}

/* Copies the chunk.  NULL when out of memory. */
static struct script *
script_new(const char *name, int is_source, const void *chunk, size_t len,
    long long updated)
{
	struct script *script = calloc(1, sizeof(*script));
	if (script == NULL)
		return NULL;
	script->chunk = malloc(len + 1);
	if (script->chunk == NULL) {
		free(script);
		return NULL;
	}
	if (len)
		memcpy(script->chunk, chunk, len);
	script->chunk[len] = '\0';
	script->len = len;
	script->is_source = is_source ? 1 : 0;
	script->updated = updated;
	snprintf(script->name, sizeof(script->name), "%s", name);
	digest_of_chunk(script->chunk, len, script->digest);
	return script;
}

/* The sorted table --------------------------------------------------- */

/* Returns 1 if found (its index in *index), else 0 with the insertion
 * point in *index. */
static int
table_find(const struct script_table *table, const char *name, unsigned *index)
{
	unsigned low = 0, high = table->count;

	while (low < high) {
		unsigned middle = low + (high - low) / 2;
		int order = strcmp(table->items[middle]->name, name);
		if (order == 0) {
			*index = middle;
			return 1;
		}
		if (order < 0)
			low = middle + 1;
		else
			high = middle;
	}
	*index = low;
	return 0;
}

static int
table_reserve_one(struct script_table *table)
{
	if (table->count < table->capacity)
		return 0;
	unsigned capacity = table->capacity ? table->capacity * 2 : 16;
	struct script **items = realloc(table->items, capacity * sizeof(*items));
	if (items == NULL)
		return -1;
	table->items = items;
	table->capacity = capacity;
	return 0;
}

/* The caller has reserved room with table_reserve_one. */
static void
table_insert_at(struct script_table *table, unsigned index, struct script *script)
{
	memmove(&table->items[index + 1], &table->items[index],
	    (table->count - index) * sizeof(table->items[0]));
	table->items[index] = script;
	table->count++;
}

static struct script *
table_remove_at(struct script_table *table, unsigned index)
{
	struct script *script = table->items[index];
	memmove(&table->items[index], &table->items[index + 1],
	    (table->count - index - 1) * sizeof(table->items[0]));
	table->count--;
	return script;
}

static void
table_clear(struct script_table *table)
{
	for (unsigned i = 0; i < table->count; i++)
		script_free(table->items[i]);
	free(table->items);
	table->items = NULL;
	table->count = table->capacity = 0;
}

/* Names --------------------------------------------------------------- */

static int
is_name_character(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

int
scripts_valid_name(const char *name)
{
	if (name == NULL || name[0] == '\0' || name[0] == '.')
		return 0;
	size_t len = 0;
	for (; name[len] != '\0'; len++) {
		if (len >= SCRIPTS_NAME_MAX || !is_name_character(name[len]))
			return 0;
	}
	return 1;
}

/* The store ----------------------------------------------------------- */

struct scripts *
scripts_new(const char *dir, unsigned max_scripts)
{
	struct scripts *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	if (dir != NULL && (s->dir = strdup(dir)) == NULL) {
		free(s);
		return NULL;
	}
	s->max_scripts = max_scripts;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->write_lock, NULL);
	return s;
}

void
scripts_free(struct scripts *s)
{
	if (s == NULL)
		return;
	table_clear(&s->table);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->write_lock);
	free(s->dir);
	free(s);
}

/* Holding write_lock: checks room for the name and reserves a table slot,
 * so that the insertion after the file is written cannot fail. */
static int
make_room_for(struct scripts *s, const char *name, char *err, size_t errlen)
{
	unsigned index;
	int result = 0;

	pthread_mutex_lock(&s->lock);
	if (!table_find(&s->table, name, &index)) {
		if (s->table.count >= s->max_scripts) {
			set_error(err, errlen, "too many scripts (max_scripts is %u)",
			    s->max_scripts);
			result = -1;
		} else if (table_reserve_one(&s->table) == -1) {
			set_error(err, errlen, "out of memory");
			result = -1;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return result;
}

/* Returns 1 if the script replaced one of the same name, else 0. */
static int
replace_or_insert(struct scripts *s, struct script *script)
{
	unsigned index;
	int found;

	pthread_mutex_lock(&s->lock);
	found = table_find(&s->table, script->name, &index);
	if (found) {
		script_free(s->table.items[index]);
		s->table.items[index] = script;
	} else {
		table_insert_at(&s->table, index, script);
	}
	pthread_mutex_unlock(&s->lock);
	return found;
}

int
scripts_put(struct scripts *s, const char *name, int is_source, const void *chunk,
    size_t len, int *created, char *err, size_t errlen)
{
	struct script *script = NULL;
	int locked = 0;

	if (!scripts_valid_name(name)) {
		set_error(err, errlen, "invalid script name: 1 to %d of A-Z a-z 0-9 _ . -, "
		    "not starting with '.'", SCRIPTS_NAME_MAX);
		goto fail;
	}
	script = script_new(name, is_source, chunk, len, (long long)time(NULL));
	if (script == NULL) {
		set_error(err, errlen, "out of memory");
		goto fail;
	}
	pthread_mutex_lock(&s->write_lock);
	locked = 1;
	if (make_room_for(s, name, err, errlen) == -1)
		goto fail;
	if (s->dir != NULL && scripts_dir_write(s->dir, script->name,
	    script->is_source, script->chunk, script->len) == -1) {
		set_error(err, errlen, "cannot store the script: %s",
		    strerror(errno));
		goto fail;
	}
	int replaced = replace_or_insert(s, script);
	pthread_mutex_unlock(&s->write_lock);
	if (created)
		*created = !replaced;
	return 0;
fail:
	if (locked)
		pthread_mutex_unlock(&s->write_lock);
	script_free(script);
	return -1;
}

int
scripts_get(struct scripts *s, const char *name, int *is_source, char **chunk, size_t *len)
{
	unsigned index;
	int result = -1;

	if (!scripts_valid_name(name))
		return -1;
	pthread_mutex_lock(&s->lock);
	if (table_find(&s->table, name, &index)) {
		const struct script *script = s->table.items[index];
		char *copy = malloc(script->len + 1);
		if (copy != NULL) {
			memcpy(copy, script->chunk, script->len + 1);
			*chunk = copy;
			*len = script->len;
			if (is_source)
				*is_source = script->is_source;
			result = 0;
		} else {
			log_error("out of memory copying script %s", name);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return result;
}

static int
contains_script(struct scripts *s, const char *name)
{
	unsigned index;

	pthread_mutex_lock(&s->lock);
	int found = table_find(&s->table, name, &index);
	pthread_mutex_unlock(&s->lock);
	return found;
}

static void
remove_from_table(struct scripts *s, const char *name)
{
	unsigned index;
	struct script *script = NULL;

	pthread_mutex_lock(&s->lock);
	if (table_find(&s->table, name, &index))
		script = table_remove_at(&s->table, index);
	pthread_mutex_unlock(&s->lock);
	script_free(script);
}

/* A file that cannot be removed is logged; the script still leaves memory,
 * since the client asked for it gone and memory is what serves requests. */
int
scripts_delete(struct scripts *s, const char *name)
{
	if (!scripts_valid_name(name))
		return -1;
	pthread_mutex_lock(&s->write_lock);
	if (!contains_script(s, name)) {
		pthread_mutex_unlock(&s->write_lock);
		return -1;
	}
	if (s->dir != NULL) {
		scripts_dir_remove(s->dir, name, 1);
		scripts_dir_remove(s->dir, name, 0);
		scripts_dir_sync(s->dir);
	}
	remove_from_table(s, name);
	pthread_mutex_unlock(&s->write_lock);
	return 0;
}

/* JSON ---------------------------------------------------------------- */

static int
append_json_string(struct buffer *out, const char *text)
{
	if (buffer_append_char(out, '"') == -1)
		return -1;
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		int failed;
		if (*p == '"' || *p == '\\')
			failed = buffer_printf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			failed = buffer_printf(out, "\\u%04x", *p);
		else
			failed = buffer_append_char(out, (char)*p);
		if (failed == -1)
			return -1;
	}
	return buffer_append_char(out, '"');
}

static int
append_description(struct buffer *out, const struct script *script)
{
	if (buffer_append_string(out, "{\"name\":") == -1 ||
	    append_json_string(out, script->name) == -1 ||
	    buffer_printf(out, ",\"kind\":\"%s\",\"size\":%zu,\"digest\":\"%s\","
	    "\"updated\":%lld}", script->is_source ? "source" : "bytecode",
	    script->len, script->digest, script->updated) == -1)
		return -1;
	return 0;
}

int
scripts_describe(struct scripts *s, const char *name, struct buffer *out)
{
	size_t start = out->len;
	unsigned index;
	int result = -1;

	if (!scripts_valid_name(name))
		return -1;
	pthread_mutex_lock(&s->lock);
	if (table_find(&s->table, name, &index))
		result = append_description(out, s->table.items[index]);
	pthread_mutex_unlock(&s->lock);
	if (result == -1)
		out->len = start;
	return result;
}

int
scripts_list(struct scripts *s, struct buffer *out)
{
	size_t start = out->len;

	pthread_mutex_lock(&s->lock);
	if (buffer_append_string(out, "{\"scripts\":[") == -1)
		goto fail;
	for (unsigned i = 0; i < s->table.count; i++) {
		if ((i > 0 && buffer_append_char(out, ',') == -1) ||
		    append_description(out, s->table.items[i]) == -1)
			goto fail;
	}
	if (buffer_append_string(out, "]}") == -1)
		goto fail;
	pthread_mutex_unlock(&s->lock);
	return 0;
fail:
	pthread_mutex_unlock(&s->lock);
	out->len = start;
	return -1;
}

unsigned
scripts_count(struct scripts *s)
{
	pthread_mutex_lock(&s->lock);
	unsigned count = s->table.count;
	pthread_mutex_unlock(&s->lock);
	return count;
}

/* Loading the directory ---------------------------------------------- */

/* Whether the store holds this very script already (then it was checked
 * when it came in).  The caller holds write_lock, so the table is stable. */
static int
already_stored(const struct scripts *s, const char *name, int is_source, const char *chunk,
    size_t len)
{
	unsigned index;
	if (!table_find(&s->table, name, &index))
		return 0;
	const struct script *old = s->table.items[index];
	return old->is_source == is_source && old->len == len && memcmp(old->chunk, chunk, len) == 0;
}

/* Reads, validates and adds one file to `loaded`; logs when it does not. */
static void
load_candidate(const struct scripts *s, const struct scripts_dir_entry *c,
    struct script_table *loaded, scripts_validate_fn *validate, void *arg)
{
	char path[PATH_MAX], err[256];
	char *chunk = NULL;
	size_t len;
	long long mtime;
	unsigned index;
	const char *suffix = scripts_dir_suffix(c->is_source);

	if (!scripts_valid_name(c->name)) {
		log_warn("skipping %s%s: invalid script name", c->name, suffix);
		return;
	}
	if (table_find(loaded, c->name, &index)) {
		log_info("skipping %s%s: %s%s takes precedence", c->name, suffix,
		    c->name, scripts_dir_suffix(0));
		return;
	}
	if (loaded->count >= s->max_scripts) {
		log_warn("skipping %s%s: the store is full (max_scripts is %u)",
		    c->name, suffix, s->max_scripts);
		return;
	}
	if (scripts_dir_path(path, sizeof(path), s->dir, c->name,
	    c->is_source) == -1) {
		log_warn("skipping %s%s: path too long", c->name, suffix);
		return;
	}
	if (scripts_dir_read(path, &chunk, &len, &mtime) == -1)
		return;
	err[0] = '\0';
	/* A reload checks only what changed: checking compiles in a worker,
	 * and a busy pool must not make a rescan drop scripts that were fine. */
	if (validate != NULL && !already_stored(s, c->name, c->is_source, chunk, len) &&
	    validate(arg, c->name, c->is_source, chunk, len, err, sizeof(err)) == -1) {
		log_warn("skipping %s: %s", path, err[0] ? err : "rejected");
		goto done;
	}
	struct script *script = script_new(c->name, c->is_source, chunk, len, mtime);
	if (script == NULL || table_reserve_one(loaded) == -1) {
		log_warn("skipping %s: out of memory", path);
		script_free(script);
		goto done;
	}
	table_insert_at(loaded, index, script);
done:
	free(chunk);
}

/* The validate callback runs with write_lock held: it must not call back
 * into this store's put, delete or load_dir.  Without a directory there is
 * nothing to load: returns 0 and keeps the set. */
int
scripts_load_dir(struct scripts *s, scripts_validate_fn *validate, void *arg)
{
	struct script_table loaded = { 0 }, old;
	struct scripts_dir_entry *candidates = NULL;
	unsigned count = 0;

	if (s->dir == NULL)
		return 0;
	pthread_mutex_lock(&s->write_lock);
	if (scripts_dir_list(s->dir, &candidates, &count) == -1) {
		pthread_mutex_unlock(&s->write_lock);
		return -1;
	}
	for (unsigned i = 0; i < count; i++)
		load_candidate(s, &candidates[i], &loaded, validate, arg);
	free(candidates);

	pthread_mutex_lock(&s->lock);
	old = s->table;
	s->table = loaded;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&s->write_lock);

	table_clear(&old);
	log_info("loaded %u scripts from %s", loaded.count, s->dir);
	return (int)loaded.count;
}
