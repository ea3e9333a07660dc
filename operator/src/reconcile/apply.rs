//! Apply and prune: the steps that write to the API.
//!
//! Every object is applied with server-side apply under one field manager, forcing ownership of
//! the fields it sets. An object whose live state already contains everything we would apply is
//! not written at all, so a steady cluster sees no write from the operator.

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
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
        kind: "Secret",
        plural: "secrets",
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
    #[error("failed to read {kind}/{name}: {source}")]
    Read {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("failed to list {kind} for pruning: {source}")]
    List { kind: String, source: kube::Error },
    #[error("failed to delete {kind}/{name}: {source}")]
    Delete {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("rendered object of unknown kind {0}")]
    UnknownKind(String),
    #[error("failed to create the speakers' gossip key: {0}")]
    Random(String),
}

impl Error {
    /// A short category for Events and condition reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Apply { .. } | Self::Random(_) => "ApplyFailed",
            Self::Read { .. } | Self::List { .. } => "ReadFailed",
            Self::Delete { .. } => "PruneFailed",
            Self::UnknownKind(_) => "RenderFailed",
        }
    }
}

fn kind_of(obj: &Value) -> Result<&'static Kind, Error> {
    let kind = obj["kind"].as_str().unwrap_or("");
    KINDS
        .iter()
        .find(|k| k.kind == kind)
        .ok_or_else(|| Error::UnknownKind(kind.to_string()))
}

fn api(client: &Client, k: &Kind, namespace: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(k.group, k.version, k.kind),
        k.plural,
    );
    if k.namespaced {
        Api::namespaced_with(client.clone(), namespace, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
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

/// Applies one rendered object.
pub async fn apply(
    client: &Client,
    metrics: &Metrics,
    namespace: &str,
    owner: &MetalLB,
    mut obj: Value,
) -> Result<Outcome, Error> {
    let k = kind_of(&obj)?;
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if k.namespaced {
        obj["metadata"]["ownerReferences"] = json!([owner_reference(owner)]);
    }
    let api = api(client, k, namespace);
    let read_err = |source| Error::Read {
        kind: k.kind.into(),
        name: name.clone(),
        source,
    };
    let live = api.get_opt(&name).await.map_err(read_err)?;
    if k.kind == "Secret" && name == names::MEMBERLIST_SECRET && live.is_none() {
        create_memberlist_secret(&api, &obj).await?;
        metrics.write("create", k.kind);
        return Ok(Outcome::Written);
    }
    if let Some(live) = &live {
        let live = serde_json::to_value(live).expect("objects serialize");
        if contains(&live, &obj) {
            return Ok(Outcome::Unchanged);
        }
    }
    let params = PatchParams::apply(field_managers::OPERATOR).force();
    api.patch(&name, &params, &Patch::Apply(&obj))
        .await
        .map_err(|source| Error::Apply {
            kind: k.kind.into(),
            name: name.clone(),
            source,
        })?;
    metrics.write("apply", k.kind);
    tracing::info!(kind = k.kind, name, "applied");
    Ok(Outcome::Written)
}

/// The gossip key is random, so it is created once and never rendered or rewritten: later applies
/// of the (data-less) rendered Secret only keep its labels and owner.
async fn create_memberlist_secret(api: &Api<DynamicObject>, rendered: &Value) -> Result<(), Error> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| Error::Random(e.to_string()))?;
    let text: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut obj = rendered.clone();
    obj["stringData"] = json!({ names::MEMBERLIST_SECRET_KEY: text });
    let secret: DynamicObject =
        serde_json::from_value(obj).expect("a rendered Secret is an object");
    match api
        .create(
            &PostParams {
                field_manager: Some(field_managers::OPERATOR.into()),
                ..Default::default()
            },
            &secret,
        )
        .await
    {
        Ok(_) => Ok(()),
        // Created meanwhile (by a previous reconcile, or by the controller's own fallback).
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(source) => Err(Error::Apply {
            kind: "Secret".into(),
            name: names::MEMBERLIST_SECRET.into(),
            source,
        }),
    }
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

/// Deletes what the operator created earlier and no longer renders (for example the FRR parts
/// after switching from frr to native). Returns how many objects were deleted.
pub async fn prune(
    client: &Client,
    metrics: &Metrics,
    namespace: &str,
    desired: &[Value],
) -> Result<usize, Error> {
    let mut deleted = 0;
    let selector = owned_selector(namespace);
    for k in KINDS {
        let api = api(client, k, namespace);
        let list = api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| Error::List {
                kind: k.kind.into(),
                source,
            })?;
        for item in list.items {
            let name = item.name_any();
            let wanted = desired
                .iter()
                .any(|d| d["kind"] == k.kind && d["metadata"]["name"] == name.as_str());
            if wanted {
                continue;
            }
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {
                    deleted += 1;
                    metrics.write("delete", k.kind);
                    tracing::info!(kind = k.kind, name, "pruned");
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(source) => {
                    return Err(Error::Delete {
                        kind: k.kind.into(),
                        name,
                        source,
                    });
                }
            }
        }
    }
    Ok(deleted)
}

/// Deletes every cluster-scoped object created for this MetalLB resource (namespaced ones are
/// garbage-collected through their owner reference). Used by the finalizer.
pub async fn delete_cluster_scoped(client: &Client, namespace: &str) -> Result<usize, Error> {
    let mut deleted = 0;
    let selector = owned_selector(namespace);
    for k in KINDS.iter().filter(|k| !k.namespaced) {
        let api = api(client, k, namespace);
        let list = api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| Error::List {
                kind: k.kind.into(),
                source,
            })?;
        for item in list.items {
            let name = item.name_any();
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => deleted += 1,
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(source) => {
                    return Err(Error::Delete {
                        kind: k.kind.into(),
                        name,
                        source,
                    });
                }
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
    fn every_rendered_kind_is_known() {
        let cr: MetalLB = serde_json::from_value(json!({"apiVersion": "metallb.io/v1beta1", "kind": "MetalLB", "metadata": {"name": "metallb"}, "spec": {"bgpBackend": "frr"}})).unwrap();
        for o in
            crate::render::render(&cr, "metallb-system", &crate::render::Images::release()).unwrap()
        {
            kind_of(&o).unwrap();
        }
    }
}
