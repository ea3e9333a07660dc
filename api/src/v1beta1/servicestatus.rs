use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// ServiceL2StatusSpec is empty: the object is status only.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "ServiceL2Status",
    root = "ServiceL2StatusCrd",
    attr = "doc(hidden)",
    plural = "servicel2statuses",
    namespaced,
    status = "MetalLBServiceL2Status",
    doc = "ServiceL2Status reveals the actual traffic status of loadbalancer services in layer2 mode.",
    printcolumn(name = "Allocated Node", type_ = "string", json_path = ".status.node"),
    printcolumn(
        name = "Service Name",
        type_ = "string",
        json_path = ".status.serviceName"
    ),
    printcolumn(
        name = "Service Namespace",
        type_ = "string",
        json_path = ".status.serviceNamespace"
    )
)]
pub struct ServiceL2StatusSpec {}

/// MetalLBServiceL2Status defines the observed state of ServiceL2Status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetalLBServiceL2Status {
    /// Node indicates the node that receives the directed traffic
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// ServiceName indicates the service this status represents
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// ServiceNamespace indicates the namespace of the service
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_namespace: Option<String>,
    /// Interfaces indicates the interfaces that receive the directed traffic
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<InterfaceInfo>>,
}

/// InterfaceInfo defines interface info of layer2 announcement.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct InterfaceInfo {
    /// Name the name of network interface card
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// ServiceBGPStatusSpec is empty: the object is status only.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "ServiceBGPStatus",
    root = "ServiceBGPStatusCrd",
    attr = "doc(hidden)",
    plural = "servicebgpstatuses",
    namespaced,
    status = "MetalLBServiceBGPStatus",
    doc = "ServiceBGPStatus exposes the BGP peers a service is configured to be advertised to, per relevant node.",
    printcolumn(name = "Node", type_ = "string", json_path = ".status.node"),
    printcolumn(
        name = "Service Name",
        type_ = "string",
        json_path = ".status.serviceName"
    ),
    printcolumn(
        name = "Service Namespace",
        type_ = "string",
        json_path = ".status.serviceNamespace"
    )
)]
pub struct ServiceBGPStatusSpec {}

/// MetalLBServiceBGPStatus defines the observed state of ServiceBGPStatus.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetalLBServiceBGPStatus {
    /// Node indicates the node announcing the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// ServiceName indicates the service this status represents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// ServiceNamespace indicates the namespace of the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_namespace: Option<String>,
    /// Peers indicate the BGP peers for which the service is configured to be advertised to. The
    /// service being actually advertised to a given peer depends on the session state and is not
    /// indicated here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<Vec<String>>,
}

object!(
    ServiceL2Status,
    ServiceL2StatusCrd,
    ServiceL2StatusSpec,
    MetalLBServiceL2Status
);

object!(
    ServiceBGPStatus,
    ServiceBGPStatusCrd,
    ServiceBGPStatusSpec,
    MetalLBServiceBGPStatus
);
