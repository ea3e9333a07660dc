//! The rules. Each `check_*`/`*_from_cr` function handles one kind and pushes problems into the
//! shared [`Cx`]; nothing here stops at the first problem, so a user sees every mistake at once.
//! Problems that MetalLB would also report use MetalLB's wording where it is clear.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Resource;

use super::types::*;
use super::{BgpBackend, Outcome, ParseOptions, Problem, References, Resources, Severity};
use crate::community::{Community, CommunityError};
use crate::duration::GoDuration;
use crate::net::parse_address_entry;
use crate::selector::Selector;
use crate::v1beta1::{self, BFDProfile, BGPAdvertisement};
use crate::v1beta2::BGPPeer;

const POOL: &str = "IPAddressPool";
const L2ADV: &str = "L2Advertisement";
const BGPADV: &str = "BGPAdvertisement";
const PEER: &str = "BGPPeer";
const BFD: &str = "BFDProfile";
const COMMUNITY: &str = "Community";

/// Parses and validates a whole configuration. See the module documentation.
pub fn parse(res: &Resources, opts: &ParseOptions) -> Outcome {
    let mut cx = Cx {
        opts,
        problems: Vec::new(),
    };
    cx.check_metadata(res);
    if let Some(backend) = opts.backend {
        check_backend(&mut cx, res, backend);
    }
    let bfd_profiles = bfd_profiles(&mut cx, &res.bfd_profiles);
    let peers = peers(&mut cx, res, &bfd_profiles);
    let aliases = community_aliases(&mut cx, &res.communities);
    let mut pools = pools(&mut cx, res);
    attach_l2_advertisements(&mut cx, res, &mut pools);
    attach_bgp_advertisements(&mut cx, res, &mut pools, &aliases);
    check_bfd_echo_with_ipv6(&mut cx, &pools, &peers, &bfd_profiles);

    let ok = !cx.problems.iter().any(|p| p.severity == Severity::Error);
    let config = ok.then(|| Config {
        pools: pools.into_iter().map(|p| (p.name.clone(), p)).collect(),
        peers,
        bfd_profiles,
        bgp_extras: res.bgp_extras.clone().unwrap_or_default(),
    });
    Outcome {
        config,
        problems: cx.problems,
    }
}

struct Cx<'a> {
    opts: &'a ParseOptions,
    problems: Vec<Problem>,
}

impl Cx<'_> {
    fn error(
        &mut self,
        kind: &'static str,
        name: &str,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) {
        self.problems.push(Problem::error(kind, name, field, msg));
    }

    fn warning(
        &mut self,
        kind: &'static str,
        name: &str,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) {
        self.problems.push(Problem::warning(kind, name, field, msg));
    }

    /// A reference to an object that is not there: an error unless references are deferred.
    fn missing(
        &mut self,
        kind: &'static str,
        name: &str,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) {
        if self.opts.references == References::Resolve {
            self.problems
                .push(Problem::missing_reference(kind, name, field, msg));
        }
    }

    /// Namespace, name and uniqueness of every MetalLB object.
    fn check_metadata(&mut self, res: &Resources) {
        let lists: [(&'static str, Vec<&ObjectMeta>); 6] = [
            (POOL, metas(&res.pools)),
            (L2ADV, metas(&res.l2_advertisements)),
            (BGPADV, metas(&res.bgp_advertisements)),
            (PEER, metas(&res.peers)),
            (BFD, metas(&res.bfd_profiles)),
            (COMMUNITY, metas(&res.communities)),
        ];
        for (kind, list) in lists {
            let mut seen = BTreeSet::new();
            for meta in list {
                let name = name_of(meta);
                if meta.name.as_deref().unwrap_or("").is_empty() {
                    self.error(kind, &name, "metadata.name", "missing name");
                    continue;
                }
                if let Some(ns) = meta.namespace.as_deref()
                    && ns != self.opts.namespace
                {
                    self.error(
                        kind,
                        &name,
                        "metadata.namespace",
                        format!(
                            "resource must be created in the MetalLB namespace {:?}, not {ns:?}: MetalLB only reads its own namespace",
                            self.opts.namespace
                        ),
                    );
                }
                if !seen.insert(name.clone()) {
                    self.error(
                        kind,
                        &name,
                        "metadata.name",
                        format!("duplicate definition of {kind} {name:?}"),
                    );
                }
            }
        }
    }
}

