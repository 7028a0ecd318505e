#!/usr/bin/env bash
# make bench: the delivery engine against wrk on the same loopback receiver.
# For each scenario it alternates wrk, `pushfn bench deliver` and the plain Go worker pool of
# `pushfn bench pool` (the reference peer) RUNS times, prints every ratio to wrk and the medians,
# the CPU microseconds per push (wrk's per request beside them) and the peak RSS of the
# 10,000 x 1 KiB batch. The plain scenarios push to http://, the TLS ones to https:// (the
# receiver's certificate is made at its start; pushfn trusts it through --ca, wrk does not check
# it; the receiver offers HTTP/1.1 only). With BASE set to a git revision, the deliver bench built
# from that revision runs after this tree's in every run (A B A B ...), and its medians are printed
# too; a revision whose bench has no --ca is left out of the TLS scenarios.
# Environment: RUNS (3), WRK_SECONDS (5), N (10000), SIZE (1024), PORT (19300), BASE (none),
# SCENARIOS ("plain tls": the plain scenarios, the TLS ones, or both).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3} WRK_SECONDS=${WRK_SECONDS:-5} N=${N:-10000} SIZE=${SIZE:-1024} PORT=${PORT:-19300} BASE=${BASE:-}
SCENARIOS=${SCENARIOS:-plain tls}
for s in $SCENARIOS; do
	case $s in
	plain | tls) ;;
	*)
		echo "bench: SCENARIOS: unknown scenario \"$s\" (want plain, tls or both)" >&2
		exit 1
		;;
	esac
done

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
# base_ca is set when the BASE bench takes --ca, so it can push to the TLS receiver.
base_ca=""
if [ -n "$BASE" ]; then
	base_help=$("$work/pushfn-base" bench deliver -h 2>&1 || true)
	if grep -qE '^[[:space:]]+-ca[[:space:]]' <<<"$base_help"; then
		base_ca=1
	fi
fi

# The same body wrk and pushfn send: a JSON document of exactly SIZE bytes.
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"d":"' .. string.rep("x", $SIZE - 8) .. '"}'
wrk.headers["Content-Type"] = "application/json"
LUA

start_receiver() { # delay tls (1 for https)
	local tls_flags=()
	if [ "$2" = 1 ]; then
		# The certificate file is written before the port opens.
		tls_flags=(--tls --cert-out "$work/cert.pem")
	fi
	"$work/pushfn" receiver --addr "127.0.0.1:$PORT" --delay "$1" --quiet "${tls_flags[@]}" >"$work/receiver.log" 2>&1 &
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

# deliver_run: one `bench deliver` of the binary $1 to url; appends its ratio to wrk, CPU per
# push and peak RSS to $work/$2.ratios, .cpu and .rss, and prints its line. The arguments after
# url (--ca FILE) go to the bench.
deliver_run() { # binary label wrk_rate conc url [bench flags]
	local bin=$1 label=$2 wrk_rate=$3 conc=$4 url=$5
	shift 5
	local out line rate rss ratio cpu
	out=$("$bin" bench deliver --url "$url" --n "$N" --size "$SIZE" --conc "$conc" "$@")
	line=$(tail -n1 <<<"$out")
	rate=$(sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' <<<"$line")
	rss=$(sed -n 's/.*maxrss_mib=\([0-9.]*\).*/\1/p' <<<"$out")
	ratio=$(awk -v a="$rate" -v b="$wrk_rate" 'BEGIN {printf "%.2f", a / b}')
	cpu=$(cpu_us "$line")
	echo "$ratio" >>"$work/$label.ratios"
	echo "$cpu" >>"$work/$label.cpu"
	echo "$rss" >>"$work/$label.rss"
	echo "  [$label] $line maxrss_mib=$rss ratio=$ratio cpu_us_per_push=$cpu"
}

scenario() { # name delay conc target (- for none: report only) tls (1 for https)
	local name=$1 delay=$2 conc=$3 target=$4 tls=$5
	local threads=2 url="http://127.0.0.1:$PORT/" ca=() goal="target >= $target x wrk" base=$BASE
	if [ "$tls" = 1 ]; then
		url="https://127.0.0.1:$PORT/"
		ca=(--ca "$work/cert.pem")
	fi
	if [ "$target" = - ]; then
		goal="report only, no target"
	fi
	echo "== $name: receiver latency $delay, N=$N, ${SIZE}-byte bodies, $conc connections to $url ($goal)"
	if [ -n "$base" ] && [ "$tls" = 1 ] && [ -z "$base_ca" ]; then
		echo "base ($BASE): its bench deliver has no --ca, so it cannot trust the TLS receiver: no base runs in this scenario"
		base=""
	fi
	start_receiver "$delay" "$tls"
	rm -f "$work"/*.ratios "$work"/*.cpu "$work"/*.rss
	for run in $(seq "$RUNS"); do
		local wrk_out wrk_rate wrk_reqs wrk_cpu
		TIMEFORMAT="%U %S"
		{ time wrk -t"$threads" -c"$conc" -d"${WRK_SECONDS}s" -s "$work/post.lua" "$url" >"$work/wrk.out"; } 2>"$work/wrk.time"
		wrk_rate=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.out")
		wrk_reqs=$(awk '/requests in/ {print $1}' "$work/wrk.out")
		wrk_cpu=$(awk -v n="$wrk_reqs" '{printf "%.1f", ($1 + $2) * 1e6 / n}' "$work/wrk.time")
		echo "$wrk_cpu" >>"$work/wrk.cpu"
		echo "run $run: wrk msgs_per_s=$wrk_rate cpu_us_per_request=$wrk_cpu"
		if [ -n "$base" ]; then
			deliver_run "$work/pushfn-base" base "$wrk_rate" "$conc" "$url" "${ca[@]}"
		fi
		deliver_run "$work/pushfn" pushfn "$wrk_rate" "$conc" "$url" "${ca[@]}"
		pool=$("$work/pushfn" bench pool --url "$url" --n "$N" --size "$SIZE" --conc "$conc" "${ca[@]}" | tail -n1)
		pool_rate=$(sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' <<<"$pool")
		pool_ratio=$(awk -v a="$pool_rate" -v b="$wrk_rate" 'BEGIN {printf "%.2f", a / b}')
		echo "$pool_ratio" >>"$work/pool.ratios"
		cpu_us "$pool" >>"$work/pool.cpu"
		echo "  [pool] $pool ratio=$pool_ratio cpu_us_per_push=$(cpu_us "$pool")"
	done
	stop_receiver
	echo "$name: median ratio pushfn/wrk $(median <"$work/pushfn.ratios") (${goal% x wrk}), CPU us/push $(median <"$work/pushfn.cpu"), peak RSS MiB $(median <"$work/pushfn.rss")"
	if [ -n "$base" ]; then
		echo "$name: median ratio base($BASE)/wrk $(median <"$work/base.ratios"), CPU us/push $(median <"$work/base.cpu"), peak RSS MiB $(median <"$work/base.rss")"
	fi
	echo "$name: median ratio plain Go pool/wrk $(median <"$work/pool.ratios"), CPU us/push $(median <"$work/pool.cpu"); wrk CPU us/request $(median <"$work/wrk.cpu")"
}

for s in $SCENARIOS; do
	case $s in
	plain)
		scenario "50 ms, concurrency 1000" 50ms 1000 0.9 0
		scenario "0 ms, concurrency 100" 0s 100 0.7 0
		;;
	tls)
		scenario "TLS, 50 ms, concurrency 1000" 50ms 1000 - 1
		scenario "TLS, 0 ms, concurrency 100" 0s 100 - 1
		;;
	esac
done
