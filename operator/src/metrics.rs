//! The operator's metrics, on `/metrics` of its health port. Writes are counted where they
//! happen, so "no write in a steady state" can be checked from outside.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// apply, create, delete or status.
    pub verb: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

/// Every metric the operator exports.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub api_writes: Family<WriteLabels, Counter>,
    pub reconciles: Family<ResultLabels, Counter>,
}

impl Metrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "metallb_operator_api_writes",
            "Write requests the operator sent to the API server, by verb and kind",
            self.api_writes.clone(),
        );
        registry.register(
            "metallb_operator_reconciles",
            "Reconciles of the MetalLB resource, by result",
            self.reconciles.clone(),
        );
    }

    pub fn write(&self, verb: &str, kind: &str) {
        self.api_writes
            .get_or_create(&WriteLabels {
                verb: verb.into(),
                kind: kind.into(),
            })
            .inc();
    }
}
