//! Who advertises what over BGP (spec §3.5), pure: the same result drives the native sessions
//! and the FRR configuration.
//!
//! ```text
//!  Config: peers ──node selectors──► sessions of this node
//!          pools ── BGPAdvertisements ─┐
//!  Services (IPs, labels, endpoints) ──┼─► per Service: eligible on this node? ─► prefixes × ads
//!  this Node (labels, NetworkUnavailable)┘                                           │
//!                        per session: prefix → Route (communities, local pref, AS prepends) ◄┘
//! ```
//!
//! The rules, in order (MetalLB's `bgp_controller.go: ShouldAnnounce`, and our decisions):
//! 1. The Service has IPs, all in one pool of the configuration.
//! 2. Some BGPAdvertisement of the pool selects this node (`nodeSelectors`), else "notOwner".
//! 3. Of those, the ones whose serviceSelectors are empty or match apply; none →
//!    "noMatchingAdvertisement".
//! 4. Two applicable advertisements giving one prefix different non-zero local preferences →
//!    "conflictingAdvertisements".
//! 5. A node with NetworkUnavailable, or labelled exclude-from-external-load-balancers (unless
//!    told to ignore it), advertises nothing.
//! 6. `externalTrafficPolicy: Local` needs a serving endpoint on this node ("noLocalEndpoints");
//!    `Cluster` a serving endpoint anywhere ("noEndpoints").
//! 7. Every IP × applicable advertisement gives a prefix (the IP masked to the aggregation
//!    length), sent to the advertisement's `peers` (all sessions when empty) that carry its
//!    family, with its communities and local preference; a prefix reaching a session from
//!    several advertisements carries the union of their communities.
//!
//! Decision: a Service none of whose advertisements reaches a session of this node is "not
//! advertised" with reason "noPeers" (MetalLB counts it as announced, with an empty peer list in
//! its ServiceBGPStatus): the metric and the status say what the routers actually get.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use metallb_api::config::{BfdProfile, BgpAdvertisement, Config, Peer, Pool};
use metallb_api::constants::labels::EXCLUDE_FROM_EXTERNAL_LB;

use crate::announce::{Node, Service, ServiceKey};
use crate::bgp::message::Family;
use crate::bgp::session::{Route, families_for};

/// Everything [`decide`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub config: &'a Config,
    pub services: &'a [Service],
    /// This speaker's node, as the API shows it (`None` before it is known: nothing then).
    pub node: Option<&'a Node>,
    /// `--ignore-exclude-lb`.
    pub ignore_exclude_lb: bool,
}

/// Why a Service is not advertised by this node. MetalLB's words where it has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    NoIngressIp,
    NotInAnyPool,
    /// No BGPAdvertisement of the pool selects this node.
    NotOwner,
    NoMatchingAdvertisement,
    /// Applicable advertisements disagree on a prefix's local preference.
    ConflictingAdvertisements(IpNet),
    NodeNetworkUnavailable,
    NodeExcluded,
    NoLocalEndpoints,
    NoEndpoints,
    /// The advertisements reach no BGP session of this node.
    NoPeers,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoIngressIp => f.write_str("noIPAllocated"),
            Self::NotInAnyPool => f.write_str("noPoolForIPs"),
            Self::NotOwner => f.write_str("notOwner"),
            Self::NoMatchingAdvertisement => f.write_str("noMatchingAdvertisement"),
            Self::ConflictingAdvertisements(p) => {
                write!(f, "conflictingAdvertisements (local preference of {p})")
            }
            Self::NodeNetworkUnavailable => f.write_str("nodeNetworkUnavailable"),
            Self::NodeExcluded => f.write_str("nodeLabeledExcludeBalancers"),
            Self::NoLocalEndpoints => f.write_str("noLocalEndpoints"),
            Self::NoEndpoints => f.write_str("noEndpoints"),
            Self::NoPeers => f.write_str("noPeers"),
        }
    }
}

/// How loudly a [`Reason`] is logged when it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The Service is not a BGP one for this node (no IP yet, no pool, or no advertisement of
    /// its pool selects this node): most Services of a cluster, so debug only.
    Quiet,
    /// The cluster's state (endpoints, node conditions and labels, selectors) keeps it back.
    Info,
    /// The configuration cannot do what it asks for.
    Warning,
}

impl Reason {
    pub fn severity(&self) -> Severity {
        match self {
            Self::NoIngressIp | Self::NotInAnyPool | Self::NotOwner => Severity::Quiet,
            Self::NoMatchingAdvertisement
            | Self::NodeNetworkUnavailable
            | Self::NodeExcluded
            | Self::NoLocalEndpoints
            | Self::NoEndpoints => Severity::Info,
            Self::ConflictingAdvertisements(_) | Self::NoPeers => Severity::Warning,
        }
    }
}

/// The outcome for one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Advertised {
        pool: String,
        ips: Vec<IpAddr>,
        /// The BGPPeer names its prefixes go to (ServiceBGPStatus `peers`).
        peers: BTreeSet<String>,
    },
    NotAdvertised(Reason),
}

/// What this node advertises.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    /// The BGPPeers this node has a session with, by name.
    pub sessions: BTreeMap<String, Peer>,
    /// Per session (BGPPeer name), every prefix with its attributes.
    pub routes: BTreeMap<String, BTreeMap<IpNet, Route>>,
    pub services: BTreeMap<ServiceKey, Outcome>,
    /// Every BFDProfile, by name: the FRR backend renders them all (as MetalLB does), the
    /// native one runs those its sessions name.
    pub bfd_profiles: BTreeMap<String, BfdProfile>,
    /// The `bgpextras` text, appended to the FRR configuration (refused with the native
    /// backend).
    pub extras: String,
}

