//! The speakers' memberlist key. The controller is its one owner, as MetalLB's controller is:
//! the core asks for it when it starts leading, and the writer creates the Secret if it is
//! missing (an existing key is never replaced, or the speakers would stop understanding each
//! other). Format, as MetalLB's: 16 random bytes in unpadded standard base64 under the key
//! `secretkey`, in a Secret owned by the controller Deployment so it goes away with MetalLB.
//!
//! Pure but for [`key`], which draws the random bytes (called by the writer, never by the core,
//! so the core's output stays a function of its input).

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use metallb_api::constants::names;

use crate::core::Memberlist;
use crate::observe::Owner;

/// The Secret holding `key`.
pub fn secret(namespace: &str, name: &str, owner: Option<&OwnerReference>, key: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            owner_references: owner.map(|o| vec![o.clone()]),
            ..Default::default()
        },
        data: Some(
            [(
                names::MEMBERLIST_SECRET_KEY.to_string(),
                ByteString(key.as_bytes().to_vec()),
            )]
            .into(),
        ),
        ..Default::default()
    }
}

/// What the core is told to create, given what the start-up read of the controller Deployment
/// (`deployment`) found. A Deployment that does not exist means MetalLB is being uninstalled
/// (this pod started, or restarted, after its Deployment was deleted): no Secret then, for one
/// without an owner would outlive the install, and no speaker is left to need it. A Deployment
/// that could not be read gets a Secret without an owner: speakers need the key to start, and
/// the operator's finalizer deletes the Secret on uninstall.
pub fn settings(name: &str, deployment: &str, owner: Owner) -> Option<Memberlist> {
    match owner {
        Owner::Found(owner) => Some(Memberlist {
            name: name.to_string(),
            owner: Some(owner),
        }),
        Owner::Missing => {
            tracing::warn!(
                secret = name,
                deployment,
                "the controller Deployment does not exist (MetalLB is being uninstalled?): the memberlist Secret will not be created"
            );
            None
        }
        Owner::Unreadable => {
            tracing::warn!(
                secret = name,
                deployment,
                "the controller Deployment could not be read: the memberlist Secret, if created, has no owner"
            );
            Some(Memberlist {
                name: name.to_string(),
                owner: None,
            })
        }
    }
}

/// The owner reference to the controller Deployment.
pub fn deployment_owner(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: name.into(),
        uid: uid.into(),
        ..Default::default()
    }
}

/// 16 random bytes in unpadded standard base64.
pub fn key() -> Result<String, getrandom::Error> {
    use base64::Engine;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    #[test]
    fn the_key_is_16_random_bytes_of_unpadded_base64() {
        use base64::Engine;
        let key = key().unwrap();
        assert_eq!(key.len(), 22);
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&key)
            .unwrap();
        assert_eq!(bytes.len(), 16);
        assert_ne!(super::key().unwrap(), key);
    }

    #[test]
    fn a_missing_deployment_means_no_secret_an_unreadable_one_a_secret_without_owner() {
        let owner = deployment_owner("controller", "u-1");
        assert_eq!(
            settings("memberlist", "controller", Owner::Found(owner.clone())),
            Some(Memberlist {
                name: "memberlist".into(),
                owner: Some(owner)
            })
        );
        assert_eq!(settings("memberlist", "controller", Owner::Missing), None);
        assert_eq!(
            settings("memberlist", "controller", Owner::Unreadable),
            Some(Memberlist {
                name: "memberlist".into(),
                owner: None
            })
        );
    }

    #[test]
    fn the_secret_holds_the_key_under_secretkey_and_is_owned_by_the_deployment() {
        let owner = deployment_owner("controller", "u-1");
        assert_eq!(
            serde_json::to_value(secret(
                "metallb-system",
                "memberlist",
                Some(&owner),
                "AAECAwQFBgcICQoLDA0ODw"
            ))
            .unwrap(),
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "memberlist",
                    "namespace": "metallb-system",
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "controller", "uid": "u-1"}],
                },
                // base64 of the key's text, as the API stores `data`.
                "data": {"secretkey": "QUFFQ0F3UUZCZ2NJQ1FvTERBME9Edw=="},
            })
        );
    }
}
