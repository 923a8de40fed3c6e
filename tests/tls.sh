#!/bin/sh
# tls.sh - luapoold serves HTTPS when tls_cert_file and tls_key_file are
# set: a self-signed certificate, the seed example over https, and plain
# HTTP refused on that port.  Skips with a note without openssl or curl.
#   tests/tls.sh BUILD_DIR
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 2
if ! command -v openssl >/dev/null || ! command -v curl >/dev/null; then
	echo "tls: skipped (needs openssl and curl)"; exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" \
	-days 1 -subj "/CN=localhost" >/dev/null 2>&1 || { echo "tls: FAILED to make a certificate"; exit 1; }
"$build/luapoold" --listen 127.0.0.1:0 --worker-path "$build/luapool-worker" \
	--tls-cert-file "$dir/cert.pem" --tls-key-file "$dir/key.pem" 2>"$dir/log" &
pid=$!
port=""
i=0
while [ $i -lt 1000 ] && [ -z "$port" ]; do
	port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\) (https).*/\1/p' "$dir/log")
	kill -0 $pid 2>/dev/null || break
	sleep 0.01; i=$((i + 1))
done
[ -n "$port" ] || { echo "tls: FAILED to start:"; cat "$dir/log"; exit 1; }
status=0
body=$(curl -s -m 10 --cacert "$dir/cert.pem" --resolve "localhost:$port:127.0.0.1" \
	-d '{"source":"return ctx.message .. \" from Lua\"","context":{"message":"Hello"}}' \
	"https://localhost:$port/v1/exec")
if [ "$body" = '{"result":"Hello from Lua"}' ]; then
	echo "tls: https answered: $body"
else
	echo "tls: FAILED, https answer was: $body"; status=1
fi
if curl -s -m 5 -o /dev/null "http://127.0.0.1:$port/healthz"; then
	echo "tls: FAILED, plain HTTP was answered on the https port"; status=1
fi
kill -TERM $pid; wait $pid
exit $status
