//! When to hand a configuration to the FRR sidecar, and what its answers mean: sans-IO (the
//! configuration texts, the sidecar's answers and instants in; "send this" and a problem out).
//! [`super::sidecar`] carries it out.
//!
//! ```text
//!  desired text ──► debounce (first change after a quiet period) ──► Send ──► sidecar
//!       ▲                 one request in flight; what changes meanwhile goes next, at once
//!       └── answer: ok ─► applied (problem cleared)
//!                   invalid ─► problem; not sent again until the text changes
//!                   failed / no answer / sidecar unreachable ─► problem; sent again after
//!                                                               a back-off (1 s doubling to 30 s)
//! ```
//!
//! Decisions:
//! - the debounce only gathers a burst of changes: [`DEFAULT_DEBOUNCE`] (MetalLB waits 3 s);
//!   a change arriving while a reload runs waits for it, so reloads never overlap and a storm
//!   of changes costs one reload per reload time;
//! - a configuration FRR refuses as invalid is not sent again (it would be refused again); one
//!   it failed to apply is (the cause may be passing: a daemon restarting, the vty locked);
//! - a sidecar that does not answer at all is a problem only after [`UNREACHABLE_GRACE`]: at
//!   pod start the speaker is usually up before the reloader.

use std::time::{Duration, Instant};

/// How long the first change after a quiet period waits for more.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(50);
/// How long a request may go unanswered before it counts as failed.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the sidecar may be unreachable before that is reported.
pub const UNREACHABLE_GRACE: Duration = Duration::from_secs(30);
/// How soon an unreachable sidecar is tried again.
pub const UNREACHABLE_RETRY: Duration = Duration::from_millis(250);
pub const RETRY_MIN: Duration = Duration::from_secs(1);
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// The SHA-256 of a configuration text, in hex: how requests and answers are matched.
pub fn digest(text: &str) -> String {
    metallb_api::sha256_hex(text)
}

/// The sidecar's verdict on one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Checked and applied: FRR runs it.
    Applied,
    /// FRR's parser refused it; FRR still runs the previous one.
    Invalid(String),
    /// Applying it failed; the sidecar put the last good one back.
    Failed(String),
}

/// An answer from the sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// [`digest`] of the configuration it is about.
    pub digest: String,
    pub outcome: Outcome,
}

/// A configuration to write and have applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    pub text: String,
    pub digest: String,
    /// The same change as a script on top of what FRR runs, when it is only advertised
    /// prefixes ([`super::delta`]); the reloader falls back to `text` if the script fails.
    pub delta: Option<String>,
    /// The sessions to reset once it is applied ([`super::delta::sessions_to_reset`]).
    pub resets: Vec<String>,
}

#[derive(Debug, Clone)]
struct Desired {
    text: String,
    digest: String,
}

#[derive(Debug, Clone)]
struct InFlight {
    text: String,
    digest: String,
    deadline: Instant,
}

/// What FRR runs, as far as we know: a configuration it applied on our request.
#[derive(Debug, Clone)]
struct Applied {
    text: String,
    digest: String,
}

/// The reload state of one speaker.
#[derive(Debug)]
pub struct Reloads {
    debounce: Duration,
    desired: Option<Desired>,
    /// When the desired configuration may be sent (end of the debounce, or of a back-off).
    send_at: Option<Instant>,
    in_flight: Option<InFlight>,
    /// What FRR runs, as far as we know.
    applied: Option<Applied>,
    /// A configuration FRR refused as invalid: not sent again.
    refused: Option<String>,
    backoff: Duration,
    unreachable_since: Option<Instant>,
    problem: Option<String>,
}

impl Reloads {
    pub fn new(debounce: Duration) -> Self {
        Self {
            debounce,
            desired: None,
            send_at: None,
            in_flight: None,
            applied: None,
            refused: None,
            backoff: RETRY_MIN,
            unreachable_since: None,
            problem: None,
        }
    }

