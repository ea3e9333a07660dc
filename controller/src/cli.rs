//! Flags and environment, as MetalLB's controller takes them (`shared/spec/metallb.md` §6.1)
//! where they make sense, plus the few this implementation adds (marked "metallb-rs").

use std::time::Duration;

use clap::{Parser, ValueEnum};
use metallb_api::config::BgpBackend;
use metallb_api::constants::{self, names, ports};
use metallb_api::duration::GoDuration;
use metallb_runtime::logging;

/// `--webhook-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WebhookMode {
    /// Allocation and webhooks.
    Enabled,
    /// Allocation only; no webhook server, no certificate management.
    Disabled,
    /// Webhooks (and their certificate) only; no allocation.
    Onlywebhook,
}

impl WebhookMode {
    pub fn webhooks(self) -> bool {
        self != Self::Disabled
    }
    pub fn allocation(self) -> bool {
        self != Self::Onlywebhook
    }
}

/// `--tls-min-version`, in Go's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsVersion {
    #[value(name = "VersionTLS12")]
    Tls12,
    #[value(name = "VersionTLS13")]
    Tls13,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "metallb-controller",
    version,
    about = "Assigns IPs to Services of type LoadBalancer and serves the metallb.io webhooks"
)]
pub struct Args {
    /// The MetalLB namespace: where the configuration, the webhook Secret and the Lease live.
    /// Default: the ServiceAccount's namespace, else metallb-system.
    #[arg(long, env = "METALLB_NAMESPACE")]
    pub namespace: Option<String>,

    /// This pod's name: owner of the ConfigurationState, identity in the Lease.
    #[arg(long, env = "METALLB_POD_NAME")]
    pub pod_name: Option<String>,

    /// The controller Deployment, owner of the memberlist Secret.
    #[arg(long, env = "METALLB_DEPLOYMENT", default_value = names::CONTROLLER_DEPLOYMENT)]
    pub deployment: String,

    /// The speakers' memberlist Secret, created with a random key if missing; empty: none.
    #[arg(long, env = "METALLB_ML_SECRET_NAME", default_value = "")]
    pub ml_secret_name: String,

    /// The BGP backend the configuration is validated for (native or frr); unset: the rules
    /// common to both.
    #[arg(long = "bgp-backend", env = "METALLB_BGP_TYPE", value_parser = BgpBackend::parse)]
    pub bgp_backend: Option<BgpBackend>,

    #[arg(long, value_enum, default_value = "info")]
    pub log_level: logging::Level,

    /// (metallb-rs) json (MetalLB's) or text.
    #[arg(long, value_enum, default_value = "json")]
    pub log_format: logging::Format,

    /// Handle only Services of this loadBalancerClass; empty: Services without a class.
    #[arg(long, default_value = "")]
    pub lb_class: String,

    /// Port of /metrics (plain HTTP); 0 disables it.
    #[arg(long, default_value_t = ports::METRICS)]
    pub port: u16,

    /// Port of /healthz and /readyz.
    #[arg(long, default_value_t = ports::HEALTH)]
    pub health_probe_port: u16,

    #[arg(long, value_enum, default_value = "enabled")]
    pub webhook_mode: WebhookMode,

    /// (metallb-rs) Port of the HTTPS webhook server.
    #[arg(long, default_value_t = ports::WEBHOOK)]
    pub webhook_port: u16,

    /// Do not create or rotate the webhook certificate; serve what the Secret holds.
    #[arg(long)]
    pub disable_cert_rotation: bool,

    /// Where the serving certificate is also written (tls.crt, tls.key), as MetalLB does.
    #[arg(long, default_value = "/tmp/k8s-webhook-server/serving-certs")]
    pub cert_dir: String,

    /// The webhook Service: the certificate is for `<name>.<namespace>.svc`.
    #[arg(long, default_value = names::WEBHOOK_SERVICE)]
    pub cert_service_name: String,

    /// The Secret holding the webhook CA and serving certificate.
    #[arg(long, default_value = names::WEBHOOK_SECRET)]
    pub webhook_secret: String,

