//! The CRD step, first of every rollout: the installed CRDs must be this release's, and objects
//! stored in an older version are rewritten in the current storage version, so that
//! `status.storedVersions` lists only that one and a later release may stop serving the old
//! versions.
//!
//! The operator does not install CRDs: the tool that installed it does (`kubectl apply -k`
//! applies `manifests/crd` before the operator's Deployment; OLM installs the bundle's CRDs
//! before the operator). It checks them ([`check`], pure) and migrates stored versions
//! ([`migrate`]): a CRD that is missing or older than this release holds the controller and
//! the speakers back; CRDs from a newer release (a storage version this release does not know)
//! are a downgrade across a storage-version change, which is refused.
//!
//! Migration writes every object back unchanged (a replace): the API server stores it again,
//! in the storage version. The step runs once per operator process, until it succeeds.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use semver::Version;
use serde_json::json;

use super::status::Problem;
use crate::metrics::Metrics;

/// One CRD whose objects are (partly) stored in versions other than the storage version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub crd: String,
    pub group: String,
    pub kind: String,
    pub plural: String,
    pub storage: String,
    /// `status.storedVersions` as found.
    pub stored: Vec<String>,
}

pub mod reasons {
    pub const MISSING: &str = "CRDsMissing";
    pub const OUTDATED: &str = "CRDsOutdated";
    pub const NOT_ESTABLISHED: &str = "CRDsNotEstablished";
    pub const DOWNGRADE_REFUSED: &str = "DowngradeRefused";
    pub const MIGRATION_FAILED: &str = "StorageMigrationFailed";
    pub const READ_FAILED: &str = "CRDsUnreadable";
}

fn storage_version(crd: &CustomResourceDefinition) -> Option<&str> {
    crd.spec
        .versions
        .iter()
        .find(|v| v.storage)
        .map(|v| v.name.as_str())
}

/// Checks the installed CRDs (`live`, in the order of `ours`) against this release's. Pure.
/// `Ok`: the CRDs are ready, with the migrations to run; `Err`: the workloads are held back.
pub fn check(
    ours: &[CustomResourceDefinition],
    live: &[Option<CustomResourceDefinition>],
    operator: &Version,
) -> Result<Vec<Migration>, Problem> {
    let apply_hint = "apply this release's CRDs (kubectl apply -k manifests/operator, or the OLM bundle) before its operator";
    let mut migrations = Vec::new();
    for (our, live) in ours.iter().zip(live) {
        let name = our.name_any();
        let Some(live) = live else {
            return Err(Problem {
                reason: reasons::MISSING,
                message: format!("CustomResourceDefinition {name} is not installed: {apply_hint}"),
            });
        };
        let known = |v: &str| our.spec.versions.iter().any(|o| o.name == v);
        let stored = live
            .status
            .as_ref()
            .and_then(|s| s.stored_versions.clone())
            .unwrap_or_default();
        let live_storage = storage_version(live).unwrap_or_default();
        if let Some(unknown) = std::iter::once(live_storage)
            .chain(stored.iter().map(String::as_str))
            .find(|v| !v.is_empty() && !known(v))
        {
            return Err(Problem {
                reason: reasons::DOWNGRADE_REFUSED,
                message: format!(
                    "refusing to run operator {operator} with {name}, which stores version {unknown} that {operator} does not know: a downgrade across a storage-version change would leave objects this release cannot read; install a release that knows {unknown}"
                ),
            });
        }
        let our_storage = storage_version(our).unwrap_or_default();
        let missing: Vec<&str> = our
            .spec
            .versions
            .iter()
            .filter(|o| o.served)
            .filter(|o| {
                !live
                    .spec
                    .versions
                    .iter()
                    .any(|l| l.name == o.name && l.served)
            })
            .map(|o| o.name.as_str())
            .collect();
        if !missing.is_empty() || live_storage != our_storage {
            let what = if missing.is_empty() {
                format!("stores {live_storage}, this release stores {our_storage}")
            } else {
                format!("does not serve {}", missing.join(", "))
            };
            return Err(Problem {
                reason: reasons::OUTDATED,
                message: format!(
                    "CustomResourceDefinition {name} {what}, which operator {operator} needs: {apply_hint}"
                ),
            });
        }
        let established = live
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if !established {
            return Err(Problem {
                reason: reasons::NOT_ESTABLISHED,
                message: format!("CustomResourceDefinition {name} is not established yet"),
            });
        }
        if stored.iter().any(|v| v != our_storage) {
            migrations.push(Migration {
                crd: name,
                group: our.spec.group.clone(),
                kind: our.spec.names.kind.clone(),
                plural: our.spec.names.plural.clone(),
                storage: our_storage.to_string(),
                stored,
            });
        }
    }
    Ok(migrations)
}

/// Reads the installed CRDs named like `ours`.
pub async fn read(
    client: &Client,
    ours: &[CustomResourceDefinition],
) -> Result<Vec<Option<CustomResourceDefinition>>, Problem> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut out = Vec::new();
    for crd in ours {
        out.push(api.get_opt(&crd.name_any()).await.map_err(|e| Problem {
            reason: reasons::READ_FAILED,
            message: format!(
                "failed to read CustomResourceDefinition {}: {e}",
                crd.name_any()
            ),
        })?);
    }
    Ok(out)
}

