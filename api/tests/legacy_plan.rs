//! The operator's migration plan: what to create, when to do nothing, and what blocks it, for a
//! legacy ConfigMap and the objects already in the namespace.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use metallb_api::config::{BgpBackend, Resources};
use metallb_api::legacy::{
    self, ConditionSummary, Conflict, ConflictOrigin, EventSummary, Failure, MigratedObject, Plan,
    PlanOptions, config_hash,
};
use metallb_api::v1beta1::{IPAddressPool, IPAddressPoolSpec};
use pretty_assertions::assert_eq;

const FRR: PlanOptions = PlanOptions {
    backend: Some(BgpBackend::Frr),
};

/// The `config` text of the full-featured fixture.
fn full_config() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/legacy/full-frr.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    legacy::read_input(&text).unwrap().data
}

fn configmap(config: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some("config".into()),
            namespace: Some("metallb-system".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("config".into(), config.into())])),
        ..Default::default()
    }
}

fn annotated(mut cm: ConfigMap, annotations: BTreeMap<String, String>) -> ConfigMap {
    cm.metadata.annotations = Some(annotations);
    cm
}

/// The namespace after the API server stored these objects.
fn resources(objects: &[MigratedObject]) -> Resources {
    let mut res = Resources::default();
    for o in objects.iter().cloned() {
        match o {
            MigratedObject::Secret(o) => res.secrets.push(o),
            MigratedObject::BGPPeer(o) => res.peers.push(o),
            MigratedObject::IPAddressPool(o) => res.pools.push(o),
            MigratedObject::BGPAdvertisement(o) => res.bgp_advertisements.push(o),
            MigratedObject::L2Advertisement(o) => res.l2_advertisements.push(o),
            MigratedObject::BFDProfile(o) => res.bfd_profiles.push(o),
            MigratedObject::Community(o) => res.communities.push(o),
        }
    }
    res
}

fn migration(plan: Plan) -> legacy::Migration {
    match plan {
        Plan::Migrate(m) => m,
        other => panic!("expected a migration, got {:#?}", other.condition()),
    }
}

fn user_pool(name: &str, cidr: &str) -> IPAddressPool {
    let mut pool = IPAddressPool::new(
        name,
        IPAddressPoolSpec {
            addresses: Some(vec![cidr.into()]),
            ..Default::default()
        },
    );
    pool.metadata.namespace = Some("metallb-system".into());
    pool
}

#[test]
fn a_fresh_configmap_plans_every_object_then_the_annotations() {
    let config = full_config();
    let m = migration(legacy::plan(
        &configmap(&config),
        &Resources::default(),
        &FRR,
    ));
    let names: Vec<String> = m
        .create
        .iter()
        .map(|o| o.object_ref().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "Secret/peer1-bgp-password",
            "BGPPeer/peer1",
            "BGPPeer/peer2",
            "IPAddressPool/public-v4",
            "IPAddressPool/public-v6",
            "IPAddressPool/lan",
            "BGPAdvertisement/bgpadvertisement1",
            "BGPAdvertisement/bgpadvertisement2",
            "BGPAdvertisement/bgpadvertisement3",
            "L2Advertisement/l2advertisement1",
            "BFDProfile/fast-bfd",
            "BFDProfile/echo",
            "Community/communities",
        ]
    );
    assert!(m.already_present.is_empty());
    assert_eq!(
        m.configmap_annotations("2026-11-20T10:00:00Z"),
        BTreeMap::from([
            (
                "metallb.io/migrated-at".to_string(),
                "2026-11-20T10:00:00Z".to_string()
            ),
            ("metallb.io/migrated-objects".to_string(), names.join(",")),
            (
                "metallb.io/migrated-config-hash".to_string(),
                config_hash(&config)
            ),
        ])
    );
    let plan = Plan::Migrate(m);
    let message = "migrated ConfigMap metallb-system/config: 1 Secret, 2 BGPPeers, 3 IPAddressPools, \
                   3 BGPAdvertisements, 1 L2Advertisement, 2 BFDProfiles, 1 Community; \
                   warning: address-pools[0].name: pool \"01_Public_V4\" is IPAddressPool \"public-v4\": \
                   Services that ask for it in the metallb.universe.tf/address-pool (or metallb.io/address-pool) \
                   annotation must use the new name";
    assert_eq!(
        plan.condition(),
        ConditionSummary {
            status: true,
            reason: "Migrated",
            message: message.into()
        }
    );
    assert_eq!(
        plan.event(),
        Some(EventSummary {
            warning: false,
            reason: "Migrated",
            note: message.into()
        })
    );
}

