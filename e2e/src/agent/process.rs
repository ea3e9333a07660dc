//! Containers as processes: start one in a private mount namespace, signal and stop it.
//!
//! ```text
//! agent ──spawn (own process group)──► [ip netns exec mlb-pod-<i>-<k>] unshare --mount
//!         --propagation private -- mlb-testbed container-exec SPEC.json ──bind mounts, exec──►
//!         the program
//! ```
//! `ip netns exec` (for pods with their own network namespace), `unshare` and
//! `container-exec` all `exec`, so the spawned PID is the program's PID and its process
//! group. The volume directories are bind-mounted at the container's mount paths
//! inside that mount namespace only: `/etc/...` paths a program reads exist for it alone.
//! A mount point missing on the machine is created (empty directory or file) and recorded in
//! `.local/testbed/created-paths.log`; `mlb-testbed down` removes those that are still empty
//! once every process is gone. (Mounting a tmpfs over the nearest existing parent instead
//! would hide that parent's other contents, e.g. all of `/run`, so it is not done.)
//!
//! Stopping a container signals its process group and every process still in its mount
//! namespace, so daemons that detach (FRR's) go too.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::volumes::Mount;
use crate::cmd;

/// What `mlb-testbed container-exec` does: mounts, then exec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    pub mounts: Vec<Mount>,
    pub program: PathBuf,
    pub arg0: Option<String>,
    pub args: Vec<String>,
    /// The whole environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    /// Where to record mount points created on the machine.
    pub created_paths_log: PathBuf,
}

