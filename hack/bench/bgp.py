#!/usr/bin/env python3
"""BGP benchmark (hack/bench.sh bgp) on the local cluster, with the MetalLB the operator deployed
(hack/local-up.sh): the speakers of the three nodes peer with the FRR of the router namespace
over two BGPPeers each (`router-v4`, 192.0.2.1, with dualStackAddressFamily, and `router-v6`,
2001:db8:0:1::1), so every node has two sessions and each session carries the IPv6 prefixes.

Measures:
  - time to route: IPv4 LoadBalancer Services created one at a time (TRIALS, default 40, every
    0.5 s): from the moment a watch on the Services sees the IP in the status (`kubectl get
    --watch`, as the speakers see it) to
      * the route in the router's kernel table (zebra installs what bgpd chose: the path is in
        the BGP RIB by then), seen by `ip monitor route` in the router's namespace;
      * the router's BGP table having a path from each of the three nodes (vtysh polled).
    p50, p99 and max.
  - 1,000 Services: COUNT (default 1000) IPv6 Services created at once (one `kubectl apply`
    of a List): time until the controller gave all their IPs, until every session of every
    node delivered all of them to the router (its received-prefix counters), and the UPDATE
    messages the speakers sent for them (metallb_bgp_updates_total).
  - the speakers' RSS (VmRSS, peak VmHWM; split into anonymous memory, RssAnon, which is what the
    pod's memory cgroup is charged and `kubectl top` shows, and mapped code, RssFile) with 2
    sessions and COUNT prefixes each (the image's static release build, run by the nodes'
    kubelets), and again 5 s after the Services are deleted.
  - per backend (BACKENDS, default "native frr": the MetalLB resource's bgpBackend is switched,
    and put back to native at the end): the time to route above (TRIALS Services), the speaker
    pods' memory (the summed RSS of every process of the pod: the speaker, and in FRR mode
    zebra, bgpd, bfdd, the reloader's shell) with TRIALS prefixes, and link cuts (LINK_TRIALS,
    default 6, over the three nodes in turn): a node's LAN port on the LAN bridge goes down, time
    until the router no longer routes through it, with a BFDProfile of 300 ms x 3 (hold time 90
    s, BFD on the router's peer group) and without BFD (hold time 3 s, the smallest FRR takes).
    The 1,000 Services and the RSS with COUNT prefixes are measured in the native phase only.

Only addresses of the test topology (docs/topology.md); every loop is bounded; the operator is
scaled back and the test objects removed even when a step fails.
"""

import json
import os
import subprocess
import threading
import time

from kube import echo_deployment, get_json, KUBECONFIG, kubectl, OPERATOR_NS as NS, pid_of, ROOT, wait

APP_NS = "bench-bgp"
NODES = ["node-1", "node-2", "node-3"]
LAN_V4 = {"node-1": "192.0.2.11", "node-2": "192.0.2.12", "node-3": "192.0.2.13"}
METRICS_PORT = 9120
ROUTER = ["ip", "netns", "exec", "mlb-router"]
RUN_DIR = os.path.join(ROOT, ".local/frr/router/run")


def apply(text):
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=text)