impl Decision {
    pub fn advertised(&self) -> impl Iterator<Item = (&ServiceKey, &Outcome)> {
        self.services
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Advertised { .. }))
    }
}

/// Decides what this node advertises (see the module documentation for the rules).
pub fn decide(inputs: &Inputs) -> Decision {
    let mut decision = Decision {
        bfd_profiles: inputs.config.bfd_profiles.clone(),
        extras: inputs.config.bgp_extras.clone(),
        ..Decision::default()
    };
    let Some(node) = inputs.node else {
        return decision;
    };
    decision.sessions = inputs
        .config
        .peers
        .values()
        .filter(|p| p.selects_node(&node.labels))
        .map(|p| (p.name.clone(), p.clone()))
        .collect();
    for name in decision.sessions.keys() {
        decision.routes.insert(name.clone(), BTreeMap::new());
    }
    let mut services: Vec<&Service> = inputs.services.iter().collect();
    services.sort_by(|a, b| a.key.cmp(&b.key));
    for service in services {
        let outcome = match advertisements(inputs, node, service) {
            Err(reason) => Outcome::NotAdvertised(reason),
            Ok((pool, ads)) => route(&mut decision, service, pool, &ads),
        };
        decision.services.insert(service.key.clone(), outcome);
    }
    decision
}

/// The pool and the advertisements that apply to `service` on `node`.
fn advertisements<'a>(
    inputs: &Inputs<'a>,
    node: &Node,
    service: &Service,
) -> Result<(&'a Pool, Vec<&'a BgpAdvertisement>), Reason> {
    if service.ips.is_empty() {
        return Err(Reason::NoIngressIp);
    }
    let pool = inputs
        .config
        .pool_of(&service.ips)
        .ok_or(Reason::NotInAnyPool)?;
    let on_node: Vec<&BgpAdvertisement> = pool
        .bgp_advertisements
        .iter()
        .filter(|ad| ad.nodes.contains(&node.name))
        .collect();
    if on_node.is_empty() {
        return Err(Reason::NotOwner);
    }
    let ads: Vec<&BgpAdvertisement> = on_node
        .into_iter()
        .filter(|ad| ad.applies_to_service(&service.labels))
        .collect();
    if ads.is_empty() {
        return Err(Reason::NoMatchingAdvertisement);
    }
    let mut local_prefs: BTreeMap<IpNet, u32> = BTreeMap::new();
    for ad in &ads {
        for ip in &service.ips {
            let prefix = prefix(*ip, ad);
            if ad.local_pref != 0 {
                match local_prefs.insert(prefix, ad.local_pref) {
                    Some(other) if other != ad.local_pref => {
                        return Err(Reason::ConflictingAdvertisements(prefix));
                    }
                    _ => {}
                }
            }
        }
    }
    if node.network_unavailable {
        return Err(Reason::NodeNetworkUnavailable);
    }
    if !inputs.ignore_exclude_lb && node.labels.contains_key(EXCLUDE_FROM_EXTERNAL_LB) {
        return Err(Reason::NodeExcluded);
    }
    if service.local_traffic_policy {
        if !service.serving_nodes().contains(node.name.as_str()) {
            return Err(Reason::NoLocalEndpoints);
        }
    } else if !service.has_serving_endpoint() {
        return Err(Reason::NoEndpoints);
    }
    Ok((pool, ads))
}

/// Adds the Service's prefixes to the sessions its advertisements reach.
fn route(
    decision: &mut Decision,
    service: &Service,
    pool: &Pool,
    ads: &[&BgpAdvertisement],
) -> Outcome {
    let mut peers = BTreeSet::new();
    for ad in ads {
        for (session, peer) in &decision.sessions {
            if !ad.applies_to_peer(session) {
                continue;
            }
            let table = decision.routes.entry(session.clone()).or_default();
            for ip in service.ips.iter().filter(|ip| carries(peer, **ip)) {
                peers.insert(session.clone());
                let entry = table.entry(prefix(*ip, ad)).or_default();
                entry.communities.extend(ad.communities.iter().cloned());
                if ad.local_pref != 0 {
                    entry.local_pref = Some(ad.local_pref);
                }
                if ad.as_path_prepend.len() > entry.as_path.len() {
                    entry.as_path = ad.as_path_prepend.clone();
                }
            }
        }
    }
    if peers.is_empty() {
        return Outcome::NotAdvertised(Reason::NoPeers);
    }
    Outcome::Advertised {
        pool: pool.name.clone(),
        ips: service.ips.clone(),
        peers,
    }
}

/// Whether the session with `peer` carries the family of `ip`: the peer address's family, both
/// with `dualStackAddressFamily` (what the FRR backend activates, and the native one offers),
/// both for an unnumbered peer (FRR activates both on an interface). A prefix of another family
/// is not for that session: it is neither sent, nor pending, nor listed in ServiceBGPStatus
/// (MetalLB lists the peer, and its FRR then sends nothing of that family to it).
fn carries(peer: &Peer, ip: IpAddr) -> bool {
    let Some(address) = peer.address else {
        return true;
    };
    let family = match ip {
        IpAddr::V4(_) => Family::IPV4_UNICAST,
        IpAddr::V6(_) => Family::IPV6_UNICAST,
    };
    families_for(address, peer.dual_stack_address_family, peer.disable_mp).contains(&family)
}

/// `ip` masked to the advertisement's aggregation length for its family.
fn prefix(ip: IpAddr, ad: &BgpAdvertisement) -> IpNet {
    let len = match ip {
        IpAddr::V4(_) => ad.aggregation_length.min(32),
        IpAddr::V6(_) => ad.aggregation_length_v6.min(128),
    };
    IpNet::new(ip, len)
        .expect("a length within the family's bounds")
        .trunc()
}

#[cfg(test)]
mod tests;