#[test]
fn a_migrated_configmap_that_did_not_change_needs_nothing() {
    let config = full_config();
    let first = migration(legacy::plan(
        &configmap(&config),
        &Resources::default(),
        &FRR,
    ));
    let cm = annotated(
        configmap(&config),
        first.configmap_annotations("2026-11-20T10:00:00Z"),
    );
    let plan = legacy::plan(&cm, &resources(&first.create), &FRR);
    assert!(matches!(plan, Plan::AlreadyMigrated(_)), "{plan:#?}");
    assert!(plan.to_create().is_empty());
    assert_eq!(
        plan.condition(),
        ConditionSummary {
            status: true,
            reason: "Migrated",
            message: "ConfigMap metallb-system/config was migrated at 2026-11-20T10:00:00Z into 1 Secret, 2 BGPPeers, 3 IPAddressPools, 3 BGPAdvertisements, 1 L2Advertisement, \
                      2 BFDProfiles, 1 Community; \
                      MetalLB does not read it: delete it when you are satisfied with the metallb.io resources"
                .into()
        }
    );
    assert_eq!(plan.event(), None);
}

#[test]
fn a_configmap_edited_after_migration_is_reported_and_ignored() {
    let config = full_config();
    let first = migration(legacy::plan(
        &configmap(&config),
        &Resources::default(),
        &FRR,
    ));
    let edited = config.replace("hold-time: 120s", "hold-time: 180s");
    let cm = annotated(
        configmap(&edited),
        first.configmap_annotations("2026-11-20T10:00:00Z"),
    );
    let plan = legacy::plan(&cm, &resources(&first.create), &FRR);
    let Plan::ChangedAfterMigration(recorded) = &plan else {
        panic!("{plan:#?}");
    };
    assert_eq!(recorded.recorded_hash, Some(config_hash(&config)));
    assert_eq!(recorded.current_hash, config_hash(&edited));
    assert!(plan.to_create().is_empty());
    let message = "ConfigMap metallb-system/config changed after it was migrated at 2026-11-20T10:00:00Z; \
                   the change is ignored: edit the metallb.io resources instead";
    assert_eq!(
        (plan.condition(), plan.event()),
        (
            ConditionSummary {
                status: true,
                reason: "ChangedAfterMigration",
                message: message.into()
            },
            Some(EventSummary {
                warning: true,
                reason: "ChangedAfterMigration",
                note: message.into()
            })
        )
    );
}

#[test]
fn an_edit_that_makes_the_migrated_configmap_invalid_is_still_only_a_change() {
    let config = full_config();
    let first = migration(legacy::plan(
        &configmap(&config),
        &Resources::default(),
        &FRR,
    ));
    let cm = annotated(
        configmap("peers: [\n"),
        first.configmap_annotations("2026-11-20T10:00:00Z"),
    );
    let plan = legacy::plan(&cm, &resources(&first.create), &FRR);
    assert!(matches!(plan, Plan::ChangedAfterMigration(_)), "{plan:#?}");
}

#[test]
fn objects_of_an_interrupted_migration_are_not_created_again() {
    let config = full_config();
    let first = migration(legacy::plan(
        &configmap(&config),
        &Resources::default(),
        &FRR,
    ));
    // The operator stopped after creating the Secret and the first peer.
    let existing = resources(&first.create[..2]);
    let second = migration(legacy::plan(&configmap(&config), &existing, &FRR));
    assert_eq!(
        second
            .already_present
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["Secret/peer1-bgp-password", "BGPPeer/peer1"]
    );
    assert_eq!(second.create, first.create[2..].to_vec());
    assert_eq!(second.objects, first.objects);
    assert!(
        Plan::Migrate(second)
            .condition()
            .message
            .contains("(2 already present from an interrupted attempt)")
    );
}