def vtysh_json(command):
    run_dir = RUN_DIR
    state = os.path.join(ROOT, ".local/testbed/state.json")
    if os.path.exists(state):
        run_dir = json.load(open(state)).get("frr_run_dir") or run_dir
    out = subprocess.run(ROUTER + ["vtysh", "--vty_socket", run_dir, "-c", command],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def configure():
    kubectl("delete", "-n", NS, "ipaddresspools.metallb.io,l2advertisements.metallb.io,bgpadvertisements.metallb.io,"
            "bgppeers.metallb.io,communities.metallb.io", "--all", check=False)
    apply(f"""
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: bench-v4, namespace: {NS}}}
spec: {{addresses: [203.0.113.200-203.0.113.250]}}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: bench-v6, namespace: {NS}}}
spec: {{addresses: ["2001:db8:0:300::1000-2001:db8:0:300::1fff"]}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: bench, namespace: {NS}}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: router-v4, namespace: {NS}}}
spec: {{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, dualStackAddressFamily: true}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: router-v6, namespace: {NS}}}
spec: {{myASN: 64512, peerASN: 64500, peerAddress: "2001:db8:0:1::1"}}
""")
    kubectl("create", "namespace", APP_NS, check=False)
    apply(f"""
{echo_deployment("bench", APP_NS)}""")


def service(name, family, pool):
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": APP_NS, "annotations": {"metallb.io/address-pool": pool}},
        "spec": {"type": "LoadBalancer", "ipFamilyPolicy": "SingleStack", "ipFamilies": [family],
                 "selector": {"app": "bench"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }


def established_sessions():
    summary = vtysh_json("show bgp summary json")
    peers = {}
    for family in ("ipv4Unicast", "ipv6Unicast"):
        for addr, p in summary.get(family, {}).get("peers", {}).items():
            peers[addr] = p.get("state")
    return sum(1 for s in peers.values() if s == "Established")


def ready_endpoints():
    dep = get_json("-n", APP_NS, "deployment", "bench") or {}
    return dep.get("status", {}).get("readyReplicas", 0) == 3


class Watch:
    """`kubectl get services --watch` and `ip monitor route` in the router: when each IP was first
    seen assigned, and when its route first appeared in the router's kernel table."""

    def __init__(self):
        self.assigned = {}
        self.routed = {}
        self.lock = threading.Lock()
        self.stopping = False
        self.svc = None
        self.mon = subprocess.Popen(["ip", "-n", "mlb-router", "monitor", "route"], stdout=subprocess.PIPE,
                                    text=True, bufsize=1)
        threading.Thread(target=self._services, daemon=True).start()
        threading.Thread(target=self._routes, daemon=True).start()

    def _services(self):
        # A watch can end (the API server closes it, or it falls too far behind a burst):
        # start it again; the relist shows what was assigned meanwhile (timed then).
        template = '{.metadata.name}{" "}{.status.loadBalancer.ingress[*].ip}{"\\n"}'
        while not self.stopping:
            self.svc = subprocess.Popen(
                [os.path.join(ROOT, ".local/bin/kubectl"), "--kubeconfig", KUBECONFIG, "get", "services", "-n",
                 APP_NS, "--watch", "-o", f"jsonpath={template}"], stdout=subprocess.PIPE, text=True, bufsize=1)
            for line in self.svc.stdout:
                now = time.time()
                parts = line.split()
                with self.lock:
                    for ip in parts[1:]:
                        self.assigned.setdefault(ip, now)
            self.svc.wait()
            if not self.stopping:
                print(f"  (the Service watch ended, exit {self.svc.returncode}: watching again)", flush=True)

    def _routes(self):
        for line in self.mon.stdout:
            now = time.time()
            if line[:1].isspace() or line.startswith("Deleted"):
                continue
            dst = line.split()[0].split("/")[0]
            with self.lock:
                self.routed.setdefault(dst, now)

    def snapshot(self):
        with self.lock:
            return dict(self.assigned), dict(self.routed)

    def stop(self):
        self.stopping = True
        for p in (self.svc, self.mon):
            if p:
                p.terminate()
                p.wait(5)


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def nodes_in_rib(prefix):
    afi = "ipv6" if ":" in prefix else "ipv4"
    paths = vtysh_json(f"show bgp {afi} unicast {prefix} json").get("paths", [])
    hops = set()
    for p in paths:
        for nh in p.get("nexthops", []):
            if not nh.get("ip", "").startswith("fe80"):
                hops.add(nh["ip"])
    return hops


def time_to_route(watch, trials):
    print(f"time to route: {trials} IPv4 Services, one every 0.5 s", flush=True)
    all_three = {}
    for i in range(trials):
        name = f"lat-{i}"
        subprocess.Popen([os.path.join(ROOT, ".local/bin/kubectl"), "--kubeconfig", KUBECONFIG, "apply", "-f", "-"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True).communicate(
            json.dumps(service(name, "IPv4", "bench-v4")))
        deadline = time.time() + 0.5
        while time.time() < deadline:
            # Routes in the kernel table: poll the BGP table until all three nodes are in it.
            _all_three(watch, all_three, trials)
            time.sleep(0.01)
    wait(f"{trials} IPv4 routes with three next hops", 60,
         lambda: _all_three(watch, all_three, trials), every=0.02)
    assigned, routed = watch.snapshot()
    ips = [ip for ip in assigned if ":" not in ip]
    first = [(routed[ip] - assigned[ip]) * 1000 for ip in ips]
    three = [(all_three[ip] - assigned[ip]) * 1000 for ip in ips]
    print(f"  IP in status -> route in the router's kernel table: p50 {percentile(first, 50):.0f} ms, "
          f"p99 {percentile(first, 99):.0f} ms, max {max(first):.0f} ms (n={len(first)})")
    print(f"  IP in status -> paths from all 3 nodes in the router's BGP table: p50 {percentile(three, 50):.0f} ms, "
          f"p99 {percentile(three, 99):.0f} ms, max {max(three):.0f} ms (n={len(three)})", flush=True)


def _all_three(watch, all_three, trials):
    assigned, routed = watch.snapshot()
    ips = [ip for ip in assigned if ":" not in ip]
    for ip in ips:
        if ip in routed and ip not in all_three and len(nodes_in_rib(f"{ip}/32")) == 3:
            all_three[ip] = time.time()
    return len(ips) == trials and all(ip in all_three for ip in ips)


def updates_sent():
    total = 0
    for node in NODES:
        out = subprocess.run(["ip", "netns", "exec", f"mlb-{node}", "curl", "-s", "--max-time", "3",
                              f"http://{LAN_V4[node]}:{METRICS_PORT}/metrics"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("metallb_bgp_updates_total{"):
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


def received_per_session(family):
    summary = vtysh_json("show bgp summary json").get(family, {}).get("peers", {})
    return {addr: p.get("pfxRcd", 0) for addr, p in summary.items()}


def thousand(watch, count):
    print(f"{count} IPv6 Services created at once", flush=True)
    before_updates = updates_sent()
    items = [service(f"many-{i}", "IPv6", "bench-v6") for i in range(count)]
    t0 = time.time()
    proc = subprocess.Popen([os.path.join(ROOT, ".local/bin/kubectl"), "--kubeconfig", KUBECONFIG, "apply",
                             "--server-side", "-f", "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    proc.communicate(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    created = time.time() - t0

    def assigned_all():
        out = kubectl("get", "services", "-n", APP_NS, "-o", "jsonpath={.items[*].status.loadBalancer.ingress[*].ip}")
        return sum(1 for ip in out.split() if ip.startswith("2001:db8:0:300::1")) >= count

    wait(f"{count} IPv6 IPs", 600, assigned_all, every=0.5)
    t_assigned = time.time() - t0
    sessions = 6

    def routed_all():
        got = received_per_session("ipv6Unicast")
        return len(got) == sessions and all(n >= count for n in got.values())

    wait(f"{count} prefixes on each of the {sessions} sessions", 600, routed_all, every=0.1)
    t_routed = time.time() - t0
    assigned, _ = watch.snapshot()
    seen = [t for ip, t in assigned.items() if ip.startswith("2001:db8:0:300::1")]
    last_assigned = (max(seen) if seen else t0 + t_assigned) - t0
    time.sleep(2)
    updates = updates_sent() - before_updates
    print(f"  created in {created:.1f} s; all IPs assigned {t_assigned:.1f} s after the first create "
          f"(last seen at {last_assigned:.1f} s); every session of every node had all {count} prefixes at "
          f"{t_routed:.1f} s, {t_routed - last_assigned:.2f} s after the last IP")
    print(f"  UPDATE messages sent by the 3 speakers for them: {updates} "
          f"({count * sessions} prefix advertisements)", flush=True)


def speakers():
    pods = (get_json("-n", NS, "pods", "-l", "app=metallb,component=speaker") or {}).get("items", [])
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def rss(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


CONTAINERS = {"native": ["speaker"], "frr": ["speaker", "frr", "reloader"]}


def set_backend(backend):
    """The MetalLB resource on `backend` (native: the field unset, as the sample has it), and a
    ready speaker pod of that backend on every node."""
    value = None if backend == "native" else backend
    kubectl("-n", NS, "patch", "metallb", "metallb", "--type", "merge", "-p",
            json.dumps({"spec": {"bgpBackend": value}}))

    def rolled_out():
        pods = (get_json("-n", NS, "pods", "-l", "app=metallb,component=speaker") or {}).get("items", [])
        good = [p for p in pods if not p["metadata"].get("deletionTimestamp")
                and [c["name"] for c in p["spec"]["containers"]] == CONTAINERS[backend]
                and all(c.get("ready") for c in p.get("status", {}).get("containerStatuses", []))
                and len(p.get("status", {}).get("containerStatuses", [])) == len(CONTAINERS[backend])]
        return len(pods) == 3 and len(good) == 3

    t0 = time.time()
    wait(f"a ready {backend} speaker on every node", 300, rolled_out, every=1)
    print(f"backend {backend}: speakers ready {time.time() - t0:.1f} s after the switch", flush=True)


def pod_rss(pod):
    """KiB of RSS of every process in the pod's cgroup (cgroup v1 memory hierarchy), by
    container name where the process is a container's main process, else under "other"."""
    pid = pid_of(pod)
    path = None
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, cg = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(",") or controllers == "":
                path = cg
                if controllers:
                    break
    base = "/sys/fs/cgroup/memory" if os.path.isdir("/sys/fs/cgroup/memory") else "/sys/fs/cgroup"
    pod_dir = os.path.join(base, os.path.dirname(path).lstrip("/"))
    total = 0
    for dirpath, _, files in os.walk(pod_dir):
        if "cgroup.procs" not in files:
            continue
        with open(os.path.join(dirpath, "cgroup.procs")) as f:
            for line in f:
                try:
                    total += rss(int(line))["VmRSS"]
                except (OSError, KeyError, ValueError):
                    pass
    return total


def memory(backend, prefixes):
    for p in speakers():
        node = p["spec"]["nodeName"]
        speaker = rss(pid_of(p, "speaker"))["VmRSS"]
        print(f"  {backend}: speaker pod on {node} ({prefixes} prefixes, 2 sessions): {pod_rss(p)} KiB RSS in all, "
              f"the speaker process {speaker} KiB", flush=True)


def vtysh(*commands):
    run_dir = RUN_DIR
    state = os.path.join(ROOT, ".local/testbed/state.json")
    if os.path.exists(state):
        run_dir = json.load(open(state)).get("frr_run_dir") or run_dir
    args = ROUTER + ["vtysh", "--vty_socket", run_dir]
    for c in commands:
        args += ["-c", c]
    subprocess.run(args, capture_output=True, text=True, check=True)


def bfd_up(addresses):
    peers = {p.get("peer"): p.get("status") for p in vtysh_json("show bfd peers json")}
    return all(peers.get(a) == "up" for a in addresses)


def link_trials(backend, trials):
    """The IPv4 peer alone, with or without BFD; an IPv4 Service through the three nodes; each
    trial cuts one node's LAN port and times until the router's paths no longer go through it."""
    kubectl("delete", "-n", NS, "bgppeers.metallb.io", "--all")
    for bfd in (True, False):
        if bfd:
            vtysh("configure terminal", "router bgp 64500", "neighbor metallb bfd")
            peer = "holdTime: 90s, bfdProfile: fast"
            label = "with BFD 300 ms x 3 (hold time 90 s)"
        else:
            peer = "holdTime: 3s"
            label = "without BFD (hold time 3 s)"
        apply(f"""
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {{name: fast, namespace: {NS}}}
spec: {{receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: router-link, namespace: {NS}}}
spec: {{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, {peer}}}
""")
        kubectl("apply", "-f", "-", input=json.dumps(service("link", "IPv4", "bench-v4")))
        ip = wait("the link Service's IP", 60, lambda: kubectl(
            "get", "service", "-n", APP_NS, "link", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}").strip())
        prefix = f"{ip}/32"
        everyone = set(LAN_V4.values())
        times = []
        try:
            for t in range(trials):
                wait(f"{prefix} through the 3 nodes", 180, lambda: nodes_in_rib(prefix) == everyone, every=0.2)
                if bfd:
                    wait("BFD up with the 3 nodes", 60, lambda: bfd_up(everyone), every=0.2)
                time.sleep(1)
                node = NODES[t % 3]
                cut = time.time()
                subprocess.run(["ip", "-n", "mlb-lan", "link", "set", node, "down"], check=True)
                try:
                    wait(f"{node}'s next hop to go", 30, lambda: LAN_V4[node] not in nodes_in_rib(prefix), every=0.02)
                    times.append((time.time() - cut) * 1000)
                finally:
                    subprocess.run(["ip", "-n", "mlb-lan", "link", "set", node, "up"], check=True)
            print(f"  {backend}: link down -> next hop gone, {label}: p50 {percentile(times, 50):.0f} ms, "
                  f"min {min(times):.0f} ms, max {max(times):.0f} ms (n={len(times)})", flush=True)
        finally:
            if bfd:
                vtysh("configure terminal", "router bgp 64500", "no neighbor metallb bfd")
            kubectl("delete", "-n", APP_NS, "service", "link", check=False)
            kubectl("delete", "-n", NS, "bgppeers.metallb.io", "--all", check=False)
    kubectl("delete", "-n", NS, "bfdprofiles.metallb.io", "--all", check=False)


def delete_services():
    kubectl("delete", "-n", APP_NS, "services", "--all")
    wait("no BGP route left in the router", 120,
         lambda: not vtysh_json("show bgp ipv4 unicast json").get("routes")
         and not vtysh_json("show bgp ipv6 unicast json").get("routes"), every=0.5)


def main():
    trials = int(os.environ.get("TRIALS", "40"))
    count = int(os.environ.get("COUNT", "1000"))
    link = int(os.environ.get("LINK_TRIALS", "6"))
    backends = os.environ.get("BACKENDS", "native frr").split()
    if trials > 50:
        raise SystemExit("TRIALS: at most 50 (the IPv4 pool 203.0.113.200-250, one IP for the link trials)")
    try:
        for backend in backends:
            set_backend(backend)
            configure()
            watch = Watch()
            try:
                wait("6 established sessions (3 nodes x 2 peers)", 120,
                     lambda: established_sessions() >= 6, every=0.5)
                wait("3 ready echo pods", 120, ready_endpoints, every=0.5)
                time.sleep(2)
                if trials:
                    time_to_route(watch, trials)
                    time.sleep(3)
                    memory(backend, trials)
                if backend == "native" and count:
                    thousand(watch, count)
                    time.sleep(5)
                    for p in speakers():
                        r = rss(pid_of(p, "speaker"))
                        print(f"  speaker on {p['spec']['nodeName']} (the image's release build, 2 sessions, {count} "
                              f"IPv6 + {trials} IPv4 prefixes): RSS {r['VmRSS']} KiB (heap and stacks "
                              f"{r['RssAnon']} KiB, code {r['RssFile']} KiB), peak {r['VmHWM']} KiB")
            finally:
                watch.stop()
            delete_services()
            if backend == "native" and count:
                time.sleep(5)
                for p in speakers():
                    r = rss(pid_of(p, "speaker"))
                    print(f"  speaker on {p['spec']['nodeName']} after the Services were deleted: RSS {r['VmRSS']} KiB "
                          f"(heap and stacks {r['RssAnon']} KiB)", flush=True)
            if link:
                link_trials(backend, link)
    finally:
        kubectl("delete", "namespace", APP_NS, "--wait=false", check=False)
        kubectl("delete", "-n", NS, "bgppeers.metallb.io,bgpadvertisements.metallb.io,ipaddresspools.metallb.io,"
                "bfdprofiles.metallb.io", "--all", "--wait=false", check=False)
        if backends != ["native"]:
            set_backend("native")


if __name__ == "__main__":
    main()
