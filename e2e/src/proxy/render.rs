//! Services + EndpointSlices → one nftables table for one node (pure).
//!
//! The output is a complete `nft -f` script that replaces `table inet mlb-proxy` in one
//! transaction. What it does, kube-proxy style:
//! - ClusterIPs (both families) and LoadBalancer ingress IPs, per port and protocol (TCP, UDP,
//!   SCTP), jump to a per-Service-port chain that picks a ready endpoint with
//!   `numgen random` and DNATs to it; the same rules run for forwarded traffic (prerouting)
//!   and locally generated traffic (output).
//! - `externalTrafficPolicy: Local`: a LoadBalancer IP only goes to ready endpoints on this
//!   node, and is dropped when there is none. `internalTrafficPolicy: Local` does the same
//!   for ClusterIPs.
//! - Traffic DNATed to an endpoint on another node leaves the node (over `mgmt0` for pod IPs,
//!   `eth0` for hostNetwork endpoints) and is masqueraded, so replies return through this
//!   node. Traffic to a pod on this node (its veth) keeps its source address, except a pod
//!   reaching itself (hairpin), which is masqueraded like kube-proxy does.
//! - No address is added to any interface: the node never answers ARP/NDP for a
//!   LoadBalancer IP (strict ARP), that is the speaker's job.
//! - Not done: NodePorts, session affinity, terminating-endpoint fallback, `externalIPs`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The table every node's ruleset lives in.
pub const TABLE: &str = "mlb-proxy";
/// Marks a packet whose endpoint is its own source (a pod reaching itself through a
/// Service): it is masqueraded, else the pod would drop its own address as source.
const HAIRPIN_MARK: &str = "0x00004000";
/// The label linking an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// One endpoint of one Service port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Endpoint {
    addr: IpAddr,
    port: i32,
    local: bool,
}

/// One rule of the `services` chain: destination, port, protocol → chain.
struct Entry {
    daddr: IpAddr,
    protocol: String,
    port: i32,
    chain: String,
    comment: String,
}

