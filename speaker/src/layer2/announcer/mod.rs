//! The L2 announcer's state machine (sans-IO): which links answer for which IPs, the answer to
//! each received frame, and the gratuitous announcements — plans, frames and time in, actions
//! out. The driver ([`super::driver`]) owns the sockets and carries the actions out.
//!
//! ```text
//!  Plan (per link: IPs) ──apply──► Open/Close link, Join/Leave solicited-node group, Send GARP/NA
//!  received frame ───on_frame───► Send reply, Count request, OtherOwner (someone else claims an IP)
//!  time ─────────────on_timer───► Send GARP/NA (repeats, periodic)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::gratuitous::Schedule;
use super::interfaces::{Link, Plan};
use super::packet::{ArpFrame, ArpOp, MacAddr, NDP_HOP_LIMIT, Ndp, NdpFrame, solicited_node};

/// What a frame sent is for (metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendKind {
    Response,
    Gratuitous,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start receiving ARP and NDP on this link.
    Open(Link),
    /// Stop receiving on this link (index).
    Close(u32),
    /// Receive frames sent to this multicast Ethernet address on the link.
    Join {
        index: u32,
        group: MacAddr,
    },
    Leave {
        index: u32,
        group: MacAddr,
    },
    Send {
        index: u32,
        frame: Vec<u8>,
        ip: IpAddr,
        kind: SendKind,
    },
    /// A request for an IP this node answers for arrived.
    RequestReceived {
        ip: IpAddr,
    },
    /// Another host announced an IP this node answers for.
    OtherOwner {
        ip: IpAddr,
        mac: MacAddr,
        index: u32,
    },
}

/// How long a node that just took an IP over waits, after its first gratuitous announcement,
/// before it answers requests for it. In a graceful handover the old owner answers until it sees
/// that announcement, then stops: the guard keeps the two from answering the same request. In a
/// failover it adds 10 ms to half a second of detection.
pub const TAKEOVER_GUARD: Duration = Duration::from_millis(10);

#[derive(Debug)]
struct Active {
    link: Link,
    ips: BTreeSet<IpAddr>,
    /// When each IP starts being answered: [`TAKEOVER_GUARD`] after its first gratuitous
    /// announcement actually left (`None` until then, see [`Announcer::announced`]).
    answer_from: BTreeMap<IpAddr, Option<Instant>>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Announcer {
    links: BTreeMap<u32, Active>,
    schedule: Schedule,
    /// Solicited-node groups joined per link, with the number of IPs needing each.
    groups: BTreeMap<(u32, Ipv6Addr), usize>,
    /// `--gratuitous-arp-interval`: re-announce every IP this often.
    periodic: Option<Duration>,
    next_periodic: Option<Instant>,
}

impl Announcer {
    pub fn new(periodic: Option<Duration>) -> Self {
        Self {
            periodic: periodic.filter(|d| !d.is_zero()),
            ..Self::default()
        }
    }

    /// The IPs each open link answers for.
    pub fn answering(&self) -> BTreeMap<u32, BTreeSet<IpAddr>> {
        self.links
            .iter()
            .map(|(i, a)| (*i, a.ips.clone()))
            .collect()
    }

    /// Moves to `plan`; `links` describes every link named in it. New (link, IP) pairs — a
    /// takeover, or a link that came back — are announced at once and repeatedly.
    pub fn apply(&mut self, plan: &Plan, links: &[Link], now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let by_index: BTreeMap<u32, &Link> = links.iter().map(|l| (l.index, l)).collect();

        // Links that go away, or changed identity (name or address): close first.
        let stale: Vec<u32> = self
            .links
            .iter()
            .filter(
                |(index, active)| match (plan.links.get(index), by_index.get(index)) {
                    (Some(ips), Some(link)) => {
                        ips.is_empty()
                            || link.mac != active.link.mac
                            || link.name != active.link.name
                    }
                    _ => true,
                },
            )
            .map(|(index, _)| *index)
            .collect();
        for index in stale {
            self.close(index, &mut out);
        }

        for (index, wanted) in &plan.links {
            let Some(link) = by_index.get(index) else {
                continue;
            };
            if wanted.is_empty() {
                continue;
            }
            if !self.links.contains_key(index) {
                out.push(Action::Open((*link).clone()));
                self.links.insert(
                    *index,
                    Active {
                        link: (*link).clone(),
                        ips: BTreeSet::new(),
                        answer_from: BTreeMap::new(),
                    },
                );
            }
            let current = self.links[index].ips.clone();
            for ip in current.difference(wanted) {
                self.remove_ip(*index, *ip, &mut out);
            }
            for ip in wanted.difference(&current) {
                self.add_ip(*index, *ip, now, &mut out);
            }
        }
        out.extend(self.on_timer(now));
        out
    }

    fn close(&mut self, index: u32, out: &mut Vec<Action>) {
        if let Some(active) = self.links.get(&index) {
            for ip in active.ips.clone() {
                self.remove_ip(index, ip, out);
            }
        }
        self.links.remove(&index);
        self.schedule.cancel_link(index);
        out.push(Action::Close(index));
    }

    fn add_ip(&mut self, index: u32, ip: IpAddr, now: Instant, out: &mut Vec<Action>) {
        if let Some(active) = self.links.get_mut(&index) {
            active.ips.insert(ip);
            active.answer_from.insert(ip, None);
        }
        if let IpAddr::V6(v6) = ip {
            let group = solicited_node(v6);
            let count = self.groups.entry((index, group)).or_default();
            *count += 1;
            if *count == 1 {
                out.push(Action::Join {
                    index,
                    group: MacAddr::ipv6_multicast(group),
                });
            }
        }
        self.schedule.request(index, ip, now);
    }

