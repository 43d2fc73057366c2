#!/usr/bin/env bash
# Generator lateness of the open model with every sink on: the web UI (with a subscriber on
# /api/events, so it publishes), the CSV history and the Prometheus exporter (scraped every
# second), at RATE arrivals/s (default 2000) for DURATION seconds against the demo target.
# Prints loadplan's "Generator lateness" line; compare BIN=old and BIN=new binaries.
#   BIN=target/release/loadplan RATE=2000 DURATION=15 benches/sink_lateness.sh
# Everything listens on 127.0.0.1 (free ports picked by python3).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${BIN:-$root/target/debug/loadplan}"
rate="${RATE:-2000}"
duration="${DURATION:-15}"
tmp="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
ui="127.0.0.1:$(free_port)"
metrics="127.0.0.1:$(free_port)"
cat >"$tmp/plan.kdl" <<'EOF'
plan "sink-lateness" {
    cookies #false
}
scenario "get" {
    http GET "/health"
}
EOF
"$bin" run "$tmp/plan.kdl" --demo --arrival-rate "$rate" --max-users 256 -t "${duration}s" \
    --seed 1 --quiet --csv "$tmp/run" --metrics="$metrics" --ui --ui-bind "$ui" \
    >"$tmp/out.txt" 2>"$tmp/err.txt" &
run=$!
# A UI subscriber and a Prometheus-like scraper for the whole run.
for _ in $(seq 50); do curl -s -o /dev/null "http://$ui/" && break; sleep 0.1; done
curl -sN "http://$ui/api/events" >/dev/null 2>&1 &
( while kill -0 "$run" 2>/dev/null; do curl -s -o /dev/null "http://$metrics/metrics" || true; sleep 1; done ) &
wait "$run" || true
grep -E "Generator lateness|Aggregated HTTP|Iterations" "$tmp/out.txt" || cat "$tmp/out.txt" "$tmp/err.txt"
