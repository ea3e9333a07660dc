//! The MetalLB speaker, L2 mode: makes LoadBalancer IPs reachable by answering ARP (IPv4) and
//! NDP (IPv6) from one node per IP, and moves an IP within a second when its node dies.
//!
//! ```text
//!  observe (k8s/, watchers) ──► desired announcements (announce/, pure) ──► reconcile
//!        ▲                                  ▲                                 ├─ layer2/ (ARP/NDP)
//!        │                    live speakers │                                 └─ status/ (API writes)
//!  Services, EndpointSlices,     liveness/ (SWIM gossip, sans-IO core)
//!  Nodes, metallb.io CRs         netlink (interfaces, events)
//! ```
//! `run` wires them. BGP will sit next to `layer2/`, fed by the same observers.
//! `sys` is the one module with `unsafe` code (raw sockets); every other module is safe Rust.
#![deny(unsafe_code)]

pub mod announce;
pub mod bfd;
pub mod cli;
pub mod http;
pub mod k8s;
pub mod layer2;
pub mod liveness;
pub mod logging;
pub mod metrics;
pub mod netlink;
pub mod run;
pub mod status;
mod sys;
