//! The speaker's pure core: one step takes a snapshot of everything observed (and, when it
//! changed, the configuration's input) and returns what to announce and what to write. No
//! Kubernetes client, no socket, no clock, no spawn: [`crate::run`] feeds it and carries out
//! its [`Output`]; [`crate::writer`] sends the writes.
//!
//! ```text
//!  Snapshot ─┬─ resources (when they changed) ─► parse ─► Config (the last valid one is kept)
//!            │                                             └─► Write::ConfigurationState(verdict)
//!            ├─ Services, Nodes, live speakers ─► announce::decide ─► L2 Decision
//!            │  links, exclusions ────────────► layer2::interfaces::plan ─► Output.l2
//!            │                                   L2 Decision ─► ServiceL2Status desired, metrics,
//!            │                                                  Events (nodeAssigned, announceFailed)
//!            ├─ Services, this Node ─► bgp::advertise::decide ─► Output.bgp (sessions, routes)
//!            │                                                   ServiceBGPStatus desired, metrics,
//!            │                                                   Events (nodeAssigned)
//!            └─ FRR's problem (FRR mode) ─► ConfigurationState (with the parse verdict),
//!                                           Event on the speaker's pod
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use metallb_api::config::{Config, ParseOptions, Resources, parse};
use metallb_api::configstate::Verdict;

use crate::announce::{self, Decision, Inputs, Liveness, Node, Outcome, Service, ServiceKey};
use crate::bgp::advertise;
use crate::layer2::interfaces::{self, Exclusions, Link, Plan};
use crate::metrics::Announced;

/// The protocol label of what L2 announces.
pub const LAYER2: &str = "layer2";
/// The protocol label of what BGP advertises.
pub const BGP: &str = "bgp";

/// What the core is configured with (the speaker's flags).
#[derive(Debug, Clone)]
pub struct Settings {
    pub node: String,
    pub options: ParseOptions,
    /// `--ignore-exclude-lb`.
    pub ignore_exclude_lb: bool,
}

/// Everything one step looks at.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// The parser's input, given only when it changed since the last step (by value).
    pub resources: Option<&'a Resources>,
    /// The LoadBalancer Services this speaker handles, with their endpoints.
    pub services: &'a [Service],
    pub nodes: &'a BTreeMap<String, Node>,
    pub liveness: &'a Liveness,
    pub links: &'a [Link],
    pub exclusions: &'a Exclusions,
    /// FRR mode: why FRR does not run the configuration the speaker gave it (render error,
    /// refused or failed reload, unreachable sidecar), as [`crate::bgp::frr::Frr`] reports it.
    pub frr_problem: Option<&'a str>,
}

/// The kind of an Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// An API write the core asks for; the writer sends it (coalesced and retried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// This speaker's ConfigurationState says `verdict`.
    ConfigurationState(Verdict),
    /// An Event on a Service.
    Event {
        service: ServiceKey,
        type_: EventType,
        reason: &'static str,
        note: String,
    },
    /// An Event on the speaker's own pod.
    PodEvent {
        type_: EventType,
        reason: &'static str,
        note: String,
    },
}

/// The reason of the Event on the speaker's pod when FRR does not run its configuration.
pub const FRR_CONFIG_FAILED: &str = "frrConfigFailed";

/// The result of one step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// Which link answers ARP/NDP for which IP.
    pub l2: Plan,
    /// The ServiceL2Status objects this node should have: Service → the interfaces, when an
    /// advertisement restricts them.
    pub l2_statuses: BTreeMap<ServiceKey, Option<Vec<String>>>,
    /// BGP sessions of this node and the routes each advertises.
    pub bgp: advertise::Decision,
    /// The ServiceBGPStatus objects this node should have: Service → BGPPeer names.
    pub bgp_statuses: BTreeMap<ServiceKey, Vec<String>>,
    pub writes: Vec<Write>,
    /// `metallb_speaker_announced` series.
    pub announced: Vec<Announced>,
    /// `metallb_k8s_client_config_loaded_bool` and `..._stale_bool`.
    pub config_loaded: bool,
    pub config_stale: bool,
}

/// The core's memory between steps.
#[derive(Debug)]
pub struct Core {
    settings: Settings,
    /// The last valid configuration: an invalid one never replaces it.
    config: Option<Config>,
    /// What the last parse concluded.
    verdict: Option<Verdict>,
    /// What the ConfigurationState says: the parse verdict, and FRR's problem if any.
    reported: Option<Verdict>,
    frr_problem: Option<String>,
    /// Services this node announced at the last step (Events fire on change).
    announced: BTreeSet<ServiceKey>,
    /// Services whose interfaces were missing at the last step.
    failed: BTreeSet<ServiceKey>,
    last: Decision,
    last_bgp: advertise::Decision,
}

