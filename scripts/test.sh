#!/usr/bin/env bash
# The project's test command (README): set up what the tests need, then format, lints,
# every test. On a bare Debian 12 machine with only Rust, run as root it installs the
# rest (scripts/setup.sh, idempotent); as another user it prints what is missing and the
# tests that need it fail with the install command. `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets
