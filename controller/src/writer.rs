//! The one task that writes to the API for the allocation side of the controller: Service
//! statuses and pool annotations, IPAddressPool statuses, the ConfigurationState, Events, and
//! the memberlist Secret. The core computes what to write ([`Command`]s); this task sends it.
//! (The Lease and the webhook certificate have their own small loops: `lease`,
//! `webhook::rotation`.)
//!
//! ```text
//!  core ──Write(target, what)──►  pending (latest per object) ──► up to IN_FLIGHT requests
//!       ──Publish(event)───────►  events (in order)               failed: retried with backoff
//!       ──Reset (lost lead)────►  pending, events, retries dropped superseded: the newer one wins
//! ```
//!
//! Writes for one object are coalesced: only the latest desired state is sent, and never two
//! requests for one object at once, so they cannot arrive out of order. The task must not
//! decide anything: what it sends is what the core asked for (the memberlist key's random bytes
//! aside, drawn here so the core stays a function of its input).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use k8s_openapi::api::core::v1::{ObjectReference, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::{Api, Client};
use metallb_api::configstate;
use metallb_api::constants::field_managers;
use metallb_api::v1beta1::{ConfigurationState, IPAddressPool};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::allocator;
use crate::metrics::Metrics;

/// Requests in flight at once. The API server handles them concurrently; more than a few dozen
/// only queue up on its side.
const IN_FLIGHT: usize = 32;
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The object a write is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Service {
        namespace: String,
        name: String,
    },
    Pool(String),
    ConfigurationState,
    /// The memberlist Secret, by name.
    MemberlistSecret(String),
}

/// What to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Apply this body to the Service's `status` (IPs and pool annotation); then, if asked,
    /// remove the deprecated pool annotation.
    ServiceAssigned { body: Value, drop_deprecated: bool },
    /// Merge this patch into the Service's `status` (clearing).
    ServiceCleared { patch: Value },
    /// Apply this body to the pool's `status`.
    PoolStatus { body: Value },
    /// Apply the object (metadata), then its status.
    ConfigurationState { object: Value, status: Value },
    /// Create the Secret with a fresh key if it does not exist; never replace it.
    MemberlistSecret { owner: Option<OwnerReference> },
}

/// What the core asks the writer to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Write(Target, Write),
    /// Record an Event on the object (a Service).
    Publish(Box<ObjectReference>, allocator::Event),
    /// Leadership lost: forget everything pending, so nothing more is written.
    Reset,
}

/// The handle on the writer task.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Command>,
}

impl Writer {
    /// Hands commands over, in order; they are sent as the task gets to them.
    pub fn send(&self, commands: impl IntoIterator<Item = Command>) {
        for c in commands {
            let _ = self.tx.send(c);
        }
    }
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("failed to write the status of Service {namespace}/{name}: {source}")]
    Service {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error("failed to write the status of IPAddressPool {name}: {source}")]
    Pool { name: String, source: kube::Error },
    #[error("failed to write ConfigurationState {name}: {source}")]
    ConfigurationState { name: String, source: kube::Error },
    #[error("failed to create the memberlist Secret {name}: {source}")]
    MemberlistSecret { name: String, source: kube::Error },
    #[error("failed to draw a random memberlist key: {0}")]
    MemberlistKey(String),
    #[error("failed to publish an Event: {0}")]
    Event(#[source] kube::Error),
}

impl WriteError {
    /// The object is gone: nothing to retry.
    fn is_not_found(&self) -> bool {
        let source = match self {
            Self::Service { source, .. }
            | Self::Pool { source, .. }
            | Self::ConfigurationState { source, .. }
            | Self::MemberlistSecret { source, .. }
            | Self::Event(source) => source,
            Self::MemberlistKey(_) => return false,
        };
        matches!(source, kube::Error::Api(s) if s.code == 404)
    }
}

/// Where the writer writes.
#[derive(Clone)]
struct Sink {
    client: Client,
    namespace: String,
    recorder: Recorder,
    metrics: Metrics,
}

