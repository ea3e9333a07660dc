//! `mlb-testbed`: the local cluster's command (up, down, status, exec) and its internal
//! programs (the holder of the machine's namespaces, and the nodes' CNI plugin
//! `mlb-host-route`, which is this binary called by that name).

#![forbid(unsafe_code)]

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use metallb_e2e::paths::Paths;
use metallb_e2e::testbed::{self, State, UpOptions};
use metallb_e2e::topology;

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
    /// Build the topology, start the control plane, FRR and the nodes.
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
    /// (internal) Stay in the machine's network namespace, so the nodes' CNI plugin can add
    /// routes there; forward LISTEN=TARGET TCP (the registry, for the nodes).
    HoldNetns {
        /// `ADDR:PORT=ADDR:PORT`: accept on the first, connect to the second.
        #[arg(long)]
        forward: Vec<String>,
    },
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
    // Called by the nodes' containerd as the CNI plugin of that name (a symlink).
    let arg0 = std::env::args_os().next().unwrap_or_default();
    if std::path::Path::new(&arg0).file_name()
        == Some(std::ffi::OsStr::new(metallb_e2e::node::HOST_ROUTE_PLUGIN))
    {
        std::process::exit(metallb_e2e::cni::main());
    }
    let cli = Cli::parse();
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
        } => {
            let paths = paths()?;
            let opts = UpOptions {
                nodes,
                control_plane_timeout: Duration::from_secs(control_plane_timeout),
                nodes_timeout: Duration::from_secs(nodes_timeout),
                testbed_exe: std::env::current_exe()?,
                registry: testbed::registry_address(),
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
        Cmd::HoldNetns { forward } => {
            for spec in forward {
                let (listen, target) = spec
                    .split_once('=')
                    .with_context(|| format!("--forward {spec}: want LISTEN=TARGET"))?;
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("listen on {listen}"))?;
                tracing::info!(listen, target, "forwarding");
                tokio::spawn(forward_all(listener, target.to_string()));
            }
            futures::future::pending::<()>().await;
            Ok(())
        }
    }
}

/// Accepts connections forever and pipes each one to `target`.
async fn forward_all(listener: tokio::net::TcpListener, target: String) {
    loop {
        let Ok((mut inbound, peer)) = listener.accept().await else {
            continue;
        };
        let target = target.clone();
        tokio::spawn(async move {
            match tokio::net::TcpStream::connect(&target).await {
                Ok(mut outbound) => {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
                Err(err) => tracing::warn!(%peer, target, %err, "cannot reach the forward target"),
            }
        });
    }
}
