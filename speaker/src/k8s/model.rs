//! Kubernetes objects → the election's inputs (pure).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node as K8sNode, Service as K8sService};
use k8s_openapi::api::discovery::v1::{EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use metallb_api::service::{self, Handling};

use crate::announce::{Endpoint, Node, Service, ServiceKey};

/// The label EndpointSlices carry with their Service's name.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The Service as the election sees it, or `None` if this speaker does not handle it (not a
/// LoadBalancer, or another load-balancer class).
pub fn service(svc: &K8sService, slices: &[&Slice], lb_class: Option<&str>) -> Option<Service> {
    if service::handling(svc, lb_class) != Handling::Ours {
        return None;
    }
    let endpoints = slices
        .iter()
        .flat_map(|s| s.endpoints.iter().cloned())
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
    slices: &[&Slice],
    lb_class: Option<&str>,
) -> Vec<Service> {
    let mut by_service: BTreeMap<(String, String), Vec<&Slice>> = BTreeMap::new();
    for slice in slices {
        let ns = slice.metadata.namespace.clone().unwrap_or_default();
        if let Some(name) = &slice.service {
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

/// The annotation `kubectl apply` (client side) keeps a copy of the whole object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// An EndpointSlice as the speaker keeps it: the store holds every slice of the cluster, and
/// the speaker reads only the Service it belongs to and, per endpoint, its node and whether it
/// serves. Deserialized from the API's JSON straight into this (a kept `EndpointSlice` with
/// three endpoints took ≈ 1.6 KB even with everything else emptied: most of it the endpoints'
/// empty fields; this takes ≈ 150 bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    /// Name, namespace and resource version.
    metadata: ObjectMeta,
    /// The `kubernetes.io/service-name` label.
    pub service: Option<String>,
    pub endpoints: Vec<Endpoint>,
}

impl<'de> serde::Deserialize<'de> for Slice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Raw {
            metadata: ObjectMeta,
            #[serde(default)]
            endpoints: Option<Vec<RawEndpoint>>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct RawEndpoint {
            node_name: Option<String>,
            conditions: Option<EndpointConditions>,
        }
        let Raw {
            mut metadata,
            endpoints,
        } = Raw::deserialize(d)?;
        let service = metadata
            .labels
            .as_mut()
            .and_then(|l| l.remove(SERVICE_NAME_LABEL));
        let endpoints = endpoints
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                let c = e.conditions.as_ref();
                let ready = c.and_then(|c| c.ready);
                let serving = c.and_then(|c| c.serving);
                Endpoint {
                    node: e.node_name,
                    // Ready, or not ready but still serving (terminating): MetalLB's rule.
                    serving: ready != Some(false) || serving == Some(true),
                }
            })
            .collect();
        Ok(Self {
            metadata: ObjectMeta {
                name: metadata.name,
                namespace: metadata.namespace,
                resource_version: metadata.resource_version,
                ..Default::default()
            },
            service,
            endpoints,
        })
    }
}

impl kube::Resource for Slice {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        <EndpointSlice as k8s_openapi::Resource>::KIND.into()
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        <EndpointSlice as k8s_openapi::Resource>::GROUP.into()
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        <EndpointSlice as k8s_openapi::Resource>::VERSION.into()
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        <EndpointSlice as k8s_openapi::Resource>::URL_PATH_SEGMENT.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// What the speaker keeps of a Service: what [`service`] reads (type, class, traffic policy,
/// labels, annotations but the copy `kubectl apply` leaves in one, the ingress IPs) and what an
/// Event's object reference needs (name, namespace, UID, resource version).
pub fn slim_service(svc: &mut K8sService) {
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, ServiceSpec, ServiceStatus,
    };
    let meta = &mut svc.metadata;
    let mut annotations = meta.annotations.take();
    if let Some(a) = annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
    *meta = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        labels: meta.labels.take(),
        annotations,
        ..Default::default()
    };
    svc.spec = svc.spec.take().map(|s| ServiceSpec {
        type_: s.type_,
        load_balancer_class: s.load_balancer_class,
        external_traffic_policy: s.external_traffic_policy,
        ..Default::default()
    });
    svc.status = svc.status.take().map(|s| ServiceStatus {
        load_balancer: s.load_balancer.map(|lb| LoadBalancerStatus {
            ingress: lb.ingress.map(|all| {
                all.into_iter()
                    .map(|i| LoadBalancerIngress {
                        ip: i.ip,
                        ..Default::default()
                    })
                    .collect()
            }),
        }),
        ..Default::default()
    });
}

