//! Runs the [`Announcer`] on raw sockets: one AF_PACKET socket for ARP and one for IPv6
//! (filtered to Neighbor Solicitations and Advertisements) per answering link.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::SockFilter;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::announcer::{Action, Announcer, SendKind};
use super::interfaces::{Link, Plan};
use super::packet::{ETHERTYPE_ARP, ETHERTYPE_IPV6, MacAddr};
use crate::metrics::{Layer2, Metrics};
use crate::sys::PacketSocket;

/// What the announcer should answer for, with the links it names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub plan: Plan,
    pub links: Vec<Link>,
    /// Shutting down: stop answering for an IP the moment another node announces it, without
    /// waiting for the main loop, so the old and the new owner overlap for microseconds.
    pub handover: bool,
}

/// During a handover, removes from `plan` every IP another node was seen announcing in
/// `actions`; true if the plan changed.
pub fn yield_taken(plan: &mut Plan, actions: &[Action]) -> bool {
    let taken: Vec<IpAddr> = actions
        .iter()
        .filter_map(|a| match a {
            Action::OtherOwner { ip, .. } => Some(*ip),
            _ => None,
        })
        .collect();
    let mut changed = false;
    for ips in plan.links.values_mut() {
        for ip in &taken {
            changed |= ips.remove(ip);
        }
    }
    changed
}

/// Someone else announced an IP this node answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtherOwner {
    pub ip: IpAddr,
    pub mac: MacAddr,
}

/// Classic BPF: IPv6 frames whose next header is ICMPv6 (byte 20) and whose ICMPv6 type
/// (byte 54) is 135 (NS) or 136 (NA); everything else is dropped in the kernel.
fn ndp_filter() -> [SockFilter; 7] {
    const LD_B_ABS: u16 = 0x30;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    [
        SockFilter::new(LD_B_ABS, 0, 0, 20),
        SockFilter::new(JEQ_K, 0, 4, 58),
        SockFilter::new(LD_B_ABS, 0, 0, 54),
        SockFilter::new(JEQ_K, 1, 0, 135),
        SockFilter::new(JEQ_K, 0, 1, 136),
        SockFilter::new(RET_K, 0, 0, 0x40000),
        SockFilter::new(RET_K, 0, 0, 0),
    ]
}

/// A frame: link index, bytes, when it was received.
type Received = (u32, Vec<u8>, Instant);

struct Sockets {
    arp: Arc<PacketSocket>,
    ndp: Arc<PacketSocket>,
    readers: Vec<JoinHandle<()>>,
}

