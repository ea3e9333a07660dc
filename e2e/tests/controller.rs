//! End-to-end tests of metallb-controller on the local cluster, deployed by hand from
//! `e2e/fixtures/controller/controller.yaml` (two replicas, restricted Pod Security) with the
//! canonical `manifests/controller/rbac.yaml` and `webhook-configuration.yaml`: IP assignment,
//! sharing, dual stack, pool selection, pool deletion, hand-over of a one-address pool,
//! stability across restarts and leader failover, webhook rejections through `kubectl apply`,
//! the BGPPeer conversion webhook, certificate renewal, and the ConfigurationState.
//!
//! Isolation (see the fixture): MetalLB namespace `metallb-ctl-e2e`, loadBalancerClass
//! `e2e.metallb.io/controller`, webhook configuration `metallb-ctl-e2e-webhooks` limited to
//! namespaces labelled for it. Each test installs the controller and removes it when done
//! (also when it fails), leaving the CRDs.
//!
//! A MetalLB the operator deployed (hack/local-up.sh installs one) keeps running, except its
//! validating webhooks: they refuse every metallb.io object outside `metallb-system`, as
//! MetalLB's do, so each test pauses the operator ([`OperatorPause`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use metallb_api::v1beta1::{ConfigurationState, IPAddressPool};
use metallb_e2e::harness::{Cluster, OperatorPause, TestNamespace, pod_ready, wait_for};
use serde_json::{Value, json};

const NS: &str = "metallb-ctl-e2e";
const CLASS: &str = "e2e.metallb.io/controller";
const VWC: &str = "metallb-ctl-e2e-webhooks";
/// Namespaces with this label are validated by the test installation's webhooks.
const WEBHOOK_LABEL: &str = "e2e.metallb.io/controller-webhooks";
const SETTLE: Duration = Duration::from_secs(60);
const ROLLOUT: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A canonical manifest with the test installation's namespace and configuration name.
fn canonical(rel: &str) -> String {
    read(rel)
        .replace("metallb-system", NS)
        .replace("metallb-webhook-configuration", VWC)
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn to_yaml(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// The controller installed in `metallb-ctl-e2e`; removed when dropped.
struct Install {
    cluster: Cluster,
    /// The installed operator, paused while the test runs; restored after the cleanup.
    _operator: OperatorPause,
}

impl Install {
    async fn up(cluster: &Cluster) -> Self {
        let install = Self {
            cluster: cluster.clone(),
            _operator: OperatorPause::start(cluster)
                .await
                .expect("the operator pauses"),
        };
        // Services of an earlier test may still be there while their namespace terminates;
        // a fresh controller would give them addresses.
        let services: Api<Service> = Api::all(cluster.client());
        wait_for("no Service of the test class left", SETTLE, || async {
            let list = services
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            let left: Vec<String> = list
                .items
                .iter()
                .filter(|s| {
                    s.spec
                        .as_ref()
                        .and_then(|sp| sp.load_balancer_class.as_deref())
                        == Some(CLASS)
                })
                .map(|s| format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any()))
                .collect();
            left.is_empty().then_some(()).ok_or(format!("{left:?}"))
        })
        .await
        .unwrap();
        let crds = std::fs::read_dir(root().join("manifests/crd")).unwrap();
        let mut files: Vec<PathBuf> = crds.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            // The operator's own CRD is not needed here.
            if !name.starts_with("metallb.io_") || name == "metallb.io_metallbs.yaml" {
                continue;
            }
            cluster
                .apply_yaml(None, &std::fs::read_to_string(&f).unwrap())
                .await
                .unwrap_or_else(|e| panic!("applying {name}: {e}"));
        }
        cluster
            .apply_yaml(None, &read("e2e/fixtures/controller/controller.yaml"))
            .await
            .expect("the controller fixture applies");
        cluster
            .apply_yaml(None, &canonical("manifests/controller/rbac.yaml"))
            .await
            .expect("the RBAC applies");
        label_for_webhooks(cluster, NS).await;
        install.apply_webhooks().await;
        install.wait_ready().await;
        install
    }

    /// The webhook Service and configuration, limited to labelled namespaces.
    async fn apply_webhooks(&self) {
        let mut documents = docs(&canonical(
            "manifests/controller/webhook-configuration.yaml",
        ));
        for d in &mut documents {
            if d["kind"] == "ValidatingWebhookConfiguration" {
                for w in d["webhooks"].as_array_mut().unwrap() {
                    w["namespaceSelector"] = json!({"matchLabels": {WEBHOOK_LABEL: "on"}});
                }
            }
        }
        self.cluster
            .apply_yaml(None, &to_yaml(&documents))
            .await
            .expect("the webhook configuration applies");
    }

    /// Two ready replicas, a leader, and the CA bundle in every webhook.
    async fn wait_ready(&self) {
        let pods: Api<Pod> = Api::namespaced(self.cluster.client(), NS);
        wait_for("two ready controller replicas", ROLLOUT, || async {
            let list = pods
                .list(&ListParams::default().labels("component=controller"))
                .await
                .map_err(|e| e.to_string())?;
            let ready = list
                .items
                .iter()
                .filter(|p| pod_ready(p) && p.metadata.deletion_timestamp.is_none())
                .count();
            (ready == 2).then_some(()).ok_or(format!("{ready} ready"))
        })
        .await
        .unwrap();
        leader(&self.cluster).await;
        let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(self.cluster.client());
        wait_for("the CA bundle in every webhook", SETTLE, || async {
            let vwc = vwcs.get(VWC).await.map_err(|e| e.to_string())?;
            let missing = vwc
                .webhooks
                .iter()
                .flatten()
                .filter(|w| w.client_config.ca_bundle.is_none())
                .count();
            (missing == 0)
                .then_some(())
                .ok_or(format!("{missing} without"))
        })
        .await
        .unwrap();
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        // The webhook configuration first: with the controller gone it would refuse every
        // metallb.io change (failurePolicy Fail).
        let steps: Vec<Vec<String>> = vec![
            vec!["delete", "validatingwebhookconfiguration", VWC],
            vec!["-n", NS, "delete", "deployment", "controller"],
            vec![
                "-n",
                NS,
                "delete",
                "ipaddresspools,l2advertisements,bgpadvertisements,bgppeers.v1beta2.metallb.io,bfdprofiles,communities,configurationstates",
                "--all",
            ],
            vec![
                "-n",
                NS,
                "delete",
                "secret/metallb-webhook-cert",
                "secret/memberlist",
                "lease/metallb-controller",
                "service/metallb-webhook-service",
            ],
            vec![
                "-n",
                NS,
                "wait",
                "--for=delete",
                "pod",
                "-l",
                "component=controller",
                "--timeout=60s",
            ],
        ]
        .into_iter()
        .map(|s| s.into_iter().map(String::from).collect())
        .collect();
        for mut step in steps {
            if step.contains(&"delete".to_string()) {
                step.push("--ignore-not-found".into());
            }
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            if let Err(e) = self.cluster.kubectl(&args) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

async fn label_for_webhooks(cluster: &Cluster, ns: &str) {
    Api::<Namespace>::all(cluster.client())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {WEBHOOK_LABEL: "on"}}})),
        )
        .await
        .unwrap();
}

