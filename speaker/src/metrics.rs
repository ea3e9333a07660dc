//! The speaker's metrics, with MetalLB's names and types, in the Prometheus text format of
//! [`metallb_runtime::metrics`] (which says why not OpenMetrics).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use metallb_runtime::metrics::{Exposition, Kind, Text};

/// The labels of `metallb_speaker_announced`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Announced {
    pub service: String,
    pub protocol: &'static str,
    pub node: String,
    pub ip: IpAddr,
}

#[derive(Debug, Default)]
struct Values {
    announced: BTreeMap<Announced, ()>,
    requests_received: BTreeMap<IpAddr, u64>,
    responses_sent: BTreeMap<IpAddr, u64>,
    gratuitous_sent: BTreeMap<IpAddr, u64>,
    config_loaded: bool,
    config_stale: bool,
    live_speakers: usize,
}

/// Shared by every task; cheap to update.
#[derive(Debug, Default)]
pub struct Metrics {
    values: Mutex<Values>,
    /// The native BGP sessions, read when scraped.
    pub bgp: Arc<crate::bgp::native::Sessions>,
    /// The native backend's BFD sessions, read when scraped.
    pub bfd: crate::bfd::driver::Stats,
    /// FRR mode: FRR's BGP and BFD counters (empty otherwise).
    pub frr: Arc<crate::bgp::frr::FrrMetrics>,
}

/// Which L2 counter to bump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer2 {
    RequestReceived,
    ResponseSent,
    GratuitousSent,
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Values) -> T) -> T {
        let mut v = self.values.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut v)
    }

    pub fn count(&self, which: Layer2, ip: IpAddr) {
        self.with(|v| {
            let map = match which {
                Layer2::RequestReceived => &mut v.requests_received,
                Layer2::ResponseSent => &mut v.responses_sent,
                Layer2::GratuitousSent => &mut v.gratuitous_sent,
            };
            *map.entry(ip).or_default() += 1;
        });
    }

    /// Replaces the set of announced (service, ip) series.
    pub fn set_announced(&self, announced: impl IntoIterator<Item = Announced>) {
        self.with(|v| v.announced = announced.into_iter().map(|a| (a, ())).collect());
    }

    pub fn set_config(&self, loaded: bool, stale: bool) {
        self.with(|v| {
            v.config_loaded = loaded;
            v.config_stale = stale;
        });
    }

    pub fn set_live_speakers(&self, count: usize) {
        self.with(|v| v.live_speakers = count);
    }
}

impl Exposition for Metrics {
    fn render(&self, out: &mut Text) {
        self.with(|v| {
            let announced = "metallb_speaker_announced";
            out.family(
                announced,
                Kind::Gauge,
                "The number of services announced by this speaker.",
            );
            for a in v.announced.keys() {
                let ip = a.ip.to_string();
                out.sample(
                    announced,
                    &[
                        ("ip", &ip),
                        ("node", &a.node),
                        ("protocol", a.protocol),
                        ("service", &a.service),
                    ],
                    1,
                );
            }
            for (name, help, map) in [
                (
                    "metallb_layer2_requests_received",
                    "Number of layer2 requests received for owned IPs.",
                    &v.requests_received,
                ),
                (
                    "metallb_layer2_responses_sent",
                    "Number of layer2 responses sent for owned IPs.",
                    &v.responses_sent,
                ),
                (
                    "metallb_layer2_gratuitous_sent",
                    "Number of gratuitous layer2 packets sent for owned IPs.",
                    &v.gratuitous_sent,
                ),
            ] {
                out.family(name, Kind::Counter, help);
                for (ip, n) in map {
                    out.sample(name, &[("ip", &ip.to_string())], n);
                }
            }
            out.single(
                "metallb_k8s_client_config_loaded_bool",
                Kind::Gauge,
                "1 if the MetalLB configuration was successfully loaded at least once.",
                u8::from(v.config_loaded),
            );
            out.single(
                "metallb_k8s_client_config_stale_bool",
                Kind::Gauge,
                "1 if running on a stale configuration, because the latest config failed to load.",
                u8::from(v.config_stale),
            );
            out.single(
                "metallb_speaker_live_speakers",
                Kind::Gauge,
                "The number of speakers this speaker sees alive, itself included.",
                v.live_speakers,
            );
        });
        let mut bgp = native_bgp_rows(&self.bgp.snapshot());
        let mut bfd = native_bfd_rows(&self.bfd.snapshot());
        let frr = self.frr.snapshot();
        bgp.extend(frr_bgp_rows(&frr, &self.frr));
        bfd.extend(frr_bfd_rows(&frr));
        render_bgp(&bgp, out);
        render_bfd(&bfd, out);
    }
}

