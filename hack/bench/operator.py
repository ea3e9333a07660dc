#!/usr/bin/env python3
"""Operator benchmark (hack/bench.sh operator) on the local cluster, with the operator that
hack/local-up.sh installs (manifests/operator) and its MetalLB resource.

Measures:
  - install: the MetalLB resource deleted (time until the operator's cleanup removed every
    workload), then applied again from manifests/samples/metallb.yaml: time until the
    Available condition is True. At that moment the controller Deployment and the speaker
    DaemonSet are checked to really be ready, and every webhook to carry its CA bundle
    (Available must not be reported early).
    TRIALS times (default 5).
  - steady state: API writes per minute of the in-cluster operator over WINDOW seconds
    (default 120), from its metric metallb_operator_api_writes_total, while nothing changes.
  - footprint: the in-cluster operator's RSS and peak RSS (the image's static release build, as
    a user runs it: the nodes are real kubelets pulling our images).

Every loop is bounded; the in-cluster operator is scaled back even when a step fails.
"""

import os
import time
import urllib.request

from kube import OPERATOR_NS as NS, ROOT, get_json, kubectl, pid_of, wait

SAMPLE = os.path.join(ROOT, "manifests/samples/metallb.yaml")


def condition(cr, type_):
    for c in (cr or {}).get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c
    return None


def workloads_ready():
    """(controller ready, speakers ready / desired) as the API server reports them."""
    dep = get_json("-n", NS, "deployment", "controller") or {}
    ds = get_json("-n", NS, "daemonset", "speaker") or {}
    controller = dep.get("status", {}).get("availableReplicas", 0) >= 1
    st = ds.get("status", {})
    return controller, st.get("numberReady", 0), st.get("desiredNumberScheduled", -1)


def workloads_gone():
    names = kubectl("-n", NS, "get", "deployment,daemonset", "-o", "name").split()
    return not any(n in ("deployment.apps/controller", "daemonset.apps/speaker") for n in names)


def install_trial():
    t0 = time.time()
    kubectl("-n", NS, "delete", "metallb", "metallb", "--ignore-not-found", "--wait=true", "--timeout=120s")
    wait("the operator to remove the controller and the speakers", 120, workloads_gone, every=0.1)
    removed = time.time() - t0
    t0 = time.time()
    kubectl("apply", "-f", SAMPLE)

    def available():
        c = condition(get_json("-n", NS, "metallb", "metallb"), "Available")
        return c is not None and c["status"] == "True"

    wait("MetalLB/metallb to be Available", 300, available, every=0.05)
    took = time.time() - t0
    controller, ready, desired = workloads_ready()
    vwc = get_json("validatingwebhookconfiguration", "metallb-webhook-configuration") or {}
    bundles = all(w.get("clientConfig", {}).get("caBundle") for w in vwc.get("webhooks", [])) and bool(vwc)
    honest = controller and ready == desired and desired > 0 and bundles
    return removed, took, honest, (f"controller ready: {controller}, speakers ready {ready}/{desired}, "
                                   f"webhooks with CA bundle: {bundles}")


def metric(url, name):
    body = urllib.request.urlopen(url, timeout=5).read().decode()
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def operator_pod():
    pods = get_json("-n", NS, "pods", "-l", "app.kubernetes.io/name=metallb-operator")["items"]
    pods = [p for p in pods if not p["metadata"].get("deletionTimestamp") and p.get("status", {}).get("podIP")]
    return pods[0] if pods else None


def rss(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def writes_per_minute(url, window):
    before = metric(url, "metallb_operator_api_writes_total")
    time.sleep(window)
    after = metric(url, "metallb_operator_api_writes_total")
    return (after - before) * 60.0 / window, after - before


def main():
    trials = int(os.environ.get("TRIALS", "5"))
    window = float(os.environ.get("WINDOW", "120"))
    wait("MetalLB/metallb to exist", 60, lambda: get_json("-n", NS, "metallb", "metallb"))

    print(f"install: {trials} trials (delete MetalLB/metallb, wait for the cleanup, apply the sample, wait for Available)")
    times = []
    for i in range(trials):
        removed, took, honest, detail = install_trial()
        times.append(took)
        print(f"  #{i + 1}: cleanup {removed:5.1f} s; resource applied -> Available {took:5.2f} s ({detail})", flush=True)
        if not honest:
            raise SystemExit("Available was reported before the workloads were ready")
    times.sort()
    print(f"  Available after: min {times[0]:.2f} s, median {times[len(times) // 2]:.2f} s, max {times[-1]:.2f} s")

    time.sleep(10)  # let rollouts and status settle
    pod = operator_pod()
    url = f"http://{pod['status']['podIP']}:8081/metrics"
    per_min, count = writes_per_minute(url, window)
    print(f"steady state, in-cluster operator: {count:.0f} API writes in {window:.0f} s ({per_min:.2f}/min)")
    pid = pid_of(pod)
    if pid:
        r = rss(pid)
        print(f"in-cluster operator (image, release build): RSS {r['VmRSS']} KiB, peak {r['VmHWM']} KiB")


if __name__ == "__main__":
    main()
