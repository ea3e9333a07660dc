//! Reading Kubernetes YAML: multi-document files (and `kind: List`) into typed objects, keeping
//! where each document came from, so errors can name the file and line.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Secret};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::Resources;
use crate::{v1beta1, v1beta2};

/// Where a document starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    /// 1-based line of the document's first line.
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A YAML document that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Yaml {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}: {message}")]
    Shape { origin: Origin, message: String },
}

/// One document: its JSON value and where it starts.
#[derive(Debug, Clone)]
pub struct Document {
    pub origin: Origin,
    pub value: Value,
}

/// Splits a YAML stream into documents. Empty documents (only comments, or `---` twice) are
/// skipped; `kind: List` documents are expanded into their items.
pub fn documents(file: &str, text: &str) -> Result<Vec<Document>, ReadError> {
    let mut out = Vec::new();
    for (start_line, chunk) in split_yaml(text) {
        let value: Value = serde_saphyr::from_str(&chunk).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line() as usize, l.column() as usize))
                .unwrap_or((1, 1));
            let message = e.without_snippet().to_string();
            let message = message
                .rsplit_once(" at line ")
                .map(|(m, _)| m.to_string())
                .unwrap_or(message);
            ReadError::Yaml {
                file: file.to_string(),
                line: start_line + line - 1,
                column,
                message,
            }
        })?;
        let origin = Origin {
            file: file.to_string(),
            line: start_line,
        };
        match value {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                let items = map
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                out.extend(items.into_iter().map(|value| Document {
                    origin: origin.clone(),
                    value,
                }));
            }
            Value::Object(_) => out.push(Document { origin, value }),
            other => {
                return Err(ReadError::Shape {
                    origin,
                    message: format!(
                        "expected a Kubernetes object (a mapping), found {}",
                        json_type(&other)
                    ),
                });
            }
        }
    }
    Ok(out)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Splits on `---` document markers at the start of a line, returning each document's text and
/// its 1-based first line. `...` ends a document.
fn split_yaml(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_marker || line == "..." {
            if !current.trim().is_empty() {
                docs.push((start, std::mem::take(&mut current)));
            }
            current.clear();
            start = i + 2;
            if let Some(rest) = line
                .strip_prefix("---")
                .map(str::trim)
                .filter(|r| !r.is_empty() && !r.starts_with('#'))
            {
                // `--- {inline: document}` starts a document on the marker line.
                current.push_str(rest);
                current.push('\n');
                start = i + 1;
            }
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        docs.push((start, current));
    }
    docs
}

/// Reads every document of a file, a directory (its `.yaml`, `.yml` and `.json` files, sorted,
/// not recursive), or `-` for standard input.
pub fn read_path(path: &str) -> Result<Vec<Document>, ReadError> {
    let io = |p: &Path, source| ReadError::Io {
        path: p.display().to_string(),
        source,
    };
    if path == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| io(Path::new("<stdin>"), e))?;
        return documents("<stdin>", &text);
    }
    let p = Path::new(path);
    let meta = std::fs::metadata(p).map_err(|e| io(p, e))?;
    let files: Vec<PathBuf> = if meta.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| io(p, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| {
                f.extension()
                    .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
            })
            .collect();
        files.sort();
        files
    } else {
        vec![p.to_path_buf()]
    };
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| io(&f, e))?;
        out.extend(documents(&f.display().to_string(), &text)?);
    }
    Ok(out)
}

/// A Kubernetes object this project understands.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Object {
    IPAddressPool(v1beta1::IPAddressPool),
    L2Advertisement(v1beta1::L2Advertisement),
    BGPAdvertisement(v1beta1::BGPAdvertisement),
    BGPPeerV1beta1(v1beta1::BGPPeer),
    BGPPeer(v1beta2::BGPPeer),
    BFDProfile(v1beta1::BFDProfile),
    Community(v1beta1::Community),
    ServiceL2Status(v1beta1::ServiceL2Status),
    ServiceBGPStatus(v1beta1::ServiceBGPStatus),
    ConfigurationState(v1beta1::ConfigurationState),
    MetalLB(v1beta1::MetalLB),
    Secret(Secret),
    Node(Node),
    Namespace(Namespace),
    ConfigMap(ConfigMap),
    /// Any other kind: kept so callers can report or skip it.
    Other {
        api_version: String,
        kind: String,
        name: String,
    },
}

/// A document's value did not fit its kind's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    pub kind: String,
    pub name: String,
    /// JSON path of the offending field.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for TypeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}: {}: {}",
            self.kind, self.name, self.field, self.message
        )
    }
}

/// `apiVersion`, `kind` and `metadata.name` of a document, with empty strings when missing.
pub fn identity(value: &Value) -> (String, String, String) {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    (
        s(value.get("apiVersion")),
        s(value.get("kind")),
        s(value.pointer("/metadata/name")),
    )
}

fn typed<T: DeserializeOwned>(value: &Value, kind: &str, name: &str) -> Result<T, TypeError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        TypeError {
            kind: kind.to_string(),
            name: name.to_string(),
            field,
            message: e.into_inner().to_string(),
        }
    })
}

