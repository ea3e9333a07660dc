//! Routes the session advertises and the UPDATEs that carry them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use metallb_api::community::Community;

use crate::bgp::message::{
    AsPath, Attribute, Family, LargeCommunity, MpReach, MpUnreach, Origin, Update,
};

/// What is sent with a prefix besides its next hop (a session-wide setting, see
/// [`super::NextHops`]). ORIGIN is always IGP.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Route {
    /// AS numbers after ours (eBGP) or alone (iBGP): the caller's prepends, if any.
    pub as_path: Vec<u32>,
    pub med: Option<u32>,
    /// Sent to internal peers only (RFC 4271 §5.1.5), [`DEFAULT_LOCAL_PREF`] when unset.
    pub local_pref: Option<u32>,
    /// Standard ones go in COMMUNITIES, large ones in LARGE_COMMUNITY, both sorted.
    pub communities: BTreeSet<Community>,
}

/// LOCAL_PREF sent to an internal peer for a route that sets none (the usual default, FRR's).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// The family a prefix is announced in.
pub fn family_of(prefix: &IpNet) -> Family {
    match prefix {
        IpNet::V4(_) => Family::IPV4_UNICAST,
        IpNet::V6(_) => Family::IPV6_UNICAST,
    }
}

/// Session facts the attributes depend on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sender {
    pub local_as: u32,
    pub ibgp: bool,
    pub four_octet_as: bool,
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<(Ipv6Addr, Option<Ipv6Addr>)>,
}

impl Sender {
    /// The UPDATE announcing `prefixes` (all of one family, sendable) with `route`. Attributes
    /// in type code order.
    pub fn announce(&self, route: &Route, prefixes: Vec<IpNet>) -> Update {
        let mut path = Vec::with_capacity(route.as_path.len() + 1);
        if !self.ibgp {
            path.push(self.local_as);
        }
        path.extend_from_slice(&route.as_path);
        let path = AsPath::sequence(path);
        let mut attributes = vec![
            Attribute::Origin(Origin::Igp),
            Attribute::AsPath(path.clone()),
        ];
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for p in prefixes {
            match p {
                IpNet::V4(p) => v4.push(p),
                IpNet::V6(p) => v6.push(p),
            }
        }
        if !v4.is_empty()
            && let Some(nh) = self.next_hop_v4
        {
            attributes.push(Attribute::NextHop(nh));
        }
        if let Some(med) = route.med {
            attributes.push(Attribute::MultiExitDisc(med));
        }
        if self.ibgp {
            attributes.push(Attribute::LocalPref(
                route.local_pref.unwrap_or(DEFAULT_LOCAL_PREF),
            ));
        }
        let standard: Vec<u32> = route
            .communities
            .iter()
            .filter_map(Community::standard_value)
            .collect();
        if !standard.is_empty() {
            attributes.push(Attribute::Communities(standard));
        }
        if !v6.is_empty()
            && let Some((next_hop, link_local)) = self.next_hop_v6
        {
            attributes.push(Attribute::MpReach(MpReach::Ipv6 {
                next_hop,
                link_local,
                nlri: v6,
            }));
        }
        // RFC 6793 §4.2.2: a peer without 4-octet AS support reads AS_TRANS in AS_PATH and
        // passes the real path along in AS4_PATH.
        if !self.four_octet_as && path.needs_four_octets() {
            attributes.push(Attribute::As4Path(path));
        }
        let large: Vec<LargeCommunity> = route
            .communities
            .iter()
            .filter_map(|c| match *c {
                Community::Large(global, local1, local2) => Some(LargeCommunity {
                    global,
                    local1,
                    local2,
                }),
                Community::Standard(..) => None,
            })
            .collect();
        if !large.is_empty() {
            attributes.push(Attribute::LargeCommunities(large));
        }
        Update {
            attributes,
            nlri: v4,
            ..Update::default()
        }
    }
}

/// The UPDATE withdrawing `prefixes` of one family: the classic field for IPv4, MP_UNREACH_NLRI
/// for IPv6.
pub fn withdraw(family: Family, prefixes: Vec<IpNet>) -> Update {
    let v4: Vec<Ipv4Net> = prefixes
        .iter()
        .filter_map(|p| match p {
            IpNet::V4(p) => Some(*p),
            IpNet::V6(_) => None,
        })
        .collect();
    let v6: Vec<Ipv6Net> = prefixes
        .iter()
        .filter_map(|p| match p {
            IpNet::V6(p) => Some(*p),
            IpNet::V4(_) => None,
        })
        .collect();
    if family == Family::IPV4_UNICAST {
        Update {
            withdrawn: v4,
            ..Update::default()
        }
    } else {
        Update {
            attributes: vec![Attribute::MpUnreach(MpUnreach::Ipv6(v6))],
            ..Update::default()
        }
    }
}

/// Prefixes grouped by family and route, so that one UPDATE carries all the prefixes sharing
/// their attributes.
pub fn group<'a>(
    routes: impl IntoIterator<Item = (&'a IpNet, &'a Route)>,
) -> BTreeMap<(Family, &'a Route), Vec<IpNet>> {
    let mut groups: BTreeMap<(Family, &Route), Vec<IpNet>> = BTreeMap::new();
    for (prefix, route) in routes {
        groups
            .entry((family_of(prefix), route))
            .or_default()
            .push(*prefix);
    }
    groups
}
