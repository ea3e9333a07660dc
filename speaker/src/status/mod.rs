//! Writing to the API, in one place: ServiceL2Status objects, the speaker's
//! ConfigurationState, and Events. What to write is computed by pure functions
//! ([`l2status::plan`], [`configstate::objects`]); the writers apply it.

pub mod configstate;
pub mod l2status;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// Failures of one API write (logged and retried by the writers).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("failed to create {what}: {source}")]
    Create {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to update {what}: {source}")]
    Update {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to delete {what}: {source}")]
    Delete {
        what: String,
        #[source]
        source: kube::Error,
    },
}

/// The speaker pod, owner of what the speaker writes (garbage-collected with the pod).
pub fn pod_owner(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: name.into(),
        uid: uid.into(),
        ..Default::default()
    }
}
