#!/usr/bin/env bash
# Fails when a generated file is stale: regenerates everything into a temporary tree and compares
# it with the repository. Fix with hack/generate.sh.
# Then checks that the operator's kustomize base, the OLM bundle and the operator's own defaults
# name the same images (docs/release.md: the committed files name tags; hack/images.sh makes a
# rendering by digest).
# Last, OLM's own validators on the bundle and `opm validate` on the catalog it makes with the
# previous release (hack/verify-bundle.sh; docs/operator.md, "OLM's validators"): an error, or a
# warning that is not explained, fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$root/hack/generate.sh" --out "$tmp"
status=0
for dir in manifests/crd manifests/operator bundle/manifests bundle/metadata; do
  if ! diff -ru "$root/$dir" "$tmp/$dir"; then
    status=1
  fi
done
if [[ $status -ne 0 ]]; then
  echo "generated files are stale: run hack/generate.sh and commit the result" >&2
  exit 1
fi
echo "generated files are up to date"

"$root/hack/check-image-refs.sh" "$root" "$root/target/debug/metallb-operator"

"$root/hack/verify-bundle.sh" "$root/bundle"
