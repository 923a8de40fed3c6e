/*
 * Structural verifier for LuaJIT 2.1 bytecode dumps (GC64/FR2 engine).
 *
 * Client-supplied bytecode is never trusted by LuaJIT itself: lua_load()
 * only checks that a dump can be parsed, not that its instructions are
 * safe to interpret.  bcverify checks a dump against the shapes the LuaJIT
 * parser can produce, so that operands, constants, jumps and loop slots
 * cannot be used to reach memory outside the frame.  It is a pure byte
 * parser: no Lua headers, no allocation that outlives a call, no global
 * state, so both the worker and the supervisor can link it.
 */
#ifndef LUAPOOL_BCVERIFY_H
#define LUAPOOL_BCVERIFY_H

#include <stddef.h>

/*
 * Checks a whole bytecode dump (starting with "\033LJ").
 * Returns 0 if acceptable, -1 if not; on -1 a one-line reason such as
 * "function at line 12, pc 7: KNUM constant 6001 out of range (3 constants)"
 * is written to err (always NUL-terminated when errlen > 0).
 */
int bcverify_chunk(const unsigned char *buf, size_t len, char *err, size_t errlen);

/* Name of opcode op in the engine's numbering, or NULL if out of range
 * (used by tests to cross-check the opcode table against jit.vmdef). */
const char *bcverify_opname(unsigned op);

#endif
