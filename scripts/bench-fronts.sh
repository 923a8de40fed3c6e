#!/bin/bash
# bench-fronts.sh - the measures of issue 11 that compare.sh and hol.sh do
# not take, on a luapoold this script starts (127.0.0.1, a free port):
#   storm    hello alone, then hello while runaway JIT loops (timeout_ms
#            100) keep arriving on STORM_CONNS connections: the ratio.
#   cores    hello with 1 and 2 fronts (and workers), each pinned to as
#            many cores with taskset: req/s, and the CPU each process kind
#            spent per request (from /proc), for the model in
#            docs/BENCHMARKS.md.
# Env: FRONTS=2 (storm), DUR=5s, CONNS=64, STORM_CONNS=4, SECTIONS="storm cores".
# Needs wrk, curl, taskset; run `make` first.  Prints markdown tables.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
DUR=${DUR:-5s}; CONNS=${CONNS:-64}; STORM_CONNS=${STORM_CONNS:-4}; FRONTS=${FRONTS:-2}
SECTIONS=${SECTIONS:-"storm cores"}
BUILD=${BUILD:-build}
for tool in wrk curl taskset; do
	command -v $tool >/dev/null || { echo "bench-fronts.sh: missing $tool" >&2; exit 2; }
done
TMP=$(mktemp -d)
PID=""
stop() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=""; }
trap 'stop; rm -rf "$TMP"' EXIT

cat > "$TMP/hello.json" <<'EOF'
{"source":"return {greeting = 'Hello ' .. ctx.name}","context":{"name":"bench"}}
EOF
cat > "$TMP/runaway.json" <<'EOF'
{"source":"local i = 0 while true do i = i + 1 end","timeout_ms":100}
EOF
cat > "$TMP/post.lua" <<'EOF'
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"; wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
function done(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(99) / 1000, summary.requests))
end
EOF

# start CPUS FRONTS: luapoold on a free port, pinned to the first CPUS cores;
# FRONTS 0 is --fronts no (front_workers = 0 means one per online CPU)
start() {
	local port fronts=(--front-workers "$2")
	[ "$2" = 0 ] && fronts=(--fronts no)
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	URL=http://127.0.0.1:$port
	taskset -c "0-$(($1 - 1))" "$BUILD/luapoold" --listen "127.0.0.1:$port" --workers "$1" \
	    "${fronts[@]}" --worker-path "$BUILD/luapool-worker" \
	    --front-path "$BUILD/luapool-front" --log-level error >"$TMP/log" 2>&1 &
	PID=$!
	for _ in $(seq 100); do
		curl -sf "$URL/healthz" >/dev/null 2>&1 && break
		sleep 0.05
	done
	# let every front learn the chunk (a few pool runs each)
	for _ in $(seq 40); do
		curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary @"$TMP/hello.json" "$URL/v1/exec"
	done
}

wrk_hello() {	# -> "rps p99 requests"
	BODY_FILE="$TMP/hello.json" taskset -c "$1" wrk -t1 -c"$CONNS" -d"$DUR" -s "$TMP/post.lua" \
	    "$URL/v1/exec" 2>/dev/null | awk '/^RESULT/ { print $2, $3, $4 }'
}

# CPU seconds (user + system) of the processes whose command starts with $1
cpu_of() {
	local total=0 p
	for p in $(pgrep -f "^$1"); do
		total=$(awk -v t="$total" '{ print t + ($14 + $15) / 100 }' "/proc/$p/stat" 2>/dev/null || echo "$total")
	done
	echo "$total"
}

if [[ " $SECTIONS " == *" storm "* ]]; then
	start 2 "$FRONTS"
	read -r alone p99a _ < <(wrk_hello 0-1)
	BODY_FILE="$TMP/runaway.json" wrk -t1 -c"$STORM_CONNS" -d"$DUR" -s "$TMP/post.lua" \
	    "$URL/v1/exec" >"$TMP/storm.out" 2>&1 &
	storm=$!
	sleep 0.5
	read -r during p99d _ < <(wrk_hello 0-1)
	wait $storm
	stop
	echo "### hello during a storm of runaway JIT loops ($FRONTS fronts, 2 workers, $STORM_CONNS storm connections, timeout 100 ms)"
	echo
	echo "| hello alone req/s | p99 ms | hello during the storm req/s | p99 ms | ratio |"
	echo "| --- | --- | --- | --- | --- |"
	awk -v a="$alone" -v pa="$p99a" -v d="$during" -v pd="$p99d" \
	    'BEGIN { printf "| %d | %.2f | %d | %.2f | %.2f |\n", a, pa, d, pd, d / a }'
	echo
fi

if [[ " $SECTIONS " == *" cores "* ]]; then
	echo "### hello per core (CONNS=$CONNS; luapoold and its processes pinned to the first N cores, wrk on the rest or shared)"
	echo
	echo "| cores (fronts = workers = N) | req/s | req/s per core | front us/req | supervisor us/req | workers us/req |"
	echo "| --- | --- | --- | --- | --- | --- |"
	for n in 1 2; do
		start "$n" "$n"
		f0=$(cpu_of "$BUILD/luapool-front"); s0=$(cpu_of "$BUILD/luapoold"); w0=$(cpu_of "$BUILD/luapool-worker")
		read -r rps _ reqs < <(wrk_hello "0-1")
		f1=$(cpu_of "$BUILD/luapool-front"); s1=$(cpu_of "$BUILD/luapoold"); w1=$(cpu_of "$BUILD/luapool-worker")
		stop
		awk -v n="$n" -v r="$rps" -v q="$reqs" -v f="$(echo "$f1 - $f0" | bc)" \
		    -v s="$(echo "$s1 - $s0" | bc)" -v w="$(echo "$w1 - $w0" | bc)" \
		    'BEGIN { printf "| %d | %d | %d | %.1f | %.2f | %.2f |\n", n, r, r / n, f * 1e6 / q, s * 1e6 / q, w * 1e6 / q }'
	done
	echo
fi
