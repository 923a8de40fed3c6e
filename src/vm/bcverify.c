/*
 * bcverify: structural verifier for LuaJIT 2.1 (GC64/FR2) bytecode dumps.
 *
 * LuaJIT's loader parses a dump but trusts every instruction in it: a
 * constant index, a register number or a jump offset is used as-is by the
 * interpreter.  The verifier re-parses the dump byte by byte and accepts it
 * only if every prototype has the shape the LuaJIT parser itself emits:
 * operands inside the frame and the constant arrays, constants of the kind
 * the opcode expects, jumps inside the function, loops entered only through
 * their own entry with their control slots left alone.
 *
 * This file is the entry: the dump header, the walk over prototype records
 * (children first, kept on a stack until their parent claims them) and the
 * order of the checks on each (bcverify_internal.h draws the files).
 * The verifier must never trust a length before checking it against the
 * bytes left, never read outside buf[0..len), never include Lua headers or
 * call into the engine (the supervisor links it too), and never keep state
 * between calls.  It must stay linear in the size of the dump.
 */
#include "vm/bcverify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/bcverify_internal.h"

const char *bcverify_opname(unsigned op)
{
    return op < OP_COUNT ? bcverify_ops_info[op].name : NULL;
}

/* ---- Prototype ------------------------------------------------------- */

static void name_function(struct verifier *v, size_t index, const struct header *h)
{
    if (h->sizedbg && h->firstline > 0)
        snprintf(v->where, sizeof v->where, "function at line %u", h->firstline);
    else if (h->sizedbg)
        snprintf(v->where, sizeof v->where, "main chunk");
    else
        snprintf(v->where, sizeof v->where, "function #%zu", index);
}

static void free_func(struct func *f)
{
    free(f->kgc_kind);
    free(f->kgc_child);
    free(f->knum);
    free(f->target);
    free(f->jumps_in);
    free(f->region_at);
    free(f->owner);
    free(f->regions);
}

static int alloc_func(struct func *f)
{
    size_t n = (size_t)f->sizebc + 1;
    f->kgc_kind = malloc(f->sizekgc + 1);
    f->kgc_child = calloc(f->sizekgc + 1, sizeof *f->kgc_child);
    f->knum = calloc(f->sizekn + 1, sizeof *f->knum);
    f->target = malloc(n * sizeof *f->target);
    f->jumps_in = calloc(n, sizeof *f->jumps_in);
    f->region_at = malloc(n * sizeof *f->region_at);
    f->owner = malloc(n * sizeof *f->owner);
    f->regions = calloc(n, sizeof *f->regions);
    if (!f->kgc_kind || !f->kgc_child || !f->knum || !f->target || !f->jumps_in ||
        !f->region_at || !f->owner || !f->regions)
        return bcverify_reject(f->v, "out of memory");
    for (size_t i = 0; i < n; i++)
        f->target[i] = f->region_at[i] = f->owner[i] = -1;
    return 0;
}

