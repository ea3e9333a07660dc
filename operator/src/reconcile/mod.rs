//! The MetalLB reconciler.
//!
//! ```text
//!  watches ─► caches ─snapshot─┐
//!  MetalLB ─┬─ not metallb/<operator namespace>? ─► status: Degraded, nothing else
//!           ├─ being deleted? ─► delete cluster-scoped objects, release the labels, drop the finalizer
//!           └─► validate (pure) ─► render (pure) ─► CRDs ─► Pod Security labels
//!               ─► plan (pure: what to apply now, the rollout step) ─► apply (SSA) ─► prune
//!               ─► legacy migration ─► status (pure) ─► one status write, if it changed
//! ```
//!
//! A failed step does not end the reconcile early: it becomes a [`Problem`] (Degraded with the
//! step's reason), the steps that do not depend on it still run, and the status is written once
//! at the end. Then an invalid resource or a refused rollout waits for a change, a transient
//! failure is retried with backoff, and a rollout in progress is looked at again in a few
//! seconds.
//!
//! Only this module and the step modules it calls (`apply`, `crds`, `podsecurity`,
//! `migration`, `olm`) talk to the API; `plan`, `status` and `snapshot` are pure.

pub mod apply;
pub mod crds;
mod migration;
mod olm;
pub mod plan;
pub mod podsecurity;
pub mod snapshot;
pub mod status;
pub mod watch;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use semver::Version;
use serde_json::{Value, json};

use metallb_api::constants::{field_managers, names};
use metallb_api::v1beta1::{L2Advertisement, MetalLB, MetalLBStatus};
use metallb_runtime::Shutdown;

use crate::metrics::Metrics;
use crate::render::{self, Images};
use crate::spec;

pub use olm::OperatorCondition;
use snapshot::Snapshot;
use status::{Problem, Report, reasons};

/// Removes the cluster-scoped objects before the MetalLB resource goes away.
pub const FINALIZER: &str = "metallb.io/cleanup";

/// The name of the L2Advertisement the controller step sends to the webhooks as a server-side
/// dry run (never stored).
pub const WEBHOOK_PROBE: &str = "metallb-operator-webhook-probe";

/// What every reconcile needs.
pub struct Context {
    pub client: Client,
    /// The operator's namespace: the only one whose `metallb` resource is honoured.
    pub namespace: String,
    pub images: Images,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// The operator's version: what every component is rolled out to.
    pub version: Version,
    /// How long a rollout step may go without progress before it is reported as failed.
    pub step_timeout: Duration,
    /// Whether the CRD step passed in this process (it runs until it does).
    pub crds_checked: AtomicBool,
    /// OLM's OperatorCondition, when installed by OLM.
    pub operator_condition: OperatorCondition,
    /// The watch caches (absent in tests, which pass a snapshot themselves).
    pub stores: Option<watch::Stores>,
    /// The status this process last wrote, by the resource's uid. The cached resource a
    /// reconcile starts from can predate the previous reconcile's write (a watch event of a
    /// Deployment can arrive before that of the status); the rollout step recorded there must
    /// not be lost, or the speakers would follow a controller that is not healthy yet.
    pub written: Mutex<BTreeMap<String, MetalLBStatus>>,
}

impl Context {
    /// The status the reconcile starts from: what this process wrote last, else the stored one.
    fn previous_status(&self, cr: &MetalLB) -> Option<MetalLBStatus> {
        let uid = cr.uid()?;
        self.written
            .lock()
            .expect("not poisoned")
            .get(&uid)
            .cloned()
            .or_else(|| cr.status.clone())
    }
}

/// Why a reconcile failed (already reported in the status; it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{reason}: {message}")]
    Step {
        reason: &'static str,
        message: String,
    },
    #[error("failed to write the MetalLB status: {0}")]
    Status(#[source] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The cleanup waits for the controller to stop (not a failure).
    #[error("{0}")]
    Waiting(String),
}

/// How long the cleanup waits for the controller's pods to stop before it removes the RBAC
/// they need to release their Lease anyway.
pub const CONTROLLER_STOP_GRACE: Duration = Duration::from_secs(30);

