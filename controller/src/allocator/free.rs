//! The free addresses of one CIDR, as disjoint inclusive intervals.
//!
//! A pool can be an IPv6 /64 (2^64 addresses) or a /8; scanning it address by address for each
//! allocation, as MetalLB's cursor does, costs time proportional to the addresses already in
//! use. Keeping the free space as intervals makes "lowest free address" the start of the first
//! interval, and taking or giving back one address a split or a merge: O(log n) in the number
//! of intervals, which is at most one more than the number of addresses in use.

use std::collections::BTreeMap;

/// Free addresses of one CIDR. Addresses are numbers (`u32` IPv4 widened, or `u128` IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FreeRanges {
    /// start → end, both inclusive, disjoint, never adjacent (adjacent intervals are merged).
    ranges: BTreeMap<u128, u128>,
}

impl FreeRanges {
    /// Every address from `first` to `last` (inclusive) is free.
    pub(crate) fn new(first: u128, last: u128) -> Self {
        Self {
            ranges: BTreeMap::from([(first, last)]),
        }
    }

    pub(crate) fn is_free(&self, x: u128) -> bool {
        self.ranges
            .range(..=x)
            .next_back()
            .is_some_and(|(_, &end)| x <= end)
    }

    /// Marks `x` as used; false if it was not free.
    pub(crate) fn take(&mut self, x: u128) -> bool {
        let Some((&start, &end)) = self.ranges.range(..=x).next_back() else {
            return false;
        };
        if x > end {
            return false;
        }
        self.ranges.remove(&start);
        if start < x {
            self.ranges.insert(start, x - 1);
        }
        if x < end {
            self.ranges.insert(x + 1, end);
        }
        true
    }

    /// Marks `x` as free again, merging with its neighbours. Giving back a free address is a
    /// no-op.
    pub(crate) fn give(&mut self, x: u128) {
        if self.is_free(x) {
            return;
        }
        let mut start = x;
        let mut end = x;
        if let Some((&s, &e)) = self.ranges.range(..x).next_back()
            && e.checked_add(1) == Some(x)
        {
            self.ranges.remove(&s);
            start = s;
        }
        if let Some(next) = x.checked_add(1)
            && let Some(e) = self.ranges.remove(&next)
        {
            end = e;
        }
        self.ranges.insert(start, end);
    }

    /// The lowest free address for which `skip` is false. `skip` must be true for at most two
    /// consecutive addresses (the `.255`, `.0` pair of avoidBuggyIPs), so each interval costs at
    /// most three checks.
    pub(crate) fn first(&self, skip: impl Fn(u128) -> bool) -> Option<u128> {
        self.first_from(0, skip)
    }

    /// Like [`Self::first`], considering only addresses `>= from`.
    pub(crate) fn first_from(&self, from: u128, skip: impl Fn(u128) -> bool) -> Option<u128> {
        // The interval containing `from` (if any) starts before it.
        let containing = self
            .ranges
            .range(..from)
            .next_back()
            .filter(|&(_, &end)| end >= from)
            .map(|(_, &end)| (from, end));
        let rest = self.ranges.range(from..).map(|(&s, &e)| (s, e));
        for (start, end) in containing.into_iter().chain(rest) {
            let mut x = start;
            loop {
                if !skip(x) {
                    return Some(x);
                }
                if x == end {
                    break;
                }
                x += 1;
            }
        }
        None
    }

    /// Number of disjoint free intervals (for tests and sizing).
    #[cfg(test)]
    pub(crate) fn intervals(&self) -> Vec<(u128, u128)> {
        self.ranges.iter().map(|(&s, &e)| (s, e)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn taking_splits_and_giving_merges_back() {
        let mut f = FreeRanges::new(10, 20);
        assert!(f.take(15));
        assert!(!f.take(15), "an address is taken once");
        assert_eq!(f.intervals(), vec![(10, 14), (16, 20)]);
        assert!(f.take(10));
        assert!(f.take(20));
        assert_eq!(f.intervals(), vec![(11, 14), (16, 19)]);
        f.give(15);
        assert_eq!(f.intervals(), vec![(11, 19)]);
        f.give(10);
        f.give(20);
        assert_eq!(f.intervals(), vec![(10, 20)]);
        assert!(!f.take(21), "outside the CIDR");
    }

    #[test]
    fn the_whole_ipv6_space_fits() {
        let mut f = FreeRanges::new(0, u128::MAX);
        assert!(f.take(u128::MAX));
        assert!(f.take(0));
        assert_eq!(f.first(|_| false), Some(1));
        f.give(u128::MAX);
        f.give(0);
        assert_eq!(f.intervals(), vec![(0, u128::MAX)]);
    }

    #[test]
    fn first_skips_what_it_is_told_to() {
        // 192.0.2.254 .. 192.0.3.1 with .255 and .0 skipped.
        let base = 0xC000_02FE_u128;
        let f = FreeRanges::new(base, base + 3);
        let buggy = |x: u128| matches!(x & 0xff, 0 | 255);
        assert_eq!(f.first(buggy), Some(base));
        let mut g = f.clone();
        g.take(base);
        assert_eq!(g.first(buggy), Some(base + 3));
        g.take(base + 3);
        assert_eq!(g.first(buggy), None);
        assert_eq!(g.first_from(base + 2, |_| false), Some(base + 2));
        assert_eq!(f.first_from(base + 1, buggy), Some(base + 3));
    }

    proptest! {
        /// Against a set of used addresses: `first` is the lowest unused, `is_free` agrees.
        #[test]
        fn agrees_with_a_set_of_used_addresses(ops in proptest::collection::vec((any::<bool>(), 0u128..64), 0..200)) {
            let mut f = FreeRanges::new(0, 63);
            let mut used = BTreeSet::new();
            for (take, x) in ops {
                if take {
                    prop_assert_eq!(f.take(x), used.insert(x));
                } else {
                    f.give(x);
                    used.remove(&x);
                }
                let lowest = (0..64).find(|a| !used.contains(a));
                prop_assert_eq!(f.first(|_| false), lowest);
                for a in 0..64 {
                    prop_assert_eq!(f.is_free(a), !used.contains(&a));
                }
                for w in f.intervals().windows(2) {
                    prop_assert!(w[0].1 + 1 < w[1].0, "intervals are disjoint and merged");
                }
            }
        }
    }
}
