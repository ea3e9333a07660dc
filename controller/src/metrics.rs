//! The controller's metrics, with MetalLB's names (`shared/spec/metallb.md` §6.3), served as
//! OpenMetrics text on `/metrics`.
//!
//! Decision: `/metrics` is plain HTTP on `--port`. MetalLB (0.16) serves it over HTTPS behind
//! Kubernetes authentication and authorisation; these numbers are pool sizes and counters, not
//! secrets, and a scrape configuration without TLS is simpler. A NetworkPolicy can restrict
//! who scrapes.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::allocator::PoolCounters;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabel {
    pub pool: String,
}

/// Every metric of the controller. Cheap to clone (shared handles).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    addresses_total: Family<PoolLabel, Gauge>,
    ipv4_addresses_total: Family<PoolLabel, Gauge>,
    ipv6_addresses_total: Family<PoolLabel, Gauge>,
    addresses_in_use_total: Family<PoolLabel, Gauge>,
    ipv4_addresses_in_use_total: Family<PoolLabel, Gauge>,
    ipv6_addresses_in_use_total: Family<PoolLabel, Gauge>,
    pub updates: Counter<u64, AtomicU64>,
    pub update_errors: Counter<u64, AtomicU64>,
    pub config_loaded: Gauge,
    pub config_stale: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Self {
            registry: Arc::new(Registry::default()),
            addresses_total: Family::default(),
            ipv4_addresses_total: Family::default(),
            ipv6_addresses_total: Family::default(),
            addresses_in_use_total: Family::default(),
            ipv4_addresses_in_use_total: Family::default(),
            ipv6_addresses_in_use_total: Family::default(),
            updates: Counter::default(),
            update_errors: Counter::default(),
            config_loaded: Gauge::default(),
            config_stale: Gauge::default(),
        };
        let gauges = [
            (
                "metallb_allocator_addresses_total",
                "Number of usable IP addresses, per pool",
                &m.addresses_total,
            ),
            (
                "metallb_allocator_ipv4_addresses_total",
                "Number of usable IPv4 addresses, per pool",
                &m.ipv4_addresses_total,
            ),
            (
                "metallb_allocator_ipv6_addresses_total",
                "Number of usable IPv6 addresses, per pool",
                &m.ipv6_addresses_total,
            ),
            (
                "metallb_allocator_addresses_in_use_total",
                "Number of IP addresses in use, per pool",
                &m.addresses_in_use_total,
            ),
            (
                "metallb_allocator_ipv4_addresses_in_use_total",
                "Number of IPv4 addresses in use, per pool",
                &m.ipv4_addresses_in_use_total,
            ),
            (
                "metallb_allocator_ipv6_addresses_in_use_total",
                "Number of IPv6 addresses in use, per pool",
                &m.ipv6_addresses_in_use_total,
            ),
        ];
        for (name, help, family) in gauges {
            registry.register(name, help, family.clone());
        }
        // prometheus-client appends `_total` to counters.
        registry.register(
            "metallb_k8s_client_updates",
            "Number of k8s object updates that have been processed",
            m.updates.clone(),
        );
        registry.register(
            "metallb_k8s_client_update_errors",
            "Number of k8s object updates that failed for some reason",
            m.update_errors.clone(),
        );
        registry.register(
            "metallb_k8s_client_config_loaded_bool",
            "1 if the MetalLB configuration was successfully loaded at least once",
            m.config_loaded.clone(),
        );
        registry.register(
            "metallb_k8s_client_config_stale_bool",
            "1 if running on a stale configuration, because the latest config failed to load",
            m.config_stale.clone(),
        );
        Self {
            registry: Arc::new(registry),
            ..m
        }
    }

    /// Sets the allocator gauges; pools that no longer exist disappear.
    pub fn set_pools(&self, counters: &[PoolCounters]) {
        let families = [
            &self.addresses_total,
            &self.ipv4_addresses_total,
            &self.ipv6_addresses_total,
            &self.addresses_in_use_total,
            &self.ipv4_addresses_in_use_total,
            &self.ipv6_addresses_in_use_total,
        ];
        for f in families {
            f.clear();
        }
        for c in counters {
            let l = PoolLabel {
                pool: c.pool.clone(),
            };
            self.addresses_total.get_or_create(&l).set(c.total());
            self.ipv4_addresses_total.get_or_create(&l).set(c.total_v4);
            self.ipv6_addresses_total.get_or_create(&l).set(c.total_v6);
            self.addresses_in_use_total
                .get_or_create(&l)
                .set(c.in_use());
            self.ipv4_addresses_in_use_total
                .get_or_create(&l)
                .set(c.in_use_v4);
            self.ipv6_addresses_in_use_total
                .get_or_create(&l)
                .set(c.in_use_v6);
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_gauges_use_metallb_names_and_forget_deleted_pools() {
        let m = Metrics::new();
        let lan = PoolCounters {
            pool: "lan".into(),
            total_v4: 8,
            total_v6: i64::MAX,
            in_use_v4: 2,
            in_use_v6: 1,
        };
        m.set_pools(std::slice::from_ref(&lan));
        m.updates.inc();
        m.config_loaded.set(1);
        let text = m.encode();
        for line in [
            "metallb_allocator_addresses_total{pool=\"lan\"} 9223372036854775807",
            "metallb_allocator_ipv4_addresses_total{pool=\"lan\"} 8",
            "metallb_allocator_ipv6_addresses_total{pool=\"lan\"} 9223372036854775807",
            "metallb_allocator_addresses_in_use_total{pool=\"lan\"} 3",
            "metallb_allocator_ipv4_addresses_in_use_total{pool=\"lan\"} 2",
            "metallb_allocator_ipv6_addresses_in_use_total{pool=\"lan\"} 1",
            "metallb_k8s_client_updates_total 1",
            "metallb_k8s_client_update_errors_total 0",
            "metallb_k8s_client_config_loaded_bool 1",
            "metallb_k8s_client_config_stale_bool 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        m.set_pools(&[]);
        assert!(!m.encode().contains("pool=\"lan\""));
    }
}
