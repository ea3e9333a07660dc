//! End-to-end tests of the legacy ConfigMap migration: the operator (installed by
//! hack/local-up.sh with the minimal MetalLB resource) finds MetalLB's ≤0.12 ConfigMap `config`
//! in its namespace, converts it, and reports the outcome in the `ConfigMigrated` condition.
//! Every test removes its ConfigMap and what the migration created.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::DeleteParams;
use kube::{Api, ResourceExt};
use metallb_api::v1beta1::{IPAddressPool, L2Advertisement, MetalLB};
use metallb_e2e::harness::{Cluster, wait_for};

mod common;

const NS: &str = common::OPERATOR_NS;
const MIGRATED: &str = "metallb.io/migrated-from=legacy-configmap";
const TIMEOUT: Duration = Duration::from_secs(120);

fn configmap(config: &str) -> String {
    let indented: String = config.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: config, namespace: {NS}}}\ndata:\n  config: |\n{indented}"
    )
}

/// Waits for `ConfigMigrated` with this reason; returns (status, message).
async fn migrated_condition(cluster: &Cluster, reason: &str) -> (String, String) {
    let cr = common::wait_condition(cluster, "metallb", "ConfigMigrated", TIMEOUT, |c| {
        c.reason == reason
    })
    .await;
    let c = common::condition(&cr, "ConfigMigrated").expect("the condition just seen");
    (c.status, c.message)
}

/// Deletes the ConfigMap and everything the migration created.
async fn clean(cluster: &Cluster) {
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), NS);
    let _ = cms.delete("config", &DeleteParams::default()).await;
    let _ = cluster.kubectl(&[
        "-n",
        NS,
        "delete",
        "ipaddresspools,l2advertisements,bgpadvertisements,bgppeers,bfdprofiles,communities,secrets",
        "-l",
        MIGRATED,
        "--ignore-not-found",
    ]);
}

