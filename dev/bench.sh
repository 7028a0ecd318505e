#!/usr/bin/env bash
# make bench: the delivery engine against wrk on the same loopback receiver.
# For each scenario it alternates wrk, `pushfn bench deliver` and the plain Go worker pool of
# `pushfn bench pool` (the reference peer) RUNS times, prints every ratio to wrk and the medians,
# the CPU microseconds per push (wrk's per request beside them) and the peak RSS of the
# 10,000 x 1 KiB batch. With BASE set to a git revision, the deliver bench built from that
# revision runs after this tree's in every run (A B A B ...), and its medians are printed too.
# Environment: RUNS (3), WRK_SECONDS (5), N (10000), SIZE (1024), PORT (19300), BASE (none).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3} WRK_SECONDS=${WRK_SECONDS:-5} N=${N:-10000} SIZE=${SIZE:-1024} PORT=${PORT:-19300} BASE=${BASE:-}

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
if [ -n "$BASE" ]; then
	mkdir "$work/base"
	git archive "$BASE" | tar -x -C "$work/base"
	(cd "$work/base" && go build -o "$work/pushfn-base" ./cmd/pushfn)
fi

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

# cpu_us: CPU microseconds per push of a bench line (its cpu_s over its n).
cpu_us() { awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}} END {printf "%.1f\n", v["cpu_s"] * 1e6 / v["n"]}' <<<"$1"; }

# deliver_run: one `bench deliver` of the binary $1; appends its ratio to wrk and CPU per push
# to $work/$2.ratios and $work/$2.cpu, and prints its line.
deliver_run() { # binary label wrk_rate conc
	local out line rate rss ratio cpu
	out=$("$1" bench deliver --url "http://127.0.0.1:$PORT/" --n "$N" --size "$SIZE" --conc "$4")
	line=$(tail -n1 <<<"$out")
	rate=$(sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' <<<"$line")
	rss=$(sed -n 's/.*maxrss_mib=\([0-9.]*\).*/\1/p' <<<"$out")
	ratio=$(awk -v a="$rate" -v b="$3" 'BEGIN {printf "%.2f", a / b}')
	cpu=$(cpu_us "$line")
	echo "$ratio" >>"$work/$2.ratios"
	echo "$cpu" >>"$work/$2.cpu"
	echo "$rss" >>"$work/$2.rss"
	echo "  [$2] $line maxrss_mib=$rss ratio=$ratio cpu_us_per_push=$cpu"
}

scenario() { # name delay conc target
	local name=$1 delay=$2 conc=$3 target=$4
	local threads=2
	echo "== $name: receiver latency $delay, N=$N, ${SIZE}-byte bodies, $conc connections (target >= $target x wrk)"
	start_receiver "$delay"
	rm -f "$work"/*.ratios "$work"/*.cpu "$work"/*.rss
	for run in $(seq "$RUNS"); do
		local wrk_out wrk_rate wrk_reqs wrk_cpu
		TIMEFORMAT="%U %S"
		{ time wrk -t"$threads" -c"$conc" -d"${WRK_SECONDS}s" -s "$work/post.lua" "http://127.0.0.1:$PORT/" >"$work/wrk.out"; } 2>"$work/wrk.time"
		wrk_rate=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.out")
		wrk_reqs=$(awk '/requests in/ {print $1}' "$work/wrk.out")
		wrk_cpu=$(awk -v n="$wrk_reqs" '{printf "%.1f", ($1 + $2) * 1e6 / n}' "$work/wrk.time")
		echo "$wrk_cpu" >>"$work/wrk.cpu"
		echo "run $run: wrk msgs_per_s=$wrk_rate cpu_us_per_request=$wrk_cpu"
		if [ -n "$BASE" ]; then
			deliver_run "$work/pushfn-base" base "$wrk_rate" "$conc"
		fi
		deliver_run "$work/pushfn" pushfn "$wrk_rate" "$conc"
		pool=$("$work/pushfn" bench pool --url "http://127.0.0.1:$PORT/" --n "$N" --size "$SIZE" --conc "$conc" | tail -n1)
		pool_rate=$(sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' <<<"$pool")
		pool_ratio=$(awk -v a="$pool_rate" -v b="$wrk_rate" 'BEGIN {printf "%.2f", a / b}')
		echo "$pool_ratio" >>"$work/pool.ratios"
		cpu_us "$pool" >>"$work/pool.cpu"
		echo "  [pool] $pool ratio=$pool_ratio cpu_us_per_push=$(cpu_us "$pool")"
	done
	stop_receiver
	echo "$name: median ratio pushfn/wrk $(median <"$work/pushfn.ratios") (target >= $target), CPU us/push $(median <"$work/pushfn.cpu"), peak RSS MiB $(median <"$work/pushfn.rss")"
	if [ -n "$BASE" ]; then
		echo "$name: median ratio base($BASE)/wrk $(median <"$work/base.ratios"), CPU us/push $(median <"$work/base.cpu"), peak RSS MiB $(median <"$work/base.rss")"
	fi
	echo "$name: median ratio plain Go pool/wrk $(median <"$work/pool.ratios"), CPU us/push $(median <"$work/pool.cpu"); wrk CPU us/request $(median <"$work/wrk.cpu")"
}

scenario "50 ms, concurrency 1000" 50ms 1000 0.9
scenario "0 ms, concurrency 100" 0s 100 0.7
