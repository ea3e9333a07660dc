//! The announcer driven by plans, frames and instants; no sockets.

use std::time::Duration;

use pretty_assertions::assert_eq;

use super::*;
use crate::layer2::packet::Ethernet;

const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0b]);
const CLIENT: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0a]);
const OTHER_NODE: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0c]);

fn eth0() -> Link {
    Link {
        index: 2,
        name: "eth0".into(),
        mac: MAC,
        up: true,
        lower_up: true,
        broadcast: true,
        noarp: false,
        master: None,
    }
}

/// Applies `plan` and reports every gratuitous announcement as sent at `now`, as the driver
/// does.
fn apply(a: &mut Announcer, plan: &Plan, links: &[Link], now: Instant) -> Vec<Action> {
    let actions = a.apply(plan, links, now);
    for action in &actions {
        if let Action::Send {
            index,
            ip,
            kind: SendKind::Gratuitous,
            ..
        } = action
        {
            a.announced(*index, *ip, now);
        }
    }
    actions
}

/// An instant after every takeover guard of the test.
fn later() -> Instant {
    Instant::now() + Duration::from_secs(1)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn plan(ips: &[&str]) -> Plan {
    Plan {
        links: BTreeMap::from([(2, ips.iter().map(|s| ip(s)).collect())]),
        missing_interfaces: BTreeSet::new(),
    }
}

fn garp(ip_text: &str) -> Vec<Action> {
    gratuitous_frames(ip(ip_text), MAC)
        .into_iter()
        .map(|frame| Action::Send {
            index: 2,
            frame,
            ip: ip(ip_text),
            kind: SendKind::Gratuitous,
        })
        .collect()
}

fn group(s: &str) -> MacAddr {
    MacAddr::ipv6_multicast(solicited_node(s.parse().unwrap()))
}

fn arp_request(target: &str, eth_dst: MacAddr) -> Vec<u8> {
    ArpFrame {
        eth: Ethernet {
            dst: eth_dst,
            src: CLIENT,
            ethertype: super::super::packet::ETHERTYPE_ARP,
        },
        arp: super::super::packet::Arp {
            op: ArpOp::Request,
            sender_mac: CLIENT,
            sender_ip: "192.0.2.100".parse().unwrap(),
            target_mac: MacAddr::default(),
            target_ip: target.parse().unwrap(),
        },
    }
    .build()
}

fn solicitation(target: &str, hop_limit: u8, source_ll: Option<MacAddr>) -> NdpFrame {
    let target: Ipv6Addr = target.parse().unwrap();
    let group = solicited_node(target);
    NdpFrame {
        eth: Ethernet {
            dst: MacAddr::ipv6_multicast(group),
            src: CLIENT,
            ethertype: super::super::packet::ETHERTYPE_IPV6,
        },
        src: "fe80::ff:fe00:a".parse().unwrap(),
        dst: group,
        hop_limit,
        message: Ndp::Solicitation { target, source_ll },
    }
}

#[test]
fn a_new_link_opens_joins_groups_and_announces_every_ip_at_once() {
    let now = Instant::now();
    let mut a = Announcer::new(None);
    let actions = apply(
        &mut a,
        &plan(&["192.0.2.200", "2001:db8:0:1::200"]),
        &[eth0()],
        now,
    );
    let mut expected = vec![
        Action::Open(eth0()),
        Action::Join {
            index: 2,
            group: group("2001:db8:0:1::200"),
        },
    ];
    expected.extend(garp("192.0.2.200"));
    expected.extend(garp("2001:db8:0:1::200"));
    assert_eq!(actions, expected);
    assert_eq!(a.next_timer(), Some(now + Duration::from_millis(1100)));
    // Applying the same plan again changes nothing.
    assert_eq!(
        apply(
            &mut a,
            &plan(&["192.0.2.200", "2001:db8:0:1::200"]),
            &[eth0()],
            now
        ),
        vec![]
    );
}

#[test]
fn announcements_repeat_every_1100_ms_for_5_s_then_stop() {
    let start = Instant::now();
    let mut a = Announcer::new(None);
    apply(&mut a, &plan(&["192.0.2.200"]), &[eth0()], start);
    let mut at = Vec::new();
    while let Some(next) = a.next_timer() {
        let sent = a.on_timer(next);
        assert_eq!(sent, garp("192.0.2.200"));
        at.push((next - start).as_millis());
    }
    assert_eq!(at, vec![1100, 2200, 3300, 4400]);
}

#[test]
fn an_arp_request_for_an_announced_ip_gets_a_reply_with_the_links_mac() {
    let mut a = Announcer::new(None);
    apply(&mut a, &plan(&["192.0.2.200"]), &[eth0()], Instant::now());
    let request = arp_request("192.0.2.200", MacAddr::BROADCAST);
    let parsed = ArpFrame::parse(&request).unwrap();
    assert_eq!(
        a.on_frame(2, &request, later()),
        vec![
            Action::RequestReceived {
                ip: ip("192.0.2.200")
            },
            Action::Send {
                index: 2,
                frame: ArpFrame::reply_to(&parsed.arp, MAC).build(),
                ip: ip("192.0.2.200"),
                kind: SendKind::Response,
            }
        ]
    );
    // Unicast to us (a cache refresh) is answered too.
    assert_eq!(
        a.on_frame(2, &arp_request("192.0.2.200", MAC), later())
            .len(),
        2
    );
}

#[test]
fn requests_for_other_ips_other_hosts_or_other_links_are_ignored() {
    let mut a = Announcer::new(None);
    apply(&mut a, &plan(&["192.0.2.200"]), &[eth0()], Instant::now());
    assert_eq!(
        a.on_frame(2, &arp_request("192.0.2.201", MacAddr::BROADCAST), later()),
        vec![]
    );
    assert_eq!(
        a.on_frame(2, &arp_request("192.0.2.200", OTHER_NODE), later()),
        vec![]
    );
    assert_eq!(
        a.on_frame(3, &arp_request("192.0.2.200", MacAddr::BROADCAST), later()),
        vec![]
    );
    assert_eq!(a.on_frame(2, b"not a frame", later()), vec![]);
}

#[test]
fn a_gratuitous_arp_from_another_node_for_our_ip_is_reported() {
    let mut a = Announcer::new(None);
    apply(&mut a, &plan(&["192.0.2.200"]), &[eth0()], Instant::now());
    for op in [ArpOp::Request, ArpOp::Reply] {
        let frame = ArpFrame::gratuitous(op, "192.0.2.200".parse().unwrap(), OTHER_NODE).build();
        assert_eq!(
            a.on_frame(2, &frame, later()),
            vec![Action::OtherOwner {
                ip: ip("192.0.2.200"),
                mac: OTHER_NODE,
                index: 2
            }]
        );
    }
    // Our own announcements, looped back, are not.
    let own = ArpFrame::gratuitous(ArpOp::Request, "192.0.2.200".parse().unwrap(), MAC).build();
    assert_eq!(a.on_frame(2, &own, later()), vec![]);
}

#[test]
fn a_solicitation_with_a_source_link_layer_option_gets_a_solicited_advertisement() {
    let mut a = Announcer::new(None);
    apply(
        &mut a,
        &plan(&["2001:db8:0:1::200"]),
        &[eth0()],
        Instant::now(),
    );
    let ns = solicitation("2001:db8:0:1::200", 255, Some(CLIENT));
    let na = NdpFrame::advertisement_for(&ns, CLIENT, MAC).unwrap();
    assert_eq!(
        a.on_frame(2, &ns.build(), later()),
        vec![
            Action::RequestReceived {
                ip: ip("2001:db8:0:1::200")
            },
            Action::Send {
                index: 2,
                frame: na.build(),
                ip: ip("2001:db8:0:1::200"),
                kind: SendKind::Response,
            }
        ]
    );
}

#[test]
fn forwarded_solicitations_without_link_layer_option_or_for_other_ips_are_ignored() {
    let mut a = Announcer::new(None);
    apply(
        &mut a,
        &plan(&["2001:db8:0:1::200"]),
        &[eth0()],
        Instant::now(),
    );
    for ns in [
        solicitation("2001:db8:0:1::200", 64, Some(CLIENT)),
        solicitation("2001:db8:0:1::200", 255, None),
        solicitation("2001:db8:0:1::201", 255, Some(CLIENT)),
    ] {
        assert_eq!(a.on_frame(2, &ns.build(), later()), vec![], "{ns:?}");
    }
}

#[test]
fn an_unsolicited_advertisement_from_another_node_for_our_ip_is_reported() {
    let mut a = Announcer::new(None);
    apply(
        &mut a,
        &plan(&["2001:db8:0:1::200"]),
        &[eth0()],
        Instant::now(),
    );
    let na = NdpFrame::unsolicited("2001:db8:0:1::200".parse().unwrap(), OTHER_NODE).build();
    assert_eq!(
        a.on_frame(2, &na, later()),
        vec![Action::OtherOwner {
            ip: ip("2001:db8:0:1::200"),
            mac: OTHER_NODE,
            index: 2
        }]
    );
}

#[test]
fn solicited_node_groups_are_refcounted_across_ips() {
    let now = Instant::now();
    let mut a = Announcer::new(None);
    // Same low 24 bits: one group.
    apply(
        &mut a,
        &plan(&["2001:db8:0:1::200", "2001:db8:0:2::200"]),
        &[eth0()],
        now,
    );
    let g = group("2001:db8:0:1::200");
    let actions = apply(&mut a, &plan(&["2001:db8:0:2::200"]), &[eth0()], now);
    assert!(
        !actions.iter().any(|x| matches!(x, Action::Leave { .. })),
        "{actions:?}"
    );
    let actions = apply(&mut a, &plan(&["192.0.2.200"]), &[eth0()], now);
    let mut expected = vec![Action::Leave { index: 2, group: g }];
    expected.extend(garp("192.0.2.200"));
    assert_eq!(actions, expected);
}

#[test]
fn withdrawn_ips_stop_being_answered_and_announced() {
    let now = Instant::now();
    let mut a = Announcer::new(None);
    apply(
        &mut a,
        &plan(&["192.0.2.200", "192.0.2.201"]),
        &[eth0()],
        now,
    );
    assert_eq!(
        apply(&mut a, &plan(&["192.0.2.201"]), &[eth0()], now),
        vec![]
    );
    assert_eq!(
        a.on_frame(2, &arp_request("192.0.2.200", MacAddr::BROADCAST), later()),
        vec![]
    );
    let later = now + Duration::from_millis(1100);
    assert_eq!(a.on_timer(later), garp("192.0.2.201"));
    // Nothing left: the link closes.
    let empty = Plan::default();
    assert_eq!(
        apply(&mut a, &empty, &[eth0()], later),
        vec![Action::Close(2)]
    );
    assert_eq!(a.next_timer(), None);
}

#[test]
fn a_link_that_comes_back_announces_again() {
    let now = Instant::now();
    let mut a = Announcer::new(None);
    apply(&mut a, &plan(&["192.0.2.200"]), &[eth0()], now);
    // Carrier lost: the plan no longer has the link.
    assert_eq!(
        apply(&mut a, &Plan::default(), &[], now),
        vec![Action::Close(2)]
    );
    let later = now + Duration::from_secs(30);
    let mut expected = vec![Action::Open(eth0())];
    expected.extend(garp("192.0.2.200"));
    assert_eq!(
        apply(&mut a, &plan(&["192.0.2.200"]), &[eth0()], later),
        expected
    );
}

#[test]
fn a_link_whose_address_changes_is_reopened_and_announces_with_the_new_mac() {
    let now = Instant::now();
    let mut a = Announcer::new(None);
    apply(&mut a, &plan(&["192.0.2.200"]), &[eth0()], now);
    let mut renamed = eth0();
    renamed.mac = OTHER_NODE;
    let actions = apply(&mut a, &plan(&["192.0.2.200"]), &[renamed.clone()], now);
    let mut expected = vec![Action::Close(2), Action::Open(renamed)];
    expected.extend(
        gratuitous_frames(ip("192.0.2.200"), OTHER_NODE)
            .into_iter()
            .map(|frame| Action::Send {
                index: 2,
                frame,
                ip: ip("192.0.2.200"),
                kind: SendKind::Gratuitous,
            }),
    );
    assert_eq!(actions, expected);
}

#[test]
fn the_periodic_interval_reannounces_every_ip() {
    let start = Instant::now();
    let mut a = Announcer::new(Some(Duration::from_secs(10)));
    apply(&mut a, &plan(&["192.0.2.200"]), &[eth0()], start);
    while let Some(next) = a.next_timer() {
        if next - start >= Duration::from_secs(10) {
            assert_eq!(next - start, Duration::from_secs(10));
            assert_eq!(a.on_timer(next), garp("192.0.2.200"));
            return;
        }
        a.on_timer(next);
    }
    panic!("no periodic announcement scheduled");
}

#[test]
fn a_new_owner_answers_only_once_its_announcement_had_time_to_reach_the_old_owner() {
    let now = Instant::now();
    let mut a = Announcer::new(None);
    a.apply(&plan(&["192.0.2.200"]), &[eth0()], now);
    let request = arp_request("192.0.2.200", MacAddr::BROADCAST);
    // Not before the first gratuitous announcement has left (the sockets may take a while) ...
    assert_eq!(
        a.on_frame(2, &request, now + Duration::from_secs(1)),
        vec![]
    );
    let sent = now + Duration::from_millis(30);
    a.announced(2, ip("192.0.2.200"), sent);
    // ... and not during the guard after it.
    assert_eq!(
        a.on_frame(2, &request, sent + Duration::from_millis(5)),
        vec![]
    );
    assert_eq!(a.on_frame(2, &request, sent + TAKEOVER_GUARD).len(), 2);
}
