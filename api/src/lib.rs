//! The `metallb.io` API shared by every metallb-rs component: the CRD types, the constants, and
//! the one parser that turns a set of MetalLB objects into a validated configuration.
//!
//! ```text
//!  YAML / API objects ──► v1beta1, v1beta2 types ──► config::parse ──► Config
//!                               │                         (every rule, once)
//!                               └──► crd (generated CRDs: schema, defaults, CEL)
//! ```
//!
//! This crate needs no Kubernetes client and does no I/O: the webhooks, the controller, the
//! speaker, the operator and the offline `validate` command all call into it.
#![forbid(unsafe_code)]

/// Declares the public root type of a kind next to the root kube's derive generates for the CRD.
///
/// kube's derive makes `spec` a required field of the root, so an object without `spec` fails to
/// deserialize. MetalLB's documentation writes `L2Advertisement`s with no spec at all ("announce
/// every pool"), and the API server stores them that way; our root therefore takes a missing
/// `spec` (and `metadata`) as empty. The derived `*Crd` root is used only to generate the CRD.
macro_rules! object {
    ($root:ident, $crd:ident, $spec:ty, $status:ty) => {
        #[doc = concat!("A `", stringify!($root), "` object: metadata, spec and status.")]
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct $root {
            pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            pub spec: $spec,
            pub status: Option<$status>,
        }

        impl $root {
            /// A new object with a name and a spec.
            pub fn new(name: &str, spec: $spec) -> Self {
                Self {
                    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                        name: Some(name.to_string()),
                        ..Default::default()
                    },
                    spec,
                    status: None,
                }
            }

            /// The CustomResourceDefinition of this kind (one version).
            pub fn crd() -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
                <$crd as kube::CustomResourceExt>::crd()
            }
        }

        impl kube::Resource for $root {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                <$crd as kube::Resource>::kind(&())
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                <$crd as kube::Resource>::group(&())
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                <$crd as kube::Resource>::version(&())
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                <$crd as kube::Resource>::plural(&())
            }
            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }

        impl kube::core::object::HasSpec for $root {
            type Spec = $spec;
            fn spec(&self) -> &$spec {
                &self.spec
            }
            fn spec_mut(&mut self) -> &mut $spec {
                &mut self.spec
            }
        }

        impl kube::core::object::HasStatus for $root {
            type Status = $status;
            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn status_mut(&mut self) -> &mut Option<$status> {
                &mut self.status
            }
        }

        impl serde::Serialize for $root {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                use kube::Resource;
                let mut st = serializer.serialize_struct(stringify!($root), 5)?;
                st.serialize_field("apiVersion", &Self::api_version(&()))?;
                st.serialize_field("kind", &Self::kind(&()))?;
                st.serialize_field("metadata", &self.metadata)?;
                st.serialize_field("spec", &self.spec)?;
                if let Some(status) = &self.status {
                    st.serialize_field("status", status)?;
                }
                st.end()
            }
        }

        impl<'de> serde::Deserialize<'de> for $root {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                #[derive(serde::Deserialize)]
                struct Raw {
                    #[serde(default)]
                    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
                    #[serde(default)]
                    spec: $spec,
                    #[serde(default)]
                    status: Option<$status>,
                }
                let raw = Raw::deserialize(deserializer)?;
                Ok(Self { metadata: raw.metadata, spec: raw.spec, status: raw.status })
            }
        }
    };
}

pub mod community;
pub mod config;
pub mod configstate;
pub mod constants;
pub mod conversion;
pub mod crd;
pub mod duration;
pub mod legacy;
pub mod manifest;
pub mod net;
pub mod schema;
pub mod selector;
pub mod service;
pub mod v1beta1;
pub mod v1beta2;
pub mod validate;

/// The SHA-256 of `text`, in lowercase hex: how the speaker matches FRR reloads, the operator
/// marks what it applied, and the legacy migration records the converted configuration.
pub fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
