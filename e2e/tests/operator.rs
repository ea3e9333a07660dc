//! End-to-end tests of the operator on the local cluster: installed with `kubectl apply -k
//! manifests/operator` (hack/local-up.sh does it), it deploys the controller and the speakers
//! from the MetalLB resource, keeps them as rendered, reports honest conditions, and removes
//! everything when the resource goes. Each test leaves MetalLB deployed (native backend) for the
//! next one.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use kube::{Api, ResourceExt};
use metallb_api::v1beta1::MetalLB;
use metallb_e2e::harness::{Cluster, container_pid, pod_ready, process_alive, wait_for};

mod common;
use common::condition;

const NS: &str = common::OPERATOR_NS;
const ROLLOUT: Duration = Duration::from_secs(180);

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Waits until MetalLB `name` has condition `type_` = `status`; returns the resource.
async fn wait_condition(
    cluster: &Cluster,
    name: &str,
    type_: &str,
    status: &str,
    timeout: Duration,
) -> MetalLB {
    common::wait_condition(cluster, name, type_, timeout, |c| c.status == status).await
}

/// Applies the minimal MetalLB resource (native backend) and waits until it is Available, the
/// state every test starts from and leaves behind.
async fn metallb_available(cluster: &Cluster) -> MetalLB {
    let sample = std::fs::read_to_string(root().join("manifests/samples/metallb.yaml")).unwrap();
    cluster
        .apply_yaml(Some(NS), &sample)
        .await
        .expect("the sample MetalLB applies");
    reset_spec(cluster).await;
    wait_condition(cluster, "metallb", "Available", "True", ROLLOUT).await
}

/// Puts the spec back to the sample's (empty) one.
async fn reset_spec(cluster: &Cluster) {
    let api: Api<MetalLB> = Api::namespaced(cluster.client(), NS);
    api.patch(
        "metallb",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": null})),
    )
    .await
    .expect("the MetalLB spec resets");
}

async fn patch_spec(cluster: &Cluster, spec: serde_json::Value) {
    let api: Api<MetalLB> = Api::namespaced(cluster.client(), NS);
    api.patch(
        "metallb",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "spec": spec })),
    )
    .await
    .expect("the MetalLB spec patches");
}

async fn speaker_pods(cluster: &Cluster) -> Vec<Pod> {
    cluster
        .pods(NS, "app=metallb,component=speaker")
        .await
        .expect("pods list")
}

fn process_args(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// One object `metallb-operator render` says the operator deploys.
#[derive(Debug, Clone)]
struct Rendered {
    api_version: String,
    kind: String,
    name: String,
    namespace: Option<String>,
}

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// What `metallb-operator render` says a sample deploys (into `namespace`).
fn rendered(sample: &str, namespace: &str) -> Vec<Rendered> {
    let operator = root().join("target/debug/metallb-operator");
    let yaml = metallb_e2e::cmd::stdout(&[
        operator.display().to_string(),
        "render".into(),
        "-n".into(),
        namespace.into(),
        "-f".into(),
        root()
            .join("manifests/samples")
            .join(sample)
            .display()
            .to_string(),
    ])
    .expect("render works");
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&yaml).expect("render prints YAML");
    docs.into_iter()
        .filter(|d| !d.is_null())
        .map(|d| Rendered {
            api_version: d["apiVersion"].as_str().unwrap().into(),
            kind: d["kind"].as_str().unwrap().into(),
            name: d["metadata"]["name"].as_str().unwrap().into(),
            namespace: d["metadata"]["namespace"].as_str().map(String::from),
        })
        .collect()
}

/// The rendered objects that exist in the cluster, looked up by kind and name.
async fn existing(cluster: &Cluster, objects: &[Rendered]) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    for o in objects {
        let (group, version) = o
            .api_version
            .split_once('/')
            .unwrap_or(("", o.api_version.as_str()));
        let gvk = GroupVersionKind::gvk(group, version, &o.kind);
        let (resource, caps) = kube::discovery::pinned_kind(&cluster.client(), &gvk)
            .await
            .map_err(|e| e.to_string())?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                cluster.client(),
                o.namespace.as_deref().unwrap_or(NS),
                &resource,
            ),
            Scope::Cluster => Api::all_with(cluster.client(), &resource),
        };
        if let Some(live) = api.get_opt(&o.name).await.map_err(|e| e.to_string())?
            && live.metadata.deletion_timestamp.is_none()
        {
            found.push(o.to_string());
        }
    }
    Ok(found)
}

