//! Names every component agrees on: the API group, annotations, labels, field managers and the
//! default images. Strings that appear in more than one crate live here and nowhere else.

/// The API group of every MetalLB custom resource.
pub const GROUP: &str = "metallb.io";
/// The namespace MetalLB runs in unless told otherwise (`--namespace`, `METALLB_NAMESPACE`).
pub const DEFAULT_NAMESPACE: &str = "metallb-system";

/// Service annotations, in their current `metallb.io/` spelling.
pub mod annotations {
    /// Allocate from the named pool.
    pub const ADDRESS_POOL: &str = "metallb.io/address-pool";
    /// One or two comma-separated IPs (of different families) the Service asks for.
    pub const LOAD_BALANCER_IPS: &str = "metallb.io/loadBalancerIPs";
    /// Sharing key: Services with the same key may share an IP.
    pub const ALLOW_SHARED_IP: &str = "metallb.io/allow-shared-ip";
    /// Written by the controller: the pool the Service's IPs came from.
    pub const IP_ALLOCATED_FROM_POOL: &str = "metallb.io/ip-allocated-from-pool";
    /// The deprecated spelling of the same annotations (`metallb.universe.tf/<name>`), still honoured.
    pub const DEPRECATED_PREFIX: &str = "metallb.universe.tf/";
    /// The current prefix.
    pub const PREFIX: &str = "metallb.io/";
}

/// Labels MetalLB puts on the objects it writes, and labels it reads on Nodes.
pub mod labels {
    /// Node that a ServiceL2Status / ServiceBGPStatus belongs to.
    pub const NODE: &str = "metallb.io/node";
    /// Service name of a ServiceL2Status / ServiceBGPStatus.
    pub const SERVICE_NAME: &str = "metallb.io/service-name";
    /// Service namespace of a ServiceL2Status / ServiceBGPStatus.
    pub const SERVICE_NAMESPACE: &str = "metallb.io/service-namespace";
    /// `controller` or `speaker`, on ConfigurationState objects.
    pub const COMPONENT_TYPE: &str = "metallb.io/component-type";
    /// Node name, on a speaker's ConfigurationState.
    pub const NODE_NAME: &str = "metallb.io/node-name";
    /// Nodes carrying this label are not candidates to announce (unless `--ignore-exclude-lb`).
    pub const EXCLUDE_FROM_EXTERNAL_LB: &str =
        "node.kubernetes.io/exclude-from-external-load-balancers";
}

/// Values of `metallb.io/component-type`.
pub mod component {
    pub const CONTROLLER: &str = "controller";
    pub const SPEAKER: &str = "speaker";
}

/// The BGP backends this project implements. MetalLB's `frr-k8s` and `frr-k8s-external` are not
/// offered: see the README's feature table.
pub const SUPPORTED_BGP_BACKENDS: [&str; 2] = ["native", "frr"];
