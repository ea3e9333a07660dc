//! How the operator itself is installed: the kustomize base (`manifests/operator/`) and the OLM
//! bundle (`bundle/`), both generated here from the same pieces so they cannot disagree. Pure.
//!
//! The operator's RBAC is its own needs plus every permission it grants to the controller and the
//! speakers: Kubernetes only lets a subject grant permissions it holds (RBAC escalation
//! prevention), so these rules are derived from the rendered component roles, not written twice.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use metallb_api::constants::images;
use metallb_api::crd;
use metallb_api::v1beta1::MetalLB;

use crate::render::{self, Images};

pub const OPERATOR_NAME: &str = "metallb-operator";
pub const PACKAGE: &str = "metallb-rs-operator";
/// `v0.1.0` → `0.1.0`.
pub fn semver() -> &'static str {
    images::VERSION.trim_start_matches('v')
}

/// The CSV's `olm.skipRange`: from the start of the previous minor version to this one.
pub fn skip_range() -> String {
    let this = crate::version::operator();
    format!(">={} <{this}", crate::version::oldest_direct_upgrade(&this))
}

fn labels() -> Value {
    json!({
        "app.kubernetes.io/name": OPERATOR_NAME,
        "app.kubernetes.io/part-of": "metallb",
        "app.kubernetes.io/version": images::VERSION,
    })
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({ "apiGroups": groups, "resources": resources, "verbs": verbs })
}

const ALL: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// Where the operator is installed from: its permissions differ in one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installer {
    /// `kubectl apply -k manifests/operator`: the namespace is known when the manifests are
    /// generated, so the operator may label only that one for Pod Security.
    Kustomize,
    /// OLM: the install namespace is chosen at install time, and a ClusterServiceVersion cannot
    /// name it in a rule, so the operator may patch namespaces (it patches only its own, and
    /// only the three Pod Security labels, with a field manager of their own).
    Olm,
}

/// Rules of the operator's ClusterRole (cluster-wide) and Role (its namespace).
pub fn operator_rules(namespace: &str, installer: Installer) -> (Vec<Value>, Vec<Value>) {
    let crds = crd::all();
    let crd_names: Vec<String> = crds
        .iter()
        .map(|c| c.metadata.name.clone().unwrap_or_default())
        .collect();
    let plurals: Vec<String> = crds.iter().map(|c| c.spec.names.plural.clone()).collect();
    let namespace_patch = match installer {
        Installer::Kustomize => {
            json!({ "apiGroups": [""], "resources": ["namespaces"], "resourceNames": [namespace], "verbs": ["patch", "update"] })
        }
        Installer::Olm => rule(&[""], &["namespaces"], &["patch", "update"]),
    };
    let mut cluster = vec![
        rule(
            &["metallb.io"],
            &["metallbs"],
            &["get", "list", "watch", "update", "patch"],
        ),
        rule(
            &["metallb.io"],
            &["metallbs/status"],
            &["get", "update", "patch"],
        ),
        rule(&["metallb.io"], &["metallbs/finalizers"], &["update"]),
        rule(
            &["rbac.authorization.k8s.io"],
            &["clusterroles", "clusterrolebindings"],
            ALL,
        ),
        rule(
            &["admissionregistration.k8s.io"],
            &["validatingwebhookconfigurations"],
            ALL,
        ),
        rule(&[""], &["namespaces"], &["get", "list", "watch"]),
        namespace_patch,
        rule(&["", "events.k8s.io"], &["events"], &["create", "patch"]),
        // The CRD step: this release's CRDs are checked, and objects stored in an older version
        // are rewritten in the storage version (every namespace), then storedVersions trimmed.
        json!({ "apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "resourceNames": crd_names, "verbs": ["get"] }),
        json!({ "apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions/status"], "resourceNames": crd_names, "verbs": ["patch"] }),
        json!({ "apiGroups": ["metallb.io"], "resources": plurals, "verbs": ["list", "update"] }),
    ];
    let mut local = vec![
        rule(
            &[""],
            &["serviceaccounts", "configmaps", "secrets", "services"],
            ALL,
        ),
        // The versions the components run, and why a pod is not ready.
        rule(&[""], &["pods"], &["get", "list", "watch"]),
        rule(&["apps"], &["deployments", "daemonsets"], ALL),
        rule(
            &["rbac.authorization.k8s.io"],
            &["roles", "rolebindings"],
            ALL,
        ),
        // The legacy ConfigMap migration creates the converted configuration; the controller
        // step sends an L2Advertisement to the webhooks as a dry run.
        rule(
            &["metallb.io"],
            &[
                "ipaddresspools",
                "l2advertisements",
                "bgpadvertisements",
                "bgppeers",
                "bfdprofiles",
                "communities",
            ],
            &["get", "list", "watch", "create"],
        ),
    ];
    // What the operator grants, it must hold: collect the rendered roles of every backend.
    for backend in ["native", "frr"] {
        let cr: MetalLB = serde_json::from_value(json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "MetalLB",
            "metadata": {"name": "metallb", "namespace": namespace},
            "spec": {"bgpBackend": backend}
        }))
        .expect("a MetalLB object");
        for obj in render::render(&cr, namespace, &Images::release())
            .expect("the default resource renders")
        {
            let target = match obj["kind"].as_str() {
                Some("ClusterRole") => &mut cluster,
                Some("Role") => &mut local,
                _ => continue,
            };
            for r in obj["rules"].as_array().into_iter().flatten() {
                if !target.contains(r) {
                    target.push(r.clone());
                }
            }
        }
    }
    (cluster, local)
}

