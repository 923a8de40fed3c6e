/*
 * bcverify_flow.c - the rules over the control-flow graph: no jump into a
 * loop body except from its entry; a multi-result consumer reached only
 * straight from its producer; no return, and no call at or below an open
 * upvalue; TSETM only into a fresh table.  And the upvalue descriptors: a
 * child's point into its parent's frame or upvalues, and an immutable
 * upvalue is never assigned.
 *
 * It must only run after bcverify_ops.c and bcverify_loops.c accepted the
 * function (it follows f->target and f->owner unchecked), and must stay
 * linear: slot sets at a pc only grow or only shrink.
 */
#include <stdlib.h>

#include "vm/bcverify_internal.h"

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

void bcverify_flow_count_incoming_jumps(struct func *f)
{
    for (uint32_t pc = 1; pc < f->sizebc; pc++) {
        uint32_t succ[2];
        unsigned n = successors(f, pc, succ);
        for (unsigned i = 0; i < n; i++)
            if (!is_fallthrough_edge(f, pc, succ[i]))
                f->jumps_in[succ[i]]++;
    }
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
            return bcverify_reject_at(f, to,
                                      "%s reachable without a preceding multi-value producer",
                                      bcverify_ops_info[c.op].name);
        from--;
        if (!is_fallthrough_edge(f, from, from + 1))
            return bcverify_reject_at(f, to,
                                      "%s reachable without a preceding multi-value producer",
                                      bcverify_ops_info[c.op].name);
    }
    p = decode(f, from);
    if (multres_producer_base(&p) != want)
        return bcverify_reject_at(f, to, "%s does not follow a multi-value producer at slot %d",
                                  bcverify_ops_info[c.op].name, want);
    return 0;
}

/* Every edge: no entering a for loop except through its entry; multres rule. */
int bcverify_flow_check_edges(struct func *f)
{
    for (uint32_t pc = 1; pc < f->sizebc; pc++) {
        uint32_t succ[2];
        unsigned n = successors(f, pc, succ);
        for (unsigned i = 0; i < n; i++) {
            uint32_t t = succ[i];
            int32_t r = f->owner[t];
            if (r >= 0 && !inside(&f->regions[r], pc) && pc != f->regions[r].entry)
                return bcverify_reject_at(f, pc, "jump into the body of the loop at pc %u",
                                          f->regions[r].entry);
            if (check_multres_edge(f, pc, t) < 0)
                return -1;
        }
    }
    /* The function entry (pc 1) has no producer before it. */
    {
        struct ins first = decode(f, 1);
        if (multres_consumer_base(&first) >= 0)
            return bcverify_reject_at(f, 1, "%s reachable without a preceding multi-value producer",
                                      bcverify_ops_info[first.op].name);
    }
    return 0;
}

/* ---- Slot states: open upvalues and known tables ------------------- */

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
    struct writes w = bcverify_slots_written(&in);
    for (unsigned i = 0; i < w.n; i++)
        bcverify_slots_clear(&s.tables, w.lo[i], w.hi[i]);
    if (in.op == OP_TNEW || in.op == OP_TDUP)
        bcverify_slots_add(&s.tables, in.a);
    if (in.op == OP_FNEW) {
        struct slotset cap = bcverify_slots_captured(f, &in);
        bcverify_slots_merge(&s.open, &cap);
    } else if (in.op == OP_UCLO) {
        bcverify_slots_clear(&s.open, in.a, ANY_SLOT);
    }
    return s;
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
            if (visited[r->entry] && bcverify_slots_has(&in[r->entry].open, r->slot + k))
                return bcverify_reject_at(f, r->entry,
                                          "loop control slot %u may be an open upvalue",
                                          r->slot + k);
    }
    for (uint32_t pc = 1; pc < f->sizebc; pc++) {
        struct ins ins = decode(f, pc);
        if (!visited[pc])
            continue;
        /* Returns do not close upvalues: an open one would dangle into a dead frame. */
        if (is_return(ins.op) && !bcverify_slots_empty(&in[pc].open))
            return bcverify_reject_at(f, pc, "%s with upvalues still open (missing UCLO)",
                                      bcverify_ops_info[ins.op].name);
        /* A callee could rewrite its own function or frame-link slot through one. */
        if (call_base(&ins) >= 0) {
            int open = bcverify_slots_highest(&in[pc].open);
            if (open >= call_base(&ins))
                return bcverify_reject_at(f, pc, "%s at slot %d while slot %d is an open upvalue",
                                          bcverify_ops_info[ins.op].name, call_base(&ins), open);
        }
        if (ins.op != OP_TSETM)
            continue;
        /* TSETM stores into slot A-1 without checking that it is a table. */
        if (!bcverify_slots_has(&in[pc].tables, ins.a - 1) ||
            bcverify_slots_has(&in[pc].open, ins.a - 1))
            return bcverify_reject_at(f, pc, "TSETM slot %u is not certainly a fresh table",
                                      ins.a - 1);
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
        rc = bcverify_reject(f->v, "out of memory");
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
                changed = bcverify_slots_merge(&in[t].open, &o.open);
                changed |= bcverify_slots_intersect(&in[t].tables, &o.tables);
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

int bcverify_flow_check_slots(struct func *f)
{
    if (needs_slot_flow(f) && check_slot_flow(f) < 0)
        return -1;
    return 0;
}

/* ---- Upvalue descriptors --------------------------------------------- */

int bcverify_flow_check_immutable_upvalues(struct func *f)
{
    for (unsigned k = 0; k < f->pt->sizeuv; k++) {
        uint32_t uv = (uint32_t)f->pt->uv[2 * k] | (uint32_t)f->pt->uv[2 * k + 1] << 8;
        if ((uv & UV_IMMUTABLE) && ((f->pt->uv_written[k >> 6] >> (k & 63)) & 1))
            return bcverify_reject(f->v, "immutable upvalue %u is assigned", k);
    }
    return 0;
}

/*
 * A child's upvalue descriptors name either a local slot of this parent
 * (LOCAL flag, optional IMMUTABLE flag) or one of the parent's upvalues.
 */
int bcverify_flow_check_child_upvalues(struct func *f, struct proto *child)
{
    for (unsigned k = 0; k < child->sizeuv; k++) {
        uint32_t uv = (uint32_t)child->uv[2 * k] | (uint32_t)child->uv[2 * k + 1] << 8;
        int written = (int)((child->uv_written[k >> 6] >> (k & 63)) & 1);
        if (uv & UV_LOCAL) {
            if ((uv & 0x3f00) || (uv & 0xff) >= f->pt->framesize)
                return bcverify_reject(f->v, "child upvalue %u refers to slot %u outside the frame "
                                       "(framesize %u)", k, uv & 0xff, f->pt->framesize);
        } else if (uv >= f->pt->sizeuv) {
            return bcverify_reject(f->v, "child upvalue %u refers to upvalue %u (%u upvalues)",
                                   k, uv, f->pt->sizeuv);
        } else if (written) {
            f->pt->uv_written[uv >> 6] |= (uint64_t)1 << (uv & 63);
        }
    }
    return 0;
}
