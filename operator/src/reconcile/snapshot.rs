//! What one reconcile sees of the cluster: a copy of the watch caches (`watch`), taken once at
//! its start. Everything after observing is computed from it, so the pure steps (plan, status)
//! take a `Snapshot` and tests build one by hand.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::ResourceExt;
use serde_json::Value;

use metallb_api::constants::names;

/// The component label on pods and pod templates (`controller` or `speaker`).
pub const COMPONENT_LABEL: &str = "component";

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every object carrying the operator's owner labels, by kind and name, as JSON with its
    /// `apiVersion` and `kind`.
    pub owned: BTreeMap<(String, String), Value>,
    /// The pods of the controller and the speakers (label `app=metallb`).
    pub pods: Vec<Pod>,
    /// The operator's namespace.
    pub namespace: Option<Namespace>,
    /// The legacy MetalLB ConfigMap, if there is one.
    pub legacy_configmap: Option<ConfigMap>,
}

impl Snapshot {
    pub fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.owned.get(&(kind.to_string(), name.to_string()))
    }

    fn typed<K: serde::de::DeserializeOwned>(&self, kind: &str, name: &str) -> Option<K> {
        self.get(kind, name)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    pub fn controller(&self) -> Option<Deployment> {
        self.typed("Deployment", names::CONTROLLER_DEPLOYMENT)
    }

    pub fn speaker(&self) -> Option<DaemonSet> {
        self.typed("DaemonSet", names::SPEAKER_DAEMONSET)
    }

    pub fn webhooks(&self) -> Option<ValidatingWebhookConfiguration> {
        self.typed(
            "ValidatingWebhookConfiguration",
            names::WEBHOOK_CONFIGURATION,
        )
    }

    /// The pods of one component that are not being deleted.
    pub fn pods_of(&self, component: &str) -> Vec<&Pod> {
        self.pods
            .iter()
            .filter(|p| p.labels().get(COMPONENT_LABEL).map(String::as_str) == Some(component))
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect()
    }

    /// Kind and name of every owned object.
    pub fn owned_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.owned.keys().map(|(k, n)| (k.as_str(), n.as_str()))
    }
}
