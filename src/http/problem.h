/*
 * problem.h - RFC 9457 problem details: the JSON body and HTTP status of
 * every error code of the API (DESIGN §4).  The codes are the contract;
 * titles are for humans.
 */
#ifndef PROBLEM_H
#define PROBLEM_H

#include <stddef.h>

/* The code as answered: code itself when the table has it, else
 * "internal_error" (a worker's code is not trusted to be one). */
const char *problem_known_code(const char *code);

/* HTTP status of a code; 500 for an unknown one. */
int problem_status(const char *code);

/* What a job's answer adds to a problem body, as a worker sent it: all
 * untrusted, each checked here and left out (with a warning) when it is
 * not what it must be.  NULL: none. */
struct problem_job_parts {
	const char *traceback;		/* script_error: text */
	const char *logs;		/* any error of a run: a JSON array of
					 * {"level","text"[,"truncated":true]} */
	const char *error_value;	/* script_error: any JSON value */
};

/* {"type","title","status","detail","code"[,"message","traceback"]} as a
 * malloc'd string (caller frees), *len its length.  script_error also gets
 * "message" (= detail) and "traceback" when one is given.  Of a job's
 * parts, "logs" and "error_value" are copied as they came once they are
 * found valid UTF-8 JSON of the right shape. */
char *problem_body_for_job(const char *code, const char *detail,
    const struct problem_job_parts *parts, size_t *len);
#endif
