#!/usr/bin/env bash
# Builds the nodes' container runtime (the Go module e2e/noderuntime: containerd, its runc
# shim containerd-shim-runc-v2, and ctr) into .local/bin. runc and the CNI plugins come
# from Debian (hack/install-deps.sh).
#
# Idempotent and cheap when nothing changed: the go build is skipped when every binary is
# newer than go.mod and go.sum of the module. FORCE=1 always runs go build.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/e2e/noderuntime"
out="$root/.local/bin"
bins=(containerd containerd-shim-runc-v2 ctr)

now() { date +%s%N; }
t0="$(now)"

if ! command -v go >/dev/null 2>&1; then
	echo "build-node-runtime: go is not installed (need the version in e2e/noderuntime/go.mod)" >&2
	exit 1
fi
version="$(awk '$1 == "github.com/containerd/containerd/v2" { print $2; exit }' "$src/go.mod")"
mkdir -p "$out"

stale() {
	[[ "${FORCE:-0}" == 1 ]] && return 0
	local b
	for b in "${bins[@]}"; do
		[[ -x "$out/$b" ]] || return 0
		[[ -z "$(find "$src" \( -name go.mod -o -name go.sum \) -newer "$out/$b" -print -quit)" ]] || return 0
	done
	return 1
}

if stale; then
	echo "build-node-runtime: building containerd $version..."
	# Static (CGO_ENABLED=0), so no C toolchain; the tags leave out the snapshotters that
	# need cgo or kernel features the nodes do not use (overlayfs and native stay). The
	# version stamp is what `containerd --version` and the kubelet's node status report.
	tmp="$(mktemp -d "$out/.noderuntime.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	(
		cd "$src"
		GOWORK=off CGO_ENABLED=0 go build -p 2 -trimpath -buildvcs=false \
			-tags "no_btrfs no_devmapper no_zfs no_aufs" \
			-ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$version" \
			-o "$tmp/" \
			github.com/containerd/containerd/v2/cmd/containerd \
			github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
			github.com/containerd/containerd/v2/cmd/ctr
	)
	# Rename into place so a running node never sees a half-written file.
	for b in "${bins[@]}"; do
		mv -f "$tmp/$b" "$out/$b"
	done
	built=built
else
	built="up to date"
fi

t1="$(now)"
printf 'build-node-runtime: %s: containerd %s in %d.%03ds\n' "$built" "$version" \
	$(((t1 - t0) / 1000000000)) $((((t1 - t0) / 1000000) % 1000))
