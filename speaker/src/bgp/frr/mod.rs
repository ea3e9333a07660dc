//! FRR mode (`bgpBackend: frr`): the speaker renders FRR's whole configuration from the same
//! advertisement decision the native backend runs, and has the FRR sidecar apply it.
//!
//! ```text
//!  config    pure: advertise::Decision ──► frr.conf text (handlebars templates, golden files)
//! ```

pub mod config;
