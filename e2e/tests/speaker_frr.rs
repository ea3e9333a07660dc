//! End-to-end tests of the speaker in FRR mode (`bgpBackend: frr`) on the local cluster: the
//! MetalLB resource is switched to FRR mode, the speakers render `frr.conf` and their FRR
//! sidecars (the image of hack/frr-image.sh) peer with the router. The same scenarios as the
//! native backend's (`common::bgp::scenarios`, `speaker_bgp.rs`): routes, next hops,
//! communities, local preference, withdrawals, an advertisement change without a session reset,
//! BFD, and a link cut noticed within the BFD detection time.
//!
//! Every test switches the resource to FRR mode (a rolling update of the speakers, done once: it
//! is a no-op while the resource already is in FRR mode). The last test, by name (libtest runs
//! tests in name order, and hack/e2e.sh one at a time), puts it back to the native backend so
//! that the suites after this one find the resource as hack/local-up.sh left it; the native
//! suite's scenarios also switch back themselves.

mod common;

use common::bgp::{Backend, scenarios, set_backend};
use metallb_e2e::harness::Cluster;

const FRR: Backend = Backend::Frr;

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn ipv4_ipv6_and_dual_stack_services_are_routed_through_every_node_to_client2() {
    scenarios::families(FRR).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_dual_stack_session_carries_both_families_with_the_nodes_ipv6_next_hop() {
    scenarios::dual_stack_session(FRR).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn external_traffic_policy_local_is_routed_only_through_nodes_with_an_endpoint() {
    scenarios::traffic_policy_local(FRR).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn communities_as_path_prepending_and_aggregation_are_on_the_routers_routes() {
    scenarios::communities_prepending_aggregation(FRR).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn local_preference_reaches_an_internal_peer() {
    scenarios::local_preference(FRR).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_peer_with_a_node_selector_peers_only_from_the_selected_nodes() {
    scenarios::node_selector(FRR).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn removing_the_endpoints_or_the_service_withdraws_the_routes() {
    scenarios::withdrawals(FRR).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn changing_an_advertisement_changes_the_routes_without_resetting_a_session() {
    scenarios::advertisement_change_keeps_the_sessions(FRR).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_new_hold_time_reaches_the_router_without_touching_the_other_peers_sessions() {
    scenarios::hold_time_change_reaches_the_router(FRR).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn bfd_sessions_come_up_on_the_router() {
    scenarios::bfd_comes_up(FRR).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn a_node_that_loses_its_link_loses_its_next_hop_within_the_bfd_detection_time() {
    scenarios::link_down_with_bfd(FRR).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local cluster (hack/local-up.sh); run with --ignored"]
async fn zz_the_native_backend_is_restored_for_the_next_suites() {
    let cluster = Cluster::connect().await.expect("the local cluster is up");
    set_backend(&cluster, Backend::Native).await;
}
