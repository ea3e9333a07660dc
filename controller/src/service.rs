//! From a Kubernetes Service to what the allocator needs ([`allocator::Service`]), and back: the
//! status and annotation a [`Desired`] state means. Pure.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use metallb_api::constants::annotations;
use serde_json::{Value, json};

use crate::allocator::{self, Assignment, Desired, Event, FamilyPolicy, Port, Requested, reasons};

/// What the controller does with a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// A LoadBalancer Service of our class: allocate.
    Allocate,
    /// Not (or no longer) of type LoadBalancer: release and clear, as MetalLB does.
    Clear,
    /// Another load balancer's Service (`spec.loadBalancerClass` is not ours): leave it alone.
    Foreign,
}

/// Which Services are ours: `--lb-class` empty takes Services without a class, otherwise only
/// that class (MetalLB's `filterByLoadBalancerClass`).
pub fn handling(svc: &Service, lb_class: &str) -> Handling {
    let spec = svc.spec.as_ref();
    let class = spec.and_then(|s| s.load_balancer_class.as_deref());
    let ours = match class {
        None => lb_class.is_empty(),
        Some(c) => c == lb_class,
    };
    let is_lb = spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
    match (is_lb, ours) {
        (true, true) => Handling::Allocate,
        (true, false) => Handling::Foreign,
        // Kubernetes drops the class when the type changes, so a former LoadBalancer of ours
        // shows up here without one; clearing a non-LoadBalancer that has nothing is a no-op.
        (false, _) => Handling::Clear,
    }
}

/// A Service as the allocator sees it, and the Events its annotations call for.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub service: allocator::Service,
    /// `deprecatedAnnotation` warnings for `metallb.universe.tf/*` annotations in use.
    pub deprecations: Vec<Event>,
}

/// The value of a MetalLB annotation: the `metallb.io/` form if present (even empty), else the
/// deprecated `metallb.universe.tf/` one. The flag says the deprecated one was used.
fn annotation<'a>(all: &'a BTreeMap<String, String>, stable: &str) -> (Option<&'a str>, bool) {
    if let Some(v) = all.get(stable) {
        return (Some(v), false);
    }
    let name = stable
        .strip_prefix(annotations::PREFIX)
        .expect("a metallb.io annotation");
    let deprecated = format!("{}{name}", annotations::DEPRECATED_PREFIX);
    match all.get(&deprecated) {
        Some(v) => (Some(v), true),
        None => (None, false),
    }
}

