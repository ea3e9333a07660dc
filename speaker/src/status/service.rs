//! The per-Service status objects a speaker keeps (spec §1.7, §1.8): one ServiceL2Status per
//! Service this node announces in L2 mode, one ServiceBGPStatus per Service it advertises over
//! BGP. Each is created with `generateName` (`l2-`, `bgp-`), labelled with node and Service,
//! owned by the speaker pod; the speaker deletes its own objects for Services it no longer
//! announces. Pure: [`plan`] says which writes turn what exists into what is desired;
//! [`crate::writer`] sends them.

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use kube::core::object::HasStatus;
use metallb_api::constants::labels::{NODE, SERVICE_NAME, SERVICE_NAMESPACE};
use metallb_api::v1beta1::{
    InterfaceInfo, MetalLBServiceBGPStatus, MetalLBServiceL2Status, ServiceBGPStatus,
    ServiceL2Status,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::announce::ServiceKey;

/// A kind of per-Service status object.
pub trait Kind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + HasStatus<Status = Self::Body>
    + Clone
    + Debug
    + Default
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The status body.
    type Body: Clone + PartialEq + Debug + Serialize + Send + Sync;
    /// What the speaker knows per Service (interfaces, peers).
    type Value: Clone + PartialEq + Debug + Send + Sync;
    const GENERATE_NAME: &'static str;
    fn body(service: &ServiceKey, node: &str, value: &Self::Value) -> Self::Body;
}

impl Kind for ServiceL2Status {
    type Body = MetalLBServiceL2Status;
    /// The interfaces, when an advertisement restricts them.
    type Value = Option<Vec<String>>;
    const GENERATE_NAME: &'static str = "l2-";

    fn body(service: &ServiceKey, node: &str, interfaces: &Self::Value) -> Self::Body {
        MetalLBServiceL2Status {
            node: Some(node.to_string()),
            service_name: Some(service.name.clone()),
            service_namespace: Some(service.namespace.clone()),
            interfaces: interfaces.as_ref().map(|list| {
                list.iter()
                    .map(|name| InterfaceInfo {
                        name: Some(name.clone()),
                    })
                    .collect()
            }),
        }
    }
}

impl Kind for ServiceBGPStatus {
    type Body = MetalLBServiceBGPStatus;
    /// The BGPPeer names, sorted.
    type Value = Vec<String>;
    const GENERATE_NAME: &'static str = "bgp-";

    fn body(service: &ServiceKey, node: &str, peers: &Self::Value) -> Self::Body {
        MetalLBServiceBGPStatus {
            node: Some(node.to_string()),
            service_name: Some(service.name.clone()),
            service_namespace: Some(service.namespace.clone()),
            peers: Some(peers.clone()),
        }
    }
}

/// What this node announces in L2 mode: Service → the interfaces, when restricted.
pub type Desired = BTreeMap<ServiceKey, Option<Vec<String>>>;

/// One API write.
#[derive(Debug, Clone, PartialEq)]
pub enum Op<B> {
    Create { service: ServiceKey, status: B },
    Update { name: String, status: B },
    Delete { name: String },
}

fn service_of<K: Kind>(obj: &K) -> Option<ServiceKey> {
    let labels = obj.meta().labels.as_ref()?;
    Some(ServiceKey::new(
        labels.get(SERVICE_NAMESPACE)?,
        labels.get(SERVICE_NAME)?,
    ))
}

fn name_of<K: Kind>(obj: &K) -> String {
    obj.meta().name.clone().unwrap_or_default()
}

/// The writes that turn `existing` (this node's objects) into `desired`.
pub fn plan<K: Kind>(
    desired: &BTreeMap<ServiceKey, K::Value>,
    existing: &[K],
    node: &str,
) -> Vec<Op<K::Body>> {
    let mut ops = Vec::new();
    let mut by_service: BTreeMap<ServiceKey, Vec<&K>> = BTreeMap::new();
    for obj in existing {
        match service_of(obj) {
            Some(key) => by_service.entry(key).or_default().push(obj),
            None => ops.push(Op::Delete { name: name_of(obj) }),
        }
    }
    for (service, value) in desired {
        let want = K::body(service, node, value);
        let mut objs = by_service.remove(service).unwrap_or_default();
        objs.sort_by_key(|o| name_of(*o));
        match objs.split_first() {
            None => ops.push(Op::Create {
                service: service.clone(),
                status: want,
            }),
            Some((keep, extra)) => {
                if keep.status() != Some(&want) {
                    ops.push(Op::Update {
                        name: name_of(*keep),
                        status: want,
                    });
                }
                ops.extend(extra.iter().map(|o| Op::Delete { name: name_of(*o) }));
            }
        }
    }
    for objs in by_service.into_values() {
        ops.extend(objs.into_iter().map(|o| Op::Delete { name: name_of(o) }));
    }
    ops
}

