//! Scenario tests of one reconcile against a mocked API server (tower-test): each scenario lists
//! the exact requests the operator must send, in order, with the answers; a request that is not
//! the next expected one fails the test, and so does an expected request that never comes
//! (the reconcile runs under a timeout).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use jiff::Timestamp;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::{Client, ResourceExt};
use pretty_assertions::assert_eq;
use semver::Version;
use serde_json::{Value, json};

use metallb_api::v1beta1::{MetalLB, MetalLBStatus, RolloutStatus};

use super::fixtures::*;
use super::snapshot::Snapshot;
use super::*;

/// How the mocked API server answers one request.
type Answer = Box<dyn Fn(&Value) -> (StatusCode, Value) + Send>;

/// One expected request: `METHOD path?query`, and its answer.
struct Call {
    request: String,
    answer: Answer,
}

fn call(
    request: impl Into<String>,
    answer: impl Fn(&Value) -> (StatusCode, Value) + Send + 'static,
) -> Call {
    Call {
        request: request.into(),
        answer: Box::new(answer),
    }
}

/// The request body back: what a server-side apply of an object we own returns, near enough.
fn echo(body: &Value) -> (StatusCode, Value) {
    (StatusCode::OK, body.clone())
}

fn refuse(
    code: StatusCode,
    reason: &'static str,
    message: &'static str,
) -> impl Fn(&Value) -> (StatusCode, Value) {
    move |_| {
        (
            code,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": message, "reason": reason, "code": code.as_u16()}),
        )
    }
}

const APPLY: &str = "?&force=true&fieldManager=metallb-operator";

/// The server-side apply request of a rendered object.
fn apply_of(obj: &Value) -> String {
    let k = apply::kind_of(obj).unwrap();
    let prefix = if k.group.is_empty() {
        "/api/v1".to_string()
    } else {
        format!("/apis/{}/{}", k.group, k.version)
    };
    let ns = if k.namespaced {
        format!("/namespaces/{NS}")
    } else {
        String::new()
    };
    format!(
        "PATCH {prefix}{ns}/{}/{}{APPLY}",
        k.plural,
        obj["metadata"]["name"].as_str().unwrap()
    )
}

const STATUS: &str = "PATCH /apis/metallb.io/v1beta1/namespaces/metallb-system/metallbs/metallb/status?&force=true&fieldManager=metallb-operator";
const EVENT: &str = "POST /apis/events.k8s.io/v1/namespaces/metallb-system/events?";

/// The status patch: answered with the resource carrying that status; `seen` receives it.
fn status_write(cr: &MetalLB, seen: Arc<std::sync::Mutex<Option<MetalLBStatus>>>) -> Call {
    let cr = cr.clone();
    call(STATUS, move |body| {
        let status: MetalLBStatus = serde_json::from_value(body["status"].clone()).unwrap();
        *seen.lock().unwrap() = Some(status.clone());
        let mut cr = cr.clone();
        cr.status = Some(status);
        (StatusCode::OK, serde_json::to_value(cr).unwrap())
    })
}

/// A mocked API server expecting `calls`, in order. Returns a client talking to it, the calls
/// still expected, and the serving task (which panics on a request it did not expect).
fn server(
    calls: Vec<Call>,
) -> (
    Client,
    Arc<std::sync::Mutex<VecDeque<Call>>>,
    tokio::task::JoinHandle<()>,
) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let expected = Arc::new(std::sync::Mutex::new(VecDeque::from(calls)));
    let remaining = expected.clone();
    let task = tokio::spawn(async move {
        let mut n = 0;
        while let Some((request, send)) = handle.next_request().await {
            n += 1;
            let line = format!("{} {}", request.method(), request.uri());
            let body = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let Some(call) = remaining.lock().unwrap().pop_front() else {
                panic!("request #{n} was not expected: {line}\nbody: {body}");
            };
            assert_eq!(line, call.request, "request #{n} of the scenario");
            let (code, answer) = (call.answer)(&body);
            let response = Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap();
            send.send_response(response);
        }
    });
    (Client::new(service, NS), expected, task)
}

fn context(client: Client, crds_checked: bool) -> Context {
    Context {
        recorder: Recorder::new(client.clone(), reporter()),
        client,
        namespace: NS.into(),
        images: Images::release(),
        metrics: Arc::new(Metrics::default()),
        version: this_version(),
        step_timeout: Duration::from_secs(300),
        crds_checked: AtomicBool::new(crds_checked),
        operator_condition: OperatorCondition::new(None),
        stores: None,
        written: Default::default(),
    }
}

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

