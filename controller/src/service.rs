//! From a Kubernetes Service to what the allocator needs ([`allocator::Service`]), and back: the
//! status and annotation a [`Desired`] state means. Pure.
//!
//! Reading a Service (which Services are ours, the annotations in either spelling, the sharing
//! key, the ingress IPs) is `metallb_api::service`'s, the one reader the speaker uses too; this
//! module keeps what only the allocator needs: the requested IPs, the family policy, the
//! backend key, the ports, and the patches that write an assignment.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use metallb_api::constants::annotations;
use metallb_api::service::{annotation, deprecated_name, ingress_ips, local_traffic_policy};
use serde_json::{Value, json};

use crate::allocator::{self, Assignment, Desired, Event, FamilyPolicy, Port, Requested, reasons};

/// A Service as the allocator sees it, and the Events its annotations call for.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub service: allocator::Service,
    /// `deprecatedAnnotation` warnings for `metallb.universe.tf/*` annotations in use.
    pub deprecations: Vec<Event>,
}

pub fn describe(svc: &Service) -> Described {
    let spec = svc.spec.clone().unwrap_or_default();
    let mut deprecations = Vec::new();
    let mut read = |name: &str| {
        let found = annotation(svc, name)?;
        if found.deprecated {
            deprecations.push(Event::warning(
                reasons::DEPRECATED_ANNOTATION,
                format!(
                    "annotation {} is deprecated, use {name}",
                    deprecated_name(name)
                ),
            ));
        }
        Some(found.value.to_string())
    };
    let requested_text = read(annotations::LOAD_BALANCER_IPS).filter(|v| !v.is_empty());
    let pool = read(annotations::ADDRESS_POOL).filter(|v| !v.is_empty());
    // The value is the shared reader's (`metallb_api::service::sharing_key`: an empty value
    // means no sharing); reading it here only adds the deprecation warning. The allocator's
    // "no key" is the empty string.
    read(annotations::ALLOW_SHARED_IP);
    let sharing_key = metallb_api::service::sharing_key(svc)
        .unwrap_or_default()
        .to_string();

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
    let backend_key = if local_traffic_policy(svc) {
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
            status_ips: ingress_ips(svc),
        },
        deprecations,
    }
}

/// The pool annotation written back, in its deprecated spelling (removed when we write).
pub fn deprecated_pool_annotation() -> String {
    deprecated_name(annotations::IP_ALLOCATED_FROM_POOL)
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
    use std::collections::BTreeMap;

    use pretty_assertions::assert_eq;

    use super::*;

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
    fn an_empty_sharing_key_shares_with_nobody_and_an_old_spelling_is_warned_about() {
        let empty = svc(&format!(
            "{BASE}, annotations: {{metallb.io/allow-shared-ip: ''}}}}\nspec: {{type: LoadBalancer}}\n"
        ));
        assert_eq!(describe(&empty).service.sharing_key, "");
        assert_eq!(describe(&empty).deprecations, vec![]);
        let old = svc(&format!(
            "{BASE}, annotations: {{metallb.universe.tf/allow-shared-ip: dns}}}}\nspec: {{type: LoadBalancer}}\n"
        ));
        assert_eq!(
            describe(&old),
            Described {
                service: allocator::Service {
                    namespace: "blue".into(),
                    name: "web".into(),
                    labels: BTreeMap::from([("app".into(), "web".into())]),
                    sharing_key: "dns".into(),
                    ..Default::default()
                },
                deprecations: vec![Event::warning(
                    reasons::DEPRECATED_ANNOTATION,
                    "annotation metallb.universe.tf/allow-shared-ip is deprecated, use metallb.io/allow-shared-ip"
                )],
            }
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
