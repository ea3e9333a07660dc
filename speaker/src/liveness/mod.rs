//! Liveness among speakers: which speakers are alive, learnt within well under a second.
//!
//! The speakers gossip over UDP on the node network with SWIM (the `foca` crate, sans-IO): each
//! probes one peer per period, asks others to probe indirectly when a probe goes unanswered,
//! suspects, then declares down, and spreads what it learns on every message. Every datagram is
//! authenticated with HMAC-SHA256 ([`wire`]).
//!
//! ```text
//!  pods (API) ──set_peers──┐
//!  datagrams ──on_datagram─┼─► Membership (foca + join/isolation rules) ──► Send, Schedule
//!  timers ─────on_timer────┤                                  └──────────► live(now): node names
//!  link up ────on_link_up──┘
//! ```
//! [`Membership`] is the pure core (events and time in, actions out), tested by simulation;
//! [`driver`] runs it on a socket and a timer wheel.
//!
//! Rules on top of SWIM, so that one IP has one answering node while speakers can talk:
//! - a peer counts as live as soon as it is up in the gossip: a returning peer is taken into
//!   account at once, so the node that held its IPs lets go immediately;
//! - this speaker counts itself live only after it has been connected for `self_settle`: the
//!   others see it before it claims anything, so a move back after a rejoin leaves a short gap,
//!   never two answering nodes;
//! - a speaker with peers but no connection counts itself live only after `isolation_grace`
//!   (all the others may really be gone); a link coming back up restarts that grace, so a node
//!   whose cable was pulled does not claim every IP the moment it is plugged back in.

pub mod driver;
mod identity;
mod membership;
pub mod wire;

#[cfg(test)]
mod tests;

pub use identity::Member;
pub use membership::{Membership, Output, Tuning};
