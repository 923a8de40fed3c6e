/*
 * bcverify: structural verifier for LuaJIT 2.1 (GC64/FR2) bytecode dumps.
 *
 * LuaJIT's loader parses a dump but trusts every instruction in it: a
 * constant index, a register number or a jump offset is used as-is by the
 * interpreter.  This file re-parses the dump byte by byte and accepts it
 * only if every prototype has the shape the LuaJIT parser itself emits:
 * operands inside the frame and the constant arrays, constants of the kind
 * the opcode expects, jumps inside the function, loops entered only through
 * their own entry with their control slots left alone.
 *
 * It must never trust a length before checking it against the bytes left,
 * never read outside buf[0..len), never include Lua headers or call into
 * the engine (the supervisor links it too), and never keep state between
 * calls.  It must stay linear in the size of the dump.
 */
#include "bcverify.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Engine facts (OpenResty LuaJIT 2.1-20230119, GC64) ------------- */

enum {
    DUMP_VERSION = 2,
    DUMP_F_BE = 0x01,
    DUMP_F_STRIP = 0x02,
    DUMP_F_FFI = 0x04,
    DUMP_F_FR2 = 0x08,

    MAX_SLOTS = 250,          /* the parser refuses a frame of this size */
    MAX_UPVAL = 120,
    MAX_BCINS = 1 << 26,
    MAX_CONSTS = 65536,       /* a 16-bit operand addresses them */
    MAX_TSETM_INDEX = 1 << 27,

    JUMP_BIAS = 0x8000,

    PROTO_CHILD = 0x01,
    PROTO_VARARG = 0x02,
    PROTO_FFI = 0x04,

    UV_LOCAL = 0x8000,
    UV_IMMUTABLE = 0x4000,

    KGC_CHILD = 0, KGC_TAB, KGC_I64, KGC_U64, KGC_COMPLEX, KGC_STR,
    KTAB_NIL = 0, KTAB_FALSE, KTAB_TRUE, KTAB_INT, KTAB_NUM, KTAB_STR,

    VARNAME_CODES = 7,        /* varinfo bytes below this are built-in names */

    ANY_SLOT = 255            /* upper end of "from here to the stack top" */
};

/* Operand kinds, after lj_bc.h's BCMode. */
enum mode {
    M_NONE, M_DST, M_BASE, M_VAR, M_RBASE, M_UV, M_LIT, M_LITS, M_PRI,
    M_NUM, M_STR, M_TAB, M_FUNC, M_JUMP, M_CDATA
};

/*
 * The opcode list in the engine's numbering.  The last column says whether
 * the parser emits the opcode: run-time variants (the I and J loop and function
 * headers), KCDATA (FFI refused) and the ops only used by internal builtins
 * (ISTYPE, ISNUM, TGETR, TSETR) are never acceptable in client bytecode.
 */
#define OPCODES(X) \
    X(ISLT, VAR, NONE, VAR, 1)    X(ISGE, VAR, NONE, VAR, 1) \
    X(ISLE, VAR, NONE, VAR, 1)    X(ISGT, VAR, NONE, VAR, 1) \
    X(ISEQV, VAR, NONE, VAR, 1)   X(ISNEV, VAR, NONE, VAR, 1) \
    X(ISEQS, VAR, NONE, STR, 1)   X(ISNES, VAR, NONE, STR, 1) \
    X(ISEQN, VAR, NONE, NUM, 1)   X(ISNEN, VAR, NONE, NUM, 1) \
    X(ISEQP, VAR, NONE, PRI, 1)   X(ISNEP, VAR, NONE, PRI, 1) \
    X(ISTC, DST, NONE, VAR, 1)    X(ISFC, DST, NONE, VAR, 1) \
    X(IST, NONE, NONE, VAR, 1)    X(ISF, NONE, NONE, VAR, 1) \
    X(ISTYPE, VAR, NONE, LIT, 0)  X(ISNUM, VAR, NONE, LIT, 0) \
    X(MOV, DST, NONE, VAR, 1)     X(NOT, DST, NONE, VAR, 1) \
    X(UNM, DST, NONE, VAR, 1)     X(LEN, DST, NONE, VAR, 1) \
    X(ADDVN, DST, VAR, NUM, 1)    X(SUBVN, DST, VAR, NUM, 1) \
    X(MULVN, DST, VAR, NUM, 1)    X(DIVVN, DST, VAR, NUM, 1) \
    X(MODVN, DST, VAR, NUM, 1)    X(ADDNV, DST, VAR, NUM, 1) \
    X(SUBNV, DST, VAR, NUM, 1)    X(MULNV, DST, VAR, NUM, 1) \
    X(DIVNV, DST, VAR, NUM, 1)    X(MODNV, DST, VAR, NUM, 1) \
    X(ADDVV, DST, VAR, VAR, 1)    X(SUBVV, DST, VAR, VAR, 1) \
    X(MULVV, DST, VAR, VAR, 1)    X(DIVVV, DST, VAR, VAR, 1) \
    X(MODVV, DST, VAR, VAR, 1)    X(POW, DST, VAR, VAR, 1) \
    X(CAT, DST, RBASE, RBASE, 1)  X(KSTR, DST, NONE, STR, 1) \
    X(KCDATA, DST, NONE, CDATA, 0) X(KSHORT, DST, NONE, LITS, 1) \
    X(KNUM, DST, NONE, NUM, 1)    X(KPRI, DST, NONE, PRI, 1) \
    X(KNIL, BASE, NONE, BASE, 1)  X(UGET, DST, NONE, UV, 1) \
    X(USETV, UV, NONE, VAR, 1)    X(USETS, UV, NONE, STR, 1) \
    X(USETN, UV, NONE, NUM, 1)    X(USETP, UV, NONE, PRI, 1) \
    X(UCLO, RBASE, NONE, JUMP, 1) X(FNEW, DST, NONE, FUNC, 1) \
    X(TNEW, DST, NONE, LIT, 1)    X(TDUP, DST, NONE, TAB, 1) \
    X(GGET, DST, NONE, STR, 1)    X(GSET, VAR, NONE, STR, 1) \
    X(TGETV, DST, VAR, VAR, 1)    X(TGETS, DST, VAR, STR, 1) \
    X(TGETB, DST, VAR, LIT, 1)    X(TGETR, DST, VAR, VAR, 0) \
    X(TSETV, VAR, VAR, VAR, 1)    X(TSETS, VAR, VAR, STR, 1) \
    X(TSETB, VAR, VAR, LIT, 1)    X(TSETM, BASE, NONE, NUM, 1) \
    X(TSETR, VAR, VAR, VAR, 0)    X(CALLM, BASE, LIT, LIT, 1) \
    X(CALL, BASE, LIT, LIT, 1)    X(CALLMT, BASE, NONE, LIT, 1) \
    X(CALLT, BASE, NONE, LIT, 1)  X(ITERC, BASE, LIT, LIT, 1) \
    X(ITERN, BASE, LIT, LIT, 1)   X(VARG, BASE, LIT, LIT, 1) \
    X(ISNEXT, BASE, NONE, JUMP, 1) X(RETM, BASE, NONE, LIT, 1) \
    X(RET, RBASE, NONE, LIT, 1)   X(RET0, RBASE, NONE, LIT, 1) \
    X(RET1, RBASE, NONE, LIT, 1)  X(FORI, BASE, NONE, JUMP, 1) \
    X(JFORI, BASE, NONE, JUMP, 0) X(FORL, BASE, NONE, JUMP, 1) \
    X(IFORL, BASE, NONE, JUMP, 0) X(JFORL, BASE, NONE, LIT, 0) \
    X(ITERL, BASE, NONE, JUMP, 1) X(IITERL, BASE, NONE, JUMP, 0) \
    X(JITERL, BASE, NONE, LIT, 0) X(LOOP, RBASE, NONE, JUMP, 1) \
    X(ILOOP, RBASE, NONE, JUMP, 0) X(JLOOP, RBASE, NONE, LIT, 0) \
    X(JMP, RBASE, NONE, JUMP, 1)  X(FUNCF, RBASE, NONE, NONE, 0) \
    X(IFUNCF, RBASE, NONE, NONE, 0) X(JFUNCF, RBASE, NONE, LIT, 0) \
    X(FUNCV, RBASE, NONE, NONE, 0) X(IFUNCV, RBASE, NONE, NONE, 0) \
    X(JFUNCV, RBASE, NONE, LIT, 0) X(FUNCC, RBASE, NONE, NONE, 0) \
    X(FUNCCW, RBASE, NONE, NONE, 0)

