use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// ConfigurationState is a status-only object that reports whether a component (the controller,
/// or the speaker of one node) accepted the current MetalLB configuration. MetalLB's object has no
/// spec; ours carries an empty one because kube's derive needs a spec type, and it stays empty.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "ConfigurationState",
    root = "ConfigurationStateCrd",
    attr = "doc(hidden)",
    plural = "configurationstates",
    namespaced,
    status = "ConfigurationStateStatus",
    doc = "ConfigurationState is a status-only CRD that reports configuration validation results from MetalLB components.",
    printcolumn(name = "Result", type_ = "string", json_path = ".status.result"),
    printcolumn(
        name = "ErrorSummary",
        type_ = "string",
        json_path = ".status.errorSummary"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct ConfigurationStateSpec {}

/// ConfigurationStateStatus defines the observed state of ConfigurationState.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationStateStatus {
    /// Result is Valid, Invalid or Unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// ErrorSummary holds the messages of the failing conditions, one per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_summary: Option<String>,
    /// Conditions contains the status conditions from the reconcilers running in this component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

/// The values of `status.result`.
pub mod result {
    pub const VALID: &str = "Valid";
    pub const INVALID: &str = "Invalid";
    pub const UNKNOWN: &str = "Unknown";
}

object!(
    ConfigurationState,
    ConfigurationStateCrd,
    ConfigurationStateSpec,
    ConfigurationStateStatus
);
