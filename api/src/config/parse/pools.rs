//! IPAddressPools: addresses (CIDRs and ranges, no overlap anywhere), `serviceAllocation` with
//! its namespace selectors resolved, and which pools an advertisement selects.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{Cx, POOL, labels_of, obj_name, selected_names, selector_list};
use crate::config::Resources;
use crate::config::types::*;
use crate::net::parse_address_entry;
use crate::selector::Selector;
use crate::v1beta1;

/// The valid pools, in the order given, each name once; advertisements are attached later.
pub(super) fn pools(cx: &mut Cx, res: &Resources) -> Vec<Pool> {
    let namespaces: Vec<(String, BTreeMap<String, String>)> = res
        .namespaces
        .iter()
        .filter_map(|n| Some((n.metadata.name.clone()?, labels_of(&n.metadata))))
        .collect();
    let mut out = Vec::new();
    // Every CIDR seen so far, with the pool and entry it came from, for the overlap rule.
    let mut all: Vec<(IpNet, String, String)> = Vec::new();
    let mut names = BTreeSet::new();
    for p in &res.pools {
        let name = obj_name(p);
        let mut ok = true;
        let addresses = p.spec.addresses.as_deref().unwrap_or_default();
        if addresses.is_empty() {
            ok = false;
            cx.error(
                POOL,
                &name,
                "spec.addresses",
                "pool has no prefixes defined",
            );
        }
        let mut entries = Vec::new();
        for (i, text) in addresses.iter().enumerate() {
            match parse_address_entry(text) {
                Ok(cidrs) => {
                    for cidr in &cidrs {
                        if let Some((other, other_pool, other_entry)) =
                            all.iter().find(|(c, _, _)| crate::net::overlaps(c, cidr))
                        {
                            ok = false;
                            cx.error(
                                POOL,
                                &name,
                                format!("spec.addresses[{i}]"),
                                format!(
                                    "CIDR {:?} in pool {name:?} overlaps with already defined CIDR {:?} (pool {other_pool:?}, {other_entry:?})",
                                    cidr.to_string(),
                                    other.to_string()
                                ),
                            );
                        }
                    }
                    all.extend(cidrs.iter().map(|c| (*c, name.clone(), text.clone())));
                    entries.push(AddressEntry {
                        text: text.clone(),
                        cidrs,
                    });
                }
                Err(e) => {
                    ok = false;
                    cx.error(
                        POOL,
                        &name,
                        format!("spec.addresses[{i}]"),
                        format!("invalid CIDR {text:?} in pool {name:?}: {e}"),
                    );
                }
            }
        }
        let allocation = match &p.spec.service_allocation {
            None => Some(None),
            Some(sa) => service_allocation(cx, &name, sa, &namespaces).map(Some),
        };
        let Some(allocation) = allocation else {
            continue;
        };
        if !ok || !names.insert(name.clone()) {
            continue;
        }
        out.push(Pool {
            name,
            entries,
            auto_assign: p.spec.auto_assign.unwrap_or(true),
            avoid_buggy_ips: p.spec.avoid_buggy_ips.unwrap_or(false),
            allocation,
            l2_advertisements: Vec::new(),
            bgp_advertisements: Vec::new(),
        });
    }
    out
}

fn service_allocation(
    cx: &mut Cx,
    pool: &str,
    sa: &v1beta1::ServiceAllocation,
    namespaces: &[(String, BTreeMap<String, String>)],
) -> Option<ServiceAllocation> {
    let listed = sa.namespaces.clone().unwrap_or_default();
    let ns_selectors = sa.namespace_selectors.as_ref().filter(|v| !v.is_empty());
    let svc_selectors = sa.service_selectors.as_ref().filter(|v| !v.is_empty());
    let priority = sa.priority.unwrap_or(0);
    if listed.is_empty() && ns_selectors.is_none() && svc_selectors.is_none() {
        // Priority only: the pool serves every Service, and is tried by priority.
        return Some(ServiceAllocation {
            priority,
            namespaces: BTreeSet::new(),
            restricts_namespaces: false,
            service_selectors: vec![Selector::everything()],
        });
    }
    let mark = cx.mark();
    let mut seen = BTreeSet::new();
    for (i, ns) in listed.iter().enumerate() {
        if !seen.insert(ns) {
            cx.error(
                POOL,
                pool,
                format!("spec.serviceAllocation.namespaces[{i}]"),
                format!("duplicate definition in namespaces field: {ns:?}"),
            );
        }
    }
    let ns_sel = selector_list(
        cx,
        POOL,
        pool,
        "spec.serviceAllocation.namespaceSelectors",
        ns_selectors,
    );
    let svc_sel = selector_list(
        cx,
        POOL,
        pool,
        "spec.serviceAllocation.serviceSelectors",
        svc_selectors,
    );
    if cx.errors_since(mark) {
        return None;
    }
    let ns_sel = ns_sel?;
    let mut resolved: BTreeSet<String> = listed.iter().cloned().collect();
    if !ns_sel.is_empty() {
        resolved.extend(selected_names(
            &ns_sel,
            namespaces.iter().map(|(n, l)| (n, l)),
        ));
    }
    Some(ServiceAllocation {
        priority,
        namespaces: resolved,
        restricts_namespaces: !listed.is_empty() || !ns_sel.is_empty(),
        service_selectors: svc_sel?,
    })
}

/// The pools an advertisement applies to, as indexes into `pools`: those it names
/// (`spec.ipAddressPools`) and those its selectors match (`spec.ipAddressPoolSelectors`), or every
/// pool when it names and selects none. Named pools that do not exist get a warning; `None` when
/// the selectors are invalid. The one place that decides which pools an advertisement (L2 or
/// BGP) selects.
pub(super) fn pools_for_advertisement(
    cx: &mut Cx,
    kind: &'static str,
    name: &str,
    named: Option<&Vec<String>>,
    selectors: Option<&Vec<LabelSelector>>,
    res: &Resources,
    pools: &[Pool],
) -> Option<Vec<usize>> {
    let selectors = selector_list(cx, kind, name, "spec.ipAddressPoolSelectors", selectors)?;
    let named = named.map(Vec::as_slice).unwrap_or_default();
    if named.is_empty() && selectors.is_empty() {
        return Some((0..pools.len()).collect());
    }
    let mut wanted: BTreeSet<&str> = BTreeSet::new();
    for (i, n) in named.iter().enumerate() {
        // An invalid pool exists all the same: it is reported for its own problems.
        if res
            .pools
            .iter()
            .any(|p| p.metadata.name.as_deref() == Some(n))
        {
            wanted.insert(n);
        } else {
            cx.warning(
                kind,
                name,
                format!("spec.ipAddressPools[{i}]"),
                format!("IPAddressPool {n:?} does not exist; the advertisement applies to it once it is created"),
            );
        }
    }
    if !selectors.is_empty() {
        // Pool labels are not part of the validated Pool: they matter only here.
        for p in &res.pools {
            let labels = labels_of(&p.metadata);
            if selectors.iter().any(|s| s.matches(&labels))
                && let Some(n) = &p.metadata.name
            {
                wanted.insert(n);
            }
        }
    }
    Some(
        pools
            .iter()
            .enumerate()
            .filter(|(_, p)| wanted.contains(p.name.as_str()))
            .map(|(i, _)| i)
            .collect(),
    )
}