    /// Why FRR does not run the desired configuration, when that is worth reporting.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// The digest of what FRR runs, if known.
    pub fn applied(&self) -> Option<&str> {
        self.applied.as_ref().map(|a| a.digest.as_str())
    }

    /// The configuration FRR should run from now on.
    pub fn desire(&mut self, text: String, now: Instant) {
        if self.desired.as_ref().is_some_and(|d| d.text == text) {
            return;
        }
        let digest = digest(&text);
        self.desired = Some(Desired { text, digest });
        if self.send_at.is_none() && self.in_flight.is_none() {
            self.send_at = Some(now + self.debounce);
        }
    }

    /// The configuration to send now, if any; it is then in flight.
    pub fn poll(&mut self, now: Instant) -> Option<Send> {
        let at = self.send_at?;
        if self.in_flight.is_some() || at > now {
            return None;
        }
        let desired = self.desired.as_ref()?;
        self.send_at = None;
        if self.applied() == Some(desired.digest.as_str())
            || self.refused.as_deref() == Some(desired.digest.as_str())
        {
            return None;
        }
        self.in_flight = Some(InFlight {
            text: desired.text.clone(),
            digest: desired.digest.clone(),
            deadline: now + ANSWER_TIMEOUT,
        });
        let delta = self
            .applied
            .as_ref()
            .and_then(|a| super::delta::between(&a.text, &desired.text, &a.digest));
        let resets = self
            .applied
            .as_ref()
            .map(|a| super::delta::sessions_to_reset(&a.text, &desired.text))
            .unwrap_or_default();
        Some(Send {
            text: desired.text.clone(),
            digest: desired.digest.clone(),
            delta,
            resets,
        })
    }

    /// The request could not be delivered: the sidecar is not running (yet).
    pub fn unreachable(&mut self, why: &str, now: Instant) {
        self.in_flight = None;
        let since = *self.unreachable_since.get_or_insert(now);
        if now.duration_since(since) >= UNREACHABLE_GRACE {
            self.problem = Some(format!(
                "the FRR sidecar's reloader has been unreachable for {}s: {why}",
                now.duration_since(since).as_secs()
            ));
        }
        self.send_at = Some(now + UNREACHABLE_RETRY);
    }

    /// The sidecar answered.
    pub fn answered(&mut self, answer: Answer, now: Instant) {
        if self
            .in_flight
            .as_ref()
            .is_none_or(|f| f.digest != answer.digest)
        {
            return;
        }
        let in_flight = self.in_flight.take().expect("checked above");
        self.unreachable_since = None;
        match answer.outcome {
            Outcome::Applied => {
                self.applied = Some(Applied {
                    text: in_flight.text,
                    digest: in_flight.digest,
                });
                self.refused = None;
                self.problem = None;
                self.backoff = RETRY_MIN;
                // Changed meanwhile: send it at once, the reload already gathered the burst.
                self.send_at = Some(now);
            }
            Outcome::Invalid(message) => {
                self.refused = Some(answer.digest);
                self.problem = Some(format!("FRR refused the configuration: {message}"));
                self.send_at = Some(now);
            }
            Outcome::Failed(message) => {
                self.problem = Some(format!("FRR failed to apply the configuration: {message}"));
                self.retry(now);
            }
        }
    }

    /// Time passed: an unanswered request times out.
    pub fn timer(&mut self, now: Instant) {
        if self.in_flight.as_ref().is_some_and(|f| f.deadline <= now) {
            self.in_flight = None;
            self.problem = Some(format!(
                "the FRR sidecar did not answer within {}s",
                ANSWER_TIMEOUT.as_secs()
            ));
            self.retry(now);
        }
    }

    /// Whether a request waits for its answer.
    pub fn waiting(&self) -> bool {
        self.in_flight.is_some()
    }

