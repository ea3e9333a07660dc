//! The IPAddressPool `status` the controller writes: assigned and available addresses per
//! family, from the allocator's counters. Pure; the core compares it with the observed pool and
//! the writer sends the body.

use metallb_api::v1beta1::IPAddressPoolStatus;
use serde_json::{Value, json};

use crate::allocator::PoolCounters;

/// What the pool's status should say. Available = usable − assigned; huge IPv6 CIDRs count as
/// `i64::MAX`, as in MetalLB.
pub fn status(counters: &PoolCounters) -> IPAddressPoolStatus {
    IPAddressPoolStatus {
        assigned_ipv4: Some(counters.in_use_v4),
        assigned_ipv6: Some(counters.in_use_v6),
        available_ipv4: Some(counters.available_v4()),
        available_ipv6: Some(counters.available_v6()),
    }
}

/// The server-side apply body (for the `status` subresource) that writes `status`.
pub fn body(namespace: &str, pool: &str, status: &IPAddressPoolStatus) -> Value {
    json!({
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": pool, "namespace": namespace},
        "status": status,
    })
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn pool_status_counts_assigned_and_available_per_family() {
        let c = PoolCounters {
            pool: "lan".into(),
            total_v4: 8,
            total_v6: i64::MAX,
            in_use_v4: 3,
            in_use_v6: 1,
        };
        assert_eq!(
            body("metallb-system", &c.pool, &status(&c)),
            json!({
                "apiVersion": "metallb.io/v1beta1",
                "kind": "IPAddressPool",
                "metadata": {"name": "lan", "namespace": "metallb-system"},
                "status": {"assignedIPv4": 3, "assignedIPv6": 1, "availableIPv4": 5, "availableIPv6": i64::MAX - 1},
            })
        );
    }
}
