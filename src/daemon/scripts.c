/*
 * scripts.c - the named script store: a sorted table of scripts in memory
 * and, when a directory is set, one file per script, replaced atomically
 * (temporary file, fsync, rename, fsync of the directory) so a crash leaves
 * either the old or the new chunk, never a torn one.
 *
 * Two locks: `write_lock` serializes every change (file first, then the
 * table), `lock` guards the table only, so readers never wait for an fsync.
 * Never runs or parses Lua, and never deletes a file it did not name itself.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/scripts.h"

/* Files larger than this are not loaded from the directory. */
#define SCRIPTS_FILE_MAX	(16u * 1024u * 1024u)

#define SOURCE_SUFFIX		".lua"
#define BYTECODE_SUFFIX		".luac"

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

/* A file of the directory that looks like a script. */
struct candidate {
	char name[SCRIPTS_NAME_MAX + 1];
	int is_source;
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

static const char *
suffix_of_kind(int is_source)
{
	return is_source ? SOURCE_SUFFIX : BYTECODE_SUFFIX;
}

static int
format_path(char *path, size_t size, const char *dir, const char *name, const char *suffix)
{
	int n = snprintf(path, size, "%s/%s%s", dir, name, suffix);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Files --------------------------------------------------------------- */

static int
write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Makes a rename or unlink in dir durable.  A failure is only logged: the
 * directory already holds the change, so memory must follow it. */
static void
sync_directory(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || fsync(fd) == -1)
		log_warn("cannot sync scripts directory %s: %s", dir, strerror(errno));
	if (fd != -1)
		close(fd);
}

/* Removes <dir>/<name><suffix>; a missing file is not an error. */
static int
remove_script_file(const char *dir, const char *name, int is_source)
{
	char path[PATH_MAX];

	if (format_path(path, sizeof(path), dir, name, suffix_of_kind(is_source)) == -1)
		return -1;
	if (unlink(path) == -1 && errno != ENOENT) {
		log_error("cannot remove %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Writes the chunk to <dir>/<name>.lua or .luac through a temporary file in
 * the same directory, then removes the file of the other kind so a later
 * load cannot pick a stale one.  The file is private to the daemon's user
 * (mkstemp's mode 0600).
 */
static int
write_script_file(const char *dir, const struct script *script, char *err, size_t errlen)
{
	char temp[PATH_MAX], path[PATH_MAX];
	int fd = -1;

	temp[0] = '\0';
	int n = snprintf(temp, sizeof(temp), "%s/.%s.tmp-XXXXXX", dir, script->name);
	if (n < 0 || (size_t)n >= sizeof(temp) ||
	    format_path(path, sizeof(path), dir, script->name,
	    suffix_of_kind(script->is_source)) == -1) {
		temp[0] = '\0';
		errno = ENAMETOOLONG;
		log_error("scripts directory path too long: %s", dir);
		goto fail;
	}
	fd = mkostemp(temp, O_CLOEXEC);
	if (fd == -1) {
		log_error("cannot create a temporary file in %s: %s", dir, strerror(errno));
		temp[0] = '\0';
		goto fail;
	}
	if (write_all(fd, script->chunk, script->len) == -1 || fsync(fd) == -1) {
		log_error("cannot write %s: %s", temp, strerror(errno));
		goto fail;
	}
	int closed = close(fd);
	fd = -1;
	if (closed == -1) {
		log_error("cannot write %s: %s", temp, strerror(errno));
		goto fail;
	}
	if (rename(temp, path) == -1) {
		log_error("cannot rename %s to %s: %s", temp, path, strerror(errno));
		goto fail;
	}
	remove_script_file(dir, script->name, !script->is_source);
	sync_directory(dir);
	return 0;
fail:
	set_error(err, errlen, "cannot store the script: %s", strerror(errno));
	if (fd != -1)
		close(fd);
	if (temp[0] != '\0')
		unlink(temp);
	return -1;
}

/* Reads a whole regular file of at most SCRIPTS_FILE_MAX bytes into a
 * NUL-terminated buffer the caller frees.  Logs why it could not. */
static int
read_script_file(const char *path, char **chunk, size_t *len, long long *mtime)
{
	char *data = NULL;
	struct stat st;
	size_t have = 0;

	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1 || fstat(fd, &st) == -1) {
		log_warn("skipping %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		log_warn("skipping %s: not a regular file", path);
		goto fail;
	}
	if (st.st_size > (off_t)SCRIPTS_FILE_MAX) {
		log_warn("skipping %s: larger than %u bytes", path, SCRIPTS_FILE_MAX);
		goto fail;
	}
	size_t size = (size_t)st.st_size;
	data = malloc(size + 1);
	if (data == NULL) {
		log_warn("skipping %s: out of memory", path);
		goto fail;
	}
	while (have < size) {
		ssize_t n = read(fd, data + have, size - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_warn("skipping %s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	data[have] = '\0';
	*chunk = data;
	*len = have;
	*mtime = (long long)st.st_mtime;
	return 0;
fail:
	if (fd != -1)
		close(fd);
	free(data);
	return -1;
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
	if (s->dir != NULL && write_script_file(s->dir, script, err, errlen) == -1)
		goto fail;
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
		remove_script_file(s->dir, name, 1);
		remove_script_file(s->dir, name, 0);
		sync_directory(s->dir);
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

static int
has_suffix(const char *text, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);
	return len > n && memcmp(text + len - n, suffix, n) == 0;
}

/* Returns 1 if the directory entry is a script file (filling c), else 0,
 * having logged why it is skipped. */
static int
classify_entry(const char *file, struct candidate *c)
{
	size_t len = strlen(file), base;

	if (strcmp(file, ".") == 0 || strcmp(file, "..") == 0)
		return 0;
	if (file[0] == '.') {
		if (strstr(file, ".tmp-") != NULL)
			log_info("skipping %s: temporary file of an unfinished write", file);
		else
			log_info("skipping %s: hidden file", file);
		return 0;
	}
	if (has_suffix(file, len, BYTECODE_SUFFIX)) {
		c->is_source = 0;
		base = len - strlen(BYTECODE_SUFFIX);
	} else if (has_suffix(file, len, SOURCE_SUFFIX)) {
		c->is_source = 1;
		base = len - strlen(SOURCE_SUFFIX);
	} else {
		log_info("skipping %s: not a .lua or .luac file", file);
		return 0;
	}
	if (base > SCRIPTS_NAME_MAX) {
		log_warn("skipping %s: invalid script name", file);
		return 0;
	}
	memcpy(c->name, file, base);
	c->name[base] = '\0';
	if (!scripts_valid_name(c->name)) {
		log_warn("skipping %s: invalid script name", file);
		return 0;
	}
	return 1;
}

static int
compare_candidates(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;
	int order = strcmp(x->name, y->name);
	if (order != 0)
		return order;
	return x->is_source - y->is_source;	/* bytecode first: it wins */
}

/* Collects the script files of dir, sorted by name, bytecode first. */
static int
list_candidates(const char *dir, struct candidate **out, unsigned *count)
{
	struct candidate *list = NULL;
	unsigned n = 0, capacity = 0;
	struct dirent *entry;

	DIR *d = opendir(dir);
	if (d == NULL) {
		log_error("cannot read scripts directory %s: %s", dir, strerror(errno));
		return -1;
	}
	for (errno = 0; (entry = readdir(d)) != NULL; errno = 0) {
		struct candidate c;
		if (!classify_entry(entry->d_name, &c))
			continue;
		if (n == capacity) {
			unsigned grown = capacity ? capacity * 2 : 32;
			struct candidate *bigger = realloc(list, grown * sizeof(*list));
			if (bigger == NULL) {
				errno = ENOMEM;
				break;
			}
			list = bigger;
			capacity = grown;
		}
		list[n++] = c;
	}
	if (errno != 0) {
		log_error("cannot read scripts directory %s: %s", dir, strerror(errno));
		goto fail;
	}
	closedir(d);
	if (n > 0)
		qsort(list, n, sizeof(*list), compare_candidates);
	*out = list;
	*count = n;
	return 0;
fail:
	closedir(d);
	free(list);
	return -1;
}

/* Reads, validates and adds one file to `loaded`; logs when it does not. */
static void
load_candidate(const struct scripts *s, const struct candidate *c,
    struct script_table *loaded, scripts_validate_fn *validate, void *arg)
{
	char path[PATH_MAX], err[256];
	char *chunk = NULL;
	size_t len;
	long long mtime;
	unsigned index;
	const char *suffix = suffix_of_kind(c->is_source);

	if (table_find(loaded, c->name, &index)) {
		log_info("skipping %s%s: %s%s takes precedence", c->name, suffix,
		    c->name, BYTECODE_SUFFIX);
		return;
	}
	if (loaded->count >= s->max_scripts) {
		log_warn("skipping %s%s: the store is full (max_scripts is %u)",
		    c->name, suffix, s->max_scripts);
		return;
	}
	if (format_path(path, sizeof(path), s->dir, c->name, suffix) == -1) {
		log_warn("skipping %s%s: path too long", c->name, suffix);
		return;
	}
	if (read_script_file(path, &chunk, &len, &mtime) == -1)
		return;
	err[0] = '\0';
	if (validate != NULL &&
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
	struct candidate *candidates = NULL;
	unsigned count = 0;

	if (s->dir == NULL)
		return 0;
	pthread_mutex_lock(&s->write_lock);
	if (list_candidates(s->dir, &candidates, &count) == -1) {
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
