//! L2Advertisements: selectors, preferred nodes, and the pools each one is attached to.

use std::collections::{BTreeMap, BTreeSet};

use super::pools::pools_for_advertisement;
use super::{
    Cx, L2ADV, NodeLabels, check_duplicate_strings, obj_name, selected_nodes, selector_list,
};
use crate::config::Resources;
use crate::config::types::*;
use crate::selector::Selector;
use crate::v1beta1;

/// Attaches every valid L2Advertisement to the pools it selects.
pub(super) fn attach(cx: &mut Cx, res: &Resources, nodes: &NodeLabels, pools: &mut [Pool]) {
    for ad in &res.l2_advertisements {
        let Some((adv, has_preferences)) = from_cr(cx, ad, nodes) else {
            continue;
        };
        let Some(selected) = pools_for_advertisement(
            cx,
            L2ADV,
            &adv.name,
            ad.spec.ip_address_pools.as_ref(),
            ad.spec.ip_address_pool_selectors.as_ref(),
            res,
            pools,
        ) else {
            continue;
        };
        for i in selected {
            let list = &mut pools[i].l2_advertisements;
            // Identical advertisements (same nodes, interfaces and service selectors) are kept
            // once per pool, as in MetalLB; ones with preferences always stack, because the
            // preference weights of all applicable advertisements are summed.
            let duplicate = !has_preferences
                && list.iter().any(|a| {
                    a.preferred_nodes.is_empty()
                        && a.nodes == adv.nodes
                        && a.interfaces.iter().collect::<BTreeSet<_>>()
                            == adv.interfaces.iter().collect()
                        && a.service_selectors == adv.service_selectors
                });
            if !duplicate {
                list.push(adv.clone());
            }
        }
    }
}

/// The advertisement, and whether it has preferred node selectors.
fn from_cr(
    cx: &mut Cx,
    ad: &v1beta1::L2Advertisement,
    nodes: &NodeLabels,
) -> Option<(L2Advertisement, bool)> {
    let name = obj_name(ad);
    let mark = cx.mark();
    check_duplicate_strings(
        cx,
        L2ADV,
        &name,
        "spec.ipAddressPools",
        "ipAddressPools",
        ad.spec.ip_address_pools.as_deref().unwrap_or_default(),
    );
    let node_sel = selector_list(
        cx,
        L2ADV,
        &name,
        "spec.nodeSelectors",
        ad.spec.node_selectors.as_ref(),
    );
    let svc_sel = selector_list(
        cx,
        L2ADV,
        &name,
        "spec.serviceSelectors",
        ad.spec.service_selectors.as_ref(),
    );
    let mut preferences = Vec::new();
    for (i, pref) in ad
        .spec
        .preferred_node_selectors
        .iter()
        .flatten()
        .enumerate()
    {
        match Selector::parse(&pref.preference.clone().unwrap_or_default()) {
            Ok(s) => preferences.push((s, i64::from(pref.weight.unwrap_or(0)))),
            Err(e) => cx.error(
                L2ADV,
                &name,
                format!("spec.preferredNodeSelectors[{i}].preference"),
                format!("invalid preferred node selector: {e}"),
            ),
        }
    }
    if cx.errors_since(mark) {
        return None;
    }
    let node_selectors = node_sel?;
    let selected = selected_nodes(&node_selectors, nodes);
    let mut preferred_nodes = BTreeMap::new();
    for (node, labels) in nodes {
        if !selected.contains(node) {
            continue;
        }
        let total: i64 = preferences
            .iter()
            .filter(|(s, _)| s.matches(labels))
            .map(|(_, w)| w)
            .sum();
        if total > 0 {
            preferred_nodes.insert(node.clone(), total);
        }
    }
    let has_preferences = !preferences.is_empty();
    Some((
        L2Advertisement {
            name,
            node_selectors,
            nodes: selected,
            interfaces: ad.spec.interfaces.clone().unwrap_or_default(),
            service_selectors: svc_sel?,
            preferred_nodes,
        },
        has_preferences,
    ))
}
