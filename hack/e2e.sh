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
# The previous release's build, when it runs in the background (see below).
previous_pid=""
previous_log="$root/.local/previous/build.log"
stop_previous() {
	if [[ -n "$previous_pid" ]] && kill -0 "$previous_pid" 2>/dev/null; then
		kill -TERM -- "-$previous_pid" 2>/dev/null || kill -TERM "$previous_pid" 2>/dev/null || true
		wait "$previous_pid" 2>/dev/null || true
	fi
}
trap 'stop_previous; teardown' EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
status=0
# shellcheck disable=SC2206 # a list of words
cycles=(${E2E_CYCLES:-kustomize olm})

# The olm cycle's upgrade tests start from the previous release, whose images are built from
# its commit (hack/previous-release.sh: ≈ 9 min cold, a few seconds when already built). When
# the kustomize cycle runs first, that build runs meanwhile in the background, once its cluster
# is up (local-up.sh's own builds must not wait for the cargo lock it holds), in its own session
# whose scheduling group has nice 19 (/proc/self/autogroup): a lower weight than the cluster's
# processes and the tests, so it takes the CPU they leave idle instead of slowing them down.
# The tests build nothing in release mode meanwhile.
previous_in_background=0
if [[ " ${cycles[*]} " == *" olm "* && "${cycles[0]}" != olm ]] &&
	[[ -z "${E2E_SUITES:-}" || " $E2E_SUITES " == *" olm "* ]]; then
	previous_in_background=1
fi
start_previous() {
	mkdir -p "$(dirname "$previous_log")"
	echo "e2e: building the previous release in the background (log: ${previous_log#"$root"/})"
	setsid bash -c 'echo 19 >/proc/self/autogroup 2>/dev/null || true; exec nice -n 19 "$0" build' \
		"$root/hack/previous-release.sh" >"$previous_log" 2>&1 &
	previous_pid=$!
	previous_in_background=0
}
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
		if [[ -n "$previous_pid" ]]; then
			wait_start=$(date +%s)
			echo "e2e: waiting for the previous release's background build"
			previous_status=0
			wait "$previous_pid" || previous_status=$?
			previous_pid=""
			tail -n 3 "$previous_log" | sed 's/^/  /'
			echo "e2e: the previous release's build ended with $previous_status after waiting $(($(date +%s) - wait_start))s"
			if ((previous_status != 0)); then
				echo "e2e: the previous release's build failed (log: ${previous_log#"$root"/}):" >&2
				tail -n 30 "$previous_log" >&2
				status=1
				continue
			fi
		else
			"$root/hack/previous-release.sh" build
		fi
		MLB_INSTALL=olm "$root/hack/local-up.sh"
	else
		"$root/hack/local-up.sh"
		((previous_in_background == 0)) || start_previous
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
