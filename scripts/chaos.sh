#!/bin/bash
# Chaos run against a real luapoold on 127.0.0.1, bounded in time:
#   scripts/chaos.sh [BUILD_DIR] [SECONDS]          (default build, 45 s)
# Fronts are the daemon's default (one per online CPU); FRONTS=0 in the
# environment adds --fronts no, FRONTS=N adds --front-workers N.  Fronts
# are SIGSTOPped with the workers but only workers are SIGKILLed: a request
# on a front's connection is lost when its front is SIGKILLed, by design
# (docs/ARCHITECTURE.md; a SIGKILL leaves no last words), and the run must
# lose nothing.
# While correct requests flow (each with a value of its own, checked in the
# answer), workers are SIGKILLed and SIGSTOPped at random, runaway jobs hit
# their deadlines, big PUTs, slow clients and malformed requests arrive.
# Prints lost / wrong / 5xx counts and the supervisor's peak RSS; exits 1 on
# any lost or wrong answer (a 5xx is an answer: a killed worker's job gets
# 500, a stopped one's 504).  Loopback only; every loop ends by itself.
set -u
cd "$(dirname "$0")/.." || exit 2
build=${1:-build}
seconds=${2:-${CHAOS_SECONDS:-45}}
work=$(mktemp -d /tmp/luapoold-chaos-XXXXXX)
daemon_pid=
cleanup() {
	[ -n "$daemon_pid" ] && kill -CONT $(pgrep -P "$daemon_pid") 2>/dev/null
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/scripts"
case ${FRONTS-} in
"") fronts=() ;;
0) fronts=(--fronts no) ;;
*) fronts=(--front-workers "$FRONTS") ;;
esac
"$build/luapoold" --listen 127.0.0.1:0 --workers 2 --worker-path "$build/luapool-worker" \
	--scripts-dir "$work/scripts" --max-body-bytes 16777216 "${fronts[@]}" \
	2>"$work/daemon.log" &
daemon_pid=$!
port=
for _ in $(seq 100); do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/daemon.log")
	[ -n "$port" ] && break
	sleep 0.05
done
[ -n "$port" ] || { echo "chaos: luapoold did not start"; cat "$work/daemon.log"; exit 1; }
url="http://127.0.0.1:$port"
end=$(($(date +%s) + seconds))
running() { [ "$(date +%s)" -lt "$end" ]; }

# Correct requests: a unique value in, the same value (twice) out.
correct() {
	local id=$1 n=0 out status body
	while running; do
		n=$((n + 1))
		local v="c$id-$n-$RANDOM"
		out=$(curl -s -m 15 -w '\n%{http_code}' "$url/v1/exec" \
			-d "{\"source\":\"return ctx.v .. '/' .. ctx.v\",\"context\":{\"v\":\"$v\"}}")
		if [ $? -ne 0 ]; then echo lost >>"$work/results"; continue; fi
		status=${out##*$'\n'}
		body=${out%$'\n'*}
		case $status in
		200) [ "$body" = "{\"result\":\"$v/$v\"}" ] && echo ok >>"$work/results" ||
			{ echo wrong >>"$work/results"; echo "wrong: $v -> $body" >>"$work/wrong"; } ;;
		5*) echo 5xx >>"$work/results" ;;
		*) echo wrong >>"$work/results"; echo "status $status: $body" >>"$work/wrong" ;;
		esac
	done
}

