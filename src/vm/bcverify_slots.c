/*
 * bcverify_slots.c - sets of register slots, and the two questions the loop
 * and flow checks ask of an instruction: which slots may it overwrite, and
 * which of the parent's slots does the closure an FNEW creates capture.
 *
 * Pure functions of their arguments: never reject, allocate or keep state.
 * When unsure an answer must err towards "written" (a call clobbers
 * everything from its base up).
 */
#include "vm/bcverify_internal.h"

void bcverify_slots_add(struct slotset *s, uint32_t slot)
{
    s->w[slot >> 6] |= (uint64_t)1 << (slot & 63);
}

int bcverify_slots_has(const struct slotset *s, uint32_t slot)
{
    return (int)((s->w[slot >> 6] >> (slot & 63)) & 1);
}

/* The slots lo..hi (clamped to 255) as a set, built a word at a time. */
struct slotset bcverify_slots_range(uint32_t lo, uint32_t hi)
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

int bcverify_slots_lowest_common(const struct slotset *a, const struct slotset *b)
{
    for (int i = 0; i < 4; i++) {
        uint64_t x = a->w[i] & b->w[i];
        if (x)
            return i * 64 + __builtin_ctzll(x);
    }
    return -1;
}

void bcverify_slots_clear(struct slotset *s, uint32_t lo, uint32_t hi)
{
    struct slotset r = bcverify_slots_range(lo, hi);
    for (int i = 0; i < 4; i++)
        s->w[i] &= ~r.w[i];
}

int bcverify_slots_merge(struct slotset *into, const struct slotset *from)
{
    int changed = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t n = into->w[i] | from->w[i];
        changed |= n != into->w[i];
        into->w[i] = n;
    }
    return changed;
}

int bcverify_slots_intersect(struct slotset *into, const struct slotset *from)
{
    int changed = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t n = into->w[i] & from->w[i];
        changed |= n != into->w[i];
        into->w[i] = n;
    }
    return changed;
}

int bcverify_slots_empty(const struct slotset *s)
{
    return (s->w[0] | s->w[1] | s->w[2] | s->w[3]) == 0;
}

int bcverify_slots_highest(const struct slotset *s)
{
    for (int i = 3; i >= 0; i--)
        if (s->w[i])
            return i * 64 + 63 - __builtin_clzll(s->w[i]);
    return -1;
}

/* ---- Slots written by an instruction --------------------------------- */

static void add_write(struct writes *w, uint32_t lo, uint32_t hi)
{
    w->lo[w->n] = lo;
    w->hi[w->n] = hi > ANY_SLOT ? ANY_SLOT : hi;
    w->n++;
}

/* Slots an instruction may overwrite; calls clobber everything from their base up. */
struct writes bcverify_slots_written(const struct ins *in)
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
        if (bcverify_ops_info[in->op].a == M_DST)
            add_write(&w, in->a, in->a);
        break;
    }
    return w;
}

/* Local slots of the parent captured by the closure an FNEW creates. */
struct slotset bcverify_slots_captured(const struct func *f, const struct ins *in)
{
    struct slotset s = { { 0, 0, 0, 0 } };
    const struct proto *child = &f->v->protos[f->kgc_child[in->d]];
    for (unsigned i = 0; i < child->sizeuv; i++) {
        uint32_t uv = (uint32_t)child->uv[2 * i] | (uint32_t)child->uv[2 * i + 1] << 8;
        if (uv & UV_LOCAL)
            bcverify_slots_add(&s, uv & 0xff);
    }
    return s;
}
