#!/usr/bin/env bash
# The open-model check of the shared peer harness: ask loadplan, oha (-q) and
# Artillery (arrivalRate) for OPEN_RATE (default 2000) req/s against the nginx
# target for DURATION seconds and put achieved rate and p99 side by side.
# Needs ../shared/bench, nginx; oha and artillery as installed by its setup.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bench="${BENCH_DIR:-$root/../shared/bench}"
# LOADPLAN_BIN: another build to measure (e.g. a copy of the binary before a change).
if [ -n "${LOADPLAN_BIN:-}" ]; then
    bin="$LOADPLAN_BIN"
else
    [ "${NO_BUILD:-0}" = 1 ] || cargo build --release --manifest-path "$root/Cargo.toml"
    bin="$root/target/release/loadplan"
fi
export LOADPLAN_CMD="$bin run $root/examples/bench/get.kdl --host {base} -u {conns} -r {conns} -t {duration}s --quiet --summary-kv --seed 1"
export LOADPLAN_OPEN_CMD="$bin run $root/examples/bench/get.kdl --host {base} --arrival-rate {rate} --max-users 256 -t {duration}s --quiet --summary-kv --seed 1"
export LOADPLAN_FORMAT=kv
export LOADPLAN_VERSION="$($bin --version)"
export ONLY="${ONLY:-oha-q,artillery-arrivalRate,artillery-arrivalRate-pool,loadplan-open}"
export ROUNDS="${ROUNDS:-0}"
export OUT="${OUT:-${TMPDIR:-/tmp}/loadplan-bench/open-$(date -u +%Y%m%dT%H%M%SZ)}"
cd "$bench"
bash ./run.sh
# The table has no column for it: the generator's own lateness (how late arrivals
# started, p99) and the arrivals dropped, from loadplan's summary line of each round.
for f in "$OUT"/raw/open-r*-loadplan-open.stdout; do
    [ -e "$f" ] || continue
    printf '%s: %s\n' "$(basename "$f" .stdout)" \
        "$(grep -o 'rps=[0-9.]*\|dropped=[0-9]*\|lateness_p99_ms=[0-9.]*' "$f" | tr '\n' ' ')"
done
