/*
 * bcverify_loops.c - for loops.  Each FORI/FORL pair and each JMP|ISNEXT,
 * ITERC|ITERN, ITERL triple is matched into a region (entry, body, control
 * instructions, three control slots); regions must nest, and nothing in a
 * body may write or capture the control slots, which the VM trusts.
 *
 * It must only run after bcverify_ops.c accepted every instruction (it
 * follows f->target without bounds checks) and never judges edges into a
 * body: bcverify_flow.c does, with the f->owner map filled here.
 */
#include <stdlib.h>

#include "vm/bcverify_internal.h"

/* ---- Loop structure -------------------------------------------------- */

static int add_region(struct func *f, uint32_t pc, uint32_t entry, uint32_t end,
                      uint32_t control_pc, uint32_t slot)
{
    struct region *r = &f->regions[f->nregions];
    if (f->region_at[entry + 1] >= 0)
        return bcverify_reject_at(f, pc, "two loops share a body start");
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
            return bcverify_reject_at(f, pc, "FORI does not jump forward past its loop");
        l = decode(f, forl);
        if (l.op != OP_FORL || l.a != in->a || (uint32_t)f->target[forl] != pc + 1)
            return bcverify_reject_at(f, pc, "FORI without a matching FORL");
        return add_region(f, pc, pc, forl, forl, in->a);
    }
    {   /* FORL */
        uint32_t fori = (uint32_t)f->target[pc] - 1;
        struct ins i;
        if (fori >= pc || fori < 1)
            return bcverify_reject_at(f, pc, "FORL does not jump back into its loop");
        i = decode(f, fori);
        if (i.op != OP_FORI || i.a != in->a || (uint32_t)f->target[fori] != pc + 1)
            return bcverify_reject_at(f, pc, "FORL without its FORI");
        return 0;
    }
}

/* JMP/ISNEXT A -> ITERC/ITERN A; ITERL A right after, jumping back past the entry. */
static int match_generic_for(struct func *f, uint32_t pc, const struct ins *in)
{
    if (in->op == OP_ITERC || in->op == OP_ITERN) {
        struct ins l = pc + 1 < f->sizebc ? decode(f, pc + 1) : (struct ins){ 0, 0, 0, 0, 0 };
        if (l.op != OP_ITERL || l.a != in->a)
            return bcverify_reject_at(f, pc, "%s not followed by its ITERL",
                                      bcverify_ops_info[in->op].name);
        return 0;
    }
    if (in->op == OP_ISNEXT) {
        uint32_t t = (uint32_t)f->target[pc];
        if (t <= pc || decode(f, t).op != OP_ITERN)
            return bcverify_reject_at(f, pc, "ISNEXT does not jump to an ITERN");
        return 0;   /* the ITERL completes the match */
    }
    {   /* ITERL */
        uint32_t entry = (uint32_t)f->target[pc] - 1;
        struct ins e, it = decode(f, pc - 1);
        if (entry >= pc || entry < 1)
            return bcverify_reject_at(f, pc, "ITERL does not jump back into its loop");
        e = decode(f, entry);
        if (!((e.op == OP_JMP && it.op == OP_ITERC) || (e.op == OP_ISNEXT && it.op == OP_ITERN)) ||
            e.a != in->a || it.a != in->a || (uint32_t)f->target[entry] != pc - 1)
            return bcverify_reject_at(f, pc, "ITERL without its loop entry and iterator call");
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
            return bcverify_reject_at(f, pc, "LOOP target before the loop");
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
            return bcverify_reject_at(f, pc, "ISNEXT is not the entry of a for-in loop");
        if (op == OP_ITERN && (pc + 1 >= f->sizebc || f->target[pc + 1] < 0 ||
                               decode(f, (uint32_t)f->target[pc + 1] - 1).op != OP_ISNEXT))
            return bcverify_reject_at(f, pc, "ITERN outside an ISNEXT loop");
    }
    return 0;
}

int bcverify_loops_match(struct func *f)
{
    for (uint32_t pc = 1; pc < f->sizebc; pc++)
        if (check_loop_instruction(f, pc) < 0)
            return -1;
    return check_isnext_matched(f);
}

/* ---- Loop bodies: nesting, entry, control slots --------------------- */

struct open_loop {
    uint32_t region;
    struct slotset protected_slots;  /* this loop's and all enclosing */
};

static void control_slots(const struct region *r, struct slotset *s)
{
    for (uint32_t i = 0; i < 3; i++)
        bcverify_slots_add(s, r->slot + i);
}

static int writes_hit(const struct writes *w, const struct slotset *s)
{
    for (unsigned i = 0; i < w->n; i++) {
        struct slotset r = bcverify_slots_range(w->lo[i], w->hi[i]);
        int slot = bcverify_slots_lowest_common(&r, s);
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
    struct writes w = bcverify_slots_written(&in);
    int hit;
    if (pc >= r->control_pc)
        guard = depth > 1 ? &stack[depth - 2].protected_slots : &none;
    hit = writes_hit(&w, guard);
    if (hit)
        return bcverify_reject_at(f, pc, "%s writes loop control slot %d inside the loop body",
                                  bcverify_ops_info[in.op].name, hit - 1);
    if (in.op == OP_FNEW) {
        struct slotset cap = bcverify_slots_captured(f, &in);
        int slot = bcverify_slots_lowest_common(&cap, guard);
        if (slot >= 0)
            return bcverify_reject_at(f, pc, "FNEW captures loop control slot %d", slot);
    }
    return 0;
}

/* Sweeps pcs once, keeping a stack of the loops that contain pc. */

int bcverify_loops_check_bodies(struct func *f)
{
    struct open_loop *stack = calloc(f->nregions + 1, sizeof *stack);
    uint32_t depth = 0;
    int rc = 0;
    if (!stack)
        return bcverify_reject(f->v, "out of memory");
    for (uint32_t pc = 1; pc < f->sizebc && rc == 0; pc++) {
        while (depth > 0 && f->regions[stack[depth - 1].region].end < pc)
            depth--;
        if (f->region_at[pc] >= 0) {
            const struct region *r = &f->regions[f->region_at[pc]];
            if (depth > 0 && f->regions[stack[depth - 1].region].end < r->end) {
                rc = bcverify_reject_at(f, pc, "loops overlap without nesting");
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