enum opcode {
#define AS_ENUM(name, a, b, cd, ok) OP_##name,
    OPCODES(AS_ENUM)
#undef AS_ENUM
    OP_COUNT
};

struct opinfo {
    const char *name;
    unsigned char a, b, cd, emitted_by_parser;
};

static const struct opinfo OPS[OP_COUNT] = {
#define AS_INFO(name, ma, mb, mcd, ok) { #name, M_##ma, M_##mb, M_##mcd, ok },
    OPCODES(AS_INFO)
#undef AS_INFO
};

const char *bcverify_opname(unsigned op)
{
    return op < OP_COUNT ? OPS[op].name : NULL;
}

/* ---- Error reporting ------------------------------------------------- */

/* What we remember about a prototype once it has been read. */
struct proto {
    unsigned flags, numparams, framesize, sizeuv;
    const unsigned char *uv;        /* sizeuv little-endian 16-bit words */
    uint64_t uv_written[2];         /* upvalues it or a descendant assigns */
    int in_use;                     /* still on the child stack */
};

struct verifier {
    char *err;
    size_t errlen;
    int strip;
    struct proto *protos;           /* every prototype, in dump order */
    size_t nprotos, protocap;
    size_t *stack;                  /* prototypes not yet claimed by a parent */
    size_t depth, stackcap;
    char where[64];                 /* "function at line 12" etc. */
};

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

