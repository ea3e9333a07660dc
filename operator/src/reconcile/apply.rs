//! Apply and prune: the steps that write the rendered objects to the API.
//!
//! Every object is applied with server-side apply under one field manager, forcing ownership of
//! the fields it sets. An object whose live state (from the watch caches, see `watch`) already
//! contains everything we would apply is not written at all, so a steady cluster sees no write
//! from the operator. Which objects to apply, and in which order, is the rollout plan's decision
//! (`plan`); which to delete is [`to_prune`]'s.

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use metallb_api::constants::{field_managers, names};
use metallb_api::v1beta1::MetalLB;

use crate::metrics::Metrics;
use crate::render::{MANAGED_BY, MANAGED_BY_LABEL, OWNER_LABEL};

/// The kinds the operator renders: how to reach them and whether they are namespaced.
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

pub const KINDS: &[Kind] = &[
    Kind {
        group: "",
        version: "v1",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        namespaced: true,
    },
    Kind {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRole",
        plural: "clusterroles",
        namespaced: false,
    },
    Kind {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRoleBinding",
        plural: "clusterrolebindings",
        namespaced: false,
    },
    Kind {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "Role",
        plural: "roles",
        namespaced: true,
    },
    Kind {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "RoleBinding",
        plural: "rolebindings",
        namespaced: true,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        namespaced: true,
    },
    Kind {
        group: "admissionregistration.k8s.io",
        version: "v1",
        kind: "ValidatingWebhookConfiguration",
        plural: "validatingwebhookconfigurations",
        namespaced: false,
    },
    Kind {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
    },
    Kind {
        group: "apps",
        version: "v1",
        kind: "DaemonSet",
        plural: "daemonsets",
        namespaced: true,
    },
];

/// Why applying or pruning failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to apply {kind}/{name}: {source}")]
    Apply {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("failed to list {kind}: {source}")]
    List { kind: String, source: kube::Error },
    #[error("failed to delete {kind}/{name}: {source}")]
    Delete {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("rendered object of unknown kind {0}")]
    UnknownKind(String),
}

impl Error {
    /// A short category for Events and condition reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Apply { .. } => "ApplyFailed",
            Self::List { .. } | Self::Delete { .. } => "PruneFailed",
            Self::UnknownKind(_) => "RenderFailed",
        }
    }
}

pub fn kind_of(obj: &Value) -> Result<&'static Kind, Error> {
    let kind = obj["kind"].as_str().unwrap_or("");
    KINDS
        .iter()
        .find(|k| k.kind == kind)
        .ok_or_else(|| Error::UnknownKind(kind.to_string()))
}

impl Kind {
    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn api(&self, client: &Client, namespace: &str) -> Api<DynamicObject> {
        let ar = self.api_resource();
        if self.namespaced {
            Api::namespaced_with(client.clone(), namespace, &ar)
        } else {
            Api::all_with(client.clone(), &ar)
        }
    }
}

/// The owner reference every namespaced object gets, so deleting the MetalLB resource removes it.
fn owner_reference(owner: &MetalLB) -> Value {
    let oref = owner
        .controller_owner_ref(&())
        .expect("a stored MetalLB has a name and uid");
    serde_json::to_value(oref).expect("owner references serialize")
}

/// What one apply did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Written,
}

/// The object as the operator applies it: the rendered object with, when namespaced, the owner
/// reference to the MetalLB resource, and the digest of all of that in an annotation
/// ([`APPLIED_DIGEST`]).
pub fn owned(owner: &MetalLB, mut obj: Value) -> Result<Value, Error> {
    if kind_of(&obj)?.namespaced {
        obj["metadata"]["ownerReferences"] = json!([owner_reference(owner)]);
    }
    let digest = metallb_api::sha256_hex(&obj.to_string());
    let meta = &mut obj["metadata"];
    if !meta["annotations"].is_object() {
        meta["annotations"] = json!({});
    }
    meta["annotations"][APPLIED_DIGEST] = json!(digest);
    Ok(obj)
}

/// The annotation holding the digest of what the operator last applied to an object.
/// [`contains`] alone cannot see a field we stopped setting (a `nodeSelector` key removed from
/// the MetalLB resource is still in the live object, where server-side apply would remove it):
/// a different digest makes the object differ, and the apply removes the field.
pub const APPLIED_DIGEST: &str = "metallb.io/applied-digest";

