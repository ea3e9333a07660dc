//! `mlb-testbed up` / `down`: the whole local cluster on this machine.
//!
//! ```text
//! up:   topology (ip) → control plane (testcluster up, wait READY) → FRR in mlb-router
//!       → the holder (machine's namespaces; registry forward) → one real node per node
//!         namespace (containerd, kubelet, kube-proxy: crate::node) → podCIDRs → Ready nodes
//! down: kubelets and kube-proxies → every container (by cgroup) → containerd and the rest of
//!       each node namespace → testcluster → namespaces and mlb-* links → node cgroups
//! ```
//! What was created is recorded in `.local/testbed/state.json` before it is created, so
//! `down` also cleans up after an `up` that failed halfway; `down` additionally sweeps every
//! `mlb-*` namespace, root-namespace link and cgroup, whatever the state file says.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cmd::{self, CmdError};
use crate::frr;
use crate::node::{self, NodeLayout};
use crate::paths::Paths;
use crate::topology::{
    self, API_SERVER_PORT, API_SERVER_V4, REGISTRY_PORT, ROUTER_NETNS, Topology,
};

/// Failures of `up`, `down` and `exec`.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    #[error(
        "the testbed needs root (network namespaces, nftables, mounts); run it with sudo or as root"
    )]
    NotRoot,
    #[error(
        "{0} not found: build the control plane with hack/build-testcluster.sh (or run hack/install-deps.sh)"
    )]
    NoTestcluster(PathBuf),
    #[error("{program} not found: run hack/install-deps.sh")]
    MissingTool { program: String },
    #[error(
        "the local registry does not answer at {0} (LOCAL_REGISTRY_ADDRESS, LOCAL_REGISTRY_PORT): run hack/registry.sh start and hack/test-images.sh"
    )]
    NoRegistry(String),
    #[error("--nodes must be between 1 and {max}, not {0}", max = topology::MAX_NODES)]
    Nodes(usize),
    #[error("failed to build the topology: {0}")]
    Topology(#[source] CmdError),
    #[error("failed to write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start {what}: {source}")]
    Start {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the control plane did not become ready: {reason}\n  its logs: {logs}\n  last lines of {log}:\n{tail}"
    )]
    ControlPlane {
        reason: String,
        logs: PathBuf,
        log: PathBuf,
        tail: String,
    },
    #[error("FRR in {ROUTER_NETNS} did not come up: {reason}\n  logs: {logs}")]
    Frr { reason: String, logs: PathBuf },
    #[error("nodes did not become Ready within {secs} s: {reason}\n  node logs: {logs}", secs = .timeout.as_secs())]
    NodesNotReady {
        timeout: Duration,
        reason: String,
        logs: PathBuf,
    },
    #[error("unknown name {0}: use node-1..node-4, client, router, client2 or lan")]
    UnknownName(String),
    #[error("failed to exec: {0}")]
    Exec(#[source] std::io::Error),
    #[error("failed to talk to the API server: {0}")]
    Kube(String),
}

/// A process `up` started.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Proc {
    /// `testcluster`, `node node-1`, `frr zebra`, ...
    pub role: String,
    pub pid: u32,
    /// Network namespace it runs in (`None`: the root namespace).
    pub netns: Option<String>,
}

/// `.local/testbed/state.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub nodes: usize,
    /// `starting` until `up` finished, then `up`.
    pub phase: String,
    pub namespaces: Vec<String>,
    pub links: Vec<String>,
    pub processes: Vec<Proc>,
    /// FRR's run directory (vtysh `--vty_socket`).
    pub frr_run_dir: Option<PathBuf>,
    /// Seconds from `up` start to all nodes Ready.
    pub up_seconds: Option<f64>,
}

