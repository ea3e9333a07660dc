//! The rules, one module per kind. Each kind's parser reads its own custom resources once, pushes
//! problems into the shared [`Cx`] and returns the objects that passed, as validated types;
//! nothing here stops at the first problem, so a user sees every mistake at once. Problems that
//! MetalLB would also report use MetalLB's wording where it is clear.
//!
//! ```text
//!  Resources ─┬─► bfd ──────────────────► BfdProfile ───────┐
//!             ├─► peers (+ Secrets) ─────► Peer ─────────────┤
//!             ├─► communities ───────────► aliases ──────────┤
//!             ├─► pools (+ Namespaces) ──► Pool ─────────────┤
//!             ├─► l2 (+ Nodes) ──────────► L2Advertisement ──┤  attached to the pools they
//!             └─► bgp_advertisements ────► BgpAdvertisement ─┤  select (pools.rs decides which)
//!                   (+ Nodes, aliases)                       ▼
//!                          Validated ──► cross-object and backend rules (native | frr) ──► problems
//!                              └───────► Config, when there is no error
//! ```
//!
//! Only the metadata check and the kind parsers read the custom resources (an advertisement's
//! parser also reads the pools' names and labels, to select them: [`pools::pools_for_advertisement`]
//! is the one pool selection). The cross-object rule (BFD echo with IPv6 pools) and the backend
//! rules ([`backend`]) take the validated objects ([`Validated`]): a backend rule therefore speaks
//! about objects that passed the common rules, and a broken object is reported for its own
//! problems first. When a later rule needs a fact the validated types drop, the fact is added to
//! the validated type rather than the rule re-reading the object. Inputs that are not MetalLB objects (Nodes and
//! their labels) may be read by any step.

mod backend;
mod bfd;
mod bgp_advertisements;
mod communities;
mod l2;
mod peers;
mod pools;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Resource;

use super::types::*;
use super::{Outcome, ParseOptions, Problem, References, Resources, Severity};
use crate::selector::Selector;

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
    let nodes = node_labels(res);
    let bfd_profiles = bfd::profiles(&mut cx, &res.bfd_profiles);
    let peers = peers::peers(&mut cx, res);
    let aliases = communities::aliases(&mut cx, &res.communities);
    let mut pools = pools::pools(&mut cx, res);
    l2::attach(&mut cx, res, &nodes, &mut pools);
    bgp_advertisements::attach(&mut cx, res, &nodes, &mut pools, &aliases);
    let validated = Validated {
        pools,
        peers,
        bfd_profiles,
        bgp_extras: res.bgp_extras.clone().unwrap_or_default(),
    };
    bgp_advertisements::check_bfd_echo_with_ipv6(&mut cx, &validated);
    if let Some(backend) = opts.backend {
        backend::check(&mut cx, &validated, &nodes, backend);
    }

    let ok = !cx.problems.iter().any(|p| p.severity == Severity::Error);
    let config = ok.then(|| validated.into_config());
    Outcome {
        config,
        problems: cx.problems,
    }
}

/// Every object that passed its kind's rules, in the order given (each name once, the first one
/// kept), with the facts the later rules need to point at what the user wrote.
struct Validated {
    /// With their advertisements attached.
    pools: Vec<Pool>,
    peers: Vec<Peer>,
    bfd_profiles: Vec<BfdProfile>,
    bgp_extras: String,
}

impl Validated {
    fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter()
    }

    fn into_config(self) -> Config {
        Config {
            pools: self
                .pools
                .into_iter()
                .map(|p| (p.name.clone(), p))
                .collect(),
            peers: self
                .peers
                .into_iter()
                .map(|p| (p.name.clone(), p))
                .collect(),
            bfd_profiles: self
                .bfd_profiles
                .into_iter()
                .map(|b| (b.name.clone(), b))
                .collect(),
            bgp_extras: self.bgp_extras,
        }
    }
}

/// The parse context: the options, and the problems found so far.
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

    /// A mark to pass to [`Cx::errors_since`].
    fn mark(&self) -> usize {
        self.problems.len()
    }

    /// Whether an error was found since `mark`: the object being parsed is then left out.
    fn errors_since(&self, mark: usize) -> bool {
        self.problems[mark..]
            .iter()
            .any(|p| p.severity == Severity::Error)
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

// ---------------------------------------------------------------------------------------------
// Names and labels

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

/// Every named Node with its labels: the nodes advertisements and peers select from.
type NodeLabels = [(String, BTreeMap<String, String>)];

fn node_labels(res: &Resources) -> Vec<(String, BTreeMap<String, String>)> {
    res.nodes
        .iter()
        .filter_map(|n| Some((n.metadata.name.clone()?, labels_of(&n.metadata))))
        .collect()
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

/// The Nodes any selector matches (an empty selector list matches all).
fn selected_nodes(selectors: &[Selector], nodes: &NodeLabels) -> BTreeSet<String> {
    selected_names(selectors, nodes.iter().map(|(n, l)| (n, l)))
}
