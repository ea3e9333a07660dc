//! The mapping from the legacy format to `metallb.io` objects, and the validation of the result.
//!
//! | legacy | objects |
//! |---|---|
//! | `peers[i]` | BGPPeer v1beta2 `peer<i+1>`; a `password` becomes the `kubernetes.io/basic-auth` Secret `peer<i+1>-bgp-password`, referenced by `passwordSecret` |
//! | `address-pools[j]` | IPAddressPool named after the pool (made valid, [`normalize_name`]) |
//! | `address-pools[j].bgp-advertisements[k]` | BGPAdvertisement `bgpadvertisement<n>`, one counter over all pools, selecting that pool; a `bgp` pool without advertisements gets one empty advertisement |
//! | `address-pools[j]` with `protocol: layer2` | L2Advertisement `l2advertisement<m>` selecting that pool |
//! | `bgp-communities` | one Community `communities`, aliases sorted by name |
//! | `bfd-profiles[i]` | BFDProfile named after the profile (made valid) |
//!
//! Output order: Secrets, peers, pools, BGP advertisements, L2 advertisements, BFD profiles,
//! communities. Every object carries the label and annotations of
//! [`crate::constants::migration`]: where it came from, and the hash of the text converted.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use serde_json::Value;

use super::format::{LegacyConfig, LegacyPeer, LegacyPool};
use super::{ConvertError, LegacyProblem, ObjectRef, config_hash, normalize_name};
use crate::config::{BgpBackend, ParseOptions, Resources, Severity};
use crate::constants::migration::{
    CONFIG_HASH_ANNOTATION, ENTRY_ANNOTATION, MIGRATED_FROM_LABEL, MIGRATED_FROM_VALUE,
    SOURCE_ANNOTATION,
};
use crate::duration::GoDuration;
use crate::v1beta1::{
    BFDProfile, BFDProfileSpec, BGPAdvertisement, BGPAdvertisementSpec, Community, CommunityAlias,
    CommunitySpec, IPAddressPool, IPAddressPoolSpec, L2Advertisement, L2AdvertisementSpec,
};
use crate::v1beta2::{BGPPeer, BGPPeerSpec, SecretReference};

/// Where the converted objects go and what they are checked against.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// The MetalLB namespace: every object is created there.
    pub namespace: String,
    /// `<namespace>/<name>` of the ConfigMap the configuration comes from, recorded on every
    /// object.
    pub source: String,
    /// The backend whose rules the result must also satisfy; `None`: the common rules only.
    pub backend: Option<BgpBackend>,
}

/// A converted object, ready to be created.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum MigratedObject {
    Secret(Secret),
    BGPPeer(BGPPeer),
    IPAddressPool(IPAddressPool),
    BGPAdvertisement(BGPAdvertisement),
    L2Advertisement(L2Advertisement),
    BFDProfile(BFDProfile),
    Community(Community),
}

impl MigratedObject {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Secret(_) => "Secret",
            Self::BGPPeer(_) => "BGPPeer",
            Self::IPAddressPool(_) => "IPAddressPool",
            Self::BGPAdvertisement(_) => "BGPAdvertisement",
            Self::L2Advertisement(_) => "L2Advertisement",
            Self::BFDProfile(_) => "BFDProfile",
            Self::Community(_) => "Community",
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::Secret(o) => &o.metadata,
            Self::BGPPeer(o) => &o.metadata,
            Self::IPAddressPool(o) => &o.metadata,
            Self::BGPAdvertisement(o) => &o.metadata,
            Self::L2Advertisement(o) => &o.metadata,
            Self::BFDProfile(o) => &o.metadata,
            Self::Community(o) => &o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: self.kind().to_string(),
            name: self.name().to_string(),
        }
    }

    /// The legacy entry this object comes from, such as `address-pools[2]`.
    pub fn entry(&self) -> &str {
        self.metadata()
            .annotations
            .as_ref()
            .and_then(|a| a.get(ENTRY_ANNOTATION))
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The object as JSON, with `apiVersion` and `kind`.
    pub fn to_value(&self) -> Value {
        let value = match self {
            Self::Secret(o) => serde_json::to_value(o),
            Self::BGPPeer(o) => serde_json::to_value(o),
            Self::IPAddressPool(o) => serde_json::to_value(o),
            Self::BGPAdvertisement(o) => serde_json::to_value(o),
            Self::L2Advertisement(o) => serde_json::to_value(o),
            Self::BFDProfile(o) => serde_json::to_value(o),
            Self::Community(o) => serde_json::to_value(o),
        };
        value.expect("Kubernetes objects serialize to JSON")
    }

    /// The object as one YAML document (without the `---` separator).
    pub fn to_yaml(&self) -> String {
        let text = match self {
            Self::Secret(o) => serde_saphyr::to_string(o),
            Self::BGPPeer(o) => serde_saphyr::to_string(o),
            Self::IPAddressPool(o) => serde_saphyr::to_string(o),
            Self::BGPAdvertisement(o) => serde_saphyr::to_string(o),
            Self::L2Advertisement(o) => serde_saphyr::to_string(o),
            Self::BFDProfile(o) => serde_saphyr::to_string(o),
            Self::Community(o) => serde_saphyr::to_string(o),
        };
        text.expect("Kubernetes objects serialize to YAML")
    }
}

