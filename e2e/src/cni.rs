//! `mlb-host-route`, a chained CNI plugin: the machine gets a host route to each pod IP via
//! the pod's node, as the topology document says (one route per pod IP, never one per pod
//! prefix: the machine may reach outside hosts inside those documentation ranges). The API
//! server reaches webhooks at pod IPs this way, and pods' replies from the machine find
//! their way back.
//!
//! The containerd of each node runs it after `ptp` (see [`crate::node`]); `mlb-testbed`
//! behaves as this plugin when called by that name (a symlink in the nodes' CNI bin
//! directory). Configuration (in the conflist):
//! `{"type": "mlb-host-route", "hostNetns": "/proc/<pid>/ns/net", "via": [v4, v6]}`.
//! ADD adds `ip route replace <ip>/32 via <via4>` (and /128 via v6) in the machine's network
//! namespace for every address of `prevResult` and passes `prevResult` on; DEL removes them
//! (when the runtime passes `prevResult`, as containerd does); CHECK and VERSION answer as
//! the CNI specification says.

use std::io::Read;
use std::net::IpAddr;

use serde_json::{Value, json};

/// The CNI versions this plugin speaks.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.4.0", "1.0.0"];

/// What the plugin does for one invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Commands to run (each an argv), in order.
    pub commands: Vec<Vec<String>>,
    /// Whether a failing command fails the invocation (ADD) or is ignored (DEL).
    pub strict: bool,
    /// What to print on stdout.
    pub output: Option<String>,
}

/// A CNI error result (printed on stdout, exit status 1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct CniError {
    pub code: u32,
    pub msg: String,
}

impl CniError {
    fn new(code: u32, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
        }
    }

    /// The error as the CNI specification's JSON.
    pub fn to_json(&self, version: &str) -> String {
        json!({"cniVersion": version, "code": self.code, "msg": self.msg}).to_string()
    }
}

