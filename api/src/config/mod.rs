//! The one parser and validator of MetalLB configuration.
//!
//! [`parse`] takes every MetalLB object of a namespace (plus the Nodes, Namespaces and Secrets they
//! refer to) and returns either a validated [`Config`] or the list of [`Problem`]s, each naming the
//! kind, the object, the field and the reason. The webhooks, the controller, the speaker, the
//! operator's migration and the offline `validate` command all call it; no rule is written twice.
//! After `parse`, nothing reads the raw custom resources again.
//!
//! ```text
//!  Resources (CRs, Nodes, Namespaces, Secrets) ──parse(options)──► Config  (pools with their
//!                                                   │              advertisements, peers, BFD)
//!                                                   └────────────► Vec<Problem>
//! ```
//!
//! The rules live in `parse/`, one module per kind, and the rules of one BGP backend
//! (`ParseOptions::backend`) in `parse/backend.rs`, run on the validated objects.
//! The rules follow MetalLB (`internal/config`): the reference is `shared/spec/metallb.md` §5.
//! Where we decided differently from MetalLB, the rule says so in a comment starting with
//! "Decision:".

mod parse;
mod problem;
mod types;

pub use parse::parse;
pub use problem::{Problem, ProblemClass, Severity};
pub use types::*;

use k8s_openapi::api::core::v1::{Namespace, Node, Secret};

use crate::{v1beta1, v1beta2};

/// The BGP implementation the configuration is for: some fields exist only in one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BgpBackend {
    /// The built-in Rust BGP speaker: IPv4 and IPv6, no VRF, no unnumbered peers.
    Native,
    /// FRR driven by the speaker: the full MetalLB feature set.
    Frr,
}

impl BgpBackend {
    /// Parses `native` or `frr`; anything else gets a message naming the supported values.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "native" => Ok(Self::Native),
            "frr" => Ok(Self::Frr),
            other => Err(format!(
                "unsupported BGP backend {other:?}: supported values are \"native\" and \"frr\" \
                 (MetalLB's frr-k8s modes are not offered by metallb-rs)"
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Frr => "frr",
        }
    }
}

/// How references to other objects (a peer's BFD profile and password Secret, a community alias)
/// are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum References {
    /// A missing referenced object is a problem (runtime, and the offline `validate` command).
    Resolve,
    /// A missing referenced object is accepted: the object may simply be created later. The
    /// admission webhooks use this so that `kubectl apply -f dir/` works in any order; the
    /// runtime parse reports what is still missing in the ConfigurationState.
    Defer,
}

/// What [`parse`] needs to know besides the objects.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// The MetalLB namespace: objects elsewhere are rejected.
    pub namespace: String,
    /// The backend to check backend-specific rules for; `None` checks only the common rules, as
    /// MetalLB does when `METALLB_BGP_TYPE` is unset.
    pub backend: Option<BgpBackend>,
    pub references: References,
}

impl ParseOptions {
    pub fn new(namespace: impl Into<String>, backend: Option<BgpBackend>) -> Self {
        Self {
            namespace: namespace.into(),
            backend,
            references: References::Resolve,
        }
    }
}

/// Every input of [`parse`]. Objects are taken as they are; their order is kept in messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub pools: Vec<v1beta1::IPAddressPool>,
    pub l2_advertisements: Vec<v1beta1::L2Advertisement>,
    pub bgp_advertisements: Vec<v1beta1::BGPAdvertisement>,
    pub peers: Vec<v1beta2::BGPPeer>,
    pub bfd_profiles: Vec<v1beta1::BFDProfile>,
    pub communities: Vec<v1beta1::Community>,
    pub secrets: Vec<Secret>,
    pub nodes: Vec<Node>,
    pub namespaces: Vec<Namespace>,
    /// The `extras` key of the `bgpextras` ConfigMap: raw FRR configuration appended verbatim.
    pub bgp_extras: Option<String>,
}

/// The result of [`parse`]: a configuration when there is no error, and every problem found
/// (errors, and warnings that do not stop the configuration from being used).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub config: Option<Config>,
    pub problems: Vec<Problem>,
}

impl Outcome {
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Warning)
    }

    /// The configuration, or the errors joined one per line.
    pub fn into_result(self) -> Result<Config, Vec<Problem>> {
        match self.config {
            Some(c) => Ok(c),
            None => Err(self
                .problems
                .into_iter()
                .filter(|p| p.severity == Severity::Error)
                .collect()),
        }
    }
}

#[cfg(test)]
mod tests;