/// Runs one reconcile of `cr` seeing `snapshot`, against a server expecting `calls`; fails if
/// a request was not expected or an expected one never came.
async fn scenario(
    cr: &MetalLB,
    snapshot: Snapshot,
    calls: Vec<Call>,
    crds_checked: bool,
) -> (Result<Action, Error>, Context) {
    let (client, remaining, server) = server(calls);
    let ctx = context(client, crds_checked);
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        reconcile_with(Arc::new(cr.clone()), &ctx, snapshot, now()),
    )
    .await;
    if server.is_finished() {
        // The server stops only by panicking: show why.
        server.await.unwrap();
    } else {
        server.abort();
    }
    let result = result.expect("the reconcile finishes (a request it waits for is not answered?)");
    let left: Vec<String> = remaining
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.request.clone())
        .collect();
    assert!(left.is_empty(), "expected requests never came: {left:?}");
    (result, ctx)
}

/// The status a reconcile writes for a healthy installation (no legacy ConfigMap).
fn settled(cr: &MetalLB, snapshot: &Snapshot) -> MetalLBStatus {
    let v = this_version();
    status::compute(
        &Report {
            generation: cr.metadata.generation.unwrap(),
            version: Some(&v),
            deployed: Some(snapshot),
            migration: Some(migration::Outcome::NoConfigMap),
            ..Default::default()
        },
        None,
        Time(now()),
    )
}

fn conditions(status: &MetalLBStatus) -> Vec<String> {
    status
        .conditions
        .iter()
        .flatten()
        .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
        .collect()
}

type Seen = Arc<std::sync::Mutex<Option<MetalLBStatus>>>;

#[tokio::test]
async fn a_fresh_install_applies_every_rendered_object_in_order_then_writes_the_status_once() {
    let cr = metallb(json!({}));
    let desired = rendered(&cr);
    let seen = Seen::default();
    let mut calls: Vec<Call> = desired.iter().map(|o| call(apply_of(o), echo)).collect();
    calls.push(status_write(&cr, seen.clone()));
    let (result, ctx) = scenario(&cr, snapshot([], vec![]), calls, true).await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(300)));
    let status = seen.lock().unwrap().clone().unwrap();
    assert_eq!(
        conditions(&status),
        [
            "Available=False ControllerNotReady: the controller Deployment does not exist yet; the speaker DaemonSet does not exist yet; the validating webhook configuration does not exist yet",
            "Upgradeable=False RolloutInProgress: the controller Deployment does not exist yet; the speaker DaemonSet does not exist yet; the validating webhook configuration does not exist yet",
            "Progressing=True RollingOut: the controller Deployment does not exist yet; the speaker DaemonSet does not exist yet; the validating webhook configuration does not exist yet",
            "Degraded=False AsExpected: no problem found",
        ]
    );
    assert_eq!(status.version, Some(this_version().to_string()));
    let mut want: std::collections::BTreeMap<String, usize> = Default::default();
    for o in &desired {
        *want
            .entry(format!(
                "metallb_operator_api_writes_total{{verb=\"apply\",kind=\"{}\"}}",
                o["kind"].as_str().unwrap()
            ))
            .or_default() += 1;
    }
    want.insert(
        "metallb_operator_api_writes_total{verb=\"status\",kind=\"MetalLB\"}".into(),
        1,
    );
    let want: Vec<String> = want.into_iter().map(|(k, n)| format!("{k} {n}")).collect();
    let got: Vec<String> = metallb_runtime::metrics::render(ctx.metrics.as_ref())
        .lines()
        .filter(|l| l.starts_with("metallb_operator_api_writes_total{"))
        .map(String::from)
        .collect();
    assert_eq!(got, want, "every write is counted by verb and kind");
}

#[tokio::test]
async fn a_reconcile_of_an_unchanged_installation_sends_nothing() {
    let cr = metallb(json!({}));
    let snapshot = installed(&cr);
    let mut settled_cr = cr.clone();
    settled_cr.status = Some(settled(&cr, &snapshot));
    let (result, _) = scenario(&settled_cr, snapshot, vec![], true).await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(300)));
}

