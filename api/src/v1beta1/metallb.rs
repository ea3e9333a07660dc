use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// MetalLBSpec defines the desired state of MetalLB: how the operator deploys the controller and
/// the speakers.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "MetalLB",
    root = "MetalLBCrd",
    attr = "doc(hidden)",
    plural = "metallbs",
    namespaced,
    status = "MetalLBStatus",
    doc = "MetalLB is the Schema for the metallbs API: one object, named metallb, in the operator's namespace, deploys and configures MetalLB.",
    printcolumn(
        name = "Available",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Available')].status",
        description = "Available condition status"
    ),
    printcolumn(
        name = "Degraded",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Degraded')].status",
        description = "Degraded condition status"
    ),
    printcolumn(
        name = "Progressing",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Progressing')].status",
        description = "Progressing condition status"
    ),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.version",
        description = "The operator's version"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MetalLBSpec {
    /// image sets the metallb image. Deprecated: The image property has no effect and will be
    /// removed in a future version.
    #[serde(default, rename = "image", skip_serializing_if = "Option::is_none")]
    pub metallb_image: Option<String>,

    /// node selector applied to MetalLB speaker daemonset.
    #[serde(
        default,
        rename = "nodeSelector",
        skip_serializing_if = "Option::is_none"
    )]
    pub speaker_node_selector: Option<BTreeMap<String, String>>,

    /// tolerations is a list of tolerations applied to MetalLB speaker daemonset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_tolerations: Option<Vec<Toleration>>,

    /// Define the verbosity of the controller and the speaker logging. Allowed values are: all,
    /// debug, info, warn, error, none. (default: info)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,

    /// The loadBalancerClass spec attribute that the MetalLB controller should be watching for.
    /// must be a label-style identifier, with an optional prefix such as "internal-vip" or
    /// "example.com/internal-vip". Unprefixed names are reserved for end-users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_class: Option<String>,

    /// node selector applied to MetalLB controller deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_node_selector: Option<BTreeMap<String, String>>,

    /// tolerations is a list of tolerations applied to MetalLB controller deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_tolerations: Option<Vec<Toleration>>,

    /// additional configs to be applied on MetalLB Controller deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_config: Option<Config>,

    /// additional configs to be applied on MetalLB Speaker daemonset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_config: Option<Config>,

    /// The type of BGP implementation deployed with MetalLB: native (built in, the default) or
    /// frr (an FRR sidecar next to each speaker).
    #[serde(
        default,
        rename = "bgpBackend",
        skip_serializing_if = "Option::is_none"
    )]
    pub bgp_backend: Option<String>,

    /// The specific frr-k8s configuration. Accepted for compatibility with MetalLB's operator;
    /// metallb-rs does not deploy frr-k8s, so it has no effect.
    #[serde(
        default,
        rename = "frrk8sConfig",
        skip_serializing_if = "Option::is_none"
    )]
    pub frrk8s_config: Option<FRRK8SConfig>,

    /// SpeakerGratuitousARPInterval is the interval at which the speakers repeat gratuitous ARP /
    /// unsolicited neighbor advertisements for the IPs they announce. Unset or 0: only on
    /// takeover and link changes. When non-zero it must be at least 1s.
    #[serde(
        default,
        rename = "speakerGratuitousARPInterval",
        skip_serializing_if = "Option::is_none"
    )]
    pub speaker_gratuitous_arp_interval: Option<String>,
}

/// The frr-k8s configuration of MetalLB's operator, kept so that its CRs are accepted.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FRRK8SConfig {
    /// A list of cidrs we want always to block for incoming routes
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_block: Option<Vec<String>>,
    /// The namespace frr-k8s is running on in case of frr-k8s external mode
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// When set, BGP secret references are passed to frr-k8s without resolving them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_passthrough: Option<bool>,
}

/// Pod-level settings for the controller or the speakers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// Define priority class name
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Define container runtime configuration class
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<String>,
    /// If specified, the pod's scheduling constraints
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Annotations to be applied to the pods
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Resource Requirements to be applied for the main container of the pods
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// MetalLBStatus defines the observed state of MetalLB.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetalLBStatus {
    /// Conditions show the current state of MetalLB: Available, Progressing, Degraded,
    /// Upgradeable and ConfigMigrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// The generation of the spec the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The version of the operator that wrote this status (semver, such as 0.2.0): the version
    /// every component is rolled out to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What each deployed component runs, read from the app.kubernetes.io/version label of its
    /// pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<ComponentStatus>>,
    /// The rollout step under way (the operator changes the controller and the speakers one after
    /// the other, each once the previous one is healthy); absent when none is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,
}

/// The versions one component runs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// controller or speaker.
    pub name: String,
    /// The oldest version one of its pods runs; absent while no pod runs (or none carries the
    /// version label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// How many of its pods run each version ("unknown" for pods without the version label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_by_version: Option<BTreeMap<String, i32>>,
}

/// One step of a rollout.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// Controller or Speakers.
    pub step: String,
    /// The version the step rolls out.
    pub version: String,
    /// When the step started or last made progress; the step fails when it makes no progress
    /// for the operator's step timeout.
    pub last_progress_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// Pods of the step updated and ready at lastProgressTime.
    #[serde(default)]
    pub progress: i32,
}

object!(MetalLB, MetalLBCrd, MetalLBSpec, MetalLBStatus);
