//! Validation of `metallb.io` objects at admission, with the one parser
//! (`metallb_api::config::parse`). Pure: [`review`] takes the request's objects and the
//! existing objects the webhook read, and says allow or deny, with warnings.
//!
//! Which objects are read follows MetalLB (`shared/spec/metallb.md` §5.1): a pool is checked
//! with the other pools, an L2Advertisement with the L2Advertisements and the pools, and so on
//! ([`Kind::needs`]). The new object replaces the existing one of the same name. References to
//! objects that may simply be created later (a BFD profile, a password Secret, a community
//! alias) are deferred to runtime (`References::Defer`).
//!
//! Differences from MetalLB, on purpose:
//! - Decision: a request is refused for the problems it *introduces*: errors of the set with
//!   the new object that the set without it (as stored) does not have. MetalLB refuses any
//!   change while the stored set has an error, even in an unrelated object, so one bad object
//!   blocks every edit but its own.
//! - Decision: `disableMP: true` gives the deprecation warning and the peer is still checked;
//!   MetalLB returns the warning before any other check, so such a peer skips validation.
//! - Decision: BFDProfile updates are checked too (MetalLB checks only creation).
//! - An update of an object outside the MetalLB namespace is allowed with a warning: MetalLB
//!   never reads it. Creating one there is refused, as in MetalLB.

use std::collections::BTreeSet;

use metallb_api::config::{ParseOptions, Problem, References, Resources, Severity, parse};
use metallb_api::constants::webhook_paths;
use metallb_api::manifest::{self, Object};
use serde_json::Value;

/// The kinds with a validating webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    IPAddressPool,
    L2Advertisement,
    BGPAdvertisement,
    BGPPeer,
    BFDProfile,
    Community,
}

/// The existing objects a kind is validated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    pub pools: bool,
    pub l2_advertisements: bool,
    pub bgp_advertisements: bool,
    pub peers: bool,
    pub bfd_profiles: bool,
    pub communities: bool,
    pub nodes: bool,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::IPAddressPool,
        Kind::L2Advertisement,
        Kind::BGPAdvertisement,
        Kind::BGPPeer,
        Kind::BFDProfile,
        Kind::Community,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Self::IPAddressPool => webhook_paths::IPADDRESSPOOL,
            Self::L2Advertisement => webhook_paths::L2ADVERTISEMENT,
            Self::BGPAdvertisement => webhook_paths::BGPADVERTISEMENT,
            Self::BGPPeer => webhook_paths::BGPPEER,
            Self::BFDProfile => webhook_paths::BFDPROFILE,
            Self::Community => webhook_paths::COMMUNITY,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::IPAddressPool => "IPAddressPool",
            Self::L2Advertisement => "L2Advertisement",
            Self::BGPAdvertisement => "BGPAdvertisement",
            Self::BGPPeer => "BGPPeer",
            Self::BFDProfile => "BFDProfile",
            Self::Community => "Community",
        }
    }

    /// MetalLB's table (spec §5.1), plus the kind itself.
    pub fn needs(self) -> Needs {
        let n = Needs::default();
        match self {
            Self::IPAddressPool => Needs { pools: true, ..n },
            Self::L2Advertisement => Needs {
                l2_advertisements: true,
                pools: true,
                ..n
            },
            Self::BGPAdvertisement => Needs {
                bgp_advertisements: true,
                pools: true,
                nodes: true,
                ..n
            },
            Self::BGPPeer => Needs {
                peers: true,
                nodes: true,
                ..n
            },
            Self::BFDProfile => Needs {
                bfd_profiles: true,
                ..n
            },
            Self::Community => Needs {
                communities: true,
                ..n
            },
        }
    }
}

/// The operation being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Why not, one problem per line.
    pub message: String,
    pub warnings: Vec<String>,
}

impl Verdict {
    fn allow(warnings: Vec<String>) -> Self {
        Self {
            allowed: true,
            message: String::new(),
            warnings,
        }
    }

    fn deny(message: impl Into<String>, warnings: Vec<String>) -> Self {
        Self {
            allowed: false,
            message: message.into(),
            warnings,
        }
    }
}

/// MetalLB's deprecation warning for `disableMP`.
pub const DISABLE_MP_WARNING: &str =
    "disable mp is deprecated, please use dualStackAddressFamily instead";