static int reject(struct verifier *v, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* Formats "<where>: <reason>" into the caller's buffer; always returns -1. */
static int reject(struct verifier *v, const char *fmt, ...)
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

/* ---- Bounded byte reader --------------------------------------------- */

struct reader {
    const unsigned char *p, *end;
};

static size_t bytes_left(const struct reader *r)
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

static int skip_bytes(struct reader *r, size_t n, const unsigned char **start)
{
    if (n > bytes_left(r))
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
static int read_uleb(struct reader *r, uint32_t *out)
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

struct knum {
    uint32_t lo, hi;
    int is_double;
};

enum kgc_kind { K_STR, K_TAB, K_CHILD };

/* One key or value of a template table; kinds the parser can fold only. */
static int read_table_item(struct verifier *v, struct reader *r, int is_key)
{
    uint32_t tp, lo, hi;
    if (read_uleb(r, &tp) < 0)
        return reject(v, "template table truncated");
    if (tp >= KTAB_STR)
        return skip_bytes(r, tp - KTAB_STR, NULL) < 0 ?
            reject(v, "template table string runs past its prototype") : 0;
    switch (tp) {
    case KTAB_NIL:
        return is_key ? reject(v, "template table has a nil key") : 0;
    case KTAB_FALSE:
    case KTAB_TRUE:
        return 0;
    case KTAB_INT:
        return read_uleb(r, &lo) < 0 ? reject(v, "template table integer malformed") : 0;
    default: /* KTAB_NUM */
        if (read_uleb(r, &lo) < 0 || read_uleb(r, &hi) < 0)
            return reject(v, "template table number malformed");
        if (is_nan(lo, hi))
            return reject(v, "template table holds a NaN %s", is_key ? "key" : "value");
        return 0;
    }
}

static int read_template_table(struct verifier *v, struct reader *r)
{
    uint32_t narray, nhash;
    if (read_uleb(r, &narray) < 0 || read_uleb(r, &nhash) < 0)
        return reject(v, "template table header malformed");
    /* Every entry takes at least one byte, two for a hash pair. */
    if (narray > bytes_left(r) || nhash > bytes_left(r) / 2)
        return reject(v, "template table sizes %u/%u exceed its prototype", narray, nhash);
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
            return reject(v, "template table has a nil hash value");
    }
    return 0;
}

/* ---- Per-prototype state -------------------------------------------- */

struct region {                 /* a for loop's protected pcs */
    uint32_t entry;             /* FORI, or the JMP/ISNEXT before the body */
    uint32_t start, end;        /* body plus loop control, inclusive */
    uint32_t control_pc;        /* first loop-control instruction */
    uint32_t slot;              /* first of its three control slots */
};

struct func {
    struct verifier *v;
    struct proto *pt;
    size_t index;
    const unsigned char *code;  /* instruction 1 (pc 0 is not stored) */
    uint32_t sizebc;            /* including the synthesized header */
    uint32_t sizekgc, sizekn;
    unsigned char *kgc_kind;    /* indexed by operand value */
    size_t *kgc_child;          /* prototype index for K_CHILD */
    struct knum *knum;
    int32_t *target;            /* jump target per pc, or -1 */
    uint32_t *jumps_in;         /* non-fallthrough edges arriving per pc */
    int32_t *region_at;         /* region starting at pc, or -1 */
    int32_t *owner;             /* innermost region holding pc, or -1 */
    struct region *regions;
    uint32_t nregions;
};

static uint32_t instruction_at(const struct func *f, uint32_t pc)
{
    const unsigned char *p = f->code + 4 * (size_t)(pc - 1);
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

struct ins {
    uint32_t op, a, b, c, d;
};

static struct ins decode(const struct func *f, uint32_t pc)
{
    uint32_t w = instruction_at(f, pc);
    struct ins i = { w & 0xff, (w >> 8) & 0xff, w >> 24, (w >> 16) & 0xff, w >> 16 };
    return i;
}

static int reject_at(struct func *f, uint32_t pc, const char *fmt, ...) PRINTF_LIKE(3, 4);

static int reject_at(struct func *f, uint32_t pc, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return reject(f->v, "pc %u: %s", pc, msg);
}

/* ---- Operand checks -------------------------------------------------- */

static int is_conditional(uint32_t op)
{
    return op <= OP_ISF;
}

static int is_jump_op(uint32_t op)
{
    return op == OP_UCLO || op == OP_ISNEXT || op == OP_FORI || op == OP_FORL ||
           op == OP_ITERL || op == OP_LOOP || op == OP_JMP;
}

static int falls_through(uint32_t op)
{
    return !(op == OP_JMP || op == OP_UCLO || op == OP_ISNEXT || op == OP_CALLT ||
             op == OP_CALLMT || op == OP_RETM || op == OP_RET || op == OP_RET0 ||
             op == OP_RET1);
}

static int check_slot(struct func *f, uint32_t pc, uint32_t slot, const char *what)
{
    if (slot >= f->pt->framesize)
        return reject_at(f, pc, "%s register %u outside frame (framesize %u)",
                         what, slot, f->pt->framesize);
    return 0;
}

/* A range of slots [lo, hi] that must lie inside the frame. */
static int check_range(struct func *f, uint32_t pc, uint32_t lo, uint32_t hi, const char *what)
{
    if (hi < lo)
        return reject_at(f, pc, "%s register range %u..%u reversed", what, lo, hi);
    return check_slot(f, pc, hi, what);
}

static int check_gc_constant(struct func *f, uint32_t pc, const struct ins *in, uint32_t mode,
                             uint32_t value)
{
    static const char *const want[] = { [M_STR] = "string", [M_TAB] = "template table",
                                        [M_FUNC] = "child prototype" };
    static const unsigned char kind_for[] = { [M_STR] = K_STR, [M_TAB] = K_TAB,
                                              [M_FUNC] = K_CHILD };
    if (value >= f->sizekgc)
        return reject_at(f, pc, "%s constant %u out of range (%u GC constants)",
                         OPS[in->op].name, value, f->sizekgc);
    if (f->kgc_kind[value] != kind_for[mode])
        return reject_at(f, pc, "%s constant %u is not a %s",
                         OPS[in->op].name, value, want[mode]);
    return 0;
}

/* Checks the C/D operand by its mode; computes the jump target if any. */
static int check_cd_operand(struct func *f, uint32_t pc, const struct ins *in)
{
    uint32_t mode = OPS[in->op].cd;
    uint32_t value = OPS[in->op].b == M_NONE ? in->d : in->c;
    switch (mode) {
    case M_VAR:
        return check_slot(f, pc, value, OPS[in->op].name);
    case M_UV:
        if (value >= f->pt->sizeuv)
            return reject_at(f, pc, "%s upvalue %u out of range (%u upvalues)",
                             OPS[in->op].name, value, f->pt->sizeuv);
        return 0;
    case M_PRI:
        if (value > 2)
            return reject_at(f, pc, "%s primitive %u not nil/false/true", OPS[in->op].name, value);
        return 0;
    case M_NUM:
        if (value >= f->sizekn)
            return reject_at(f, pc, "%s constant %u out of range (%u constants)",
                             OPS[in->op].name, value, f->sizekn);
        return 0;
    case M_STR:
    case M_TAB:
    case M_FUNC:
        return check_gc_constant(f, pc, in, mode, value);
    case M_JUMP: {
        int64_t t = (int64_t)pc + 1 + (int64_t)in->d - JUMP_BIAS;
        if (t < 1 || t >= f->sizebc)
            return reject_at(f, pc, "%s target %lld outside the function (%u instructions)",
                             OPS[in->op].name, (long long)t, f->sizebc);
        f->target[pc] = (int32_t)t;
        return 0;
    }
    default:                    /* literals and bases: checked per opcode */
        return 0;
    }
}

static int check_a_operand(struct func *f, uint32_t pc, const struct ins *in)
{
    switch (OPS[in->op].a) {
    case M_DST:
    case M_VAR:
        return check_slot(f, pc, in->a, OPS[in->op].name);
    case M_UV:
        if (in->a >= f->pt->sizeuv)
            return reject_at(f, pc, "%s upvalue %u out of range (%u upvalues)",
                             OPS[in->op].name, in->a, f->pt->sizeuv);
        return 0;
    case M_NONE:
        if (in->a != 0)
            return reject_at(f, pc, "%s has a non-zero unused operand", OPS[in->op].name);
        return 0;
    default:
        return 0;
    }
}

/* Register ranges of the multi-slot opcodes (FR2: a call's A+1 is the frame link). */
static int check_call_like(struct func *f, uint32_t pc, const struct ins *in)
{
    const char *name = OPS[in->op].name;
    switch (in->op) {
    case OP_CALL:
        if (in->c < 1)
            return reject_at(f, pc, "CALL argument count malformed");
        /* fall through */
    case OP_CALLM:
        if (check_slot(f, pc, in->a + 1 + in->c - (in->op == OP_CALL), name) < 0)
            return -1;
        if (in->b >= 2 && check_slot(f, pc, in->a + in->b - 2, name) < 0)
            return -1;
        return check_slot(f, pc, in->a + 1, name);
    case OP_CALLT:
        if (in->d < 1)
            return reject_at(f, pc, "CALLT argument count malformed");
        return check_slot(f, pc, in->a + (in->d > 1 ? in->d : 1), name);
    case OP_CALLMT:
        return check_slot(f, pc, in->a + 1 + (in->d > 0 ? in->d : 1), name);
    case OP_ITERC:
    case OP_ITERN:
        if (in->a < 3 || in->c != 3 || in->b < 2 || (in->op == OP_ITERN && in->b > 3))
            return reject_at(f, pc, "%s operands malformed", name);
        if (check_slot(f, pc, in->a + 3, name) < 0)
            return -1;
        return check_slot(f, pc, in->a + in->b - 2, name);
    case OP_VARG:
        if (!(f->pt->flags & PROTO_VARARG))
            return reject_at(f, pc, "VARG in a function without varargs");
        if (in->c != f->pt->numparams)
            return reject_at(f, pc, "VARG parameter count %u != numparams %u",
                             in->c, f->pt->numparams);
        return check_slot(f, pc, in->b >= 2 ? in->a + in->b - 2 : in->a, name);
    default:
        return 0;
    }
}

static int check_tsetm_constant(struct func *f, uint32_t pc, const struct ins *in)
{
    const struct knum *k = &f->knum[in->d];
    /* The VM adds this raw low word to the array index without a range check. */
    if (!k->is_double || k->hi != 0x43300000u || k->lo >= MAX_TSETM_INDEX)
        return reject_at(f, pc, "TSETM start index constant %u malformed", in->d);
    return 0;
}

static int check_special_operands(struct func *f, uint32_t pc, const struct ins *in)
{
    uint32_t fs = f->pt->framesize;
    switch (in->op) {
    case OP_CAT:
        if (in->b >= in->c)
            return reject_at(f, pc, "CAT range %u..%u malformed", in->b, in->c);
        return check_slot(f, pc, in->c, "CAT");
    case OP_KNIL:
        return check_range(f, pc, in->a, in->d, "KNIL");
    case OP_TSETM:
        if (in->a < 1)
            return reject_at(f, pc, "TSETM without a table slot");
        if (check_slot(f, pc, in->a, "TSETM") < 0)
            return -1;
        return check_tsetm_constant(f, pc, in);
    case OP_RETM:
        return in->d > 0 ? check_slot(f, pc, in->a + in->d - 1, "RETM") : check_slot(f, pc, in->a, "RETM");
    case OP_RET:
        if (in->d < 1)
            return reject_at(f, pc, "RET result count malformed");
        return in->d >= 2 ? check_slot(f, pc, in->a + in->d - 2, "RET") : 0;
    case OP_RET0:
        if (in->d != 1 || in->a > fs)
            return reject_at(f, pc, "RET0 operands malformed");
        return 0;
    case OP_RET1:
        if (in->d != 2)
            return reject_at(f, pc, "RET1 result count malformed");
        return check_slot(f, pc, in->a, "RET1");
    case OP_FORI:
    case OP_FORL:
        return check_slot(f, pc, in->a + 3, OPS[in->op].name);
    case OP_ISNEXT:
    case OP_ITERL:
        if (in->a < 3)
            return reject_at(f, pc, "%s base %u leaves no room for control slots",
                             OPS[in->op].name, in->a);
        return check_slot(f, pc, in->a, OPS[in->op].name);
    case OP_UCLO:
    case OP_LOOP:
    case OP_JMP:
        if (in->a > fs)    /* A is a register level, may equal framesize */
            return reject_at(f, pc, "%s level %u above framesize %u", OPS[in->op].name, in->a, fs);
        return 0;
    default:
        return check_call_like(f, pc, in);
    }
}

static void note_upvalue_write(struct func *f, const struct ins *in)
{
    if (in->op >= OP_USETV && in->op <= OP_USETP)
        f->pt->uv_written[in->a >> 6] |= (uint64_t)1 << (in->a & 63);
}

static int check_instruction(struct func *f, uint32_t pc)
{
    struct ins in = decode(f, pc);
    if (in.op >= OP_COUNT)
        return reject_at(f, pc, "unknown opcode %u", in.op);
    if (!OPS[in.op].emitted_by_parser)
        return reject_at(f, pc, "opcode %s is not allowed in client bytecode", OPS[in.op].name);
    if (check_a_operand(f, pc, &in) < 0)
        return -1;
    if (OPS[in.op].b == M_VAR && check_slot(f, pc, in.b, OPS[in.op].name) < 0)
        return -1;
    if (check_cd_operand(f, pc, &in) < 0 || check_special_operands(f, pc, &in) < 0)
        return -1;
    /* A test's branch offset is read from the JMP that follows it. */
    if (is_conditional(in.op) && (pc + 1 >= f->sizebc || (instruction_at(f, pc + 1) & 0xff) != OP_JMP))
        return reject_at(f, pc, "%s not followed by JMP", OPS[in.op].name);
    if (falls_through(in.op) && pc + 1 >= f->sizebc)
        return reject_at(f, pc, "execution falls off the end of the function");
    note_upvalue_write(f, &in);
    return 0;
}

/* ---- Control flow ---------------------------------------------------- */

/* Successor pcs of pc; a test may also skip its JMP. */
static unsigned successors(const struct func *f, uint32_t pc, uint32_t out[2])
{
    uint32_t op = instruction_at(f, pc) & 0xff;
    unsigned n = 0;
    if (is_conditional(op)) {
        out[n++] = pc + 1;
        if (pc + 2 < f->sizebc)
            out[n++] = pc + 2;
        return n;
    }
    if (falls_through(op))
        out[n++] = pc + 1;
    if (is_jump_op(op) && op != OP_LOOP)  /* LOOP's target is only a JIT hint */
        out[n++] = (uint32_t)f->target[pc];
    return n;
}

static int is_fallthrough_edge(const struct func *f, uint32_t from, uint32_t to)
{
    return to == from + 1 && falls_through(instruction_at(f, from) & 0xff);
}

static void count_incoming_jumps(struct func *f)
{
    for (uint32_t pc = 1; pc < f->sizebc; pc++) {
        uint32_t succ[2];
        unsigned n = successors(f, pc, succ);
        for (unsigned i = 0; i < n; i++)
            if (!is_fallthrough_edge(f, pc, succ[i]))
                f->jumps_in[succ[i]]++;
    }
}

/* ---- Loop structure -------------------------------------------------- */

static int add_region(struct func *f, uint32_t pc, uint32_t entry, uint32_t end,
                      uint32_t control_pc, uint32_t slot)
{
    struct region *r = &f->regions[f->nregions];
    if (f->region_at[entry + 1] >= 0)
        return reject_at(f, pc, "two loops share a body start");
    r->entry = entry;
    r->start = entry + 1;
    r->end = end;
    r->control_pc = control_pc;
    r->slot = slot;
    f->region_at[entry + 1] = (int32_t)f->nregions++;
    return 0;
}

/* FORI A -> just past FORL A, whose target is just past the FORI. */
static int match_numeric_for(struct func *f, uint32_t pc, const struct ins *in)
{
    if (in->op == OP_FORI) {
        uint32_t forl = (uint32_t)f->target[pc] - 1;
        struct ins l;
        if (forl <= pc)
            return reject_at(f, pc, "FORI does not jump forward past its loop");
        l = decode(f, forl);
        if (l.op != OP_FORL || l.a != in->a || (uint32_t)f->target[forl] != pc + 1)
            return reject_at(f, pc, "FORI without a matching FORL");
        return add_region(f, pc, pc, forl, forl, in->a);
    }
    {   /* FORL */
        uint32_t fori = (uint32_t)f->target[pc] - 1;
        struct ins i;
        if (fori >= pc || fori < 1)
            return reject_at(f, pc, "FORL does not jump back into its loop");
        i = decode(f, fori);
        if (i.op != OP_FORI || i.a != in->a || (uint32_t)f->target[fori] != pc + 1)
            return reject_at(f, pc, "FORL without its FORI");
        return 0;
    }
}

/* JMP/ISNEXT A -> ITERC/ITERN A; ITERL A right after, jumping back past the entry. */
static int match_generic_for(struct func *f, uint32_t pc, const struct ins *in)
{
    if (in->op == OP_ITERC || in->op == OP_ITERN) {
        struct ins l = pc + 1 < f->sizebc ? decode(f, pc + 1) : (struct ins){ 0, 0, 0, 0, 0 };
        if (l.op != OP_ITERL || l.a != in->a)
            return reject_at(f, pc, "%s not followed by its ITERL", OPS[in->op].name);
        return 0;
    }
    if (in->op == OP_ISNEXT) {
        uint32_t t = (uint32_t)f->target[pc];
        if (t <= pc || decode(f, t).op != OP_ITERN)
            return reject_at(f, pc, "ISNEXT does not jump to an ITERN");
        return 0;   /* the ITERL completes the match */
    }
    {   /* ITERL */
        uint32_t entry = (uint32_t)f->target[pc] - 1;
        struct ins e, it = decode(f, pc - 1);
        if (entry >= pc || entry < 1)
            return reject_at(f, pc, "ITERL does not jump back into its loop");
        e = decode(f, entry);
        if (!((e.op == OP_JMP && it.op == OP_ITERC) || (e.op == OP_ISNEXT && it.op == OP_ITERN)) ||
            e.a != in->a || it.a != in->a || (uint32_t)f->target[entry] != pc - 1)
            return reject_at(f, pc, "ITERL without its loop entry and iterator call");
        return add_region(f, pc, entry, pc, pc - 1, in->a - 3);
    }
}

static int check_loop_instruction(struct func *f, uint32_t pc)
{
    struct ins in = decode(f, pc);
    switch (in.op) {
    case OP_FORI:
    case OP_FORL:
        return match_numeric_for(f, pc, &in);
    case OP_ITERC:
    case OP_ITERN:
    case OP_ISNEXT:
    case OP_ITERL:
        return match_generic_for(f, pc, &in);
    case OP_LOOP:
        /* Target is the loop exit; a backward goto emits LOOP with target == pc. */
        if (f->target[pc] < (int32_t)pc)
            return reject_at(f, pc, "LOOP target before the loop");
        return 0;
    default:
        return 0;
    }
}

/* Every ISNEXT must be the entry of a matched loop (ITERN trusts its setup). */
static int check_isnext_matched(struct func *f)
{
    for (uint32_t pc = 1; pc < f->sizebc; pc++) {
        uint32_t op = instruction_at(f, pc) & 0xff;
        if (op == OP_ISNEXT && f->region_at[pc + 1] < 0)
            return reject_at(f, pc, "ISNEXT is not the entry of a for-in loop");
        if (op == OP_ITERN && (pc + 1 >= f->sizebc || f->target[pc + 1] < 0 ||
                               decode(f, (uint32_t)f->target[pc + 1] - 1).op != OP_ISNEXT))
            return reject_at(f, pc, "ITERN outside an ISNEXT loop");
    }
    return 0;
}

/* ---- Slots written by an instruction --------------------------------- */

struct slotset {
    uint64_t w[4];
};

static void set_slot(struct slotset *s, uint32_t slot)
{
    s->w[slot >> 6] |= (uint64_t)1 << (slot & 63);
}

static int has_slot(const struct slotset *s, uint32_t slot)
{
    return (int)((s->w[slot >> 6] >> (slot & 63)) & 1);
}

struct writes {
    uint32_t lo[2], hi[2];
    unsigned n;
};

static void add_write(struct writes *w, uint32_t lo, uint32_t hi)
{
    w->lo[w->n] = lo;
    w->hi[w->n] = hi > ANY_SLOT ? ANY_SLOT : hi;
    w->n++;
}

/* Slots an instruction may overwrite; calls clobber everything from their base up. */
static struct writes slots_written(const struct ins *in)
{
    struct writes w = { { 0, 0 }, { 0, 0 }, 0 };
    switch (in->op) {
    case OP_ISTC: case OP_ISFC:
        add_write(&w, in->a, in->a);
        break;
    case OP_CAT:    /* the VM concatenates in place over B..C and above */
        add_write(&w, in->a, in->a);
        add_write(&w, in->b, ANY_SLOT);
        break;
    case OP_KNIL:
        add_write(&w, in->a, in->d);
        break;
    case OP_CALL: case OP_CALLM: case OP_ITERC: case OP_ITERN:
        add_write(&w, in->a, ANY_SLOT);
        break;
    case OP_VARG:
        if (in->b != 1)
            add_write(&w, in->a, in->b == 0 ? ANY_SLOT : in->a + in->b - 2);
        break;
    case OP_ISNEXT: case OP_ITERL:
        add_write(&w, in->a - 1, in->a - 1);
        break;
    case OP_FORI: case OP_FORL:
        add_write(&w, in->a, in->a + 3);
        break;
    default:
        if (OPS[in->op].a == M_DST)
            add_write(&w, in->a, in->a);
        break;
    }
    return w;
}

/* Local slots of the parent captured by the closure an FNEW creates. */
static struct slotset captured_slots(const struct func *f, const struct ins *in)
{
    struct slotset s = { { 0, 0, 0, 0 } };
    const struct proto *child = &f->v->protos[f->kgc_child[in->d]];
    for (unsigned i = 0; i < child->sizeuv; i++) {
        uint32_t uv = (uint32_t)child->uv[2 * i] | (uint32_t)child->uv[2 * i + 1] << 8;
        if (uv & UV_LOCAL)
            set_slot(&s, uv & 0xff);
    }
    return s;
}

/* ---- Loop bodies: nesting, entry, control slots --------------------- */

struct open_loop {
    uint32_t region;
    struct slotset protected_slots;  /* this loop's and all enclosing */
};

static void control_slots(const struct region *r, struct slotset *s)
{
    for (uint32_t i = 0; i < 3; i++)
        set_slot(s, r->slot + i);
}

/* The slots lo..hi (clamped to 255) as a set, built a word at a time. */
static struct slotset range_set(uint32_t lo, uint32_t hi)
{
    struct slotset r = { { 0, 0, 0, 0 } };
    if (hi > ANY_SLOT)
        hi = ANY_SLOT;
    for (uint32_t i = 0; i < 4 && lo <= hi; i++) {
        uint32_t wlo = i * 64, whi = wlo + 63;
        if (hi < wlo || lo > whi)
            continue;
        uint32_t a = lo > wlo ? lo - wlo : 0, b = hi < whi ? hi - wlo : 63;
        uint64_t upto_b = b == 63 ? ~(uint64_t)0 : (((uint64_t)1 << (b + 1)) - 1);
        r.w[i] = upto_b & ~(((uint64_t)1 << a) - 1);
    }
    return r;
}

static int lowest_common_slot(const struct slotset *a, const struct slotset *b)
{
    for (int i = 0; i < 4; i++) {
        uint64_t x = a->w[i] & b->w[i];
        if (x)
            return i * 64 + __builtin_ctzll(x);
    }
    return -1;
}

static int writes_hit(const struct writes *w, const struct slotset *s)
{
    for (unsigned i = 0; i < w->n; i++) {
        struct slotset r = range_set(w->lo[i], w->hi[i]);
        int slot = lowest_common_slot(&r, s);
        if (slot >= 0)
            return slot + 1;
    }
    return 0;
}

static int check_body_instruction(struct func *f, uint32_t pc, const struct open_loop *stack,
                                  uint32_t depth)
{
    const struct open_loop *top = &stack[depth - 1];
    const struct region *r = &f->regions[top->region];
    struct ins in = decode(f, pc);
    /* A loop's own control instructions may update its control slots. */
    const struct slotset *guard = &top->protected_slots;
    struct slotset none = { { 0, 0, 0, 0 } };
    struct writes w = slots_written(&in);
    int hit;
    if (pc >= r->control_pc)
        guard = depth > 1 ? &stack[depth - 2].protected_slots : &none;
    hit = writes_hit(&w, guard);
    if (hit)
        return reject_at(f, pc, "%s writes loop control slot %d inside the loop body",
                         OPS[in.op].name, hit - 1);
    if (in.op == OP_FNEW) {
        struct slotset cap = captured_slots(f, &in);
        int slot = lowest_common_slot(&cap, guard);
        if (slot >= 0)
            return reject_at(f, pc, "FNEW captures loop control slot %d", slot);
    }
    return 0;
}

/* Sweeps pcs once, keeping a stack of the loops that contain pc. */
static int check_loop_bodies(struct func *f)
{
    struct open_loop *stack = calloc(f->nregions + 1, sizeof *stack);
    uint32_t depth = 0;
    int rc = 0;
    if (!stack)
        return reject(f->v, "out of memory");
    for (uint32_t pc = 1; pc < f->sizebc && rc == 0; pc++) {
        while (depth > 0 && f->regions[stack[depth - 1].region].end < pc)
            depth--;
        if (f->region_at[pc] >= 0) {
            const struct region *r = &f->regions[f->region_at[pc]];
            if (depth > 0 && f->regions[stack[depth - 1].region].end < r->end) {
                rc = reject_at(f, pc, "loops overlap without nesting");
                break;
            }
            stack[depth].region = (uint32_t)f->region_at[pc];
            stack[depth].protected_slots = depth > 0 ? stack[depth - 1].protected_slots
                                                     : (struct slotset){ { 0, 0, 0, 0 } };
            control_slots(r, &stack[depth].protected_slots);
            depth++;
        }
        f->owner[pc] = depth > 0 ? (int32_t)stack[depth - 1].region : -1;
        if (depth > 0)
            rc = check_body_instruction(f, pc, stack, depth);
    }
    free(stack);
    return rc;
}

static int inside(const struct region *r, uint32_t pc)
{
    return pc >= r->start && pc <= r->end;
}

/* ---- MULTRES: consumers must directly follow their producer ------- */

static int multres_producer_base(const struct ins *in)
{
    if ((in->op == OP_CALL || in->op == OP_CALLM || in->op == OP_VARG) && in->b == 0)
        return (int)in->a;
    return -1;
}

static int multres_consumer_base(const struct ins *in)
{
    switch (in->op) {
    case OP_CALLM: return (int)(in->a + 2 + in->c);
    case OP_CALLMT: return (int)(in->a + 2 + in->d);
    case OP_RETM: return (int)(in->a + in->d);
    case OP_TSETM: return (int)in->a;
    default: return -1;
    }
}

/*
 * The VM takes the value count of CALLM/CALLMT/RETM/TSETM from a register
 * set by the previous CALL/VARG; a stale count would copy past the stack.
 * So the edge into a consumer must come straight from a matching producer,
 * or from the UCLO the parser puts between them when it relocates returns.
 */
static int check_multres_edge(struct func *f, uint32_t from, uint32_t to)
{
    struct ins c = decode(f, to), p;
    int want = multres_consumer_base(&c);
    if (want < 0)
        return 0;
    if (!is_fallthrough_edge(f, from, to)) {
        if ((instruction_at(f, from) & 0xff) != OP_UCLO || f->jumps_in[from] != 0 || from < 2)
            return reject_at(f, to, "%s reachable without a preceding multi-value producer",
                             OPS[c.op].name);
        from--;
        if (!is_fallthrough_edge(f, from, from + 1))
            return reject_at(f, to, "%s reachable without a preceding multi-value producer",
                             OPS[c.op].name);
    }
    p = decode(f, from);
    if (multres_producer_base(&p) != want)
        return reject_at(f, to, "%s does not follow a multi-value producer at slot %d",
                         OPS[c.op].name, want);
    return 0;
}

/* Every edge: no entering a for loop except through its entry; multres rule. */
static int check_edges(struct func *f)
{
    for (uint32_t pc = 1; pc < f->sizebc; pc++) {
        uint32_t succ[2];
        unsigned n = successors(f, pc, succ);
        for (unsigned i = 0; i < n; i++) {
            uint32_t t = succ[i];
            int32_t r = f->owner[t];
            if (r >= 0 && !inside(&f->regions[r], pc) && pc != f->regions[r].entry)
                return reject_at(f, pc, "jump into the body of the loop at pc %u",
                                 f->regions[r].entry);
            if (check_multres_edge(f, pc, t) < 0)
                return -1;
        }
    }
    /* The function entry (pc 1) has no producer before it. */
    {
        struct ins first = decode(f, 1);
        if (multres_consumer_base(&first) >= 0)
            return reject_at(f, 1, "%s reachable without a preceding multi-value producer",
                             OPS[first.op].name);
    }
    return 0;
}

/* ---- Slot states: open upvalues and known tables ------------------- */

static int slotset_merge(struct slotset *into, const struct slotset *from)
{
    int changed = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t n = into->w[i] | from->w[i];
        changed |= n != into->w[i];
        into->w[i] = n;
    }
    return changed;
}

static int slotset_intersect(struct slotset *into, const struct slotset *from)
{
    int changed = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t n = into->w[i] & from->w[i];
        changed |= n != into->w[i];
        into->w[i] = n;
    }
    return changed;
}