/// One BGP session's series: labels `peer` (`address:port`) for the native backend, `peer` and
/// `vrf` for FRR (MetalLB's frr-metrics).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct BgpRow {
    labels: Vec<(&'static str, String)>,
    up: bool,
    updates_sent: u64,
    announced: u64,
    /// Native only: FRR does not say.
    pending: Option<u64>,
    opens_sent: u64,
    opens_received: u64,
    notifications_sent: u64,
    updates_received: u64,
    keepalives_sent: u64,
    keepalives_received: u64,
    route_refresh_sent: u64,
    total_sent: u64,
    total_received: u64,
}

fn native_bgp_rows(sessions: &BTreeMap<String, crate::bgp::driver::Status>) -> Vec<BgpRow> {
    sessions
        .iter()
        .map(|(peer, s)| BgpRow {
            labels: vec![("peer", peer.clone())],
            up: s.up(),
            updates_sent: s.counters.updates_sent,
            announced: s.announced as u64,
            pending: Some(s.pending as u64),
            opens_sent: s.counters.opens_sent,
            opens_received: s.counters.opens_received,
            notifications_sent: s.counters.notifications_sent,
            updates_received: s.counters.updates_received,
            keepalives_sent: s.counters.keepalives_sent,
            keepalives_received: s.counters.keepalives_received,
            route_refresh_sent: s.counters.route_refreshes_sent,
            total_sent: s.counters.messages_sent(),
            total_received: s.counters.messages_received(),
        })
        .collect()
}

fn frr_bgp_rows(
    stats: &crate::bgp::frr::FrrStats,
    ports: &crate::bgp::frr::FrrMetrics,
) -> Vec<BgpRow> {
    stats
        .neighbors
        .iter()
        .map(|n| {
            let port = n.port.unwrap_or_else(|| ports.port(&n.vrf, &n.peer));
            let peer = match n.peer.parse::<IpAddr>() {
                Ok(std::net::IpAddr::V6(a)) => format!("[{a}]:{port}"),
                _ => format!("{}:{port}", n.peer),
            };
            BgpRow {
                labels: vec![("peer", peer), ("vrf", n.vrf.clone())],
                up: n.up,
                updates_sent: n.updates_sent,
                announced: n.announced,
                pending: None,
                opens_sent: n.opens_sent,
                opens_received: n.opens_received,
                notifications_sent: n.notifications_sent,
                updates_received: n.updates_received,
                keepalives_sent: n.keepalives_sent,
                keepalives_received: n.keepalives_received,
                route_refresh_sent: n.route_refresh_sent,
                total_sent: n.total_sent,
                total_received: n.total_received,
            }
        })
        .collect()
}

/// One BFD session's series: label `peer` (the router's address) for the native backend,
/// `peer` and `vrf` for FRR; the echo and zebra counters exist only in FRR.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct BfdRow {
    labels: Vec<(&'static str, String)>,
    up: bool,
    control_packet_input: u64,
    control_packet_output: u64,
    echo_packet_input: Option<u64>,
    echo_packet_output: Option<u64>,
    session_up_events: u64,
    session_down_events: u64,
    zebra_notifications: Option<u64>,
}

fn native_bfd_rows(sessions: &BTreeMap<crate::bfd::SessionKey, crate::bfd::Status>) -> Vec<BfdRow> {
    sessions
        .iter()
        .map(|(key, s)| BfdRow {
            labels: vec![("peer", key.peer.to_string())],
            up: s.state == crate::bfd::State::Up,
            control_packet_input: s.counters.control_packet_input,
            control_packet_output: s.counters.control_packet_output,
            session_up_events: s.counters.session_up_events,
            session_down_events: s.counters.session_down_events,
            ..BfdRow::default()
        })
        .collect()
}

fn frr_bfd_rows(stats: &crate::bgp::frr::FrrStats) -> Vec<BfdRow> {
    stats
        .bfd
        .iter()
        .map(|p| BfdRow {
            labels: vec![("peer", p.peer.clone()), ("vrf", p.vrf.clone())],
            up: p.up,
            control_packet_input: p.control_packet_input,
            control_packet_output: p.control_packet_output,
            echo_packet_input: Some(p.echo_packet_input),
            echo_packet_output: Some(p.echo_packet_output),
            session_up_events: p.session_up_events,
            session_down_events: p.session_down_events,
            zebra_notifications: Some(p.zebra_notifications),
        })
        .collect()
}

