//! The values the templates see, computed from the validated [`Spec`]: user values merged with
//! the operator's own (node selectors, tolerations, labels), everything the templates need
//! present (strict mode refuses a missing field). Infallible: validation happened before.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use serde::Serialize;

use metallb_api::config::BgpBackend;
use metallb_api::constants::{images, names, ports};
use metallb_runtime::logging::Level;

use crate::spec::{Spec, log_level_name};

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
    /// On every object: what it is, who manages it, which release it belongs to and which
    /// MetalLB resource it belongs to (the prune and cleanup steps select on these).
    pub labels: BTreeMap<String, String>,
    /// The immutable part, on pod templates and selectors.
    pub selector_labels: BTreeMap<String, String>,
    /// On pod templates: the selector labels and the release, which the status step reads back
    /// from the running pods.
    pub pod_labels: BTreeMap<String, String>,
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
/// The release an object (and every pod) belongs to: `v<semver>`, as the image tags.
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";

/// How long a speaker may take to hand its IPs over before it is killed.
const SPEAKER_GRACE_PERIOD_SECONDS: u32 = 10;

impl Values {
    pub fn from_spec(spec: &Spec, namespace: &str, images: &Images) -> Self {
        let version = images::VERSION.to_string();
        let labels: BTreeMap<String, String> = [
            ("app", "metallb".to_string()),
            ("app.kubernetes.io/name", "metallb".into()),
            ("app.kubernetes.io/part-of", "metallb".into()),
            (VERSION_LABEL, version.clone()),
            (MANAGED_BY_LABEL, MANAGED_BY.into()),
            (OWNER_LABEL, format!("{namespace}.{}", names::METALLB_CR)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let selector_labels: BTreeMap<String, String> =
            [("app".to_string(), "metallb".to_string())].into();
        let mut pod_labels = selector_labels.clone();
        pod_labels.insert(VERSION_LABEL.into(), version.clone());
        let linux = [("kubernetes.io/os".to_string(), "linux".to_string())];

        let mut controller = pod(&spec.controller);
        controller.node_selector = linux
            .iter()
            .cloned()
            .chain(spec.controller.node_selector.clone())
            .collect();

        let mut speaker = pod(&spec.speaker);
        speaker.node_selector = linux
            .iter()
            .cloned()
            .chain(spec.speaker.node_selector.clone())
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
        .chain(spec.speaker.tolerations.clone())
        .collect();

        let log_level = log_level_name(spec.log_level);
        Self {
            namespace: namespace.to_string(),
            version,
            images: images.clone(),
            frr_log_level: frr_log_level(spec.log_level).into(),
            log_level: log_level.into(),
            load_balancer_class: spec.load_balancer_class.clone().unwrap_or_default(),
            frr: spec.bgp_backend == BgpBackend::Frr,
            bgp_backend: spec.bgp_backend.as_str().into(),
            labels,
            selector_labels,
            pod_labels,
            controller,
            speaker,
            gratuitous_arp_interval: spec.gratuitous_arp_interval.clone().unwrap_or_default(),
            speaker_grace_period: SPEAKER_GRACE_PERIOD_SECONDS,
            ports: Ports {
                webhook: ports::WEBHOOK,
                metrics: ports::METRICS,
                health: ports::HEALTH,
                memberlist: ports::MEMBERLIST,
            },
        }
    }
}

fn pod(p: &crate::spec::Pod) -> Pod {
    Pod {
        node_selector: BTreeMap::new(),
        tolerations: p.tolerations.clone(),
        priority_class_name: p.priority_class_name.clone().unwrap_or_default(),
        runtime_class_name: p.runtime_class_name.clone().unwrap_or_default(),
        affinity: p.affinity.clone(),
        annotations: p.annotations.clone(),
        resources: p.resources.clone(),
    }
}

/// FRR's `log stdout` level for a MetalLB log level.
fn frr_log_level(level: Level) -> &'static str {
    match level {
        Level::All | Level::Debug => "debugging",
        Level::Info => "informational",
        Level::Warn => "warnings",
        Level::Error => "errors",
        Level::None => "emergencies",
    }
}