#[test]
fn an_object_the_migration_did_not_create_is_a_conflict_and_nothing_is_created() {
    let config = full_config();
    let fresh = migration(legacy::plan(
        &configmap(&config),
        &Resources::default(),
        &FRR,
    ));

    // A pool the user made, as after MetalLB's own converter.
    let mut existing = Resources::default();
    existing.pools.push(user_pool("lan", "192.0.2.200/29"));
    // A peer migrated from another ConfigMap.
    let mut other = resources(&fresh.create[1..2]);
    other.peers[0]
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("metallb.io/migration-source".into(), "old-ns/config".into());
    existing.peers = other.peers;
    // A BFD profile migrated from this ConfigMap when it said something else.
    let mut earlier = resources(&fresh.create[10..11]);
    earlier.bfd_profiles[0]
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(
            "metallb.io/migrated-config-hash".into(),
            "sha256:0ld".into(),
        );
    existing.bfd_profiles = earlier.bfd_profiles;

    let plan = legacy::plan(&configmap(&config), &existing, &FRR);
    assert!(plan.to_create().is_empty());
    let Plan::Failed {
        failure: Failure::Conflict(conflicts),
        ..
    } = &plan
    else {
        panic!("{plan:#?}");
    };
    let conflict = |kind: &str, name: &str, origin| Conflict {
        object: legacy::ObjectRef {
            kind: kind.into(),
            name: name.into(),
        },
        origin,
    };
    assert_eq!(
        conflicts,
        &[
            conflict(
                "BGPPeer",
                "peer1",
                ConflictOrigin::OtherSource("old-ns/config".into())
            ),
            conflict("IPAddressPool", "lan", ConflictOrigin::NotMigrated),
            conflict(
                "BFDProfile",
                "fast-bfd",
                ConflictOrigin::EarlierContent("sha256:0ld".into())
            ),
        ]
    );
    assert_eq!(
        plan.condition(),
        ConditionSummary {
            status: false,
            reason: "Conflict",
            message: "ConfigMap metallb-system/config was not migrated, nothing was created: \
                      BGPPeer/peer1 exists and was migrated from ConfigMap old-ns/config; it is left untouched; \
                      IPAddressPool/lan exists and was not created by the migration; it is left untouched; \
                      BFDProfile/fast-bfd exists and was migrated from an earlier content of this ConfigMap (sha256:0ld); it is left untouched"
                .into()
        }
    );
    assert_eq!(plan.event().unwrap().reason, "Conflict");
}

#[test]
fn the_converted_objects_must_fit_with_the_objects_already_there() {
    let config = full_config();
    let mut existing = Resources::default();
    existing.pools.push(user_pool("office", "192.0.2.192/28"));
    let plan = legacy::plan(&configmap(&config), &existing, &FRR);
    assert!(plan.to_create().is_empty());
    assert_eq!(
        plan.condition(),
        ConditionSummary {
            status: false,
            reason: "InvalidConfig",
            message: "ConfigMap metallb-system/config was not migrated, nothing was created: \
                      address-pools[2].addresses[0]: CIDR \"192.0.2.200/29\" in pool \"lan\" overlaps with \
                      already defined CIDR \"192.0.2.192/28\" (pool \"office\", \"192.0.2.192/28\")"
                .into()
        }
    );
}

#[test]
fn problems_of_existing_objects_alone_do_not_block_the_migration() {
    let mut existing = Resources::default();
    existing.pools.push(user_pool("broken", "not-an-address"));
    let plan = legacy::plan(
        &configmap(
            "address-pools:\n- {name: lan, protocol: layer2, addresses: [192.0.2.200/29]}\n",
        ),
        &existing,
        &FRR,
    );
    assert_eq!(migration(plan).create.len(), 2);
}

#[test]
fn an_empty_configmap_has_nothing_to_migrate() {
    let mut no_data = configmap("");
    no_data.data = None;
    for cm in [
        no_data,
        configmap(""),
        configmap("# nothing yet\n"),
        configmap("{}\n"),
        configmap("peers:\n"),
    ] {
        let plan = legacy::plan(&cm, &Resources::default(), &FRR);
        assert_eq!(
            plan.condition(),
            ConditionSummary {
                status: true,
                reason: "NothingToMigrate",
                message:
                    "ConfigMap metallb-system/config holds no configuration: nothing to migrate"
                        .into()
            },
            "{:?}",
            cm.data
        );
        assert!(plan.to_create().is_empty());
    }
}

#[test]
fn event_notes_are_cut_to_the_api_limit_and_conditions_keep_every_problem() {
    // Forty pools without protocol: forty problems.
    let config: String = (0..40)
        .map(|i| format!("- {{name: pool-{i}, addresses: [192.0.2.{i}/32]}}\n"))
        .collect();
    let plan = legacy::plan(
        &configmap(&format!("address-pools:\n{config}")),
        &Resources::default(),
        &FRR,
    );
    let note = plan.event().unwrap().note;
    assert_eq!(note.len(), legacy::EVENT_NOTE_LIMIT);
    assert!(note.ends_with(" …(truncated)"), "{note}");
    assert_eq!(
        plan.condition().message.matches("missing protocol").count(),
        40
    );
}
