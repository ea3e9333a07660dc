//! `mlb-testbed`: the local cluster's command (up, down, status, exec) and its internal
//! programs (node agent, echo server, container launcher).

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use metallb_e2e::agent::{self, AgentConfig};
use metallb_e2e::images::Locations;
use metallb_e2e::paths::Paths;
use metallb_e2e::testbed::{self, State, UpOptions};
use metallb_e2e::topology::{self, Node};

#[derive(Parser)]
#[command(
    name = "mlb-testbed",
    about = "The metallb-rs local test cluster (see docs/testing.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the topology, start the control plane, FRR and the node agents.
    Up {
        /// Number of nodes (1..=4).
        #[arg(long, env = "NODES", default_value_t = topology::DEFAULT_NODES)]
        nodes: usize,
        /// Seconds to wait for the control plane's READY line.
        #[arg(long, default_value_t = 300)]
        control_plane_timeout: u64,
        /// Seconds to wait for the nodes to be Ready.
        #[arg(long, default_value_t = 120)]
        nodes_timeout: u64,
        /// Directory of the workspace binaries (metallb-controller, ...).
        #[arg(long, env = "MLB_BIN_DIR")]
        bin_dir: Option<PathBuf>,
    },
    /// Stop everything `up` started and remove namespaces and links (logs stay).
    Down,
    /// Show what is running.
    Status,
    /// Print the `ip` commands that build the topology (what `up` runs first).
    Plan {
        #[arg(long, env = "NODES", default_value_t = topology::DEFAULT_NODES)]
        nodes: usize,
    },
    /// Run a command in node-N, client, router, client2 or lan: `exec router -- vtysh -c "show bgp summary"`.
    Exec {
        name: String,
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// (internal) The node agent of one node; runs inside the node's network namespace.
    Agent {
        #[arg(long)]
        node: String,
        #[arg(long)]
        kubeconfig: PathBuf,
        #[arg(long, env = "MLB_BIN_DIR")]
        bin_dir: Option<PathBuf>,
        /// PID of a process in the machine's mount and network namespaces.
        #[arg(long)]
        holder_pid: u32,
    },
    /// (internal) Sleep in the machine's network namespace, so agents can reach it.
    HoldNetns,
    /// The echo server of image localhost/echo.
    Echo {
        /// TCP and UDP port.
        #[arg(long, env = "PORT")]
        port: Option<u16>,
        /// Port used when --port is not given (the agent passes the first containerPort).
        #[arg(long, default_value_t = 8080)]
        default_port: u16,
    },
    /// (internal) Mount a container's volumes and exec its program; run by the agent in a
    /// private mount namespace.
    ContainerExec { spec: PathBuf },
}

fn paths() -> anyhow::Result<Paths> {
    Paths::discover()
        .context("cannot find the repository root; run from the checkout or set MLB_ROOT")
}

fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,kube=warn,hyper=warn,tower=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Cmd::ContainerExec { spec } = &cli.command {
        // Only returns on failure; the message lands in the container's log.
        let err = agent::process::container_exec(spec);
        eprintln!("mlb-testbed container-exec: {err}");
        std::process::exit(127);
    }
    init_tracing();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(cli.command))
}

async fn run(command: Cmd) -> anyhow::Result<()> {
    match command {
        Cmd::Up {
            nodes,
            control_plane_timeout,
            nodes_timeout,
            bin_dir,
        } => {
            let paths = paths()?;
            let exe = std::env::current_exe()?;
            let opts = UpOptions {
                nodes,
                control_plane_timeout: Duration::from_secs(control_plane_timeout),
                nodes_timeout: Duration::from_secs(nodes_timeout),
                bin_dir: bin_dir.unwrap_or_else(|| default_bin_dir(&paths, &exe)),
                testbed_exe: exe,
            };
            testbed::up(&paths, &opts).await?;
            Ok(())
        }
        Cmd::Down => {
            testbed::down(&paths()?);
            Ok(())
        }
        Cmd::Status => {
            let paths = paths()?;
            match State::load(&paths) {
                None => println!(
                    "the local cluster is not up (no {})",
                    paths.state_file().display()
                ),
                Some(state) => {
                    println!("{} nodes, phase {}", state.nodes, state.phase);
                    for p in &state.processes {
                        let alive = if metallb_e2e::cmd::alive(p.pid) {
                            "running"
                        } else {
                            "NOT RUNNING"
                        };
                        println!(
                            "  {:<16} pid {:<8} {:<12} {alive}",
                            p.role,
                            p.pid,
                            p.netns.as_deref().unwrap_or("(root)")
                        );
                    }
                    if let Some(s) = state.up_seconds {
                        println!("up took {s:.1} s");
                    }
                    let problems = state.problems();
                    if !problems.is_empty() {
                        println!("problems: {}", problems.join("; "));
                    }
                    println!(
                        "kubeconfig: {}\nlogs: {}",
                        paths.kubeconfig().display(),
                        paths.logs().display()
                    );
                }
            }
            Ok(())
        }
        Cmd::Plan { nodes } => {
            anyhow::ensure!(
                (1..=topology::MAX_NODES).contains(&nodes),
                "--nodes must be 1..={}",
                topology::MAX_NODES
            );
            for argv in topology::Topology::new(nodes).setup_commands() {
                println!("{}", metallb_e2e::cmd::display(&argv));
            }
            Ok(())
        }
        Cmd::Exec { name, command } => Err(testbed::exec(&paths()?, &name, &command).into()),
        Cmd::HoldNetns => {
            futures::future::pending::<()>().await;
            Ok(())
        }
        Cmd::Agent {
            node,
            kubeconfig,
            bin_dir,
            holder_pid,
        } => {
            let paths = paths()?;
            let exe = std::env::current_exe()?;
            let node = Node::by_name(&node).with_context(|| format!("unknown node {node}"))?;
            let config = AgentConfig {
                node,
                kubeconfig,
                locations: Locations {
                    bin_dir: bin_dir.unwrap_or_else(|| default_bin_dir(&paths, &exe)),
                    testbed: exe,
                },
                paths,
                holder_pid,
            };
            agent::run(config).await?;
            Ok(())
        }
        Cmd::Echo { port, default_port } => {
            metallb_e2e::echo::serve(
                port.unwrap_or(default_port),
                metallb_e2e::echo::Identity::from_env(),
                &metallb_e2e::echo::Identity::addresses_from_env(),
            )
            .await?;
            Ok(())
        }
        Cmd::ContainerExec { .. } => unreachable!("handled before the runtime starts"),
    }
}

/// The workspace binaries sit next to this executable (`target/debug`), else in the
/// checkout's default target directory.
fn default_bin_dir(paths: &Paths, exe: &std::path::Path) -> PathBuf {
    match exe.parent() {
        Some(dir) if dir.join("mlb-testbed").exists() => dir.to_path_buf(),
        _ => paths.default_bin_dir(),
    }
}
