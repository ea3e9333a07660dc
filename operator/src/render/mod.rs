//! Render: the validated [`Spec`] → the objects to apply. Pure: no client, no clock, no
//! randomness; the same input always gives the same objects, so `metallb-operator render` prints
//! exactly what the operator applies.
//!
//! ```text
//!  MetalLB ──spec::validate──► Spec ──values::from_spec──► Values (JSON)
//!          ──handlebars (manifests/templates)──► YAML ──► Vec<Value> objects
//! ```

mod values;

use handlebars::{Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, ScopedJson};
use serde_json::{Value, json};

use metallb_api::v1beta1::MetalLB;

use crate::spec::{self, Spec};

pub use values::{Images, MANAGED_BY, MANAGED_BY_LABEL, OWNER_LABEL, VERSION_LABEL, Values};

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec asks for something the operator cannot deploy (CEL in the CRD normally prevents
    /// this; an object written before the CRD was updated can still carry it).
    #[error("invalid MetalLB spec: {0}")]
    InvalidSpec(#[from] spec::Invalid),
    #[error("failed to render template {template}: {source}")]
    Template {
        template: &'static str,
        source: Box<RenderError>,
    },
    #[error("failed to parse rendered template {template}: {message}")]
    Yaml {
        template: &'static str,
        message: String,
    },
}

/// The handlebars templates, in apply order: identities first, workloads last.
const TEMPLATES: [(&str, &str); 5] = [
    (
        "serviceaccounts",
        include_str!("../../../manifests/templates/serviceaccounts.yaml.hbs"),
    ),
    (
        "config",
        include_str!("../../../manifests/templates/config.yaml.hbs"),
    ),
    (
        "frr",
        include_str!("../../../manifests/templates/frr.yaml.hbs"),
    ),
    (
        "controller",
        include_str!("../../../manifests/templates/controller.yaml.hbs"),
    ),
    (
        "speaker",
        include_str!("../../../manifests/templates/speaker.yaml.hbs"),
    ),
];

/// What each component may do (exactly what its code needs), and the controller's webhook
/// Service and ValidatingWebhookConfiguration: the components' own canonical files, written for
/// the namespace `metallb-system`, moved to the operator's namespace by [`relocate`]. They are
/// applied after the ServiceAccounts and before the workloads.
const CANONICAL: [(&str, &str, &str); 3] = [
    (
        "controller-rbac",
        "controller",
        include_str!("../../../manifests/controller/rbac.yaml"),
    ),
    (
        "speaker-rbac",
        "speaker",
        include_str!("../../../manifests/speaker/rbac.yaml"),
    ),
    (
        "webhook",
        "controller",
        include_str!("../../../manifests/controller/webhook-configuration.yaml"),
    ),
];

/// The namespace the canonical files are written for.
const CANONICAL_NAMESPACE: &str = metallb_api::constants::DEFAULT_NAMESPACE;

/// Validates `cr` and renders every object for it in `namespace` (the offline `render` command
/// and the install generator; the reconciler validates once and calls [`render_spec`]).
pub fn render(cr: &MetalLB, namespace: &str, images: &Images) -> Result<Vec<Value>, Error> {
    render_spec(&spec::validate(cr)?, namespace, images)
}

/// Renders every object for a validated spec in `namespace`.
pub fn render_spec(spec: &Spec, namespace: &str, images: &Images) -> Result<Vec<Value>, Error> {
    render_values(&Values::from_spec(spec, namespace, images))
}

/// Renders from already computed values.
pub fn render_values(values: &Values) -> Result<Vec<Value>, Error> {
    let hb = engine();
    let data = serde_json::to_value(values).expect("values serialize");
    let mut objects = Vec::new();
    for (name, _) in TEMPLATES {
        if name == "frr" && !values.frr {
            continue;
        }
        if name == "controller" {
            for (file, component, text) in CANONICAL {
                let docs =
                    metallb_api::manifest::documents(file, text).map_err(|e| Error::Yaml {
                        template: file,
                        message: e.to_string(),
                    })?;
                objects.extend(
                    docs.into_iter()
                        .map(|d| relocate(d.value, values, component)),
                );
            }
        }
        let text = hb.render(name, &data).map_err(|e| Error::Template {
            template: name,
            source: Box::new(e),
        })?;
        let docs = metallb_api::manifest::documents(name, &text).map_err(|e| Error::Yaml {
            template: name,
            message: e.to_string(),
        })?;
        objects.extend(docs.into_iter().map(|d| d.value));
    }
    Ok(objects)
}

/// Moves a canonical object to the operator's namespace and gives it the common labels: its
/// namespace, the `metallb-system:` prefix of cluster-scoped names, role references, subjects
/// and webhook Services.
fn relocate(mut obj: Value, values: &Values, component: &str) -> Value {
    let ns = values.namespace.as_str();
    let rename = |v: &mut Value| {
        if let Some(name) = v
            .as_str()
            .and_then(|n| n.strip_prefix(&format!("{CANONICAL_NAMESPACE}:")))
        {
            *v = Value::String(format!("{ns}:{name}"));
        }
    };
    if obj["metadata"].get("namespace").is_some() {
        obj["metadata"]["namespace"] = json!(ns);
    }
    rename(&mut obj["metadata"]["name"]);
    if obj.get("roleRef").is_some() {
        rename(&mut obj["roleRef"]["name"]);
    }
    // `get_mut`, not indexing: indexing a missing key would insert a null field.
    for subject in obj
        .get_mut("subjects")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        subject["namespace"] = json!(ns);
    }
    for webhook in obj
        .get_mut("webhooks")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        webhook["clientConfig"]["service"]["namespace"] = json!(ns);
    }
    let mut labels = serde_json::to_value(&values.labels).expect("labels serialize");
    labels["component"] = json!(component);
    obj["metadata"]["labels"] = labels;
    obj
}

/// Objects as multi-document YAML.
pub fn to_yaml(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| serde_saphyr::to_string(o).expect("JSON values serialize to YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

fn engine() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_helper("json", Box::new(JsonHelper));
    hb.register_helper("merge", Box::new(MergeHelper));
    hb.register_helper("concat", Box::new(ConcatHelper));
    hb.register_helper("string", Box::new(StringHelper));
    for (name, text) in TEMPLATES {
        hb.register_template_string(name, text)
            .expect("templates compile (checked by tests)");
    }
    hb
}

/// `{{json x}}`: the value as compact JSON, which is valid YAML, so no user value can break the
/// document's structure.
struct JsonHelper;
impl HelperDef for JsonHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let v = h.param(0).map(|p| p.value().clone()).unwrap_or(Value::Null);
        Ok(ScopedJson::Derived(Value::String(
            serde_json::to_string(&v).expect("JSON values serialize"),
        )))
    }
}

/// `(merge map key=value ...)`: a copy of the map with the given keys set.
struct MergeHelper;
impl HelperDef for MergeHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let mut base = h
            .param(0)
            .map(|p| p.value().clone())
            .unwrap_or_else(|| json!({}));
        for (k, v) in h.hash() {
            base[*k] = v.value().clone();
        }
        Ok(ScopedJson::Derived(base))
    }
}

/// `(concat a b ...)`: strings joined.
struct ConcatHelper;
impl HelperDef for ConcatHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let s: String = h.params().iter().map(|p| scalar(p.value())).collect();
        Ok(ScopedJson::Derived(Value::String(s)))
    }
}

/// `(string n)`: a number as a string (for env values).
struct StringHelper;
impl HelperDef for StringHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        Ok(ScopedJson::Derived(Value::String(
            h.param(0).map(|p| scalar(p.value())).unwrap_or_default(),
        )))
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
