#!/usr/bin/env bash
# The container images of this checkout, without a Docker engine (docs/release.md):
#   metallb-operator, metallb-controller, metallb-speaker   one static musl binary each, empty base
#   metallb-rs-operator-bundle                              the OLM bundle (bundle/bundle.Dockerfile)
#   metallb-rs-operator-catalog                             a file-based catalog, served by opm
# each an image index for linux/amd64 and linux/arm64, pushed to $IMAGE_REGISTRY, signed with
# cosign and, for the images holding binaries, with a signed SPDX SBOM attestation.
#
#   hack/images.sh            build, push, sign, verify (the registry is started if it is local)
#   hack/images.sh build      release binaries, OCI layouts, the release rendering, SBOMs
#   hack/images.sh push       push the layouts (tag v<version>); checks the registry's digests
#   hack/images.sh sign       sign each index and its manifests, attest the SBOMs (key in
#                             .local/cosign/, made on first use)
#   hack/images.sh verify [PUBLIC_KEY]
#                             verify every signature and SBOM attestation; fails on a missing or
#                             wrong one
#   hack/images.sh check      what hack/test.sh checks after the above: reassembling gives the same
#                             digests, the arm64 binaries are aarch64 ELF, the release rendering
#                             names images present in the registry, another key and an unsigned
#                             image fail verification
#   hack/images.sh reproduce  two clean builds of HEAD (this checkout and an archive of it in
#                             another directory) must give the same digests; long, not in CI
#
# Environment:
#   IMAGE_REGISTRY   repository prefix (default 127.0.0.1:$LOCAL_REGISTRY_PORT/metallb-rs, the
#                    registry of hack/registry.sh); plain HTTP is allowed for it
#   COSIGN_PASSWORD  password of the local signing key (default: empty)
#   IMAGES_TARGET_DIR  cargo target directory (default: target)
#   IMAGES_OUT       where results go (default: .local/images)
#
# Results in .local/images/: bin/<arch>/ (binaries), layouts/<image>/ (OCI layouts), release/
# (manifests and bundle naming every image by digest), catalog/, sbom/, and images.txt (one line
# per image: name, reference by digest).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="$root/.local/bin"
out="${IMAGES_OUT:-$root/.local/images}"
keys="$root/.local/cosign"
export PATH="$bin:$PATH"

registry_port="${LOCAL_REGISTRY_PORT:-5000}"
IMAGE_REGISTRY="${IMAGE_REGISTRY:-127.0.0.1:$registry_port/metallb-rs}"
export COSIGN_PASSWORD="${COSIGN_PASSWORD:-}"
target_dir="${IMAGES_TARGET_DIR:-$root/target}"

components=(metallb-operator metallb-controller metallb-speaker)
bundle_image=metallb-rs-operator-bundle
catalog_image=metallb-rs-operator-catalog
all_images=("${components[@]}" "$bundle_image" "$catalog_image")
# platform  rust target  (the opm of the catalog image is built for the same platforms)
platforms=("linux/amd64 x86_64-unknown-linux-musl" "linux/arm64 aarch64-unknown-linux-musl")

now() { date +%s%N; }
elapsed() { local ms=$((($(now) - $1) / 1000000)); printf '%d.%03ds' $((ms / 1000)) $((ms % 1000)); }
step() {
	local name="$1" t0
	shift
	t0="$(now)"
	"$@"
	echo "images: $name: $(elapsed "$t0")"
}
die() {
	echo "images: $*" >&2
	exit 1
}

# --- what this build is -------------------------------------------------------------------------

workspace_field() {
	python3 -c 'import sys, tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"][sys.argv[1]])' "$1"
}
version="v$(workspace_field version)"
license="$(workspace_field license)"
source_url="$(workspace_field repository)"
# The commit, and its time as the time of every file and image (SOURCE_DATE_EPOCH). An archive
# without .git (hack/images.sh reproduce) passes both in the environment.
revision="${IMAGES_REVISION:-$(git rev-parse HEAD)}"
if [[ -z "${IMAGES_REVISION:-}" && -n "$(git status --porcelain --untracked-files=no)" ]]; then
	revision="$revision-dirty"