pub fn describe(svc: &Service) -> Described {
    let spec = svc.spec.clone().unwrap_or_default();
    let all = svc.annotations();
    let mut deprecations = Vec::new();
    let mut read = |stable: &str| {
        let (value, deprecated) = annotation(all, stable);
        if deprecated {
            let name = stable.strip_prefix(annotations::PREFIX).unwrap_or(stable);
            deprecations.push(Event::warning(
                reasons::DEPRECATED_ANNOTATION,
                format!(
                    "annotation {}{name} is deprecated, use {stable}",
                    annotations::DEPRECATED_PREFIX
                ),
            ));
        }
        value.map(str::to_string)
    };
    let requested_text = read(annotations::LOAD_BALANCER_IPS).filter(|v| !v.is_empty());
    let pool = read(annotations::ADDRESS_POOL).filter(|v| !v.is_empty());
    let sharing_key = read(annotations::ALLOW_SHARED_IP).unwrap_or_default();

    let spec_ip = spec.load_balancer_ip.clone().filter(|v| !v.is_empty());
    let requested = match (requested_text, spec_ip) {
        (None, None) => Requested::Nothing,
        (Some(_), Some(_)) => Requested::Invalid(format!(
            "service can not have both {} and svc.Spec.LoadBalancerIP",
            annotations::LOAD_BALANCER_IPS
        )),
        (Some(text), None) => {
            let parsed: Result<Vec<IpAddr>, _> = text
                .split(',')
                .map(|s| s.trim().parse::<IpAddr>())
                .collect();
            match parsed {
                Ok(ips) => Requested::Ips(ips),
                Err(_) => Requested::Invalid(format!(
                    "invalid {}: {text:?}",
                    annotations::LOAD_BALANCER_IPS
                )),
            }
        }
        (None, Some(ip)) => match ip.parse::<IpAddr>() {
            Ok(ip) => Requested::Ips(vec![ip]),
            Err(_) => Requested::Invalid(format!("invalid spec.loadBalancerIP {ip:?}")),
        },
    };

    let cluster_ips: Vec<IpAddr> = match &spec.cluster_ips {
        Some(ips) if !ips.is_empty() => ips.clone(),
        _ => spec.cluster_ip.clone().into_iter().collect(),
    }
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect();

    let policy = match spec.ip_family_policy.as_deref() {
        Some("PreferDualStack") => FamilyPolicy::PreferDualStack,
        Some("RequireDualStack") => FamilyPolicy::RequireDualStack,
        _ => FamilyPolicy::SingleStack,
    };

    // MetalLB's backend key: Local Services may share only with Services selecting the same
    // pods, so the key is the selector, serialised as `k=v,k2=v2` with sorted keys.
    let backend_key = if spec.external_traffic_policy.as_deref() == Some("Local") {
        spec.selector
            .as_ref()
            .map(|s| {
                s.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    } else {
        String::new()
    };

    let ports = spec
        .ports
        .iter()
        .flatten()
        .map(|p| Port::new(p.protocol.as_deref().unwrap_or("TCP"), p.port))
        .collect();

    let status_ips = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref())
        .filter_map(|ip| ip.parse().ok())
        .collect();

    Described {
        service: allocator::Service {
            namespace: svc.namespace().unwrap_or_default(),
            name: svc.name_any(),
            labels: svc.labels().clone(),
            cluster_ips,
            policy,
            requested,
            pool,
            sharing_key,
            backend_key,
            ports,
            status_ips,
        },
        deprecations,
    }
}

/// The pool annotation written back, in its deprecated spelling (removed when we write).
pub fn deprecated_pool_annotation() -> String {
    let name = annotations::IP_ALLOCATED_FROM_POOL
        .strip_prefix(annotations::PREFIX)
        .expect("a metallb.io annotation");
    format!("{}{name}", annotations::DEPRECATED_PREFIX)
}

/// Whether the Service already shows `desired`: the ingress IPs (with `ipMode: VIP` and
/// nothing else) and the pool annotation.
pub fn shows(svc: &Service, desired: &Desired) -> bool {
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default();
    let all = svc.annotations();
    if all.contains_key(&deprecated_pool_annotation()) {
        return false;
    }
    let pool = all.get(annotations::IP_ALLOCATED_FROM_POOL);
    match desired {
        Desired::Untouched => true,
        Desired::Cleared => ingress.is_empty() && pool.is_none(),
        Desired::Assigned(a) => {
            let ips_match = ingress.len() == a.ips.len()
                && ingress.iter().zip(&a.ips).all(|(i, ip)| {
                    i.ip.as_deref() == Some(ip.to_string().as_str())
                        && i.ip_mode.as_deref() == Some("VIP")
                        && i.hostname.is_none()
                        && i.ports.is_none()
                });
            ips_match && pool.map(String::as_str) == Some(a.pool_annotation().as_str())
        }
    }
}

/// The server-side apply body (for the `status` subresource) that gives a Service its IPs and
/// the pool annotation. Annotations may be written through `status`; doing both in one
/// request halves the writes.
pub fn assigned_patch(namespace: &str, name: &str, a: &Assignment) -> Value {
    let ingress: Vec<Value> = a
        .ips
        .iter()
        .map(|ip| json!({"ip": ip.to_string(), "ipMode": "VIP"}))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {annotations::IP_ALLOCATED_FROM_POOL: a.pool_annotation()},
        },
        "status": {"loadBalancer": {"ingress": ingress}},
    })
}

/// The JSON merge patch (for the `status` subresource) that removes the IPs and the pool
/// annotation. Decision: clearing is a merge patch, not an apply without the fields, because an
/// apply only drops what *we* own: IPs another manager co-owns (say, MetalLB's controller
/// before the switch) would stay.
pub fn cleared_patch() -> Value {
    json!({
        "metadata": {"annotations": {
            annotations::IP_ALLOCATED_FROM_POOL: null,
            deprecated_pool_annotation(): null,
        }},
        "status": {"loadBalancer": {"ingress": null}},
    })
}

