use std::process::ExitCode;

use metallb_api::manifest::{self, Object};

use crate::render::{self, Images};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The MetalLB resource (a file or `-`).
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    file: String,
    /// The operator's namespace, where everything is deployed (default: the resource's own, else
    /// metallb-system).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
}

/// Prints, as multi-document YAML, exactly what the operator would apply for a MetalLB resource.
/// Images come from CONTROLLER_IMAGE, SPEAKER_IMAGE and FRR_IMAGE, as for the operator.
pub fn run(args: Args) -> ExitCode {
    let docs = match manifest::read_path(&args.file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let crs: Vec<_> = docs
        .iter()
        .filter_map(|d| match manifest::object(&d.value) {
            Ok(Object::MetalLB(m)) => Some(Ok(m)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect();
    let cr = match crs.as_slice() {
        [Ok(cr)] => cr,
        [Err(e)] => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
        _ => {
            eprintln!(
                "error: {}: expected exactly one MetalLB resource, found {}",
                args.file,
                crs.len()
            );
            return ExitCode::from(1);
        }
    };
    let namespace = args
        .namespace
        .or_else(|| cr.metadata.namespace.clone())
        .unwrap_or_else(|| metallb_api::constants::DEFAULT_NAMESPACE.to_string());
    match render::render(cr, &namespace, &Images::from_env()) {
        Ok(objects) => {
            print!("{}", render::to_yaml(&objects));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "error: MetalLB/{}: {e}",
                cr.metadata.name.as_deref().unwrap_or("<unnamed>")
            );
            ExitCode::from(1)
        }
    }
}
