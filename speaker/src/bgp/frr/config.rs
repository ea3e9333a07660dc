//! The whole `frr.conf` of FRR mode, from the advertisement decision: pure, one function,
//! [`render`]. The decision already holds everything the file says: the BGPPeers selecting this
//! node, every prefix each of them gets with its attributes, the BFDProfiles and the
//! `bgpextras` text.
//!
//! ```text
//!  advertise::Decision ──Model::build──► Model (serializable) ──handlebars (templates/)──► frr.conf
//!   sessions, routes,                    per neighbor: prefix lists, route-map entries
//!   bfd_profiles, extras                 per (VRF, ASN, router ID): router bgp, networks
//! ```
//!
//! What the file says (MetalLB's FRR mode, `shared/spec/metallb.md` §3.6):
//! - per neighbor, prefix lists and an `<id>-out` route-map: one `on-match next` entry per
//!   local preference, community, large community (and our AS-path prepend extension), each
//!   matching the prefix list of the prefixes that carry it, then two entries that permit what
//!   the neighbor may get (`<id>-allowed-ipv4`, `<id>-allowed-ipv6`, `deny any` when empty);
//!   everything else falls off the route-map and is not sent. `<id>-in` denies every received
//!   route. `<id>` is the address (or interface), then `-<vrf>` for a VRF: MetalLB's names, so
//!   BGP extras written for MetalLB that name these lists and route-maps keep working;
//! - one `router bgp` per (VRF, ASN, router ID) with the neighbors' session options, the
//!   address families each neighbor activates, and a `network` statement per prefix;
//! - the `bfd` section with every BFDProfile; the BGP extras last, verbatim.
//!
//! Decisions, for fast and quiet reloads (`frr-reload.py` applies the difference with the
//! running configuration, so what FRR would print differently is changed again on every
//! reload):
//! - prefix-list entries carry no `seq`: FRR numbers them and `frr-reload.py` ignores the
//!   numbers, so adding one Service adds one entry instead of renumbering the rest (MetalLB
//!   numbers them);
//! - the two `allowed` route-map entries have fixed numbers (65534, 65535), so a new community
//!   value does not renumber them;
//! - defaults are not written (`port 179`): FRR does not print them, so writing them would be a
//!   change on every reload.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use handlebars::Handlebars;
use ipnet::IpNet;
use metallb_api::community::Community;
use metallb_api::config::{BfdProfile, Peer, PeerAsn};
use serde::Serialize;

use crate::bgp::advertise::Decision;
use crate::bgp::session::{Route, families_for};

/// Route-map entry numbers of the two entries that permit what a neighbor may get, after every
/// `on-match next` entry.
/// FRR's connect-retry timer (`neighbor X timers connect N`) when the BGPPeer sets no
/// `connectTime`. FRR's own default is 120 s, and MetalLB's FRR mode leaves it: a session that
/// dropped (a cut link, a router restart) then waits up to two minutes for the next attempt
/// when the router only listens (dynamic neighbors, `bgp listen range`), as many ToR setups
/// do. Our decision: 10 s, the native backend's connect time; a node is back in the router's
/// paths within seconds of its link coming back.
pub const DEFAULT_CONNECT_RETRY: i64 = 10;
pub const ALLOWED_V4_ENTRY: u32 = 65534;
pub const ALLOWED_V6_ENTRY: u32 = 65535;

/// What the file needs besides the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `hostname`: the system's host name, which FRR's daemons show whatever the file says
    /// (a `hostname` line that differs is changed again at every reload); see [`hostname`].
    pub hostname: String,
    /// FRR's level for `log stdout`: `debugging`, `informational`, `warnings`, `errors`,
    /// `emergencies` (see [`log_level`]). `debugging` also turns on BGP and BFD debug logs.
    pub log_level: String,
}

/// The host name FRR's daemons report: the kernel's (the pod shares the node's with
/// `hostNetwork`), else `fallback` (the node's name).
pub fn hostname(fallback: &str) -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.chars().any(|c| c.is_whitespace() || c.is_control()))
        .unwrap_or_else(|| fallback.to_string())
}