async fn migrated_objects(cluster: &Cluster) -> Vec<String> {
    let out = cluster
        .kubectl(&[
            "-n",
            NS,
            "get",
            "ipaddresspools,l2advertisements,bgpadvertisements,bgppeers,secrets",
            "-l",
            MIGRATED,
            "-o",
            "name",
        ])
        .expect("kubectl get");
    let mut names: Vec<String> = out.lines().map(String::from).collect();
    names.sort();
    names
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_legacy_configmap_becomes_resources_and_a_service_gets_an_ip_from_the_converted_pool() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    clean(&cluster).await;
    cluster
        .apply_yaml(
            Some(NS),
            &configmap(
                "address-pools:\n- name: Legacy_LAN\n  protocol: layer2\n  addresses:\n  - 192.0.2.230-192.0.2.232\n  auto-assign: false\n",
            ),
        )
        .await
        .unwrap();
    let (status, message) = migrated_condition(&cluster, "Migrated").await;
    assert_eq!(status, "True");
    assert!(
        message.contains("1 IPAddressPool") && message.contains("1 L2Advertisement"),
        "{message}"
    );
    assert_eq!(
        migrated_objects(&cluster).await,
        [
            "ipaddresspool.metallb.io/legacy-lan",
            "l2advertisement.metallb.io/l2advertisement1"
        ]
    );
    let pools: Api<IPAddressPool> = Api::namespaced(cluster.client(), NS);
    let pool = pools.get("legacy-lan").await.unwrap();
    assert_eq!(
        pool.spec.addresses.as_deref(),
        Some(&["192.0.2.230-192.0.2.232".to_string()][..])
    );
    assert_eq!(pool.spec.auto_assign, Some(false));
    let ads: Api<L2Advertisement> = Api::namespaced(cluster.client(), NS);
    assert_eq!(
        ads.get("l2advertisement1")
            .await
            .unwrap()
            .spec
            .ip_address_pools
            .as_deref(),
        Some(&["legacy-lan".to_string()][..])
    );
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), NS);
    let cm = cms.get("config").await.unwrap();
    let annotations = cm.annotations();
    assert!(
        annotations.contains_key("metallb.io/migrated-at"),
        "{annotations:?}"
    );
    assert_eq!(
        annotations
            .get("metallb.io/migrated-objects")
            .map(String::as_str),
        Some("IPAddressPool/legacy-lan,L2Advertisement/l2advertisement1")
    );

    // A Service asking for the converted pool gets an address from it.
    let ns = cluster.namespace("migrated").await.unwrap();
    cluster
        .apply_yaml(
            Some(ns.name()),
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations: {metallb.io/address-pool: legacy-lan}\nspec:\n  type: LoadBalancer\n  ports: [{port: 80}]\n",
        )
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(cluster.client(), ns.name());
    let ip = wait_for(
        "Service web to get an IP from legacy-lan",
        TIMEOUT,
        || async {
            let svc = services.get("web").await.map_err(|e| e.to_string())?;
            svc.status
                .and_then(|s| s.load_balancer)
                .and_then(|lb| lb.ingress)
                .and_then(|i| i.first().and_then(|i| i.ip.clone()))
                .ok_or_else(|| "pending".to_string())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ["192.0.2.230", "192.0.2.231", "192.0.2.232"].contains(&ip.as_str()),
        "{ip}"
    );

    // Reconciling again creates nothing new, and an edit of the ConfigMap is reported, not applied.
    // The edit's report comes from a reconcile that ran after it: by then any duplicate would
    // exist.
    cluster
        .apply_yaml(Some(NS), &configmap("address-pools:\n- name: other\n  protocol: layer2\n  addresses: [192.0.2.233/32]\n"))
        .await
        .unwrap();
    let (_, message) = migrated_condition(&cluster, "ChangedAfterMigration").await;
    assert_eq!(migrated_objects(&cluster).await.len(), 2);
    assert!(message.contains("the change is ignored"), "{message}");
    assert!(pools.get_opt("other").await.unwrap().is_none());

    drop(ns);
    clean(&cluster).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn an_invalid_configmap_is_reported_and_creates_nothing() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    clean(&cluster).await;
    cluster
        .apply_yaml(
            Some(NS),
            &configmap(
                "address-pools:\n- name: a\n  protocol: layer2\n  addresses: [192.0.2.224/28]\n- name: b\n  protocol: layer2\n  addresses: [192.0.2.230/32]\n",
            ),
        )
        .await
        .unwrap();
    let (status, message) = migrated_condition(&cluster, "InvalidConfig").await;
    assert_eq!(status, "False");
    assert!(
        message.contains("address-pools[1].addresses[0]") && message.contains("overlaps"),
        "{message}"
    );
    assert!(migrated_objects(&cluster).await.is_empty());
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), NS);
    assert!(
        !cms.get("config")
            .await
            .unwrap()
            .annotations()
            .contains_key("metallb.io/migrated-at")
    );
    clean(&cluster).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn an_existing_object_with_the_same_name_is_a_conflict_and_is_left_untouched() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    clean(&cluster).await;
    let mine = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: taken}\nspec: {addresses: [192.0.2.236/32], autoAssign: false}\n";
    cluster.apply_yaml(Some(NS), mine).await.unwrap();
    let pools: Api<IPAddressPool> = Api::namespaced(cluster.client(), NS);
    let before = pools.get("taken").await.unwrap();
    cluster
        .apply_yaml(Some(NS), &configmap("address-pools:\n- name: taken\n  protocol: layer2\n  addresses: [192.0.2.237/32]\n"))
        .await
        .unwrap();
    let (status, message) = migrated_condition(&cluster, "Conflict").await;
    assert_eq!(status, "False");
    assert!(message.contains("IPAddressPool/taken"), "{message}");
    let after = pools.get("taken").await.unwrap();
    assert_eq!(after.spec, before.spec);
    // The controller keeps the pool's status counters (a status write changes the
    // resourceVersion); the operator must not have touched the object itself.
    assert_eq!(
        after.metadata.generation, before.metadata.generation,
        "the existing pool's spec was not written"
    );
    let managers: Vec<_> = after
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        !managers.iter().any(|m| m == "metallb-operator"),
        "the operator wrote the existing pool: {managers:?}"
    );
    assert!(migrated_objects(&cluster).await.is_empty());
    pools
        .delete("taken", &DeleteParams::default())
        .await
        .unwrap();
    clean(&cluster).await;
    // With the ConfigMap gone, the failure is not reported any more.
    let api: Api<MetalLB> = Api::namespaced(cluster.client(), NS);
    wait_for(
        "the Conflict condition to go with its ConfigMap",
        TIMEOUT,
        || async {
            let cr = api.get("metallb").await.map_err(|e| e.to_string())?;
            let conflict =
                common::condition(&cr, "ConfigMigrated").is_some_and(|c| c.reason == "Conflict");
            if conflict {
                Err("still reported".to_string())
            } else {
                Ok(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}