/// The BFD families, with the names and help of MetalLB's FRR mode.
fn render_bfd(rows: &[BfdRow], out: &mut Text) {
    type Value = fn(&BfdRow) -> Option<u64>;
    let families: [(&str, Kind, &str, Value); 8] = [
        (
            "metallb_bfd_session_up",
            Kind::Gauge,
            "BFD session state (1 is up, 0 is down)",
            |r| Some(u64::from(r.up)),
        ),
        (
            "metallb_bfd_control_packet_input",
            Kind::Counter,
            "Number of received BFD control packets",
            |r| Some(r.control_packet_input),
        ),
        (
            "metallb_bfd_control_packet_output",
            Kind::Counter,
            "Number of sent BFD control packets",
            |r| Some(r.control_packet_output),
        ),
        (
            "metallb_bfd_echo_packet_input",
            Kind::Counter,
            "Number of received BFD echo packets",
            |r| r.echo_packet_input,
        ),
        (
            "metallb_bfd_echo_packet_output",
            Kind::Counter,
            "Number of sent BFD echo packets",
            |r| r.echo_packet_output,
        ),
        (
            "metallb_bfd_session_up_events",
            Kind::Counter,
            "Number of BFD session up events",
            |r| Some(r.session_up_events),
        ),
        (
            "metallb_bfd_session_down_events",
            Kind::Counter,
            "Number of BFD session down events",
            |r| Some(r.session_down_events),
        ),
        (
            "metallb_bfd_zebra_notifications",
            Kind::Counter,
            "Number of BFD zebra notifications",
            |r| r.zebra_notifications,
        ),
    ];
    for (name, kind, help, value) in families {
        let samples: Vec<(&BfdRow, u64)> = rows
            .iter()
            .filter_map(|r| value(r).map(|v| (r, v)))
            .collect();
        if samples.is_empty() {
            continue;
        }
        out.family(name, kind, help);
        for (row, v) in samples {
            let labels: Vec<(&str, &str)> =
                row.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            out.sample(name, &labels, v);
        }
    }
}