/// FRR's `log stdout` level for the speaker's `--log-level` (the operator maps it the same
/// way for the sidecar's start-up file).
pub fn log_level(level: metallb_runtime::logging::Level) -> &'static str {
    use metallb_runtime::logging::Level;
    match level {
        Level::All | Level::Debug => "debugging",
        Level::Info => "informational",
        Level::Warn => "warnings",
        Level::Error => "errors",
        Level::None => "emergencies",
    }
}

/// Why the configuration cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A value FRR's command line cannot take (the validator refuses line breaks; FRR also
    /// takes no spaces in these words).
    #[error("failed to render BGPPeer {peer}: its {field} cannot be written in frr.conf ({why})")]
    Unwritable {
        peer: String,
        field: &'static str,
        why: &'static str,
    },
    #[error("failed to render BGPPeer {peer}: the password of its Secret has not been read")]
    PasswordUnresolved { peer: String },
    #[error("failed to render BGPPeer {peer}: it has neither an address nor an interface")]
    NoAddress { peer: String },
    #[error("failed to render BGPPeer {peer}: too many route-map entries ({count})")]
    TooManyEntries { peer: String, count: usize },
    #[error("failed to render the FRR configuration: {0}")]
    Template(String),
}

/// Renders the whole `frr.conf`.
pub fn render(decision: &Decision, settings: &Settings) -> Result<String, RenderError> {
    let model = Model::build(decision, settings)?;
    engine()
        .render("frr", &model)
        .map_err(|e| RenderError::Template(e.to_string()))
}

const TEMPLATES: [(&str, &str); 4] = [
    ("frr", include_str!("templates/frr.conf.hbs")),
    ("filters", include_str!("templates/filters.conf.hbs")),
    ("router", include_str!("templates/router.conf.hbs")),
    ("bfd", include_str!("templates/bfd.conf.hbs")),
];

fn engine() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    for (name, text) in TEMPLATES {
        hb.register_template_string(name, text)
            .expect("templates compile (checked by tests)");
    }
    hb
}

/// What the templates read. Every field is always present (strict mode refuses a missing one).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Model {
    hostname: String,
    log_level: String,
    debug: bool,
    /// Every neighbor's filters, routers in order, then neighbors in order.
    filters: Vec<Filters>,
    routers: Vec<Router>,
    bfd_profiles: Vec<Profile>,
    extras: String,
}

/// A neighbor's prefix lists and route-maps.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Filters {
    id: String,
    prefix_lists: Vec<PrefixList>,
    out: Vec<Entry>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PrefixList {
    /// `ip` or `ipv6`.
    family: &'static str,
    name: String,
    /// `permit <prefix>`, or `deny any` alone.
    rules: Vec<String>,
}