fn metas<K: Resource>(list: &[K]) -> Vec<&ObjectMeta> {
    list.iter().map(|o| o.meta()).collect()
}

fn name_of(meta: &ObjectMeta) -> String {
    meta.name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "<unnamed>".to_string())
}

fn obj_name<K: Resource>(o: &K) -> String {
    name_of(o.meta())
}

fn labels_of(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Selectors and lists

/// Reports entries listed twice in a string list.
fn check_duplicate_strings(
    cx: &mut Cx,
    kind: &'static str,
    name: &str,
    field: &str,
    what: &str,
    list: &[String],
) {
    let mut seen = BTreeSet::new();
    for (i, item) in list.iter().enumerate() {
        if !seen.insert(item) {
            cx.error(
                kind,
                name,
                format!("{field}[{i}]"),
                format!("duplicate definition of {what} {item:?}"),
            );
        }
    }
}

/// A selector as MetalLB compares them: labels, then (key, operator, sorted values) per expression.
type CanonicalSelector = (BTreeMap<String, String>, Vec<(String, String, Vec<String>)>);

/// The form MetalLB compares selectors in: labels, then expressions with their values sorted.
fn canonical(sel: &LabelSelector) -> CanonicalSelector {
    let exprs = sel
        .match_expressions
        .iter()
        .flatten()
        .map(|e| {
            let mut v = e.values.clone().unwrap_or_default();
            v.sort();
            (e.key.clone(), e.operator.clone(), v)
        })
        .collect();
    (sel.match_labels.clone().unwrap_or_default(), exprs)
}

/// Validates a list of selectors: no duplicate selector, no duplicate expression or value inside
/// one, and each one valid. Returns the parsed selectors when all are valid.
fn selector_list(
    cx: &mut Cx,
    kind: &'static str,
    name: &str,
    field: &str,
    list: Option<&Vec<LabelSelector>>,
) -> Option<Vec<Selector>> {
    let list = list.map(Vec::as_slice).unwrap_or_default();
    let mut ok = true;
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for (i, sel) in list.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let canon = canonical(sel);
        let mut exprs_seen = BTreeSet::new();
        for (j, expr) in canon.1.iter().enumerate() {
            if expr.2.windows(2).any(|w| w[0] == w[1]) {
                ok = false;
                cx.error(
                    kind,
                    name,
                    format!("{at}.matchExpressions[{j}].values"),
                    format!("duplicate definition of match expression value in label selector (key {:?})", expr.0),
                );
            }
            if !exprs_seen.insert(expr.clone()) {
                ok = false;
                cx.error(
                    kind,
                    name,
                    format!("{at}.matchExpressions[{j}]"),
                    format!(
                        "duplicate definition of match expressions (key {:?}, operator {:?})",
                        expr.0, expr.1
                    ),
                );
            }
        }
        if seen.contains(&canon) {
            ok = false;
            cx.error(
                kind,
                name,
                at.clone(),
                format!(
                    "duplicate definition of {}",
                    field.rsplit('.').next().unwrap_or(field)
                ),
            );
        }
        seen.push(canon);
        match Selector::parse(sel) {
            Ok(s) => out.push(s),
            Err(e) => {
                ok = false;
                cx.error(kind, name, at, format!("invalid label selector: {e}"));
            }
        }
    }
    ok.then_some(out)
}

/// The names of the objects any selector matches (an empty selector list matches all).
fn selected_names<'a>(
    selectors: &[Selector],
    objects: impl Iterator<Item = (&'a String, &'a BTreeMap<String, String>)>,
) -> BTreeSet<String> {
    objects
        .filter(|(_, labels)| selectors.is_empty() || selectors.iter().any(|s| s.matches(labels)))
        .map(|(n, _)| n.clone())
        .collect()
}

