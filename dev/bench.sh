#!/usr/bin/env bash
# make bench: the delivery engine against wrk on the same loopback receiver.
# For each scenario it alternates wrk, `pushfn bench deliver` and the plain Go worker pool of
# `pushfn bench pool` (the reference peer) RUNS times, prints every ratio to wrk and the medians,
# and the peak RSS of the 10,000 x 1 KiB batch.
# Environment: RUNS (3), WRK_SECONDS (5), N (10000), SIZE (1024), PORT (19300).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3} WRK_SECONDS=${WRK_SECONDS:-5} N=${N:-10000} SIZE=${SIZE:-1024} PORT=${PORT:-19300}

if ! command -v wrk >/dev/null; then
	echo "bench: installing wrk from Debian's packages" >&2
	sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
	echo "bench: the open-file limit ($(ulimit -n)) is too low for 1,000 connections" >&2
	exit 1
fi

work=$(mktemp -d)
receiver_pid=""
cleanup() {
	[ -n "$receiver_pid" ] && kill "$receiver_pid" 2>/dev/null && wait "$receiver_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/pushfn" ./cmd/pushfn

# The same body wrk and pushfn send: a JSON document of exactly SIZE bytes.
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"d":"' .. string.rep("x", $SIZE - 8) .. '"}'
wrk.headers["Content-Type"] = "application/json"
LUA

start_receiver() { # delay
	"$work/pushfn" receiver --addr "127.0.0.1:$PORT" --delay "$1" --quiet >"$work/receiver.log" 2>&1 &
	receiver_pid=$!
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "bench: the receiver did not start" >&2
	cat "$work/receiver.log" >&2
	exit 1
}

stop_receiver() {
	kill "$receiver_pid" 2>/dev/null || true
	wait "$receiver_pid" 2>/dev/null || true
	receiver_pid=""
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

scenario() { # name delay conc target
	local name=$1 delay=$2 conc=$3 target=$4
	local threads=2
	echo "== $name: receiver latency $delay, N=$N, ${SIZE}-byte bodies, $conc connections (target >= $target x wrk)"
	start_receiver "$delay"
	: >"$work/ratios"
	: >"$work/pool_ratios"
	for run in $(seq "$RUNS"); do
		wrk_rate=$(wrk -t"$threads" -c"$conc" -d"${WRK_SECONDS}s" -s "$work/post.lua" "http://127.0.0.1:$PORT/" | awk '/^Requests\/sec/ {print $2}')
		out=$("$work/pushfn" bench deliver --url "http://127.0.0.1:$PORT/" --n "$N" --size "$SIZE" --conc "$conc")
		line=$(tail -n1 <<<"$out")
		rate=$(sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' <<<"$line")
		rss=$(sed -n 's/.*maxrss_mib=\([0-9.]*\).*/\1/p' <<<"$out")
		ratio=$(awk -v a="$rate" -v b="$wrk_rate" 'BEGIN {printf "%.2f", a / b}')
		echo "$ratio" >>"$work/ratios"
		pool=$("$work/pushfn" bench pool --url "http://127.0.0.1:$PORT/" --n "$N" --size "$SIZE" --conc "$conc" | tail -n1)
		pool_rate=$(sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' <<<"$pool")
		pool_ratio=$(awk -v a="$pool_rate" -v b="$wrk_rate" 'BEGIN {printf "%.2f", a / b}')
		echo "$pool_ratio" >>"$work/pool_ratios"
		echo "run $run: wrk msgs_per_s=$wrk_rate"
		echo "  $line maxrss_mib=$rss ratio=$ratio"
		echo "  $pool ratio=$pool_ratio"
	done
	stop_receiver
	echo "$name: median ratio pushfn/wrk $(median <"$work/ratios") (target >= $target); plain Go pool/wrk $(median <"$work/pool_ratios")"
}

scenario "50 ms, concurrency 1000" 50ms 1000 0.9
scenario "0 ms, concurrency 100" 0s 100 0.6