/// The images an installation names: the operator's own, and those it deploys unless its
/// environment says otherwise (the CSV also lists them as `relatedImages`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallImages {
    pub operator: String,
    pub release: Images,
}

impl InstallImages {
    /// What the committed manifests and bundle name: this version's operator image by tag, and
    /// the operator's compiled-in defaults for the rest.
    pub fn release() -> Self {
        Self {
            operator: images::operator(),
            release: Images::release(),
        }
    }
}

fn security_context() -> Value {
    json!({ "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": { "drop": ["ALL"] } })
}

/// The operator Deployment's spec (shared by the kustomize base and the CSV).
pub fn deployment_spec(images: &InstallImages) -> Value {
    let release = &images.release;
    json!({
        "replicas": 1,
        // The old operator stops before the new one starts. The default rolling update runs both
        // for a while, and the old one would keep applying its release's templates while the new
        // one upgrades the components: the controller's Deployment flipping between versions.
        // The operator holds no Lease; one replica, replaced with a gap, is simplest (nothing
        // breaks while no operator runs: the components keep running). A rolling update that
        // may not surge does that (the old pod is stopped, then the new one created) and, unlike
        // `Recreate`, applies over a release whose Deployment has the default strategy:
        // `Recreate` next to the `rollingUpdate` the API server defaulted there is refused
        // ("may not be specified when strategy type is 'Recreate'"), with kubectl apply
        // client- or server-side alike, and the upgrade from v0.1.0 failed so.
        "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 0, "maxUnavailable": 1 } },
        "selector": { "matchLabels": { "app.kubernetes.io/name": OPERATOR_NAME } },
        "template": {
            "metadata": { "labels": labels() },
            "spec": {
                "serviceAccountName": OPERATOR_NAME,
                "securityContext": {
                    "runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534,
                    "seccompProfile": { "type": "RuntimeDefault" }
                },
                "nodeSelector": { "kubernetes.io/os": "linux" },
                "containers": [{
                    "name": "operator",
                    "image": images.operator,
                    "args": ["run"],
                    "env": [
                        { "name": "OPERATOR_NAMESPACE", "valueFrom": { "fieldRef": { "fieldPath": "metadata.namespace" } } },
                        { "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
                        { "name": "CONTROLLER_IMAGE", "value": release.controller },
                        { "name": "SPEAKER_IMAGE", "value": release.speaker },
                        { "name": "FRR_IMAGE", "value": release.frr },
                    ],
                    "ports": [{ "name": "health", "containerPort": 8081, "protocol": "TCP" }],
                    "livenessProbe": { "httpGet": { "path": "/healthz", "port": 8081 }, "initialDelaySeconds": 5, "periodSeconds": 10 },
                    "readinessProbe": { "httpGet": { "path": "/readyz", "port": 8081 }, "initialDelaySeconds": 1, "periodSeconds": 5 },
                    "resources": { "requests": { "cpu": "10m", "memory": "32Mi" }, "limits": { "memory": "128Mi" } },
                    "securityContext": security_context(),
                }]
            }
        }
    })
}

/// The kustomize base: `kubectl apply -k manifests/operator`.
pub fn kustomize_files(
    namespace: &str,
    images: &InstallImages,
) -> BTreeMap<&'static str, Vec<Value>> {
    let (cluster_rules, local_rules) = operator_rules(namespace, Installer::Kustomize);
    let meta = |name: &str, ns: Option<&str>| {
        let mut m = json!({ "name": name, "labels": labels() });
        if let Some(ns) = ns {
            m["namespace"] = json!(ns);
        }
        m
    };
    let subject =
        json!([{ "kind": "ServiceAccount", "name": OPERATOR_NAME, "namespace": namespace }]);
    let mut files = BTreeMap::new();
    // No Pod Security labels here: the operator sets them (and an admin may opt out).
    files.insert("namespace.yaml", vec![json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": namespace, "labels": { "app.kubernetes.io/part-of": "metallb" } } })]);
    files.insert(
        "rbac.yaml",
        vec![
            json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(OPERATOR_NAME, Some(namespace)) }),
            json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(OPERATOR_NAME, None), "rules": cluster_rules }),
            json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta(OPERATOR_NAME, None),
                    "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR_NAME }, "subjects": subject }),
            json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(OPERATOR_NAME, Some(namespace)), "rules": local_rules }),
            json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta(OPERATOR_NAME, Some(namespace)),
                    "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": OPERATOR_NAME }, "subjects": subject }),
        ],
    );
    files.insert(
        "deployment.yaml",
        vec![json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(OPERATOR_NAME, Some(namespace)), "spec": deployment_spec(images) })],
    );
    files.insert(
        "kustomization.yaml",
        vec![json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["namespace.yaml", "../crd", "rbac.yaml", "deployment.yaml"],
        })],
    );
    files
}

