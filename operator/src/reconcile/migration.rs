//! The legacy ConfigMap migration, carried out: read the ConfigMap and what already exists, let
//! the pure planner (`metallb_api::legacy::plan`) decide, create the converted objects in order,
//! then annotate the ConfigMap. The ConfigMap itself is never deleted or otherwise changed.
//!
//! All of it or nothing: the planner validates the whole converted set first; if a create fails
//! half way (the webhook not reachable yet, say), the next reconcile plans again, counts what
//! was created as present and creates the rest.

use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::json;

use metallb_api::config::{BgpBackend, Resources};
use metallb_api::constants::{field_managers, migration};
use metallb_api::legacy::{self, Plan, PlanOptions};
use metallb_api::v1beta1::{
    BFDProfile, BGPAdvertisement, Community, IPAddressPool, L2Advertisement, MetalLB,
};
use metallb_api::v1beta2::BGPPeer;

use super::{Context, Error};

/// What the migration step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// There is no legacy ConfigMap.
    NoConfigMap,
    /// The `ConfigMigrated` condition to report.
    Report {
        ok: bool,
        reason: &'static str,
        message: String,
    },
}

/// Runs the migration step.
pub async fn run(cr: &MetalLB, ctx: &Context, previous: &[Condition]) -> Result<Outcome, Error> {
    let configmaps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let read = |what| move |source| Error::Read { what, source };
    let Some(cm) = configmaps
        .get_opt(&ctx.legacy_configmap)
        .await
        .map_err(read("legacy ConfigMap"))?
    else {
        return Ok(Outcome::NoConfigMap);
    };
    let existing = existing_resources(ctx).await?;
    let backend = match cr.spec.bgp_backend.as_deref() {
        Some("frr") => BgpBackend::Frr,
        _ => BgpBackend::Native,
    };
    let plan = legacy::plan(
        &cm,
        &existing,
        &PlanOptions {
            backend: Some(backend),
        },
    );
    if let Plan::Migrate(m) = &plan {
        for object in &m.create {
            if let Err(e) = create(ctx, object.to_value()).await {
                // Transient (typically the webhook not answering yet): report and retry.
                let message = format!("creating {} failed, will retry: {e}", object.object_ref());
                tracing::warn!(configmap = %cm.name_any(), error = %e, "migration step failed");
                return Ok(Outcome::Report {
                    ok: false,
                    reason: metallb_api::constants::migration::reasons::MIGRATION_PENDING,
                    message,
                });
            }
            tracing::info!(object = %object.object_ref(), "created from the legacy ConfigMap");
        }
        let now = jiff::Timestamp::now().to_string();
        let patch = json!({ "metadata": { "annotations": m.configmap_annotations(&now) } });
        configmaps
            .patch(
                &cm.name_any(),
                &PatchParams::apply(field_managers::OPERATOR),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|source| {
                Error::Migration(format!(
                    "failed to annotate ConfigMap {}: {source}",
                    cm.name_any()
                ))
            })?;
        ctx.metrics.write("patch", "ConfigMap");
    }
    let summary = plan.condition();
    let changed = previous
        .iter()
        .find(|c| c.type_ == migration::CONDITION_TYPE)
        .is_none_or(|c| c.reason != summary.reason || c.message != summary.message);
    if changed && let Some(event) = plan.event() {
        let type_ = if event.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        let ev = kube::runtime::events::Event {
            type_,
            reason: event.reason.into(),
            note: Some(event.note),
            action: "Migrate".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&ev, &cm.object_ref(&())).await {
            tracing::warn!(error = %e, "failed to publish the migration event");
        }
    }
    Ok(Outcome::Report {
        ok: summary.status,
        reason: summary.reason,
        message: summary.message,
    })
}

/// Every metallb.io object and Secret of the namespace, and the Nodes (for the FRR rules).
async fn existing_resources(ctx: &Context) -> Result<Resources, Error> {
    let c = &ctx.client;
    let ns = &ctx.namespace;
    let lp = ListParams::default();
    let read = |what| move |source| Error::Read { what, source };
    Ok(Resources {
        pools: Api::<IPAddressPool>::namespaced(c.clone(), ns)
            .list(&lp)
            .await
            .map_err(read("IPAddressPools"))?
            .items,
        l2_advertisements: Api::<L2Advertisement>::namespaced(c.clone(), ns)
            .list(&lp)
            .await
            .map_err(read("L2Advertisements"))?
            .items,
        bgp_advertisements: Api::<BGPAdvertisement>::namespaced(c.clone(), ns)
            .list(&lp)
            .await
            .map_err(read("BGPAdvertisements"))?
            .items,
        peers: Api::<BGPPeer>::namespaced(c.clone(), ns)
            .list(&lp)
            .await
            .map_err(read("BGPPeers"))?
            .items,
        bfd_profiles: Api::<BFDProfile>::namespaced(c.clone(), ns)
            .list(&lp)
            .await
            .map_err(read("BFDProfiles"))?
            .items,
        communities: Api::<Community>::namespaced(c.clone(), ns)
            .list(&lp)
            .await
            .map_err(read("Communities"))?
            .items,
        secrets: Api::<Secret>::namespaced(c.clone(), ns)
            .list(&lp)
            .await
            .map_err(read("Secrets"))?
            .items,
        nodes: Api::<Node>::all(c.clone())
            .list(&lp)
            .await
            .map_err(read("Nodes"))?
            .items,
        namespaces: Vec::new(),
        bgp_extras: None,
    })
}

/// Creates one converted object (a Secret or a metallb.io object).
async fn create(ctx: &Context, value: serde_json::Value) -> Result<(), kube::Error> {
    let api_version = value["apiVersion"].as_str().unwrap_or("v1").to_string();
    let kind = value["kind"].as_str().unwrap_or_default().to_string();
    let (group, version) = api_version
        .split_once('/')
        .unwrap_or(("", api_version.as_str()));
    let plural = match kind.as_str() {
        "Community" => "communities".to_string(),
        other => format!("{}s", other.to_lowercase()),
    };
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, &kind), &plural);
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ctx.namespace, &ar);
    let obj: DynamicObject = serde_json::from_value(value).expect("converted objects are objects");
    let params = PostParams {
        field_manager: Some(field_managers::OPERATOR.into()),
        ..Default::default()
    };
    api.create(&params, &obj).await?;
    ctx.metrics.write("create", &kind);
    Ok(())
}
