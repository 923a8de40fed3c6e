/*
 * problem.c - problem bodies (see problem.h).  The table below is the
 * single place that maps an error code to its status and title.  Details,
 * messages and tracebacks may come from a worker (a script's error
 * message is anything it raised): they are made valid UTF-8 here, so a
 * body is always JSON a strict parser takes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "common/text.h"
#include "http/problem.h"

static const struct {
	const char *code;
	int status;
	const char *title;
} problems[] = {
	{ "invalid_json", 400, "The request body is not valid JSON" },
	{ "invalid_request", 400, "The request is not valid" },
	{ "unknown_field", 400, "The request has a field the server does not know" },
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

/* The length of the character at s (n bytes left): 1 for ASCII, 0 when it
 * starts no valid UTF-8 character. */
static size_t
utf8_char_length(const unsigned char *s, size_t n)
{
	return s[0] < 0x80 ? 1 : text_utf8_length(s, n);
}

/* text as valid UTF-8: each byte that starts no valid character (a cut
 * one at the end too) becomes U+FFFD.  malloc'd; NULL when out of memory. */
static char *
valid_utf8(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text);
	char *out = malloc(3 * n + 1), *o = out;
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t len = utf8_char_length(s + i, n - i);
		if (len == 0) {
			memcpy(o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		} else {
			memcpy(o, s + i, len);
			o += len;
			i += len;
		}
	}
	*o = '\0';
	return out;
}

/* Adds name: text made valid UTF-8. */
static void
add_text(cJSON *body, const char *name, const char *text)
{
	char *valid = valid_utf8(text);
	cJSON_AddStringToObject(body, name, valid ? valid : "");
	free(valid);
}

const char *
problem_known_code(const char *code)
{
	int i = code ? find_problem(code) : -1;
	return problems[i < 0 ? find_problem("internal_error") : i].code;
}

int
problem_status(const char *code)
{
	int i = code ? find_problem(code) : -1;
	return i < 0 ? 500 : problems[i].status;
}

/* Whether text is all valid UTF-8 (the JSON parser does not check). */
static int
is_valid_utf8(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text);
	for (size_t i = 0; i < n;) {
		size_t len = utf8_char_length(s + i, n - i);
		if (len == 0)
			return 0;
		i += len;
	}
	return 1;
}

/* Whether a log entry is {"level": one of the four, "text": string} with
 * at most "truncated": true besides. */
static int
is_log_entry(const cJSON *entry)
{
	static const char *const levels[] = { "debug", "info", "warn", "error" };
	const cJSON *level = cJSON_GetObjectItemCaseSensitive(entry, "level");
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(entry, "text");
	const cJSON *truncated = cJSON_GetObjectItemCaseSensitive(entry, "truncated");
	if (!cJSON_IsObject(entry) || !cJSON_IsString(level) || !cJSON_IsString(text) ||
	    (truncated != NULL && !cJSON_IsTrue(truncated)) ||
	    cJSON_GetArraySize(entry) != 2 + (truncated != NULL))
		return 0;
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(level->valuestring, levels[i]) == 0)
			return 1;
	return 0;
}

/*
 * Adds name: the JSON value a worker sent, when the text is valid UTF-8
 * and one JSON value (for logs: an array of log entries).  The value is
 * written anew, not copied, so the body is strict JSON whatever the
 * parser tolerated.  The reply's frame limit bounds its size; a part
 * that fails is dropped with a warning, the rest of the answer stands.
 */
static void
add_worker_json(cJSON *body, const char *name, const char *json, int is_logs)
{
	const char *end = NULL;
	cJSON *value = is_valid_utf8(json) ?
	    cJSON_ParseWithOpts(json, &end, 1) : NULL;
	int valid = value != NULL && (!is_logs || cJSON_IsArray(value));
	for (const cJSON *entry = is_logs && valid ? value->child : NULL; entry && valid;
	    entry = entry->next)
		valid = is_log_entry(entry);
	if (!valid) {
		cJSON_Delete(value);
		log_warn("a worker's \"%s\" is not valid; the answer goes without it", name);
		return;
	}
	cJSON_AddItemToObject(body, name, value);
}

char *
problem_body_for_job(const char *code, const char *detail,
    const struct problem_job_parts *parts, size_t *len)
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
	add_text(body, "detail", detail && *detail ? detail : problems[i].title);
	cJSON_AddStringToObject(body, "code", problems[i].code);
	int script_error = strcmp(problems[i].code, "script_error") == 0;
	if (script_error) {
		add_text(body, "message", detail ? detail : "");
		if (parts->traceback && *parts->traceback)
			add_text(body, "traceback", parts->traceback);
		if (parts->error_value)
			add_worker_json(body, "error_value", parts->error_value, 0);
	}
	if (parts->logs)
		add_worker_json(body, "logs", parts->logs, 1);
	char *text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (text && len)
		*len = strlen(text);
	return text;
}
