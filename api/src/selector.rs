//! Label selectors, validated once and matched many times. The rules are Kubernetes' own
//! (`metav1.LabelSelectorAsSelector`): known operators only, `In`/`NotIn` need values,
//! `Exists`/`DoesNotExist` take none, keys and values must be valid label syntax. An empty
//! selector matches everything.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// A parsed, valid label selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Selector {
    /// Sorted by key, then operator, so equal selectors compare equal.
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Requirement {
    key: String,
    op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Op {
    In(BTreeSet<String>),
    NotIn(BTreeSet<String>),
    Exists,
    DoesNotExist,
}

/// Why a selector is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("{0:?} is not a valid label selector operator")]
    UnknownOperator(String),
    #[error("key {key:?}: for 'in', 'notin' operators, values set can't be empty")]
    MissingValues { key: String },
    #[error("key {key:?}: values set must be empty for exists and does not exist")]
    UnexpectedValues { key: String },
    #[error("invalid label key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("invalid label value {value:?} for key {key:?}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
}

impl Selector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Validates and converts a Kubernetes label selector.
    pub fn parse(sel: &LabelSelector) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for (key, value) in sel.match_labels.iter().flatten() {
            validate_key(key)?;
            validate_value(key, value)?;
            requirements.push(Requirement {
                key: key.clone(),
                op: Op::In([value.clone()].into()),
            });
        }
        for expr in sel.match_expressions.iter().flatten() {
            requirements.push(parse_requirement(
                &expr.key,
                &expr.operator,
                expr.values.as_deref(),
            )?);
        }
        requirements.sort();
        Ok(Self { requirements })
    }

    /// Builds a selector from MetalLB's v1beta1 BGPPeer node selector shape.
    pub fn parse_parts(
        match_labels: Option<&BTreeMap<String, String>>,
        expressions: &[(String, String, Vec<String>)],
    ) -> Result<Self, SelectorError> {
        let sel = LabelSelector {
            match_labels: match_labels.cloned(),
            match_expressions: Some(
                expressions
                    .iter()
                    .map(|(key, operator, values)| LabelSelectorRequirement {
                        key: key.clone(),
                        operator: operator.clone(),
                        values: Some(values.clone()),
                    })
                    .collect(),
            ),
        };
        Self::parse(&sel)
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match &r.op {
            Op::In(values) => labels.get(&r.key).is_some_and(|v| values.contains(v)),
            Op::NotIn(values) => labels.get(&r.key).is_none_or(|v| !values.contains(v)),
            Op::Exists => labels.contains_key(&r.key),
            Op::DoesNotExist => !labels.contains_key(&r.key),
        })
    }

    /// Whether this selector matches everything.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }
}

/// Whether any selector in the list matches (an empty list matches everything, the MetalLB rule
/// for node and pool selectors).
pub fn any_matches(selectors: &[Selector], labels: &BTreeMap<String, String>) -> bool {
    selectors.is_empty() || selectors.iter().any(|s| s.matches(labels))
}

fn parse_requirement(
    key: &str,
    operator: &str,
    values: Option<&[String]>,
) -> Result<Requirement, SelectorError> {
    validate_key(key)?;
    let values = values.unwrap_or_default();
    let set = || -> Result<BTreeSet<String>, SelectorError> {
        if values.is_empty() {
            return Err(SelectorError::MissingValues {
                key: key.to_string(),
            });
        }
        for v in values {
            validate_value(key, v)?;
        }
        Ok(values.iter().cloned().collect())
    };
    let op = match operator {
        "In" => Op::In(set()?),
        "NotIn" => Op::NotIn(set()?),
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                return Err(SelectorError::UnexpectedValues {
                    key: key.to_string(),
                });
            }
            if operator == "Exists" {
                Op::Exists
            } else {
                Op::DoesNotExist
            }
        }
        other => return Err(SelectorError::UnknownOperator(other.to_string())),
    };
    Ok(Requirement {
        key: key.to_string(),
        op,
    })
}

const NAME_MAX: usize = 63;

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

/// A label name or value body: alphanumeric at both ends, `-_.` and alphanumerics inside.
fn check_name(s: &str) -> Result<(), String> {
    if s.len() > NAME_MAX {
        return Err(format!("must be no more than {NAME_MAX} characters"));
    }
    let ok = s.chars().all(is_name_char)
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    if !ok {
        return Err("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".into());
    }
    Ok(())
}