    /// (metallb-rs) The ValidatingWebhookConfiguration that gets the CA bundle.
    #[arg(long, default_value = names::WEBHOOK_CONFIGURATION)]
    pub webhook_configuration: String,

    /// (metallb-rs) How long a serving certificate is valid; it is renewed when a third of
    /// that is left. The CA lives ten times longer.
    #[arg(long, default_value = "8760h", value_parser = parse_duration)]
    pub cert_validity: Duration,

    /// Minimum TLS version of the webhook server.
    #[arg(long, value_enum, default_value = "VersionTLS13")]
    pub tls_min_version: TlsVersion,

    /// (metallb-rs) How long a leader's Lease lasts without renewal.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// (metallb-rs) A leader that could not renew its Lease for this long stops writing.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub lease_renew_deadline: Duration,

    /// (metallb-rs) How often the Lease is renewed or its acquisition retried.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub lease_retry_period: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = GoDuration::parse(text).map_err(|e| e.to_string())?;
    u64::try_from(d.nanos)
        .map(Duration::from_nanos)
        .map_err(|_| format!("duration {text:?} must not be negative"))
}

const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

impl Args {
    /// `--lb-class`, with the empty default meaning "Services without a class".
    pub fn lb_class(&self) -> Option<String> {
        Some(self.lb_class.clone()).filter(|c| !c.is_empty())
    }

    /// `--namespace`, else the ServiceAccount's namespace, else `metallb-system`.
    pub fn namespace(&self) -> String {
        if let Some(ns) = self.namespace.as_deref().filter(|n| !n.is_empty()) {
            return ns.to_string();
        }
        std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| constants::DEFAULT_NAMESPACE.to_string())
    }

    /// This replica's identity: the pod name, else the host name and process id.
    pub fn identity(&self) -> String {
        self.pod_name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "controller".into());
                format!("{host}-{}", std::process::id())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_metallb() {
        let args = Args::try_parse_from(["metallb-controller"]).unwrap();
        assert_eq!(args.port, 9120);
        assert_eq!(args.health_probe_port, 17472);
        assert_eq!(args.webhook_port, 9443);
        assert_eq!(args.webhook_mode, WebhookMode::Enabled);
        assert_eq!(args.cert_dir, "/tmp/k8s-webhook-server/serving-certs");
        assert_eq!(args.cert_service_name, "metallb-webhook-service");
        assert_eq!(args.webhook_secret, "metallb-webhook-cert");
        assert_eq!(args.lb_class(), None, "Services without a class");
        assert_eq!(args.log_level, logging::Level::Info);
        assert_eq!(args.log_format, logging::Format::Json);
        assert_eq!(args.tls_min_version, TlsVersion::Tls13);
        assert_eq!(args.cert_validity, Duration::from_secs(365 * 24 * 3600));
    }

    #[test]
    fn durations_and_modes_parse_in_metallb_spelling() {
        let args = Args::try_parse_from([
            "metallb-controller",
            "--webhook-mode=onlywebhook",
            "--cert-validity=90s",
            "--tls-min-version=VersionTLS12",
            "--bgp-backend=frr",
            "--log-level=debug",
        ])
        .unwrap();
        assert!(args.webhook_mode.webhooks() && !args.webhook_mode.allocation());
        assert_eq!(args.cert_validity, Duration::from_secs(90));
        assert_eq!(args.tls_min_version, TlsVersion::Tls12);
        assert_eq!(args.bgp_backend, Some(BgpBackend::Frr));
        assert_eq!(args.log_level, logging::Level::Debug);
        let classed =
            Args::try_parse_from(["metallb-controller", "--lb-class=example.com/lb"]).unwrap();
        assert_eq!(classed.lb_class().as_deref(), Some("example.com/lb"));
        let err = Args::try_parse_from(["metallb-controller", "--bgp-backend=frr-k8s"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("frr-k8s modes are not offered"), "{err}");
    }
}