/// Display names and descriptions of the owned CRDs, for the CSV.
fn owned_crds() -> Vec<Value> {
    let describe = |kind: &str| match kind {
        "MetalLB" => (
            "MetalLB",
            "Deploys MetalLB: one resource, named metallb, in the operator's namespace.",
        ),
        "IPAddressPool" => (
            "IP Address Pool",
            "Addresses MetalLB assigns to LoadBalancer Services.",
        ),
        "L2Advertisement" => (
            "L2 Advertisement",
            "Announces pools with ARP and NDP from selected nodes.",
        ),
        "BGPAdvertisement" => (
            "BGP Advertisement",
            "Announces pools over BGP, with communities and local preference.",
        ),
        "BGPPeer" => (
            "BGP Peer",
            "A router the speakers establish BGP sessions with.",
        ),
        "BFDProfile" => (
            "BFD Profile",
            "BFD settings for BGP sessions (frr backend).",
        ),
        "Community" => ("Community", "Named BGP community values."),
        "ServiceL2Status" => (
            "Service L2 Status",
            "Which node announces a Service in L2 mode (written by MetalLB).",
        ),
        "ServiceBGPStatus" => (
            "Service BGP Status",
            "Which peers a Service is advertised to (written by MetalLB).",
        ),
        "ConfigurationState" => (
            "Configuration State",
            "Whether each component accepted the configuration (written by MetalLB).",
        ),
        _ => ("", ""),
    };
    let mut out = Vec::new();
    for c in crd::all() {
        let (display, description) = describe(&c.spec.names.kind);
        for v in &c.spec.versions {
            out.push(json!({
                "name": c.metadata.name, "version": v.name, "kind": c.spec.names.kind,
                "displayName": display, "description": description,
            }));
        }
    }
    out
}