static void clear_slots(struct slotset *s, uint32_t lo, uint32_t hi)
{
    struct slotset r = range_set(lo, hi);
    for (int i = 0; i < 4; i++)
        s->w[i] &= ~r.w[i];
}

/*
 * open:   slots captured by a closure and not closed since (may, union)
 * tables: slots certainly holding a table from TNEW/TDUP (must, intersection)
 */
struct slot_state {
    struct slotset open, tables;
};

static struct slot_state transfer_slot_state(const struct func *f, uint32_t pc,
                                             struct slot_state s)
{
    struct ins in = decode(f, pc);
    struct writes w = slots_written(&in);
    for (unsigned i = 0; i < w.n; i++)
        clear_slots(&s.tables, w.lo[i], w.hi[i]);
    if (in.op == OP_TNEW || in.op == OP_TDUP)
        set_slot(&s.tables, in.a);
    if (in.op == OP_FNEW) {
        struct slotset cap = captured_slots(f, &in);
        slotset_merge(&s.open, &cap);
    } else if (in.op == OP_UCLO) {
        clear_slots(&s.open, in.a, ANY_SLOT);
    }
    return s;
}

static int slotset_empty(const struct slotset *s)
{
    return (s->w[0] | s->w[1] | s->w[2] | s->w[3]) == 0;
}

