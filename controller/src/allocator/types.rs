//! What the allocator is told about a Service and what it answers.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// An IP family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }

    pub fn other(self) -> Self {
        match self {
            Self::V4 => Self::V6,
            Self::V6 => Self::V4,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Self::V4 => 0,
            Self::V6 => 1,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        })
    }
}

/// The families a set of addresses (cluster IPs, or LoadBalancer IPs) covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Families {
    Single(Family),
    Dual,
}

impl Families {
    /// `None` for no address, more than two, or two of one family.
    pub fn of(ips: &[IpAddr]) -> Option<Self> {
        match ips {
            [a] => Some(Self::Single(Family::of(*a))),
            [a, b] if Family::of(*a) != Family::of(*b) => Some(Self::Dual),
            _ => None,
        }
    }

    pub fn includes(self, family: Family) -> bool {
        match self {
            Self::Single(f) => f == family,
            Self::Dual => true,
        }
    }
}

impl fmt::Display for Families {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Single(family) => family.fmt(f),
            Self::Dual => f.write_str("DualStack"),
        }
    }
}

/// `spec.ipFamilyPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FamilyPolicy {
    #[default]
    SingleStack,
    PreferDualStack,
    RequireDualStack,
}

/// One port a Service exposes; two Services sharing an IP must not both use one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port {
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    pub port: i32,
}

impl Port {
    pub fn new(protocol: &str, port: i32) -> Self {
        Self {
            protocol: protocol.to_string(),
            port,
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.protocol, self.port)
    }
}

/// The IPs a Service asks for (`spec.loadBalancerIP` or `metallb.io/loadBalancerIPs`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Requested {
    #[default]
    Nothing,
    Ips(Vec<IpAddr>),
    /// The request cannot be read; the text says why.
    Invalid(String),
}

/// Everything the allocator needs to know about one LoadBalancer Service. Built from the
/// Kubernetes object by `crate::service`; the allocator never sees the object itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `spec.clusterIPs` (or `spec.clusterIP`), in order: the first one's family is the
    /// Service's primary family (`spec.ipFamilies[0]`).
    pub cluster_ips: Vec<IpAddr>,
    pub policy: FamilyPolicy,
    pub requested: Requested,
    /// `metallb.io/address-pool`.
    pub pool: Option<String>,
    /// `metallb.io/allow-shared-ip`; empty means the Service shares with nobody.
    pub sharing_key: String,
    /// Empty for `externalTrafficPolicy: Cluster`; the serialised selector for `Local`, so that
    /// Local Services share an IP only with Services that select the same pods.
    pub backend_key: String,
    pub ports: Vec<Port>,
    /// The IPs in `status.loadBalancer.ingress`: what an earlier allocation gave the Service.
    pub status_ips: Vec<IpAddr>,
}

impl Service {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The families of the cluster IPs: what the LoadBalancer IPs must match.
    pub fn families(&self) -> Option<Families> {
        Families::of(&self.cluster_ips)
    }

    /// The first cluster IP's family.
    pub fn primary_family(&self) -> Family {
        self.cluster_ips
            .first()
            .map(|ip| Family::of(*ip))
            .unwrap_or(Family::V4)
    }
}

/// The IPs given to a Service and the pools they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub ips: Vec<IpAddr>,
    /// The pool of each IP, in the same order.
    pub pools: Vec<String>,
}

impl Assignment {
    /// The value of `metallb.io/ip-allocated-from-pool`: the pool name, or (for explicitly
    /// requested IPs of two pools) both names joined with a comma.
    pub fn pool_annotation(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for p in &self.pools {
            if !names.contains(&p.as_str()) {
                names.push(p);
            }
        }
        names.join(",")
    }
}

/// What the Service's status should say after convergence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Desired {
    /// No configuration has been loaded yet: leave the Service as it is.
    Untouched,
    /// No IP: empty `status.loadBalancer`, no pool annotation.
    Cleared,
    Assigned(Assignment),
}

/// Normal or Warning, as Kubernetes Events are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// An Event to record on the Service, with MetalLB's reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub type_: EventType,
    pub reason: &'static str,
    pub message: String,
}

/// MetalLB's Event reasons (spec §2.7).
pub mod reasons {
    pub const IP_ALLOCATED: &str = "IPAllocated";
    pub const ALLOCATION_FAILED: &str = "AllocationFailed";
    pub const CLEAR_ASSIGNMENT: &str = "ClearAssignment";
    pub const LOAD_BALANCER_FAILED: &str = "LoadBalancerFailed";
    pub const NOT_ENOUGH_CLUSTER_IPS: &str = "not enough clusterips";
    pub const ADDITIONAL_ASSIGN_FAILED: &str = "AdditionalAssignFailed";
    pub const DEPRECATED_ANNOTATION: &str = "deprecatedAnnotation";
}

impl Event {
    pub fn normal(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_: EventType::Normal,
            reason,
            message: message.into(),
        }
    }

    pub fn warning(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_: EventType::Warning,
            reason,
            message: message.into(),
        }
    }
}

/// The result of converging one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Convergence {
    pub desired: Desired,
    pub events: Vec<Event>,
    /// An address was freed or a sharing key changed: Services still waiting for an IP may
    /// now get one, so they should be converged again.
    pub released: bool,
}

/// Why an IP cannot be given to a Service. The text ends up in Events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{ip} is not in any IPAddressPool")]
    NotInAnyPool { ip: IpAddr },
    #[error(
        "pool {pool:?} is not allowed for this service by its serviceAllocation (namespaces or service selectors)"
    )]
    PoolNotAllowed { pool: String },
    #[error("unknown pool {0:?}")]
    UnknownPool(String),
    #[error("{ip} is in use by {other}, which does not allow sharing")]
    OtherDoesNotShare { ip: IpAddr, other: String },
    #[error("{ip} is in use by {other}, and this service does not allow sharing")]
    ThisDoesNotShare { ip: IpAddr, other: String },
    #[error("{ip} is shared with sharing key {existing:?}, not {requested:?}")]
    SharingKeyMismatch {
        ip: IpAddr,
        existing: String,
        requested: String,
    },
    #[error(
        "{ip} is shared by services with backend key {existing:?}, this service has {requested:?} (services sharing an IP need the same externalTrafficPolicy, and with Local the same selector)"
    )]
    BackendKeyMismatch {
        ip: IpAddr,
        existing: String,
        requested: String,
    },
    #[error("port {port} is already in use on {ip} by {other}")]
    PortInUse {
        ip: IpAddr,
        port: Port,
        other: String,
    },
    #[error("a service has one or two IPs, of different families; got {0}")]
    BadIpCount(String),
    #[error(
        "requested loadBalancer IP(s) {ips} does not match the ipFamily of the service ({families})"
    )]
    FamilyMismatch { ips: String, families: Families },
    #[error(
        "requested loadBalancer IP(s) {ips} is not compatible with requested address pool {pool}"
    )]
    NotInRequestedPool { ips: String, pool: String },
    #[error("no available IPs in pool {pool:?} for {families} IPFamily")]
    PoolExhausted { pool: String, families: Families },
    #[error("no available IPs")]
    NoAvailableIps,
    #[error("{0}")]
    InvalidRequest(String),
}

/// IPs as Go's `%q` prints a `[]net.IP`, the form MetalLB's Events use: `["192.0.2.1" "2001:db8::1"]`.
pub fn quoted(ips: &[IpAddr]) -> String {
    let inner: Vec<String> = ips.iter().map(|ip| format!("\"{ip}\"")).collect();
    format!("[{}]", inner.join(" "))
}