/// The Lease holder (a pod name), once there is one.
async fn leader(cluster: &Cluster) -> String {
    let leases: Api<Lease> = Api::namespaced(cluster.client(), NS);
    wait_for("a controller leader", SETTLE, || async {
        let lease = leases
            .get_opt("metallb-controller")
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no lease")?;
        lease
            .spec
            .and_then(|s| s.holder_identity)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| "no holder".to_string())
    })
    .await
    .unwrap()
}

/// An IPAddressPool in the test installation's namespace.
async fn pool(cluster: &Cluster, name: &str, addresses: &[&str], spec: Value) {
    let mut spec = spec;
    spec["addresses"] = json!(addresses);
    let obj = json!({
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    });
    cluster.apply_yaml(None, &obj.to_string()).await.unwrap();
}

async fn delete_pool(cluster: &Cluster, name: &str) {
    Api::<IPAddressPool>::namespaced(cluster.client(), NS)
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
}

/// A LoadBalancer Service of the test class, written as the user would.
#[derive(Clone)]
struct Svc {
    value: Value,
}

fn lb(name: &str) -> Svc {
    Svc {
        value: json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "annotations": {}, "labels": {}},
            "spec": {
                "type": "LoadBalancer",
                "loadBalancerClass": CLASS,
                "ports": [{"name": "p", "port": 80, "protocol": "TCP"}],
            },
        }),
    }
}

impl Svc {
    fn annotated(mut self, key: &str, value: &str) -> Self {
        self.value["metadata"]["annotations"][key] = json!(value);
        self
    }
    fn labelled(mut self, key: &str, value: &str) -> Self {
        self.value["metadata"]["labels"][key] = json!(value);
        self
    }
    fn sharing(self, key: &str) -> Self {
        self.annotated("metallb.io/allow-shared-ip", key)
    }
    fn port(mut self, protocol: &str, port: u16) -> Self {
        self.value["spec"]["ports"] = json!([{"name": "p", "port": port, "protocol": protocol}]);
        self
    }
    fn families(mut self, policy: &str, families: &[&str]) -> Self {
        self.value["spec"]["ipFamilyPolicy"] = json!(policy);
        self.value["spec"]["ipFamilies"] = json!(families);
        self
    }
    fn spec(mut self, key: &str, value: Value) -> Self {
        self.value["spec"][key] = value;
        self
    }
    async fn create(&self, cluster: &Cluster, ns: &str) {
        cluster
            .apply_yaml(Some(ns), &self.value.to_string())
            .await
            .unwrap();
    }
}

fn ingress(s: &Service) -> Vec<(String, Option<String>)> {
    s.status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|i| (i.ip.unwrap_or_default(), i.ip_mode))
        .collect()
}

fn ips(s: &Service) -> Vec<String> {
    ingress(s).into_iter().map(|(ip, _)| ip).collect()
}

/// Waits until Service `name` has exactly `expected` (in this order) as LoadBalancer IPs.
async fn wait_ips(cluster: &Cluster, ns: &str, name: &str, expected: &[&str]) -> Service {
    let api: Api<Service> = Api::namespaced(cluster.client(), ns);
    let what = format!("{ns}/{name} to have IPs {expected:?}");
    wait_for(&what, SETTLE, || async {
        let s = api.get(name).await.map_err(|e| e.to_string())?;
        if ips(&s) == expected {
            Ok(s)
        } else {
            Err(format!("has {:?}", ips(&s)))
        }
    })
    .await
    .unwrap()
}

