//! What every metallb-rs binary needs at run time and would otherwise copy:
//!
//! ```text
//!  main ─► logging::init (JSON lines by default, MetalLB's levels)
//!       ─► Shutdown::on_signals ──SIGTERM/SIGINT──► every task's `shutdown.wait()`
//!       ─► admin::serve(addr, admin::router().health(r).metrics(m), shutdown)
//!                 /healthz  the process answers
//!                 /readyz   `Readiness::check` of the component: 503 with the reason until ready
//!                 /metrics  Prometheus text 0.0.4, MetalLB's metric names (metrics::Exposition)
//! ```
//! No Kubernetes client here: a component decides what "ready" means and what its metrics are.
#![forbid(unsafe_code)]

pub mod admin;
pub mod logging;
pub mod metrics;
pub mod shutdown;

pub use shutdown::Shutdown;
