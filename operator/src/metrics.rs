//! The operator's metrics, on `/metrics` of its health port. Writes are counted where they
//! happen, so "no write in a steady state" can be checked from outside (hack/bench/operator.py
//! reads `metallb_operator_api_writes_total`).
//!
//! The names are those the operator has always exported, `_total` included.

use std::collections::BTreeMap;
use std::sync::Mutex;

use metallb_runtime::metrics::{Exposition, Kind, Text};

pub const API_WRITES: &str = "metallb_operator_api_writes_total";
pub const RECONCILES: &str = "metallb_operator_reconciles_total";

/// Every metric the operator exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (verb, kind) → count. Verbs: apply, create, update, patch, delete, status.
    api_writes: Mutex<BTreeMap<(String, String), u64>>,
    /// result → count. Results: ok, error.
    reconciles: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn write(&self, verb: &str, kind: &str) {
        *self
            .api_writes
            .lock()
            .expect("not poisoned")
            .entry((verb.into(), kind.into()))
            .or_default() += 1;
    }

    pub fn reconciled(&self, ok: bool) {
        *self
            .reconciles
            .lock()
            .expect("not poisoned")
            .entry(if ok { "ok" } else { "error" }.into())
            .or_default() += 1;
    }
}

impl Exposition for Metrics {
    fn render(&self, out: &mut Text) {
        out.family(
            API_WRITES,
            Kind::Counter,
            "Write requests the operator sent to the API server, by verb and kind",
        );
        for ((verb, kind), n) in self.api_writes.lock().expect("not poisoned").iter() {
            out.sample(API_WRITES, &[("verb", verb), ("kind", kind)], n);
        }
        out.family(
            RECONCILES,
            Kind::Counter,
            "Reconciles of the MetalLB resource, by result",
        );
        for (result, n) in self.reconciles.lock().expect("not poisoned").iter() {
            out.sample(RECONCILES, &[("result", result)], n);
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn writes_and_reconciles_are_exported_under_their_historic_names() {
        let m = Metrics::default();
        m.write("apply", "DaemonSet");
        m.write("apply", "DaemonSet");
        m.write("status", "MetalLB");
        m.reconciled(true);
        assert_eq!(
            metallb_runtime::metrics::render(&m),
            "# HELP metallb_operator_api_writes_total Write requests the operator sent to the API server, by verb and kind\n\
             # TYPE metallb_operator_api_writes_total counter\n\
             metallb_operator_api_writes_total{verb=\"apply\",kind=\"DaemonSet\"} 2\n\
             metallb_operator_api_writes_total{verb=\"status\",kind=\"MetalLB\"} 1\n\
             # HELP metallb_operator_reconciles_total Reconciles of the MetalLB resource, by result\n\
             # TYPE metallb_operator_reconciles_total counter\n\
             metallb_operator_reconciles_total{result=\"ok\"} 1\n"
        );
    }
}
