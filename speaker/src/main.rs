//! `metallb-speaker`: parse the flags, set up logging, run.
use clap::Parser;
use metallb_speaker::cli::Args;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    metallb_runtime::logging::init(args.log_level, args.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(metallb_speaker::run::run(args))?;
    Ok(())
}
