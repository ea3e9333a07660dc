#!/usr/bin/env bash
# The previous release (hack/previous-release: its commit and version), as the upgrade tests,
# the local catalog and `hack/bench.sh upgrade` start from it.
#
#   hack/previous-release.sh source DIR   its bundle/ and manifests/ as committed then, in DIR
#                                         (from git: no build)
#   hack/previous-release.sh bundle DIR   the same (kept for hack/verify-bundle.sh)
#   hack/previous-release.sh build        its images, built by this checkout's hack/images.sh
#                                         from that commit's sources, with that commit's own
#                                         bundle/ and manifests/ (they name the images by tag,
#                                         v<version>), pushed to the local registry; skipped when
#                                         already built for that commit and present in the
#                                         registry (FORCE=1 to rebuild)
#   hack/previous-release.sh status       what is built, and whether the registry has it
#   hack/previous-release.sh version      prints the version (e.g. 0.1.0)
#
# Results: .local/previous/src (the sources, from `git archive`), .local/previous/images (as
# hack/images.sh writes them: images.txt, layouts, the bundle and catalog). It builds in the
# checkout's cargo target directory (as hack/images.sh does by default), so the dependencies the
# two releases share, with the same versions and features, are compiled once.
# Environment: PREVIOUS_PLATFORMS (default linux/amd64: the tests run on this machine's
# architecture; "linux/amd64 linux/arm64" for both), and hack/images.sh's IMAGE_REGISTRY.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
work="$root/.local/previous"

die() {
	echo "previous-release: $*" >&2
	exit 1
}

field() { awk -F= -v key="$1" '$1 == key { print $2 }' "$root/hack/previous-release"; }
commit="$(field commit)"
version="$(field version)"
[[ -n "$commit" && -n "$version" ]] || die "hack/previous-release names no commit= and version="
git cat-file -e "$commit^{commit}" 2>/dev/null ||
	die "commit $commit (v$version) is not in this clone: fetch the full history (git fetch --unshallow)"

now() { date +%s%N; }
elapsed() { local ms=$((($(now) - $1) / 1000000)); printf '%d.%03ds' $((ms / 1000)) $((ms % 1000)); }

# DIR/bundle and DIR/manifests as committed in the previous release.
source_files() {
	local dir="$1"
	rm -rf "$dir"
	mkdir -p "$dir"
	git archive "$commit" bundle manifests | tar -x -C "$dir"
}

# Whether the previous release's images were built from $commit and are in the registry.
built() {
	[[ -f "$work/images/images.txt" && "$(cat "$work/images/commit" 2>/dev/null)" == "$commit" ]] || return 1
	local name ref
	while read -r name ref; do
		"$root/.local/bin/crane" manifest --insecure "$ref" >/dev/null 2>&1 || return 1
	done <"$work/images/images.txt"
}

build() {
	local t0
	t0="$(now)"
	if [[ "${FORCE:-0}" != 1 ]] && built; then
		echo "previous-release: v$version ($commit) is built and in the registry ($(elapsed "$t0"))"
		return
	fi
	rm -rf "$work/src" "$work/images"
	mkdir -p "$work/src"
	git archive "$commit" | tar -x -C "$work/src"
	# An archive has no .git: hack/images.sh takes the revision and the commit's time from here.
	local epoch
	epoch="$(git log -1 --format=%ct "$commit")"
	IMAGES_SOURCE="$work/src" IMAGES_OUT="$work/images" IMAGES_RENDERING=committed \
		IMAGES_PLATFORMS="${PREVIOUS_PLATFORMS:-linux/amd64}" \
		IMAGES_REVISION="$commit" SOURCE_DATE_EPOCH="$epoch" \
		"$root/hack/images.sh" build push
	echo "$commit" >"$work/images/commit"
	echo "previous-release: built and pushed v$version ($commit) in $(elapsed "$t0")"
}

status() {
	echo "previous release: v$version, commit $commit"
	if built; then
		echo "images: built, in the registry:"
		sed 's/^/  /' "$work/images/images.txt"
	else
		echo "images: not built, or not in the registry (hack/previous-release.sh build)"
	fi
}

case "${1:-}" in
source | bundle)
	[[ $# == 2 ]] || die "usage: hack/previous-release.sh $1 DIR"
	source_files "$2"
	;;
build) build ;;
status) status ;;
version) echo "$version" ;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
