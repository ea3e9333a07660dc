//! The legacy ConfigMap migration, carried out: read the ConfigMap and what already exists, let
//! the pure planner (`metallb_api::legacy::plan`) decide, create the converted objects in order,
//! then annotate the ConfigMap. The ConfigMap itself is never deleted or otherwise changed.
//!
//! All of it or nothing: the planner validates the whole converted set first; if a create fails
//! half way, the step fails (Degraded `MigrationFailed`, `ConfigMigrated` keeps its last
//! verdict) and the next reconcile plans again, counts what was created as present and creates
//! the rest. The step runs once the controller's webhooks answer, which check what it creates.

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
    BFDProfile, BGPAdvertisement, Community, IPAddressPool, L2Advertisement,
};
use metallb_api::v1beta2::BGPPeer;

use super::Context;

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

/// Why the migration step failed (it is retried; the reconcile reports it as Degraded).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to list the {what} for the legacy ConfigMap migration: {source}")]
    Read {
        what: &'static str,
        source: kube::Error,
    },
    #[error("failed to create {object} from the legacy ConfigMap: {source}")]
    Create { object: String, source: kube::Error },
    #[error("failed to annotate the migrated ConfigMap {name}: {source}")]
    Annotate { name: String, source: kube::Error },
}

impl Error {
    pub fn reason(&self) -> &'static str {
        "MigrationFailed"
    }
}

/// Whether the step can run now: the converted objects go through the controller's webhooks,
/// so the migration waits for them (`webhooks_ready`). While it waits, an earlier verdict stays
/// on record (`None`: leave `ConfigMigrated` as it is) and a first one says it is pending.
pub fn waiting(configmap: Option<&ConfigMap>, previous: &[Condition]) -> Option<Outcome> {
    if configmap.is_none() {
        return Some(Outcome::NoConfigMap);
    }
    if previous
        .iter()
        .any(|c| c.type_ == migration::CONDITION_TYPE)
    {
        return None;
    }
    Some(Outcome::Report {
        ok: false,
        reason: migration::reasons::MIGRATION_PENDING,
        message: "waiting for the controller's webhooks, which check the converted objects".into(),
    })
}

/// Runs the migration step for the legacy ConfigMap `cm`.
pub async fn run(
    ctx: &Context,
    cm: &ConfigMap,
    backend: BgpBackend,
    previous: &[Condition],
) -> Result<Outcome, Error> {
    let configmaps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let existing = existing_resources(ctx).await?;
    let plan = legacy::plan(
        cm,
        &existing,
        &PlanOptions {
            backend: Some(backend),
        },
    );
    if let Plan::Migrate(m) = &plan {
        for object in &m.create {
            create(ctx, object.to_value())
                .await
                .map_err(|source| Error::Create {
                    object: object.object_ref().to_string(),
                    source,
                })?;
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
            .map_err(|source| Error::Annotate {
                name: cm.name_any(),
                source,
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
