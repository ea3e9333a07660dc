//! The fixed topology of the local cluster (`docs/topology.md`, a contract): names,
//! addresses, and the `ip` commands that build it.
//!
//! Pure: [`Topology::setup_commands`] returns the command lines and [`crate::testbed`] runs
//! them, so the plan is unit-tested without touching the network.
//!
//! ```text
//!  root ns: bridge mlb-mgmt 203.0.113.1/26 ── veth mlb-m-node-i ── mgmt0 in mlb-node-i
//!  mlb-lan: bridge br0 ── node-i ── eth0 in mlb-node-i
//!                      ── client ── eth0 in mlb-client
//!                      ── router ── eth0 in mlb-router ── eth1 ── eth0 in mlb-client2
//! ```
//! No namespace gets a default route: only the documentation ranges below are routed.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// At most this many nodes (the pod prefixes and addresses are laid out for 4).
pub const MAX_NODES: usize = 4;
/// Default node count (`NODES` in the scripts).
pub const DEFAULT_NODES: usize = 3;

/// Every network namespace and root-namespace link the testbed creates starts with this.
pub const PREFIX: &str = "mlb-";
/// The management bridge in the root namespace.
pub const MGMT_BRIDGE: &str = "mlb-mgmt";
pub const LAN_NETNS: &str = "mlb-lan";
pub const CLIENT_NETNS: &str = "mlb-client";
pub const ROUTER_NETNS: &str = "mlb-router";
pub const CLIENT2_NETNS: &str = "mlb-client2";
/// The LAN bridge inside `mlb-lan`.
pub const LAN_BRIDGE: &str = "br0";
/// Interface names inside a node namespace.
pub const NODE_LAN_IF: &str = "eth0";
pub const NODE_MGMT_IF: &str = "mgmt0";

/// The API server, on the machine's management address.
pub const API_SERVER_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub const API_SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 1);
pub const API_SERVER_PORT: u16 = 6443;
/// `--service-cidr` of the control plane: ClusterIPs of both families. The IPv4 range is
/// from the benchmarking block of RFC 2544 (198.18.0.0/15), used only inside the topology:
/// 65,534 ClusterIPs, and no documentation address (where the development machines' package
/// registries live) can fall into it. Only the nodes route it (to their management interface).
pub const SERVICE_CIDR_V4: &str = "198.18.0.0/16";
pub const SERVICE_CIDR_V6: &str = "2001:db8:0:ff::/108";
/// Every node's pod prefix (kube-proxy's clusterCIDR).
pub const ALL_PODS_V4: &str = "203.0.113.64/26";
pub const ALL_PODS_V6: &str = "2001:db8:0:200::/56";
/// The local registry's port: on the machine's loopback, and forwarded from the management
/// address (API_SERVER_V4), where the nodes' containerd pulls every image.
pub const REGISTRY_PORT: u16 = 5000;

pub const LAN_V4: &str = "192.0.2.0/24";
pub const LAN_V6: &str = "2001:db8:0:1::/64";
pub const LAN2_V4: &str = "198.51.100.0/24";
pub const LAN2_V6: &str = "2001:db8:0:2::/64";
pub const MGMT_V4: &str = "203.0.113.0/26";
pub const MGMT_V6: &str = "2001:db8:0:100::/64";
pub const ROUTER_LAN_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const ROUTER_LAN_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1);
pub const ROUTER_LAN2_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const ROUTER_LAN2_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1);
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x100);
pub const CLIENT2_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 100);
pub const CLIENT2_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 0x100);
/// L2 LoadBalancer pools used by the demo and tests (first and last address).
pub const L2_POOL_V4: (Ipv4Addr, Ipv4Addr) =
    (Ipv4Addr::new(192, 0, 2, 200), Ipv4Addr::new(192, 0, 2, 250));
