//! Running the `metallb-operator` binary as a user does, for the CLI tests.

use std::io::{ErrorKind, Write};
use std::process::{Command, Output, Stdio};

/// Runs `metallb-operator <args>`, feeding `stdin` (or nothing: `None` gives the child no
/// input at all), and returns what it printed and how it exited.
///
/// The input is written from a thread while the output is read, so neither side waits on the
/// other with a full pipe. A child may exit before it reads its input (a bad flag, `-f` naming a
/// file); writing to it then fails with a broken pipe, which only means the child was done
/// reading: the tests judge it by its output and exit status, not by whether it read everything.
pub fn operator(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_metallb-operator"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("metallb-operator starts");
    let writer = child.stdin.take().map(|mut pipe| {
        let input = stdin.unwrap_or_default().as_bytes().to_vec();
        // The pipe is closed when the thread ends: the child sees the end of its input.
        std::thread::spawn(move || match pipe.write_all(&input) {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
            other => other,
        })
    });
    let output = child
        .wait_with_output()
        .expect("metallb-operator's output is read");
    if let Some(writer) = writer {
        writer
            .join()
            .expect("the input writer does not panic")
            .expect("the input is written, or the child exited before reading it");
    }
    output
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