fn node_labels(res: &Resources) -> Vec<(String, BTreeMap<String, String>)> {
    res.nodes
        .iter()
        .filter_map(|n| Some((n.metadata.name.clone()?, labels_of(&n.metadata))))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Pools

fn pools(cx: &mut Cx, res: &Resources) -> Vec<Pool> {
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
    let before = cx.problems.len();
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
    if cx.problems.len() != before {
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

/// The pools an advertisement applies to: those it names and those its selectors match, or every
/// pool when it names and selects none. Named pools that do not exist get a warning.
fn pools_for_advertisement(
    cx: &mut Cx,
    kind: &'static str,
    name: &str,
    named: &[String],
    selectors: &[Selector],
    res: &Resources,
    pools: &[Pool],
) -> Vec<usize> {
    if named.is_empty() && selectors.is_empty() {
        return (0..pools.len()).collect();
    }
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for (i, n) in named.iter().enumerate() {
        if res
            .pools
            .iter()
            .any(|p| p.metadata.name.as_deref() == Some(n))
        {
            wanted.insert(n.clone());
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
        for p in &res.pools {
            let labels = labels_of(&p.metadata);
            if selectors.iter().any(|s| s.matches(&labels))
                && let Some(n) = &p.metadata.name
            {
                wanted.insert(n.clone());
            }
        }
    }
    pools
        .iter()
        .enumerate()
        .filter(|(_, p)| wanted.contains(&p.name))
        .map(|(i, _)| i)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// L2 advertisements

fn attach_l2_advertisements(cx: &mut Cx, res: &Resources, pools: &mut [Pool]) {
    let nodes = node_labels(res);
    for ad in &res.l2_advertisements {
        let Some(adv) = l2_advertisement_from_cr(cx, ad, &nodes) else {
            continue;
        };
        let pool_selectors = selector_list(
            cx,
            L2ADV,
            &adv.0.name.clone(),
            "spec.ipAddressPoolSelectors",
            ad.spec.ip_address_pool_selectors.as_ref(),
        );
        let Some(pool_selectors) = pool_selectors else {
            continue;
        };
        let named = ad.spec.ip_address_pools.clone().unwrap_or_default();
        let (adv, has_preferences) = adv;
        for i in pools_for_advertisement(cx, L2ADV, &adv.name, &named, &pool_selectors, res, pools)
        {
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

fn l2_advertisement_from_cr(
    cx: &mut Cx,
    ad: &v1beta1::L2Advertisement,
    nodes: &[(String, BTreeMap<String, String>)],
) -> Option<(L2Advertisement, bool)> {
    let name = obj_name(ad);
    let before = cx.problems.len();
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
    if cx
        .problems
        .iter()
        .skip(before)
        .any(|p| p.severity == Severity::Error)
    {
        return None;
    }
    let node_selectors = node_sel?;
    let selected = selected_names(&node_selectors, nodes.iter().map(|(n, l)| (n, l)));
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

// ---------------------------------------------------------------------------------------------
// BGP advertisements

fn attach_bgp_advertisements(
    cx: &mut Cx,
    res: &Resources,
    pools: &mut [Pool],
    aliases: &HashMap<String, Community>,
) {
    let nodes = node_labels(res);
    for ad in &res.bgp_advertisements {
        let Some(adv) = bgp_advertisement_from_cr(cx, ad, &nodes, aliases) else {
            continue;
        };
        let Some(pool_selectors) = selector_list(
            cx,
            BGPADV,
            &adv.name,
            "spec.ipAddressPoolSelectors",
            ad.spec.ip_address_pool_selectors.as_ref(),
        ) else {
            continue;
        };
        let named = ad.spec.ip_address_pools.clone().unwrap_or_default();
        for i in pools_for_advertisement(cx, BGPADV, &adv.name, &named, &pool_selectors, res, pools)
        {
            if check_bgp_advertisement_for_pool(cx, &adv, &pools[i]) {
                pools[i].bgp_advertisements.push(adv.clone());
            }
        }
    }
}

fn bgp_advertisement_from_cr(
    cx: &mut Cx,
    ad: &BGPAdvertisement,
    nodes: &[(String, BTreeMap<String, String>)],
    aliases: &HashMap<String, Community>,
) -> Option<BgpAdvertisement> {
    let name = obj_name(ad);
    let before = cx.problems.len();
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
            communities.insert(*c);
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
    if cx
        .problems
        .iter()
        .skip(before)
        .any(|p| p.severity == Severity::Error)
    {
        return None;
    }
    let node_selectors = node_sel?;
    Some(BgpAdvertisement {
        nodes: selected_names(&node_selectors, nodes.iter().map(|(n, l)| (n, l))),
        name,
        aggregation_length: agg4 as u8,
        aggregation_length_v6: agg6 as u8,
        local_pref: spec.local_pref.unwrap_or(0),
        communities,
        node_selectors,
        peers: spec.peers.clone().unwrap_or_default(),
        service_selectors: svc_sel?,
    })
}

/// The per-pool rules of a BGP advertisement: aggregation not shorter than the pool's own
/// prefixes, and no conflicting LOCAL_PREF for the same announcement. Returns whether it fits.
fn check_bgp_advertisement_for_pool(cx: &mut Cx, adv: &BgpAdvertisement, pool: &Pool) -> bool {
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
pub(crate) fn local_prefs_compatible(
    a: &BgpAdvertisement,
    b: &BgpAdvertisement,
    pool: &Pool,
) -> bool {
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

// ---------------------------------------------------------------------------------------------
// Communities and BFD profiles

fn community_aliases(cx: &mut Cx, crs: &[v1beta1::Community]) -> HashMap<String, Community> {
    let mut out = HashMap::new();
    for cr in crs {
        let name = obj_name(cr);
        for (i, alias) in cr.spec.communities.iter().flatten().enumerate() {
            let alias_name = alias.name.clone().unwrap_or_default();
            let value = alias.value.clone().unwrap_or_default();
            if alias_name.is_empty() {
                cx.error(
                    COMMUNITY,
                    &name,
                    format!("spec.communities[{i}].name"),
                    "missing community alias name",
                );
                continue;
            }
            match Community::parse(&value) {
                Ok(c) => {
                    if out.insert(alias_name.clone(), c).is_some() {
                        cx.error(
                            COMMUNITY,
                            &name,
                            format!("spec.communities[{i}].name"),
                            format!("duplicate definition of community {alias_name:?}: alias names must be unique across all Community objects"),
                        );
                    }
                }
                Err(e) => cx.error(
                    COMMUNITY,
                    &name,
                    format!("spec.communities[{i}].value"),
                    format!("parsing community {alias_name:?}: {e}"),
                ),
            }
        }
    }
    out
}

fn bfd_profiles(cx: &mut Cx, crs: &[BFDProfile]) -> BTreeMap<String, BfdProfile> {
    let mut out = BTreeMap::new();
    for cr in crs {
        let name = obj_name(cr);
        let s = &cr.spec;
        let before = cx.problems.len();
        let mut range = |value: Option<u32>, field: &str, what: &str, min: u32, max: u32| {
            if let Some(v) = value
                && !(min..=max).contains(&v)
            {
                cx.error(
                    BFD,
                    &name,
                    format!("spec.{field}"),
                    format!("invalid {what} value {v}: must be in the {min}-{max} range"),
                );
            }
            value
        };
        let profile = BfdProfile {
            name: name.clone(),
            detect_multiplier: range(
                s.detect_multiplier,
                "detectMultiplier",
                "detect multiplier",
                2,
                255,
            ),
            receive_interval: range(
                s.receive_interval,
                "receiveInterval",
                "receive interval",
                10,
                60000,
            ),
            transmit_interval: range(
                s.transmit_interval,
                "transmitInterval",
                "transmit interval",
                10,
                60000,
            ),
            minimum_ttl: range(s.minimum_ttl, "minimumTtl", "minimum ttl", 1, 254),
            echo_interval: range(s.echo_interval, "echoInterval", "echo interval", 10, 60000),
            echo_mode: s.echo_mode.unwrap_or(false),
            passive_mode: s.passive_mode.unwrap_or(false),
        };
        if cx.problems.len() == before {
            out.entry(name).or_insert(profile);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Peers

fn peers(
    cx: &mut Cx,
    res: &Resources,
    bfd: &BTreeMap<String, BfdProfile>,
) -> BTreeMap<String, Peer> {
    let mut out = BTreeMap::new();
    for p in &res.peers {
        if let Some(peer) = peer_from_cr(cx, p, res, bfd) {
            out.entry(peer.name.clone()).or_insert(peer);
        }
    }
    out
}

fn has_line_break(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

fn peer_from_cr(
    cx: &mut Cx,
    p: &BGPPeer,
    res: &Resources,
    bfd: &BTreeMap<String, BfdProfile>,
) -> Option<Peer> {
    let name = obj_name(p);
    let s = &p.spec;
    let before = cx.problems.len();
    let mut err =
        |field: &str, msg: String| cx.problems.push(Problem::error(PEER, &name, field, msg));

    let my_asn = s.my_asn.unwrap_or(0);
    if my_asn == 0 {
        err("spec.myASN", "missing local ASN".into());
    }
    let peer_asn_num = s.peer_asn.unwrap_or(0);
    let dynamic = s.dynamic_asn.as_deref().filter(|d| !d.is_empty());
    let peer_asn = match (peer_asn_num, dynamic) {
        (0, None) => {
            err(
                "spec.peerASN",
                "missing peer ASN and dynamicASN: set exactly one of them".into(),
            );
            None
        }
        (n, Some(_)) if n != 0 => {
            err(
                "spec.dynamicASN",
                "both peer ASN and dynamicASN specified: set exactly one of them".into(),
            );
            None
        }
        (n, None) => Some(PeerAsn::Number(n)),
        (_, Some("internal")) => Some(PeerAsn::Internal),
        (_, Some("external")) => Some(PeerAsn::External),
        (_, Some(other)) => {
            err(
                "spec.dynamicASN",
                format!("invalid dynamicASN {other:?}: must be internal or external"),
            );
            None
        }
    };
    if peer_asn_num != 0 && peer_asn_num == my_asn && s.ebgp_multi_hop == Some(true) {
        err(
            "spec.ebgpMultiHop",
            "invalid ebgp-multihop parameter set for an ibgp peer".into(),
        );
    }
    let address_text = s.peer_address.as_deref().filter(|a| !a.is_empty());
    let interface = s.interface.clone().filter(|i| !i.is_empty());
    match (address_text, &interface) {
        (None, None) => err(
            "spec.peerAddress",
            "peer has no Address or Interface specified".into(),
        ),
        (Some(_), Some(_)) => err(
            "spec.interface",
            "peer has both Address and Interface specified".into(),
        ),
        _ => {}
    }
    if interface.as_deref().is_some_and(has_line_break) {
        err(
            "spec.interface",
            "interface contains invalid characters (line breaks)".into(),
        );
    }
    let address = address_text.and_then(|a| match a.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            err("spec.peerAddress", format!("invalid BGPPeer address {a:?}"));
            None
        }
    });
    let router_id = s
        .router_id
        .as_deref()
        .filter(|r| !r.is_empty())
        .and_then(|r| match r.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                err("spec.routerID", format!("invalid router ID {r:?}"));
                None
            }
        });
    let source_address = s
        .source_address
        .as_deref()
        .filter(|a| !a.is_empty())
        .and_then(|a| match a.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                err("spec.sourceAddress", format!("invalid source IP {a:?}"));
                None
            }
        });
    let mut duration = |field: &str, text: Option<&String>| -> Option<GoDuration> {
        let text = text?;
        match GoDuration::parse(text) {
            Ok(d) => Some(d),
            Err(e) => {
                err(field, e.to_string());
                None
            }
        }
    };
    let hold = duration("spec.holdTime", s.hold_time.as_ref());
    let keepalive = duration("spec.keepaliveTime", s.keepalive_time.as_ref());
    let connect_time = duration("spec.connectTime", s.connect_time.as_ref());
    // When one of hold and keepalive is given, the other is derived, as MetalLB does.
    let (hold_time, keepalive_time) = match (hold, keepalive) {
        (None, None) => (None, None),
        (Some(h), None) => (Some(h), Some(GoDuration { nanos: h.nanos / 3 })),
        (None, Some(k)) => (
            Some(GoDuration {
                nanos: k.nanos.saturating_mul(3),
            }),
            Some(k),
        ),
        (Some(h), Some(k)) => (Some(h), Some(k)),
    };
    if let (Some(h), Some(k)) = (hold_time, keepalive_time) {
        let rounded = h.whole_seconds();
        if rounded != 0 && rounded < 3 {
            err(
                "spec.holdTime",
                format!("invalid hold time {h}: must be 0 or >=3s"),
            );
        } else if k > h {
            err(
                "spec.keepaliveTime",
                format!("invalid keepaliveTime {k}, must be lower than holdTime {h}"),
            );
        }
    }
    let password_inline = s.password.clone().filter(|p| !p.is_empty());
    let secret_name = s
        .password_secret
        .as_ref()
        .and_then(|r| r.name.clone())
        .filter(|n| !n.is_empty());
    if password_inline.is_some() && secret_name.is_some() {
        err(
            "spec.passwordSecret",
            "can not have both password and secret ref set in peer config".into(),
        );
    }
    if password_inline.as_deref().is_some_and(has_line_break) {
        err(
            "spec.password",
            "password contains invalid characters (line breaks)".into(),
        );
    }
    if s.vrf.as_deref().is_some_and(has_line_break) {
        err(
            "spec.vrf",
            "VRF name contains invalid characters (line breaks)".into(),
        );
    }
    let node_selectors = selector_list(
        cx,
        PEER,
        &name,
        "spec.nodeSelectors",
        s.node_selectors.as_ref(),
    );

    let password = match (password_inline, secret_name) {
        (Some(p), _) => Some(Password::Inline(p)),
        (None, Some(secret)) => Some(Password::Secret {
            password: secret_password(cx, &name, &secret, res),
            name: secret,
        }),
        (None, None) => None,
    };
    let bfd_profile = s.bfd_profile.clone().filter(|b| !b.is_empty());
    if let Some(profile) = &bfd_profile
        && !bfd.contains_key(profile)
        && !res
            .bfd_profiles
            .iter()
            .any(|b| b.metadata.name.as_deref() == Some(profile))
    {
        cx.missing(
            PEER,
            &name,
            "spec.bfdProfile",
            format!("peer {name} referencing non existing bfd profile {profile}"),
        );
    }
    if cx
        .problems
        .iter()
        .skip(before)
        .any(|p| p.severity == Severity::Error)
    {
        return None;
    }
    Some(Peer {
        name,
        my_asn,
        peer_asn: peer_asn?,
        local_asn: s.local_asn.filter(|a| *a != 0),
        address,
        interface,
        source_address,
        port: s.peer_port.filter(|p| *p != 0).unwrap_or(179),
        hold_time,
        keepalive_time,
        connect_time,
        router_id,
        node_selectors: node_selectors?,
        password,
        bfd_profile,
        graceful_restart: s.enable_graceful_restart.unwrap_or(false),
        ebgp_multihop: s.ebgp_multi_hop.unwrap_or(false),
        vrf: s.vrf.clone().filter(|v| !v.is_empty()),
        dual_stack_address_family: s.dual_stack_address_family.unwrap_or(false),
        disable_mp: s.disable_mp.unwrap_or(false),
    })
}

/// The `password` of a peer's `kubernetes.io/basic-auth` Secret in the MetalLB namespace.
fn secret_password(cx: &mut Cx, peer: &str, secret: &str, res: &Resources) -> Option<String> {
    let ns = cx.opts.namespace.clone();
    let found: Option<&Secret> = res.secrets.iter().find(|s| {
        s.metadata.name.as_deref() == Some(secret)
            && s.metadata.namespace.as_deref().is_none_or(|n| n == ns)
    });
    let Some(found) = found else {
        cx.missing(
            PEER,
            peer,
            "spec.passwordSecret.name",
            format!("secret ref not found for peer config: Secret {secret:?} does not exist in namespace {ns:?}"),
        );
        return None;
    };
    if found.type_.as_deref() != Some("kubernetes.io/basic-auth") {
        cx.error(
            PEER,
            peer,
            "spec.passwordSecret.name",
            format!(
                "secret type mismatch on {ns}/{secret}, type \"kubernetes.io/basic-auth\" is expected, not {:?}",
                found.type_.as_deref().unwrap_or("Opaque")
            ),
        );
        return None;
    }
    let value = found
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .or_else(|| {
            found
                .string_data
                .as_ref()
                .and_then(|d| d.get("password").cloned())
        });
    match value {
        None => {
            cx.error(
                PEER,
                peer,
                "spec.passwordSecret.name",
                format!("password not specified in the secret {ns}/{secret}"),
            );
            None
        }
        Some(v) if has_line_break(&v) => {
            cx.error(
                PEER,
                peer,
                "spec.passwordSecret.name",
                format!(
                    "password in secret {ns}/{secret} contains invalid characters (line breaks)"
                ),
            );
            None
        }
        Some(v) => Some(v),
    }
}

// ---------------------------------------------------------------------------------------------
// Backend rules

fn check_backend(cx: &mut Cx, res: &Resources, backend: BgpBackend) {
    match backend {
        BgpBackend::Native => check_native(cx, res),
        BgpBackend::Frr => check_frr(cx, res),
    }
}

/// Options the built-in BGP speaker does not implement.
fn check_native(cx: &mut Cx, res: &Resources) {
    const WHY: &str = "is not supported by the native BGP backend; use bgpBackend: frr";
    for p in &res.peers {
        let name = obj_name(p);
        let s = &p.spec;
        let set: [(&str, bool); 10] = [
            (
                "spec.bfdProfile",
                s.bfd_profile.as_deref().is_some_and(|b| !b.is_empty()),
            ),
            (
                "spec.keepaliveTime",
                s.keepalive_time
                    .as_deref()
                    .and_then(|k| GoDuration::parse(k).ok())
                    .is_some_and(|k| k.nanos != 0),
            ),
            ("spec.vrf", s.vrf.as_deref().is_some_and(|v| !v.is_empty())),
            ("spec.connectTime", s.connect_time.is_some()),
            (
                "spec.enableGracefulRestart",
                s.enable_graceful_restart == Some(true),
            ),
            ("spec.disableMP", s.disable_mp == Some(true)),
            (
                "spec.dualStackAddressFamily",
                s.dual_stack_address_family == Some(true),
            ),
            (
                "spec.dynamicASN",
                s.dynamic_asn.as_deref().is_some_and(|d| !d.is_empty()),
            ),
            (
                "spec.interface",
                s.interface.as_deref().is_some_and(|i| !i.is_empty()),
            ),
            ("spec.localASN", s.local_asn.is_some_and(|a| a != 0)),
        ];
        for (field, is_set) in set {
            if is_set {
                let short = field.trim_start_matches("spec.");
                cx.error(PEER, &name, field, format!("{short} {WHY}"));
            }
        }
    }
    for b in &res.bfd_profiles {
        cx.error(
            BFD,
            &obj_name(b),
            "metadata.name",
            "BFD profiles are not supported by the native BGP backend; use bgpBackend: frr",
        );
    }
    if !res.bgp_advertisements.is_empty() {
        // Which pools do BGP advertisements select? Invalid selectors are reported elsewhere.
        let mut all = false;
        let mut names = BTreeSet::new();
        let mut selectors = Vec::new();
        for ad in &res.bgp_advertisements {
            let named = ad.spec.ip_address_pools.as_deref().unwrap_or_default();
            let sels = ad
                .spec
                .ip_address_pool_selectors
                .as_deref()
                .unwrap_or_default();
            if named.is_empty() && sels.is_empty() {
                all = true;
            }
            names.extend(named.iter().cloned());
            selectors.extend(sels.iter().filter_map(|s| Selector::parse(s).ok()));
        }
        for pool in &res.pools {
            let labels = labels_of(&pool.metadata);
            let selected = all
                || pool
                    .metadata
                    .name
                    .as_ref()
                    .is_some_and(|n| names.contains(n))
                || selectors.iter().any(|s| s.matches(&labels));
            if !selected {
                continue;
            }
            let name = obj_name(pool);
            for (i, entry) in pool.spec.addresses.iter().flatten().enumerate() {
                if let Ok(cidrs) = parse_address_entry(entry)
                    && let Some(v6) = cidrs.iter().find(|c| matches!(c, IpNet::V6(_)))
                {
                    cx.error(
                        POOL,
                        &name,
                        format!("spec.addresses[{i}]"),
                        format!("pool {name:?} has ipv6 CIDR {v6} and is advertised by a BGPAdvertisement: the native BGP backend does not support IPv6; use bgpBackend: frr"),
                    );
                }
            }
        }
    }
    for ad in &res.bgp_advertisements {
        for (i, c) in ad.spec.communities.iter().flatten().enumerate() {
            if Community::parse(c).is_ok_and(|c| !c.is_standard()) {
                cx.error(
                    BGPADV,
                    &obj_name(ad),
                    format!("spec.communities[{i}]"),
                    format!("native BGP mode only supports legacy communities, BGP advertisement has non legacy community {c:?}"),
                );
            }
        }
    }
    for co in &res.communities {
        for (i, alias) in co.spec.communities.iter().flatten().enumerate() {
            if alias
                .value
                .as_deref()
                .and_then(|v| Community::parse(v).ok())
                .is_some_and(|c| !c.is_standard())
            {
                cx.error(
                    COMMUNITY,
                    &obj_name(co),
                    format!("spec.communities[{i}].value"),
                    format!(
                        "native BGP mode only supports legacy communities, not {:?}",
                        alias.value.clone().unwrap_or_default()
                    ),
                );
            }
        }
    }
    if res
        .bgp_extras
        .as_deref()
        .is_some_and(|e| !e.trim().is_empty())
    {
        cx.error(
            "ConfigMap",
            "bgpextras",
            "data.extras",
            "BGP extras are raw FRR configuration: they need bgpBackend: frr",
        );
    }
}

/// FRR runs one BGP instance per VRF per node: peers that meet on a node must agree on the
/// router ID and local ASN, and must not repeat a neighbor.
fn check_frr(cx: &mut Cx, res: &Resources) {
    let nodes = node_labels(res);
    let node_sets: Vec<Option<BTreeSet<String>>> = res
        .peers
        .iter()
        .map(|p| {
            let sels: Option<Vec<Selector>> = p
                .spec
                .node_selectors
                .iter()
                .flatten()
                .map(|s| Selector::parse(s).ok())
                .collect();
            sels.map(|sels| selected_names(&sels, nodes.iter().map(|(n, l)| (n, l))))
        })
        .collect();
    // With no Nodes known, assume every pair of peers meets on some node.
    let share = |i: usize, j: usize| match (&node_sets[i], &node_sets[j]) {
        _ if nodes.is_empty() => true,
        (Some(a), Some(b)) => !a.is_disjoint(b),
        _ => false,
    };
    let ident = |p: &BGPPeer| {
        let id = p
            .spec
            .peer_address
            .clone()
            .filter(|a| !a.is_empty())
            .or_else(|| p.spec.interface.clone())
            .unwrap_or_default();
        format!("{id}-{}", p.spec.vrf.clone().unwrap_or_default())
    };
    for j in 1..res.peers.len() {
        for i in 0..j {
            if !share(i, j) {
                continue;
            }
            let (a, b) = (&res.peers[i], &res.peers[j]);
            let name = obj_name(b);
            let other = obj_name(a);
            let rid = |p: &BGPPeer| p.spec.router_id.clone().unwrap_or_default();
            if rid(a) != rid(b) {
                cx.error(
                    PEER,
                    &name,
                    "spec.routerID",
                    format!(
                        "peer has RouterID {:?} but BGPPeer {other:?}, selecting the same nodes, has {:?}: in FRR mode all RouterID must be equal",
                        rid(b),
                        rid(a)
                    ),
                );
            }
            if ident(a) == ident(b) {
                cx.error(
                    PEER,
                    &name,
                    "spec.peerAddress",
                    format!(
                        "peer {} already exists in BGPPeer {other:?}, FRR mode doesn't support duplicate BGPPeers selecting the same node",
                        ident(b).trim_end_matches('-')
                    ),
                );
            }
            if a.spec.my_asn != b.spec.my_asn && a.spec.vrf == b.spec.vrf {
                cx.error(
                    PEER,
                    &name,
                    "spec.myASN",
                    format!(
                        "peer has myASN {} but BGPPeer {other:?}, selecting the same nodes, has {}: in FRR mode all myAsn must be equal for the same VRF",
                        b.spec.my_asn.unwrap_or(0),
                        a.spec.my_asn.unwrap_or(0)
                    ),
                );
            }
        }
    }
}

/// BFD echo mode cannot run on IPv6 sessions: a pool with IPv6 addresses may not be advertised
/// to a peer whose BFD profile enables echo.
fn check_bfd_echo_with_ipv6(
    cx: &mut Cx,
    pools: &[Pool],
    peers: &BTreeMap<String, Peer>,
    bfd: &BTreeMap<String, BfdProfile>,
) {
    let echo = |p: &Peer| {
        p.bfd_profile
            .as_ref()
            .and_then(|b| bfd.get(b))
            .is_some_and(|b| b.echo_mode)
    };
    for pool in pools.iter().filter(|p| p.has_ipv6()) {
        for adv in &pool.bgp_advertisements {
            for peer in peers
                .values()
                .filter(|p| adv.applies_to_peer(&p.name) && echo(p))
            {
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