fi
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
created="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"

host_arch() {
	case "$(uname -m)" in
	x86_64) echo amd64 ;;
	aarch64) echo arm64 ;;
	*) die "unsupported build machine $(uname -m)" ;;
	esac
}

# Plain HTTP for the local registry (crane already treats 127.0.0.1 and localhost so).
crane_flags=(--insecure)
cosign_flags=(--allow-insecure-registry --allow-http-registry)

# --- binaries -----------------------------------------------------------------------------------

# The C compiler, archiver and linker of each musl target (ring and psm compile C and assembly).
target_env() {
	local triple="$1" var="${1//-/_}"
	case "$triple" in
	x86_64-unknown-linux-musl)
		[[ "$(host_arch)" == amd64 ]] || die "building $triple needs an x86_64 machine"
		echo "CC_$var=musl-gcc"
		;;
	aarch64-unknown-linux-musl)
		if [[ "$(host_arch)" == amd64 ]]; then
			echo "CC_$var=aarch64-linux-gnu-gcc"
			echo "AR_$var=aarch64-linux-gnu-ar"
			echo "CARGO_TARGET_${var^^}_LINKER=aarch64-linux-gnu-gcc"
		else
			echo "CC_$var=gcc"
		fi
		;;
	esac
}

# Release binaries of PACKAGES for every platform, stripped and reproducible: the checkout's and
# cargo's paths are remapped, so the binary does not depend on where it was built. Extra
# environment (the operator's image defaults) is passed as NAME=VALUE before `--`. One cargo
# invocation for every target, so that the two cores stay busy while one target links.
cargo_release() {
	local extra=() targets=() envs=() packages=() pkg p platform triple t0
	while [[ "$1" != -- ]]; do
		extra+=("$1")
		shift
	done
	shift
	for pkg in "$@"; do packages+=(-p "$pkg"); done
	for p in "${platforms[@]}"; do
		read -r platform triple <<<"$p"
		targets+=(--target "$triple")
		mapfile -t -O "${#envs[@]}" envs < <(target_env "$triple")
	done
	local cargo_home="${CARGO_HOME:-$HOME/.cargo}"
	t0="$(now)"
	env "${envs[@]}" "${extra[@]}" \
		CARGO_TARGET_DIR="$target_dir" \
		RUSTFLAGS="--remap-path-prefix=$root=/metallb-rs --remap-path-prefix=$cargo_home=/cargo" \
		nice -n 10 cargo build --quiet --locked --release "${targets[@]}" \
		--config 'profile.release.strip="symbols"' "${packages[@]}"
	for p in "${platforms[@]}"; do
		read -r platform triple <<<"$p"
		mkdir -p "$out/bin/${platform#linux/}"
		for pkg in "$@"; do
			cp -f "$target_dir/$triple/release/$pkg" "$out/bin/${platform#linux/}/$pkg"
		done
	done
	echo "images: cargo build --release ${targets[*]} $*: $(elapsed "$t0")"
}

# --- images -------------------------------------------------------------------------------------

labels_json() {
	local title="$1" description="$2"
	jq -n --arg title "$title" --arg description "$description" --arg source "$source_url" \
		--arg revision "$revision" --arg version "$version" --arg licenses "$license" \
		--arg created "$created" '{
			"org.opencontainers.image.title": $title,
			"org.opencontainers.image.description": $description,
			"org.opencontainers.image.source": $source,
			"org.opencontainers.image.revision": $revision,
			"org.opencontainers.image.version": $version,
			"org.opencontainers.image.licenses": $licenses,
			"org.opencontainers.image.created": $created}'
}

# layout NAME SPEC_JSON: writes .local/images/layouts/NAME and records its digest.
layout() {
	local name="$1" spec="$2" digest
	rm -rf "$out/layouts/$name"
	mkdir -p "$out/specs"
	echo "$spec" >"$out/specs/$name.json"
	digest="$(python3 hack/images/oci.py "$out/specs/$name.json" "$out/layouts/$name")"
	echo "$digest" >"$out/layouts/$name.digest"
}

digest_of() { cat "$out/layouts/$1.digest"; }
ref_of() { echo "$IMAGE_REGISTRY/$1@$(digest_of "$1")"; }