    /// When [`Self::poll`] or [`Self::timer`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.in_flight {
            Some(f) => Some(f.deadline),
            None => self.send_at,
        }
    }

    fn retry(&mut self, now: Instant) {
        self.send_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(RETRY_MAX);
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn t0() -> Instant {
        Instant::now()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn applied(digest: &str) -> Answer {
        Answer {
            digest: digest.into(),
            outcome: Outcome::Applied,
        }
    }

    #[test]
    fn a_change_is_sent_after_the_debounce_with_its_digest() {
        let now = t0();
        let mut r = Reloads::new(ms(50));
        r.desire("a".into(), now);
        assert_eq!(r.next_deadline(), Some(now + ms(50)));
        assert_eq!(r.poll(now + ms(49)), None);
        assert_eq!(
            r.poll(now + ms(50)),
            Some(Send {
                text: "a".into(),
                digest: digest("a"),
                delta: None,
                resets: vec![],
            })
        );
        assert!(r.waiting());
        r.answered(applied(&digest("a")), now + ms(400));
        assert_eq!(r.applied(), Some(digest("a").as_str()));
        assert_eq!(r.problem(), None);
        assert_eq!(r.poll(now + ms(400)), None);
    }

    #[test]
    fn a_change_of_prefixes_only_comes_with_a_script_on_top_of_what_frr_applied() {
        let now = t0();
        let conf = |p: &str| {
            format!(
                "ip prefix-list n-allowed-ipv4 permit {p}\nrouter bgp 64512\n address-family ipv4 unicast\n  network {p}\n  neighbor n activate\n exit-address-family\nexit\n"
            )
        };
        let (a, b, c) = (
            conf("192.0.2.10/32"),
            conf("192.0.2.11/32"),
            conf("192.0.2.12/32"),
        );
        let mut r = Reloads::new(ms(50));
        r.desire(a.clone(), now);
        let first = r.poll(now + ms(50)).unwrap();
        assert_eq!(first.delta, None, "nothing applied yet: the whole file");
        r.desire(b.clone(), now + ms(60));
        r.answered(applied(&digest(&a)), now + ms(500));
        let second = r.poll(now + ms(500)).unwrap();
        let script = second.delta.expect("only prefixes changed");
        assert!(
            script.starts_with(&format!("! base {}\n", digest(&a))),
            "{script}"
        );
        assert!(
            script.contains("  no network 192.0.2.10/32\n  network 192.0.2.11/32\n"),
            "{script}"
        );
        // FRR failed to apply b and went back to a: the next script is still on top of a.
        r.answered(
            Answer {
                digest: digest(&b),
                outcome: Outcome::Failed("vtysh exited with 2".into()),
            },
            now + ms(600),
        );
        r.desire(c.clone(), now + ms(700));
        let third = r.poll(now + ms(1600)).unwrap();
        assert!(
            third
                .delta
                .unwrap()
                .starts_with(&format!("! base {}\n", digest(&a)))
        );
    }

    #[test]
    fn a_burst_of_changes_is_one_reload_and_later_ones_follow_the_answer_at_once() {
        let now = t0();
        let mut r = Reloads::new(ms(50));
        r.desire("a".into(), now);
        r.desire("b".into(), now + ms(10));
        assert_eq!(r.poll(now + ms(50)).map(|s| s.text), Some("b".into()));
        r.desire("c".into(), now + ms(100));
        r.desire("d".into(), now + ms(200));
        assert_eq!(r.poll(now + ms(300)), None, "one request at a time");
        r.answered(applied(&digest("b")), now + ms(700));
        assert_eq!(r.poll(now + ms(700)).map(|s| s.text), Some("d".into()));
    }

    #[test]
    fn a_configuration_equal_to_the_applied_one_is_not_sent() {
        let now = t0();
        let mut r = Reloads::new(ms(50));
        r.desire("a".into(), now);
        r.poll(now + ms(50));
        r.desire("b".into(), now + ms(60));
        r.desire("a".into(), now + ms(70));
        r.answered(applied(&digest("a")), now + ms(500));
        assert_eq!(r.poll(now + ms(500)), None);
    }

    #[test]
    fn an_invalid_configuration_is_reported_and_not_sent_again_until_it_changes() {
        let now = t0();
        let mut r = Reloads::new(ms(50));
        r.desire("bad".into(), now);
        r.poll(now + ms(50));
        r.answered(
            Answer {
                digest: digest("bad"),
                outcome: Outcome::Invalid("line 3: % Unknown command: bogus".into()),
            },
            now + ms(200),
        );
        assert_eq!(
            r.problem(),
            Some("FRR refused the configuration: line 3: % Unknown command: bogus")
        );
        assert_eq!(r.poll(now + Duration::from_secs(60)), None);
        r.desire("good".into(), now + Duration::from_secs(61));
        let sent = r.poll(now + Duration::from_secs(61) + ms(50));
        assert_eq!(sent.map(|s| s.text), Some("good".into()));
        r.answered(applied(&digest("good")), now + Duration::from_secs(62));
        assert_eq!(r.problem(), None);
    }

    #[test]
    fn a_failed_reload_is_retried_with_a_growing_back_off() {
        let now = t0();
        let mut r = Reloads::new(ms(50));
        r.desire("a".into(), now);
        let mut at = now + ms(50);
        let mut delays = Vec::new();
        for _ in 0..7 {
            assert!(r.poll(at).is_some(), "sent at {:?}", at - now);
            r.answered(
                Answer {
                    digest: digest("a"),
                    outcome: Outcome::Failed("vty locked".into()),
                },
                at,
            );
            let next = r.next_deadline().unwrap();
            delays.push((next - at).as_secs());
            at = next;
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(
            r.problem(),
            Some("FRR failed to apply the configuration: vty locked")
        );
    }

    #[test]
    fn an_unreachable_sidecar_is_retried_quickly_and_reported_only_after_the_grace_period() {
        let now = t0();
        let mut r = Reloads::new(ms(50));
        r.desire("a".into(), now);
        r.poll(now + ms(50));
        r.unreachable("no reader on the FIFO", now + ms(50));
        assert_eq!(r.problem(), None);
        assert_eq!(r.next_deadline(), Some(now + ms(300)));
        let mut at = now + ms(300);
        while at <= now + ms(50) + UNREACHABLE_GRACE {
            assert!(r.poll(at).is_some());
            r.unreachable("no reader on the FIFO", at);
            at += UNREACHABLE_RETRY;
        }
        assert_eq!(
            r.problem(),
            Some("the FRR sidecar's reloader has been unreachable for 30s: no reader on the FIFO")
        );
        assert!(r.poll(at).is_some());
        r.answered(applied(&digest("a")), at + ms(300));
        assert_eq!(r.problem(), None);
    }

    #[test]
    fn an_unanswered_request_times_out_and_is_sent_again() {
        let now = t0();
        let mut r = Reloads::new(ms(50));
        r.desire("a".into(), now);
        r.poll(now + ms(50));
        assert_eq!(r.next_deadline(), Some(now + ms(50) + ANSWER_TIMEOUT));
        r.timer(now + ms(50) + ANSWER_TIMEOUT);
        assert_eq!(
            r.problem(),
            Some("the FRR sidecar did not answer within 60s")
        );
        assert!(!r.waiting());
        assert!(r.poll(now + ms(50) + ANSWER_TIMEOUT + RETRY_MIN).is_some());
    }

    #[test]
    fn an_answer_about_another_configuration_is_ignored() {
        let now = t0();
        let mut r = Reloads::new(ms(50));
        r.desire("a".into(), now);
        r.poll(now + ms(50));
        r.answered(applied(&digest("stale")), now + ms(60));
        assert!(r.waiting());
        assert_eq!(r.applied(), None);
    }

    #[test]
    fn the_digest_is_sha256_in_hex() {
        assert_eq!(
            digest(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