/// Starts the writer task.
pub fn spawn(client: Client, namespace: String, instance: String, metrics: Metrics) -> Writer {
    let (tx, rx) = mpsc::unbounded_channel();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: field_managers::CONTROLLER.to_string(),
            instance: Some(instance),
        },
    );
    let sink = Sink {
        client,
        namespace,
        recorder,
        metrics,
    };
    tokio::spawn(run(sink, rx));
    Writer { tx }
}

type Job = (Option<(Target, Write)>, Result<(), WriteError>);

async fn run(sink: Sink, mut rx: mpsc::UnboundedReceiver<Command>) {
    let mut pending: HashMap<Target, Write> = HashMap::new();
    let mut queue: VecDeque<Target> = VecDeque::new();
    let mut in_flight: HashSet<Target> = HashSet::new();
    let mut attempts: HashMap<Target, u32> = HashMap::new();
    let mut events: VecDeque<(Box<ObjectReference>, allocator::Event)> = VecDeque::new();
    let mut jobs: FuturesUnordered<futures::future::BoxFuture<'static, Job>> =
        FuturesUnordered::new();
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel::<(Target, Write)>();
    // Bumped on Reset, so retries scheduled before it are dropped.
    let mut epoch: u64 = 0;
    let (epoch_tx, epoch_rx) = tokio::sync::watch::channel(0u64);

    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => return,
                Some(Command::Write(target, write)) => {
                    attempts.remove(&target);
                    enqueue(&mut pending, &mut queue, &in_flight, target, write);
                }
                Some(Command::Publish(regarding, event)) => events.push_back((regarding, event)),
                Some(Command::Reset) => {
                    pending.clear();
                    queue.clear();
                    events.clear();
                    attempts.clear();
                    epoch += 1;
                    let _ = epoch_tx.send(epoch);
                }
            },
            Some((target, write)) = retry_rx.recv() => {
                // A newer write for the same object supersedes the retry.
                if !pending.contains_key(&target) {
                    enqueue(&mut pending, &mut queue, &in_flight, target, write);
                }
            }
            Some((done, result)) = jobs.next(), if !jobs.is_empty() => {
                let Some((target, write)) = done else {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "event not published");
                    }
                    continue;
                };
                in_flight.remove(&target);
                // A newer write that arrived while this one was in flight goes next.
                if pending.contains_key(&target) {
                    queue.push_back(target.clone());
                }
                match result {
                    Ok(()) => {
                        attempts.remove(&target);
                    }
                    Err(e) if e.is_not_found() => {
                        tracing::debug!(error = %e, "object gone, write dropped");
                        attempts.remove(&target);
                    }
                    Err(e) => {
                        sink.metrics.count_update_error();
                        let n = attempts.entry(target.clone()).or_insert(0);
                        *n += 1;
                        let delay = (RETRY_MIN * 2u32.saturating_pow(*n - 1)).min(RETRY_MAX);
                        tracing::warn!(error = %e, retry_in = ?delay, "write failed");
                        if !pending.contains_key(&target) {
                            let tx = retry_tx.clone();
                            let mut epochs = epoch_rx.clone();
                            let at = epoch;
                            tokio::spawn(async move {
                                tokio::time::sleep(delay).await;
                                if *epochs.borrow_and_update() == at {
                                    let _ = tx.send((target, write));
                                }
                            });
                        }
                    }
                }
            }
        }
        while jobs.len() < IN_FLIGHT {
            if let Some(target) = queue.pop_front() {
                let Some(write) = pending.remove(&target) else {
                    continue;
                };
                in_flight.insert(target.clone());
                sink.metrics.count_update();
                let s = sink.clone();
                jobs.push(Box::pin(async move {
                    let result = s.write(&target, &write).await;
                    (Some((target, write)), result)
                }));
            } else if let Some((regarding, event)) = events.pop_front() {
                let s = sink.clone();
                jobs.push(Box::pin(async move {
                    (None, s.publish(&regarding, &event).await)
                }));
            } else {
                break;
            }
        }
    }
}

