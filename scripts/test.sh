#!/usr/bin/env bash
# The one test command of signet: installs the peers, builds the release binary once, runs every
# test against it (unit tests and the real-peer integration tests), then clippy and rustfmt.
# Exits non-zero if any step fails (all steps after the build run, and every failure is listed).
#
# Environment:
#   SIGNET_TEST_THREADS  [2]  tests run in parallel; each real-peer test starts its own daemons
#                             (single-worker named/knotd/nsd) and mostly waits on them, so two
#                             concurrent tests keep both cores busy without starving deadlines.
#   SIGNET_KEEP_TEST_DIRS     set to keep every test's temp dir (configs, logs, zones).
#   CI=true                   a missing peer binary fails the test instead of skipping it.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
THREADS=${SIGNET_TEST_THREADS:-2}

step() { printf '\n==> %s\n' "$*" >&2; }
failed=()

step "install test dependencies"
bash scripts/install-test-deps.sh || { echo "test.sh: installing the peers failed" >&2; exit 1; }

step "cargo build --release"
cargo build --release || { echo "test.sh: build failed" >&2; exit 1; }

step "cargo test --release --no-fail-fast -- --test-threads=$THREADS"
# --no-fail-fast: a failing unit test must not hide the real-peer tests' results
cargo test --release --no-fail-fast -- --test-threads="$THREADS" || failed+=("cargo test")

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings || failed+=("cargo clippy")

step "cargo fmt --check"
cargo fmt --check || failed+=("cargo fmt --check")

if [ ${#failed[@]} -gt 0 ]; then
  printf '\ntest.sh: FAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
printf '\ntest.sh: all green\n' >&2
