//! Pod volumes materialised as directories under `.local/pods/<node>/<uid>/volumes/<name>`,
//! and the bind mounts that put them at each container's mount paths.
//!
//! Supported: `secret`, `configMap`, `emptyDir`, `downwardAPI`, `hostPath`, and `projected`
//! (secret, configMap, downwardAPI and `serviceAccountToken` sources: a bound token from the
//! TokenRequest API, which is how the ServiceAccount admission plugin's
//! `kube-api-access-*` volume reaches `/var/run/secrets/kubernetes.io/serviceaccount`).
//! [`Volumes::sync`] rewrites changed files in place (write to a temporary file, rename), so
//! programs see Secret and ConfigMap updates through their directory mounts within seconds;
//! as with the kubelet, `subPath` mounts of a single file do not see updates.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccount, Volume,
};
use kube::api::PostParams;
use kube::{Api, Client};

use super::env::{PodAddresses, field_value};

/// Why a volume could not be prepared (the pod stays in `ContainerCreating`).
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("failed to get {kind} {name}: {source}")]
    Get {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("{kind} {name} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name} has no key {key}")]
    MissingKey {
        kind: &'static str,
        name: String,
        key: String,
    },
    #[error("failed to request a token for service account {name}: {source}")]
    Token {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("volume {0} has an unsupported type")]
    Unsupported(String),
    #[error("container mounts volume {0}, which the pod does not define")]
    Undefined(String),
    #[error("invalid path {0} in a volume")]
    BadPath(String),
}

/// One file of a volume: contents and mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// A cached service-account token.
struct Token {
    value: String,
    fetched: Instant,
    lifetime: Duration,
}

/// The volumes of one pod.
pub struct Volumes {
    root: PathBuf,
    client: Client,
    tokens: HashMap<String, Token>,
}

/// A bind mount for a container: `source` (a file or directory on the machine) at `target`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

const DEFAULT_MODE: u32 = 0o644;

impl Volumes {
    /// Volumes of a pod, kept in `root` (`.local/pods/<node>/<uid>/volumes`).
    pub fn new(root: PathBuf, client: Client) -> Self {
        Self {
            root,
            client,
            tokens: HashMap::new(),
        }
    }

    pub fn dir(&self, volume: &str) -> PathBuf {
        self.root.join(volume)
    }

