//! The echo server behind image `localhost/echo` (binary `mlb-echo`): tells who answered.
//!
//! HTTP/1.1 on TCP (and the same line on UDP): `GET /` answers
//! `pod=<POD_NAME> namespace=<POD_NAMESPACE> node=<NODE_NAME> client=<ip>:<port>\n`, where the
//! names come from the environment (downward API in the test Deployments) and the client is
//! the peer address the server saw (so tests can check source-IP preservation);
//! `GET /healthz` answers `ok`. TCP binds `[::]` (both families); UDP binds the pod IPs from
//! `POD_IPS`/`POD_IP` when set (see [`serve`]).

#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};

/// Who this echo server is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub pod: String,
    pub namespace: String,
    pub node: String,
}

impl Identity {
    /// The pod IPs from `POD_IPS` (comma-separated, downward API `status.podIPs`) or `POD_IP`.
    pub fn addresses_from_env() -> Vec<IpAddr> {
        let list = std::env::var("POD_IPS")
            .or_else(|_| std::env::var("POD_IP"))
            .unwrap_or_default();
        list.split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    }

    /// From `POD_NAME`, `POD_NAMESPACE`, `NODE_NAME` (empty when unset).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        Self {
            pod: var("POD_NAME"),
            namespace: var("POD_NAMESPACE"),
            node: var("NODE_NAME"),
        }
    }

    /// The answer line for a client.
    pub fn line(&self, client: SocketAddr) -> String {
        format!(
            "pod={} namespace={} node={} client={}\n",
            self.pod, self.namespace, self.node, client
        )
    }
}

/// The response to a request line (`GET /path HTTP/1.1`): status code and body.
pub fn respond(request_line: &str, identity: &Identity, client: SocketAddr) -> (u16, String) {
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    match (method, path.split('?').next().unwrap_or_default()) {
        ("GET" | "HEAD", "/healthz" | "/readyz") => (200, "ok\n".into()),
        ("GET" | "HEAD", "/") => (200, identity.line(client)),
        ("GET" | "HEAD", _) => (404, "not found\n".into()),
        _ => (405, "method not allowed\n".into()),
    }
}

/// Serves HTTP on TCP `port` and the identity line on UDP `port`, until the process ends.
///
/// UDP is bound to each of `udp_addresses` (the pod IPs) when given: a socket bound to the
/// wildcard address answers from whatever address routing picks, which a connected client and
/// a DNAT reverse mapping both reject, and a hostNetwork pod shares its node's addresses.
pub async fn serve(port: u16, identity: Identity, udp_addresses: &[IpAddr]) -> std::io::Result<()> {
    let any = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
    let tcp = TcpListener::bind(any).await?;
    let binds: Vec<SocketAddr> = if udp_addresses.is_empty() {
        vec![any]
    } else {
        udp_addresses
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect()
    };
    for addr in &binds {
        let udp = UdpSocket::bind(addr).await?;
        let identity = identity.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                match udp.recv_from(&mut buf).await {
                    Ok((_, peer)) => {
                        let _ = udp
                            .send_to(identity.line(canonical(peer)).as_bytes(), peer)
                            .await;
                    }
                    Err(err) => eprintln!("mlb-echo: udp receive failed: {err}"),
                }
            }
        });
    }
    eprintln!("mlb-echo: listening on TCP {any} and UDP {binds:?} as {identity:?}");
    loop {
        let (stream, peer) = tcp.accept().await?;
        let identity = identity.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            loop {
                let mut request_line = String::new();
                match reader.read_line(&mut request_line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                // Headers until the empty line; no request bodies are expected.
                let mut close = false;
                loop {
                    let mut header = String::new();
                    match reader.read_line(&mut header).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) if header.trim().is_empty() => break,
                        Ok(_) => {
                            close |= header.to_ascii_lowercase().starts_with("connection: close")
                        }
                    }
                }
                close |= request_line.trim_end().ends_with("HTTP/1.0");
                let (code, body) = respond(&request_line, &identity, canonical(peer));
                let reason = match code {
                    200 => "OK",
                    404 => "Not Found",
                    _ => "Method Not Allowed",
                };
                let head = format!(
                    "HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{}\r\n",
                    body.len(),
                    if close { "connection: close\r\n" } else { "" }
                );
                let body = if request_line.starts_with("HEAD") {
                    String::new()
                } else {
                    body
                };
                if write
                    .write_all(format!("{head}{body}").as_bytes())
                    .await
                    .is_err()
                    || close
                {
                    return;
                }
            }
        });
    }
}

/// IPv4 peers of a dual-stack socket show as `::ffff:a.b.c.d`; report them as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn id() -> Identity {
        Identity {
            pod: "echo-1".into(),
            namespace: "blue".into(),
            node: "node-2".into(),
        }
    }

    #[test]
    fn root_names_pod_node_and_client() {
        let client: SocketAddr = "192.0.2.100:40000".parse().unwrap();
        assert_eq!(
            respond("GET / HTTP/1.1", &id(), client),
            (
                200,
                "pod=echo-1 namespace=blue node=node-2 client=192.0.2.100:40000\n".into()
            )
        );
    }

    #[test]
    fn healthz_and_unknown_paths() {
        let client: SocketAddr = "[2001:db8:0:1::100]:1".parse().unwrap();
        assert_eq!(
            respond("GET /healthz HTTP/1.1", &id(), client),
            (200, "ok\n".into())
        );
        assert_eq!(respond("GET /nope HTTP/1.1", &id(), client).0, 404);
        assert_eq!(respond("POST / HTTP/1.1", &id(), client).0, 405);
    }

    #[test]
    fn mapped_ipv4_peers_are_shown_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:192.0.2.100]:5".parse().unwrap();
        assert_eq!(canonical(mapped).to_string(), "192.0.2.100:5");
    }
}
