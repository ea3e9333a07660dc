//! The configured pools as the allocator sees them: each CIDR with its free addresses, an index
//! from address to pool, and the pool orders used when choosing where to allocate.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use metallb_api::config::Pool;
use metallb_api::net::is_buggy_ip;

use super::free::FreeRanges;
use super::types::Family;

/// An address as a number, with its family.
pub(crate) fn number(ip: IpAddr) -> (Family, u128) {
    match ip {
        IpAddr::V4(v4) => (Family::V4, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (Family::V6, u128::from(v6)),
    }
}

pub(crate) fn address(family: Family, n: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(n as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// Whether an IPv4 number ends in `.0` or `.255`.
fn buggy_v4(n: u128) -> bool {
    matches!(n & 0xff, 0 | 255)
}

/// One CIDR of a pool.
#[derive(Debug, Clone)]
pub(crate) struct Cidr {
    pub(crate) family: Family,
    pub(crate) first: u128,
    pub(crate) last: u128,
    /// CIDRs with 62 or more host bits: MetalLB counts the pool as `i64::MAX` addresses.
    pub(crate) huge: bool,
    pub(crate) size: u128,
    pub(crate) free: FreeRanges,
}

impl Cidr {
    fn new(net: &IpNet) -> Self {
        let (family, first) = number(net.network());
        let (_, last) = number(net.broadcast());
        let host_bits = net.max_prefix_len() - net.prefix_len();
        Self {
            family,
            first,
            last,
            huge: host_bits >= 62,
            size: metallb_api::net::size(net),
            free: FreeRanges::new(first, last),
        }
    }

    pub(crate) fn contains(&self, family: Family, n: u128) -> bool {
        self.family == family && self.first <= n && n <= self.last
    }

    /// Addresses ending in .0 or .255 in this (IPv4) CIDR.
    fn buggy_count(&self) -> u128 {
        if self.family != Family::V4 {
            return 0;
        }
        // Per whole /24: two. Partial /24s at either end are counted address by address (a CIDR
        // smaller than a /24 holds at most one of each).
        let count = |lo: u128, hi: u128| (lo..=hi).filter(|&n| buggy_v4(n)).count() as u128;
        if self.size >= 256 {
            self.size / 256 * 2
        } else {
            count(self.first, self.last)
        }
    }

    /// The lowest free address, skipping `.0`/`.255` when asked to.
    pub(crate) fn first_free(&self, avoid_buggy: bool) -> Option<u128> {
        if avoid_buggy && self.family == Family::V4 {
            self.free.first(buggy_v4)
        } else {
            self.free.first(|_| false)
        }
    }
}

/// A pool and its CIDRs, in the order listed.
#[derive(Debug, Clone)]
pub(crate) struct PoolState {
    pub(crate) pool: Pool,
    pub(crate) cidrs: Vec<Cidr>,
    /// Distinct addresses in use, per family.
    pub(crate) in_use: [u64; 2],
}

impl PoolState {
    fn new(pool: &Pool) -> Self {
        Self {
            pool: pool.clone(),
            cidrs: pool.cidrs().map(Cidr::new).collect(),
            in_use: [0, 0],
        }
    }

    pub(crate) fn has(&self, family: Family) -> bool {
        self.cidrs.iter().any(|c| c.family == family)
    }

    /// Whether the pool hands out `ip` at all (an avoidBuggyIPs pool never owns `.0`/`.255`).
    fn owns_buggy(&self, ip: IpAddr) -> bool {
        !(self.pool.avoid_buggy_ips && is_buggy_ip(ip))
    }

    /// Addresses the pool can hand out, per family, as MetalLB counts them: a family with a
    /// CIDR of 62 or more host bits counts as `i64::MAX`.
    pub(crate) fn capacity(&self, family: Family) -> i64 {
        let mut total: u128 = 0;
        for c in self.cidrs.iter().filter(|c| c.family == family) {
            if c.huge {
                return i64::MAX;
            }
            let usable = if self.pool.avoid_buggy_ips {
                c.size - c.buggy_count()
            } else {
                c.size
            };
            total = total.saturating_add(usable);
        }
        i64::try_from(total).unwrap_or(i64::MAX)
    }
}

/// All pools of one configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pools {
    pub(crate) by_name: BTreeMap<String, PoolState>,
    /// (family, first address of a CIDR) → (last address, pool, CIDR index). CIDRs never
    /// overlap (the parser rejects it), so the CIDR holding an address is the one starting at or
    /// before it.
    index: BTreeMap<(Family, u128), (u128, String, usize)>,
    /// Pools with a `serviceAllocation` and `autoAssign`, in the order they are tried: priority
    /// (lower first, 0 last), then name.
    pub(crate) restricted: Vec<String>,
    /// Pools with `autoAssign` and no `serviceAllocation`, by name.
    pub(crate) general: Vec<String>,
}

impl Pools {
    pub(crate) fn new(pools: &BTreeMap<String, Pool>) -> Self {
        let mut out = Self::default();
        for (name, pool) in pools {
            let state = PoolState::new(pool);
            for (i, c) in state.cidrs.iter().enumerate() {
                out.index
                    .insert((c.family, c.first), (c.last, name.clone(), i));
            }
            out.by_name.insert(name.clone(), state);
        }
        // Decision: MetalLB tries pools of equal priority, and the pools without any
        // serviceAllocation, in an unspecified (Go map) order. We order them by name, so the
        // same configuration always gives the same IPs; the CRD documentation already says "the
        // pool listed first by name is used".
        let mut restricted: Vec<(&String, i32)> = pools
            .iter()
            .filter(|(_, p)| p.auto_assign)
            .filter_map(|(n, p)| p.allocation.as_ref().map(|a| (n, a.priority)))
            .collect();
        restricted.sort_by_key(|&(name, priority)| (priority <= 0, priority, name));
        out.restricted = restricted.into_iter().map(|(n, _)| n.clone()).collect();
        out.general = pools
            .iter()
            .filter(|(_, p)| p.auto_assign && p.allocation.is_none())
            .map(|(n, _)| n.clone())
            .collect();
        out
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The pool and CIDR that own `ip`, if any.
    pub(crate) fn owner(&self, ip: IpAddr) -> Option<(&str, usize)> {
        let (family, n) = number(ip);
        let (_, (last, pool, cidr)) = self.index.range(..=(family, n)).next_back()?;
        let state = &self.by_name[pool];
        (state.cidrs[*cidr].contains(family, n) && *last >= n && state.owns_buggy(ip))
            .then_some((pool.as_str(), *cidr))
    }
}
