//! What the operator should do about a legacy ConfigMap, decided without touching the API.
//!
//! ```text
//!  ConfigMap ──annotated migrated-at?──yes──► hash unchanged? ──yes──► AlreadyMigrated
//!     │                                            └──no───► ChangedAfterMigration (ignored, reported)
//!     no
//!     ▼
//!  read ─► convert ─► validate alone ─► compare with existing objects ─► validate with them ─► Migrate
//!   │         │            │                    │                              │
//!   └─────────┴────────────┴──► Failed(InvalidConfig)   └──► Failed(Conflict)  └──► Failed(InvalidConfig)
//! ```
//!
//! Nothing is ever overwritten or deleted: an object of the same kind and name that this
//! migration did not create is a conflict. An object this migration did create (same source
//! ConfigMap, same content hash) is counted as already present, so a migration interrupted
//! between two creates is completed by the next reconcile.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::ConvertError;
use super::convert::{ConvertOptions, MigratedObject, convert_config, validate};
use super::{LegacyProblem, ObjectRef, config_hash};
use crate::config::{BgpBackend, Resources, Severity};
use crate::constants::DEFAULT_NAMESPACE;
use crate::constants::migration::{
    CONFIG_HASH_ANNOTATION, MIGRATED_AT_ANNOTATION, MIGRATED_FROM_LABEL, MIGRATED_FROM_VALUE,
    MIGRATED_OBJECTS_ANNOTATION, SOURCE_ANNOTATION, reasons,
};
use crate::constants::names::{LEGACY_CONFIGMAP, LEGACY_CONFIGMAP_KEY};

/// What [`plan`] needs besides the objects.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// The backend of the `MetalLB` resource (`spec.bgpBackend`); `None` checks the common rules
    /// only.
    pub backend: Option<BgpBackend>,
}

/// The decision about one legacy ConfigMap.
///
/// How the operator reports it: [`Plan::condition`] gives the `ConfigMigrated` condition of the
/// `MetalLB` resource, [`Plan::event`] the Event on the ConfigMap (worth emitting when the
/// condition changes, not on every reconcile).
///
/// | plan | what the operator does | condition status / reason | Event |
/// |---|---|---|---|
/// | `Migrate` | create `create` in order (a failed create is transient: requeue, the next plan skips what exists), then add [`Migration::configmap_annotations`] to the ConfigMap | True / `Migrated` | Normal `Migrated`, with the counts |
/// | `AlreadyMigrated` | nothing | True / `Migrated` | none |
/// | `ChangedAfterMigration` | nothing | True / `ChangedAfterMigration` | Warning `ChangedAfterMigration` |
/// | `NothingToMigrate` | nothing | True / `NothingToMigrate` | Normal `NothingToMigrate` |
/// | `Failed(Malformed \| Invalid)` | nothing | False / `InvalidConfig` | Warning `InvalidConfig`, with the problems |
/// | `Failed(Conflict)` | nothing | False / `Conflict` | Warning `Conflict`, naming the objects |
///
/// When there is no legacy ConfigMap at all, there is nothing to plan: the operator may leave
/// the condition out.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Plan {
    /// Create these objects, then mark the ConfigMap as migrated.
    Migrate(Migration),
    /// The ConfigMap was migrated, and has not changed since.
    AlreadyMigrated(Recorded),
    /// The ConfigMap was migrated, then edited. The edit is ignored and reported: the
    /// `metallb.io` objects are the configuration now.
    ChangedAfterMigration(Recorded),
    /// The ConfigMap holds no configuration (no `config` key, or an empty one).
    NothingToMigrate { source: String },
    /// Nothing may be created.
    Failed { source: String, failure: Failure },
}

/// The objects of a migration, and how to mark the ConfigMap once they exist.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// `<namespace>/<name>` of the ConfigMap.
    pub source: String,
    /// The objects to create, in this order (Secrets first, Community last).
    pub create: Vec<MigratedObject>,
    /// Objects of this migration that exist already (created by an interrupted earlier run).
    pub already_present: Vec<ObjectRef>,
    /// Every object of the migration, in creation order.
    pub objects: Vec<ObjectRef>,
    /// [`config_hash`] of the converted text.
    pub config_hash: String,
    /// Things to tell the user, such as renamed pools.
    pub warnings: Vec<LegacyProblem>,
}

