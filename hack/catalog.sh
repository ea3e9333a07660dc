#!/usr/bin/env bash
# A file-based OLM catalog (FBC) from bundle directories, validated with `opm validate`.
#
#   hack/catalog.sh OUT_DIR BUNDLE_DIR[=IMAGE]...
#
# OUT_DIR/metallb-rs-operator/catalog.json holds the package (default channel as the bundles'
# metadata say), the channel with one entry per bundle and the upgrade edges each
# ClusterServiceVersion states (spec.replaces, spec.skips, the olm.skipRange annotation), and
# every bundle as `opm render` makes it from its directory:
#   - BUNDLE_DIR=IMAGE: the bundle names IMAGE (its bundle image, by digest): what a published
#     catalog holds (hack/images.sh); OLM pulls the image to install it.
#   - BUNDLE_DIR alone: the bundle has no image and carries its manifests inline
#     (olm.bundle.object properties). OLM v0 then installs it straight from the catalog's answer,
#     without a bundle image or an unpack Job: what the local cluster's catalog serves
#     (docs/operator.md, "Installing with OLM"; hack/olm-local.sh).
# Every bundle must be of the same package and name the same default channel. OUT_DIR is
# replaced. Needs opm and jq (hack/build-tools.sh opm).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
opm="${OPM:-$root/.local/bin/opm}"

die() {
	echo "catalog: $*" >&2
	exit 1
}

(($# >= 2)) || die "usage: hack/catalog.sh OUT_DIR BUNDLE_DIR[=IMAGE]..."
[[ -x "$opm" ]] || die "no opm at $opm (hack/build-tools.sh opm)"
out="$1"
shift

annotation() { awk -v key="$2:" '$1 == key { print $2 }' "$1/metadata/annotations.yaml"; }

package="" channel="" rendered=()
for spec in "$@"; do
	dir="${spec%%=*}" image=""
	[[ "$spec" == *=* ]] && image="${spec#*=}"
	[[ -f "$dir/metadata/annotations.yaml" ]] || die "$dir is not a bundle directory (no metadata/annotations.yaml)"
	p="$(annotation "$dir" operators.operatorframework.io.bundle.package.v1)"
	c="$(annotation "$dir" operators.operatorframework.io.bundle.channel.default.v1)"
	[[ -z "$package" || "$p/$c" == "$package/$channel" ]] ||
		die "$dir is package $p, channel $c; the others are $package, $channel"
	package="$p" channel="$c"
	# --alpha-image-ref-template: rendered from the directory (no registry needed) with the image
	# reference it will have; a template without actions is that literal reference.
	if [[ -n "$image" ]]; then
		rendered+=("$("$opm" render "$dir" --alpha-image-ref-template "$image" -o json)")
	else
		rendered+=("$("$opm" render "$dir" -o json)")
	fi
done

# The channel entry of each bundle: the edges its ClusterServiceVersion states.
entries="$(for bundle in "${rendered[@]}"; do
	jq -c '.properties[] | select(.type == "olm.bundle.object") | .value.data | @base64d | fromjson |
		select(.kind == "ClusterServiceVersion") |
		{name: .metadata.name}
		+ (if .spec.replaces then {replaces: .spec.replaces} else {} end)
		+ (if .spec.skips then {skips: .spec.skips} else {} end)
		+ (if .metadata.annotations["olm.skipRange"] then {skipRange: .metadata.annotations["olm.skipRange"]} else {} end)' <<<"$bundle"
done | jq -s -c 'sort_by(.name)')"
[[ "$(jq length <<<"$entries")" == "$#" ]] || die "not every bundle has one ClusterServiceVersion"

rm -rf "$out"
mkdir -p "$out/$package"
{
	jq -n --arg name "$package" --arg channel "$channel" '{schema: "olm.package", name: $name, defaultChannel: $channel}'
	jq -n --arg package "$package" --arg channel "$channel" --argjson entries "$entries" \
		'{schema: "olm.channel", package: $package, name: $channel, entries: $entries}'
	printf '%s\n' "${rendered[@]}" | jq -s -c 'sort_by(.name) | .[]'
} | jq -S . >"$out/$package/catalog.json"
"$opm" validate "$out" || die "opm validate refused the catalog in $out"
echo "catalog: $out: package $package, channel $channel: $(jq -r 'map(.name + (if .replaces then " (replaces " + .replaces + ")" else "" end)) | join(", ")' <<<"$entries")"
