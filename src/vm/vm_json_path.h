/*
 * vm_json_path.h - error messages that name where a value sits, root
 * first: "result.items[3]: NaN is not JSON".  Used by the encoder, and by
 * the tests' cJSON tree to Lua reference (tests/support/jsonpush.c).
 *
 * No Lua here, and nothing allocated: the path lives on the C stack of the
 * recursion that walks the value.
 */
#ifndef VM_JSON_PATH_H
#define VM_JSON_PATH_H

#include <stddef.h>

/*
 * Where a value sits: a chain from the value up to the root, one link per
 * level on the C stack of the recursion.  It names the value in error
 * messages and, through `table`, lists the tables on the current path so
 * that the encoder can see a cycle.
 */
struct vm_json_path {
	const struct vm_json_path *parent;	/* NULL at the root */
	const void *table;		/* encoder: the table holding the value */
	const char *key;		/* object key, the root's name, or NULL */
	size_t key_len;
	double index;			/* when key is NULL: index or number key */
};

/* Fills err with "path: message": the path of `at`, cut (with "...") to
 * at most half of err so that the message after it survives.  Indexes are
 * 1-based, as the script sees them.  Does nothing when err is NULL. */
void vm_json_path_fail(char *err, size_t errlen, const struct vm_json_path *at,
    const char *format, ...) __attribute__((format(printf, 4, 5)));

/* The same for a path given as an array, root first: levels[0] is the
 * step below a root named `root`.  Sets each level's parent. */
void vm_json_path_fail_levels(char *err, size_t errlen, const char *root,
    struct vm_json_path *levels, unsigned count, const char *format, ...)
    __attribute__((format(printf, 6, 7)));

#endif
