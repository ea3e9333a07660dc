//! Pod workers: one task per pod bound to this node, from sandbox to deletion.
//!
//! ```text
//! sandbox (a network namespace mlb-pod-<node>-<k> with the pod IPs, or the node's for hostNetwork)
//!   → images (unknown image: waiting ErrImagePull, stays Pending)
//!   → volumes (retried while a Secret/ConfigMap is missing: ContainerCreating)
//!   → init containers, one after the other, each to completion
//!   → containers, each in its own runner: start, probe, restart with back-off
//!   → deletionTimestamp: SIGTERM, SIGKILL after the grace period, delete with grace 0
//! ```
//! Runners write into a shared [`PodRuntime`]; one status task turns it into status patches
//! (only when the status changed).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client};
use tokio::sync::{Notify, mpsc, watch};

use super::env::{PodAddresses, container_env, expand};
use super::probe::{self, Timing};
use super::process::{self, ExecSpec};
use super::status::{ContainerRuntime, Outcome, PodRuntime, State, pod_status};
use super::volumes::{Mount, Volumes};
use crate::cmd;
use crate::images::{self, Locations};
use crate::paths::Paths;
use crate::topology::{Node, PODS_PER_NODE};

/// Longest restart back-off (the kubelet's is 5 min; tests want quick recovery).
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A container that ran this long gets its back-off reset.
const BACKOFF_RESET: Duration = Duration::from_secs(60);
/// Grace period when the agent itself stops (pods are not deleted then).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// What every pod worker of this node shares.
pub struct Ctx {
    pub client: Client,
    pub node: Node,
    pub paths: Paths,
    pub locations: Locations,
    pub ips: Mutex<IpAllocator>,
    /// A process in the machine's mount and network namespaces (the testbed's holder):
    /// pod namespaces are created through it with `nsenter`, so they are visible to
    /// `ip netns` everywhere and routed from the machine.
    pub holder_pid: u32,
}

/// Pod IP numbers (1..=14) of this node's prefixes, by pod UID.
#[derive(Debug, Default)]
pub struct IpAllocator {
    used: BTreeMap<String, u8>,
}

impl IpAllocator {
    /// A number for `uid`: `preferred` if free, else the lowest free one.
    pub fn allocate(&mut self, uid: &str, preferred: Option<u8>) -> Option<u8> {
        if let Some(k) = self.used.get(uid) {
            return Some(*k);
        }
        let taken = |k: u8| self.used.values().any(|v| *v == k);
        let k = preferred
            .filter(|k| (1..=PODS_PER_NODE).contains(k) && !taken(*k))
            .or_else(|| (1..=PODS_PER_NODE).find(|k| !taken(*k)))?;
        self.used.insert(uid.to_string(), k);
        Some(k)
    }

    pub fn get(&self, uid: &str) -> Option<u8> {
        self.used.get(uid).copied()
    }

    pub fn release(&mut self, uid: &str) -> Option<u8> {
        self.used.remove(uid)
    }
}

/// Stop request for runners: `None` keeps running, `Some(grace)` stops.
type StopRx = watch::Receiver<Option<Duration>>;

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

fn grace_of(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(secs.max(0)).unwrap_or(30))
}

/// How a worker ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The pod got a deletionTimestamp (graceful) or vanished (immediate).
    Deleted { grace: Duration },
    /// The agent is stopping.
    Shutdown,
}

/// Waits until the pod is being deleted or the agent stops.
async fn ending(
    pod_rx: &mut watch::Receiver<Option<Arc<Pod>>>,
    shutdown: &mut watch::Receiver<bool>,
) -> Ending {
    loop {
        if *shutdown.borrow() {
            return Ending::Shutdown;
        }
        match pod_rx.borrow().as_ref() {
            None => {
                return Ending::Deleted {
                    grace: Duration::ZERO,
                };
            }
            Some(p) if p.metadata.deletion_timestamp.is_some() => {
                return Ending::Deleted { grace: grace_of(p) };
            }
            Some(_) => {}
        }
        tokio::select! {
            r = pod_rx.changed() => if r.is_err() { return Ending::Shutdown },
            r = shutdown.changed() => if r.is_err() { return Ending::Shutdown },
        }
    }
}

