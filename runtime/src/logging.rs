//! Logs: JSON lines by default, as MetalLB writes them (`--log-format text` for people), at
//! MetalLB's levels (`--log-level all|debug|info|warn|error|none`). `RUST_LOG`, when set,
//! replaces the level with a full `tracing` filter.

use tracing_subscriber::EnvFilter;

/// `--log-level`, MetalLB's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Level {
    All,
    Debug,
    Info,
    Warn,
    Error,
    None,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Text,
}

impl Level {
    /// The `tracing` filter for this level. At `debug`, only metallb-rs's own crates log at
    /// debug: the HTTP, TLS and client libraries' debug output would drown them.
    pub fn directive(self) -> &'static str {
        match self {
            Self::All => "trace",
            Self::Debug => {
                "info,metallb_api=debug,metallb_runtime=debug,metallb_controller=debug,\
                 metallb_speaker=debug,metallb_operator=debug"
            }
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::None => "off",
        }
    }
}

/// Installs the global subscriber, writing to standard error.
pub fn init(level: Level, format: Format) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level.directive()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        Format::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        Format::Text => builder.init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metallb_level_is_a_valid_filter() {
        for level in [
            Level::All,
            Level::Debug,
            Level::Info,
            Level::Warn,
            Level::Error,
            Level::None,
        ] {
            EnvFilter::try_new(level.directive()).unwrap_or_else(|e| panic!("{level:?}: {e}"));
        }
    }
}
