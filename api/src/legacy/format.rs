//! The legacy configuration format (MetalLB ≤ 0.12, the `config` key of the ConfigMap `config`)
//! and its strict reader.
//!
//! MetalLB read this YAML with `yaml.UnmarshalStrict` (YAML 1.1): an unknown or repeated key was
//! an error, any scalar could fill a string field with its text, and `yes`/`no`/`on`/`off` were
//! booleans. serde-saphyr's typed deserialization has the same scalar rules, so the types below
//! are read directly from the YAML text. Unknown keys are found first by walking the document
//! against [`CONFIG`], so that every misspelt key is reported at once, not only the first.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::LegacyProblem;

/// The whole legacy configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LegacyConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub peers: Vec<LegacyPeer>,
    /// Community aliases: name → `AS:value` (or `large:a:b:c`).
    #[serde(default, deserialize_with = "nullable")]
    pub bgp_communities: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub address_pools: Vec<LegacyPool>,
    #[serde(default, deserialize_with = "nullable")]
    pub bfd_profiles: Vec<LegacyBfdProfile>,
}

impl LegacyConfig {
    /// Whether the configuration defines nothing at all.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
            && self.bgp_communities.is_empty()
            && self.address_pools.is_empty()
            && self.bfd_profiles.is_empty()
    }
}

/// A BGP router to peer with.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LegacyPeer {
    #[serde(default, deserialize_with = "asn")]
    pub my_asn: Option<u32>,
    #[serde(default, deserialize_with = "asn")]
    pub peer_asn: Option<u32>,
    pub peer_address: Option<String>,
    pub source_address: Option<String>,
    /// 0 or absent: 179.
    pub peer_port: Option<u16>,
    /// Go duration; absent: 90s.
    pub hold_time: Option<String>,
    /// Go duration; absent: a third of the hold time.
    pub keepalive_time: Option<String>,
    pub router_id: Option<String>,
    pub password: Option<String>,
    pub bfd_profile: Option<String>,
    pub ebgp_multihop: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub node_selectors: Vec<LegacyNodeSelector>,
}

/// A node selector in the legacy spelling (`match-labels`, `match-expressions`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LegacyNodeSelector {
    #[serde(default, deserialize_with = "nullable")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub match_expressions: Vec<LegacyRequirement>,
}

/// One `match-expressions` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyRequirement {
    pub key: String,
    pub operator: String,
    #[serde(default, deserialize_with = "nullable")]
    pub values: Vec<String>,
}

/// An address pool and how its addresses are announced.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LegacyPool {
    pub name: Option<String>,
    /// `bgp` or `layer2`; required.
    pub protocol: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub addresses: Vec<String>,
    pub auto_assign: Option<bool>,
    pub avoid_buggy_ips: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub bgp_advertisements: Vec<LegacyBgpAdvertisement>,
}

/// How a `bgp` pool's addresses are advertised.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LegacyBgpAdvertisement {
    pub aggregation_length: Option<i32>,
    pub aggregation_length_v6: Option<i32>,
    pub localpref: Option<u32>,
    /// `AS:value` literals or names of `bgp-communities` aliases.
    #[serde(default, deserialize_with = "nullable")]
    pub communities: Vec<String>,
}

/// A BFD profile peers may refer to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LegacyBfdProfile {
    pub name: Option<String>,
    pub receive_interval: Option<u32>,
    pub transmit_interval: Option<u32>,
    pub detect_multiplier: Option<u32>,
    pub echo_interval: Option<u32>,
    pub echo_mode: Option<bool>,
    pub passive_mode: Option<bool>,
    pub minimum_ttl: Option<u32>,
}

/// A list or map that may also be written as `null` (an empty YAML key).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An AS number: a whole number that fits in 32 bits.
fn asn<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct Asn;
    impl serde::de::Visitor<'_> for Asn {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an AS number")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
            u32::try_from(n).map(Some).map_err(|_| invalid(n))
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
            u32::try_from(n).map(Some).map_err(|_| invalid(n))
        }
        fn visit_u128<E: serde::de::Error>(self, n: u128) -> Result<Self::Value, E> {
            u32::try_from(n).map(Some).map_err(|_| invalid(n))
        }
        fn visit_i128<E: serde::de::Error>(self, n: i128) -> Result<Self::Value, E> {
            u32::try_from(n).map(Some).map_err(|_| invalid(n))
        }
        fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
            Err(invalid(n))
        }
        fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
            Err(invalid(b))
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Err(invalid(format!("{s:?}")))
        }
    }
    fn invalid<E: serde::de::Error>(shown: impl std::fmt::Display) -> E {
        E::custom(format!(
            "invalid ASN {shown}: must be a whole number between 0 and 4294967295"
        ))
    }
    d.deserialize_any(Asn)
}

/// Why the text is not a legacy configuration at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedYaml(pub String);

