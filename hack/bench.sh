#!/usr/bin/env bash
# Benchmarks, one per name; each prints its figures (record them in docs/benchmarks.md with the
# machine and the date).
#   hack/bench.sh controller     the allocator (pure) and, on the local cluster, 1,000 Services
#                                (needs hack/local-up.sh; builds release binaries)
#   hack/bench.sh l2-failover    L2 failover on the local cluster: the announcing node's link
#                                down, its speaker SIGKILLed, its speaker pod deleted; TRIALS=20
#                                per kind (KINDS="link kill graceful"); speaker idle RSS
#   hack/bench.sh operator       on the local cluster: MetalLB resource applied -> Available
#                                (TRIALS=5), API writes per minute in steady state (WINDOW=120 s),
#                                the operator's RSS
#   hack/bench.sh bgp            on the local cluster (the operator's MetalLB, native BGP): time from
#                                a Service's IP in its status to its route in the router (TRIALS=40
#                                Services), COUNT=1000 Services advertised at once, the speakers'
#                                RSS with 2 sessions and COUNT prefixes; per backend (BACKENDS="native
#                                frr"): the time to route, the speaker pods' memory, a node's link
#                                cut -> next hop gone with BFD and without (LINK_TRIALS=6)
#   hack/bench.sh upgrade        on the local cluster: the previous release (hack/previous-release)
#                                upgraded to this one (VIA=olm, on a cluster brought up with
#                                MLB_INSTALL=olm, or VIA=kustomize), TRIALS=3, under the L2 probe:
#                                time from the new release available to every component upgraded,
#                                per step, failed requests (goal 0)
# The cluster benchmarks measure what the nodes run: the images of this checkout, built and
# pushed by hack/local-up.sh (run it again after a change).
# Add a benchmark: a function bench_<name> and a line in the case below.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

# Exits with `message` unless the local cluster (hack/local-up.sh) is up.
need_cluster() {
	if [[ ! -f "$root/.local/kubeconfig" ]]; then
		echo "$1" >&2
		exit 1
	fi
}

machine() {
	echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME"), $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
}

bench_controller() {
	cargo build --release --quiet -p metallb-controller --bins
	machine
	"$target/release/controller-bench" allocator
	need_cluster "the cluster part needs the local cluster: run hack/local-up.sh"
	local kubeconfig="$root/.local/kubeconfig"
	local kubectl=("$root/.local/bin/kubectl" --kubeconfig "$kubeconfig")
	"${kubectl[@]}" apply --server-side --force-conflicts -f manifests/crd/metallb.io_ipaddresspools.yaml \
		-f manifests/crd/metallb.io_communities.yaml -f manifests/crd/metallb.io_configurationstates.yaml >/dev/null
	"$target/release/controller-bench" cluster --kubeconfig "$kubeconfig" \
		--controller "$target/release/metallb-controller" "$@"
}

bench_l2_failover() {
	need_cluster "l2-failover needs the local cluster: run hack/local-up.sh"
	# The speakers and the controller run from the images (hack/images.sh, pushed by local-up.sh).
	machine
	python3 "$root/hack/bench/l2_failover.py" "$@"
}

bench_operator() {
	need_cluster "operator needs the local cluster: run hack/local-up.sh"
	machine
	python3 "$root/hack/bench/operator.py" "$@"
}

bench_bgp() {
	need_cluster "bgp needs the local cluster: run hack/local-up.sh"
	machine
	python3 "$root/hack/bench/bgp.py" "$@"
}

bench_upgrade() {
	need_cluster "upgrade needs the local cluster: run hack/local-up.sh (MLB_INSTALL=olm for VIA=olm)"
	machine
	python3 "$root/hack/bench/upgrade.py" "$@"
}

case "${1:-}" in
bgp)
	shift
	bench_bgp "$@"
	;;
upgrade)
	shift
	bench_upgrade "$@"
	;;
operator)
	shift
	bench_operator "$@"
	;;
l2-failover)
	shift
	bench_l2_failover "$@"
	;;
controller)
	shift
	bench_controller "$@"
	;;
*)
	echo "usage: $0 controller|l2-failover|operator|bgp|upgrade [args]" >&2
	exit 2
	;;
esac