/// Rewrites every object of `m` in its storage version, then records that only the storage
/// version is stored. Returns how many objects were rewritten.
pub async fn migrate(client: &Client, metrics: &Metrics, m: &Migration) -> Result<usize, Problem> {
    let failed = |what: String, e: kube::Error| Problem {
        reason: reasons::MIGRATION_FAILED,
        message: format!(
            "migrating the stored versions of {} ({}) to {}: {what}: {e}",
            m.crd,
            m.stored.join(", "),
            m.storage
        ),
    };
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&m.group, &m.storage, &m.kind),
        &m.plural,
    );
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let list = all
        .list(&ListParams::default())
        .await
        .map_err(|e| failed("failed to list the objects".into(), e))?;
    let mut rewritten = 0;
    for obj in list.items {
        let name = obj.name_any();
        let api: Api<DynamicObject> = match obj.namespace() {
            Some(ns) => Api::namespaced_with(client.clone(), &ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        match api.replace(&name, &PostParams::default(), &obj).await {
            Ok(_) => {
                rewritten += 1;
                metrics.write("update", &m.kind);
            }
            // Deleted meanwhile, or changed meanwhile (and so written in the storage version).
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(failed(format!("failed to rewrite {name}"), e)),
        }
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch_status(
        &m.crd,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": { "storedVersions": [m.storage] } })),
    )
    .await
    .map_err(|e| failed("failed to update status.storedVersions".into(), e))?;
    metrics.write("patch", "CustomResourceDefinition");
    tracing::info!(crd = %m.crd, from = ?m.stored, to = %m.storage, rewritten, "migrated the stored versions");
    Ok(rewritten)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn ours() -> Vec<CustomResourceDefinition> {
        metallb_api::crd::all()
    }

    /// Our CRDs as the API server shows them: established, storing only the storage version.
    fn installed() -> Vec<Option<CustomResourceDefinition>> {
        ours()
            .into_iter()
            .map(|mut c| {
                let storage = storage_version(&c).unwrap().to_string();
                c.status = Some(
                    serde_json::from_value(json!({
                        "storedVersions": [storage],
                        "conditions": [{"type": "Established", "status": "True"}],
                    }))
                    .unwrap(),
                );
                Some(c)
            })
            .collect()
    }

    fn operator() -> Version {
        Version::new(0, 2, 0)
    }

    fn bgppeers(live: &mut [Option<CustomResourceDefinition>]) -> &mut CustomResourceDefinition {
        live.iter_mut()
            .flatten()
            .find(|c| c.name_any() == "bgppeers.metallb.io")
            .unwrap()
    }

    #[test]
    fn this_releases_crds_need_nothing() {
        assert_eq!(check(&ours(), &installed(), &operator()), Ok(vec![]));
    }

    #[test]
    fn objects_stored_in_an_older_version_are_migrated() {
        let mut live = installed();
        bgppeers(&mut live).status.as_mut().unwrap().stored_versions =
            Some(vec!["v1beta1".into(), "v1beta2".into()]);
        assert_eq!(
            check(&ours(), &live, &operator()),
            Ok(vec![Migration {
                crd: "bgppeers.metallb.io".into(),
                group: "metallb.io".into(),
                kind: "BGPPeer".into(),
                plural: "bgppeers".into(),
                storage: "v1beta2".into(),
                stored: vec!["v1beta1".into(), "v1beta2".into()],
            }])
        );
    }

    #[test]
    fn a_missing_or_older_crd_holds_the_rollout() {
        let mut live = installed();
        live[0] = None;
        let p = check(&ours(), &live, &operator()).unwrap_err();
        assert_eq!(p.reason, reasons::MISSING);
        assert_eq!(
            p.message,
            "CustomResourceDefinition bfdprofiles.metallb.io is not installed: apply this release's CRDs (kubectl apply -k manifests/operator, or the OLM bundle) before its operator"
        );

        let mut live = installed();
        let peers = bgppeers(&mut live);
        peers.spec.versions.retain(|v| v.name == "v1beta1");
        peers.spec.versions[0].storage = true;
        peers.status.as_mut().unwrap().stored_versions = Some(vec!["v1beta1".into()]);
        let p = check(&ours(), &live, &operator()).unwrap_err();
        assert_eq!(p.reason, reasons::OUTDATED);
        assert_eq!(
            p.message,
            "CustomResourceDefinition bgppeers.metallb.io does not serve v1beta2, which operator 0.2.0 needs: apply this release's CRDs (kubectl apply -k manifests/operator, or the OLM bundle) before its operator"
        );
    }

    #[test]
    fn crds_of_a_newer_release_with_another_storage_version_refuse_the_downgrade() {
        let mut live = installed();
        let peers = bgppeers(&mut live);
        let mut v3 = peers.spec.versions[1].clone();
        v3.name = "v1beta3".into();
        for v in &mut peers.spec.versions {
            v.storage = false;
        }
        peers.spec.versions.push(v3);
        peers.status.as_mut().unwrap().stored_versions =
            Some(vec!["v1beta2".into(), "v1beta3".into()]);
        let p = check(&ours(), &live, &operator()).unwrap_err();
        assert_eq!(p.reason, reasons::DOWNGRADE_REFUSED);
        assert_eq!(
            p.message,
            "refusing to run operator 0.2.0 with bgppeers.metallb.io, which stores version v1beta3 that 0.2.0 does not know: a downgrade across a storage-version change would leave objects this release cannot read; install a release that knows v1beta3"
        );
    }

    #[test]
    fn a_crd_not_yet_established_is_waited_for() {
        let mut live = installed();
        bgppeers(&mut live).status.as_mut().unwrap().conditions = None;
        assert_eq!(
            check(&ours(), &live, &operator()).unwrap_err().reason,
            reasons::NOT_ESTABLISHED
        );
    }
}
