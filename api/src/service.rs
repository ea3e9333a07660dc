//! The one reader of Kubernetes Services for MetalLB: which Services a component handles (type
//! and `loadBalancerClass`), the MetalLB annotations in either spelling, and the ingress IPs.
//! The controller and the speaker both read Services through this module, so they never
//! disagree about a Service.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;

use crate::constants::annotations;

/// What a component does with a Service, given the `--lb-class` it runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// A LoadBalancer Service of our class.
    Ours,
    /// Not (or no longer) of type LoadBalancer. Kubernetes drops `loadBalancerClass` when the
    /// type changes, so a former LoadBalancer of ours shows up here without one.
    NotLoadBalancer,
    /// A LoadBalancer of another implementation (`spec.loadBalancerClass` is not ours).
    OtherClass,
}

/// Which Services are ours: without a class (`None`) we take Services without
/// `spec.loadBalancerClass`, otherwise only that class (MetalLB's `filterByLoadBalancerClass`).
pub fn handling(svc: &Service, lb_class: Option<&str>) -> Handling {
    let spec = svc.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
        return Handling::NotLoadBalancer;
    }
    if spec.and_then(|s| s.load_balancer_class.as_deref()) == lb_class {
        Handling::Ours
    } else {
        Handling::OtherClass
    }
}

/// A MetalLB annotation's value and which spelling it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Annotation<'a> {
    pub value: &'a str,
    /// Read from the deprecated `metallb.universe.tf/` spelling.
    pub deprecated: bool,
}

/// The value of a MetalLB annotation, given by its `metallb.io/` name: that spelling if present
/// (even empty), else the deprecated `metallb.universe.tf/` one.
pub fn annotation<'a>(svc: &'a Service, name: &str) -> Option<Annotation<'a>> {
    let all = svc.metadata.annotations.as_ref()?;
    annotation_in(all, name)
}

fn annotation_in<'a>(all: &'a BTreeMap<String, String>, name: &str) -> Option<Annotation<'a>> {
    if let Some(v) = all.get(name) {
        return Some(Annotation {
            value: v,
            deprecated: false,
        });
    }
    let suffix = name
        .strip_prefix(annotations::PREFIX)
        .expect("a metallb.io annotation name");
    all.get(&format!("{}{suffix}", annotations::DEPRECATED_PREFIX))
        .map(|v| Annotation {
            value: v,
            deprecated: true,
        })
}

/// The deprecated spelling of a `metallb.io/` annotation name.
pub fn deprecated_name(name: &str) -> String {
    let suffix = name
        .strip_prefix(annotations::PREFIX)
        .expect("a metallb.io annotation name");
    format!("{}{suffix}", annotations::DEPRECATED_PREFIX)
}

/// The sharing key of `allow-shared-ip`, when the Service may share its IP.
///
/// Decision: an empty value means "no sharing" for every component, as MetalLB's controller
/// reads it (its speaker looked only at whether the annotation exists, so the two disagreed).
pub fn sharing_key(svc: &Service) -> Option<&str> {
    annotation(svc, annotations::ALLOW_SHARED_IP)
        .map(|a| a.value)
        .filter(|v| !v.is_empty())
}

/// `status.loadBalancer.ingress[].ip` that parse, in order (hostnames are skipped).
pub fn ingress_ips(svc: &Service) -> Vec<IpAddr> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref())
        .filter_map(|ip| ip.parse().ok())
        .collect()
}

/// `externalTrafficPolicy: Local`.
pub fn local_traffic_policy(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.external_traffic_policy.as_deref())
        == Some("Local")
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn svc(yaml: &str) -> Service {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn a_loadbalancer_without_class_is_ours_only_without_an_lb_class() {
        let plain = svc("spec: {type: LoadBalancer}");
        assert_eq!(handling(&plain, None), Handling::Ours);
        assert_eq!(handling(&plain, Some("metallb")), Handling::OtherClass);
        let classed = svc("spec: {type: LoadBalancer, loadBalancerClass: metallb}");
        assert_eq!(handling(&classed, Some("metallb")), Handling::Ours);
        assert_eq!(handling(&classed, None), Handling::OtherClass);
        let cluster_ip = svc("spec: {type: ClusterIP}");
        assert_eq!(handling(&cluster_ip, None), Handling::NotLoadBalancer);
        assert_eq!(handling(&svc("{}"), None), Handling::NotLoadBalancer);
    }

    #[test]
    fn the_current_spelling_wins_even_when_empty() {
        let both = svc(
            "metadata: {annotations: {metallb.io/address-pool: '', metallb.universe.tf/address-pool: old}}",
        );
        assert_eq!(
            annotation(&both, annotations::ADDRESS_POOL),
            Some(Annotation {
                value: "",
                deprecated: false
            })
        );
        let old = svc("metadata: {annotations: {metallb.universe.tf/address-pool: old}}");
        assert_eq!(
            annotation(&old, annotations::ADDRESS_POOL),
            Some(Annotation {
                value: "old",
                deprecated: true
            })
        );
        assert_eq!(annotation(&svc("{}"), annotations::ADDRESS_POOL), None);
    }

    #[test]
    fn an_empty_sharing_key_means_no_sharing() {
        let empty = svc("metadata: {annotations: {metallb.io/allow-shared-ip: ''}}");
        assert_eq!(sharing_key(&empty), None);
        let old = svc("metadata: {annotations: {metallb.universe.tf/allow-shared-ip: web}}");
        assert_eq!(sharing_key(&old), Some("web"));
        assert_eq!(sharing_key(&svc("{}")), None);
    }

    #[test]
    fn ingress_ips_skip_hostnames_and_keep_the_order() {
        let s = svc(
            "status: {loadBalancer: {ingress: [{ip: '2001:db8::1'}, {hostname: lb.example}, {ip: 192.0.2.1}, {ip: bogus}]}}",
        );
        assert_eq!(
            ingress_ips(&s),
            vec![
                "2001:db8::1".parse::<IpAddr>().unwrap(),
                "192.0.2.1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn deprecated_names_use_the_old_prefix() {
        assert_eq!(
            deprecated_name(annotations::IP_ALLOCATED_FROM_POOL),
            "metallb.universe.tf/ip-allocated-from-pool"
        );
    }
}
