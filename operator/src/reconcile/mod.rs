//! The MetalLB reconciler: render (pure) → apply → prune → status.
//!
//! ```text
//!  MetalLB CR ─┬─ not metallb/<operator namespace>? ─► Degraded, nothing else
//!              ├─ being deleted? ─► delete cluster-scoped objects, drop the finalizer
//!              └─► render ─► PodSecurity labels ─► apply (SSA) ─► prune ─► status
//!  Deployments, DaemonSets, ... it created, the namespace, cluster-scoped objects ──► re-run
//! ```
//!
//! Only this module talks to the API; `render` and `status` are pure.

pub mod apply;
mod migration;
mod podsecurity;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use metallb_api::constants::{field_managers, names};
use metallb_api::v1beta1::{MetalLB, MetalLBStatus};

use crate::metrics::Metrics;
use crate::render::{self, Images};

/// Removes the cluster-scoped objects before the MetalLB resource goes away.
pub const FINALIZER: &str = "metallb.io/cleanup";

/// What every reconcile needs.
pub struct Context {
    pub client: Client,
    /// The operator's namespace: the only one whose `metallb` resource is honoured.
    pub namespace: String,
    pub images: Images,
    pub recorder: Recorder,
    pub metrics: Metrics,
    /// The legacy (MetalLB ≤ 0.12) configuration ConfigMap to migrate, in the namespace.
    pub legacy_configmap: String,
}

/// Why a reconcile failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Apply(#[from] apply::Error),
    #[error("failed to label namespace {namespace} for PodSecurity: {source}")]
    PodSecurity {
        namespace: String,
        source: kube::Error,
    },
    #[error("failed to read the {what}: {source}")]
    Read {
        what: &'static str,
        source: kube::Error,
    },
    #[error("failed to write the MetalLB status: {0}")]
    Status(kube::Error),
    #[error("legacy ConfigMap migration: {0}")]
    Migration(String),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

/// Runs the reconciler until the process is asked to stop.
pub async fn run(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let ns = ctx.namespace.clone();
    let owned = watcher::Config::default().labels(&apply::owned_selector(&ns));
    Controller::new(
        Api::<MetalLB>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(
        Api::<Deployment>::namespaced(client.clone(), &ns),
        owned.clone(),
    )
    .owns(
        Api::<DaemonSet>::namespaced(client.clone(), &ns),
        owned.clone(),
    )
    .owns(
        Api::<ServiceAccount>::namespaced(client.clone(), &ns),
        owned.clone(),
    )
    .owns(
        Api::<ConfigMap>::namespaced(client.clone(), &ns),
        owned.clone(),
    )
    .owns(
        Api::<Secret>::namespaced(client.clone(), &ns),
        owned.clone(),
    )
    .owns(
        Api::<Service>::namespaced(client.clone(), &ns),
        owned.clone(),
    )
    .owns(Api::<Role>::namespaced(client.clone(), &ns), owned.clone())
    .owns(
        Api::<RoleBinding>::namespaced(client.clone(), &ns),
        owned.clone(),
    )
    .watches(
        Api::<ClusterRole>::all(client.clone()),
        owned.clone(),
        to_cr(&ns),
    )
    .watches(
        Api::<ClusterRoleBinding>::all(client.clone()),
        owned.clone(),
        to_cr(&ns),
    )
    .watches(
        Api::<ValidatingWebhookConfiguration>::all(client.clone()),
        owned.clone(),
        to_cr(&ns),
    )
    // The legacy ConfigMap is not ours: it is watched by name, so that creating, editing or
    // deleting it is reported in ConfigMigrated right away.
    .watches(
        Api::<ConfigMap>::namespaced(client.clone(), &ns),
        watcher::Config::default().fields(&format!("metadata.name={}", ctx.legacy_configmap)),
        to_cr(&ns),
    )
    .watches(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={ns}")),
        to_cr(&ns),
    )
    .shutdown_on_signal()
    .run(reconcile, error_policy, ctx)
    .for_each(|result| async move {
        match result {
            Ok((obj, _)) => tracing::debug!(object = %obj, "reconciled"),
            Err(e) => tracing::warn!(error = %e, "reconcile failed"),
        }
    })
    .await;
}

/// Maps any watched object to the one MetalLB resource it belongs to.
fn to_cr<K>(namespace: &str) -> impl Fn(K) -> Option<ObjectRef<MetalLB>> + Send + Sync + 'static {
    let namespace = namespace.to_string();
    move |_| Some(ObjectRef::<MetalLB>::new(names::METALLB_CR).within(&namespace))
}

