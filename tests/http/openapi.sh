#!/bin/sh
# openapi.sh - docs/openapi.yaml against the OpenAPI 3.1 schema and against
# the real daemon: starts BUILD_DIR/luapoold on a free loopback port with a
# token, one worker, a queue of one and small limits (so that every error
# kind can be provoked quickly), waits for its "listening on" line, and runs
# tests/http/openapi_check.py on it.  Fails on a sanitizer report too.
#   tests/http/openapi.sh [BUILD_DIR]
set -u
build=${1:-build}
python=${PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/../.." || exit 2
tmp=$(mktemp -d)
pid=""
: >"$tmp/log"
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
echo "openapi-check-token" > "$tmp/token"
chmod 600 "$tmp/token"
"$build/luapoold" --listen 127.0.0.1:0 --worker-path "$PWD/$build/luapool-worker" \
	--auth-token-file "$tmp/token" --workers 1 --queue-depth 1 --max-body-bytes 64k \
	--max-inflight-bytes 1M --memory-limit-mb 16 --max-result-bytes 64k \
	--access-log no 2>"$tmp/log" &
pid=$!
port=""
i=0
while [ $i -lt 1000 ] && [ -z "$port" ]; do
	port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/log")
	kill -0 $pid 2>/dev/null || break
	sleep 0.01; i=$((i + 1))
done
if [ -z "$port" ]; then echo "openapi: FAILED: luapoold did not start:"; cat "$tmp/log"; exit 1; fi
"$python" tests/http/openapi_check.py docs/openapi.yaml --base "http://127.0.0.1:$port" \
	--token openapi-check-token --pid $pid
status=$?
# The check ends with SIGTERM: the daemon drains and exits 0.
i=0
while [ $i -lt 1000 ] && kill -0 $pid 2>/dev/null; do sleep 0.01; i=$((i + 1)); done
if kill -0 $pid 2>/dev/null; then echo "openapi: FAILED: luapoold did not exit after SIGTERM"; status=1
else wait $pid || { echo "openapi: FAILED: luapoold exited $?"; status=1; }
fi
pid=""
if grep -q -E '^(==[0-9]+==ERROR|SUMMARY: (Address|Undefined)Sanitizer)|runtime error:' "$tmp/log"; then
	echo "openapi: FAILED: sanitizer report:"; cat "$tmp/log"; status=1
fi
[ $status -eq 0 ] && echo "openapi: docs/openapi.yaml matches the daemon"
exit $status
