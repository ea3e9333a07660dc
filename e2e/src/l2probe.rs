//! Continuous probing of an L2 Service IP from the client namespace, for tests that must show
//! that nothing was lost while something changed (an upgrade): the probe of
//! `hack/bench/l2_failover.py` (`probe` mode) opens a new HTTP connection to the IP every 20 ms
//! and sends an ARP request every 10 ms, each naming a distinct sender address so that every
//! reply says which request it answers. [`Probe`] runs it until stopped; [`summarize`] (pure)
//! says how many connections failed and whether two nodes ever answered one ARP request.
//!
//! ```text
//! Probe::start(ip) ──► ip netns exec mlb-client python3 l2_failover.py probe IP PORT SECONDS
//! probe.stop()     ──► its lines ("<epoch ms> http ok|fail", "<epoch ms> arp <mac>/<n>")
//!                  ──► parse ──► summarize ──► Summary
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// One line of the probe's output.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A connection that got an HTTP answer (`true`) or did not.
    Http(bool),
    /// A reply to ARP request number `request` (1..=99, repeating) from `mac`.
    Arp { mac: String, request: u8 },
}

/// An event and when it happened (milliseconds since the epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub at_ms: f64,
    pub event: Event,
}

/// Reads the probe's output; lines it does not know are skipped.
pub fn parse(text: &str) -> Vec<Line> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let at_ms: f64 = parts.next()?.parse().ok()?;
            let event = match (parts.next()?, parts.next()?) {
                ("http", "ok") => Event::Http(true),
                ("http", "fail") => Event::Http(false),
                ("arp", reply) => {
                    let (mac, request) = reply.split_once('/')?;
                    Event::Arp {
                        mac: mac.to_lowercase(),
                        request: request.parse().ok()?,
                    }
                }
                _ => return None,
            };
            Some(Line { at_ms, event })
        })
        .collect()
}

/// What a probe saw.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// HTTP connections tried, and those that failed.
    pub connections: usize,
    pub failed: usize,
    /// The times (ms since the first line) of the failed connections.
    pub failed_at_ms: Vec<u64>,
    /// Every MAC address that answered ARP, in order.
    pub answering: BTreeSet<String>,
    /// ARP requests answered by two different MAC addresses (two nodes at once), with when
    /// (ms since the first line) and by whom.
    pub double_answers: Vec<(u64, String, String)>,
    /// The longest time without any ARP reply, in ms.
    pub longest_arp_silence_ms: u64,
}

/// Replies to one request are those carrying its number less than this apart: request numbers
/// repeat every 99 requests (about a second).
const SAME_REQUEST_MS: f64 = 300.0;

/// Sums up a probe's lines.
pub fn summarize(lines: &[Line]) -> Summary {
    let start = lines.iter().map(|l| l.at_ms).fold(f64::INFINITY, f64::min);
    let rel = |t: f64| (t - start).max(0.0).round() as u64;
    let mut summary = Summary::default();
    let mut by_request: BTreeMap<u8, Vec<(f64, &str)>> = BTreeMap::new();
    let mut arp_times = Vec::new();
    for line in lines {
        match &line.event {
            Event::Http(ok) => {
                summary.connections += 1;
                if !ok {
                    summary.failed += 1;
                    summary.failed_at_ms.push(rel(line.at_ms));
                }
            }
            Event::Arp { mac, request } => {
                summary.answering.insert(mac.clone());
                by_request
                    .entry(*request)
                    .or_default()
                    .push((line.at_ms, mac));
                arp_times.push(line.at_ms);
            }
        }
    }
    summary.failed_at_ms.sort_unstable();
    for replies in by_request.values_mut() {
        replies.sort_by(|a, b| a.0.total_cmp(&b.0));
        for pair in replies.windows(2) {
            let ((t, a), (u, b)) = (pair[0], pair[1]);
            if a != b && u - t < SAME_REQUEST_MS {
                let (first, second) = if a < b { (a, b) } else { (b, a) };
                summary
                    .double_answers
                    .push((rel(t), first.to_string(), second.to_string()));
            }
        }
    }
    summary.double_answers.sort();
    arp_times.sort_by(f64::total_cmp);
    summary.longest_arp_silence_ms = arp_times
        .windows(2)
        .map(|w| (w[1] - w[0]).round() as u64)
        .max()
        .unwrap_or(0);
    summary
}

/// The probe, running in the client namespace until [`Probe::stop`].
pub struct Probe {
    child: Child,
}

/// The longest a probe may run: a bound, so that a test that never stops it leaves nothing.
const MAX_SECONDS: u32 = 1800;

impl Probe {
    /// Starts probing `ip` port `port` from the client namespace with the probe of
    /// `hack/bench/l2_failover.py` in the checkout at `root`.
    pub fn start(root: &Path, ip: Ipv4Addr, port: u16) -> std::io::Result<Self> {
        let netns = crate::topology::netns_of("client").unwrap_or_else(|| "mlb-client".into());
        let script = root.join("hack/bench/l2_failover.py");
        let child = Command::new("ip")
            .args(["netns", "exec", &netns, "python3"])
            .arg(script)
            .args([
                "probe",
                &ip.to_string(),
                &port.to_string(),
                &MAX_SECONDS.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Self { child })
    }

    /// Stops the probe; returns what it saw.
    pub fn stop(mut self) -> std::io::Result<Vec<Line>> {
        let _ = self.child.kill();
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout.read_to_string(&mut out)?;
        }
        let _ = self.child.wait();
        Ok(parse(&out))
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    const A: &str = "02:00:00:00:00:0b";
    const B: &str = "02:00:00:00:00:0c";

    #[test]
    fn the_probes_lines_are_read_and_unknown_ones_skipped() {
        let text =
            "1000.0 http ok\n1010.5 arp 02:00:00:00:00:0B/17\nnoise\n1020 http fail\n1030 arp x\n";
        assert_eq!(
            parse(text),
            vec![
                Line {
                    at_ms: 1000.0,
                    event: Event::Http(true)
                },
                Line {
                    at_ms: 1010.5,
                    event: Event::Arp {
                        mac: A.into(),
                        request: 17
                    }
                },
                Line {
                    at_ms: 1020.0,
                    event: Event::Http(false)
                },
            ]
        );
    }

    #[test]
    fn a_quiet_handover_has_no_failure_and_no_double_answer() {
        let text = format!(
            "1000 http ok\n1005 arp {A}/1\n1015 arp {A}/2\n1020 http ok\n1025 arp {B}/3\n1035 arp {B}/4\n1040 http ok\n"
        );
        assert_eq!(
            summarize(&parse(&text)),
            Summary {
                connections: 3,
                failed: 0,
                failed_at_ms: vec![],
                answering: [A.to_string(), B.to_string()].into(),
                double_answers: vec![],
                longest_arp_silence_ms: 10,
            }
        );
    }

    #[test]
    fn two_macs_answering_one_request_and_failed_connections_are_reported_with_their_times() {
        // Request 5 answered by both nodes 40 ms apart; request 6's second reply comes a
        // second later, from the number's next use: not the same request.
        let text = format!(
            "1000 http ok\n1010 arp {B}/5\n1050 arp {A}/5\n1060 http fail\n1070 arp {A}/6\n2070 arp {B}/6\n2080 http fail\n"
        );
        assert_eq!(
            summarize(&parse(&text)),
            Summary {
                connections: 3,
                failed: 2,
                failed_at_ms: vec![60, 1080],
                answering: [A.to_string(), B.to_string()].into(),
                double_answers: vec![(10, A.into(), B.into())],
                longest_arp_silence_ms: 1000,
            }
        );
    }
}
