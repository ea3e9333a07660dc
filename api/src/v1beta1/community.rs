use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// CommunitySpec defines the desired state of Community.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "Community",
    root = "CommunityCrd",
    attr = "doc(hidden)",
    plural = "communities",
    namespaced,
    status = "CommunityStatus",
    doc = "Community is a collection of aliases for communities. Users can define named aliases to be used in the BGPAdvertisement CRD."
)]
#[serde(rename_all = "camelCase")]
pub struct CommunitySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communities: Option<Vec<CommunityAlias>>,
}

/// A named BGP community value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct CommunityAlias {
    /// The name of the alias for the community.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The BGP community value corresponding to the given name. Can be a standard community of
    /// the form 1234:1234 or a large community of the form large:1234:1234:1234.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// CommunityStatus defines the observed state of Community.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct CommunityStatus {}

object!(Community, CommunityCrd, CommunitySpec, CommunityStatus);