static int is_return(uint32_t op)
{
    return op == OP_RETM || op == OP_RET || op == OP_RET0 || op == OP_RET1 ||
           op == OP_CALLT || op == OP_CALLMT;
}

/* First slot of the frame a call (or CAT's metamethod call) builds, or -1. */
static int call_base(const struct ins *in)
{
    switch (in->op) {
    case OP_CALL: case OP_CALLM: case OP_ITERC: case OP_ITERN:
        return (int)in->a;
    case OP_CAT:
        return (int)in->b;
    default:
        return -1;
    }
}

static int highest_slot(const struct slotset *s)
{
    for (int i = 3; i >= 0; i--)
        if (s->w[i])
            return i * 64 + 63 - __builtin_clzll(s->w[i]);
    return -1;
}

static int needs_slot_flow(const struct func *f)
{
    int fnew = 0, tsetm = 0;
    for (uint32_t pc = 1; pc < f->sizebc; pc++) {
        uint32_t op = instruction_at(f, pc) & 0xff;
        fnew |= op == OP_FNEW;
        tsetm |= op == OP_TSETM;
    }
    return tsetm || fnew;
}

static int check_slot_states(struct func *f, const struct slot_state *in,
                             const unsigned char *visited)
{
    for (uint32_t i = 0; i < f->nregions; i++) {
        const struct region *r = &f->regions[i];
        for (uint32_t k = 0; k < 3; k++)
            if (visited[r->entry] && has_slot(&in[r->entry].open, r->slot + k))
                return reject_at(f, r->entry, "loop control slot %u may be an open upvalue",
                                 r->slot + k);
    }
    for (uint32_t pc = 1; pc < f->sizebc; pc++) {
        struct ins ins = decode(f, pc);
        if (!visited[pc])
            continue;
        /* Returns do not close upvalues: an open one would dangle into a dead frame. */
        if (is_return(ins.op) && !slotset_empty(&in[pc].open))
            return reject_at(f, pc, "%s with upvalues still open (missing UCLO)",
                             OPS[ins.op].name);
        /* A callee could rewrite its own function or frame-link slot through one. */
        if (call_base(&ins) >= 0) {
            int open = highest_slot(&in[pc].open);
            if (open >= call_base(&ins))
                return reject_at(f, pc, "%s at slot %d while slot %d is an open upvalue",
                                 OPS[ins.op].name, call_base(&ins), open);
        }
        if (ins.op != OP_TSETM)
            continue;
        /* TSETM stores into slot A-1 without checking that it is a table. */
        if (!has_slot(&in[pc].tables, ins.a - 1) || has_slot(&in[pc].open, ins.a - 1))
            return reject_at(f, pc, "TSETM slot %u is not certainly a fresh table", ins.a - 1);
    }
    return 0;
}

