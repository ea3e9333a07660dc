//! `Upgradeable` for OLM. Installed by OLM, the operator finds its OperatorCondition through
//! the `OPERATOR_CONDITION_NAME` environment variable OLM sets (absent otherwise: then nothing
//! here runs) and copies the MetalLB resource's `Upgradeable` condition into it, so that OLM
//! does not replace the operator in the middle of a rollout or while something is broken.
//!
//! OLM grants the operator's ServiceAccount access to its own OperatorCondition; the bundle
//! needs no rule for it.

use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use crate::metrics::Metrics;

/// The OperatorCondition to keep up to date, and what was last written to it.
#[derive(Debug, Default)]
pub struct OperatorCondition {
    name: Option<String>,
    last: Mutex<Option<(String, String, String)>>,
}

impl OperatorCondition {
    pub fn new(name: Option<String>) -> Self {
        Self {
            name: name.filter(|n| !n.is_empty()),
            last: Mutex::new(None),
        }
    }

    /// Writes `upgradeable` into the OperatorCondition's `spec.conditions` unless the same
    /// status, reason and message were written last.
    pub async fn publish(
        &self,
        client: &Client,
        metrics: &Metrics,
        namespace: &str,
        upgradeable: &Condition,
    ) -> Result<(), kube::Error> {
        let Some(name) = &self.name else {
            return Ok(());
        };
        let key = (
            upgradeable.status.clone(),
            upgradeable.reason.clone(),
            upgradeable.message.clone(),
        );
        if self.last.lock().expect("not poisoned").as_ref() == Some(&key) {
            return Ok(());
        }
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("operators.coreos.com", "v2", "OperatorCondition"),
            "operatorconditions",
        );
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
        // A merge patch replaces the list: the operator reports no other condition to OLM.
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "conditions": [upgradeable] } })),
        )
        .await?;
        metrics.write("patch", "OperatorCondition");
        *self.last.lock().expect("not poisoned") = Some(key);
        Ok(())
    }
}
