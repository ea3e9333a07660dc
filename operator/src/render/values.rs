//! The values the templates see, computed from the MetalLB spec: defaults filled in, user values
//! merged with the operator's own (node selectors, tolerations), everything the templates need
//! present (strict mode refuses a missing field).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use serde::Serialize;

use metallb_api::constants::{SUPPORTED_BGP_BACKENDS, images, names, ports};
use metallb_api::v1beta1::{Config, MetalLBSpec};

/// The images the operator deploys (from its environment, defaulting to its own release).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Images {
    pub controller: String,
    pub speaker: String,
    pub frr: String,
}

impl Images {
    /// `CONTROLLER_IMAGE`, `SPEAKER_IMAGE`, `FRR_IMAGE`, or the release's own images.
    pub fn from_env() -> Self {
        let var = |name: &str, default: String| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or(default)
        };
        let release = Self::release();
        Self {
            controller: var("CONTROLLER_IMAGE", release.controller),
            speaker: var("SPEAKER_IMAGE", release.speaker),
            frr: var("FRR_IMAGE", release.frr),
        }
    }

    /// The release's own images: by default the tags of this version; a build made by
    /// hack/images.sh names the controller and speaker images it was built with, by digest
    /// (`METALLB_RELEASE_CONTROLLER_IMAGE`, `METALLB_RELEASE_SPEAKER_IMAGE` at compile time;
    /// docs/release.md).
    ///
    /// Read here rather than in `metallb_api`: only the operator deploys images, and a variable
    /// read by the shared crate would rebuild the controller and the speaker whenever it changes.
    pub fn release() -> Self {
        Self {
            controller: option_env!("METALLB_RELEASE_CONTROLLER_IMAGE")
                .map_or_else(images::controller, str::to_owned),
            speaker: option_env!("METALLB_RELEASE_SPEAKER_IMAGE")
                .map_or_else(images::speaker, str::to_owned),
            frr: images::FRR.to_string(),
        }
    }
}

/// Pod-level settings of one component.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub priority_class_name: String,
    pub runtime_class_name: String,
    pub affinity: Option<Affinity>,
    pub annotations: BTreeMap<String, String>,
    pub resources: Option<ResourceRequirements>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ports {
    pub webhook: u16,
    pub metrics: u16,
    pub health: u16,
    pub memberlist: u16,
}

/// Everything the templates read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Values {
    pub namespace: String,
    pub version: String,
    pub images: Images,
    pub log_level: String,
    pub frr_log_level: String,
    pub load_balancer_class: String,
    pub bgp_backend: String,
    pub frr: bool,
    /// On every object: what it is, who manages it, and which MetalLB resource it belongs to
    /// (the prune and cleanup steps select on these).
    pub labels: BTreeMap<String, String>,
    /// The immutable part, on pod templates and selectors.
    pub selector_labels: BTreeMap<String, String>,
    pub controller: Pod,
    pub speaker: Pod,
    pub gratuitous_arp_interval: String,
    pub speaker_grace_period: u32,
    pub ports: Ports,
}

/// The label naming the MetalLB resource an object belongs to: `<namespace>.<name>`.
pub const OWNER_LABEL: &str = "metallb.io/owner";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "metallb-operator";

/// How long a speaker may take to hand its IPs over before it is killed.
const SPEAKER_GRACE_PERIOD_SECONDS: u32 = 10;

const LOG_LEVELS: [&str; 6] = ["all", "debug", "info", "warn", "error", "none"];

impl Values {
    pub fn from_spec(spec: &MetalLBSpec, namespace: &str, images: &Images) -> Result<Self, String> {
        let log_level = spec
            .log_level
            .clone()
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| "info".into());
        if !LOG_LEVELS.contains(&log_level.as_str()) {
            return Err(format!(
                "logLevel {log_level:?} is not one of {}",
                LOG_LEVELS.join(", ")
            ));
        }
        let backend = spec
            .bgp_backend
            .clone()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "native".into());
        if !SUPPORTED_BGP_BACKENDS.contains(&backend.as_str()) {
            return Err(format!(
                "bgpBackend {backend:?} is not supported: supported values are \"native\" (the default) and \"frr\""
            ));
        }
        let interval = spec
            .speaker_gratuitous_arp_interval
            .clone()
            .unwrap_or_default();
        if !interval.is_empty() {
            let d = metallb_api::duration::GoDuration::parse(&interval)
                .map_err(|e| format!("speakerGratuitousARPInterval: {e}"))?;
            if d.nanos != 0 && d.nanos < 1_000_000_000 {
                return Err("speakerGratuitousARPInterval must be 0 or at least 1s".into());
            }
        }
        let version = images::VERSION.to_string();
        let labels: BTreeMap<String, String> = [
            ("app", "metallb".to_string()),
            ("app.kubernetes.io/name", "metallb".into()),
            ("app.kubernetes.io/part-of", "metallb".into()),
            ("app.kubernetes.io/version", version.clone()),
            (MANAGED_BY_LABEL, MANAGED_BY.into()),
            (OWNER_LABEL, format!("{namespace}.{}", names::METALLB_CR)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let selector_labels = [("app".to_string(), "metallb".to_string())].into();
        let linux = [("kubernetes.io/os".to_string(), "linux".to_string())];

        let mut controller = pod(spec.controller_config.as_ref());
        controller.node_selector = linux
            .iter()
            .cloned()
            .chain(spec.controller_node_selector.clone().unwrap_or_default())
            .collect();
        controller.tolerations = spec.controller_tolerations.clone().unwrap_or_default();

        let mut speaker = pod(spec.speaker_config.as_ref());
        speaker.node_selector = linux
            .iter()
            .cloned()
            .chain(spec.speaker_node_selector.clone().unwrap_or_default())
            .collect();
        // Speakers run on control-plane nodes too, as in MetalLB's chart (tolerateMaster).
        speaker.tolerations = [
            "node-role.kubernetes.io/master",
            "node-role.kubernetes.io/control-plane",
        ]
        .into_iter()
        .map(|key| Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        })
        .chain(spec.speaker_tolerations.clone().unwrap_or_default())
        .collect();

        Ok(Self {
            namespace: namespace.to_string(),
            version,
            images: images.clone(),
            frr_log_level: frr_log_level(&log_level).into(),
            log_level,
            load_balancer_class: spec.load_balancer_class.clone().unwrap_or_default(),
            frr: backend == "frr",
            bgp_backend: backend,
            labels,
            selector_labels,
            controller,
            speaker,
            gratuitous_arp_interval: interval,
            speaker_grace_period: SPEAKER_GRACE_PERIOD_SECONDS,
            ports: Ports {
                webhook: ports::WEBHOOK,
                metrics: ports::METRICS,
                health: ports::HEALTH,
                memberlist: ports::MEMBERLIST,
            },
        })
    }
}

fn pod(config: Option<&Config>) -> Pod {
    let c = config.cloned().unwrap_or_default();
    Pod {
        node_selector: BTreeMap::new(),
        tolerations: Vec::new(),
        priority_class_name: c.priority_class_name.unwrap_or_default(),
        runtime_class_name: c.runtime_class_name.unwrap_or_default(),
        affinity: c.affinity,
        annotations: c.annotations.unwrap_or_default(),
        resources: c.resources,
    }
}

/// FRR's `log stdout` level for a MetalLB log level.
fn frr_log_level(level: &str) -> &'static str {
    match level {
        "all" | "debug" => "debugging",
        "info" => "informational",
        "warn" => "warnings",
        "error" => "errors",
        _ => "emergencies",
    }
}
