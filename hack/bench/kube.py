"""What the benchmarks share: kubectl on the local cluster, bounded waits, a pod's process."""

import json
import os
import re
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KUBECONFIG = os.path.join(ROOT, ".local/kubeconfig")
KUBECTL = [os.path.join(ROOT, ".local/bin/kubectl"), "--kubeconfig", KUBECONFIG]
OPERATOR_NS = "metallb-system"


def kubectl(*args, check=True, input=None):
    return subprocess.run(KUBECTL + list(args), check=check, capture_output=True, text=True, input=input).stdout


def get_json(*args):
    """`kubectl get ... -o json`, None when there is nothing."""
    out = kubectl("get", *args, "-o", "json", check=False)
    return json.loads(out) if out.strip() else None


def wait(what, timeout, fn, every=0.2):
    """Calls fn every `every` seconds until it returns something true; exits after `timeout`."""
    start = time.time()
    last = None
    while time.time() - start < timeout:
        try:
            value = fn()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = e
        time.sleep(every)
    raise SystemExit(f"timed out after {timeout} s waiting for {what} (last: {last})")


def pid_of(pod, container=None):
    """The main process (PID on the machine) of the pod's container `container` (default: the
    first one the status lists; the kubelet lists them by name): the kubelet reports
    `containerd://<id>`, and runc's state on the pod's node names the process
    (.local/nodes/<node>/runc/k8s.io/<id>/state.json, see e2e/src/node.rs)."""
    node = pod.get("spec", {}).get("nodeName", "")
    for c in pod.get("status", {}).get("containerStatuses", []):
        if container and c.get("name") != container:
            continue
        m = re.fullmatch(r"containerd://([0-9a-f]+)", c.get("containerID", ""))
        if not m or not node:
            continue
        state = os.path.join(ROOT, ".local", "nodes", node, "runc", "k8s.io", m.group(1), "state.json")
        try:
            with open(state) as f:
                return int(json.load(f)["init_process_pid"])
        except (OSError, ValueError, KeyError):
            return None
    return None


def scale_operator(n):
    kubectl("-n", OPERATOR_NS, "scale", "deployment", "metallb-operator", f"--replicas={n}")


def echo_deployment(name, namespace, replicas=3):
    """A Deployment of the echo server (hack/test-images.sh), its pods spread over the nodes."""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      topologySpreadConstraints:
        - {{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {{matchLabels: {{app: {name}}}}}}}
      containers:
        - name: echo
          image: localhost/echo:latest
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 1}}
"""