/// Runs one pod until it is deleted or the agent stops.
pub async fn worker(
    ctx: Arc<Ctx>,
    mut pod_rx: watch::Receiver<Option<Arc<Pod>>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(pod) = pod_rx.borrow().clone() else {
        return;
    };
    let key = pod_key(&pod);
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(
        ctx.client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let name = pod.metadata.name.clone().unwrap_or_default();
    if is_terminal(&pod) {
        // Finished before this agent started: nothing to run, only deletion to finish.
        if let Ending::Deleted { .. } = ending(&mut pod_rx, &mut shutdown).await {
            finish_deletion(&api, &name, &uid).await;
        }
        return;
    }
    tracing::info!(pod = %key, "starting pod");

    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network == Some(true);
    let node = &ctx.node;
    let host_ips: Vec<IpAddr> = vec![node.lan_v4.into(), node.lan_v6.into()];
    let pod_ips: Vec<IpAddr> = if host_network {
        host_ips.clone()
    } else {
        let preferred = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
            .filter(|ip| node.pods_v4.contains(ip))
            .and_then(|ip| u8::try_from(u32::from(ip) - u32::from(node.pods_v4.network())).ok());
        let k = ctx
            .ips
            .lock()
            .expect("ip allocator")
            .allocate(&uid, preferred);
        match k {
            Some(k) => {
                let (v4, v6) = (node.pod_v4(k), node.pod_v6(k));
                pod_network(&ctx, k, true);
                vec![v4.into(), v6.into()]
            }
            None => {
                tracing::error!(pod = %key, "no free pod IP on this node (14 per node)");
                Vec::new()
            }
        }
    };
    let addrs = PodAddresses {
        pod_ips: pod_ips.clone(),
        host_ips: host_ips.clone(),
    };
    let hostname = if host_network {
        node.name.clone()
    } else {
        spec.hostname.clone().unwrap_or_else(|| name.clone())
    };

    let rt = Arc::new(Mutex::new(PodRuntime {
        node: node.name.clone(),
        start_time: Timestamp::now(),
        pod_ips: pod_ips.clone(),
        host_ips,
        sandbox_ready: false,
        init: spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| ContainerRuntime::new(&c.name, image_of(c)))
            .collect(),
        containers: spec
            .containers
            .iter()
            .map(|c| ContainerRuntime::new(&c.name, image_of(c)))
            .collect(),
        initialized: spec.init_containers.as_ref().is_none_or(Vec::is_empty),
        outcome: None,
        transitions: BTreeMap::new(),
    }));
    let notify = Arc::new(Notify::new());
    let status_task = tokio::spawn(status_writer(
        api.clone(),
        name.clone(),
        rt.clone(),
        notify.clone(),
    ));
    notify.notify_one();

    let pod_dir = ctx.paths.pods_dir().join(&node.name).join(&uid);
    let (stop_tx, stop_rx) = watch::channel::<Option<Duration>>(None);
    let pod_netns = pod_ips
        .first()
        .filter(|_| !host_network)
        .and_then(|ip| match ip {
            IpAddr::V4(v4) => u8::try_from(u32::from(*v4) - u32::from(node.pods_v4.network())).ok(),
            IpAddr::V6(_) => None,
        })
        .map(|k| node.pod_netns(k));
    let run = run_pod(
        &ctx,
        pod_netns,
        &pod,
        &pod_dir,
        &addrs,
        &hostname,
        rt.clone(),
        notify.clone(),
        stop_rx,
        pod_rx.clone(),
    );
    tokio::pin!(run);
    let end = tokio::select! {
        end = ending(&mut pod_rx, &mut shutdown) => end,
        () = &mut run => ending(&mut pod_rx, &mut shutdown).await,
    };
    let grace = match end {
        Ending::Deleted { grace } => grace,
        Ending::Shutdown => SHUTDOWN_GRACE,
    };
    tracing::info!(pod = %key, ?end, "stopping pod");
    let _ = stop_tx.send(Some(grace));
    // Runners stop within the grace period (plus the kill); give them a bound anyway.
    let _ = tokio::time::timeout(grace + Duration::from_secs(10), &mut run).await;

    if let Ending::Deleted { .. } = end {
        notify.notify_one();
        tokio::time::sleep(Duration::from_millis(100)).await;
        status_task.abort();
        finish_deletion(&api, &name, &uid).await;
        let _ = std::fs::remove_dir_all(&pod_dir);
    } else {
        status_task.abort();
    }
    // Tear the namespace down before freeing the number: a new pod may get it at once.
    let allocated = ctx.ips.lock().expect("ip allocator").get(&uid);
    if !host_network && let Some(k) = allocated {
        pod_network(&ctx, k, false);
    }
    ctx.ips.lock().expect("ip allocator").release(&uid);
    tracing::info!(pod = %key, "pod done");
}

