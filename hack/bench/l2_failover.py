#!/usr/bin/env python3
"""L2 failover benchmark (hack/bench.sh l2-failover) on the local cluster.

Deploys the speakers and the controller of e2e/fixtures/speaker/speaker.yaml (isolated from the
operator's MetalLB: own namespace, loadBalancerClass and ports), an echo Deployment behind a LoadBalancer Service, then runs
trials of three kinds against the node announcing the IP:

  link       the node's LAN link goes down (ip link set eth0 down in its namespace)
  kill       the announcing speaker process is killed with SIGKILL (the kubelet restarts it;
             after the trial the pod is replaced, so the restart back-off does not grow)
  graceful   the announcing speaker pod is deleted normally (SIGTERM, handover)

During each trial a probe in the client namespace (this file, `probe` mode, run with
`ip netns exec mlb-client`) opens a new HTTP connection to the IP every 20 ms and sends an ARP
request every 10 ms on a raw socket, recording every reply's MAC. Reported per kind:
  - time until HTTP works again after the action (0 when it never stopped working);
  - the longest time two nodes answered ARP at once (one ARP request answered by two MACs,
    stretches of such requests joined), over the whole trial including the IP moving back
    after recovery;
  - the longest time with no ARP answer at all.
Then the speakers' idle RSS.

Only addresses of the test topology are used (docs/topology.md); every loop is bounded.
"""

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

from kube import echo_deployment, kubectl, pid_of, ROOT, scale_operator, wait

NS = "metallb-spk-e2e"
CLASS = "e2e.metallb.io/speaker"
APP_NS = "bench-l2"
NODES = ["node-1", "node-2", "node-3"]


# ---------------------------------------------------------------------------------------------
# probe mode (runs inside the client namespace)

def probe(ip, port, seconds, iface="eth0"):
    """Prints 'epoch_ms http ok|fail' and 'epoch_ms arp MAC' lines for `seconds`."""
    out_lock = threading.Lock()

    def emit(kind, value):
        with out_lock:
            sys.stdout.write(f"{time.time() * 1000:.1f} {kind} {value}\n")
            sys.stdout.flush()

    deadline = time.time() + seconds
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    raw.bind((iface, 0x0806))
    my_mac = raw.getsockname()[4]
    target = socket.inet_aton(ip)
    # Each request names a different sender IP (192.0.2.101-199: unused addresses of the
    # test LAN, never configured anywhere) with our MAC; answers name that IP as their target,
    # so every reply says which request it answers. Two MACs answering one request is two
    # nodes answering at once, whatever the responders' latency. (Nodes do not learn these
    # addresses: Linux records an ARP sender only when the target is one of its own IPs.)
    def request(seq):
        sender_ip = bytes([192, 0, 2, 101 + seq % 99])
        frame = (b"\xff" * 6 + my_mac + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x01"
                 + my_mac + sender_ip + b"\x00" * 6 + target)
        return frame + b"\x00" * (60 - len(frame))

    def arp_sender():
        seq = 0
        while time.time() < deadline:
            raw.send(request(seq))
            seq += 1
            time.sleep(0.01)

    def arp_receiver():
        raw.settimeout(0.2)
        # Kernel receive timestamps: under load this thread may read several replies at once.
        so_timestampns = getattr(socket, "SO_TIMESTAMPNS", 35)
        raw.setsockopt(socket.SOL_SOCKET, so_timestampns, 1)
        while time.time() < deadline:
            try:
                frame, ancillary, _, _ = raw.recvmsg(2048, 256)
            except socket.timeout:
                continue
            stamp = None
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == so_timestampns and len(data) >= 16:
                    sec, nsec = struct.unpack("qq", data[:16])
                    stamp = sec * 1000 + nsec / 1e6
            if len(frame) < 42 or frame[12:14] != b"\x08\x06" or frame[20:22] != b"\x00\x02":
                continue
            # A reply to our request: sender the IP, target us (gratuitous replies, target
            # the IP itself, are not answers).
            if frame[28:32] != target or frame[32:38] != my_mac or not 101 <= frame[41] <= 199:
                continue
            answered = frame[41]
            mac = frame[22:28].hex(":")
            with out_lock:
                sys.stdout.write(f"{stamp if stamp else time.time() * 1000:.1f} arp {mac}/{answered}\n")
                sys.stdout.flush()

    def http():
        while time.time() < deadline:
            started = time.time()
            ok = False
            try:
                with socket.create_connection((ip, port), timeout=0.15) as s:
                    s.settimeout(0.3)
                    s.sendall(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
                    ok = s.recv(64).startswith(b"HTTP/1.")
            except OSError:
                ok = False
            emit("http", "ok" if ok else "fail")
            time.sleep(max(0.0, 0.02 - (time.time() - started)))

    threads = [threading.Thread(target=f, daemon=True) for f in (arp_sender, arp_receiver, http)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 2)


# ---------------------------------------------------------------------------------------------
# orchestration (runs in the machine's namespace, as root)

def apply(yaml_text):
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml_text)