/// Runs the reconciler until `shutdown` fires. `changes` is the watches' stream
/// ([`watch::watch`]): every change reconciles the MetalLB resources again.
pub async fn run(
    ctx: Arc<Context>,
    changes: impl Stream<Item = ()> + Send + 'static,
    shutdown: Shutdown,
) {
    let controller = Controller::new(
        Api::<MetalLB>::all(ctx.client.clone()),
        watcher::Config::default(),
    );
    if let Some(stores) = &ctx.stores {
        stores.synced.track("MetalLB", controller.store());
    }
    controller
        .reconcile_all_on(changes)
        .graceful_shutdown_on(async move { shutdown.wait().await })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(object = %obj, "reconciled"),
                Err(e) => tracing::warn!(error = %e, "reconcile failed"),
            }
        })
        .await;
}

fn error_policy(cr: Arc<MetalLB>, error: &Error, _: Arc<Context>) -> Action {
    if let Error::Finalizer(e) = error
        && let kube::runtime::finalizer::Error::CleanupFailed(Error::Waiting(why)) = e.as_ref()
    {
        tracing::info!(metallb = %cr.name_any(), %why, "cleanup waits");
        return Action::requeue(Duration::from_secs(1));
    }
    tracing::warn!(metallb = %cr.name_any(), error = %error, "will retry");
    Action::requeue(Duration::from_secs(10))
}

async fn reconcile(cr: Arc<MetalLB>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(stores) = &ctx.stores else {
        unreachable!("the running operator has its watch caches");
    };
    // Before the first list of every watch, a missing object would look deleted.
    stores.synced.wait().await;
    let result = reconcile_with(cr, &ctx, stores.snapshot(), Timestamp::now()).await;
    ctx.metrics.reconciled(result.is_ok());
    result
}

