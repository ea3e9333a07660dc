#!/usr/bin/env bash
# OLM's own checks on an OLM bundle (default: bundle/), as hack/verify.sh runs them:
#   1. bundle-validate (hack/olm/cmd/bundle-validate): the validators `operator-sdk bundle
#      validate --select-optional suite=operatorframework` runs, for the oldest Kubernetes
#      version the bundle supports (its minKubeVersion) and the test cluster's. Any error fails;
#      so does a warning not explained in hack/olm/known-warnings.txt (docs/operator.md, "OLM's
#      validators"), and an explanation no warning needs any more.
#   2. `opm validate` on the file-based catalog this bundle makes with the previous release's
#      bundle (hack/previous-release): the package, the channel and its upgrade edge.
#
#   hack/verify-bundle.sh [BUNDLE_DIR]
# Builds bundle-validate and opm first when they are missing or stale.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bundle="${1:-$root/bundle}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$root/hack/build-olm.sh" bundle-validate
"$root/hack/build-tools.sh" opm

csv="$(echo "$bundle"/manifests/*.clusterserviceversion.yaml)"
[[ -f "$csv" ]] || { echo "verify-bundle: no ClusterServiceVersion in $bundle/manifests" >&2; exit 1; }
# major.minor of the CSV's minKubeVersion, and of the Kubernetes the test cluster runs.
oldest="$(awk '$1 == "minKubeVersion:" { gsub(/"/, "", $2); split($2, v, "."); print v[1] "." v[2] }' "$csv")"
current="$(awk '$1 == "k8s.io/kubernetes" { sub(/^v/, "", $2); split($2, v, "."); print v[1] "." v[2] }' "$root/e2e/cluster/go.mod")"
[[ -n "$oldest" && -n "$current" ]] || { echo "verify-bundle: cannot tell the Kubernetes versions (minKubeVersion '$oldest', test cluster '$current')" >&2; exit 1; }

"$root/.local/bin/bundle-validate" -k8s-version "$oldest,$current" \
	-known-warnings "$root/hack/olm/known-warnings.txt" "$bundle"

"$root/hack/previous-release.sh" bundle "$tmp/previous"
OPM="$root/.local/bin/opm" "$root/hack/catalog.sh" "$tmp/catalog" "$bundle" "$tmp/previous/bundle"