/// Applies one object (already [`owned`]) unless `live` already holds all of it.
pub async fn apply(
    client: &Client,
    metrics: &Metrics,
    namespace: &str,
    obj: &Value,
    live: Option<&Value>,
) -> Result<Outcome, Error> {
    let k = kind_of(obj)?;
    if live.is_some_and(|live| contains(live, obj)) {
        return Ok(Outcome::Unchanged);
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let params = PatchParams::apply(field_managers::OPERATOR).force();
    k.api(client, namespace)
        .patch(name, &params, &Patch::Apply(obj))
        .await
        .map_err(|source| Error::Apply {
            kind: k.kind.into(),
            name: name.into(),
            source,
        })?;
    metrics.write("apply", k.kind);
    tracing::info!(kind = k.kind, name, "applied");
    Ok(Outcome::Written)
}

/// Whether `live` already holds every field of `desired` with the same value. Maps may have
/// extra keys (defaults, other managers' fields); lists must match element by element.
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d.iter().all(|(k, dv)| match l.get(k) {
            Some(lv) => contains(lv, dv),
            // An empty map or list we render may be absent from the live object.
            None => {
                dv.is_null()
                    || dv.as_object().is_some_and(|o| o.is_empty())
                    || dv.as_array().is_some_and(|a| a.is_empty())
            }
        }),
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(lv, dv)| contains(lv, dv))
        }
        (Value::Number(l), Value::Number(d)) => l.as_f64() == d.as_f64(),
        (l, d) => l == d,
    }
}

/// The label selector of everything the operator created for this MetalLB resource.
pub fn owned_selector(namespace: &str) -> String {
    format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{OWNER_LABEL}={namespace}.{}",
        names::METALLB_CR
    )
}

/// The objects prune deletes: those the operator labelled as its own (`owned`: kind and name)
/// that are no longer rendered (for example the FRR parts after switching from frr to native).
/// Pure.
///
/// The speakers' memberlist Secret is never pruned, whoever labelled it: the controller owns it
/// now, and releases up to 0.1 created it with these labels; deleting it would give the
/// speakers a new key in the middle of an upgrade.
pub fn to_prune<'a>(
    owned: impl Iterator<Item = (&'a str, &'a str)>,
    desired: &[Value],
) -> Vec<(String, String)> {
    owned
        .filter(|(kind, name)| !(*kind == "Secret" && *name == names::MEMBERLIST_SECRET))
        .filter(|(kind, name)| {
            !desired
                .iter()
                .any(|d| d["kind"] == *kind && d["metadata"]["name"] == *name)
        })
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect()
}

/// Deletes the objects [`to_prune`] chose. Returns how many were deleted.
pub async fn prune(
    client: &Client,
    metrics: &Metrics,
    namespace: &str,
    objects: &[(String, String)],
) -> Result<usize, Error> {
    let mut deleted = 0;
    for (kind, name) in objects {
        let k = kind_of(&json!({ "kind": kind }))?;
        if delete_one(&k.api(client, namespace), metrics, k.kind, name).await? {
            deleted += 1;
            tracing::info!(kind = k.kind, name, "pruned");
        }
    }
    Ok(deleted)
}

/// Deletes one object in the background; one already gone is no error. Returns whether it
/// was there.
async fn delete_one(
    api: &Api<DynamicObject>,
    metrics: &Metrics,
    kind: &str,
    name: &str,
) -> Result<bool, Error> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {
            metrics.write("delete", kind);
            Ok(true)
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(source) => Err(Error::Delete {
            kind: kind.into(),
            name: name.into(),
            source,
        }),
    }
}

/// Deletes the speakers' memberlist Secret, once the controller that creates it has stopped.
/// It is owned by the controller Deployment and goes with it; this catches the one a
/// controller created without an owner (its Deployment could not be read). Returns whether
/// there was one.
pub async fn delete_memberlist_secret(
    client: &Client,
    metrics: &Metrics,
    namespace: &str,
) -> Result<bool, Error> {
    let secrets = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
    let api = Api::namespaced_with(client.clone(), namespace, &secrets);
    delete_one(&api, metrics, "Secret", names::MEMBERLIST_SECRET).await
}

