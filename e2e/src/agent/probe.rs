//! Readiness, liveness and startup probes, run from the node's network namespace (where the
//! container's process lives too).
//!
//! httpGet uses `curl` (HTTPS without verification, as the kubelet does), tcpSocket a TCP
//! connect, exec `nsenter` into the container's mount and network namespaces. gRPC probes are not
//! supported and count as success (logged once).

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Probe timing with Kubernetes defaults applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(u64::try_from(v.unwrap_or(default).max(0)).unwrap_or(0))
}

fn count(v: Option<i32>, default: i32) -> u32 {
    u32::try_from(v.unwrap_or(default).max(1)).unwrap_or(1)
}

impl Timing {
    pub fn of(probe: &Probe) -> Self {
        Self {
            initial_delay: secs(probe.initial_delay_seconds, 0),
            period: secs(probe.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: secs(probe.timeout_seconds, 1).max(Duration::from_secs(1)),
            success_threshold: count(probe.success_threshold, 1),
            failure_threshold: count(probe.failure_threshold, 3),
        }
    }
}

/// Resolves a probe port (number or containerPort name).
pub fn resolve_port(port: &IntOrString, container: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .or_else(|| name.parse().ok()),
    }
}

/// The `curl` command line of an httpGet probe against `default_host`.
pub fn http_command(
    probe: &Probe,
    container: &Container,
    default_host: IpAddr,
) -> Option<Vec<String>> {
    let get = probe.http_get.as_ref()?;
    let port = resolve_port(&get.port, container)?;
    let scheme = get.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
    let host = match get.host.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => h.to_string(),
        None => match default_host {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        },
    };
    let path = get.path.as_deref().unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let timeout = Timing::of(probe).timeout.as_secs().to_string();
    let mut argv: Vec<String> = [
        "curl",
        "-sk",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        &timeout,
    ]
    .map(String::from)
    .to_vec();
    for h in get.http_headers.iter().flatten() {
        argv.extend(["-H".to_string(), format!("{}: {}", h.name, h.value)]);
    }
    argv.push(format!("{scheme}://{host}:{port}{path}"));
    Some(argv)
}

/// Runs one probe; true on success.
pub async fn run_once(
    probe: &Probe,
    container: &Container,
    default_host: IpAddr,
    pid: Option<u32>,
) -> bool {
    let timing = Timing::of(probe);
    if let Some(argv) = http_command(probe, container, default_host) {
        let out = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .kill_on_drop(true)
            .output();
        return match tokio::time::timeout(timing.timeout + Duration::from_secs(1), out).await {
            Ok(Ok(o)) => {
                let code: u16 = String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse()
                    .unwrap_or(0);
                (200..400).contains(&code)
            }
            _ => false,
        };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let Some(port) = resolve_port(&tcp.port, container) else {
            return false;
        };
        let host: IpAddr = tcp
            .host
            .as_deref()
            .and_then(|h| h.parse().ok())
            .unwrap_or(default_host);
        let connect = tokio::net::TcpStream::connect((host, port));
        return matches!(
            tokio::time::timeout(timing.timeout, connect).await,
            Ok(Ok(_))
        );
    }
    if let Some(exec) = &probe.exec {
        let Some(pid) = pid else { return false };
        let command = exec.command.clone().unwrap_or_default();
        if command.is_empty() {
            return false;
        }
        let out = tokio::process::Command::new("nsenter")
            .args(["--target", &pid.to_string(), "--mount", "--net", "--"])
            .args(&command)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status();
        return matches!(tokio::time::timeout(timing.timeout, out).await, Ok(Ok(s)) if s.success());
    }
    if probe.grpc.is_some() {
        tracing::warn!("gRPC probes are not supported by the node agent; counting as success");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn container() -> Container {
        serde_saphyr::from_str(
            "name: c\nimage: x\nports: [{name: monitoring, containerPort: 7472}, {name: http, containerPort: 8080}]\n",
        )
        .unwrap()
    }

    #[test]
    fn http_probe_uses_the_named_port_on_the_pod_ip() {
        let probe: Probe = serde_saphyr::from_str(
            "httpGet: {path: /metrics, port: monitoring}\ntimeoutSeconds: 2\nperiodSeconds: 5\n",
        )
        .unwrap();
        assert_eq!(
            http_command(&probe, &container(), "203.0.113.65".parse().unwrap()).unwrap(),
            [
                "curl",
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "2",
                "http://203.0.113.65:7472/metrics"
            ]
        );
        assert_eq!(
            Timing::of(&probe),
            Timing {
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(5),
                timeout: Duration::from_secs(2),
                success_threshold: 1,
                failure_threshold: 3,
            }
        );
    }

    #[test]
    fn https_probe_on_ipv6_with_headers() {
        let probe: Probe = serde_saphyr::from_str(
            "httpGet: {path: healthz, port: 9443, scheme: HTTPS, httpHeaders: [{name: X-A, value: b}]}\n",
        )
        .unwrap();
        assert_eq!(
            http_command(&probe, &container(), "2001:db8:0:201::1".parse().unwrap()).unwrap(),
            [
                "curl",
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "1",
                "-H",
                "X-A: b",
                "https://[2001:db8:0:201::1]:9443/healthz"
            ]
        );
    }

    #[test]
    fn ports_resolve_by_number_or_name() {
        assert_eq!(resolve_port(&IntOrString::Int(80), &container()), Some(80));
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &container()),
            Some(8080)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("nope".into()), &container()),
            None
        );
    }
}
