//! The legacy MetalLB configuration (≤ 0.12: the ConfigMap `config`, key `config`) and its
//! conversion into `metallb.io` objects, for the operator's migration and the offline
//! `metallb-operator convert-config` command.
//!
//! ```text
//!  ConfigMap / config text ──read_input──► config text
//!     config text ──read (strict)──► LegacyConfig ──convert──► objects ──validate::validate_values──► Converted
//!                                                                  (schema + config::parse, the one validator)
//!  ConfigMap + existing objects ──plan──► Plan: Migrate | AlreadyMigrated | ChangedAfterMigration
//!                                               | NothingToMigrate | Failed (InvalidConfig, Conflict)
//! ```
//!
//! Everything here is pure: no Kubernetes client, no clock, no I/O. The operator gathers the
//! ConfigMap and the existing objects, calls [`plan`], creates what the plan says, and reports
//! the outcome; see [`Plan`] for the mapping to the `ConfigMigrated` condition and Events.
//!
//! Rules are not repeated here. The reader checks only what belongs to the legacy format (keys,
//! types, `protocol`, where `bgp-advertisements` may appear, names); every MetalLB rule (ASNs,
//! timers, overlapping CIDRs, aggregation lengths, communities, backend limits) is checked by
//! [`crate::validate::validate_values`] on the converted objects, and each problem it finds is
//! reported against the legacy key it came from, such as
//! `address-pools[1].bgp-advertisements[0].aggregation-length`.
//!
//! The mapping follows MetalLB's `configmaptocrs` (`shared/spec/metallb.md` §4.2); where we
//! decided otherwise, the code says "Decision:".

mod convert;
mod format;
mod names;
mod plan;

use std::fmt;

pub use convert::{ConvertOptions, Converted, MigratedObject, convert, convert_config};
pub use format::{
    LegacyBfdProfile, LegacyBgpAdvertisement, LegacyConfig, LegacyNodeSelector, LegacyPeer,
    LegacyPool, LegacyRequirement,
};
pub use names::normalize_name;
pub use plan::{
    ConditionSummary, Conflict, ConflictOrigin, EVENT_NOTE_LIMIT, EventSummary, Failure, Migration,
    Plan, PlanOptions, Recorded, plan,
};

use serde_json::Value;

use crate::constants::names::LEGACY_CONFIGMAP_KEY;

/// One problem with the legacy configuration, named by its key in the legacy format
/// (`peers[0].hold-time`), or empty for the whole document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyProblem {
    pub path: String,
    pub message: String,
    /// The converted object and field the validator reported it on (`Kind/name field`), when
    /// it came from the validator.
    pub object: Option<String>,
}

impl LegacyProblem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            object: None,
        }
    }
}

/// `path: message`, or the message alone for the whole document.
impl fmt::Display for LegacyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a legacy configuration was not converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The text is not YAML, or the input is not a ConfigMap nor configuration data.
    #[error("failed to read the legacy configuration: {0}")]
    Malformed(String),
    /// The configuration is not valid: every problem found, each naming its legacy key.
    #[error("failed to convert the legacy configuration: {}", join_problems(.0))]
    Invalid(Vec<LegacyProblem>),
}

impl ConvertError {
    /// Every problem as one line each.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Self::Malformed(m) => vec![m.clone()],
            Self::Invalid(problems) => problems.iter().map(ToString::to_string).collect(),
        }
    }
}

fn join_problems(problems: &[LegacyProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A kind and a name: how objects are listed in messages and in the ConfigMap annotation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: String,
    pub name: String,
}

/// `Kind/name`.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// `sha256:<hex>` of the configuration text, as recorded in
/// [`crate::constants::migration::CONFIG_HASH_ANNOTATION`].
///
/// Decision: the hash is of the text exactly as stored, so any edit (even a comment) after the
/// migration is reported as a change. It is only reported, never acted on, so a false alarm
/// costs a message and a missed change would cost a silently ignored edit.
pub fn config_hash(text: &str) -> String {
    format!("sha256:{}", crate::sha256_hex(text))
}

/// Reads the `config` text strictly into the legacy types, without converting it.
pub fn parse(text: &str) -> Result<LegacyConfig, ConvertError> {
    format::read(text).map_err(|e| match e {
        format::ReadFailure::Malformed(m) => ConvertError::Malformed(m.0),
        format::ReadFailure::Invalid(problems) => ConvertError::Invalid(problems),
    })
}

/// What an input file held: the configuration text, and where it came from when the file was
/// a ConfigMap manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyInput {
    /// The `config` text.
    pub data: String,
    /// `metadata.namespace` of the ConfigMap, if the input was one and had it.
    pub namespace: Option<String>,
    /// `metadata.name` of the ConfigMap, if the input was one.
    pub name: Option<String>,
}

/// Reads a file's text that is either a ConfigMap manifest (the `config` key of its `data` is
/// taken) or the bare configuration data (taken as it is). A document with `apiVersion` or
/// `kind` is a manifest; any other mapping is configuration data.
pub fn read_input(text: &str) -> Result<LegacyInput, ConvertError> {
    let bare = || LegacyInput {
        data: text.to_string(),
        namespace: None,
        name: None,
    };
    let docs = match crate::manifest::documents("input", text) {
        Ok(docs) => docs,
        Err(crate::manifest::ReadError::Yaml {
            line,
            column,
            message,
            ..
        }) => {
            return Err(ConvertError::Malformed(format!(
                "malformed YAML: {message} (line {line}, column {column})"
            )));
        }
        // Not a mapping at the top: the configuration reader says what it expected.
        Err(_) => return Ok(bare()),
    };
    let doc = match docs.as_slice() {
        [] => return Ok(bare()),
        [doc] => &doc.value,
        more => {
            return Err(ConvertError::Malformed(format!(
                "expected one document (a ConfigMap, or the configuration data), found {}",
                more.len()
            )));
        }
    };
    let (api_version, kind, name) = crate::manifest::identity(doc);
    if api_version.is_empty() && kind.is_empty() {
        return Ok(bare());
    }
    if kind != "ConfigMap" || api_version != "v1" {
        return Err(ConvertError::Malformed(format!(
            "expected a v1 ConfigMap or the configuration data, found {} {}",
            if api_version.is_empty() {
                "<no apiVersion>"
            } else {
                &api_version
            },
            if kind.is_empty() { "<no kind>" } else { &kind }
        )));
    }
    let namespace = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    let shown = format!(
        "ConfigMap {}{name}",
        namespace
            .as_deref()
            .map(|n| format!("{n}/"))
            .unwrap_or_default()
    );
    let data = match doc.get("data").and_then(|d| d.get(LEGACY_CONFIGMAP_KEY)) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(ConvertError::Malformed(format!(
                "{shown}: data.{LEGACY_CONFIGMAP_KEY} must be a string (the configuration as YAML text), not {}",
                format::json_type(other)
            )));
        }
        None => {
            return Err(ConvertError::Malformed(format!(
                "{shown} has no data.{LEGACY_CONFIGMAP_KEY}: it holds no legacy MetalLB configuration"
            )));
        }
    };
    Ok(LegacyInput {
        data,
        namespace,
        name: Some(name).filter(|n| !n.is_empty()),
    })
}

#[cfg(test)]
mod tests;