/// Records the latest write for `target` and queues it unless it is queued or in flight (it is
/// then picked up when the request in flight completes).
fn enqueue(
    pending: &mut HashMap<Target, Write>,
    queue: &mut VecDeque<Target>,
    in_flight: &HashSet<Target>,
    target: Target,
    write: Write,
) {
    let fresh = pending.insert(target.clone(), write).is_none();
    if fresh && !in_flight.contains(&target) {
        queue.push_back(target);
    }
}

impl Sink {
    fn apply_params() -> PatchParams {
        PatchParams::apply(field_managers::CONTROLLER).force()
    }

    fn merge_params() -> PatchParams {
        PatchParams {
            field_manager: Some(field_managers::CONTROLLER.to_string()),
            ..Default::default()
        }
    }

    async fn write(&self, target: &Target, write: &Write) -> Result<(), WriteError> {
        match (target, write) {
            (Target::Service { namespace, name }, w) => {
                let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
                let err = |source| WriteError::Service {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    source,
                };
                match w {
                    Write::ServiceAssigned {
                        body,
                        drop_deprecated,
                    } => {
                        api.patch_status(name, &Self::apply_params(), &Patch::Apply(body))
                            .await
                            .map_err(err)?;
                        if *drop_deprecated {
                            let patch = serde_json::json!({"metadata": {"annotations": {
                                crate::service::deprecated_pool_annotation(): null}}});
                            api.patch_status(name, &Self::merge_params(), &Patch::Merge(&patch))
                                .await
                                .map_err(err)?;
                        }
                    }
                    Write::ServiceCleared { patch } => {
                        api.patch_status(name, &Self::merge_params(), &Patch::Merge(patch))
                            .await
                            .map_err(err)?;
                    }
                    other => unreachable!("not a Service write: {other:?}"),
                }
                tracing::debug!(service = %format!("{namespace}/{name}"), "status written");
                Ok(())
            }
            (Target::Pool(name), Write::PoolStatus { body }) => {
                let api: Api<IPAddressPool> = Api::namespaced(self.client.clone(), &self.namespace);
                api.patch_status(name, &Self::apply_params(), &Patch::Apply(body))
                    .await
                    .map(|_| ())
                    .map_err(|source| WriteError::Pool {
                        name: name.clone(),
                        source,
                    })
            }
            (Target::ConfigurationState, Write::ConfigurationState { object, status }) => {
                let api: Api<ConfigurationState> =
                    Api::namespaced(self.client.clone(), &self.namespace);
                let name = configstate::Reporter::Controller.name();
                let err = |source| WriteError::ConfigurationState {
                    name: name.clone(),
                    source,
                };
                api.patch(&name, &Self::apply_params(), &Patch::Apply(object))
                    .await
                    .map_err(err)?;
                api.patch_status(&name, &Self::apply_params(), &Patch::Apply(status))
                    .await
                    .map_err(err)?;
                Ok(())
            }
            (Target::MemberlistSecret(name), Write::MemberlistSecret { owner }) => {
                let key = crate::memberlist::key()
                    .map_err(|e| WriteError::MemberlistKey(e.to_string()))?;
                let secret = crate::memberlist::secret(&self.namespace, name, owner.as_ref(), &key);
                let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
                match api.create(&PostParams::default(), &secret).await {
                    Ok(_) => {
                        tracing::info!(secret = %name, "memberlist secret created");
                        Ok(())
                    }
                    // It exists: the speakers already share a key, which must stay.
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                    Err(source) => Err(WriteError::MemberlistSecret {
                        name: name.clone(),
                        source,
                    }),
                }
            }
            (t, w) => unreachable!("write {w:?} does not fit {t:?}"),
        }
    }

