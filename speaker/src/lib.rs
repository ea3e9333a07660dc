//! The MetalLB speaker, L2 mode: makes LoadBalancer IPs reachable by answering ARP (IPv4) and
//! NDP (IPv6) from one node per IP, and moves an IP within a second when its node dies.
//!
//! ```text
//!  observe (k8s/, netlink, liveness/) ──► core (pure: parse, announce::decide, plans) ──► output
//!        ▲                                                                   ├─ layer2/ driver (ARP/NDP)
//!  Services, EndpointSlices, Nodes,                                          ├─ writer (every API write)
//!  metallb.io CRs, links, live speakers                                      └─ metrics
//! ```
//! `run` wires them; `core` decides; `writer` is the only task that writes to the API. BGP will
//! sit next to `layer2/`, fed by the same core.
//! `sys` is the one module with `unsafe` code (raw sockets); every other module is safe Rust.
#![deny(unsafe_code)]

pub mod announce;
pub mod bfd;
pub mod bgp;
pub mod cli;
pub mod core;
mod events;
pub mod k8s;
pub mod layer2;
pub mod liveness;
pub mod metrics;
pub mod netlink;
pub mod run;
pub mod status;
mod sys;
pub mod writer;
