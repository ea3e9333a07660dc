use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// L2AdvertisementSpec defines the desired state of L2Advertisement.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "L2Advertisement",
    root = "L2AdvertisementCrd",
    attr = "doc(hidden)",
    plural = "l2advertisements",
    namespaced,
    status = "L2AdvertisementStatus",
    doc = "L2Advertisement allows to advertise the LoadBalancer IPs provided by the selected pools via L2.",
    printcolumn(
        name = "IPAddressPools",
        type_ = "string",
        json_path = ".spec.ipAddressPools"
    ),
    printcolumn(
        name = "IPAddressPool Selectors",
        type_ = "string",
        json_path = ".spec.ipAddressPoolSelectors"
    ),
    printcolumn(name = "Interfaces", type_ = "string", json_path = ".spec.interfaces"),
    printcolumn(
        name = "Node Selectors",
        type_ = "string",
        json_path = ".spec.nodeSelectors",
        priority = "10"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct L2AdvertisementSpec {
    /// The list of IPAddressPools to advertise via this advertisement, selected by name.
    #[serde(
        default,
        rename = "ipAddressPools",
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_address_pools: Option<Vec<String>>,

    /// A selector for the IPAddressPools which would get advertised via this advertisement.
    /// If no IPAddressPool is selected by this or by the list, the advertisement is applied to
    /// all the IPAddressPools.
    #[serde(
        default,
        rename = "ipAddressPoolSelectors",
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_address_pool_selectors: Option<Vec<LabelSelector>>,

    /// NodeSelectors allows to limit the nodes to announce as next hops for the LoadBalancer IP.
    /// When empty, all the nodes having are announced as next hops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selectors: Option<Vec<LabelSelector>>,

    /// A list of interfaces to announce from. The LB IP will be announced only from these
    /// interfaces. If the field is not set, we advertise from all the interfaces on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<String>>,

    /// ServiceSelectors limits the services of the selected pools this advertisement applies to.
    /// Services using allow-shared-ip are not announced through an advertisement with
    /// serviceSelectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_selectors: Option<Vec<LabelSelector>>,

    /// PreferredNodeSelectors is a soft preference for the node that announces a service, among
    /// the nodes eligible through nodeSelectors. The weights of all matching preferences are
    /// summed per node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_node_selectors: Option<Vec<PreferredNodeSelector>>,
}

/// A weighted node preference.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreferredNodeSelector {
    /// Weight associated with matching the corresponding preference, in the range 1-100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// A label selector over nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<LabelSelector>,
}

/// L2AdvertisementStatus defines the observed state of L2Advertisement.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct L2AdvertisementStatus {}

object!(
    L2Advertisement,
    L2AdvertisementCrd,
    L2AdvertisementSpec,
    L2AdvertisementStatus
);