description_of() {
	cargo metadata --no-deps --offline --format-version 1 |
		jq -r --arg name "$1" '.packages[] | select(.name == $name) | .description'
}

# The image of one component: its binary in /usr/local/bin, nothing else. The operator and the
# controller run as nobody (65534, as their pod templates also say); the speaker runs as root
# with every capability dropped except NET_RAW, which its DaemonSet adds: Kubernetes gives added
# capabilities only to a process running as root (it sets no ambient capabilities), and file
# capabilities would need privilege escalation, which the speaker's pods forbid.
component_image() {
	local name="$1" user="65534:65534" platforms_json="[]" p platform triple arch
	[[ "$name" == metallb-speaker ]] && user="0:0"
	for p in "${platforms[@]}"; do
		read -r platform triple <<<"$p"
		arch="${platform#linux/}"
		platforms_json="$(jq --arg arch "$arch" --arg src "$out/bin/$arch/$name" --arg name "$name" \
			--arg user "$user" '. + [{
				os: "linux", architecture: $arch, variant: (if $arch == "arm64" then "v8" else null end),
				layers: [[{path: ("usr/local/bin/" + $name), source: $src, mode: 493}]],
				config: {User: $user, Entrypoint: ["/usr/local/bin/" + $name], WorkingDir: "/",
				         Env: ["PATH=/usr/local/bin"]}}]' <<<"$platforms_json")"
	done
	layout "$name" "$(jq -n --arg created "$created" --argjson mtime "$SOURCE_DATE_EPOCH" \
		--argjson labels "$(labels_json "$name" "$(description_of "$name")")" \
		--argjson platforms "$platforms_json" \
		'{created: $created, mtime: $mtime, labels: $labels, platforms: $platforms}')"
}

# Every file under DIR as layer entries at PREFIX/<relative path>, read-only.
dir_entries() {
	local dir="$1" prefix="$2"
	(cd "$dir" && find . -type f | LC_ALL=C sort) | jq -R -s --arg dir "$dir" --arg prefix "$prefix" '
		split("\n") | map(select(. != "") | ltrimstr("./")) |
		map({path: ($prefix + "/" + .), source: ($dir + "/" + .), mode: 420})'
}

# The bundle image: exactly what bundle/bundle.Dockerfile describes (its LABEL lines are read
# from it), made from the release rendering, so the bundle names every image by digest.
bundle_image() {
	local dockerfile="$root/bundle/bundle.Dockerfile" labels copies entries platforms_json="[]" p platform triple
	copies="$(grep -E '^COPY ' "$dockerfile" | tr -s ' ')"
	[[ "$copies" == $'COPY manifests /manifests/\nCOPY metadata /metadata/' ]] ||
		die "bundle/bundle.Dockerfile copies something else than manifests/ and metadata/: update hack/images.sh"
	labels="$(grep -E '^LABEL ' "$dockerfile" | sed 's/^LABEL //' |
		jq -R -s 'split("\n") | map(select(. != "") | split("=") | {(.[0]): (.[1:] | join("="))}) | add')"
	labels="$(jq -s '.[0] + .[1]' <(labels_json "$bundle_image" "The OLM bundle of metallb-rs") <(echo "$labels"))"
	entries="$(jq -s 'add' <(dir_entries "$out/release/bundle/manifests" manifests) \
		<(dir_entries "$out/release/bundle/metadata" metadata))"
	for p in "${platforms[@]}"; do
		read -r platform triple <<<"$p"
		platforms_json="$(jq --arg arch "${platform#linux/}" --argjson entries "$entries" '. + [{
			os: "linux", architecture: $arch, variant: (if $arch == "arm64" then "v8" else null end),
			layers: [$entries], config: {}}]' <<<"$platforms_json")"
	done
	layout "$bundle_image" "$(jq -n --arg created "$created" --argjson mtime "$SOURCE_DATE_EPOCH" \
		--argjson labels "$labels" --argjson platforms "$platforms_json" \
		'{created: $created, mtime: $mtime, labels: $labels, platforms: $platforms}')"
}