impl State {
    pub fn load(paths: &Paths) -> Option<Self> {
        let bytes = std::fs::read(paths.state_file()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn save(&self, paths: &Paths) -> Result<(), TestbedError> {
        let path = paths.state_file();
        let io = |source| TestbedError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(paths.testbed_dir()).map_err(io)?;
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(self).expect("state serializes"),
        )
        .map_err(io)
    }

    /// What is wrong with a running testbed, if anything.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.phase != "up" {
            problems.push(format!(
                "the last `up` did not finish (phase {})",
                self.phase
            ));
        }
        let existing = list_netns();
        for ns in &self.namespaces {
            if !existing.contains(ns) {
                problems.push(format!("network namespace {ns} is missing"));
            }
        }
        for p in &self.processes {
            if !cmd::alive(p.pid) {
                problems.push(format!("{} (pid {}) is not running", p.role, p.pid));
            } else if std::fs::read_link(format!("/proc/{}/exe", p.pid))
                .is_ok_and(|exe| exe.to_string_lossy().ends_with(" (deleted)"))
            {
                // Rebuilt since it started: reusing it would test old code.
                problems.push(format!("{} (pid {}) runs an older build", p.role, p.pid));
            }
        }
        problems
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Network namespaces whose name starts with `mlb-`.
pub fn list_netns() -> Vec<String> {
    let Ok(out) = cmd::stdout(&["ip", "netns", "list"]) else {
        return Vec::new();
    };
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(topology::PREFIX))
        .map(String::from)
        .collect()
}

/// Root-namespace links whose name starts with `mlb-`.
pub fn list_links() -> Vec<String> {
    let Ok(out) = cmd::stdout(&["ip", "-o", "link", "show"]) else {
        return Vec::new();
    };
    out.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name))
        .filter(|n| n.starts_with(topology::PREFIX))
        .map(String::from)
        .collect()
}

/// Options of `up`.
#[derive(Clone, Debug)]
pub struct UpOptions {
    pub nodes: usize,
    /// For the control plane's READY line.
    pub control_plane_timeout: Duration,
    /// For the nodes to be Ready once their daemons run.
    pub nodes_timeout: Duration,
    /// The testbed executable (the holder and the CNI plugin run it).
    pub testbed_exe: PathBuf,
    /// The local registry on the machine (`host:port`); the nodes pull every image there.
    pub registry: String,
}

/// The local registry's address on the machine, as `hack/registry.sh` chooses it:
/// `LOCAL_REGISTRY_ADDRESS` (default 127.0.0.1) and `LOCAL_REGISTRY_PORT` (default 5000).
pub fn registry_address() -> String {
    let address =
        std::env::var("LOCAL_REGISTRY_ADDRESS").unwrap_or_else(|_| "127.0.0.1".to_string());
    let port = std::env::var("LOCAL_REGISTRY_PORT").unwrap_or_else(|_| REGISTRY_PORT.to_string());
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// Programs a node needs, from the machine (Debian packages) or `.local/bin`.
const NODE_PROGRAMS: &[&str] = &[
    node::RUNC,
    "/usr/lib/cni/ptp",
    "/usr/lib/cni/host-local",
    "/usr/lib/cni/portmap",
];

/// Brings the cluster up, or reports that it is up already.
pub async fn up(paths: &Paths, opts: &UpOptions) -> Result<(), TestbedError> {
    if !is_root() {
        return Err(TestbedError::NotRoot);
    }
    if !(1..=topology::MAX_NODES).contains(&opts.nodes) {
        return Err(TestbedError::Nodes(opts.nodes));
    }
    for tool in ["ip", "nft", "unshare", "nsenter", "setsid", "curl", "mount"] {
        if !cmd::succeeds(&["sh", "-c", &format!("command -v {tool}")]) {
            return Err(TestbedError::MissingTool {
                program: tool.into(),
            });
        }
    }
    if !Path::new(&format!("{}/zebra", frr::DAEMON_DIR)).exists() {
        return Err(TestbedError::MissingTool {
            program: "frr (zebra, bgpd, bfdd)".into(),
        });
    }
    if !paths.testcluster().exists() {
        return Err(TestbedError::NoTestcluster(paths.testcluster()));
    }
    for program in NODE_PROGRAMS
        .iter()
        .map(PathBuf::from)
        .chain(["containerd", "containerd-shim-runc-v2"].map(|b| paths.bin().join(b)))
    {
        if !program.exists() {
            return Err(TestbedError::MissingTool {
                program: program.display().to_string(),
            });
        }
    }
    let catalog = format!("http://{}/v2/", opts.registry);
    if !cmd::succeeds(&[
        "curl",
        "-fsS",
        "--max-time",
        "2",
        "-o",
        "/dev/null",
        &catalog,
    ]) {
        return Err(TestbedError::NoRegistry(opts.registry.clone()));
    }

    if let Some(state) = State::load(paths) {
        let problems = state.problems();
        if problems.is_empty() && state.nodes == opts.nodes {
            println!(
                "the local cluster is already up ({} nodes); reusing it.\n  kubeconfig: {}",
                state.nodes,
                paths.kubeconfig().display()
            );
            return Ok(());
        }
        if state.nodes != opts.nodes && problems.is_empty() {
            println!(
                "the local cluster is up with {} nodes, {} wanted: recreating it",
                state.nodes, opts.nodes
            );
        } else {
            println!(
                "the local cluster is only partly up ({}): recreating it",
                problems.join("; ")
            );
        }
        down(paths);
    } else if !list_netns().is_empty() || !list_links().is_empty() || !list_cgroups().is_empty() {
        println!("leftovers of an earlier cluster found: cleaning up first");
        down(paths);
    }

    let started = Instant::now();
    match bring_up(paths, opts).await {
        Ok(()) => {
            let secs = started.elapsed().as_secs_f64();
            if let Some(mut state) = State::load(paths) {
                state.phase = "up".into();
                state.up_seconds = Some(secs);
                state.save(paths)?;
            }
            println!(
                "the local cluster is up: {} nodes Ready after {secs:.1} s",
                opts.nodes
            );
            Ok(())
        }
        Err(err) => {
            eprintln!(
                "mlb-testbed up failed: {err}\ncleaning up (logs stay in {})",
                paths.logs().display()
            );
            down(paths);
            Err(err)
        }
    }
}

fn fresh_dir(dir: &Path) -> Result<(), TestbedError> {
    let io = |source| TestbedError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io)?;
    }
    std::fs::create_dir_all(dir).map_err(io)
}

