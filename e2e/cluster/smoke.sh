#!/usr/bin/env bash
# Smoke test of a built testcluster: starts `testcluster up` in a temporary
# directory on a loopback port, checks that each component really works, and
# that SIGTERM leaves no process behind. The real end-to-end tests are Rust;
# this only proves the control plane itself, in about half a minute.
#
#   e2e/cluster/smoke.sh [path/to/testcluster]   (default: .local/bin/testcluster)
#
# PORT (default 16443) keeps it clear of a cluster already on 6443.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$(realpath "${1:-$root/.local/bin/testcluster}")"
port="${PORT:-16443}"
dir="$(mktemp -d)"
pid=""

cleanup() {
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		wait "$pid" || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

kubectl() { "$bin" kubectl --kubeconfig "$dir/kubeconfig/admin.kubeconfig" "$@"; }
ok() { printf 'ok   %s\n' "$*"; }
fail() {
	printf 'FAIL %s\n' "$*" >&2
	tail -n 20 "$dir"/logs/*.log >&2 || true
	exit 1
}
# until SECONDS CMD...: retry CMD until it succeeds.
until_ok() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.5
	done
}

start=$SECONDS
"$bin" up --dir "$dir" --port "$port" >"$dir.out" 2>"$dir.err" &
pid=$!
until grep -qE '^(READY|FAILED)' "$dir.out" 2>/dev/null; do
	kill -0 "$pid" 2>/dev/null || break
	((SECONDS - start < 180)) || break
	sleep 0.2
done
grep -q '^READY kubeconfig=' "$dir.out" || { cat "$dir.out" "$dir.err" >&2; rm -f "$dir.out" "$dir.err"; fail "testcluster up did not print READY"; }
rm -f "$dir.out" "$dir.err"
ok "READY after $((SECONDS - start))s"

kubectl version | grep -q '^Server Version: v1\.3[6-9]\.' || fail "server version"
ok "kubectl version: $(kubectl version | tr '\n' ' ')"
[[ "$(kubectl get --raw /readyz)" == ok ]] || fail "/readyz"
ok "/readyz"
for component in kubelet kube-proxy; do
	v="$("$bin" "$component" --version)"
	[[ "$v" == "Kubernetes $(kubectl version -o json | jq -r .serverVersion.gitVersion)" ]] || fail "$component --version: $v"
	ok "$component --version: $v (the node components match the control plane)"
done

# Controller manager: a Deployment gets a ReplicaSet and Pods.
kubectl create deployment smoke --image=example.invalid/smoke:1 --replicas=2 >/dev/null
until_ok 60 bash -c "[[ \$(\"$bin\" kubectl --kubeconfig \"$dir/kubeconfig/admin.kubeconfig\" get pods -l app=smoke -o name | wc -l) == 2 ]]" ||
	fail "deployment did not get 2 pods"
ok "deployment -> replicaset -> 2 pods"

# Scheduler: with a Node, a Pod gets bound.
kubectl apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Node
metadata:
  name: smoke-node
  labels: {kubernetes.io/hostname: smoke-node, kubernetes.io/os: linux}
status:
  allocatable: {cpu: "4", memory: 8Gi, pods: "110"}
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
  conditions:
  - {type: Ready, status: "True", reason: KubeletReady, message: ok}
EOF
kubectl run smoke-pod --image=example.invalid/smoke:1 >/dev/null
until_ok 60 bash -c "[[ \$(\"$bin\" kubectl --kubeconfig \"$dir/kubeconfig/admin.kubeconfig\" get pod smoke-pod -o jsonpath='{.spec.nodeName}') == smoke-node ]]" ||
	fail "pod not scheduled"
ok "scheduler bound smoke-pod to smoke-node"

# Services: ClusterIPs from the configured ranges, dual-stack.
kubectl create service loadbalancer smoke-lb --tcp=80:8080 >/dev/null
ip="$(kubectl get svc smoke-lb -o jsonpath='{.spec.clusterIP}')"
[[ "$ip" =~ ^198\.18\.[0-9]+\.[0-9]+$ ]] || fail "LoadBalancer ClusterIP $ip not in 198.18.0.0/16"
ok "LoadBalancer Service ClusterIP $ip"
kubectl apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: smoke-ds}
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  ports: [{port: 80}]
EOF
ips="$(kubectl get svc smoke-ds -o jsonpath='{.spec.clusterIPs}')"
[[ "$ips" =~ 198\.18\..*2001:db8:0:ff: ]] || fail "dual-stack ClusterIPs $ips"
ok "RequireDualStack ClusterIPs $ips"

# Admission: PodSecurity enforces.
kubectl create namespace smoke-restricted >/dev/null
kubectl label namespace smoke-restricted pod-security.kubernetes.io/enforce=restricted >/dev/null
if kubectl -n smoke-restricted run priv --image=example.invalid/x --privileged >/dev/null 2>&1; then
	fail "privileged pod admitted in a restricted namespace"
fi
ok "PodSecurity restricted rejects a privileged pod"

# Service-account tokens (TokenRequest).
kubectl create token default | grep -q '^eyJ' || fail "TokenRequest"
ok "TokenRequest"

# Shutdown: SIGTERM stops the supervisor and every component.
children="$(pgrep -P "$pid" | tr '\n' ' ')"
t=$SECONDS
kill -TERM "$pid"
wait "$pid" || fail "supervisor exited non-zero after SIGTERM"
pid=""
for c in $children; do
	! kill -0 "$c" 2>/dev/null || fail "component $c still running after shutdown"
done
ok "SIGTERM: supervisor and components ($children) gone in $((SECONDS - t))s"
