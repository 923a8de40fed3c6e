/*
 * bcverify_ops.c - the opcode table and the checks on one instruction:
 * registers inside the frame, constants inside their arrays and of the kind
 * the opcode expects, upvalue numbers, the counts of calls and returns, jump
 * targets inside the function, a test always followed by its JMP.
 *
 * It must never admit an opcode the parser does not emit, and never follow
 * control flow: it looks at one instruction (and the one after a test) so
 * that bcverify_loops.c and bcverify_flow.c can trust every operand.
 */
#include "vm/bcverify_internal.h"

const struct opinfo bcverify_ops_info[OP_COUNT] = {
#define AS_INFO(name, ma, mb, mcd, ok) { #name, M_##ma, M_##mb, M_##mcd, ok },
    OPCODES(AS_INFO)
#undef AS_INFO
};

/* ---- Operand checks -------------------------------------------------- */

static int check_slot(struct func *f, uint32_t pc, uint32_t slot, const char *what)
{
    if (slot >= f->pt->framesize)
        return bcverify_reject_at(f, pc, "%s register %u outside frame (framesize %u)",
                                  what, slot, f->pt->framesize);
    return 0;
}

/* A range of slots [lo, hi] that must lie inside the frame. */
static int check_range(struct func *f, uint32_t pc, uint32_t lo, uint32_t hi, const char *what)
{
    if (hi < lo)
        return bcverify_reject_at(f, pc, "%s register range %u..%u reversed", what, lo, hi);
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
        return bcverify_reject_at(f, pc, "%s constant %u out of range (%u GC constants)",
                                  bcverify_ops_info[in->op].name, value, f->sizekgc);
    if (f->kgc_kind[value] != kind_for[mode])
        return bcverify_reject_at(f, pc, "%s constant %u is not a %s",
                                  bcverify_ops_info[in->op].name, value, want[mode]);
    return 0;
}

/* Checks the C/D operand by its mode; computes the jump target if any. */
static int check_cd_operand(struct func *f, uint32_t pc, const struct ins *in)
{
    uint32_t mode = bcverify_ops_info[in->op].cd;
    uint32_t value = bcverify_ops_info[in->op].b == M_NONE ? in->d : in->c;
    switch (mode) {
    case M_VAR:
        return check_slot(f, pc, value, bcverify_ops_info[in->op].name);
    case M_UV:
        if (value >= f->pt->sizeuv)
            return bcverify_reject_at(f, pc, "%s upvalue %u out of range (%u upvalues)",
                                      bcverify_ops_info[in->op].name, value, f->pt->sizeuv);
        return 0;
    case M_PRI:
        if (value > 2)
            return bcverify_reject_at(f, pc, "%s primitive %u not nil/false/true",
                                      bcverify_ops_info[in->op].name, value);
        return 0;
    case M_NUM:
        if (value >= f->sizekn)
            return bcverify_reject_at(f, pc, "%s constant %u out of range (%u constants)",
                                      bcverify_ops_info[in->op].name, value, f->sizekn);
        return 0;
    case M_STR:
    case M_TAB:
    case M_FUNC:
        return check_gc_constant(f, pc, in, mode, value);
    case M_JUMP: {
        int64_t t = (int64_t)pc + 1 + (int64_t)in->d - JUMP_BIAS;
        if (t < 1 || t >= f->sizebc)
            return bcverify_reject_at(f, pc,
                                      "%s target %lld outside the function (%u instructions)",
                                      bcverify_ops_info[in->op].name, (long long)t, f->sizebc);
        f->target[pc] = (int32_t)t;
        return 0;
    }
    default:                    /* literals and bases: checked per opcode */
        return 0;
    }
}

static int check_a_operand(struct func *f, uint32_t pc, const struct ins *in)
{
    switch (bcverify_ops_info[in->op].a) {
    case M_DST:
    case M_VAR:
        return check_slot(f, pc, in->a, bcverify_ops_info[in->op].name);
    case M_UV:
        if (in->a >= f->pt->sizeuv)
            return bcverify_reject_at(f, pc, "%s upvalue %u out of range (%u upvalues)",
                                      bcverify_ops_info[in->op].name, in->a, f->pt->sizeuv);
        return 0;
    case M_NONE:
        if (in->a != 0)
            return bcverify_reject_at(f, pc, "%s has a non-zero unused operand",
                                      bcverify_ops_info[in->op].name);
        return 0;
    default:
        return 0;
    }
}