/*
 * Forward data flow over the control-flow graph.  The open set only grows
 * and the table set only shrinks at each pc, so every pc is revisited at
 * most 512 times: linear in the function size.
 */
static int check_slot_flow(struct func *f)
{
    enum { VISITED = 1, QUEUED = 2 };
    struct slot_state *in = calloc((size_t)f->sizebc + 1, sizeof *in);
    uint32_t *work = malloc(((size_t)f->sizebc + 1) * sizeof *work);
    unsigned char *state = calloc((size_t)f->sizebc + 1, 1);
    unsigned char *visited = calloc((size_t)f->sizebc + 1, 1);
    uint32_t nwork = 0;
    int rc;
    if (!in || !work || !state || !visited) {
        rc = reject(f->v, "out of memory");
        goto out;
    }
    work[nwork++] = 1;
    state[1] = VISITED | QUEUED;
    while (nwork > 0) {
        uint32_t pc = work[--nwork], succ[2];
        struct slot_state o;
        unsigned n;
        state[pc] &= (unsigned char)~QUEUED;
        o = transfer_slot_state(f, pc, in[pc]);
        n = successors(f, pc, succ);
        for (unsigned i = 0; i < n; i++) {
            uint32_t t = succ[i];
            int changed;
            if (!(state[t] & VISITED)) {
                in[t] = o;
                changed = 1;
            } else {
                changed = slotset_merge(&in[t].open, &o.open);
                changed |= slotset_intersect(&in[t].tables, &o.tables);
            }
            if (changed && !(state[t] & QUEUED)) {
                state[t] |= VISITED | QUEUED;
                work[nwork++] = t;
            }
        }
    }
    for (uint32_t pc = 0; pc <= f->sizebc; pc++)
        visited[pc] = (state[pc] & VISITED) != 0;
    rc = check_slot_states(f, in, visited);
out:
    free(in);
    free(work);
    free(state);
    free(visited);
    return rc;
}

