#!/usr/bin/env python3
"""Upgrade benchmark (hack/bench.sh upgrade) on the local cluster.

Each trial installs the previous release (hack/previous-release), creates the MetalLB resource,
an L2 pool and an echo Service, starts the probe of l2_failover.py in the client namespace (a new
HTTP connection every 20 ms, an ARP request every 10 ms), then makes this checkout's release
available and follows the operator until every component runs it:

  VIA=olm        the catalog gains this release's bundle (hack/olm-local.sh serve); OLM, with
                 automatic approval, replaces the CSV. Needs a cluster brought up with
                 MLB_INSTALL=olm.
  VIA=kustomize  kubectl apply -k manifests/operator over the previous release's base.

Reported per trial, in seconds from the moment the new release is available:
  operator   the new operator pod is ready (for OLM: the new CSV Succeeded)
  controller the controller step ends (Progressing reason leaves UpdatingController)
  speakers   every speaker runs the new release and is ready
  total      MetalLB reports the new version, Available, every pod on it
and the probe's failed connections and ARP requests answered by two nodes (goal: none).
The cluster is left with this release installed as it was found (Subscription or kustomize).
"""

import json
import os
import subprocess
import sys
import threading
import time

from kube import echo_deployment, kubectl, ROOT, wait
from l2_failover import analyse, node_macs

NS = "metallb-system"
APP_NS = "bench-upgrade"
PACKAGE = "metallb-rs-operator"


def field(path, key):
    for line in open(path):
        if line.startswith(key + "="):
            return line.split("=", 1)[1].strip()
    raise SystemExit(f"no {key}= in {path}")


PREVIOUS = field(os.path.join(ROOT, "hack/previous-release"), "version")
VERSION = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
VERSION = json.loads(VERSION.stdout)["packages"][0]["version"]
PREVIOUS_DIR = os.path.join(ROOT, ".local/olm/previous")


def hack(*args):
    subprocess.run([os.path.join(ROOT, "hack", args[0])] + list(args[1:]), check=True,
                   stdout=subprocess.DEVNULL)


def metallb():
    out = kubectl("-n", NS, "get", "metallb", "metallb", "-o", "json", check=False)
    return json.loads(out) if out.strip() else None


def condition(cr, type_):
    for c in (cr or {}).get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c
    return None


def pods(selector):
    items = json.loads(kubectl("-n", NS, "get", "pods", "-l", selector, "-o", "json"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def on(pod, version):
    return pod["metadata"].get("labels", {}).get("app.kubernetes.io/version") == f"v{version}" and ready(pod)


def installed_csv():
    out = kubectl("-n", NS, "get", "subscription", PACKAGE, "-o", "jsonpath={.status.installedCSV}", check=False)
    return out.strip()


def csv_phase(name):
    return kubectl("-n", NS, "get", "csv", name, "-o", "jsonpath={.status.phase}", check=False).strip()


def available():
    c = condition(metallb(), "Available")
    return c and c["status"] == "True"


def install_previous(via):
    hack("previous-release.sh", "source", PREVIOUS_DIR)
    uninstall_current(via)
    if via == "olm":
        hack("olm-local.sh", "serve", os.path.join(PREVIOUS_DIR, "bundle"))
        hack("olm-local.sh", "subscribe", NS, f"{PACKAGE}.v{PREVIOUS}")
    else:
        kubectl("apply", "--server-side", "--force-conflicts", "-k", os.path.join(PREVIOUS_DIR, "manifests/operator"))
    kubectl("-n", NS, "rollout", "status", "deployment/metallb-operator", "--timeout=300s")
    kubectl("apply", "-f", os.path.join(ROOT, "manifests/samples/metallb.yaml"))
    wait("MetalLB Available on the previous release", 300, available, every=0.5)


def uninstall_current(via):
    if via == "olm":
        if installed_csv():
            hack("olm-local.sh", "uninstall", NS)
    else:
        kubectl("-n", NS, "delete", "metallb", "--all", "--wait=true", "--timeout=180s", check=False)
        for f in ("deployment.yaml", "rbac.yaml"):
            kubectl("delete", "--ignore-not-found", "-f", os.path.join(ROOT, "manifests/operator", f), check=False)


def service():
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=f"""
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: bench-upgrade, namespace: {NS}}}
spec: {{addresses: [192.0.2.249/32]}}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {{name: bench-upgrade, namespace: {NS}}}
spec: {{ipAddressPools: [bench-upgrade]}}
""")
    kubectl("create", "namespace", APP_NS, check=False)
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=f"""
{echo_deployment("bench", APP_NS)}---
apiVersion: v1
kind: Service
metadata: {{name: bench, namespace: {APP_NS}}}
spec:
  type: LoadBalancer
  ipFamilyPolicy: SingleStack
  ipFamilies: [IPv4]
  selector: {{app: bench}}
  ports: [{{name: http, port: 80, targetPort: http}}]
""")
    ip = wait("an IP on the bench Service", 120, lambda: (json.loads(kubectl(
        "get", "service", "-n", APP_NS, "bench", "-o", "json")).get("status", {}).get("loadBalancer", {}).get("ingress") or [{}])[0].get("ip"))
    wait("HTTP through the bench Service", 120, lambda: subprocess.run(
        ["ip", "netns", "exec", "mlb-client", "curl", "-s", "-o", "/dev/null", "--max-time", "1", f"http://{ip}/"]).returncode == 0,
        every=0.5)
    return ip


def make_available(via):
    if via == "olm":
        hack("olm-local.sh", "serve", os.path.join(ROOT, "bundle"), os.path.join(PREVIOUS_DIR, "bundle"))
    else:
        kubectl("apply", "--server-side", "--force-conflicts", "-k", os.path.join(ROOT, "manifests/operator"))