fn everything(objects: &[Rendered]) -> Vec<String> {
    objects.iter().map(ToString::to_string).collect()
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn installing_with_kubectl_apply_k_and_a_cr_runs_the_controller_and_a_speaker_per_node() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    let out = cluster
        .kubectl(&[
            "apply",
            "-k",
            &root().join("manifests/operator").display().to_string(),
        ])
        .expect("kubectl apply -k works");
    assert!(out.contains("deployment.apps/metallb-operator"), "{out}");
    let cr = metallb_available(&cluster).await;
    let objects = rendered("metallb.yaml", NS);
    assert_eq!(
        existing(&cluster, &objects).await.unwrap(),
        everything(&objects),
        "everything `metallb-operator render` lists exists"
    );
    assert_eq!(
        condition(&cr, "Degraded").map(|c| c.status),
        Some("False".into())
    );
    assert_eq!(
        condition(&cr, "Upgradeable").map(|c| c.status),
        Some("True".into())
    );
    assert_eq!(
        cr.status.as_ref().and_then(|s| s.observed_generation),
        cr.metadata.generation
    );

    let nodes = cluster
        .kubectl(&["get", "nodes", "-o", "name"])
        .unwrap()
        .lines()
        .count();
    let speakers = speaker_pods(&cluster).await;
    assert_eq!(speakers.len(), nodes, "one speaker per node");
    for p in speakers.iter().chain(
        cluster
            .pods(NS, "app=metallb,component=controller")
            .await
            .unwrap()
            .iter(),
    ) {
        assert!(pod_ready(p), "{} is ready", p.name_any());
        let container = p.spec.as_ref().unwrap().containers[0].name.clone();
        let pid = container_pid(p, &container)
            .unwrap_or_else(|| panic!("{} runs as a process", p.name_any()));
        assert!(process_alive(pid));
    }
    let ns: Namespace = Api::all(cluster.client()).get(NS).await.unwrap();
    let labels = ns.metadata.labels.unwrap_or_default();
    for mode in ["enforce", "audit", "warn"] {
        assert_eq!(
            labels
                .get(&format!("pod-security.kubernetes.io/{mode}"))
                .map(String::as_str),
            Some("privileged")
        );
    }
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn changing_the_log_level_rolls_the_pods_with_the_new_flag() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    metallb_available(&cluster).await;
    patch_spec(&cluster, serde_json::json!({"logLevel": "debug"})).await;
    wait_for(
        "every speaker and the controller to run with --log-level=debug",
        ROLLOUT,
        || async {
            let pods = cluster
                .pods(NS, "app=metallb")
                .await
                .map_err(|e| e.to_string())?;
            let mut pending = Vec::new();
            for p in &pods {
                let container = &p.spec.as_ref().unwrap().containers[0].name;
                let running_debug = container_pid(p, container)
                    .is_some_and(|pid| process_args(pid).iter().any(|a| a == "--log-level=debug"));
                if !(running_debug && pod_ready(p)) {
                    pending.push(p.name_any());
                }
            }
            if pending.is_empty() && !pods.is_empty() {
                Ok(())
            } else {
                Err(format!("not yet: {pending:?}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    wait_condition(&cluster, "metallb", "Available", "True", ROLLOUT).await;
    reset_spec(&cluster).await;
    wait_condition(&cluster, "metallb", "Available", "True", ROLLOUT).await;
}

/// A field removed from the MetalLB resource is removed from what the operator rendered from it:
/// the live DaemonSet still holding the old selector "contains" the new, smaller one, which is
/// why the operator compares the digest of what it applies as well.
#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_node_selector_removed_from_the_resource_leaves_the_speakers() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    metallb_available(&cluster).await;
    let daemonsets: Api<DaemonSet> = Api::namespaced(cluster.client(), NS);
    let speakers_on = |nodes: &'static [&'static str]| {
        let cluster = &cluster;
        let daemonsets = &daemonsets;
        async move {
            let ds = daemonsets.get("speaker").await.map_err(|e| e.to_string())?;
            let selector = ds
                .spec
                .and_then(|s| s.template.spec)
                .and_then(|s| s.node_selector)
                .unwrap_or_default();
            let pods = speaker_pods(cluster).await;
            let mut on: Vec<String> = pods
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none() && pod_ready(p))
                .filter_map(|p| p.spec.as_ref()?.node_name.clone())
                .collect();
            on.sort();
            if on == nodes && pods.len() == nodes.len() {
                Ok(selector)
            } else {
                Err(format!("speakers ready on {on:?} (selector {selector:?})"))
            }
        }
    };
    patch_spec(
        &cluster,
        serde_json::json!({"nodeSelector": {"kubernetes.io/hostname": "node-1"}}),
    )
    .await;
    let selector = wait_for("a speaker on node-1 only", ROLLOUT, || {
        speakers_on(&["node-1"])
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        selector.get("kubernetes.io/hostname").map(String::as_str),
        Some("node-1")
    );
    reset_spec(&cluster).await;
    let selector = wait_for("a speaker on every node again", ROLLOUT, || {
        speakers_on(&["node-1", "node-2", "node-3"])
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !selector.contains_key("kubernetes.io/hostname"),
        "{selector:?}"
    );
    wait_condition(&cluster, "metallb", "Available", "True", ROLLOUT).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn switching_native_to_frr_and_back_adds_and_removes_the_frr_parts() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    metallb_available(&cluster).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client(), NS);
    let daemonsets: Api<DaemonSet> = Api::namespaced(cluster.client(), NS);
    let containers = |ds: DaemonSet| -> Vec<String> {
        ds.spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers
            .into_iter()
            .map(|c| c.name)
            .collect()
    };
    assert!(configmaps.get_opt("frr-startup").await.unwrap().is_none());

    patch_spec(&cluster, serde_json::json!({"bgpBackend": "frr"})).await;
    wait_for("the FRR sidecars and their ConfigMap", ROLLOUT, || async {
        let ds = daemonsets.get("speaker").await.map_err(|e| e.to_string())?;
        let cm = configmaps
            .get_opt("frr-startup")
            .await
            .map_err(|e| e.to_string())?;
        let names = containers(ds);
        (cm.is_some() && names == ["speaker", "frr", "reloader"])
            .then_some(())
            .ok_or(format!("{names:?}, configmap {}", cm.is_some()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    reset_spec(&cluster).await;
    wait_for("the FRR parts to be removed", ROLLOUT, || async {
        let ds = daemonsets.get("speaker").await.map_err(|e| e.to_string())?;
        let cm = configmaps
            .get_opt("frr-startup")
            .await
            .map_err(|e| e.to_string())?;
        let names = containers(ds);
        (cm.is_none() && names == ["speaker"])
            .then_some(())
            .ok_or(format!("{names:?}, configmap {}", cm.is_some()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    wait_condition(&cluster, "metallb", "Available", "True", ROLLOUT).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_second_metallb_resource_is_degraded_with_the_reason() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    metallb_available(&cluster).await;
    cluster
        .apply_yaml(
            Some(NS),
            "apiVersion: metallb.io/v1beta1\nkind: MetalLB\nmetadata: {name: another}\n",
        )
        .await
        .unwrap();
    let cr = wait_condition(
        &cluster,
        "another",
        "Degraded",
        "True",
        Duration::from_secs(30),
    )
    .await;
    let degraded = condition(&cr, "Degraded").unwrap();
    let (reason, message) = (degraded.reason, degraded.message);
    assert_eq!(reason, "IncorrectMetalLBResourceName");
    assert!(
        message.contains("only the MetalLB resource named \"metallb\""),
        "{message}"
    );
    let api: Api<MetalLB> = Api::namespaced(cluster.client(), NS);
    api.delete("another", &DeleteParams::default())
        .await
        .unwrap();
    // The honoured one is untouched.
    wait_condition(
        &cluster,
        "metallb",
        "Available",
        "True",
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn an_invalid_metallb_resource_is_rejected_at_admission() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    let dir = std::env::temp_dir().join(format!("mlb-e2e-invalid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (spec, want) in [
        (
            "bgpBackend: frr-k8s",
            "invalid BGP Backend, must be one of native (the default), frr",
        ),
        ("logLevel: chatty", "Unsupported value: \"chatty\""),
        (
            "speakerTolerations: [{key: a, operator: Exists, effect: NoSchedule, tolerationSeconds: 5}]",
            "SpeakerToleration effect must be NoExecute when tolerationSeconds is set: effect is \"NoSchedule\" with tolerationSeconds 5",
        ),
    ] {
        let file = dir.join("invalid.yaml");
        std::fs::write(&file, format!("apiVersion: metallb.io/v1beta1\nkind: MetalLB\nmetadata: {{name: invalid, namespace: {NS}}}\nspec: {{{spec}}}\n")).unwrap();
        let err = cluster
            .kubectl(&["apply", "-f", &file.display().to_string()])
            .expect_err("kubectl apply fails");
        let text = err.to_string();
        assert!(text.contains(want), "{spec}: {text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn hand_edits_are_reverted() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    metallb_available(&cluster).await;
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    cluster
        .kubectl(&[
            "label",
            "namespace",
            NS,
            "pod-security.kubernetes.io/enforce-",
        ])
        .unwrap();
    wait_for(
        "the enforce label to be restored",
        Duration::from_secs(30),
        || async {
            let ns = namespaces.get(NS).await.map_err(|e| e.to_string())?;
            let labels = ns.metadata.labels.unwrap_or_default();
            (labels
                .get("pod-security.kubernetes.io/enforce")
                .map(String::as_str)
                == Some("privileged"))
            .then_some(())
            .ok_or(format!("{labels:?}"))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    let daemonsets: Api<DaemonSet> = Api::namespaced(cluster.client(), NS);
    let before = daemonsets.get("speaker").await.unwrap().uid();
    daemonsets
        .delete("speaker", &DeleteParams::foreground())
        .await
        .unwrap();
    wait_for(
        "the speaker DaemonSet to come back",
        Duration::from_secs(60),
        || async {
            match daemonsets
                .get_opt("speaker")
                .await
                .map_err(|e| e.to_string())?
            {
                Some(ds) if ds.uid() != before && ds.metadata.deletion_timestamp.is_none() => {
                    Ok(())
                }
                other => Err(format!("uid {:?}", other.map(|d| d.uid()))),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), NS);
    deployments
        .patch("controller", &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 99}}}})))
        .await
        .unwrap();
    wait_for(
        "the controller Deployment edit to be reverted",
        Duration::from_secs(30),
        || async {
            let d = deployments
                .get("controller")
                .await
                .map_err(|e| e.to_string())?;
            let grace = d
                .spec
                .unwrap()
                .template
                .spec
                .unwrap()
                .termination_grace_period_seconds;
            (grace == Some(10))
                .then_some(())
                .ok_or(format!("{grace:?}"))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    wait_condition(&cluster, "metallb", "Available", "True", ROLLOUT).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn deleting_the_resource_removes_everything_it_created() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    let before = metallb_available(&cluster).await;
    let objects = rendered("metallb.yaml", NS);
    assert_eq!(
        existing(&cluster, &objects).await.unwrap(),
        everything(&objects)
    );
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), NS);
    assert!(
        secrets.get_opt("memberlist").await.unwrap().is_some(),
        "the controller created the speakers' memberlist key"
    );
    let pids: Vec<u32> = cluster
        .pods(NS, "app=metallb")
        .await
        .unwrap()
        .iter()
        .filter_map(|p| container_pid(p, &p.spec.as_ref().unwrap().containers[0].name))
        .collect();
    assert!(!pids.is_empty());
    let api: Api<MetalLB> = Api::namespaced(cluster.client(), NS);
    api.delete("metallb", &DeleteParams::default())
        .await
        .unwrap();
    // Looked up by kind and name, not by the labels the operator's own cleanup selects on: an
    // object that lost its labels would be missed by both.
    wait_for(
        "the MetalLB resource and everything it owned to go",
        ROLLOUT,
        || async {
            let mut left = existing(&cluster, &objects).await?;
            if api
                .get_opt("metallb")
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                left.push("MetalLB/metallb".to_string());
            }
            if secrets
                .get_opt("memberlist")
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                left.push("Secret/memberlist".to_string());
            }
            left.extend(
                pids.iter()
                    .filter(|p| process_alive(**p))
                    .map(|p| format!("process {p}")),
            );
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("still there: {left:?}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let ns: Namespace = Api::all(cluster.client()).get(NS).await.unwrap();
    let labels: BTreeMap<String, String> = ns.metadata.labels.unwrap_or_default();
    assert!(
        !labels.contains_key("pod-security.kubernetes.io/enforce"),
        "the operator's labels are released: {labels:?}"
    );
    let after = metallb_available(&cluster).await;
    assert_ne!(after.uid(), before.uid(), "a new resource, deployed again");
    assert_eq!(
        existing(&cluster, &objects).await.unwrap(),
        everything(&objects)
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn the_status_reports_the_operators_version_and_the_version_each_component_runs() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    let cr = metallb_available(&cluster).await;
    let nodes = cluster
        .kubectl(&["get", "nodes", "-o", "name"])
        .unwrap()
        .lines()
        .count() as i32;
    let version = env!("CARGO_PKG_VERSION");
    let status = cr.status.unwrap();
    assert_eq!(status.version.as_deref(), Some(version));
    let components = serde_json::to_value(status.components.unwrap()).unwrap();
    assert_eq!(
        components,
        serde_json::json!([
            {"name": "controller", "version": version, "podsByVersion": {version: 1}},
            {"name": "speaker", "version": version, "podsByVersion": {version: nodes}},
        ])
    );
    assert_eq!(status.rollout, None);
    let printed = cluster
        .kubectl(&[
            "-n",
            NS,
            "get",
            "metallb",
            "metallb",
            "-o",
            "jsonpath={.status.version}",
        ])
        .unwrap();
    assert_eq!(printed, version);
}

/// Sets (or, with `None`, removes) environment variables of the operator's Deployment and waits
/// until the new operator pod is the only one.
async fn operator_env(cluster: &Cluster, vars: &[(&str, Option<&str>)]) {
    let mut args = vec!["-n", NS, "set", "env", "deployment/metallb-operator"];
    let owned: Vec<String> = vars
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => format!("{k}-"),
        })
        .collect();
    args.extend(owned.iter().map(String::as_str));
    cluster.kubectl(&args).expect("kubectl set env works");
    cluster
        .kubectl(&[
            "-n",
            NS,
            "rollout",
            "status",
            "deployment/metallb-operator",
            "--timeout=180s",
        ])
        .expect("the operator rolls out");
}

fn speaker_image(ds: &DaemonSet) -> String {
    ds.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_controller_that_cannot_start_stops_the_rollout_before_the_speakers() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    metallb_available(&cluster).await;
    let daemonsets: Api<DaemonSet> = Api::namespaced(cluster.client(), NS);
    let speakers_before = speaker_image(&daemonsets.get("speaker").await.unwrap());
    // A new release whose controller image cannot be pulled: the test cluster maps no program
    // to it (ErrImagePull), while the new speaker image would run.
    operator_env(
        &cluster,
        &[
            (
                "CONTROLLER_IMAGE",
                Some("quay.io/metallb-rs/metallb-controller-broken:v9.9.9"),
            ),
            (
                "SPEAKER_IMAGE",
                Some("quay.io/metallb-rs/metallb-speaker:v9.9.9"),
            ),
            ("UPGRADE_STEP_TIMEOUT", Some("20s")),
        ],
    )
    .await;
    let cr = common::wait_condition(&cluster, "metallb", "Degraded", ROLLOUT, |c| {
        c.status == "True" && c.reason == "ControllerRolloutFailed"
    })
    .await;
    let degraded = condition(&cr, "Degraded").unwrap();
    assert!(
        degraded
            .message
            .contains("did not become healthy within 20s")
            && degraded.message.contains("ErrImagePull")
            && degraded
                .message
                .contains("the speakers stay on their version"),
        "{}",
        degraded.message
    );
    assert_eq!(
        condition(&cr, "Progressing").map(|c| (c.status, c.reason)),
        Some(("False".into(), "ControllerRolloutFailed".into()))
    );
    assert_eq!(
        cr.status
            .as_ref()
            .unwrap()
            .rollout
            .as_ref()
            .map(|r| r.step.as_str()),
        Some("Controller")
    );
    assert_eq!(
        speaker_image(&daemonsets.get("speaker").await.unwrap()),
        speakers_before,
        "the speakers were not changed"
    );
    for p in speaker_pods(&cluster).await {
        assert!(pod_ready(&p), "{} still runs", p.name_any());
        assert_eq!(
            p.spec.as_ref().unwrap().containers[0].image.as_deref(),
            Some(speakers_before.as_str())
        );
    }
    // Back to this release: the controller returns to its old template, nothing is left
    // Degraded.
    operator_env(
        &cluster,
        &[
            ("CONTROLLER_IMAGE", None),
            ("SPEAKER_IMAGE", None),
            ("UPGRADE_STEP_TIMEOUT", None),
        ],
    )
    .await;
    common::wait_condition(&cluster, "metallb", "Degraded", ROLLOUT, |c| {
        c.status == "False"
    })
    .await;
    wait_condition(&cluster, "metallb", "Available", "True", ROLLOUT).await;
    // Available is about traffic: it may turn True while the operator still walks the
    // (unchanged) speakers step; the rollout record goes once that step is done.
    let api: Api<MetalLB> = Api::namespaced(cluster.client(), NS);
    wait_for("the rollout record to go", ROLLOUT, || async {
        let cr = api.get("metallb").await.map_err(|e| e.to_string())?;
        match cr.status.and_then(|s| s.rollout) {
            None => Ok(()),
            Some(r) => Err(format!("rollout still at {r:?}")),
        }
    })
    .await
    .unwrap();
}

/// What the OLM bundle's ClusterServiceVersion installs, installed by hand into `namespace`
/// (as OLM would with the OwnNamespace mode): its ServiceAccount, cluster and namespace
/// permissions, and Deployment.
async fn install_like_olm(cluster: &Cluster, namespace: &str) -> String {
    let csv_text = std::fs::read_to_string(
        root().join("bundle/manifests/metallb-rs-operator.clusterserviceversion.yaml"),
    )
    .unwrap();
    let csv: serde_json::Value = serde_saphyr::from_str(&csv_text).unwrap();
    let install = &csv["spec"]["install"]["spec"];
    let account = install["clusterPermissions"][0]["serviceAccountName"]
        .as_str()
        .unwrap()
        .to_string();
    let cluster_role = format!("{account}-{namespace}");
    let subjects =
        serde_json::json!([{"kind": "ServiceAccount", "name": account, "namespace": namespace}]);
    let objects = serde_json::json!([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": namespace}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": cluster_role},
         "rules": install["clusterPermissions"][0]["rules"]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": cluster_role},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role}, "subjects": subjects},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": account, "namespace": namespace},
         "rules": install["permissions"][0]["rules"]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": account, "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account}, "subjects": subjects},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": install["deployments"][0]["name"], "namespace": namespace},
         "spec": install["deployments"][0]["spec"]},
    ]);
    for o in objects.as_array().unwrap() {
        cluster
            .apply_yaml(Some(namespace), &serde_json::to_string(o).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", o["kind"]));
    }
    cluster_role
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn installed_like_olm_into_another_namespace_metallb_becomes_available_and_assigns_ips() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    metallb_available(&cluster).await;
    // One MetalLB per cluster: the one in metallb-system goes first.
    let home: Api<MetalLB> = Api::namespaced(cluster.client(), NS);
    home.delete("metallb", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        "MetalLB/metallb in metallb-system to go",
        ROLLOUT,
        || async {
            match home.get_opt("metallb").await.map_err(|e| e.to_string())? {
                None => Ok(()),
                Some(_) => Err("still there".to_string()),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    let other = cluster.namespace("olm-ns").await.unwrap();
    let ns = other.name().to_string();
    let cluster_role = install_like_olm(&cluster, &ns).await;
    cluster
        .kubectl(&[
            "-n",
            &ns,
            "rollout",
            "status",
            "deployment/metallb-operator",
            "--timeout=180s",
        ])
        .expect("the operator runs");
    cluster
        .apply_yaml(
            Some(&ns),
            "apiVersion: metallb.io/v1beta1\nkind: MetalLB\nmetadata: {name: metallb}\n",
        )
        .await
        .unwrap();
    let api: Api<MetalLB> = Api::namespaced(cluster.client(), &ns);
    let available = wait_for(
        "MetalLB in the other namespace to be Available",
        ROLLOUT,
        || async {
            let cr = api
                .get_opt("metallb")
                .await
                .map_err(|e| e.to_string())?
                .ok_or("not found")?;
            match condition(&cr, "Available") {
                Some(c) if c.status == "True" => Ok(cr),
                Some(c) => Err(format!(
                    "{}: {} / Degraded: {:?}",
                    c.reason,
                    c.message,
                    condition(&cr, "Degraded").map(|d| d.message)
                )),
                None => Err("no condition at all".into()),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        condition(&available, "Degraded").map(|c| c.status),
        Some("False".into())
    );
    let labels = Api::<Namespace>::all(cluster.client())
        .get(&ns)
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap_or_default();
    assert_eq!(
        labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("privileged"),
        "the operator labelled the namespace it was installed in"
    );
    let objects = rendered("metallb.yaml", &ns);
    assert_eq!(
        existing(&cluster, &objects).await.unwrap(),
        everything(&objects)
    );

    // A working load balancer: a pool in that namespace, a Service gets an IP from it.
    cluster
        .apply_yaml(
            Some(&ns),
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: other}\nspec: {addresses: [192.0.2.248-192.0.2.249]}\n",
        )
        .await
        .unwrap();
    let apps = cluster.namespace("olm-app").await.unwrap();
    cluster
        .apply_yaml(
            Some(apps.name()),
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n",
        )
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(cluster.client(), apps.name());
    wait_for(
        "the Service to get an IP from the pool",
        Duration::from_secs(60),
        || async {
            let svc = services.get("web").await.map_err(|e| e.to_string())?;
            let ips: Vec<String> = svc
                .status
                .and_then(|s| s.load_balancer)
                .and_then(|lb| lb.ingress)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|i| i.ip)
                .collect();
            (ips == ["192.0.2.248"])
                .then_some(())
                .ok_or(format!("{ips:?}"))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    drop(apps);

    // Uninstall in the documented order: the MetalLB resource first (its finalizer needs the
    // operator), then the operator.
    api.delete("metallb", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the other MetalLB to go", ROLLOUT, || async {
        let left = existing(&cluster, &objects).await?;
        let cr = api.get_opt("metallb").await.map_err(|e| e.to_string())?;
        if left.is_empty() && cr.is_none() {
            Ok(())
        } else {
            Err(format!("still there: {left:?}, resource {}", cr.is_some()))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let _ = cluster.kubectl(&[
        "delete",
        "clusterrole,clusterrolebinding",
        &cluster_role,
        "--ignore-not-found",
    ]);
    let _ = cluster.kubectl(&[
        "-n",
        &ns,
        "delete",
        "deployment/metallb-operator",
        "--wait=true",
    ]);
    drop(other);
    metallb_available(&cluster).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn everything_rendered_is_accepted_by_the_api_server_and_the_controller_pod_passes_restricted()
 {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    let operator = root().join("target/debug/metallb-operator");
    for sample in ["metallb.yaml", "metallb-full.yaml"] {
        let rendered = metallb_e2e::cmd::stdout(&[
            operator.display().to_string(),
            "render".into(),
            "-f".into(),
            root()
                .join("manifests/samples")
                .join(sample)
                .display()
                .to_string(),
        ])
        .expect("render works");
        let dir = std::env::temp_dir().join(format!("mlb-e2e-render-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rendered.yaml");
        std::fs::write(&file, &rendered).unwrap();
        let out = cluster
            .kubectl(&[
                "apply",
                "--server-side",
                "--dry-run=server",
                "--force-conflicts",
                "--field-manager=metallb-e2e-dry-run",
                "-f",
                &file.display().to_string(),
            ])
            .unwrap_or_else(|e| panic!("{sample}: the API server accepts the render: {e}"));
        assert!(out.contains("daemonset.apps/speaker"), "{out}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    // The controller's pod template, as a Pod in a namespace that enforces "restricted".
    let ns = cluster.namespace("restricted").await.unwrap();
    cluster
        .kubectl(&[
            "label",
            "namespace",
            ns.name(),
            "pod-security.kubernetes.io/enforce=restricted",
        ])
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), NS);
    metallb_available(&cluster).await;
    let template = deployments
        .get("controller")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template;
    let account = template
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .expect("the controller pod names its ServiceAccount");
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "controller-restricted", "namespace": ns.name()},
        "spec": template.spec,
    });
    // The pod names its ServiceAccount; admission wants it to exist in the namespace.
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(cluster.client(), ns.name());
    accounts
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": account, "namespace": ns.name()}
            }))
            .unwrap(),
        )
        .await
        .expect("the ServiceAccount is created");
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns.name());
    let pod: Pod = serde_json::from_value(pod).unwrap();
    pods.create(
        &kube::api::PostParams {
            dry_run: true,
            ..Default::default()
        },
        &pod,
    )
    .await
    .expect("the controller pod is admitted under the restricted Pod Security Standard");
}
