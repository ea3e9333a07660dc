//! Which program runs for a container image: the testbed's stand-in for a container runtime.
//!
//! There are no images here: a container of image `quay.io/metallb-rs/metallb-speaker:v0.1`
//! runs the workspace's `metallb-speaker` binary as a process. The table matches the image's
//! repository path, ignoring the registry host, tag and digest. Add a row to [`TABLE`] for a
//! new image. Pure; unit-tested.

use std::path::PathBuf;

/// What a matched image runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// A binary of this workspace, `<bin-dir>/<name>` (`MLB_BIN_DIR`, default `target/debug`).
    Workspace(&'static str),
    /// A subcommand of the testbed binary itself (`mlb-testbed echo`).
    Testbed(&'static str),
    /// The container's `command`, run from the machine's filesystem (FRR from Debian's `frr`).
    HostCommand,
}

/// Image repository (path suffix after the registry host) → program.
pub const TABLE: &[(&str, Program)] = &[
    (
        "metallb-rs/metallb-operator",
        Program::Workspace("metallb-operator"),
    ),
    (
        "metallb-rs/metallb-controller",
        Program::Workspace("metallb-controller"),
    ),
    (
        "metallb-rs/metallb-speaker",
        Program::Workspace("metallb-speaker"),
    ),
    ("localhost/echo", Program::Testbed("echo")),
    ("frrouting/frr", Program::HostCommand),
];

/// Why a container cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Shown as the container's waiting message (reason `ErrImagePull`).
    #[error("unknown image {0}: no program mapped in e2e/src/images.rs")]
    Unknown(String),
    #[error(
        "image {0} runs the container's command from the host, but the container has no command"
    )]
    NoCommand(String),
}

/// The repository part of an image reference: no tag, no digest.
/// `quay.io:443/metallb-rs/metallb-speaker:v1@sha256:ab` → `quay.io:443/metallb-rs/metallb-speaker`.
pub fn repository(image: &str) -> &str {
    let without_digest = image.split_once('@').map_or(image, |(repo, _)| repo);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}

/// The program for `image`, if mapped: the table key must equal the repository or be a
/// suffix of it that starts at a path component.
pub fn lookup(image: &str) -> Option<Program> {
    let repo = repository(image);
    TABLE.iter().find_map(|(key, program)| {
        let matches = repo == *key
            || repo
                .strip_suffix(key)
                .is_some_and(|prefix| prefix.ends_with('/'));
        matches.then_some(*program)
    })
}

/// A process to start: program, optional argv[0], arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exec {
    pub program: PathBuf,
    /// argv[0] as the container spec names it (`/controller`), so a multi-call binary can
    /// dispatch on it; `None` keeps the program path.
    pub arg0: Option<String>,
    pub args: Vec<String>,
}

/// Where the programs live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locations {
    /// Directory of the workspace binaries.
    pub bin_dir: PathBuf,
    /// The `mlb-testbed` executable.
    pub testbed: PathBuf,
}

