/*
 * bcverify_internal.h - what the files of the bytecode verifier share and
 * nobody else may see: the engine's dump and opcode facts, the verifier and
 * per-prototype state, and the entry points each file offers the others.
 * Calls go one way, never back up:
 *
 *   bcverify.c        the entry: dump header, prototype walk, child stack
 *     -> bcverify_read.c    bounded reader, constants, debug info
 *     -> bcverify_ops.c     opcode table, one instruction's operands
 *     -> bcverify_loops.c   for-loop shapes and bodies
 *     -> bcverify_flow.c    edges, multi-results, open upvalues, upvalue rules
 *   bcverify_read.c -> bcverify_flow.c        (a child constant's upvalues)
 *   bcverify_loops.c, bcverify_flow.c -> bcverify_slots.c -> bcverify_ops.c
 *   every file -> bcverify_reject.c           (the error text)
 *
 * Never include this outside src/vm/bcverify*.c, and never include Lua
 * headers here: the supervisor links the verifier too.
 */
#ifndef LUAPOOL_BCVERIFY_INTERNAL_H
#define LUAPOOL_BCVERIFY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

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

/* bcverify_ops.c: one entry per opcode, indexed by enum opcode. */
extern const struct opinfo bcverify_ops_info[OP_COUNT];

/* ---- Verifier and prototype state ------------------------------------ */

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

/* A cursor over one section of the dump: never read at or past end. */
struct reader {
    const unsigned char *p, *end;
};

struct knum {
    uint32_t lo, hi;
    int is_double;
};

enum kgc_kind { K_STR, K_TAB, K_CHILD };

/* ---- One prototype while it is checked ------------------------------- */

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

/*
 * Instruction words, decoded in place.  Inline: ops, loops and flow call
 * them for every pc, several times over.
 */
static inline uint32_t instruction_at(const struct func *f, uint32_t pc)
{
    const unsigned char *p = f->code + 4 * (size_t)(pc - 1);
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

struct ins {
    uint32_t op, a, b, c, d;
};

static inline struct ins decode(const struct func *f, uint32_t pc)
{
    uint32_t w = instruction_at(f, pc);
    struct ins i = { w & 0xff, (w >> 8) & 0xff, w >> 24, (w >> 16) & 0xff, w >> 16 };
    return i;
}

static inline int is_conditional(uint32_t op)
{
    return op <= OP_ISF;
}

static inline int is_jump_op(uint32_t op)
{
    return op == OP_UCLO || op == OP_ISNEXT || op == OP_FORI || op == OP_FORL ||
           op == OP_ITERL || op == OP_LOOP || op == OP_JMP;
}

static inline int falls_through(uint32_t op)
{
    return !(op == OP_JMP || op == OP_UCLO || op == OP_ISNEXT || op == OP_CALLT ||
             op == OP_CALLMT || op == OP_RETM || op == OP_RET || op == OP_RET0 ||
             op == OP_RET1);
}

/* A prototype record's header fields, as read (bcverify_read.c). */
struct header {
    uint32_t flags, numparams, framesize, sizeuv, sizekgc, sizekn, nbc;
    uint32_t sizedbg, firstline, numline;
};

/* A set of register slots, a frame has at most 256 (bcverify_slots.c). */
struct slotset {
    uint64_t w[4];
};

/* Up to two slot ranges an instruction may overwrite. */
struct writes {
    uint32_t lo[2], hi[2];
    unsigned n;
};

/* ---- bcverify_reject.c: the error text ------------------------------- */

/* Formats "<where>: <reason>" into the caller's buffer; always returns -1. */
int bcverify_reject(struct verifier *v, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* The same with "pc N: " before the reason; always returns -1. */
int bcverify_reject_at(struct func *f, uint32_t pc, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* ---- bcverify_read.c: the dump reader (0 or -1 without a reason) ----- */

size_t bcverify_read_bytes_left(const struct reader *r);

/* Steps over n bytes, their start in *start unless NULL; -1 if fewer are left. */
int bcverify_read_skip_bytes(struct reader *r, size_t n, const unsigned char **start);

/* ULEB128 of a 32-bit value: at most 5 bytes, inside the section. */
int bcverify_read_uleb(struct reader *r, uint32_t *out);

/* ---- bcverify_read.c: prototype records (0, or -1 after reject) ------ */

/* The record's header; debug sizes only when the dump is not stripped. */
int bcverify_read_proto_header(struct verifier *v, struct reader *r, struct header *h);

/* The engine's limits on that header (frame, upvalues, constants, size). */
int bcverify_read_check_proto_limits(struct verifier *v, const struct header *h);

/*
 * Instructions, upvalue descriptors, constants and debug info, which must
 * fill the record exactly.  Each child constant claims the latest prototype
 * on the verifier's stack.  Instructions are located, not checked.
 */
int bcverify_read_proto_body(struct func *f, struct reader *r, const struct header *h);

/* ---- bcverify_ops.c: one instruction (0, or -1 after reject) --------- */

/*
 * Operands of the instruction at pc by mode and opcode; records its jump
 * target in f->target and its upvalue stores in f->pt->uv_written.
 */
int bcverify_ops_check_instruction(struct func *f, uint32_t pc);

/* ---- bcverify_slots.c: slot sets, pure functions --------------------- */

void bcverify_slots_add(struct slotset *s, uint32_t slot);
int bcverify_slots_has(const struct slotset *s, uint32_t slot);
/* The slots lo..hi, hi clamped to ANY_SLOT. */
struct slotset bcverify_slots_range(uint32_t lo, uint32_t hi);
void bcverify_slots_clear(struct slotset *s, uint32_t lo, uint32_t hi);
/* Lowest slot in both sets / highest in s, or -1. */
int bcverify_slots_lowest_common(const struct slotset *a, const struct slotset *b);
int bcverify_slots_highest(const struct slotset *s);
int bcverify_slots_empty(const struct slotset *s);
/* Union / intersection into *into; 1 if *into changed. */
int bcverify_slots_merge(struct slotset *into, const struct slotset *from);
int bcverify_slots_intersect(struct slotset *into, const struct slotset *from);
/* Slots an instruction may overwrite; calls clobber everything from their base up. */
struct writes bcverify_slots_written(const struct ins *in);
/* Local slots of the parent captured by the closure an FNEW creates. */
struct slotset bcverify_slots_captured(const struct func *f, const struct ins *in);

/* ---- bcverify_loops.c: for loops (0, or -1 after reject) ------------- */

/* Matches every loop instruction into f->regions; ISNEXT/ITERN belong to one. */
int bcverify_loops_match(struct func *f);

/* Regions nest; no body writes or captures a control slot; fills f->owner. */
int bcverify_loops_check_bodies(struct func *f);

/* ---- bcverify_flow.c: the control-flow graph (0, or -1 after reject) - */

/* Non-fallthrough edges arriving at each pc, into f->jumps_in. */
void bcverify_flow_count_incoming_jumps(struct func *f);

/* No jump into a loop body but from its entry; multi-result consumers. */
int bcverify_flow_check_edges(struct func *f);

/* Open upvalues at returns, calls and loop entries; TSETM's table slot. */
int bcverify_flow_check_slots(struct func *f);

/* No immutable upvalue of f is assigned by f or a descendant. */
int bcverify_flow_check_immutable_upvalues(struct func *f);

/* child's upvalues name slots in f's frame or f's upvalues; marks writes. */
int bcverify_flow_check_child_upvalues(struct func *f, struct proto *child);

#endif