fn error_policy(cr: Arc<MetalLB>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(metallb = %cr.name_any(), error = %error, "will retry");
    Action::requeue(Duration::from_secs(10))
}

async fn reconcile(cr: Arc<MetalLB>, ctx: Arc<Context>) -> Result<Action, Error> {
    let cr_ns = cr.namespace().unwrap_or_default();
    if cr.name_any() != names::METALLB_CR || cr_ns != ctx.namespace {
        return not_honoured(&cr, &ctx).await;
    }
    let api: Api<MetalLB> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    finalizer(&api, FINALIZER, cr, |event| async {
        match event {
            Finalizer::Apply(cr) => deploy(&cr, &ctx).await,
            Finalizer::Cleanup(cr) => cleanup(&cr, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Another MetalLB resource: report why nothing is done for it.
async fn not_honoured(cr: &MetalLB, ctx: &Context) -> Result<Action, Error> {
    let message = format!(
        "only the MetalLB resource named {:?} in the operator's namespace {:?} is honoured; this one ({}/{}) is ignored",
        names::METALLB_CR,
        ctx.namespace,
        cr.namespace().unwrap_or_default(),
        cr.name_any()
    );
    let reason = if cr.name_any() != names::METALLB_CR {
        "IncorrectMetalLBResourceName"
    } else {
        "NotInOperatorNamespace"
    };
    let observed = status::Observed {
        generation: cr.metadata.generation.unwrap_or(0),
        problem: Some(status::Problem { reason, message }),
        ..Default::default()
    };
    write_status(cr, ctx, &observed, None).await?;
    Ok(Action::await_change())
}

/// Render → PodSecurity labels → apply → prune → status.
async fn deploy(cr: &MetalLB, ctx: &Context) -> Result<Action, Error> {
    let generation = cr.metadata.generation.unwrap_or(0);
    let objects = match render::render(cr, &ctx.namespace, &ctx.images) {
        Ok(o) => o,
        Err(e) => {
            // An invalid spec waits for the user to change it.
            let observed = status::Observed {
                generation,
                problem: Some(status::Problem {
                    reason: "InvalidSpec",
                    message: e.to_string(),
                }),
                ..Default::default()
            };
            publish(ctx, cr, EventType::Warning, "InvalidSpec", &e.to_string()).await;
            write_status(cr, ctx, &observed, None).await?;
            return Ok(Action::await_change());
        }
    };
    podsecurity::ensure(&ctx.client, &ctx.metrics, &ctx.namespace, cr).await?;
    let mut written = 0;
    for obj in &objects {
        match apply::apply(&ctx.client, &ctx.metrics, &ctx.namespace, cr, obj.clone()).await {
            Ok(apply::Outcome::Written) => written += 1,
            Ok(apply::Outcome::Unchanged) => {}
            Err(e) => {
                let observed = status::Observed {
                    generation,
                    problem: Some(status::Problem {
                        reason: e.reason(),
                        message: e.to_string(),
                    }),
                    ..Default::default()
                };
                publish(ctx, cr, EventType::Warning, e.reason(), &e.to_string()).await;
                write_status(cr, ctx, &observed, None).await?;
                return Err(e.into());
            }
        }
    }
    let pruned = apply::prune(&ctx.client, &ctx.metrics, &ctx.namespace, &objects).await?;
    if written > 0 || pruned > 0 {
        tracing::info!(written, pruned, "deployed");
    }
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let daemonsets: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let observed = status::Observed {
        generation,
        controller: deployments
            .get_opt(names::CONTROLLER_DEPLOYMENT)
            .await
            .map_err(|source| Error::Read {
                what: "controller Deployment",
                source,
            })?,
        speaker: daemonsets
            .get_opt(names::SPEAKER_DAEMONSET)
            .await
            .map_err(|source| Error::Read {
                what: "speaker DaemonSet",
                source,
            })?,
        webhooks: Api::<ValidatingWebhookConfiguration>::all(ctx.client.clone())
            .get_opt(names::WEBHOOK_CONFIGURATION)
            .await
            .map_err(|source| Error::Read {
                what: "validating webhook configuration",
                source,
            })?,
        problem: None,
    };
    let previous = cr
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let migrated = migration::run(cr, ctx, &previous).await?;
    let retry_migration = matches!(
        &migrated,
        migration::Outcome::Report {
            reason: metallb_api::constants::migration::reasons::MIGRATION_PENDING,
            ..
        }
    );
    write_status(cr, ctx, &observed, Some(migrated)).await?;
    if retry_migration {
        return Ok(Action::requeue(Duration::from_secs(10)));
    }
    // Rollout progress arrives through the Deployment and DaemonSet watches; this is a backstop.
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// The MetalLB resource is being deleted: namespaced objects go with it (owner references);
/// cluster-scoped ones and the PodSecurity labels are removed here.
async fn cleanup(cr: &MetalLB, ctx: &Context) -> Result<Action, Error> {
    let deleted = apply::delete_cluster_scoped(&ctx.client, &ctx.namespace).await?;
    podsecurity::release(&ctx.client, &ctx.namespace, cr).await?;
    tracing::info!(deleted, "removed the cluster-scoped objects");
    Ok(Action::await_change())
}

/// Writes the conditions and observedGeneration, only when they changed.
async fn write_status(
    cr: &MetalLB,
    ctx: &Context,
    observed: &status::Observed,
    migrated: Option<migration::Outcome>,
) -> Result<(), Error> {
    let mut previous = cr
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let now = Time(jiff::Timestamp::now());
    let mut ours = status::conditions(observed, &previous, now.clone());
    if let Some(migration::Outcome::NoConfigMap) = &migrated {
        // The ConfigMap is gone: a successful migration stays on record, anything else (a
        // failure about a ConfigMap that no longer exists) would only mislead.
        previous.retain(|c| {
            c.type_ != metallb_api::constants::migration::CONDITION_TYPE
                || (c.status == "True"
                    && c.reason == metallb_api::constants::migration::reasons::MIGRATED)
        });
    }
    if let Some(migration::Outcome::Report {
        ok,
        reason,
        message,
    }) = migrated
    {
        ours.push(status::condition_at(
            metallb_api::constants::migration::CONDITION_TYPE,
            ok,
            reason,
            message,
            observed.generation,
            &previous,
            now,
        ));
    }
    let conditions = status::merge_foreign(ours, &previous);
    let generation = cr.metadata.generation;
    let before = cr
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let unchanged = status::same(&conditions, &before)
        && cr.status.as_ref().and_then(|s| s.observed_generation) == generation;
    if unchanged {
        return Ok(());
    }
    let status = MetalLBStatus {
        conditions: Some(conditions),
        observed_generation: generation,
        ..Default::default()
    };
    let patch = json!({
        "apiVersion": "metallb.io/v1beta1",
        "kind": "MetalLB",
        "status": status,
    });
    let api: Api<MetalLB> =
        Api::namespaced(ctx.client.clone(), &cr.namespace().unwrap_or_default());
    api.patch_status(
        &cr.name_any(),
        &PatchParams::apply(field_managers::OPERATOR).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::Status)?;
    Ok(())
}

async fn publish(ctx: &Context, cr: &MetalLB, type_: EventType, reason: &str, note: &str) {
    let event = KubeEvent {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1024).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &cr.object_ref(&())).await {
        tracing::warn!(error = %e, "failed to publish an event");
    }
}

/// The Event reporter of the operator.
pub fn reporter() -> Reporter {
    Reporter {
        controller: field_managers::OPERATOR.into(),
        instance: std::env::var("POD_NAME").ok(),
    }
}
