//! `metallb-operator convert-config`: the legacy ConfigMap migration, offline. It converts exactly
//! as the operator does (`metallb_api::legacy`), prints the objects, and creates nothing.

use std::io::Read;
use std::process::ExitCode;

use metallb_api::config::BgpBackend;
use metallb_api::constants::DEFAULT_NAMESPACE;
use metallb_api::constants::names::LEGACY_CONFIGMAP;
use metallb_api::legacy::{self, ConvertOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The legacy ConfigMap manifest (`kubectl get configmap config -o yaml`), or only its
    /// `config` data; `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    file: String,
    /// The MetalLB namespace the objects are created in. Default: the ConfigMap's namespace, or
    /// metallb-system.
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Also check the rules of this BGP backend. Without it only the rules common to both are
    /// checked.
    #[arg(long, value_name = "native|frr", value_parser = BgpBackend::parse)]
    bgp_backend: Option<BgpBackend>,
}

/// Prints the converted objects on stdout (exit 0); on invalid input, nothing on stdout and one
/// problem per line on stderr (exit 1); exit 2 when the file cannot be read.
///
/// Decision: malformed YAML is invalid input (1), like an invalid configuration, because the
/// operator reports both as `InvalidConfig`; 2 is only for a file that cannot be read. (MetalLB's
/// converter logs errors and exits 0.)
pub fn run(args: Args) -> ExitCode {
    let text = match read(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: failed to read {}: {e}", args.file);
            return ExitCode::from(2);
        }
    };
    let converted = legacy::read_input(&text).and_then(|input| {
        // The objects go to --namespace when given; the source names where the ConfigMap is.
        let source_namespace = input
            .namespace
            .clone()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        let options = ConvertOptions {
            namespace: args.namespace.clone().unwrap_or(source_namespace.clone()),
            source: format!(
                "{source_namespace}/{}",
                input.name.as_deref().unwrap_or(LEGACY_CONFIGMAP)
            ),
            backend: args.bgp_backend,
        };
        legacy::convert(&input.data, &options)
    });
    match converted {
        Ok(converted) => {
            for w in &converted.warnings {
                eprintln!("warning: {w}");
            }
            if converted.objects.is_empty() {
                eprintln!("note: the configuration is empty: there is nothing to convert");
            }
            print!("{}", converted.to_yaml());
            eprintln!(
                "converted {} into {} object(s){}",
                converted.source,
                converted.objects.len(),
                args.bgp_backend
                    .map(|b| format!(" (bgp backend {})", b.as_str()))
                    .unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            for line in e.lines() {
                eprintln!("error: {line}");
            }
            ExitCode::from(1)
        }
    }
}

fn read(path: &str) -> std::io::Result<String> {
    if path == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path)
    }
}