/// The bundle's CRDs: as in manifests/crd, except that BGPPeer uses the API server's `None`
/// conversion. Decision: OLM manages conversion webhooks only for Deployments listed in the CSV
/// (`webhookdefinitions`); ours is served by the controller, which the operator deploys later.
/// v1beta1 and v1beta2 BGPPeers have the same JSON shape for every v1beta1 field, so `None`
/// converts them correctly; only v1beta2-only fields are dropped when a v1beta1 client writes.
pub fn bundle_crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    let mut crds = crd::all();
    for c in &mut crds {
        if c.spec.names.kind == "BGPPeer" {
            c.spec.conversion = None;
        }
    }
    crds
}

/// The release this one upgrades from, as `hack/previous-release` records it (`version=`): the
/// CSV's `replaces`, so that OLM's channel holds an upgrade edge from it.
pub fn previous_release() -> semver::Version {
    parse_previous_release(include_str!("../../hack/previous-release"))
        .expect("hack/previous-release has a line version=<semver>")
}

fn parse_previous_release(text: &str) -> Option<semver::Version> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("version="))
        .and_then(|v| semver::Version::parse(v.trim()).ok())
}

/// The kinds the components write and users only read (status reports): OLM's consoles list
/// them apart and offer no form to create them. They get no `alm-examples` entry, so the CSV
/// validator warns about them (docs/olm.md, "Validation").
const INTERNAL_KINDS: &[&str] = &["ServiceL2Status", "ServiceBGPStatus", "ConfigurationState"];

/// `operators.operatorframework.io/internal-objects`: the CRD names of [`INTERNAL_KINDS`].
fn internal_objects() -> String {
    let names: Vec<String> = crd::all()
        .into_iter()
        .filter(|c| INTERNAL_KINDS.contains(&c.spec.names.kind.as_str()))
        .filter_map(|c| c.metadata.name)
        .collect();
    serde_json::to_string(&names).expect("names serialize")
}

/// `alm-examples`: a minimal object of every kind (and version) a user creates, each one valid
/// (a test runs them through the validator), forming one working L2 and BGP configuration.
fn examples(namespace: &str) -> Value {
    let meta = |name: &str| json!({ "name": name, "namespace": namespace });
    json!([
        { "apiVersion": "metallb.io/v1beta1", "kind": "MetalLB", "metadata": meta("metallb") },
        { "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": meta("lan"),
          "spec": { "addresses": ["192.0.2.200-192.0.2.250"] } },
        { "apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement", "metadata": meta("lan"),
          "spec": { "ipAddressPools": ["lan"] } },
        { "apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": meta("lan"),
          "spec": { "ipAddressPools": ["lan"], "communities": ["no-export"] } },
        { "apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": meta("router"),
          "spec": { "myASN": 64512, "peerASN": 64500, "peerAddress": "192.0.2.1" } },
        { "apiVersion": "metallb.io/v1beta1", "kind": "BGPPeer", "metadata": meta("router-v1beta1"),
          "spec": { "myASN": 64512, "peerASN": 64501, "peerAddress": "192.0.2.2" } },
        { "apiVersion": "metallb.io/v1beta1", "kind": "BFDProfile", "metadata": meta("fast"),
          "spec": { "receiveInterval": 300, "transmitInterval": 300, "detectMultiplier": 3 } },
        { "apiVersion": "metallb.io/v1beta1", "kind": "Community", "metadata": meta("communities"),
          "spec": { "communities": [{ "name": "no-export", "value": "65535:65281" }] } },
    ])
}

/// The icon OLM's consoles show (`operator/assets/icon.svg`), base64-encoded.
fn icon_base64() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(include_str!("../assets/icon.svg").trim_end())
}

