//! Runs a [`Membership`] on a UDP socket: datagrams, timers and commands in, the live set out
//! (a `watch` channel the election reads).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::membership::{Membership, Output};
use foca::Timer;

use super::Member;

/// How often the driver wakes up at the latest (rejoin attempts, settle deadlines).
const TICK: Duration = Duration::from_millis(100);

/// Requests to the liveness task.
#[derive(Debug)]
pub enum Command {
    /// The speakers listed from the API (node → gossip address).
    Peers(BTreeMap<String, SocketAddr>),
    /// An interface came back up; answered with the live set once handled, so the caller
    /// never decides on the view from before the link came back.
    LinkUp(oneshot::Sender<BTreeSet<String>>),
    /// Leave the gossip; answered once the leave has been sent.
    Leave(oneshot::Sender<()>),
}

/// Why the liveness task could not start.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("failed to bind the gossip socket to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds the gossip socket.
pub async fn bind(addr: SocketAddr) -> Result<UdpSocket, DriverError> {
    UdpSocket::bind(addr)
        .await
        .map_err(|source| DriverError::Bind { addr, source })
}

/// Runs until the command channel closes. `live` receives the live set whenever it changes.
pub async fn run(
    socket: UdpSocket,
    mut membership: Membership,
    mut commands: mpsc::Receiver<Command>,
    live: watch::Sender<BTreeSet<String>>,
) {
    let mut timers: BTreeMap<(Instant, u64), Timer<Member>> = BTreeMap::new();
    let mut seq = 0u64;
    let mut buf = vec![0u8; 2048];
    loop {
        let now = Instant::now();
        let mut wake = now + TICK;
        if let Some(((at, _), _)) = timers.first_key_value() {
            wake = wake.min(*at);
        }
        if let Some(at) = membership.next_deadline(now.into_std()) {
            wake = wake.min(Instant::from_std(at));
        }
        let outputs = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, _from)) => membership.on_datagram(&buf[..len], Instant::now().into_std()),
                Err(e) => {
                    tracing::warn!(error = %e, "failed to receive gossip");
                    Vec::new()
                }
            },
            command = commands.recv() => match command {
                None => return,
                Some(Command::Peers(peers)) => membership.set_peers(peers, Instant::now().into_std()),
                Some(Command::LinkUp(done)) => {
                    let outputs = membership.on_link_up(Instant::now().into_std());
                    let _ = done.send(membership.live(Instant::now().into_std()));
                    outputs
                }
                Some(Command::Leave(done)) => {
                    let outputs = membership.leave(Instant::now().into_std());
                    send_all(&socket, &outputs).await;
                    let _ = done.send(());
                    Vec::new()
                }
            },
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                let mut outputs = Vec::new();
                while let Some(entry) = timers.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let timer = entry.remove();
                    outputs.extend(membership.on_timer(timer, now.into_std()));
                }
                outputs.extend(membership.tick(now.into_std()));
                outputs
            }
        };
        for output in &outputs {
            if let Output::Schedule { at, timer } = output {
                seq += 1;
                timers.insert((Instant::from_std(*at), seq), timer.clone());
            }
        }
        send_all(&socket, &outputs).await;
        let current = membership.live(Instant::now().into_std());
        live.send_if_modified(|old| {
            if *old != current {
                *old = current;
                true
            } else {
                false
            }
        });
    }
}

async fn send_all(socket: &UdpSocket, outputs: &[Output]) {
    for output in outputs {
        if let Output::Send { to, data } = output
            && let Err(e) = socket.send_to(data, to).await
        {
            tracing::debug!(error = %e, %to, "failed to send gossip");
        }
    }
}