fn image_of(c: &Container) -> &str {
    c.image.as_deref().unwrap_or_default()
}

/// Creates (or removes) the network namespace of pod IP number `k` (see
/// [`Node::pod_network_commands`]), running `ip` in the machine's namespaces. Creation
/// first removes leftovers of an earlier agent. Errors are logged; the pod goes on.
fn pod_network(ctx: &Ctx, k: u8, add: bool) {
    let node = &ctx.node;
    let root = [
        "nsenter".to_string(),
        format!("--mount=/proc/{}/ns/mnt", ctx.holder_pid),
        format!("--net=/proc/{}/ns/net", ctx.holder_pid),
        "--".into(),
    ];
    let in_root = |argv: &Vec<String>| {
        root.iter()
            .cloned()
            .chain(argv.iter().cloned())
            .collect::<Vec<_>>()
    };
    for argv in node.pod_network_teardown(k) {
        let _ = cmd::run(&in_root(&argv));
    }
    if add {
        for argv in node.pod_network_commands(k) {
            if let Err(err) = cmd::run(&in_root(&argv)) {
                tracing::error!(%err, "failed to set up the pod network");
            }
        }
    }
}

/// Deletes the pod object now (the kubelet's final step after the containers stopped).
async fn finish_deletion(api: &Api<Pod>, name: &str, uid: &str) {
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
        Err(err) => tracing::warn!(%err, pod = name, "failed to delete the pod object"),
    }
}

/// Sends a status patch whenever the runtime changed.
async fn status_writer(
    api: Api<Pod>,
    name: String,
    rt: Arc<Mutex<PodRuntime>>,
    notify: Arc<Notify>,
) {
    let mut last: Option<serde_json::Value> = None;
    loop {
        notify.notified().await;
        // Coalesce bursts (several containers starting together).
        tokio::time::sleep(Duration::from_millis(50)).await;
        let status = pod_status(&mut rt.lock().expect("pod runtime"), Timestamp::now());
        if last.as_ref() == Some(&status) {
            continue;
        }
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
        {
            Ok(_) => last = Some(status),
            Err(kube::Error::Api(e)) if e.code == 404 => return,
            Err(err) => {
                tracing::warn!(%err, pod = %name, "failed to update the pod status; retrying");
                let notify = notify.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    notify.notify_one();
                });
            }
        }
    }
}

/// Which container of the pod a runner drives.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Init(usize),
    Main(usize),
}

fn update(rt: &Mutex<PodRuntime>, slot: Slot, f: impl FnOnce(&mut ContainerRuntime)) {
    let mut rt = rt.lock().expect("pod runtime");
    let c = match slot {
        Slot::Init(i) => &mut rt.init[i],
        Slot::Main(i) => &mut rt.containers[i],
    };
    f(c);
}

fn set_all_waiting(rt: &Mutex<PodRuntime>, reason: &str, message: &str) {
    let mut guard = rt.lock().expect("pod runtime");
    let rt = &mut *guard;
    for c in rt.init.iter_mut().chain(rt.containers.iter_mut()) {
        c.state = State::waiting(reason, Some(message.to_string()));
    }
}

