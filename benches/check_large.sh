#!/usr/bin/env bash
# Time `loadplan check` (release build) on a generated 5,000-step plan, in KDL and in
# its YAML twin. Usage: benches/check_large.sh [STEPS] [RUNS]
#
# The plan mixes the step kinds the checker works hardest on: templated URLs (each
# compiled once), checks with JSON paths, captures used by later steps, groups and
# picks. Prints the best and median wall time of RUNS runs per spelling, and the peak
# RSS of one run (GNU time; see "Limits" in grammar/README.md for measured figures).
set -euo pipefail
if ! [ -x /usr/bin/time ]; then
    echo "error: /usr/bin/time (GNU time) is needed for the peak RSS: apt-get install time" >&2
    exit 1
fi
steps=${1:-5000}
runs=${2:-7}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --quiet
bin="$root/target/release/loadplan"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

python3 - "$steps" "$dir" <<'PY'
import sys
steps, out = int(sys.argv[1]), sys.argv[2]
per = 10                     # a group and its 9 steps, then one POST: 11 steps a unit
groups = steps // (per + 1)
rest = steps - groups * (per + 1)
k = ['plan "large" {\n    host "http://localhost:8000"\n}\n\nvars {\n    token "abc"\n}\n\nscenario "big" {\n    think between="1s" and="2s"\n']
y = ['# yaml-language-server: $schema=../grammar/plan.schema.json\nplan:\n  name: large\n  host: http://localhost:8000\n\nvars:\n  token: abc\n\nscenarios:\n  - name: big\n    think: { between: 1s, and: 2s }\n    steps:\n']
for g in range(groups):
    k.append(f'    group "g{g}" {{\n')
    y.append(f'      - group:\n          name: g{g}\n          steps:\n')
    for i in range(per - 2):
        n = g * per + i
        k.append(f'        http GET "/api/items/{n}?page={{{{ random_int(1, 9) }}}}&t={{{{ token }}}}" name="/api/items/{n}" {{\n'
                 f'            check status=200\n            check json="$.items[0].id" exists=#true\n'
                 f'            capture "c{n}" json="$.id"\n        }}\n')
        y.append(f'            - http:\n                method: GET\n'
                 f'                url: "/api/items/{n}?page={{{{ random_int(1, 9) }}}}&t={{{{ token }}}}"\n'
                 f'                name: /api/items/{n}\n'
                 f'                checks: [{{ status: 200 }}, {{ json: "$.items[0].id", exists: true }}]\n'
                 f'                captures: [{{ var: c{n}, json: $.id }}]\n')
    prev = g * per + per - 3
    k.append(f'        sleep "10ms"\n    }}\n')
    y.append(f'            - sleep: 10ms\n')
    # the group itself is the 10th step; use a capture from it
    k.append(f'    http POST "/api/echo" {{\n        json #"{{"v": "{{{{ c{prev} }}}}"}}"#\n    }}\n')
    y.append(f'      - http:\n          method: POST\n          url: /api/echo\n          json: \'{{"v": "{{{{ c{prev} }}}}"}}\'\n')
for r in range(rest):
    k.append('    http GET "/health"\n')
    y.append('      - http: GET /health\n')
k.append('}\n')
open(f'{out}/large.kdl', 'w').write(''.join(k))
open(f'{out}/large.yaml', 'w').write(''.join(y))
PY

time_ms() {
    local start end
    start=$(date +%s%N)
    "$bin" check "$1" > /dev/null
    end=$(date +%s%N)
    echo $(( (end - start) / 1000000 ))
}

for f in large.kdl large.yaml; do
    "$bin" check "$dir/$f" | sed "s|$dir/||"
    times=()
    for _ in $(seq "$runs"); do times+=("$(time_ms "$dir/$f")"); done
    sorted=$(printf '%s\n' "${times[@]}" | sort -n)
    best=$(echo "$sorted" | head -n1)
    median=$(echo "$sorted" | sed -n "$(( (runs + 1) / 2 ))p")
    size=$(wc -c < "$dir/$f")
    peak=$(/usr/bin/time -f '%M' "$bin" check "$dir/$f" 2>&1 >/dev/null | tail -n1)
    printf '%-11s %8d bytes  best %5d ms  median %5d ms  (%d runs)  peak RSS %d kB (%d bytes/step)\n' \
        "$f" "$size" "$best" "$median" "$runs" "$peak" $(( peak * 1024 / steps ))
done