/// One entry of `<id>-out`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    seq: u32,
    family: &'static str,
    prefix_list: String,
    /// The `set` statement, for the `on-match next` entries; `None` for the `allowed` ones.
    set: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Router {
    asn: u32,
    vrf: Option<String>,
    router_id: Option<String>,
    neighbors: Vec<Neighbor>,
    families: Vec<AddressFamily>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Neighbor {
    /// The address or the interface.
    peer: String,
    interface: bool,
    remote_as: String,
    ebgp_multihop: bool,
    local_as: Option<u32>,
    port: Option<u16>,
    /// Keepalive and hold time in seconds, when both are set.
    timers: Option<Timers>,
    connect_time: Option<i64>,
    password: Option<String>,
    update_source: Option<String>,
    graceful_restart: bool,
    bfd_profile: Option<String>,
    disable_connected_check: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Timers {
    keepalive: i64,
    hold: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AddressFamily {
    /// `ipv4` or `ipv6`.
    name: &'static str,
    networks: Vec<String>,
    /// `(peer, id)` of the neighbors that activate it.
    neighbors: Vec<Activation>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Activation {
    peer: String,
    id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    name: String,
    receive_interval: Option<u32>,
    transmit_interval: Option<u32>,
    detect_multiplier: Option<u32>,
    echo_mode: bool,
    echo_interval: Option<u32>,
    passive_mode: bool,
    minimum_ttl: Option<u32>,
}

/// One BGP instance: (VRF, ASN, router ID); the default VRF (`None`) sorts first.
type RouterKey<'a> = (Option<&'a str>, u32, Option<IpAddr>);

impl Model {
    fn build(decision: &Decision, settings: &Settings) -> Result<Self, RenderError> {
        // One BGP instance per (VRF, ASN, router ID); the default VRF (None) first.
        let mut routers: BTreeMap<RouterKey, Vec<&Peer>> = BTreeMap::new();
        for peer in decision.sessions.values() {
            routers
                .entry((peer.vrf.as_deref(), peer.my_asn, peer.router_id))
                .or_default()
                .push(peer);
        }
        let empty = BTreeMap::new();
        let mut filters = Vec::new();
        let mut rendered = Vec::new();
        for ((vrf, asn, router_id), mut peers) in routers {
            peers.sort_by_key(|p| id(p));
            let mut neighbors = Vec::new();
            let mut families = [
                (IpFamily::V4, BTreeSet::<&IpNet>::new(), Vec::new()),
                (IpFamily::V6, BTreeSet::new(), Vec::new()),
            ];
            for peer in peers {
                let routes = decision.routes.get(&peer.name).unwrap_or(&empty);
                let neighbor = neighbor(peer)?;
                for (family, networks, activations) in &mut families {
                    networks.extend(routes.keys().filter(|p| IpFamily::of(p) == *family));
                    if activates(peer, *family) {
                        activations.push(Activation {
                            peer: neighbor.peer.clone(),
                            id: id(peer),
                        });
                    }
                }
                filters.push(neighbor_filters(peer, routes)?);
                neighbors.push(neighbor);
            }
            rendered.push(Router {
                asn,
                vrf: vrf.map(str::to_string),
                router_id: router_id.map(|r| r.to_string()),
                neighbors,
                families: families
                    .into_iter()
                    .filter(|(_, networks, activations)| {
                        !networks.is_empty() || !activations.is_empty()
                    })
                    .map(|(family, networks, neighbors)| AddressFamily {
                        name: family.afi(),
                        networks: networks.iter().map(ToString::to_string).collect(),
                        neighbors,
                    })
                    .collect(),
            });
        }
        Ok(Self {
            hostname: settings.hostname.clone(),
            log_level: settings.log_level.clone(),
            debug: settings.log_level == "debugging",
            filters,
            routers: rendered,
            bfd_profiles: decision.bfd_profiles.values().map(profile).collect(),
            extras: decision.extras.trim_end().to_string(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    fn of(prefix: &IpNet) -> Self {
        match prefix {
            IpNet::V4(_) => Self::V4,
            IpNet::V6(_) => Self::V6,
        }
    }

    /// The word of `ip prefix-list` / `match ip address`.
    fn word(self) -> &'static str {
        match self {
            Self::V4 => "ip",
            Self::V6 => "ipv6",
        }
    }

    /// The address family of `address-family ... unicast`.
    fn afi(self) -> &'static str {
        match self {
            Self::V4 => "ipv4",
            Self::V6 => "ipv6",
        }
    }
}

/// MetalLB's neighbor identifier: the address or interface, then `-<vrf>` in a VRF.
fn id(peer: &Peer) -> String {
    let base = match (&peer.address, &peer.interface) {
        (Some(a), _) => a.to_string(),
        (None, Some(i)) => i.clone(),
        (None, None) => String::new(),
    };
    match &peer.vrf {
        Some(vrf) => format!("{base}-{vrf}"),
        None => base,
    }
}

/// Whether the neighbor activates `family`: both on an interface (unnumbered), otherwise as
/// the native backend offers them (the address's family; both with `dualStackAddressFamily`).
fn activates(peer: &Peer, family: IpFamily) -> bool {
    let Some(address) = peer.address else {
        return true;
    };
    let wanted = match family {
        IpFamily::V4 => crate::bgp::message::Family::IPV4_UNICAST,
        IpFamily::V6 => crate::bgp::message::Family::IPV6_UNICAST,
    };
    families_for(address, peer.dual_stack_address_family, peer.disable_mp).contains(&wanted)
}

/// A word of FRR's command line: no whitespace, no control character.
fn word<'a>(peer: &Peer, field: &'static str, value: &'a str) -> Result<&'a str, RenderError> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(RenderError::Unwritable {
            peer: peer.name.clone(),
            field,
            why: "it is empty or contains spaces or control characters",
        });
    }
    Ok(value)
}

fn neighbor(peer: &Peer) -> Result<Neighbor, RenderError> {
    let (name, interface) = match (&peer.address, &peer.interface) {
        (Some(a), _) => (a.to_string(), false),
        (None, Some(i)) => (word(peer, "interface", i)?.to_string(), true),
        (None, None) => {
            return Err(RenderError::NoAddress {
                peer: peer.name.clone(),
            });
        }
    };
    if let Some(vrf) = &peer.vrf {
        word(peer, "vrf", vrf)?;
    }
    let remote_as = match peer.peer_asn {
        PeerAsn::Number(n) => n.to_string(),
        PeerAsn::Internal => "internal".into(),
        PeerAsn::External => "external".into(),
    };
    let password = match &peer.password {
        None => None,
        Some(p) => {
            let value = p.value().ok_or_else(|| RenderError::PasswordUnresolved {
                peer: peer.name.clone(),
            })?;
            Some(word(peer, "password", value)?.to_string())
        }
    };
    let ebgp = match peer.peer_asn {
        PeerAsn::Number(n) => n != peer.my_asn,
        PeerAsn::External => true,
        PeerAsn::Internal => false,
    };
    // MetalLB's rule: FRR's connected check fails for single-hop eBGP over a plain IPv6
    // address (the session comes from a global address the kernel does not list as connected
    // to the peer), so it is turned off there.
    let plain_v6 = matches!(peer.address, Some(IpAddr::V6(_))) && !peer.dual_stack_address_family;
    let seconds =
        |d: &Option<metallb_api::duration::GoDuration>| d.as_ref().map(|d| d.whole_seconds());
    Ok(Neighbor {
        peer: name,
        interface,
        remote_as,
        ebgp_multihop: peer.ebgp_multihop,
        local_as: peer.local_asn,
        port: (peer.port != 179).then_some(peer.port),
        timers: seconds(&peer.keepalive_time)
            .zip(seconds(&peer.hold_time))
            .map(|(keepalive, hold)| Timers { keepalive, hold }),
        connect_time: Some(seconds(&peer.connect_time).unwrap_or(DEFAULT_CONNECT_RETRY)),
        password,
        update_source: peer.source_address.map(|a| a.to_string()),
        graceful_restart: peer.graceful_restart,
        bfd_profile: peer.bfd_profile.clone(),
        disable_connected_check: plain_v6 && !peer.ebgp_multihop && ebgp,
    })
}

/// The prefix lists and `<id>-out` entries of one neighbor, for the routes it gets.
fn neighbor_filters(peer: &Peer, routes: &BTreeMap<IpNet, Route>) -> Result<Filters, RenderError> {
    let id = id(peer);
    // (kind, value) → family → prefixes. The kind orders the entries: local preference,
    // communities, AS-path prepends, MED.
    let mut sets: BTreeMap<Setting, BTreeMap<IpFamily, Vec<IpNet>>> = BTreeMap::new();
    for (prefix, route) in routes {
        let family = IpFamily::of(prefix);
        let mut add = |s: Setting| {
            sets.entry(s)
                .or_default()
                .entry(family)
                .or_default()
                .push(*prefix)
        };
        if let Some(lp) = route.local_pref {
            add(Setting::LocalPref(lp));
        }
        for c in &route.communities {
            add(Setting::Community(*c));
        }
        if !route.as_path.is_empty() {
            add(Setting::Prepend(route.as_path.clone()));
        }
        if let Some(med) = route.med {
            add(Setting::Med(med));
        }
    }
    let mut prefix_lists = Vec::new();
    let mut out = Vec::new();
    for (setting, by_family) in &sets {
        for (family, prefixes) in by_family {
            let name = format!(
                "{id}-{}-{}-{}",
                setting.label(),
                family.word(),
                setting.kind()
            );
            out.push(Entry {
                seq: u32::try_from(out.len() + 1).unwrap_or(u32::MAX),
                family: family.word(),
                prefix_list: name.clone(),
                set: Some(setting.statement()),
            });
            prefix_lists.push(PrefixList {
                family: family.word(),
                name,
                rules: prefixes.iter().map(|p| format!("permit {p}")).collect(),
            });
        }
    }
    if out.len() >= ALLOWED_V4_ENTRY as usize {
        return Err(RenderError::TooManyEntries {
            peer: peer.name.clone(),
            count: out.len(),
        });
    }
    for (family, seq, suffix) in [
        (IpFamily::V4, ALLOWED_V4_ENTRY, "allowed-ipv4"),
        (IpFamily::V6, ALLOWED_V6_ENTRY, "allowed-ipv6"),
    ] {
        let name = format!("{id}-{suffix}");
        let mut rules: Vec<String> = routes
            .keys()
            .filter(|p| IpFamily::of(p) == family)
            .map(|p| format!("permit {p}"))
            .collect();
        if rules.is_empty() {
            rules.push("deny any".into());
        }
        prefix_lists.push(PrefixList {
            family: family.word(),
            name: name.clone(),
            rules,
        });
        out.push(Entry {
            seq,
            family: family.word(),
            prefix_list: name,
            set: None,
        });
    }
    Ok(Filters {
        id,
        prefix_lists,
        out,
    })
}

/// An attribute some prefixes get from a route-map entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Setting {
    LocalPref(u32),
    Community(Community),
    Prepend(Vec<u32>),
    Med(u32),
}

impl Setting {
    /// The middle of the prefix list's name (MetalLB's for the first three).
    fn label(&self) -> String {
        match self {
            Self::LocalPref(lp) => lp.to_string(),
            Self::Community(c @ Community::Standard(..)) => c.to_string(),
            Self::Community(c @ Community::Large(..)) => format!("large:{c}"),
            Self::Prepend(path) => path
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("-"),
            Self::Med(med) => med.to_string(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::LocalPref(_) => "localpref-prefixes",
            Self::Community(_) => "community-prefixes",
            Self::Prepend(_) => "prepend-prefixes",
            Self::Med(_) => "med-prefixes",
        }
    }

    fn statement(&self) -> String {
        match self {
            Self::LocalPref(lp) => format!("set local-preference {lp}"),
            Self::Community(c @ Community::Standard(..)) => {
                format!("set community {} additive", frr_community(c))
            }
            Self::Community(c @ Community::Large(..)) => {
                format!("set large-community {c} additive")
            }
            Self::Prepend(path) => format!(
                "set as-path prepend {}",
                path.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Self::Med(med) => format!("set metric {med}"),
        }
    }
}

/// A standard community as FRR prints it: the well-known ones by name (RFC 1997, RFC 8326,
/// RFC 9494 and IANA's list), others as `AS:value`. Written as FRR prints it, the route-map does
/// not differ from the running one at every reload.
fn frr_community(c: &Community) -> String {
    match c.standard_value() {
        Some(0) => "internet".into(),
        Some(0xFFFF_0000) => "graceful-shutdown".into(),
        Some(0xFFFF_0001) => "accept-own".into(),
        Some(0xFFFF_0002) => "route-filter-translated-v4".into(),
        Some(0xFFFF_0003) => "route-filter-v4".into(),
        Some(0xFFFF_0004) => "route-filter-translated-v6".into(),
        Some(0xFFFF_0005) => "route-filter-v6".into(),
        Some(0xFFFF_0006) => "llgr-stale".into(),
        Some(0xFFFF_0007) => "no-llgr".into(),
        Some(0xFFFF_0008) => "accept-own-nexthop".into(),
        Some(0xFFFF_029A) => "blackhole".into(),
        Some(0xFFFF_FF01) => "no-export".into(),
        Some(0xFFFF_FF02) => "no-advertise".into(),
        Some(0xFFFF_FF03) => "local-AS".into(),
        Some(0xFFFF_FF04) => "no-peer".into(),
        _ => c.to_string(),
    }
}

fn profile(p: &BfdProfile) -> Profile {
    Profile {
        name: p.name.clone(),
        receive_interval: p.receive_interval,
        transmit_interval: p.transmit_interval,
        detect_multiplier: p.detect_multiplier,
        echo_mode: p.echo_mode,
        echo_interval: p.echo_interval,
        passive_mode: p.passive_mode,
        minimum_ttl: p.minimum_ttl,
    }
}

#[cfg(test)]
mod tests;
