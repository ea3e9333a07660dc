//! Leader election with a `coordination.k8s.io` Lease, as client-go's leader election does it:
//! the holder renews every retry period; another replica takes the Lease once it has not been
//! renewed for its duration; a holder that could not renew for the renew deadline stops
//! leading *before* the Lease can expire, so two replicas never write at once. On shutdown the
//! holder gives the Lease up, so the other replica takes over at once.
//!
//! [`decide`] is the pure part (the Lease as read, who we are, the time → what to do); [`run`]
//! talks to the API and publishes "am I the leader" on a watch channel.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use metallb_runtime::Shutdown;
use tokio::sync::watch;

/// Timing of the election.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// What to do with the Lease as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it, or the holder let it expire: take it.
    Acquire,
    /// We hold it: renew it.
    Renew,
    /// Someone else holds it and renews it.
    Wait { holder: String },
}

/// Decides from the Lease spec as read.
pub fn decide(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Acquire;
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == me {
        return Decision::Renew;
    }
    if holder.is_empty() {
        return Decision::Acquire;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    match renewed {
        Some(t) if t + duration > now => Decision::Wait { holder },
        _ => Decision::Acquire,
    }
}

/// The spec to write for `decision` (None when waiting).
pub fn next_spec(
    current: Option<&LeaseSpec>,
    decision: &Decision,
    me: &str,
    timing: &Timing,
    now: Timestamp,
) -> Option<LeaseSpec> {
    let mut spec = current.cloned().unwrap_or_default();
    match decision {
        Decision::Wait { .. } => return None,
        Decision::Acquire => {
            spec.holder_identity = Some(me.to_string());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        Decision::Renew => {}
    }
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(timing.duration.as_secs().max(1) as i32);
    Some(spec)
}

/// Why one round of the election failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("failed to read Lease {name}: {source}")]
    Read { name: String, source: kube::Error },
    #[error("failed to write Lease {name}: {source}")]
    Write { name: String, source: kube::Error },
}

/// Runs the election until `shutdown` fires, publishing leadership on the returned channel.
/// On shutdown, a leader releases the Lease.
pub fn spawn(
    client: Client,
    namespace: &str,
    name: &str,
    me: String,
    timing: Timing,
    shutdown: Shutdown,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let name = name.to_string();
    let task = tokio::spawn(async move {
        let mut last_renew: Option<tokio::time::Instant> = None;
        loop {
            match round(&api, &name, &me, &timing).await {
                Ok(true) => last_renew = Some(tokio::time::Instant::now()),
                Ok(false) => last_renew = None,
                Err(e) => tracing::warn!(error = %e, "leader election round failed"),
            }
            let leading = last_renew.is_some_and(|t| t.elapsed() < timing.renew_deadline);
            if *tx.borrow() != leading {
                tracing::info!(identity = %me, leading, "leadership changed");
                let _ = tx.send(leading);
            }
            tokio::select! {
                _ = tokio::time::sleep(timing.retry_period) => {}
                _ = shutdown.wait() => {
                    if *tx.borrow() {
                        let _ = tx.send(false);
                        release(&api, &name, &me).await;
                    }
                    return;
                }
            }
        }
    });
    (rx, task)
}

/// One read-decide-write round; true when we hold the Lease afterwards.
async fn round(
    api: &Api<Lease>,
    name: &str,
    me: &str,
    timing: &Timing,
) -> Result<bool, LeaseError> {
    let current = api.get_opt(name).await.map_err(|source| LeaseError::Read {
        name: name.to_string(),
        source,
    })?;
    let now = Timestamp::now();
    let decision = decide(current.as_ref().and_then(|l| l.spec.as_ref()), me, now);
    let Some(spec) = next_spec(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        &decision,
        me,
        timing,
        now,
    ) else {
        return Ok(false);
    };
    let write_err = |source| LeaseError::Write {
        name: name.to_string(),
        source,
    };
    let result = match current {
        // Replace with the resourceVersion we read: if another replica wrote in between, the
        // API server refuses (409) and we try again next round.
        Some(mut lease) => {
            lease.spec = Some(spec);
            api.replace(name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    ..Default::default()
                },
                spec: Some(spec),
            };
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(write_err(e)),
    }
}

/// Gives the Lease up so another replica can take it without waiting for it to expire.
async fn release(api: &Api<Lease>, name: &str, me: &str) {
    let mut lease = match api.get_opt(name).await {
        Ok(Some(lease)) => lease,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "failed to read the lease to release it");
            return;
        }
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(me) {
        return;
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => tracing::info!(identity = %me, "lease released"),
        Err(e) => tracing::warn!(error = %e, "failed to release the lease"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn held(by: &str, renewed: &str, secs: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(by.into()),
            renew_time: Some(MicroTime(at(renewed))),
            lease_duration_seconds: Some(secs),
            ..Default::default()
        }
    }

    const TIMING: Timing = Timing {
        duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    };

    #[test]
    fn a_missing_or_released_lease_is_taken() {
        let now = at("2026-01-01T00:00:00Z");
        assert_eq!(decide(None, "a", now), Decision::Acquire);
        let released = LeaseSpec {
            holder_identity: None,
            ..held("x", "2026-01-01T00:00:00Z", 1)
        };
        assert_eq!(decide(Some(&released), "a", now), Decision::Acquire);
    }

    #[test]
    fn a_lease_renewed_within_its_duration_is_left_to_its_holder() {
        let spec = held("b", "2026-01-01T00:00:00Z", 15);
        assert_eq!(
            decide(Some(&spec), "a", at("2026-01-01T00:00:14Z")),
            Decision::Wait { holder: "b".into() }
        );
        assert_eq!(
            decide(Some(&spec), "a", at("2026-01-01T00:00:15Z")),
            Decision::Acquire,
            "expired"
        );
        assert_eq!(
            decide(Some(&spec), "b", at("2026-01-01T01:00:00Z")),
            Decision::Renew
        );
    }

    #[test]
    fn acquiring_counts_a_transition_and_renewing_does_not() {
        let now = at("2026-01-01T00:01:00Z");
        let old = LeaseSpec {
            lease_transitions: Some(3),
            ..held("b", "2026-01-01T00:00:00Z", 15)
        };
        let taken = next_spec(Some(&old), &Decision::Acquire, "a", &TIMING, now).unwrap();
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(MicroTime(now)));
        assert_eq!(taken.renew_time, Some(MicroTime(now)));
        assert_eq!(taken.lease_duration_seconds, Some(15));
        let later = at("2026-01-01T00:01:02Z");
        let renewed = next_spec(Some(&taken), &Decision::Renew, "a", &TIMING, later).unwrap();
        assert_eq!(renewed.lease_transitions, Some(4));
        assert_eq!(renewed.acquire_time, Some(MicroTime(now)));
        assert_eq!(renewed.renew_time, Some(MicroTime(later)));
        assert_eq!(
            next_spec(
                Some(&old),
                &Decision::Wait { holder: "b".into() },
                "a",
                &TIMING,
                now
            ),
            None
        );
    }
}
