//! End-to-end tests of the local cluster itself: real nodes (kubelet, containerd, runc,
//! kube-proxy), pods from images, security contexts, volumes, probes, the Service data path.
//! They need the cluster (`hack/local-up.sh`) and root, so they are ignored by default;
//! `hack/e2e.sh` brings the cluster up, runs them with `--ignored --test-threads=1`, and
//! tears it down. They assume the default topology (at least two nodes). MetalLB runs on
//! the cluster: their LoadBalancer Services use a class it ignores.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use metallb_e2e::harness::{
    Cluster, container_pid, netns_exec, netns_of_pid, pod_ready, process_alive, wait_for,
};
use metallb_e2e::topology;

const POD_TIMEOUT: Duration = Duration::from_secs(90);

/// A Deployment of the echo server on `port` and a dual-stack Service in front of it
/// (port 80/TCP, 53/UDP).
fn echo_yaml(name: &str, replicas: u32, service_type: &str, port: u16) -> String {
    // MetalLB runs on the local cluster: LoadBalancer Services of these tests carry a class no
    // load balancer implements, so only the cluster itself acts on them.
    let class = if service_type == "LoadBalancer" {
        format!("\n  loadBalancerClass: {UNHANDLED_CLASS}")
    } else {
        String::new()
    };
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: echo
          image: localhost/echo:latest
          args: ["--port", "{port}"]
          ports: [{{name: http, containerPort: {port}}}]
          env:
            - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
            - {{name: POD_NAMESPACE, valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}}}
            - {{name: NODE_NAME, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}
            - {{name: POD_IPS, valueFrom: {{fieldRef: {{fieldPath: status.podIPs}}}}}}
          readinessProbe:
            httpGet: {{path: /healthz, port: http}}
            periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  type: {service_type}{class}
  ipFamilyPolicy: PreferDualStack
  selector: {{app: {name}}}
  ports:
    - {{name: http, port: 80, targetPort: http}}
    - {{name: udp, port: 53, protocol: UDP, targetPort: {port}}}
"#
    )
}

/// A LoadBalancer class nothing on the local cluster handles.
const UNHANDLED_CLASS: &str = "e2e.metallb.io/unhandled";

/// Waits until `count` pods with `app=<name>` are Ready; returns them.
async fn ready_pods(cluster: &Cluster, ns: &str, name: &str, count: usize) -> Vec<Pod> {
    let what = format!("{count} ready pods of {ns}/{name}");
    wait_for(&what, POD_TIMEOUT, || async {
        let pods = cluster
            .pods(ns, &format!("app={name}"))
            .await
            .map_err(|e| e.to_string())?;
        let ready: Vec<Pod> = pods
            .into_iter()
            .filter(|p| pod_ready(p) && p.metadata.deletion_timestamp.is_none())
            .collect();
        if ready.len() == count {
            Ok(ready)
        } else {
            Err(format!("{} ready", ready.len()))
        }
    })
    .await
    .expect("pods become ready")
}

async fn service(cluster: &Cluster, ns: &str, name: &str) -> Service {
    Api::<Service>::namespaced(cluster.client(), ns)
        .get(name)
        .await
        .expect("service exists")
}

fn curl(from: &str, url: &str) -> Result<String, String> {
    let out =
        netns_exec(from, &["curl", "-sS", "--max-time", "3", url]).map_err(|e| e.to_string())?;
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(format!("curl {url} from {from}: {}", out.stderr.trim()))
    }
}

