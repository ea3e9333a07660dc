//! Interfaces from rtnetlink: a snapshot of every link, refreshed on each link event (no
//! polling).

use futures::{FutureExt, StreamExt, TryStreamExt};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage};
use rtnetlink::{MulticastGroup, new_multicast_connection};
use tokio::sync::watch;

use crate::layer2::interfaces::Link;
use crate::layer2::packet::MacAddr;

/// Why the interface watch stopped.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("failed to open a netlink socket: {0}")]
    Open(#[source] std::io::Error),
    #[error("failed to list links: {0}")]
    Dump(#[source] rtnetlink::Error),
    #[error("the netlink event stream ended")]
    Ended,
}

/// The link a netlink message describes, if it is an Ethernet link with a name.
pub fn link_from(msg: &LinkMessage) -> Option<Link> {
    if msg.header.link_layer_type != LinkLayerType::Ether {
        return None;
    }
    let mut name = None;
    let mut mac = None;
    let mut master = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Address(a) if a.len() == 6 => {
                let mut m = [0u8; 6];
                m.copy_from_slice(a);
                mac = Some(MacAddr(m));
            }
            LinkAttribute::Controller(c) => master = Some(*c),
            _ => {}
        }
    }
    let flags = msg.header.flags;
    Some(Link {
        index: msg.header.index,
        name: name?,
        mac: mac?,
        up: flags.contains(LinkFlags::Up),
        lower_up: flags.contains(LinkFlags::LowerUp),
        broadcast: flags.contains(LinkFlags::Broadcast),
        noarp: flags.contains(LinkFlags::Noarp),
        master,
    })
}

/// Publishes the links in `tx` now and after every link event, until an error.
pub async fn watch_links(tx: watch::Sender<Vec<Link>>) -> Result<(), NetlinkError> {
    let (connection, handle, mut events) =
        new_multicast_connection(&[MulticastGroup::Link]).map_err(NetlinkError::Open)?;
    tokio::spawn(connection);
    loop {
        let mut links: Vec<Link> = handle
            .link()
            .get()
            .execute()
            .map_ok(|msg| link_from(&msg))
            .try_collect::<Vec<_>>()
            .await
            .map_err(NetlinkError::Dump)?
            .into_iter()
            .flatten()
            .collect();
        links.sort_by_key(|l| l.index);
        tx.send_if_modified(|old| {
            if *old != links {
                *old = links;
                true
            } else {
                false
            }
        });
        // Wait for an event, then take every event already queued before dumping again.
        events.next().await.ok_or(NetlinkError::Ended)?;
        while let Some(Some(_)) = events.next().now_or_never() {}
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_route::link::LinkHeader;
    use pretty_assertions::assert_eq;

    use super::*;

    fn message(flags: LinkFlags, attributes: Vec<LinkAttribute>) -> LinkMessage {
        let header = LinkHeader {
            index: 3,
            link_layer_type: LinkLayerType::Ether,
            flags,
            ..Default::default()
        };
        let mut msg = LinkMessage::default();
        msg.header = header;
        msg.attributes = attributes;
        msg
    }

    #[test]
    fn an_ethernet_link_message_becomes_a_link() {
        let msg = message(
            LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Broadcast | LinkFlags::Running,
            vec![
                LinkAttribute::IfName("eth0".into()),
                LinkAttribute::Address(vec![2, 0, 0, 0, 0, 0x0b]),
                LinkAttribute::Controller(7),
            ],
        );
        assert_eq!(
            link_from(&msg),
            Some(Link {
                index: 3,
                name: "eth0".into(),
                mac: MacAddr([2, 0, 0, 0, 0, 0x0b]),
                up: true,
                lower_up: true,
                broadcast: true,
                noarp: false,
                master: Some(7),
            })
        );
    }

    #[test]
    fn loopback_and_links_without_an_address_are_skipped() {
        let mut lo = message(
            LinkFlags::Up | LinkFlags::Loopback,
            vec![LinkAttribute::IfName("lo".into())],
        );
        lo.header.link_layer_type = LinkLayerType::Loopback;
        assert_eq!(link_from(&lo), None);
        let no_mac = message(
            LinkFlags::Up | LinkFlags::Noarp,
            vec![LinkAttribute::IfName("x".into())],
        );
        assert_eq!(link_from(&no_mac), None);
    }
}
