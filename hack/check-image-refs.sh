#!/usr/bin/env bash
# Checks that a rendering of the operator's installation names one set of images:
#   hack/check-image-refs.sh DIR OPERATOR_BINARY
# DIR holds manifests/operator and bundle/ (the repository, or hack/images.sh's release rendering);
# the operator Deployment of the kustomize base, the CSV (its deployment, containerImage, env and
# relatedImages) and the controller and speaker images OPERATOR_BINARY deploys by default (its
# `render` of the sample MetalLB resource) must agree. hack/verify.sh runs it on the repository
# with the debug build (tags); hack/images.sh on the release rendering with the release build
# (digests).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$1"
operator_bin="$2"
sample="$root/manifests/samples/metallb.yaml"
# The YAML writer folds long scalars (`key: >-` and the value on the next line); an image
# reference has no spaces, so joining the two lines gives `key: value`.
unfold() { awk '/: >-$/ { line = substr($0, 1, length($0) - 2); getline next_line; sub(/^ +/, "", next_line); print line next_line; next } { print }' "$1"; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The value on the line after `- name: NAME` (a container env entry).
env_value() { awk -v name="$2" '$0 ~ "- name: " name "$" { getline; sub(/^ *value: /, ""); print }' "$1"; }
# `name image` of each relatedImages entry of the CSV (keys are sorted: image, then name).
related() {
  awk '/^  relatedImages:/ { on = 1; next } on && /^  [a-z]/ { on = 0 }
       on && /- image: / { image = $3 } on && /  name: / { print $2, image }' "$1" | sort
}
deployment="$work/deployment.yaml"
csv="$work/csv.yaml"
unfold "$dir/manifests/operator/deployment.yaml" >"$deployment"
unfold "$dir/bundle/manifests/metallb-rs-operator.clusterserviceversion.yaml" >"$csv"
env -u CONTROLLER_IMAGE -u SPEAKER_IMAGE -u FRR_IMAGE "$operator_bin" render -f "$sample" >"$work/render.yaml"
defaults="$(unfold "$work/render.yaml" | awk '$1 == "image:" { print $2 }' | sort -u)"
operator="$(awk '$1 == "image:" { print $2 }' "$deployment")"
expected="$(printf '%s\n' "controller $(env_value "$deployment" CONTROLLER_IMAGE)" \
  "frr $(env_value "$deployment" FRR_IMAGE)" "operator $operator" "speaker $(env_value "$deployment" SPEAKER_IMAGE)")"
problems=()
[[ "$(awk '$1 == "image:" { print $2 }' "$csv")" == "$operator" ]] || problems+=("the CSV's deployment runs another operator image than manifests/operator")
[[ "$(awk '$1 == "containerImage:" { print $2 }' "$csv")" == "$operator" ]] || problems+=("the CSV's containerImage is not the operator image of manifests/operator")
for name in CONTROLLER_IMAGE SPEAKER_IMAGE FRR_IMAGE; do
  [[ "$(env_value "$csv" "$name")" == "$(env_value "$deployment" "$name")" ]] || problems+=("$name differs between the CSV and manifests/operator")
done
[[ "$(related "$csv")" == "$expected" ]] || problems+=("the CSV's relatedImages are not the images of manifests/operator")
[[ "$defaults" == "$(printf '%s\n' "$(env_value "$deployment" CONTROLLER_IMAGE)" "$(env_value "$deployment" SPEAKER_IMAGE)" | sort)" ]] ||
  problems+=("the operator's default controller and speaker images are not those of manifests/operator")
if ((${#problems[@]} > 0)); then
  printf 'image references disagree: %s\n' "${problems[@]}" >&2
  printf 'manifests/operator names:\n%s\noperator defaults:\n%s\n' "$expected" "$defaults" >&2
  exit 1
fi
echo "manifests/operator, the bundle and the operator's defaults name the same images"
