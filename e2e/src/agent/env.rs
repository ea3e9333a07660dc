//! Container environment and downward-API values, as the kubelet computes them.
//!
//! [`field_value`] and [`expand`] are pure; [`container_env`] reads referenced Secrets and
//! ConfigMaps through the API.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::{Api, Client};

use crate::topology::{API_SERVER_PORT, API_SERVER_V4};

/// Why an environment could not be built (the container waits, like the kubelet's
/// `CreateContainerConfigError`).
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("failed to get {kind} {namespace}/{name}: {source}")]
    Get {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("{kind} {name} has no key {key}")]
    MissingKey {
        kind: &'static str,
        name: String,
        key: String,
    },
    #[error("unsupported fieldRef {0}")]
    Field(String),
}

/// The addresses a pod's downward-API fields report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodAddresses {
    pub pod_ips: Vec<IpAddr>,
    pub host_ips: Vec<IpAddr>,
}

fn join_ips(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The value of a downward-API `fieldRef.fieldPath`, or `None` if unsupported.
pub fn field_value(pod: &Pod, path: &str, addrs: &PodAddresses) -> Option<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let map_entry = |map: Option<&BTreeMap<String, String>>, prefix: &str| -> Option<String> {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "metadata.labels" => Some(format_map(meta.labels.as_ref())),
        "metadata.annotations" => Some(format_map(meta.annotations.as_ref())),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.podIP" => Some(
            addrs
                .pod_ips
                .first()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        "status.podIPs" => Some(join_ips(&addrs.pod_ips)),
        "status.hostIP" => Some(
            addrs
                .host_ips
                .first()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        "status.hostIPs" => Some(join_ips(&addrs.host_ips)),
        _ if path.starts_with("metadata.labels['") => {
            map_entry(meta.labels.as_ref(), "metadata.labels['")
        }
        _ if path.starts_with("metadata.annotations['") => {
            map_entry(meta.annotations.as_ref(), "metadata.annotations['")
        }
        _ => None,
    }
}

/// `key="value"` lines, the downward-API volume format for labels and annotations.
fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v:?}\n"))
        .collect()
}

/// Expands `$(VAR)` references from `vars`; `$$(VAR)` escapes to the literal `$(VAR)`;
/// unknown references stay as written (Kubernetes semantics).
pub fn expand(input: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(escaped) = after.strip_prefix('$') {
            out.push('$');
            rest = escaped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match vars.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Variables every container gets before its own `envFrom` and `env`.
pub fn base_env(pod: &Pod, hostname: &str) -> Vec<(String, String)> {
    let _ = pod;
    vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), "/root".into()),
        ("HOSTNAME".into(), hostname.into()),
        // In-cluster clients reach the API server directly on the management network.
        ("KUBERNETES_SERVICE_HOST".into(), API_SERVER_V4.to_string()),
        (
            "KUBERNETES_SERVICE_PORT".into(),
            API_SERVER_PORT.to_string(),
        ),
        (
            "KUBERNETES_SERVICE_PORT_HTTPS".into(),
            API_SERVER_PORT.to_string(),
        ),
    ]
}

async fn get_secret(client: &Client, ns: &str, name: &str) -> Result<Option<Secret>, EnvError> {
    Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|source| EnvError::Get {
            kind: "Secret",
            namespace: ns.into(),
            name: name.into(),
            source,
        })
}

async fn get_config_map(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<Option<ConfigMap>, EnvError> {
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|source| EnvError::Get {
            kind: "ConfigMap",
            namespace: ns.into(),
            name: name.into(),
            source,
        })
}

fn missing(kind: &'static str, name: &str, key: &str) -> EnvError {
    EnvError::MissingKey {
        kind,
        name: name.into(),
        key: key.into(),
    }
}

