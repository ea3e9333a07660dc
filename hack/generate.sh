#!/usr/bin/env bash
# Regenerates every generated file: the CRDs (manifests/crd), the operator's kustomize base
# (manifests/operator) and the OLM bundle (bundle/manifests, bundle/metadata). hack/verify.sh
# checks that the committed files are what this script produces.
#
#   hack/generate.sh              write into the repository
#   hack/generate.sh --out DIR    write the same tree under DIR (used by hack/verify.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root"
if [[ "${1:-}" == "--out" ]]; then
  out="$2"
fi
cd "$root"
cargo build --quiet -p metallb-operator
rm -f "$out"/manifests/crd/metallb.io_*.yaml "$out"/bundle/manifests/*.yaml
"$root/target/debug/metallb-operator" generate --output-dir "$out"
