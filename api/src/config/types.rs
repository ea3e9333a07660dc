use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::community::Community;
use crate::duration::GoDuration;
use crate::selector::{Selector, any_matches};

/// A validated MetalLB configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// Pools by name, each with the advertisements that apply to it.
    pub pools: BTreeMap<String, Pool>,
    /// BGP peers by BGPPeer name.
    pub peers: BTreeMap<String, Peer>,
    /// BFD profiles by name.
    pub bfd_profiles: BTreeMap<String, BfdProfile>,
    /// Raw FRR configuration appended to the rendered one (frr backend only).
    pub bgp_extras: String,
}

impl Config {
    /// The pool every one of `ips` belongs to (a Service's IPs all come from one pool).
    pub fn pool_of(&self, ips: &[IpAddr]) -> Option<&Pool> {
        self.pools
            .values()
            .find(|p| ips.iter().all(|ip| p.contains(*ip)))
    }
}

/// One entry of `spec.addresses` and the CIDRs it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressEntry {
    pub text: String,
    pub cidrs: Vec<IpNet>,
}

/// A validated IPAddressPool.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub name: String,
    /// The address entries in the order they are listed.
    pub entries: Vec<AddressEntry>,
    pub auto_assign: bool,
    pub avoid_buggy_ips: bool,
    /// `spec.serviceAllocation`, if the pool restricts who may use it.
    pub allocation: Option<ServiceAllocation>,
    pub l2_advertisements: Vec<L2Advertisement>,
    pub bgp_advertisements: Vec<BgpAdvertisement>,
}

impl Pool {
    /// Every CIDR of the pool, in the order listed (ranges already summarised).
    pub fn cidrs(&self) -> impl Iterator<Item = &IpNet> {
        self.entries.iter().flat_map(|e| e.cidrs.iter())
    }

    /// Whether an address belongs to the pool.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.cidrs().any(|c| c.contains(&ip))
    }

    pub fn has_ipv4(&self) -> bool {
        self.cidrs().any(|c| matches!(c, IpNet::V4(_)))
    }

    pub fn has_ipv6(&self) -> bool {
        self.cidrs().any(|c| matches!(c, IpNet::V6(_)))
    }

    /// Whether a Service in `namespace` with `labels` may take addresses from this pool.
    pub fn serves(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.allocation
            .as_ref()
            .is_none_or(|a| a.serves(namespace, labels))
    }
}

/// `spec.serviceAllocation`, resolved: namespace selectors are already turned into names.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceAllocation {
    /// Lower wins; 0 means "no priority" and sorts after every prioritised pool.
    pub priority: i32,
    /// The namespaces the pool is restricted to, when `restricts_namespaces`.
    pub namespaces: BTreeSet<String>,
    /// Whether `namespaces` or `namespaceSelectors` was given.
    ///
    /// Decision: MetalLB treats namespace selectors that select no namespace as "no restriction";
    /// we treat them as "no namespace may use the pool", which is what the admin asked for.
    pub restricts_namespaces: bool,
    /// At least one must match the Service's labels, when non-empty. A `serviceAllocation` with
    /// neither namespaces nor selectors (priority only) gets one match-everything selector, as in
    /// MetalLB, so the pool is tried (by priority) for every Service.
    pub service_selectors: Vec<Selector>,
}

impl ServiceAllocation {
    pub fn serves(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        if self.restricts_namespaces && !self.namespaces.contains(namespace) {
            return false;
        }
        self.service_selectors.is_empty()
            || self.service_selectors.iter().any(|s| s.matches(labels))
    }
}

/// An L2Advertisement as it applies to one pool.
#[derive(Debug, Clone, PartialEq)]
pub struct L2Advertisement {
    pub name: String,
    /// The node selectors (empty: every node).
    pub node_selectors: Vec<Selector>,
    /// The nodes selected among the Nodes given to [`super::parse`].
    pub nodes: BTreeSet<String>,
    /// Interfaces to announce from; empty means every interface.
    pub interfaces: Vec<String>,
    /// Services this advertisement applies to (empty: all of the pool's Services).
    pub service_selectors: Vec<Selector>,
    /// Summed preference weight per eligible node (missing: 0).
    pub preferred_nodes: BTreeMap<String, i64>,
}

impl L2Advertisement {
    pub fn selects_node(&self, node_labels: &BTreeMap<String, String>) -> bool {
        any_matches(&self.node_selectors, node_labels)
    }

    pub fn applies_to_service(&self, service_labels: &BTreeMap<String, String>) -> bool {
        any_matches(&self.service_selectors, service_labels)
    }
}