/// The ClusterServiceVersion.
pub fn csv(namespace: &str, images: &InstallImages) -> Value {
    let release = &images.release;
    let (cluster_rules, local_rules) = operator_rules(namespace, Installer::Olm);
    let examples = examples(namespace);
    json!({
        "apiVersion": "operators.coreos.com/v1alpha1",
        "kind": "ClusterServiceVersion",
        "metadata": {
            "name": format!("{PACKAGE}.v{}", semver()),
            "namespace": "placeholder",
            "annotations": {
                "alm-examples": serde_json::to_string_pretty(&examples).expect("examples serialize"),
                "capabilities": "Seamless Upgrades",
                "categories": "Networking",
                "containerImage": images.operator,
                "description": "Load balancer for bare-metal Kubernetes, compatible with MetalLB's API.",
                "operatorframework.io/suggested-namespace": namespace,
                "operators.operatorframework.io/builder": "metallb-operator generate",
                // Upgrades: OLM may go straight to this release from any release of the previous
                // minor version or later, the jumps the operator's skew policy allows
                // (docs/operator.md, "Upgrading").
                "olm.skipRange": skip_range(),
                "operators.operatorframework.io/internal-objects": internal_objects(),
            },
            "labels": {
                "operatorframework.io/arch.amd64": "supported",
                "operatorframework.io/arch.arm64": "supported",
                "operatorframework.io/os.linux": "supported",
            },
        },
        "spec": {
            "displayName": "MetalLB (metallb-rs)",
            "description": "metallb-rs gives bare-metal clusters Services of type LoadBalancer: it assigns addresses from the \
    IPAddressPools you define and announces them with ARP/NDP (L2) or BGP. It keeps MetalLB's API: every metallb.io kind, field \
    and annotation. Create one MetalLB resource named `metallb` in the operator's namespace to deploy it.",
            "version": semver(),
            // OLM's upgrade edge: this release replaces the previous one in the channel.
            "replaces": format!("{PACKAGE}.v{}", previous_release()),
            "minKubeVersion": "1.33.0",
            "icon": [{ "base64data": icon_base64(), "mediatype": "image/svg+xml" }],
            "maturity": "alpha",
            "provider": { "name": "metallb-rs" },
            "keywords": ["load balancer", "metallb", "bgp", "arp", "bare metal"],
            "links": [{ "name": "Documentation", "url": "https://metallb.io" }],
            "installModes": [
                { "type": "OwnNamespace", "supported": true },
                { "type": "SingleNamespace", "supported": false },
                { "type": "MultiNamespace", "supported": false },
                { "type": "AllNamespaces", "supported": true },
            ],
            "customresourcedefinitions": { "owned": owned_crds() },
            "install": {
                "strategy": "deployment",
                "spec": {
                    "clusterPermissions": [{ "serviceAccountName": OPERATOR_NAME, "rules": cluster_rules }],
                    "permissions": [{ "serviceAccountName": OPERATOR_NAME, "rules": local_rules }],
                    "deployments": [{ "name": OPERATOR_NAME, "label": labels(), "spec": deployment_spec(images) }],
                }
            },
            "relatedImages": [
                { "name": "operator", "image": images.operator },
                { "name": "controller", "image": release.controller },
                { "name": "speaker", "image": release.speaker },
                { "name": "frr", "image": release.frr },
            ],
        }
    })
}