impl Migration {
    /// The annotations to add to the ConfigMap after every object was created. `migrated_at` is
    /// the time, RFC 3339 (the caller owns the clock).
    pub fn configmap_annotations(&self, migrated_at: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MIGRATED_AT_ANNOTATION.to_string(), migrated_at.to_string()),
            (
                MIGRATED_OBJECTS_ANNOTATION.to_string(),
                self.objects
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (CONFIG_HASH_ANNOTATION.to_string(), self.config_hash.clone()),
        ])
    }

    /// `1 Secret, 2 BGPPeers, …`, in creation order.
    pub fn counts(&self) -> String {
        counts(self.objects.iter().map(|o| o.kind.as_str()))
    }
}

/// `1 Secret, 2 BGPPeers, …` for these kinds, in the order they first appear.
fn counts<'a>(kinds: impl Iterator<Item = &'a str>) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for kind in kinds {
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    counts
        .iter()
        .map(|(kind, n)| format!("{n} {kind}{}", if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the ConfigMap's annotations say about an earlier migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `<namespace>/<name>` of the ConfigMap.
    pub source: String,
    pub migrated_at: String,
    /// `Kind/name` of the objects the migration created, as recorded.
    pub objects: Vec<String>,
    /// The hash recorded at migration time, if the annotation is there.
    pub recorded_hash: Option<String>,
    /// The hash of the `config` text now.
    pub current_hash: String,
}

/// Why nothing may be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Not YAML.
    Malformed(String),
    /// Not a valid configuration, alone or together with the objects already in the namespace.
    Invalid(Vec<LegacyProblem>),
    /// Objects of the same kind and name exist and did not come from this migration.
    Conflict(Vec<Conflict>),
}

/// An existing object in the way of a converted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub object: ObjectRef,
    pub origin: ConflictOrigin,
}

/// Where the existing object came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictOrigin {
    /// It was not created by a migration (the user made it, or MetalLB's `configmaptocrs`).
    NotMigrated,
    /// It was migrated from another ConfigMap (`<namespace>/<name>`).
    OtherSource(String),
    /// It was migrated from this ConfigMap when its content was different.
    EarlierContent(String),
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match &self.origin {
            ConflictOrigin::NotMigrated => {
                "exists and was not created by the migration".to_string()
            }
            ConflictOrigin::OtherSource(s) => format!("exists and was migrated from ConfigMap {s}"),
            ConflictOrigin::EarlierContent(h) => {
                format!("exists and was migrated from an earlier content of this ConfigMap ({h})")
            }
        };
        write!(f, "{} {why}; it is left untouched", self.object)
    }
}

/// Decides what to do about `configmap`, given every `metallb.io` object and Secret already in
/// its namespace (`existing`; include the Nodes so the FRR rules know which peers share a node).
pub fn plan(configmap: &ConfigMap, existing: &Resources, opts: &PlanOptions) -> Plan {
    let namespace = configmap
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    let name = configmap
        .metadata
        .name
        .clone()
        .unwrap_or_else(|| LEGACY_CONFIGMAP.to_string());
    let source = format!("{namespace}/{name}");
    let text = configmap
        .data
        .as_ref()
        .and_then(|d| d.get(LEGACY_CONFIGMAP_KEY))
        .map(String::as_str)
        .unwrap_or_default();
    let hash = config_hash(text);

    if let Some(recorded) = recorded(&configmap.metadata, &source, &hash) {
        return if recorded.recorded_hash.as_deref() == Some(hash.as_str()) {
            Plan::AlreadyMigrated(recorded)
        } else {
            Plan::ChangedAfterMigration(recorded)
        };
    }
    let failed = |failure| Plan::Failed {
        source: source.clone(),
        failure,
    };
    let config = match super::parse(text) {
        Ok(c) => c,
        Err(ConvertError::Malformed(m)) => return failed(Failure::Malformed(m)),
        Err(ConvertError::Invalid(p)) => return failed(Failure::Invalid(p)),
    };
    if config.is_empty() {
        return Plan::NothingToMigrate { source };
    }
    let convert_options = ConvertOptions {
        namespace: namespace.clone(),
        source: source.clone(),
        backend: opts.backend,
    };
    let converted = match convert_config(&config, &hash, &convert_options) {
        Ok(c) => c,
        Err(ConvertError::Malformed(m)) => return failed(Failure::Malformed(m)),
        Err(ConvertError::Invalid(p)) => return failed(Failure::Invalid(p)),
    };

    let mut conflicts = Vec::new();
    let mut present = Vec::new();
    for object in &converted.objects {
        let Some(meta) = existing_meta(existing, object, &namespace) else {
            continue;
        };
        match origin(meta, &source, &hash) {
            None => present.push(object.object_ref()),
            Some(origin) => conflicts.push(Conflict {
                object: object.object_ref(),
                origin,
            }),
        }
    }
    if !conflicts.is_empty() {
        return failed(Failure::Conflict(conflicts));
    }

    // The namespace as it will be: the existing objects, less the ones of this migration that
    // are already there, plus every converted object.
    let others = without(existing, &present);
    let problems: Vec<LegacyProblem> =
        validate(&converted.objects, Some(&others), &convert_options)
            .into_iter()
            .filter(|(s, _)| *s == Severity::Error)
            .map(|(_, p)| p)
            .collect();
    if !problems.is_empty() {
        return failed(Failure::Invalid(problems));
    }

    let objects = converted.object_refs();
    Plan::Migrate(Migration {
        source,
        create: converted
            .objects
            .into_iter()
            .filter(|o| !present.contains(&o.object_ref()))
            .collect(),
        already_present: present,
        objects,
        config_hash: hash,
        warnings: converted.warnings,
    })
}

