//! BGPAdvertisements: aggregation lengths, communities (values or aliases), selectors, the pools
//! each one is attached to with the per-pool rules (aggregation against the pool's prefixes,
//! LOCAL_PREF conflicts), and the cross-object rule on BFD echo for IPv6 pools.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::communities::Aliases;
use super::pools::pools_for_advertisement;
use super::{
    BGPADV, Cx, NodeLabels, Validated, check_duplicate_strings, obj_name, selected_nodes,
    selector_list,
};
use crate::community::{Community, CommunityError};
use crate::config::Resources;
use crate::config::types::*;
use crate::v1beta1::BGPAdvertisement;

/// Attaches every valid BGPAdvertisement to the pools it selects and fits.
pub(super) fn attach(
    cx: &mut Cx,
    res: &Resources,
    nodes: &NodeLabels,
    pools: &mut [Pool],
    aliases: &Aliases,
) {
    for ad in &res.bgp_advertisements {
        let Some(adv) = from_cr(cx, ad, nodes, aliases) else {
            continue;
        };
        let Some(selected) = pools_for_advertisement(
            cx,
            BGPADV,
            &adv.name,
            ad.spec.ip_address_pools.as_ref(),
            ad.spec.ip_address_pool_selectors.as_ref(),
            res,
            pools,
        ) else {
            continue;
        };
        for i in selected {
            if check_for_pool(cx, &adv, &pools[i]) {
                pools[i].bgp_advertisements.push(adv.clone());
            }
        }
    }
}

fn from_cr(
    cx: &mut Cx,
    ad: &BGPAdvertisement,
    nodes: &NodeLabels,
    aliases: &Aliases,
) -> Option<BgpAdvertisement> {
    let name = obj_name(ad);
    let mark = cx.mark();
    let spec = &ad.spec;
    check_duplicate_strings(
        cx,
        BGPADV,
        &name,
        "spec.ipAddressPools",
        "ipAddressPools",
        spec.ip_address_pools.as_deref().unwrap_or_default(),
    );
    check_duplicate_strings(
        cx,
        BGPADV,
        &name,
        "spec.communities",
        "community",
        spec.communities.as_deref().unwrap_or_default(),
    );
    check_duplicate_strings(
        cx,
        BGPADV,
        &name,
        "spec.peers",
        "peers",
        spec.peers.as_deref().unwrap_or_default(),
    );
    let node_sel = selector_list(
        cx,
        BGPADV,
        &name,
        "spec.nodeSelectors",
        spec.node_selectors.as_ref(),
    );
    let svc_sel = selector_list(
        cx,
        BGPADV,
        &name,
        "spec.serviceSelectors",
        spec.service_selectors.as_ref(),
    );

    let agg4 = spec.aggregation_length.unwrap_or(32);
    let agg6 = spec.aggregation_length_v6.unwrap_or(128);
    if !(1..=32).contains(&agg4) {
        cx.error(
            BGPADV,
            &name,
            "spec.aggregationLength",
            format!("invalid aggregation length {agg4} for IPv4: must be between 1 and 32"),
        );
    }
    if !(0..=128).contains(&agg6) {
        cx.error(
            BGPADV,
            &name,
            "spec.aggregationLengthV6",
            format!("invalid aggregation length {agg6} for IPv6: must be between 0 and 128"),
        );
    }
    if spec
        .service_selectors
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        // Per-service advertisements announce host routes only: an aggregate would cover
        // services the selector did not pick.
        if agg4 != 32 {
            cx.error(BGPADV, &name, "spec.aggregationLength", format!("serviceSelectors and aggregationLength are mutually exclusive, both cannot be set in {name}"));
        }
        if agg6 != 128 {
            cx.error(BGPADV, &name, "spec.aggregationLengthV6", format!("serviceSelectors and aggregationLengthV6 are mutually exclusive, both cannot be set in {name}"));
        }
    }
    let mut communities = BTreeSet::new();
    for (i, text) in spec.communities.iter().flatten().enumerate() {
        let field = format!("spec.communities[{i}]");
        if let Some(c) = aliases.get(text) {
            communities.insert(c);
            continue;
        }
        match Community::parse(text) {
            Ok(c) => {
                communities.insert(c);
            }
            Err(e @ CommunityError::InvalidValue { .. }) => {
                cx.error(BGPADV, &name, field, format!("invalid community {text:?} in BGP advertisement: {e}"));
            }
            Err(CommunityError::InvalidFormat(_)) => cx.missing(
                BGPADV,
                &name,
                field,
                format!("community {text:?} is neither AS:value, large:a:b:c, nor the name of an alias defined in a Community"),
            ),
        }
    }
    if cx.errors_since(mark) {
        return None;
    }
    let node_selectors = node_sel?;
    Some(BgpAdvertisement {
        nodes: selected_nodes(&node_selectors, nodes),
        name,
        aggregation_length: agg4 as u8,
        aggregation_length_v6: agg6 as u8,
        local_pref: spec.local_pref.unwrap_or(0),
        communities,
        node_selectors,
        peers: spec.peers.clone().unwrap_or_default(),
        service_selectors: svc_sel?,
        as_path_prepend: spec.as_path_prepend.clone().unwrap_or_default(),
    })
}

