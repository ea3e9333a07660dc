//! Validating a set of objects as the cluster would: each object against its CRD schema and CEL
//! rules ([`crate::schema`]), as the API server does on create, then the whole set through
//! [`crate::config::parse`], as MetalLB does. Used by `metallb-operator validate` and by the
//! legacy ConfigMap migration before it creates anything.

use serde_json::Value;

use crate::config::{self, Outcome, ParseOptions, Problem, Resources, Severity};
use crate::manifest::{self, Document, Object};

/// Everything found in a set of documents.
#[derive(Debug, Clone)]
pub struct Report {
    /// Schema problems, type problems, notes about ignored objects, then the parser's problems.
    pub problems: Vec<Problem>,
    /// The configuration, when there is no error.
    pub config: Option<config::Config>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }
}

/// Validates documents read from files (see [`manifest::read_path`]).
pub fn validate_documents(docs: &[Document], opts: &ParseOptions) -> Report {
    validate_values(docs.iter().map(|d| &d.value), opts)
}

/// Validates objects given as JSON values.
pub fn validate_values<'a>(
    values: impl IntoIterator<Item = &'a Value>,
    opts: &ParseOptions,
) -> Report {
    let mut problems = Vec::new();
    let mut resources = Resources::default();
    for value in values {
        let (api_version, kind, name) = manifest::identity(value);
        let name = if name.is_empty() {
            "<unnamed>".to_string()
        } else {
            name
        };
        if let Some(schema) = crate::schema::schema_for(&api_version, &kind) {
            let found = crate::schema::check(&kind, &name, schema, value);
            let rejected = found.iter().any(|p| p.severity == Severity::Error);
            problems.extend(found);
            if rejected {
                // The API server would refuse this object: it takes no part in the configuration.
                continue;
            }
        }
        match manifest::object(value) {
            Err(e) => problems.push(Problem::error(&e.kind, &e.name, e.field, e.message)),
            Ok(object) => {
                let described = describe(&object);
                if !resources.add(object)
                    && let Some(note) = described
                {
                    problems.push(Problem::warning(&kind, &name, "kind", note));
                }
            }
        }
    }
    let Outcome {
        config,
        problems: parsed,
    } = config::parse(&resources, opts);
    // A field already rejected by its schema need not be reported again by the parser.
    for p in parsed {
        if !problems
            .iter()
            .any(|q| q.kind == p.kind && q.name == p.name && q.field == p.field)
        {
            problems.push(p);
        }
    }
    Report { config, problems }
}

/// Why an object that is not part of the configuration was skipped, when that is worth saying.
fn describe(object: &Object) -> Option<String> {
    match object {
        Object::MetalLB(_)
        | Object::ServiceL2Status(_)
        | Object::ServiceBGPStatus(_)
        | Object::ConfigurationState(_)
        | Object::ConfigMap(_) => None,
        Object::Other {
            api_version, kind, ..
        } => Some(format!(
            "{api_version} {kind} is not a MetalLB object, nor one MetalLB reads: ignored"
        )),
        _ => None,
    }
}
