//! Flags and environment, as MetalLB's speaker takes them (spec §6.2), plus the L2 tuning of
//! this implementation.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use metallb_api::constants::{DEFAULT_NAMESPACE, ports};
use metallb_api::duration::GoDuration;
use metallb_runtime::logging;

/// The MetalLB speaker (L2 mode): answers ARP and NDP for LoadBalancer IPs from one node each.
#[derive(Debug, Clone, Parser)]
#[command(name = "metallb-speaker", version)]
pub struct Args {
    /// This speaker's node.
    #[arg(long, env = "METALLB_NODE_NAME")]
    pub node_name: String,
    /// The MetalLB namespace (default: the service account's namespace, else metallb-system).
    #[arg(long, env = "METALLB_NAMESPACE")]
    pub namespace: Option<String>,
    /// This speaker's pod: owner of its ServiceL2Status and ConfigurationState objects.
    #[arg(long, env = "METALLB_POD_NAME")]
    pub pod_name: Option<String>,
    /// Port of `/metrics` (plain HTTP, all addresses); 0 disables it.
    #[arg(long, default_value_t = ports::METRICS)]
    pub port: u16,
    /// Port of `/healthz` and `/readyz`, on 127.0.0.1.
    #[arg(long, default_value_t = ports::HEALTH)]
    pub health_probe_port: u16,
    /// all, debug, info, warn, error or none.
    #[arg(long, value_enum, default_value = "info")]
    pub log_level: logging::Level,
    /// json (default) or text.
    #[arg(long, value_enum, default_value = "json")]
    pub log_format: logging::Format,
    /// Only Services with this `spec.loadBalancerClass` (default: Services without one).
    #[arg(long, default_value = "")]
    pub lb_class: String,
    /// Keep nodes labelled node.kubernetes.io/exclude-from-external-load-balancers as candidates.
    #[arg(long)]
    pub ignore_exclude_lb: bool,
    /// Address the liveness gossip binds to (the pod IP, which is the node IP). Liveness is on
    /// only with `--ml-labels` too; without it every node known from the API counts as live.
    #[arg(long, env = "METALLB_ML_BIND_ADDR")]
    pub ml_bindaddr: Option<IpAddr>,
    #[arg(long, env = "METALLB_ML_BIND_PORT", default_value_t = ports::MEMBERLIST)]
    pub ml_bindport: u16,
    /// Label selector of the speaker pods, whose IPs are the gossip peers.
    #[arg(long, env = "METALLB_ML_LABELS")]
    pub ml_labels: Option<String>,
    /// Directory holding `secretkey`, the gossip's shared key.
    #[arg(long, env = "METALLB_ML_SECRET_KEY_PATH")]
    pub ml_secret_key_path: Option<PathBuf>,
    /// Slower gossip timings for speakers far apart (MetalLB's WAN memberlist profile).
    #[arg(long)]
    pub ml_wan_config: bool,
    /// Gossip probe period (Go duration).
    #[arg(long, value_parser = duration, default_value = "150ms")]
    pub ml_probe_interval: Duration,
    /// How long a suspected speaker has to answer before it is declared down.
    #[arg(long, value_parser = duration, default_value = "300ms")]
    pub ml_suspicion_timeout: Duration,
    /// Re-announce every IP this often (0: only on takeover and link up). MetalLB CR field
    /// `speakerGratuitousARPInterval`.
    #[arg(long, value_parser = duration, default_value = "0s")]
    pub gratuitous_arp_interval: Duration,
    /// On shutdown, how long to keep answering while waiting for the new owners' announcements.
    #[arg(long, value_parser = duration, default_value = "2s")]
    pub handover_timeout: Duration,
    /// The interface-exclusion file (the `metallb-excludel2` ConfigMap's key).
    #[arg(long, default_value = "/etc/metallb/excludel2.yaml")]
    pub excludel2_path: PathBuf,
    /// FRR mode: how long the first configuration change after a quiet period waits for more
    /// before FRR is reloaded, in milliseconds (MetalLB: 3000).
    #[arg(long, env = "METALLB_BGP_DEBOUNCE_TIMEOUT", default_value_t = 50)]
    pub bgp_debounce_timeout: u64,
    /// FRR mode: the configuration file, in the directory shared with the FRR reloader.
    #[arg(
        long,
        env = "FRR_CONFIG_FILE",
        default_value = "/etc/frr_reloader/frr.conf"
    )]
    pub frr_config_file: PathBuf,
    /// FRR mode: the directory of the FRR daemons' vty sockets (for FRR's metrics).
    #[arg(long, env = "FRR_SOCKET_DIR", default_value = "/var/run/frr")]
    pub frr_socket_dir: PathBuf,
    /// FRR mode: FRR's log level (`debugging`, `informational`, ...), instead of the one
    /// `--log-level` gives.
    #[arg(long, env = "FRR_LOGGING_LEVEL")]
    pub frr_logging_level: Option<String>,
    /// Accepted for compatibility with MetalLB's manifests; unused.
    #[arg(long, env = "METALLB_HOST", hide = true)]
    pub host: Option<String>,
    /// Accepted for compatibility with MetalLB's manifests; unused.
    #[arg(long, hide = true)]
    pub pprof_bind_address: Option<String>,
}