impl Drop for Sockets {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

fn open(link: &Link, frames: &mpsc::Sender<Received>) -> std::io::Result<Sockets> {
    let arp = Arc::new(PacketSocket::open(link.index, ETHERTYPE_ARP)?);
    let ndp = Arc::new(PacketSocket::open(link.index, ETHERTYPE_IPV6)?);
    ndp.attach_filter(&ndp_filter())?;
    let readers = [arp.clone(), ndp.clone()]
        .into_iter()
        .map(|socket| {
            let frames = frames.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                loop {
                    match socket.recv(&mut buf).await {
                        Ok(len) => {
                            // Stamped on receipt: a request that arrived before a takeover's
                            // guard ended is not answered, however late it is handled.
                            let received = (socket.index(), buf[..len].to_vec(), Instant::now());
                            if frames.send(received).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, index = socket.index(), "failed to receive on a raw socket");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            })
        })
        .collect();
    Ok(Sockets { arp, ndp, readers })
}

/// Runs until `targets` closes; then stops answering everywhere.
pub async fn run(
    mut targets: watch::Receiver<Target>,
    metrics: Arc<Metrics>,
    others: mpsc::UnboundedSender<OtherOwner>,
    periodic: Option<Duration>,
) {
    let mut announcer = Announcer::new(periodic);
    let mut sockets: BTreeMap<u32, Sockets> = BTreeMap::new();
    let (frames_tx, mut frames) = mpsc::channel::<Received>(1024);
    let mut target = targets.borrow_and_update().clone();
    let mut actions = announcer.apply(&target.plan, &target.links, Instant::now().into_std());
    loop {
        execute(
            &mut announcer,
            &mut sockets,
            &frames_tx,
            &metrics,
            &others,
            std::mem::take(&mut actions),
        );
        let wake = announcer.next_timer().map(Instant::from_std);
        tokio::select! {
            changed = targets.changed() => {
                if changed.is_err() {
                    tracing::info!("stopped answering ARP and NDP");
                    return;
                }
                target = targets.borrow_and_update().clone();
                actions = announcer.apply(&target.plan, &target.links, Instant::now().into_std());
            }
            Some((index, frame, received)) = frames.recv() => {
                actions = announcer.on_frame(index, &frame, received.into_std());
                if target.handover && yield_taken(&mut target.plan, &actions) {
                    actions.extend(announcer.apply(&target.plan, &target.links, Instant::now().into_std()));
                }
            }
            _ = async { tokio::time::sleep_until(wake.expect("guarded")).await }, if wake.is_some() => {
                actions = announcer.on_timer(Instant::now().into_std());
            }
        }
    }
}

fn execute(
    announcer: &mut Announcer,
    sockets: &mut BTreeMap<u32, Sockets>,
    frames: &mpsc::Sender<Received>,
    metrics: &Metrics,
    others: &mpsc::UnboundedSender<OtherOwner>,
    actions: Vec<Action>,
) {
    for action in actions {
        match action {
            Action::Open(link) => match open(&link, frames) {
                Ok(s) => {
                    tracing::info!(interface = %link.name, mac = %link.mac, "answering ARP and NDP");
                    sockets.insert(link.index, s);
                }
                Err(e) => {
                    tracing::error!(interface = %link.name, error = %e, "failed to open raw sockets (CAP_NET_RAW?)")
                }
            },
            Action::Close(index) => {
                if sockets.remove(&index).is_some() {
                    tracing::info!(index, "stopped answering on an interface");
                }
            }
            Action::Join { index, group } => {
                if let Some(s) = sockets.get(&index)
                    && let Err(e) = s.ndp.join(group.0)
                {
                    tracing::warn!(index, %group, error = %e, "failed to join a multicast group");
                }
            }
            Action::Leave { index, group } => {
                if let Some(s) = sockets.get(&index)
                    && let Err(e) = s.ndp.leave(group.0)
                {
                    tracing::debug!(index, %group, error = %e, "failed to leave a multicast group");
                }
            }
            Action::Send {
                index,
                frame,
                ip,
                kind,
            } => {
                let Some(s) = sockets.get(&index) else {
                    continue;
                };
                let socket = if frame.get(12..14) == Some(&ETHERTYPE_ARP.to_be_bytes()[..]) {
                    &s.arp
                } else {
                    &s.ndp
                };
                match socket.send(&frame) {
                    Ok(()) => {
                        if kind == SendKind::Gratuitous {
                            announcer.announced(index, ip, Instant::now().into_std());
                        }
                        metrics.count(
                            match kind {
                                SendKind::Response => Layer2::ResponseSent,
                                SendKind::Gratuitous => Layer2::GratuitousSent,
                            },
                            ip,
                        )
                    }
                    Err(e) => tracing::debug!(index, %ip, error = %e, "failed to send a frame"),
                }
            }
            Action::RequestReceived { ip } => metrics.count(Layer2::RequestReceived, ip),
            Action::OtherOwner { ip, mac, index } => {
                tracing::debug!(%ip, %mac, index, "another node announced an IP this node answers for");
                let _ = others.send(OtherOwner { ip, mac });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn a_handover_yields_exactly_the_ips_another_node_announced() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let mut plan = Plan {
            links: BTreeMap::from([
                (2, BTreeSet::from([ip("192.0.2.200"), ip("192.0.2.201")])),
                (3, BTreeSet::from([ip("192.0.2.200")])),
            ]),
            missing_interfaces: BTreeSet::new(),
        };
        let seen = [
            Action::RequestReceived {
                ip: ip("192.0.2.201"),
            },
            Action::OtherOwner {
                ip: ip("192.0.2.200"),
                mac: MacAddr([2, 0, 0, 0, 0, 0x0c]),
                index: 2,
            },
        ];
        assert!(yield_taken(&mut plan, &seen));
        assert_eq!(
            plan.links,
            BTreeMap::from([
                (2, BTreeSet::from([ip("192.0.2.201")])),
                (3, BTreeSet::new())
            ])
        );
        assert!(!yield_taken(&mut plan, &seen[..1]));
    }
}
