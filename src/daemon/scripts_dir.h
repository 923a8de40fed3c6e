/*
 * scripts_dir.h - the files of scripts_dir for the script store
 * (scripts.c): <name>.lua holds source, <name>.luac bytecode, each replaced
 * atomically.  Only paths, file names and bytes here: no table, no locks,
 * no idea of which names are valid (the store checks names itself).
 */
#ifndef SCRIPTS_DIR_H
#define SCRIPTS_DIR_H

#include <limits.h>
#include <stddef.h>

/* A file of the directory that looks like a script: its name without the
 * suffix, which may still be an invalid script name. */
struct scripts_dir_entry {
	char name[NAME_MAX + 1];
	int is_source;
};

/* ".lua" for source, ".luac" for bytecode. */
const char *scripts_dir_suffix(int is_source);

/* Writes <dir>/<name><suffix of is_source> into path.  -1 with errno
 * ENAMETOOLONG when it does not fit in size bytes. */
int scripts_dir_path(char *path, size_t size, const char *dir,
    const char *name, int is_source);

/* Makes a rename or unlink in dir durable.  A failure is only logged: the
 * directory already holds the change, so memory must follow it. */
void scripts_dir_sync(const char *dir);

/* Removes <dir>/<name><suffix>; a missing file is not an error.  -1 (logged)
 * if the file is there and cannot be removed. */
int scripts_dir_remove(const char *dir, const char *name, int is_source);

/*
 * Writes the chunk to <dir>/<name>.lua or .luac through a temporary file in
 * the same directory, then removes the file of the other kind.  -1, logged,
 * with errno telling why; no temporary file is left behind.
 */
int scripts_dir_write(const char *dir, const char *name, int is_source,
    const char *chunk, size_t len);

/* Reads a whole regular file of at most SCRIPTS_FILE_MAX (scripts_dir.c)
 * bytes into a NUL-terminated buffer (*chunk, caller frees) and its
 * modification time.  -1, logged as a skipped file, if it could not. */
int scripts_dir_read(const char *path, char **chunk, size_t *len,
    long long *mtime);

/* Collects the script files of dir (hidden and temporary files and other
 * suffixes skipped, with a log line), sorted by name, bytecode first so
 * that it wins.  *entries is the caller's to free.  -1, logged, if the
 * directory cannot be read. */
int scripts_dir_list(const char *dir, struct scripts_dir_entry **entries,
    unsigned *count);

#endif
