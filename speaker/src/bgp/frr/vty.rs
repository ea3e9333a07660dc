//! Asking FRR's daemons for their state over their vty sockets (`/var/run/frr/<daemon>.vty`),
//! as `vtysh` does: a command is sent NUL-terminated; the daemon answers with the command's
//! output followed by three NUL bytes and a status byte (0: success). The speaker uses it for the
//! metrics of FRR mode, so its image needs no FRR tools and the pod no metrics sidecar.
//!
//! The sockets belong to the FRR container (user `frr`, group `frrvty`, mode 0770); the
//! sidecar's start script opens them to the speaker (docs/speaker.md, "FRR mode").

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

/// How long one daemon may take to answer all the commands of a query.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// FRR's status byte for success (`CMD_SUCCESS`).
pub const SUCCESS: u8 = 0;

/// The output of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub output: String,
    pub status: u8,
}

/// Splits a daemon's byte stream into replies (sans-IO).
#[derive(Debug, Default)]
pub struct Replies {
    buf: Vec<u8>,
}

impl Replies {
    /// Adds received bytes; returns the reply they complete, if any.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<Reply> {
        self.buf.extend_from_slice(bytes);
        let end = self.buf.windows(4).position(|w| w[..3] == [0, 0, 0])?;
        let status = self.buf[end + 3];
        let output = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        Some(Reply { output, status })
    }
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum VtyError {
    #[error("failed to connect to {socket}: {source}")]
    Connect {
        socket: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to talk to {socket}: {source}")]
    Io {
        socket: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{socket} closed the connection before answering")]
    Closed { socket: String },
    #[error("{socket} did not answer within {}s", QUERY_TIMEOUT.as_secs())]
    Timeout { socket: String },
    #[error("{socket} refused {command:?} (status {status}): {output}")]
    Refused {
        socket: String,
        command: String,
        status: u8,
        output: String,
    },
}

/// Runs `commands` in order on the daemon listening on `socket`; their outputs.
pub async fn query(socket: &Path, commands: &[&str]) -> Result<Vec<String>, VtyError> {
    let name = socket.display().to_string();
    match tokio::time::timeout(QUERY_TIMEOUT, query_inner(socket, &name, commands)).await {
        Ok(result) => result,
        Err(_) => Err(VtyError::Timeout { socket: name }),
    }
}

async fn query_inner(
    socket: &Path,
    name: &str,
    commands: &[&str],
) -> Result<Vec<String>, VtyError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| VtyError::Connect {
            socket: name.to_string(),
            source,
        })?;
    exchange(stream, name, commands).await
}

/// The conversation on an open connection.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    name: &str,
    commands: &[&str],
) -> Result<Vec<String>, VtyError> {
    let io = |source| VtyError::Io {
        socket: name.to_string(),
        source,
    };
    let mut replies = Replies::default();
    let mut outputs = Vec::with_capacity(commands.len());
    let mut buf = vec![0u8; 64 * 1024];
    for command in commands {
        let mut line = command.as_bytes().to_vec();
        line.push(0);
        stream.write_all(&line).await.map_err(io)?;
        let reply = loop {
            if let Some(r) = replies.feed(&[]) {
                break r;
            }
            let n = stream.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                return Err(VtyError::Closed {
                    socket: name.to_string(),
                });
            }
            if let Some(r) = replies.feed(&buf[..n]) {
                break r;
            }
        };
        if reply.status != SUCCESS {
            return Err(VtyError::Refused {
                socket: name.to_string(),
                command: (*command).to_string(),
                status: reply.status,
                output: reply.output.trim().to_string(),
            });
        }
        outputs.push(reply.output);
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn a_reply_ends_with_three_nuls_and_a_status_even_across_reads() {
        let mut r = Replies::default();
        assert_eq!(r.feed(b"{\"a\":"), None);
        assert_eq!(r.feed(b"1}\n\0\0"), None);
        assert_eq!(
            r.feed(b"\0\0% Unknown command\0\0\0\x02"),
            Some(Reply {
                output: "{\"a\":1}\n".into(),
                status: 0
            })
        );
        assert_eq!(
            r.feed(&[]),
            Some(Reply {
                output: "% Unknown command".into(),
                status: 2
            })
        );
        assert_eq!(r.feed(&[]), None);
    }

    #[tokio::test]
    async fn commands_are_sent_nul_terminated_and_their_outputs_returned_in_order() {
        let (ours, mut daemon) = tokio::io::duplex(1024);
        let daemon = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            for answer in [&b"\0\0\0\0"[..], &b"[]\0\0\0\0"[..]] {
                let before = got.iter().filter(|b| **b == 0).count();
                while got.iter().filter(|b| **b == 0).count() == before {
                    let n = daemon.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                daemon.write_all(answer).await.unwrap();
            }
            got
        });
        let outputs = exchange(ours, "bfdd.vty", &["enable", "show bfd peers json"])
            .await
            .unwrap();
        assert_eq!(outputs, ["", "[]"]);
        assert_eq!(daemon.await.unwrap(), b"enable\0show bfd peers json\0");
    }

    #[tokio::test]
    async fn a_refused_command_is_an_error_naming_it() {
        let (ours, mut daemon) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let _ = daemon.read(&mut buf).await;
            daemon
                .write_all(b"% [BFD] Unknown command: show bfd peers json\n\0\0\0\x02")
                .await
                .unwrap();
        });
        let err = exchange(ours, "bfdd.vty", &["show bfd peers json"])
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bfdd.vty refused \"show bfd peers json\" (status 2): % [BFD] Unknown command: show bfd peers json"
        );
    }
}