/// The BGP families, with MetalLB's names (native mode's four, then those its FRR mode exports).
fn render_bgp(rows: &[BgpRow], out: &mut Text) {
    type Value = fn(&BgpRow) -> Option<u64>;
    let families: [(&str, Kind, &str, Value); 13] = [
        (
            "metallb_bgp_session_up",
            Kind::Gauge,
            "BGP session state (1 is up, 0 is down)",
            |r| Some(u64::from(r.up)),
        ),
        (
            "metallb_bgp_updates_total",
            Kind::Counter,
            "Number of BGP UPDATE messages sent",
            |r| Some(r.updates_sent),
        ),
        (
            "metallb_bgp_announced_prefixes_total",
            Kind::Gauge,
            "Number of prefixes currently being advertised on the BGP session",
            |r| Some(r.announced),
        ),
        (
            "metallb_bgp_pending_prefixes_total",
            Kind::Gauge,
            "Number of prefixes that should be advertised on the BGP session",
            |r| r.pending,
        ),
        (
            "metallb_bgp_opens_sent",
            Kind::Counter,
            "Number of BGP open messages sent",
            |r| Some(r.opens_sent),
        ),
        (
            "metallb_bgp_opens_received",
            Kind::Counter,
            "Number of BGP open messages received",
            |r| Some(r.opens_received),
        ),
        (
            "metallb_bgp_notifications_sent",
            Kind::Counter,
            "Number of BGP notification messages sent",
            |r| Some(r.notifications_sent),
        ),
        (
            "metallb_bgp_updates_total_received",
            Kind::Counter,
            "Number of BGP UPDATE messages received",
            |r| Some(r.updates_received),
        ),
        (
            "metallb_bgp_keepalives_sent",
            Kind::Counter,
            "Number of BGP keepalive messages sent",
            |r| Some(r.keepalives_sent),
        ),
        (
            "metallb_bgp_keepalives_received",
            Kind::Counter,
            "Number of BGP keepalive messages received",
            |r| Some(r.keepalives_received),
        ),
        (
            "metallb_bgp_route_refresh_sent",
            Kind::Counter,
            "Number of BGP route refresh messages sent",
            |r| Some(r.route_refresh_sent),
        ),
        (
            "metallb_bgp_total_sent",
            Kind::Counter,
            "Number of total BGP messages sent",
            |r| Some(r.total_sent),
        ),
        (
            "metallb_bgp_total_received",
            Kind::Counter,
            "Number of total BGP messages received",
            |r| Some(r.total_received),
        ),
    ];
    for (name, kind, help, value) in families {
        let samples: Vec<(&BgpRow, u64)> = rows
            .iter()
            .filter_map(|r| value(r).map(|v| (r, v)))
            .collect();
        if samples.is_empty() {
            continue;
        }
        out.family(name, kind, help);
        for (row, v) in samples {
            let labels: Vec<(&str, &str)> =
                row.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            out.sample(name, &labels, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn the_exposition_uses_metallbs_names_labels_and_types() {
        let m = Metrics::default();
        let ip: IpAddr = "192.0.2.200".parse().unwrap();
        m.set_announced([Announced {
            service: "demo/web".into(),
            protocol: "layer2",
            node: "node-1".into(),
            ip,
        }]);
        m.count(Layer2::RequestReceived, ip);
        m.count(Layer2::RequestReceived, ip);
        m.count(Layer2::ResponseSent, ip);
        m.count(Layer2::GratuitousSent, "2001:db8:0:1::200".parse().unwrap());
        m.set_config(true, false);
        m.set_live_speakers(3);
        assert_eq!(
            metallb_runtime::metrics::render(&m),
            r#"# HELP metallb_speaker_announced The number of services announced by this speaker.
# TYPE metallb_speaker_announced gauge
metallb_speaker_announced{ip="192.0.2.200",node="node-1",protocol="layer2",service="demo/web"} 1
# HELP metallb_layer2_requests_received Number of layer2 requests received for owned IPs.
# TYPE metallb_layer2_requests_received counter
metallb_layer2_requests_received{ip="192.0.2.200"} 2
# HELP metallb_layer2_responses_sent Number of layer2 responses sent for owned IPs.
# TYPE metallb_layer2_responses_sent counter
metallb_layer2_responses_sent{ip="192.0.2.200"} 1
# HELP metallb_layer2_gratuitous_sent Number of gratuitous layer2 packets sent for owned IPs.
# TYPE metallb_layer2_gratuitous_sent counter
metallb_layer2_gratuitous_sent{ip="2001:db8:0:1::200"} 1
# HELP metallb_k8s_client_config_loaded_bool 1 if the MetalLB configuration was successfully loaded at least once.
# TYPE metallb_k8s_client_config_loaded_bool gauge
metallb_k8s_client_config_loaded_bool 1
# HELP metallb_k8s_client_config_stale_bool 1 if running on a stale configuration, because the latest config failed to load.
# TYPE metallb_k8s_client_config_stale_bool gauge
metallb_k8s_client_config_stale_bool 0
# HELP metallb_speaker_live_speakers The number of speakers this speaker sees alive, itself included.
# TYPE metallb_speaker_live_speakers gauge
metallb_speaker_live_speakers 3
"#
        );
    }

    #[test]
    fn frr_mode_exports_frrs_bgp_and_bfd_counters_with_peer_and_vrf_labels() {
        use crate::bgp::frr::stats::{BfdPeer, Neighbor};
        let m = Metrics::default();
        m.frr.set(crate::bgp::frr::FrrStats {
            neighbors: vec![Neighbor {
                vrf: "default".into(),
                peer: "2001:db8:0:1::1".into(),
                port: None,
                up: true,
                announced: 2,
                opens_sent: 1,
                opens_received: 1,
                notifications_sent: 0,
                updates_sent: 3,
                updates_received: 1,
                keepalives_sent: 4,
                keepalives_received: 5,
                route_refresh_sent: 0,
                total_sent: 8,
                total_received: 7,
            }],
            bfd: vec![BfdPeer {
                vrf: "default".into(),
                peer: "192.0.2.1".into(),
                up: true,
                control_packet_input: 10,
                control_packet_output: 11,
                echo_packet_input: 0,
                echo_packet_output: 0,
                session_up_events: 1,
                session_down_events: 0,
                zebra_notifications: 2,
            }],
        });
        let text = metallb_runtime::metrics::render(&m);
        let bgp_bfd: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("metallb_bgp_") || l.starts_with("metallb_bfd_"))
            .collect();
        assert_eq!(
            bgp_bfd,
            [
                r#"metallb_bgp_session_up{peer="[2001:db8:0:1::1]:179",vrf="default"} 1"#,
                r#"metallb_bgp_updates_total{peer="[2001:db8:0:1::1]:179",vrf="default"} 3"#,
                r#"metallb_bgp_announced_prefixes_total{peer="[2001:db8:0:1::1]:179",vrf="default"} 2"#,
                r#"metallb_bgp_opens_sent{peer="[2001:db8:0:1::1]:179",vrf="default"} 1"#,
                r#"metallb_bgp_opens_received{peer="[2001:db8:0:1::1]:179",vrf="default"} 1"#,
                r#"metallb_bgp_notifications_sent{peer="[2001:db8:0:1::1]:179",vrf="default"} 0"#,
                r#"metallb_bgp_updates_total_received{peer="[2001:db8:0:1::1]:179",vrf="default"} 1"#,
                r#"metallb_bgp_keepalives_sent{peer="[2001:db8:0:1::1]:179",vrf="default"} 4"#,
                r#"metallb_bgp_keepalives_received{peer="[2001:db8:0:1::1]:179",vrf="default"} 5"#,
                r#"metallb_bgp_route_refresh_sent{peer="[2001:db8:0:1::1]:179",vrf="default"} 0"#,
                r#"metallb_bgp_total_sent{peer="[2001:db8:0:1::1]:179",vrf="default"} 8"#,
                r#"metallb_bgp_total_received{peer="[2001:db8:0:1::1]:179",vrf="default"} 7"#,
                r#"metallb_bfd_session_up{peer="192.0.2.1",vrf="default"} 1"#,
                r#"metallb_bfd_control_packet_input{peer="192.0.2.1",vrf="default"} 10"#,
                r#"metallb_bfd_control_packet_output{peer="192.0.2.1",vrf="default"} 11"#,
                r#"metallb_bfd_echo_packet_input{peer="192.0.2.1",vrf="default"} 0"#,
                r#"metallb_bfd_echo_packet_output{peer="192.0.2.1",vrf="default"} 0"#,
                r#"metallb_bfd_session_up_events{peer="192.0.2.1",vrf="default"} 1"#,
                r#"metallb_bfd_session_down_events{peer="192.0.2.1",vrf="default"} 0"#,
                r#"metallb_bfd_zebra_notifications{peer="192.0.2.1",vrf="default"} 2"#,
            ]
        );
        assert!(text.contains("# HELP metallb_bfd_session_up BFD session state (1 is up, 0 is down)\n# TYPE metallb_bfd_session_up gauge\n"));
        assert!(!text.contains("metallb_bgp_pending_prefixes_total"));
    }

    #[test]
    fn native_bfd_sessions_export_metallbs_five_families_labelled_by_peer() {
        let key = crate::bfd::SessionKey::single_hop("192.0.2.1".parse().unwrap());
        let status = crate::bfd::Status {
            state: crate::bfd::State::Up,
            diag: crate::bfd::Diagnostic::NoDiagnostic,
            local_discriminator: 1,
            remote_discriminator: 2,
            transmit_interval: std::time::Duration::from_millis(300),
            detection_time: Some(std::time::Duration::from_millis(900)),
            polling: false,
            counters: crate::bfd::Counters {
                control_packet_input: 20,
                control_packet_output: 21,
                session_up_events: 1,
                session_down_events: 1,
            },
        };
        let mut text = Text::default();
        render_bfd(
            &native_bfd_rows(&BTreeMap::from([(key, status)])),
            &mut text,
        );
        assert_eq!(
            text.into_string(),
            r#"# HELP metallb_bfd_session_up BFD session state (1 is up, 0 is down)
# TYPE metallb_bfd_session_up gauge
metallb_bfd_session_up{peer="192.0.2.1"} 1
# HELP metallb_bfd_control_packet_input Number of received BFD control packets
# TYPE metallb_bfd_control_packet_input counter
metallb_bfd_control_packet_input{peer="192.0.2.1"} 20
# HELP metallb_bfd_control_packet_output Number of sent BFD control packets
# TYPE metallb_bfd_control_packet_output counter
metallb_bfd_control_packet_output{peer="192.0.2.1"} 21
# HELP metallb_bfd_session_up_events Number of BFD session up events
# TYPE metallb_bfd_session_up_events counter
metallb_bfd_session_up_events{peer="192.0.2.1"} 1
# HELP metallb_bfd_session_down_events Number of BFD session down events
# TYPE metallb_bfd_session_down_events counter
metallb_bfd_session_down_events{peer="192.0.2.1"} 1
"#
        );
    }
}