/// A validated conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    /// In creation order: Secrets, peers, pools, BGP advertisements, L2 advertisements, BFD
    /// profiles, communities.
    pub objects: Vec<MigratedObject>,
    /// Worth telling the user, such as a pool renamed (Services that name it in the
    /// `address-pool` annotation must follow).
    pub warnings: Vec<LegacyProblem>,
    /// [`config_hash`] of the converted text.
    pub config_hash: String,
    /// `<namespace>/<name>` of the source ConfigMap.
    pub source: String,
}

impl Converted {
    pub fn object_refs(&self) -> Vec<ObjectRef> {
        self.objects
            .iter()
            .map(MigratedObject::object_ref)
            .collect()
    }

    /// Multi-document YAML, one object per document, after a comment naming the source.
    pub fn to_yaml(&self) -> String {
        let mut out = format!(
            "# Converted by metallb-operator convert-config from the legacy MetalLB ConfigMap {}.\n",
            self.source
        );
        for object in &self.objects {
            out.push_str("---\n");
            out.push_str(&object.to_yaml());
        }
        out
    }
}

/// Reads, converts and validates the `config` text of a legacy ConfigMap.
pub fn convert(text: &str, opts: &ConvertOptions) -> Result<Converted, ConvertError> {
    let config = super::parse(text)?;
    convert_config(&config, &config_hash(text), opts)
}

/// Converts and validates an already read configuration; `hash` is recorded on every object.
pub fn convert_config(
    config: &LegacyConfig,
    hash: &str,
    opts: &ConvertOptions,
) -> Result<Converted, ConvertError> {
    let (objects, warnings) = build(config, hash, opts).map_err(ConvertError::Invalid)?;
    let problems = validate(&objects, None, opts);
    let (errors, validator_warnings): (Vec<_>, Vec<_>) = problems
        .into_iter()
        .partition(|(s, _)| *s == Severity::Error);
    if !errors.is_empty() {
        return Err(ConvertError::Invalid(
            errors.into_iter().map(|(_, p)| p).collect(),
        ));
    }
    Ok(Converted {
        objects,
        warnings: warnings
            .into_iter()
            .chain(validator_warnings.into_iter().map(|(_, p)| p))
            .collect(),
        config_hash: hash.to_string(),
        source: opts.source.clone(),
    })
}

/// Validates the converted objects with the one validator, after the `existing` objects of the
/// namespace when given, and returns the problems found on converted objects, each named by its
/// legacy key. Problems of existing objects alone are not the migration's to report.
pub(super) fn validate(
    objects: &[MigratedObject],
    existing: Option<&Resources>,
    opts: &ConvertOptions,
) -> Vec<(Severity, LegacyProblem)> {
    let mut values: Vec<Value> = existing.map(existing_values).unwrap_or_default();
    values.extend(objects.iter().map(MigratedObject::to_value));
    let parse_options = ParseOptions::new(opts.namespace.clone(), opts.backend);
    let report = crate::validate::validate_values(&values, &parse_options);
    let by_ref: BTreeMap<(&str, &str), &MigratedObject> =
        objects.iter().map(|o| ((o.kind(), o.name()), o)).collect();
    report
        .problems
        .iter()
        .filter_map(|p| {
            let shown = format!("{}/{} {}", p.kind, p.name, p.field);
            let path = match by_ref.get(&(p.kind.as_str(), p.name.as_str())) {
                Some(object) => legacy_path(object, &p.field),
                // Converted objects alone: a problem elsewhere cannot happen, but if it did it
                // must not be lost.
                None if existing.is_none() => shown.clone(),
                None => return None,
            };
            Some((
                p.severity,
                LegacyProblem {
                    path,
                    message: p.message.clone(),
                    object: Some(shown),
                },
            ))
        })
        .collect()
}

