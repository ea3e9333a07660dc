#!/usr/bin/env bash
# Builds OLM v0 and OLM's bundle validators, pinned in the Go module hack/olm, into .local:
#   .local/bin/bundle-validate   hack/olm/cmd/bundle-validate: the validators `operator-sdk bundle
#                                validate` runs (hack/verify.sh)
#   .local/olm/bin/olm           OLM's olm operator (ClusterServiceVersions, OperatorGroups)
#   .local/olm/bin/catalog       OLM's catalog operator (CatalogSources, Subscriptions, InstallPlans)
#   .local/olm/crds/             OLM's CRDs, as the pinned module ships them (deploy/chart/crds)
#
#   hack/build-olm.sh                        all of them
#   hack/build-olm.sh bundle-validate        only that one (olm, catalog, crds are the others)
#   FORCE=1 hack/build-olm.sh                rebuild even when up to date
#
# A tool is up to date when it is newer than hack/olm/go.mod, go.sum, this script and, for
# bundle-validate, its sources. One line per tool: built or up to date, and the time it took.
# Cold, on 2 cores, about 6 minutes (olm is the largest).
#
# The module is never part of the Rust build nor of a go.work (GOWORK=off). Why a module of
# its own, apart from hack/tools: the operator-framework modules are served by the module proxy
# only at exact versions (their version lists are refused), so they are pinned here with
# `go get -tool PKG@vX.Y.Z` / `go get MODULE@vX.Y.Z`, and OLM's large dependency set does not
# move the image tools' versions. To upgrade: `GOWORK=off go get -tool
# github.com/operator-framework/operator-lifecycle-manager/cmd/olm@vX.Y.Z` (and cmd/catalog,
# and the api and operator-registry versions OLM requires), then `GOWORK=off go mod tidy`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/hack/olm"
bin="$root/.local/bin"
olm="$root/.local/olm"

now() { date +%s%N; }
report() {
	local state="$1" what="$2" t0="$3" t1
	t1="$(now)"
	printf 'build-olm: %s: %s in %d.%03ds\n' "$state" "$what" \
		$(((t1 - t0) / 1000000000)) $((((t1 - t0) / 1000000) % 1000))
}

if ! command -v go >/dev/null 2>&1; then
	echo "build-olm: go is not installed (need the version in hack/olm/go.mod)" >&2
	exit 1
fi

gorun() { (cd "$src" && GOWORK=off CGO_ENABLED=0 GOFLAGS=-buildvcs=false "$@"); }

package() {
	case "$1" in
	bundle-validate) echo ./cmd/bundle-validate ;;
	olm) echo github.com/operator-framework/operator-lifecycle-manager/cmd/olm ;;
	catalog) echo github.com/operator-framework/operator-lifecycle-manager/cmd/catalog ;;
	*) return 1 ;;
	esac
}

output() {
	case "$1" in
	bundle-validate) echo "$bin/bundle-validate" ;;
	*) echo "$olm/bin/$1" ;;
	esac
}

stale() {
	local out="$1" tool="$2" f
	[[ "${FORCE:-0}" == 1 || ! -e "$out" ]] && return 0
	for f in "$src/go.mod" "$src/go.sum" "${BASH_SOURCE[0]}"; do
		[[ "$f" -nt "$out" ]] && return 0
	done
	if [[ "$tool" == bundle-validate ]]; then
		while read -r f; do
			[[ "$f" -nt "$out" ]] && return 0
		done < <(find "$src/cmd/bundle-validate" -name '*.go')
	fi
	return 1
}

# OLM's version stamp (`olm --version`), read from the pinned module.
olm_version() { awk '$1 == "github.com/operator-framework/operator-lifecycle-manager" { print $2 }' "$src/go.mod"; }

build() {
	local tool="$1" pkg out t0 ldflags="-s -w" tags=""
	pkg="$(package "$tool")"
	out="$(output "$tool")"
	t0="$(now)"
	if ! stale "$out" "$tool"; then
		report "up to date" "${out#"$root"/}" "$t0"
		return
	fi
	mkdir -p "$(dirname "$out")"
	if [[ "$tool" != bundle-validate ]]; then
		# json1: OLM's SQLite catalog code asks for it (unused here: the catalogs are gRPC).
		tags=json1
		ldflags+=" -X github.com/operator-framework/operator-lifecycle-manager/pkg/version.OLMVersion=$(olm_version)"
	fi
	# Both cores (GO_BUILD_JOBS to change it); nice keeps the machine responsive meanwhile.
	# Renamed into place so that a running binary is never replaced by a half-written file.
	gorun nice -n 19 go build -p "${GO_BUILD_JOBS:-2}" -trimpath ${tags:+-tags "$tags"} \
		-ldflags "$ldflags" -o "$out.tmp" "$pkg"
	mv -f "$out.tmp" "$out"
	report built "${out#"$root"/}" "$t0"
}

# OLM's CRDs from the module cache: the ones of the pinned version, never a download of a
# release file.
crds() {
	local t0 dir
	t0="$(now)"
	dir="$(gorun go list -m -f '{{.Dir}}' github.com/operator-framework/operator-lifecycle-manager)"
	if [[ -z "$dir" || ! -d "$dir/deploy/chart/crds" ]]; then
		gorun go mod download github.com/operator-framework/operator-lifecycle-manager
		dir="$(gorun go list -m -f '{{.Dir}}' github.com/operator-framework/operator-lifecycle-manager)"
	fi
	if [[ -d "$olm/crds" && "${FORCE:-0}" != 1 && ! "$src/go.mod" -nt "$olm/crds" ]] &&
		diff -rq "$dir/deploy/chart/crds" "$olm/crds" >/dev/null 2>&1; then
		report "up to date" ".local/olm/crds ($(olm_version))" "$t0"
		return
	fi
	rm -rf "$olm/crds"
	mkdir -p "$olm"
	cp -r "$dir/deploy/chart/crds" "$olm/crds"
	chmod -R u+w "$olm/crds"
	touch "$olm/crds"
	report copied ".local/olm/crds ($(olm_version))" "$t0"
}

tools=("$@")
if ((${#tools[@]} == 0)); then
	tools=(bundle-validate olm catalog crds)
fi
for tool in "${tools[@]}"; do
	case "$tool" in
	crds) crds ;;
	bundle-validate | olm | catalog) build "$tool" ;;
	*)
		echo "build-olm: unknown tool $tool (bundle-validate, olm, catalog, crds)" >&2
		exit 2
		;;
	esac
done