/* Operands first, then loop shapes, then the rules over the graph. */
static int verify_instructions(struct func *f)
{
    for (uint32_t pc = 1; pc < f->sizebc; pc++)
        if (bcverify_ops_check_instruction(f, pc) < 0)
            return -1;
    if (bcverify_loops_match(f) < 0)
        return -1;
    bcverify_flow_count_incoming_jumps(f);
    if (bcverify_loops_check_bodies(f) < 0 || bcverify_flow_check_edges(f) < 0)
        return -1;
    return bcverify_flow_check_slots(f);
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Reads one length-delimited prototype record and leaves it on the child stack. */
static int read_prototype(struct verifier *v, struct reader *r)
{
    size_t index = v->nprotos;
    struct header h;
    struct func f;
    int rc;
    memset(&f, 0, sizeof f);
    snprintf(v->where, sizeof v->where, "function #%zu", index);
    if (grow((void **)&v->protos, &v->protocap, index + 1, sizeof *v->protos) < 0 ||
        grow((void **)&v->stack, &v->stackcap, v->depth + 1, sizeof *v->stack) < 0)
        return bcverify_reject(v, "out of memory");
    if (bcverify_read_proto_header(v, r, &h) < 0)
        return -1;
    name_function(v, index, &h);
    if (bcverify_read_check_proto_limits(v, &h) < 0)
        return -1;
    f.v = v;
    f.index = index;
    f.pt = &v->protos[index];
    memset(f.pt, 0, sizeof *f.pt);
    f.pt->flags = h.flags;
    f.pt->numparams = h.numparams;
    f.pt->framesize = h.framesize;
    f.pt->sizeuv = h.sizeuv;
    f.sizebc = h.nbc + 1;
    f.sizekgc = h.sizekgc;
    f.sizekn = h.sizekn;
    rc = alloc_func(&f);
    if (rc == 0)
        rc = bcverify_read_proto_body(&f, r, &h);
    if (rc == 0)
        rc = verify_instructions(&f);
    if (rc == 0)
        rc = bcverify_flow_check_immutable_upvalues(&f);
    free_func(&f);
    if (rc == 0) {
        v->nprotos++;
        v->stack[v->depth++] = index;
    }
    return rc;
}

/* ---- Dump ------------------------------------------------------------ */

static int read_dump_header(struct verifier *v, struct reader *r)
{
    uint32_t flags, namelen;
    snprintf(v->where, sizeof v->where, "header");
    if (bcverify_read_bytes_left(r) < 4 || r->p[0] != 0x1b || r->p[1] != 'L' || r->p[2] != 'J')
        return bcverify_reject(v, "not a LuaJIT bytecode dump");
    if (r->p[3] != DUMP_VERSION)
        return bcverify_reject(v, "bytecode version %u, need %d", r->p[3], DUMP_VERSION);
    r->p += 4;
    if (bcverify_read_uleb(r, &flags) < 0)
        return bcverify_reject(v, "flags truncated");
    if (flags & DUMP_F_BE)
        return bcverify_reject(v, "big-endian dump refused");
    if (flags & DUMP_F_FFI)
        return bcverify_reject(v, "dump uses FFI, refused");
    if (!(flags & DUMP_F_FR2))
        return bcverify_reject(v, "dump is not for a GC64/FR2 engine");
    if (flags & ~(uint32_t)(DUMP_F_FR2 | DUMP_F_STRIP))
        return bcverify_reject(v, "unknown dump flags 0x%x", flags);
    v->strip = (flags & DUMP_F_STRIP) != 0;
    if (!v->strip && (bcverify_read_uleb(r, &namelen) < 0 ||
                      bcverify_read_skip_bytes(r, namelen, NULL) < 0))
        return bcverify_reject(v, "chunk name truncated");
    return 0;
}

static int read_prototypes(struct verifier *v, struct reader *r)
{
    for (;;) {
        uint32_t len;
        struct reader rec;
        snprintf(v->where, sizeof v->where, "function #%zu", v->nprotos);
        if (bcverify_read_uleb(r, &len) < 0)
            return bcverify_reject(v, "prototype length truncated");
        if (len == 0)
            break;
        if (bcverify_read_skip_bytes(r, len, &rec.p) < 0)
            return bcverify_reject(v, "prototype length %u exceeds the %zu bytes left", len,
                                   bcverify_read_bytes_left(r));
        rec.end = rec.p + len;
        if (read_prototype(v, &rec) < 0)
            return -1;
    }
    snprintf(v->where, sizeof v->where, "dump");
    if (bcverify_read_bytes_left(r) != 0)
        return bcverify_reject(v, "%zu trailing bytes after the end marker",
                               bcverify_read_bytes_left(r));
    if (v->depth != 1)
        return bcverify_reject(v, "%zu prototypes left unclaimed at the end (need exactly 1)",
                               v->depth);
    return 0;
}

int bcverify_chunk(const unsigned char *buf, size_t len, char *err, size_t errlen)
{
    struct verifier v;
    struct reader r;
    int rc;
    memset(&v, 0, sizeof v);
    v.err = err;
    v.errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
    if (!buf)
        return bcverify_reject(&v, "no input");
    r.p = buf;
    r.end = buf + len;
    rc = read_dump_header(&v, &r);
    if (rc == 0)
        rc = read_prototypes(&v, &r);
    free(v.protos);
    free(v.stack);
    return rc;
}
