//! The command line. Offline subcommands need no cluster: they read files and print.

mod convert_config;
mod crds;
mod generate;
mod render;
mod run;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// metallb-rs operator: deploys and upgrades MetalLB from one `MetalLB` resource, and offline
/// tools for MetalLB configuration.
#[derive(Debug, Parser)]
#[command(name = "metallb-operator", version, about, long_about = None)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write every generated file (CRDs, the operator's kustomize base, the OLM bundle) under a
    /// repository root; hack/generate.sh runs it.
    #[command(hide = true)]
    Generate(generate::Args),
    /// Run the operator (what the operator's Deployment runs).
    Run(run::Args),
    /// Print the CustomResourceDefinitions (metallb.io kinds and MetalLB), or write one file per
    /// CRD into a directory.
    Crds(crds::Args),
    /// Check MetalLB configuration files as the cluster would, without a cluster. Prints one
    /// line per problem (`Kind/name: field: message`); exits 0 when the set is valid, 1 when it
    /// is not, 2 when the input cannot be read or parsed.
    Validate(validate::Args),
    /// Print, as multi-document YAML, exactly what the operator would apply for a MetalLB
    /// resource: for GitOps and for review.
    Render(render::Args),
    /// Convert a legacy MetalLB ConfigMap (or its `config` data) into metallb.io resources,
    /// printed as YAML. Exits 0 when converted, 1 when the input is invalid, 2 when unreadable.
    ConvertConfig(convert_config::Args),
}

pub fn run(args: Args) -> ExitCode {
    match args.command {
        Command::Run(a) => run::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Crds(a) => crds::run(a),
        Command::Validate(a) => validate::run(a),
        Command::Render(a) => render::run(a),
        Command::ConvertConfig(a) => convert_config::run(a),
    }
}