/// Decides on a CREATE or UPDATE of `object` (a `kind`), given the `existing` objects the kind
/// needs, or on a DELETE (only BFDProfiles are checked: refused while a BGPPeer uses them).
pub fn review(
    kind: Kind,
    operation: Operation,
    object: &Value,
    existing: &Resources,
    namespace: &str,
    backend: Option<metallb_api::config::BgpBackend>,
) -> Verdict {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if operation == Operation::Delete {
        if kind != Kind::BFDProfile {
            return Verdict::allow(Vec::new());
        }
        let users: Vec<String> = existing
            .peers
            .iter()
            .filter(|p| p.spec.bfd_profile.as_deref() == Some(name.as_str()))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        return match users.first() {
            Some(peer) => Verdict::deny(
                format!("failed to delete BFDProfile {name}, used by BGPPeer {peer}"),
                Vec::new(),
            ),
            None => Verdict::allow(Vec::new()),
        };
    }

    let object_ns = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    if operation == Operation::Update && object_ns.is_some_and(|ns| ns != namespace) {
        return Verdict::allow(vec![format!(
            "{}/{name} is not in the MetalLB namespace {namespace:?}: MetalLB ignores it",
            kind.name()
        )]);
    }

    let typed = match manifest::object(object) {
        Ok(o) => o,
        Err(e) => return Verdict::deny(e.to_string(), Vec::new()),
    };
    let mut warnings = Vec::new();
    if let Object::BGPPeer(p) = &typed
        && p.spec.disable_mp == Some(true)
    {
        warnings.push(DISABLE_MP_WARNING.to_string());
    }

    let opts = ParseOptions {
        namespace: namespace.to_string(),
        backend,
        references: References::Defer,
    };
    let before = parse(existing, &opts).problems;
    let mut candidate = without(existing, kind, &name);
    candidate.add(typed);
    let after = parse(&candidate, &opts).problems;

    let known: BTreeSet<String> = before.iter().map(Problem::to_string).collect();
    let fresh = |severity: Severity| -> Vec<String> {
        after
            .iter()
            .filter(|p| p.severity == severity)
            .map(Problem::to_string)
            .filter(|p| !known.contains(p))
            .collect()
    };
    warnings.extend(fresh(Severity::Warning));
    let errors = fresh(Severity::Error);
    if errors.is_empty() {
        Verdict::allow(warnings)
    } else {
        Verdict::deny(errors.join("\n"), warnings)
    }
}

