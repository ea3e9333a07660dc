#!/usr/bin/env bash
# Brings the local cluster up and leaves it running (docs/testing.md, "Local cluster"):
# installs and builds what is missing, then `mlb-testbed up` builds the topology of
# docs/topology.md, starts the control plane, FRR in the router namespace and one node
# agent per node. Repeated runs reuse what is built and what is up.
#   NODES=N (1..4, default 3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

"$root/hack/install-deps.sh"
"$target/debug/mlb-testbed" up --nodes "${NODES:-3}"

# operator install: see issue 5 (the operator's manifests and a MetalLB CR go here, once
# the cluster is up; keep this function idempotent like the rest of the script).
install_operator() {
	:
}
install_operator

cat <<MSG

The local cluster is up.
  kubectl:    .local/bin/kubectl --kubeconfig .local/kubeconfig get nodes
  a shell:    hack/local-exec.sh node-1 -- bash      (node-N, client, router, client2, lan)
  the router: hack/local-exec.sh router -- vtysh -c "show bgp summary"
  logs:       .local/logs (agents, FRR, pods/<ns>_<pod>_<container>.log), .local/cluster/logs
  tear down:  hack/local-down.sh
MSG
