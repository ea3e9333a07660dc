//! One ServiceL2Status per Service this node announces (spec §1.7): created with
//! `generateName: l2-`, labelled with node and Service, owned by the speaker pod; the speaker
//! deletes its own objects for Services it no longer announces.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use metallb_api::constants::labels::{NODE, SERVICE_NAME, SERVICE_NAMESPACE};
use metallb_api::v1beta1::{InterfaceInfo, MetalLBServiceL2Status, ServiceL2Status};
use tokio::sync::{Notify, watch};

use super::WriteError;
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

/// Keeps this node's ServiceL2Status objects equal to what it announces; `desired` closing
/// ends the writer after deleting every object of this node.
pub async fn run(
    client: Client,
    namespace: String,
    node: String,
    owner: Option<OwnerReference>,
    store: Store<ServiceL2Status>,
    store_changed: std::sync::Arc<Notify>,
    mut desired: watch::Receiver<Desired>,
) {
    let api: Api<ServiceL2Status> = Api::namespaced(client, &namespace);
    // Objects created but not yet seen by the watch, so one Service never gets two.
    let mut created: BTreeMap<String, ServiceL2Status> = BTreeMap::new();
    let mut retry = false;
    loop {
        let closed = tokio::select! {
            changed = desired.changed() => changed.is_err(),
            _ = store_changed.notified() => false,
            _ = tokio::time::sleep(Duration::from_secs(1)), if retry => false,
        };
        let want = if closed {
            Desired::new()
        } else {
            desired.borrow().clone()
        };
        let mut existing: Vec<ServiceL2Status> =
            store.state().iter().map(|o| (**o).clone()).collect();
        created.retain(|name, _| {
            !existing
                .iter()
                .any(|o| o.metadata.name.as_deref() == Some(name))
        });
        existing.extend(created.values().cloned());
        retry = false;
        for op in plan(&want, &existing, &node) {
            match apply(&api, &namespace, &node, owner.as_ref(), op).await {
                Ok(Some(obj)) => {
                    if let Some(name) = obj.metadata.name.clone() {
                        created.insert(name, obj);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "ServiceL2Status write failed, retrying");
                    retry = true;
                }
            }
        }
        if closed {
            return;
        }
    }
}

async fn apply(
    api: &Api<ServiceL2Status>,
    namespace: &str,
    node: &str,
    owner: Option<&OwnerReference>,
    op: Op,
) -> Result<Option<ServiceL2Status>, WriteError> {
    match op {
        Op::Create { service, status } => {
            let what = format!("the ServiceL2Status of {service}");
            let obj = api
                .create(
                    &PostParams::default(),
                    &new_object(&service, node, namespace, owner),
                )
                .await
                .map_err(|source| WriteError::Create {
                    what: what.clone(),
                    source,
                })?;
            let name = obj.metadata.name.clone().unwrap_or_default();
            let patch = serde_json::json!({ "status": status });
            let mut obj = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|source| WriteError::Update { what, source })?;
            obj.status = Some(status);
            tracing::info!(service = %service, name, "created ServiceL2Status");
            Ok(Some(obj))
        }
        Op::Update { name, status } => {
            let patch = serde_json::json!({ "status": status });
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|source| WriteError::Update {
                    what: format!("ServiceL2Status {name}"),
                    source,
                })?;
            Ok(None)
        }
        Op::Delete { name } => {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(source) => {
                    return Err(WriteError::Delete {
                        what: format!("ServiceL2Status {name}"),
                        source,
                    });
                }
            }
            tracing::info!(name, "deleted ServiceL2Status");
            Ok(None)
        }
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
        let owner = super::super::pod_owner("speaker-abcde", "1234");
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
