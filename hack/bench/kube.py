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


def pid_of(pod):
    """The main process of the pod's first container (the node agent reports it as the
    containerID)."""
    for c in pod.get("status", {}).get("containerStatuses", []):
        m = re.search(r"/(\d+)$", c.get("containerID", ""))
        if m:
            return int(m.group(1))
    return None


def scale_operator(n):
    kubectl("-n", OPERATOR_NS, "scale", "deployment", "metallb-operator", f"--replicas={n}")
