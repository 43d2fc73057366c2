#!/usr/bin/env bash
# Many concurrent oscilloscope WebSocket sessions against the demo target, each
# process on its own core: does loadplan read every frame the target sends, and
# what does a session cost it (CPU, RSS)?
#
# The demo target runs in a separate release process: the ignored helper test
# `bench_demo_target` of tests/run_ws.rs (the same `DemoServer` that `loadplan demo`
# serves, plus a line of its WebSocket counters when it stops). loadplan runs one
# iteration per user of: connect, start, receive FRAMES frames, stop, close; so each
# session streams for about DURATION seconds after the ramp-up. Frames the target
# sent are compared with frames loadplan counted in the `frame` row (the target also
# counts the at most one frame per session still in flight after `stop`, which
# arrives during `close` and is not in that row).
#
#   benches/ws_sessions.sh                                  # 1,000 sessions, 110 ms frames, 60 s
#   SESSIONS=10000 FRAME_MS=1000 RATE=1000 benches/ws_sessions.sh
#
# Knobs: SESSIONS, FRAME_MS (target frame period), DURATION (s of streaming per
# session), RATE (sessions started per s), PORT, NO_BUILD=1, COOKIES=false (plan
# setting; with HTTP steps, true builds an HTTP client with its own cookie jar per
# user), LOADPLAN (the binary to measure, default target/release/loadplan: compare a
# saved copy of an earlier build).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
sessions="${SESSIONS:-1000}"
frame_ms="${FRAME_MS:-110}"
duration="${DURATION:-60}"
rate="${RATE:-200}"
port="${PORT:-18000}"
cookies="${COOKIES:-true}"
frames=$(( duration * 1000 / frame_ms ))
work="$(mktemp -d)"
trap 'touch "$work/stop"; wait 2>/dev/null || true; rm -rf "$work"' EXIT

if [ "${NO_BUILD:-0}" != 1 ]; then
    cargo build --release --manifest-path "$root/Cargo.toml"
fi
if [ "${NO_BUILD:-0}" != 1 ]; then
    (cd "$root" && cargo test --release --test run_ws --no-run)
fi
# The newest release build of tests/run_ws.rs holds the demo helper.
demo_bin="$(ls -t "$root"/target/release/deps/run_ws-* 2>/dev/null | grep -v '\.d$' | head -1 || true)"
[ -n "$demo_bin" ] || { echo "no release build of tests/run_ws.rs" >&2; exit 1; }
loadplan="${LOADPLAN:-$root/target/release/loadplan}"

# Two descriptors per session (demo side and ours): allow as many as the hard limit does.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cores="$(nproc)"
demo_core=0
lp_core=$(( cores > 1 ? 1 : 0 ))

WS_BENCH_ADDR="127.0.0.1:$port" WS_BENCH_FRAME_MS="$frame_ms" WS_BENCH_STOP="$work/stop" \
    taskset -c "$demo_core" "$demo_bin" bench_demo_target --ignored --exact --nocapture \
    >"$work/demo.out" 2>"$work/demo.err" &
demo_pid=$!
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

cat >"$work/plan.kdl" <<EOF
plan "ws-bench" {
    host "http://127.0.0.1:$port"
    cookies #$cookies
}

scenario "stream" {
    ws "/api/oscilloscope/stream" name="connect" timeout="30s" {
        send "start" json=#"{"command": "start", "wave_type": "sine", "frequency": 10, "amplitude": 1, "offset": 0}"#
        receive "frame" count=$frames timeout="$(( duration * 3 ))s" match="\$.samples"
        send "stop" json=#"{"command": "stop"}"#
        close name="disconnect"
    }
}
EOF

echo "== $sessions sessions, ${frame_ms} ms frames, $frames frames each, ramp $rate/s, cookies $cookies"
/usr/bin/time -v -o "$work/time.txt" taskset -c "$lp_core" "$loadplan" run "$work/plan.kdl" \
    -u "$sessions" -r "$rate" --iterations 1 --seed 1 --quiet >"$work/summary.txt" 2>&1 || true
touch "$work/stop"
wait "$demo_pid" || true

cat "$work/summary.txt"
demo_line="$(grep -o 'demo_ws .*' "$work/demo.out" || true)"
echo "$demo_line"
sent="$(sed -n 's/.*frames_sent=\([0-9]*\).*/\1/p' <<<"$demo_line")"
# The `frame` row: "[scenario] receive frame <count> <fails> …".
frame_col() {
    awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == "receive" && $(i + 1) == "frame") { print $(i + 1 + k); exit } }' \
        "$work/summary.txt"
}
received="$(frame_col 1)"
failed="$(frame_col 2)"
rss_kb="$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")"
user_s="$(sed -n 's/.*User time (seconds): //p' "$work/time.txt")"
sys_s="$(sed -n 's/.*System time (seconds): //p' "$work/time.txt")"
wall="$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time.txt")"
cpu="$(sed -n 's/.*Percent of CPU this job got: //p' "$work/time.txt")"
awk -v s="$sent" -v r="${received:-0}" -v f="${failed:-?}" -v n="$sessions" -v rss="$rss_kb" \
    -v u="$user_s" -v sy="$sys_s" -v w="$wall" -v cpu="$cpu" 'BEGIN {
    printf "frames: target sent %d, loadplan matched %d (%.3f%%), failed events %s\n", s, r, (s > 0 ? 100 * r / s : 0), f
    printf "loadplan: wall %s, CPU %s (user %.2f s + sys %.2f s), %.1f µs CPU per frame\n", w, cpu, u, sy, (r > 0 ? 1e6 * (u + sy) / r : 0)
    printf "loadplan: max RSS %.1f MB, %.1f KB per session\n", rss / 1024, rss / n
}'
