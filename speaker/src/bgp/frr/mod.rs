//! FRR mode (`bgpBackend: frr`): the speaker renders FRR's whole configuration from the same
//! advertisement decision the native backend runs, and has the FRR sidecar apply it.
//!
//! ```text
//!  advertise::Decision ──config::render (pure)──► frr.conf text ──► sidecar::run task
//!                                                                   │ Reloads (sans-IO): debounce,
//!                                                                   │ one reload at a time, retries
//!   /etc/frr_reloader: frr.conf ◄── written ──┘  reload (FIFO) ◄── "reload"
//!                      status ──► ok | invalid | failed ──► problem ──► core: ConfigurationState,
//!                                                                         Event on the pod
//!   /var/run/frr/{bgpd,bfdd}.vty ◄── vty::query every 5 s ──► stats ──► /metrics
//! ```
//! - [`config`]: the rendering, golden files in `testdata/`;
//! - [`reload`]: when to send and what the answers mean (sans-IO);
//! - [`sidecar`]: the shared directory and the reload task;
//! - [`vty`], [`stats`]: FRR's BGP and BFD counters for the metrics.

pub mod config;
pub mod delta;
pub mod reload;
pub mod sidecar;
pub mod stats;
pub mod vty;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::bgp::advertise::Decision;
pub use stats::FrrStats;

/// How often FRR's counters are read for the metrics.
pub const STATS_EVERY: Duration = Duration::from_secs(5);

/// Where the sidecar is and how the file is written.
#[derive(Debug, Clone)]
pub struct Options {
    /// `FRR_CONFIG_FILE`: the configuration file in the directory shared with the reloader.
    pub config_file: PathBuf,
    /// The FRR daemons' vty sockets (`/var/run/frr`).
    pub socket_dir: PathBuf,
    pub debounce: Duration,
    pub settings: config::Settings,
}

/// FRR's counters as the metrics show them, refreshed every [`STATS_EVERY`].
#[derive(Debug, Default)]
pub struct FrrMetrics {
    stats: Mutex<FrrStats>,
    /// (VRF, neighbor) → configured port: the `peer` label of a session that is down.
    ports: Mutex<BTreeMap<(String, String), u16>>,
}

impl FrrMetrics {
    pub fn snapshot(&self) -> FrrStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, stats: FrrStats) {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = stats;
    }

    /// The port of a neighbor FRR shows no connection for.
    pub fn port(&self, vrf: &str, peer: &str) -> u16 {
        self.ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(vrf.to_string(), peer.to_string()))
            .copied()
            .unwrap_or(179)
    }
}

/// The FRR backend of one speaker.
pub struct Frr {
    settings: config::Settings,
    desired: watch::Sender<sidecar::Desired>,
    problem: watch::Receiver<Option<String>>,
    metrics: Arc<FrrMetrics>,
}

impl std::fmt::Debug for Frr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frr")
            .field("problem", &*self.problem.borrow())
            .finish()
    }
}

impl Frr {
    /// Starts the reload task and the counters' reader.
    pub fn start(options: Options, metrics: Arc<FrrMetrics>) -> Self {
        let (desired, desired_rx) = watch::channel(None);
        let (problem_tx, problem) = watch::channel(None);
        tokio::spawn(sidecar::run(
            sidecar::Paths::beside(&options.config_file),
            options.debounce,
            desired_rx,
            problem_tx,
        ));
        tokio::spawn(read_stats(options.socket_dir.clone(), metrics.clone()));
        tracing::info!(
            config = %options.config_file.display(),
            sockets = %options.socket_dir.display(),
            debounce_ms = options.debounce.as_millis(),
            "BGP through FRR"
        );
        Self {
            settings: options.settings,
            desired,
            problem,
            metrics,
        }
    }

    /// Makes FRR's configuration what `decision` says (after the debounce).
    pub fn apply(&mut self, decision: &Decision) {
        let rendered = config::render(decision, &self.settings).map_err(|e| e.to_string());
        let ports = decision
            .sessions
            .values()
            .filter_map(|p| {
                let peer = p
                    .address
                    .map(|a| a.to_string())
                    .or_else(|| p.interface.clone())?;
                let vrf = p.vrf.clone().unwrap_or_else(|| "default".into());
                Some(((vrf, peer), p.port))
            })
            .collect();
        *self.metrics.ports.lock().unwrap_or_else(|e| e.into_inner()) = ports;
        self.desired.send_if_modified(|d| {
            let new = Some(rendered);
            if *d == new {
                return false;
            }
            *d = new;
            true
        });
    }

    /// Why FRR does not run the desired configuration, if it does not.
    pub fn problem(&self) -> Option<String> {
        self.problem.borrow().clone()
    }

    /// Resolves when [`Self::problem`] may have changed.
    pub async fn changed(&mut self) {
        if self.problem.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Reads FRR's BGP and BFD counters every [`STATS_EVERY`]. A daemon that is not up yet leaves
/// its part empty; failures are logged once per kind.
async fn read_stats(socket_dir: PathBuf, metrics: Arc<FrrMetrics>) {
    let bgpd = socket_dir.join("bgpd.vty");
    let bfdd = socket_dir.join("bfdd.vty");
    let mut last_error: Option<String> = None;
    loop {
        let bgp = vty::query(&bgpd, &["show bgp vrf all neighbors json"])
            .await
            .map_err(|e| e.to_string())
            .and_then(|out| stats::parse_neighbors(&out[0]).map_err(|e| e.to_string()));
        let bfd = vty::query(
            &bfdd,
            &[
                "enable",
                "show bfd peers json",
                "show bfd peers counters json",
            ],
        )
        .await
        .map_err(|e| e.to_string())
        .and_then(|out| stats::parse_bfd(&out[1], &out[2]).map_err(|e| e.to_string()));
        let error = bgp.as_ref().err().or(bfd.as_ref().err()).cloned();
        if error != last_error {
            match &error {
                Some(e) => tracing::debug!(error = e, "failed to read FRR's counters"),
                None => tracing::debug!("reading FRR's counters"),
            }
            last_error = error;
        }
        metrics.set(FrrStats {
            neighbors: bgp.unwrap_or_default(),
            bfd: bfd.unwrap_or_default(),
        });
        tokio::time::sleep(STATS_EVERY).await;
    }
}
