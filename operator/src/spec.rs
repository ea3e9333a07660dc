//! Validate: the `MetalLB` resource → a typed [`Spec`]. Pure.
//!
//! This is the one place that reads the raw spec (and the operator's annotations on the
//! resource): every later step — render, the PodSecurity step, the legacy migration — takes the
//! [`Spec`]. The CRD's enums and CEL rules normally refuse an invalid resource at admission; an
//! object stored before the CRD was updated (or written with validation bypassed) still reaches
//! the operator, and then every problem is reported at once, each naming its field.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use kube::ResourceExt;

use metallb_api::config::BgpBackend;
use metallb_api::duration::GoDuration;
use metallb_api::v1beta1::{Config, MetalLB};
use metallb_runtime::logging::Level;

/// The opt-out annotation on the MetalLB resource: `"false"` leaves the namespace's Pod Security
/// labels to the admin.
pub const MANAGE_POD_SECURITY_ANNOTATION: &str = "metallb.io/manage-pod-security";

/// The validated `MetalLB` resource: what the operator deploys.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// `--log-level` of the controller and the speakers (MetalLB's levels: `info` by default).
    pub log_level: Level,
    pub bgp_backend: BgpBackend,
    /// `--lb-class`, a qualified name; `None` serves Services without a class.
    pub load_balancer_class: Option<String>,
    /// `--gratuitous-arp-interval` as the user wrote it (a Go duration, 0 or at least 1s).
    pub gratuitous_arp_interval: Option<String>,
    /// Whether the operator labels its namespace for Pod Security.
    pub manage_pod_security: bool,
    pub controller: Pod,
    pub speaker: Pod,
}

/// Pod-level settings of one component, as the user gave them (the operator adds its own node
/// selector and tolerations when rendering).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pod {
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub priority_class_name: Option<String>,
    pub runtime_class_name: Option<String>,
    pub affinity: Option<Affinity>,
    pub annotations: BTreeMap<String, String>,
    pub resources: Option<ResourceRequirements>,
}

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field's path, such as `spec.logLevel`.
    pub field: String,
    pub message: String,
}

/// Every problem of an invalid resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Invalid(pub Vec<Problem>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

/// The MetalLB log level named by `text` (MetalLB's values: all, debug, info, warn, error, none).
pub fn parse_log_level(text: &str) -> Result<Level, String> {
    <Level as clap::ValueEnum>::from_str(text, false)
        .map_err(|_| format!("{text:?} is not one of all, debug, info, warn, error, none"))
}

/// The text of a log level, as the components' `--log-level` takes it.
pub fn log_level_name(level: Level) -> &'static str {
    match level {
        Level::All => "all",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
        Level::None => "none",
    }
}

/// Validates the resource.
pub fn validate(cr: &MetalLB) -> Result<Spec, Invalid> {
    let spec = &cr.spec;
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: String| {
        problems.push(Problem {
            field: field.into(),
            message,
        })
    };

    let log_level = match spec.log_level.as_deref().filter(|l| !l.is_empty()) {
        None => Level::Info,
        Some(text) => parse_log_level(text).unwrap_or_else(|e| {
            problem("spec.logLevel", e);
            Level::Info
        }),
    };
    let bgp_backend = match spec.bgp_backend.as_deref().filter(|b| !b.is_empty()) {
        None => BgpBackend::Native,
        Some(text) => BgpBackend::parse(text).unwrap_or_else(|e| {
            problem("spec.bgpBackend", e);
            BgpBackend::Native
        }),
    };
    let load_balancer_class = spec.load_balancer_class.clone().filter(|c| !c.is_empty());
    if let Some(class) = &load_balancer_class
        && !qualified_name(class)
    {
        problem(
            "spec.loadBalancerClass",
            format!(
                "{class:?} is not a qualified name (an optional DNS prefix and '/', then alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric)"
            ),
        );
    }
    let gratuitous_arp_interval = spec
        .speaker_gratuitous_arp_interval
        .clone()
        .filter(|i| !i.is_empty());
    if let Some(text) = &gratuitous_arp_interval {
        match GoDuration::parse(text) {
            Err(e) => problem("spec.speakerGratuitousARPInterval", e.to_string()),
            Ok(d) if d.nanos != 0 && d.nanos < 1_000_000_000 => problem(
                "spec.speakerGratuitousARPInterval",
                format!("{text:?} must be 0 or at least 1s"),
            ),
            Ok(_) => {}
        }
    }
    let manage_pod_security = match cr.annotations().get(MANAGE_POD_SECURITY_ANNOTATION) {
        None => true,
        Some(v) if v == "true" => true,
        Some(v) if v == "false" => false,
        Some(v) => {
            problem(
                &format!("metadata.annotations[{MANAGE_POD_SECURITY_ANNOTATION}]"),
                format!("{v:?} is neither \"true\" nor \"false\""),
            );
            true
        }
    };

    let controller = Pod {
        node_selector: spec.controller_node_selector.clone().unwrap_or_default(),
        tolerations: spec.controller_tolerations.clone().unwrap_or_default(),
        ..pod(spec.controller_config.as_ref())
    };
    let speaker = Pod {
        node_selector: spec.speaker_node_selector.clone().unwrap_or_default(),
        tolerations: spec.speaker_tolerations.clone().unwrap_or_default(),
        ..pod(spec.speaker_config.as_ref())
    };
    if !problems.is_empty() {
        return Err(Invalid(problems));
    }
    Ok(Spec {
        log_level,
        bgp_backend,
        load_balancer_class,
        gratuitous_arp_interval,
        manage_pod_security,
        controller,
        speaker,
    })
}

