//! The election itself: eligibility per Service, grouping by shared IP, the winner.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use metallb_api::config::{L2Advertisement, Pool};
use metallb_api::constants::labels::EXCLUDE_FROM_EXTERNAL_LB;
use sha2::{Digest, Sha256};

use super::model::*;

/// A Service that may be announced, with the nodes that may announce it.
struct Eligible<'a> {
    service: &'a Service,
    pool: &'a Pool,
    ads: Vec<&'a L2Advertisement>,
    candidates: BTreeSet<String>,
}

/// Runs the election for every Service (see the module documentation for the rules).
pub fn decide(inputs: &Inputs) -> Decision {
    let mut services: Vec<&Service> = inputs.services.iter().collect();
    services.sort_by(|a, b| a.key.cmp(&b.key));

    let mut decision = Decision::default();
    let mut eligible = Vec::new();
    for service in services {
        match eligibility(inputs, service) {
            Ok(e) => eligible.push(e),
            Err(reason) => {
                decision
                    .services
                    .insert(service.key.clone(), Outcome::NotAnnounced(reason));
            }
        }
    }

    for group in group_services(&eligible) {
        let members: Vec<&Eligible> = group.iter().map(|&i| &eligible[i]).collect();
        let candidates = group_candidates(&members);
        let weights = group_weights(&members, &candidates);
        // The group's first Service (by namespace/name) keys the hash: for a Service alone
        // this is MetalLB's rule, and Services sharing an IP list it first alike.
        let key_ip = members[0].service.ips[0];
        let won_by = winner(&candidates, &weights, key_ip);
        for member in members {
            let outcome = match &won_by {
                None => Outcome::NotAnnounced(Reason::NoCandidates),
                Some(node) if node == inputs.me => announced(member, inputs.me),
                Some(node) => Outcome::NotAnnounced(Reason::OwnedBy(node.clone())),
            };
            decision
                .services
                .insert(member.service.key.clone(), outcome);
        }
    }
    decision
}

fn eligibility<'a>(inputs: &Inputs<'a>, service: &'a Service) -> Result<Eligible<'a>, Reason> {
    if service.ips.is_empty() {
        return Err(Reason::NoIngressIp);
    }
    let pool = inputs
        .config
        .pool_of(&service.ips)
        .ok_or(Reason::NotInAnyPool)?;
    if !service.has_serving_endpoint() {
        return Err(Reason::NoServingEndpoints);
    }
    let ads: Vec<&L2Advertisement> = pool
        .l2_advertisements
        .iter()
        .filter(|ad| ad.applies_to_service(&service.labels))
        .collect();
    if ads.is_empty() {
        return Err(Reason::NoAdvertisement);
    }
    if service.shares_ip && ads.iter().any(|ad| !ad.service_selectors.is_empty()) {
        return Err(Reason::SharedIpWithServiceSelector);
    }
    let local_nodes = service.serving_nodes();
    let candidates = inputs
        .nodes
        .values()
        .filter(|node| inputs.liveness.is_live(&node.name))
        .filter(|node| !node.network_unavailable)
        .filter(|node| {
            inputs.ignore_exclude_lb || !node.labels.contains_key(EXCLUDE_FROM_EXTERNAL_LB)
        })
        .filter(|node| ads.iter().any(|ad| ad.nodes.contains(&node.name)))
        .filter(|node| !service.local_traffic_policy || local_nodes.contains(node.name.as_str()))
        .map(|node| node.name.clone())
        .collect();
    Ok(Eligible {
        service,
        pool,
        ads,
        candidates,
    })
}

/// Groups Services that share an IP (transitively), each group sorted by Service key; groups
/// are ordered by their first Service.
///
/// Decision: MetalLB elects each Service on its own; Services that share an IP have the same
/// first IP and so usually the same winner, but when their candidate sets differ (ETP=Local
/// Services whose endpoints moved at different times, one Service without serving endpoints
/// on a node) two nodes could answer for one IP. We elect once per group, so one IP always has
/// one owner.
fn group_services(eligible: &[Eligible]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..eligible.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut first_with_ip: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for (i, e) in eligible.iter().enumerate() {
        for ip in &e.service.ips {
            match first_with_ip.get(ip) {
                Some(&j) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    // Keep the smaller index as root so a group's order is its Services' order.
                    parent[a.max(b)] = a.min(b);
                }
                None => {
                    first_with_ip.insert(*ip, i);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..eligible.len() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    groups.into_values().collect()
}

/// The nodes that may announce a group: those every member accepts; if no node suits them all
/// (their constraints conflict), any node that suits one of them, so the IP is still answered
/// for the Services it can serve.
fn group_candidates(members: &[&Eligible]) -> BTreeSet<String> {
    let mut all = members[0].candidates.clone();
    for m in &members[1..] {
        all = all.intersection(&m.candidates).cloned().collect();
    }
    if !all.is_empty() {
        return all;
    }
    members
        .iter()
        .flat_map(|m| m.candidates.iter().cloned())
        .collect()
}

/// Preferred-node weight per candidate: the sum over a Service's applicable advertisements
/// (MetalLB's rule); in a group, the highest such sum among its Services.
fn group_weights(members: &[&Eligible], candidates: &BTreeSet<String>) -> BTreeMap<String, i64> {
    let mut weights = BTreeMap::new();
    for node in candidates {
        let best = members
            .iter()
            .map(|m| {
                m.ads
                    .iter()
                    .filter_map(|ad| ad.preferred_nodes.get(node))
                    .sum::<i64>()
            })
            .max()
            .unwrap_or(0);
        weights.insert(node.clone(), best);
    }
    weights
}

/// The announcing node among `candidates`: highest weight, then the lowest
/// `sha256(node + "#" + ip)` compared as bytes.
pub fn winner(
    candidates: &BTreeSet<String>,
    weights: &BTreeMap<String, i64>,
    ip: IpAddr,
) -> Option<String> {
    candidates
        .iter()
        .map(|node| {
            let weight = weights.get(node).copied().unwrap_or(0);
            let hash = Sha256::digest(format!("{node}#{ip}").as_bytes());
            (std::cmp::Reverse(weight), hash, node)
        })
        .min()
        .map(|(_, _, node)| node.clone())
}

fn announced(member: &Eligible, me: &str) -> Outcome {
    let mine: Vec<&&L2Advertisement> = member
        .ads
        .iter()
        .filter(|ad| ad.nodes.contains(me))
        .collect();
    // The group's winner may come from another member's candidates; then every applicable
    // advertisement counts for the interfaces.
    let ads: Vec<&L2Advertisement> = if mine.is_empty() {
        member.ads.clone()
    } else {
        mine.into_iter().copied().collect()
    };
    let interfaces = ads
        .iter()
        .map(|ad| {
            if ad.interfaces.is_empty() {
                Interfaces::All
            } else {
                Interfaces::Only(ad.interfaces.iter().cloned().collect())
            }
        })
        .reduce(|a, b| a.union(&b))
        .unwrap_or(Interfaces::All);
    Outcome::Announced {
        pool: member.pool.name.clone(),
        ips: member.service.ips.clone(),
        restricted: interfaces != Interfaces::All,
        interfaces,
    }
}