    fn remove_ip(&mut self, index: u32, ip: IpAddr, out: &mut Vec<Action>) {
        if let Some(active) = self.links.get_mut(&index) {
            active.ips.remove(&ip);
            active.answer_from.remove(&ip);
        }
        self.schedule.cancel(index, ip);
        if let IpAddr::V6(v6) = ip {
            let group = solicited_node(v6);
            if let Some(count) = self.groups.get_mut(&(index, group)) {
                *count -= 1;
                if *count == 0 {
                    self.groups.remove(&(index, group));
                    out.push(Action::Leave {
                        index,
                        group: MacAddr::ipv6_multicast(group),
                    });
                }
            }
        }
    }

    /// Handles a frame received on link `index` at `now`.
    pub fn on_frame(&mut self, index: u32, frame: &[u8], now: Instant) -> Vec<Action> {
        let Some(active) = self.links.get(&index) else {
            return Vec::new();
        };
        let mac = active.link.mac;
        let answers = |ip: &IpAddr| {
            active.ips.contains(ip)
                && active
                    .answer_from
                    .get(ip)
                    .is_some_and(|from| from.is_some_and(|from| from <= now))
        };
        let mut out = Vec::new();
        if let Ok(arp) = ArpFrame::parse(frame) {
            let claimed = IpAddr::V4(arp.arp.sender_ip);
            if arp.arp.sender_mac != mac && active.ips.contains(&claimed) {
                out.push(Action::OtherOwner {
                    ip: claimed,
                    mac: arp.arp.sender_mac,
                    index,
                });
            }
            let target = IpAddr::V4(arp.arp.target_ip);
            let for_us = arp.eth.dst == MacAddr::BROADCAST || arp.eth.dst == mac;
            if arp.arp.op == ArpOp::Request && for_us && !arp.is_gratuitous() && answers(&target) {
                out.push(Action::RequestReceived { ip: target });
                out.push(Action::Send {
                    index,
                    frame: ArpFrame::reply_to(&arp.arp, mac).build(),
                    ip: target,
                    kind: SendKind::Response,
                });
            }
        } else if let Ok(ndp) = NdpFrame::parse(frame) {
            if ndp.hop_limit != NDP_HOP_LIMIT {
                return out;
            }
            match ndp.message {
                Ndp::Solicitation {
                    target,
                    source_ll: Some(solicitor),
                } if answers(&IpAddr::V6(target)) && !ndp.src.is_unspecified() => {
                    let ip = IpAddr::V6(target);
                    out.push(Action::RequestReceived { ip });
                    if let Some(na) = NdpFrame::advertisement_for(&ndp, solicitor, mac) {
                        out.push(Action::Send {
                            index,
                            frame: na.build(),
                            ip,
                            kind: SendKind::Response,
                        });
                    }
                }
                Ndp::Advertisement {
                    target, target_ll, ..
                } => {
                    let other = target_ll.unwrap_or(ndp.eth.src);
                    if other != mac && active.ips.contains(&IpAddr::V6(target)) {
                        out.push(Action::OtherOwner {
                            ip: IpAddr::V6(target),
                            mac: other,
                            index,
                        });
                    }
                }
                Ndp::Solicitation { .. } => {}
            }
        }
        out
    }

    /// The driver sent a gratuitous announcement of `ip` on link `index` at `at`: the first one
    /// starts the takeover guard (opening sockets can take longer than the guard itself, so
    /// the guard counts from the real send, not from the plan).
    pub fn announced(&mut self, index: u32, ip: IpAddr, at: Instant) {
        if let Some(from) = self
            .links
            .get_mut(&index)
            .and_then(|a| a.answer_from.get_mut(&ip))
            && from.is_none()
        {
            *from = Some(at + TAKEOVER_GUARD);
        }
    }

    /// The gratuitous announcements due at `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        if let Some(every) = self.periodic {
            match self.next_periodic {
                Some(at) if at <= now => {
                    for (index, active) in &self.links {
                        for ip in &active.ips {
                            self.schedule.request(*index, *ip, now);
                        }
                    }
                    self.next_periodic = Some(now + every);
                }
                None => self.next_periodic = Some(now + every),
                Some(_) => {}
            }
        }
        let mut out = Vec::new();
        for (index, ip) in self.schedule.due(now) {
            let Some(active) = self.links.get(&index) else {
                continue;
            };
            for frame in gratuitous_frames(ip, active.link.mac) {
                out.push(Action::Send {
                    index,
                    frame,
                    ip,
                    kind: SendKind::Gratuitous,
                });
            }
        }
        out
    }

    /// When [`Self::on_timer`] next has work.
    pub fn next_timer(&self) -> Option<Instant> {
        let periodic = if self.links.values().any(|a| !a.ips.is_empty()) {
            self.next_periodic
        } else {
            None
        };
        [self.schedule.next_due(), periodic]
            .into_iter()
            .flatten()
            .min()
    }
}

/// A gratuitous ARP request and reply (IPv4), or an unsolicited NA (IPv6).
pub fn gratuitous_frames(ip: IpAddr, mac: MacAddr) -> Vec<Vec<u8>> {
    match ip {
        IpAddr::V4(v4) => vec![
            ArpFrame::gratuitous(ArpOp::Request, v4, mac).build(),
            ArpFrame::gratuitous(ArpOp::Reply, v4, mac).build(),
        ],
        IpAddr::V6(v6) => vec![NdpFrame::unsolicited(v6, mac).build()],
    }
}

#[cfg(test)]
mod tests;