fn pod(config: Option<&Config>) -> Pod {
    let c = config.cloned().unwrap_or_default();
    Pod {
        node_selector: BTreeMap::new(),
        tolerations: Vec::new(),
        priority_class_name: c.priority_class_name.filter(|n| !n.is_empty()),
        runtime_class_name: c.runtime_class_name.filter(|n| !n.is_empty()),
        affinity: c.affinity,
        annotations: c.annotations.unwrap_or_default(),
        resources: c.resources,
    }
}

/// `([a-z0-9A-Z]([\w.-]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([\w.-]*[a-z0-9A-Z])?`, the CRD's pattern for
/// `loadBalancerClass`.
fn qualified_name(text: &str) -> bool {
    let part = |p: &str| {
        let bytes = p.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    };
    match text.split_once('/') {
        Some((prefix, name)) => part(prefix) && part(name),
        None => part(text),
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    fn cr(spec: serde_json::Value) -> MetalLB {
        serde_json::from_value(json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "MetalLB",
            "metadata": {"name": "metallb", "namespace": "metallb-system"},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn an_empty_spec_gets_metallbs_defaults() {
        assert_eq!(
            validate(&cr(json!({}))).unwrap(),
            Spec {
                log_level: Level::Info,
                bgp_backend: BgpBackend::Native,
                load_balancer_class: None,
                gratuitous_arp_interval: None,
                manage_pod_security: true,
                controller: Pod::default(),
                speaker: Pod::default(),
            }
        );
    }

    #[test]
    fn every_field_is_read_once_into_its_type() {
        let spec = validate(&cr(json!({
            "logLevel": "debug", "bgpBackend": "frr", "loadBalancerClass": "example.com/lb",
            "speakerGratuitousARPInterval": "30s",
            "nodeSelector": {"rack": "a"}, "controllerNodeSelector": {"infra": ""},
            "controllerConfig": {"priorityClassName": "high", "runtimeClassName": ""},
        })))
        .unwrap();
        assert_eq!(spec.log_level, Level::Debug);
        assert_eq!(spec.bgp_backend, BgpBackend::Frr);
        assert_eq!(spec.load_balancer_class.as_deref(), Some("example.com/lb"));
        assert_eq!(spec.gratuitous_arp_interval.as_deref(), Some("30s"));
        assert_eq!(
            spec.speaker.node_selector,
            [("rack".into(), "a".into())].into()
        );
        assert_eq!(
            spec.controller.node_selector,
            [("infra".into(), String::new())].into()
        );
        assert_eq!(spec.controller.priority_class_name.as_deref(), Some("high"));
        assert_eq!(
            spec.controller.runtime_class_name, None,
            "empty means unset"
        );
    }

    #[test]
    fn every_invalid_field_is_reported_at_once_by_its_path() {
        let mut resource = cr(json!({
            "logLevel": "chatty", "bgpBackend": "frr-k8s", "loadBalancerClass": "-bad",
            "speakerGratuitousARPInterval": "100ms",
        }));
        resource.metadata.annotations =
            Some([(MANAGE_POD_SECURITY_ANNOTATION.to_string(), "no".to_string())].into());
        let err = validate(&resource).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.logLevel: \"chatty\" is not one of all, debug, info, warn, error, none; \
             spec.bgpBackend: unsupported BGP backend \"frr-k8s\": supported values are \"native\" and \"frr\" (MetalLB's frr-k8s modes are not offered by metallb-rs); \
             spec.loadBalancerClass: \"-bad\" is not a qualified name (an optional DNS prefix and '/', then alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric); \
             spec.speakerGratuitousARPInterval: \"100ms\" must be 0 or at least 1s; \
             metadata.annotations[metallb.io/manage-pod-security]: \"no\" is neither \"true\" nor \"false\""
        );
    }

    #[test]
    fn the_pod_security_opt_out_is_read_from_the_annotation() {
        let mut resource = cr(json!({}));
        resource.metadata.annotations = Some(
            [(
                MANAGE_POD_SECURITY_ANNOTATION.to_string(),
                "false".to_string(),
            )]
            .into(),
        );
        assert!(!validate(&resource).unwrap().manage_pod_security);
    }

    #[test]
    fn qualified_names_follow_the_crd_pattern() {
        for good in ["lb", "example.com/internal-vip", "a_b.c", "A1"] {
            assert!(qualified_name(good), "{good}");
        }
        for bad in ["", "/lb", "lb/", "a/b/c", "-lb", "lb-", "l b"] {
            assert!(!qualified_name(bad), "{bad}");
        }
    }

    #[test]
    fn log_levels_are_metallbs() {
        for name in ["all", "debug", "info", "warn", "error", "none"] {
            assert_eq!(log_level_name(parse_log_level(name).unwrap()), name);
        }
    }
}