/// Renders the full `nft -f` input for node `node`.
pub fn render(services: &[Service], slices: &[EndpointSlice], node: &str) -> String {
    let mut services: Vec<&Service> = services.iter().collect();
    services.sort_by_key(|s| (s.metadata.namespace.clone(), s.metadata.name.clone()));

    let mut entries: Vec<Entry> = Vec::new();
    let mut chains: Vec<(String, Vec<Endpoint>, String)> = Vec::new();

    for svc in services {
        let (Some(ns), Some(name), Some(spec)) = (
            svc.metadata.namespace.as_deref(),
            svc.metadata.name.as_deref(),
            svc.spec.as_ref(),
        ) else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let cluster_ips: Vec<IpAddr> = spec
            .cluster_ips
            .iter()
            .flatten()
            .chain(spec.cluster_ip.iter())
            .filter_map(|ip| ip.parse().ok())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let lb_ips: Vec<IpAddr> = if spec.type_.as_deref() == Some("LoadBalancer") {
            svc.status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|ing| ing.ip.as_ref()?.parse().ok())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        let etp_local = spec.external_traffic_policy.as_deref() == Some("Local");
        let itp_local = spec.internal_traffic_policy.as_deref() == Some("Local");
        let own_slices: Vec<&EndpointSlice> = slices
            .iter()
            .filter(|s| {
                s.metadata.namespace.as_deref() == Some(ns)
                    && s.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(SERVICE_NAME_LABEL))
                        .map(String::as_str)
                        == Some(name)
            })
            .collect();

        for port in spec.ports.iter().flatten() {
            let protocol = port
                .protocol
                .as_deref()
                .unwrap_or("TCP")
                .to_ascii_lowercase();
            if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
                continue;
            }
            let port_name = port.name.clone().unwrap_or_default();
            let port_label = if port_name.is_empty() {
                format!("p{}", port.port)
            } else {
                port_name.clone()
            };
            for v6 in [false, true] {
                let family = if v6 { "v6" } else { "v4" };
                let of_family = |ip: &&IpAddr| ip.is_ipv6() == v6;
                let cips: Vec<IpAddr> = cluster_ips.iter().filter(of_family).copied().collect();
                let lips: Vec<IpAddr> = lb_ips.iter().filter(of_family).copied().collect();
                if cips.is_empty() && lips.is_empty() {
                    continue;
                }
                let all = endpoints(&own_slices, &port_name, &protocol, v6, node);
                let local: Vec<Endpoint> = all.iter().filter(|e| e.local).cloned().collect();
                let base = format!("svc-{ns}/{name}/{port_label}/{protocol}/{family}");
                let cluster_chain = base.clone();
                let local_chain = format!("{base}/local");
                let mut need_cluster = false;
                let mut need_local = false;
                let what = format!("{ns}/{name}:{port_label}");
                for ip in cips {
                    let chain = if itp_local {
                        &local_chain
                    } else {
                        &cluster_chain
                    };
                    need_local |= itp_local;
                    need_cluster |= !itp_local;
                    entries.push(Entry {
                        daddr: ip,
                        protocol: protocol.clone(),
                        port: port.port,
                        chain: chain.clone(),
                        comment: format!("{what} cluster IP"),
                    });
                }
                for ip in lips {
                    let chain = if etp_local {
                        &local_chain
                    } else {
                        &cluster_chain
                    };
                    need_local |= etp_local;
                    need_cluster |= !etp_local;
                    entries.push(Entry {
                        daddr: ip,
                        protocol: protocol.clone(),
                        port: port.port,
                        chain: chain.clone(),
                        comment: format!("{what} load balancer IP"),
                    });
                }
                if need_cluster {
                    chains.push((cluster_chain, all.clone(), protocol.clone()));
                }
                if need_local {
                    chains.push((local_chain, local, protocol.clone()));
                }
            }
        }
    }

    let mut out = String::new();
    // Creating then deleting the table makes the script work whether or not it exists;
    // nft applies the whole file as one transaction.
    let _ = writeln!(out, "table inet {TABLE}");
    let _ = writeln!(out, "delete table inet {TABLE}");
    let _ = writeln!(out, "table inet {TABLE} {{");
    out.push_str(concat!(
        "\tchain prerouting {\n",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
        "\t\tjump services\n",
        "\t}\n",
        "\tchain output {\n",
        "\t\ttype nat hook output priority -100; policy accept;\n",
        "\t\tjump services\n",
        "\t}\n",
        "\tchain postrouting {\n",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
        "\t\tct status dnat oifname { \"eth0\", \"mgmt0\" } masquerade comment \"endpoint on another node\"\n",
        "\t\tmeta mark & 0x00004000 == 0x00004000 masquerade comment \"hairpin: a pod reaching itself\"\n",
        "\t}\n",
        "\tchain forward {\n",
        "\t\ttype filter hook forward priority filter; policy accept;\n",
        "\t\tiifname \"eth0\" oifname \"eth0\" ct status & dnat == 0 drop comment \"no hairpin for unhandled LoadBalancer IPs\"\n",
        "\t}\n",
    ));
    out.push_str("\tchain services {\n");
    for e in &entries {
        let family = if e.daddr.is_ipv6() { "ip6" } else { "ip" };
        let _ = writeln!(
            out,
            "\t\t{family} daddr {} {} dport {} jump {} comment \"{}\"",
            e.daddr, e.protocol, e.port, e.chain, e.comment
        );
    }
    out.push_str("\t}\n");
    for (chain, eps, protocol) in &chains {
        let _ = writeln!(out, "\tchain {chain} {{");
        match eps.len() {
            0 => {
                let _ = writeln!(out, "\t\tdrop comment \"no ready endpoints\"");
            }
            1 => {
                let _ = writeln!(out, "\t\tjump {chain}/ep0");
            }
            n => {
                let arms: Vec<String> = (0..n)
                    .map(|k| format!("{k} : jump {chain}/ep{k}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "\t\tnumgen random mod {n} vmap {{ {} }}",
                    arms.join(", ")
                );
            }
        }
        out.push_str("\t}\n");
        for (k, ep) in eps.iter().enumerate() {
            let target = match ep.addr {
                IpAddr::V4(a) => format!("ip to {a}:{}", ep.port),
                IpAddr::V6(a) => format!("ip6 to [{a}]:{}", ep.port),
            };
            let family = if ep.addr.is_ipv6() { "ip6" } else { "ip" };
            let _ = writeln!(out, "\tchain {chain}/ep{k} {{");
            let _ = writeln!(
                out,
                "\t\t{family} saddr {} meta mark set meta mark | {HAIRPIN_MARK}",
                ep.addr
            );
            let _ = writeln!(out, "\t\tmeta l4proto {protocol} dnat {target}");
            out.push_str("\t}\n");
        }
    }
    out.push_str("}\n");
    out
}

