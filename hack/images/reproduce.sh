#!/usr/bin/env bash
# Two clean builds of HEAD must give the same image digests (hack/images.sh reproduce).
#   A: this checkout, with a new cargo target directory;
#   B: `git archive HEAD` unpacked in another directory, with its own new target directory.
# Both build from nothing but the registry caches (cargo's and Go's sources), at different paths,
# so the comparison covers path remapping, file times and the image assembly. It takes two cold
# release builds for two platforms (about an hour on 2 busy cores); the result is recorded in
# docs/release.md. Needs a clean work tree (uncommitted changes are not in HEAD's archive).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
work="$root/.local/reproduce"

if [[ -n "$(git status --porcelain --untracked-files=no)" ]]; then
	echo "reproduce: the work tree has uncommitted changes; commit or stash them first" >&2
	exit 1
fi
revision="$(git rev-parse HEAD)"
epoch="$(git log -1 --format=%ct)"
rm -rf "$work"
mkdir -p "$work/a" "$work/b/src"
git archive HEAD | tar -x -C "$work/b/src"
# The tools are the same pinned binaries (their reproducibility is Go's, not ours).
mkdir -p "$work/b/src/.local"
ln -s "$root/.local/bin" "$work/b/src/.local/bin"

t0=$(date +%s)
echo "reproduce: build A in $root"
IMAGES_REVISION="$revision" SOURCE_DATE_EPOCH="$epoch" IMAGES_OUT="$work/a/images" \
	IMAGES_TARGET_DIR="$work/a/target" hack/images.sh build
echo "reproduce: build B in ${work#"$root"/}/b/src"
(cd "$work/b/src" && IMAGES_REVISION="$revision" SOURCE_DATE_EPOCH="$epoch" \
	IMAGES_OUT="$work/b/images" hack/images.sh build)
echo "reproduce: both builds in $(($(date +%s) - t0))s"
if diff "$work/a/images/images.txt" "$work/b/images/images.txt"; then
	echo "reproduce: the two builds of $revision give the same digests:"
	cat "$work/a/images/images.txt"
else
	for arch in amd64 arm64; do
		for f in "$work/a/images/bin/$arch"/*; do
			cmp -s "$f" "$work/b/images/bin/$arch/$(basename "$f")" || echo "reproduce: differs: bin/$arch/$(basename "$f")"
		done
	done
	echo "reproduce: the two builds differ" >&2
	exit 1
fi