/* Register ranges of the multi-slot opcodes (FR2: a call's A+1 is the frame link). */
static int check_call_like(struct func *f, uint32_t pc, const struct ins *in)
{
    const char *name = bcverify_ops_info[in->op].name;
    switch (in->op) {
    case OP_CALL:
        if (in->c < 1)
            return bcverify_reject_at(f, pc, "CALL argument count malformed");
        /* fall through */
    case OP_CALLM:
        if (check_slot(f, pc, in->a + 1 + in->c - (in->op == OP_CALL), name) < 0)
            return -1;
        if (in->b >= 2 && check_slot(f, pc, in->a + in->b - 2, name) < 0)
            return -1;
        return check_slot(f, pc, in->a + 1, name);
    case OP_CALLT:
        if (in->d < 1)
            return bcverify_reject_at(f, pc, "CALLT argument count malformed");
        return check_slot(f, pc, in->a + (in->d > 1 ? in->d : 1), name);
    case OP_CALLMT:
        return check_slot(f, pc, in->a + 1 + (in->d > 0 ? in->d : 1), name);
    case OP_ITERC:
    case OP_ITERN:
        if (in->a < 3 || in->c != 3 || in->b < 2 || (in->op == OP_ITERN && in->b > 3))
            return bcverify_reject_at(f, pc, "%s operands malformed", name);
        if (check_slot(f, pc, in->a + 3, name) < 0)
            return -1;
        return check_slot(f, pc, in->a + in->b - 2, name);
    case OP_VARG:
        if (!(f->pt->flags & PROTO_VARARG))
            return bcverify_reject_at(f, pc, "VARG in a function without varargs");
        if (in->c != f->pt->numparams)
            return bcverify_reject_at(f, pc, "VARG parameter count %u != numparams %u",
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
        return bcverify_reject_at(f, pc, "TSETM start index constant %u malformed", in->d);
    return 0;
}

static int check_special_operands(struct func *f, uint32_t pc, const struct ins *in)
{
    uint32_t fs = f->pt->framesize;
    switch (in->op) {
    case OP_CAT:
        if (in->b >= in->c)
            return bcverify_reject_at(f, pc, "CAT range %u..%u malformed", in->b, in->c);
        return check_slot(f, pc, in->c, "CAT");
    case OP_KNIL:
        return check_range(f, pc, in->a, in->d, "KNIL");
    case OP_TSETM:
        if (in->a < 1)
            return bcverify_reject_at(f, pc, "TSETM without a table slot");
        if (check_slot(f, pc, in->a, "TSETM") < 0)
            return -1;
        return check_tsetm_constant(f, pc, in);
    case OP_RETM:
        return in->d > 0 ? check_slot(f, pc, in->a + in->d - 1, "RETM")
                         : check_slot(f, pc, in->a, "RETM");
    case OP_RET:
        if (in->d < 1)
            return bcverify_reject_at(f, pc, "RET result count malformed");
        return in->d >= 2 ? check_slot(f, pc, in->a + in->d - 2, "RET") : 0;
    case OP_RET0:
        if (in->d != 1 || in->a > fs)
            return bcverify_reject_at(f, pc, "RET0 operands malformed");
        return 0;
    case OP_RET1:
        if (in->d != 2)
            return bcverify_reject_at(f, pc, "RET1 result count malformed");
        return check_slot(f, pc, in->a, "RET1");
    case OP_FORI:
    case OP_FORL:
        return check_slot(f, pc, in->a + 3, bcverify_ops_info[in->op].name);
    case OP_ISNEXT:
    case OP_ITERL:
        if (in->a < 3)
            return bcverify_reject_at(f, pc, "%s base %u leaves no room for control slots",
                                      bcverify_ops_info[in->op].name, in->a);
        return check_slot(f, pc, in->a, bcverify_ops_info[in->op].name);
    case OP_UCLO:
    case OP_LOOP:
    case OP_JMP:
        if (in->a > fs)    /* A is a register level, may equal framesize */
            return bcverify_reject_at(f, pc, "%s level %u above framesize %u",
                                      bcverify_ops_info[in->op].name, in->a, fs);
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

int bcverify_ops_check_instruction(struct func *f, uint32_t pc)
{
    struct ins in = decode(f, pc);
    if (in.op >= OP_COUNT)
        return bcverify_reject_at(f, pc, "unknown opcode %u", in.op);
    if (!bcverify_ops_info[in.op].emitted_by_parser)
        return bcverify_reject_at(f, pc, "opcode %s is not allowed in client bytecode",
                                  bcverify_ops_info[in.op].name);
    if (check_a_operand(f, pc, &in) < 0)
        return -1;
    if (bcverify_ops_info[in.op].b == M_VAR &&
        check_slot(f, pc, in.b, bcverify_ops_info[in.op].name) < 0)
        return -1;
    if (check_cd_operand(f, pc, &in) < 0 || check_special_operands(f, pc, &in) < 0)
        return -1;
    /* A test's branch offset is read from the JMP that follows it. */
    if (is_conditional(in.op) &&
        (pc + 1 >= f->sizebc || (instruction_at(f, pc + 1) & 0xff) != OP_JMP))
        return bcverify_reject_at(f, pc, "%s not followed by JMP", bcverify_ops_info[in.op].name);
    if (falls_through(in.op) && pc + 1 >= f->sizebc)
        return bcverify_reject_at(f, pc, "execution falls off the end of the function");
    note_upvalue_write(f, &in);
    return 0;
}
