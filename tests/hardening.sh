#!/bin/sh
# hardening.sh - does luapoold still serve under the restrictions its
# systemd unit applies?  systemd is not running in CI, so this recreates
# the ones that can be had without it: an unprivileged user, no
# capabilities, no-new-privs (NoNewPrivileges, CapabilityBoundingSet=,
# DynamicUser), a read-only file system with a private /tmp
# (ProtectSystem=strict, PrivateTmp), then checks the seed example and
# that the unit file itself verifies.  Needs root (to drop to nobody and
# make a mount namespace); skips with a note otherwise.
#   tests/hardening.sh BUILD_DIR
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 2
root=$PWD
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null || ! command -v unshare >/dev/null; then
	echo "hardening: skipped (needs root, setpriv and unshare)"; exit 0
fi
if command -v systemd-analyze >/dev/null; then
	unit=$(mktemp --suffix=.service)
	sed -e "s|@BINDIR@|$root/$build|g" -e "s|@SYSCONFDIR@|/etc|g" luapoold.service > "$unit"
	if ! systemd-analyze verify "$unit"; then echo "hardening: FAILED systemd-analyze verify"; rm -f "$unit"; exit 1; fi
	rm -f "$unit"
	echo "hardening: systemd-analyze verify luapoold.service: ok"
fi
log=$(mktemp)
chmod 666 "$log"
# The daemon and its workers: nobody, no capabilities, no new privileges,
# read-only /, a fresh /tmp.
# A fresh /tmp would hide a checkout that lives under /tmp (as CI clones
# may): then only /var/tmp is replaced.
private_tmp=/tmp
case "$root" in /tmp/*) private_tmp=/var/tmp ;; esac
unshare --mount --propagation private sh -c "
	mount -o remount,bind,ro / 2>/dev/null || mount --bind -o ro / /
	mount -t tmpfs tmpfs $private_tmp
	exec setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs \
		--inh-caps=-all --bounding-set=-all \
		$root/$build/luapoold --listen 127.0.0.1:0 --worker-path $root/$build/luapool-worker
" 2>"$log" &
pid=$!
port=""
i=0
while [ $i -lt 1000 ] && [ -z "$port" ]; do
	port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$log")
	kill -0 $pid 2>/dev/null || break
	sleep 0.01; i=$((i + 1))
done
if [ -z "$port" ]; then echo "hardening: FAILED to start:"; cat "$log"; rm -f "$log"; exit 1; fi
body=$(curl -s -m 10 -d '{"source":"return ctx.message .. \" from Lua\"","context":{"message":"Hello"}}' \
	"http://127.0.0.1:$port/v1/exec")
status=0
if [ "$body" = '{"result":"Hello from Lua"}' ]; then
	echo "hardening: restricted luapoold answered: $body"
else
	echo "hardening: FAILED, answer was: $body"; cat "$log"; status=1
fi
kill -TERM $pid; wait $pid
rm -f "$log"
exit $status
