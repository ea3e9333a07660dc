//! The speaker's side of the FRR sidecar contract (docs/speaker.md, "FRR mode"), and the task
//! that runs [`Reloads`] on it.
//!
//! The speaker and the `reloader` container share one directory (`/etc/frr_reloader`, the
//! directory of `FRR_CONFIG_FILE`):
//!
//! | file | written by | content |
//! |---|---|---|
//! | `frr.conf` | speaker | the whole configuration, replaced atomically (written aside, renamed) |
//! | `frr.delta` | speaker | when only advertised prefixes changed: the `vtysh -f` script from the configuration applied last (first line `! base <its sha256>`) to `frr.conf` |
//! | `frr.reset` | speaker | the sessions to reset once `frr.conf` is applied, one `clear bgp` target per line (`192.0.2.1`, `vrf red 192.0.2.2`): those whose timers or graceful restart changed |
//! | `reload` | reloader creates it | a FIFO; the speaker writes one line to ask for a reload: `delta` (try `frr.delta`, then the whole file if it fails or its base is not what FRR runs) or `reload` (the whole file) |
//! | `status` | reloader | after each request: `<sha256 of the file> ok\|invalid\|failed`, then FRR's messages |
//!
//! A FIFO needs no shared process namespace and no PID file (MetalLB signals the reloader's
//! PID): opening it for writing fails at once (`ENXIO`) when no reloader reads it, which is how
//! the speaker knows the sidecar is not running. The answer is matched to the request by the
//! file's digest, so an answer left over from before a restart is never taken for the new one.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::reload::{Answer, Outcome, Reloads, Send};

/// How often the status file is read while a reload is under way.
pub const ANSWER_POLL: Duration = Duration::from_millis(20);
/// The FIFO's name in the shared directory.
pub const FIFO: &str = "reload";
/// The status file's name in the shared directory.
pub const STATUS: &str = "status";
/// The prefixes-only script's name in the shared directory.
pub const DELTA: &str = "frr.delta";
/// The name of the list of sessions to reset, in the shared directory.
pub const RESET: &str = "frr.reset";

/// The shared directory's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config: PathBuf,
    pub fifo: PathBuf,
    pub status: PathBuf,
    pub delta: PathBuf,
    pub reset: PathBuf,
}

impl Paths {
    /// The FIFO and the status file next to the configuration file.
    pub fn beside(config: &Path) -> Self {
        let dir = config.parent().unwrap_or(Path::new("."));
        Self {
            config: config.to_path_buf(),
            fifo: dir.join(FIFO),
            status: dir.join(STATUS),
            delta: dir.join(DELTA),
            reset: dir.join(RESET),
        }
    }
}

/// Why a request was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No reloader reads the FIFO (not started yet, or gone).
    #[error("no reloader listens on {0}")]
    Unreachable(String),
    #[error("failed to write {path}: {message}")]
    Write { path: String, message: String },
}

/// Writes the configuration (with the prefixes-only script and the sessions to reset, if any)
/// and asks the reloader to apply it.
pub fn request(paths: &Paths, send: &Send) -> Result<(), RequestError> {
    let (text, delta) = (send.text.as_str(), send.delta.as_deref());
    let write_err = |path: &Path, e: std::io::Error| RequestError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let replace = |path: &Path, content: &str| {
        let aside = path.with_extension("new");
        std::fs::write(&aside, content).map_err(|e| write_err(&aside, e))?;
        std::fs::rename(&aside, path).map_err(|e| write_err(path, e))
    };
    let remove = |path: &Path| match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(write_err(path, e)),
    };
    replace(&paths.config, text)?;
    match delta {
        Some(script) => replace(&paths.delta, script)?,
        None => remove(&paths.delta)?,
    }
    if send.resets.is_empty() {
        remove(&paths.reset)?;
    } else {
        let list: String = send.resets.iter().map(|r| format!("{r}\n")).collect();
        replace(&paths.reset, &list)?;
    }
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&paths.fifo)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) | Some(libc::ENOENT) => {
                RequestError::Unreachable(paths.fifo.display().to_string())
            }
            _ => write_err(&paths.fifo, e),
        })?;
    let line: &[u8] = if delta.is_some() {
        b"delta\n"
    } else {
        b"reload\n"
    };
    fifo.write_all(line).map_err(|e| write_err(&paths.fifo, e))
}

/// The reloader's answer in the status file's text.
pub fn parse_status(text: &str) -> Option<Answer> {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let (digest, word) = first.trim().split_once(' ')?;
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let message = rest.trim().to_string();
    let outcome = match word.trim() {
        "ok" => Outcome::Applied,
        "invalid" => Outcome::Invalid(message),
        "failed" => Outcome::Failed(message),
        _ => return None,
    };
    Some(Answer {
        digest: digest.to_ascii_lowercase(),
        outcome,
    })
}

/// What the FRR backend hands to [`run`]: the configuration text, or why it could not be
/// rendered (FRR then keeps what it runs, and the problem is reported).
pub type Desired = Option<Result<String, String>>;