#[tokio::test]
async fn an_object_no_longer_rendered_is_pruned() {
    let cr = metallb(json!({}));
    let mut snapshot = installed(&cr);
    let frr = metallb(json!({"bgpBackend": "frr"}));
    let startup = find(&rendered(&frr), "ConfigMap", "frr-startup").clone();
    snapshot
        .owned
        .insert(("ConfigMap".into(), "frr-startup".into()), startup.clone());
    let mut settled_cr = cr.clone();
    settled_cr.status = Some(settled(&cr, &installed(&cr)));
    let calls = vec![call(
        "DELETE /api/v1/namespaces/metallb-system/configmaps/frr-startup?",
        move |_| (StatusCode::OK, startup.clone()),
    )];
    let (result, ctx) = scenario(&settled_cr, snapshot, calls, true).await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(300)));
    assert!(
        metallb_runtime::metrics::render(ctx.metrics.as_ref())
            .contains("metallb_operator_api_writes_total{verb=\"delete\",kind=\"ConfigMap\"} 1")
    );
}

#[tokio::test]
async fn deleting_the_resource_removes_the_cluster_scoped_objects_and_drops_the_finalizer() {
    let mut cr = metallb(json!({}));
    cr.metadata.deletion_timestamp = Some(Time(now()));
    let list = |kind: &str, names: &[&str]| {
        let items: Vec<Value> = names
            .iter()
            .map(|n| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": n}}))
            .collect();
        let body = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {}, "items": items});
        let _ = kind;
        move |_: &Value| (StatusCode::OK, body.clone())
    };
    let deleted = |name: &str| {
        let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {"name": name}});
        move |_: &Value| (StatusCode::OK, body.clone())
    };
    let selector = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmetallb-operator%2Cmetallb.io%2Fowner%3Dmetallb-system.metallb";
    let rbac = "/apis/rbac.authorization.k8s.io/v1";
    let released = cr.clone();
    let calls = vec![
        call(
            format!("GET {rbac}/clusterroles?&{selector}"),
            list(
                "ClusterRole",
                &["metallb-system:controller", "metallb-system:speaker"],
            ),
        ),
        call(
            format!("DELETE {rbac}/clusterroles/metallb-system:controller?"),
            deleted("metallb-system:controller"),
        ),
        call(
            format!("DELETE {rbac}/clusterroles/metallb-system:speaker?"),
            deleted("metallb-system:speaker"),
        ),
        call(
            format!("GET {rbac}/clusterrolebindings?&{selector}"),
            list("ClusterRoleBinding", &["metallb-system:controller"]),
        ),
        call(
            format!("DELETE {rbac}/clusterrolebindings/metallb-system:controller?"),
            deleted("metallb-system:controller"),
        ),
        call(
            format!(
                "GET /apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations?&{selector}"
            ),
            list(
                "ValidatingWebhookConfiguration",
                &["metallb-webhook-configuration"],
            ),
        ),
        call(
            "DELETE /apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/metallb-webhook-configuration?",
            deleted("metallb-webhook-configuration"),
        ),
        call(
            "DELETE /api/v1/namespaces/metallb-system/secrets/memberlist?",
            deleted("memberlist"),
        ),
        call(
            "PATCH /api/v1/namespaces/metallb-system?&force=true&fieldManager=metallb-operator-podsecurity",
            |body: &Value| {
                assert_eq!(
                    body["metadata"]["labels"],
                    json!({}),
                    "the labels are given up"
                );
                echo(body)
            },
        ),
        call(
            "PATCH /apis/metallb.io/v1beta1/namespaces/metallb-system/metallbs/metallb?",
            move |body: &Value| {
                assert_eq!(
                    body,
                    &json!([
                        {"op": "test", "path": "/metadata/finalizers/0", "value": "metallb.io/cleanup"},
                        {"op": "remove", "path": "/metadata/finalizers/0"},
                    ])
                );
                let mut gone = released.clone();
                gone.metadata.finalizers = None;
                (StatusCode::OK, serde_json::to_value(gone).unwrap())
            },
        ),
    ];
    // The controller has stopped already (see the next scenario).
    let mut stopped = installed(&cr);
    stopped.pods.retain(|p| p.name_any().starts_with("speaker"));
    let (result, _) = scenario(&cr, stopped, calls, true).await;
    assert_eq!(result.unwrap(), Action::await_change());
}