/// Converts a document into a typed object, according to its `apiVersion` and `kind`.
pub fn object(value: &Value) -> Result<Object, TypeError> {
    let (api_version, kind, name) = identity(value);
    let k = kind.as_str();
    let n = name.as_str();
    let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
    Ok(match (group, api_version.as_str(), k) {
        ("metallb.io", "metallb.io/v1beta1", "IPAddressPool") => {
            Object::IPAddressPool(typed(value, k, n)?)
        }
        ("metallb.io", "metallb.io/v1beta1", "L2Advertisement") => {
            Object::L2Advertisement(typed(value, k, n)?)
        }
        ("metallb.io", "metallb.io/v1beta1", "BGPAdvertisement") => {
            Object::BGPAdvertisement(typed(value, k, n)?)
        }
        ("metallb.io", "metallb.io/v1beta1", "BGPPeer") => {
            Object::BGPPeerV1beta1(typed(value, k, n)?)
        }
        ("metallb.io", "metallb.io/v1beta2", "BGPPeer") => Object::BGPPeer(typed(value, k, n)?),
        ("metallb.io", "metallb.io/v1beta1", "BFDProfile") => {
            Object::BFDProfile(typed(value, k, n)?)
        }
        ("metallb.io", "metallb.io/v1beta1", "Community") => Object::Community(typed(value, k, n)?),
        ("metallb.io", "metallb.io/v1beta1", "ServiceL2Status") => {
            Object::ServiceL2Status(typed(value, k, n)?)
        }
        ("metallb.io", "metallb.io/v1beta1", "ServiceBGPStatus") => {
            Object::ServiceBGPStatus(typed(value, k, n)?)
        }
        ("metallb.io", "metallb.io/v1beta1", "ConfigurationState") => {
            Object::ConfigurationState(typed(value, k, n)?)
        }
        ("metallb.io", "metallb.io/v1beta1", "MetalLB") => Object::MetalLB(typed(value, k, n)?),
        ("", "v1", "Secret") => Object::Secret(typed(value, k, n)?),
        ("", "v1", "Node") => Object::Node(typed(value, k, n)?),
        ("", "v1", "Namespace") => Object::Namespace(typed(value, k, n)?),
        ("", "v1", "ConfigMap") => Object::ConfigMap(typed(value, k, n)?),
        _ => Object::Other {
            api_version,
            kind,
            name,
        },
    })
}

use crate::constants::names::BGP_EXTRAS_CONFIGMAP;

impl Resources {
    /// Adds an object to the set [`crate::config::parse`] reads. Returns false for objects that
    /// play no part in the configuration (statuses, the MetalLB CR, other kinds).
    pub fn add(&mut self, object: Object) -> bool {
        match object {
            Object::IPAddressPool(o) => self.pools.push(o),
            Object::L2Advertisement(o) => self.l2_advertisements.push(o),
            Object::BGPAdvertisement(o) => self.bgp_advertisements.push(o),
            Object::BGPPeerV1beta1(o) => self.peers.push(crate::conversion::peer_to_v1beta2(&o)),
            Object::BGPPeer(o) => self.peers.push(o),
            Object::BFDProfile(o) => self.bfd_profiles.push(o),
            Object::Community(o) => self.communities.push(o),
            Object::Secret(o) => self.secrets.push(o),
            Object::Node(o) => self.nodes.push(o),
            Object::Namespace(o) => self.namespaces.push(o),
            Object::ConfigMap(o) if o.metadata.name.as_deref() == Some(BGP_EXTRAS_CONFIGMAP) => {
                self.bgp_extras = o.data.as_ref().and_then(|d| d.get("extras").cloned());
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_first_line_and_lists_expand() {
        let text = "# leading comment\n---\nkind: A\n---\n# empty\n---\nkind: List\nitems:\n- kind: B\n- kind: C\n";
        let docs = documents("f.yaml", text).unwrap();
        let kinds: Vec<_> = docs
            .iter()
            .map(|d| (d.value["kind"].as_str().unwrap().to_string(), d.origin.line))
            .collect();
        assert_eq!(
            kinds,
            vec![("A".into(), 3), ("B".into(), 7), ("C".into(), 7)]
        );
    }

    #[test]
    fn yaml_errors_name_the_file_line_and_column() {
        let text = "kind: A\n---\nkind: B\nspec: [x\nother: 1\n";
        let err = documents("cfg.yaml", text).unwrap_err().to_string();
        assert!(err.starts_with("cfg.yaml:5:"), "{err}");
    }

    #[test]
    fn type_errors_name_the_field() {
        let v: Value = serde_saphyr::from_str(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\nspec: {myASN: not-a-number}\n",
        )
        .unwrap();
        let err = object(&v).unwrap_err();
        assert_eq!(
            (err.kind.as_str(), err.name.as_str(), err.field.as_str()),
            ("BGPPeer", "p", "spec.myASN")
        );
    }
}
