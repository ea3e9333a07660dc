//! The speaker process: wires the observers, the election, the announcer and the writers.
//!
//! ```text
//!  Stores (k8s watches) ─┐ config_changed → api::config::parse → Config (last valid kept)
//!  live set (liveness) ──┼─► reconcile: announce::decide ─► layer2 Target (plan + links) ─► ARP/NDP
//!  links (netlink) ──────┤                               ├─► ServiceL2Status desired ─► writer
//!  exclusions (file) ────┘                               └─► metrics, Events
//!  SIGTERM ─► handover: leave the gossip, answer until the new owners announce, stop
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use metallb_api::config::{BgpBackend, Config, ParseOptions, Severity, parse};
use metallb_api::constants::labels::NODE;
use metallb_api::v1beta1::ServiceL2Status;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::announce::{self, Decision, Inputs, Liveness, Outcome, ServiceKey};
use crate::cli::Args;
use crate::http::{self, Readiness};
use crate::k8s::{self, Stores, model};
use crate::layer2::driver::{self as l2driver, OtherOwner, Target};
use crate::layer2::interfaces::{self, Exclusions, Link};
use crate::liveness::driver::{self as livedriver, Command};
use crate::liveness::wire::Key;
use crate::liveness::{Member, Membership, Tuning};
use crate::metrics::{Announced, Metrics};
use crate::netlink;
use crate::status::configstate::{self, Verdict};
use crate::status::l2status::{self, Desired};
use crate::status::pod_owner;

const PROTOCOL: &str = "layer2";
/// Bursts of watch events are handled together.
const DEBOUNCE: Duration = Duration::from_millis(5);
const EXCLUSIONS_POLL: Duration = Duration::from_secs(5);