/// The full environment of `container`, in order (later entries win).
pub async fn container_env(
    client: &Client,
    pod: &Pod,
    container: &Container,
    addrs: &PodAddresses,
    hostname: &str,
) -> Result<Vec<(String, String)>, EnvError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut ordered: Vec<(String, String)> = Vec::new();
    let mut set = |k: String, v: String, vars: &mut BTreeMap<String, String>| {
        vars.insert(k.clone(), v.clone());
        ordered.push((k, v));
    };
    for (k, v) in base_env(pod, hostname) {
        set(k, v, &mut vars);
    }
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match get_config_map(client, &ns, &r.name).await? {
                Some(cm) => {
                    for (k, v) in cm.data.unwrap_or_default() {
                        set(format!("{prefix}{k}"), v, &mut vars);
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(missing("ConfigMap", &r.name, "*")),
            }
        }
        if let Some(r) = &from.secret_ref {
            match get_secret(client, &ns, &r.name).await? {
                Some(s) => {
                    for (k, v) in s.data.unwrap_or_default() {
                        set(
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                            &mut vars,
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(missing("Secret", &r.name, "*")),
            }
        }
    }
    for env in container.env.iter().flatten() {
        let value = if let Some(value) = &env.value {
            expand(value, &vars)
        } else if let Some(from) = &env.value_from {
            if let Some(f) = &from.field_ref {
                field_value(pod, &f.field_path, addrs)
                    .ok_or_else(|| EnvError::Field(f.field_path.clone()))?
            } else if let Some(r) = &from.secret_key_ref {
                let secret = get_secret(client, &ns, &r.name).await?;
                match secret
                    .and_then(|s| s.data)
                    .and_then(|d| d.get(&r.key).cloned())
                {
                    Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                    None if r.optional == Some(true) => continue,
                    None => return Err(missing("Secret", &r.name, &r.key)),
                }
            } else if let Some(r) = &from.config_map_key_ref {
                let cm = get_config_map(client, &ns, &r.name).await?;
                match cm.and_then(|c| c.data).and_then(|d| d.get(&r.key).cloned()) {
                    Some(v) => v,
                    None if r.optional == Some(true) => continue,
                    None => return Err(missing("ConfigMap", &r.name, &r.key)),
                }
            } else if let Some(r) = &from.resource_field_ref {
                tracing::info!(variable = %env.name, resource = %r.resource, "resourceFieldRef is not supported; the variable is left empty");
                String::new()
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        set(env.name.clone(), value, &mut vars);
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn pod() -> Pod {
        serde_saphyr::from_str(
            r#"
metadata:
  name: web-1
  namespace: blue
  uid: 1234
  labels: {app: web, tier: front}
spec:
  nodeName: node-2
  serviceAccountName: web
  containers: [{name: c, image: localhost/echo}]
"#,
        )
        .unwrap()
    }

    fn addrs() -> PodAddresses {
        PodAddresses {
            pod_ips: vec![
                "203.0.113.81".parse().unwrap(),
                "2001:db8:0:202::1".parse().unwrap(),
            ],
            host_ips: vec![
                "192.0.2.12".parse().unwrap(),
                "2001:db8:0:1::12".parse().unwrap(),
            ],
        }
    }

    #[test]
    fn downward_fields_resolve_like_the_kubelet() {
        let p = pod();
        let a = addrs();
        let get = |path: &str| field_value(&p, path, &a);
        assert_eq!(get("metadata.name").as_deref(), Some("web-1"));
        assert_eq!(get("metadata.namespace").as_deref(), Some("blue"));
        assert_eq!(get("metadata.uid").as_deref(), Some("1234"));
        assert_eq!(get("spec.nodeName").as_deref(), Some("node-2"));
        assert_eq!(get("spec.serviceAccountName").as_deref(), Some("web"));
        assert_eq!(get("status.podIP").as_deref(), Some("203.0.113.81"));
        assert_eq!(
            get("status.podIPs").as_deref(),
            Some("203.0.113.81,2001:db8:0:202::1")
        );
        assert_eq!(get("status.hostIP").as_deref(), Some("192.0.2.12"));
        assert_eq!(
            get("status.hostIPs").as_deref(),
            Some("192.0.2.12,2001:db8:0:1::12")
        );
        assert_eq!(get("metadata.labels['tier']").as_deref(), Some("front"));
        assert_eq!(
            get("metadata.labels").as_deref(),
            Some("app=\"web\"\ntier=\"front\"\n")
        );
        assert_eq!(get("spec.unknown"), None);
    }

    #[test]
    fn expand_replaces_known_references_and_keeps_the_rest() {
        let vars = BTreeMap::from([
            ("A".to_string(), "1".to_string()),
            ("NODE".to_string(), "node-1".to_string()),
        ]);
        assert_eq!(
            expand("--node=$(NODE) $(A)$(A) $(MISSING) $$(A) $ x", &vars),
            "--node=node-1 11 $(MISSING) $(A) $ x"
        );
    }
}