/// `bundle/metadata/annotations.yaml`.
pub fn bundle_annotations() -> Value {
    json!({ "annotations": {
        "operators.operatorframework.io.bundle.mediatype.v1": "registry+v1",
        "operators.operatorframework.io.bundle.manifests.v1": "manifests/",
        "operators.operatorframework.io.bundle.metadata.v1": "metadata/",
        "operators.operatorframework.io.bundle.package.v1": PACKAGE,
        "operators.operatorframework.io.bundle.channels.v1": "stable",
        "operators.operatorframework.io.bundle.channel.default.v1": "stable",
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_holds_every_permission_it_grants() {
        // RBAC escalation prevention: the operator may only create roles whose rules it holds.
        let (cluster, local) = operator_rules("lb", Installer::Kustomize);
        for backend in ["native", "frr"] {
            let cr: MetalLB = serde_json::from_value(json!({
                "apiVersion": "metallb.io/v1beta1", "kind": "MetalLB", "metadata": {"name": "metallb"},
                "spec": {"bgpBackend": backend}
            }))
            .unwrap();
            let objects = render::render(&cr, "lb", &Images::release()).unwrap();
            let mut roles = 0;
            for o in &objects {
                let held = match o["kind"].as_str() {
                    Some("ClusterRole") => &cluster,
                    Some("Role") => &local,
                    _ => continue,
                };
                roles += 1;
                for r in o["rules"].as_array().unwrap() {
                    assert!(
                        held.contains(r),
                        "{} {} grants {r} which the operator does not hold",
                        o["kind"],
                        o["metadata"]["name"]
                    );
                }
            }
            assert_eq!(roles, 4, "a ClusterRole and a Role for each component");
        }
        let namespace_patch = cluster
            .iter()
            .find(|r| {
                r["resources"] == json!(["namespaces"]) && r["verbs"] == json!(["patch", "update"])
            })
            .unwrap();
        assert_eq!(
            namespace_patch["resourceNames"],
            json!(["lb"]),
            "installed with kustomize, the operator may label only its own namespace"
        );
        let (olm, _) = operator_rules("lb", Installer::Olm);
        let namespace_patch = olm
            .iter()
            .find(|r| {
                r["resources"] == json!(["namespaces"]) && r["verbs"] == json!(["patch", "update"])
            })
            .unwrap();
        assert_eq!(
            namespace_patch.get("resourceNames"),
            None,
            "installed by OLM into a namespace chosen at install time, it may patch namespaces"
        );
    }

    #[test]
    fn olm_skips_straight_to_this_release_only_from_the_previous_minor() {
        let v = crate::version::operator();
        assert_eq!(
            skip_range(),
            format!(">={}.{}.0 <{v}", v.major, v.minor.saturating_sub(1))
        );
    }

    #[test]
    fn the_csv_lists_every_crd_version_and_the_operator_deployment() {
        let csv = csv("metallb-system", &InstallImages::release());
        let owned = csv["spec"]["customresourcedefinitions"]["owned"]
            .as_array()
            .unwrap();
        assert_eq!(owned.len(), 11, "10 CRDs, BGPPeer with two versions");
        assert_eq!(
            csv["spec"]["install"]["spec"]["deployments"][0]["name"],
            OPERATOR_NAME
        );
        assert_eq!(
            csv["metadata"]["name"],
            format!("metallb-rs-operator.v{}", semver())
        );
        assert!(bundle_crds().iter().all(|c| c.spec.conversion.is_none()));
    }

    #[test]
    fn the_kustomize_base_and_the_csv_name_the_images_they_are_given() {
        let digest = |name: &str| {
            format!(
                "192.0.2.10:5000/metallb-rs/{name}@sha256:{}",
                "0".repeat(64)
            )
        };
        let images = InstallImages {
            operator: digest("metallb-operator"),
            release: Images {
                controller: digest("metallb-controller"),
                speaker: digest("metallb-speaker"),
                frr: "quay.io/frrouting/frr:10.5.3".into(),
            },
        };
        let env = json!([
            { "name": "OPERATOR_NAMESPACE", "valueFrom": { "fieldRef": { "fieldPath": "metadata.namespace" } } },
            { "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
            { "name": "CONTROLLER_IMAGE", "value": digest("metallb-controller") },
            { "name": "SPEAKER_IMAGE", "value": digest("metallb-speaker") },
            { "name": "FRR_IMAGE", "value": "quay.io/frrouting/frr:10.5.3" },
        ]);

        let files = kustomize_files("metallb-system", &images);
        let container = &files["deployment.yaml"][0]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], json!(digest("metallb-operator")));
        assert_eq!(container["env"], env);

        let csv = csv("metallb-system", &images);
        assert_eq!(
            csv["metadata"]["annotations"]["containerImage"],
            json!(digest("metallb-operator"))
        );
        let container = &csv["spec"]["install"]["spec"]["deployments"][0]["spec"]["template"]["spec"]
            ["containers"][0];
        assert_eq!(container["image"], json!(digest("metallb-operator")));
        assert_eq!(container["env"], env);
        assert_eq!(
            csv["spec"]["relatedImages"],
            json!([
                { "name": "operator", "image": digest("metallb-operator") },
                { "name": "controller", "image": digest("metallb-controller") },
                { "name": "speaker", "image": digest("metallb-speaker") },
                { "name": "frr", "image": "quay.io/frrouting/frr:10.5.3" },
            ])
        );
    }

    #[test]
    fn an_upgrade_stops_the_old_operator_before_the_new_one_starts() {
        let images = InstallImages::release();
        let csv = csv("metallb-system", &images);
        let files = kustomize_files("metallb-system", &images);
        for spec in [
            &csv["spec"]["install"]["spec"]["deployments"][0]["spec"],
            &files["deployment.yaml"][0]["spec"],
        ] {
            assert_eq!(
                spec["strategy"],
                json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 0, "maxUnavailable": 1 } })
            );
            assert_eq!(spec["replicas"], 1);
        }
    }

    #[test]
    fn the_csv_replaces_the_previous_release_which_is_older() {
        let csv = csv("metallb-system", &InstallImages::release());
        assert_eq!(csv["spec"]["replaces"], "metallb-rs-operator.v0.1.0");
        let this = semver::Version::parse(semver()).unwrap();
        assert!(
            previous_release() < this,
            "{} is not older than {this}",
            previous_release()
        );
    }

    #[test]
    fn the_previous_release_is_read_from_its_version_line() {
        let text = "# a comment\ncommit=9899d24\nversion= 1.2.3 \n";
        assert_eq!(
            parse_previous_release(text),
            Some(semver::Version::new(1, 2, 3))
        );
        assert_eq!(parse_previous_release("commit=9899d24\n"), None);
        assert_eq!(parse_previous_release("version=one\n"), None);
    }

    #[test]
    fn every_kind_a_user_creates_has_a_valid_example_and_status_kinds_are_internal() {
        let csv = csv("metallb-system", &InstallImages::release());
        let examples: Vec<Value> = serde_json::from_str(
            csv["metadata"]["annotations"]["alm-examples"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let mut with_example: Vec<(String, String)> = examples
            .iter()
            .map(|e| {
                (
                    e["apiVersion"].as_str().unwrap().to_string(),
                    e["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        with_example.sort();
        let mut user_kinds: Vec<(String, String)> =
            csv["spec"]["customresourcedefinitions"]["owned"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| !INTERNAL_KINDS.contains(&o["kind"].as_str().unwrap()))
                .map(|o| {
                    (
                        format!("metallb.io/{}", o["version"].as_str().unwrap()),
                        o["kind"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
        user_kinds.sort();
        assert_eq!(with_example, user_kinds);

        let report = metallb_api::validate::validate_values(
            &examples,
            &metallb_api::config::ParseOptions::new("metallb-system", None),
        );
        assert_eq!(
            report
                .problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            Vec::<String>::new()
        );

        assert_eq!(
            csv["metadata"]["annotations"]["operators.operatorframework.io/internal-objects"],
            r#"["configurationstates.metallb.io","servicebgpstatuses.metallb.io","servicel2statuses.metallb.io"]"#
        );
    }

    #[test]
    fn the_icon_is_the_committed_svg() {
        use base64::Engine as _;
        let csv = csv("metallb-system", &InstallImages::release());
        let icon = &csv["spec"]["icon"][0];
        assert_eq!(icon["mediatype"], "image/svg+xml");
        let svg = base64::engine::general_purpose::STANDARD
            .decode(icon["base64data"].as_str().unwrap())
            .unwrap();
        assert!(String::from_utf8(svg).unwrap().starts_with("<svg "));
    }

    #[test]
    fn the_committed_installation_names_this_versions_tags() {
        let images = InstallImages::release();
        let version = images::VERSION;
        assert_eq!(
            images,
            InstallImages {
                operator: format!("quay.io/metallb-rs/metallb-operator:{version}"),
                release: Images {
                    controller: format!("quay.io/metallb-rs/metallb-controller:{version}"),
                    speaker: format!("quay.io/metallb-rs/metallb-speaker:{version}"),
                    frr: images::FRR.into(),
                },
            }
        );
    }
}