/// The plan for `command` (`CNI_COMMAND`) with the network configuration `config` (stdin).
pub fn plan(command: &str, config: &str) -> Result<Plan, CniError> {
    if command == "VERSION" {
        return Ok(Plan {
            commands: Vec::new(),
            strict: true,
            output: Some(
                json!({"cniVersion": "1.0.0", "supportedVersions": SUPPORTED_VERSIONS}).to_string(),
            ),
        });
    }
    let conf: Value = serde_json::from_str(config)
        .map_err(|e| CniError::new(6, format!("invalid network configuration: {e}")))?;
    let netns = conf
        .get("hostNetns")
        .and_then(Value::as_str)
        .ok_or_else(|| CniError::new(7, "hostNetns is missing"))?;
    let via: Vec<IpAddr> = conf
        .get("via")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    let prev = conf.get("prevResult");
    let ips: Vec<IpAddr> = prev
        .and_then(|p| p.get("ips"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|ip| ip.get("address")?.as_str()?.split('/').next()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let route = |action: &str, ip: &IpAddr| -> Option<Vec<String>> {
        let gw = via.iter().find(|v| v.is_ipv4() == ip.is_ipv4())?;
        let (family, len) = if ip.is_ipv4() {
            ("-4", 32)
        } else {
            ("-6", 128)
        };
        Some(
            [
                "nsenter",
                &format!("--net={netns}"),
                "ip",
                family,
                "route",
                action,
                &format!("{ip}/{len}"),
                "via",
                &gw.to_string(),
            ]
            .map(String::from)
            .to_vec(),
        )
    };
    match command {
        "ADD" => {
            let prev = prev.ok_or_else(|| {
                CniError::new(
                    7,
                    "mlb-host-route must be chained after a plugin that assigns IPs",
                )
            })?;
            let commands = ips
                .iter()
                .map(|ip| {
                    route("replace", ip).ok_or_else(|| {
                        CniError::new(7, format!("no gateway of the family of {ip} in via"))
                    })
                })
                .collect::<Result<_, _>>()?;
            let mut result = prev.clone();
            if let Some(version) = conf.get("cniVersion") {
                result["cniVersion"] = version.clone();
            }
            Ok(Plan {
                commands,
                strict: true,
                output: Some(result.to_string()),
            })
        }
        "DEL" => Ok(Plan {
            commands: ips.iter().filter_map(|ip| route("del", ip)).collect(),
            strict: false,
            output: None,
        }),
        "CHECK" | "STATUS" | "GC" => Ok(Plan {
            commands: Vec::new(),
            strict: true,
            output: None,
        }),
        other => Err(CniError::new(4, format!("unknown CNI_COMMAND {other:?}"))),
    }
}

/// Runs the plugin: reads `CNI_COMMAND` and stdin, runs the plan, prints the result or error.
/// Returns the exit status.
pub fn main() -> i32 {
    let command = std::env::var("CNI_COMMAND").unwrap_or_default();
    let mut config = String::new();
    if command != "VERSION" && std::io::stdin().read_to_string(&mut config).is_err() {
        println!("{}", CniError::new(6, "cannot read stdin").to_json("1.0.0"));
        return 1;
    }
    let version = serde_json::from_str::<Value>(&config)
        .ok()
        .and_then(|c| c.get("cniVersion")?.as_str().map(String::from))
        .unwrap_or_else(|| "1.0.0".into());
    let plan = match plan(&command, &config) {
        Ok(plan) => plan,
        Err(e) => {
            println!("{}", e.to_json(&version));
            return 1;
        }
    };
    for argv in &plan.commands {
        match crate::cmd::run(argv) {
            Ok(_) => {}
            Err(e) if plan.strict => {
                println!("{}", CniError::new(11, e.to_string()).to_json(&version));
                return 1;
            }
            Err(_) => {}
        }
    }
    if let Some(out) = plan.output {
        println!("{out}");
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    const CONF: &str = r#"{"cniVersion": "1.0.0", "name": "mlb-pods", "type": "mlb-host-route",
        "hostNetns": "/proc/7/ns/net", "via": ["203.0.113.12", "2001:db8:0:100::12"],
        "prevResult": {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}],
            "ips": [{"address": "203.0.113.82/28", "gateway": "203.0.113.81"},
                    {"address": "2001:db8:0:202::2/64"}]}}"#;

    fn lines(plan: &Plan) -> Vec<String> {
        plan.commands.iter().map(|c| c.join(" ")).collect()
    }

    #[test]
    fn add_routes_every_pod_ip_on_the_machine_via_the_node_and_passes_the_result_on() {
        let plan = plan("ADD", CONF).unwrap();
        assert_eq!(
            lines(&plan),
            [
                "nsenter --net=/proc/7/ns/net ip -4 route replace 203.0.113.82/32 via 203.0.113.12",
                "nsenter --net=/proc/7/ns/net ip -6 route replace 2001:db8:0:202::2/128 via 2001:db8:0:100::12",
            ]
        );
        assert!(plan.strict);
        let out: Value = serde_json::from_str(&plan.output.unwrap()).unwrap();
        assert_eq!(
            out,
            json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}],
                "ips": [{"address": "203.0.113.82/28", "gateway": "203.0.113.81"},
                        {"address": "2001:db8:0:202::2/64"}]})
        );
    }

    #[test]
    fn del_removes_the_routes_and_ignores_failures() {
        let plan = plan("DEL", CONF).unwrap();
        assert_eq!(
            lines(&plan),
            [
                "nsenter --net=/proc/7/ns/net ip -4 route del 203.0.113.82/32 via 203.0.113.12",
                "nsenter --net=/proc/7/ns/net ip -6 route del 2001:db8:0:202::2/128 via 2001:db8:0:100::12",
            ]
        );
        assert!(!plan.strict);
        assert_eq!(plan.output, None);
    }

    #[test]
    fn add_without_a_previous_result_is_an_error() {
        let conf = r#"{"cniVersion": "1.0.0", "hostNetns": "/proc/7/ns/net", "via": []}"#;
        let err = plan("ADD", conf).unwrap_err();
        assert_eq!(err.code, 7);
        assert_eq!(
            err.to_json("1.0.0"),
            r#"{"cniVersion":"1.0.0","code":7,"msg":"mlb-host-route must be chained after a plugin that assigns IPs"}"#
        );
    }

    #[test]
    fn version_lists_the_supported_versions() {
        assert_eq!(
            plan("VERSION", "").unwrap().output.unwrap(),
            r#"{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}"#
        );
    }
}
