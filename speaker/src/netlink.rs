//! Interfaces from rtnetlink: a snapshot of every link, refreshed on each link event (no
//! polling), and the node's addresses when a BGP session connects.

use std::net::IpAddr;

use futures::{FutureExt, StreamExt, TryStreamExt};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage};
use rtnetlink::{MulticastGroup, new_connection, new_multicast_connection};
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
    #[error("failed to list addresses: {0}")]
    Addresses(#[source] rtnetlink::Error),
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

/// An address of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The interface's index.
    pub index: u32,
    pub address: IpAddr,
    /// Scope global (not link-local, host or site).
    pub global: bool,
    /// Neither tentative (IPv6 DAD under way), nor deprecated, nor failed DAD.
    pub usable: bool,
}

/// The address a netlink message describes (IFA_LOCAL, else IFA_ADDRESS: they differ only on
/// point-to-point links, where IFA_ADDRESS is the other end).
pub fn address_from(msg: &AddressMessage) -> Option<InterfaceAddress> {
    let mut local = None;
    let mut address = None;
    let mut flags = AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits()));
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            // The 32-bit attribute, when present, has every flag.
            AddressAttribute::Flags(f) => flags = *f,
            _ => {}
        }
    }
    let unusable = AddressFlags::Tentative | AddressFlags::Deprecated | AddressFlags::Dadfailed;
    Some(InterfaceAddress {
        index: msg.header.index,
        address: local.or(address)?,
        global: msg.header.scope == AddressScope::Universe,
        usable: !flags.intersects(unusable),
    })
}

/// Every address of every interface of this network namespace.
pub async fn addresses() -> Result<Vec<InterfaceAddress>, NetlinkError> {
    let (connection, handle, _) = new_connection().map_err(NetlinkError::Open)?;
    let task = tokio::spawn(connection);
    let result = handle
        .address()
        .get()
        .execute()
        .map_ok(|msg| address_from(&msg))
        .try_collect::<Vec<_>>()
        .await
        .map_err(NetlinkError::Addresses);
    task.abort();
    Ok(result?.into_iter().flatten().collect())
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
    use netlink_packet_route::address::AddressHeaderFlags;
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

    fn address(
        index: u32,
        scope: AddressScope,
        header_flags: AddressHeaderFlags,
        attributes: Vec<AddressAttribute>,
    ) -> AddressMessage {
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        msg.header.scope = scope;
        msg.header.flags = header_flags;
        msg.attributes = attributes;
        msg
    }

    #[test]
    fn an_address_message_becomes_an_interface_address() {
        let v4: IpAddr = "192.0.2.11".parse().unwrap();
        let msg = address(
            2,
            AddressScope::Universe,
            AddressHeaderFlags::Permanent,
            vec![AddressAttribute::Address(v4), AddressAttribute::Local(v4)],
        );
        assert_eq!(
            address_from(&msg),
            Some(InterfaceAddress {
                index: 2,
                address: v4,
                global: true,
                usable: true,
            })
        );
        // Point-to-point: IFA_ADDRESS is the other end, IFA_LOCAL ours.
        let ptp = address(
            5,
            AddressScope::Universe,
            AddressHeaderFlags::Permanent,
            vec![
                AddressAttribute::Address("198.51.100.2".parse().unwrap()),
                AddressAttribute::Local("198.51.100.1".parse().unwrap()),
            ],
        );
        assert_eq!(
            address_from(&ptp).map(|a| a.address),
            Some("198.51.100.1".parse().unwrap())
        );
    }

    #[test]
    fn link_local_tentative_and_deprecated_addresses_are_marked() {
        let ll = address(
            2,
            AddressScope::Link,
            AddressHeaderFlags::Permanent,
            vec![AddressAttribute::Address("fe80::1".parse().unwrap())],
        );
        assert_eq!(
            address_from(&ll).map(|a| (a.global, a.usable)),
            Some((false, true))
        );
        let tentative = address(
            2,
            AddressScope::Universe,
            AddressHeaderFlags::Tentative,
            vec![AddressAttribute::Address(
                "2001:db8:0:1::11".parse().unwrap(),
            )],
        );
        assert_eq!(
            address_from(&tentative).map(|a| (a.global, a.usable)),
            Some((true, false))
        );
        // The 32-bit flags attribute wins over the header's 8 bits.
        let deprecated = address(
            2,
            AddressScope::Universe,
            AddressHeaderFlags::empty(),
            vec![
                AddressAttribute::Address("2001:db8:0:1::12".parse().unwrap()),
                AddressAttribute::Flags(AddressFlags::Deprecated),
            ],
        );
        assert_eq!(address_from(&deprecated).map(|a| a.usable), Some(false));
        assert_eq!(
            address_from(&address(
                2,
                AddressScope::Universe,
                AddressHeaderFlags::empty(),
                vec![]
            )),
            None
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