pub const L2_POOL_V6: (Ipv6Addr, Ipv6Addr) = (
    Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x200),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x250),
);
/// BGP LoadBalancer pools used by tests.
pub const BGP_POOL_V4: &str = "203.0.113.192/26";
pub const BGP_POOL_V6: &str = "2001:db8:0:300::/64";
/// The router's ASN and the ASN its dynamic neighbors (the speakers) use.
pub const ROUTER_ASN: u32 = 64500;
pub const METALLB_ASN: u32 = 64512;

/// Names and addresses of node `index` (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub index: usize,
    /// Kubernetes node name, `node-<index>`.
    pub name: String,
    /// Network namespace, `mlb-node-<index>`.
    pub netns: String,
    pub lan_v4: Ipv4Addr,
    pub lan_v6: Ipv6Addr,
    pub mgmt_v4: Ipv4Addr,
    pub mgmt_v6: Ipv6Addr,
    pub pods_v4: Ipv4Net,
    pub pods_v6: Ipv6Net,
}

impl Node {
    /// Node `index` (1..=MAX_NODES).
    pub fn new(index: usize) -> Self {
        assert!(
            (1..=MAX_NODES).contains(&index),
            "node index {index} out of 1..={MAX_NODES}"
        );
        let i = u8::try_from(index).expect("small index");
        // "2001:db8:0:1::(10+i)" in docs/topology.md is the literal text "1<i>", so the
        // group is hex 0x10 + i (node-1 → ::11), like the IPv4 192.0.2.11.
        let suffix = 0x10 + u16::from(i);
        Self {
            index,
            name: format!("node-{index}"),
            netns: format!("mlb-node-{index}"),
            lan_v4: Ipv4Addr::new(192, 0, 2, 10 + i),
            lan_v6: Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, suffix),
            mgmt_v4: Ipv4Addr::new(203, 0, 113, 10 + i),
            mgmt_v6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, suffix),
            pods_v4: Ipv4Net::new(Ipv4Addr::new(203, 0, 113, 64 + 16 * (i - 1)), 28).expect("/28"),
            pods_v6: Ipv6Net::new(
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0x200 + u16::from(i), 0, 0, 0, 0),
                64,
            )
            .expect("/64"),
        }
    }

    /// Node by Kubernetes name (`node-2`).
    pub fn by_name(name: &str) -> Option<Self> {
        let index: usize = name.strip_prefix("node-")?.parse().ok()?;
        (1..=MAX_NODES).contains(&index).then(|| Self::new(index))
    }

    /// The root-namespace end of the management veth.
    pub fn mgmt_veth_root(&self) -> String {
        format!("mlb-m-node-{}", self.index)
    }

    /// The `mlb-lan` end of the LAN veth (a port of br0).
    pub fn lan_port(&self) -> String {
        self.name.clone()
    }
}

/// A name accepted by `hack/local-exec.sh` / `mlb-testbed exec`, mapped to its namespace.
pub fn netns_of(name: &str) -> Option<String> {
    match name {
        "client" => Some(CLIENT_NETNS.into()),
        "router" => Some(ROUTER_NETNS.into()),
        "client2" => Some(CLIENT2_NETNS.into()),
        "lan" => Some(LAN_NETNS.into()),
        _ if name.starts_with(PREFIX) => Some(name.into()),
        _ => Node::by_name(name).map(|n| n.netns),
    }
}

/// The topology with `nodes` nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub nodes: Vec<Node>,
}

/// One step of the setup: a command line.
pub type CommandLine = Vec<String>;

/// A command line from text; arguments never contain spaces here.
fn line(text: &str) -> CommandLine {
    text.split_whitespace().map(String::from).collect()
}

