#!/usr/bin/env bash
# One loadplan process versus a master + 2 workers on the same machine, same total
# users, same run length, against nginx (../shared/bench/nginx.conf) when installed,
# else the built-in demo target. Reports each setup's throughput (the master's merged
# numbers for the distributed run) and the CPU seconds the master itself used (the
# cost of merging deltas), beside the generators' CPU.
#
#   benches/dist.sh                      # release build, 64 users, 10 s
#   USERS=128 DURATION=20 benches/dist.sh
#   LOADPLAN_BIN=target/debug/loadplan benches/dist.sh   # no build (numbers are not release numbers)
#
# With taskset, the target is pinned to the last CPU and the generators (all of them)
# to the others, so both setups get the same cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bench="${BENCH_DIR:-$root/../shared/bench}"
users="${USERS:-64}"
duration="${DURATION:-10}"
if [ -n "${LOADPLAN_BIN:-}" ]; then
    bin="$(cd "$(dirname "$LOADPLAN_BIN")" && pwd)/$(basename "$LOADPLAN_BIN")"
else
    cargo build --release --manifest-path "$root/Cargo.toml"
    bin="$root/target/release/loadplan"
fi
plan="$root/examples/bench/get.kdl"
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cpus="$(nproc)"
gen_pin=()
target_pin=()
if command -v taskset >/dev/null && [ "$cpus" -ge 2 ]; then
    target_pin=(taskset -c "$((cpus - 1))")
    gen_pin=(taskset -c "0-$((cpus - 2))")
fi

wait_for() { # file pattern (bounded: 30 s)
    for _ in $(seq 300); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "timed out waiting for '$2' in $1" >&2
    cat "$1" >&2
    return 1
}

if command -v nginx >/dev/null && [ -f "$bench/nginx.conf" ]; then
    mkdir -p "$work/nginx/tmp"
    "${target_pin[@]}" nginx -p "$work/nginx" -c "$bench/nginx.conf" -g 'daemon off;' \
        2>"$work/nginx.err" &
    pids+=($!)
    host="http://127.0.0.1:18080"
    for _ in $(seq 100); do curl -fs "$host/api/health" >/dev/null 2>&1 && break; sleep 0.1; done
    target="nginx (pinned: ${target_pin[*]:-none})"
    path=/api/health
else
    port=18081
    "${target_pin[@]}" "$bin" demo --bind "127.0.0.1:$port" 2>"$work/demo.err" &
    pids+=($!)
    host="http://127.0.0.1:$port"
    wait_for "$work/demo.err" "listening"
    target="loadplan demo"
    path=/health
fi
# The bench plan asks for /api/health (nginx); the demo serves /health.
sed "s#\"/api/health\"#\"$path\"#" "$plan" >"$work/plan.kdl"

common=(--host "$host" -u "$users" -r "$users" -t "${duration}s" --quiet --summary-kv --seed 1)

# CPU seconds (user+sys) of a command's children, via the shell's `times`.
cpu_of() { # out-file cmd...
    local out="$1"
    shift
    bash -c '"$@" >"$0.out" 2>"$0.err"; times >"$0.times"' "$out" "$@" || true
    tail -1 "$out.times" | awk '{
        split($1, u, /[ms]/); split($2, s, /[ms]/);
        printf "%.2f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }'
}

kv() { grep -o "$2=[0-9.]*" "$1" | head -1 | cut -d= -f2; }

echo "target: $target; $users users, ${duration}s; $cpus CPUs; generators pinned: ${gen_pin[*]:-no}"

single_cpu="$(cpu_of "$work/single" "${gen_pin[@]}" "$bin" run "$work/plan.kdl" "${common[@]}")"
single_rps="$(kv "$work/single.out" rps)"
single_req="$(kv "$work/single.out" requests)"

master_log="$work/master"
(cpu_of "$master_log" "${gen_pin[@]}" "$bin" master "$work/plan.kdl" "${common[@]}" \
    --expect-workers 2 --bind 127.0.0.1:0 --secret bench >"$work/master.cpu") &
mpid=$!
wait_for "$master_log.err" "master listening on"
addr="$(grep -o 'master listening on [^ ]*' "$master_log.err" | awk '{print $4}')"
worker_cpu=()
for i in 1 2; do
    (cpu_of "$work/worker$i" "${gen_pin[@]}" "$bin" worker --master "$addr" --secret bench -q \
        >"$work/worker$i.cpu") &
    worker_cpu+=($!)
done
wait "$mpid"
for p in "${worker_cpu[@]}"; do wait "$p"; done
dist_rps="$(kv "$master_log.out" rps)"
dist_req="$(kv "$master_log.out" requests)"
master_cpu="$(cat "$work/master.cpu")"
w1="$(cat "$work/worker1.cpu")"
w2="$(cat "$work/worker2.cpu")"

printf '%-24s %12s %12s %14s\n' setup "req/s" requests "CPU s"
printf '%-24s %12s %12s %14s\n' "1 process" "$single_rps" "$single_req" "$single_cpu"
printf '%-24s %12s %12s %14s\n' "master + 2 workers" "$dist_rps" "$dist_req" "workers $w1 + $w2"
printf '%-24s %12s %12s %14s\n' "  of which the master" "" "" "$master_cpu"
grep -A3 '^Workers' "$master_log.out" || true