/// The per-pool rules of a BGP advertisement: aggregation not shorter than the pool's own
/// prefixes, and no conflicting LOCAL_PREF for the same announcement. Returns whether it fits.
fn check_for_pool(cx: &mut Cx, adv: &BgpAdvertisement, pool: &Pool) -> bool {
    let mut ok = true;
    for entry in &pool.entries {
        let Some(first) = entry.cidrs.first() else {
            continue;
        };
        let (agg, field) = match first {
            IpNet::V4(_) => (adv.aggregation_length, "spec.aggregationLength"),
            IpNet::V6(_) => (adv.aggregation_length_v6, "spec.aggregationLengthV6"),
        };
        // For a range, the least specific of its summarised CIDRs decides.
        let lowest = entry
            .cidrs
            .iter()
            .map(|c| c.prefix_len())
            .min()
            .unwrap_or(0);
        if agg < lowest {
            ok = false;
            cx.error(
                BGPADV,
                &adv.name,
                field,
                format!(
                    "invalid aggregation length {agg}: prefix {lowest} in this pool is more specific than the aggregation length for addresses {} (pool {:?})",
                    entry.text, pool.name
                ),
            );
        }
    }
    // Advertisements limited by service selectors are checked per service by the speaker.
    if !adv.service_selectors.is_empty() {
        return ok;
    }
    for other in pool
        .bgp_advertisements
        .iter()
        .filter(|a| a.service_selectors.is_empty())
    {
        if !local_prefs_compatible(adv, other, pool) {
            ok = false;
            cx.error(
                BGPADV,
                &adv.name,
                "spec.localPref",
                format!(
                    "invalid local preference {}: local preference {} was already set by BGPAdvertisement {:?} for the same BGP update \
                     (pool {:?}, same aggregation length, overlapping peers and nodes)",
                    adv.local_pref, other.local_pref, other.name, pool.name
                ),
            );
        }
    }
    ok
}

/// Two advertisements of one pool may carry different LOCAL_PREFs only when they can never
/// produce the same route to the same peer from the same node.
fn local_prefs_compatible(a: &BgpAdvertisement, b: &BgpAdvertisement, pool: &Pool) -> bool {
    if a.local_pref == b.local_pref {
        return true;
    }
    let (v4, v6) = (pool.has_ipv4(), pool.has_ipv6());
    let diff4 = a.aggregation_length != b.aggregation_length;
    let diff6 = a.aggregation_length_v6 != b.aggregation_length_v6;
    let different_prefixes = match (v4, v6) {
        (false, false) => true,
        (true, false) => diff4,
        (false, true) => diff6,
        (true, true) => diff4 && diff6,
    };
    if different_prefixes {
        return true;
    }
    if !a.peers.is_empty() && !b.peers.is_empty() && !a.peers.iter().any(|p| b.peers.contains(p)) {
        return true;
    }
    a.nodes.is_disjoint(&b.nodes)
}

/// BFD echo mode cannot run on IPv6 sessions: a pool with IPv6 addresses may not be advertised
/// to a peer whose BFD profile enables echo.
pub(super) fn check_bfd_echo_with_ipv6(cx: &mut Cx, v: &Validated) {
    let echo_profiles: BTreeSet<&str> = v
        .bfd_profiles
        .iter()
        .filter(|b| b.echo_mode)
        .map(|b| b.name.as_str())
        .collect();
    // By name, as the peers of a configuration are listed.
    let echo_peers: BTreeMap<&str, &Peer> = v
        .peers()
        .filter(|p| {
            p.bfd_profile
                .as_deref()
                .is_some_and(|b| echo_profiles.contains(b))
        })
        .map(|p| (p.name.as_str(), p))
        .collect();
    for pool in v.pools.iter().filter(|p| p.has_ipv6()) {
        for adv in &pool.bgp_advertisements {
            for peer in echo_peers.values().filter(|p| adv.applies_to_peer(&p.name)) {
                cx.error(
                    BGPADV,
                    &adv.name,
                    "spec.peers",
                    format!(
                        "pool {} has bgpadvertisement {} which references peer {} which has bfd echo enabled, which is not possible",
                        pool.name, adv.name, peer.name
                    ),
                );
            }
        }
    }
}