impl Topology {
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes: (1..=nodes).map(Node::new).collect(),
        }
    }

    /// Every network namespace, in creation order.
    pub fn namespaces(&self) -> Vec<String> {
        let mut names = vec![LAN_NETNS.to_string()];
        names.extend(self.nodes.iter().map(|n| n.netns.clone()));
        names.extend([CLIENT_NETNS, ROUTER_NETNS, CLIENT2_NETNS].map(String::from));
        names
    }

    /// The commands that build the topology from nothing, in order.
    pub fn setup_commands(&self) -> Vec<CommandLine> {
        let mut cmds = Vec::new();
        let mut add = |text: String| cmds.push(line(&text));

        // Management bridge in the root namespace; the API server binds its address.
        add(format!(
            "ip link add {MGMT_BRIDGE} type bridge mcast_snooping 0"
        ));
        add(format!(
            "sysctl -qw net.ipv6.conf.{MGMT_BRIDGE}.accept_dad=0"
        ));
        add(format!("ip addr add {API_SERVER_V4}/26 dev {MGMT_BRIDGE}"));
        add(format!(
            "ip addr add {API_SERVER_V6}/64 dev {MGMT_BRIDGE} nodad"
        ));
        add(format!("ip link set {MGMT_BRIDGE} up"));

        for ns in self.namespaces() {
            add(format!("ip netns add {ns}"));
            add(format!("ip -n {ns} link set lo up"));
            // Addresses must be usable at once: no duplicate address detection.
            // Masqueraded Service traffic and the router see asymmetric paths: no rp_filter.
            let mut sysctl = format!(
                "ip netns exec {ns} sysctl -qw net.ipv6.conf.all.accept_dad=0 \
                 net.ipv6.conf.default.accept_dad=0 net.ipv4.conf.all.rp_filter=0 \
                 net.ipv4.conf.default.rp_filter=0"
            );
            if ns == ROUTER_NETNS || ns.starts_with("mlb-node-") {
                sysctl.push_str(" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1");
            }
            add(sysctl);
        }

        // The LAN bridge. Multicast snooping off: NDP solicitations for LoadBalancer IPs
        // must reach every node, whether or not the answering speaker joined the group.
        add(format!(
            "ip -n {LAN_NETNS} link add {LAN_BRIDGE} type bridge mcast_snooping 0"
        ));
        add(format!("ip -n {LAN_NETNS} link set {LAN_BRIDGE} up"));

        for node in &self.nodes {
            let ns = &node.netns;
            // Management veth: root end on mlb-mgmt, node end mgmt0.
            let root_end = node.mgmt_veth_root();
            add(format!(
                "ip link add {root_end} type veth peer name {NODE_MGMT_IF} netns {ns}"
            ));
            add(format!("ip link set {root_end} master {MGMT_BRIDGE} up"));
            for text in addresses(
                ns,
                NODE_MGMT_IF,
                &format!("{}/26", node.mgmt_v4),
                &format!("{}/64", node.mgmt_v6),
            ) {
                add(text);
            }
            // LAN veth: node end eth0, other end a port of br0.
            for text in lan_port(ns, NODE_LAN_IF, &node.lan_port()) {
                add(text);
            }
            for text in addresses(
                ns,
                NODE_LAN_IF,
                &format!("{}/24", node.lan_v4),
                &format!("{}/64", node.lan_v6),
            ) {
                add(text);
            }
            // LAN 2 via the router.
            add(format!(
                "ip -n {ns} -4 route add {LAN2_V4} via {ROUTER_LAN_V4}"
            ));
            add(format!(
                "ip -n {ns} -6 route add {LAN2_V6} via {ROUTER_LAN_V6}"
            ));
            // ClusterIPs: a route is needed for the first lookup of locally generated
            // traffic; kube-proxy's nftables output hook then rewrites the destination.
            add(format!(
                "ip -n {ns} -4 route add {SERVICE_CIDR_V4} dev {NODE_MGMT_IF}"
            ));
            add(format!(
                "ip -n {ns} -6 route add {SERVICE_CIDR_V6} dev {NODE_MGMT_IF}"
            ));
            // Other nodes' pod prefixes via their management address.
            for other in self.nodes.iter().filter(|o| o.index != node.index) {
                add(format!(
                    "ip -n {ns} -4 route add {} via {}",
                    other.pods_v4, other.mgmt_v4
                ));
                add(format!(
                    "ip -n {ns} -6 route add {} via {}",
                    other.pods_v6, other.mgmt_v6
                ));
            }
        }
        // The machine (API server) reaches pods via their node: one host route per pod IP in
        // use, added by the nodes' CNI plugin (crate::cni), not a route per prefix: the
        // machine may reach outside hosts inside these documentation ranges (on the
        // development machines the package registries' proxy is 203.0.113.80), and a prefix
        // route would divert that traffic into the topology.

        // client on the LAN.
        for text in lan_port(CLIENT_NETNS, "eth0", "client") {
            add(text);
        }
        for text in addresses(
            CLIENT_NETNS,
            "eth0",
            &format!("{CLIENT_V4}/24"),
            &format!("{CLIENT_V6}/64"),
        ) {
            add(text);
        }
        add(format!(
            "ip -n {CLIENT_NETNS} -4 route add {LAN2_V4} via {ROUTER_LAN_V4}"
        ));
        add(format!(
            "ip -n {CLIENT_NETNS} -6 route add {LAN2_V6} via {ROUTER_LAN_V6}"
        ));

        // router between LAN and LAN 2.
        for text in lan_port(ROUTER_NETNS, "eth0", "router") {
            add(text);
        }
        for text in addresses(
            ROUTER_NETNS,
            "eth0",
            &format!("{ROUTER_LAN_V4}/24"),
            &format!("{ROUTER_LAN_V6}/64"),
        ) {
            add(text);
        }
        add(format!(
            "ip link add eth1 netns {ROUTER_NETNS} type veth peer name eth0 netns {CLIENT2_NETNS}"
        ));
        for text in addresses(
            ROUTER_NETNS,
            "eth1",
            &format!("{ROUTER_LAN2_V4}/24"),
            &format!("{ROUTER_LAN2_V6}/64"),
        ) {
            add(text);
        }

        // client2 behind the router: the LAN and the BGP pools via the router.
        for text in addresses(
            CLIENT2_NETNS,
            "eth0",
            &format!("{CLIENT2_V4}/24"),
            &format!("{CLIENT2_V6}/64"),
        ) {
            add(text);
        }
        add(format!(
            "ip -n {CLIENT2_NETNS} -4 route add {LAN_V4} via {ROUTER_LAN2_V4}"
        ));
        add(format!(
            "ip -n {CLIENT2_NETNS} -4 route add {BGP_POOL_V4} via {ROUTER_LAN2_V4}"
        ));
        add(format!(
            "ip -n {CLIENT2_NETNS} -6 route add {LAN_V6} via {ROUTER_LAN2_V6}"
        ));
        add(format!(
            "ip -n {CLIENT2_NETNS} -6 route add {BGP_POOL_V6} via {ROUTER_LAN2_V6}"
        ));
        cmds
    }
}

