#!/usr/bin/env bash
# Builds the image tools, pinned in the Go module hack/tools (go.mod `tool` lines), into .local/bin:
#   crane     (go-containerregistry)  pushes, reads and copies images
#   registry  (distribution)          the local OCI registry of hack/registry.sh
#   cosign    (sigstore)              signs and verifies images and attestations
#   opm       (operator-registry)     renders and validates the file-based catalog; the catalog
#                                     image runs it (`opm serve /configs`)
#
#   hack/build-tools.sh                  all four, for this machine
#   hack/build-tools.sh crane opm        only those
#   hack/build-tools.sh opm@linux/arm64  another platform, into .local/bin/linux-arm64/opm
#   FORCE=1 hack/build-tools.sh          rebuild even when up to date
#
# A tool is up to date when its binary is newer than hack/tools/go.mod, go.sum and this script.
# One line per tool: built or up to date, and the time it took. Cold, on 2 cores, the four take
# about 10 minutes (cosign is the largest); docs/release.md has the figures.
#
# The module is never part of the Rust build nor of a go.work (GOWORK=off). CGO_ENABLED=0: static
# binaries, no C toolchain, and the same binary for the image's empty base. -trimpath and no VCS
# stamp: the binaries depend only on the module's pinned sources, so opm in the catalog image is
# reproducible.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/hack/tools"
out="$root/.local/bin"

now() { date +%s%N; }

if ! command -v go >/dev/null 2>&1; then
	echo "build-tools: go is not installed (need the version in hack/tools/go.mod)" >&2
	exit 1
fi

# The package of each tool, and the build tags it needs.
package() {
	case "$1" in
	crane) echo github.com/google/go-containerregistry/cmd/crane ;;
	registry) echo github.com/distribution/distribution/v3/cmd/registry ;;
	cosign) echo github.com/sigstore/cosign/v2/cmd/cosign ;;
	opm) echo github.com/operator-framework/operator-registry/cmd/opm ;;
	*) return 1 ;;
	esac
}
# json1: opm's SQLite index code asks for it; containers_image_openpgp: the pure-Go signature
# verification of containers/image instead of gpgme (which needs cgo).
tags() {
	case "$1" in
	opm) echo json1,containers_image_openpgp ;;
	*) echo "" ;;
	esac
}
# Version stamps the tools print with `version`; crane and cosign read theirs from the build
# information of the module they were built from.
ldflags() {
	local version
	case "$1" in
	opm)
		version="$(awk '$1 == "github.com/operator-framework/operator-registry" { print $2 }' "$src/go.mod")"
		echo "-X github.com/operator-framework/operator-registry/cmd/opm/version.opmVersion=$version"
		;;
	registry)
		version="$(awk '$1 == "github.com/distribution/distribution/v3" { print $2 }' "$src/go.mod")"
		echo "-X github.com/distribution/distribution/v3/version.version=$version"
		;;
	esac
}

stale() {
	local bin="$1"
	[[ "${FORCE:-0}" == 1 || ! -x "$bin" ]] && return 0
	[[ "$src/go.mod" -nt "$bin" || "$src/go.sum" -nt "$bin" || "${BASH_SOURCE[0]}" -nt "$bin" ]]
}

build() {
	local spec="$1" tool platform="" goos goarch bin pkg t0 t1 state
	tool="${spec%@*}"
	[[ "$spec" == *@* ]] && platform="${spec#*@}"
	if ! pkg="$(package "$tool")"; then
		echo "build-tools: unknown tool $tool (crane, registry, cosign, opm)" >&2
		return 2
	fi
	goos="$(go env GOOS)"
	goarch="$(go env GOARCH)"
	bin="$out/$tool"
	if [[ -n "$platform" && "$platform" != "$goos/$goarch" ]]; then
		goos="${platform%/*}"
		goarch="${platform#*/}"
		bin="$out/$goos-$goarch/$tool"
	fi
	t0="$(now)"
	if stale "$bin"; then
		mkdir -p "$(dirname "$bin")"
		# -p 2: the machines have 2 cores. Rename into place so a running tool is never replaced
		# by a half-written file.
		(
			cd "$src"
			GOWORK=off CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch" GOFLAGS=-buildvcs=false \
				nice -n 10 go build -p 2 -trimpath -tags "$(tags "$tool")" \
				-ldflags "-s -w $(ldflags "$tool")" -o "$bin.tmp" "$pkg"
		)
		mv -f "$bin.tmp" "$bin"
		state=built
	else
		state="up to date"
	fi
	t1="$(now)"
	printf 'build-tools: %s: %s (%s/%s) in %d.%03ds\n' "$state" "${bin#"$root"/}" "$goos" "$goarch" \
		$(((t1 - t0) / 1000000000)) $((((t1 - t0) / 1000000) % 1000))
}

tools=("$@")
if ((${#tools[@]} == 0)); then
	tools=(crane registry cosign opm)
fi
for tool in "${tools[@]}"; do
	build "$tool"
done