/// The earlier migration the ConfigMap's annotations record, if any.
fn recorded(meta: &ObjectMeta, source: &str, current_hash: &str) -> Option<Recorded> {
    let annotations = meta.annotations.as_ref()?;
    let migrated_at = annotations.get(MIGRATED_AT_ANNOTATION)?;
    Some(Recorded {
        source: source.to_string(),
        migrated_at: migrated_at.clone(),
        objects: annotations
            .get(MIGRATED_OBJECTS_ANNOTATION)
            .map(|o| {
                o.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        recorded_hash: annotations.get(CONFIG_HASH_ANNOTATION).cloned(),
        current_hash: current_hash.to_string(),
    })
}

/// The metadata of the existing object with the same kind and name as `object`.
fn existing_meta<'a>(
    existing: &'a Resources,
    object: &MigratedObject,
    namespace: &str,
) -> Option<&'a ObjectMeta> {
    fn find<'a, T: kube::Resource>(list: &'a [T], name: &str, ns: &str) -> Option<&'a ObjectMeta> {
        list.iter().map(|o| o.meta()).find(|m| {
            m.name.as_deref() == Some(name) && m.namespace.as_deref().is_none_or(|n| n == ns)
        })
    }
    let name = object.name();
    match object {
        MigratedObject::Secret(_) => find(&existing.secrets, name, namespace),
        MigratedObject::BGPPeer(_) => find(&existing.peers, name, namespace),
        MigratedObject::IPAddressPool(_) => find(&existing.pools, name, namespace),
        MigratedObject::BGPAdvertisement(_) => find(&existing.bgp_advertisements, name, namespace),
        MigratedObject::L2Advertisement(_) => find(&existing.l2_advertisements, name, namespace),
        MigratedObject::BFDProfile(_) => find(&existing.bfd_profiles, name, namespace),
        MigratedObject::Community(_) => find(&existing.communities, name, namespace),
    }
}

/// `None` when the existing object is one this migration created; otherwise where it came from.
fn origin(meta: &ObjectMeta, source: &str, hash: &str) -> Option<ConflictOrigin> {
    let label = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(MIGRATED_FROM_LABEL));
    let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key));
    if label.map(String::as_str) != Some(MIGRATED_FROM_VALUE) {
        return Some(ConflictOrigin::NotMigrated);
    }
    match (
        annotation(SOURCE_ANNOTATION),
        annotation(CONFIG_HASH_ANNOTATION),
    ) {
        (Some(s), _) if s != source => Some(ConflictOrigin::OtherSource(s.clone())),
        (Some(_), Some(h)) if h == hash => None,
        (Some(_), h) => Some(ConflictOrigin::EarlierContent(
            h.cloned().unwrap_or_else(|| "no hash recorded".to_string()),
        )),
        (None, _) => Some(ConflictOrigin::NotMigrated),
    }
}

/// `existing` without the objects named in `skip`.
fn without(existing: &Resources, skip: &[ObjectRef]) -> Resources {
    fn keep<T: kube::Resource + Clone>(list: &[T], kind: &str, skip: &[ObjectRef]) -> Vec<T> {
        list.iter()
            .filter(|o| {
                !skip
                    .iter()
                    .any(|r| r.kind == kind && Some(&r.name) == o.meta().name.as_ref())
            })
            .cloned()
            .collect()
    }
    Resources {
        pools: keep(&existing.pools, "IPAddressPool", skip),
        l2_advertisements: keep(&existing.l2_advertisements, "L2Advertisement", skip),
        bgp_advertisements: keep(&existing.bgp_advertisements, "BGPAdvertisement", skip),
        peers: keep(&existing.peers, "BGPPeer", skip),
        bfd_profiles: keep(&existing.bfd_profiles, "BFDProfile", skip),
        communities: keep(&existing.communities, "Community", skip),
        secrets: keep(&existing.secrets, "Secret", skip),
        nodes: existing.nodes.clone(),
        namespaces: existing.namespaces.clone(),
        bgp_extras: existing.bgp_extras.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting

/// The `ConfigMigrated` condition of the `MetalLB` resource, as [`Plan`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionSummary {
    pub status: bool,
    /// One of [`crate::constants::migration::reasons`].
    pub reason: &'static str,
    pub message: String,
}

/// An Event about the ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    pub reason: &'static str,
    /// At most [`EVENT_NOTE_LIMIT`] bytes.
    pub note: String,
}