/// A DNS-1123 subdomain, the form of a label key's prefix.
fn check_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err("prefix must be no more than 253 characters".into());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if s.split('.').all(label_ok) {
        Ok(())
    } else {
        Err("prefix must be a lowercase RFC 1123 subdomain".into())
    }
}

/// Validates a label key: `[prefix/]name`.
pub fn validate_key(key: &str) -> Result<(), SelectorError> {
    let err = |reason: String| SelectorError::InvalidKey {
        key: key.to_string(),
        reason,
    };
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() {
                return Err(err("prefix part must be non-empty".into()));
            }
            check_subdomain(prefix).map_err(err)?;
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err(err("name part must be non-empty".into()));
    }
    check_name(name).map_err(err)
}

/// Validates a label value (empty is allowed).
pub fn validate_value(key: &str, value: &str) -> Result<(), SelectorError> {
    if value.is_empty() {
        return Ok(());
    }
    check_name(value).map_err(|reason| SelectorError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason,
    })
}

/// Kubernetes' own text form (`a=b,c in (x,y),!d`), used in messages.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.requirements.is_empty() {
            return f.write_str("<everything>");
        }
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match &r.op {
                Op::In(v) if v.len() == 1 => format!("{}={}", r.key, v.iter().next().unwrap()),
                Op::In(v) => format!(
                    "{} in ({})",
                    r.key,
                    v.iter().cloned().collect::<Vec<_>>().join(",")
                ),
                Op::NotIn(v) => format!(
                    "{} notin ({})",
                    r.key,
                    v.iter().cloned().collect::<Vec<_>>().join(",")
                ),
                Op::Exists => r.key.clone(),
                Op::DoesNotExist => format!("!{}", r.key),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(yaml: &str) -> LabelSelector {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = Selector::parse(&LabelSelector::default()).unwrap();
        assert!(s.is_everything());
        assert!(s.matches(&labels(&[])));
    }

    #[test]
    fn labels_and_expressions_are_anded() {
        let s = Selector::parse(&sel(
            "matchLabels: {zone: a}\nmatchExpressions:\n- {key: rack, operator: In, values: [r1, r2]}\n- {key: drain, operator: DoesNotExist}\n",
        ))
        .unwrap();
        assert!(s.matches(&labels(&[("zone", "a"), ("rack", "r2")])));
        assert!(!s.matches(&labels(&[("zone", "a"), ("rack", "r3")])));
        assert!(!s.matches(&labels(&[("zone", "a"), ("rack", "r1"), ("drain", "")])));
        assert_eq!(s.to_string(), "!drain,rack in (r1,r2),zone=a");
    }

    #[test]
    fn not_in_matches_a_missing_key() {
        let s = Selector::parse(&sel(
            "matchExpressions: [{key: a, operator: NotIn, values: [x]}]",
        ))
        .unwrap();
        assert!(s.matches(&labels(&[])));
        assert!(!s.matches(&labels(&[("a", "x")])));
    }

    #[test]
    fn invalid_selectors_are_rejected_with_the_reason() {
        let cases = [
            (
                "matchExpressions: [{key: a, operator: Gt, values: ['1']}]",
                "\"Gt\" is not a valid label selector operator",
            ),
            (
                "matchExpressions: [{key: a, operator: In}]",
                "key \"a\": for 'in', 'notin' operators, values set can't be empty",
            ),
            (
                "matchExpressions: [{key: a, operator: Exists, values: [x]}]",
                "key \"a\": values set must be empty for exists and does not exist",
            ),
            ("matchLabels: {'-bad': x}", "invalid label key \"-bad\""),
            (
                "matchLabels: {'Example.com/x': y}",
                "prefix must be a lowercase RFC 1123 subdomain",
            ),
            (
                "matchLabels: {ok: 'bad value'}",
                "invalid label value \"bad value\"",
            ),
        ];
        for (yaml, want) in cases {
            let err = Selector::parse(&sel(yaml)).unwrap_err().to_string();
            assert!(err.contains(want), "{yaml}: {err}");
        }
    }

    #[test]
    fn prefixed_keys_are_valid() {
        assert!(validate_key("kubernetes.io/hostname").is_ok());
        assert!(validate_key("node.kubernetes.io/exclude-from-external-load-balancers").is_ok());
        assert!(validate_key("/x").is_err());
        assert!(validate_key(&"a".repeat(64)).is_err());
    }
}