    /// Creates or refreshes every volume of `pod`.
    pub async fn sync(&mut self, pod: &Pod, addrs: &PodAddresses) -> Result<(), VolumeError> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let volumes = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        for volume in &volumes {
            let dir = self.dir(&volume.name);
            std::fs::create_dir_all(&dir).map_err(|source| VolumeError::Write {
                path: dir.clone(),
                source,
            })?;
            if volume.empty_dir.is_some() || volume.host_path.is_some() {
                continue;
            }
            let files = self.files(pod, &ns, volume, addrs).await?;
            write_files(&dir, &files)?;
        }
        Ok(())
    }

    /// The desired files of a content volume (secret, configMap, downwardAPI, projected).
    async fn files(
        &mut self,
        pod: &Pod,
        ns: &str,
        volume: &Volume,
        addrs: &PodAddresses,
    ) -> Result<BTreeMap<String, File>, VolumeError> {
        let mut files = BTreeMap::new();
        if let Some(s) = &volume.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let mode = mode_or(s.default_mode, DEFAULT_MODE);
            self.secret_files(ns, &name, s.items.as_deref(), s.optional, mode, &mut files)
                .await?;
        } else if let Some(c) = &volume.config_map {
            let mode = mode_or(c.default_mode, DEFAULT_MODE);
            self.config_map_files(
                ns,
                &c.name,
                c.items.as_deref(),
                c.optional,
                mode,
                &mut files,
            )
            .await?;
        } else if let Some(d) = &volume.downward_api {
            let mode = mode_or(d.default_mode, DEFAULT_MODE);
            downward_files(
                pod,
                d.items.as_deref().unwrap_or_default(),
                mode,
                addrs,
                &mut files,
            );
        } else if let Some(p) = &volume.projected {
            let mode = mode_or(p.default_mode, DEFAULT_MODE);
            for (i, source) in p.sources.iter().flatten().enumerate() {
                if let Some(s) = &source.secret {
                    self.secret_files(
                        ns,
                        &s.name,
                        s.items.as_deref(),
                        s.optional,
                        mode,
                        &mut files,
                    )
                    .await?;
                }
                if let Some(c) = &source.config_map {
                    self.config_map_files(
                        ns,
                        &c.name,
                        c.items.as_deref(),
                        c.optional,
                        mode,
                        &mut files,
                    )
                    .await?;
                }
                if let Some(d) = &source.downward_api {
                    downward_files(
                        pod,
                        d.items.as_deref().unwrap_or_default(),
                        mode,
                        addrs,
                        &mut files,
                    );
                }
                if let Some(t) = &source.service_account_token {
                    let key = format!("{}/{i}", volume.name);
                    let token = self
                        .token(
                            pod,
                            &key,
                            t.audience.clone(),
                            t.expiration_seconds.unwrap_or(3600),
                        )
                        .await?;
                    files.insert(
                        t.path.clone(),
                        File {
                            data: token.into_bytes(),
                            mode,
                        },
                    );
                }
            }
        } else {
            return Err(VolumeError::Unsupported(volume.name.clone()));
        }
        Ok(files)
    }

    async fn secret_files(
        &self,
        ns: &str,
        name: &str,
        items: Option<&[KeyToPath]>,
        optional: Option<bool>,
        mode: u32,
        files: &mut BTreeMap<String, File>,
    ) -> Result<(), VolumeError> {
        let secret = Api::<Secret>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
            .map_err(|source| VolumeError::Get {
                kind: "Secret",
                name: name.into(),
                source,
            })?;
        let Some(secret) = secret else {
            return if optional == Some(true) {
                Ok(())
            } else {
                Err(VolumeError::NotFound {
                    kind: "Secret",
                    name: name.into(),
                })
            };
        };
        let data: BTreeMap<String, Vec<u8>> = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        select_keys("Secret", name, &data, items, optional, mode, files)
    }

    async fn config_map_files(
        &self,
        ns: &str,
        name: &str,
        items: Option<&[KeyToPath]>,
        optional: Option<bool>,
        mode: u32,
        files: &mut BTreeMap<String, File>,
    ) -> Result<(), VolumeError> {
        let cm = Api::<ConfigMap>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
            .map_err(|source| VolumeError::Get {
                kind: "ConfigMap",
                name: name.into(),
                source,
            })?;
        let Some(cm) = cm else {
            return if optional == Some(true) {
                Ok(())
            } else {
                Err(VolumeError::NotFound {
                    kind: "ConfigMap",
                    name: name.into(),
                })
            };
        };
        let mut data: BTreeMap<String, Vec<u8>> = cm
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect();
        data.extend(
            cm.binary_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0)),
        );
        select_keys("ConfigMap", name, &data, items, optional, mode, files)
    }

    /// A bound token for the pod's service account, refreshed after 80% of its lifetime
    /// (what the kubelet does).
    async fn token(
        &mut self,
        pod: &Pod,
        key: &str,
        audience: Option<String>,
        expiration_seconds: i64,
    ) -> Result<String, VolumeError> {
        if let Some(t) = self.tokens.get(key)
            && t.fetched.elapsed() < t.lifetime.mul_f64(0.8)
        {
            return Ok(t.value.clone());
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audience.into_iter().collect(),
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..Default::default()
        };
        let response = Api::<ServiceAccount>::namespaced(self.client.clone(), &ns)
            .create_token_request(&sa, &PostParams::default(), &request)
            .await
            .map_err(|source| VolumeError::Token {
                name: format!("{ns}/{sa}"),
                source,
            })?;
        let value = response.status.map(|s| s.token).unwrap_or_default();
        self.tokens.insert(
            key.to_string(),
            Token {
                value: value.clone(),
                fetched: Instant::now(),
                lifetime: Duration::from_secs(
                    u64::try_from(expiration_seconds.max(600)).unwrap_or(3600),
                ),
            },
        );
        Ok(value)
    }

    /// The bind mounts of `container`, parents before children.
    pub fn mounts(&self, pod: &Pod, container: &Container) -> Result<Vec<Mount>, VolumeError> {
        let volumes = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        let mut mounts = Vec::new();
        for m in container.volume_mounts.iter().flatten() {
            let volume = volumes
                .iter()
                .find(|v| v.name == m.name)
                .ok_or_else(|| VolumeError::Undefined(m.name.clone()))?;
            let base = match &volume.host_path {
                Some(h) => PathBuf::from(&h.path),
                None => self.dir(&volume.name),
            };
            let source = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                Some(sub) => {
                    let rel = safe_relative(sub)?;
                    let path = base.join(rel);
                    // Like the kubelet, a missing subPath of a writable volume is created as
                    // a directory.
                    if !path.exists() {
                        std::fs::create_dir_all(&path).map_err(|source| VolumeError::Write {
                            path: path.clone(),
                            source,
                        })?;
                    }
                    path
                }
                None => base,
            };
            mounts.push(Mount {
                source,
                target: PathBuf::from(&m.mount_path),
                read_only: m.read_only == Some(true),
            });
        }
        mounts.sort_by_key(|m| m.target.components().count());
        Ok(mounts)
    }
}

fn mode_or(mode: Option<i32>, default: u32) -> u32 {
    mode.and_then(|m| u32::try_from(m).ok()).unwrap_or(default) & 0o7777
}

fn select_keys(
    kind: &'static str,
    name: &str,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    mode: u32,
    files: &mut BTreeMap<String, File>,
) -> Result<(), VolumeError> {
    match items {
        Some(items) => {
            for item in items {
                match data.get(&item.key) {
                    Some(v) => {
                        files.insert(
                            item.path.clone(),
                            File {
                                data: v.clone(),
                                mode: mode_or(item.mode, mode),
                            },
                        );
                    }
                    None if optional == Some(true) => {}
                    None => {
                        return Err(VolumeError::MissingKey {
                            kind,
                            name: name.into(),
                            key: item.key.clone(),
                        });
                    }
                }
            }
        }
        None => {
            for (k, v) in data {
                files.insert(
                    k.clone(),
                    File {
                        data: v.clone(),
                        mode,
                    },
                );
            }
        }
    }
    Ok(())
}

