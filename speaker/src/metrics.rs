//! The speaker's metrics, with MetalLB's names and types, in the Prometheus text format of
//! [`metallb_runtime::metrics`] (which says why not OpenMetrics).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;

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
    pub bgp: std::sync::Arc<crate::bgp::native::Sessions>,
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
        render_bgp(&self.bgp.snapshot(), out);
    }
}

/// The BGP families, with MetalLB's names (native mode's four, then those its FRR mode exports).
fn render_bgp(sessions: &BTreeMap<String, crate::bgp::driver::Status>, out: &mut Text) {
    type Value = fn(&crate::bgp::driver::Status) -> u64;
    let families: [(&str, Kind, &str, Value); 13] = [
        (
            "metallb_bgp_session_up",
            Kind::Gauge,
            "BGP session state (1 is up, 0 is down)",
            |s| u64::from(s.up()),
        ),
        (
            "metallb_bgp_updates_total",
            Kind::Counter,
            "Number of BGP UPDATE messages sent",
            |s| s.counters.updates_sent,
        ),
        (
            "metallb_bgp_announced_prefixes_total",
            Kind::Gauge,
            "Number of prefixes currently being advertised on the BGP session",
            |s| s.announced as u64,
        ),
        (
            "metallb_bgp_pending_prefixes_total",
            Kind::Gauge,
            "Number of prefixes that should be advertised on the BGP session",
            |s| s.pending as u64,
        ),
        (
            "metallb_bgp_opens_sent",
            Kind::Counter,
            "Number of BGP open messages sent",
            |s| s.counters.opens_sent,
        ),
        (
            "metallb_bgp_opens_received",
            Kind::Counter,
            "Number of BGP open messages received",
            |s| s.counters.opens_received,
        ),
        (
            "metallb_bgp_notifications_sent",
            Kind::Counter,
            "Number of BGP notification messages sent",
            |s| s.counters.notifications_sent,
        ),
        (
            "metallb_bgp_updates_total_received",
            Kind::Counter,
            "Number of BGP UPDATE messages received",
            |s| s.counters.updates_received,
        ),
        (
            "metallb_bgp_keepalives_sent",
            Kind::Counter,
            "Number of BGP keepalive messages sent",
            |s| s.counters.keepalives_sent,
        ),
        (
            "metallb_bgp_keepalives_received",
            Kind::Counter,
            "Number of BGP keepalive messages received",
            |s| s.counters.keepalives_received,
        ),
        (
            "metallb_bgp_route_refresh_sent",
            Kind::Counter,
            "Number of BGP route refresh messages sent",
            |s| s.counters.route_refreshes_sent,
        ),
        (
            "metallb_bgp_total_sent",
            Kind::Counter,
            "Number of total BGP messages sent",
            |s| s.counters.messages_sent(),
        ),
        (
            "metallb_bgp_total_received",
            Kind::Counter,
            "Number of total BGP messages received",
            |s| s.counters.messages_received(),
        ),
    ];
    if sessions.is_empty() {
        return;
    }
    for (name, kind, help, value) in families {
        out.family(name, kind, help);
        for (peer, status) in sessions {
            out.sample(name, &[("peer", peer)], value(status));
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
}