/// Everything a runner needs about its container.
struct Job {
    ctx: Arc<Ctx>,
    container: Container,
    slot: Slot,
    exec: images::Exec,
    env: Vec<(String, String)>,
    mounts: Vec<Mount>,
    rt: Arc<Mutex<PodRuntime>>,
    notify: Arc<Notify>,
    restart_policy: String,
    probe_host: IpAddr,
    log: PathBuf,
    spec_path: PathBuf,
    termination_grace: Duration,
    /// The pod's network namespace (`None`: hostNetwork, the node's).
    netns: Option<String>,
}

/// How a runner ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunEnd {
    Completed,
    Failed,
    Stopped,
}

#[allow(clippy::too_many_arguments)]
async fn run_pod(
    ctx: &Arc<Ctx>,
    netns: Option<String>,
    pod: &Arc<Pod>,
    pod_dir: &std::path::Path,
    addrs: &PodAddresses,
    hostname: &str,
    rt: Arc<Mutex<PodRuntime>>,
    notify: Arc<Notify>,
    mut stop: StopRx,
    pod_rx: watch::Receiver<Option<Arc<Pod>>>,
) {
    let spec = pod.spec.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    if spec.host_network != Some(true) && netns.is_none() {
        let message = format!(
            "no free pod IP on {} ({} per node)",
            ctx.node.name, PODS_PER_NODE
        );
        set_all_waiting(&rt, "ContainerCreating", &message);
        notify.notify_one();
        return stopped(&mut stop).await;
    }
    let init: Vec<Container> = spec.init_containers.clone().unwrap_or_default();
    let main: Vec<Container> = spec.containers.clone();

    // Images → programs. An unknown image leaves the pod Pending for good.
    let mut execs = Vec::new();
    let mut bad_image = false;
    for (slot, c) in init
        .iter()
        .enumerate()
        .map(|(i, c)| (Slot::Init(i), c))
        .chain(main.iter().enumerate().map(|(i, c)| (Slot::Main(i), c)))
    {
        let first_port = c.ports.iter().flatten().next().map(|p| p.container_port);
        match images::exec_for(
            image_of(c),
            c.command.as_deref().unwrap_or_default(),
            c.args.as_deref().unwrap_or_default(),
            first_port,
            &ctx.locations,
        ) {
            Ok(exec) => execs.push(exec),
            Err(err) => {
                tracing::warn!(container = %c.name, %err, "cannot run container");
                update(&rt, slot, |c| {
                    c.state = State::waiting("ErrImagePull", Some(err.to_string()))
                });
                bad_image = true;
                execs.push(images::Exec {
                    program: PathBuf::new(),
                    arg0: None,
                    args: vec![],
                });
            }
        }
    }
    if bad_image {
        rt.lock().expect("pod runtime").sandbox_ready = true;
        notify.notify_one();
        return stopped(&mut stop).await;
    }

    // Volumes, retried until every referenced Secret and ConfigMap exists.
    let mut volumes = Volumes::new(pod_dir.join("volumes"), ctx.client.clone());
    let mut attempt = 0u32;
    loop {
        let latest = pod_rx.borrow().clone().unwrap_or_else(|| pod.clone());
        match volumes.sync(&latest, addrs).await {
            Ok(()) => break,
            Err(err) => {
                if attempt.is_multiple_of(10) {
                    tracing::warn!(%err, "volumes not ready; retrying");
                }
                attempt += 1;
                set_all_waiting(&rt, "ContainerCreating", &err.to_string());
                notify.notify_one();
                if !pause(&mut stop, Duration::from_secs(2)).await {
                    return;
                }
            }
        }
    }
    let mut jobs = Vec::new();
    for (i, c) in init.iter().chain(main.iter()).enumerate() {
        let slot = if i < init.len() {
            Slot::Init(i)
        } else {
            Slot::Main(i - init.len())
        };
        let env = loop {
            match container_env(&ctx.client, pod, c, addrs, hostname).await {
                Ok(env) => break env,
                Err(err) => {
                    update(&rt, slot, |c| {
                        c.state =
                            State::waiting("CreateContainerConfigError", Some(err.to_string()))
                    });
                    notify.notify_one();
                    if !pause(&mut stop, Duration::from_secs(2)).await {
                        return;
                    }
                }
            }
        };
        let mounts = match volumes.mounts(pod, c) {
            Ok(m) => m,
            Err(err) => {
                update(&rt, slot, |c| {
                    c.state = State::waiting("CreateContainerConfigError", Some(err.to_string()))
                });
                notify.notify_one();
                return stopped(&mut stop).await;
            }
        };
        let vars: BTreeMap<String, String> = env.iter().cloned().collect();
        let mut exec = execs[i].clone();
        exec.args = exec.args.iter().map(|a| expand(a, &vars)).collect();
        let probe_host = addrs
            .pod_ips
            .first()
            .copied()
            .unwrap_or(ctx.node.lan_v4.into());
        jobs.push(Job {
            ctx: ctx.clone(),
            container: c.clone(),
            slot,
            exec,
            env,
            mounts,
            rt: rt.clone(),
            notify: notify.clone(),
            restart_policy: spec
                .restart_policy
                .clone()
                .unwrap_or_else(|| "Always".into()),
            probe_host,
            log: ctx.paths.container_log(&ns, &name, &c.name),
            spec_path: pod_dir.join("containers").join(format!("{}.json", c.name)),
            termination_grace: Duration::from_secs(
                u64::try_from(spec.termination_grace_period_seconds.unwrap_or(30).max(0))
                    .unwrap_or(30),
            ),
            netns: netns.clone(),
        });
    }
    {
        let mut guard = rt.lock().expect("pod runtime");
        let r = &mut *guard;
        r.sandbox_ready = true;
        for c in r.init.iter_mut().chain(r.containers.iter_mut()) {
            c.state = State::waiting("PodInitializing", None);
        }
    }
    notify.notify_one();

    // Keep volumes in sync with Secrets, ConfigMaps, labels and tokens.
    let sync_addrs = addrs.clone();
    let mut sync_rx = pod_rx.clone();
    let sync_task = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let latest = sync_rx.borrow_and_update().clone();
            let Some(latest) = latest else { return };
            if let Err(err) = volumes.sync(&latest, &sync_addrs).await {
                tracing::warn!(%err, "failed to refresh volumes");
            }
        }
    });

    let mut main_jobs = jobs.split_off(init.len());
    for job in jobs {
        let end = run_container(job, stop.clone()).await;
        match end {
            RunEnd::Completed => {}
            RunEnd::Failed => {
                rt.lock().expect("pod runtime").outcome = Some(Outcome::Failed);
                notify.notify_one();
                sync_task.abort();
                return stopped(&mut stop).await;
            }
            RunEnd::Stopped => {
                sync_task.abort();
                return;
            }
        }
    }
    rt.lock().expect("pod runtime").initialized = true;
    notify.notify_one();

    let handles: Vec<_> = main_jobs
        .drain(..)
        .map(|job| tokio::spawn(run_container(job, stop.clone())))
        .collect();
    let mut ends = Vec::new();
    for h in handles {
        ends.push(h.await.unwrap_or(RunEnd::Stopped));
    }
    sync_task.abort();
    if ends.contains(&RunEnd::Stopped) {
        return;
    }
    // Every container ended for good (restartPolicy Never or OnFailure).
    let outcome = if ends.iter().all(|e| *e == RunEnd::Completed) {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    };
    rt.lock().expect("pod runtime").outcome = Some(outcome);
    notify.notify_one();
    stopped(&mut stop).await
}

