/*
 * Tests for the bytecode verifier: real chunks from the installed LuaJIT
 * must pass, and each attack class, built by patching a real chunk, must
 * be rejected with a message naming the broken rule.
 */
#include "../../src/vm/bcverify.h"

#include <check.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif

enum {
    OP_ISTC = 12, OP_MOV = 18, OP_KSTR = 39, OP_KCDATA = 40, OP_KNUM = 42, OP_KPRI = 43,
    OP_UGET = 45, OP_USETV = 46, OP_FNEW = 51, OP_TSETM = 63, OP_CALLM = 65, OP_CALL = 66,
    OP_ITERC = 69, OP_VARG = 71, OP_ISNEXT = 72, OP_RET1 = 76, OP_FORI = 77, OP_FORL = 79,
    OP_ITERL = 82, OP_LOOP = 85, OP_JLOOP = 87, OP_JMP = 88, OP_UCLO = 50, OP_TDUP = 53
};

/* ---- Chunks ---------------------------------------------------------- */

struct chunk {
    unsigned char *b;
    size_t n;
};

static struct chunk compile(const char *src, int strip)
{
    static const char *dumper =
        "local src, strip = ...; return string.dump(assert(loadstring(src)), strip)";
    struct chunk c = { NULL, 0 };
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    ck_assert_int_eq(luaL_loadstring(L, dumper), 0);
    lua_pushstring(L, src);
    lua_pushboolean(L, strip);
    if (lua_pcall(L, 2, 1, 0) != 0)
        ck_abort_msg("compile failed: %s", lua_tostring(L, -1));
    const char *s = lua_tolstring(L, -1, &c.n);
    c.b = malloc(c.n + 16);
    memcpy(c.b, s, c.n);
    lua_close(L);
    return c;
}

static void expect_ok(const struct chunk *c)
{
    char err[256];
    int rc = bcverify_chunk(c->b, c->n, err, sizeof err);
    ck_assert_msg(rc == 0, "rejected a real chunk: %s", err);
    /* and LuaJIT agrees it is loadable */
    lua_State *L = luaL_newstate();
    ck_assert_int_eq(luaL_loadbuffer(L, (const char *)c->b, c->n, "=t"), 0);
    lua_close(L);
}

static void expect_reject(const struct chunk *c, const char *needle)
{
    char err[256];
    int rc = bcverify_chunk(c->b, c->n, err, sizeof err);
    ck_assert_msg(rc == -1, "accepted a chunk that breaks \"%s\"", needle);
    ck_assert_msg(strstr(err, needle) != NULL, "reason \"%s\" does not mention \"%s\"", err, needle);
}

/* ---- A tiny dump decoder for locating fields to patch ---------------- */

struct tproto {
    size_t len_at, start, end;      /* length uleb, record body [start,end) */
    size_t framesize_at, bc_at, uv_at;
    uint32_t nbc, sizeuv;
};

static uint32_t uleb(const unsigned char *b, size_t *at)
{
    uint32_t v = 0;
    int sh = 0;
    do {
        v |= (uint32_t)(b[*at] & 0x7f) << sh;
        sh += 7;
    } while (b[(*at)++] & 0x80);
    return v;
}

static int decode(const struct chunk *c, struct tproto *out, int max)
{
    size_t at = 4;
    uint32_t flags = uleb(c->b, &at);
    int strip = (flags & 2) != 0, n = 0;
    if (!strip) {
        uint32_t len = uleb(c->b, &at);
        at += len;
    }
    while (n < max) {
        struct tproto *p = &out[n];
        p->len_at = at;
        uint32_t len = uleb(c->b, &at);
        if (len == 0)
            break;
        p->start = at;
        p->end = at + len;
        p->framesize_at = at + 2;
        p->sizeuv = c->b[at + 3];
        at += 4;
        (void)uleb(c->b, &at);
        (void)uleb(c->b, &at);
        p->nbc = uleb(c->b, &at);
        if (!strip && uleb(c->b, &at) != 0) {
            (void)uleb(c->b, &at);
            (void)uleb(c->b, &at);
        }
        p->bc_at = at;
        p->uv_at = at + 4 * (size_t)p->nbc;
        at = p->end;
        n++;
    }
    return n;
}

/* Offset of the nth (0-based) instruction with opcode op in proto p, pc via *pc. */
static size_t find_op(const struct chunk *c, const struct tproto *p, unsigned op, int nth,
                      uint32_t *pc)
{
    for (uint32_t i = 0; i < p->nbc; i++) {
        size_t at = p->bc_at + 4 * (size_t)i;
        if (c->b[at] == op && nth-- == 0) {
            if (pc)
                *pc = i + 1;
            return at;
        }
    }
    ck_abort_msg("opcode %u not found", op);
    return 0;
}

