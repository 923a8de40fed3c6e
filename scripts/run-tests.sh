#!/bin/sh
# Runs the Check suites of one build directory from the repository root:
#   scripts/run-tests.sh BUILD_DIR test_a test_b ...
# Workers come from BUILD_DIR, except under ThreadSanitizer (LUAPOOL_TSAN=1),
# where the plain build's worker is used: the sanitizers are for the pool.
# Fails if any suite fails or prints a sanitizer report.
set -u
build=$1; shift
cd "$(dirname "$0")/.." || exit 2
worker="$build/luapool-worker"
[ "${LUAPOOL_TSAN:-0}" = 1 ] && worker=build/luapool-worker
LUAPOOL_WORKER="$PWD/$worker"; export LUAPOOL_WORKER
LUAPOOLD="$PWD/$build/luapoold"; export LUAPOOLD
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}; export ASAN_OPTIONS
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}; export UBSAN_OPTIONS
TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}; export TSAN_OPTIONS
failed=0
log=$(mktemp)
for t in "$@"; do
	echo "== $build/$t"
	"$build/$t" >"$log" 2>&1
	rc=$?
	cat "$log"
	if [ $rc -ne 0 ]; then
		echo "FAILED: $build/$t (exit $rc)"; failed=1
	elif grep -q -E '^(==[0-9]+==ERROR|SUMMARY: (Address|Undefined|Thread|Leak)Sanitizer|WARNING: ThreadSanitizer)|runtime error:' "$log"; then
		echo "FAILED: $build/$t printed a sanitizer report"; failed=1
	fi
done
# The seed example, linked only against libluapool.a, cJSON and pthreads.
if [ -x "$build/example_hello" ]; then
	out=$("$build/example_hello" 2>&1)
	if [ "$out" = "Hello from Lua" ]; then echo "== example_hello: $out"
	else echo "FAILED: example_hello printed: $out"; failed=1; fi
fi
# The daemon under the systemd unit's restrictions (plain build only).
if [ "$build" = build ] && [ -x "$build/luapoold" ]; then
	tests/hardening.sh "$build" || failed=1
	tests/tls.sh "$build" || failed=1
fi
rm -f "$log"
exit $failed
