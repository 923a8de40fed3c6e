/*
 * problem.c - problem bodies (see problem.h).  The table below is the
 * single place that maps an error code to its status and title.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "http/problem.h"

static const struct {
	const char *code;
	int status;
	const char *title;
} problems[] = {
	{ "invalid_json", 400, "The request body is not valid JSON" },
	{ "invalid_request", 400, "The request is not valid" },
	{ "invalid_base64", 400, "The bytecode is not valid base64" },
	{ "invalid_bytecode", 400, "The bytecode cannot be loaded" },
	{ "compile_error", 400, "The source does not compile" },
	{ "unauthorized", 401, "Authentication required" },
	{ "not_found", 404, "No such resource" },
	{ "unknown_script", 404, "No script of that name" },
	{ "method_not_allowed", 405, "Method not allowed" },
	{ "payload_too_large", 413, "Request body too large" },
	{ "script_error", 422, "The script raised an error" },
	{ "result_not_serializable", 422, "The result cannot be represented as JSON" },
	{ "memory_limit_exceeded", 422, "The script exceeded its memory limit" },
	{ "result_too_large", 422, "The result is too large" },
	{ "worker_crashed", 500, "The worker running the script crashed" },
	{ "internal_error", 500, "Internal error" },
	{ "overloaded", 503, "Too many jobs are waiting" },
	{ "shutting_down", 503, "The server is shutting down" },
	{ "deadline_exceeded", 504, "The script ran past its deadline" },
};

static int
find_problem(const char *code)
{
	for (size_t i = 0; i < sizeof(problems) / sizeof(problems[0]); i++)
		if (strcmp(problems[i].code, code) == 0)
			return (int)i;
	return -1;
}

int
problem_status(const char *code)
{
	int i = code ? find_problem(code) : -1;
	return i < 0 ? 500 : problems[i].status;
}

char *
problem_body(const char *code, const char *detail, const char *traceback, size_t *len)
{
	int i = code ? find_problem(code) : -1;
	if (i < 0)
		i = find_problem("internal_error");
	char type[96];
	snprintf(type, sizeof(type), "urn:luapoold:problem:%s", problems[i].code);
	cJSON *body = cJSON_CreateObject();
	if (body == NULL)
		return NULL;
	cJSON_AddStringToObject(body, "type", type);
	cJSON_AddStringToObject(body, "title", problems[i].title);
	cJSON_AddNumberToObject(body, "status", problems[i].status);
	cJSON_AddStringToObject(body, "detail", detail && *detail ? detail : problems[i].title);
	cJSON_AddStringToObject(body, "code", problems[i].code);
	if (strcmp(problems[i].code, "script_error") == 0) {
		cJSON_AddStringToObject(body, "message", detail ? detail : "");
		if (traceback && *traceback)
			cJSON_AddStringToObject(body, "traceback", traceback);
	}
	char *text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (text && len)
		*len = strlen(text);
	return text;
}