/* ---- One prototype's instructions ------------------------------------ */

static int verify_instructions(struct func *f)
{
    for (uint32_t pc = 1; pc < f->sizebc; pc++)
        if (check_instruction(f, pc) < 0)
            return -1;
    for (uint32_t pc = 1; pc < f->sizebc; pc++)
        if (check_loop_instruction(f, pc) < 0)
            return -1;
    if (check_isnext_matched(f) < 0)
        return -1;
    count_incoming_jumps(f);
    if (check_loop_bodies(f) < 0 || check_edges(f) < 0)
        return -1;
    if (needs_slot_flow(f) && check_slot_flow(f) < 0)
        return -1;
    return 0;
}

static int check_immutable_upvalues(struct func *f)
{
    for (unsigned k = 0; k < f->pt->sizeuv; k++) {
        uint32_t uv = (uint32_t)f->pt->uv[2 * k] | (uint32_t)f->pt->uv[2 * k + 1] << 8;
        if ((uv & UV_IMMUTABLE) && ((f->pt->uv_written[k >> 6] >> (k & 63)) & 1))
            return reject(f->v, "immutable upvalue %u is assigned", k);
    }
    return 0;
}

/* ---- Child prototypes ------------------------------------------------ */

/*
 * A child's upvalue descriptors name either a local slot of this parent
 * (LOCAL flag, optional IMMUTABLE flag) or one of the parent's upvalues.
 */
static int check_child_upvalues(struct func *f, struct proto *child)
{
    for (unsigned k = 0; k < child->sizeuv; k++) {
        uint32_t uv = (uint32_t)child->uv[2 * k] | (uint32_t)child->uv[2 * k + 1] << 8;
        int written = (int)((child->uv_written[k >> 6] >> (k & 63)) & 1);
        if (uv & UV_LOCAL) {
            if ((uv & 0x3f00) || (uv & 0xff) >= f->pt->framesize)
                return reject(f->v, "child upvalue %u refers to slot %u outside the frame "
                              "(framesize %u)", k, uv & 0xff, f->pt->framesize);
        } else if (uv >= f->pt->sizeuv) {
            return reject(f->v, "child upvalue %u refers to upvalue %u (%u upvalues)",
                          k, uv, f->pt->sizeuv);
        } else if (written) {
            f->pt->uv_written[uv >> 6] |= (uint64_t)1 << (uv & 63);
        }
    }
    return 0;
}

/* Children precede their parent in the dump; each CHILD constant claims the latest. */
static int adopt_child(struct func *f, uint32_t operand)
{
    struct verifier *v = f->v;
    size_t idx;
    if (v->depth == 0)
        return reject(v, "child prototype constant %u but no prototype left to claim", operand);
    idx = v->stack[--v->depth];
    f->kgc_child[operand] = idx;
    return check_child_upvalues(f, &v->protos[idx]);
}

/* ---- Constant sections ----------------------------------------------- */

static int read_gc_constants(struct func *f, struct reader *r)
{
    uint32_t nchild = 0;
    for (uint32_t i = 0; i < f->sizekgc; i++) {
        uint32_t operand = f->sizekgc - 1 - i;   /* operands count from the end */
        uint32_t tp;
        if (read_uleb(r, &tp) < 0)
            return reject(f->v, "GC constant %u truncated", operand);
        if (tp >= KGC_STR) {
            f->kgc_kind[operand] = K_STR;
            if (skip_bytes(r, tp - KGC_STR, NULL) < 0)
                return reject(f->v, "string constant %u runs past its prototype", operand);
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
            return reject(f->v, "FFI cdata constant %u refused", operand);
        }
    }
    if ((nchild > 0) != ((f->pt->flags & PROTO_CHILD) != 0))
        return reject(f->v, "child flag does not match %u child constants", nchild);
    return 0;
}

static int read_number_constants(struct func *f, struct reader *r)
{
    for (uint32_t i = 0; i < f->sizekn; i++) {
        struct knum *k = &f->knum[i];
        if (read_uleb33(r, &k->lo, &k->is_double) < 0)
            return reject(f->v, "number constant %u malformed", i);
        k->hi = 0;
        if (k->is_double) {
            if (read_uleb(r, &k->hi) < 0)
                return reject(f->v, "number constant %u malformed", i);
            if (is_nan(k->lo, k->hi))
                return reject(f->v, "number constant %u is a NaN", i);
        }
    }
    return 0;
}

/* ---- Debug info ------------------------------------------------------ */

static int skip_c_string(struct reader *r)
{
    const unsigned char *nul = memchr(r->p, 0, bytes_left(r));
    if (!nul)
        return -1;
    r->p = nul + 1;
    return 0;
}

static int check_line_info(struct func *f, struct reader *d, uint32_t numline)
{
    unsigned width = numline < 256 ? 1 : numline < 65536 ? 2 : 4;
    const unsigned char *li;
    if (skip_bytes(d, (size_t)(f->sizebc - 1) * width, &li) < 0)
        return reject(f->v, "line info larger than the debug section");
    for (uint32_t i = 0; i + 1 < f->sizebc; i++) {
        uint32_t delta = li[i * width];
        for (unsigned b = 1; b < width; b++)
            delta |= (uint32_t)li[i * width + b] << (8 * b);
        if (delta > numline)
            return reject_at(f, i + 1, "line delta %u beyond the function's %u lines",
                             delta, numline);
    }
    return 0;
}