/// A veth with end `ifname` in `ns` and end `port` on the LAN bridge.
fn lan_port(ns: &str, ifname: &str, port: &str) -> Vec<String> {
    vec![
        format!("ip link add {ifname} netns {ns} type veth peer name {port} netns {LAN_NETNS}"),
        format!("ip -n {LAN_NETNS} link set {port} master {LAN_BRIDGE} up"),
    ]
}

/// Both addresses on `ifname` in `ns` (IPv6 without DAD), and the link up.
fn addresses(ns: &str, ifname: &str, v4: &str, v6: &str) -> Vec<String> {
    vec![
        format!("ip -n {ns} addr add {v4} dev {ifname}"),
        format!("ip -n {ns} addr add {v6} dev {ifname} nodad"),
        format!("ip -n {ns} link set {ifname} up"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn node_addresses_follow_the_topology_document() {
        let n = Node::new(2);
        assert_eq!(n.name, "node-2");
        assert_eq!(n.netns, "mlb-node-2");
        assert_eq!(n.lan_v4.to_string(), "192.0.2.12");
        assert_eq!(n.lan_v6.to_string(), "2001:db8:0:1::12");
        assert_eq!(n.mgmt_v4.to_string(), "203.0.113.12");
        assert_eq!(n.mgmt_v6.to_string(), "2001:db8:0:100::12");
        assert_eq!(n.pods_v4.to_string(), "203.0.113.80/28");
        assert_eq!(n.pods_v6.to_string(), "2001:db8:0:202::/64");
        assert_eq!(Node::new(4).pods_v4.to_string(), "203.0.113.112/28");
    }

    #[test]
    fn pod_prefixes_stay_out_of_the_management_and_service_ranges() {
        let mgmt: Ipv4Net = MGMT_V4.parse().unwrap();
        let services: Ipv4Net = SERVICE_CIDR_V4.parse().unwrap();
        for i in 1..=MAX_NODES {
            let pods = Node::new(i).pods_v4;
            assert!(!mgmt.contains(&pods) && !services.contains(&pods), "{pods}");
        }
    }

    #[test]
    fn exec_names_map_to_namespaces() {
        assert_eq!(netns_of("node-1").as_deref(), Some("mlb-node-1"));
        assert_eq!(netns_of("client2").as_deref(), Some("mlb-client2"));
        assert_eq!(netns_of("lan").as_deref(), Some("mlb-lan"));
        assert_eq!(netns_of("mlb-router").as_deref(), Some("mlb-router"));
        assert_eq!(netns_of("node-5"), None);
        assert_eq!(netns_of("elsewhere"), None);
    }

    #[test]
    fn no_command_adds_a_default_route() {
        for cmd in Topology::new(4).setup_commands() {
            if cmd.iter().any(|a| a == "route") {
                let dst = &cmd[cmd.iter().position(|a| a == "add").unwrap() + 1];
                assert!(
                    !["default", "0.0.0.0/0", "::/0"].contains(&dst.as_str()),
                    "{}",
                    cmd.join(" ")
                );
            }
        }
    }

    #[test]
    fn one_node_setup_is_exactly_this() {
        let text: Vec<String> = Topology::new(1)
            .setup_commands()
            .iter()
            .map(|c| c.join(" "))
            .collect();
        let ns_setup = |ns: &str, fwd: bool| {
            let mut v = vec![
                format!("ip netns add {ns}"),
                format!("ip -n {ns} link set lo up"),
            ];
            let mut s = format!(
                "ip netns exec {ns} sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0"
            );
            if fwd {
                s.push_str(" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1");
            }
            v.push(s);
            v
        };
        let mut expected = vec![
            "ip link add mlb-mgmt type bridge mcast_snooping 0".to_string(),
            "sysctl -qw net.ipv6.conf.mlb-mgmt.accept_dad=0".into(),
            "ip addr add 203.0.113.1/26 dev mlb-mgmt".into(),
            "ip addr add 2001:db8:0:100::1/64 dev mlb-mgmt nodad".into(),
            "ip link set mlb-mgmt up".into(),
        ];
        expected.extend(ns_setup("mlb-lan", false));
        expected.extend(ns_setup("mlb-node-1", true));
        expected.extend(ns_setup("mlb-client", false));
        expected.extend(ns_setup("mlb-router", true));
        expected.extend(ns_setup("mlb-client2", false));
        expected.extend(
            [
                "ip -n mlb-lan link add br0 type bridge mcast_snooping 0",
                "ip -n mlb-lan link set br0 up",
                "ip link add mlb-m-node-1 type veth peer name mgmt0 netns mlb-node-1",
                "ip link set mlb-m-node-1 master mlb-mgmt up",
                "ip -n mlb-node-1 addr add 203.0.113.11/26 dev mgmt0",
                "ip -n mlb-node-1 addr add 2001:db8:0:100::11/64 dev mgmt0 nodad",
                "ip -n mlb-node-1 link set mgmt0 up",
                "ip link add eth0 netns mlb-node-1 type veth peer name node-1 netns mlb-lan",
                "ip -n mlb-lan link set node-1 master br0 up",
                "ip -n mlb-node-1 addr add 192.0.2.11/24 dev eth0",
                "ip -n mlb-node-1 addr add 2001:db8:0:1::11/64 dev eth0 nodad",
                "ip -n mlb-node-1 link set eth0 up",
                "ip -n mlb-node-1 -4 route add 198.51.100.0/24 via 192.0.2.1",
                "ip -n mlb-node-1 -6 route add 2001:db8:0:2::/64 via 2001:db8:0:1::1",
                "ip -n mlb-node-1 -4 route add 198.18.0.0/16 dev mgmt0",
                "ip -n mlb-node-1 -6 route add 2001:db8:0:ff::/108 dev mgmt0",
                "ip link add eth0 netns mlb-client type veth peer name client netns mlb-lan",
                "ip -n mlb-lan link set client master br0 up",
                "ip -n mlb-client addr add 192.0.2.100/24 dev eth0",
                "ip -n mlb-client addr add 2001:db8:0:1::100/64 dev eth0 nodad",
                "ip -n mlb-client link set eth0 up",
                "ip -n mlb-client -4 route add 198.51.100.0/24 via 192.0.2.1",
                "ip -n mlb-client -6 route add 2001:db8:0:2::/64 via 2001:db8:0:1::1",
                "ip link add eth0 netns mlb-router type veth peer name router netns mlb-lan",
                "ip -n mlb-lan link set router master br0 up",
                "ip -n mlb-router addr add 192.0.2.1/24 dev eth0",
                "ip -n mlb-router addr add 2001:db8:0:1::1/64 dev eth0 nodad",
                "ip -n mlb-router link set eth0 up",
                "ip link add eth1 netns mlb-router type veth peer name eth0 netns mlb-client2",
                "ip -n mlb-router addr add 198.51.100.1/24 dev eth1",
                "ip -n mlb-router addr add 2001:db8:0:2::1/64 dev eth1 nodad",
                "ip -n mlb-router link set eth1 up",
                "ip -n mlb-client2 addr add 198.51.100.100/24 dev eth0",
                "ip -n mlb-client2 addr add 2001:db8:0:2::100/64 dev eth0 nodad",
                "ip -n mlb-client2 link set eth0 up",
                "ip -n mlb-client2 -4 route add 192.0.2.0/24 via 198.51.100.1",
                "ip -n mlb-client2 -4 route add 203.0.113.192/26 via 198.51.100.1",
                "ip -n mlb-client2 -6 route add 2001:db8:0:1::/64 via 2001:db8:0:2::1",
                "ip -n mlb-client2 -6 route add 2001:db8:0:300::/64 via 2001:db8:0:2::1",
            ]
            .map(String::from),
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn the_machine_gets_no_route_for_whole_pod_prefixes() {
        for cmd in Topology::new(4).setup_commands() {
            let text = cmd.join(" ");
            assert!(
                !(text.starts_with("ip -4 route") || text.starts_with("ip -6 route")),
                "{text}"
            );
        }
    }

    #[test]
    fn nodes_route_each_others_pod_prefixes() {
        let text: Vec<String> = Topology::new(2)
            .setup_commands()
            .iter()
            .map(|c| c.join(" "))
            .collect();
        assert!(text.contains(
            &"ip -n mlb-node-1 -4 route add 203.0.113.80/28 via 203.0.113.12".to_string()
        ));
        assert!(text.contains(
            &"ip -n mlb-node-2 -6 route add 2001:db8:0:201::/64 via 2001:db8:0:100::11".to_string()
        ));
    }
}