#[tokio::test]
async fn deleting_the_resource_first_stops_the_controller_and_keeps_the_finalizer_until_it_is_gone()
{
    let mut cr = metallb(json!({}));
    cr.metadata.deletion_timestamp = Some(Time(now()));
    let calls = vec![call(
        "DELETE /apis/apps/v1/namespaces/metallb-system/deployments/controller?",
        |body: &Value| {
            assert_eq!(body["propagationPolicy"], "Background");
            (
                StatusCode::OK,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
            )
        },
    )];
    let (result, _) = scenario(&cr, installed(&cr), calls, true).await;
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "finalizer: failed to clean up object: waiting for 1 controller pod(s) to stop and release their Lease"
    );
    // Its Deployment is being deleted: nothing more to send while the pod stops.
    let mut stopping = installed(&cr);
    stopping
        .owned
        .get_mut(&("Deployment".into(), "controller".into()))
        .unwrap()["metadata"]["deletionTimestamp"] = json!("2027-01-15T08:00:00Z");
    let (result, _) = scenario(&cr, stopping, vec![], true).await;
    assert!(result.is_err());
}

#[tokio::test]
async fn a_failed_apply_stops_the_apply_step_and_is_reported_as_degraded() {
    let cr = metallb(json!({}));
    let desired = rendered(&cr);
    let seen = Seen::default();
    let mut calls = Vec::new();
    let mut failed = None;
    for o in &desired {
        if o["kind"] == "ClusterRole" {
            calls.push(call(
                apply_of(o),
                refuse(StatusCode::FORBIDDEN, "Forbidden", "clusterroles.rbac.authorization.k8s.io \"metallb-system:controller\" is forbidden: user cannot patch"),
            ));
            failed = Some(o.clone());
            break;
        }
        calls.push(call(apply_of(o), echo));
    }
    assert!(failed.is_some());
    calls.push(call(EVENT, |body: &Value| {
        assert_eq!(body["reason"], "ApplyFailed");
        assert_eq!(body["type"], "Warning");
        echo(body)
    }));
    calls.push(status_write(&cr, seen.clone()));
    let (result, _) = scenario(&cr, snapshot([], vec![]), calls, true).await;
    let err = result.unwrap_err();
    assert!(
        err.to_string()
            .contains("ApplyFailed: failed to apply ClusterRole/metallb-system:controller"),
        "{err}"
    );
    let status = seen.lock().unwrap().clone().unwrap();
    let degraded = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == status::DEGRADED)
        .unwrap();
    assert_eq!(degraded.status, "True");
    assert_eq!(degraded.reason, "ApplyFailed");
    assert!(
        degraded.message.starts_with(
            "failed to apply ClusterRole/metallb-system:controller: ApiError: clusterroles.rbac.authorization.k8s.io \"metallb-system:controller\" is forbidden: user cannot patch"
        ),
        "{}",
        degraded.message
    );
}

#[tokio::test]
async fn a_forbidden_namespace_patch_is_degraded_with_how_to_fix_it_and_the_rest_still_runs() {
    let cr = metallb(json!({}));
    let mut snapshot = installed(&cr);
    snapshot.namespace = Some(serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap());
    let seen = Seen::default();
    let calls = vec![
        call(
            "PATCH /api/v1/namespaces/metallb-system?&force=true&fieldManager=metallb-operator-podsecurity",
            refuse(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "namespaces \"metallb-system\" is forbidden",
            ),
        ),
        call(EVENT, echo),
        status_write(&cr, seen.clone()),
    ];
    let (result, _) = scenario(&cr, snapshot, calls, true).await;
    assert!(result.is_err(), "retried with backoff");
    let status = seen.lock().unwrap().clone().unwrap();
    let c = conditions(&status);
    assert!(c[0].starts_with("Available=True"), "{c:?}");
    assert!(
        c[3].starts_with(
            "Degraded=True PodSecurityLabelsForbidden: the operator may not label its namespace metallb-system for Pod Security"
        ),
        "{c:?}"
    );
    assert!(
        c[3].contains(
            "kubectl label namespace metallb-system pod-security.kubernetes.io/enforce=privileged"
        ),
        "{c:?}"
    );
}