async fn bring_up(paths: &Paths, opts: &UpOptions) -> Result<(), TestbedError> {
    // A fresh cluster each time: no etcd data, pods or logs from the previous one. The
    // previous logs move to .local/logs.previous (one generation), for post-mortems.
    let previous = paths.local().join("logs.previous");
    if paths.logs().exists() {
        let _ = std::fs::remove_dir_all(&previous);
        if std::fs::rename(paths.logs(), &previous).is_ok() {
            let _ = std::fs::rename(paths.cluster_logs(), previous.join("cluster"));
        }
    }
    for dir in [
        paths.cluster_dir(),
        paths.logs(),
        paths.nodes_dir(),
        paths.frr_dir(),
    ] {
        fresh_dir(&dir)?;
    }
    std::fs::create_dir_all(paths.testbed_dir()).map_err(|source| TestbedError::Io {
        path: paths.testbed_dir(),
        source,
    })?;
    let topo = Topology::new(opts.nodes);
    let mut state = State {
        nodes: opts.nodes,
        phase: "starting".into(),
        namespaces: topo.namespaces(),
        links: std::iter::once(topology::MGMT_BRIDGE.to_string())
            .chain(topo.nodes.iter().map(|n| n.mgmt_veth_root()))
            .collect(),
        ..State::default()
    };
    state.save(paths)?;

    let t = Instant::now();
    let log_path = paths.logs().join("topology.log");
    let mut log = std::fs::File::create(&log_path).map_err(|source| TestbedError::Io {
        path: log_path.clone(),
        source,
    })?;
    for argv in topo.setup_commands() {
        let _ = writeln!(log, "{}", cmd::display(&argv));
        cmd::run(&argv).map_err(TestbedError::Topology)?;
    }
    println!(
        "topology: {} namespaces in {:.1} s",
        state.namespaces.len(),
        t.elapsed().as_secs_f64()
    );

    // Control plane.
    let t = Instant::now();
    let pid = start_control_plane(paths, &topo)?;
    state.processes.push(Proc {
        role: "testcluster".into(),
        pid,
        netns: None,
    });
    state.save(paths)?;
    let kubeconfig = wait_control_plane(paths, pid, opts.control_plane_timeout)?;
    std::fs::copy(&kubeconfig, paths.kubeconfig()).map_err(|source| TestbedError::Io {
        path: paths.kubeconfig(),
        source,
    })?;
    println!(
        "control plane: ready in {:.1} s (logs: {})",
        t.elapsed().as_secs_f64(),
        paths.cluster_logs().display()
    );

    // FRR in the router.
    let run_dir = start_frr(paths, &mut state)?;
    state.frr_run_dir = Some(run_dir.clone());
    state.save(paths)?;
    wait_frr(paths, &run_dir)?;
    println!("router: FRR (zebra, bgpd, bfdd) up in {ROUTER_NETNS}");

    // A process that stays in the machine's mount and network namespaces, so the nodes' CNI
    // plugin (inside node namespaces) can add host routes there through /proc/<pid>/ns/net.
    // (PID 1 is not ours to use: on the development machines its namespaces are not even
    // readable.) It also forwards the management address's registry port to the local
    // registry, which listens on the machine's loopback.
    let holder = spawn_detached(
        &[
            "setsid".to_string(),
            opts.testbed_exe.display().to_string(),
            "hold-netns".into(),
            "--forward".into(),
            format!("{API_SERVER_V4}:{REGISTRY_PORT}={}", opts.registry),
        ],
        &paths.logs().join("netns-holder.log"),
        &[],
    )
    .map_err(|source| TestbedError::Start {
        what: "the network namespace holder".into(),
        source,
    })?;
    state.processes.push(Proc {
        role: "netns holder".into(),
        pid: holder,
        netns: None,
    });
    state.save(paths)?;

    // The nodes.
    let cni_bin = paths.nodes_dir().join("cni-bin");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TestbedError::Io { path, source }
    };
    std::fs::create_dir_all(&cni_bin).map_err(io(&cni_bin))?;
    let plugin = cni_bin.join(node::HOST_ROUTE_PLUGIN);
    std::os::unix::fs::symlink(&opts.testbed_exe, &plugin).map_err(io(&plugin))?;
    for n in &topo.nodes {
        let layout = node_layout(paths, n, holder);
        for dir in layout.dirs() {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        for (path, text) in layout.files() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
            }
            std::fs::write(&path, text).map_err(io(&path))?;
        }
        create_cgroups(&layout.cgroup_root()).map_err(|source| TestbedError::Start {
            what: format!("the cgroups of {}", n.name),
            source,
        })?;
        for argv in node::machine_routes_to(n) {
            cmd::run(&argv).map_err(TestbedError::Topology)?;
        }
        let pid = spawn_detached(&layout.start_command(), &layout.logs.join("node.log"), &[])
            .map_err(|source| TestbedError::Start {
                what: format!("the daemons of {}", n.name),
                source,
            })?;
        state.processes.push(Proc {
            role: format!("node {}", n.name),
            pid,
            netns: Some(n.netns.clone()),
        });
    }
    state.save(paths)?;
    wait_nodes_ready(paths, &state, opts.nodes_timeout).await?;
    Ok(())
}