/// A BGPAdvertisement as it applies to one pool.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpAdvertisement {
    pub name: String,
    pub aggregation_length: u8,
    pub aggregation_length_v6: u8,
    /// 0 means unset.
    pub local_pref: u32,
    pub communities: BTreeSet<Community>,
    pub node_selectors: Vec<Selector>,
    pub nodes: BTreeSet<String>,
    /// BGPPeer names; empty means every peer.
    pub peers: Vec<String>,
    pub service_selectors: Vec<Selector>,
    /// AS numbers put before the path (metallb-rs extension).
    pub as_path_prepend: Vec<u32>,
}

impl BgpAdvertisement {
    pub fn selects_node(&self, node_labels: &BTreeMap<String, String>) -> bool {
        any_matches(&self.node_selectors, node_labels)
    }

    pub fn applies_to_service(&self, service_labels: &BTreeMap<String, String>) -> bool {
        any_matches(&self.service_selectors, service_labels)
    }

    pub fn applies_to_peer(&self, peer: &str) -> bool {
        self.peers.is_empty() || self.peers.iter().any(|p| p == peer)
    }
}

/// The remote AS of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAsn {
    Number(u32),
    /// FRR `remote-as internal`: whatever ASN equals ours.
    Internal,
    /// FRR `remote-as external`: whatever ASN differs from ours.
    External,
}

/// Where a peer's TCP MD5 password comes from. Its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    /// `spec.password`, in clear text in the CR.
    Inline(String),
    /// `spec.passwordSecret`: the Secret's name and, when it was resolved, its `password` key.
    Secret {
        name: String,
        password: Option<String>,
    },
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Inline(<redacted>)"),
            Self::Secret { name, password } => f
                .debug_struct("Secret")
                .field("name", name)
                .field("password", &password.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

impl Password {
    /// The clear-text password, when known.
    pub fn value(&self) -> Option<&str> {
        match self {
            Self::Inline(p) => Some(p),
            Self::Secret { password, .. } => password.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn a_password_never_shows_in_debug_output() {
        let inline = format!("{:?}", Password::Inline("hunter2".into()));
        let secret = format!(
            "{:?}",
            Password::Secret {
                name: "bgp-auth".into(),
                password: Some("hunter2".into())
            }
        );
        assert!(!inline.contains("hunter2") && !secret.contains("hunter2"));
        assert!(secret.contains("bgp-auth"), "{secret}");
    }
}

/// A validated BGPPeer.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub name: String,
    pub my_asn: u32,
    pub peer_asn: PeerAsn,
    pub local_asn: Option<u32>,
    /// Exactly one of `address` and `interface` is set.
    pub address: Option<IpAddr>,
    pub interface: Option<String>,
    pub source_address: Option<IpAddr>,
    pub port: u16,
    /// Hold and keepalive time: when only one was given, the other is derived (hold = 3 ×
    /// keepalive) as MetalLB does.
    pub hold_time: Option<GoDuration>,
    pub keepalive_time: Option<GoDuration>,
    pub connect_time: Option<GoDuration>,
    pub router_id: Option<IpAddr>,
    /// Empty: every node.
    pub node_selectors: Vec<Selector>,
    pub password: Option<Password>,
    pub bfd_profile: Option<String>,
    pub graceful_restart: bool,
    pub ebgp_multihop: bool,
    pub vrf: Option<String>,
    pub dual_stack_address_family: bool,
    pub disable_mp: bool,
}

impl Peer {
    pub fn selects_node(&self, node_labels: &BTreeMap<String, String>) -> bool {
        any_matches(&self.node_selectors, node_labels)
    }

    /// Whether the session is iBGP (known only for a numeric peer ASN or `internal`).
    pub fn is_ibgp(&self) -> bool {
        match self.peer_asn {
            PeerAsn::Number(n) => n == self.my_asn,
            PeerAsn::Internal => true,
            PeerAsn::External => false,
        }
    }

    /// FRR's neighbor identifier: the address or interface, and the VRF.
    pub fn identifier(&self) -> String {
        let id = match (&self.address, &self.interface) {
            (Some(a), _) => a.to_string(),
            (None, Some(i)) => i.clone(),
            (None, None) => String::new(),
        };
        format!("{id}-{}", self.vrf.as_deref().unwrap_or(""))
    }
}

/// A validated BFDProfile. Unset values are left to the BFD implementation's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BfdProfile {
    pub name: String,
    pub receive_interval: Option<u32>,
    pub transmit_interval: Option<u32>,
    pub detect_multiplier: Option<u32>,
    pub echo_interval: Option<u32>,
    pub echo_mode: bool,
    pub passive_mode: bool,
    pub minimum_ttl: Option<u32>,
}
