use std::process::ExitCode;

use metallb_api::config::{BgpBackend, ParseOptions, Severity};
use metallb_api::manifest;
use metallb_api::validate::validate_documents;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A YAML file, a directory of them, or `-` for standard input. Multi-document files may also
    /// hold the Secrets, Nodes and Namespaces the configuration refers to. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    files: Vec<String>,
    /// Also check the rules of this BGP backend. Without it only the rules common to both are
    /// checked, as MetalLB does when METALLB_BGP_TYPE is unset.
    #[arg(long, value_name = "native|frr", value_parser = parse_backend)]
    bgp_backend: Option<BgpBackend>,
    /// The MetalLB namespace. Objects without a namespace are taken to be in it; objects in
    /// another namespace are rejected, as MetalLB ignores them.
    #[arg(long, short = 'n', default_value = metallb_api::constants::DEFAULT_NAMESPACE)]
    namespace: String,
}

fn parse_backend(s: &str) -> Result<BgpBackend, String> {
    BgpBackend::parse(s)
}

pub fn run(args: Args) -> ExitCode {
    let mut docs = Vec::new();
    for path in &args.files {
        match manifest::read_path(path) {
            Ok(d) => docs.extend(d),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let report = validate_documents(&docs, &ParseOptions::new(args.namespace, args.bgp_backend));
    let (mut errors, mut warnings) = (0, 0);
    for p in &report.problems {
        match p.severity {
            Severity::Error => {
                errors += 1;
                println!("{p}");
            }
            Severity::Warning => {
                warnings += 1;
                println!("warning: {p}");
            }
        }
    }
    let summary = format!(
        "{} object(s): {errors} error(s), {warnings} warning(s){}",
        docs.len(),
        args.bgp_backend
            .map(|b| format!(" (bgp backend {})", b.as_str()))
            .unwrap_or_default()
    );
    eprintln!("{summary}");
    if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
