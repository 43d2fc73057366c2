# loadplan's task runner. `just --list` shows every recipe; `just load-test help` the
# Docker Compose commands.

set positional-arguments

# the Docker Compose commands: run, ui, stop, status, report, build, help
[no-exit-message]
load-test *args:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
        B=$'\e[1m' C=$'\e[36m' G=$'\e[32m' Y=$'\e[33m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'
    else
        B='' C='' G='' Y='' R='' D='' N=''
    fi
    help() {
        cat <<HELP
    ${B}just load-test${N} ${C}<command>${N} [options] [loadplan flags…]

    ${B}Commands${N}
      ${G}run${N}     [--profile P] [flags…]  headless run; flags after the profile override it (-u 10 -t 2m …)
              [--workers N]           … distributed: a master and N workers (docker compose up --scale)
              [--observability]       … also start Prometheus :9090 and Grafana :3000 (implies a master)
      ${G}ui${N}      [--profile P]           web UI on http://localhost:8089 (token: \$LOADPLAN_UI_TOKEN, default loadplan)
      ${G}stop${N}                            stop and remove every container of this project
      ${G}status${N}                          show the containers
      ${G}report${N}                          print the report files and the Grafana dashboard URL
      ${G}build${N}                           build the image (loadplan:local)
      ${G}help${N}                            this text

    ${B}Options for run and ui${N}
      --profile P   smoke (default), load, stress, soak, or a file in profiles/
      --plan F      a plan in plans/ (default mixed.kdl)
      --durable     join the Durable Code network durable-network-dev (docker-compose.durable.yml)

    ${B}Environment${N}
      LOAD_TEST_HOST  target ${D}(default http://host.docker.internal:8000)${N}   PLAN, PROFILE, WORKERS

    ${B}Examples${N}
      just load-test run --profile load
      just load-test run --profile stress --workers 4
      LOAD_TEST_HOST=http://api.internal:8000 just load-test run -u 10 -t 1m
    HELP
    }
    cmd="${1:-help}"
    [ $# -gt 0 ] && shift
    plan="${PLAN:-mixed.kdl}" profile="${PROFILE:-smoke}" workers="" durable="" observability=""
    rest=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --profile|-p) [ $# -ge 2 ] || { echo "${R}error:${N} $1 needs a value" >&2; exit 2; }
                profile="$2"; shift 2 ;;
            --profile=*) profile="${1#--profile=}"; shift ;;
            --plan) [ $# -ge 2 ] || { echo "${R}error:${N} --plan needs a value" >&2; exit 2; }
                plan="$2"; shift 2 ;;
            --plan=*) plan="${1#--plan=}"; shift ;;
            --workers) [ $# -ge 2 ] || { echo "${R}error:${N} --workers needs a value" >&2; exit 2; }
                workers="$2"; shift 2 ;;
            --workers=*) workers="${1#--workers=}"; shift ;;
            --durable) durable=1; shift ;;
            --observability) observability=1; shift ;;
            *) rest+=("$1"); shift ;;
        esac
    done
    plan="${plan#plans/}"
    if [ -n "$workers" ] && ! [[ "$workers" =~ ^[1-9][0-9]*$ ]]; then
        echo "${R}error:${N} --workers wants a positive number, not \`$workers\`" >&2; exit 2
    fi
    dc=(docker compose)
    [ -n "$durable" ] && dc+=(-f docker-compose.yml -f docker-compose.durable.yml)
    all_profiles=(--profile ui --profile demo --profile observability)
    export LOADPLAN_USER="${LOADPLAN_USER:-$(id -u):$(id -g)}"
    token="${LOADPLAN_UI_TOKEN:-loadplan}"
    case "$cmd" in
        run|ui|stop|status|build)
            if ! docker compose version >/dev/null 2>&1; then
                echo "${R}error:${N} \`just load-test $cmd\` needs Docker Compose v2 (\`docker compose\`), which is missing." >&2
                echo "Install Docker Engine with its compose plugin (Debian 12: Docker's apt repository," >&2
                echo "  apt-get install docker-ce docker-compose-plugin; see https://docs.docker.com/engine/install/debian/)." >&2
                exit 1
            fi
            ;;
    esac
    case "$cmd" in
        run)
            mkdir -p reports
            if [ -n "$observability" ]; then
                "${dc[@]}" --profile observability up -d prometheus grafana
                workers="${workers:-1}"
            fi
            if [ -z "$workers" ]; then
                outs=()
                for f in "--json reports/result.json" "--html reports/report.html" "--junit reports/junit.xml"; do
                    case " ${rest[*]-} " in *" ${f%% *} "*|*" ${f%% *}="*) ;; *) outs+=($f) ;; esac
                done
                exec "${dc[@]}" run --rm master run "plans/$plan" --profile "$profile" ${outs[@]+"${outs[@]}"} ${rest[@]+"${rest[@]}"}
            fi
            export PLAN="$plan" PROFILE="$profile" WORKERS="$workers" LOADPLAN_ARGS="${rest[*]-}"
            exec "${dc[@]}" up --scale "worker=$workers" --abort-on-container-exit --exit-code-from master master worker
            ;;
        ui)
            mkdir -p reports
            export PLAN="$plan" PROFILE="$profile" LOADPLAN_ARGS="${rest[*]-}"
            "${dc[@]}" --profile ui up -d ui
            echo "${B}web UI:${N} ${C}http://localhost:8089/?token=${token}${N}   (stop: just load-test stop)"
            ;;
        stop)   exec "${dc[@]}" "${all_profiles[@]}" down --remove-orphans ;;
        status) exec "${dc[@]}" "${all_profiles[@]}" ps ;;
        build)  exec "${dc[@]}" build ;;
        report)
            found=""
            for f in reports/report.html reports/result.json reports/junit.xml; do
                if [ -f "$f" ]; then echo "${B}report:${N}  $PWD/$f"; found=1; fi
            done
            [ -n "$found" ] || echo "${Y}no report yet${N} in $PWD/reports (run: just load-test run)"
            echo "${B}grafana:${N} ${C}http://localhost:3000/d/loadplan/loadplan${N}   (just load-test run --observability)"
            ;;
        help|-h|--help) help ;;
        *)
            echo "${R}error:${N} unknown load-test command \`$cmd\`" >&2
            echo >&2
            help >&2
            exit 2
            ;;
    esac

# the test suite: fmt, clippy, every test (what CI runs)
test:
    bash scripts/test.sh

# fmt and clippy, then `loadplan check` on every bundled plan
check:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings
    for p in plans/*.kdl plans/*.yaml; do cargo run --quiet -- check "$p"; done

# loadplan beside wrk on the shared peer harness (needs nginx and wrk)
bench:
    bash benches/http_vs_wrk.sh