fn duration(text: &str) -> Result<Duration, String> {
    let d = GoDuration::parse(text).map_err(|e| e.to_string())?;
    d.as_std()
        .ok_or_else(|| format!("{text}: negative durations are not allowed"))
}

const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

impl Args {
    /// `--namespace`, else the service account's namespace, else the default.
    pub fn namespace(&self) -> String {
        self.namespace
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| {
                std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
    }

    /// Liveness gossip is on when both the bind address and the pod labels are given
    /// (MetalLB's rule).
    pub fn liveness_enabled(&self) -> bool {
        self.ml_bindaddr.is_some() && self.ml_labels.as_deref().is_some_and(|l| !l.is_empty())
    }

    pub fn lb_class(&self) -> Option<&str> {
        Some(self.lb_class.as_str()).filter(|c| !c.is_empty())
    }

    /// What the FRR backend needs (FRR mode).
    pub fn frr_options(&self) -> crate::bgp::frr::Options {
        use crate::bgp::frr::config;
        crate::bgp::frr::Options {
            config_file: self.frr_config_file.clone(),
            socket_dir: self.frr_socket_dir.clone(),
            debounce: Duration::from_millis(self.bgp_debounce_timeout),
            settings: config::Settings {
                hostname: config::hostname(&self.node_name),
                log_level: self
                    .frr_logging_level
                    .clone()
                    .filter(|l| !l.is_empty())
                    .unwrap_or_else(|| config::log_level(self.log_level).to_string()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn metallbs_speaker_flags_parse() {
        let args = Args::try_parse_from([
            "speaker",
            "--node-name=node-1",
            "--port=7472",
            "--log-level=debug",
            "--lb-class=metallb",
            "--ml-bindaddr=192.0.2.11",
            "--ml-labels=app=metallb,component=speaker",
            "--ml-secret-key-path=/etc/ml_secret_key",
            "--gratuitous-arp-interval=30s",
            "--host=192.0.2.11",
        ])
        .unwrap();
        assert_eq!(args.node_name, "node-1");
        assert_eq!(args.port, 7472);
        assert_eq!(args.health_probe_port, 17472);
        assert_eq!(args.ml_bindport, 7946);
        assert_eq!(args.lb_class(), Some("metallb"));
        assert!(args.liveness_enabled());
        assert_eq!(args.gratuitous_arp_interval, Duration::from_secs(30));
        assert_eq!(args.ml_probe_interval, Duration::from_millis(150));
        assert_eq!(args.namespace(), "metallb-system".to_string());
    }

    #[test]
    fn liveness_needs_both_address_and_labels() {
        let args =
            Args::try_parse_from(["speaker", "--node-name=n", "--ml-bindaddr=192.0.2.11"]).unwrap();
        assert!(!args.liveness_enabled());
        assert_eq!(args.lb_class(), None);
    }

    #[test]
    fn the_node_name_is_required() {
        let err = Args::try_parse_from(["speaker"]).unwrap_err();
        assert!(err.to_string().contains("--node-name"), "{err}");
    }
}
