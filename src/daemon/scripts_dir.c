/*
 * scripts_dir.c - the files behind the script store: one file per script in
 * scripts_dir, replaced atomically (temporary file, fsync, rename, fsync of
 * the directory) so a crash leaves either the old or the new chunk, never a
 * torn one; reading them back and listing the directory for a rescan.
 * Never runs or parses Lua, never deletes a file it did not name itself,
 * and knows nothing of the in-memory table (scripts.c calls in, never out).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/scripts_dir.h"

/* Files larger than this are not loaded from the directory. */
#define SCRIPTS_FILE_MAX	(16u * 1024u * 1024u)

#define SOURCE_SUFFIX		".lua"
#define BYTECODE_SUFFIX		".luac"

const char *
scripts_dir_suffix(int is_source)
{
	return is_source ? SOURCE_SUFFIX : BYTECODE_SUFFIX;
}

int
scripts_dir_path(char *path, size_t size, const char *dir, const char *name,
    int is_source)
{
	int n = snprintf(path, size, "%s/%s%s", dir, name,
	    scripts_dir_suffix(is_source));
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

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

void
scripts_dir_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || fsync(fd) == -1)
		log_warn("cannot sync scripts directory %s: %s", dir, strerror(errno));
	if (fd != -1)
		close(fd);
}

int
scripts_dir_remove(const char *dir, const char *name, int is_source)
{
	char path[PATH_MAX];

	if (scripts_dir_path(path, sizeof(path), dir, name, is_source) == -1)
		return -1;
	if (unlink(path) == -1 && errno != ENOENT) {
		log_error("cannot remove %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The other kind's file is removed so a later load cannot pick a stale one.
 * The file is private to the daemon's user (mkstemp's mode 0600).
 */
int
scripts_dir_write(const char *dir, const char *name, int is_source,
    const char *chunk, size_t len)
{
	char temp[PATH_MAX], path[PATH_MAX];
	int fd = -1, saved_errno;

	temp[0] = '\0';
	int n = snprintf(temp, sizeof(temp), "%s/.%s.tmp-XXXXXX", dir, name);
	if (n < 0 || (size_t)n >= sizeof(temp) ||
	    scripts_dir_path(path, sizeof(path), dir, name, is_source) == -1) {
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
	if (write_all(fd, chunk, len) == -1 || fsync(fd) == -1) {
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
	scripts_dir_remove(dir, name, !is_source);
	scripts_dir_sync(dir);
	return 0;
fail:
	saved_errno = errno;
	if (fd != -1)
		close(fd);
	if (temp[0] != '\0')
		unlink(temp);
	errno = saved_errno;
	return -1;
}

int
scripts_dir_read(const char *path, char **chunk, size_t *len, long long *mtime)
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

static int
has_suffix(const char *text, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);
	return len > n && memcmp(text + len - n, suffix, n) == 0;
}

/* Returns 1 if the directory entry is a script file (filling c), else 0,
 * having logged why it is skipped.  Whether c->name is a valid script name
 * is the store's question. */
static int
classify_entry(const char *file, struct scripts_dir_entry *c)
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
	memcpy(c->name, file, base);
	c->name[base] = '\0';
	return 1;
}

static int
compare_entries(const void *a, const void *b)
{
	const struct scripts_dir_entry *x = a, *y = b;
	int order = strcmp(x->name, y->name);
	if (order != 0)
		return order;
	return x->is_source - y->is_source;	/* bytecode first: it wins */
}

int
scripts_dir_list(const char *dir, struct scripts_dir_entry **out,
    unsigned *count)
{
	struct scripts_dir_entry *list = NULL;
	unsigned n = 0, capacity = 0;
	struct dirent *entry;

	DIR *d = opendir(dir);
	if (d == NULL) {
		log_error("cannot read scripts directory %s: %s", dir, strerror(errno));
		return -1;
	}
	for (errno = 0; (entry = readdir(d)) != NULL; errno = 0) {
		struct scripts_dir_entry c;
		if (!classify_entry(entry->d_name, &c))
			continue;
		if (n == capacity) {
			unsigned grown = capacity ? capacity * 2 : 32;
			struct scripts_dir_entry *bigger = realloc(list,
			    grown * sizeof(*list));
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
		qsort(list, n, sizeof(*list), compare_entries);
	*out = list;
	*count = n;
	return 0;
fail:
	closedir(d);
	free(list);
	return -1;
}