/// curl (the machine's) in the network namespace of process `pid`.
fn curl_in(pid: u32, url: &str) -> Result<String, String> {
    let net = format!("--net=/proc/{pid}/ns/net");
    let out = std::process::Command::new("nsenter")
        .args([net.as_str(), "curl", "-sS", "--max-time", "3", url])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn url(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("http://[{ip}]:{port}/")
    } else {
        format!("http://{ip}:{port}/")
    }
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn nodes_are_real_kubelets_on_containerd_ready_with_the_topology_addresses_and_podcidrs() {
    let cluster = Cluster::connect().await.expect("cluster");
    let state = metallb_e2e::testbed::State::load(cluster.paths()).expect("testbed state");
    let nodes = Api::<Node>::all(cluster.client())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let mut names: Vec<String> = nodes.iter().map(|n| n.name_any()).collect();
    names.sort();
    let expected: Vec<String> = (1..=state.nodes).map(|i| format!("node-{i}")).collect();
    assert_eq!(names, expected);
    for node in &nodes {
        let topo = topology::Node::by_name(&node.name_any()).unwrap();
        let status = node.status.as_ref().unwrap();
        let ready = status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True", "{} Ready", topo.name);
        let addresses: Vec<(String, String)> = status
            .addresses
            .as_ref()
            .unwrap()
            .iter()
            .map(|a| (a.type_.clone(), a.address.clone()))
            .collect();
        assert_eq!(
            addresses,
            vec![
                ("InternalIP".to_string(), topo.lan_v4.to_string()),
                ("InternalIP".to_string(), topo.lan_v6.to_string()),
                ("Hostname".to_string(), topo.name.clone()),
            ]
        );
        let labels = node.labels();
        assert_eq!(labels.get("kubernetes.io/hostname"), Some(&topo.name));
        assert_eq!(
            labels.get("kubernetes.io/os").map(String::as_str),
            Some("linux")
        );
        assert!(labels.contains_key("kubernetes.io/arch"));
        assert_eq!(status.allocatable.as_ref().unwrap()["pods"].0, "110");
        // What `kubectl get nodes -o wide` shows: the kubelet of the control plane's version
        // on containerd.
        let info = status.node_info.as_ref().unwrap();
        let server = cluster
            .client()
            .apiserver_version()
            .await
            .unwrap()
            .git_version;
        assert_eq!(info.kubelet_version, server);
        assert!(
            info.container_runtime_version
                .starts_with("containerd://2."),
            "{}",
            info.container_runtime_version
        );
        let spec = node.spec.as_ref().unwrap();
        assert_eq!(
            spec.pod_cidrs.clone().unwrap(),
            [topo.pods_v4.to_string(), topo.pods_v6.to_string()]
        );

        let lease = Api::<Lease>::namespaced(cluster.client(), "kube-node-lease")
            .get(&topo.name)
            .await
            .unwrap();
        let renewed = lease.spec.unwrap().renew_time.unwrap().0;
        let age = jiff::Timestamp::now().duration_since(renewed);
        assert!(
            age < jiff::SignedDuration::from_secs(30),
            "lease of {} renewed {age:?} ago",
            topo.name
        );
    }
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn echo_deployment_runs_ready_pods_from_the_image_as_its_user_in_the_nodes_cgroups() {
    let cluster = Cluster::connect().await.expect("cluster");
    let ns = cluster.namespace("echo").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo_yaml("echo", 3, "ClusterIP", 8081))
        .await
        .unwrap();
    let pods = ready_pods(&cluster, ns.name(), "echo", 3).await;

    for pod in &pods {
        let node = pod.spec.as_ref().unwrap().node_name.clone().unwrap();
        let topo = topology::Node::by_name(&node).unwrap();
        let status = &pod
            .status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap()[0];
        assert!(
            status
                .container_id
                .as_deref()
                .unwrap()
                .starts_with("containerd://"),
            "{:?}",
            status.container_id
        );
        let pid = container_pid(pod, "echo").expect("runc's state names the process");
        assert!(
            process_alive(pid),
            "process {pid} of {} runs",
            pod.name_any()
        );
        // The image's program, as the image's non-root user (65532), in a network namespace
        // of its own (not the node's), in a cgroup below the node's cgroup root.
        let proc_status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid_line = proc_status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert_eq!(
            uid_line.split_whitespace().collect::<Vec<_>>(),
            ["Uid:", "65532", "65532", "65532", "65532"]
        );
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&cmdline),
            "/mlb-echo\0--port\08081\0",
            "{pid} runs the echo server"
        );
        assert_eq!(netns_of_pid(pid), None, "{pid} is not in a node namespace");
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let memory = cgroups
            .lines()
            .find_map(|l| l.split_once(":memory:"))
            .map(|(_, path)| path.to_string())
            .unwrap();
        assert!(
            memory.starts_with(&format!("/mlb-{node}/kubepods/")),
            "memory cgroup {memory} of {pid} below /mlb-{node}/kubepods"
        );
        let ips: Vec<String> = pod
            .status
            .as_ref()
            .unwrap()
            .pod_ips
            .iter()
            .flatten()
            .map(|p| p.ip.clone())
            .collect();
        assert_eq!(ips.len(), 2, "dual-stack pod IPs {ips:?}");
        assert!(
            topo.pods_v4
                .contains(&ips[0].parse::<std::net::Ipv4Addr>().unwrap()),
            "{ips:?} in {}",
            topo.pods_v4
        );
        assert!(
            topo.pods_v6
                .contains(&ips[1].parse::<std::net::Ipv6Addr>().unwrap()),
            "{ips:?} in {}",
            topo.pods_v6
        );
    }

    // The machine (where the API server calls webhooks) reaches every pod IP, both families.
    for pod in &pods {
        for ip in pod.status.as_ref().unwrap().pod_ips.iter().flatten() {
            let out = std::process::Command::new("curl")
                .args(["-sS", "--max-time", "3", &url(&ip.ip, 8081)])
                .output()
                .unwrap();
            let answer = String::from_utf8_lossy(&out.stdout);
            assert!(
                answer.starts_with(&format!("pod={} ", pod.name_any())),
                "the machine reaches {}: {answer} {}",
                ip.ip,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    let slices: Api<EndpointSlice> = Api::namespaced(cluster.client(), ns.name());
    wait_for(
        "an IPv4 EndpointSlice with 3 ready endpoints",
        POD_TIMEOUT,
        || async {
            let list = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=echo"))
                .await
                .map_err(|e| e.to_string())?;
            let ready = list
                .items
                .iter()
                .filter(|s| s.address_type == "IPv4")
                .flat_map(|s| s.endpoints.iter())
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .count();
            if ready == 3 {
                Ok(())
            } else {
                Err(format!("{ready} ready endpoints"))
            }
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn http_from_a_node_to_the_cluster_ip_reaches_a_backend_in_both_families() {
    let cluster = Cluster::connect().await.expect("cluster");
    let ns = cluster.namespace("clusterip").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo_yaml("echo", 3, "ClusterIP", 8082))
        .await
        .unwrap();
    let pods = ready_pods(&cluster, ns.name(), "echo", 3).await;
    let names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
    let svc = service(&cluster, ns.name(), "echo").await;
    let cluster_ips = svc.spec.unwrap().cluster_ips.unwrap();
    assert_eq!(
        cluster_ips.len(),
        2,
        "dual-stack ClusterIPs {cluster_ips:?}"
    );

    for ip in &cluster_ips {
        for from in ["node-1", "node-2"] {
            let answer = wait_for(
                &format!("{from} to reach {ip}"),
                Duration::from_secs(30),
                || async { curl(from, &url(ip, 80)) },
            )
            .await
            .unwrap();
            assert!(
                names.iter().any(|n| answer.contains(&format!("pod={n} "))),
                "answer {answer:?} names one of {names:?}"
            );
        }
    }
    // Every backend gets requests: kube-proxy spreads new connections over all ready endpoints.
    // It programs them a moment after they turn ready (its sync follows the EndpointSlice), so
    // the requests go on, in rounds of ten, until all three have answered or 30 s have passed.
    let mut seen = std::collections::BTreeSet::new();
    wait_for(
        &format!(
            "requests to {} from node-1 to reach all of {names:?}",
            cluster_ips[0]
        ),
        Duration::from_secs(30),
        || {
            for _ in 0..10 {
                if let Ok(answer) = curl("node-1", &url(&cluster_ips[0], 80))
                    && let Some(pod) = names.iter().find(|n| answer.contains(&format!("pod={n} ")))
                {
                    seen.insert(pod.clone());
                }
            }
            let result = if seen.len() == names.len() {
                Ok(())
            } else {
                Err(format!("answered by {seen:?}"))
            };
            async move { result }
        },
    )
    .await
    .unwrap();

    // UDP goes through the same data path (the echo server answers datagrams too).
    for ip in &cluster_ips {
        let answer = wait_for(
            &format!("a UDP answer from {ip}:53"),
            Duration::from_secs(30),
            || async { udp_echo("node-3", ip, 53) },
        )
        .await
        .unwrap();
        assert!(
            names.iter().any(|n| answer.contains(&format!("pod={n} "))),
            "{answer}"
        );
    }
}

/// Sends one datagram from namespace `from` and returns the answer (bash's /dev/udp; `dd`
/// reads exactly one datagram).
fn udp_echo(from: &str, ip: &str, port: u16) -> Result<String, String> {
    let script = format!(
        "exec 3<>/dev/udp/{ip}/{port}; echo hello >&3; timeout 2 dd bs=1500 count=1 <&3 2>/dev/null"
    );
    let out = netns_exec(from, &["bash", "-c", &script]).map_err(|e| e.to_string())?;
    if out.stdout.contains("pod=") {
        Ok(out.stdout)
    } else {
        Err(format!("no answer: {}", out.stderr.trim()))
    }
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn deleting_a_pod_stops_its_process() {
    let cluster = Cluster::connect().await.expect("cluster");
    let ns = cluster.namespace("delete").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo_yaml("echo", 1, "ClusterIP", 8083))
        .await
        .unwrap();
    let pod = ready_pods(&cluster, ns.name(), "echo", 1).await.remove(0);
    let pid = container_pid(&pod, "echo").unwrap();
    assert!(process_alive(pid));

    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns.name());
    pods.delete(&pod.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        &format!("process {pid} to exit"),
        Duration::from_secs(20),
        || async {
            if process_alive(pid) {
                Err("still running".to_string())
            } else {
                Ok(())
            }
        },
    )
    .await
    .unwrap();
    wait_for(
        "the pod object to be gone",
        Duration::from_secs(20),
        || async {
            match pods.get_opt(&pod.name_any()).await {
                Ok(None) => Ok(()),
                Ok(Some(_)) => Err("still there".to_string()),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await
    .unwrap();
    // The ReplicaSet's replacement runs as a new process.
    let replacement = ready_pods(&cluster, ns.name(), "echo", 1).await.remove(0);
    assert_ne!(replacement.uid(), pod.uid());
    assert!(process_alive(container_pid(&replacement, "echo").unwrap()));
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn load_balancer_service_of_an_unhandled_class_stays_pending() {
    let cluster = Cluster::connect().await.expect("cluster");
    let ns = cluster.namespace("lbpending").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo_yaml("echo", 1, "LoadBalancer", 8084))
        .await
        .unwrap();
    ready_pods(&cluster, ns.name(), "echo", 1).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let svc = service(&cluster, ns.name(), "echo").await;
    assert!(
        svc.spec.as_ref().unwrap().cluster_ip.is_some(),
        "has a ClusterIP"
    );
    let ingress = svc
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress)
        .unwrap_or_default();
    assert!(
        ingress.is_empty(),
        "no LoadBalancer IP for a class nothing handles: {ingress:?}"
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn pod_with_an_image_missing_from_the_registry_stays_pending_with_the_reason() {
    let cluster = Cluster::connect().await.expect("cluster");
    let ns = cluster.namespace("badimage").await.unwrap();
    cluster
        .apply_yaml(
            Some(ns.name()),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: nope}\nspec:\n  containers: [{name: c, image: example.invalid/nothing:1}]\n",
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns.name());
    let message = wait_for("the pod to report the failed pull", POD_TIMEOUT, || async {
        let pod = pods.get("nope").await.map_err(|e| e.to_string())?;
        let waiting = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.waiting.clone());
        match waiting {
            Some(w)
                if matches!(
                    w.reason.as_deref(),
                    Some("ErrImagePull" | "ImagePullBackOff")
                ) =>
            {
                Ok(w.message.unwrap_or_default())
            }
            other => Err(format!("waiting state {other:?}")),
        }
    })
    .await
    .unwrap();
    // Pulled from the local registry (every name maps there), which has no such image.
    assert!(
        message.contains("example.invalid/nothing:1") && message.contains("not found"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pod = pods.get("nope").await.unwrap();
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Pending"));
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn volumes_env_and_token_reach_the_container_privately_and_follow_updates() {
    let cluster = Cluster::connect().await.expect("cluster");
    let ns = cluster.namespace("volumes").await.unwrap();
    // The busybox test image: a shell that idles.
    cluster
        .apply_yaml(
            Some(ns.name()),
            r#"
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: first}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: conf}
data: {setting: "on"}
---
apiVersion: v1
kind: Pod
metadata: {name: reader, labels: {app: reader}}
spec:
  nodeName: node-1
  terminationGracePeriodSeconds: 2
  containers:
    - name: sh
      image: localhost/busybox:latest
      command: ["/bin/sh", "-c", "echo node=$MY_NODE ip=$MY_IP setting=$SETTING; exec sleep 3600"]
      env:
        - {name: MY_NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
        - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: SETTING, valueFrom: {configMapKeyRef: {name: conf, key: setting}}}
      volumeMounts:
        - {name: creds, mountPath: /etc/mlb-e2e-creds, readOnly: true}
        - {name: conf, mountPath: /etc/mlb-e2e-conf/setting.txt, subPath: setting}
        - {name: scratch, mountPath: /tmp/mlb-e2e-scratch}
  volumes:
    - {name: creds, secret: {secretName: creds}}
    - {name: conf, configMap: {name: conf}}
    - {name: scratch, emptyDir: {}}
"#,
        )
        .await
        .unwrap();
    let pod = ready_pods(&cluster, ns.name(), "reader", 1).await.remove(0);
    let pid = container_pid(&pod, "sh").unwrap();
    let in_container = |path: &str| {
        let out = std::process::Command::new("nsenter")
            .args(["--target", &pid.to_string(), "--mount", "--", "cat", path])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(in_container("/etc/mlb-e2e-creds/password"), "first");
    assert_eq!(in_container("/etc/mlb-e2e-conf/setting.txt"), "on");
    assert_eq!(
        in_container("/var/run/secrets/kubernetes.io/serviceaccount/namespace"),
        ns.name()
    );
    assert!(
        in_container("/var/run/secrets/kubernetes.io/serviceaccount/token").starts_with("ey"),
        "a JWT"
    );
    assert!(
        in_container("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
            .contains("BEGIN CERTIFICATE")
    );
    // The mounts are private to the container.
    assert!(!std::path::Path::new("/etc/mlb-e2e-creds/password").exists());

    let log = cluster
        .kubectl(&["-n", ns.name(), "logs", "reader", "-c", "sh"])
        .unwrap();
    let ip = pod.status.as_ref().unwrap().pod_ip.clone().unwrap();
    assert!(
        log.contains(&format!("node=node-1 ip={ip} setting=on")),
        "log: {log}"
    );

    // A Secret update reaches the directory mount within seconds.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(cluster.client(), ns.name());
    let patch = serde_json::json!({"stringData": {"password": "second"}});
    secrets
        .patch("creds", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for(
        "the updated Secret in the container",
        Duration::from_secs(30),
        || async {
            let now = in_container("/etc/mlb-e2e-creds/password");
            if now == "second" {
                Ok(())
            } else {
                Err(format!("still {now:?}"))
            }
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn host_network_pod_gets_the_node_addresses() {
    let cluster = Cluster::connect().await.expect("cluster");
    let ns = cluster.namespace("hostnet").await.unwrap();
    cluster
        .apply_yaml(
            Some(ns.name()),
            r#"
apiVersion: v1
kind: Pod
metadata: {name: hostnet, labels: {app: hostnet}}
spec:
  nodeName: node-1
  hostNetwork: true
  terminationGracePeriodSeconds: 2
  containers:
    - name: echo
      image: localhost/echo:latest
      args: ["--port", "18080"]
      ports: [{containerPort: 18080}]
      env: [{name: POD_NAME, value: hostnet}, {name: NODE_NAME, value: node-1}]
      readinessProbe: {tcpSocket: {port: 18080}, periodSeconds: 2}
"#,
        )
        .await
        .unwrap();
    let pod = ready_pods(&cluster, ns.name(), "hostnet", 1)
        .await
        .remove(0);
    let ips: Vec<String> = pod
        .status
        .unwrap()
        .pod_ips
        .unwrap()
        .into_iter()
        .map(|p| p.ip)
        .collect();
    assert_eq!(ips, ["192.0.2.11", "2001:db8:0:1::11"]);
    let answer = curl("client", "http://192.0.2.11:18080/").unwrap();
    assert!(answer.starts_with("pod=hostnet "), "{answer}");
}

/// Static neighbor entries the test adds in `client`, removed on drop.
struct StaticNeighbors(Vec<String>);

impl Drop for StaticNeighbors {
    fn drop(&mut self) {
        for ip in &self.0 {
            let _ = netns_exec("client", &["ip", "neigh", "del", ip, "dev", "eth0"]);
        }
    }
}

fn lan_mac(node: &str) -> String {
    netns_exec(node, &["cat", "/sys/class/net/eth0/address"])
        .unwrap()
        .stdout
        .trim()
        .to_string()
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn load_balancer_ip_in_the_service_status_is_served_by_the_node_data_path() {
    // Plays the controller (writes the ingress IP) and the speaker (a static neighbor entry on
    // the client instead of ARP), so only the node's nftables data path is under test.
    let cluster = Cluster::connect().await.expect("cluster");
    let ns = cluster.namespace("lbpath").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo_yaml("echo", 1, "LoadBalancer", 8085))
        .await
        .unwrap();
    let pod = ready_pods(&cluster, ns.name(), "echo", 1).await.remove(0);
    let backend_node = pod.spec.as_ref().unwrap().node_name.clone().unwrap();
    let other_node = if backend_node == "node-1" {
        "node-2"
    } else {
        "node-1"
    };
    let lb_ip = "192.0.2.240";

    let services: Api<Service> = Api::namespaced(cluster.client(), ns.name());
    let status = serde_json::json!({"status": {"loadBalancer": {"ingress": [{"ip": lb_ip}]}}});
    services
        .patch_status("echo", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();

    // The node never answers ARP for a LoadBalancer IP by itself.
    let arping = netns_exec(
        "client",
        &["arping", "-c", "2", "-w", "3", "-I", "eth0", lb_ip],
    )
    .unwrap();
    assert!(
        !arping.success(),
        "nobody answers ARP for {lb_ip}: {}",
        arping.stdout
    );

    let _neighbors = StaticNeighbors(vec![lb_ip.to_string()]);
    let via = |node: &str| {
        let mac = lan_mac(node);
        netns_exec(
            "client",
            &[
                "ip",
                "neigh",
                "replace",
                lb_ip,
                "lladdr",
                &mac,
                "dev",
                "eth0",
                "nud",
                "permanent",
            ],
        )
        .unwrap();
    };

    // externalTrafficPolicy Cluster: any node forwards (and masquerades) to the backend.
    via(other_node);
    let answer = wait_for(
        &format!("{lb_ip} via {other_node}"),
        Duration::from_secs(30),
        || async { curl("client", &url(lb_ip, 80)) },
    )
    .await
    .unwrap();
    assert!(
        answer.starts_with(&format!("pod={} ", pod.name_any())),
        "{answer}"
    );
    assert!(
        !answer.contains("client=192.0.2.100:"),
        "masqueraded when forwarded: {answer}"
    );

    // externalTrafficPolicy Local: only the backend's node serves, with the client's address.
    let local = serde_json::json!({"spec": {"externalTrafficPolicy": "Local"}});
    services
        .patch("echo", &PatchParams::default(), &Patch::Merge(&local))
        .await
        .unwrap();
    via(&backend_node);
    let answer = wait_for(
        &format!("{lb_ip} via {backend_node} (Local)"),
        Duration::from_secs(30),
        || async {
            let a = curl("client", &url(lb_ip, 80))?;
            if a.contains("client=192.0.2.100:") {
                Ok(a)
            } else {
                Err(format!("source not preserved yet: {a}"))
            }
        },
    )
    .await
    .unwrap();
    assert!(
        answer.starts_with(&format!("pod={} ", pod.name_any())),
        "{answer}"
    );
    via(other_node);
    wait_for(
        &format!("{other_node} to drop {lb_ip} (no local endpoint)"),
        Duration::from_secs(30),
        || async {
            match curl("client", &url(lb_ip, 80)) {
                Ok(a) => Err(format!("still answered: {a}")),
                Err(_) => Ok(()),
            }
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn init_containers_run_first_and_crashing_or_unhealthy_containers_restart() {
    let cluster = Cluster::connect().await.expect("cluster");
    let ns = cluster.namespace("restarts").await.unwrap();
    cluster
        .apply_yaml(
            Some(ns.name()),
            r#"
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  nodeName: node-1
  terminationGracePeriodSeconds: 1
  initContainers:
    - name: init
      image: localhost/busybox:latest
      command: ["/bin/sh", "-c", "echo prepared > /tmp/mlb-e2e-work/marker"]
      volumeMounts: [{name: work, mountPath: /tmp/mlb-e2e-work}]
  containers:
    - name: main
      image: localhost/busybox:latest
      command: ["/bin/sh", "-c", "cat /tmp/mlb-e2e-work/marker; exit 3"]
      volumeMounts: [{name: work, mountPath: /tmp/mlb-e2e-work}]
  volumes: [{name: work, emptyDir: {}}]
---
apiVersion: v1
kind: Pod
metadata: {name: unhealthy}
spec:
  nodeName: node-1
  terminationGracePeriodSeconds: 1
  containers:
    - name: echo
      image: localhost/echo:latest
      args: ["--port", "18090"]
      ports: [{containerPort: 18090}]
      livenessProbe: {httpGet: {path: /no-such-page, port: 18090}, periodSeconds: 1, failureThreshold: 2}
---
apiVersion: v1
kind: Pod
metadata: {name: once}
spec:
  nodeName: node-2
  restartPolicy: Never
  containers:
    - name: main
      image: localhost/busybox:latest
      command: ["/bin/true"]
"#,
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns.name());
    let status = wait_for(
        "the crashing container to restart twice and back off",
        POD_TIMEOUT,
        || async {
            let pod = pods.get("crasher").await.map_err(|e| e.to_string())?;
            let status = pod.status.unwrap_or_default();
            let main = status.container_statuses.as_ref().and_then(|c| c.first());
            let restarts = main.map_or(0, |c| c.restart_count);
            // Between runs the kubelet backs off (a container without a readiness probe is
            // ready only while it runs).
            let backing_off = main
                .and_then(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
                .is_some_and(|r| r == "CrashLoopBackOff");
            if restarts >= 2 && backing_off {
                Ok(status)
            } else {
                Err(format!("{restarts} restarts, backing off: {backing_off}"))
            }
        },
    )
    .await
    .unwrap();
    let init = &status.init_container_statuses.as_ref().unwrap()[0];
    let done = init
        .state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .expect("init container terminated");
    assert_eq!(
        (done.exit_code, done.reason.as_deref()),
        (0, Some("Completed"))
    );
    let main = &status.container_statuses.as_ref().unwrap()[0];
    let last = main
        .last_state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .expect("last run terminated");
    assert_eq!(last.exit_code, 3);
    assert!(!main.ready);
    // The kubelet keeps the current and the previous run's logs.
    for previous in [false, true] {
        let mut args = vec!["-n", ns.name(), "logs", "crasher", "-c", "main"];
        if previous {
            args.push("--previous");
        }
        let log = cluster.kubectl(&args).unwrap();
        assert_eq!(log, "prepared\n", "every run saw the init container's file");
    }

    wait_for(
        "the failing liveness probe to restart the container",
        POD_TIMEOUT,
        || async {
            let pod = pods.get("unhealthy").await.map_err(|e| e.to_string())?;
            let restarts = pod
                .status
                .and_then(|s| s.container_statuses)
                .and_then(|c| c.first().map(|c| c.restart_count))
                .unwrap_or(0);
            if restarts >= 1 {
                Ok(())
            } else {
                Err(format!("{restarts} restarts"))
            }
        },
    )
    .await
    .unwrap();

    wait_for("the run-once pod to succeed", POD_TIMEOUT, || async {
        let pod = pods.get("once").await.map_err(|e| e.to_string())?;
        match pod.status.and_then(|s| s.phase) {
            Some(p) if p == "Succeeded" => Ok(()),
            other => Err(format!("phase {other:?}")),
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn pods_on_one_node_share_a_port_and_reach_each_other_and_themselves_through_the_service() {
    let cluster = Cluster::connect().await.expect("cluster");
    let ns = cluster.namespace("podnet").await.unwrap();
    let yaml = echo_yaml("echo", 2, "ClusterIP", 8086).replace(
        "      terminationGracePeriodSeconds: 5\n",
        "      terminationGracePeriodSeconds: 5\n      nodeSelector: {kubernetes.io/hostname: node-1}\n",
    );
    cluster.apply_yaml(Some(ns.name()), &yaml).await.unwrap();
    let pods = ready_pods(&cluster, ns.name(), "echo", 2).await;
    let names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
    let pid = container_pid(&pods[0], "echo").unwrap();
    let from = format!("the network namespace of {}", names[0]);

    let svc = service(&cluster, ns.name(), "echo").await;
    let cluster_ip = svc.spec.unwrap().cluster_ip.unwrap();
    let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
    wait_for(
        &format!("answers of both pods at {cluster_ip} from {from}"),
        Duration::from_secs(30),
        || async {
            let answer = curl_in(pid, &url(&cluster_ip, 80))?;
            let pod = answer
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_start_matches("pod=")
                .to_string();
            let mut seen = seen.borrow_mut();
            seen.insert(pod);
            if names.iter().all(|n| seen.contains(n)) {
                Ok(())
            } else {
                Err(format!("seen {seen:?}"))
            }
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_capability_the_namespace_pod_security_level_forbids_is_refused_at_admission() {
    let cluster = Cluster::connect().await.expect("cluster");
    let ns = cluster.namespace("psa").await.unwrap();
    cluster
        .kubectl(&[
            "label",
            "namespace",
            ns.name(),
            "pod-security.kubernetes.io/enforce=baseline",
        ])
        .unwrap();
    let pod = |cap: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: caps-{}}}\nspec:\n  containers:\n  - name: c\n    image: localhost/busybox:latest\n    command: [sleep, '3600']\n    securityContext: {{capabilities: {{add: [{cap}]}}}}\n",
            cap.to_lowercase().replace('_', "-")
        )
    };
    let refused = cluster
        .apply_yaml(Some(ns.name()), &pod("NET_ADMIN"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("violates PodSecurity \"baseline:latest\"")
            && refused.contains("non-default capabilities")
            && refused.contains("NET_ADMIN"),
        "{refused}"
    );
    // A capability baseline allows is admitted, and the process really has it (and only the
    // runtime's defaults besides).
    cluster
        .apply_yaml(Some(ns.name()), &pod("NET_BIND_SERVICE"))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns.name());
    let pod = wait_for("the admitted pod to run", POD_TIMEOUT, || async {
        let pod = pods
            .get("caps-net-bind-service")
            .await
            .map_err(|e| e.to_string())?;
        container_pid(&pod, "c")
            .map(|_| pod)
            .ok_or_else(|| "not running yet".to_string())
    })
    .await
    .unwrap();
    let pid = container_pid(&pod, "c").unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    let caps = u64::from_str_radix(eff, 16).unwrap();
    const NET_BIND_SERVICE: u64 = 1 << 10;
    const NET_ADMIN: u64 = 1 << 12;
    const SYS_ADMIN: u64 = 1 << 21;
    assert_eq!(caps & NET_BIND_SERVICE, NET_BIND_SERVICE, "CapEff {eff}");
    assert_eq!(caps & (NET_ADMIN | SYS_ADMIN), 0, "CapEff {eff}");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_restricted_non_root_pod_runs_with_its_uid_limits_and_read_only_root_in_its_own_cgroup() {
    let cluster = Cluster::connect().await.expect("cluster");
    let ns = cluster.namespace("restricted").await.unwrap();
    cluster
        .kubectl(&[
            "label",
            "namespace",
            ns.name(),
            "pod-security.kubernetes.io/enforce=restricted",
        ])
        .unwrap();
    cluster
        .apply_yaml(
            Some(ns.name()),
            r#"
apiVersion: v1
kind: Pod
metadata: {name: locked, labels: {app: locked}}
spec:
  nodeName: node-2
  terminationGracePeriodSeconds: 1
  securityContext:
    runAsNonRoot: true
    runAsUser: 4321
    runAsGroup: 4321
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: c
    image: localhost/busybox:latest
    command: [sh, -c, "echo started; exec sleep 3600"]
    resources: {limits: {memory: 48Mi, cpu: 200m}}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
"#,
        )
        .await
        .unwrap();
    let pod = ready_pods(&cluster, ns.name(), "locked", 1).await.remove(0);
    let pid = container_pid(&pod, "c").unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(field("Uid:"), "4321 4321 4321 4321");
    assert_eq!(field("Gid:"), "4321 4321 4321 4321");
    assert_eq!(field("CapEff:"), "0000000000000000");
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2", "a seccomp filter is in force");
    // Its own cgroup below node-2's cgroup root, with the memory limit (checked from the
    // machine, in the node's hierarchy).
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let memory = cgroups
        .lines()
        .find_map(|l| l.split_once(":memory:"))
        .map(|(_, p)| p.to_string())
        .unwrap();
    assert!(memory.starts_with("/mlb-node-2/kubepods/"), "{memory}");
    assert!(
        memory.contains(&pod.uid().unwrap().replace('-', "_"))
            || memory.contains(&pod.uid().unwrap()),
        "{memory}"
    );
    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory{memory}/memory.limit_in_bytes"
    ))
    .unwrap();
    assert_eq!(limit.trim(), (48u64 << 20).to_string());
    // The root filesystem is read-only; `kubectl exec` reaches the container through the
    // kubelet, as the container's user.
    let out = cluster
        .kubectl(&[
            "-n",
            ns.name(),
            "exec",
            "locked",
            "--",
            "sh",
            "-c",
            "id -u; touch /x 2>&1 || true",
        ])
        .unwrap();
    assert_eq!(out, "4321\ntouch: /x: Read-only file system\n");
    assert_eq!(
        cluster
            .kubectl(&["-n", ns.name(), "logs", "locked"])
            .unwrap(),
        "started\n"
    );
}
