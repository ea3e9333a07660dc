//! The controller's metrics, with MetalLB's exact names (`shared/spec/metallb.md` §6.3), written
//! through `metallb_runtime::metrics` (Prometheus text 0.0.4) on `/metrics`.
//!
//! Owns: the values (pool gauges, write counters, configuration flags). It does not decide
//! them: the control loop copies the core's pool counters and configuration flags in after each
//! batch, and the writer counts its requests.
//!
//! Decision: `/metrics` is plain HTTP on `--port`. MetalLB (0.16) serves it over HTTPS behind
//! Kubernetes authentication and authorisation; these numbers are pool sizes and counters, not
//! secrets, and a scrape configuration without TLS is simpler. A NetworkPolicy can restrict
//! who scrapes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metallb_runtime::metrics::{Exposition, Kind, Text};

use crate::allocator::PoolCounters;

/// Every metric of the controller. Cheap to clone (one shared value).
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<Values>);

#[derive(Debug, Default)]
struct Values {
    /// The leader's pools, by name; empty on a replica that does not lead.
    pools: Mutex<Vec<PoolCounters>>,
    updates: AtomicU64,
    update_errors: AtomicU64,
    config_loaded: AtomicBool,
    config_stale: AtomicBool,
}

/// The per-pool gauges: name, help, value.
type PoolGauge = (&'static str, &'static str, fn(&PoolCounters) -> i64);

const POOL_GAUGES: [PoolGauge; 6] = [
    (
        "metallb_allocator_addresses_in_use_total",
        "Number of IP addresses in use, per pool",
        PoolCounters::in_use,
    ),
    (
        "metallb_allocator_ipv4_addresses_in_use_total",
        "Number of IPv4 addresses in use, per pool",
        |c| c.in_use_v4,
    ),
    (
        "metallb_allocator_ipv6_addresses_in_use_total",
        "Number of IPv6 addresses in use, per pool",
        |c| c.in_use_v6,
    ),
    (
        "metallb_allocator_addresses_total",
        "Number of usable IP addresses, per pool",
        PoolCounters::total,
    ),
    (
        "metallb_allocator_ipv4_addresses_total",
        "Number of usable IPv4 addresses, per pool",
        |c| c.total_v4,
    ),
    (
        "metallb_allocator_ipv6_addresses_total",
        "Number of usable IPv6 addresses, per pool",
        |c| c.total_v6,
    ),
];

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the allocator gauges; pools not listed (deleted, or no longer leading) disappear.
    pub fn set_pools(&self, counters: Vec<PoolCounters>) {
        *self.0.pools.lock().unwrap_or_else(|e| e.into_inner()) = counters;
    }

    /// `metallb_k8s_client_config_loaded_bool` (a configuration was loaded at least once) and
    /// `metallb_k8s_client_config_stale_bool` (the latest one failed to load).
    pub fn set_config(&self, loaded: bool, stale: bool) {
        self.0.config_loaded.store(loaded, Ordering::Relaxed);
        self.0.config_stale.store(stale, Ordering::Relaxed);
    }

    /// One request sent to the API server.
    pub fn count_update(&self) {
        self.0.updates.fetch_add(1, Ordering::Relaxed);
    }

    /// One request that failed.
    pub fn count_update_error(&self) {
        self.0.update_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn updates(&self) -> u64 {
        self.0.updates.load(Ordering::Relaxed)
    }

    pub fn update_errors(&self) -> u64 {
        self.0.update_errors.load(Ordering::Relaxed)
    }
}

impl Exposition for Metrics {
    fn render(&self, out: &mut Text) {
        let pools = self.0.pools.lock().unwrap_or_else(|e| e.into_inner());
        // As Go's client: a labelled family without samples is not written.
        if !pools.is_empty() {
            for (name, help, value) in POOL_GAUGES {
                out.family(name, Kind::Gauge, help);
                for c in pools.iter() {
                    out.sample(name, &[("pool", &c.pool)], value(c));
                }
            }
        }
        drop(pools);
        out.single(
            "metallb_k8s_client_updates_total",
            Kind::Counter,
            "Number of k8s object updates that have been processed.",
            self.updates(),
        );
        out.single(
            "metallb_k8s_client_update_errors_total",
            Kind::Counter,
            "Number of k8s object updates that failed for some reason.",
            self.update_errors(),
        );
        out.single(
            "metallb_k8s_client_config_loaded_bool",
            Kind::Gauge,
            "1 if the MetalLB configuration was successfully loaded at least once.",
            u8::from(self.0.config_loaded.load(Ordering::Relaxed)),
        );
        out.single(
            "metallb_k8s_client_config_stale_bool",
            Kind::Gauge,
            "1 if running on a stale configuration, because the latest config failed to load.",
            u8::from(self.0.config_stale.load(Ordering::Relaxed)),
        );
    }
}