opm_for() {
	local arch="$1"
	if [[ "$arch" == "$(host_arch)" ]]; then echo "$bin/opm"; else echo "$bin/linux-$arch/opm"; fi
}

# The file-based catalog: the package, channel `stable` with this version's upgrade edges as the
# CSV states them (olm.skipRange, spec.replaces, spec.skips), and the bundle rendered by opm
# from the release rendering, naming the bundle image by digest.
catalog_configs() {
	local dir="$out/catalog/configs/metallb-rs-operator" package channel csv bundle_json
	rm -rf "$out/catalog"
	mkdir -p "$dir"
	package="$(awk '$1 == "operators.operatorframework.io.bundle.package.v1:" { print $2 }' "$out/release/bundle/metadata/annotations.yaml")"
	channel="$(awk '$1 == "operators.operatorframework.io.bundle.channel.default.v1:" { print $2 }' "$out/release/bundle/metadata/annotations.yaml")"
	[[ "$package" == metallb-rs-operator && "$channel" == stable ]] ||
		die "the bundle's package/channel are $package/$channel, expected metallb-rs-operator/stable"
	# --alpha-image-ref-template: the bundle is rendered from its directory (no registry needed),
	# with the image reference it will have; a template without actions is that literal.
	bundle_json="$(opm render "$out/release/bundle" --alpha-image-ref-template "$(ref_of "$bundle_image")" -o json)"
	csv="$(jq '.properties[] | select(.type == "olm.bundle.object") | .value.data | @base64d | fromjson |
		select(.kind == "ClusterServiceVersion")' <<<"$bundle_json")"
	{
		jq -n --arg name "$package" --arg channel "$channel" \
			'{schema: "olm.package", name: $name, defaultChannel: $channel}'
		jq -n --arg package "$package" --arg channel "$channel" --argjson csv "$csv" '{
			schema: "olm.channel", package: $package, name: $channel,
			entries: [{name: $csv.metadata.name}
				+ (if $csv.spec.replaces then {replaces: $csv.spec.replaces} else {} end)
				+ (if $csv.spec.skips then {skips: $csv.spec.skips} else {} end)
				+ (if $csv.metadata.annotations["olm.skipRange"] then {skipRange: $csv.metadata.annotations["olm.skipRange"]} else {} end)]}'
		echo "$bundle_json"
	} | jq -S . >"$dir/catalog.json"
	opm validate "$out/catalog/configs" || die "opm validate refused the catalog"
}

# The catalog image: opm (per platform) and the catalog under /configs, served by
# `opm serve /configs` as OLM's catalog pods expect.
catalog_image() {
	local platforms_json="[]" p platform triple arch configs labels
	configs="$(dir_entries "$out/catalog/configs" configs)"
	labels="$(jq '. + {"operators.operatorframework.io.index.configs.v1": "/configs"}' \
		<(labels_json "$catalog_image" "The file-based OLM catalog of metallb-rs, served by opm"))"
	for p in "${platforms[@]}"; do
		read -r platform triple <<<"$p"
		arch="${platform#linux/}"
		platforms_json="$(jq --arg arch "$arch" --arg opm "$(opm_for "$arch")" --argjson configs "$configs" '. + [{
			os: "linux", architecture: $arch, variant: (if $arch == "arm64" then "v8" else null end),
			layers: [[{path: "bin/opm", source: $opm, mode: 493}, {path: "tmp", dir: true, mode: 1023}],
			         $configs],
			config: {User: "65534:65534", Entrypoint: ["/bin/opm"], Cmd: ["serve", "/configs", "--pprof-addr="],
			         WorkingDir: "/", Env: ["PATH=/bin"]}}]' <<<"$platforms_json")"
	done
	layout "$catalog_image" "$(jq -n --arg created "$created" --argjson mtime "$SOURCE_DATE_EPOCH" \
		--argjson labels "$labels" --argjson platforms "$platforms_json" \
		'{created: $created, mtime: $mtime, labels: $labels, platforms: $platforms}')"
}

