//! `metallb-operator`: runs the operator, or one of the offline commands (`crds`, `validate`).
#![forbid(unsafe_code)]

mod cli;
mod render;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Args::parse();
    cli::run(args)
}