/// The existing objects without the one of `kind` named `name`.
fn without(existing: &Resources, kind: Kind, name: &str) -> Resources {
    fn keep<K: kube::Resource>(list: &mut Vec<K>, name: &str) {
        list.retain(|o| o.meta().name.as_deref() != Some(name));
    }
    let mut r = existing.clone();
    match kind {
        Kind::IPAddressPool => keep(&mut r.pools, name),
        Kind::L2Advertisement => keep(&mut r.l2_advertisements, name),
        Kind::BGPAdvertisement => keep(&mut r.bgp_advertisements, name),
        Kind::BGPPeer => keep(&mut r.peers, name),
        Kind::BFDProfile => keep(&mut r.bfd_profiles, name),
        Kind::Community => keep(&mut r.communities, name),
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use metallb_api::config::BgpBackend;
    use pretty_assertions::assert_eq;

    const NS: &str = "metallb-system";

    fn value(yaml: &str) -> Value {
        manifest::documents("t.yaml", yaml).unwrap()[0]
            .value
            .clone()
    }

    fn resources(yaml: &str) -> Resources {
        let mut r = Resources::default();
        for d in manifest::documents("t.yaml", yaml).unwrap() {
            r.add(manifest::object(&d.value).unwrap());
        }
        r
    }

    fn pool(name: &str, ns: &str, addresses: &str) -> String {
        format!(
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{addresses: [{addresses}]}}\n---\n"
        )
    }

    #[test]
    fn an_overlapping_pool_is_refused_with_the_validator_message() {
        let existing = resources(&pool("lan", NS, "192.0.2.0/24"));
        let v = review(
            Kind::IPAddressPool,
            Operation::Create,
            &value(&pool("other", NS, "192.0.2.128/25")),
            &existing,
            NS,
            None,
        );
        assert_eq!(
            v,
            Verdict::deny(
                "IPAddressPool/other: spec.addresses[0]: CIDR \"192.0.2.128/25\" in pool \"other\" overlaps with already defined CIDR \"192.0.2.0/24\" (pool \"lan\", \"192.0.2.0/24\")",
                vec![]
            )
        );
    }

    #[test]
    fn an_update_replaces_the_stored_object_of_the_same_name() {
        let existing = resources(&pool("lan", NS, "192.0.2.0/24"));
        let v = review(
            Kind::IPAddressPool,
            Operation::Update,
            &value(&pool("lan", NS, "192.0.2.0/25")),
            &existing,
            NS,
            None,
        );
        assert_eq!(v, Verdict::allow(vec![]), "not an overlap with itself");
    }

    #[test]
    fn creating_outside_the_metallb_namespace_is_refused_and_updating_there_is_ignored() {
        let created = review(
            Kind::IPAddressPool,
            Operation::Create,
            &value(&pool("lan", "default", "192.0.2.0/24")),
            &Resources::default(),
            NS,
            None,
        );
        assert!(!created.allowed);
        assert!(
            created
                .message
                .contains("resource must be created in the MetalLB namespace"),
            "{}",
            created.message
        );
        let updated = review(
            Kind::IPAddressPool,
            Operation::Update,
            &value(&pool("lan", "default", "bad")),
            &Resources::default(),
            NS,
            None,
        );
        assert_eq!(
            updated,
            Verdict::allow(vec![
                "IPAddressPool/lan is not in the MetalLB namespace \"metallb-system\": MetalLB ignores it".into()
            ])
        );
    }

    #[test]
    fn an_existing_bad_object_does_not_block_unrelated_changes() {
        let existing = resources(&format!(
            "{}{}",
            pool("a", NS, "192.0.2.0/24"),
            pool("b", NS, "192.0.2.0/25")
        ));
        let v = review(
            Kind::IPAddressPool,
            Operation::Create,
            &value(&pool("c", NS, "198.51.100.0/24")),
            &existing,
            NS,
            None,
        );
        assert_eq!(v, Verdict::allow(vec![]));
    }

    #[test]
    fn every_introduced_problem_is_listed_one_per_line() {
        let v = review(
            Kind::IPAddressPool,
            Operation::Create,
            &value(&pool(
                "bad",
                NS,
                "\"192.0.2.0/33\", \"198.51.100.20-198.51.100.10\"",
            )),
            &Resources::default(),
            NS,
            None,
        );
        assert_eq!(v.message.lines().count(), 2, "{}", v.message);
        assert!(
            v.message
                .lines()
                .all(|l| l.starts_with("IPAddressPool/bad: spec.addresses["))
        );
    }

    fn peer(name: &str, extra: &str) -> String {
        format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: {name}, namespace: {NS}}}\nspec: {{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1{extra}}}\n---\n"
        )
    }

    #[test]
    fn disable_mp_warns_and_the_peer_is_still_checked() {
        let v = review(
            Kind::BGPPeer,
            Operation::Create,
            &value(&peer("p", ", disableMP: true, vrf: red")),
            &Resources::default(),
            NS,
            Some(BgpBackend::Native),
        );
        assert!(!v.allowed);
        assert_eq!(v.warnings, vec![DISABLE_MP_WARNING.to_string()]);
        assert!(v.message.contains("BGPPeer/p: spec.vrf"), "{}", v.message);
        let frr = review(
            Kind::BGPPeer,
            Operation::Create,
            &value(&peer("p", ", disableMP: true, bfdProfile: missing")),
            &Resources::default(),
            NS,
            Some(BgpBackend::Frr),
        );
        assert_eq!(
            frr,
            Verdict::allow(vec![DISABLE_MP_WARNING.to_string()]),
            "a missing BFD profile is deferred"
        );
    }

    #[test]
    fn a_bfd_profile_in_use_cannot_be_deleted() {
        let existing = resources(&format!(
            "{}{}",
            peer("a", ""),
            peer("b", ", bfdProfile: fast")
        ));
        let profile = value(&format!(
            "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {{name: fast, namespace: {NS}}}\n"
        ));
        assert_eq!(
            review(
                Kind::BFDProfile,
                Operation::Delete,
                &profile,
                &existing,
                NS,
                None
            ),
            Verdict::deny(
                "failed to delete BFDProfile fast, used by BGPPeer b",
                vec![]
            )
        );
        let unused = value(&format!(
            "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {{name: slow, namespace: {NS}}}\n"
        ));
        assert!(
            review(
                Kind::BFDProfile,
                Operation::Delete,
                &unused,
                &existing,
                NS,
                None
            )
            .allowed
        );
    }

    #[test]
    fn kinds_read_what_metallb_reads() {
        assert_eq!(
            Kind::BGPAdvertisement.needs(),
            Needs {
                bgp_advertisements: true,
                pools: true,
                nodes: true,
                ..Needs::default()
            }
        );
        assert_eq!(
            Kind::ALL.map(Kind::path),
            [
                "/validate-metallb-io-v1beta1-ipaddresspool",
                "/validate-metallb-io-v1beta1-l2advertisement",
                "/validate-metallb-io-v1beta1-bgpadvertisement",
                "/validate-metallb-io-v1beta2-bgppeer",
                "/validate-metallb-io-v1beta1-bfdprofile",
                "/validate-metallb-io-v1beta1-community",
            ]
        );
    }
}
