//! Metrics in the Prometheus text format 0.0.4, the one content type every metallb-rs component
//! serves.
//!
//! Decision: written by hand rather than with `prometheus-client`, whose OpenMetrics output
//! renames every counter to `<name>_total`; MetalLB's dashboards and alerts query names such as
//! `metallb_layer2_requests_received` and `metallb_bgp_updates_total` exactly as MetalLB's Go
//! client exports them, and the text format 0.0.4 is what every scraper accepts. A component
//! keeps its values however it likes and writes them through [`Text`].

use std::fmt::{Display, Write};

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Something that can write its metrics.
pub trait Exposition: Send + Sync + 'static {
    fn render(&self, out: &mut Text);
}

/// The type line of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// A metrics page being written.
#[derive(Debug, Default)]
pub struct Text(String);

impl Text {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.0, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample line; label values are escaped.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape_label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The whole page of `exposition`.
pub fn render(exposition: &dyn Exposition) -> String {
    let mut text = Text::default();
    exposition.render(&mut text);
    text.into_string()
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    struct Two;
    impl Exposition for Two {
        fn render(&self, out: &mut Text) {
            out.family(
                "metallb_bgp_session_up",
                Kind::Gauge,
                "BGP session state (1 is up, 0 is down)",
            );
            out.sample("metallb_bgp_session_up", &[("peer", "192.0.2.1:179")], 1);
            out.single(
                "metallb_k8s_client_config_loaded_bool",
                Kind::Gauge,
                "1 if loaded",
                0,
            );
            out.family(
                "metallb_layer2_requests_received",
                Kind::Counter,
                "requests",
            );
            out.sample(
                "metallb_layer2_requests_received",
                &[("ip", "a\"b\\c\nd")],
                7u64,
            );
        }
    }

    #[test]
    fn families_and_samples_are_written_in_the_text_format_with_escaped_labels() {
        assert_eq!(
            render(&Two),
            "# HELP metallb_bgp_session_up BGP session state (1 is up, 0 is down)\n\
             # TYPE metallb_bgp_session_up gauge\n\
             metallb_bgp_session_up{peer=\"192.0.2.1:179\"} 1\n\
             # HELP metallb_k8s_client_config_loaded_bool 1 if loaded\n\
             # TYPE metallb_k8s_client_config_loaded_bool gauge\n\
             metallb_k8s_client_config_loaded_bool 0\n\
             # HELP metallb_layer2_requests_received requests\n\
             # TYPE metallb_layer2_requests_received counter\n\
             metallb_layer2_requests_received{ip=\"a\\\"b\\\\c\\nd\"} 7\n"
        );
    }
}