/// The layout of node `n` in this checkout.
pub fn node_layout(paths: &Paths, n: &topology::Node, holder_pid: u32) -> NodeLayout {
    NodeLayout {
        node: n.clone(),
        dir: paths.node_dir(&n.name),
        logs: paths.node_logs(&n.name),
        bin: paths.bin(),
        cni_bin: paths.nodes_dir().join("cni-bin"),
        cluster: paths.cluster_dir(),
        holder_pid,
    }
}

/// Creates the node's cgroup root in every hierarchy (the kubelet requires it to exist). A
/// new cpuset cgroup starts with no CPUs and no memory nodes: it gets its parent's.
fn create_cgroups(root: &str) -> std::io::Result<()> {
    for dir in node::cgroup_dirs(Path::new(CGROUP_FS), root) {
        std::fs::create_dir_all(&dir)?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Some(parent) = dir.parent()
                && let Ok(value) = std::fs::read_to_string(parent.join(file))
            {
                std::fs::write(dir.join(file), value)?;
            }
        }
    }
    Ok(())
}

const CGROUP_FS: &str = "/sys/fs/cgroup";

/// Every process in the cgroups below `dir`.
fn cgroup_pids(dir: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(|e| e.ok()) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(cgroup_pids(&e.path()));
            }
        }
    }
    pids
}

