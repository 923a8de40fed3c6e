/*
 * vm_cache.c - the worker's chunk cache and the one place a chunk becomes a
 * function: bytecode is checked by the verifier (bcverify.c) before LuaJIT
 * sees it, then loaded; the result is kept by its bytes.
 *
 * What is kept must carry nothing from one job to the next: a loaded main
 * function without upvalues is stateless (its environment is set per job),
 * so it is reused; one with upvalues (string.dump of a closure) keeps only
 * its verified bytes and is loaded anew for every job, so its upvalues
 * always start as nil.
 *
 * The key is the chunk's kind, its name and its bytes: LuaJIT bakes the
 * name into what it loads (source, and bytecode stripped of debug
 * information), so a function cached under one name must never answer a
 * job that asked for another (one client's name in another's errors).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <luajit.h>

#include "vm/bcverify.h"
#include "vm/vm_cache.h"
#include "vm/vm_internal.h"
#include "vm/vm_outcome.h"

#define CACHE_MAX_BYTES (16u * 1024u * 1024u)

/* A chunk's identity: kind, name (NUL-terminated) and bytes, stored as
 * one string in that order so a hit compares all three in one memcmp. */
struct chunk_key {
	char kind;
	const char *name;
	size_t name_len;		/* with its NUL */
	const char *chunk;
	size_t len;
};

