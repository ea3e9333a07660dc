#!/usr/bin/env bash
# The end-to-end suite, in two cycles of cluster bring-up, tests and tear-down:
#   kustomize  hack/local-up.sh (the operator from its kustomize base), every suite of
#              e2e/tests/ but olm.rs
#   olm        MLB_INSTALL=olm hack/local-up.sh (OLM v0, a catalog, a Subscription), the suite
#              e2e/tests/olm.rs alone (installs, uninstalls and upgrades through OLM and kustomize)
# Each runs every ignored (end-to-end) test one at a time and tears the cluster down (also when
# tests fail or the script is interrupted); then nothing may be left: no mlb-* network namespace,
# link or cgroup, no mount below .local, no testbed, control-plane, node (containerd, shim,
# kubelet, kube-proxy), container, OLM or FRR process.
#   E2E_CYCLES="kustomize olm" (default: both, in that order)
#   E2E_SUITES="speaker_bgp speaker_frr" (default: every suite): only these suites; a cycle with
#   none of them is skipped
# Extra arguments go to the test binaries (e.g. a test name filter).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

down_done=0
teardown() {
	if ((down_done == 0)); then
		down_done=1
		"$root/hack/local-down.sh" || true
	fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
status=0
# shellcheck disable=SC2206 # a list of words
cycles=(${E2E_CYCLES:-kustomize olm})
for cycle in "${cycles[@]}"; do
	cycle_start=$(date +%s)
	suites=()
	case "$cycle" in
	kustomize)
		for file in "$root"/e2e/tests/*.rs; do
			name="$(basename "$file" .rs)"
			[[ "$name" == olm ]] || suites+=("$name")
		done
		;;
	olm) suites=(olm) ;;
	*)
		echo "e2e: unknown cycle $cycle (kustomize, olm)" >&2
		exit 2
		;;
	esac
	args=()
	for name in "${suites[@]}"; do
		if [[ -z "${E2E_SUITES:-}" || " $E2E_SUITES " == *" $name "* ]]; then
			args+=(--test "$name")
		fi
	done
	if ((${#args[@]} == 0)); then
		echo "e2e: cycle $cycle skipped: none of its suites is in E2E_SUITES=$E2E_SUITES"
		continue
	fi
	if [[ "$cycle" == olm ]]; then
		# The upgrade tests start from the previous release: the nodes pull its images from the
		# local registry, so they are built (once; reused while that release's commit is the same).
		"$root/hack/previous-release.sh" build
		MLB_INSTALL=olm "$root/hack/local-up.sh"
	else
		"$root/hack/local-up.sh"
	fi
	down_done=0
	cargo test --quiet --no-fail-fast -p metallb-e2e "${args[@]}" -- --ignored --test-threads=1 "$@" || status=$?
	teardown
	echo "e2e: cycle $cycle finished in $(($(date +%s) - cycle_start))s (exit so far $status)"
done

leftovers=()
while read -r ns _; do
	[[ "$ns" == mlb-* ]] && leftovers+=("network namespace $ns")
done < <(ip netns list 2>/dev/null)
while read -r link; do
	leftovers+=("link $link")
done < <(ip -o link show | awk -F': ' '{ print $2 }' | cut -d@ -f1 | grep '^mlb-' || true)
for cgroup in /sys/fs/cgroup/*/mlb-*; do
	[[ -d "$cgroup" ]] && leftovers+=("cgroup $cgroup")
done
while read -r mountpoint; do
	leftovers+=("mount $mountpoint")
done < <(awk -v root="$root/.local/" 'index($5, root) == 1 { print $5 }' /proc/self/mountinfo)
ours=(
	"$target/debug/mlb-testbed"
	"$target/debug/metallb-controller"
	"$target/debug/metallb-speaker"
	"$target/debug/metallb-operator"
	"$root/.local/bin/containerd"
	"$root/.local/bin/containerd-shim-runc-v2"
	"$root/.local/olm/bin/olm"
	"$root/.local/olm/bin/catalog"
	"$root/.local/bin/opm"
)
for proc in /proc/[0-9]*; do
	exe="$(readlink "$proc/exe" 2>/dev/null || true)"
	[[ -n "$exe" ]] || continue
	exe="${exe% (deleted)}"
	for bin in "${ours[@]}"; do
		if [[ "$exe" == "$bin" ]]; then
			leftovers+=("process ${proc#/proc/} ($exe)")
		fi
	done
	# The control plane, and the nodes' kubelets and kube-proxies (same binary).
	if [[ "$exe" == "$root/.local/bin/testcluster" ]] && tr '\0' ' ' <"$proc/cmdline" 2>/dev/null | grep -qE "$root/.local/(cluster|nodes)"; then
		leftovers+=("process ${proc#/proc/} ($exe)")
	fi
	# Container processes of the nodes: every pod's cgroup is below /mlb-node-N.
	if grep -q ':/mlb-node-' "$proc/cgroup" 2>/dev/null; then
		leftovers+=("process ${proc#/proc/} ($exe, in a node's cgroup)")
	fi
	if [[ "$exe" == /usr/lib/frr/* ]] && tr '\0' ' ' <"$proc/cmdline" 2>/dev/null | grep -qE "$root/.local|/run/mlb-testbed"; then
		leftovers+=("process ${proc#/proc/} ($exe)")
	fi
done

elapsed=$(($(date +%s) - start))
if ((${#leftovers[@]} > 0)); then
	echo "e2e: hack/local-down.sh left these behind:" >&2
	printf '  %s\n' "${leftovers[@]}" >&2
	status=1
else
	echo "e2e: nothing left behind after hack/local-down.sh"
fi
echo "e2e: finished in ${elapsed}s (exit $status)"
exit "$status"
