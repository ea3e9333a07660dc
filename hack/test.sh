#!/usr/bin/env bash
# The one test command: everything CI checks, in order, stopping at the first failure.
#   format, lints, unused dependencies, unit tests, generated-file drift, the container images
#   (built, pushed to the local registry, signed, verified and checked: docs/release.md), then
#   the end-to-end suite on the local cluster (needs root; CI runs as root).
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

step "install dependencies" hack/install-deps.sh
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
# verify.sh's OLM validation really fails: broken copies of the bundle must be refused.
step "OLM validation refuses broken bundles" hack/verify-bundle_test.sh
# The images step starts the local registry unless it runs; then it is stopped when this script
# ends, whatever the outcome.
if ! hack/registry.sh status >/dev/null 2>&1; then
  trap 'hack/registry.sh stop >/dev/null 2>&1 || true' EXIT
fi
step "images" hack/images.sh build push sign verify check
# No skipping: a missing script fails the run (step runs it, and bash reports it missing).
step "end-to-end" hack/e2e.sh
echo "all checks passed in $(($(date +%s) - start_all))s"