/// Removes a cgroup directory tree, deepest first (cgroup directories only go with rmdir).
fn remove_cgroup_tree(dir: &Path) -> std::io::Result<()> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(|e| e.ok()) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path())?;
            }
        }
    }
    std::fs::remove_dir(dir)
}

/// The testbed's cgroup roots (`/mlb-*`) in every hierarchy of the machine.
pub fn list_cgroups() -> Vec<PathBuf> {
    let Ok(hierarchies) = std::fs::read_dir(CGROUP_FS) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for h in hierarchies.filter_map(|e| e.ok()) {
        if let Ok(entries) = std::fs::read_dir(h.path()) {
            found.extend(
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(topology::PREFIX)
                            && e.file_type().is_ok_and(|t| t.is_dir())
                    })
                    .map(|e| e.path()),
            );
        }
    }
    found.sort();
    found
}

/// Starts `argv` in its own session with output appended to `log`; returns its PID.
/// `setsid` (first element) execs in place, so the PID is the program's.
fn spawn_detached(
    argv: &[String],
    log: &Path,
    env: &[(&str, &std::ffi::OsStr)],
) -> std::io::Result<u32> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let err = out.try_clone()?;
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command.spawn()?;
    Ok(child.id())
}

fn start_control_plane(paths: &Paths, topo: &Topology) -> Result<u32, TestbedError> {
    let mut argv = vec![
        "setsid".to_string(),
        paths.testcluster().display().to_string(),
        "up".into(),
        "--dir".into(),
        paths.cluster_dir().display().to_string(),
        "--bind-address".into(),
        API_SERVER_V4.to_string(),
        "--port".into(),
        API_SERVER_PORT.to_string(),
        "--service-cidr".into(),
        format!(
            "{},{}",
            topology::SERVICE_CIDR_V4,
            topology::SERVICE_CIDR_V6
        ),
    ];
    // A kubeconfig with the kubelet identity system:node:<name> per node.
    for n in &topo.nodes {
        argv.extend(["--node".to_string(), n.name.clone()]);
    }
    let log = paths.logs().join("testcluster.out");
    let _ = std::fs::write(
        paths.logs().join("testcluster.cmd"),
        cmd::display(&argv) + "\n",
    );
    spawn_detached(&argv, &log, &[]).map_err(|source| TestbedError::Start {
        what: "testcluster".into(),
        source,
    })
}

/// The last `n` lines of a file, indented.
pub fn tail(path: &Path, n: usize) -> String {
    let Ok(file) = std::fs::File::open(path) else {
        return format!("    (cannot read {})", path.display());
    };
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    {l}\n"))
        .collect()
}