def follow(via, t0):
    """Polls every 100 ms until every component runs VERSION; returns the step times (s)."""
    marks = {}
    reasons = []
    deadline = t0 + 900
    while time.time() < deadline:
        now = time.time()
        if "operator" not in marks:
            if via == "olm":
                if installed_csv() == f"{PACKAGE}.v{VERSION}" and csv_phase(f"{PACKAGE}.v{VERSION}") == "Succeeded":
                    marks["operator"] = now - t0
            elif any(on(p, VERSION) for p in pods("app.kubernetes.io/name=metallb-operator")):
                marks["operator"] = now - t0
        cr = metallb()
        progressing = condition(cr, "Progressing")
        if progressing and progressing["status"] == "True" and (not reasons or reasons[-1][0] != progressing["reason"]):
            reasons.append((progressing["reason"], now - t0))
        degraded = condition(cr, "Degraded")
        if degraded and degraded["status"] == "True":
            raise SystemExit(f"the upgrade is Degraded: {degraded['reason']}: {degraded['message']}")
        speakers = pods("app=metallb,component=speaker")
        controllers = pods("app=metallb,component=controller")
        if "controller" not in marks:
            # The controller step ends when the speakers' begins; an operator that reports no
            # steps: when every controller pod runs the new release.
            speakers_step = [t for r, t in reasons if r == "UpdatingSpeakers"]
            if speakers_step:
                marks["controller"] = speakers_step[0]
            elif not reasons and controllers and all(on(p, VERSION) for p in controllers):
                marks["controller"] = now - t0
        if "speakers" not in marks and len(speakers) == 3 and all(on(p, VERSION) for p in speakers):
            marks["speakers"] = now - t0
        if (cr or {}).get("status", {}).get("version") == VERSION and available() and \
                "speakers" in marks and "controller" in marks:
            marks["total"] = now - t0
            return marks, reasons
        time.sleep(0.1)
    raise SystemExit(f"the upgrade did not finish in 900 s: {marks}, {reasons}")


def trial(via, macs):
    install_previous(via)
    ip = service()
    time.sleep(3)
    probe = subprocess.Popen(["ip", "netns", "exec", "mlb-client", sys.executable,
                              os.path.join(ROOT, "hack/bench/l2_failover.py"), "probe", ip, "80", "900"],
                             stdout=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(probe.stdout), daemon=True)
    reader.start()
    time.sleep(2)
    t0 = time.time()
    make_available(via)
    marks, reasons = follow(via, t0)
    time.sleep(2)
    probe.terminate()
    probe.wait(10)
    reader.join(5)
    _, double, silence, answering, failed = analyse(lines, t0 * 1000, macs)
    http = [l.split()[2] for l in lines if len(l.split()) == 3 and l.split()[1] == "http"]
    same_ip = json.loads(kubectl("get", "service", "-n", APP_NS, "bench", "-o", "json"))["status"]["loadBalancer"]["ingress"][0]["ip"] == ip
    return marks, reasons, len(http), http.count("fail"), double, silence, answering, failed, same_ip


def restore(via):
    # Waited for: the next trial creates the namespace again, and objects applied into a
    # namespace still terminating would go with it.
    kubectl("delete", "namespace", APP_NS, "--wait=true", "--timeout=180s", check=False)
    kubectl("-n", NS, "delete", "ipaddresspools.metallb.io/bench-upgrade", "l2advertisements.metallb.io/bench-upgrade",
            "--ignore-not-found", check=False)
    if via == "olm":
        return  # the upgrade left this release installed by the Subscription
    # The kustomize base of this release is installed: as hack/local-up.sh leaves it.


def main():
    via = os.environ.get("VIA", "olm")
    trials = int(os.environ.get("TRIALS", "3"))
    by_olm = bool(kubectl("-n", "olm", "get", "catalogsource", "metallb-rs", "-o", "name", check=False).strip())
    if via == "olm" and not by_olm:
        raise SystemExit("VIA=olm needs the local cluster brought up with MLB_INSTALL=olm")
    if via == "kustomize" and by_olm:
        raise SystemExit("VIA=kustomize needs the local cluster brought up without MLB_INSTALL=olm")
    if via not in ("olm", "kustomize"):
        raise SystemExit(f"VIA={via}: expected olm or kustomize")
    macs = node_macs()
    print(f"upgrade {PREVIOUS} -> {VERSION} via {via}, {trials} trials, L2 Service probed every 20 ms (HTTP) and 10 ms (ARP)")
    rows = []
    for i in range(trials):
        marks, reasons, connections, fails, double, silence, answering, failed, same_ip = trial(via, macs)
        rows.append((marks, fails, double))
        steps = ", ".join(f"{r} at {t:.1f}" for r, t in reasons)
        print(f"#{i + 1}: operator {marks.get('operator', float('nan')):5.1f} s, controller {marks['controller']:5.1f} s, "
              f"speakers {marks['speakers']:5.1f} s, total {marks['total']:5.1f} s; {connections} connections, "
              f"{fails} failed {failed}, two nodes answering {double:.0f} ms, longest ARP silence {silence:.0f} ms, "
              f"answered by {answering}, IP unchanged {same_ip}; Progressing: {steps}", flush=True)
        restore(via)
    totals = sorted(r[0]["total"] for r in rows)
    print(f"total: median {totals[len(totals) // 2]:.1f} s, max {totals[-1]:.1f} s; failed connections "
          f"{sum(r[1] for r in rows)}; longest double answer {max(r[2] for r in rows):.0f} ms")


if __name__ == "__main__":
    main()
