#!/usr/bin/env bash
# The one test command: everything CI checks, in order, stopping at the first failure.
#   format, lints, unused dependencies, unit tests, generated-file drift, then the end-to-end
#   suite on the local cluster (needs root; CI runs as root).
# Each step prints its duration; the total is printed at the end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

start_all=$(date +%s)
step() {
  local name="$1"
  shift
  local start
  start=$(date +%s)
  echo "==> $name"
  "$@"
  echo "<== $name: $(($(date +%s) - start))s"
}

if [[ -x hack/install-deps.sh ]]; then
  step "install dependencies" hack/install-deps.sh
fi
step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets --quiet -- -D warnings
# Fails when a crate declares a dependency no code uses (hack/install-deps.sh installs it and
# says where a true false positive is listed).
step "unused dependencies" cargo machete
step "unit tests" cargo test --workspace --quiet
# FRR's own parser (vtysh --dryrun, from the frr package installed above) on every golden
# frr.conf of the speaker's FRR mode.
step "FRR golden files" cargo test -p metallb-speaker --test frr_syntax --quiet -- --ignored
step "generated files" hack/verify.sh
if [[ -x hack/e2e.sh ]]; then
  step "end-to-end" hack/e2e.sh
fi
echo "all checks passed in $(($(date +%s) - start_all))s"