/// Reads the legacy configuration from the `config` text: malformed YAML is one error; anything
/// else wrong is a list of problems naming their keys.
pub(super) fn read(text: &str) -> Result<LegacyConfig, ReadFailure> {
    let value: Value = serde_saphyr::from_str(text).map_err(|e| {
        ReadFailure::Malformed(MalformedYaml(format!(
            "malformed YAML: {}",
            yaml_message(&e)
        )))
    })?;
    match &value {
        Value::Null => return Ok(LegacyConfig::default()),
        Value::Object(_) => {}
        other => {
            return Err(ReadFailure::Invalid(vec![LegacyProblem::new(
                "",
                format!(
                    "the configuration must be a mapping (peers, address-pools, bgp-communities, bfd-profiles), not {}",
                    json_type(other)
                ),
            )]));
        }
    }
    let mut problems = Vec::new();
    unknown_keys(&CONFIG, &value, "", &mut problems);
    if !problems.is_empty() {
        return Err(ReadFailure::Invalid(problems));
    }
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| {
        let path = if path == "." { String::new() } else { path };
        ReadFailure::Invalid(vec![LegacyProblem::new(path, yaml_message(&e))])
    })
}

/// What [`read`] found wrong.
#[derive(Debug)]
pub(super) enum ReadFailure {
    Malformed(MalformedYaml),
    Invalid(Vec<LegacyProblem>),
}

/// A serde-saphyr error without its snippet and trailing location, plus `(line L, column C)`.
pub(super) fn yaml_message(e: &serde_saphyr::Error) -> String {
    let message = e.without_snippet().to_string();
    let message = message
        .rsplit_once(" at line ")
        .map(|(m, _)| m.to_string())
        .unwrap_or(message);
    // The parser's advice is for programmers; a YAML key is simply not repeated.
    let message = message
        .split_once(", set DuplicateKeyPolicy")
        .map(|(m, _)| m.to_string())
        .unwrap_or(message);
    match e.location() {
        Some(l) => format!("{message} (line {}, column {})", l.line(), l.column()),
        None => message,
    }
}

pub(super) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The keys of the format, for the unknown-key walk. Values are checked by the typed read.
enum Shape {
    /// A mapping with these keys.
    Keys(&'static [(&'static str, Shape)]),
    /// A list whose items have this shape.
    List(&'static Shape),
    /// A mapping with free keys (labels, community aliases), or a scalar.
    Leaf,
}

const REQUIREMENT: Shape = Shape::Keys(&[
    ("key", Shape::Leaf),
    ("operator", Shape::Leaf),
    ("values", Shape::Leaf),
]);
const NODE_SELECTOR: Shape = Shape::Keys(&[
    ("match-labels", Shape::Leaf),
    ("match-expressions", Shape::List(&REQUIREMENT)),
]);
const PEER: Shape = Shape::Keys(&[
    ("my-asn", Shape::Leaf),
    ("peer-asn", Shape::Leaf),
    ("peer-address", Shape::Leaf),
    ("source-address", Shape::Leaf),
    ("peer-port", Shape::Leaf),
    ("hold-time", Shape::Leaf),
    ("keepalive-time", Shape::Leaf),
    ("router-id", Shape::Leaf),
    ("password", Shape::Leaf),
    ("bfd-profile", Shape::Leaf),
    ("ebgp-multihop", Shape::Leaf),
    ("node-selectors", Shape::List(&NODE_SELECTOR)),
]);
const BGP_ADVERTISEMENT: Shape = Shape::Keys(&[
    ("aggregation-length", Shape::Leaf),
    ("aggregation-length-v6", Shape::Leaf),
    ("localpref", Shape::Leaf),
    ("communities", Shape::Leaf),
]);
const POOL: Shape = Shape::Keys(&[
    ("name", Shape::Leaf),
    ("protocol", Shape::Leaf),
    ("addresses", Shape::Leaf),
    ("auto-assign", Shape::Leaf),
    ("avoid-buggy-ips", Shape::Leaf),
    ("bgp-advertisements", Shape::List(&BGP_ADVERTISEMENT)),
]);
const BFD_PROFILE: Shape = Shape::Keys(&[
    ("name", Shape::Leaf),
    ("receive-interval", Shape::Leaf),
    ("transmit-interval", Shape::Leaf),
    ("detect-multiplier", Shape::Leaf),
    ("echo-interval", Shape::Leaf),
    ("echo-mode", Shape::Leaf),
    ("passive-mode", Shape::Leaf),
    ("minimum-ttl", Shape::Leaf),
]);
const CONFIG: Shape = Shape::Keys(&[
    ("peers", Shape::List(&PEER)),
    ("bgp-communities", Shape::Leaf),
    ("address-pools", Shape::List(&POOL)),
    ("bfd-profiles", Shape::List(&BFD_PROFILE)),
]);

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn unknown_keys(shape: &Shape, value: &Value, path: &str, out: &mut Vec<LegacyProblem>) {
    match (shape, value) {
        (Shape::Keys(keys), Value::Object(map)) => {
            for (key, sub) in map {
                match keys.iter().find(|(k, _)| k == key) {
                    Some((_, shape)) => unknown_keys(shape, sub, &join(path, key), out),
                    None => {
                        let known: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
                        out.push(LegacyProblem::new(
                            join(path, key),
                            format!(
                                "unknown field {key:?}: the legacy format knows {}",
                                known.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        (Shape::List(item), Value::Array(items)) => {
            for (i, sub) in items.iter().enumerate() {
                unknown_keys(item, sub, &format!("{path}[{i}]"), out);
            }
        }
        // Wrong types are reported by the typed read, with the expected type.
        _ => {}
    }
}