/// Deletes every cluster-scoped object created for this MetalLB resource (namespaced ones are
/// garbage-collected through their owner reference). Used by the finalizer; lists from the API
/// rather than the watch caches, so that nothing is left behind.
pub async fn delete_cluster_scoped(
    client: &Client,
    metrics: &Metrics,
    namespace: &str,
) -> Result<usize, Error> {
    let mut deleted = 0;
    let selector = owned_selector(namespace);
    for k in KINDS.iter().filter(|k| !k.namespaced) {
        let api = k.api(client, namespace);
        let list = api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| Error::List {
                kind: k.kind.into(),
                source,
            })?;
        for item in list.items {
            if delete_one(&api, metrics, k.kind, &item.name_any()).await? {
                deleted += 1;
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_objects_with_defaults_contain_what_we_apply() {
        let desired = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "args": ["--a"]}]}}}, "metadata": {"annotations": {}}});
        let live = json!({"spec": {"replicas": 1, "progressDeadlineSeconds": 600, "template": {"spec": {"containers": [{"name": "c", "args": ["--a"], "imagePullPolicy": "IfNotPresent"}]}}}, "metadata": {"uid": "x"}});
        assert!(contains(&live, &desired));
    }

    #[test]
    fn a_changed_or_missing_field_is_not_contained() {
        let desired = json!({"spec": {"containers": [{"args": ["--log-level=debug"]}]}});
        assert!(!contains(
            &json!({"spec": {"containers": [{"args": ["--log-level=info"]}]}}),
            &desired
        ));
        assert!(!contains(&json!({"spec": {}}), &desired));
        assert!(!contains(
            &json!({"spec": {"containers": [{"args": ["--log-level=debug"]}, {"args": []}]}}),
            &desired
        ));
        assert!(contains(&json!({"n": 1.0}), &json!({"n": 1})));
    }

    #[test]
    fn a_field_no_longer_rendered_makes_the_object_differ_from_the_live_one() {
        let cr: MetalLB = serde_json::from_value(json!({"apiVersion": "metallb.io/v1beta1", "kind": "MetalLB", "metadata": {"name": "metallb", "namespace": "metallb-system", "uid": "u1"}, "spec": {}})).unwrap();
        let ds = |selector: Value| {
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "speaker", "namespace": "metallb-system"},
                   "spec": {"template": {"spec": {"nodeSelector": selector}}}})
        };
        let before = owned(&cr, ds(json!({"kubernetes.io/os": "linux", "rack": "a"}))).unwrap();
        let after = owned(&cr, ds(json!({"kubernetes.io/os": "linux"}))).unwrap();
        // The live object as the API server keeps it after the first apply, with its defaults.
        let mut live = before.clone();
        live["metadata"]["uid"] = json!("d1");
        live["spec"]["revisionHistoryLimit"] = json!(10);
        assert!(contains(&live, &before));
        // Without the digest the live object would still "contain" the smaller selector.
        let mut bare = after.clone();
        bare["metadata"]["annotations"] = json!({});
        assert!(contains(&live, &bare));
        assert!(!contains(&live, &after));
        assert_eq!(
            owned(&cr, ds(json!({"kubernetes.io/os": "linux"}))).unwrap(),
            after,
            "the digest is stable"
        );
        assert_eq!(
            after["metadata"]["annotations"][APPLIED_DIGEST]
                .as_str()
                .unwrap()
                .len(),
            64
        );
    }

    #[test]
    fn every_rendered_kind_is_known() {
        let cr: MetalLB = serde_json::from_value(json!({"apiVersion": "metallb.io/v1beta1", "kind": "MetalLB", "metadata": {"name": "metallb"}, "spec": {"bgpBackend": "frr"}})).unwrap();
        for o in
            crate::render::render(&cr, "metallb-system", &crate::render::Images::release()).unwrap()
        {
            kind_of(&o).unwrap();
        }
    }

    #[test]
    fn prune_deletes_what_is_no_longer_rendered_but_never_the_memberlist_secret() {
        let desired = vec![
            json!({"kind": "ConfigMap", "metadata": {"name": "metallb-excludel2"}}),
            json!({"kind": "DaemonSet", "metadata": {"name": "speaker"}}),
        ];
        let owned = [
            ("ConfigMap", "metallb-excludel2"),
            ("ConfigMap", "frr-startup"),
            ("DaemonSet", "speaker"),
            ("Secret", "memberlist"),
            ("ClusterRole", "metallb-system:old"),
        ];
        assert_eq!(
            to_prune(owned.into_iter(), &desired),
            [
                ("ConfigMap".to_string(), "frr-startup".to_string()),
                ("ClusterRole".to_string(), "metallb-system:old".to_string())
            ]
        );
    }
}
