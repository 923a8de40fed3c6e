#!/bin/sh
# bc_corpus.sh - "no false rejections" run for the bytecode verifier.
#
# Every .lua file shipped by the LuaJIT and Lua packages, the project's
# own Lua files and generated programs is compiled by luajit itself
# (luajit -b, luajit -bg, string.dump with and without strip of every
# reachable function value); the verifier must accept 100 % of it.
# `make check-bytecode-corpus` builds the CLI and runs this.
#
# usage: tests/vm/bc_corpus.sh [CLI] [WORKDIR]
#   CLI      verifier CLI (default build/bcverify_cli)
#   WORKDIR  scratch directory, wiped first (default: a mktemp -d directory,
#            removed at the end)
# LUAJIT names the compiler (default: luajit on PATH, else /usr/bin/luajit,
# from the luajit2 package that scripts/install-deps.sh installs).
# Prints the counts; exits 0 only if every chunk was accepted, 1 if any was
# rejected (each printed as REJECTED), 2 if it could not run.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cli=${1:-$root/build/bcverify_cli}
gen_count=${BC_GEN_COUNT:-60}

luajit=${LUAJIT:-$(command -v luajit || echo /usr/bin/luajit)}
[ -x "$luajit" ] || command -v "$luajit" >/dev/null 2>&1 ||
    { echo "bc_corpus: luajit not found (scripts/install-deps.sh installs luajit2)" >&2; exit 2; }
[ -x "$cli" ] || { echo "bc_corpus: verifier CLI $cli not built" >&2; exit 2; }
case $cli in /*) ;; *) cli=$PWD/$cli ;; esac

temp_work=0
if [ $# -ge 2 ]; then
    work=$2
    case $work in ''|/) echo "bc_corpus: refusing WORKDIR '$work'" >&2; exit 2 ;; esac
    rm -rf "$work"
    mkdir -p "$work" || exit 2
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/bc_corpus.XXXXXX") || exit 2
    temp_work=1
    trap 'rm -rf "$work"' EXIT
    trap 'exit 2' HUP INT TERM
fi
work=$(cd "$work" && pwd)
mkdir -p "$work/gen" "$work/bc" || exit 2

# ---- collect sources ------------------------------------------------------
list="$work/files.txt"
: > "$list"
for pkg in luajit2 libluajit2-5.1-dev libluajit2-5.1-common; do
    dpkg -L "$pkg" 2>/dev/null | grep '\.lua$' >> "$list"
done
for dir in /usr/share/lua /usr/lib/*/lua /usr/local/share/lua /usr/share/luajit*; do
    [ -d "$dir" ] && find "$dir" -name '*.lua' -type f >> "$list"
done
# The checkout, without build output (earlier corpus runs leave programs there).
find "$root" \( -path "$root/.git" -o -path "$root/build" -o -path "$root/build-*" \
    -o -path "$work" \) -prune -o -name '*.lua' -type f -print >> "$list"
"$luajit" "$here/bc_gen.lua" gen "$work/gen" "$gen_count" || exit 2
find "$work/gen" -name '*.lua' -type f >> "$list"
sort -u "$list" -o "$list"

# ---- compile and verify ---------------------------------------------------
files=0 skipped=0 chunks=0 accepted=0 rejected=0
n=0
# verify SRC CHUNK...: one CLI run per source file; a chunk counts as
# accepted only on its own "CHUNK: OK" line, and a CLI that fails after
# its last line (a sanitizer report at exit) costs one more.
verify() {
    src=$1
    shift
    chunks=$((chunks + $#))
    out=$("$cli" -l "$@")
    rc=$?
    ok=$(printf '%s\n' "$out" | grep -c ': OK$')
    [ "$rc" -eq 0 ] || [ "$ok" -lt $# ] || ok=$((ok - 1))
    accepted=$((accepted + ok))
    rejected=$((rejected + $# - ok))
    [ "$ok" -eq $# ] && return
    printf '%s\n' "$out" | grep -v -e ': OK$' -e '^$' | sed "s|^|REJECTED ($src) |"
    [ "$rc" -le 1 ] || echo "REJECTED ($src) verifier exited with status $rc after $ok of $# chunks"
}

while IFS= read -r src; do
    [ -f "$src" ] || continue
    files=$((files + 1))
    n=$((n + 1))
    base="$work/bc/$n"
    if ! "$luajit" -b "$src" "$base.b" 2>/dev/null; then
        skipped=$((skipped + 1))
        continue
    fi
    "$luajit" -bg "$src" "$base.bg" 2>/dev/null
    # Generated programs are safe to run; jit.* modules are safe to require.
    how=
    case "$src" in
        "$work/gen/"*) how=run ;;
        */jit/*.lua) how="require=jit.$(basename "$src" .lua)" ;;
    esac
    "$luajit" "$here/bc_gen.lua" dump "$src" "$base.d" $how >/dev/null 2>&1
    set -- "$base.b"
    [ -f "$base.bg" ] && set -- "$@" "$base.bg"
    for d in "$base".d.*.bc; do
        [ -f "$d" ] && set -- "$@" "$d"
    done
    verify "$src" "$@"
done < "$list"

echo "files $files (skipped, luajit could not compile: $skipped)"
echo "chunks $chunks accepted $accepted rejected $rejected"
if [ "$rejected" -gt 0 ] && [ "$temp_work" = 1 ]; then
    trap - EXIT     # keep the rejected dumps for a look
    echo "kept $work"
fi
[ "$chunks" -gt 0 ] || { echo "bc_corpus: no chunk compiled" >&2; exit 2; }
[ "$rejected" -eq 0 ]