/// The object created for `service` (status is written right after, through the status
/// subresource).
pub fn new_object<K: Kind>(
    service: &ServiceKey,
    node: &str,
    namespace: &str,
    owner: Option<&OwnerReference>,
) -> K {
    let mut obj = K::default();
    *obj.meta_mut() = ObjectMeta {
        generate_name: Some(K::GENERATE_NAME.into()),
        namespace: Some(namespace.into()),
        labels: Some(
            [
                (NODE.to_string(), node.to_string()),
                (SERVICE_NAME.to_string(), service.name.clone()),
                (SERVICE_NAMESPACE.to_string(), service.namespace.clone()),
            ]
            .into(),
        ),
        owner_references: owner.map(|o| vec![o.clone()]),
        ..Default::default()
    };
    obj
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn existing(
        name: &str,
        service: &str,
        node: &str,
        interfaces: Option<Vec<String>>,
    ) -> ServiceL2Status {
        let key = ServiceKey::new("demo", service);
        let mut obj: ServiceL2Status = new_object(&key, node, "metallb-system", None);
        obj.metadata.name = Some(name.into());
        obj.status = Some(ServiceL2Status::body(&key, node, &interfaces));
        obj
    }

    #[test]
    fn the_created_object_has_metallbs_name_labels_and_owner() {
        let owner = metallb_api::configstate::pod_owner("speaker-abcde", "1234");
        let obj: ServiceL2Status = new_object(
            &ServiceKey::new("demo", "web"),
            "node-1",
            "metallb-system",
            Some(&owner),
        );
        assert_eq!(
            serde_json::to_value(&obj).unwrap(),
            serde_json::json!({
                "apiVersion": "metallb.io/v1beta1",
                "kind": "ServiceL2Status",
                "metadata": {
                    "generateName": "l2-",
                    "namespace": "metallb-system",
                    "labels": {
                        "metallb.io/node": "node-1",
                        "metallb.io/service-name": "web",
                        "metallb.io/service-namespace": "demo"
                    },
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "speaker-abcde", "uid": "1234"}]
                },
                "spec": {}
            })
        );
        assert_eq!(
            serde_json::to_value(ServiceL2Status::body(
                &ServiceKey::new("demo", "web"),
                "node-1",
                &Some(vec!["eth0".into()])
            ))
            .unwrap(),
            serde_json::json!({"node": "node-1", "serviceName": "web", "serviceNamespace": "demo", "interfaces": [{"name": "eth0"}]})
        );
    }

    #[test]
    fn missing_objects_are_created_changed_ones_updated_and_stale_ones_deleted() {
        let desired: Desired = [
            (ServiceKey::new("demo", "new"), None),
            (ServiceKey::new("demo", "same"), None),
            (
                ServiceKey::new("demo", "moved-interfaces"),
                Some(vec!["eth1".into()]),
            ),
        ]
        .into();
        let have = [
            existing("l2-a", "same", "node-1", None),
            existing(
                "l2-b",
                "moved-interfaces",
                "node-1",
                Some(vec!["eth0".into()]),
            ),
            existing("l2-c", "gone", "node-1", None),
            existing("l2-d", "same", "node-1", None),
        ];
        assert_eq!(
            plan(&desired, &have, "node-1"),
            vec![
                Op::Update {
                    name: "l2-b".into(),
                    status: ServiceL2Status::body(
                        &ServiceKey::new("demo", "moved-interfaces"),
                        "node-1",
                        &Some(vec!["eth1".into()])
                    ),
                },
                Op::Create {
                    service: ServiceKey::new("demo", "new"),
                    status: ServiceL2Status::body(&ServiceKey::new("demo", "new"), "node-1", &None),
                },
                Op::Delete {
                    name: "l2-d".into()
                },
                Op::Delete {
                    name: "l2-c".into()
                },
            ]
        );
    }

    #[test]
    fn nothing_announced_deletes_everything_of_this_node() {
        let have = [existing("l2-a", "web", "node-1", None)];
        assert_eq!(
            plan(&Desired::new(), &have, "node-1"),
            vec![Op::Delete {
                name: "l2-a".into()
            }]
        );
        assert_eq!(
            plan::<ServiceL2Status>(&Desired::new(), &[], "node-1"),
            vec![]
        );
    }
}

#[cfg(test)]
mod bgp_tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn a_bgp_status_lists_the_peers_and_is_created_with_the_bgp_prefix() {
        let key = ServiceKey::new("demo", "web");
        let peers = vec!["spine".to_string(), "tor-a".to_string()];
        let desired = BTreeMap::from([(key.clone(), peers.clone())]);
        assert_eq!(
            plan::<ServiceBGPStatus>(&desired, &[], "node-1"),
            vec![Op::Create {
                service: key.clone(),
                status: MetalLBServiceBGPStatus {
                    node: Some("node-1".into()),
                    service_name: Some("web".into()),
                    service_namespace: Some("demo".into()),
                    peers: Some(peers),
                },
            }]
        );
        let obj: ServiceBGPStatus = new_object(&key, "node-1", "metallb-system", None);
        assert_eq!(obj.metadata.generate_name.as_deref(), Some("bgp-"));
    }
}
