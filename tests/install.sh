#!/bin/sh
# install.sh - `make install` as a packager runs it: into a temporary
# DESTDIR with PREFIX=/usr/local, then checks that every file is where
# docs/OPERATIONS.md says, that pkg-config finds the library through the
# installed luapool.pc, that examples/hello.c links against the shared
# library (not the static one) and runs, that the man pages render without
# a warning, and that `make uninstall` removes all of it but the
# configuration.
#   tests/install.sh [BUILD_DIR]
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root
prefix=/usr/local
failed=0
fail() { echo "install: FAILED: $*"; failed=1; }

if ! make -s BUILD="$build" DESTDIR="$dest" PREFIX=$prefix install >"$tmp/make.log" 2>&1; then
	cat "$tmp/make.log"; echo "install: FAILED: make install"; exit 1
fi
lib=$dest$prefix/lib
for f in bin/luapoold libexec/luapoold/luapool-worker libexec/luapoold/luapool-front \
    include/luapool.h \
    lib/libluapool.a lib/libluapool.so.1.0.0 lib/pkgconfig/luapool.pc \
    share/man/man8/luapoold.8 share/man/man5/luapoold.conf.5 \
    lib/systemd/system/luapoold.service share/doc/luapoold/openapi.yaml \
    share/doc/luapoold/API.md; do
	[ -f "$dest$prefix/$f" ] || fail "missing $prefix/$f"
done
[ -f "$dest/etc/luapoold/luapoold.conf" ] || fail "missing /etc/luapoold/luapoold.conf"
[ -e "$dest/lib/systemd/system/luapoold.service" ] &&
	fail "PREFIX=$prefix installed the unit into /lib/systemd/system"
[ "$(readlink "$lib/libluapool.so.1")" = libluapool.so.1.0.0 ] || fail "libluapool.so.1 -> $(readlink "$lib/libluapool.so.1")"
[ "$(readlink "$lib/libluapool.so")" = libluapool.so.1 ] || fail "libluapool.so -> $(readlink "$lib/libluapool.so")"
soname=$(readelf -d "$lib/libluapool.so.1.0.0" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = libluapool.so.1 ] || fail "soname is \"$soname\""
grep -q "^ExecStart=$prefix/bin/luapoold " "$dest$prefix/lib/systemd/system/luapoold.service" ||
	fail "the unit does not start $prefix/bin/luapoold"

# pkg-config through the installed file, its prefix moved into DESTDIR.
grep -q "^prefix=$prefix\$" "$lib/pkgconfig/luapool.pc" || fail "luapool.pc: $(grep ^prefix= "$lib/pkgconfig/luapool.pc")"
export PKG_CONFIG_PATH="$lib/pkgconfig"
pc="pkg-config --define-variable=prefix=$dest$prefix"
flags=$($pc --cflags --libs luapool) || fail "pkg-config --cflags --libs luapool"
[ "$($pc --modversion luapool)" = "$(sed -n 's/^#define LUAPOOL_VERSION "\(.*\)"/\1/p' include/luapool.h)" ] ||
	fail "pkg-config --modversion luapool: $($pc --modversion luapool)"
for want in "-I$dest$prefix/include" "-L$lib" -lluapool -lcjson; do
	case " $flags " in *" $want "*) ;; *) fail "pkg-config gives \"$flags\", without $want" ;; esac
done
# shellcheck disable=SC2086 # the flags are words
if cc -o "$tmp/hello" examples/hello.c $flags 2>"$tmp/cc.log"; then
	readelf -d "$tmp/hello" | grep -q 'NEEDED.*\[libluapool.so.1\]' ||
		fail "hello is not linked against libluapool.so.1"
	out=$(LD_LIBRARY_PATH=$lib LUAPOOL_WORKER="$dest$prefix/libexec/luapoold/luapool-worker" "$tmp/hello" 2>&1)
	[ "$out" = "Hello from Lua" ] || fail "hello against the shared library printed: $out"
else
	cat "$tmp/cc.log"; fail "examples/hello.c does not build with pkg-config luapool"
fi

# The man pages: groff -ww warns about anything it has to guess.
if command -v groff >/dev/null; then
	for page in man8/luapoold.8 man5/luapoold.conf.5; do
		warnings=$(groff -man -ww -z -Tutf8 "$dest$prefix/share/man/$page" 2>&1)
		[ -z "$warnings" ] || fail "groff warns on $page: $warnings"
	done
	man -l "$dest$prefix/share/man/man8/luapoold.8" 2>/dev/null | grep -q -- '--queue-depth N' ||
		fail "luapoold(8) does not list --queue-depth"
fi

if ! make -s BUILD="$build" DESTDIR="$dest" PREFIX=$prefix uninstall >"$tmp/make.log" 2>&1; then
	cat "$tmp/make.log"; fail "make uninstall"
fi
left=$(find "$dest" -type f -o -type l | grep -v "^$dest/etc/luapoold/luapoold.conf$")
[ -z "$left" ] || fail "make uninstall left: $left"

[ $failed -eq 0 ] && echo "install: make install PREFIX=$prefix: files, pkg-config, shared hello, man pages, uninstall: ok"
exit $failed