fn wait_control_plane(paths: &Paths, pid: u32, timeout: Duration) -> Result<PathBuf, TestbedError> {
    let log = paths.logs().join("testcluster.out");
    let fail = |reason: String| TestbedError::ControlPlane {
        reason,
        logs: paths.cluster_logs(),
        log: log.clone(),
        tail: tail(&log, 30),
    };
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(&log)
            && let Some(path) = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("READY kubeconfig="))
        {
            return Ok(PathBuf::from(path.trim()));
        }
        if !cmd::alive(pid) {
            return Err(fail("testcluster exited".into()));
        }
        if Instant::now() > deadline {
            return Err(fail(format!(
                "no READY line within {} s",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Whether user `frr` can reach `dir` (a checkout under a private home directory cannot).
fn frr_can_use(dir: &Path) -> bool {
    cmd::succeeds(&[
        "runuser",
        "-u",
        "frr",
        "--",
        "test",
        "-x",
        &dir.display().to_string(),
    ])
}

fn start_frr(paths: &Paths, state: &mut State) -> Result<PathBuf, TestbedError> {
    let mut conf_dir = paths.frr_dir();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TestbedError::Io { path, source }
    };
    std::fs::create_dir_all(&conf_dir).map_err(io(&conf_dir))?;
    if !frr_can_use(&conf_dir) {
        // FRR drops privileges to user frr before reading its configuration.
        conf_dir = PathBuf::from("/run/mlb-testbed/frr-router");
        let _ = std::fs::remove_dir_all(&conf_dir);
        std::fs::create_dir_all(&conf_dir).map_err(io(&conf_dir))?;
        println!(
            "router: {} is not reachable for user frr; using {}",
            paths.frr_dir().display(),
            conf_dir.display()
        );
    }
    let run_dir = conf_dir.join("run");
    std::fs::create_dir_all(&run_dir).map_err(io(&run_dir))?;
    for daemon in frr::DAEMONS {
        let file = conf_dir.join(format!("{daemon}.conf"));
        std::fs::write(&file, frr::config(daemon)).map_err(io(&file))?;
    }
    let owner = cmd::run(&["chown", "-R", "frr:frr", &conf_dir.display().to_string()]);
    owner.map_err(|e| TestbedError::Frr {
        reason: e.to_string(),
        logs: paths.logs(),
    })?;
    for daemon in frr::DAEMONS {
        let mut argv = cmd::in_netns(ROUTER_NETNS, &frr::command(daemon, &conf_dir, &run_dir));
        argv.insert(0, "setsid".into());
        let log = paths.logs().join(format!("frr-{daemon}.log"));
        let pid = spawn_detached(&argv, &log, &[]).map_err(|source| TestbedError::Start {
            what: format!("FRR {daemon}"),
            source,
        })?;
        state.processes.push(Proc {
            role: format!("frr {daemon}"),
            pid,
            netns: Some(ROUTER_NETNS.into()),
        });
        if *daemon == "zebra" {
            // bgpd and bfdd connect to zebra's socket at start.
            let sock = run_dir.join("zserv.api");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !sock.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    Ok(run_dir)
}

fn wait_frr(paths: &Paths, run_dir: &Path) -> Result<(), TestbedError> {
    let argv = cmd::in_netns(
        ROUTER_NETNS,
        &frr::vtysh_args(
            run_dir,
            &[
                "-c".into(),
                "show daemons".into(),
                "-c".into(),
                "show running-config".into(),
            ],
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let result = cmd::run(&argv).map(|out| String::from_utf8_lossy(&out.stdout).into_owned());
        let missing: Vec<&str> = match &result {
            Ok(text) => frr::DAEMONS
                .iter()
                .copied()
                .filter(|d| !text.contains(d))
                .collect(),
            Err(_) => frr::DAEMONS.to_vec(),
        };
        let configured = result
            .as_ref()
            .is_ok_and(|t| t.contains(&format!("router bgp {}", topology::ROUTER_ASN)));
        if missing.is_empty() && configured {
            return Ok(());
        }
        if Instant::now() > deadline {
            let reason = match result {
                Ok(text) => format!("daemons not answering: {missing:?}; vtysh said:\n{text}"),
                Err(e) => e.to_string(),
            };
            return Err(TestbedError::Frr {
                reason,
                logs: paths.logs(),
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

async fn wait_nodes_ready(
    paths: &Paths,
    state: &State,
    timeout: Duration,
) -> Result<(), TestbedError> {
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Patch, PatchParams};
    let client = crate::harness::client_from(&paths.kubeconfig())
        .await
        .map_err(|e| TestbedError::Kube(e.to_string()))?;
    let nodes: kube::Api<Node> = kube::Api::all(client);
    let deadline = Instant::now() + timeout;
    let fail = |reason: String| TestbedError::NodesNotReady {
        timeout,
        reason,
        logs: paths.logs(),
    };
    loop {
        let mut reason = String::new();
        match nodes.list(&Default::default()).await {
            Ok(list) => {
                // The node's pod prefixes of docs/topology.md become its spec.podCIDRs (set
                // once, by the admin, as the controller manager's IPAM would): the kubelet
                // passes them to containerd, which renders the CNI configuration from them.
                for n in &list.items {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    let has_cidrs = n.spec.as_ref().is_some_and(|s| s.pod_cidr.is_some());
                    if let (false, Some(topo)) = (has_cidrs, topology::Node::by_name(&name)) {
                        let patch = serde_json::json!({"spec": {
                            "podCIDR": topo.pods_v4.to_string(),
                            "podCIDRs": [topo.pods_v4.to_string(), topo.pods_v6.to_string()],
                        }});
                        if let Err(e) = nodes
                            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                        {
                            reason = format!("setting the podCIDRs of {name}: {e}; ");
                        }
                    }
                }
                let ready = list
                    .items
                    .iter()
                    .filter(|n| {
                        n.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|c| {
                                c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                            })
                    })
                    .count();
                if ready >= state.nodes {
                    return Ok(());
                }
                reason.push_str(&format!(
                    "{ready} of {} Ready ({} registered)",
                    state.nodes,
                    list.items.len()
                ));
            }
            Err(e) => reason.push_str(&e.to_string()),
        }
        for p in state
            .processes
            .iter()
            .filter(|p| p.role.starts_with("node "))
        {
            if !cmd::alive(p.pid) {
                let name = p.role.trim_start_matches("node ");
                let logs = paths.node_logs(name);
                let mut tails = String::new();
                for file in ["node.log", "containerd.log", "kubelet.log"] {
                    let log = logs.join(file);
                    tails.push_str(&format!(
                        "  last lines of {}:\n{}",
                        log.display(),
                        tail(&log, 15)
                    ));
                }
                return Err(fail(format!("the daemons of {name} exited\n{tails}")));
            }
        }
        if Instant::now() > deadline {
            return Err(fail(reason));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Stops one node: the kubelet and kube-proxy first (no pod gets restarted while the
/// containers go), then every container process of the node (found by cgroup, so also those
/// a dead containerd left), then containerd and what else runs in the node's namespace
/// (shims, the run script). Its mount namespace, with every mount the node made, goes with
/// its last process; its cgroups are removed by [`down`].
fn stop_node(paths: &Paths, name: &str, report: &mut Vec<String>) {
    let dir = paths.node_dir(name);
    let pid_of = |daemon: &str| -> Option<u32> {
        std::fs::read_to_string(dir.join(format!("{daemon}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
            .filter(|p| cmd::alive(*p))
    };
    let daemons: Vec<u32> = ["kubelet", "kube-proxy"]
        .iter()
        .filter_map(|d| pid_of(d))
        .collect();
    cmd::terminate(&daemons, Duration::from_secs(5));
    let root = format!("/{}{name}", topology::PREFIX);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut killed = 0;
    loop {
        let pids: Vec<u32> = node::cgroup_dirs(Path::new(CGROUP_FS), &root)
            .iter()
            .flat_map(|d| cgroup_pids(d))
            .filter(|p| cmd::alive(*p))
            .collect();
        if pids.is_empty() || Instant::now() > deadline {
            break;
        }
        killed += pids.len();
        cmd::kill(
            "KILL",
            &pids.iter().map(|p| i64::from(*p)).collect::<Vec<_>>(),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    if killed > 0 {
        report.push(format!("{name}: killed the processes of its containers"));
    }
    if let Some(pid) = pid_of("containerd") {
        cmd::terminate(&[pid], Duration::from_secs(5));
    }
}

/// Stops and removes everything `up` created. Never fails: it reports what it could not do.
pub fn down(paths: &Paths) {
    let state = State::load(paths);
    let mut report = Vec::new();

    // 1. The nodes: kubelets and kube-proxies, containers, containerd.
    for i in 1..=topology::MAX_NODES {
        let name = topology::Node::new(i).name;
        if paths.node_dir(&name).exists() {
            stop_node(paths, &name, &mut report);
        }
    }

    // 2. Every process still inside one of our namespaces (shims, FRR, stray shells).
    let namespaces = list_netns();
    for ns in &namespaces {
        let pids: Vec<u32> = cmd::stdout(&["ip", "netns", "pids", ns])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if !pids.is_empty() {
            report.push(format!("stopped {} processes in {ns}", pids.len()));
            cmd::terminate(&pids, Duration::from_secs(3));
        }
    }

    // The network namespace holder.
    let holders: Vec<u32> = state
        .iter()
        .flat_map(|s| s.processes.iter())
        .filter(|p| p.role == "netns holder" && cmd::alive(p.pid))
        .map(|p| p.pid)
        .collect();
    cmd::terminate(&holders, Duration::from_secs(2));

    // 3. The control plane (it stops its components on SIGTERM), then whatever is left of
    //    it: processes of its session (setsid made it the leader) and testcluster processes
    //    working on our directory. Other testcluster instances on the machine are left alone.
    let leaders: Vec<u32> = state
        .iter()
        .flat_map(|s| s.processes.iter())
        .filter(|p| p.role == "testcluster")
        .map(|p| p.pid)
        .collect();
    let running: Vec<u32> = leaders.iter().copied().filter(|p| cmd::alive(*p)).collect();
    if !running.is_empty() {
        cmd::terminate(&running, Duration::from_secs(30));
        report.push("stopped the control plane".into());
    }
    let dir = paths.cluster_dir().display().to_string();
    let ours = cmd::pids_of_executable(&paths.testcluster());
    let leftovers: Vec<u32> = cmd::all_pids()
        .into_iter()
        .filter(|p| cmd::alive(*p))
        .filter(|p| {
            cmd::session(*p).is_some_and(|s| leaders.contains(&s))
                || (ours.contains(p) && cmd::cmdline(*p).contains(&dir))
        })
        .collect();
    if !leftovers.is_empty() {
        report.push(format!(
            "killed {} leftover control-plane processes",
            leftovers.len()
        ));
        cmd::terminate(&leftovers, Duration::from_secs(5));
    }

    // 4. Namespaces and root links (routes go with them).
    for ns in list_netns() {
        if let Err(e) = cmd::run(&["ip", "netns", "del", &ns]) {
            report.push(format!("could not delete namespace {ns}: {e}"));
        }
    }
    // The root ends of veths vanish with their peer's namespace, asynchronously.
    let deadline = Instant::now() + Duration::from_secs(3);
    while list_links().iter().any(|l| l != topology::MGMT_BRIDGE) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for link in list_links() {
        if let Err(e) = cmd::run(&["ip", "link", "del", &link])
            && list_links().contains(&link)
        {
            report.push(format!("could not delete link {link}: {e}"));
        }
    }

    // 5. The nodes' cgroups (empty now), deepest first, in every hierarchy.
    for dir in list_cgroups() {
        if let Err(e) = remove_cgroup_tree(&dir) {
            report.push(format!("could not remove cgroup {}: {e}", dir.display()));
        }
    }
    if let Some(dir) = state.as_ref().and_then(|s| s.frr_run_dir.as_ref())
        && dir.starts_with("/run/mlb-testbed")
    {
        let _ = std::fs::remove_dir_all("/run/mlb-testbed");
    }
    let _ = std::fs::remove_file(paths.state_file());
    let _ = std::fs::remove_file(paths.kubeconfig());

    let left_ns = list_netns();
    let left_links = list_links();
    let left_cgroups = list_cgroups();
    for line in &report {
        println!("down: {line}");
    }
    if left_ns.is_empty() && left_links.is_empty() && left_cgroups.is_empty() {
        println!(
            "the local cluster is down (logs kept in {})",
            paths.logs().display()
        );
    } else {
        eprintln!(
            "down: still present: namespaces {left_ns:?}, links {left_links:?}, cgroups {left_cgroups:?}"
        );
    }
}

/// Replaces this process with `argv` run in the namespace called `name`.
pub fn exec(paths: &Paths, name: &str, argv: &[String]) -> TestbedError {
    let Some(netns) = topology::netns_of(name) else {
        return TestbedError::UnknownName(name.into());
    };
    let mut argv = argv.to_vec();
    if argv.first().map(String::as_str) == Some("vtysh") && netns == ROUTER_NETNS {
        let run_dir = State::load(paths)
            .and_then(|s| s.frr_run_dir)
            .unwrap_or_else(|| paths.frr_run_dir());
        argv = frr::vtysh_args(&run_dir, &argv[1..]);
    }
    if argv.is_empty() {
        argv = vec!["bash".into()];
    }
    use std::os::unix::process::CommandExt;
    let full = cmd::in_netns(&netns, &argv);
    TestbedError::Exec(Command::new(&full[0]).args(&full[1..]).exec())
}
