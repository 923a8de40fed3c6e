/*
 * context.c - luapool_context, the seed API's key/value context: a cJSON
 * object the pool serializes once per submit.
 */
#include <stdlib.h>

#include "luapool.h"
#include "pool/context.h"

struct luapool_context {
	cJSON *object;
};

struct luapool_context *
luapool_context_new(void)
{
	struct luapool_context *ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return NULL;
	ctx->object = cJSON_CreateObject();
	if (ctx->object == NULL) {
		free(ctx);
		return NULL;
	}
	return ctx;
}

void
luapool_context_set(struct luapool_context *ctx, const char *key, cJSON *value)
{
	if (ctx == NULL || key == NULL) {
		cJSON_Delete(value);
		return;
	}
	if (value == NULL)
		value = cJSON_CreateNull();
	if (cJSON_HasObjectItem(ctx->object, key))
		cJSON_ReplaceItemInObjectCaseSensitive(ctx->object, key, value);
	else
		cJSON_AddItemToObject(ctx->object, key, value);
}

const cJSON *
luapool_context_get(const struct luapool_context *ctx, const char *key)
{
	if (ctx == NULL || key == NULL)
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(ctx->object, key);
}

void
luapool_context_free(struct luapool_context *ctx)
{
	if (ctx == NULL)
		return;
	cJSON_Delete(ctx->object);
	free(ctx);
}

char *
context_request_json(const struct luapool_context *ctx)
{
	cJSON *request = cJSON_CreateObject();
	if (request == NULL)
		return NULL;
	char *text = NULL;
	if (ctx != NULL) {
		/* Borrow the object for printing; detach before deleting. */
		cJSON_AddItemReferenceToObject(request, "context", ctx->object);
	}
	text = cJSON_PrintUnformatted(request);
	cJSON_Delete(request);
	return text;
}