    async fn publish(
        &self,
        regarding: &ObjectReference,
        event: &allocator::Event,
    ) -> Result<(), WriteError> {
        let ev = KubeEvent {
            type_: match event.type_ {
                allocator::EventType::Normal => EventType::Normal,
                allocator::EventType::Warning => EventType::Warning,
            },
            reason: event.reason.to_string(),
            note: Some(event.message.clone()),
            action: "Allocate".to_string(),
            secondary: None,
        };
        self.recorder
            .publish(&ev, regarding)
            .await
            .map_err(WriteError::Event)
    }
}

#[cfg(test)]
mod tests {
    //! Scenarios against a mocked API server: the requests the writer must send, in order.

    use super::*;
    use axum::http::{Request, Response, StatusCode};
    use futures::FutureExt;
    use kube::client::Body;
    use serde_json::json;
    use tower_test::mock::{self, Handle};

    type ApiServer = Handle<Request<Body>, Response<Body>>;

    fn writer() -> (Writer, ApiServer, Metrics) {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let metrics = Metrics::new();
        let w = spawn(
            client,
            "metallb-system".into(),
            "test".into(),
            metrics.clone(),
        );
        (w, handle, metrics)
    }

    fn target(name: &str) -> Target {
        Target::Service {
            namespace: "blue".into(),
            name: name.into(),
        }
    }

    fn write(target: Target, write: Write) -> [Command; 1] {
        [Command::Write(target, write)]
    }

