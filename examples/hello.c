/*
 * hello.c - the seed example against include/luapool.h: compile a chunk
 * with `luajit -b`, run it in the pool with a context, print the result.
 *
 *   cc examples/hello.c -Iinclude build/libluapool.a \
 *      $(pkg-config --cflags --libs libcjson) -lpthread
 *
 * Without arguments it runs `return ctx.message .. " from Lua"`, shipped
 * as bytecode below; with a file argument it runs that bytecode file.
 */
#include <stdio.h>
#include <stdlib.h>

#include "luapool.h"

/* luajit -b of: return ctx.message .. " from Lua" */
static const unsigned char hello_bytecode[] = {
	0x1b, 0x4c, 0x4a, 0x02, 0x0a, 0x31, 0x02, 0x00, 0x02, 0x00, 0x03, 0x00,
	0x05, 0x36, 0x00, 0x00, 0x00, 0x39, 0x00, 0x01, 0x00, 0x27, 0x01, 0x02,
	0x00, 0x26, 0x00, 0x01, 0x00, 0x4c, 0x00, 0x02, 0x00, 0x0e, 0x20, 0x66,
	0x72, 0x6f, 0x6d, 0x20, 0x4c, 0x75, 0x61, 0x0c, 0x6d, 0x65, 0x73, 0x73,
	0x61, 0x67, 0x65, 0x08, 0x63, 0x74, 0x78, 0x00,
};

static void *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	char *data = malloc(1 << 20);
	*len = data ? fread(data, 1, 1 << 20, f) : 0;
	fclose(f);
	return data;
}

int
main(int argc, char **argv)
{
	struct luapool_error err;
	struct luapool *pool = luapool_new(2, &err);
	if (pool == NULL) {
		fprintf(stderr, "luapool_new: %s\n", err.message);
		return 1;
	}
	struct luapool_context *ctx = luapool_context_new();
	luapool_context_set(ctx, "message", cJSON_CreateString("Hello"));

	const void *code = hello_bytecode;
	size_t len = sizeof(hello_bytecode);
	void *file = NULL;
	if (argc > 1 && (file = read_file(argv[1], &len)) != NULL)
		code = file;

	cJSON *result = luapool_submit(pool, code, len, ctx, &err);
	int status = 0;
	if (result == NULL) {
		fprintf(stderr, "submit: %s (%s)\n", err.message, luapool_status_code(err.status));
		status = 1;
	} else if (cJSON_IsString(result)) {
		printf("%s\n", result->valuestring);
	} else {
		char *text = cJSON_PrintUnformatted(result);
		printf("%s\n", text);
		cJSON_free(text);
	}
	cJSON_Delete(result);
	free(file);
	luapool_context_free(ctx);
	luapool_free(pool);
	return status;
}
