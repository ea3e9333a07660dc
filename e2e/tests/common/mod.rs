//! What several end-to-end suites ask of the operator's `MetalLB` resource.
// Each suite is its own crate and uses only part of this module.
#![allow(dead_code)]

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use metallb_api::v1beta1::MetalLB;
use metallb_e2e::harness::{Cluster, wait_for};

pub mod bgp;
pub mod l2;
pub mod workload;

/// Where hack/local-up.sh installs the operator and its `MetalLB` resource.
pub const OPERATOR_NS: &str = "metallb-system";

/// The resource's condition of this type, if it has one.
pub fn condition(cr: &MetalLB, type_: &str) -> Option<Condition> {
    cr.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

/// Waits until `MetalLB/<name>` has a condition of `type_` that `accept` takes; returns the
/// resource. Panics with the last condition seen when it times out.
pub async fn wait_condition(
    cluster: &Cluster,
    name: &str,
    type_: &str,
    timeout: Duration,
    accept: impl Fn(&Condition) -> bool,
) -> MetalLB {
    let api: Api<MetalLB> = Api::namespaced(cluster.client(), OPERATOR_NS);
    let what = format!("MetalLB/{name} to report the expected {type_} condition");
    wait_for(&what, timeout, || async {
        let cr = api
            .get_opt(name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("not found")?;
        match condition(&cr, type_) {
            Some(c) if accept(&c) => Ok(cr),
            Some(c) => Err(format!(
                "{}={} {}: {}",
                c.type_, c.status, c.reason, c.message
            )),
            None => Err(format!("no {type_} condition")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}