# The release rendering: the operator's kustomize base, CRDs and OLM bundle as this build's
# operator binary generates them, naming the operator image by digest; the controller and speaker
# images are the operator's compiled-in defaults, which must be the digests just built.
release_rendering() {
	local operator="$out/bin/$(host_arch)/metallb-operator" name
	rm -rf "$out/release"
	"$operator" generate --output-dir "$out/release" --operator-image "$(ref_of metallb-operator)"
	hack/check-image-refs.sh "$out/release" "$operator" >/dev/null
	# ... and they are the images just built, by digest (the kustomize base's operator image and
	# its CONTROLLER_IMAGE and SPEAKER_IMAGE, which check-image-refs.sh has matched with the CSV
	# and the operator's defaults).
	for name in metallb-operator metallb-controller metallb-speaker; do
		grep -qF "$(ref_of "$name")" "$out/release/manifests/operator/deployment.yaml" ||
			die "the release rendering does not name $(ref_of "$name")"
	done
}

sboms() {
	local name args p platform triple arch
	mkdir -p "$out/sbom"
	for name in "${components[@]}"; do
		args=()
		for p in "${platforms[@]}"; do
			read -r platform triple <<<"$p"
			args+=(--binary "$platform=$triple=$out/bin/${platform#linux/}/$name")
		done
		python3 hack/images/sbom.py rust --name "$name" --version "$version" --created "$created" \
			--source "$source_url" --revision "$revision" "${args[@]}" >"$out/sbom/$name.spdx.json"
	done
	args=()
	for p in "${platforms[@]}"; do
		read -r platform triple <<<"$p"
		args+=(--binary "$platform=$(opm_for "${platform#linux/}")")
	done
	python3 hack/images/sbom.py go --name "$catalog_image" --version "$version" --created "$created" \
		--source "$source_url" --revision "$revision" "${args[@]}" >"$out/sbom/$catalog_image.spdx.json"
}

write_index() {
	local name
	for name in "${all_images[@]}"; do
		printf '%s %s\n' "$name" "$(ref_of "$name")"
	done >"$out/images.txt"
	cat "$out/images.txt"
}

# All layouts from the binaries in .local/images/bin and the release rendering (no cargo): what
# the reproducibility check runs twice.
assemble() {
	local name
	for name in metallb-controller metallb-speaker metallb-operator; do
		component_image "$name"
	done
	bundle_image
	catalog_configs
	catalog_image
}

build() {
	local opm_tools=() p platform
	for p in "${platforms[@]}"; do
		read -r platform _ <<<"$p"
		opm_tools+=("opm@$platform")
	done
	step "tools" hack/build-tools.sh crane cosign registry "${opm_tools[@]}"
	mkdir -p "$out"
	# The controller and speaker first: the operator is compiled with their digests as defaults.
	step "binaries controller speaker" cargo_release -- metallb-controller metallb-speaker
	step "images controller speaker" eval 'component_image metallb-controller; component_image metallb-speaker'
	step "binaries operator" cargo_release \
		"METALLB_RELEASE_CONTROLLER_IMAGE=$(ref_of metallb-controller)" \
		"METALLB_RELEASE_SPEAKER_IMAGE=$(ref_of metallb-speaker)" -- metallb-operator
	step "image operator" component_image metallb-operator
	step "release rendering" release_rendering
	step "image bundle" bundle_image
	step "catalog" catalog_configs
	step "image catalog" catalog_image
	step "SBOMs" sboms
	write_index
}

# --- registry, signatures -----------------------------------------------------------------------

local_registry() { [[ "$IMAGE_REGISTRY" == "127.0.0.1:$registry_port/"* ]]; }

ensure_registry() {
	if local_registry && ! hack/registry.sh status >/dev/null; then
		hack/registry.sh start
	fi
}

push() {
	ensure_registry
	local name pushed
	for name in "${all_images[@]}"; do
		# The layout's index.json names one image index: crane pushes that index as it is.
		if ! pushed="$(crane push "${crane_flags[@]}" "$out/layouts/$name" "$IMAGE_REGISTRY/$name:$version" 2>"$out/push.err")"; then
			cat "$out/push.err" >&2
			die "pushing $name failed"
		fi
		[[ "$pushed" == "$(ref_of "$name")" ]] || die "pushed $name as $pushed, built $(ref_of "$name")"
		echo "images: pushed $pushed (tag $version)"
	done
}

cosign_env() { env HOME="$keys/home" SIGSTORE_NO_CACHE=true TUF_ROOT="$keys/home/tuf" COSIGN_YES=true "$@"; }

ensure_key() {
	if [[ ! -f "$keys/cosign.key" ]]; then
		mkdir -p "$keys/home"
		(cd "$keys" && cosign_env cosign generate-key-pair >/dev/null 2>&1) || die "cosign generate-key-pair failed"
		echo "images: generated the signing key ${keys#"$root"/}/cosign.key (local, never committed)"
	fi
}

# The digests of the platform manifests of an index in the registry.
platform_refs() {
	local name="$1"
	crane manifest "${crane_flags[@]}" "$(ref_of "$name")" | jq -r --arg repo "$IMAGE_REGISTRY/$name" '.manifests[] | "\($repo)@\(.digest)"'
}

# --tlog-upload=false: key-based and offline, no transparency log; --recursive signs the index
# and each platform manifest, so a runtime that verifies what it pulls for its platform finds a
# signature too. An image already signed with this key is not signed again (ECDSA signatures
# differ at each run and would pile up).
sign() {
	ensure_key
	local name ref
	for name in "${all_images[@]}"; do
		ref="$(ref_of "$name")"
		if cosign_env cosign verify "${cosign_flags[@]}" --key "$keys/cosign.pub" --insecure-ignore-tlog=true "$ref" >/dev/null 2>&1; then
			echo "images: $name already signed with this key"
		else
			cosign_env cosign sign "${cosign_flags[@]}" --key "$keys/cosign.key" --tlog-upload=false --recursive "$ref" 2>&1 |
				grep -v '^Pushing signature\|^WARNING: Image reference\|^$' || true
			echo "images: signed $ref"
		fi
		if [[ -f "$out/sbom/$name.spdx.json" ]]; then
			cosign_env cosign attest "${cosign_flags[@]}" --key "$keys/cosign.key" --tlog-upload=false --replace \
				--type spdxjson --predicate "$out/sbom/$name.spdx.json" "$ref" 2>&1 |
				grep -v '^Using payload\|^WARNING: Image reference\|^$' || true
			echo "images: attested the SBOM of $name"
		fi
	done
}

# verify [PUBLIC_KEY]: every signature (index and platform manifests) and every SBOM attestation.
verify() {
	local key="${1:-$keys/cosign.pub}" name ref failed=0 platform_ref
	[[ -f "$key" ]] || die "no public key $key"
	for name in "${all_images[@]}"; do
		ref="$(ref_of "$name")"
		for platform_ref in "$ref" $(platform_refs "$name"); do
			if cosign_env cosign verify "${cosign_flags[@]}" --key "$key" --insecure-ignore-tlog=true "$platform_ref" >"$out/verify.out" 2>"$out/verify.err"; then
				echo "images: signature ok: $platform_ref"
			else
				echo "images: SIGNATURE FAILED: $platform_ref: $(grep -v '^WARNING' "$out/verify.err" | tail -n 1)" >&2
				failed=1
			fi
		done
		if [[ -f "$out/sbom/$name.spdx.json" ]]; then
			if cosign_env cosign verify-attestation "${cosign_flags[@]}" --key "$key" --insecure-ignore-tlog=true \
				--type spdxjson "$ref" >"$out/verify.out" 2>"$out/verify.err" &&
				# The attested SBOM is the one built here.
				[[ "$(jq -r '.payload' "$out/verify.out" | head -n 1 | base64 -d | jq -c '.predicate' | jq -S -c .)" == "$(jq -S -c . "$out/sbom/$name.spdx.json")" ]]; then
				echo "images: SBOM attestation ok: $ref"
			else
				echo "images: SBOM ATTESTATION FAILED: $ref: $(grep -v '^WARNING' "$out/verify.err" | tail -n 1)" >&2
				failed=1
			fi
		fi
	done
	return "$failed"
}

all() {
	build
	step "push" push
	step "sign" sign
	step "verify" verify
}

# --- checks -------------------------------------------------------------------------------------

check_reproducible() {
	local before after
	before="$(cat "$out"/layouts/*.digest)"
	assemble >/dev/null
	after="$(cat "$out"/layouts/*.digest)"
	[[ "$before" == "$after" ]] || die "assembling again from the same binaries gave other digests:
$before
---
$after"
	echo "images: assembling again from the same binaries gives the same $(wc -l <<<"$after") digests"
}

check_elf() {
	local name machine
	for name in "${components[@]}"; do
		machine="$(readelf -h "$out/bin/arm64/$name" | awk -F: '/Machine:/ { gsub(/^ +/, "", $2); print $2 }')"
		[[ "$machine" == AArch64 ]] || die "$name for arm64 is a $machine binary"
		machine="$(readelf -h "$out/bin/amd64/$name" | awk -F: '/Machine:/ { gsub(/^ +/, "", $2); print $2 }')"
		[[ "$machine" == "Advanced Micro Devices X86-64" ]] || die "$name for amd64 is a $machine binary"
		# Static: no program interpreter, no shared libraries.
		if readelf -l "$out/bin/arm64/$name" | grep -q 'INTERP' || readelf -d "$out/bin/arm64/$name" | grep -q NEEDED; then
			die "$name for arm64 is not static"
		fi
	done
	echo "images: the arm64 binaries are static aarch64 ELF, the amd64 ones x86-64"
}

check_rendering() {
	local refs ref
	refs="$(grep -rhoE "$IMAGE_REGISTRY/[a-z-]+@sha256:[0-9a-f]{64}" "$out/release" "$out/catalog" | sort -u)"
	[[ "$(wc -l <<<"$refs")" == 4 ]] || die "the release rendering and the catalog should name 4 images by digest (operator, controller, speaker, bundle), not:
$refs"
	for ref in $refs; do
		crane manifest "${crane_flags[@]}" "$ref" >/dev/null || die "$ref is not in the registry"
		echo "images: in the registry: $ref"
	done
}

check_other_key() {
	local other passed
	other="$(mktemp -d)"
	(cd "$other" && cosign_env cosign generate-key-pair >/dev/null 2>&1)
	# Every signature and attestation must fail, not only one: each image index and platform
	# manifest, and each SBOM.
	local output failed expected
	output="$(verify "$other/cosign.pub" 2>&1 || true)"
	rm -rf "$other"
	passed="$(grep ' ok: ' <<<"$output" || true)"
	[[ -z "$passed" ]] || die "verification with another key passed for:
$passed"
	failed="$(grep -c 'FAILED: ' <<<"$output" || true)"
	expected=$((${#all_images[@]} * (1 + ${#platforms[@]}) + $(ls "$out"/sbom/*.spdx.json | wc -l)))
	[[ "$failed" == "$expected" ]] || die "with another key, $failed checks failed, expected $expected:
$output"
	echo "images: verification with another key fails for each of the $expected signatures and attestations"
}

check_unsigned() {
	local ref="$IMAGE_REGISTRY/unsigned-check:$version"
	crane copy "${crane_flags[@]}" "$(ref_of metallb-controller)" "$ref" >/dev/null 2>&1
	if cosign_env cosign verify "${cosign_flags[@]}" --key "$keys/cosign.pub" --insecure-ignore-tlog=true \
		"$IMAGE_REGISTRY/unsigned-check@$(digest_of metallb-controller)" >/dev/null 2>&1; then
		die "an unsigned copy verified"
	fi
	echo "images: an unsigned image fails verification"
}

check() {
	step "check reproducible" check_reproducible
	step "check ELF" check_elf
	step "check rendering" check_rendering
	step "check another key" check_other_key
	step "check unsigned" check_unsigned
}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# Subcommands run in the order given: `hack/images.sh push sign verify`.
(($# > 0)) || set -- all
while (($# > 0)); do
	case "$1" in
	all) all ;;
	build) build ;;
	push) step push push ;;
	sign) step sign sign ;;
	verify)
		if [[ $# -gt 1 && -f "$2" ]]; then
			step verify verify "$2"
			shift
		else
			step verify verify
		fi
		;;
	check) check ;;
	assemble) assemble && write_index ;;
	reproduce) exec hack/images/reproduce.sh ;;
	*) usage ;;
	esac
	shift
done
