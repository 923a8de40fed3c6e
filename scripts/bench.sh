#!/bin/bash
# bench.sh - luapoold over HTTP, self-contained: builds, starts luapoold on
# a free loopback port with its defaults, generates the workloads, runs
# wrk, stops everything, prints markdown tables:
#   throughput (hello, compute, bigctx at each CONNS), growth with context
#   size and with worker count, deadline precision under load, respawn
#   time, footprint and start-to-ready time.
# Env: DUR=5s per wrk run, CONNS="8 64", SECTIONS="throughput growth
# deadline respawn footprint" (any subset).  Needs wrk, curl, luajit.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
DUR=${DUR:-5s}
CONNS=${CONNS:-"8 64"}
SECTIONS=${SECTIONS:-"throughput growth deadline respawn footprint"}
for tool in wrk curl luajit; do
	command -v $tool >/dev/null || { echo "bench.sh: missing $tool (apt-get install wrk curl luajit2)" >&2; exit 2; }
done
make -s all >/dev/null || exit 2
TMP=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
luajit scripts/bench-gen.lua "$TMP" || exit 2
cat > "$TMP/post.lua" <<'EOF'
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"; wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.0f %.3f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status + e.connect + e.read + e.write + e.timeout))
end
EOF

start() {	# start [options...]: sets PID, PORT, READY_MS
	local t0 t1
	t0=$(date +%s%N)
	build/luapoold --listen 127.0.0.1:0 --worker-path build/luapool-worker --access-log no \
		"$@" 2>"$TMP/daemon.log" &
	PID=$!
	for _ in $(seq 1 2000); do
		PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$TMP/daemon.log")
		[ -n "$PORT" ] && break
		sleep 0.001
	done
	t1=$(date +%s%N)
	READY_MS=$(( (t1 - t0) / 1000000 ))
	[ -n "$PORT" ] || { echo "luapoold did not start:" >&2; cat "$TMP/daemon.log" >&2; exit 1; }
}
stop() { kill -TERM "$PID"; wait "$PID"; PID=""; }
check() {	# check WORKLOAD
	curl -s --data-binary @"$TMP/$1.json" "http://127.0.0.1:$PORT/v1/exec" | grep -qF "$(cat "$TMP/$1.expect")" ||
		{ echo "wrong answer for $1" >&2; exit 1; }
}
run() {		# run WORKLOAD CONNS [DUR] -> "rps p50 p99 errors"
	BODY_FILE="$TMP/$1.json" timeout 120 wrk -t1 -c"$2" -d"${3:-$DUR}" --latency -s "$TMP/post.lua" \
		"http://127.0.0.1:$PORT/v1/exec" 2>&1 | awk '/^RESULT/ { print $2, $3, $4, $5 }'
}
row() {		# row LABEL CONNS "rps p50 p99 errors"
	set -- "$1" "$2" $3
	printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$5" "$6"
}
percentile() { sort -g | awk -v p="$1" '{ a[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print a[i] }'; }

echo "luapoold bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r), wrk on the same machine, DUR=$DUR"
echo

if [[ " $SECTIONS " == *" throughput "* ]]; then
	start
	echo "### Throughput (defaults: $(nproc) workers)"
	echo
	echo "| workload | conns | req/s | p50 ms | p99 ms | errors |"
	echo "| --- | --- | --- | --- | --- | --- |"
	for w in hello compute bigctx; do
		check "$w"
		run "$w" 8 1s >/dev/null
		for c in $CONNS; do row "$w" "$c" "$(run "$w" "$c")"; done
	done
	echo
	stop
fi

if [[ " $SECTIONS " == *" growth "* ]]; then
	start
	echo "### Growth with context size (8 connections)"
	echo
	echo "| context | body bytes | req/s | p50 ms | p99 ms | errors |"
	echo "| --- | --- | --- | --- | --- | --- |"
	for w in ctx1k ctx16k ctx256k ctx4m; do
		check "$w"
		row "$w" "$(stat -c %s "$TMP/$w.json")" "$(run "$w" 8)"
	done
	echo
	stop
	echo "### Growth with workers (hello, 64 connections)"
	echo
	echo "| workers | conns | req/s | p50 ms | p99 ms | errors |"
	echo "| --- | --- | --- | --- | --- | --- |"
	for n in 1 2 4; do
		start --workers "$n"
		run hello 8 1s >/dev/null
		row "$n" 64 "$(run hello 64)"
		stop
	done
	echo
