/*
 * bcverify_cli: runs the bytecode verifier on dump files.
 *
 *   bcverify_cli FILE          print OK or the rejection reason; exit 0/1
 *   bcverify_cli -l FILE...    "FILE: OK" or "FILE: reason" per file; exit 1
 *                              if any was rejected (tests/vm/bc_corpus.sh)
 *   bcverify_cli -t FILE       also time bcverify_chunk against lua_load
 *   bcverify_cli -r FILE       run FILE (if accepted) the way mutants are run
 *   bcverify_cli -m N FILE     N random mutations of FILE through the
 *                              verifier; every accepted mutant is loaded
 *                              and run under an instruction-count hook
 *                              (build with ASan/UBSan to catch gaps)
 *
 * A test tool only: it executes bytecode the verifier accepted, in a
 * fresh state with no libraries but base, so never point it at anything
 * but fixtures.
 */
#include "../../src/vm/bcverify.h"

#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (!fp)
        return NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(fp);
    return buf;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int load_only(lua_State *L, const unsigned char *buf, size_t len)
{
    int rc = luaL_loadbuffer(L, (const char *)buf, len, "=chunk");
    lua_settop(L, 0);
    return rc;
}

static void time_it(const unsigned char *buf, size_t len)
{
    char err[256];
    lua_State *L = luaL_newstate();
    int rounds = (int)(2000000 / (len + 64)) + 10;
    double t0 = now_us();
    for (int i = 0; i < rounds; i++)
        (void)bcverify_chunk(buf, len, err, sizeof err);
    double t1 = now_us();
    for (int i = 0; i < rounds; i++)
        (void)load_only(L, buf, len);
    double t2 = now_us();
    double kib = (double)len / 1024.0;
    printf("size %zu bytes, %d rounds: verify %.2f us (%.2f us/KiB), lua_load %.2f us (%.2f us/KiB)\n",
           len, rounds, (t1 - t0) / rounds, (t1 - t0) / rounds / kib,
           (t2 - t1) / rounds, (t2 - t1) / rounds / kib);
    lua_close(L);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void mutate(unsigned char *buf, size_t len)
{
    int edits = 1 + (int)(next_random() % 4);
    for (int e = 0; e < edits; e++) {
        size_t at = (size_t)(next_random() % len);
        switch (next_random() % 3) {
        case 0: buf[at] ^= (unsigned char)(1u << (next_random() % 8)); break;
        case 1: buf[at] = (unsigned char)next_random(); break;
        default: buf[at] = (unsigned char)(buf[at] + 1); break;
        }
    }
}

static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    luaL_error(L, "instruction budget exhausted");
}

/* Runs an accepted mutant in a fresh state; errors are fine, crashes are not. */
static void run_mutant(const unsigned char *buf, size_t len)
{
    lua_State *L = luaL_newstate();
    /* interpreter only: compiled traces would not call the count hook */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    luaopen_base(L);
    lua_settop(L, 0);
    if (luaL_loadbuffer(L, (const char *)buf, len, "=mutant") == 0) {
        lua_sethook(L, stop_hook, LUA_MASKCOUNT, 100000);
        (void)lua_pcall(L, 0, 0, 0);
    }
    lua_close(L);
}

static int mutation_run(const unsigned char *orig, size_t len, long n)
{
    unsigned char *buf = malloc(len);
    long accepted = 0;
    char err[256];
    if (!buf || len < 8)
        return 1;
    for (long i = 0; i < n; i++) {
        memcpy(buf, orig, len);
        /* keep the header so mutations reach the prototype parser */
        mutate(buf + 5, len - 5);
        if (bcverify_chunk(buf, len, err, sizeof err) == 0) {
            const char *save = getenv("BCV_SAVE_MUTANT");
            const char *dir = getenv("BCV_SAVE_DIR");
            char path[4096];
            accepted++;
            if (dir) {      /* every accepted mutant, numbered */
                snprintf(path, sizeof path, "%s/%06ld.bc", dir, i);
                save = path;
            }
            if (save) {     /* keep the mutant about to run, for post-mortems */
                FILE *fp = fopen(save, "wb");
                if (fp) {
                    fwrite(buf, 1, len, fp);
                    fclose(fp);
                }
            }
            run_mutant(buf, len);
        }
    }
    printf("mutations %ld accepted %ld\n", n, accepted);
    free(buf);
    return 0;
}

/* One process for many dumps: sanitizer builds start slowly. */
static int verify_files(int n, char **paths)
{
    int rejected = 0;
    for (int k = 0; k < n; k++) {
        size_t len = 0;
        unsigned char *buf = read_file(paths[k], &len);
        char err[256];
        if (!buf) {
            printf("%s: cannot read\n", paths[k]);
            rejected = 1;
            continue;
        }
        if (bcverify_chunk(buf, len, err, sizeof err) == 0) {
            printf("%s: OK\n", paths[k]);
        } else {
            printf("%s: %s\n", paths[k], err);
            rejected = 1;
        }
        fflush(stdout);     /* a crash later must not swallow these lines */
        free(buf);
    }
    return rejected;
}

int main(int argc, char **argv)
{
    int timing = 0, run_as_is = 0, list = 0;
    long mutations = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-t") == 0)
            timing = 1;
        else if (strcmp(argv[i], "-r") == 0)
            run_as_is = 1;
        else if (strcmp(argv[i], "-l") == 0)
            list = 1;
        else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
            mutations = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            rng_state = strtoull(argv[++i], NULL, 10) | 1;
        else
            break;
    }
    if (list && i < argc)
        return verify_files(argc - i, argv + i);
    if (i != argc - 1 || list) {
        fprintf(stderr, "usage: %s [-t] [-r] [-m N [-s SEED]] FILE | -l FILE...\n", argv[0]);
        return 2;
    }
    size_t len = 0;
    unsigned char *buf = read_file(argv[i], &len);
    if (!buf) {
        perror(argv[i]);
        return 2;
    }
    char err[256];
    int rc = bcverify_chunk(buf, len, err, sizeof err);
    printf("%s\n", rc == 0 ? "OK" : err);
    if (timing)
        time_it(buf, len);
    if (run_as_is && rc == 0)
        run_mutant(buf, len);
    if (mutations > 0)
        mutation_run(buf, len, mutations);
    free(buf);
    return rc == 0 ? 0 : 1;
}
