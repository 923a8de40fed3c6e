/*
 * bcverify_read.c - the dump reader: bounded bytes and ULEB128, then one
 * prototype record: its header, its constants (strings, template tables,
 * numbers, child prototypes claimed from the stack) and its debug info.
 *
 * It must never trust a length before checking it against the bytes left,
 * never read outside the record, and accept only what LuaJIT's writer emits
 * (no over-long ULEB, no NaN, no nil table key, no FFI constant).  It only
 * locates the instructions: bcverify_ops.c checks them.
 */
#include <string.h>

#include "vm/bcverify_internal.h"

/* ---- Bounded byte reader --------------------------------------------- */

size_t bcverify_read_bytes_left(const struct reader *r)
{
    return (size_t)(r->end - r->p);
}

static int read_byte(struct reader *r, uint32_t *out)
{
    if (r->p >= r->end)
        return -1;
    *out = *r->p++;
    return 0;
}

int bcverify_read_skip_bytes(struct reader *r, size_t n, const unsigned char **start)
{
    if (n > bcverify_read_bytes_left(r))
        return -1;
    if (start)
        *start = r->p;
    r->p += n;
    return 0;
}

/*
 * ULEB128 of a 32-bit value.  LuaJIT's own decoder has no length limit and
 * would run past the buffer, so we insist on at most 5 bytes, inside the
 * section, with no bits beyond 32.
 */