static void set_d(struct chunk *c, size_t at, uint32_t d)
{
    c->b[at + 2] = (unsigned char)(d & 0xff);
    c->b[at + 3] = (unsigned char)(d >> 8);
}

static void set_jump(struct chunk *c, size_t at, uint32_t from_pc, int32_t to_pc)
{
    set_d(c, at, (uint32_t)(to_pc - (int32_t)from_pc - 1 + 0x8000));
}

static int last_proto(const struct chunk *c, struct tproto *ps, int max)
{
    int n = decode(c, ps, max);
    ck_assert_int_gt(n, 0);
    return n - 1;
}

/* ---- Acceptance ------------------------------------------------------ */

static const char *const real_sources[] = {
    "return 1",
    "local t = {} for i = 1, 10 do t[i] = function() return i end end return t",
    "local s = 0 for k, v in pairs({1, 2, x = 3}) do s = s + v end return s",
    "local s = 0 for k, v in ipairs({1, 2}) do s = s + v end for k in next, {} do end return s",
    "local function it(s, c) if c < 3 then return c + 1 end end for i in it, nil, 0 do end",
    "local n = 0 while n < 10 do n = n + 1 if n == 5 then break end end repeat n = n - 1 until n < 0",
    "local function f(...) return select('#', ...), ... end return {f(1, 2, 3)}, {...}, f(...)",
    "do local c = 0 ::top:: c = c + 1 if c < 3 then goto top end end",
    "for i = 1, 2 do if i == 1 then goto continue end print(i) ::continue:: end",
    "local a, b = 1, 2 a, b = b, a return a < 1 or 1 < a or a == 'x' or nil ~= b, a .. b .. 'c'",
    "local t = {1, 2.5, x = {y = {z = true}}, [false] = -0.0, [1e300] = 'big'} return t",
    "local function f(n) if n > 0 then return f(n - 1) end return 'done' end return f(3)",
    "local x = 1 local function g() x = x + 1 return function() return x end end return g",
    "repeat local y = 1 local h = function() return y end until h()",
    "return (function() for k, v in pairs({}) do local f = function() return k end end end)()",
};

START_TEST(real_chunks_are_accepted_stripped_and_not)
{
    for (size_t i = 0; i < sizeof real_sources / sizeof *real_sources; i++) {
        for (int strip = 0; strip <= 1; strip++) {
            struct chunk c = compile(real_sources[i], strip);
            expect_ok(&c);
            free(c.b);
        }
    }
}
END_TEST

START_TEST(opcode_table_matches_the_installed_engine)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    ck_assert_int_eq(luaL_dostring(L, "return require('jit.vmdef').bcnames"), 0);
    size_t n;
    const char *names = lua_tolstring(L, -1, &n);
    ck_assert_int_eq(n % 6, 0);
    for (unsigned op = 0; op < n / 6; op++) {
        char name[7];
        memcpy(name, names + 6 * op, 6);
        name[6] = '\0';
        for (int k = 5; k >= 0 && name[k] == ' '; k--)
            name[k] = '\0';
        ck_assert_ptr_nonnull(bcverify_opname(op));
        ck_assert_str_eq(bcverify_opname(op), name);
    }
    ck_assert_ptr_null(bcverify_opname((unsigned)(n / 6)));
    lua_close(L);
}
END_TEST

static struct chunk read_fixture(const char *name)
{
    char path[512];
    struct chunk c = { NULL, 0 };
    snprintf(path, sizeof path, "%s/%s", FIXTURE_DIR, name);
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "missing fixture %s", path);
    c.b = malloc(1 << 16);
    c.n = fread(c.b, 1, 1 << 16, fp);
    fclose(fp);
    return c;
}

START_TEST(the_hello_fixture_passes_and_the_segfault_fixture_is_refused)
{
    struct chunk ok = read_fixture("hello.luac");
    struct chunk bad = read_fixture("segfault.luac");
    expect_ok(&ok);
    expect_reject(&bad, "unknown opcode");
    free(ok.b);
    free(bad.b);
}
END_TEST

/* ---- Attacks --------------------------------------------------------- */

