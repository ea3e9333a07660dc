use std::path::PathBuf;
use std::process::ExitCode;

use metallb_api::crd;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write `metallb.io_<plural>.yaml` files here instead of printing to standard output.
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// The namespace of the BGPPeer conversion webhook Service.
    #[arg(long, default_value = metallb_api::constants::DEFAULT_NAMESPACE, env = "OPERATOR_NAMESPACE")]
    namespace: String,
}

pub fn run(args: Args) -> ExitCode {
    let crds = crd::all_for_namespace(&args.namespace);
    match args.output_dir {
        None => {
            let docs: Vec<String> = crds.iter().map(crd::to_yaml).collect();
            print!("{}", docs.join("---\n"));
        }
        Some(dir) => {
            for c in &crds {
                let path = dir.join(crd::file_name(c));
                if let Err(e) = std::fs::create_dir_all(&dir)
                    .and_then(|_| std::fs::write(&path, crd::to_yaml(c)))
                {
                    eprintln!("error: {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
        }
    }
    ExitCode::SUCCESS
}