int bcverify_read_uleb(struct reader *r, uint32_t *out)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < 5; i++) {
        if (r->p >= r->end)
            return -1;
        uint32_t b = *r->p++;
        if (i == 4 && b > 0x0f)
            return -1;
        v |= (b & 0x7f) << (7 * i);
        if (b < 0x80) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/*
 * Number constants are a 33-bit ULEB128 whose lowest bit says "double"
 * (then the value is the low word and a plain ULEB high word follows) or
 * "integer" (the value is the whole int32).  Same length rules as above.
 */
static int read_uleb33(struct reader *r, uint32_t *out, int *is_double)
{
    if (r->p >= r->end)
        return -1;
    uint32_t b = *r->p++;
    uint32_t v = b >> 1;
    *is_double = (int)(b & 1);
    if (b < 0x80) {
        *out = v;
        return 0;
    }
    v &= 0x3f;
    for (unsigned i = 1; i < 5; i++) {
        if (r->p >= r->end)
            return -1;
        b = *r->p++;
        if (i == 4 && b > 0x1f)
            return -1;
        v |= (b & 0x7f) << (7 * i - 1);
        if (b < 0x80) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* ---- Constants ------------------------------------------------------- */

/* A NaN payload in a GC64 TValue is a type tag: it would forge an object. */
static int is_nan(uint32_t lo, uint32_t hi)
{
    return (hi & 0x7ff00000u) == 0x7ff00000u && ((hi & 0x000fffffu) | lo) != 0;
}

/* One key or value of a template table; kinds the parser can fold only. */
static int read_table_item(struct verifier *v, struct reader *r, int is_key)
{
    uint32_t tp, lo, hi;
    if (bcverify_read_uleb(r, &tp) < 0)
        return bcverify_reject(v, "template table truncated");
    if (tp >= KTAB_STR)
        return bcverify_read_skip_bytes(r, tp - KTAB_STR, NULL) < 0 ?
            bcverify_reject(v, "template table string runs past its prototype") : 0;
    switch (tp) {
    case KTAB_NIL:
        return is_key ? bcverify_reject(v, "template table has a nil key") : 0;
    case KTAB_FALSE:
    case KTAB_TRUE:
        return 0;
    case KTAB_INT:
        return bcverify_read_uleb(r, &lo) < 0 ?
            bcverify_reject(v, "template table integer malformed") : 0;
    default: /* KTAB_NUM */
        if (bcverify_read_uleb(r, &lo) < 0 || bcverify_read_uleb(r, &hi) < 0)
            return bcverify_reject(v, "template table number malformed");
        if (is_nan(lo, hi))
            return bcverify_reject(v, "template table holds a NaN %s", is_key ? "key" : "value");
        return 0;
    }
}

static int read_template_table(struct verifier *v, struct reader *r)
{
    uint32_t narray, nhash;
    if (bcverify_read_uleb(r, &narray) < 0 || bcverify_read_uleb(r, &nhash) < 0)
        return bcverify_reject(v, "template table header malformed");
    /* Every entry takes at least one byte, two for a hash pair. */
    if (narray > bcverify_read_bytes_left(r) || nhash > bcverify_read_bytes_left(r) / 2)
        return bcverify_reject(v, "template table sizes %u/%u exceed its prototype", narray, nhash);
    for (uint32_t i = 0; i < narray; i++)
        if (read_table_item(v, r, 0) < 0)
            return -1;
    for (uint32_t i = 0; i < nhash; i++) {
        const unsigned char *value;
        if (read_table_item(v, r, 1) < 0)
            return -1;
        value = r->p;
        if (read_table_item(v, r, 0) < 0)
            return -1;
        if (*value == KTAB_NIL)   /* the writer never stores nil values */
            return bcverify_reject(v, "template table has a nil hash value");
    }
    return 0;
}

/* ---- Child prototypes ------------------------------------------------ */

/* Children precede their parent in the dump; each CHILD constant claims the latest. */
static int adopt_child(struct func *f, uint32_t operand)
{
    struct verifier *v = f->v;
    size_t idx;
    if (v->depth == 0)
        return bcverify_reject(v, "child prototype constant %u but no prototype left to claim",
                               operand);
    idx = v->stack[--v->depth];
    f->kgc_child[operand] = idx;
    return bcverify_flow_check_child_upvalues(f, &v->protos[idx]);
}

/* ---- Constant sections ----------------------------------------------- */

static int read_gc_constants(struct func *f, struct reader *r)
{
    uint32_t nchild = 0;
    for (uint32_t i = 0; i < f->sizekgc; i++) {
        uint32_t operand = f->sizekgc - 1 - i;   /* operands count from the end */
        uint32_t tp;
        if (bcverify_read_uleb(r, &tp) < 0)
            return bcverify_reject(f->v, "GC constant %u truncated", operand);
        if (tp >= KGC_STR) {
            f->kgc_kind[operand] = K_STR;
            if (bcverify_read_skip_bytes(r, tp - KGC_STR, NULL) < 0)
                return bcverify_reject(f->v, "string constant %u runs past its prototype", operand);
        } else if (tp == KGC_TAB) {
            f->kgc_kind[operand] = K_TAB;
            if (read_template_table(f->v, r) < 0)
                return -1;
        } else if (tp == KGC_CHILD) {
            f->kgc_kind[operand] = K_CHILD;
            nchild++;
            if (adopt_child(f, operand) < 0)
                return -1;
        } else {
            return bcverify_reject(f->v, "FFI cdata constant %u refused", operand);
        }
    }
    if ((nchild > 0) != ((f->pt->flags & PROTO_CHILD) != 0))
        return bcverify_reject(f->v, "child flag does not match %u child constants", nchild);
    return 0;
}

static int read_number_constants(struct func *f, struct reader *r)
{
    for (uint32_t i = 0; i < f->sizekn; i++) {
        struct knum *k = &f->knum[i];
        if (read_uleb33(r, &k->lo, &k->is_double) < 0)
            return bcverify_reject(f->v, "number constant %u malformed", i);
        k->hi = 0;
        if (k->is_double) {
            if (bcverify_read_uleb(r, &k->hi) < 0)
                return bcverify_reject(f->v, "number constant %u malformed", i);
            if (is_nan(k->lo, k->hi))
                return bcverify_reject(f->v, "number constant %u is a NaN", i);
        }
    }
    return 0;
}

/* ---- Debug info ------------------------------------------------------ */

static int skip_c_string(struct reader *r)
{
    const unsigned char *nul = memchr(r->p, 0, bcverify_read_bytes_left(r));
    if (!nul)
        return -1;
    r->p = nul + 1;
    return 0;
}

static int check_line_info(struct func *f, struct reader *d, uint32_t numline)
{
    unsigned width = numline < 256 ? 1 : numline < 65536 ? 2 : 4;
    const unsigned char *li;
    if (bcverify_read_skip_bytes(d, (size_t)(f->sizebc - 1) * width, &li) < 0)
        return bcverify_reject(f->v, "line info larger than the debug section");
    for (uint32_t i = 0; i + 1 < f->sizebc; i++) {
        uint32_t delta = li[i * width];
        for (unsigned b = 1; b < width; b++)
            delta |= (uint32_t)li[i * width + b] << (8 * b);
        if (delta > numline)
            return bcverify_reject_at(f, i + 1, "line delta %u beyond the function's %u lines",
                                      delta, numline);
    }
    return 0;
}

/* Upvalue names, then (name|code, start delta, length)* and a 0 byte, filling the section. */
static int check_names(struct func *f, struct reader *d)
{
    for (unsigned k = 0; k < f->pt->sizeuv; k++)
        if (skip_c_string(d) < 0)
            return bcverify_reject(f->v, "upvalue name %u not terminated in the debug section", k);
    for (;;) {
        uint32_t code, start, length;
        if (read_byte(d, &code) < 0)
            return bcverify_reject(f->v, "variable info not terminated in the debug section");
        if (code == 0)
            break;
        if (code >= VARNAME_CODES && skip_c_string(d) < 0)
            return bcverify_reject(f->v, "variable name not terminated in the debug section");
        if (bcverify_read_uleb(d, &start) < 0 || bcverify_read_uleb(d, &length) < 0)
            return bcverify_reject(f->v, "variable range malformed");
    }
    if (bcverify_read_bytes_left(d) != 0)
        return bcverify_reject(f->v, "%zu stray bytes after variable info",
                               bcverify_read_bytes_left(d));
    return 0;
}

static int check_debug_info(struct func *f, struct reader *r, uint32_t sizedbg, uint32_t numline)
{
    struct reader d;
    if (bcverify_read_skip_bytes(r, sizedbg, &d.p) < 0)
        return bcverify_reject(f->v, "debug section of %u bytes runs past its prototype", sizedbg);
    d.end = d.p + sizedbg;
    if (check_line_info(f, &d, numline) < 0)
        return -1;
    return check_names(f, &d);
}

/* ---- Prototype record ------------------------------------------------ */

int bcverify_read_proto_header(struct verifier *v, struct reader *r, struct header *h)
{
    memset(h, 0, sizeof *h);
    if (read_byte(r, &h->flags) < 0 || read_byte(r, &h->numparams) < 0 ||
        read_byte(r, &h->framesize) < 0 || read_byte(r, &h->sizeuv) < 0 ||
        bcverify_read_uleb(r, &h->sizekgc) < 0 || bcverify_read_uleb(r, &h->sizekn) < 0 ||
        bcverify_read_uleb(r, &h->nbc) < 0)
        return bcverify_reject(v, "prototype header truncated");
    if (!v->strip && bcverify_read_uleb(r, &h->sizedbg) < 0)
        return bcverify_reject(v, "prototype header truncated");
    if (h->sizedbg && (bcverify_read_uleb(r, &h->firstline) < 0 ||
                       bcverify_read_uleb(r, &h->numline) < 0))
        return bcverify_reject(v, "prototype header truncated");
    return 0;
}

int bcverify_read_check_proto_limits(struct verifier *v, const struct header *h)
{
    if (h->flags & PROTO_FFI)
        return bcverify_reject(v, "prototype uses FFI constants");
    if (h->flags & ~(uint32_t)(PROTO_CHILD | PROTO_VARARG))
        return bcverify_reject(v, "unknown prototype flags 0x%x", h->flags);
    if (h->framesize >= MAX_SLOTS || h->framesize < 1)
        return bcverify_reject(v, "framesize %u out of range", h->framesize);
    if (h->numparams > h->framesize)
        return bcverify_reject(v, "%u parameters exceed framesize %u", h->numparams, h->framesize);
    if (h->sizeuv > MAX_UPVAL)
        return bcverify_reject(v, "%u upvalues exceed the limit of %d", h->sizeuv, MAX_UPVAL);
    if (h->sizekgc > MAX_CONSTS || h->sizekn > MAX_CONSTS)
        return bcverify_reject(v, "constant counts %u/%u exceed the limit", h->sizekgc, h->sizekn);
    if (h->nbc < 1 || h->nbc >= MAX_BCINS)
        return bcverify_reject(v, "instruction count %u out of range", h->nbc);
    return 0;
}

int bcverify_read_proto_body(struct func *f, struct reader *r, const struct header *h)
{
    if (bcverify_read_skip_bytes(r, (size_t)h->nbc * 4, &f->code) < 0)
        return bcverify_reject(f->v, "%u instructions run past the prototype", h->nbc);
    if (bcverify_read_skip_bytes(r, (size_t)h->sizeuv * 2, &f->pt->uv) < 0)
        return bcverify_reject(f->v, "upvalue descriptors run past the prototype");
    if (read_gc_constants(f, r) < 0 || read_number_constants(f, r) < 0)
        return -1;
    if (h->sizedbg && check_debug_info(f, r, h->sizedbg, h->numline) < 0)
        return -1;
    if (bcverify_read_bytes_left(r) != 0)
        return bcverify_reject(f->v, "%zu unparsed bytes at the end of the prototype",
                               bcverify_read_bytes_left(r));
    return 0;
}
