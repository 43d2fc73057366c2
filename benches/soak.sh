#!/usr/bin/env bash
# Overnight-style soak: does loadplan's memory stay flat over a long run?
#
# Starts the built-in demo target (`loadplan demo`) as its own process, then runs
# plans/mixed.kdl (HTTP and WebSocket scenarios, the `soak` profile's 70/30 weights) with
# 50 users (all started at once) for SOAK_MINUTES (default 30) against it, samples the
# resident set size (RSS) of the loadplan *run* process every 10 s into a CSV, and prints
# the mean RSS of the first and of the last minute and their difference in percent
# (issue 12 asks for within 5 %). The first minute starts after WARMUP seconds (default
# 10: the process starting up and opening its connections is not a trend). Only the
# load generator is measured: the target lives in another process.
#
#   benches/soak.sh                                # 30 min, release build
#   SOAK_MINUTES=2 benches/soak.sh                 # a quick check of the script
#   PROFILE=debug SOAK_MINUTES=2 benches/soak.sh   # with the debug binary (busy machine)
#   USERS=100 OUT=soak.csv benches/soak.sh         # more users, keep the CSV
#
# Output: the CSV (t_secs,rss_kb), loadplan's summary tail, and lines like
#   first minute: 21.3 MB   last minute: 21.9 MB   difference: +2.8 %
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
SOAK_MINUTES="${SOAK_MINUTES:-30}"
USERS="${USERS:-50}"
INTERVAL="${INTERVAL:-10}"
WARMUP="${WARMUP:-10}"
PROFILE="${PROFILE:-release}"
case "$SOAK_MINUTES" in
    '' | *[!0-9]* | 0 | 1)
        echo "SOAK_MINUTES must be a whole number of minutes, at least 2 (got '$SOAK_MINUTES')" >&2
        exit 2
        ;;
esac
if [ "$PROFILE" = release ]; then
    [ "${NO_BUILD:-0}" = 1 ] || cargo build --release --quiet --manifest-path "$root/Cargo.toml"
else
    [ "${NO_BUILD:-0}" = 1 ] || cargo build --quiet --manifest-path "$root/Cargo.toml"
fi
bin="$root/target/$PROFILE/loadplan"
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 1; }
[ -r /proc/self/status ] || { echo "this script reads /proc/PID/status (Linux)" >&2; exit 1; }

work="$(mktemp -d -t loadplan-soak.XXXXXX)"
OUT="${OUT:-$work/rss.csv}"
demo_pid=""
run_pid=""
cleanup() {
    [ -n "$run_pid" ] && kill "$run_pid" 2>/dev/null || true
    [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
"$bin" demo --bind "127.0.0.1:$port" >"$work/demo.log" 2>&1 &
demo_pid=$!
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

echo "soak: $USERS users, ${SOAK_MINUTES} min, demo target on :$port, RSS every ${INTERVAL}s -> $OUT" >&2
"$bin" run "$root/plans/mixed.kdl" --profile soak -u "$USERS" -r "$USERS" -t "${SOAK_MINUTES}m" \
    --host "http://127.0.0.1:$port" --seed 1 --quiet --json "$work/result.json" \
    >"$work/run.out" 2>"$work/run.err" &
run_pid=$!

echo "t_secs,rss_kb" >"$OUT"
start=$(date +%s)
while kill -0 "$run_pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$run_pid/status" 2>/dev/null || true)
    [ -n "$rss" ] && echo "$(($(date +%s) - start)),$rss" >>"$OUT"
    sleep "$INTERVAL"
done
set +e
wait "$run_pid"
code=$?
set -e
run_pid=""

echo "--- loadplan run (exit $code), last lines:" >&2
tail -n 8 "$work/run.out" >&2 || true
python3 - "$OUT" "$WARMUP" <<'PY'
import csv, sys
path, warmup = sys.argv[1], int(sys.argv[2])
rows = [(int(r["t_secs"]), int(r["rss_kb"])) for r in csv.DictReader(open(path))]
if not rows:
    sys.exit("no RSS sample")
end = max(t for t, _ in rows)
first = [kb for t, kb in rows if warmup <= t < warmup + 60] or [rows[0][1]]
last = [kb for t, kb in rows if t >= end - 60]
mean = lambda xs: sum(xs) / len(xs)
f, l = mean(first), mean(last)
print(f"samples: {len(rows)} over {end} s (RSS of the loadplan run process; "
      f"first minute from {warmup} s, last minute from {end - 60} s)")
print(f"first minute: {f / 1024:.1f} MB   last minute: {l / 1024:.1f} MB   "
      f"difference: {(l - f) / f * 100:+.1f} %")
PY
if [ "${OUT}" = "$work/rss.csv" ]; then
    echo "(set OUT=FILE to keep the CSV)" >&2
fi
exit 0
