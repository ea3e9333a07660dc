//! IP address ranges as MetalLB writes them in `IPAddressPool.spec.addresses`: a CIDR
//! (`192.0.2.0/24`, host bits masked like Go's `net.ParseCIDR`) or an inclusive range
//! (`192.0.2.10-192.0.2.20`, spaces around the dash allowed), summarised into the smallest list of
//! CIDRs that covers it exactly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Why an address entry could not be parsed. The text is the user's entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("invalid CIDR {0:?}")]
    InvalidCidr(String),
    #[error("invalid IP range {range:?}: invalid start IP {start:?}")]
    InvalidStart { range: String, start: String },
    #[error("invalid IP range {range:?}: invalid end IP {end:?}")]
    InvalidEnd { range: String, end: String },
    #[error("invalid IP range {range:?}: start IP {start} is after the end IP {end}")]
    StartAfterEnd {
        range: String,
        start: IpAddr,
        end: IpAddr,
    },
    #[error(
        "invalid IP range {range:?}: start IP {start} and end IP {end} are not of the same IP family"
    )]
    MixedFamilies {
        range: String,
        start: IpAddr,
        end: IpAddr,
    },
}

/// Parses one entry of `spec.addresses` into the CIDRs it covers, in ascending order.
pub fn parse_address_entry(entry: &str) -> Result<Vec<IpNet>, AddressError> {
    let Some((start, end)) = entry.split_once('-') else {
        return parse_cidr(entry).map(|net| vec![net]);
    };
    let start_ip: IpAddr = start
        .trim()
        .parse()
        .map_err(|_| AddressError::InvalidStart {
            range: entry.to_string(),
            start: start.to_string(),
        })?;
    let end_ip: IpAddr = end.trim().parse().map_err(|_| AddressError::InvalidEnd {
        range: entry.to_string(),
        end: end.to_string(),
    })?;
    match (start_ip, end_ip) {
        (IpAddr::V4(s), IpAddr::V4(e)) if s <= e => Ok(summarize_v4(s, e)),
        (IpAddr::V6(s), IpAddr::V6(e)) if s <= e => Ok(summarize_v6(s, e)),
        // Go compares the 16-byte forms, where every IPv4 address sorts before every IPv6 one,
        // and then summarises nothing: a mixed range silently contributes no address. We refuse
        // it instead, because a pool that quietly has no addresses is worse than an error.
        (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => {
            Err(AddressError::MixedFamilies {
                range: entry.to_string(),
                start: start_ip,
                end: end_ip,
            })
        }
        _ => Err(AddressError::StartAfterEnd {
            range: entry.to_string(),
            start: start_ip,
            end: end_ip,
        }),
    }
}

/// Parses `addr/len` and masks the host bits, as Go's `net.ParseCIDR` does.
pub fn parse_cidr(text: &str) -> Result<IpNet, AddressError> {
    // Go accepts no surrounding spaces and no leading zeros in a CIDR; neither do we. The address
    // goes through std's parser (which rejects `010.0.0.0`, unlike ipnet's).
    let invalid = || AddressError::InvalidCidr(text.to_string());
    let (addr, len) = text.split_once('/').ok_or_else(invalid)?;
    let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 3 {
        return Err(invalid());
    }
    let len: u8 = len.parse().map_err(|_| invalid())?;
    IpNet::new(addr, len)
        .map(|net| net.trunc())
        .map_err(|_| invalid())
}

/// The smallest list of IPv4 CIDRs covering exactly `start..=end`, ascending.
pub fn summarize_v4(start: Ipv4Addr, end: Ipv4Addr) -> Vec<IpNet> {
    summarize(u128::from(u32::from(start)), u128::from(u32::from(end)), 32)
        .into_iter()
        .map(|(base, len)| {
            IpNet::V4(Ipv4Net::new(Ipv4Addr::from(base as u32), len).expect("prefix length <= 32"))
        })
        .collect()
}

/// The smallest list of IPv6 CIDRs covering exactly `start..=end`, ascending.
pub fn summarize_v6(start: Ipv6Addr, end: Ipv6Addr) -> Vec<IpNet> {
    summarize(u128::from(start), u128::from(end), 128)
        .into_iter()
        .map(|(base, len)| {
            IpNet::V6(Ipv6Net::new(Ipv6Addr::from(base), len).expect("prefix length <= 128"))
        })
        .collect()
}

/// Greedy summarisation: from `start`, take the largest aligned block that does not pass `end`.
fn summarize(start: u128, end: u128, bits: u8) -> Vec<(u128, u8)> {
    let mut out = Vec::new();
    let mut cur = start;
    loop {
        // The block size is limited by the alignment of `cur` and by what remains to `end`.
        let align = if cur == 0 {
            u32::from(bits)
        } else {
            cur.trailing_zeros().min(u32::from(bits))
        };
        let remaining = end - cur; // number of addresses after cur
        let fit = if remaining == u128::MAX {
            128
        } else {
            127 - (remaining + 1).leading_zeros()
        };
        let size_log2 = align.min(fit);
        out.push((cur, bits - size_log2 as u8));
        let span = if size_log2 >= 128 {
            u128::MAX
        } else {
            (1u128 << size_log2) - 1
        };
        let last = cur.saturating_add(span);
        if last >= end {
            return out;
        }
        cur = last + 1;
    }
}

/// Whether two CIDRs share at least one address (always false across families).
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    match (a, b) {
        (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_)) => {
            a.contains(&b.network()) || b.contains(&a.network())
        }
        _ => false,
    }
}

