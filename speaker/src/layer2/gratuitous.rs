//! When to send gratuitous ARP / unsolicited NA (pure, time in, IPs out).
//!
//! MetalLB's rule: every request (a takeover, a link coming back) sends at once, then every
//! 1.1 s until 5 s after the latest request. With `--gratuitous-arp-interval`, every announced
//! IP is also re-announced once per interval.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Spacing of the repeated announcements after a request.
pub const REPEAT_EVERY: Duration = Duration::from_millis(1100);
/// How long after the latest request announcements keep coming.
pub const REPEAT_FOR: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Burst {
    next: Instant,
    until: Instant,
}

/// The pending announcements, per (link, IP).
#[derive(Debug, Default)]
pub struct Schedule {
    bursts: BTreeMap<(u32, IpAddr), Burst>,
}

impl Schedule {
    /// Starts (or extends) announcing `ip` on link `index`: the first is due now.
    pub fn request(&mut self, index: u32, ip: IpAddr, now: Instant) {
        self.bursts.insert(
            (index, ip),
            Burst {
                next: now,
                until: now + REPEAT_FOR,
            },
        );
    }

    /// Stops announcing `ip` on `index` (the node no longer owns it there).
    pub fn cancel(&mut self, index: u32, ip: IpAddr) {
        self.bursts.remove(&(index, ip));
    }

    /// Stops everything on link `index`.
    pub fn cancel_link(&mut self, index: u32) {
        self.bursts.retain(|(i, _), _| *i != index);
    }

    /// The (link, IP) pairs to announce now; advances their schedule.
    pub fn due(&mut self, now: Instant) -> Vec<(u32, IpAddr)> {
        let mut out = Vec::new();
        self.bursts.retain(|key, burst| {
            if burst.next <= now {
                out.push(*key);
                burst.next = now + REPEAT_EVERY;
            }
            burst.next <= burst.until
        });
        out
    }

    /// When [`Self::due`] next has something.
    pub fn next_due(&self) -> Option<Instant> {
        self.bursts.values().map(|b| b.next).min()
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The instants (ms after start) at which `ip` is announced, polling every 100 ms for 12 s.
    fn sends(schedule: &mut Schedule, start: Instant, extra: &[(u64, IpAddr)]) -> Vec<u64> {
        let mut out = Vec::new();
        for ms in (0..12_000).step_by(100) {
            let now = start + Duration::from_millis(ms);
            for (at, extra_ip) in extra {
                if *at == ms {
                    schedule.request(1, *extra_ip, now);
                }
            }
            for (_, sent) in schedule.due(now) {
                if sent == ip("192.0.2.200") {
                    out.push(ms);
                }
            }
        }
        out
    }

    #[test]
    fn a_request_sends_at_once_then_every_1100_ms_for_5_s() {
        let start = Instant::now();
        let mut s = Schedule::default();
        s.request(1, ip("192.0.2.200"), start);
        assert_eq!(sends(&mut s, start, &[]), vec![0, 1100, 2200, 3300, 4400]);
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn a_new_request_restarts_the_burst() {
        let start = Instant::now();
        let mut s = Schedule::default();
        s.request(1, ip("192.0.2.200"), start);
        let sent = sends(&mut s, start, &[(3000, ip("192.0.2.200"))]);
        assert_eq!(sent, vec![0, 1100, 2200, 3000, 4100, 5200, 6300, 7400]);
    }

    #[test]
    fn cancelled_announcements_are_not_sent() {
        let start = Instant::now();
        let mut s = Schedule::default();
        s.request(1, ip("192.0.2.200"), start);
        s.request(2, ip("192.0.2.200"), start);
        s.request(2, ip("192.0.2.201"), start);
        s.cancel(1, ip("192.0.2.200"));
        s.cancel_link(2);
        assert_eq!(s.due(start), vec![]);
        assert_eq!(s.next_due(), None);
    }
}
