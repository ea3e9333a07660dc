//! The MetalLB speaker, L2 mode: makes LoadBalancer IPs reachable by answering ARP (IPv4) and
//! NDP (IPv6) from one node per IP, and moves an IP within a second when its node dies.
//!
//! ```text
//!  observe (k8s/, watchers) ──► desired announcements (announce/, pure) ──► reconcile
//!        ▲                                  ▲                                 ├─ layer2/ (ARP/NDP)
//!        │                    live speakers │                                 └─ status/ (API writes)
//!  Services, EndpointSlices,     liveness/ (SWIM gossip, sans-IO core)
//!  Nodes, metallb.io CRs         netlink/ (interfaces, events)
//! ```
//! `sys` is the one module with `unsafe` code (raw sockets); every other module is safe Rust.
#![deny(unsafe_code)]

pub mod announce;
pub mod layer2;
pub mod liveness;