/* Upvalue names, then (name|code, start delta, length)* and a 0 byte, filling the section. */
static int check_names(struct func *f, struct reader *d)
{
    for (unsigned k = 0; k < f->pt->sizeuv; k++)
        if (skip_c_string(d) < 0)
            return reject(f->v, "upvalue name %u not terminated in the debug section", k);
    for (;;) {
        uint32_t code, start, length;
        if (read_byte(d, &code) < 0)
            return reject(f->v, "variable info not terminated in the debug section");
        if (code == 0)
            break;
        if (code >= VARNAME_CODES && skip_c_string(d) < 0)
            return reject(f->v, "variable name not terminated in the debug section");
        if (read_uleb(d, &start) < 0 || read_uleb(d, &length) < 0)
            return reject(f->v, "variable range malformed");
    }
    if (bytes_left(d) != 0)
        return reject(f->v, "%zu stray bytes after variable info", bytes_left(d));
    return 0;
}

static int check_debug_info(struct func *f, struct reader *r, uint32_t sizedbg, uint32_t numline)
{
    struct reader d;
    if (skip_bytes(r, sizedbg, &d.p) < 0)
        return reject(f->v, "debug section of %u bytes runs past its prototype", sizedbg);
    d.end = d.p + sizedbg;
    if (check_line_info(f, &d, numline) < 0)
        return -1;
    return check_names(f, &d);
}

/* ---- Prototype ------------------------------------------------------- */

struct header {
    uint32_t flags, numparams, framesize, sizeuv, sizekgc, sizekn, nbc;
    uint32_t sizedbg, firstline, numline;
};

static void name_function(struct verifier *v, size_t index, const struct header *h)
{
    if (h->sizedbg && h->firstline > 0)
        snprintf(v->where, sizeof v->where, "function at line %u", h->firstline);
    else if (h->sizedbg)
        snprintf(v->where, sizeof v->where, "main chunk");
    else
        snprintf(v->where, sizeof v->where, "function #%zu", index);
}

static int read_proto_header(struct verifier *v, struct reader *r, struct header *h)
{
    memset(h, 0, sizeof *h);
    if (read_byte(r, &h->flags) < 0 || read_byte(r, &h->numparams) < 0 ||
        read_byte(r, &h->framesize) < 0 || read_byte(r, &h->sizeuv) < 0 ||
        read_uleb(r, &h->sizekgc) < 0 || read_uleb(r, &h->sizekn) < 0 ||
        read_uleb(r, &h->nbc) < 0)
        return reject(v, "prototype header truncated");
    if (!v->strip && read_uleb(r, &h->sizedbg) < 0)
        return reject(v, "prototype header truncated");
    if (h->sizedbg && (read_uleb(r, &h->firstline) < 0 || read_uleb(r, &h->numline) < 0))
        return reject(v, "prototype header truncated");
    return 0;
}

static int check_proto_limits(struct verifier *v, const struct header *h)
{
    if (h->flags & PROTO_FFI)
        return reject(v, "prototype uses FFI constants");
    if (h->flags & ~(uint32_t)(PROTO_CHILD | PROTO_VARARG))
        return reject(v, "unknown prototype flags 0x%x", h->flags);
    if (h->framesize >= MAX_SLOTS || h->framesize < 1)
        return reject(v, "framesize %u out of range", h->framesize);
    if (h->numparams > h->framesize)
        return reject(v, "%u parameters exceed framesize %u", h->numparams, h->framesize);
    if (h->sizeuv > MAX_UPVAL)
        return reject(v, "%u upvalues exceed the limit of %d", h->sizeuv, MAX_UPVAL);
    if (h->sizekgc > MAX_CONSTS || h->sizekn > MAX_CONSTS)
        return reject(v, "constant counts %u/%u exceed the limit", h->sizekgc, h->sizekn);
    if (h->nbc < 1 || h->nbc >= MAX_BCINS)
        return reject(v, "instruction count %u out of range", h->nbc);
    return 0;
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
        return reject(f->v, "out of memory");
    for (size_t i = 0; i < n; i++)
        f->target[i] = f->region_at[i] = f->owner[i] = -1;
    return 0;
}

static int read_proto_body(struct func *f, struct reader *r, const struct header *h)
{
    if (skip_bytes(r, (size_t)h->nbc * 4, &f->code) < 0)
        return reject(f->v, "%u instructions run past the prototype", h->nbc);
    if (skip_bytes(r, (size_t)h->sizeuv * 2, &f->pt->uv) < 0)
        return reject(f->v, "upvalue descriptors run past the prototype");
    if (read_gc_constants(f, r) < 0 || read_number_constants(f, r) < 0)
        return -1;
    if (h->sizedbg && check_debug_info(f, r, h->sizedbg, h->numline) < 0)
        return -1;
    if (bytes_left(r) != 0)
        return reject(f->v, "%zu unparsed bytes at the end of the prototype", bytes_left(r));
    return 0;
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
        return reject(v, "out of memory");
    if (read_proto_header(v, r, &h) < 0)
        return -1;
    name_function(v, index, &h);
    if (check_proto_limits(v, &h) < 0)
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
        rc = read_proto_body(&f, r, &h);
    if (rc == 0)
        rc = verify_instructions(&f);
    if (rc == 0)
        rc = check_immutable_upvalues(&f);
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
    if (bytes_left(r) < 4 || r->p[0] != 0x1b || r->p[1] != 'L' || r->p[2] != 'J')
        return reject(v, "not a LuaJIT bytecode dump");
    if (r->p[3] != DUMP_VERSION)
        return reject(v, "bytecode version %u, need %d", r->p[3], DUMP_VERSION);
    r->p += 4;
    if (read_uleb(r, &flags) < 0)
        return reject(v, "flags truncated");
    if (flags & DUMP_F_BE)
        return reject(v, "big-endian dump refused");
    if (flags & DUMP_F_FFI)
        return reject(v, "dump uses FFI, refused");
    if (!(flags & DUMP_F_FR2))
        return reject(v, "dump is not for a GC64/FR2 engine");
    if (flags & ~(uint32_t)(DUMP_F_FR2 | DUMP_F_STRIP))
        return reject(v, "unknown dump flags 0x%x", flags);
    v->strip = (flags & DUMP_F_STRIP) != 0;
    if (!v->strip && (read_uleb(r, &namelen) < 0 || skip_bytes(r, namelen, NULL) < 0))
        return reject(v, "chunk name truncated");
    return 0;
}

static int read_prototypes(struct verifier *v, struct reader *r)
{
    for (;;) {
        uint32_t len;
        struct reader rec;
        snprintf(v->where, sizeof v->where, "function #%zu", v->nprotos);
        if (read_uleb(r, &len) < 0)
            return reject(v, "prototype length truncated");
        if (len == 0)
            break;
        if (skip_bytes(r, len, &rec.p) < 0)
            return reject(v, "prototype length %u exceeds the %zu bytes left", len, bytes_left(r));
        rec.end = rec.p + len;
        if (read_prototype(v, &rec) < 0)
            return -1;
    }
    snprintf(v->where, sizeof v->where, "dump");
    if (bytes_left(r) != 0)
        return reject(v, "%zu trailing bytes after the end marker", bytes_left(r));
    if (v->depth != 1)
        return reject(v, "%zu prototypes left unclaimed at the end (need exactly 1)", v->depth);
    return 0;
}

int bcverify_chunk(const unsigned char *buf, size_t len, char *err, size_t errlen)
{
    struct verifier v;
    struct reader r = { buf, buf + len };
    int rc;
    memset(&v, 0, sizeof v);
    v.err = err;
    v.errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
    if (!buf)
        return reject(&v, "no input");
    rc = read_dump_header(&v, &r);
    if (rc == 0)
        rc = read_prototypes(&v, &r);
    free(v.protos);
    free(v.stack);
    return rc;
}