/// The process for a container of `image` with Kubernetes `command` and `args`.
///
/// For workspace and testbed images, `command[0]` names a path inside an image that does not
/// exist here: it becomes argv[0] and the mapped binary runs with `command[1..]` then `args`.
/// For host-command images the command runs as given.
/// `default_port` (the container's first containerPort) is passed to the echo server as
/// `--default-port`.
pub fn exec_for(
    image: &str,
    command: &[String],
    args: &[String],
    default_port: Option<i32>,
    at: &Locations,
) -> Result<Exec, ImageError> {
    let program = lookup(image).ok_or_else(|| ImageError::Unknown(image.to_string()))?;
    let (arg0, rest) = match command.split_first() {
        Some((first, rest)) => (Some(first.clone()), rest.to_vec()),
        None => (None, Vec::new()),
    };
    let tail = rest.into_iter().chain(args.iter().cloned());
    Ok(match program {
        Program::Workspace(binary) => Exec {
            program: at.bin_dir.join(binary),
            arg0,
            args: tail.collect(),
        },
        Program::Testbed(sub) => {
            let mut all = vec![sub.to_string()];
            if let Some(port) = default_port {
                all.extend(["--default-port".to_string(), port.to_string()]);
            }
            all.extend(tail);
            Exec {
                program: at.testbed.clone(),
                arg0,
                args: all,
            }
        }
        Program::HostCommand => {
            let program = arg0.ok_or_else(|| ImageError::NoCommand(image.to_string()))?;
            Exec {
                program: PathBuf::from(program),
                arg0: None,
                args: tail.collect(),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn at() -> Locations {
        Locations {
            bin_dir: PathBuf::from("/ws/target/debug"),
            testbed: PathBuf::from("/ws/target/debug/mlb-testbed"),
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn repository_drops_tag_and_digest_but_keeps_registry_port() {
        assert_eq!(repository("localhost/echo:latest"), "localhost/echo");
        assert_eq!(
            repository("quay.io:443/metallb-rs/metallb-speaker:v1@sha256:ab"),
            "quay.io:443/metallb-rs/metallb-speaker"
        );
        assert_eq!(repository("frrouting/frr"), "frrouting/frr");
        assert_eq!(
            repository("registry:5000/frrouting/frr"),
            "registry:5000/frrouting/frr"
        );
    }

    #[test]
    fn lookup_ignores_registry_host_and_tag() {
        assert_eq!(
            lookup("quay.io/metallb-rs/metallb-controller:v0.1.0"),
            Some(Program::Workspace("metallb-controller"))
        );
        assert_eq!(
            lookup("metallb-rs/metallb-speaker"),
            Some(Program::Workspace("metallb-speaker"))
        );
        assert_eq!(
            lookup("localhost/echo:latest"),
            Some(Program::Testbed("echo"))
        );
        assert_eq!(
            lookup("quay.io/frrouting/frr:9.1.0"),
            Some(Program::HostCommand)
        );
    }

    #[test]
    fn lookup_matches_whole_path_components_only() {
        assert_eq!(lookup("quay.io/notmetallb-rs/metallb-speaker"), None);
        assert_eq!(lookup("echo"), None);
        assert_eq!(lookup("quay.io/metallb/speaker:v0.14"), None);
    }

    #[test]
    fn workspace_image_runs_the_mapped_binary_with_command_tail_and_args() {
        let exec = exec_for(
            "quay.io/metallb-rs/metallb-controller:v1",
            &strings(&["/controller", "--extra"]),
            &strings(&["--port=7472"]),
            Some(7472),
            &at(),
        )
        .unwrap();
        assert_eq!(
            exec,
            Exec {
                program: PathBuf::from("/ws/target/debug/metallb-controller"),
                arg0: Some("/controller".into()),
                args: strings(&["--extra", "--port=7472"]),
            }
        );
    }

    #[test]
    fn echo_gets_its_first_container_port() {
        let exec = exec_for(
            "localhost/echo:latest",
            &[],
            &strings(&["--udp"]),
            Some(8080),
            &at(),
        )
        .unwrap();
        assert_eq!(
            exec,
            Exec {
                program: PathBuf::from("/ws/target/debug/mlb-testbed"),
                arg0: None,
                args: strings(&["echo", "--default-port", "8080", "--udp"]),
            }
        );
    }

    #[test]
    fn frr_runs_its_command_from_the_host() {
        let exec = exec_for(
            "quay.io/frrouting/frr:9.1.0",
            &strings(&["/bin/sh", "-c"]),
            &strings(&["sleep 1"]),
            None,
            &at(),
        )
        .unwrap();
        assert_eq!(
            exec,
            Exec {
                program: PathBuf::from("/bin/sh"),
                arg0: None,
                args: strings(&["-c", "sleep 1"]),
            }
        );
        assert_eq!(
            exec_for("frrouting/frr", &[], &[], None, &at()),
            Err(ImageError::NoCommand("frrouting/frr".into()))
        );
    }

    #[test]
    fn unknown_image_explains_where_to_map_it() {
        let err = exec_for("example.com/nothing:1", &[], &[], None, &at()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown image example.com/nothing:1: no program mapped in e2e/src/images.rs"
        );
    }
}