#[tokio::test]
async fn an_upgrade_applies_the_controller_and_records_the_step() {
    let cr = metallb(json!({}));
    let desired = rendered(&cr);
    let snapshot = installed_at(&cr, &older());
    let mut settled_cr = cr.clone();
    settled_cr.status = Some(settled(&cr, &snapshot));
    let seen = Seen::default();
    let calls = vec![
        call(apply_of(find(&desired, "Deployment", "controller")), echo),
        status_write(&cr, seen.clone()),
    ];
    let (result, _) = scenario(&settled_cr, snapshot, calls, true).await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(5)));
    let status = seen.lock().unwrap().clone().unwrap();
    assert_eq!(
        status.rollout,
        Some(RolloutStatus {
            step: "Controller".into(),
            version: this_version().to_string(),
            last_progress_time: Time(now()),
            progress: 2,
        })
    );
    assert_eq!(
        conditions(&status)[2],
        format!(
            "Progressing=True UpdatingController: controller: rolling out {} (pods: {} on 1): rolled out, waiting for the webhooks to answer; the speakers follow once it is healthy",
            this_version(),
            older()
        )
    );
}

#[tokio::test]
async fn a_cached_resource_older_than_the_last_status_write_does_not_lose_the_step() {
    // The Deployment's watch event can trigger the next reconcile before the status write's
    // event refreshed the cached resource: the step this process recorded still holds the
    // speakers back.
    let cr = metallb(json!({}));
    let desired = rendered(&cr);
    let snapshot = installed_at(&cr, &older());
    let mut stale = cr.clone();
    stale.status = Some(settled(&cr, &snapshot));
    let seen = Seen::default();
    let (client, remaining, server) = server(vec![
        call(apply_of(find(&desired, "Deployment", "controller")), echo),
        status_write(&cr, seen.clone()),
        // The second reconcile: no apply of the speakers, only the new pod in the status.
        status_write(&cr, seen.clone()),
    ]);
    let ctx = context(client, true);
    let first = reconcile_with(Arc::new(stale.clone()), &ctx, snapshot.clone(), now()).await;
    assert_eq!(first.unwrap(), Action::requeue(Duration::from_secs(5)));
    // The new controller's pod is starting; the cache still has the resource without the step.
    let mut rolling = snapshot;
    rolling.owned.insert(
        ("Deployment".into(), "controller".into()),
        deployment_status(find(&desired, "Deployment", "controller").clone(), 2, 1, 1),
    );
    rolling
        .pods
        .push(pod("controller-new", "controller", &this_version(), false));
    let second = reconcile_with(Arc::new(stale), &ctx, rolling, now()).await;
    assert_eq!(second.unwrap(), Action::requeue(Duration::from_secs(5)));
    assert!(
        !server.is_finished(),
        "no request after the first status write"
    );
    server.abort();
    assert!(remaining.lock().unwrap().is_empty());
    assert_eq!(
        seen.lock().unwrap().clone().unwrap().rollout.unwrap().step,
        "Controller"
    );
}

#[tokio::test]
async fn the_speakers_follow_a_controller_whose_webhooks_answer_a_dry_run() {
    let cr = metallb(json!({}));
    let desired = rendered(&cr);
    let v = this_version();
    let mut snapshot = installed_at(&cr, &older());
    let controller = deployment_status(find(&desired, "Deployment", "controller").clone(), 1, 1, 1);
    snapshot
        .owned
        .insert(("Deployment".into(), "controller".into()), controller);
    snapshot.pods[0] = pod("controller-new", "controller", &v, true);
    let mut in_step = cr.clone();
    let mut status = settled(&cr, &snapshot);
    status.rollout = Some(RolloutStatus {
        step: "Controller".into(),
        version: v.to_string(),
        last_progress_time: Time(now()),
        progress: 2,
    });
    in_step.status = Some(status);
    let seen = Seen::default();
    let calls = vec![
        call(
            "POST /apis/metallb.io/v1beta1/namespaces/metallb-system/l2advertisements?&dryRun=All&fieldManager=metallb-operator",
            |body: &Value| {
                assert_eq!(body["metadata"]["name"], WEBHOOK_PROBE);
                echo(body)
            },
        ),
        call(apply_of(find(&desired, "DaemonSet", "speaker")), echo),
        status_write(&cr, seen.clone()),
    ];
    let (result, _) = scenario(&in_step, snapshot, calls, true).await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(5)));
    let status = seen.lock().unwrap().clone().unwrap();
    assert_eq!(status.rollout.unwrap().step, "Speakers");
}

