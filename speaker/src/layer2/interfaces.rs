//! Which interfaces answer for which IPs (pure): the advertisement's `interfaces`, minus the
//! excluded ones, never bond or bridge members, only links that are up, can broadcast and do
//! ARP (spec §3.3).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use regex::Regex;

use super::packet::MacAddr;
use crate::announce::Interfaces;

/// A network interface as netlink reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: MacAddr,
    /// `IFF_UP`: administratively up.
    pub up: bool,
    /// `IFF_LOWER_UP`: the carrier is present.
    pub lower_up: bool,
    pub broadcast: bool,
    pub noarp: bool,
    /// `IFLA_MASTER`: the bond or bridge this link is enslaved to.
    pub master: Option<u32>,
}

/// The interface-exclusion list (`/etc/metallb/excludel2.yaml`, key
/// `announcedInterfacesToExclude`): regular expressions matched against interface names.
#[derive(Debug, Clone)]
pub struct Exclusions(Vec<Regex>);

/// MetalLB's default list (the `metallb-excludel2` ConfigMap the operator installs), used when
/// the file is absent.
pub const DEFAULT_EXCLUSIONS: [&str; 14] = [
    "^docker.*",
    "^cbr.*",
    "^dummy.*",
    "^virbr.*",
    "^lxcbr.*",
    "^veth.*",
    "^lo$",
    "^cali.*",
    "^tunl.*",
    "^flannel.*",
    "^kube-ipvs.*",
    "^cni.*",
    "^nodelocaldns.*",
    "^lxc.*",
];

/// Why the exclusion file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ExclusionError {
    #[error("failed to parse the interface exclusion file: {0}")]
    Yaml(String),
    #[error("failed to compile interface exclusion pattern {pattern:?}: {source}")]
    Pattern {
        pattern: String,
        #[source]
        source: regex::Error,
    },
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExclusionFile {
    #[serde(default)]
    announced_interfaces_to_exclude: Vec<String>,
}

impl Exclusions {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, ExclusionError> {
        patterns
            .iter()
            .map(|p| {
                Regex::new(p.as_ref()).map_err(|source| ExclusionError::Pattern {
                    pattern: p.as_ref().to_string(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn defaults() -> Self {
        Self::new(&DEFAULT_EXCLUSIONS).expect("the default patterns compile")
    }

    /// Parses the file's YAML.
    pub fn from_yaml(text: &str) -> Result<Self, ExclusionError> {
        let file: ExclusionFile =
            serde_saphyr::from_str(text).map_err(|e| ExclusionError::Yaml(e.to_string()))?;
        Self::new(&file.announced_interfaces_to_exclude)
    }

    pub fn excludes(&self, name: &str) -> bool {
        self.0.iter().any(|r| r.is_match(name))
    }
}

impl PartialEq for Exclusions {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| a.as_str() == b.as_str())
    }
}

impl Link {
    /// Whether the link may answer at all: up with a carrier, broadcast-capable, doing ARP,
    /// not enslaved to a bond or bridge, not excluded, with an Ethernet address.
    pub fn usable(&self, exclusions: &Exclusions) -> bool {
        self.up
            && self.lower_up
            && self.broadcast
            && !self.noarp
            && self.master.is_none()
            && !self.mac.is_zero()
            && !exclusions.excludes(&self.name)
    }
}

/// What each link answers for, and the IPs that cannot be announced anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Link index → the IPs it answers for.
    pub links: BTreeMap<u32, BTreeSet<IpAddr>>,
    /// IPs whose advertisements name only interfaces this node does not have.
    pub missing_interfaces: BTreeSet<IpAddr>,
}

/// Places every announced IP on the links that should answer for it.
pub fn plan(
    desired: &BTreeMap<IpAddr, Interfaces>,
    links: &[Link],
    exclusions: &Exclusions,
) -> Plan {
    let mut out = Plan::default();
    for (ip, wanted) in desired {
        if let Interfaces::Only(names) = wanted
            && !links.iter().any(|l| names.contains(&l.name))
        {
            out.missing_interfaces.insert(*ip);
            continue;
        }
        for link in links
            .iter()
            .filter(|l| wanted.contains(&l.name) && l.usable(exclusions))
        {
            out.links.entry(link.index).or_default().insert(*ip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn link(index: u32, name: &str) -> Link {
        Link {
            index,
            name: name.into(),
            mac: MacAddr([2, 0, 0, 0, 0, index as u8]),
            up: true,
            lower_up: true,
            broadcast: true,
            noarp: false,
            master: None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_exclusions_are_metallbs_list() {
        let e = Exclusions::defaults();
        for name in [
            "lo",
            "docker0",
            "veth1234",
            "cali9",
            "kube-ipvs0",
            "cni0",
            "flannel.1",
        ] {
            assert!(e.excludes(name), "{name}");
        }
        for name in ["eth0", "lo0", "ens3", "bond0", "br0"] {
            assert!(!e.excludes(name), "{name}");
        }
    }

    #[test]
    fn the_exclusion_file_is_read_from_yaml() {
        let e = Exclusions::from_yaml("announcedInterfacesToExclude: [\"^eth1$\", \"^mgmt.*\"]\n")
            .unwrap();
        assert_eq!(e, Exclusions::new(&["^eth1$", "^mgmt.*"]).unwrap());
        assert!(e.excludes("mgmt0") && e.excludes("eth1") && !e.excludes("eth10"));
        assert_eq!(
            Exclusions::from_yaml("{}\n").unwrap(),
            Exclusions::new::<&str>(&[]).unwrap()
        );
        assert_eq!(
            Exclusions::from_yaml("announcedInterfacesToExclude: [\"(\"]\n")
                .unwrap_err()
                .to_string()
                .lines()
                .next()
                .unwrap(),
            "failed to compile interface exclusion pattern \"(\": regex parse error:"
        );
    }

    #[test]
    fn only_up_broadcast_arp_links_that_are_not_enslaved_or_excluded_answer() {
        let e = Exclusions::defaults();
        assert!(link(1, "eth0").usable(&e));
        type Edit = fn(&mut Link);
        let cases: [(&str, Edit); 7] = [
            ("down", |l| l.up = false),
            ("no carrier", |l| l.lower_up = false),
            ("no broadcast", |l| l.broadcast = false),
            ("noarp", |l| l.noarp = true),
            ("bond or bridge member", |l| l.master = Some(7)),
            ("no mac", |l| l.mac = MacAddr::default()),
            ("excluded", |l| l.name = "veth0".into()),
        ];
        for (why, edit) in cases {
            let mut l = link(1, "eth0");
            edit(&mut l);
            assert!(!l.usable(&e), "{why}");
        }
    }

    #[test]
    fn ips_go_to_every_usable_link_or_only_to_the_named_ones() {
        let mut enslaved = link(4, "eth2");
        enslaved.master = Some(9);
        let links = [link(1, "eth0"), link(2, "eth1"), link(3, "lo"), enslaved];
        let desired = BTreeMap::from([
            (ip("192.0.2.200"), Interfaces::All),
            (
                ip("2001:db8:0:1::200"),
                Interfaces::Only(["eth1".into(), "eth2".into()].into()),
            ),
            (ip("192.0.2.201"), Interfaces::Only(["eth9".into()].into())),
        ]);
        assert_eq!(
            plan(&desired, &links, &Exclusions::defaults()),
            Plan {
                links: BTreeMap::from([
                    (1, [ip("192.0.2.200")].into()),
                    (2, [ip("192.0.2.200"), ip("2001:db8:0:1::200")].into()),
                ]),
                missing_interfaces: [ip("192.0.2.201")].into(),
            }
        );
    }
}