/// Whether the Service carries the deprecated pool annotation, which MetalLB removes when it
/// writes the current one (an apply cannot remove a field another manager wrote).
pub fn needs_deprecated_cleanup(svc: &Service) -> bool {
    svc.annotations()
        .contains_key(&deprecated_pool_annotation())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn svc(yaml: &str) -> Service {
        let value: Value = serde_json::to_value(
            metallb_api::manifest::documents("svc.yaml", yaml).unwrap()[0]
                .value
                .clone(),
        )
        .unwrap();
        serde_json::from_value(value).unwrap()
    }

    const BASE: &str =
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: blue, labels: {app: web}";

    #[test]
    fn a_plain_load_balancer_is_described_with_its_ports_and_families() {
        let s = svc(&format!(
            "{BASE}}}\nspec:\n  type: LoadBalancer\n  clusterIPs: [2001:db8:0:ff::a, 203.0.113.130]\n  ipFamilyPolicy: PreferDualStack\n  ports: [{{port: 80}}, {{port: 53, protocol: UDP}}]\nstatus: {{loadBalancer: {{ingress: [{{ip: 192.0.2.200}}, {{hostname: x}}]}}}}\n"
        ));
        assert_eq!(handling(&s, ""), Handling::Allocate);
        assert_eq!(
            describe(&s),
            Described {
                service: allocator::Service {
                    namespace: "blue".into(),
                    name: "web".into(),
                    labels: BTreeMap::from([("app".into(), "web".into())]),
                    cluster_ips: vec![
                        "2001:db8:0:ff::a".parse().unwrap(),
                        "203.0.113.130".parse().unwrap()
                    ],
                    policy: FamilyPolicy::PreferDualStack,
                    requested: Requested::Nothing,
                    pool: None,
                    sharing_key: String::new(),
                    backend_key: String::new(),
                    ports: vec![Port::new("TCP", 80), Port::new("UDP", 53)],
                    status_ips: vec!["192.0.2.200".parse().unwrap()],
                },
                deprecations: vec![],
            }
        );
    }

    #[test]
    fn load_balancer_class_decides_whose_service_it_is() {
        let plain = svc(&format!("{BASE}}}\nspec: {{type: LoadBalancer}}\n"));
        let classed = svc(&format!(
            "{BASE}}}\nspec: {{type: LoadBalancer, loadBalancerClass: example.com/lb}}\n"
        ));
        let cluster_ip = svc(&format!("{BASE}}}\nspec: {{type: ClusterIP}}\n"));
        assert_eq!(handling(&plain, ""), Handling::Allocate);
        assert_eq!(handling(&classed, ""), Handling::Foreign);
        assert_eq!(handling(&classed, "example.com/lb"), Handling::Allocate);
        assert_eq!(handling(&plain, "example.com/lb"), Handling::Foreign);
        assert_eq!(handling(&cluster_ip, ""), Handling::Clear);
        assert_eq!(handling(&cluster_ip, "example.com/lb"), Handling::Clear);
    }

    #[test]
    fn deprecated_annotations_are_honoured_with_a_warning_and_the_stable_form_wins() {
        let s = svc(&format!(
            "{BASE}, annotations: {{metallb.universe.tf/address-pool: old, metallb.universe.tf/allow-shared-ip: k, metallb.io/allow-shared-ip: '', metallb.universe.tf/loadBalancerIPs: '192.0.2.201, 2001:db8:0:1::201'}}}}\nspec: {{type: LoadBalancer, clusterIP: 203.0.113.130}}\n"
        ));
        let d = describe(&s);
        assert_eq!(d.service.pool.as_deref(), Some("old"));
        assert_eq!(
            d.service.sharing_key, "",
            "a present stable key wins, even empty"
        );
        assert_eq!(
            d.service.requested,
            Requested::Ips(vec![
                "192.0.2.201".parse().unwrap(),
                "2001:db8:0:1::201".parse().unwrap()
            ])
        );
        assert_eq!(
            d.deprecations,
            vec![
                Event::warning(
                    reasons::DEPRECATED_ANNOTATION,
                    "annotation metallb.universe.tf/loadBalancerIPs is deprecated, use metallb.io/loadBalancerIPs"
                ),
                Event::warning(
                    reasons::DEPRECATED_ANNOTATION,
                    "annotation metallb.universe.tf/address-pool is deprecated, use metallb.io/address-pool"
                ),
            ]
        );
    }

    #[test]
    fn unreadable_requests_say_what_is_wrong() {
        let both = svc(&format!(
            "{BASE}, annotations: {{metallb.io/loadBalancerIPs: 192.0.2.201}}}}\nspec: {{type: LoadBalancer, loadBalancerIP: 192.0.2.202}}\n"
        ));
        assert_eq!(
            describe(&both).service.requested,
            Requested::Invalid(
                "service can not have both metallb.io/loadBalancerIPs and svc.Spec.LoadBalancerIP"
                    .into()
            )
        );
        let bad = svc(&format!(
            "{BASE}, annotations: {{metallb.io/loadBalancerIPs: 'x,192.0.2.1'}}}}\nspec: {{type: LoadBalancer}}\n"
        ));
        assert_eq!(
            describe(&bad).service.requested,
            Requested::Invalid("invalid metallb.io/loadBalancerIPs: \"x,192.0.2.1\"".into())
        );
        let spec = svc(&format!(
            "{BASE}}}\nspec: {{type: LoadBalancer, loadBalancerIP: nope}}\n"
        ));
        assert_eq!(
            describe(&spec).service.requested,
            Requested::Invalid("invalid spec.loadBalancerIP \"nope\"".into())
        );
    }

    #[test]
    fn local_traffic_policy_makes_the_selector_the_backend_key() {
        let s = svc(&format!(
            "{BASE}}}\nspec: {{type: LoadBalancer, externalTrafficPolicy: Local, selector: {{b: '2', a: '1'}}}}\n"
        ));
        assert_eq!(describe(&s).service.backend_key, "a=1,b=2");
        let cluster = svc(&format!(
            "{BASE}}}\nspec: {{type: LoadBalancer, externalTrafficPolicy: Cluster, selector: {{a: '1'}}}}\n"
        ));
        assert_eq!(describe(&cluster).service.backend_key, "");
    }

    #[test]
    fn status_comparison_requires_vip_mode_and_the_pool_annotation() {
        let a = Assignment {
            ips: vec!["192.0.2.200".parse().unwrap()],
            pools: vec!["lan".into()],
        };
        let desired = Desired::Assigned(a.clone());
        let written = svc(&format!(
            "{BASE}, annotations: {{metallb.io/ip-allocated-from-pool: lan}}}}\nspec: {{type: LoadBalancer}}\nstatus: {{loadBalancer: {{ingress: [{{ip: 192.0.2.200, ipMode: VIP}}]}}}}\n"
        ));
        assert!(shows(&written, &desired));
        assert!(!shows(&written, &Desired::Cleared));
        let no_mode = svc(&format!(
            "{BASE}, annotations: {{metallb.io/ip-allocated-from-pool: lan}}}}\nspec: {{type: LoadBalancer}}\nstatus: {{loadBalancer: {{ingress: [{{ip: 192.0.2.200}}]}}}}\n"
        ));
        assert!(!shows(&no_mode, &desired));
        let old_annotation = svc(&format!(
            "{BASE}, annotations: {{metallb.io/ip-allocated-from-pool: lan, metallb.universe.tf/ip-allocated-from-pool: lan}}}}\nspec: {{type: LoadBalancer}}\nstatus: {{loadBalancer: {{ingress: [{{ip: 192.0.2.200, ipMode: VIP}}]}}}}\n"
        ));
        assert!(!shows(&old_annotation, &desired));
        let empty = svc(&format!(
            "{BASE}}}\nspec: {{type: LoadBalancer}}\nstatus: {{loadBalancer: {{}}}}\n"
        ));
        assert!(shows(&empty, &Desired::Cleared));
        assert_eq!(
            assigned_patch("blue", "web", &a),
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web", "namespace": "blue", "annotations": {"metallb.io/ip-allocated-from-pool": "lan"}},
                "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.200", "ipMode": "VIP"}]}},
            })
        );
        assert_eq!(
            cleared_patch(),
            json!({
                "metadata": {"annotations": {"metallb.io/ip-allocated-from-pool": null, "metallb.universe.tf/ip-allocated-from-pool": null}},
                "status": {"loadBalancer": {"ingress": null}},
            })
        );
    }
}