impl Core {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            config: None,
            verdict: None,
            reported: None,
            frr_problem: None,
            announced: BTreeSet::new(),
            failed: BTreeSet::new(),
            last: Decision::default(),
            last_bgp: advertise::Decision::default(),
        }
    }

    /// The last valid configuration, if any.
    pub fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    /// The decision of the last step.
    pub fn last_decision(&self) -> &Decision {
        &self.last
    }

    pub fn step(&mut self, snap: &Snapshot) -> Output {
        let mut writes = Vec::new();
        if let Some(resources) = snap.resources {
            self.reparse(resources);
        }
        self.report_state(snap.frr_problem, &mut writes);
        let decision = self.decide(snap, snap.liveness);
        let plan = interfaces::plan(&decision.announced_ips(), snap.links, snap.exclusions);
        let mut announced = self.report(&decision, &plan.missing_interfaces, &mut writes);
        let l2_statuses = l2_statuses(&decision);
        self.last = decision;
        let bgp = self.decide_bgp(snap);
        announced.extend(self.report_bgp(&bgp, &mut writes));
        let bgp_statuses = bgp
            .advertised()
            .filter_map(|(key, o)| match o {
                advertise::Outcome::Advertised { peers, .. } => {
                    Some((key.clone(), peers.iter().cloned().collect()))
                }
                advertise::Outcome::NotAdvertised(_) => None,
            })
            .collect();
        self.last_bgp = bgp.clone();
        Output {
            l2: plan,
            l2_statuses,
            bgp,
            bgp_statuses,
            writes,
            announced,
            config_loaded: self.config.is_some(),
            config_stale: matches!(self.reported, Some(Verdict::Invalid(_))),
        }
    }

    /// Who announces what under `liveness`, with the current configuration (nothing without
    /// one).
    pub fn decide(&self, snap: &Snapshot, liveness: &Liveness) -> Decision {
        let Some(config) = &self.config else {
            return Decision::default();
        };
        announce::decide(&Inputs {
            config,
            services: snap.services,
            nodes: snap.nodes,
            liveness,
            me: &self.settings.node,
            ignore_exclude_lb: self.settings.ignore_exclude_lb,
        })
    }

    /// What this node advertises over BGP, with the current configuration.
    fn decide_bgp(&self, snap: &Snapshot) -> advertise::Decision {
        let Some(config) = &self.config else {
            return advertise::Decision::default();
        };
        advertise::decide(&advertise::Inputs {
            config,
            services: snap.services,
            node: snap.nodes.get(&self.settings.node),
            ignore_exclude_lb: self.settings.ignore_exclude_lb,
        })
    }

    /// Logs, metric series and Events of what BGP advertises, for what changed.
    fn report_bgp(&self, bgp: &advertise::Decision, writes: &mut Vec<Write>) -> Vec<Announced> {
        let node = &self.settings.node;
        let mut series = Vec::new();
        for (key, outcome) in &bgp.services {
            let before = self.last_bgp.services.get(key);
            match outcome {
                advertise::Outcome::Advertised { ips, peers, .. } => {
                    series.extend(ips.iter().map(|ip| Announced {
                        service: key.to_string(),
                        protocol: BGP,
                        node: node.clone(),
                        ip: *ip,
                    }));
                    if !matches!(before, Some(advertise::Outcome::Advertised { .. })) {
                        tracing::info!(service = %key, node, ?peers, "advertising over BGP");
                        writes.push(Write::Event {
                            service: key.clone(),
                            type_: EventType::Normal,
                            reason: "nodeAssigned",
                            note: format!("announcing from node {node:?} with protocol {BGP:?}"),
                        });
                    }
                }
                advertise::Outcome::NotAdvertised(reason) => {
                    if before != Some(outcome) {
                        // Most Services are not for BGP at all: a reason is news only for one
                        // that was advertised, or whose pool has an advertisement for this node
                        // (the reason is then the one place that says why it is not).
                        let stopped = matches!(before, Some(advertise::Outcome::Advertised { .. }));
                        let message = if stopped {
                            "stopped advertising over BGP"
                        } else {
                            "not advertised over BGP"
                        };
                        match reason.severity() {
                            advertise::Severity::Warning => {
                                tracing::warn!(service = %key, node, %reason, "{message}")
                            }
                            advertise::Severity::Info => {
                                tracing::info!(service = %key, node, %reason, "{message}")
                            }
                            advertise::Severity::Quiet if stopped => {
                                tracing::info!(service = %key, node, %reason, "{message}")
                            }
                            advertise::Severity::Quiet => {
                                tracing::debug!(service = %key, node, %reason, "{message}")
                            }
                        }
                    }
                }
            }
        }
        for key in self.last_bgp.services.keys() {
            if !bgp.services.contains_key(key)
                && matches!(
                    self.last_bgp.services.get(key),
                    Some(advertise::Outcome::Advertised { .. })
                )
            {
                tracing::info!(service = %key, reason = "deleted", "stopped advertising over BGP");
            }
        }
        series
    }

    fn reparse(&mut self, resources: &Resources) {
        let outcome = parse(resources, &self.settings.options);
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
                let errors: Vec<String> = outcome.errors().map(ToString::to_string).collect();
                let verdict = Verdict::Invalid(errors.join("\n"));
                if self.verdict.as_ref() != Some(&verdict) {
                    tracing::error!(errors = ?errors, "invalid configuration: keeping the last valid one");
                }
                verdict
            }
        };
        self.verdict = Some(verdict);
    }

    /// The ConfigurationState (parse verdict, then FRR's problem, one per line) and an Event on
    /// the pod for each new FRR problem. Nothing is reported before the first parse.
    fn report_state(&mut self, frr_problem: Option<&str>, writes: &mut Vec<Write>) {
        if let Some(parsed) = &self.verdict {
            let combined = match (parsed, frr_problem) {
                (v, None) => v.clone(),
                (Verdict::Invalid(errors), Some(p)) => Verdict::Invalid(format!("{errors}\n{p}")),
                (Verdict::Valid | Verdict::Unknown, Some(p)) => Verdict::Invalid(p.to_string()),
            };
            if self.reported.as_ref() != Some(&combined) {
                writes.push(Write::ConfigurationState(combined.clone()));
                self.reported = Some(combined);
            }
        }
        if self.frr_problem.as_deref() != frr_problem {
            if let Some(problem) = frr_problem {
                writes.push(Write::PodEvent {
                    type_: EventType::Warning,
                    reason: FRR_CONFIG_FAILED,
                    note: problem.to_string(),
                });
            }
            self.frr_problem = frr_problem.map(str::to_string);
        }
    }

    /// Logs, metric series and Events for what changed since the last step.
    fn report(
        &mut self,
        decision: &Decision,
        missing: &BTreeSet<IpAddr>,
        writes: &mut Vec<Write>,
    ) -> Vec<Announced> {
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
        let node = &self.settings.node;
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
                    protocol: LAYER2,
                    node: node.clone(),
                    ip: *ip,
                });
            }
        }
        for key in announced.difference(&self.announced) {
            tracing::info!(service = %key, node, "announcing");
            writes.push(Write::Event {
                service: key.clone(),
                type_: EventType::Normal,
                reason: "nodeAssigned",
                note: format!("announcing from node {node:?} with protocol {LAYER2:?}"),
            });
        }
        for key in self.announced.difference(&announced) {
            let reason = decision.services.get(key).map(|o| match o {
                Outcome::NotAnnounced(r) => r.to_string(),
                Outcome::Announced { .. } => "interfaces missing".into(),
            });
            tracing::info!(service = %key, reason = reason.unwrap_or_else(|| "deleted".into()), "stopped announcing");
        }
        for key in failed.difference(&self.failed) {
            tracing::warn!(service = %key, node, "the advertisement's interfaces do not exist on this node");
            writes.push(Write::Event {
                service: key.clone(),
                type_: EventType::Warning,
                reason: "announceFailed",
                note: format!(
                    "the interfaces of the L2Advertisements for this service do not exist on node {node:?}"
                ),
            });
        }
        self.announced = announced;
        self.failed = failed;
        series
    }
}

/// The ServiceL2Status content for what this node announces.
fn l2_statuses(decision: &Decision) -> BTreeMap<ServiceKey, Option<Vec<String>>> {
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

/// The IPs this node announces (`mine`) that another node wins once this one has left
/// (`without_me`): on shutdown, this node answers until it sees their new owners announce them.
pub fn handover_ips(mine: &Decision, without_me: &Decision) -> BTreeSet<IpAddr> {
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

#[cfg(test)]
mod tests;
