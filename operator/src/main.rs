//! `metallb-operator`: runs the operator, or one of the offline commands (`crds`, `validate`,
//! `render`, `convert-config`).
#![forbid(unsafe_code)]

mod cli;
mod install;
mod metrics;
mod reconcile;
mod render;
mod spec;
mod version;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // One TLS crypto provider for every client in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = cli::Args::parse();
    cli::run(args)
}
