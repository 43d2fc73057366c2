#!/usr/bin/env bash
# Cost of the Prometheus exporter: the same closed-loop run with `--metrics` off and on, side by
# side, interleaved round by round, release build. With metrics on, /metrics is also scraped
# every second (15x more often than the shipped Prometheus config) so encoding is measured too.
# Target: nginx on its own core when installed (a 100-byte JSON answer from memory), otherwise
# the built-in demo target in-process (`--demo`, GET /health).
#
#   benches/metrics_overhead.sh                  # 3 rounds x 10 s, 32 users
#   ROUNDS=5 DURATION=20 USERS=64 benches/metrics_overhead.sh
#   TARGET=demo benches/metrics_overhead.sh      # force the demo target
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
USERS="${USERS:-32}"
TARGET="${TARGET:-auto}"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/loadplan"
work="$(mktemp -d -t loadplan-metrics-bench.XXXXXX)"
nginx_pid=""
scraper_pid=""
cleanup() {
    [ -n "$scraper_pid" ] && kill "$scraper_pid" 2>/dev/null || true
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

gen_cpu=() # taskset prefix for loadplan when there are two cores to split
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then gen_cpu=(taskset -c 0); fi

if [ "$TARGET" = auto ]; then
    if command -v nginx >/dev/null; then TARGET=nginx; else TARGET=demo; fi
fi
target_args=()
if [ "$TARGET" = nginx ]; then
    port="$(free_port)"
    mkdir -p "$work/nginx/tmp"
    cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    server {
        listen 127.0.0.1:$port backlog=4096;
        location = /health {
            default_type application/json;
            return 200 '{"status":"ok","service":"loadplan-bench","version":"1.0.0","checks":{"db":"ok"}}\n';
        }
    }
}
CONF
    nginx_cpu=()
    if [ ${#gen_cpu[@]} -gt 0 ]; then nginx_cpu=(taskset -c 1); fi
    "${nginx_cpu[@]}" nginx -p "$work/nginx/" -c "$work/nginx/nginx.conf" -g 'daemon off;' \
        >"$work/nginx.out" 2>&1 </dev/null &
    nginx_pid=$!
    for _ in $(seq 50); do
        curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$port/health" && break
        sleep 0.1
    done
    target_args=(--host "http://127.0.0.1:$port")
else
    target_args=(--demo)
fi

cat > "$work/plan.kdl" <<'PLAN'
plan "metrics-overhead"
scenario "get" {
    http GET "/health"
}
PLAN

# One run; prints its requests per second.
run_once() {
    local mode="$1" extra=()
    if [ "$mode" = on ]; then
        local mport
        mport="$(free_port)"
        extra=(--metrics="127.0.0.1:$mport")
        ( while sleep 1; do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$mport/metrics" || true; done ) &
        scraper_pid=$!
    fi
    local line
    line="$("${gen_cpu[@]}" "$bin" run "$work/plan.kdl" "${target_args[@]}" -u "$USERS" -r "$USERS" \
        -t "${DURATION}s" --seed 1 --quiet --summary-kv "${extra[@]}" | grep '^rps=')"
    if [ -n "$scraper_pid" ]; then kill "$scraper_pid" 2>/dev/null || true; wait "$scraper_pid" 2>/dev/null || true; scraper_pid=""; fi
    echo "$line" | sed 's/^rps=\([0-9.]*\).*/\1/'
}

echo "target: $TARGET; $USERS users, ${DURATION}s per run, $ROUNDS rounds (off/on interleaved); $("$bin" --version)"
off=()
on=()
printf '%-6s %14s %14s %9s\n' round "off req/s" "on req/s" change
for r in $(seq "$ROUNDS"); do
    a="$(run_once off)"
    b="$(run_once on)"
    off+=("$a")
    on+=("$b")
    printf '%-6s %14s %14s %8s%%\n' "$r" "$a" "$b" "$(python3 -c "print(f'{($b/$a-1)*100:+.1f}')")"
done
python3 - "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
off = [float(x) for x in sys.argv[1].split()]
on = [float(x) for x in sys.argv[2].split()]
mo, mn = statistics.median(off), statistics.median(on)
print(f"median  {mo:14.1f} {mn:14.1f} {(mn / mo - 1) * 100:+8.1f}%")
PY
