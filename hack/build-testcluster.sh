#!/usr/bin/env bash
# Builds the test cluster's control plane (the Go module e2e/cluster) into
# .local/bin/testcluster, with a .local/bin/kubectl symlink to it.
#
# Idempotent and cheap when nothing changed: the go build is skipped when the
# binary is newer than every *.go file, go.mod and go.sum of the module.
# FORCE=1 always runs go build (which is incremental anyway: a warm rebuild
# is mostly the link).
#
# Needs only Go (the version in e2e/cluster/go.mod or newer); modules come
# from the module proxy configured in the Go environment (GOPROXY). A cold
# build on 2 cores takes several minutes, see docs/testing.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/e2e/cluster"
out="$root/.local/bin"
bin="$out/testcluster"

now() { date +%s%N; }
t0="$(now)"

if ! command -v go >/dev/null 2>&1; then
	echo "build-testcluster: go is not installed (need the version in e2e/cluster/go.mod)" >&2
	exit 1
fi

# The Kubernetes release is the one pinned in go.mod; the version stamp is
# derived from it so the two can never disagree.
k8s_version="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$src/go.mod")"
if [[ ! "$k8s_version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]]; then
	echo "build-testcluster: cannot find the k8s.io/kubernetes version in $src/go.mod" >&2
	exit 1
fi
major="${BASH_REMATCH[1]}"
minor="${BASH_REMATCH[2]}"

mkdir -p "$out"

stale() {
	[[ "${FORCE:-0}" == 1 || ! -x "$bin" ]] && return 0
	[[ -n "$(find "$src" \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$bin" -print -quit)" ]]
}

if stale; then
	echo "build-testcluster: building testcluster (Kubernetes $k8s_version)..."
	# Without the version stamp the components report v0.0.0-master and
	# clients doing version checks misbehave. No build date: a changing
	# -ldflags would force a relink on every run.
	pkg=k8s.io/component-base/version
	ldflags="-s -w -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
	# GOWORK=off: this module must never join a workspace (its replace block
	# only applies as the main module). CGO_ENABLED=0: a static binary, no C
	# toolchain needed. -p 2: the machines have 2 cores; more parallel
	# compiles of the big Kubernetes packages only cost memory.
	# -buildvcs=false: the repository's commit is not the component's
	# version, and stamping it would force a relink after every commit.
	(
		cd "$src"
		GOWORK=off CGO_ENABLED=0 go build -p 2 -trimpath -buildvcs=false -ldflags "$ldflags" -o "$bin.tmp" .
	)
	# Rename into place so a running cluster never sees a half-written file.
	mv -f "$bin.tmp" "$bin"
	built=built
else
	built="up to date"
fi

ln -sfn testcluster "$out/kubectl"

t1="$(now)"
printf 'build-testcluster: %s: %s (%s) in %d.%03ds\n' "$built" "${bin#"$root"/}" "$k8s_version" \
	$(((t1 - t0) / 1000000000)) $((((t1 - t0) / 1000000) % 1000))