/// Existing objects as JSON values: what they refer to first, then the MetalLB kinds in the
/// order the migration creates them.
fn existing_values(res: &Resources) -> Vec<Value> {
    fn all<T: serde::Serialize>(list: &[T]) -> impl Iterator<Item = Value> + '_ {
        list.iter().filter_map(|o| serde_json::to_value(o).ok())
    }
    all(&res.secrets)
        .chain(all(&res.nodes))
        .chain(all(&res.namespaces))
        .chain(all(&res.peers))
        .chain(all(&res.pools))
        .chain(all(&res.bgp_advertisements))
        .chain(all(&res.l2_advertisements))
        .chain(all(&res.bfd_profiles))
        .chain(all(&res.communities))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Building the objects

struct Builder<'a> {
    opts: &'a ConvertOptions,
    hash: &'a str,
    problems: Vec<LegacyProblem>,
    warnings: Vec<LegacyProblem>,
}

impl Builder<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(LegacyProblem::new(path, message));
    }

    fn meta(&self, name: &str, entry: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.opts.namespace.clone()),
            labels: Some(BTreeMap::from([(
                MIGRATED_FROM_LABEL.to_string(),
                MIGRATED_FROM_VALUE.to_string(),
            )])),
            annotations: Some(BTreeMap::from([
                (SOURCE_ANNOTATION.to_string(), self.opts.source.clone()),
                (ENTRY_ANNOTATION.to_string(), entry.to_string()),
                (CONFIG_HASH_ANNOTATION.to_string(), self.hash.to_string()),
            ])),
            ..Default::default()
        }
    }

    /// The object names of `entries` (pools or BFD profiles), made valid; a missing name, one
    /// that cannot be made valid, or two entries ending up with one name are problems.
    fn names<'e>(
        &mut self,
        section: &str,
        what: &str,
        entries: impl Iterator<Item = Option<&'e String>>,
    ) -> Vec<Option<String>> {
        let mut taken: BTreeMap<String, (usize, String)> = BTreeMap::new();
        let mut out = Vec::new();
        for (i, name) in entries.enumerate() {
            let path = format!("{section}[{i}].name");
            let Some(raw) = name.filter(|n| !n.is_empty()) else {
                self.problem(path, format!("missing {what} name"));
                out.push(None);
                continue;
            };
            let fixed = match normalize_name(raw) {
                Ok(n) => n,
                Err(e) => {
                    self.problem(path, e);
                    out.push(None);
                    continue;
                }
            };
            if let Some((j, other)) = taken.get(&fixed) {
                let message = if other == raw {
                    format!("duplicate {what} name {raw:?}: {section}[{j}] has it too")
                } else {
                    format!(
                        "{what} names {other:?} ({section}[{j}]) and {raw:?} both make the object name {fixed:?}: rename one of them"
                    )
                };
                self.problem(path, message);
                out.push(None);
                continue;
            }
            taken.insert(fixed.clone(), (i, raw.clone()));
            out.push(Some(fixed));
        }
        out
    }
}