fi

storm() {	# storm [daemon options...]: one row of the deadline table
	start "$@"
	base=$(run hello 8 10s)
	BODY_FILE="$TMP/hello.json" timeout 60 wrk -t1 -c8 -d10s -s "$TMP/post.lua" \
		"http://127.0.0.1:$PORT/v1/exec" > "$TMP/storm.wrk" 2>&1 &
	WRK=$!
	: > "$TMP/overshoot"
	kinds=(jit interpreted backtrack)
	for i in $(seq 0 99); do
		k=${kinds[$((i % 3))]}
		# Server time: from the request sent to the answer, less 100 ms.
		curl -s -o /dev/null -w '%{http_code} %{time_pretransfer} %{time_total}\n' \
			--data-binary @"$TMP/runaway_$k.json" "http://127.0.0.1:$PORT/v1/exec" |
			awk '$1 == 504 { printf "%.1f\n", ($3 - $2) * 1000 - 100 } $1 != 504 { print "NOT504", $1 }' >> "$TMP/overshoot"
	done
	wait $WRK
	storm=$(awk '/^RESULT/ { print $2 }' "$TMP/storm.wrk")
	bad=$(grep -c NOT504 "$TMP/overshoot")
	grep -v NOT504 "$TMP/overshoot" > "$TMP/over"
	set -- $base
	printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$(pgrep -c -P "$PID" luapool-worker)" \
		"$bad" "$(percentile 50 < "$TMP/over")" "$(percentile 99 < "$TMP/over")" "$1" "$storm" \
		"$(awk -v a="$storm" -v b="$1" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')"
	stop
}

if [[ " $SECTIONS " == *" deadline "* ]]; then
	echo "### Deadline precision under load"
	echo
	echo "100 runaway jobs (JIT loop, interpreted loop, backtracking string.find in turn),"
	echo "timeout_ms 100, one at a time, while wrk sends hello on 8 connections."
	echo
	echo "| workers | not 504 | overshoot p50 ms | overshoot p99 ms | hello req/s alone | hello req/s during | ratio |"
	echo "| --- | --- | --- | --- | --- | --- | --- |"
	storm
	storm --workers 4
	echo
fi

if [[ " $SECTIONS " == *" respawn "* ]]; then
	start
	echo "### Respawn (worker SIGKILLed while idle, 30 times)"
	echo
	for _ in $(seq 1 30); do
		w=$(pgrep -P "$PID" luapool-worker | head -1)
		before=$(grep -c "replaced" "$TMP/daemon.log")
		kill -KILL "$w"
		for _ in $(seq 1 1000); do
			[ "$(grep -c "replaced" "$TMP/daemon.log")" -gt "$before" ] && break
			sleep 0.002
		done
	done
	sed -n 's/.*replaced \([0-9.]*\) ms after.*/\1/p' "$TMP/daemon.log" > "$TMP/respawn"
	echo "| kills | death to replacement ready p50 ms | p99 ms | max ms |"
	echo "| --- | --- | --- | --- |"
	printf '| %s | %s | %s | %s |\n' "$(wc -l < "$TMP/respawn")" "$(percentile 50 < "$TMP/respawn")" \
		"$(percentile 99 < "$TMP/respawn")" "$(percentile 100 < "$TMP/respawn")"
	echo
	stop
fi

if [[ " $SECTIONS " == *" footprint "* ]]; then
	: > "$TMP/ready"
	for _ in 1 2 3 4 5; do start; echo "$READY_MS" >> "$TMP/ready"; stop; done
	start
	sleep 0.5
	sup=$(ps -o rss= -p "$PID")
	workers=$(for w in $(pgrep -P "$PID" luapool-worker); do ps -o rss= -p "$w"; done | sort -g | tail -1)
	echo "### Footprint (idle, after start)"
	echo
	echo "| supervisor RSS | largest worker RSS | start to ready (median of 5) |"
	echo "| --- | --- | --- |"
	printf '| %.1f MiB | %.1f MiB | %s ms |\n' "$(echo "$sup / 1024" | bc -l)" \
		"$(echo "$workers / 1024" | bc -l)" "$(percentile 50 < "$TMP/ready")"
	echo
	stop
fi
