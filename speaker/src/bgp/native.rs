//! The native backend: one [`driver`] task per BGP session of this node, kept equal to what
//! [`advertise::decide`] says (sessions started, restarted on a configuration change, stopped
//! when their BGPPeer goes; routes sent when they change).
//!
//! ```text
//!  advertise::Decision ──apply──► per BGPPeer: PeerConfig::from_peer ─┬─ new ─────► driver::spawn
//!                                                                    ├─ changed ─► stop, spawn
//!                                                                    └─ routes ──► SetRoutes
//!  gone from the Decision ──► stop (Cease / Peer De-configured)
//!  shutdown ──► stop (graceful restart negotiated: close silently, so routers keep the routes)
//! ```

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use tokio::sync::watch;

use super::advertise;
use super::driver::{self, Command, Handle, NodeFacts, PeerConfig, Status, TcpConnector};
use super::session::{Route, StopMode};

/// The live status of every session, by `peer` label (`address:port`), for metrics.
#[derive(Debug, Default)]
pub struct Sessions(Mutex<BTreeMap<String, watch::Receiver<Status>>>);

impl Sessions {
    /// The latest status of each session.
    pub fn snapshot(&self) -> BTreeMap<String, Status> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .map(|(k, rx)| (k.clone(), rx.borrow().clone()))
            .collect()
    }

    fn set(&self, label: String, status: Option<watch::Receiver<Status>>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match status {
            Some(rx) => map.insert(label, rx),
            None => map.remove(&label),
        };
    }
}

struct Running {
    config: PeerConfig,
    routes: BTreeMap<IpNet, Route>,
    handle: Handle,
}

impl Running {
    fn label(&self) -> String {
        self.config.remote.to_string()
    }
}

/// The sessions of this node.
pub struct Native {
    node: String,
    seed: u64,
    /// No session has been started yet: the first ones announce the graceful-restart R bit.
    starting: bool,
    running: BTreeMap<String, Running>,
    /// Why a BGPPeer cannot run, as last logged.
    refused: BTreeMap<String, String>,
    sessions: Arc<Sessions>,
}

impl std::fmt::Debug for Native {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Native")
            .field("sessions", &self.running.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Native {
    pub fn new(node: &str, seed: u64, sessions: Arc<Sessions>) -> Self {
        Self {
            node: node.to_string(),
            seed,
            starting: true,
            running: BTreeMap::new(),
            refused: BTreeMap::new(),
            sessions,
        }
    }

    /// Makes the running sessions and their routes what `decision` says.
    pub async fn apply(&mut self, decision: &advertise::Decision) {
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|name| !decision.sessions.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            tracing::info!(
                peer = name,
                "BGP session no longer configured for this node: stopping"
            );
            self.stop_one(&name, StopMode::Deconfigured).await;
        }
        self.refused
            .retain(|name, _| decision.sessions.contains_key(name));
        let facts = NodeFacts {
            router_id_fallback: router_id_fallback(&self.node),
            restarted: self.starting,
            jitter_seed: self.seed,
        };
        for (name, peer) in &decision.sessions {
            let routes = decision.routes.get(name).cloned().unwrap_or_default();
            let config = match PeerConfig::from_peer(peer, facts) {
                Ok(c) => {
                    self.refused.remove(name);
                    c
                }
                Err(e) => {
                    let why = e.to_string();
                    if self.refused.get(name) != Some(&why) {
                        tracing::error!(peer = name, error = %why, "BGP session not started");
                        self.refused.insert(name.clone(), why);
                    }
                    self.stop_one(name, StopMode::Deconfigured).await;
                    continue;
                }
            };
            let same = self
                .running
                .get(name)
                .is_some_and(|r| same_session(&r.config, &config));
            if !same {
                if self.running.contains_key(name) {
                    tracing::info!(peer = name, "BGPPeer changed: restarting its session");
                    self.stop_one(name, StopMode::Deconfigured).await;
                }
                let handle = driver::spawn(config.clone(), TcpConnector);
                let run = Running {
                    config,
                    routes: BTreeMap::new(),
                    handle,
                };
                self.sessions
                    .set(run.label(), Some(run.handle.status.clone()));
                tracing::info!(peer = name, remote = %run.label(), "BGP session started");
                self.running.insert(name.clone(), run);
            }
            let run = self.running.get_mut(name).expect("just ensured");
            if run.routes != routes {
                run.routes = routes.clone();
                if run
                    .handle
                    .commands
                    .send(Command::SetRoutes(routes))
                    .await
                    .is_err()
                {
                    tracing::warn!(peer = name, "BGP session task ended unexpectedly");
                }
            }
        }
        if !self.running.is_empty() {
            self.starting = false;
        }
    }

    async fn stop_one(&mut self, name: &str, mode: StopMode) {
        if let Some(run) = self.running.remove(name) {
            self.sessions.set(run.label(), None);
            run.handle.stop(mode).await;
        }
    }

    /// Stops every session for a speaker shutdown: sessions with graceful restart close without
    /// a NOTIFICATION (routers keep forwarding to this node while it restarts), the others
    /// with Cease / Administrative Shutdown.
    pub async fn shutdown(mut self) {
        let names: Vec<String> = self.running.keys().cloned().collect();
        let stops = names.into_iter().filter_map(|name| {
            let run = self.running.remove(&name)?;
            self.sessions.set(run.label(), None);
            let mode = if run.config.session.graceful_restart.is_some() {
                StopMode::Restart
            } else {
                StopMode::Shutdown
            };
            Some(run.handle.stop(mode))
        });
        futures::future::join_all(stops).await;
    }
}

/// Whether two configurations describe the same session: the R bit of a graceful restart and
/// the jitter seed are facts of when the session started, not of the BGPPeer.
fn same_session(a: &PeerConfig, b: &PeerConfig) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    for c in [&mut a, &mut b] {
        if let Some(gr) = c.session.graceful_restart.as_mut() {
            gr.restarted = false;
        }
    }
    a == b
}

/// MetalLB's BGP identifier when no IPv4 address gives one: the CRC-32 (IEEE) of the node
/// name, as an IPv4 address.
pub fn router_id_fallback(node: &str) -> Ipv4Addr {
    let mut crc: u32 = !0;
    for byte in node.bytes() {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    Ipv4Addr::from(!crc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_router_id_is_the_crc32_of_the_node_name() {
        // CRC-32 (IEEE) of "123456789" is 0xCBF43926, the standard check value.
        assert_eq!(
            router_id_fallback("123456789"),
            Ipv4Addr::from(0xCBF4_3926u32)
        );
        assert_eq!(router_id_fallback(""), Ipv4Addr::UNSPECIFIED);
    }
}
