//! End-to-end tests of the operator on the local cluster: installed with `kubectl apply -k
//! manifests/operator` (hack/local-up.sh does it), it deploys the controller and the speakers
//! from the MetalLB resource, keeps them as rendered, reports honest conditions, and removes
//! everything when the resource goes. Each test leaves MetalLB deployed (native backend) for the
//! next one.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use metallb_api::v1beta1::MetalLB;
use metallb_e2e::harness::{Cluster, container_pid, pod_ready, process_alive, wait_for};

mod common;
use common::condition;

const NS: &str = common::OPERATOR_NS;
const ROLLOUT: Duration = Duration::from_secs(180);
const OWNER: &str =
    "app.kubernetes.io/managed-by=metallb-operator,metallb.io/owner=metallb-system.metallb";

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
    let cr = metallb_available(&cluster).await;
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
    wait_for("the MetalLB resource and everything it owned to go", ROLLOUT, || async {
        let mut left = Vec::new();
        if api.get_opt("metallb").await.map_err(|e| e.to_string())?.is_some() {
            left.push("MetalLB/metallb".to_string());
        }
        let roles: Api<ClusterRole> = Api::all(cluster.client());
        for r in roles.list_metadata(&ListParams::default().labels(OWNER)).await.map_err(|e| e.to_string())?.items {
            left.push(format!("ClusterRole/{}", r.name_any()));
        }
        let out = cluster
            .kubectl(&["get", "deployments,daemonsets,serviceaccounts,configmaps,secrets,services,roles,rolebindings,clusterrolebindings,validatingwebhookconfigurations", "-A", "-l", OWNER, "-o", "name"])
            .map_err(|e| e.to_string())?;
        left.extend(out.lines().map(String::from));
        left.extend(pids.iter().filter(|p| process_alive(**p)).map(|p| format!("process {p}")));
        if left.is_empty() { Ok(()) } else { Err(format!("still there: {left:?}")) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let ns: Namespace = Api::all(cluster.client()).get(NS).await.unwrap();
    let labels: BTreeMap<String, String> = ns.metadata.labels.unwrap_or_default();
    assert!(
        !labels.contains_key("pod-security.kubernetes.io/enforce"),
        "the operator's labels are released: {labels:?}"
    );
    assert!(cr.uid().is_some());
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