/// Failures that stop the speaker at startup.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("failed to create a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error("failed to read the gossip key {path}: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid METALLB_BGP_TYPE: {0}")]
    Backend(String),
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error(transparent)]
    Liveness(#[from] livedriver::DriverError),
    #[error("failed to listen for signals: {0}")]
    Signal(#[source] std::io::Error),
}

/// The running liveness gossip.
struct Gossip {
    commands: mpsc::Sender<Command>,
    live: watch::Receiver<BTreeSet<String>>,
    pods: Store<Pod>,
    pods_changed: Arc<Notify>,
}

/// Runs the speaker until SIGTERM; then hands its IPs over and returns.
pub async fn run(args: Args) -> Result<(), RunError> {
    let namespace = args.namespace();
    let node = args.node_name.clone();
    let backend = match std::env::var("METALLB_BGP_TYPE") {
        Ok(v) if !v.is_empty() => Some(BgpBackend::parse(&v).map_err(RunError::Backend)?),
        _ => None,
    };
    let client = Client::try_default().await.map_err(RunError::Client)?;
    let metrics = Arc::new(Metrics::default());
    let readiness = Arc::new(Readiness::default());
    if args.port != 0 {
        http::serve_metrics(
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, args.port)),
            metrics.clone(),
        )
        .await?;
    }
    http::serve_health(
        SocketAddr::from((Ipv4Addr::LOCALHOST, args.health_probe_port)),
        readiness.clone(),
    )
    .await?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(RunError::Signal)?;

    let owner = pod_owner_of(&client, &namespace, args.pod_name.as_deref()).await;
    let gossip = match start_gossip(&args, &client, &namespace).await? {
        Some(g) => Some(g),
        None => {
            tracing::info!(
                "liveness gossip off (--ml-bindaddr and --ml-labels unset): every node counts as live"
            );
            None
        }
    };

    let (links_tx, mut links) = watch::channel(Vec::<Link>::new());
    tokio::spawn(async move {
        loop {
            if let Err(e) = netlink::watch_links(links_tx.clone()).await {
                tracing::error!(error = %e, "interface watch failed, restarting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let (exclusions_tx, mut exclusions) = watch::channel(Exclusions::defaults());
    tokio::spawn(watch_exclusions(args.excludel2_path.clone(), exclusions_tx));

    let stores = Stores::start(&client, &namespace);
    let status_changed = Arc::new(Notify::new());
    let statuses: Store<ServiceL2Status> = k8s::reflect(
        Api::namespaced(client.clone(), &namespace),
        watcher::Config::default().labels(&format!("{NODE}={node}")),
        vec![status_changed.clone()],
    );

    let (target_tx, target_rx) = watch::channel(Target::default());
    let (others_tx, mut others) = mpsc::unbounded_channel::<OtherOwner>();
    let periodic = Some(args.gratuitous_arp_interval).filter(|d| !d.is_zero());
    let layer2 = tokio::spawn(l2driver::run(
        target_rx,
        metrics.clone(),
        others_tx,
        periodic,
    ));
    let (desired_tx, desired_rx) = watch::channel(Desired::new());
    let writer = tokio::spawn(l2status::run(
        client.clone(),
        namespace.clone(),
        node.clone(),
        owner.clone(),
        statuses,
        status_changed,
        desired_rx,
    ));

    let mut speaker = Speaker {
        node: node.clone(),
        namespace: namespace.clone(),
        client: client.clone(),
        owner,
        options: ParseOptions::new(namespace.clone(), backend),
        lb_class: args.lb_class().map(str::to_string),
        ignore_exclude_lb: args.ignore_exclude_lb,
        config: None,
        verdict: None,
        verdict_written: false,
        parsed: None,
        announced: BTreeSet::new(),
        failed: BTreeSet::new(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "metallb-speaker".into(),
                instance: Some(node.clone()),
            },
        ),
        metrics: metrics.clone(),
        last: Decision::default(),
    };

    stores.ready().await;
    tracing::info!(node, namespace, "caches synced");
    let mut config_dirty = true;
    let mut live_rx = gossip.as_ref().map(|g| g.live.clone());
    let mut previous_links: Vec<Link> = Vec::new();
    loop {
        if config_dirty {
            speaker.reparse(&stores).await;
            config_dirty = false;
        }
        let current_links = links.borrow_and_update().clone();
        let mut liveness = match &live_rx {
            Some(rx) => Liveness::Speakers(rx.borrow().clone()),
            None => Liveness::AllNodes,
        };
        if let Some(g) = &gossip
            && came_up(&previous_links, &current_links)
        {
            // A node cut off for a while counted itself alone; ask the gossip first, so the
            // link that just came back does not announce every IP on that stale view.
            let (tx, rx) = oneshot::channel();
            if g.commands.send(Command::LinkUp(tx)).await.is_ok()
                && let Ok(live) = rx.await
            {
                liveness = Liveness::Speakers(live);
            }
        }
        previous_links = current_links.clone();
        if let Liveness::Speakers(live) = &liveness {
            metrics.set_live_speakers(live.len());
        }
        let excl = exclusions.borrow_and_update().clone();
        let decision = speaker.decide(&stores, &liveness);
        let plan = interfaces::plan(&decision.announced_ips(), &current_links, &excl);
        speaker.report(&stores, &decision, &plan.missing_interfaces);
        let target = Target {
            plan,
            links: current_links,
            handover: false,
        };
        target_tx.send_if_modified(|old| replace_if_changed(old, target));
        let desired = desired_statuses(&decision);
        desired_tx.send_if_modified(|old| replace_if_changed(old, desired));
        speaker.last = decision;
        readiness.set_ready();

        let pods_changed = gossip.as_ref().map(|g| g.pods_changed.clone());
        tokio::select! {
            _ = stores.config_changed.notified() => { config_dirty = true; tokio::time::sleep(DEBOUNCE).await; }
            _ = stores.state_changed.notified() => { tokio::time::sleep(DEBOUNCE).await; }
            _ = links.changed() => {}
            _ = exclusions.changed() => {}
            _ = async { live_rx.as_mut().expect("guarded").changed().await }, if live_rx.is_some() => {}
            _ = async { pods_changed.expect("guarded").notified().await }, if gossip.is_some() => {
                if let Some(g) = &gossip {
                    let _ = g.commands.send(Command::Peers(peers(&g.pods))).await;
                }
            }
            _ = sigterm.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }

    // Handover: the IPs another speaker will take once this one has left. From now on the
    // announcer drops an IP the moment it sees the new owner announce it.
    target_tx.send_modify(|t| t.handover = true);
    let expected = match &gossip {
        Some(g) => {
            let mut without_me = g.live.borrow().clone();
            without_me.remove(&node);
            let decision = speaker.decide(&stores, &Liveness::Speakers(without_me));
            let others_take = handover_ips(&speaker.last, &decision);
            let (done_tx, done_rx) = oneshot::channel();
            let _ = g.commands.send(Command::Leave(done_tx)).await;
            let _ = tokio::time::timeout(Duration::from_millis(500), done_rx).await;
            others_take
        }
        None => BTreeSet::new(),
    };
    tracing::info!(waiting_for = ?expected, "shutting down: left the gossip, answering until the new owners announce");
    let mut pending = expected;
    let deadline = tokio::time::Instant::now() + args.handover_timeout;
    while !pending.is_empty() {
        match tokio::time::timeout_at(deadline, others.recv()).await {
            Ok(Some(seen)) => {
                if pending.remove(&seen.ip) {
                    tracing::info!(ip = %seen.ip, mac = %seen.mac, "new owner took over");
                }
            }
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(remaining = ?pending, "handover timed out");
                break;
            }
        }
    }
    drop(target_tx);
    let _ = layer2.await;
    drop(desired_tx);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    tracing::info!("stopped");
    Ok(())
}

/// The IPs this node announces (`mine`) that another node wins once this one has left
/// (`without_me`): on shutdown, this node answers until it sees their new owners announce them.
fn handover_ips(mine: &Decision, without_me: &Decision) -> BTreeSet<IpAddr> {
    mine.services
        .iter()
        .filter(|(key, _)| {
            matches!(
                without_me.services.get(*key),
                Some(Outcome::NotAnnounced(announce::Reason::OwnedBy(_)))
            )
        })
        .flat_map(|(_, outcome)| match outcome {
            Outcome::Announced { ips, .. } => ips.clone(),
            Outcome::NotAnnounced(_) => Vec::new(),
        })
        .collect()
}

fn replace_if_changed<T: PartialEq>(old: &mut T, new: T) -> bool {
    if *old != new {
        *old = new;
        true
    } else {
        false
    }
}

/// Whether a link became usable for answering (administratively up with a carrier).
fn came_up(before: &[Link], after: &[Link]) -> bool {
    after.iter().any(|l| {
        l.up && l.lower_up
            && !before
                .iter()
                .any(|b| b.index == l.index && b.up && b.lower_up)
    })
}

/// The ServiceL2Status content for what this node announces.
fn desired_statuses(decision: &Decision) -> Desired {
    decision
        .announced()
        .filter_map(|(key, o)| match o {
            Outcome::Announced {
                interfaces,
                restricted,
                ..
            } => {
                let list = match (restricted, interfaces) {
                    (true, announce::Interfaces::Only(names)) => {
                        Some(names.iter().cloned().collect())
                    }
                    _ => None,
                };
                Some((key.clone(), list))
            }
            Outcome::NotAnnounced(_) => None,
        })
        .collect()
}

/// Node → gossip address of every speaker pod with an IP.
fn peers(pods: &Store<Pod>) -> BTreeMap<String, SocketAddr> {
    pods.state()
        .iter()
        .filter_map(|p| {
            let node = p.spec.as_ref()?.node_name.clone()?;
            let ip: IpAddr = p.status.as_ref()?.pod_ip.as_deref()?.parse().ok()?;
            let port = p
                .spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|port| port.name.as_deref() == Some("memberlist-udp"))
                .and_then(|port| u16::try_from(port.container_port).ok());
            Some((
                node,
                SocketAddr::new(
                    ip,
                    port.unwrap_or(metallb_api::constants::ports::MEMBERLIST),
                ),
            ))
        })
        .collect()
}

async fn start_gossip(
    args: &Args,
    client: &Client,
    namespace: &str,
) -> Result<Option<Gossip>, RunError> {
    if !args.liveness_enabled() {
        return Ok(None);
    }
    let (Some(bind), Some(labels)) = (args.ml_bindaddr, args.ml_labels.as_deref()) else {
        return Ok(None);
    };
    let key = match &args.ml_secret_key_path {
        Some(dir) => {
            let path = dir.join(metallb_api::constants::names::MEMBERLIST_SECRET_KEY);
            let bytes = std::fs::read(&path).map_err(|source| RunError::Key { path, source })?;
            Key::from_file_contents(&bytes)
        }
        None => {
            tracing::warn!("no --ml-secret-key-path: gossip datagrams are not authenticated");
            Key::none()
        }
    };
    let addr = SocketAddr::new(bind, args.ml_bindport);
    let socket = livedriver::bind(addr).await?;
    let mut tuning = Tuning {
        probe_period: args.ml_probe_interval,
        suspicion: args.ml_suspicion_timeout,
        probe_rtt: args.ml_probe_interval / 3,
        ..Tuning::default()
    };
    if args.ml_wan_config {
        tuning.probe_period = Duration::from_secs(1);
        tuning.probe_rtt = Duration::from_millis(500);
        tuning.suspicion = Duration::from_secs(4);
    }
    let generation = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX);
    let me = Member {
        node: args.node_name.clone(),
        addr,
        generation,
    };
    let membership = Membership::new(me, key, tuning, seed());
    let (commands, commands_rx) = mpsc::channel(16);
    let (live_tx, live) = watch::channel(BTreeSet::new());
    tokio::spawn(livedriver::run(socket, membership, commands_rx, live_tx));
    let (pods, pods_changed) = k8s::speaker_pods(client, namespace, labels);
    tracing::info!(%addr, labels, "liveness gossip on");
    Ok(Some(Gossip {
        commands,
        live,
        pods,
        pods_changed,
    }))
}

/// A seed for the gossip's random choices, from the OS.
fn seed() -> u64 {
    use rand::TryRng;
    rand::rngs::SysRng
        .try_next_u64()
        .unwrap_or(0x6d65_7461_6c6c_6221)
}

async fn pod_owner_of(
    client: &Client,
    namespace: &str,
    pod: Option<&str>,
) -> Option<OwnerReference> {
    let name = pod?;
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    for _ in 0..10 {
        match api.get(name).await {
            Ok(p) => return p.metadata.uid.map(|uid| pod_owner(name, &uid)),
            Err(e) => {
                tracing::warn!(pod = name, error = %e, "failed to get this speaker's pod");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    None
}

async fn watch_exclusions(path: PathBuf, tx: watch::Sender<Exclusions>) {
    let mut last: Option<Vec<u8>> = None;
    loop {
        let content = std::fs::read(&path).ok();
        if content != last {
            let loaded = match &content {
                None => {
                    tracing::info!(path = %path.display(), "no interface exclusion file: using MetalLB's default list");
                    Some(Exclusions::defaults())
                }
                Some(bytes) => match Exclusions::from_yaml(&String::from_utf8_lossy(bytes)) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        tracing::error!(path = %path.display(), error = %e, "keeping the previous interface exclusions");
                        None
                    }
                },
            };
            if let Some(e) = loaded {
                tx.send_if_modified(|old| replace_if_changed(old, e));
            }
            last = content;
        }
        tokio::time::sleep(EXCLUSIONS_POLL).await;
    }
}

/// The reconcile loop's state.
struct Speaker {
    node: String,
    namespace: String,
    client: Client,
    owner: Option<OwnerReference>,
    options: ParseOptions,
    lb_class: Option<String>,
    ignore_exclude_lb: bool,
    /// The last valid configuration.
    config: Option<Config>,
    verdict: Option<Verdict>,
    verdict_written: bool,
    /// What the last parse read, to skip reparsing identical inputs.
    parsed: Option<String>,
    /// Services this node announced at the last reconcile (for Events on change).
    announced: BTreeSet<ServiceKey>,
    /// Services whose interfaces were missing at the last reconcile.
    failed: BTreeSet<ServiceKey>,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    last: Decision,
}

impl Speaker {
    async fn reparse(&mut self, stores: &Stores) {
        let resources = stores.resources();
        let fingerprint = format!("{resources:?}");
        if self.parsed.as_ref() == Some(&fingerprint) && self.verdict_written {
            return;
        }
        self.parsed = Some(fingerprint);
        let outcome = parse(&resources, &self.options);
        for w in outcome.warnings() {
            tracing::debug!(problem = %w, "configuration warning");
        }
        let verdict = match outcome.config {
            Some(config) => {
                if self.config.as_ref() != Some(&config) {
                    tracing::info!(pools = config.pools.len(), "configuration loaded");
                }
                self.config = Some(config);
                Verdict::Valid
            }
            None => {
                let errors: Vec<String> = outcome
                    .problems
                    .iter()
                    .filter(|p| p.severity == Severity::Error)
                    .map(ToString::to_string)
                    .collect();
                let verdict = Verdict::Invalid(errors.join("\n"));
                if self.verdict.as_ref() != Some(&verdict) {
                    tracing::error!(errors = ?errors, "invalid configuration: keeping the last valid one");
                }
                verdict
            }
        };
        self.metrics
            .set_config(self.config.is_some(), verdict != Verdict::Valid);
        if self.verdict.as_ref() != Some(&verdict) || !self.verdict_written {
            let now = jiff::Timestamp::now().to_string();
            let bodies = configstate::objects(
                &self.node,
                &self.namespace,
                self.owner.as_ref(),
                &verdict,
                &now,
            );
            self.verdict_written =
                match configstate::apply(&self.client, &self.namespace, &bodies).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "failed to report the configuration state");
                        false
                    }
                };
            self.verdict = Some(verdict);
        }
    }

    fn decide(&self, stores: &Stores, liveness: &Liveness) -> Decision {
        let Some(config) = &self.config else {
            return Decision::default();
        };
        let services = stores.services.state();
        let slices = stores.slices.state();
        let services: Vec<_> = services.iter().map(|s| s.as_ref()).collect();
        let slices: Vec<_> = slices.iter().map(|s| s.as_ref()).collect();
        let services = model::services(&services, &slices, self.lb_class.as_deref());
        let nodes = stores
            .nodes
            .state()
            .iter()
            .map(|n| {
                let n = model::node(n);
                (n.name.clone(), n)
            })
            .collect();
        announce::decide(&Inputs {
            config,
            services: &services,
            nodes: &nodes,
            liveness,
            me: &self.node,
            ignore_exclude_lb: self.ignore_exclude_lb,
        })
    }

    /// Metrics, logs and Events for what changed since the last reconcile.
    fn report(&mut self, stores: &Stores, decision: &Decision, missing: &BTreeSet<IpAddr>) {
        for (key, outcome) in &decision.services {
            if self.last.services.get(key) != Some(outcome) {
                match outcome {
                    Outcome::Announced { ips, .. } => {
                        tracing::debug!(service = %key, ?ips, "decision: announce from this node")
                    }
                    Outcome::NotAnnounced(reason) => {
                        tracing::debug!(service = %key, %reason, "decision: not announced by this node")
                    }
                }
            }
        }
        let mut series = Vec::new();
        let mut announced = BTreeSet::new();
        let mut failed = BTreeSet::new();
        for (key, outcome) in decision.announced() {
            let Outcome::Announced { ips, .. } = outcome else {
                continue;
            };
            if ips.iter().all(|ip| missing.contains(ip)) {
                failed.insert(key.clone());
                continue;
            }
            announced.insert(key.clone());
            for ip in ips.iter().filter(|ip| !missing.contains(ip)) {
                series.push(Announced {
                    service: key.to_string(),
                    protocol: PROTOCOL,
                    node: self.node.clone(),
                    ip: *ip,
                });
            }
        }
        self.metrics.set_announced(series);
        for key in announced.difference(&self.announced) {
            tracing::info!(service = %key, node = self.node, "announcing");
            self.event(
                stores,
                key,
                EventType::Normal,
                "nodeAssigned",
                format!(
                    "announcing from node {:?} with protocol {PROTOCOL:?}",
                    self.node
                ),
            );
        }
        for key in self.announced.difference(&announced) {
            let reason = decision.services.get(key).map(|o| match o {
                Outcome::NotAnnounced(r) => r.to_string(),
                Outcome::Announced { .. } => "interfaces missing".into(),
            });
            tracing::info!(service = %key, reason = reason.unwrap_or_else(|| "deleted".into()), "stopped announcing");
        }
        for key in failed.difference(&self.failed) {
            tracing::warn!(service = %key, node = self.node, "the advertisement's interfaces do not exist on this node");
            self.event(stores, key, EventType::Warning, "announceFailed", format!("the interfaces of the L2Advertisements for this service do not exist on node {:?}", self.node));
        }
        self.announced = announced;
        self.failed = failed;
    }

    fn event(
        &self,
        stores: &Stores,
        key: &ServiceKey,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let Some(svc) = stores.services.state().into_iter().find(|s| {
            s.metadata.namespace.as_deref() == Some(&key.namespace)
                && s.metadata.name.as_deref() == Some(&key.name)
        }) else {
            return;
        };
        let reference = svc.object_ref(&());
        let recorder = self.recorder.clone();
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Announce".into(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &reference).await {
                tracing::debug!(error = %e, "failed to publish an event");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, up: bool, lower_up: bool) -> Link {
        Link {
            index,
            name: format!("eth{index}"),
            mac: crate::layer2::packet::MacAddr([2, 0, 0, 0, 0, index as u8]),
            up,
            lower_up,
            broadcast: true,
            noarp: false,
            master: None,
        }
    }

    fn announced(ips: &[&str]) -> Outcome {
        Outcome::Announced {
            pool: "lan".into(),
            ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
            interfaces: announce::Interfaces::All,
            restricted: false,
        }
    }

    #[test]
    fn on_shutdown_only_ips_another_node_takes_are_waited_for() {
        let key = |n: &str| ServiceKey::new("demo", n);
        let mine = Decision {
            services: [
                (
                    key("moves"),
                    announced(&["192.0.2.200", "2001:db8:0:1::200"]),
                ),
                (key("nobody-else"), announced(&["192.0.2.201"])),
                (
                    key("not-mine"),
                    Outcome::NotAnnounced(announce::Reason::OwnedBy("node-2".into())),
                ),
            ]
            .into(),
        };
        let without_me = Decision {
            services: [
                (
                    key("moves"),
                    Outcome::NotAnnounced(announce::Reason::OwnedBy("node-2".into())),
                ),
                (
                    key("nobody-else"),
                    Outcome::NotAnnounced(announce::Reason::NoCandidates),
                ),
                (
                    key("not-mine"),
                    Outcome::NotAnnounced(announce::Reason::OwnedBy("node-2".into())),
                ),
            ]
            .into(),
        };
        let expected: BTreeSet<IpAddr> = [
            "192.0.2.200".parse().unwrap(),
            "2001:db8:0:1::200".parse().unwrap(),
        ]
        .into();
        assert_eq!(handover_ips(&mine, &without_me), expected);
    }

    #[test]
    fn service_l2_status_lists_interfaces_only_when_an_advertisement_restricts_them() {
        let key = |n: &str| ServiceKey::new("demo", n);
        let decision = Decision {
            services: [
                (key("all"), announced(&["192.0.2.200"])),
                (
                    key("eth0"),
                    Outcome::Announced {
                        pool: "lan".into(),
                        ips: vec!["192.0.2.201".parse().unwrap()],
                        interfaces: announce::Interfaces::Only(["eth0".to_string()].into()),
                        restricted: true,
                    },
                ),
                (
                    key("elsewhere"),
                    Outcome::NotAnnounced(announce::Reason::NoCandidates),
                ),
            ]
            .into(),
        };
        assert_eq!(
            desired_statuses(&decision),
            Desired::from([
                (key("all"), None),
                (key("eth0"), Some(vec!["eth0".to_string()]))
            ])
        );
    }

    #[test]
    fn a_link_regaining_its_carrier_or_a_new_link_counts_as_coming_up() {
        assert!(came_up(&[link(1, true, false)], &[link(1, true, true)]));
        assert!(came_up(&[], &[link(2, true, true)]));
        assert!(!came_up(&[link(1, true, true)], &[link(1, true, true)]));
        assert!(!came_up(&[link(1, true, true)], &[link(1, false, false)]));
    }
}
