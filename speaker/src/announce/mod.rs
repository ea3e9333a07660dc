//! Who announces what: the L2 election (spec §3.1–§3.2), pure.
//!
//! Every speaker runs [`decide`] on the same inputs (the validated configuration, the
//! LoadBalancer Services with their endpoints, the Nodes, and the set of live speakers) and
//! gets the same winner for every IP; each then announces what it won. This module needs no
//! Kubernetes client, no socket and no clock.
//!
//! ```text
//!  Config (api::config::parse) ─┐
//!  Services + endpoints ────────┼─► per Service: eligible? candidates ─► groups (shared IPs) ─► winner
//!  Nodes, live speakers ────────┘                                                                │
//!                                          Decision: per Service, Announced{node, ips, interfaces} ◄┘
//!                                                    or NotAnnounced(reason)
//! ```
//!
//! The rules, in order (MetalLB's `layer2_controller.go: ShouldAnnounce`, and our decisions):
//! 1. The Service's IPs must all belong to one pool.
//! 2. It needs a serving endpoint somewhere (ready unset or true, or serving true).
//! 3. The advertisements that apply are the pool's L2Advertisements whose serviceSelectors are
//!    empty or match the Service's labels; none → not announced.
//! 4. A Service with `allow-shared-ip` and an applicable advertisement with serviceSelectors is
//!    not announced (MetalLB's rule: the selectors could split one IP between nodes).
//! 5. Candidates: live speakers, minus nodes with `NetworkUnavailable=True`, minus nodes labelled
//!    `node.kubernetes.io/exclude-from-external-load-balancers` (unless told to ignore it), kept
//!    only if an applicable advertisement selects them; with `externalTrafficPolicy: Local`,
//!    only nodes with a local serving endpoint.
//! 6. Services that share an IP are elected together (see [`group_services`]).
//! 7. The winner: highest summed preferred-node weight first, then the lowest
//!    `sha256(node + "#" + ip)` where `ip` is the first ingress IP — MetalLB's exact rule, so the
//!    owner of an IP is the node a MetalLB user would expect.

mod election;
mod model;

#[cfg(test)]
mod tests;

pub use election::{decide, winner};
pub use model::*;