/// Keeps FRR running the desired configuration until `desired` closes; publishes the problem
/// (render error, refused or failed reload, unreachable sidecar) on `problem`.
pub async fn run(
    paths: Paths,
    debounce: Duration,
    mut desired: watch::Receiver<Desired>,
    problem: watch::Sender<Option<String>>,
) {
    let mut reloads = Reloads::new(debounce);
    let mut render_error: Option<String> = None;
    let mut sent_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if let Some(send) = reloads.poll(now.into_std()) {
            match request(&paths, &send) {
                Ok(()) => {
                    tracing::debug!(
                        digest = send.digest,
                        config = send.text,
                        delta = send.delta,
                        "asked the FRR sidecar to apply the configuration"
                    );
                    if !send.resets.is_empty() {
                        tracing::info!(
                            sessions = ?send.resets,
                            "their timers or graceful restart changed: FRR resets them once the configuration is applied"
                        );
                    }
                    sent_at = Some(now);
                }
                Err(RequestError::Unreachable(why)) => {
                    tracing::debug!(why, "FRR sidecar not reachable yet");
                    reloads.unreachable(&why, now.into_std());
                }
                Err(e) => reloads.unreachable(&e.to_string(), now.into_std()),
            }
        }
        let current = render_error
            .clone()
            .or_else(|| reloads.problem().map(str::to_string));
        problem.send_if_modified(|p| {
            if *p == current {
                return false;
            }
            match &current {
                Some(why) => {
                    tracing::warn!(problem = why, "FRR does not run the desired configuration")
                }
                None => tracing::info!("FRR runs the desired configuration again"),
            }
            *p = current;
            true
        });

        let wake = reloads.next_deadline().map(Instant::from_std);
        let waiting = reloads.waiting();
        tokio::select! {
            changed = desired.changed() => {
                if changed.is_err() {
                    return;
                }
                match desired.borrow_and_update().clone() {
                    Some(Ok(text)) => {
                        render_error = None;
                        reloads.desire(text, Instant::now().into_std());
                    }
                    Some(Err(e)) => render_error = Some(e),
                    None => {}
                }
            }
            () = sleep_until(wake), if wake.is_some() => reloads.timer(Instant::now().into_std()),
            () = tokio::time::sleep(ANSWER_POLL), if waiting => {
                let Some(answer) = std::fs::read_to_string(&paths.status).ok().as_deref().and_then(parse_status) else {
                    continue;
                };
                let took = sent_at.map(|t| t.elapsed().as_millis()).unwrap_or_default();
                match &answer.outcome {
                    Outcome::Applied => tracing::info!(digest = answer.digest, took_ms = took, "FRR applied the configuration"),
                    Outcome::Invalid(m) => tracing::error!(digest = answer.digest, message = m, "FRR refused the configuration as invalid; it keeps the previous one"),
                    Outcome::Failed(m) => tracing::error!(digest = answer.digest, message = m, "FRR failed to apply the configuration; the reloader put the last good one back"),
                }
                reloads.answered(answer, Instant::now().into_std());
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    const DIGEST: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn the_status_file_gives_the_digest_and_the_outcome_with_frrs_messages() {
        assert_eq!(
            parse_status(&format!("{DIGEST} ok\n")),
            Some(Answer {
                digest: DIGEST.into(),
                outcome: Outcome::Applied
            })
        );
        assert_eq!(
            parse_status(&format!(
                "{DIGEST} invalid\nline 12: % Unknown command: neighbor x bogus\n"
            )),
            Some(Answer {
                digest: DIGEST.into(),
                outcome: Outcome::Invalid("line 12: % Unknown command: neighbor x bogus".into())
            })
        );
        assert_eq!(
            parse_status(&format!("{DIGEST} failed\nvtysh exited with 1\nmore\n")),
            Some(Answer {
                digest: DIGEST.into(),
                outcome: Outcome::Failed("vtysh exited with 1\nmore".into())
            })
        );
    }

    #[test]
    fn a_status_file_being_written_or_from_another_tool_is_no_answer() {
        assert_eq!(parse_status(""), None);
        assert_eq!(parse_status("1700000000 success\n"), None);
        assert_eq!(parse_status(&format!("{DIGEST} maybe\n")), None);
    }

    #[test]
    fn the_fifo_and_the_status_file_sit_next_to_the_configuration() {
        assert_eq!(
            Paths::beside(Path::new("/etc/frr_reloader/frr.conf")),
            Paths {
                config: "/etc/frr_reloader/frr.conf".into(),
                fifo: "/etc/frr_reloader/reload".into(),
                status: "/etc/frr_reloader/status".into(),
                delta: "/etc/frr_reloader/frr.delta".into(),
                reset: "/etc/frr_reloader/frr.reset".into(),
            }
        );
    }

    #[test]
    fn without_a_reloader_the_request_writes_the_file_and_says_it_is_unreachable() {
        let dir = std::env::temp_dir().join(format!("mlb-frr-sidecar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths = Paths::beside(&dir.join("frr.conf"));
        std::fs::write(&paths.delta, "! base 00\n").unwrap();
        std::fs::write(&paths.reset, "192.0.2.9\n").unwrap();
        let send = |text: &str, delta: Option<&str>, resets: &[&str]| Send {
            text: text.into(),
            digest: crate::bgp::frr::reload::digest(text),
            delta: delta.map(str::to_string),
            resets: resets.iter().map(|r| r.to_string()).collect(),
        };
        let result = request(&paths, &send("hostname node-1\n", None, &[]));
        assert_eq!(
            result,
            Err(RequestError::Unreachable(paths.fifo.display().to_string()))
        );
        assert_eq!(
            std::fs::read_to_string(&paths.config).unwrap(),
            "hostname node-1\n"
        );
        assert!(
            !paths.delta.exists(),
            "a stale script is never left for the reloader"
        );
        assert!(
            !paths.reset.exists(),
            "nor a stale list of sessions to reset"
        );
        let result = request(
            &paths,
            &send(
                "hostname node-2\n",
                Some("! base 01\n"),
                &["192.0.2.1", "vrf red 192.0.2.2"],
            ),
        );
        assert!(matches!(result, Err(RequestError::Unreachable(_))));
        assert_eq!(
            std::fs::read_to_string(&paths.delta).unwrap(),
            "! base 01\n"
        );
        assert_eq!(
            std::fs::read_to_string(&paths.reset).unwrap(),
            "192.0.2.1\nvrf red 192.0.2.2\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
