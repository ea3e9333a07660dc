#!/usr/bin/env bash
# Brings the local cluster up and leaves it running (docs/testing.md, "Local cluster"):
# installs and builds what is missing, starts the local registry and pushes the test images
# (and the component images, when hack/images.sh exists), then `mlb-testbed up` builds the
# topology of docs/topology.md, starts the control plane, FRR in the router namespace and a
# real node (containerd, kubelet, kube-proxy) per node namespace. Repeated runs reuse what is
# built and what is up.
#   NODES=N (1..4, default 3); MLB_INSTALL=kustomize|olm and MLB_OPERATOR=0: see install_operator
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

"$root/hack/install-deps.sh"
# The nodes pull every image from this registry (LOCAL_REGISTRY_ADDRESS:LOCAL_REGISTRY_PORT,
# default 127.0.0.1:5000), forwarded to them from the management address.
"$root/hack/registry.sh" start
"$root/hack/test-images.sh"
# The FRR sidecars' image (bgpBackend: frr), from Debian's packages; rebuilt only when they change.
"$root/hack/frr-image.sh"
if [[ -x "$root/hack/images.sh" ]]; then
	"$root/hack/images.sh"
fi
"$target/debug/mlb-testbed" up --nodes "${NODES:-3}"

# MetalLB, the way a user installs it, then the minimal MetalLB resource; waits until the
# resource is Available. MLB_OPERATOR=0 leaves the cluster bare. MLB_INSTALL chooses how the
# operator is installed:
#   kustomize (default)  the operator's kustomize base (kubectl apply -k manifests/operator)
#   olm                  OLM v0 (hack/olm-local.sh): OLM's operators, a catalog of this checkout's
#                        bundle and the previous release's, an OperatorGroup and a Subscription
#                        to channel stable in metallb-system
install_operator() {
	[[ "${MLB_OPERATOR:-1}" == 1 ]] || return 0
	local kubectl=("$root/.local/bin/kubectl" --kubeconfig "$root/.local/kubeconfig")
	case "${MLB_INSTALL:-kustomize}" in
	kustomize)
		"${kubectl[@]}" apply -k "$root/manifests/operator" >/dev/null
		;;
	olm)
		"$root/hack/olm-local.sh" up
		"$root/hack/olm-local.sh" serve
		"$root/hack/olm-local.sh" subscribe metallb-system
		;;
	*)
		echo "MLB_INSTALL=${MLB_INSTALL}: expected kustomize or olm" >&2
		return 1
		;;
	esac
	"${kubectl[@]}" -n metallb-system rollout status deployment/metallb-operator --timeout=180s
	"${kubectl[@]}" apply -f "$root/manifests/samples/metallb.yaml" >/dev/null
	if ! "${kubectl[@]}" -n metallb-system wait metallb/metallb --for=condition=Available --timeout=240s; then
		"${kubectl[@]}" -n metallb-system get metallb/metallb -o yaml >&2 || true
		echo "MetalLB did not become Available: see kubectl -n metallb-system logs, .local/logs/node-*/pods/metallb-system_*" >&2
		return 1
	fi
}
install_operator

cat <<MSG

The local cluster is up, with MetalLB (operator, controller, a speaker per node) running.
  kubectl:    .local/bin/kubectl --kubeconfig .local/kubeconfig get nodes
  a shell:    hack/local-exec.sh node-1 -- bash      (node-N, client, router, client2, lan)
  the router: hack/local-exec.sh router -- vtysh -c "show bgp summary"
  logs:       kubectl logs; .local/logs (FRR; node-N/: containerd, kubelet, kube-proxy, pods/), .local/cluster/logs
  tear down:  hack/local-down.sh
MSG
