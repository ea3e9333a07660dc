//! `metallb.io/v1beta1`: every MetalLB kind, as MetalLB defines it (field names, optionality,
//! printer columns), plus the operator's `MetalLB` CR. `BGPPeer` v1beta1 is the deprecated served
//! version; `v1beta2` is stored.
//!
//! Every field is optional on the Rust side and skipped when absent, so reading a user's YAML and
//! writing it back keeps exactly what was there. Required fields, defaults, ranges and CEL rules
//! live in the generated CRD schema (see [`crate::crd`]), which the API server enforces and the
//! offline `validate` command checks with the same schema.

// Several `printcolumn(...)` arguments of kube's derive repeat `type_ = "string"`; clippy reads
// them as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

mod bfdprofile;
mod bgpadvertisement;
mod bgppeer;
mod community;
mod configurationstate;
mod ipaddresspool;
mod l2advertisement;
mod metallb;
mod servicestatus;

pub use bfdprofile::*;
pub use bgpadvertisement::*;
pub use bgppeer::*;
pub use community::*;
pub use configurationstate::*;
pub use ipaddresspool::*;
pub use l2advertisement::*;
pub use metallb::*;
pub use servicestatus::*;
