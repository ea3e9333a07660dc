#!/usr/bin/env bash
# The whole of metallb-rs on one machine, from a fresh clone:
#   1. installs what is missing and builds (hack/install-deps.sh, through hack/local-up.sh);
#   2. brings up the local cluster (docs/topology.md) with the operator and a MetalLB resource
#      (native mode): the operator deploys the controller and a speaker per node;
#   3. creates an IPAddressPool on the LAN, an L2Advertisement, and a Deployment of the echo
#      server behind a LoadBalancer Service;
#   4. shows the assigned IP, which node answers ARP for it, and an HTTP answer from the client;
#   5. fails the announcing node's LAN link and measures how long until HTTP works again;
#   6. says how to use the cluster and how to tear it down.
# Run as root (network namespaces). Re-running reuses what is built and what is up.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
kubectl=("$root/.local/bin/kubectl" --kubeconfig "$root/.local/kubeconfig")
ns=metallb-system
app=demo

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
in_ns() { local name="$1"; shift; ip netns exec "mlb-$name" "$@"; }

if [[ $EUID -ne 0 ]]; then
	echo "hack/demo.sh needs root (it creates network namespaces)" >&2
	exit 1
fi

say "Building and starting the local cluster with the operator and MetalLB (this takes a few minutes the first time)"
"$root/hack/local-up.sh"

say "Waiting for the controller and a speaker on every node"
"${kubectl[@]}" -n "$ns" rollout status deployment/controller --timeout=180s
"${kubectl[@]}" -n "$ns" rollout status daemonset/speaker --timeout=180s

say "Creating an address pool on the LAN (192.0.2.200-192.0.2.239) and announcing it in L2 mode"
"${kubectl[@]}" apply -f - <<EOF
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: demo, namespace: $ns}
spec:
  addresses: [192.0.2.200-192.0.2.239]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: demo, namespace: $ns}
spec:
  ipAddressPools: [demo]
EOF

say "Deploying the echo server (3 replicas) behind a LoadBalancer Service in namespace $app"
"${kubectl[@]}" create namespace "$app" --dry-run=client -o yaml | "${kubectl[@]}" apply -f - >/dev/null
"${kubectl[@]}" -n "$app" apply -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 3
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
        - name: echo
          image: localhost/echo:latest
          ports: [{name: http, containerPort: 8080}]
          env:
            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
            - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
            - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
          readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  type: LoadBalancer
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: http}]
EOF
"${kubectl[@]}" -n "$app" rollout status deployment/echo --timeout=120s

ip=""
for _ in $(seq 1 120); do
	ip="$("${kubectl[@]}" -n "$app" get service echo -o jsonpath='{.status.loadBalancer.ingress[0].ip}')"
	[[ -n "$ip" ]] && break
	sleep 0.5
done
if [[ -z "$ip" ]]; then
	echo "the Service got no IP: see .local/logs/pods/${ns}_controller-*" >&2
	exit 1
fi
echo "The controller assigned $ip to $app/echo:"
"${kubectl[@]}" -n "$app" get service echo

# Which node answers ARP for the IP, by MAC address.
node_of_mac() {
	local mac="$1" node
	for node in node-1 node-2 node-3 node-4; do
		ip netns list | grep -q "^mlb-$node\b" || continue
		if [[ "$(in_ns "$node" cat /sys/class/net/eth0/address)" == "${mac,,}" ]]; then
			echo "$node"
			return
		fi
	done
	echo "unknown ($mac)"
}
owner=""
for _ in $(seq 1 60); do
	mac="$(in_ns client arping -b -c 1 -w 1 -I eth0 "$ip" 2>/dev/null | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1)"
	if [[ -n "$mac" ]]; then
		owner="$(node_of_mac "$mac")"
		break
	fi
	sleep 0.5
done
if [[ -z "$owner" ]]; then
	echo "nobody answers ARP for $ip: see .local/logs/pods/${ns}_speaker-*" >&2
	exit 1
fi

say "Who answers for $ip"
echo "arping from the client (192.0.2.100):"
in_ns client arping -b -c 3 -I eth0 "$ip" | sed 's/^/  /'
echo "$owner answers ARP for $ip (MAC $mac); the ServiceL2Status says:"
"${kubectl[@]}" -n "$ns" get servicel2statuses -l "metallb.io/service-name=echo,metallb.io/service-namespace=$app"

say "HTTP from the client to http://$ip/"
for _ in 1 2 3; do
	in_ns client curl -sS --max-time 2 "http://$ip/" | sed 's/^/  /'
done

say "Live failover: $owner loses its LAN link"
ip -n "mlb-$owner" link set eth0 down
start=$(date +%s%N)
recovered=""
for _ in $(seq 1 300); do
	if in_ns client curl -s -o /dev/null --max-time 0.2 "http://$ip/"; then
		recovered=$(( ($(date +%s%N) - start) / 1000000 ))
		break
	fi
	sleep 0.02
done
if [[ -n "$recovered" ]]; then
	mac="$(in_ns client arping -b -c 1 -w 1 -I eth0 "$ip" 2>/dev/null | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1)"
	echo "HTTP through $ip works again after ${recovered} ms, now answered by $(node_of_mac "$mac")"
	in_ns client curl -sS --max-time 2 "http://$ip/" | sed 's/^/  /'
else
	echo "HTTP did not come back within the demo's wait; see .local/logs/pods/${ns}_speaker-*" >&2
fi
echo "Restoring $owner's link (its speaker rejoins; the IP moves back to it)"
ip -n "mlb-$owner" link set eth0 up

cat <<MSG

The cluster is still running. Try:
  .local/bin/kubectl --kubeconfig .local/kubeconfig get pods -A
  .local/bin/kubectl --kubeconfig .local/kubeconfig -n $app get service echo
  hack/local-exec.sh client -- curl http://$ip/
  hack/local-exec.sh client -- arping -c 3 -I eth0 $ip
  hack/bench.sh l2-failover           (failover figures, docs/benchmarks.md)
Tear everything down:
  hack/local-down.sh
MSG
