//! Render tests: whole-output snapshots for a matrix of MetalLB resources, and the properties a
//! reviewer would check by hand.

use serde_json::Value;

use super::*;

fn cr(yaml: &str) -> MetalLB {
    let v: Value = serde_saphyr::from_str(yaml).unwrap();
    serde_json::from_value(v).unwrap()
}

fn sample(name: &str) -> MetalLB {
    let text = std::fs::read_to_string(format!(
        "{}/../manifests/samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    cr(&text)
}

fn render_cr(cr: &MetalLB) -> Vec<Value> {
    render(cr, "metallb-system", &Images::release()).unwrap()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} not rendered"))
}

const NATIVE: &str = "apiVersion: metallb.io/v1beta1\nkind: MetalLB\nmetadata: {name: metallb, namespace: metallb-system}\n";

#[test]
fn default_resource_renders_the_native_deployment() {
    insta::assert_snapshot!("default", to_yaml(&render_cr(&cr(NATIVE))));
}

#[test]
fn every_field_renders_with_the_frr_sidecars() {
    insta::assert_snapshot!(
        "full-frr",
        to_yaml(&render_cr(&sample("metallb-full.yaml")))
    );
}

#[test]
fn native_with_pod_settings_renders_without_frr_parts() {
    let yaml = format!(
        "{NATIVE}spec:\n  logLevel: warn\n  loadBalancerClass: example.com/lb\n  speakerGratuitousARPInterval: 10s\n  controllerConfig:\n    priorityClassName: high\n  speakerConfig:\n    runtimeClassName: kata\n"
    );
    let objects = render_cr(&cr(&yaml));
    insta::assert_snapshot!("native-settings", to_yaml(&objects));
    assert!(
        !objects
            .iter()
            .any(|o| o["metadata"]["name"] == "frr-startup")
    );
    let ds = find(&objects, "DaemonSet", "speaker");
    let names: Vec<&str> = ds["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["speaker"]);
}

#[test]
fn every_spec_field_reaches_the_workloads() {
    let objects = render_cr(&sample("metallb-full.yaml"));
    let dep = &find(&objects, "Deployment", "controller")["spec"]["template"];
    let ds = &find(&objects, "DaemonSet", "speaker")["spec"]["template"];
    let c = &dep["spec"]["containers"][0];
    let s = &ds["spec"]["containers"][0];
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .contains(&Value::from("--log-level=debug"))
    );
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .contains(&Value::from("--lb-class=metallb.io/metallb"))
    );
    assert!(
        s["args"]
            .as_array()
            .unwrap()
            .contains(&Value::from("--lb-class=metallb.io/metallb"))
    );
    assert!(
        s["args"]
            .as_array()
            .unwrap()
            .contains(&Value::from("--gratuitous-arp-interval=30s"))
    );
    assert_eq!(
        dep["spec"]["nodeSelector"]["node-role.kubernetes.io/infra"],
        ""
    );
    assert_eq!(dep["spec"]["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(ds["spec"]["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(
        dep["spec"]["tolerations"][0]["key"],
        "node-role.kubernetes.io/infra"
    );
    let speaker_tolerations: Vec<&str> = ds["spec"]["tolerations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        speaker_tolerations,
        [
            "node-role.kubernetes.io/master",
            "node-role.kubernetes.io/control-plane",
            "node-role.kubernetes.io/control-plane",
            "node.kubernetes.io/unreachable"
        ]
    );
    assert_eq!(dep["spec"]["priorityClassName"], "system-cluster-critical");
    assert_eq!(dep["spec"]["runtimeClassName"], "runc");
    assert_eq!(ds["spec"]["priorityClassName"], "system-node-critical");
    assert_eq!(
        dep["metadata"]["annotations"]["example.com/team"],
        "network"
    );
    assert_eq!(ds["metadata"]["annotations"]["example.com/team"], "network");
    assert_eq!(c["resources"]["limits"]["memory"], "64Mi");
    assert_eq!(s["resources"]["requests"]["memory"], "20Mi");
    assert_eq!(
        dep["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            [0]["weight"],
        100
    );
    assert_eq!(
        ds["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            [0]["weight"],
        10
    );
    // frr backend: the sidecars, their config, and the backend on both components.
    let containers: Vec<&str> = ds["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(containers, ["speaker", "frr", "reloader"]);
    find(&objects, "ConfigMap", "frr-startup");
    let env = |c: &Value, name: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(env(c, "METALLB_BGP_TYPE"), Some("frr".into()));
    assert_eq!(env(s, "METALLB_BGP_TYPE"), Some("frr".into()));
}

#[test]
fn the_controller_pod_satisfies_the_restricted_pod_security_standard() {
    let objects = render_cr(&cr(NATIVE));
    let pod = &find(&objects, "Deployment", "controller")["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert!(pod.get("hostNetwork").is_none());
    for c in pod["containers"].as_array().unwrap() {
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(
            c["securityContext"]["capabilities"]["drop"],
            serde_json::json!(["ALL"])
        );
        assert!(c["securityContext"]["capabilities"].get("add").is_none());
    }
}

#[test]
fn every_object_is_labelled_with_its_owner_and_namespaced_ones_are_in_the_namespace() {
    for o in render_cr(&cr(NATIVE)) {
        assert_eq!(
            o["metadata"]["labels"]["metallb.io/owner"], "metallb-system.metallb",
            "{}",
            o["metadata"]["name"]
        );
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "metallb-operator"
        );
        let cluster_scoped = matches!(
            o["kind"].as_str(),
            Some("ClusterRole" | "ClusterRoleBinding" | "ValidatingWebhookConfiguration")
        );
        assert_eq!(
            o["metadata"]["namespace"].is_null(),
            cluster_scoped,
            "{}",
            o["metadata"]["name"]
        );
    }
}

/// A null field is never what we mean, and the API server rejects some of them.
fn nulls(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Null => out.push(path.to_string()),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| nulls(v, &format!("{path}.{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| nulls(v, &format!("{path}[{i}]"), out)),
        _ => {}
    }
}

#[test]
fn nothing_rendered_has_a_null_field() {
    for cr in [cr(NATIVE), sample("metallb-full.yaml")] {
        for o in render_cr(&cr) {
            let mut found = Vec::new();
            nulls(&o, "", &mut found);
            assert!(
                found.is_empty(),
                "{} {}: null at {found:?}",
                o["kind"],
                o["metadata"]["name"]
            );
        }
    }
}

#[test]
fn user_values_cannot_break_the_yaml() {
    let yaml = format!(
        "{NATIVE}spec:\n  controllerConfig:\n    annotations:\n      evil: \"x\\n  injected: true\"\n"
    );
    let objects = render_cr(&cr(&yaml));
    let annotations =
        &find(&objects, "Deployment", "controller")["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        annotations,
        &serde_json::json!({"evil": "x\n  injected: true"})
    );
}

#[test]
fn an_invalid_resource_is_not_rendered_and_the_error_names_the_field() {
    let err = render(
        &cr(&format!(
            "{NATIVE}spec: {{bgpBackend: frr-k8s, speakerGratuitousARPInterval: 100ms}}\n"
        )),
        "metallb-system",
        &Images::release(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid MetalLB spec: spec.bgpBackend: unsupported BGP backend \"frr-k8s\": supported values are \"native\" and \"frr\" (MetalLB's frr-k8s modes are not offered by metallb-rs); spec.speakerGratuitousARPInterval: \"100ms\" must be 0 or at least 1s"
    );
}

#[test]
fn pods_carry_the_release_so_the_operator_can_read_back_what_runs() {
    let objects = render_cr(&cr(NATIVE));
    for (kind, name) in [("Deployment", "controller"), ("DaemonSet", "speaker")] {
        let w = find(&objects, kind, name);
        assert_eq!(
            w["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"],
            metallb_api::constants::images::VERSION
        );
        assert!(
            w["spec"]["selector"]["matchLabels"]
                .get("app.kubernetes.io/version")
                .is_none(),
            "selectors are immutable: the version is not in them"
        );
    }
}

#[test]
fn the_memberlist_key_is_mounted_but_not_rendered() {
    let objects = render_cr(&cr(NATIVE));
    assert!(!objects.iter().any(|o| o["kind"] == "Secret"));
    let ds = find(&objects, "DaemonSet", "speaker");
    assert_eq!(
        ds["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        "memberlist"
    );
}

#[test]
fn namespace_is_honoured_everywhere() {
    let objects = render(&cr(NATIVE), "lb", &Images::release()).unwrap();
    let text = to_yaml(&objects);
    assert!(
        !text.contains("metallb-system"),
        "the default namespace leaked into a render for another one"
    );
    assert_eq!(
        find(&objects, "ClusterRole", "lb:controller")["kind"],
        "ClusterRole"
    );
}
