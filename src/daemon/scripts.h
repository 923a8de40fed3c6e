/*
 * scripts.h - the named script store of the daemon: name -> chunk (Lua
 * source or LuaJIT bytecode), kept in memory and, when a directory is set,
 * as files written atomically (<name>.lua for source, <name>.luac for
 * bytecode) so they survive a restart.  Thread-safe.  No Lua here: source
 * is validated by the caller (through the pool) before it is stored.
 */
#ifndef SCRIPTS_H
#define SCRIPTS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buffer.h"

#define SCRIPTS_NAME_MAX 64

struct scripts;

/* dir may be NULL (memory only).  Returns NULL when out of memory. */
struct scripts *scripts_new(const char *dir, unsigned max_scripts);
void scripts_free(struct scripts *s);

/* Names: 1..64 of [A-Za-z0-9_.-], not starting with '.'. */
int scripts_valid_name(const char *name);

/* Called for each file found by scripts_load_dir; returns 0 to accept,
 * -1 with err filled to skip the file (it is logged, not deleted). */
typedef int scripts_validate_fn(void *arg, const char *name, int is_source,
    const char *chunk, size_t len, char *err, size_t errlen);

/* Loads every <name>.lua and <name>.luac of the directory (a .luac wins
 * over a .lua of the same name).  Replaces the in-memory set.  Returns
 * the number loaded, -1 if the directory cannot be read. */
int scripts_load_dir(struct scripts *s, scripts_validate_fn *validate, void *arg);

/* Stores (replacing) a script; writes its file first when a directory is
 * set.  *created is 1 for a new name.  -1 with err filled: bad name, store
 * full (max_scripts), or the file could not be written. */
int scripts_put(struct scripts *s, const char *name, int is_source, const void *chunk,
    size_t len, int *created, char *err, size_t errlen);

/* Copies the chunk out (caller frees *chunk).  -1 if there is no such script. */
int scripts_get(struct scripts *s, const char *name, int *is_source, char **chunk, size_t *len);

/* Removes the script and its file.  -1 if there is no such script. */
int scripts_delete(struct scripts *s, const char *name);

/* Appends {"name","kind":"source"|"bytecode","size","digest","updated"}.
 * -1 if there is no such script. */
int scripts_describe(struct scripts *s, const char *name, struct buffer *out);
/* Appends {"scripts":[<describe>...]} sorted by name. */
int scripts_list(struct scripts *s, struct buffer *out);
unsigned scripts_count(struct scripts *s);

#endif