#[tokio::test]
async fn objects_stored_in_an_old_version_are_rewritten_before_anything_else() {
    let cr = metallb(json!({}));
    let snapshot = installed(&cr);
    let mut settled_cr = cr.clone();
    settled_cr.status = Some(settled(&cr, &snapshot));
    let mut calls = Vec::new();
    for crd in metallb_api::crd::all() {
        let mut live = serde_json::to_value(&crd).unwrap();
        let storage = crd
            .spec
            .versions
            .iter()
            .find(|v| v.storage)
            .unwrap()
            .name
            .clone();
        let stored = if crd.spec.names.kind == "BGPPeer" {
            json!(["v1beta1", storage])
        } else {
            json!([storage])
        };
        live["status"] = json!({"storedVersions": stored, "conditions": [{"type": "Established", "status": "True"}], "acceptedNames": {"kind": crd.spec.names.kind, "plural": crd.spec.names.plural}});
        calls.push(call(
            format!(
                "GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/{}",
                crd.name_any()
            ),
            move |_| (StatusCode::OK, live.clone()),
        ));
    }
    let peer = |name: &str| {
        json!({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
        "metadata": {"name": name, "namespace": NS, "resourceVersion": "7"},
        "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "192.0.2.1"}})
    };
    let (a, b) = (peer("router-a"), peer("router-b"));
    calls.push(call("GET /apis/metallb.io/v1beta2/bgppeers?", move |_| {
        (StatusCode::OK, json!({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeerList", "metadata": {}, "items": [a, b]}))
    }));
    for name in ["router-a", "router-b"] {
        calls.push(call(
            format!("PUT /apis/metallb.io/v1beta2/namespaces/metallb-system/bgppeers/{name}?"),
            move |body: &Value| {
                assert_eq!(
                    body["metadata"]["resourceVersion"], "7",
                    "written back unchanged"
                );
                echo(body)
            },
        ));
    }
    calls.push(call(
        "PATCH /apis/apiextensions.k8s.io/v1/customresourcedefinitions/bgppeers.metallb.io/status?",
        |body: &Value| {
            assert_eq!(body, &json!({"status": {"storedVersions": ["v1beta2"]}}));
            let crd = metallb_api::crd::all()
                .into_iter()
                .find(|c| c.spec.names.kind == "BGPPeer")
                .unwrap();
            (StatusCode::OK, serde_json::to_value(crd).unwrap())
        },
    ));
    let (result, ctx) = scenario(&settled_cr, snapshot, calls, false).await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(300)));
    assert!(
        ctx.crds_checked.load(std::sync::atomic::Ordering::Relaxed),
        "the step does not run again in this process"
    );
}

#[tokio::test]
async fn an_invalid_resource_is_degraded_naming_the_field_and_waits_for_a_change() {
    let cr = metallb(json!({"logLevel": "chatty"}));
    let seen = Seen::default();
    let calls = vec![call(EVENT, echo), status_write(&cr, seen.clone())];
    let (result, _) = scenario(&cr, installed(&metallb(json!({}))), calls, true).await;
    assert_eq!(result.unwrap(), Action::await_change());
    let status = seen.lock().unwrap().clone().unwrap();
    assert_eq!(
        conditions(&status)[3],
        "Degraded=True InvalidSpec: invalid MetalLB spec: spec.logLevel: \"chatty\" is not one of all, debug, info, warn, error, none"
    );
}

#[tokio::test]
async fn another_metallb_resource_gets_only_a_status() {
    let mut other = metallb(json!({}));
    other.metadata.name = Some("another".into());
    let seen = Seen::default();
    let mut write = status_write(&other, seen.clone());
    write.request = STATUS.replace("/metallbs/metallb/", "/metallbs/another/");
    let (result, _) = scenario(&other, snapshot([], vec![]), vec![write], true).await;
    assert_eq!(result.unwrap(), Action::await_change());
    assert_eq!(
        conditions(&seen.lock().unwrap().clone().unwrap())[3],
        "Degraded=True IncorrectMetalLBResourceName: only the MetalLB resource named \"metallb\" in the operator's namespace \"metallb-system\" is honoured; this one (metallb-system/another) is ignored"
    );
}

#[test]
fn scenario_versions_are_one_minor_apart_at_most() {
    // The fixtures' older version must be an upgrade the skew policy allows.
    assert_eq!(
        crate::version::check_skew(&this_version(), &older()),
        Ok(())
    );
    let _: Version = older();
}
