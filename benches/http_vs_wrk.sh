#!/usr/bin/env bash
# loadplan beside wrk (and oha, Locust, Artillery, Goose when installed) in one run
# of the shared peer harness: nginx on one core, the generator on the other, 64
# connections/users, interleaved rounds. Needs ../shared/bench (read-only is fine)
# and `apt-get install nginx wrk`; the other peers are optional (see its setup.sh).
#
#   benches/http_vs_wrk.sh                 # wrk + loadplan (+ whatever peers exist)
#   ONLY=wrk,oha,loadplan benches/http_vs_wrk.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bench="${BENCH_DIR:-$root/../shared/bench}"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --manifest-path "$root/Cargo.toml"
bin="$root/target/release/loadplan"
export LOADPLAN_CMD="$bin run $root/examples/bench/get.kdl --host {base} -u {conns} -r {conns} -t {duration}s --quiet --summary-kv --seed 1"
export LOADPLAN_FORMAT=kv
export LOADPLAN_VERSION="$($bin --version)"
export ONLY="${ONLY:-wrk,oha,loadplan}"
export OPEN_ROUNDS="${OPEN_ROUNDS:-0}"
cd "$bench"
exec bash ./run.sh
