/*
 * http_joblog.c - a job's captured print and log.* output (the "logs" of
 * its answer) in the server log, at debug level, one line per entry with
 * the request's id and path.  At any other level this costs one
 * comparison: nothing is parsed.
 *
 * The entries come from a worker: they are parsed, never trusted, and
 * log_message escapes what it writes.  This file never changes an answer.
 */
#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "http/http_internal.h"

static void
write_entries(const struct request *r, int worker_pid, const cJSON *logs)
{
	const cJSON *entry;
	cJSON_ArrayForEach(entry, logs) {
		const cJSON *level = cJSON_GetObjectItemCaseSensitive(entry, "level");
		const cJSON *text = cJSON_GetObjectItemCaseSensitive(entry, "text");
		if (cJSON_IsString(level) && cJSON_IsString(text))
			log_debug("request %s %s: worker %d: job log: %.8s: %s", r->request_id,
			    r->path, worker_pid, level->valuestring, text->valuestring);
	}
}

void
http_joblog_write(const struct request *r, const struct luapool_reply *reply)
{
	if (log_get_level() < LOG_DEBUG)
		return;
	cJSON *doc = NULL;
	if (reply->status == LUAPOOL_OK && reply->body_has_logs)
		doc = cJSON_ParseWithLength(reply->body, reply->body_len);
	else if (reply->status != LUAPOOL_OK && reply->logs)
		doc = cJSON_Parse(reply->logs);
	if (doc == NULL)
		return;
	const cJSON *logs = reply->status == LUAPOOL_OK ?
	    cJSON_GetObjectItemCaseSensitive(doc, "logs") : doc;
	if (cJSON_IsArray(logs))
		write_entries(r, reply->worker_pid, logs);
	cJSON_Delete(doc);
}
