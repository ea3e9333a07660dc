//! Logs: JSON lines by default (`--log-format text` for people), at MetalLB's levels.

use tracing_subscriber::EnvFilter;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error(
        "failed to set up logging: unknown log level {0:?} (all, debug, info, warn, error, none)"
    )]
    Level(String),
    #[error("failed to set up logging: unknown log format {0:?} (json, text)")]
    Format(String),
}

/// The tracing filter for a MetalLB `--log-level`.
pub fn filter(level: &str) -> Result<&'static str, LoggingError> {
    Ok(match level {
        "all" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" => "warn",
        "error" => "error",
        "none" => "off",
        other => return Err(LoggingError::Level(other.to_string())),
    })
}

pub fn init(level: &str, format: &str) -> Result<(), LoggingError> {
    let filter = EnvFilter::new(format!(
        "{},kube=warn,hyper=warn,tower=warn",
        filter(level)?
    ));
    match format {
        "json" => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_env_filter(filter)
            .init(),
        "text" => tracing_subscriber::fmt().with_env_filter(filter).init(),
        other => return Err(LoggingError::Format(other.to_string())),
    }
    Ok(())
}