def setup():
    crds = [os.path.join(ROOT, "manifests/crd", f) for f in sorted(os.listdir(os.path.join(ROOT, "manifests/crd")))
            if f.endswith(".yaml") and f not in ("kustomization.yaml", "metallb.io_metallbs.yaml")]
    for crd in crds:
        kubectl("apply", "--server-side", "--force-conflicts", "-f", crd)
    apply(open(os.path.join(ROOT, "e2e/fixtures/speaker/speaker.yaml")).read())
    for rbac in ("manifests/speaker/rbac.yaml", "manifests/controller/rbac.yaml"):
        apply(open(os.path.join(ROOT, rbac)).read().replace("metallb-system", NS))
    kubectl("delete", "ipaddresspools.metallb.io,l2advertisements.metallb.io", "--all", "-n", NS, check=False)
    apply(f"""
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: bench, namespace: {NS}}}
spec: {{addresses: [192.0.2.250/32]}}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {{name: bench, namespace: {NS}}}
spec: {{interfaces: [eth0]}}
""")
    kubectl("create", "namespace", APP_NS, check=False)
    apply(f"""
{echo_deployment("bench", APP_NS)}---
apiVersion: v1
kind: Service
metadata: {{name: bench, namespace: {APP_NS}}}
spec:
  type: LoadBalancer
  loadBalancerClass: {CLASS}
  selector: {{app: bench}}
  ports: [{{name: http, port: 80, targetPort: http}}]
""")