/// Ready endpoints of one Service port in one family, sorted and de-duplicated.
fn endpoints(
    slices: &[&EndpointSlice],
    port_name: &str,
    protocol: &str,
    v6: bool,
    node: &str,
) -> Vec<Endpoint> {
    let family = if v6 { "IPv6" } else { "IPv4" };
    let mut out = BTreeSet::new();
    for slice in slices.iter().filter(|s| s.address_type == family) {
        let Some(port) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == port_name
                && p.protocol
                    .as_deref()
                    .unwrap_or("TCP")
                    .eq_ignore_ascii_case(protocol)
        }) else {
            continue;
        };
        let Some(port_number) = port.port else {
            continue;
        };
        for ep in &slice.endpoints {
            // An unset ready condition means ready (EndpointSlice API contract).
            if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            let Some(addr) = ep.addresses.first().and_then(|a| a.parse::<IpAddr>().ok()) else {
                continue;
            };
            out.insert(Endpoint {
                addr,
                port: port_number,
                local: ep.node_name.as_deref() == Some(node),
            });
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn service(yaml: &str) -> Service {
        serde_saphyr::from_str(yaml).unwrap()
    }
    fn slice(yaml: &str) -> EndpointSlice {
        serde_saphyr::from_str(yaml).unwrap()
    }

    const HEADER: &str = concat!(
        "table inet mlb-proxy\n",
        "delete table inet mlb-proxy\n",
        "table inet mlb-proxy {\n",
        "\tchain prerouting {\n",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
        "\t\tjump services\n",
        "\t}\n",
        "\tchain output {\n",
        "\t\ttype nat hook output priority -100; policy accept;\n",
        "\t\tjump services\n",
        "\t}\n",
        "\tchain postrouting {\n",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
        "\t\tct status dnat oifname { \"eth0\", \"mgmt0\" } masquerade comment \"endpoint on another node\"\n",
        "\t\tmeta mark & 0x00004000 == 0x00004000 masquerade comment \"hairpin: a pod reaching itself\"\n",
        "\t}\n",
        "\tchain forward {\n",
        "\t\ttype filter hook forward priority filter; policy accept;\n",
        "\t\tiifname \"eth0\" oifname \"eth0\" ct status & dnat == 0 drop comment \"no hairpin for unhandled LoadBalancer IPs\"\n",
        "\t}\n",
    );

    fn web_slices() -> Vec<EndpointSlice> {
        vec![
            slice(
                r#"
metadata: {name: web-abc, namespace: blue, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
  - {addresses: ["203.0.113.81"], nodeName: node-2, conditions: {ready: true}}
  - {addresses: ["203.0.113.65"], nodeName: node-1, conditions: {ready: true}}
  - {addresses: ["203.0.113.66"], nodeName: node-1, conditions: {ready: false}}
"#,
            ),
            slice(
                r#"
metadata: {name: web-def, namespace: blue, labels: {kubernetes.io/service-name: web}}
addressType: IPv6
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
  - {addresses: ["2001:db8:0:202::1"], nodeName: node-2}
"#,
            ),
            slice(
                r#"
metadata: {name: other, namespace: green, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 9999, protocol: TCP}]
endpoints:
  - {addresses: ["203.0.113.99"], nodeName: node-1}
"#,
            ),
        ]
    }

    #[test]
    fn no_services_gives_an_empty_services_chain() {
        assert_eq!(
            render(&[], &[], "node-1"),
            format!("{HEADER}\tchain services {{\n\t}}\n}}\n")
        );
    }

    #[test]
    fn dual_stack_cluster_ip_balances_over_ready_endpoints_of_its_family() {
        let svc = service(
            r#"
metadata: {name: web, namespace: blue}
spec:
  type: ClusterIP
  clusterIP: 203.0.113.130
  clusterIPs: [203.0.113.130, "2001:db8:0:ff::a"]
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
"#,
        );
        let expected = format!(
            "{HEADER}{}",
            concat!(
                "\tchain services {\n",
                "\t\tip daddr 203.0.113.130 tcp dport 80 jump svc-blue/web/http/tcp/v4 comment \"blue/web:http cluster IP\"\n",
                "\t\tip6 daddr 2001:db8:0:ff::a tcp dport 80 jump svc-blue/web/http/tcp/v6 comment \"blue/web:http cluster IP\"\n",
                "\t}\n",
                "\tchain svc-blue/web/http/tcp/v4 {\n",
                "\t\tnumgen random mod 2 vmap { 0 : jump svc-blue/web/http/tcp/v4/ep0, 1 : jump svc-blue/web/http/tcp/v4/ep1 }\n",
                "\t}\n",
                "\tchain svc-blue/web/http/tcp/v4/ep0 {\n",
                "\t\tip saddr 203.0.113.65 meta mark set meta mark | 0x00004000\n",
                "\t\tmeta l4proto tcp dnat ip to 203.0.113.65:8080\n",
                "\t}\n",
                "\tchain svc-blue/web/http/tcp/v4/ep1 {\n",
                "\t\tip saddr 203.0.113.81 meta mark set meta mark | 0x00004000\n",
                "\t\tmeta l4proto tcp dnat ip to 203.0.113.81:8080\n",
                "\t}\n",
                "\tchain svc-blue/web/http/tcp/v6 {\n",
                "\t\tjump svc-blue/web/http/tcp/v6/ep0\n",
                "\t}\n",
                "\tchain svc-blue/web/http/tcp/v6/ep0 {\n",
                "\t\tip6 saddr 2001:db8:0:202::1 meta mark set meta mark | 0x00004000\n",
                "\t\tmeta l4proto tcp dnat ip6 to [2001:db8:0:202::1]:8080\n",
                "\t}\n",
                "}\n",
            )
        );
        assert_eq!(render(&[svc], &web_slices(), "node-1"), expected);
    }

    #[test]
    fn local_traffic_policy_sends_load_balancer_ip_only_to_local_endpoints() {
        let svc = service(
            r#"
metadata: {name: web, namespace: blue}
spec:
  type: LoadBalancer
  clusterIP: 203.0.113.130
  externalTrafficPolicy: Local
  ports: [{name: http, port: 80, protocol: TCP}]
status:
  loadBalancer: {ingress: [{ip: 192.0.2.200}]}
"#,
        );
        let expected = format!(
            "{HEADER}{}",
            concat!(
                "\tchain services {\n",
                "\t\tip daddr 203.0.113.130 tcp dport 80 jump svc-blue/web/http/tcp/v4 comment \"blue/web:http cluster IP\"\n",
                "\t\tip daddr 192.0.2.200 tcp dport 80 jump svc-blue/web/http/tcp/v4/local comment \"blue/web:http load balancer IP\"\n",
                "\t}\n",
                "\tchain svc-blue/web/http/tcp/v4 {\n",
                "\t\tnumgen random mod 2 vmap { 0 : jump svc-blue/web/http/tcp/v4/ep0, 1 : jump svc-blue/web/http/tcp/v4/ep1 }\n",
                "\t}\n",
                "\tchain svc-blue/web/http/tcp/v4/ep0 {\n",
                "\t\tip saddr 203.0.113.65 meta mark set meta mark | 0x00004000\n",
                "\t\tmeta l4proto tcp dnat ip to 203.0.113.65:8080\n",
                "\t}\n",
                "\tchain svc-blue/web/http/tcp/v4/ep1 {\n",
                "\t\tip saddr 203.0.113.81 meta mark set meta mark | 0x00004000\n",
                "\t\tmeta l4proto tcp dnat ip to 203.0.113.81:8080\n",
                "\t}\n",
                "\tchain svc-blue/web/http/tcp/v4/local {\n",
                "\t\tjump svc-blue/web/http/tcp/v4/local/ep0\n",
                "\t}\n",
                "\tchain svc-blue/web/http/tcp/v4/local/ep0 {\n",
                "\t\tip saddr 203.0.113.65 meta mark set meta mark | 0x00004000\n",
                "\t\tmeta l4proto tcp dnat ip to 203.0.113.65:8080\n",
                "\t}\n",
                "}\n",
            )
        );
        assert_eq!(
            render(std::slice::from_ref(&svc), &web_slices(), "node-1"),
            expected
        );

        // node-3 has no local endpoint: the LoadBalancer IP is dropped there.
        let on_node3 = render(&[svc], &web_slices(), "node-3");
        assert!(on_node3.contains(
            "\tchain svc-blue/web/http/tcp/v4/local {\n\t\tdrop comment \"no ready endpoints\"\n\t}\n"
        ));
    }

    #[test]
    fn udp_port_without_name_and_without_endpoints_is_dropped() {
        let svc = service(
            r#"
metadata: {name: dns, namespace: blue}
spec:
  clusterIP: 203.0.113.140
  ports: [{port: 53, protocol: UDP}]
"#,
        );
        let expected = format!(
            "{HEADER}{}",
            concat!(
                "\tchain services {\n",
                "\t\tip daddr 203.0.113.140 udp dport 53 jump svc-blue/dns/p53/udp/v4 comment \"blue/dns:p53 cluster IP\"\n",
                "\t}\n",
                "\tchain svc-blue/dns/p53/udp/v4 {\n",
                "\t\tdrop comment \"no ready endpoints\"\n",
                "\t}\n",
                "}\n",
            )
        );
        assert_eq!(render(&[svc], &[], "node-1"), expected);
    }

    #[test]
    fn headless_external_name_and_pending_load_balancers_get_no_rules_for_missing_ips() {
        let headless = service(
            "metadata: {name: h, namespace: a}\nspec: {clusterIP: None, ports: [{port: 80}]}\n",
        );
        let external = service(
            "metadata: {name: e, namespace: a}\nspec: {type: ExternalName, externalName: example.org}\n",
        );
        let pending = service(
            "metadata: {name: p, namespace: a}\nspec: {type: LoadBalancer, clusterIP: 203.0.113.150, ports: [{port: 80}]}\n",
        );
        let out = render(&[headless, external, pending], &[], "node-1");
        assert_eq!(
            out,
            format!(
                "{HEADER}{}",
                concat!(
                    "\tchain services {\n",
                    "\t\tip daddr 203.0.113.150 tcp dport 80 jump svc-a/p/p80/tcp/v4 comment \"a/p:p80 cluster IP\"\n",
                    "\t}\n",
                    "\tchain svc-a/p/p80/tcp/v4 {\n",
                    "\t\tdrop comment \"no ready endpoints\"\n",
                    "\t}\n",
                    "}\n",
                )
            )
        );
    }
}
