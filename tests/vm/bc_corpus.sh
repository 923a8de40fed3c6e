#!/bin/sh
# bc_corpus.sh - "no false rejections" run for the bytecode verifier.
#
# Every .lua file shipped by the LuaJIT and Lua packages, the project's
# own Lua files and generated programs is compiled by luajit itself
# (luajit -b, luajit -bg, string.dump with and without strip of every
# reachable function value); the verifier must accept 100 % of it.
#
# usage: tests/vm/bc_corpus.sh [CLI] [WORKDIR]
#   CLI      verifier CLI (default /tmp/bcv/bcverify_cli)
#   WORKDIR  scratch directory (default /tmp/bcv/corpus), wiped first
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cli=${1:-/tmp/bcv/bcverify_cli}
work=${2:-/tmp/bcv/corpus}
gen_count=${BC_GEN_COUNT:-60}

[ -x "$cli" ] || { echo "verifier CLI $cli not built" >&2; exit 2; }
rm -rf "$work"
mkdir -p "$work/gen" "$work/bc"

# ---- collect sources ------------------------------------------------------
list="$work/files.txt"
: > "$list"
for pkg in luajit2 libluajit2-5.1-dev libluajit2-5.1-common; do
    dpkg -L "$pkg" 2>/dev/null | grep '\.lua$' >> "$list"
done
for dir in /usr/share/lua /usr/lib/*/lua /usr/local/share/lua /usr/share/luajit*; do
    [ -d "$dir" ] && find "$dir" -name '*.lua' -type f >> "$list"
done
find "$root" -name '*.lua' -type f ! -path '*/.git/*' >> "$list"
luajit "$here/bc_gen.lua" gen "$work/gen" "$gen_count" || exit 2
find "$work/gen" -name '*.lua' -type f >> "$list"
sort -u "$list" -o "$list"

# ---- compile and verify ---------------------------------------------------
files=0 skipped=0 chunks=0 accepted=0 rejected=0
n=0
verify() {
    chunks=$((chunks + 1))
    if out=$("$cli" "$1"); then
        accepted=$((accepted + 1))
    else
        rejected=$((rejected + 1))
        echo "REJECTED $1 ($2): $out"
    fi
}

while IFS= read -r src; do
    [ -f "$src" ] || continue
    files=$((files + 1))
    n=$((n + 1))
    base="$work/bc/$n"
    if ! luajit -b "$src" "$base.b" 2>/dev/null; then
        skipped=$((skipped + 1))
        continue
    fi
    luajit -bg "$src" "$base.bg" 2>/dev/null
    verify "$base.b" "$src"
    [ -f "$base.bg" ] && verify "$base.bg" "$src"
    # Generated programs are safe to run; jit.* modules are safe to require.
    how=
    case "$src" in
        "$work/gen/"*) how=run ;;
        */jit/*.lua) how="require=jit.$(basename "$src" .lua)" ;;
    esac
    luajit "$here/bc_gen.lua" dump "$src" "$base.d" $how >/dev/null 2>&1
    for d in "$base".d.*.bc; do
        [ -f "$d" ] && verify "$d" "$src"
    done
done < "$list"

echo "files $files (skipped, luajit could not compile: $skipped)"
echo "chunks $chunks accepted $accepted rejected $rejected"
[ "$rejected" -eq 0 ] && [ "$chunks" -gt 0 ]