static uint64_t
hash_bytes(uint64_t h, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t
hash_chunk(const struct chunk_key *k)
{
	uint64_t h = 1469598103934665603ULL ^ (unsigned char)k->kind;
	return hash_bytes(hash_bytes(h, k->name, k->name_len), k->chunk, k->len);
}

static size_t
key_length(const struct chunk_key *k)
{
	return 1 + k->name_len + k->len;
}

static struct cache_entry *
cache_find(struct vm *vm, uint64_t hash, const struct chunk_key *k)
{
	for (unsigned i = 0; i < vm->cache_count; i++) {
		struct cache_entry *e = &vm->cache[i];
		if (e->hash == hash && e->len == key_length(k) && e->bytes[0] == k->kind &&
		    memcmp(e->bytes + 1, k->name, k->name_len) == 0 &&
		    memcmp(e->bytes + 1 + k->name_len, k->chunk, k->len) == 0)
			return e;
	}
	return NULL;
}

static void
cache_evict_oldest(struct vm *vm)
{
	unsigned oldest = 0;
	for (unsigned i = 1; i < vm->cache_count; i++)
		if (vm->cache[i].last_used < vm->cache[oldest].last_used)
			oldest = i;
	struct cache_entry *e = &vm->cache[oldest];
	luaL_unref(vm->L, LUA_REGISTRYINDEX, e->ref);
	vm->cache_bytes -= e->len;
	free(e->bytes);
	*e = vm->cache[--vm->cache_count];
}

/* Takes the function on top of the stack into the cache (leaves it there);
 * one with upvalues keeps only its bytes, to be loaded anew for each job. */
static void
cache_store(lua_State *L, struct vm *vm, uint64_t hash, const struct chunk_key *k,
    int fresh_each_run)
{
	size_t len = key_length(k);
	if (vm->limits.cache_entries == 0 || len > CACHE_MAX_BYTES / 4)
		return;
	while (vm->cache_count > 0 && (vm->cache_count >= vm->limits.cache_entries ||
	    vm->cache_bytes + len > CACHE_MAX_BYTES))
		cache_evict_oldest(vm);
	char *bytes = malloc(len);
	if (bytes == NULL)
		return;
	bytes[0] = k->kind;
	memcpy(bytes + 1, k->name, k->name_len);
	memcpy(bytes + 1 + k->name_len, k->chunk, k->len);
	struct cache_entry *e = &vm->cache[vm->cache_count++];
	e->hash = hash;
	e->len = len;
	e->bytes = bytes;
	e->last_used = ++vm->clock;
	e->fresh_each_run = fresh_each_run;
	e->ref = LUA_NOREF;
	if (!fresh_each_run) {
		lua_pushvalue(L, -1);
		e->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	vm->cache_bytes += len;
}

static int
is_bytecode(const char *chunk, size_t len)
{
	return len >= 4 && chunk[0] == '\033' && chunk[1] == 'L' && chunk[2] == 'J';
}

/* Whether the function on top of the stack has upvalues. */
static int
has_upvalues(lua_State *L)
{
	if (lua_getupvalue(L, -1, 1) == NULL)
		return 0;
	lua_pop(L, 1);
	return 1;
}

/* Loads a chunk (already verified if bytecode) and pushes its function;
 * -1 with the outcome set when LuaJIT refuses it. */
static int
load_chunk(lua_State *L, const struct vm_job *job, struct vm_outcome *out)
{
	char chunkname[80];
	snprintf(chunkname, sizeof(chunkname), "=%.64s", job->name ? job->name : "job");
	int rc = luaL_loadbufferx(L, job->chunk, job->chunk_len, chunkname,
	    job->is_source ? "t" : "b");
	if (rc == 0 && !job->is_source && !vm_of(L)->limits.bytecode_jit)
		/* The flag lives in the prototypes, so cached copies keep it. */
		luaJIT_setmode(L, -1, LUAJIT_MODE_ALLFUNC | LUAJIT_MODE_OFF);
	if (rc == 0)
		return 0;
	if (rc == LUA_ERRMEM)
		lua_error(L);
	const char *msg = lua_tostring(L, -1);
	if (job->is_source) {
		vm_outcome_set(out, LUAPOOL_E_COMPILE, "compile_error", msg);
	} else {
		/* Verified bytes LuaJIT still refused: a gap in the verifier,
		 * so this worker may have parsed hostile input: replace it. */
		vm_outcome_set(out, LUAPOOL_E_BYTECODE, "invalid_bytecode", msg);
		out->replace = VM_REPLACE_BAD_LOAD;
	}
	lua_pop(L, 1);
	return -1;
}

/* Refuses bytecode the verifier does not accept; 0 if it does. */
static int
verify_bytecode(const struct vm_job *job, struct vm_outcome *out)
{
	char why[sizeof(out->message) - 32];
	if (!is_bytecode(job->chunk, job->chunk_len)) {
		vm_outcome_set(out, LUAPOOL_E_BYTECODE, "invalid_bytecode",
		    "not LuaJIT bytecode (it must start with \\033LJ, as luajit -b writes it)");
		return -1;
	}
	if (bcverify_chunk((const unsigned char *)job->chunk, job->chunk_len, why,
	    sizeof(why)) == 0)
		return 0;
	char message[sizeof(out->message)];
	snprintf(message, sizeof(message), "bytecode rejected: %s", why);
	vm_outcome_set(out, LUAPOOL_E_BYTECODE, "invalid_bytecode", message);
	return -1;
}

int
vm_cache_push_function(lua_State *L, struct vm *vm, const struct vm_job *job,
    struct vm_outcome *out)
{
	const char *name = job->name ? job->name : "job";
	struct chunk_key key = { job->is_source ? 's' : 'b', name, strlen(name) + 1,
	    job->chunk, job->chunk_len };
	uint64_t hash = hash_chunk(&key);
	struct cache_entry *e = cache_find(vm, hash, &key);
	if (e != NULL) {
		e->last_used = ++vm->clock;
		out->cache_hit = 1;
		if (e->fresh_each_run)
			return load_chunk(L, job, out);
		lua_rawgeti(L, LUA_REGISTRYINDEX, e->ref);
		return 0;
	}
	out->cache_miss = 1;
	if (!job->is_source && verify_bytecode(job, out) == -1)
		return -1;
	if (load_chunk(L, job, out) == -1)
		return -1;
	cache_store(L, vm, hash, &key, has_upvalues(L));
	return 0;
}

void
vm_cache_free(struct vm *vm)
{
	for (unsigned i = 0; i < vm->cache_count; i++)
		free(vm->cache[i].bytes);
	free(vm->cache);
	vm->cache = NULL;
	vm->cache_count = 0;
}
