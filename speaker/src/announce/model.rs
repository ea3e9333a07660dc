//! The inputs and outputs of the election, free of Kubernetes types.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

/// `namespace/name` of a Service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
}

impl ServiceKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One endpoint of a Service, from its EndpointSlices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `nodeName`, when the endpoint runs on a node.
    pub node: Option<String>,
    /// `ready` is unset or true, or `serving` is true (MetalLB's `epslices` rule).
    pub serving: bool,
}

/// A LoadBalancer Service this speaker is responsible for (type and class already filtered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub key: ServiceKey,
    pub labels: BTreeMap<String, String>,
    /// `status.loadBalancer.ingress[].ip`, in order; the first one keys the election.
    pub ips: Vec<IpAddr>,
    /// `externalTrafficPolicy: Local`.
    pub local_traffic_policy: bool,
    /// The Service carries a non-empty `allow-shared-ip` annotation (either spelling): an empty
    /// key means no sharing, for the controller too ([`metallb_api::service::sharing_key`]).
    pub shares_ip: bool,
    pub endpoints: Vec<Endpoint>,
}

impl Service {
    pub fn has_serving_endpoint(&self) -> bool {
        self.endpoints.iter().any(|e| e.serving)
    }

    /// Nodes with a serving endpoint of this Service.
    pub fn serving_nodes(&self) -> BTreeSet<&str> {
        self.endpoints
            .iter()
            .filter(|e| e.serving)
            .filter_map(|e| e.node.as_deref())
            .collect()
    }
}

/// A Node as the election sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Condition `NetworkUnavailable` is `True`.
    pub network_unavailable: bool,
}

/// Which speakers are alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Liveness gossip is off: every Node known from the API counts as live (MetalLB's
    /// behaviour without memberlist).
    AllNodes,
    /// The speakers the gossip reports alive (including this one once it has joined).
    Speakers(BTreeSet<String>),
}

impl Liveness {
    pub fn is_live(&self, node: &str) -> bool {
        match self {
            Self::AllNodes => true,
            Self::Speakers(live) => live.contains(node),
        }
    }
}

/// The interfaces an IP is announced on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interfaces {
    /// Every eligible interface (an applicable advertisement lists none).
    All,
    /// Only these (the union of the applicable advertisements' `interfaces`).
    Only(BTreeSet<String>),
}

impl Interfaces {
    pub fn union(&self, other: &Self) -> Self {
        match (self, other) {
            (Self::Only(a), Self::Only(b)) => Self::Only(a.union(b).cloned().collect()),
            _ => Self::All,
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(names) => names.contains(name),
        }
    }
}

/// Everything [`super::decide`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub config: &'a metallb_api::config::Config,
    pub services: &'a [Service],
    pub nodes: &'a BTreeMap<String, Node>,
    pub liveness: &'a Liveness,
    /// This speaker's node.
    pub me: &'a str,
    /// `--ignore-exclude-lb`: keep nodes labelled exclude-from-external-load-balancers.
    pub ignore_exclude_lb: bool,
}

/// Why a Service is not announced by this node. The strings are MetalLB's reasons where it has
/// one, so logs read alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No ingress IP yet.
    NoIngressIp,
    /// The IPs are not all in one pool of the current configuration.
    NotInAnyPool,
    /// No serving endpoint anywhere.
    NoServingEndpoints,
    /// The pool has no L2Advertisement that applies to this Service.
    NoAdvertisement,
    /// `allow-shared-ip` with an applicable advertisement that has serviceSelectors.
    SharedIpWithServiceSelector,
    /// No live, available, selected node can announce it.
    NoCandidates,
    /// Another node won the election.
    OwnedBy(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoIngressIp => f.write_str("noIPAllocated"),
            Self::NotInAnyPool => f.write_str("noPoolForIPs"),
            Self::NoServingEndpoints => f.write_str("noServingEndpoints"),
            Self::NoAdvertisement => f.write_str("noMatchingAdvertisement"),
            Self::SharedIpWithServiceSelector => f.write_str("sharedIPWithServiceSelector"),
            Self::NoCandidates => f.write_str("noCandidateNode"),
            Self::OwnedBy(node) => write!(f, "notOwner (announced by {node})"),
        }
    }
}

/// The outcome for one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This node announces the Service's IPs on these interfaces.
    Announced {
        pool: String,
        ips: Vec<IpAddr>,
        interfaces: Interfaces,
        /// Whether an applicable advertisement restricted the interfaces (ServiceL2Status
        /// lists them only then).
        restricted: bool,
    },
    NotAnnounced(Reason),
}

/// The election's result, for every Service given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    pub services: BTreeMap<ServiceKey, Outcome>,
}

impl Decision {
    /// The IPs this node announces and the interfaces for each (shared IPs merged).
    pub fn announced_ips(&self) -> BTreeMap<IpAddr, Interfaces> {
        let mut out: BTreeMap<IpAddr, Interfaces> = BTreeMap::new();
        for outcome in self.services.values() {
            if let Outcome::Announced {
                ips, interfaces, ..
            } = outcome
            {
                for ip in ips {
                    let merged = match out.get(ip) {
                        Some(existing) => existing.union(interfaces),
                        None => interfaces.clone(),
                    };
                    out.insert(*ip, merged);
                }
            }
        }
        out
    }

    /// The Services this node announces.
    pub fn announced(&self) -> impl Iterator<Item = (&ServiceKey, &Outcome)> {
        self.services
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Announced { .. }))
    }
}