START_TEST(a_number_constant_index_out_of_range_is_refused)
{
    struct chunk c = compile("local function chk(x) return x end "
                             "chk(0.123456) chk(0.25) return chk(0.5)", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    set_d(&c, find_op(&c, &ps[m], OP_KNUM, 0, NULL), 6001);
    expect_reject(&c, "KNUM constant 6001 out of range (3 constants)");
    free(c.b);
}
END_TEST

START_TEST(a_string_operand_pointing_at_a_child_prototype_is_refused)
{
    struct chunk c = compile("local s = 'str' local f = function() end return s, f", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    size_t kstr = find_op(&c, &ps[m], OP_KSTR, 0, NULL);
    size_t fnew = find_op(&c, &ps[m], OP_FNEW, 0, NULL);
    unsigned char save[2] = { c.b[kstr + 2], c.b[kstr + 3] };
    /* swap the constant operands: KSTR -> child, FNEW -> string */
    c.b[kstr + 2] = c.b[fnew + 2];
    c.b[kstr + 3] = c.b[fnew + 3];
    expect_reject(&c, "is not a string");
    c.b[kstr + 2] = save[0];
    c.b[kstr + 3] = save[1];
    c.b[fnew + 2] = save[0];
    c.b[fnew + 3] = save[1];
    expect_reject(&c, "is not a child prototype");
    free(c.b);
}
END_TEST

START_TEST(a_register_past_the_frame_is_refused)
{
    struct chunk c = compile("local a, b = ... b = a return b", 0);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    size_t mov = find_op(&c, &ps[m], OP_MOV, 0, NULL);
    c.b[mov + 1] = 200;
    expect_reject(&c, "register 200 outside frame");
    free(c.b);
}
END_TEST

START_TEST(an_upvalue_index_out_of_range_is_refused)
{
    struct chunk c = compile("local x = 1 return function() return x end", 1);
    struct tproto ps[8];
    decode(&c, ps, 8);
    expect_ok(&c);
    set_d(&c, find_op(&c, &ps[0], OP_UGET, 0, NULL), 7);
    expect_reject(&c, "UGET upvalue 7 out of range (1 upvalues)");
    free(c.b);
}
END_TEST

START_TEST(a_jump_out_of_the_function_is_refused)
{
    struct chunk c = compile("local a = ... if a then a = 2 end return a", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    uint32_t pc;
    expect_ok(&c);
    size_t jmp = find_op(&c, &ps[m], OP_JMP, 0, &pc);
    set_jump(&c, jmp, pc, 500);
    expect_reject(&c, "outside the function");
    set_jump(&c, jmp, pc, 0);   /* the synthesized header is no target either */
    expect_reject(&c, "outside the function");
    free(c.b);
}
END_TEST

START_TEST(a_jump_into_a_loop_body_is_refused)
{
    struct chunk c = compile("local a, s = ..., 0 if a then s = 1 end "
                             "for i = 1, 3 do s = s + i end return s", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    uint32_t jpc, fpc;
    expect_ok(&c);
    size_t jmp = find_op(&c, &ps[m], OP_JMP, 0, &jpc);
    (void)find_op(&c, &ps[m], OP_FORI, 0, &fpc);
    set_jump(&c, jmp, jpc, (int32_t)fpc + 1);
    expect_reject(&c, "jump into the body of the loop");
    free(c.b);
}
END_TEST

START_TEST(a_forl_without_its_fori_is_refused)
{
    struct chunk c = compile("local s = 0 for i = 1, 3 do s = s + i end return s", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    size_t fori = find_op(&c, &ps[m], OP_FORI, 0, NULL);
    c.b[fori] = OP_JMP;
    expect_reject(&c, "FORL without its FORI");
    free(c.b);
}
END_TEST

START_TEST(a_loop_control_slot_written_in_the_body_is_refused)
{
    struct chunk c = compile("local s = 0 for i = 1, 3 do local x = i s = x end return s", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    size_t fori = find_op(&c, &ps[m], OP_FORI, 0, NULL);
    size_t mov = find_op(&c, &ps[m], OP_MOV, 0, NULL);   /* local x = i */
    c.b[mov + 1] = (unsigned char)(c.b[fori + 1] + 1);     /* overwrite the stop value */
    expect_reject(&c, "writes loop control slot");
    free(c.b);

    /* generic for: clobber the table slot ITERN reads without a type check */
    c = compile("local s = 0 for k, v in pairs({1, 2}) do local x = v s = x end return s", 1);
    m = last_proto(&c, ps, 8);
    expect_ok(&c);
    size_t isnext = find_op(&c, &ps[m], OP_ISNEXT, 0, NULL);
    mov = find_op(&c, &ps[m], OP_MOV, 0, NULL);
    c.b[mov + 1] = (unsigned char)(c.b[isnext + 1] - 2);
    expect_reject(&c, "writes loop control slot");
    free(c.b);
}
END_TEST

START_TEST(an_itern_not_entered_through_isnext_is_refused)
{
    struct chunk c = compile("for k, v in pairs({1}) do end", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    c.b[find_op(&c, &ps[m], OP_ISNEXT, 0, NULL)] = OP_JMP;
    expect_reject(&c, "ITERL without its loop entry");
    free(c.b);
}
END_TEST

START_TEST(a_prototype_length_that_does_not_match_is_refused)
{
    struct chunk c = compile("return 1", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    c.b[ps[m].len_at]--;
    expect_reject(&c, "");
    c.b[ps[m].len_at] += 2;
    expect_reject(&c, "");
    c.b[ps[m].len_at]--;
    c.b[c.n++] = 0;                                   /* trailing byte */
    expect_reject(&c, "trailing bytes");
    c.n -= 2;                                         /* no end marker */
    expect_reject(&c, "truncated");
    free(c.b);
}
END_TEST

START_TEST(a_missing_or_extra_child_prototype_is_refused)
{
    struct chunk c = compile("local f = function() return 1 end return f", 1);
    struct tproto ps[8];
    int n = decode(&c, ps, 8);
    ck_assert_int_eq(n, 2);
    expect_ok(&c);
    /* drop the child record: the parent's FNEW constant claims nothing */
    struct chunk d = { malloc(c.n), 0 };
    memcpy(d.b, c.b, ps[0].len_at);
    memcpy(d.b + ps[0].len_at, c.b + ps[1].len_at, c.n - ps[1].len_at);
    d.n = ps[0].len_at + c.n - ps[1].len_at;
    expect_reject(&d, "no prototype left to claim");
    /* duplicate the child record: one prototype is left over at the end */
    size_t child = ps[1].len_at - ps[0].len_at;
    d.b = realloc(d.b, c.n + child);
    memcpy(d.b, c.b, ps[1].len_at);
    memcpy(d.b + ps[1].len_at, c.b + ps[0].len_at, c.n - ps[0].len_at);
    d.n = c.n + child;
    expect_reject(&d, "left unclaimed");
    free(d.b);
    free(c.b);
}
END_TEST

START_TEST(an_upvalue_descriptor_out_of_range_is_refused)
{
    struct chunk c = compile("local x = 1 return function() x = 2 return x end", 1);
    struct tproto ps[8];
    decode(&c, ps, 8);
    expect_ok(&c);
    c.b[ps[0].uv_at] = 240;                           /* local slot 240 */
    expect_reject(&c, "outside the frame");
    c.b[ps[0].uv_at] = 0;
    c.b[ps[0].uv_at + 1] = 0x00;                      /* parent upvalue 0 of none */
    expect_reject(&c, "refers to upvalue 0");
    c.b[ps[0].uv_at + 1] = 0xc0;                      /* immutable, but assigned */
    expect_reject(&c, "immutable upvalue 0 is assigned");
    free(c.b);
}
END_TEST

START_TEST(a_jit_only_opcode_is_refused)
{
    struct chunk c = compile("local n = 0 while n < 3 do n = n + 1 end return n", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    c.b[find_op(&c, &ps[m], OP_LOOP, 0, NULL)] = OP_JLOOP;
    expect_reject(&c, "opcode JLOOP is not allowed");
    free(c.b);
}
END_TEST

START_TEST(a_cdata_constant_is_refused)
{
    struct chunk c = compile("return 'ab'", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    size_t kstr = find_op(&c, &ps[m], OP_KSTR, 0, NULL);
    c.b[kstr] = OP_KCDATA;
    expect_reject(&c, "opcode KCDATA is not allowed");
    c.b[kstr] = OP_KSTR;
    /* turn the constant "ab" (type 5+2) into an int64 cdata (type 2, lo='a', hi='b') */
    unsigned char *k = memmem(c.b + ps[m].uv_at, ps[m].end - ps[m].uv_at, "\x07" "ab", 3);
    ck_assert_ptr_nonnull(k);
    *k = 2;
    expect_reject(&c, "FFI cdata constant 0 refused");
    free(c.b);
}
END_TEST

START_TEST(wrong_header_flags_are_refused)
{
    struct chunk c = compile("return 1", 1);
    expect_ok(&c);
    c.b[4] ^= 0x01;
    expect_reject(&c, "big-endian");
    c.b[4] ^= 0x01 | 0x04;
    expect_reject(&c, "FFI");
    c.b[4] ^= 0x04 | 0x08;
    expect_reject(&c, "GC64/FR2");
    c.b[4] ^= 0x08;
    c.b[3] = 1;
    expect_reject(&c, "bytecode version");
    c.b[3] = 2;
    c.b[0] = 'x';
    expect_reject(&c, "not a LuaJIT bytecode dump");
    free(c.b);
}
END_TEST

START_TEST(a_forged_primitive_or_stale_multi_result_is_refused)
{
    struct chunk c = compile("local t = {...} return t", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    size_t varg = find_op(&c, &ps[m], OP_VARG, 0, NULL);
    c.b[varg + 3] = 2;                                /* VARG B=2: no multi-result */
    expect_reject(&c, "TSETM does not follow a multi-value producer");
    free(c.b);

    c = compile("local a = nil return a", 1);
    m = last_proto(&c, ps, 8);
    expect_ok(&c);
    set_d(&c, find_op(&c, &ps[m], OP_KPRI, 0, NULL), 4);  /* would forge a string tag */
    expect_reject(&c, "KPRI primitive 4 not nil/false/true");
    free(c.b);
}
END_TEST

START_TEST(a_tsetm_start_index_that_is_not_the_parser_form_is_refused)
{
    /* the VM adds TSETM's constant to the array index unchecked */
    struct chunk c = compile("local function f() return 1, 2 end local y = 0.5 "
                             "return {1, 2, f()}, y", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    size_t tsetm = find_op(&c, &ps[m], OP_TSETM, 0, NULL);
    set_d(&c, tsetm, c.b[tsetm + 2] ^ 1u);          /* point it at 0.5 instead */
    expect_reject(&c, "TSETM start index constant");
    free(c.b);
}
END_TEST

START_TEST(the_call_count_of_a_vararg_copy_must_match_the_parameters)
{
    struct chunk c = compile("local function f(a, ...) local x, y = ... return x end return f", 1);
    struct tproto ps[8];
    decode(&c, ps, 8);
    expect_ok(&c);
    size_t varg = find_op(&c, &ps[0], OP_VARG, 0, NULL);
    c.b[varg + 2] = 5;
    expect_reject(&c, "VARG parameter count 5 != numparams 1");
    free(c.b);
}
END_TEST

START_TEST(an_upvalue_left_open_at_a_return_is_refused)
{
    struct chunk c = compile("local x = 1 local f = function() return x end return f", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    size_t uclo = find_op(&c, &ps[m], OP_UCLO, 0, NULL);
    c.b[uclo] = OP_JMP;                               /* same target, no closing */
    expect_reject(&c, "upvalues still open");
    free(c.b);
}
END_TEST

START_TEST(a_call_over_an_open_upvalue_is_refused)
{
    /* the mutation run found this: a closure aliasing the callee's frame link */
    struct chunk c = compile("local t = {} for k, v in pairs(t) do t[1] = function() return v end end", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    size_t uclo = find_op(&c, &ps[m], OP_UCLO, 0, NULL);
    c.b[uclo] = OP_JMP;
    expect_reject(&c, "open upvalue");
    free(c.b);
}
END_TEST

START_TEST(a_closure_capturing_a_loop_control_slot_is_refused)
{
    struct chunk c = compile("local fs = {} for i = 1, 2 do fs[i] = function() return i end end return fs", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    size_t fori = find_op(&c, &ps[m], OP_FORI, 0, NULL);
    c.b[ps[0].uv_at] = c.b[fori + 1];                 /* capture the hidden index */
    expect_reject(&c, "FNEW captures loop control slot");
    free(c.b);
}
END_TEST

START_TEST(a_tsetm_into_a_slot_that_is_not_a_fresh_table_is_refused)
{
    struct chunk c = compile("local function f() return 1, 2 end return {1, f()}", 1);
    struct tproto ps[8];
    int m = last_proto(&c, ps, 8);
    expect_ok(&c);
    size_t tnew = find_op(&c, &ps[m], OP_TDUP, 0, NULL);
    c.b[tnew] = OP_KPRI;                              /* slot holds nil instead */
    set_d(&c, tnew, 0);
    expect_reject(&c, "not certainly a fresh table");
    free(c.b);
}
END_TEST

/* ---- Robustness ------------------------------------------------------ */

static uint64_t rng = 88172645463325252ull;

static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

START_TEST(random_mutations_never_crash_the_verifier)
{
    char err[256];
    long accepted = 0, rounds = 0;
    for (size_t s = 0; s < sizeof real_sources / sizeof *real_sources; s++) {
        struct chunk orig = compile(real_sources[s], (int)(s & 1));
        unsigned char *buf = malloc(orig.n);
        for (int i = 0; i < 2000; i++, rounds++) {
            memcpy(buf, orig.b, orig.n);
            int edits = 1 + (int)(next_random() % 3);
            for (int e = 0; e < edits; e++) {
                size_t at = (size_t)(next_random() % orig.n);
                if (next_random() & 1)
                    buf[at] ^= (unsigned char)(1u << (next_random() % 8));
                else
                    buf[at] = (unsigned char)next_random();
            }
            size_t len = orig.n - (size_t)(next_random() % 4 == 0 ? next_random() % orig.n : 0);
            accepted += bcverify_chunk(buf, len, err, sizeof err) == 0;
        }
        free(buf);
        free(orig.b);
    }
    ck_assert_int_lt(accepted, rounds);
}
END_TEST

START_TEST(error_buffers_of_any_size_are_safe)
{
    struct chunk c = compile("return 1", 1);
    char small[8];
    c.b[0] = 0;
    ck_assert_int_eq(bcverify_chunk(c.b, c.n, small, sizeof small), -1);
    ck_assert_uint_lt(strlen(small), sizeof small);
    ck_assert_int_eq(bcverify_chunk(c.b, c.n, NULL, 0), -1);
    ck_assert_int_eq(bcverify_chunk(NULL, 0, small, sizeof small), -1);
    ck_assert_int_eq(bcverify_chunk(c.b, 0, small, sizeof small), -1);
    free(c.b);
}
END_TEST

static Suite *bcverify_suite(void)
{
    Suite *s = suite_create("bcverify");
    TCase *ok = tcase_create("accepts");
    tcase_add_test(ok, real_chunks_are_accepted_stripped_and_not);
    tcase_add_test(ok, opcode_table_matches_the_installed_engine);
    tcase_add_test(ok, the_hello_fixture_passes_and_the_segfault_fixture_is_refused);
    suite_add_tcase(s, ok);

    TCase *bad = tcase_create("attacks");
    tcase_add_test(bad, a_number_constant_index_out_of_range_is_refused);
    tcase_add_test(bad, a_string_operand_pointing_at_a_child_prototype_is_refused);
    tcase_add_test(bad, a_register_past_the_frame_is_refused);
    tcase_add_test(bad, an_upvalue_index_out_of_range_is_refused);
    tcase_add_test(bad, a_jump_out_of_the_function_is_refused);
    tcase_add_test(bad, a_jump_into_a_loop_body_is_refused);
    tcase_add_test(bad, a_forl_without_its_fori_is_refused);
    tcase_add_test(bad, a_loop_control_slot_written_in_the_body_is_refused);
    tcase_add_test(bad, an_itern_not_entered_through_isnext_is_refused);
    tcase_add_test(bad, a_prototype_length_that_does_not_match_is_refused);
    tcase_add_test(bad, a_missing_or_extra_child_prototype_is_refused);
    tcase_add_test(bad, an_upvalue_descriptor_out_of_range_is_refused);
    tcase_add_test(bad, a_jit_only_opcode_is_refused);
    tcase_add_test(bad, a_cdata_constant_is_refused);
    tcase_add_test(bad, wrong_header_flags_are_refused);
    tcase_add_test(bad, a_forged_primitive_or_stale_multi_result_is_refused);
    tcase_add_test(bad, a_tsetm_start_index_that_is_not_the_parser_form_is_refused);
    tcase_add_test(bad, the_call_count_of_a_vararg_copy_must_match_the_parameters);
    tcase_add_test(bad, an_upvalue_left_open_at_a_return_is_refused);
    tcase_add_test(bad, a_call_over_an_open_upvalue_is_refused);
    tcase_add_test(bad, a_closure_capturing_a_loop_control_slot_is_refused);
    tcase_add_test(bad, a_tsetm_into_a_slot_that_is_not_a_fresh_table_is_refused);
    suite_add_tcase(s, bad);

    TCase *robust = tcase_create("robustness");
    tcase_set_timeout(robust, 120);
    tcase_add_test(robust, random_mutations_never_crash_the_verifier);
    tcase_add_test(robust, error_buffers_of_any_size_are_safe);
    suite_add_tcase(s, robust);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(bcverify_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
