/*
 * bcverify_reject.c - the verifier's error text: "<where>: <reason>", or
 * "<where>: pc N: <reason>", written into the caller's buffer.
 *
 * Every other bcverify file calls it, so it must never call any of them.
 * It must never write past errlen, allocate, or keep state.
 */
#include <stdarg.h>
#include <stdio.h>

#include "vm/bcverify_internal.h"

/* Formats "<where>: <reason>" into the caller's buffer; always returns -1. */
int bcverify_reject(struct verifier *v, const char *fmt, ...)
{
    if (v->err && v->errlen > 0) {
        int n = snprintf(v->err, v->errlen, "%s: ", v->where);
        if (n >= 0 && (size_t)n < v->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(v->err + n, v->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

int bcverify_reject_at(struct func *f, uint32_t pc, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bcverify_reject(f->v, "pc %u: %s", pc, msg);
}