def speaker_pods():
    pods = json.loads(kubectl("get", "pods", "-n", NS, "-l", "component=speaker", "-o", "json"))["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def owners():
    items = json.loads(kubectl("get", "servicel2statuses.metallb.io", "-n", NS, "-l",
                               f"metallb.io/service-name=bench,metallb.io/service-namespace={APP_NS}", "-o", "json"))["items"]
    return sorted(i.get("status", {}).get("node", "") for i in items)


def node_macs():
    macs = {}
    for node in NODES:
        out = subprocess.run(["ip", "-n", f"mlb-{node}", "-j", "link", "show", "eth0"], capture_output=True, text=True).stdout
        macs[json.loads(out)[0]["address"].lower()] = node
    return macs


def http_ok(ip):
    r = subprocess.run(["ip", "netns", "exec", "mlb-client", "curl", "-s", "-o", "/dev/null", "--max-time", "1", f"http://{ip}/"])
    return r.returncode == 0


def settled(ip):
    pods = speaker_pods()
    if len(pods) != 3 or not all(ready(p) for p in pods):
        return False
    o = owners()
    return len(o) == 1 and o[0] in NODES and http_ok(ip)


def run_probe(ip, seconds):
    proc = subprocess.Popen(["ip", "netns", "exec", "mlb-client", sys.executable, os.path.abspath(__file__),
                             "probe", ip, "80", str(seconds)], stdout=subprocess.PIPE, text=True)
    return proc


def analyse(lines, t0, macs):
    http = []
    arp = []
    for line in lines:
        parts = line.split()
        if len(parts) != 3:
            continue
        t = float(parts[0])
        if parts[1] == "http":
            http.append((t, parts[2] == "ok"))
        elif parts[1] == "arp":
            mac, _, seq = parts[2].partition("/")
            arp.append((t, macs.get(mac, mac), seq))
    # HTTP: time from the action to the first success after the last failure.
    after = [(t, ok) for t, ok in http if t >= t0]
    failures = [t for t, ok in after if not ok]
    recovery = 0.0
    if failures:
        last_fail = failures[-1]
        success = next((t for t, ok in after if ok and t > last_fail), None)
        recovery = (success - t0) if success else float("inf")
    # ARP: two nodes answered the same request when one request number got replies from two
    # MACs. The longest stretch of such requests (gaps under 25 ms joined), plus one interval.
    # Request numbers repeat every 99 requests (~1 s): replies to one request are those with
    # its number less than 300 ms apart.
    by_number = {}
    for t, node, seq in arp:
        by_number.setdefault(seq, []).append((t, node))
    conflicts = []
    pairs = set()
    for replies in by_number.values():
        replies.sort()
        for (t, node), (u, other) in zip(replies, replies[1:]):
            if other != node and u - t < 300.0:
                conflicts.append(t)
                pairs.add(tuple(sorted((node, other))))
    conflicts.sort()
    longest = 0.0
    if conflicts:
        first = prev = conflicts[0]
        for t in conflicts[1:] + [float("inf")]:
            if t - prev > 25.0:
                longest = max(longest, prev - first + 10.0)
                first = t
            prev = t
    times = sorted(t for t, _, _ in arp)
    silence = max((b - a for a, b in zip(times, times[1:])), default=0.0)
    answering = sorted({n for _, n, _ in arp})
    # HTTP failure stretches (ms after the action), for the report.
    stretches = []
    for t, ok in after:
        if not ok:
            if stretches and t - stretches[-1][1] <= 60:
                stretches[-1][1] = t
            else:
                stretches.append([t, t])
    failed = [f"{a - t0:.0f}-{b - t0:.0f}" for a, b in stretches]
    if conflicts:
        failed.append("two answering at " + ", ".join(f"{t - t0:.0f}" for t in sorted(set(conflicts)))
                      + f" ms by {sorted(pairs)}")
    return recovery, longest, silence, answering, failed


def trial(kind, ip, macs):
    before = owners()[0]
    proc = run_probe(ip, 22)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    time.sleep(1.5)
    t0 = time.time() * 1000
    pods = {p["spec"]["nodeName"]: p for p in speaker_pods()}
    victim = pods[before]
    if kind == "link":
        subprocess.run(["ip", "-n", f"mlb-{before}", "link", "set", "eth0", "down"], check=True)
        time.sleep(5)
        subprocess.run(["ip", "-n", f"mlb-{before}", "link", "set", "eth0", "up"], check=True)
    elif kind == "kill":
        pid = wait(f"the speaker process on {before}", 60, lambda: pid_of(
            {p["spec"]["nodeName"]: p for p in speaker_pods()}[before]), every=0.5)
        os.kill(pid, 9)
    elif kind == "graceful":
        kubectl("delete", "pod", "-n", NS, victim["metadata"]["name"], "--wait=false")
    proc.wait(30)
    reader.join(5)
    if kind == "kill":
        # The kubelet restarts a killed container after a back-off that doubles with each
        # restart (10 s, 20 s, ... 5 min): the pod is replaced, so that the next kill trial
        # starts from a fresh pod, as the first one did (the trial's window has ended).
        kubectl("delete", "pod", "-n", NS, victim["metadata"]["name"], "--wait=false")
    wait("the cluster to settle", 90, lambda: settled(ip), every=0.5)
    time.sleep(2)
    recovery, double, silence, answering, failed = analyse(lines, t0, macs)
    return before, recovery, double, silence, answering, failed


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def rss_kib():
    out = []
    for pod in speaker_pods():
        pid = pid_of(pod)
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out.append((pod["spec"]["nodeName"], int(line.split()[1])))
        except (OSError, TypeError):
            pass
    return sorted(out)


def pause_operator():
    """The operator's webhooks refuse metallb.io objects outside metallb-system (as MetalLB's do):
    scale the operator to zero (it would restore them) and remove its webhook configuration.
    Returns whether there was an operator to restore."""
    if not kubectl("-n", "metallb-system", "get", "deployment", "metallb-operator", "-o", "name", check=False).strip():
        return False
    scale_operator(0)
    kubectl("-n", "metallb-system", "wait", "--for=delete", "pod", "-l", "app.kubernetes.io/name=metallb-operator",
            "--timeout=60s", check=False)
    kubectl("delete", "validatingwebhookconfiguration", "metallb-webhook-configuration", "--ignore-not-found")
    return True


def main():
    paused = pause_operator()
    try:
        run()
    finally:
        if paused:
            # The operator comes back and recreates its webhook configuration.
            scale_operator(1)


def run():
    trials = int(os.environ.get("TRIALS", "20"))
    kinds = os.environ.get("KINDS", "link kill graceful").split()
    setup()
    ip = wait("an IP on the bench Service", 120, lambda: (json.loads(kubectl(
        "get", "service", "-n", APP_NS, "bench", "-o", "json")).get("status", {}).get("loadBalancer", {}).get("ingress") or [{}])[0].get("ip"))
    wait("the bench Service to answer from one node", 180, lambda: settled(ip), every=0.5)
    time.sleep(3)
    macs = node_macs()
    print(f"service IP {ip}; speakers on {', '.join(NODES)}; {trials} trials per kind")
    print(f"idle speaker RSS (KiB, the image's release build): {rss_kib()}")
    results = {}
    for kind in kinds:
        results[kind] = []
        for i in range(trials):
            before, recovery, double, silence, answering, failed = trial(kind, ip, macs)
            results[kind].append((recovery, double, silence))
            print(f"{kind:8} #{i + 1:2}: owner {before}, HTTP back after {recovery:7.0f} ms, "
                  f"two answering {double:4.0f} ms, longest ARP silence {silence:6.0f} ms, answered by {answering}, "
                  f"HTTP failing (ms after the action): {failed}",
                  flush=True)
    print()
    print("kind      HTTP p50   HTTP p99   HTTP max   double max   ARP silence p50   ARP silence max")
    for kind, rows in results.items():
        rec = [r[0] for r in rows]
        dbl = [r[1] for r in rows]
        sil = [r[2] for r in rows]
        print(f"{kind:8} {percentile(rec, 50):7.0f} ms {percentile(rec, 99):7.0f} ms {max(rec):7.0f} ms "
              f"{max(dbl):8.0f} ms {percentile(sil, 50):12.0f} ms {max(sil):13.0f} ms")
    print(f"idle speaker RSS (KiB) after the trials (the image's release build): {rss_kib()}")
    kubectl("delete", "namespace", APP_NS, "--wait=false", check=False)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "probe":
        probe(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        main()