/// The API server's limit on an Event's note.
pub const EVENT_NOTE_LIMIT: usize = 1024;
/// The API server's limit on a condition's message.
const CONDITION_MESSAGE_LIMIT: usize = 32768;

impl Plan {
    /// The objects to create (empty unless [`Plan::Migrate`]).
    pub fn to_create(&self) -> &[MigratedObject] {
        match self {
            Self::Migrate(m) => &m.create,
            _ => &[],
        }
    }

    /// The condition to write once the plan was carried out.
    pub fn condition(&self) -> ConditionSummary {
        let (status, reason, message) = match self {
            Self::Migrate(m) => (true, reasons::MIGRATED, migrated_message(m)),
            Self::AlreadyMigrated(r) => (
                true,
                reasons::MIGRATED,
                // The same counts as right after the migration, so the message does not
                // change when the operator reconciles again.
                format!(
                    "ConfigMap {} was migrated at {} into {}; MetalLB does not read it: delete it when you are satisfied with the metallb.io resources",
                    r.source,
                    r.migrated_at,
                    counts(
                        r.objects
                            .iter()
                            .map(|o| o.split_once('/').map_or(o.as_str(), |(k, _)| k))
                    )
                ),
            ),
            Self::ChangedAfterMigration(r) => (
                true,
                reasons::CHANGED_AFTER_MIGRATION,
                format!(
                    "ConfigMap {} changed after it was migrated at {}; the change is ignored: edit the metallb.io resources instead",
                    r.source, r.migrated_at
                ),
            ),
            Self::NothingToMigrate { source } => (
                true,
                reasons::NOTHING_TO_MIGRATE,
                format!("ConfigMap {source} holds no configuration: nothing to migrate"),
            ),
            Self::Failed { source, failure } => {
                let reason = match failure {
                    Failure::Conflict(_) => reasons::CONFLICT,
                    Failure::Malformed(_) | Failure::Invalid(_) => reasons::INVALID_CONFIG,
                };
                (false, reason, failed_message(source, failure))
            }
        };
        ConditionSummary {
            status,
            reason,
            message: truncate(message, CONDITION_MESSAGE_LIMIT),
        }
    }

    /// The Event to record on the ConfigMap, if this outcome deserves one.
    pub fn event(&self) -> Option<EventSummary> {
        let condition = self.condition();
        let warning = match self {
            Self::AlreadyMigrated(_) => return None,
            Self::Migrate(_) | Self::NothingToMigrate { .. } => false,
            Self::ChangedAfterMigration(_) | Self::Failed { .. } => true,
        };
        Some(EventSummary {
            warning,
            reason: condition.reason,
            note: truncate(condition.message, EVENT_NOTE_LIMIT),
        })
    }
}

fn migrated_message(m: &Migration) -> String {
    let mut message = format!("migrated ConfigMap {}: {}", m.source, m.counts());
    if !m.already_present.is_empty() {
        message += &format!(
            " ({} already present from an interrupted attempt)",
            m.already_present.len()
        );
    }
    for w in &m.warnings {
        message += &format!("; warning: {w}");
    }
    message
}

fn failed_message(source: &str, failure: &Failure) -> String {
    let details: Vec<String> = match failure {
        Failure::Malformed(m) => vec![m.clone()],
        Failure::Invalid(problems) => problems.iter().map(ToString::to_string).collect(),
        Failure::Conflict(conflicts) => conflicts.iter().map(ToString::to_string).collect(),
    };
    format!(
        "ConfigMap {source} was not migrated, nothing was created: {}",
        details.join("; ")
    )
}

/// Cuts a message to at most `limit` bytes, on a character boundary, marking the cut.
fn truncate(message: String, limit: usize) -> String {
    if message.len() <= limit {
        return message;
    }
    const MARK: &str = " …(truncated)";
    let mut end = limit - MARK.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &message[..end])
}