/// The number of addresses in a CIDR, saturating at `u128::MAX` for `::/0`.
pub fn size(net: &IpNet) -> u128 {
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    if host_bits >= 128 {
        u128::MAX
    } else {
        1u128 << host_bits
    }
}

/// IPv4 addresses ending in `.0` or `.255` confuse some old consumer devices' "smurf protection";
/// pools with `avoidBuggyIPs` never hand them out.
pub fn is_buggy_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => matches!(v4.octets()[3], 0 | 255),
        IpAddr::V6(_) => false,
    }
}

/// The address `offset` addresses after the start of `net`, if it is inside `net`.
pub fn nth(net: &IpNet, offset: u128) -> Option<IpAddr> {
    if offset >= size(net) {
        return None;
    }
    Some(match net {
        IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) + offset as u32)),
        IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) + offset)),
    })
}

/// The offset of `ip` from the start of `net`, if `net` contains it.
pub fn offset_of(net: &IpNet, ip: IpAddr) -> Option<u128> {
    if !net.contains(&ip) {
        return None;
    }
    Some(match (net, ip) {
        (IpNet::V4(n), IpAddr::V4(a)) => u128::from(u32::from(a) - u32::from(n.network())),
        (IpNet::V6(n), IpAddr::V6(a)) => u128::from(a) - u128::from(n.network()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn cidr_host_bits_are_masked_like_go() {
        assert_eq!(
            parse_address_entry("192.0.2.77/24").unwrap(),
            nets(&["192.0.2.0/24"])
        );
        assert_eq!(
            parse_address_entry("2001:db8::1/64").unwrap(),
            nets(&["2001:db8::/64"])
        );
    }

    #[test]
    fn range_is_summarised_to_the_fewest_cidrs() {
        assert_eq!(
            parse_address_entry("192.0.2.10 - 192.0.2.20").unwrap(),
            nets(&[
                "192.0.2.10/31",
                "192.0.2.12/30",
                "192.0.2.16/30",
                "192.0.2.20/32"
            ])
        );
        assert_eq!(
            parse_address_entry("0.0.0.0-255.255.255.255").unwrap(),
            nets(&["0.0.0.0/0"])
        );
        assert_eq!(
            parse_address_entry("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").unwrap(),
            nets(&["::/0"])
        );
        assert_eq!(
            parse_address_entry("2001:db8::1-2001:db8::1").unwrap(),
            nets(&["2001:db8::1/128"])
        );
    }

    #[test]
    fn bad_entries_name_what_is_wrong() {
        assert_eq!(
            parse_address_entry("192.0.2.0/33").unwrap_err().to_string(),
            "invalid CIDR \"192.0.2.0/33\""
        );
        assert_eq!(
            parse_address_entry("192.0.2.20-192.0.2.10")
                .unwrap_err()
                .to_string(),
            "invalid IP range \"192.0.2.20-192.0.2.10\": start IP 192.0.2.20 is after the end IP 192.0.2.10"
        );
        assert!(matches!(
            parse_address_entry("foo-192.0.2.1"),
            Err(AddressError::InvalidStart { .. })
        ));
        assert!(matches!(
            parse_address_entry("192.0.2.1-bar"),
            Err(AddressError::InvalidEnd { .. })
        ));
        assert!(matches!(
            parse_address_entry("192.0.2.1-2001:db8::1"),
            Err(AddressError::MixedFamilies { .. })
        ));
        assert!(
            parse_address_entry("192.0.2.1").is_err(),
            "a bare IP is not a CIDR"
        );
        assert!(
            parse_address_entry("010.0.0.0/8").is_err(),
            "leading zeros are rejected, as in Go"
        );
    }

    #[test]
    fn overlap_is_containment_of_either_network_address() {
        let a: IpNet = "192.0.2.0/24".parse().unwrap();
        let b: IpNet = "192.0.2.128/25".parse().unwrap();
        let c: IpNet = "198.51.100.0/24".parse().unwrap();
        let d: IpNet = "::/0".parse().unwrap();
        assert!(overlaps(&a, &b) && overlaps(&b, &a));
        assert!(!overlaps(&a, &c));
        assert!(!overlaps(&a, &d), "families never overlap");
    }

    #[test]
    fn nth_and_offset_are_inverse() {
        let n: IpNet = "192.0.2.0/30".parse().unwrap();
        assert_eq!(nth(&n, 3), Some("192.0.2.3".parse().unwrap()));
        assert_eq!(nth(&n, 4), None);
        assert_eq!(offset_of(&n, "192.0.2.2".parse().unwrap()), Some(2));
        assert_eq!(offset_of(&n, "192.0.2.4".parse().unwrap()), None);
    }

    fn v4_in(net: &IpNet, x: u32) -> bool {
        net.contains(&IpAddr::V4(Ipv4Addr::from(x)))
    }

    proptest! {
        /// Summaries cover exactly the range, with disjoint, aligned, ascending blocks, and no two
        /// neighbouring blocks could be merged (the summary is minimal).
        #[test]
        fn ipv4_summary_covers_exactly_the_range(a in any::<u32>(), len in 0u32..5000) {
            let start = a.min(u32::MAX - len);
            let end = start + len;
            let cidrs = summarize_v4(Ipv4Addr::from(start), Ipv4Addr::from(end));
            let total: u128 = cidrs.iter().map(size).sum();
            prop_assert_eq!(total, u128::from(len) + 1);
            prop_assert!(v4_in(&cidrs[0], start));
            prop_assert!(v4_in(cidrs.last().unwrap(), end));
            for w in cidrs.windows(2) {
                prop_assert!(w[0].broadcast() < w[1].network());
                let merged = w[0].supernet();
                prop_assert!(!(w[0].prefix_len() == w[1].prefix_len() && merged == w[1].supernet()
                    && merged.map(|m| m.network() == w[0].network()).unwrap_or(false)),
                    "{} and {} should have been merged", w[0], w[1]);
            }
        }

        #[test]
        fn ipv6_summary_covers_exactly_the_range(a in any::<u128>(), len in 0u128..5000) {
            let start = a.min(u128::MAX - len);
            let end = start + len;
            let cidrs = summarize_v6(Ipv6Addr::from(start), Ipv6Addr::from(end));
            let total: u128 = cidrs.iter().map(size).sum();
            prop_assert_eq!(total, len + 1);
            prop_assert!(cidrs[0].contains(&IpAddr::V6(Ipv6Addr::from(start))));
            prop_assert!(cidrs.last().unwrap().contains(&IpAddr::V6(Ipv6Addr::from(end))));
            for w in cidrs.windows(2) {
                prop_assert!(w[0].broadcast() < w[1].network());
            }
        }

        /// Overlap agrees with a brute-force oracle on a small IPv4 space.
        #[test]
        fn ipv4_overlap_matches_brute_force(a in 0u32..256, la in 24u8..=32, b in 0u32..256, lb in 24u8..=32) {
            let na = IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0xC000_0200 | a), la).unwrap().trunc());
            let nb = IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0xC000_0200 | b), lb).unwrap().trunc());
            let brute = (0xC000_0200u32..=0xC000_02FF).any(|x| v4_in(&na, x) && v4_in(&nb, x));
            prop_assert_eq!(overlaps(&na, &nb), brute);
        }

        #[test]
        fn ipv6_overlap_matches_brute_force(a in 0u128..256, la in 120u8..=128, b in 0u128..256, lb in 120u8..=128) {
            let base = u128::from("2001:db8::".parse::<Ipv6Addr>().unwrap());
            let na = IpNet::V6(Ipv6Net::new(Ipv6Addr::from(base | a), la).unwrap().trunc());
            let nb = IpNet::V6(Ipv6Net::new(Ipv6Addr::from(base | b), lb).unwrap().trunc());
            let brute = (base..=base + 255).any(|x| {
                let ip = IpAddr::V6(Ipv6Addr::from(x));
                na.contains(&ip) && nb.contains(&ip)
            });
            prop_assert_eq!(overlaps(&na, &nb), brute);
        }

        /// Ranges written by hand and their summaries agree on every address of a small space.
        #[test]
        fn ipv4_range_membership_matches_brute_force(s in 0u32..256, l in 0u32..256) {
            let start = 0xC633_6400 | s; // 198.51.100.s
            let end = (start + l).min(0xC633_64FF);
            let entry = format!("{}-{}", Ipv4Addr::from(start), Ipv4Addr::from(end));
            let cidrs = parse_address_entry(&entry).unwrap();
            for x in 0xC633_6400u32..=0xC633_64FF {
                let inside = cidrs.iter().any(|c| v4_in(c, x));
                prop_assert_eq!(inside, x >= start && x <= end);
            }
        }
    }
}
