//! End-to-end tests of the speaker in BGP mode with the native backend on the local cluster:
//! the scenarios both backends share (`common::bgp::scenarios`, also run in FRR mode by
//! `speaker_frr.rs`), and those of the native backend alone (passwords, multihop, the hold
//! timer, graceful restart). How the cluster, the router and the configuration are set up:
//! `common/bgp.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use kube::{Api, ResourceExt};
use metallb_e2e::harness::{netns_exec, pod_ready, wait_for};
use metallb_e2e::topology::CLIENT_V4;

mod common;

use common::bgp::*;

const NATIVE: Backend = Backend::Native;

// ---------------------------------------------------------------------------------------------
// Shared with FRR mode

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn ipv4_ipv6_and_dual_stack_services_are_routed_through_every_node_to_client2() {
    scenarios::families(NATIVE).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_dual_stack_session_carries_both_families_with_the_nodes_ipv6_next_hop() {
    scenarios::dual_stack_session(NATIVE).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn external_traffic_policy_local_is_routed_only_through_nodes_with_an_endpoint() {
    scenarios::traffic_policy_local(NATIVE).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn communities_as_path_prepending_and_aggregation_are_on_the_routers_routes() {
    scenarios::communities_prepending_aggregation(NATIVE).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn local_preference_reaches_an_internal_peer() {
    scenarios::local_preference(NATIVE).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_peer_with_a_node_selector_peers_only_from_the_selected_nodes() {
    scenarios::node_selector(NATIVE).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn removing_the_endpoints_or_the_service_withdraws_the_routes() {
    scenarios::withdrawals(NATIVE).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn changing_an_advertisement_changes_the_routes_without_resetting_a_session() {
    scenarios::advertisement_change_keeps_the_sessions(NATIVE).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_new_hold_time_reaches_the_router_without_touching_the_other_peers_sessions() {
    scenarios::hold_time_change_reaches_the_router(NATIVE).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn bfd_sessions_come_up_on_the_router() {
    scenarios::bfd_comes_up(NATIVE).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_node_that_loses_its_link_loses_its_next_hop_within_the_bfd_detection_time() {
    scenarios::link_down_with_bfd(NATIVE).await;
}

// ---------------------------------------------------------------------------------------------
// The native backend alone

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_password_from_a_secret_establishes_and_a_wrong_one_does_not() {
    let (cluster, _cleanup) = setup(NATIVE).await;
    let _router = reconfigure_router(
        &["neighbor metallb password e2e-bgp-secret"],
        &["no neighbor metallb password"],
    );
    let secret = |password: &str| {
        format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: router-password, namespace: {NS}, labels: {{e2e: speaker-bgp}}}}\ntype: kubernetes.io/basic-auth\nstringData: {{password: {password}}}\n"
        )
    };
    let with_secret = peer(
        "router",
        "192.0.2.1",
        "  passwordSecret: {name: router-password, namespace: metallb-system}",
    );
    configure(
        &cluster,
        &(secret("e2e-bgp-secret") + &with_secret + &advertisement("all", "")),
    )
    .await;
    let ns = cluster.namespace("bgp-password").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("web", 2, V4, "", "", None))
        .await
        .unwrap();
    let ip = ips(&cluster, ns.name(), "web", 1).await[0];
    sessions_from(&NODES).await;
    routed_through(&host_route(ip), &NODES).await;
    client2_reaches(ip, "web").await;

    // The Secret changes to a wrong password: every session restarts with it and stays down.
    cluster
        .apply_yaml(None, &secret("not-the-routers"))
        .await
        .unwrap();
    routed_through(&host_route(ip), &[]).await;
    sessions_from(&[]).await;
    for node in NODES {
        wait_for(
            &format!("{node} to report its session down"),
            SETTLE,
            || async {
                match session_up_metric(node, "192.0.2.1:179")? {
                    Some(0) => Ok(()),
                    other => Err(format!("metallb_bgp_session_up {other:?}")),
                }
            },
        )
        .await
        .unwrap();
    }
    // Long enough for several connection attempts (1 s, then 2 s, ... apart): none gets through.
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        assert_eq!(established().unwrap(), BTreeSet::new());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // And back to the right one.
    cluster
        .apply_yaml(None, &secret("e2e-bgp-secret"))
        .await
        .unwrap();
    sessions_from(&NODES).await;
    routed_through(&host_route(ip), &NODES).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn ebgp_multihop_reaches_a_router_two_hops_away() {
    let (cluster, _cleanup) = setup(NATIVE).await;
    // node-1 reaches the router's far address (on LAN 2) through the client, made a router for
    // the test: two hops. (Not through another node: the nodes' Service data path drops what
    // they would forward from the LAN back to the LAN, as a LoadBalancer hairpin.)
    let sysctl = |value: &str| -> Result<(), String> {
        let setting = format!("net.ipv4.ip_forward={value}");
        let out = netns_exec("client", &["sysctl", "-qw", &setting]).map_err(|e| e.to_string())?;
        if out.success() {
            Ok(())
        } else {
            Err(out.stderr)
        }
    };
    sysctl("1").expect("the client forwards");
    let _forwarding = Undo::new("the client's forwarding", move || sysctl("0"));
    let via = CLIENT_V4.to_string();
    let far = "198.51.100.1/32";
    run_ip(&["-n", "mlb-node-1", "route", "replace", far, "via", &via])
        .expect("route via the client");
    let _route = Undo::new("node-1's route to the router via the client", move || {
        run_ip(&["-n", "mlb-node-1", "route", "del", far])
    });
    let selector = "  nodeSelectors: [{matchLabels: {kubernetes.io/hostname: node-1}}]";
    configure(
        &cluster,
        &(peer("far", "198.51.100.1", selector) + &advertisement("all", "")),
    )
    .await;
    let ns = cluster.namespace("bgp-multihop").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("web", 2, V4, "", "", None))
        .await
        .unwrap();
    let ip = ips(&cluster, ns.name(), "web", 1).await[0];
    // Single-hop eBGP sends TTL 1: the client drops the packets, nothing gets through.
    wait_for("node-1 to report its session down", SETTLE, || async {
        match session_up_metric("node-1", "198.51.100.1:179")? {
            Some(0) => Ok(()),
            other => Err(format!("metallb_bgp_session_up {other:?}")),
        }
    })
    .await
    .unwrap();
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        assert_eq!(established().unwrap(), BTreeSet::new());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // With ebgpMultiHop (TTL 255) the session comes up across the client.
    let multihop = format!("{selector}\n  ebgpMultiHop: true");
    cluster
        .apply_yaml(None, &peer("far", "198.51.100.1", &multihop))
        .await
        .unwrap();
    sessions_from(&["node-1"]).await;
    routed_through(&host_route(ip), &["node-1"]).await;
    client2_reaches(ip, "web").await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_node_that_loses_its_link_loses_its_next_hop_after_the_hold_time() {
    let (cluster, _cleanup) = setup(NATIVE).await;
    let hold = Duration::from_secs(3);
    let peers = peer("router", "192.0.2.1", "  holdTime: 3s");
    configure(&cluster, &(peers + &advertisement("all", ""))).await;
    let ns = cluster.namespace("bgp-link").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("web", 3, V4, "", "", None))
        .await
        .unwrap();
    let ip = ips(&cluster, ns.name(), "web", 1).await[0];
    let prefix = host_route(ip);
    routed_through(&prefix, &NODES).await;
    // node-2's LAN cable is pulled (its port on the LAN bridge goes down).
    let cut = Instant::now();
    run_ip(&["-n", "mlb-lan", "link", "set", "node-2", "down"]).expect("link down");
    let _link = Undo::new("node-2's LAN link", || {
        run_ip(&["-n", "mlb-lan", "link", "set", "node-2", "up"])
    });
    routed_through(&prefix, &["node-1", "node-3"]).await;
    let gone = cut.elapsed();
    // The router's hold timer (the negotiated 3 s) notices, between 2 s (our last keepalive,
    // sent every second, just before the cut) and 3 s; a little more for the polling.
    assert!(
        gone >= hold - Duration::from_millis(1100) && gone < hold + Duration::from_secs(3),
        "node-2's next hop went after {gone:?} (hold time {hold:?})"
    );
    client2_reaches(ip, "web").await;
    drop(_link);
    routed_through(&prefix, &NODES).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_speaker_restart_with_graceful_restart_keeps_the_route() {
    let (cluster, _cleanup) = setup(NATIVE).await;
    let _router = reconfigure_router(&["bgp graceful-restart"], &["no bgp graceful-restart"]);
    let peers = peer("router", "192.0.2.1", "  enableGracefulRestart: true");
    configure(&cluster, &(peers + &advertisement("all", ""))).await;
    let ns = cluster.namespace("bgp-restart").await.unwrap();
    cluster
        .apply_yaml(Some(ns.name()), &echo("web", 3, V4, "", "", None))
        .await
        .unwrap();
    let ip = ips(&cluster, ns.name(), "web", 1).await[0];
    let prefix = host_route(ip);
    routed_through(&prefix, &NODES).await;

    // Poll the router all along: node-2's path must never leave the table.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (stop, prefix) = (stop.clone(), prefix.clone());
        std::thread::spawn(move || {
            let mut polls = 0u32;
            let mut missing = Vec::new();
            let mut stale = 0u32;
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                match paths(&prefix) {
                    Ok(paths) => {
                        polls += 1;
                        match paths.iter().find(|p| p.node == "node-2") {
                            Some(p) if p.stale => stale += 1,
                            Some(_) => {}
                            None => missing.push(start.elapsed()),
                        }
                    }
                    Err(e) => eprintln!("router poll failed: {e}"),
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (polls, missing, stale)
        })
    };
    let before = speakers(&cluster).await.unwrap()["node-2"].clone();
    let pods: Api<Pod> = Api::namespaced(cluster.client(), NS);
    pods.delete(&before.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    // A new speaker on node-2, ready, with its session up again and the route refreshed.
    wait_for("a new ready speaker on node-2", SETTLE, || async {
        let now = speakers(&cluster).await?;
        match now.get("node-2") {
            Some(p) if p.uid() != before.uid() && pod_ready(p) => Ok(()),
            Some(p) => Err(format!("{} ready={}", p.name_any(), pod_ready(p))),
            None => Err("no speaker on node-2".into()),
        }
    })
    .await
    .unwrap();
    wait_for(
        "node-2's path to be fresh again (not stale)",
        SETTLE,
        || async {
            let paths = paths(&prefix)?;
            match paths.iter().find(|p| p.node == "node-2") {
                Some(p) if !p.stale => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let (polls, missing, stale) = poller.join().expect("the poller ends");
    eprintln!("router polled {polls} times during the restart, node-2's path stale in {stale}");
    assert!(polls >= 3, "the router was polled {polls} times");
    assert_eq!(
        missing,
        Vec::<Duration>::new(),
        "node-2's path missing at these times after the deletion"
    );
    assert!(
        stale > 0,
        "the router kept node-2's path as stale while its speaker restarted ({polls} polls)"
    );
    client2_reaches(ip, "web").await;
}
