#!/bin/sh
# Checks the layering docs/ARCHITECTURE.md promises, so it holds by
# construction rather than by review:
#   - only src/vm/ includes the Lua headers, only src/http/ microhttpd.h;
#   - a folder includes only the folders below it (the arrows);
#   - no two files include or call each other in a loop (include graph from
#     the sources, call graph from the objects' defined/undefined symbols).
#   scripts/check-layers.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/.." || exit 2
build=${1:-build}
failed=0
fail() { echo "check-layers: $*" >&2; failed=1; }

lua=$(grep -lE '^#[[:space:]]*include[[:space:]]*[<"](lua|lauxlib|lualib|luajit)\.h' \
	$(find src include -name '*.[ch]' ! -path 'src/vm/*'))
[ -z "$lua" ] || fail "Lua headers outside src/vm/: $lua"
mhd=$(grep -lE '^#[[:space:]]*include[[:space:]]*[<"]microhttpd\.h' \
	$(find src include -name '*.[ch]' ! -path 'src/http/*'))
[ -z "$mhd" ] || fail "microhttpd.h outside src/http/: $mhd"

# Which folders each folder may include (besides itself and include/).
allowed() {
	case $1 in
	common) echo "" ;;
	pool) echo "common" ;;
	vm) echo "common" ;;
	# daemon: the store, metrics, jsonscan it serves; vm: bcverify (a
	# pure byte parser run on bytecode before it is stored) and, in the
	# front's server (front*.c), the lane, which runs jobs through vm.h
	# (no Lua headers either)
	http) echo "common daemon vm" ;;
	# pool: fronts.h, the front processes luapoold.c starts (pool/ only
	# includes common/, so no cycle)
	daemon) echo "common http pool" ;;	# http: only the main file, below
	# front: the main of luapool-front, a worker (vm) serving HTTP (http)
	front) echo "common http vm" ;;
	*) echo "?" ;;
	esac
}
for f in $(find src -name '*.[ch]'); do
	dir=$(echo "$f" | cut -d/ -f2)
	for inc in $(sed -n 's/^#[[:space:]]*include[[:space:]]*"\([a-z]*\)\/.*/\1/p' "$f" | sort -u); do
		[ "$inc" = "$dir" ] && continue
		case " $(allowed "$dir") " in
		*" $inc "*) ;;
		*) fail "$f includes $inc/: $dir/ may not" ;;
		esac
	done
	if [ "$dir" = daemon ] && [ "$f" != src/daemon/luapoold.c ] &&
	    grep -q '^#[[:space:]]*include[[:space:]]*"http/' "$f"; then
		fail "$f includes http/: in daemon/ only luapoold.c (main) may"
	fi
done

# Include graph between files.
edges=$(mktemp)
for f in $(find src -name '*.[ch]'); do
	for inc in $(sed -n 's/^#[[:space:]]*include[[:space:]]*"\([a-z_]*\/[a-z_0-9]*\.h\)".*/\1/p' "$f"); do
		echo "$f src/$inc"
	done
done | sort -u >"$edges"
if ! tsort "$edges" >/dev/null 2>&1; then
	fail "include cycle: $(tsort "$edges" 2>&1 >/dev/null | tr '\n' ' ')"
fi

# Call graph between object files, when they are built.
if [ -d "$build/obj" ]; then
	defs=$(mktemp)
	for o in $(find "$build/obj" -name '*.o'); do
		nm --defined-only -g "$o" | awk -v u="$o" '$2 ~ /[TDBR]/ { print $3, u }'
	done | sort >"$defs"
	for o in $(find "$build/obj" -name '*.o'); do
		nm -u "$o" | awk '{ print $2 }' | sort -u | join - "$defs" |
			awk -v u="$o" '$2 != u { print u, $2 }'
	done | sort -u >"$edges"
	if ! tsort "$edges" >/dev/null 2>&1; then
		fail "call cycle: $(tsort "$edges" 2>&1 >/dev/null | tr '\n' ' ')"
	fi
	rm -f "$defs"
fi
rm -f "$edges"

# Files past the size one person reads in a sitting.
for f in $(find src include -name '*.[ch]'); do
	n=$(wc -l <"$f")
	[ "$n" -le 650 ] || fail "$f has $n lines (aim: under ~600)"
done
[ $failed -eq 0 ] && echo "check-layers: ok"
exit $failed
