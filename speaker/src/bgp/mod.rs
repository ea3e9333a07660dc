//! BGP, native backend: the protocol, sans-IO, and the task that runs one session.
//!
//! ```text
//!  message/  typed BGP messages, encoder, streaming decoder (errors name their NOTIFICATION)
//!  session/  one session's state machine and Adj-RIB-Out: events and time in, actions out
//!  driver    a session on TCP (tokio): connect with source, TTL, TCP-MD5; commands in, status out
//! ```
//! Nothing here needs a Kubernetes client or a metrics registry: the caller decides which
//! sessions exist and what each advertises (`Command::SetRoutes`), and turns `Status` into
//! metrics, Events and status objects. The TCP-MD5 socket option lives in `crate::sys`, the one
//! module with `unsafe` code.
//!
//! Checked against a real FRR with the `bgp_frr` example (network namespaces, run as root).

pub mod advertise;
pub mod driver;
pub mod frr;
pub mod message;
pub mod native;
pub mod session;
