//! One ServiceL2Status per Service this node announces (spec §1.7): created with
//! `generateName: l2-`, labelled with node and Service, owned by the speaker pod; the speaker
//! deletes its own objects for Services it no longer announces. Pure: [`plan`] says which
//! writes turn what exists into what is desired; [`crate::writer`] sends them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use metallb_api::constants::labels::{NODE, SERVICE_NAME, SERVICE_NAMESPACE};
use metallb_api::v1beta1::{InterfaceInfo, MetalLBServiceL2Status, ServiceL2Status};

use crate::announce::ServiceKey;

/// What this node announces: Service → the interfaces, when an advertisement restricts them.
pub type Desired = BTreeMap<ServiceKey, Option<Vec<String>>>;

/// One API write.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Create {
        service: ServiceKey,
        status: MetalLBServiceL2Status,
    },
    Update {
        name: String,
        status: MetalLBServiceL2Status,
    },
    Delete {
        name: String,
    },
}

/// The status an object for `service` announced by `node` must have.
pub fn status(
    service: &ServiceKey,
    node: &str,
    interfaces: &Option<Vec<String>>,
) -> MetalLBServiceL2Status {
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

fn service_of(obj: &ServiceL2Status) -> Option<ServiceKey> {
    let labels = obj.metadata.labels.as_ref()?;
    Some(ServiceKey::new(
        labels.get(SERVICE_NAMESPACE)?,
        labels.get(SERVICE_NAME)?,
    ))
}

/// The writes that turn `existing` (this node's objects) into `desired`.
pub fn plan(desired: &Desired, existing: &[ServiceL2Status], node: &str) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut by_service: BTreeMap<ServiceKey, Vec<&ServiceL2Status>> = BTreeMap::new();
    for obj in existing {
        match service_of(obj) {
            Some(key) => by_service.entry(key).or_default().push(obj),
            None => ops.push(Op::Delete {
                name: obj.metadata.name.clone().unwrap_or_default(),
            }),
        }
    }
    for (service, interfaces) in desired {
        let want = status(service, node, interfaces);
        let mut objs = by_service.remove(service).unwrap_or_default();
        objs.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        match objs.split_first() {
            None => ops.push(Op::Create {
                service: service.clone(),
                status: want,
            }),
            Some((keep, extra)) => {
                if keep.status.as_ref() != Some(&want) {
                    ops.push(Op::Update {
                        name: keep.metadata.name.clone().unwrap_or_default(),
                        status: want,
                    });
                }
                ops.extend(extra.iter().map(|o| Op::Delete {
                    name: o.metadata.name.clone().unwrap_or_default(),
                }));
            }
        }
    }
    for objs in by_service.into_values() {
        ops.extend(objs.into_iter().map(|o| Op::Delete {
            name: o.metadata.name.clone().unwrap_or_default(),
        }));
    }
    ops
}

/// The object created for `service` (status is written right after, through the status
/// subresource).
pub fn new_object(
    service: &ServiceKey,
    node: &str,
    namespace: &str,
    owner: Option<&OwnerReference>,
) -> ServiceL2Status {
    ServiceL2Status {
        metadata: ObjectMeta {
            generate_name: Some("l2-".into()),
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
        },
        ..Default::default()
    }
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
        let mut obj = new_object(&key, node, "metallb-system", None);
        obj.metadata.name = Some(name.into());
        obj.status = Some(status(&key, node, &interfaces));
        obj
    }

    #[test]
    fn the_created_object_has_metallbs_name_labels_and_owner() {
        let owner = metallb_api::configstate::pod_owner("speaker-abcde", "1234");
        let obj = new_object(
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
            serde_json::to_value(status(
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
                    status: status(
                        &ServiceKey::new("demo", "moved-interfaces"),
                        "node-1",
                        &Some(vec!["eth1".into()])
                    ),
                },
                Op::Create {
                    service: ServiceKey::new("demo", "new"),
                    status: status(&ServiceKey::new("demo", "new"), "node-1", &None),
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
        assert_eq!(plan(&Desired::new(), &[], "node-1"), vec![]);
    }
}