/// One reconcile of `cr`, seeing the cluster as `snapshot` at time `now`.
pub async fn reconcile_with(
    cr: Arc<MetalLB>,
    ctx: &Context,
    snapshot: Snapshot,
    now: Timestamp,
) -> Result<Action, Error> {
    if cr.name_any() != names::METALLB_CR || cr.namespace().as_deref() != Some(&ctx.namespace) {
        return not_honoured(&cr, ctx, now).await;
    }
    let api: Api<MetalLB> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    finalizer(&api, FINALIZER, cr, |event| async {
        match event {
            Finalizer::Apply(cr) => deploy(&cr, ctx, &snapshot, now).await,
            Finalizer::Cleanup(cr) => cleanup(&cr, ctx, &snapshot, now).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Another MetalLB resource: report why nothing is done for it.
async fn not_honoured(cr: &MetalLB, ctx: &Context, now: Timestamp) -> Result<Action, Error> {
    let message = format!(
        "only the MetalLB resource named {:?} in the operator's namespace {:?} is honoured; this one ({}/{}) is ignored",
        names::METALLB_CR,
        ctx.namespace,
        cr.namespace().unwrap_or_default(),
        cr.name_any()
    );
    let reason = if cr.name_any() != names::METALLB_CR {
        reasons::INCORRECT_NAME
    } else {
        reasons::NOT_IN_OPERATOR_NAMESPACE
    };
    let report = Report {
        generation: cr.metadata.generation.unwrap_or(0),
        problems: vec![Problem { reason, message }],
        ..Default::default()
    };
    let previous = ctx.previous_status(cr);
    let status = status::compute(&report, previous.as_ref(), Time(now));
    write_status(cr, ctx, &status, previous.as_ref()).await?;
    Ok(Action::await_change())
}

/// Problems that only a change of the resource (or of the installation) can solve: the
/// reconcile waits for one instead of retrying.
const WAIT_FOR_A_CHANGE: &[&str] = &[
    reasons::INVALID_SPEC,
    reasons::RENDER_FAILED,
    reasons::UNSUPPORTED_SKEW,
    crds::reasons::DOWNGRADE_REFUSED,
    "PodSecurityTooStrict",
];

/// Validate → render → CRDs → Pod Security → plan → apply → prune → migration → status.
async fn deploy(
    cr: &MetalLB,
    ctx: &Context,
    snapshot: &Snapshot,
    now: Timestamp,
) -> Result<Action, Error> {
    let previous = ctx.previous_status(cr);
    let previous = previous.as_ref();
    let previous_conditions: Vec<Condition> = previous
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut problems: Vec<Problem> = Vec::new();
    let mut rollout = previous.and_then(|s| s.rollout.clone());
    let mut migrated = None;

    let spec = spec::validate(cr).map_err(|e| Problem {
        reason: reasons::INVALID_SPEC,
        message: format!("invalid MetalLB spec: {e}"),
    });
    let rendered_problem = |e: &dyn std::fmt::Display| Problem {
        reason: reasons::RENDER_FAILED,
        message: e.to_string(),
    };
    let objects = match &spec {
        Err(p) => Err(p.clone()),
        Ok(spec) => render::render_spec(spec, &ctx.namespace, &ctx.images)
            .map_err(|e| rendered_problem(&e))
            .and_then(|objects| {
                objects
                    .into_iter()
                    .map(|o| apply::owned(cr, o))
                    .collect::<Result<Vec<Value>, _>>()
                    .map_err(|e| rendered_problem(&e))
            })
            .map(|objects| (spec, objects)),
    };
    match objects {
        Err(p) => problems.push(p),
        Ok((spec, objects)) => {
            let crds_ready = match crd_step(ctx).await {
                Ok(()) => true,
                Err((p, ready)) => {
                    problems.push(p);
                    ready
                }
            };
            if let Err(e) = podsecurity::ensure(
                &ctx.client,
                &ctx.metrics,
                &ctx.namespace,
                snapshot.namespace.as_ref(),
                spec.manage_pod_security,
            )
            .await
            {
                problems.push(Problem {
                    reason: e.reason(),
                    message: e.to_string(),
                });
            }
            let webhooks_answer = if plan::wants_webhook_probe(snapshot, rollout.as_ref()) {
                Some(probe_webhooks(ctx).await)
            } else {
                None
            };
            let plan = plan::plan(&plan::Input {
                desired: &objects,
                snapshot,
                previous: rollout.as_ref(),
                target: &ctx.version,
                now,
                step_timeout: ctx.step_timeout,
                crds_ready,
                webhooks_answer,
            });
            for held in &plan.held {
                tracing::debug!(kind = held.kind, name = held.name, why = %held.why, "held back");
            }
            problems.extend(plan.problem);
            rollout = plan.rollout;
            let mut applied_all = true;
            for obj in &plan.apply {
                let live = snapshot.get(
                    obj["kind"].as_str().unwrap_or_default(),
                    obj["metadata"]["name"].as_str().unwrap_or_default(),
                );
                if let Err(e) =
                    apply::apply(&ctx.client, &ctx.metrics, &ctx.namespace, obj, live).await
                {
                    problems.push(Problem {
                        reason: e.reason(),
                        message: e.to_string(),
                    });
                    applied_all = false;
                    // The order matters (identities and RBAC before the workloads): stop here.
                    break;
                }
            }
            // Pruning after a failed apply could remove what the failed object still needs.
            if applied_all {
                let doomed = apply::to_prune(snapshot.owned_names(), &objects);
                if let Err(e) =
                    apply::prune(&ctx.client, &ctx.metrics, &ctx.namespace, &doomed).await
                {
                    problems.push(Problem {
                        reason: e.reason(),
                        message: e.to_string(),
                    });
                }
            }
            let webhooks_ready = status::deployment_rollout(snapshot.controller().as_ref())
                == status::Rollout::Ready
                && status::webhook_rollout(snapshot.webhooks().as_ref()) == status::Rollout::Ready;
            migrated = match (&snapshot.legacy_configmap, webhooks_ready) {
                (Some(cm), true) => {
                    match migration::run(ctx, cm, spec.bgp_backend, &previous_conditions).await {
                        Ok(outcome) => Some(outcome),
                        Err(e) => {
                            problems.push(Problem {
                                reason: e.reason(),
                                message: e.to_string(),
                            });
                            None
                        }
                    }
                }
                (cm, _) => migration::waiting(cm.as_ref(), &previous_conditions),
            };
        }
    }

    let mut report = Report {
        generation: cr.metadata.generation.unwrap_or(0),
        version: Some(&ctx.version),
        deployed: Some(snapshot),
        rollout,
        problems,
        migration: migrated,
    };
    let mut new = status::compute(&report, previous, Time(now));
    if let Some(upgradeable) = condition(&new, status::UPGRADEABLE)
        && let Err(e) = ctx
            .operator_condition
            .publish(&ctx.client, &ctx.metrics, &ctx.namespace, &upgradeable)
            .await
    {
        report.problems.push(Problem {
            reason: reasons::OPERATOR_CONDITION_FAILED,
            message: format!("failed to report Upgradeable to OLM's OperatorCondition: {e}"),
        });
        new = status::compute(&report, previous, Time(now));
    }
    announce_degraded(cr, ctx, &new, previous).await;
    write_status(cr, ctx, &new, previous).await?;

    if let Some(first) = report.problems.first() {
        if WAIT_FOR_A_CHANGE.contains(&first.reason) {
            return Ok(Action::await_change());
        }
        if report.rollout.is_none() {
            return Err(Error::Step {
                reason: first.reason,
                message: first.message.clone(),
            });
        }
    }
    if report.rollout.is_some() {
        // Step progress arrives through the watches; the deadline and the webhooks' answer do
        // not.
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    // Rollout progress arrives through the watches; this is a backstop.
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// The CRD step, once per process until it passes. `Err` carries the problem and whether the
/// CRDs are usable anyway (a failed stored-version migration does not hold the rollout).
async fn crd_step(ctx: &Context) -> Result<(), (Problem, bool)> {
    if ctx.crds_checked.load(Ordering::Relaxed) {
        return Ok(());
    }
    let ours = metallb_api::crd::all();
    let live = crds::read(&ctx.client, &ours)
        .await
        .map_err(|p| (p, false))?;
    let migrations = crds::check(&ours, &live, &ctx.version).map_err(|p| (p, false))?;
    for m in &migrations {
        crds::migrate(&ctx.client, &ctx.metrics, m)
            .await
            .map_err(|p| (p, true))?;
    }
    ctx.crds_checked.store(true, Ordering::Relaxed);
    Ok(())
}

/// Whether the webhooks answer: a server-side dry run of an (always valid) empty
/// L2Advertisement goes through them and is never stored.
async fn probe_webhooks(ctx: &Context) -> Result<(), String> {
    let api: Api<L2Advertisement> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let probe: L2Advertisement = serde_json::from_value(json!({
        "apiVersion": "metallb.io/v1beta1",
        "kind": "L2Advertisement",
        "metadata": { "name": WEBHOOK_PROBE, "namespace": ctx.namespace },
        "spec": {},
    }))
    .expect("the probe is an L2Advertisement");
    let params = PostParams {
        dry_run: true,
        field_manager: Some(field_managers::OPERATOR.into()),
    };
    api.create(&params, &probe)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The MetalLB resource is being deleted: namespaced objects go with it (owner references);
/// cluster-scoped ones, the speakers' memberlist Secret and the Pod Security labels are removed
/// here.
///
/// First the controller is stopped, and the finalizer stays until its pods are gone (at most
/// [`CONTROLLER_STOP_GRACE`]): the Role it needs to release its Lease is garbage-collected with
/// the resource, and a Lease that is not released makes the next install's controller wait for
/// it to expire before it becomes leader and creates the speakers' memberlist key.
async fn cleanup(
    cr: &MetalLB,
    ctx: &Context,
    snapshot: &Snapshot,
    now: Timestamp,
) -> Result<Action, Error> {
    let controller_pods = snapshot
        .pods
        .iter()
        .filter(|p| {
            p.labels()
                .get(snapshot::COMPONENT_LABEL)
                .map(String::as_str)
                == Some(plan::Step::Controller.component())
        })
        .count();
    let deleting_for = cr
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| now.duration_since(t.0).unsigned_abs())
        .unwrap_or_default();
    if controller_pods > 0 && deleting_for < CONTROLLER_STOP_GRACE {
        let deployment = snapshot.get("Deployment", names::CONTROLLER_DEPLOYMENT);
        if deployment.is_some_and(|d| d["metadata"].get("deletionTimestamp").is_none()) {
            let kind = apply::kind_of(&json!({ "kind": "Deployment" })).expect("a known kind");
            match kind
                .api(&ctx.client, &ctx.namespace)
                .delete(
                    names::CONTROLLER_DEPLOYMENT,
                    &kube::api::DeleteParams::background(),
                )
                .await
            {
                Ok(_) => ctx.metrics.write("delete", "Deployment"),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => tracing::warn!(error = %e, "failed to stop the controller first"),
            }
        }
        return Err(Error::Waiting(format!(
            "waiting for {controller_pods} controller pod(s) to stop and release their Lease"
        )));
    }
    let managed = spec::validate(cr).map_or_else(
        |_| {
            cr.annotations()
                .get(spec::MANAGE_POD_SECURITY_ANNOTATION)
                .is_none_or(|v| v != "false")
        },
        |s| s.manage_pod_security,
    );
    let result = async {
        let mut deleted = apply::delete_cluster_scoped(&ctx.client, &ctx.metrics, &ctx.namespace)
            .await
            .map_err(|e| e.to_string())?;
        if apply::delete_memberlist_secret(&ctx.client, &ctx.metrics, &ctx.namespace)
            .await
            .map_err(|e| e.to_string())?
        {
            deleted += 1;
        }
        podsecurity::release(&ctx.client, &ctx.metrics, &ctx.namespace, managed)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(deleted)
    }
    .await;
    match result {
        Ok(deleted) => {
            tracing::info!(deleted, "removed the cluster-scoped objects");
            if let Some(uid) = cr.uid() {
                ctx.written.lock().expect("not poisoned").remove(&uid);
            }
            let done = Condition {
                type_: status::UPGRADEABLE.into(),
                status: "True".into(),
                reason: "NoMetalLB".into(),
                message: "the MetalLB resource is deleted".into(),
                observed_generation: cr.metadata.generation,
                last_transition_time: Time(now),
            };
            if let Err(e) = ctx
                .operator_condition
                .publish(&ctx.client, &ctx.metrics, &ctx.namespace, &done)
                .await
            {
                tracing::warn!(error = %e, "failed to report Upgradeable to OLM");
            }
            Ok(Action::await_change())
        }
        Err(message) => {
            let message = format!("failed to clean up: {message}");
            let report = Report {
                generation: cr.metadata.generation.unwrap_or(0),
                version: Some(&ctx.version),
                problems: vec![Problem {
                    reason: reasons::CLEANUP_FAILED,
                    message: message.clone(),
                }],
                ..Default::default()
            };
            let previous = ctx.previous_status(cr);
            let new = status::compute(&report, previous.as_ref(), Time(now));
            write_status(cr, ctx, &new, previous.as_ref()).await?;
            Err(Error::Step {
                reason: reasons::CLEANUP_FAILED,
                message,
            })
        }
    }
}

fn condition(status: &MetalLBStatus, type_: &str) -> Option<Condition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

/// A Warning Event when Degraded turns True or changes reason.
async fn announce_degraded(
    cr: &MetalLB,
    ctx: &Context,
    new: &MetalLBStatus,
    previous: Option<&MetalLBStatus>,
) {
    let Some(now) = condition(new, status::DEGRADED).filter(|c| c.status == "True") else {
        return;
    };
    let before = previous.and_then(|p| condition(p, status::DEGRADED));
    if before.is_some_and(|b| b.status == "True" && b.reason == now.reason) {
        return;
    }
    let event = KubeEvent {
        type_: EventType::Warning,
        reason: now.reason.clone(),
        note: Some(now.message.chars().take(1024).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    match ctx.recorder.publish(&event, &cr.object_ref(&())).await {
        Ok(()) => ctx.metrics.write("create", "Event"),
        Err(e) => tracing::warn!(error = %e, "failed to publish an event"),
    }
}

/// Writes `new` unless `previous` (the stored status, or the one this process wrote last)
/// already says the same.
async fn write_status(
    cr: &MetalLB,
    ctx: &Context,
    new: &MetalLBStatus,
    previous: Option<&MetalLBStatus>,
) -> Result<(), Error> {
    if status::unchanged(new, previous) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": "metallb.io/v1beta1",
        "kind": "MetalLB",
        "status": new,
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
    ctx.metrics.write("status", "MetalLB");
    if let Some(uid) = cr.uid() {
        ctx.written
            .lock()
            .expect("not poisoned")
            .insert(uid, new.clone());
    }
    Ok(())
}

/// The Event reporter of the operator.
pub fn reporter() -> Reporter {
    Reporter {
        controller: field_managers::OPERATOR.into(),
        instance: std::env::var("POD_NAME").ok(),
    }
}