/// Waits until Service `name` has no LoadBalancer IP and no pool annotation.
async fn wait_cleared(cluster: &Cluster, ns: &str, name: &str) {
    let api: Api<Service> = Api::namespaced(cluster.client(), ns);
    let what = format!("{ns}/{name} to have no IP and no pool annotation");
    wait_for(&what, SETTLE, || async {
        let s = api.get(name).await.map_err(|e| e.to_string())?;
        let pool = s
            .annotations()
            .get("metallb.io/ip-allocated-from-pool")
            .cloned();
        if ips(&s).is_empty() && pool.is_none() {
            Ok(())
        } else {
            Err(format!("has {:?} from {pool:?}", ips(&s)))
        }
    })
    .await
    .unwrap();
}

/// Waits until Service `name` has some LoadBalancer IP.
async fn wait_any_ip(cluster: &Cluster, ns: &str, name: &str) {
    let api: Api<Service> = Api::namespaced(cluster.client(), ns);
    wait_for(&format!("{ns}/{name} to have an IP"), SETTLE, || async {
        let s = api.get(name).await.map_err(|e| e.to_string())?;
        (!ips(&s).is_empty())
            .then_some(())
            .ok_or("no IP yet".to_string())
    })
    .await
    .unwrap();
}

async fn current_ips(cluster: &Cluster, ns: &str, name: &str) -> Vec<String> {
    ips(&Api::<Service>::namespaced(cluster.client(), ns)
        .get(name)
        .await
        .unwrap())
}

/// Waits for an Event on Service `name` with this reason whose note contains `text`.
async fn wait_event(cluster: &Cluster, ns: &str, name: &str, reason: &str, text: &str) {
    let api: Api<Event> = Api::namespaced(cluster.client(), ns);
    let what = format!("event {reason} ({text}) on {ns}/{name}");
    wait_for(&what, SETTLE, || async {
        let list = api
            .list(&ListParams::default().fields(&format!("regarding.name={name}")))
            .await
            .map_err(|e| e.to_string())?;
        let seen: Vec<(String, String)> = list
            .items
            .iter()
            .map(|e| {
                (
                    e.reason.clone().unwrap_or_default(),
                    e.note.clone().unwrap_or_default(),
                )
            })
            .collect();
        seen.iter()
            .any(|(r, n)| r == reason && n.contains(text))
            .then_some(())
            .ok_or(format!("{seen:?}"))
    })
    .await
    .unwrap();
}

async fn pool_status(cluster: &Cluster, name: &str) -> Option<(i64, i64, i64, i64)> {
    let p = Api::<IPAddressPool>::namespaced(cluster.client(), NS)
        .get(name)
        .await
        .ok()?;
    let s = p.status?;
    Some((
        s.assigned_ipv4?,
        s.available_ipv4?,
        s.assigned_ipv6?,
        s.available_ipv6?,
    ))
}

async fn wait_pool_status(cluster: &Cluster, name: &str, expected: (i64, i64, i64, i64)) {
    let what = format!(
        "pool {name} status (assigned v4, available v4, assigned v6, available v6) = {expected:?}"
    );
    wait_for(&what, SETTLE, || async {
        let got = pool_status(cluster, name).await;
        (got == Some(expected))
            .then_some(())
            .ok_or(format!("{got:?}"))
    })
    .await
    .unwrap();
}