#[cfg(test)]
mod tests {
    use metallb_runtime::metrics::render;
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn the_page_has_metallb_names_per_pool_gauges_and_the_client_counters() {
        let m = Metrics::new();
        m.set_pools(vec![PoolCounters {
            pool: "lan".into(),
            total_v4: 8,
            total_v6: i64::MAX,
            in_use_v4: 2,
            in_use_v6: 1,
        }]);
        m.count_update();
        m.count_update();
        m.count_update_error();
        m.set_config(true, false);
        assert_eq!(
            render(&m),
            "# HELP metallb_allocator_addresses_in_use_total Number of IP addresses in use, per pool\n\
             # TYPE metallb_allocator_addresses_in_use_total gauge\n\
             metallb_allocator_addresses_in_use_total{pool=\"lan\"} 3\n\
             # HELP metallb_allocator_ipv4_addresses_in_use_total Number of IPv4 addresses in use, per pool\n\
             # TYPE metallb_allocator_ipv4_addresses_in_use_total gauge\n\
             metallb_allocator_ipv4_addresses_in_use_total{pool=\"lan\"} 2\n\
             # HELP metallb_allocator_ipv6_addresses_in_use_total Number of IPv6 addresses in use, per pool\n\
             # TYPE metallb_allocator_ipv6_addresses_in_use_total gauge\n\
             metallb_allocator_ipv6_addresses_in_use_total{pool=\"lan\"} 1\n\
             # HELP metallb_allocator_addresses_total Number of usable IP addresses, per pool\n\
             # TYPE metallb_allocator_addresses_total gauge\n\
             metallb_allocator_addresses_total{pool=\"lan\"} 9223372036854775807\n\
             # HELP metallb_allocator_ipv4_addresses_total Number of usable IPv4 addresses, per pool\n\
             # TYPE metallb_allocator_ipv4_addresses_total gauge\n\
             metallb_allocator_ipv4_addresses_total{pool=\"lan\"} 8\n\
             # HELP metallb_allocator_ipv6_addresses_total Number of usable IPv6 addresses, per pool\n\
             # TYPE metallb_allocator_ipv6_addresses_total gauge\n\
             metallb_allocator_ipv6_addresses_total{pool=\"lan\"} 9223372036854775807\n\
             # HELP metallb_k8s_client_updates_total Number of k8s object updates that have been processed.\n\
             # TYPE metallb_k8s_client_updates_total counter\n\
             metallb_k8s_client_updates_total 2\n\
             # HELP metallb_k8s_client_update_errors_total Number of k8s object updates that failed for some reason.\n\
             # TYPE metallb_k8s_client_update_errors_total counter\n\
             metallb_k8s_client_update_errors_total 1\n\
             # HELP metallb_k8s_client_config_loaded_bool 1 if the MetalLB configuration was successfully loaded at least once.\n\
             # TYPE metallb_k8s_client_config_loaded_bool gauge\n\
             metallb_k8s_client_config_loaded_bool 1\n\
             # HELP metallb_k8s_client_config_stale_bool 1 if running on a stale configuration, because the latest config failed to load.\n\
             # TYPE metallb_k8s_client_config_stale_bool gauge\n\
             metallb_k8s_client_config_stale_bool 0\n"
        );
    }

    #[test]
    fn a_replica_that_stops_leading_writes_no_pool_family() {
        let m = Metrics::new();
        m.set_pools(vec![PoolCounters {
            pool: "lan".into(),
            total_v4: 4,
            total_v6: 0,
            in_use_v4: 0,
            in_use_v6: 0,
        }]);
        m.set_pools(Vec::new());
        m.set_config(true, true);
        assert_eq!(
            render(&m),
            "# HELP metallb_k8s_client_updates_total Number of k8s object updates that have been processed.\n\
             # TYPE metallb_k8s_client_updates_total counter\n\
             metallb_k8s_client_updates_total 0\n\
             # HELP metallb_k8s_client_update_errors_total Number of k8s object updates that failed for some reason.\n\
             # TYPE metallb_k8s_client_update_errors_total counter\n\
             metallb_k8s_client_update_errors_total 0\n\
             # HELP metallb_k8s_client_config_loaded_bool 1 if the MetalLB configuration was successfully loaded at least once.\n\
             # TYPE metallb_k8s_client_config_loaded_bool gauge\n\
             metallb_k8s_client_config_loaded_bool 1\n\
             # HELP metallb_k8s_client_config_stale_bool 1 if running on a stale configuration, because the latest config failed to load.\n\
             # TYPE metallb_k8s_client_config_stale_bool gauge\n\
             metallb_k8s_client_config_stale_bool 1\n"
        );
    }
}