/// Builds every object, or returns the problems of the legacy format itself.
fn build(
    config: &LegacyConfig,
    hash: &str,
    opts: &ConvertOptions,
) -> Result<(Vec<MigratedObject>, Vec<LegacyProblem>), Vec<LegacyProblem>> {
    let mut b = Builder {
        opts,
        hash,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let pool_names = b.names(
        "address-pools",
        "pool",
        config.address_pools.iter().map(|p| p.name.as_ref()),
    );
    let bfd_names = b.names(
        "bfd-profiles",
        "BFD profile",
        config.bfd_profiles.iter().map(|p| p.name.as_ref()),
    );
    let protocols: Vec<Option<Protocol>> = config
        .address_pools
        .iter()
        .enumerate()
        .map(|(i, p)| protocol(&mut b, i, p))
        .collect();

    let mut secrets = Vec::new();
    let mut peers = Vec::new();
    for (i, p) in config.peers.iter().enumerate() {
        if let Some((peer, secret)) = peer(&mut b, i, p) {
            peers.push(MigratedObject::BGPPeer(peer));
            secrets.extend(secret.map(MigratedObject::Secret));
        }
    }

    let mut pools = Vec::new();
    let mut bgp_ads = Vec::new();
    let mut l2_ads = Vec::new();
    for (i, p) in config.address_pools.iter().enumerate() {
        let (Some(name), Some(protocol)) = (&pool_names[i], protocols[i]) else {
            continue;
        };
        let entry = format!("address-pools[{i}]");
        if let Some(raw) = &p.name
            && raw != name
        {
            b.warnings.push(LegacyProblem::new(
                format!("{entry}.name"),
                format!(
                    "pool {raw:?} is IPAddressPool {name:?}: Services that ask for it in the metallb.universe.tf/address-pool (or metallb.io/address-pool) annotation must use the new name"
                ),
            ));
        }
        pools.push(MigratedObject::IPAddressPool(IPAddressPool {
            metadata: b.meta(name, &entry),
            spec: IPAddressPoolSpec {
                addresses: Some(p.addresses.clone()),
                auto_assign: p.auto_assign,
                avoid_buggy_ips: p.avoid_buggy_ips,
                service_allocation: None,
            },
            status: None,
        }));
        match protocol {
            Protocol::Layer2 => {
                let ad_name = format!("l2advertisement{}", l2_ads.len() + 1);
                l2_ads.push(MigratedObject::L2Advertisement(L2Advertisement {
                    metadata: b.meta(&ad_name, &entry),
                    spec: L2AdvertisementSpec {
                        ip_address_pools: Some(vec![name.clone()]),
                        ..Default::default()
                    },
                    status: None,
                }));
            }
            Protocol::Bgp if p.bgp_advertisements.is_empty() => {
                // As in MetalLB ≤ 0.12, a BGP pool without advertisements is announced with
                // the defaults: one empty advertisement for this pool alone.
                let ad_name = format!("bgpadvertisement{}", bgp_ads.len() + 1);
                bgp_ads.push(MigratedObject::BGPAdvertisement(BGPAdvertisement {
                    metadata: b.meta(&ad_name, &entry),
                    spec: BGPAdvertisementSpec {
                        ip_address_pools: Some(vec![name.clone()]),
                        ..Default::default()
                    },
                    status: None,
                }));
            }
            Protocol::Bgp => {
                for (k, ad) in p.bgp_advertisements.iter().enumerate() {
                    let ad_name = format!("bgpadvertisement{}", bgp_ads.len() + 1);
                    let ad_entry = format!("{entry}.bgp-advertisements[{k}]");
                    bgp_ads.push(MigratedObject::BGPAdvertisement(BGPAdvertisement {
                        metadata: b.meta(&ad_name, &ad_entry),
                        spec: BGPAdvertisementSpec {
                            aggregation_length: ad.aggregation_length,
                            aggregation_length_v6: ad.aggregation_length_v6,
                            local_pref: ad.localpref,
                            communities: Some(ad.communities.clone()).filter(|c| !c.is_empty()),
                            ip_address_pools: Some(vec![name.clone()]),
                            ..Default::default()
                        },
                        status: None,
                    }));
                }
            }
        }
    }

    let mut bfd_profiles = Vec::new();
    for (i, p) in config.bfd_profiles.iter().enumerate() {
        let Some(name) = &bfd_names[i] else {
            continue;
        };
        // Decision: MetalLB's converter always writes echoMode and passiveMode (false by
        // default); we write what the profile says, which means the same.
        bfd_profiles.push(MigratedObject::BFDProfile(BFDProfile {
            metadata: b.meta(name, &format!("bfd-profiles[{i}]")),
            spec: BFDProfileSpec {
                receive_interval: p.receive_interval,
                transmit_interval: p.transmit_interval,
                detect_multiplier: p.detect_multiplier,
                echo_interval: p.echo_interval,
                echo_mode: p.echo_mode,
                passive_mode: p.passive_mode,
                minimum_ttl: p.minimum_ttl,
            },
            status: None,
        }));
    }

    let mut communities = Vec::new();
    if !config.bgp_communities.is_empty() {
        // A BTreeMap iterates in name order: the aliases come out sorted, as in MetalLB.
        let aliases = config
            .bgp_communities
            .iter()
            .map(|(name, value)| CommunityAlias {
                name: Some(name.clone()),
                value: Some(value.clone()),
            })
            .collect();
        communities.push(MigratedObject::Community(Community {
            metadata: b.meta("communities", "bgp-communities"),
            spec: CommunitySpec {
                communities: Some(aliases),
            },
            status: None,
        }));
    }

    if !b.problems.is_empty() {
        return Err(b.problems);
    }
    let objects = [
        secrets,
        peers,
        pools,
        bgp_ads,
        l2_ads,
        bfd_profiles,
        communities,
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok((objects, b.warnings))
}

#[derive(Debug, Clone, Copy)]
enum Protocol {
    Bgp,
    Layer2,
}

/// The pool's protocol, and the format rule tied to it: `bgp-advertisements` only on `bgp`.
fn protocol(b: &mut Builder, i: usize, pool: &LegacyPool) -> Option<Protocol> {
    let path = format!("address-pools[{i}].protocol");
    let protocol = match pool.protocol.as_deref() {
        None | Some("") => {
            b.problem(path, "missing protocol: set bgp or layer2");
            return None;
        }
        Some("bgp") => Protocol::Bgp,
        Some("layer2") => Protocol::Layer2,
        // Decision: MetalLB's converter silently produces no advertisement for an unknown
        // protocol such as `l2` (its own golden test shows it), so the pool would never be
        // announced. MetalLB 0.12 itself refused such a configuration; so do we.
        Some(other) => {
            b.problem(
                path,
                format!("unknown protocol {other:?}: the legacy format knows bgp and layer2"),
            );
            return None;
        }
    };
    if matches!(protocol, Protocol::Layer2) && !pool.bgp_advertisements.is_empty() {
        b.problem(
            format!("address-pools[{i}].bgp-advertisements"),
            "cannot have bgp-advertisements in a layer2 address pool",
        );
        return None;
    }
    Some(protocol)
}

/// A duration rounded down to whole seconds, as MetalLB ≤ 0.12 used the hold time.
fn whole_seconds(b: &mut Builder, path: String, text: &str) -> Option<String> {
    match GoDuration::parse(text) {
        Ok(d) => Some(GoDuration::from_secs(d.whole_seconds()).to_string()),
        Err(e) => {
            b.problem(path, e.to_string());
            None
        }
    }
}

fn peer(b: &mut Builder, i: usize, p: &LegacyPeer) -> Option<(BGPPeer, Option<Secret>)> {
    let entry = format!("peers[{i}]");
    let name = format!("peer{}", i + 1);
    let before = b.problems.len();
    for (present, key) in [
        (p.my_asn.is_some(), "my-asn"),
        (p.peer_asn.is_some(), "peer-asn"),
        (
            p.peer_address.as_deref().is_some_and(|a| !a.is_empty()),
            "peer-address",
        ),
    ] {
        if !present {
            b.problem(format!("{entry}.{key}"), format!("missing {key}"));
        }
    }
    let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    // MetalLB ≤ 0.12 used 90s when no hold time was given, and always whole seconds.
    let hold_time = match non_empty(&p.hold_time) {
        Some(text) => whole_seconds(b, format!("{entry}.hold-time"), &text),
        None => Some(GoDuration::from_secs(90).to_string()),
    };
    let keepalive_time = non_empty(&p.keepalive_time)
        .and_then(|text| whole_seconds(b, format!("{entry}.keepalive-time"), &text));
    let bfd_profile = match non_empty(&p.bfd_profile) {
        None => None,
        Some(raw) => match normalize_name(&raw) {
            Ok(n) => Some(n),
            Err(e) => {
                b.problem(format!("{entry}.bfd-profile"), e);
                None
            }
        },
    };
    if b.problems.len() != before {
        return None;
    }
    // Decision: MetalLB's converter copies the plaintext password into the BGPPeer; a password
    // never goes into a custom resource here, only into a basic-auth Secret.
    let secret = non_empty(&p.password).map(|password| Secret {
        metadata: b.meta(
            &format!("{name}-bgp-password"),
            &format!("{entry}.password"),
        ),
        type_: Some("kubernetes.io/basic-auth".to_string()),
        string_data: Some(BTreeMap::from([("password".to_string(), password)])),
        ..Default::default()
    });
    let node_selectors: Vec<LabelSelector> = p
        .node_selectors
        .iter()
        .map(|s| LabelSelector {
            match_labels: Some(s.match_labels.clone()).filter(|l| !l.is_empty()),
            match_expressions: Some(
                s.match_expressions
                    .iter()
                    .map(|r| LabelSelectorRequirement {
                        key: r.key.clone(),
                        operator: r.operator.clone(),
                        values: Some(r.values.clone()).filter(|v| !v.is_empty()),
                    })
                    .collect::<Vec<_>>(),
            )
            .filter(|e| !e.is_empty()),
        })
        .collect();
    let peer = BGPPeer {
        metadata: b.meta(&name, &entry),
        spec: BGPPeerSpec {
            my_asn: p.my_asn,
            peer_asn: p.peer_asn,
            peer_address: non_empty(&p.peer_address),
            source_address: non_empty(&p.source_address),
            // 0 meant the default port.
            peer_port: p.peer_port.filter(|port| *port != 0),
            hold_time,
            keepalive_time,
            router_id: non_empty(&p.router_id),
            node_selectors: Some(node_selectors).filter(|s| !s.is_empty()),
            password_secret: secret.as_ref().map(|s| SecretReference {
                name: s.metadata.name.clone(),
                namespace: s.metadata.namespace.clone(),
            }),
            bfd_profile,
            ebgp_multi_hop: p.ebgp_multihop,
            ..Default::default()
        },
        status: None,
    };
    Some((peer, secret))
}

// ---------------------------------------------------------------------------------------------
// Naming problems after the legacy keys

/// The legacy key a converted object's field comes from, such as
/// `address-pools[1].bgp-advertisements[0].aggregation-length` for `spec.aggregationLength` of
/// the BGPAdvertisement converted from that entry. Fields with no legacy counterpart name the
/// entry alone.
fn legacy_path(object: &MigratedObject, field: &str) -> String {
    let entry = object.entry();
    let at = |key: &str| {
        if key.is_empty() {
            entry.to_string()
        } else {
            format!("{entry}.{key}")
        }
    };
    let Some(rest) = field.strip_prefix("spec.") else {
        return match (object, field) {
            (MigratedObject::IPAddressPool(_) | MigratedObject::BFDProfile(_), "metadata.name") => {
                at("name")
            }
            _ => entry.to_string(),
        };
    };
    let (head, tail) = match rest.find(['.', '[']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let key = match (object, head) {
        (MigratedObject::Community(c), "communities") => {
            // `spec.communities[i].…` is the i-th alias, in name order.
            let alias = tail
                .strip_prefix('[')
                .and_then(|t| t.split(']').next())
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| c.spec.communities.as_ref()?.get(i)?.name.clone());
            return match alias {
                Some(alias) => at(&alias),
                None => entry.to_string(),
            };
        }
        (MigratedObject::BGPPeer(_), "password" | "passwordSecret") => return at("password"),
        (MigratedObject::BGPPeer(_), "nodeSelectors") => {
            let tail = tail
                .replace("matchLabels", "match-labels")
                .replace("matchExpressions", "match-expressions");
            return at(&format!("node-selectors{tail}"));
        }
        (MigratedObject::BGPPeer(_), head) => match head {
            "myASN" => "my-asn",
            "peerASN" => "peer-asn",
            "peerAddress" => "peer-address",
            "sourceAddress" => "source-address",
            "peerPort" => "peer-port",
            "holdTime" => "hold-time",
            "keepaliveTime" => "keepalive-time",
            "routerID" => "router-id",
            "bfdProfile" => "bfd-profile",
            "ebgpMultiHop" => "ebgp-multihop",
            _ => "",
        },
        (MigratedObject::IPAddressPool(_), head) => match head {
            "addresses" => "addresses",
            "autoAssign" => "auto-assign",
            "avoidBuggyIPs" => "avoid-buggy-ips",
            _ => "",
        },
        (MigratedObject::BGPAdvertisement(_), head) => match head {
            "aggregationLength" => "aggregation-length",
            "aggregationLengthV6" => "aggregation-length-v6",
            "localPref" => "localpref",
            "communities" => "communities",
            _ => "",
        },
        (MigratedObject::BFDProfile(_), head) => match head {
            "receiveInterval" => "receive-interval",
            "transmitInterval" => "transmit-interval",
            "detectMultiplier" => "detect-multiplier",
            "echoInterval" => "echo-interval",
            "echoMode" => "echo-mode",
            "passiveMode" => "passive-mode",
            "minimumTtl" => "minimum-ttl",
            _ => "",
        },
        _ => "",
    };
    if key.is_empty() {
        entry.to_string()
    } else {
        at(&format!("{key}{tail}"))
    }
}
