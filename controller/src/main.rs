#![forbid(unsafe_code)]

use clap::Parser;
use metallb_controller::cli::Args;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    metallb_runtime::logging::init(args.log_level, args.log_format);
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a TLS crypto provider was already installed"))?;
    metallb_controller::run(args).await?;
    Ok(())
}
