//! Kubernetes objects → the election's inputs (pure).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node as K8sNode, Service as K8sService};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use metallb_api::service::{self, Handling};

use crate::announce::{Endpoint, Node, Service, ServiceKey};

/// The label EndpointSlices carry with their Service's name.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The Service as the election sees it, or `None` if this speaker does not handle it (not a
/// LoadBalancer, or another load-balancer class).
pub fn service(
    svc: &K8sService,
    slices: &[&EndpointSlice],
    lb_class: Option<&str>,
) -> Option<Service> {
    if service::handling(svc, lb_class) != Handling::Ours {
        return None;
    }
    let endpoints = slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            let c = e.conditions.as_ref();
            let ready = c.and_then(|c| c.ready);
            let serving = c.and_then(|c| c.serving);
            Endpoint {
                node: e.node_name.clone(),
                serving: ready != Some(false) || serving == Some(true),
            }
        })
        .collect();
    Some(Service {
        key: ServiceKey::new(
            svc.metadata.namespace.clone().unwrap_or_default(),
            svc.metadata.name.clone().unwrap_or_default(),
        ),
        labels: svc.metadata.labels.clone().unwrap_or_default(),
        ips: service::ingress_ips(svc),
        local_traffic_policy: service::local_traffic_policy(svc),
        shares_ip: service::sharing_key(svc).is_some(),
        endpoints,
    })
}

/// Every handled Service with its EndpointSlices.
pub fn services(
    services: &[&K8sService],
    slices: &[&EndpointSlice],
    lb_class: Option<&str>,
) -> Vec<Service> {
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        let ns = slice.metadata.namespace.clone().unwrap_or_default();
        if let Some(name) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        {
            by_service
                .entry((ns, name.clone()))
                .or_default()
                .push(slice);
        }
    }
    services
        .iter()
        .filter_map(|svc| {
            let key = (
                svc.metadata.namespace.clone().unwrap_or_default(),
                svc.metadata.name.clone().unwrap_or_default(),
            );
            let slices = by_service.get(&key).map(Vec::as_slice).unwrap_or_default();
            service(svc, slices, lb_class)
        })
        .collect()
}

/// A Node as the election sees it.
pub fn node(node: &K8sNode) -> Node {
    let network_unavailable = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "NetworkUnavailable" && c.status == "True")
        });
    Node {
        name: node.metadata.name.clone().unwrap_or_default(),
        labels: node.metadata.labels.clone().unwrap_or_default(),
        network_unavailable,
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_saphyr::from_str(text).unwrap()
    }

    fn web() -> K8sService {
        yaml(
            r#"
metadata:
  name: web
  namespace: demo
  labels: {app: web}
  annotations: {metallb.universe.tf/allow-shared-ip: key}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  ports: [{port: 80}]
status:
  loadBalancer:
    ingress: [{ip: 192.0.2.200}, {ip: "2001:db8:0:1::200"}, {hostname: lb.example}]
"#,
        )
    }

    fn slice(name: &str, service: &str, endpoints: &str) -> EndpointSlice {
        yaml(&format!(
            "metadata: {{name: {name}, namespace: demo, labels: {{kubernetes.io/service-name: {service}}}}}\naddressType: IPv4\nendpoints: {endpoints}\n"
        ))
    }

    #[test]
    fn a_loadbalancer_service_becomes_an_election_input_with_its_endpoints() {
        let a = slice(
            "web-a",
            "web",
            "[{addresses: [203.0.113.65], nodeName: node-1, conditions: {ready: true}}, \
              {addresses: [203.0.113.66], nodeName: node-2, conditions: {ready: false, serving: true}}]",
        );
        let b = slice(
            "web-b",
            "web",
            "[{addresses: [203.0.113.81], nodeName: node-2, conditions: {ready: false, serving: false}}, \
              {addresses: [203.0.113.97], nodeName: node-3}]",
        );
        let other = slice(
            "db-a",
            "db",
            "[{addresses: [203.0.113.70], nodeName: node-1}]",
        );
        let got = services(&[&web()], &[&a, &b, &other], None);
        assert_eq!(
            got,
            vec![Service {
                key: ServiceKey::new("demo", "web"),
                labels: [("app".to_string(), "web".to_string())].into(),
                ips: vec![
                    "192.0.2.200".parse().unwrap(),
                    "2001:db8:0:1::200".parse().unwrap()
                ],
                local_traffic_policy: true,
                shares_ip: true,
                endpoints: vec![
                    Endpoint {
                        node: Some("node-1".into()),
                        serving: true
                    },
                    Endpoint {
                        node: Some("node-2".into()),
                        serving: true
                    },
                    Endpoint {
                        node: Some("node-2".into()),
                        serving: false
                    },
                    Endpoint {
                        node: Some("node-3".into()),
                        serving: true
                    },
                ],
            }]
        );
    }

    #[test]
    fn other_types_and_other_load_balancer_classes_are_not_handled() {
        let mut cluster_ip = web();
        cluster_ip.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        assert_eq!(service(&cluster_ip, &[], None), None);
        let mut classed = web();
        classed.spec.as_mut().unwrap().load_balancer_class = Some("other".into());
        assert_eq!(service(&classed, &[], None), None);
        assert!(service(&classed, &[], Some("other")).is_some());
        assert_eq!(service(&web(), &[], Some("other")), None);
    }

    #[test]
    fn an_empty_sharing_key_does_not_share_as_the_controller_reads_it() {
        let mut empty = web();
        empty.metadata.annotations =
            Some([("metallb.io/allow-shared-ip".to_string(), String::new())].into());
        assert!(!service(&empty, &[], None).unwrap().shares_ip);
        assert!(service(&web(), &[], None).unwrap().shares_ip);
    }

    #[test]
    fn network_unavailable_comes_from_the_node_condition() {
        let n: K8sNode = yaml(
            "metadata: {name: node-1, labels: {zone: a}}\nstatus:\n  conditions:\n  - {type: Ready, status: \"True\"}\n  - {type: NetworkUnavailable, status: \"True\"}\n",
        );
        assert_eq!(
            node(&n),
            Node {
                name: "node-1".into(),
                labels: [("zone".to_string(), "a".to_string())].into(),
                network_unavailable: true,
            }
        );
        let ok: K8sNode = yaml(
            "metadata: {name: node-2}\nstatus:\n  conditions: [{type: NetworkUnavailable, status: \"False\"}]\n",
        );
        assert!(!node(&ok).network_unavailable);
    }
}