/// Failures of `container-exec` (they end up in the container's log).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("failed to read the exec spec {path}: {source}")]
    Spec {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid exec spec {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to create mount point {path}: {source}")]
    MountPoint {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to mount {0}")]
    Mount(#[from] cmd::CmdError),
    #[error("failed to exec {program}: {source}")]
    Exec {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Runs in the fresh mount namespace: makes the mounts, then replaces itself with the
/// program. Returns only on failure.
pub fn container_exec(spec_path: &Path) -> ExecError {
    let spec: ExecSpec = match std::fs::read(spec_path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(spec) => spec,
            Err(source) => {
                return ExecError::Parse {
                    path: spec_path.into(),
                    source,
                };
            }
        },
        Err(source) => {
            return ExecError::Spec {
                path: spec_path.into(),
                source,
            };
        }
    };
    // A mount target may hide the paths of later sources or of the program (an emptyDir at
    // /tmp or /work hides a checkout below it). Open them all first and refer to them
    // through /proc/<pid>/fd, which keeps pointing at what was opened.
    let mut sources = Vec::new();
    for m in &spec.mounts {
        match std::fs::File::open(&m.source) {
            Ok(f) => sources.push(f),
            Err(source) => {
                return ExecError::MountPoint {
                    path: m.source.clone(),
                    source,
                };
            }
        }
    }
    let program_file = std::fs::File::open(&spec.program).ok();
    let mut created_log = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.created_paths_log)
    {
        Ok(f) => f,
        Err(source) => {
            return ExecError::MountPoint {
                path: spec.created_paths_log.clone(),
                source,
            };
        }
    };
    let pid = std::process::id();
    let mut mounted: Vec<&Path> = Vec::new();
    for (m, file) in spec.mounts.iter().zip(&sources) {
        let fd = format!("/proc/{pid}/fd/{}", file.as_raw_fd());
        let inside_volume = mounted.iter().any(|t| m.target.starts_with(t));
        let log = (!inside_volume).then_some(&mut created_log);
        if let Err(e) = mount(&fd, m, log) {
            return e;
        }
        mounted.push(&m.target);
    }
    use std::os::unix::process::CommandExt;
    // Exec by path when it is still visible (scripts need their path), else through the fd.
    let visible = spec.program.exists();
    let program = match (&program_file, visible) {
        (Some(f), false) => PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd())),
        _ => spec.program.clone(),
    };
    let mut command = std::process::Command::new(&program);
    command.arg0(
        spec.arg0
            .clone()
            .unwrap_or_else(|| spec.program.display().to_string()),
    );
    command
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &spec.working_dir {
        command.current_dir(dir);
    }
    let source = command.exec();
    ExecError::Exec {
        program: spec.program,
        source,
    }
}

/// Bind-mounts `source` (a /proc/<pid>/fd path) at `m.target`; `--no-canonicalize` keeps
/// mount(8) from turning the fd path back into a (possibly hidden) file name.
fn mount(
    source: &str,
    m: &Mount,
    created_log: Option<&mut std::fs::File>,
) -> Result<(), ExecError> {
    ensure_mount_point(&m.target, m.source.is_file(), created_log)?;
    let target = m.target.to_string_lossy();
    cmd::run(&["mount", "--no-canonicalize", "--bind", source, &target])?;
    if m.read_only {
        cmd::run(&[
            "mount",
            "--no-canonicalize",
            "-o",
            "remount,bind,ro",
            &target,
        ])?;
    }
    Ok(())
}

/// Creates `target` (and missing parents) if needed, recording each path created.
/// Paths inside an earlier mount (a volume) are not recorded: they are not on the machine.
fn ensure_mount_point(
    target: &Path,
    is_file: bool,
    mut created_log: Option<&mut std::fs::File>,
) -> Result<(), ExecError> {
    if target.exists() {
        return Ok(());
    }
    let err = |source| ExecError::MountPoint {
        path: target.into(),
        source,
    };
    let mut missing: Vec<&Path> = target.ancestors().take_while(|p| !p.exists()).collect();
    missing.reverse();
    for (i, path) in missing.iter().enumerate() {
        let last = i + 1 == missing.len();
        let created = if last && is_file {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map(drop)
        } else {
            std::fs::create_dir(path)
        };
        match created {
            Ok(()) => {}
            // Containers of other nodes start at the same time and create the same host
            // paths (hostNetwork speakers mount the same Secret path): whoever creates a
            // path first records it for the cleanup.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(err(e)),
        }
        if let Some(log) = created_log.as_deref_mut() {
            writeln!(log, "{}", path.display()).map_err(err)?;
        }
    }
    Ok(())
}

/// A running container process.
#[derive(Debug)]
pub struct ContainerProcess {
    pub child: tokio::process::Child,
    pub pid: u32,
    /// The container's mount namespace (`mnt:[...]`), once it has left the agent's.
    pub mount_ns: Option<String>,
}

/// Starts a container: writes `spec` next to `spec_path`, appends output to `log`.
pub async fn spawn(
    testbed: &Path,
    spec: &ExecSpec,
    spec_path: &Path,
    log: &Path,
    banner: &str,
    netns: Option<&str>,
) -> std::io::Result<ContainerProcess> {
    std::fs::write(
        spec_path,
        serde_json::to_vec_pretty(spec).map_err(std::io::Error::other)?,
    )?;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    writeln!(out, "==== mlb-testbed {} {banner}", jiff::Timestamp::now())?;
    let err = out.try_clone()?;
    // In the pod's network namespace if it has one (`ip netns exec` execs in place too).
    let mut command = match netns {
        Some(ns) => {
            let mut c = tokio::process::Command::new("ip");
            c.args(["netns", "exec", ns, "unshare"]);
            c
        }
        None => tokio::process::Command::new("unshare"),
    };
    command
        .args(["--mount", "--propagation", "private", "--"])
        .arg(testbed)
        .arg("container-exec")
        .arg(spec_path)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0)
        .kill_on_drop(false);
    let child = command.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("the container exited at once"))?;
    let own = cmd::namespace_of(std::process::id(), "mnt");
    // Learn the container's mount namespace once the process runs the testbed (or the program):
    // `ip netns exec` first unshares a mount namespace of its own, which is freed when `unshare`
    // moves on, and whose number the kernel then reuses for another container's namespace.
    // Recording that one would make stopping this container kill processes of another.
    let mut mount_ns = None;
    for _ in 0..100 {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        let Some(exe) = exe else { break };
        let launcher = exe.file_name().is_some_and(|n| n == "ip" || n == "unshare");
        if !launcher {
            mount_ns = cmd::namespace_of(pid, "mnt").filter(|ns| Some(ns) != own.as_ref());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(ContainerProcess {
        child,
        pid,
        mount_ns,
    })
}

/// Every process of a container: its process group and whatever lives in its mount namespace.
pub fn members(pid: u32, mount_ns: Option<&str>) -> Vec<u32> {
    cmd::all_pids()
        .into_iter()
        .filter(|p| {
            cmd::process_group(*p) == Some(pid)
                || mount_ns.is_some_and(|ns| cmd::namespace_of(*p, "mnt").as_deref() == Some(ns))
        })
        .collect()
}

/// Sends `signal` to every process of the container.
pub fn signal(pid: u32, mount_ns: Option<&str>, signal: &str) {
    let pids: Vec<i64> = members(pid, mount_ns).into_iter().map(i64::from).collect();
    cmd::kill(signal, &pids);
}

impl ContainerProcess {
    /// SIGTERM, up to `grace` for the main process to exit, then SIGKILL to everything left.
    /// Returns the exit status.
    pub async fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        signal(self.pid, self.mount_ns.as_deref(), "TERM");
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => None,
        };
        self.kill_rest().await;
        match status {
            Some(s) => Some(s),
            None => self.child.wait().await.ok(),
        }
    }

    /// SIGKILL to whatever is left of the container (after its main process exited).
    pub async fn kill_rest(&self) {
        for _ in 0..10 {
            let left = members(self.pid, self.mount_ns.as_deref());
            if left.is_empty() {
                return;
            }
            cmd::kill("KILL", &left.into_iter().map(i64::from).collect::<Vec<_>>());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
