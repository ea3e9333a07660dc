//! Snapshots of the generated CRDs: a change to a type or a schema rule shows up here as a
//! reviewed diff (`cargo insta review`), and in manifests/crd through hack/generate.sh.

use metallb_api::crd;

#[test]
fn generated_crds_match_their_snapshots() {
    for c in crd::all() {
        insta::assert_snapshot!(crd::file_name(&c), crd::to_yaml(&c));
    }
}

#[test]
fn every_metallb_kind_is_namespaced_in_the_metallb_io_group() {
    let names: Vec<String> = crd::all()
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "bfdprofiles.metallb.io",
            "bgpadvertisements.metallb.io",
            "bgppeers.metallb.io",
            "communities.metallb.io",
            "configurationstates.metallb.io",
            "ipaddresspools.metallb.io",
            "l2advertisements.metallb.io",
            "servicebgpstatuses.metallb.io",
            "servicel2statuses.metallb.io",
            "metallbs.metallb.io",
        ]
    );
    assert!(
        crd::all()
            .iter()
            .all(|c| c.spec.scope == "Namespaced" && c.spec.group == "metallb.io")
    );
    let peers = crd::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "BGPPeer")
        .unwrap();
    let versions: Vec<(String, bool, bool)> = peers
        .spec
        .versions
        .iter()
        .map(|v| (v.name.clone(), v.served, v.storage))
        .collect();
    assert_eq!(
        versions,
        [
            ("v1beta2".to_string(), true, true),
            ("v1beta1".to_string(), true, false)
        ]
    );
}