/// What the speaker keeps of a Node: its name, labels and conditions ([`node`] and the
/// advertisements' node selectors read nothing else; a Node's status lists its images).
pub fn slim_node(n: &mut K8sNode) {
    let meta = &mut n.metadata;
    *meta = ObjectMeta {
        name: meta.name.take(),
        labels: meta.labels.take(),
        ..Default::default()
    };
    n.spec = None;
    n.status = n
        .status
        .take()
        .map(|s| k8s_openapi::api::core::v1::NodeStatus {
            conditions: s.conditions,
            ..Default::default()
        });
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

    fn ep(node: Option<&str>, serving: bool) -> Endpoint {
        Endpoint {
            node: node.map(str::to_string),
            serving,
        }
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

    fn slice(name: &str, service: &str, endpoints: &str) -> Slice {
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
                    ep(Some("node-1"), true),
                    ep(Some("node-2"), true),
                    ep(Some("node-2"), false),
                    ep(Some("node-3"), true),
                ],
            }]
        );
    }

    #[test]
    fn a_slice_keeps_its_service_and_each_endpoints_node_and_serving_state_only() {
        let text = "metadata:\n  name: web-a\n  namespace: demo\n  uid: 6b1f\n  resourceVersion: \"42\"\n  \
             labels: {kubernetes.io/service-name: web, endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io}\n  \
             ownerReferences: [{apiVersion: v1, kind: Service, name: web, uid: 9c2e}]\n\
             addressType: IPv4\nports: [{name: http, port: 8080, protocol: TCP}]\n\
             endpoints:\n\
             - addresses: [203.0.113.65]\n  nodeName: node-1\n  zone: a\n  \
               conditions: {ready: false, serving: true, terminating: true}\n  \
               targetRef: {kind: Pod, namespace: demo, name: web-1, uid: 77aa}\n\
             - addresses: [203.0.113.66]\n  nodeName: node-2\n  conditions: {ready: false, serving: false}\n\
             - addresses: [203.0.113.67]\n";
        // As the API sends it (JSON) and as the tests write it (YAML).
        let json: serde_json::Value = yaml(text);
        let from_json: Slice = serde_json::from_value(json).unwrap();
        let from_yaml: Slice = yaml(text);
        assert_eq!(from_json, from_yaml);
        assert_eq!(
            from_json,
            Slice {
                metadata: ObjectMeta {
                    name: Some("web-a".into()),
                    namespace: Some("demo".into()),
                    resource_version: Some("42".into()),
                    ..Default::default()
                },
                service: Some("web".into()),
                endpoints: vec![
                    ep(Some("node-1"), true),
                    ep(Some("node-2"), false),
                    ep(None, true),
                ],
            }
        );
        // A slice without endpoints (a Service with no pods) has none.
        let empty: Slice = yaml(
            "metadata: {name: db-a, namespace: demo, labels: {kubernetes.io/service-name: db}}\naddressType: IPv4\nendpoints: null\n",
        );
        assert_eq!(empty.endpoints, vec![]);
        assert_eq!(<Slice as kube::Resource>::kind(&()), "EndpointSlice");
        assert_eq!(<Slice as kube::Resource>::plural(&()), "endpointslices");
        assert_eq!(
            <Slice as kube::Resource>::api_version(&()),
            "discovery.k8s.io/v1"
        );
    }

    #[test]
    fn a_slimmed_service_gives_the_same_election_input_and_event_reference() {
        let mut svc = web();
        svc.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(LAST_APPLIED.into(), "{\"kind\":\"Service\"}".into());
        svc.metadata.uid = Some("9c2e".into());
        svc.metadata.resource_version = Some("7".into());
        let spec = svc.spec.as_mut().unwrap();
        spec.cluster_ips = Some(vec!["10.96.0.10".into()]);
        spec.selector = Some([("app".to_string(), "web".to_string())].into());
        let full = svc.clone();
        let slice = slice(
            "web-a",
            "web",
            "[{addresses: [203.0.113.65], nodeName: node-1}]",
        );
        let before = services(&[&svc], &[&slice], None);
        slim_service(&mut svc);
        assert_eq!(services(&[&svc], &[&slice], None), before);
        assert!(
            !svc.metadata
                .annotations
                .as_ref()
                .unwrap()
                .contains_key(LAST_APPLIED)
        );
        assert_eq!(svc.spec.as_ref().unwrap().selector, None);
        // An Event still names the Service exactly.
        assert_eq!(
            kube::Resource::object_ref(&svc, &()),
            kube::Resource::object_ref(&full, &())
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
        let mut n: K8sNode = yaml(
            "metadata: {name: node-1, labels: {zone: a}, annotations: {a: b}}\nspec: {podCIDR: 10.0.0.0/24}\nstatus:\n  conditions:\n  - {type: Ready, status: \"True\"}\n  - {type: NetworkUnavailable, status: \"True\"}\n  images: [{names: [registry.example/a:1], sizeBytes: 1}]\n",
        );
        let before = node(&n);
        slim_node(&mut n);
        assert_eq!(node(&n), before);
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"labels":{"zone":"a"},"name":"node-1"},"status":{"conditions":[{"status":"True","type":"Ready"},{"status":"True","type":"NetworkUnavailable"}]}}"#
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