/// Sleeps for `d`; false if a stop was requested meanwhile.
async fn pause(stop: &mut StopRx, d: Duration) -> bool {
    if stop.borrow().is_some() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => stop.borrow().is_none(),
        _ = stop.changed() => false,
    }
}

/// Returns once a stop is requested.
async fn stopped(stop: &mut StopRx) {
    while stop.borrow().is_none() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

fn exit_code(status: Option<std::process::ExitStatus>) -> (i32, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => (code, None),
            (None, Some(sig)) => (128 + sig, Some(sig)),
            (None, None) => (-1, None),
        },
        None => (-1, None),
    }
}

/// Runs one container until it ends for good or is stopped.
async fn run_container(job: Job, mut stop: StopRx) -> RunEnd {
    let is_init = matches!(job.slot, Slot::Init(_));
    let mut backoff = Duration::from_secs(1);
    let mut restarts = 0;
    loop {
        if stop.borrow().is_some() {
            return RunEnd::Stopped;
        }
        let spec = ExecSpec {
            mounts: job.mounts.clone(),
            program: job.exec.program.clone(),
            arg0: job.exec.arg0.clone(),
            args: job.exec.args.clone(),
            env: job.env.clone(),
            working_dir: job.container.working_dir.clone().map(PathBuf::from),
            created_paths_log: job.ctx.paths.created_paths_log(),
        };
        if let Some(dir) = job.spec_path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let banner = format!(
            "start {} (restart {restarts}): {}",
            job.container.name,
            cmd::display(
                &std::iter::once(job.exec.program.display().to_string())
                    .chain(job.exec.args.iter().cloned())
                    .collect::<Vec<_>>()
            )
        );
        let started_at = Timestamp::now();
        let began = Instant::now();
        let (code, signal) = match process::spawn(
            &job.ctx.locations.testbed,
            &spec,
            &job.spec_path,
            &job.log,
            &banner,
            job.netns.as_deref(),
        )
        .await
        {
            Err(err) => {
                tracing::error!(container = %job.container.name, %err, "failed to start container");
                update(&job.rt, job.slot, |c| {
                    c.state = State::waiting("RunContainerError", Some(err.to_string()))
                });
                job.notify.notify_one();
                (128, None)
            }
            Ok(mut proc) => {
                let has_readiness = job.container.readiness_probe.is_some();
                let has_startup = job.container.startup_probe.is_some();
                update(&job.rt, job.slot, |c| {
                    c.state = State::Running { started_at };
                    c.pid = Some(proc.pid);
                    c.started = !has_startup && !is_init;
                    c.ready = !is_init && !has_readiness && !has_startup;
                });
                job.notify.notify_one();
                let (fail_tx, mut fail_rx) = mpsc::channel::<&'static str>(1);
                let probes = (!is_init).then(|| {
                    tokio::spawn(probe_loop(
                        job.container.clone(),
                        job.probe_host,
                        proc.pid,
                        job.rt.clone(),
                        job.slot,
                        job.notify.clone(),
                        fail_tx,
                    ))
                });
                let status = tokio::select! {
                    status = proc.child.wait() => {
                        proc.kill_rest().await;
                        status.ok()
                    }
                    _ = stop.changed() => {
                        let grace = stop.borrow().unwrap_or(Duration::ZERO);
                        let status = proc.stop(grace).await;
                        if let Some(p) = probes { p.abort(); }
                        let (code, signal) = exit_code(status);
                        update(&job.rt, job.slot, |c| {
                            c.state = State::Terminated { exit_code: code, signal, reason: "Error".into(), started_at: Some(started_at), finished_at: Timestamp::now() };
                            c.ready = false;
                            c.pid = None;
                        });
                        job.notify.notify_one();
                        return RunEnd::Stopped;
                    }
                    Some(which) = fail_rx.recv() => {
                        tracing::info!(container = %job.container.name, probe = which, "probe failed; restarting the container");
                        proc.stop(job.termination_grace).await
                    }
                };
                if let Some(p) = probes {
                    p.abort();
                }
                exit_code(status)
            }
        };
        let finished = State::Terminated {
            exit_code: code,
            signal,
            reason: if code == 0 {
                "Completed".into()
            } else {
                "Error".into()
            },
            started_at: Some(started_at),
            finished_at: Timestamp::now(),
        };
        tracing::info!(container = %job.container.name, code, "container exited");
        let restart = match (is_init, job.restart_policy.as_str()) {
            (true, _) if code == 0 => false,
            (true, "Never") => false,
            (true, _) => true,
            (false, "Always") => true,
            (false, "OnFailure") => code != 0,
            (false, _) => false,
        };
        if !restart {
            update(&job.rt, job.slot, |c| {
                c.state = finished;
                c.ready = is_init && code == 0;
                c.started = false;
                c.pid = None;
            });
            job.notify.notify_one();
            return if code == 0 {
                RunEnd::Completed
            } else {
                RunEnd::Failed
            };
        }
        if began.elapsed() > BACKOFF_RESET {
            backoff = Duration::from_secs(1);
        }
        restarts += 1;
        update(&job.rt, job.slot, |c| {
            c.last_state = Some(finished);
            c.state = State::waiting(
                "CrashLoopBackOff",
                Some(format!(
                    "back-off {}s restarting failed container={}",
                    backoff.as_secs(),
                    c.name
                )),
            );
            c.ready = false;
            c.started = false;
            c.pid = None;
            c.restart_count += 1;
        });
        job.notify.notify_one();
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return RunEnd::Stopped,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Startup, then readiness and liveness probes of one container run; a failed startup or
/// liveness probe is reported on `fail`.
async fn probe_loop(
    container: Container,
    host: IpAddr,
    pid: u32,
    rt: Arc<Mutex<PodRuntime>>,
    slot: Slot,
    notify: Arc<Notify>,
    fail: mpsc::Sender<&'static str>,
) {
    let started = Instant::now();
    if let Some(p) = &container.startup_probe {
        let t = Timing::of(p);
        tokio::time::sleep(t.initial_delay).await;
        let mut failures = 0;
        loop {
            if probe::run_once(p, &container, host, Some(pid)).await {
                break;
            }
            failures += 1;
            if failures >= t.failure_threshold {
                let _ = fail.send("startup").await;
                return;
            }
            tokio::time::sleep(t.period).await;
        }
        update(&rt, slot, |c| {
            c.started = true;
            c.ready = container.readiness_probe.is_none();
        });
        notify.notify_one();
    }
    let readiness = async {
        let Some(p) = &container.readiness_probe else {
            return;
        };
        let t = Timing::of(p);
        tokio::time::sleep(t.initial_delay.saturating_sub(started.elapsed())).await;
        let (mut ok, mut bad) = (0, 0);
        let mut ever_ready = false;
        loop {
            if probe::run_once(p, &container, host, Some(pid)).await {
                ok += 1;
                bad = 0;
            } else {
                bad += 1;
                ok = 0;
            }
            let verdict = if ok >= t.success_threshold {
                Some(true)
            } else if bad >= t.failure_threshold {
                Some(false)
            } else {
                None
            };
            if let Some(ready) = verdict {
                let mut changed = false;
                update(&rt, slot, |c| {
                    changed = c.ready != ready;
                    c.ready = ready;
                });
                if changed {
                    notify.notify_one();
                }
            }
            // Until the first success, probe every second at most, so pods become ready
            // without waiting a whole period (a deliberate speed-up for tests).
            ever_ready |= ok >= t.success_threshold;
            tokio::time::sleep(if ever_ready {
                t.period
            } else {
                t.period.min(Duration::from_secs(1))
            })
            .await;
        }
    };
    let liveness = async {
        let Some(p) = &container.liveness_probe else {
            return;
        };
        let t = Timing::of(p);
        tokio::time::sleep(t.initial_delay.saturating_sub(started.elapsed())).await;
        let mut bad = 0;
        loop {
            if probe::run_once(p, &container, host, Some(pid)).await {
                bad = 0;
            } else {
                bad += 1;
                if bad >= t.failure_threshold {
                    let _ = fail.send("liveness").await;
                    return;
                }
            }
            tokio::time::sleep(t.period).await;
        }
    };
    tokio::join!(readiness, liveness);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocator_reuses_the_preferred_number_and_fills_gaps() {
        let mut a = IpAllocator::default();
        assert_eq!(a.allocate("a", Some(5)), Some(5));
        assert_eq!(a.allocate("b", Some(5)), Some(1));
        assert_eq!(a.allocate("a", None), Some(5));
        assert_eq!(a.release("b"), Some(1));
        assert_eq!(a.allocate("c", None), Some(1));
        for i in 0..12 {
            a.allocate(&format!("x{i}"), None);
        }
        assert_eq!(a.allocate("full", None), None);
    }
}