fn downward_files(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    mode: u32,
    addrs: &PodAddresses,
    files: &mut BTreeMap<String, File>,
) {
    for item in items {
        let value = match (&item.field_ref, &item.resource_field_ref) {
            (Some(f), _) => field_value(pod, &f.field_path, addrs).unwrap_or_default(),
            (None, Some(r)) => {
                tracing::info!(resource = %r.resource, "resourceFieldRef is not supported; the file is left empty");
                String::new()
            }
            (None, None) => String::new(),
        };
        files.insert(
            item.path.clone(),
            File {
                data: value.into_bytes(),
                mode: mode_or(item.mode, mode),
            },
        );
    }
}

/// A relative path that stays inside its volume.
fn safe_relative(path: &str) -> Result<PathBuf, VolumeError> {
    let p = Path::new(path);
    if p.components().all(|c| matches!(c, Component::Normal(_))) {
        Ok(p.to_path_buf())
    } else {
        Err(VolumeError::BadPath(path.to_string()))
    }
}

/// Makes `dir` hold exactly `files`: changed files are replaced atomically (temporary file
/// and rename), unchanged ones are left alone, files no longer wanted are removed.
pub fn write_files(dir: &Path, files: &BTreeMap<String, File>) -> Result<(), VolumeError> {
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| VolumeError::Write { path, source }
    };
    let mut wanted = BTreeSet::new();
    for (rel, file) in files {
        let rel = safe_relative(rel)?;
        let path = dir.join(&rel);
        wanted.insert(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(werr(parent))?;
        }
        let same = std::fs::read(&path).is_ok_and(|old| old == file.data)
            && std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o7777 == file.mode);
        if same {
            continue;
        }
        let tmp = path.with_file_name(format!(
            ".{}.tmp",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        std::fs::write(&tmp, &file.data).map_err(werr(&tmp))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(file.mode))
            .map_err(werr(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(werr(&path))?;
    }
    remove_unwanted(dir, dir, &wanted);
    Ok(())
}

fn remove_unwanted(root: &Path, dir: &Path, wanted: &BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        if path.is_dir() {
            remove_unwanted(root, &path, wanted);
            if !wanted.iter().any(|w| w.starts_with(&rel)) {
                let _ = std::fs::remove_dir(&path);
            }
        } else if !wanted.contains(&rel) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_files_replaces_changed_and_removes_stale_files() {
        let dir = std::env::temp_dir().join(format!("mlb-volumes-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut files = BTreeMap::from([
            (
                "a".to_string(),
                File {
                    data: b"1".to_vec(),
                    mode: 0o644,
                },
            ),
            (
                "sub/b".to_string(),
                File {
                    data: b"2".to_vec(),
                    mode: 0o600,
                },
            ),
        ]);
        write_files(&dir, &files).unwrap();
        assert_eq!(std::fs::read(dir.join("sub/b")).unwrap(), b"2");
        assert_eq!(
            std::fs::metadata(dir.join("sub/b"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );

        files.remove("sub/b");
        files.insert(
            "a".into(),
            File {
                data: b"changed".to_vec(),
                mode: 0o644,
            },
        );
        write_files(&dir, &files).unwrap();
        assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"changed");
        assert!(!dir.join("sub").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn paths_must_stay_inside_the_volume() {
        assert!(safe_relative("a/b").is_ok());
        assert!(safe_relative("../etc/passwd").is_err());
        assert!(safe_relative("/etc/passwd").is_err());
    }

    #[test]
    fn items_select_and_rename_keys() {
        let data = BTreeMap::from([
            ("k1".to_string(), b"v1".to_vec()),
            ("k2".to_string(), b"v2".to_vec()),
        ]);
        let items: Vec<KeyToPath> = vec![KeyToPath {
            key: "k2".into(),
            path: "dir/renamed".into(),
            mode: Some(0o400),
        }];
        let mut files = BTreeMap::new();
        select_keys("Secret", "s", &data, Some(&items), None, 0o644, &mut files).unwrap();
        assert_eq!(
            files,
            BTreeMap::from([(
                "dir/renamed".to_string(),
                File {
                    data: b"v2".to_vec(),
                    mode: 0o400
                }
            )])
        );
        let missing = vec![KeyToPath {
            key: "nope".into(),
            path: "x".into(),
            mode: None,
        }];
        assert!(
            select_keys(
                "Secret",
                "s",
                &data,
                Some(&missing),
                None,
                0o644,
                &mut files
            )
            .is_err()
        );
        assert!(
            select_keys(
                "Secret",
                "s",
                &data,
                Some(&missing),
                Some(true),
                0o644,
                &mut files
            )
            .is_ok()
        );
    }
}