/// Runs `kubectl <args>` with `stdin`; (exit ok, stdout, stderr).
fn kubectl_with(cluster: &Cluster, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut argv = vec![
        cluster.paths().kubectl().display().to_string(),
        "--kubeconfig".into(),
        cluster.kubeconfig().display().to_string(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let out = metallb_e2e::cmd::output(&argv, stdin).unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn kubectl_apply(cluster: &Cluster, yaml: &str) -> (bool, String, String) {
    kubectl_with(cluster, &["apply", "-f", "-"], Some(yaml))
}

/// The metrics text of the leading replica, fetched from its pod IP.
async fn leader_metrics(cluster: &Cluster) -> String {
    let name = leader(cluster).await;
    let pod = Api::<Pod>::namespaced(cluster.client(), NS)
        .get(&name)
        .await
        .unwrap();
    let ip = pod.status.and_then(|s| s.pod_ip).expect("a pod IP");
    let url = if ip.contains(':') {
        format!("http://[{ip}]:9120/metrics")
    } else {
        format!("http://{ip}:9120/metrics")
    };
    let out = metallb_e2e::cmd::output(&["curl", "-sS", "--max-time", "5", &url], None).unwrap();
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn test_namespace(cluster: &Cluster, prefix: &str) -> TestNamespace {
    let ns = cluster.namespace(prefix).await.unwrap();
    label_for_webhooks(cluster, ns.name()).await;
    ns
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_service_gets_the_lowest_free_ip_and_the_pool_status_counts_it() {
    let cluster = Cluster::connect().await.expect("cluster");
    let _install = Install::up(&cluster).await;
    let ns = test_namespace(&cluster, "ctl-assign").await;
    pool(&cluster, "lan", &["192.0.2.200-192.0.2.209"], json!({})).await;

    lb("a").create(&cluster, ns.name()).await;
    let a = wait_ips(&cluster, ns.name(), "a", &["192.0.2.200"]).await;
    lb("b").create(&cluster, ns.name()).await;
    wait_ips(&cluster, ns.name(), "b", &["192.0.2.201"]).await;
    assert_eq!(
        ingress(&a),
        vec![("192.0.2.200".to_string(), Some("VIP".to_string()))]
    );
    assert_eq!(
        a.annotations().get("metallb.io/ip-allocated-from-pool"),
        Some(&"lan".to_string())
    );
    wait_event(
        &cluster,
        ns.name(),
        "a",
        "IPAllocated",
        "Assigned IP [\"192.0.2.200\"]",
    )
    .await;
    wait_pool_status(&cluster, "lan", (2, 8, 0, 0)).await;

    // A status edited by hand is put back.
    Api::<IPAddressPool>::namespaced(cluster.client(), NS)
        .patch_status(
            "lan",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"assignedIPv4": 99}})),
        )
        .await
        .unwrap();
    wait_pool_status(&cluster, "lan", (2, 8, 0, 0)).await;

    let metrics = leader_metrics(&cluster).await;
    for line in [
        "metallb_allocator_addresses_total{pool=\"lan\"} 10",
        "metallb_allocator_addresses_in_use_total{pool=\"lan\"} 2",
        "metallb_allocator_ipv4_addresses_in_use_total{pool=\"lan\"} 2",
        "metallb_k8s_client_config_loaded_bool 1",
        "metallb_k8s_client_config_stale_bool 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }

    // Leaving type LoadBalancer releases the IP, which the next Service gets.
    Api::<Service>::namespaced(cluster.client(), ns.name())
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"type": "ClusterIP", "loadBalancerClass": null}})),
        )
        .await
        .unwrap();
    wait_cleared(&cluster, ns.name(), "b").await;
    lb("c").create(&cluster, ns.name()).await;
    wait_ips(&cluster, ns.name(), "c", &["192.0.2.201"]).await;

    // A Service of another class is not ours.
    let mut other = lb("other");
    other.value["spec"]["loadBalancerClass"] = json!("example.com/other");
    other.create(&cluster, ns.name()).await;
    // The controller handles Services in the order their events come: once a Service created
    // after it has its IP, `other` has been seen and left alone.
    lb("sentinel").create(&cluster, ns.name()).await;
    wait_any_ip(&cluster, ns.name(), "sentinel").await;
    assert_eq!(
        current_ips(&cluster, ns.name(), "other").await,
        Vec::<String>::new()
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn services_with_one_sharing_key_and_distinct_ports_share_an_ip() {
    let cluster = Cluster::connect().await.expect("cluster");
    let _install = Install::up(&cluster).await;
    let ns = test_namespace(&cluster, "ctl-share").await;
    pool(&cluster, "lan", &["192.0.2.200-192.0.2.209"], json!({})).await;

    lb("dns-tcp")
        .sharing("dns")
        .port("TCP", 53)
        .create(&cluster, ns.name())
        .await;
    lb("dns-udp")
        .sharing("dns")
        .port("UDP", 53)
        .create(&cluster, ns.name())
        .await;
    lb("web")
        .sharing("dns")
        .port("TCP", 80)
        .create(&cluster, ns.name())
        .await;
    wait_ips(&cluster, ns.name(), "dns-tcp", &["192.0.2.200"]).await;
    wait_ips(&cluster, ns.name(), "dns-udp", &["192.0.2.200"]).await;
    wait_ips(&cluster, ns.name(), "web", &["192.0.2.200"]).await;
    // The same port under the same key, and another key, get their own IPs.
    lb("clash")
        .sharing("dns")
        .port("TCP", 53)
        .create(&cluster, ns.name())
        .await;
    wait_ips(&cluster, ns.name(), "clash", &["192.0.2.201"]).await;
    lb("private")
        .port("TCP", 8080)
        .create(&cluster, ns.name())
        .await;
    wait_ips(&cluster, ns.name(), "private", &["192.0.2.202"]).await;
    wait_pool_status(&cluster, "lan", (3, 7, 0, 0)).await;

    // Asking for a private Service's IP with a sharing key is refused with the reason.
    lb("intruder")
        .sharing("dns")
        .port("TCP", 9000)
        .annotated("metallb.io/loadBalancerIPs", "192.0.2.202")
        .create(&cluster, ns.name())
        .await;
    wait_event(
        &cluster,
        ns.name(),
        "intruder",
        "AllocationFailed",
        "192.0.2.202 is in use by",
    )
    .await;
    assert_eq!(
        current_ips(&cluster, ns.name(), "intruder").await,
        Vec::<String>::new()
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn dual_stack_services_get_one_ip_of_each_family_primary_first() {
    let cluster = Cluster::connect().await.expect("cluster");
    let _install = Install::up(&cluster).await;
    let ns = test_namespace(&cluster, "ctl-dual").await;
    pool(
        &cluster,
        "dual",
        &[
            "192.0.2.210-192.0.2.219",
            "2001:db8:0:1::210-2001:db8:0:1::219",
        ],
        json!({}),
    )
    .await;

    lb("both")
        .families("RequireDualStack", &["IPv4", "IPv6"])
        .create(&cluster, ns.name())
        .await;
    wait_ips(
        &cluster,
        ns.name(),
        "both",
        &["192.0.2.210", "2001:db8:0:1::210"],
    )
    .await;
    lb("v6")
        .families("SingleStack", &["IPv6"])
        .create(&cluster, ns.name())
        .await;
    wait_ips(&cluster, ns.name(), "v6", &["2001:db8:0:1::211"]).await;
    lb("prefer")
        .families("PreferDualStack", &["IPv6", "IPv4"])
        .create(&cluster, ns.name())
        .await;
    wait_ips(
        &cluster,
        ns.name(),
        "prefer",
        &["2001:db8:0:1::212", "192.0.2.211"],
    )
    .await;
    lb("v4").create(&cluster, ns.name()).await;
    wait_ips(&cluster, ns.name(), "v4", &["192.0.2.212"]).await;
    wait_pool_status(&cluster, "dual", (3, 7, 3, 7)).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn pools_are_chosen_by_priority_namespace_selector_and_annotation() {
    let cluster = Cluster::connect().await.expect("cluster");
    let _install = Install::up(&cluster).await;
    let ns = test_namespace(&cluster, "ctl-pick").await;
    let blue = test_namespace(&cluster, "ctl-blue").await;
    pool(&cluster, "general", &["192.0.2.220-192.0.2.229"], json!({})).await;
    pool(
        &cluster,
        "front",
        &["192.0.2.230-192.0.2.231"],
        json!({"serviceAllocation": {"priority": 1, "serviceSelectors": [{"matchLabels": {"tier": "front"}}]}}),
    )
    .await;
    pool(
        &cluster,
        "blue-only",
        &["192.0.2.232/32"],
        json!({"serviceAllocation": {"namespaces": [blue.name()]}}),
    )
    .await;
    pool(
        &cluster,
        "manual",
        &["192.0.2.240-192.0.2.243"],
        json!({"autoAssign": false}),
    )
    .await;

    lb("plain").create(&cluster, ns.name()).await;
    wait_ips(&cluster, ns.name(), "plain", &["192.0.2.220"]).await;
    lb("front")
        .labelled("tier", "front")
        .create(&cluster, ns.name())
        .await;
    wait_ips(&cluster, ns.name(), "front", &["192.0.2.230"]).await;
    lb("blue").create(&cluster, blue.name()).await;
    wait_ips(&cluster, blue.name(), "blue", &["192.0.2.232"]).await;
    lb("annotated")
        .annotated("metallb.io/address-pool", "manual")
        .create(&cluster, ns.name())
        .await;
    let annotated = wait_ips(&cluster, ns.name(), "annotated", &["192.0.2.240"]).await;
    assert_eq!(
        annotated
            .annotations()
            .get("metallb.io/ip-allocated-from-pool"),
        Some(&"manual".to_string())
    );
    lb("by-spec")
        .spec("loadBalancerIP", json!("192.0.2.242"))
        .create(&cluster, ns.name())
        .await;
    wait_ips(&cluster, ns.name(), "by-spec", &["192.0.2.242"]).await;
    lb("by-annotation")
        .annotated("metallb.io/loadBalancerIPs", "192.0.2.225")
        .create(&cluster, ns.name())
        .await;
    wait_ips(&cluster, ns.name(), "by-annotation", &["192.0.2.225"]).await;
    lb("deprecated")
        .annotated("metallb.universe.tf/address-pool", "manual")
        .create(&cluster, ns.name())
        .await;
    wait_ips(&cluster, ns.name(), "deprecated", &["192.0.2.241"]).await;
    wait_event(
        &cluster,
        ns.name(),
        "deprecated",
        "deprecatedAnnotation",
        "metallb.universe.tf/address-pool is deprecated",
    )
    .await;
    lb("both-requests")
        .spec("loadBalancerIP", json!("192.0.2.243"))
        .annotated("metallb.io/loadBalancerIPs", "192.0.2.243")
        .create(&cluster, ns.name())
        .await;
    wait_event(
        &cluster,
        ns.name(),
        "both-requests",
        "LoadBalancerFailed",
        "service can not have both",
    )
    .await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn deleting_every_pool_clears_the_ips_and_a_new_pool_gives_new_ones() {
    let cluster = Cluster::connect().await.expect("cluster");
    let _install = Install::up(&cluster).await;
    let ns = test_namespace(&cluster, "ctl-pools").await;
    pool(&cluster, "old", &["192.0.2.200-192.0.2.201"], json!({})).await;
    lb("a").create(&cluster, ns.name()).await;
    wait_ips(&cluster, ns.name(), "a", &["192.0.2.200"]).await;

    delete_pool(&cluster, "old").await;
    wait_cleared(&cluster, ns.name(), "a").await;

    pool(&cluster, "new", &["192.0.2.205/32"], json!({})).await;
    let a = wait_ips(&cluster, ns.name(), "a", &["192.0.2.205"]).await;
    assert_eq!(
        a.annotations().get("metallb.io/ip-allocated-from-pool"),
        Some(&"new".to_string())
    );
    wait_pool_status(&cluster, "new", (1, 0, 0, 0)).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_one_address_pool_is_handed_over_when_its_holder_is_deleted() {
    let cluster = Cluster::connect().await.expect("cluster");
    let _install = Install::up(&cluster).await;
    let ns = test_namespace(&cluster, "ctl-one").await;
    pool(&cluster, "one", &["192.0.2.210/32"], json!({})).await;
    lb("holder").create(&cluster, ns.name()).await;
    wait_ips(&cluster, ns.name(), "holder", &["192.0.2.210"]).await;
    lb("waiter").create(&cluster, ns.name()).await;
    wait_event(
        &cluster,
        ns.name(),
        "waiter",
        "AllocationFailed",
        "Failed to allocate IP for",
    )
    .await;
    assert_eq!(
        current_ips(&cluster, ns.name(), "waiter").await,
        Vec::<String>::new()
    );

    Api::<Service>::namespaced(cluster.client(), ns.name())
        .delete("holder", &DeleteParams::default())
        .await
        .unwrap();
    wait_ips(&cluster, ns.name(), "waiter", &["192.0.2.210"]).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn ips_stay_put_across_leader_failover_restart_and_unrelated_pool_edits() {
    let cluster = Cluster::connect().await.expect("cluster");
    let install = Install::up(&cluster).await;
    let ns = test_namespace(&cluster, "ctl-stable").await;
    pool(&cluster, "first", &["192.0.2.200-192.0.2.202"], json!({})).await;
    pool(&cluster, "second", &["192.0.2.210-192.0.2.212"], json!({})).await;
    let names = ["s1", "s2", "s3", "s4", "s5"];
    for n in names {
        lb(n).create(&cluster, ns.name()).await;
    }
    // The first three fill "first"; the Service deleted next frees 192.0.2.201, so a controller
    // that re-allocated from scratch would move s3 or later ones.
    let mut before = BTreeMap::new();
    for (n, ip) in names.iter().zip([
        "192.0.2.200",
        "192.0.2.201",
        "192.0.2.202",
        "192.0.2.210",
        "192.0.2.211",
    ]) {
        wait_ips(&cluster, ns.name(), n, &[ip]).await;
        before.insert(n.to_string(), vec![ip.to_string()]);
    }
    Api::<Service>::namespaced(cluster.client(), ns.name())
        .delete("s2", &DeleteParams::default())
        .await
        .unwrap();
    before.remove("s2");
    let snapshot = || async {
        let mut now = BTreeMap::new();
        for n in before.keys() {
            now.insert(n.clone(), current_ips(&cluster, ns.name(), n).await);
        }
        now
    };

    // Leader failover: the leader pod goes away, the other replica takes over.
    let old = leader(&cluster).await;
    Api::<Pod>::namespaced(cluster.client(), NS)
        .delete(&old, &DeleteParams::default())
        .await
        .unwrap();
    wait_for("a new leader", SETTLE, || async {
        let l = leader(&cluster).await;
        (l != old).then_some(()).ok_or(format!("still {l}"))
    })
    .await
    .unwrap();
    lb("after-failover").create(&cluster, ns.name()).await;
    wait_ips(&cluster, ns.name(), "after-failover", &["192.0.2.201"]).await;
    assert_eq!(snapshot().await, before);

    // A pool that every new Service will prefer moves nobody.
    pool(
        &cluster,
        "0-preferred",
        &["192.0.2.220-192.0.2.221"],
        json!({"serviceAllocation": {"priority": 1}}),
    )
    .await;
    // Its status is written in the batch that applied it: every Service was converged by then.
    wait_pool_status(&cluster, "0-preferred", (0, 2, 0, 0)).await;
    assert_eq!(snapshot().await, before);

    // Every replica stops and starts again (the webhooks are down meanwhile: no edits).
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), NS);
    let scale = |n: u32| json!({"spec": {"replicas": n}});
    deployments
        .patch(
            "controller",
            &PatchParams::default(),
            &Patch::Merge(scale(0)),
        )
        .await
        .unwrap();
    cluster
        .kubectl(&[
            "-n",
            NS,
            "wait",
            "--for=delete",
            "pod",
            "-l",
            "component=controller",
            "--timeout=60s",
        ])
        .unwrap();
    deployments
        .patch(
            "controller",
            &PatchParams::default(),
            &Patch::Merge(scale(2)),
        )
        .await
        .unwrap();
    install.wait_ready().await;
    lb("after-restart").create(&cluster, ns.name()).await;
    wait_ips(&cluster, ns.name(), "after-restart", &["192.0.2.220"]).await;
    let mut expected = before.clone();
    expected.insert("after-failover".into(), vec!["192.0.2.201".into()]);
    let mut now = snapshot().await;
    now.insert(
        "after-failover".into(),
        current_ips(&cluster, ns.name(), "after-failover").await,
    );
    assert_eq!(now, expected);
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn kubectl_apply_of_an_invalid_object_is_refused_with_the_validator_message() {
    let cluster = Cluster::connect().await.expect("cluster");
    let _install = Install::up(&cluster).await;
    let elsewhere = test_namespace(&cluster, "ctl-hook").await;
    pool(&cluster, "lan", &["192.0.2.200/29"], json!({})).await;

    let overlapping = format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: bad, namespace: {NS}}}\nspec: {{addresses: [192.0.2.204/30]}}\n"
    );
    let (ok, _, err) = kubectl_apply(&cluster, &overlapping);
    assert!(!ok);
    assert!(
        err.contains(
            "admission webhook \"ipaddresspoolvalidationwebhook.metallb.io\" denied the request: IPAddressPool/bad: spec.addresses[0]: CIDR \"192.0.2.204/30\" in pool \"bad\" overlaps with already defined CIDR \"192.0.2.200/29\""
        ),
        "{err}"
    );

    let wrong_ns = format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: stray, namespace: {}}}\nspec: {{addresses: [198.51.100.0/24]}}\n",
        elsewhere.name()
    );
    let (ok, _, err) = kubectl_apply(&cluster, &wrong_ns);
    assert!(!ok);
    assert!(
        err.contains("resource must be created in the MetalLB namespace"),
        "{err}"
    );

    let duplicate = format!(
        "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: l2, namespace: {NS}}}\nspec: {{ipAddressPools: [lan, lan]}}\n"
    );
    let (ok, _, err) = kubectl_apply(&cluster, &duplicate);
    assert!(!ok);
    assert!(
        err.contains("L2Advertisement/l2: spec.ipAddressPools[1]"),
        "{err}"
    );

    // FRR backend: BFD profiles exist; one in use cannot be deleted.
    let bfd = format!(
        "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {{name: fast, namespace: {NS}}}\nspec: {{receiveInterval: 100}}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: router, namespace: {NS}}}\nspec: {{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, bfdProfile: fast, disableMP: true}}\n"
    );
    let (ok, out, err) = kubectl_apply(&cluster, &bfd);
    assert!(ok, "{out}{err}");
    assert!(
        err.contains(
            "Warning: disable mp is deprecated, please use dualStackAddressFamily instead"
        ),
        "{err}"
    );
    let (ok, _, err) = kubectl_with(&cluster, &["-n", NS, "delete", "bfdprofile", "fast"], None);
    assert!(!ok);
    assert!(
        err.contains("failed to delete BFDProfile fast, used by BGPPeer router"),
        "{err}"
    );
    let bad_timer = format!(
        "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: slow, namespace: {NS}}}\nspec: {{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.2, holdTime: 9s, keepaliveTime: 10s}}\n"
    );
    let (ok, _, err) = kubectl_apply(&cluster, &bad_timer);
    assert!(!ok);
    assert!(err.contains("BGPPeer/slow: spec.keepaliveTime"), "{err}");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_v1beta1_bgppeer_is_converted_by_the_webhook_both_ways() {
    let cluster = Cluster::connect().await.expect("cluster");
    let _install = Install::up(&cluster).await;
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    // Point the conversion webhook at the test installation, restore it afterwards.
    struct Restore(Cluster);
    impl Drop for Restore {
        fn drop(&mut self) {
            let patch = r#"{"spec":{"conversion":{"webhook":{"clientConfig":{"service":{"namespace":"metallb-system"}}}}}}"#;
            if let Err(e) = self.0.kubectl(&[
                "patch",
                "crd",
                "bgppeers.metallb.io",
                "--type=merge",
                "-p",
                patch,
            ]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
    let _restore = Restore(cluster.clone());
    crds.patch(
        "bgppeers.metallb.io",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"conversion": {"webhook": {"clientConfig": {"service": {"namespace": NS}}}}}})),
    )
    .await
    .unwrap();
    let ca: Secret = Api::namespaced(cluster.client(), NS)
        .get("metallb-webhook-cert")
        .await
        .unwrap();
    let bundle = ca.data.unwrap()["ca.crt"].0.clone();
    wait_for(
        "the CA bundle in the BGPPeer conversion webhook",
        SETTLE,
        || async {
            let crd = crds
                .get("bgppeers.metallb.io")
                .await
                .map_err(|e| e.to_string())?;
            let got = crd
                .spec
                .conversion
                .and_then(|c| c.webhook)
                .and_then(|w| w.client_config)
                .and_then(|c| c.ca_bundle)
                .map(|b| b.0);
            (got.as_deref() == Some(bundle.as_slice()))
                .then_some(())
                .ok_or("not injected yet".to_string())
        },
    )
    .await
    .unwrap();

    let old = format!(
        "apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: legacy, namespace: {NS}}}\nspec: {{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, nodeSelectors: [{{matchLabels: {{kubernetes.io/hostname: node-1}}}}]}}\n"
    );
    // The API server may still use a connection set up before the bundle arrived: retry.
    wait_for("a v1beta1 BGPPeer to be stored", SETTLE, || async {
        let (ok, out, err) = kubectl_apply(&cluster, &old);
        ok.then_some(()).ok_or(format!("{out}{err}"))
    })
    .await
    .unwrap();
    let (ok, v2, err) = kubectl_with(
        &cluster,
        &[
            "-n",
            NS,
            "get",
            "bgppeers.v1beta2.metallb.io",
            "legacy",
            "-o",
            "json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let v2: Value = serde_json::from_str(&v2).unwrap();
    assert_eq!(v2["apiVersion"], "metallb.io/v1beta2");
    assert_eq!(
        v2["spec"]["nodeSelectors"],
        json!([{"matchLabels": {"kubernetes.io/hostname": "node-1"}}])
    );
    let (ok, v1, err) = kubectl_with(
        &cluster,
        &[
            "-n",
            NS,
            "get",
            "bgppeers.v1beta1.metallb.io",
            "legacy",
            "-o",
            "json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let v1: Value = serde_json::from_str(&v1).unwrap();
    assert_eq!(v1["apiVersion"], "metallb.io/v1beta1");
    assert_eq!(v1["spec"]["peerAddress"], "192.0.2.1");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn the_serving_certificate_is_renewed_without_a_restart_and_stays_trusted() {
    let cluster = Cluster::connect().await.expect("cluster");
    let _install = Install::up(&cluster).await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), NS);
    let cert = |s: Secret| {
        s.data
            .unwrap_or_default()
            .get("tls.crt")
            .map(|b| b.0.clone())
    };
    let first = cert(secrets.get("metallb-webhook-cert").await.unwrap());
    let pods: Api<Pod> = Api::namespaced(cluster.client(), NS);
    let restarts = || async {
        pods.list(&ListParams::default().labels("component=controller"))
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| {
                let s = p.status.clone().unwrap_or_default();
                let n: i32 = s
                    .container_statuses
                    .unwrap_or_default()
                    .iter()
                    .map(|c| c.restart_count)
                    .sum();
                (p.name_any(), n)
            })
            .collect::<BTreeMap<_, _>>()
    };
    let before = restarts().await;
    // Valid for 60 s, renewed with a third left: within about 45 s.
    wait_for(
        "a renewed serving certificate",
        Duration::from_secs(90),
        || async {
            let now = cert(
                secrets
                    .get("metallb-webhook-cert")
                    .await
                    .map_err(|e| e.to_string())?,
            );
            (now != first)
                .then_some(())
                .ok_or("not renewed yet".to_string())
        },
    )
    .await
    .unwrap();
    // The renewed certificate is served and trusted: the webhook still answers (the replicas
    // pick the new Secret up within seconds).
    let overlapping = format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: a, namespace: {NS}}}\nspec: {{addresses: [192.0.2.200/29]}}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: b, namespace: {NS}}}\nspec: {{addresses: [192.0.2.200/30]}}\n"
    );
    wait_for(
        "the webhook to refuse an overlapping pool",
        SETTLE,
        || async {
            let (ok, _, err) = kubectl_apply(&cluster, &overlapping);
            if !ok && err.contains("denied the request: IPAddressPool/b: spec.addresses[0]") {
                Ok(())
            } else {
                Err(format!("applied: {ok}, {err}"))
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(restarts().await, before, "no replica restarted");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn an_invalid_configuration_is_reported_and_the_previous_one_stays_in_force() {
    let cluster = Cluster::connect().await.expect("cluster");
    let install = Install::up(&cluster).await;
    let ns = test_namespace(&cluster, "ctl-state").await;
    let states: Api<ConfigurationState> = Api::namespaced(cluster.client(), NS);
    let wait_state = |result: &'static str, summary: &'static str| {
        let states = states.clone();
        async move {
            wait_for(
                &format!("ConfigurationState controller {result}"),
                SETTLE,
                || async {
                    let s = states
                        .get_opt("controller")
                        .await
                        .map_err(|e| e.to_string())?
                        .and_then(|s| s.status)
                        .ok_or("no status")?;
                    let ok = s.result.as_deref() == Some(result)
                        && s.error_summary.as_deref().unwrap_or("").contains(summary);
                    ok.then_some(()).ok_or(format!("{s:?}"))
                },
            )
            .await
            .unwrap();
        }
    };
    pool(&cluster, "lan", &["192.0.2.200/30"], json!({})).await;
    lb("a").create(&cluster, ns.name()).await;
    wait_ips(&cluster, ns.name(), "a", &["192.0.2.200"]).await;
    wait_state("Valid", "").await;
    let state = states.get("controller").await.unwrap();
    let condition = state.status.unwrap().conditions.unwrap()[0].clone();
    assert_eq!(
        (
            condition.type_.as_str(),
            condition.status.as_str(),
            condition.reason.as_str()
        ),
        ("poolReconcilerValid", "True", "Reconciled")
    );
    assert_eq!(
        state
            .metadata
            .labels
            .unwrap()
            .get("metallb.io/component-type"),
        Some(&"controller".to_string())
    );

    // Deleted, it comes back.
    states
        .delete("controller", &DeleteParams::default())
        .await
        .unwrap();
    wait_state("Valid", "").await;

    // The memberlist key for the speakers, owned by the Deployment.
    let ml: Secret = Api::namespaced(cluster.client(), NS)
        .get("memberlist")
        .await
        .unwrap();
    assert_eq!(ml.data.unwrap()["secretkey"].0.len(), 22);
    assert_eq!(ml.metadata.owner_references.unwrap()[0].name, "controller");

    // Without the webhook, an overlapping pool gets in: the state says why, nothing moves.
    cluster
        .kubectl(&["delete", "validatingwebhookconfiguration", VWC])
        .unwrap();
    pool(&cluster, "overlap", &["192.0.2.202/31"], json!({})).await;
    wait_state(
        "Invalid",
        "IPAddressPool/overlap: spec.addresses[0]: CIDR \"192.0.2.202/31\"",
    )
    .await;
    let metrics = leader_metrics(&cluster).await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "metallb_k8s_client_config_stale_bool 1"),
        "{metrics}"
    );
    lb("b").create(&cluster, ns.name()).await;
    wait_ips(&cluster, ns.name(), "b", &["192.0.2.201"]).await;
    assert_eq!(current_ips(&cluster, ns.name(), "a").await, ["192.0.2.200"]);

    delete_pool(&cluster, "overlap").await;
    wait_state("Valid", "").await;
    install.apply_webhooks().await;
    install.wait_ready().await;
}