# Workers killed or stopped at random; stopped ones are let go again.
killer() {
	while running; do
		sleep 0.$((3 + RANDOM % 7))
		local pids=($(pgrep -P "$daemon_pid")) workers=($(pgrep -P "$daemon_pid" -x luapool-worker))
		[ ${#pids[@]} -gt 0 ] || continue
		local pid=${pids[$((RANDOM % ${#pids[@]}))]}
		if [ $((RANDOM % 2)) -eq 0 ]; then
			[ ${#workers[@]} -gt 0 ] || continue
			pid=${workers[$((RANDOM % ${#workers[@]}))]}
			kill -KILL "$pid" 2>/dev/null && echo kill >>"$work/events"
		else
			kill -STOP "$pid" 2>/dev/null && echo stop >>"$work/events"
			sleep 0.3
			kill -CONT "$pid" 2>/dev/null
		fi
	done
}

runaway() {
	while running; do
		curl -s -m 15 -o /dev/null "$url/v1/exec" \
			-d '{"source":"while true do end","timeout_ms":100}'
		echo runaway >>"$work/events"
	done
}

big_puts() {
	head -c 8388608 /dev/zero | tr '\0' 'x' >"$work/big"
	while running; do
		curl -s -m 20 -o /dev/null -X PUT "$url/v1/scripts/big" --data-binary @"$work/big"
		echo bigput >>"$work/events"
		sleep 1
	done
}

# Clients that send a request a byte at a time, slowly.
slow_clients() {
	while running; do
		(
			exec 3<>/dev/tcp/127.0.0.1/"$port" || exit 0
			req=$'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
			for ((i = 0; i < ${#req}; i++)); do
				printf '%s' "${req:i:1}" >&3 2>/dev/null || exit 0
				sleep 0.2
				running || exit 0
			done
			timeout 5 head -c 1 <&3 >/dev/null
		) &
		echo slow >>"$work/events"
		sleep 1
	done
	wait
}

malformed() {
	local bodies=('{' '{"source":' '[]' '{"bytecode":"!!!"}' '{"source":"return 1","context":[1]}'
		'{"bytecode":"G0xKAgL+"}' '{"source":"return 1","timeout_ms":-5}' '')
	while running; do
		local b=${bodies[$((RANDOM % ${#bodies[@]}))]}
		curl -s -m 10 -o /dev/null "$url/v1/exec" -d "$b"
		curl -s -m 10 -o /dev/null -X PATCH "$url/v1/exec"
		printf 'GARBAGE\r\n\r\n' | timeout 2 curl -s -m 2 -o /dev/null "telnet://127.0.0.1:$port" 2>/dev/null
		echo malformed >>"$work/events"
	done
}

peak_rss() {
	local peak=0 rss
	while running; do
		rss=$(awk '/^VmRSS:/ { print $2 }' /proc/"$daemon_pid"/status 2>/dev/null)
		[ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss
		sleep 0.2
	done
	echo "$peak" >"$work/peak_rss"
}

touch "$work/results" "$work/events"
for i in 1 2 3 4; do correct "$i" & done
killer & runaway & big_puts & slow_clients & malformed & peak_rss &
wait_for=$((seconds + 30))
while [ -n "$(jobs -r)" ] && [ "$wait_for" -gt 0 ]; do sleep 1; wait_for=$((wait_for - 1)); done

count() { grep -c "^$1\$" "$2"; }
ok=$(count ok "$work/results"); lost=$(count lost "$work/results")
wrong=$(count wrong "$work/results"); fivexx=$(count 5xx "$work/results")
alive=no
curl -s -m 5 "$url/healthz" >/dev/null && alive=yes
printf 'chaos: %s s, correct requests: %s ok, %s lost, %s wrong, %s 5xx\n' \
	"$seconds" "$ok" "$lost" "$wrong" "$fivexx"
printf 'chaos: %s workers killed, %s workers or fronts stopped, %s runaway, %s big PUTs, %s slow, %s malformed\n' \
	"$(count kill "$work/events")" "$(count stop "$work/events")" \
	"$(count runaway "$work/events")" "$(count bigput "$work/events")" \
	"$(count slow "$work/events")" "$(count malformed "$work/events")"
printf 'chaos: supervisor peak RSS %s KiB, serving at the end: %s\n' "$(cat "$work/peak_rss" 2>/dev/null)" "$alive"
[ -s "$work/wrong" ] && head -5 "$work/wrong"
[ "$lost" -eq 0 ] && [ "$wrong" -eq 0 ] && [ "$ok" -gt 0 ] && [ "$alive" = yes ]
