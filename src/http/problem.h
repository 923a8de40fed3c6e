/*
 * problem.h - RFC 9457 problem details: the JSON body and HTTP status of
 * every error code of the API (DESIGN §4).  The codes are the contract;
 * titles are for humans.
 */
#ifndef PROBLEM_H
#define PROBLEM_H

#include <stddef.h>

/* HTTP status of a code; 500 for an unknown one. */
int problem_status(const char *code);

/* {"type","title","status","detail","code"[,"message","traceback"]} as a
 * malloc'd string (caller frees), *len its length.  script_error also gets
 * "message" (= detail) and "traceback" when one is given. */
char *problem_body(const char *code, const char *detail, const char *traceback, size_t *len);
#endif