    fn assigned(ip: &str) -> Write {
        Write::ServiceAssigned {
            body: json!({"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}),
            drop_deprecated: false,
        }
    }

    /// The next request: method, path and query, body.
    async fn next(
        api: &mut ApiServer,
    ) -> (
        String,
        String,
        serde_json::Value,
        mock::SendResponse<Response<Body>>,
    ) {
        let (req, send) = tokio::time::timeout(Duration::from_secs(60), api.next_request())
            .await
            .expect("a request within a minute")
            .expect("the writer is running");
        let method = req.method().to_string();
        let uri = req.uri().to_string();
        let body = req.into_body().collect_bytes().await.unwrap();
        (
            method,
            uri,
            serde_json::from_slice(&body).unwrap_or_default(),
            send,
        )
    }

    fn respond(send: mock::SendResponse<Response<Body>>, status: StatusCode) {
        respond_as(send, status, "Service");
    }

    /// Answers with an object of `kind` on success, a Status otherwise.
    fn respond_as(send: mock::SendResponse<Response<Body>>, status: StatusCode, kind: &str) {
        let body = if status.is_success() {
            json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": "x", "namespace": "blue"}})
        } else {
            json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": status.as_u16(), "reason": "x", "message": "x"})
        };
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    }

    #[tokio::test(start_paused = true)]
    async fn writes_for_one_service_are_coalesced_and_never_overlap() {
        let (w, mut api, metrics) = writer();
        w.send(write(target("web"), assigned("192.0.2.200")));
        let (method, uri, body, send) = next(&mut api).await;
        assert_eq!(method, "PATCH");
        assert_eq!(
            uri,
            "/api/v1/namespaces/blue/services/web/status?&force=true&fieldManager=metallb-controller"
        );
        assert_eq!(
            body["status"]["loadBalancer"]["ingress"][0]["ip"],
            "192.0.2.200"
        );
        // Two more writes while the first is in flight: only the last one is sent, after it.
        w.send(write(target("web"), assigned("192.0.2.201")));
        w.send(write(target("web"), assigned("192.0.2.202")));
        // Time is paused: the sleep ends once every task is idle, so the writer has taken both
        // writes in before the first request is answered.
        tokio::time::sleep(Duration::from_millis(50)).await;
        respond(send, StatusCode::OK);
        let (_, _, body, send) = next(&mut api).await;
        assert_eq!(
            body["status"]["loadBalancer"]["ingress"][0]["ip"],
            "192.0.2.202"
        );
        respond(send, StatusCode::OK);
        w.send(write(
            target("other"),
            Write::ServiceCleared {
                patch: json!({"status": {"loadBalancer": {"ingress": null}}}),
            },
        ));
        let (method, uri, body, send) = next(&mut api).await;
        assert_eq!(
            (method.as_str(), uri.as_str()),
            (
                "PATCH",
                "/api/v1/namespaces/blue/services/other/status?&fieldManager=metallb-controller"
            )
        );
        assert_eq!(body, json!({"status": {"loadBalancer": {"ingress": null}}}));
        respond(send, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            api.next_request().now_or_never().is_none(),
            "nothing more is sent"
        );
        assert_eq!(metrics.updates(), 3);
        assert_eq!(metrics.update_errors(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_write_is_retried_and_a_write_for_a_deleted_object_is_not() {
        let (w, mut api, metrics) = writer();
        w.send(write(target("web"), assigned("192.0.2.200")));
        let (_, uri, _, send) = next(&mut api).await;
        respond(send, StatusCode::INTERNAL_SERVER_ERROR);
        let (_, again, body, send) = next(&mut api).await;
        assert_eq!(again, uri, "the same write, after a backoff");
        assert_eq!(
            body["status"]["loadBalancer"]["ingress"][0]["ip"],
            "192.0.2.200"
        );
        respond(send, StatusCode::OK);

        w.send(write(target("gone"), assigned("192.0.2.201")));
        let (_, _, _, send) = next(&mut api).await;
        respond(send, StatusCode::NOT_FOUND);
        w.send(write(target("next"), assigned("192.0.2.202")));
        let (_, uri, _, send) = next(&mut api).await;
        assert!(
            uri.contains("/services/next/"),
            "no retry for the deleted one: {uri}"
        );
        respond(send, StatusCode::OK);
        assert_eq!(metrics.update_errors(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn losing_the_lead_drops_pending_writes_and_retries() {
        let (w, mut api, _) = writer();
        w.send(write(target("web"), assigned("192.0.2.200")));
        let (_, _, _, send) = next(&mut api).await;
        respond(send, StatusCode::INTERNAL_SERVER_ERROR);
        // Lost leadership before the retry is due.
        tokio::time::sleep(Duration::from_millis(10)).await;
        w.send([Command::Reset]);
        w.send(write(target("later"), assigned("192.0.2.210")));
        let (_, uri, _, send) = next(&mut api).await;
        assert!(uri.contains("/services/later/"), "{uri}");
        respond(send, StatusCode::OK);
        let quiet = tokio::time::timeout(Duration::from_secs(120), api.next_request()).await;
        assert!(quiet.is_err(), "the dropped retry was sent");
    }

    #[tokio::test(start_paused = true)]
    async fn the_memberlist_secret_is_created_once_and_an_existing_one_is_kept() {
        let (w, mut api, metrics) = writer();
        let owner = crate::memberlist::deployment_owner("controller", "u-1");
        let ensure = write(
            Target::MemberlistSecret("memberlist".into()),
            Write::MemberlistSecret { owner: Some(owner) },
        );
        w.send(ensure.clone());
        let (method, uri, body, send) = next(&mut api).await;
        assert_eq!(
            (method.as_str(), uri.as_str()),
            ("POST", "/api/v1/namespaces/metallb-system/secrets?")
        );
        let key = body["data"]["secretkey"].as_str().unwrap().to_string();
        assert_eq!(
            body,
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "memberlist",
                    "namespace": "metallb-system",
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "controller", "uid": "u-1"}],
                },
                "data": {"secretkey": key},
            })
        );
        respond_as(send, StatusCode::CREATED, "Secret");
        // Asked again (a new leader): it exists, which is not an error and is not retried.
        w.send(ensure);
        let (method, _, _, send) = next(&mut api).await;
        assert_eq!(method, "POST");
        respond(send, StatusCode::CONFLICT);
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(api.next_request().now_or_never().is_none(), "no retry");
        assert_eq!((metrics.updates(), metrics.update_errors()), (2, 0));
    }
}
