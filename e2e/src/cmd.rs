//! Running external programs (`ip`, `nft`, `kill`, `mount`, ...) with errors that say
//! what was run and what it printed.
//!
//! The testbed drives the kernel through the standard tools rather than syscalls: it keeps
//! the crate free of `unsafe`, and every step can be replayed by hand from the logs.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A command that could not be run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("failed to run `{cmd}`: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Failed {
        cmd: String,
        status: String,
        stderr: String,
    },
}

/// Renders a command line for messages, quoting arguments with spaces.
pub fn display(argv: &[impl AsRef<str>]) -> String {
    argv.iter()
        .map(|a| {
            let a = a.as_ref();
            if a.is_empty() || a.contains([' ', '"', '\'', '$']) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `argv`, returns its output; fails when it cannot start or exits non-zero.
pub fn run(argv: &[impl AsRef<str>]) -> Result<Output, CmdError> {
    run_with_stdin(argv, None)
}

/// Like [`run`], feeding `stdin` to the command.
pub fn run_with_stdin(argv: &[impl AsRef<str>], stdin: Option<&str>) -> Result<Output, CmdError> {
    let output = output(argv, stdin)?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(CmdError::Failed {
            cmd: display(argv),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// Runs `argv` and returns its output whatever the exit status.
pub fn output(argv: &[impl AsRef<str>], stdin: Option<&str>) -> Result<Output, CmdError> {
    let cmd = display(argv);
    let (program, args) = argv.split_first().ok_or_else(|| CmdError::Spawn {
        cmd: cmd.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
    })?;
    let mut command = Command::new(program.as_ref());
    command.args(args.iter().map(AsRef::as_ref));
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let spawn_err = |source| CmdError::Spawn {
        cmd: cmd.clone(),
        source,
    };
    let mut child = command.spawn().map_err(spawn_err)?;
    // The input is written from a thread while the output is read, so neither side waits on the
    // other with a full pipe. A command that exits before reading all of it (a syntax error on
    // the first line) breaks the pipe: that is not an error of ours, its status and stderr say
    // what happened.
    let writer = match (stdin, child.stdin.take()) {
        (Some(input), Some(mut pipe)) => {
            let input = input.as_bytes().to_vec();
            Some(std::thread::spawn(move || {
                use std::io::Write;
                match pipe.write_all(&input) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                    other => other,
                }
            }))
        }
        _ => None,
    };
    let output = child.wait_with_output().map_err(spawn_err)?;
    if let Some(writer) = writer {
        writer
            .join()
            .map_err(|_| spawn_err(std::io::Error::other("the input writer panicked")))?
            .map_err(spawn_err)?;
    }
    Ok(output)
}

/// Runs `argv`; true when it exits 0. For probes such as "does this link exist".
pub fn succeeds(argv: &[impl AsRef<str>]) -> bool {
    output(argv, None).is_ok_and(|o| o.status.success())
}

/// Runs `argv` and returns its stdout as text.
pub fn stdout(argv: &[impl AsRef<str>]) -> Result<String, CmdError> {
    Ok(String::from_utf8_lossy(&run(argv)?.stdout).into_owned())
}

/// The argv that runs `cmd` inside network namespace `netns`.
pub fn in_netns(netns: &str, cmd: &[impl AsRef<str>]) -> Vec<String> {
    let mut argv = vec![
        "ip".to_string(),
        "netns".into(),
        "exec".into(),
        netns.into(),
    ];
    argv.extend(cmd.iter().map(|a| a.as_ref().to_string()));
    argv
}

/// Sends `signal` (e.g. `TERM`, `KILL`) to the given PIDs (negative: process groups).
/// Processes that are already gone are not an error.
pub fn kill(signal: &str, pids: &[i64]) {
    if pids.is_empty() {
        return;
    }
    let mut argv = vec!["kill".to_string(), "-s".into(), signal.into(), "--".into()];
    argv.extend(pids.iter().map(i64::to_string));
    let _ = output(&argv, None);
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// All PIDs in /proc.
pub fn all_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The target of `/proc/<pid>/ns/<kind>` (e.g. `mnt:[4026531841]`), if readable.
pub fn namespace_of(pid: u32, kind: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The process group of `pid`, from /proc/<pid>/stat.
pub fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // fields after ")": state ppid pgrp ...
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// The session of `pid`, from /proc/<pid>/stat.
pub fn session(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // fields after ")": state ppid pgrp session ...
    rest.split_whitespace().nth(3)?.parse().ok()
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Processes whose executable is `exe` (compared after resolving symlinks).
pub fn pids_of_executable(exe: &Path) -> Vec<u32> {
    let Ok(exe) = exe.canonicalize() else {
        return Vec::new();
    };
    all_pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| {
                // A replaced binary shows as "<path> (deleted)".
                p == exe || p.to_string_lossy() == format!("{} (deleted)", exe.display())
            })
        })
        .collect()
}

/// SIGTERM to `pids`, up to `grace` for them to exit, then SIGKILL to the survivors.
pub fn terminate(pids: &[u32], grace: std::time::Duration) {
    let as_i64: Vec<i64> = pids.iter().map(|p| i64::from(*p)).collect();
    kill("TERM", &as_i64);
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let survivors: Vec<i64> = pids
        .iter()
        .filter(|p| alive(**p))
        .map(|p| i64::from(*p))
        .collect();
    kill("KILL", &survivors);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_arguments_with_spaces() {
        assert_eq!(
            display(&["vtysh", "-c", "show bgp summary", "it's"]),
            r"vtysh -c 'show bgp summary' 'it'\''s'"
        );
    }

    #[test]
    fn in_netns_prefixes_ip_netns_exec() {
        assert_eq!(
            in_netns("mlb-client", &["curl", "-s"]),
            ["ip", "netns", "exec", "mlb-client", "curl", "-s"]
        );
    }

    #[test]
    fn a_command_that_exits_without_reading_its_input_fails_with_its_own_status() {
        // Far more than a pipe holds, so the write always meets the closed pipe.
        let input = "x".repeat(1 << 20);
        let err =
            run_with_stdin(&["sh", "-c", "echo refused >&2; exit 3"], Some(&input)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`sh -c 'echo refused >&2; exit 3'` failed (exit status: 3): refused"
        );
    }

    #[test]
    fn input_and_output_larger_than_a_pipe_do_not_wait_on_each_other() {
        let input = "line\n".repeat(1 << 18);
        let out = run_with_stdin(&["cat"], Some(&input)).unwrap();
        assert_eq!(out.stdout, input.as_bytes());
    }
}
