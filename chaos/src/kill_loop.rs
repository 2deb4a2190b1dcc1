//! One round of a kill campaign: start a child, read the lines it prints, SIGKILL it.
//!
//! A line read from the child was printed before it died, so a child that prints a
//! record's number only after the record is durable gives the parent an exact list of what
//! it promised.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// What one round saw.
#[derive(Debug)]
pub struct Round {
    /// Every line the child printed on stdout, in order.
    pub lines: Vec<String>,
    /// False if the pipe was still open [`DRAIN`] after the child ended: a process it
    /// left behind (an agent's executor, say) holds it, and later lines are not here.
    pub complete: bool,
    /// True if the child was still running when the kill was sent.
    pub killed: bool,
    /// How the child ended.
    pub status: ExitStatus,
    /// How long it ran (until it ended, not counting the drain).
    pub ran_for: Duration,
}

/// How long lines are still read after the child ended.
pub const DRAIN: Duration = Duration::from_secs(2);

/// Runs `command` with stdout piped and SIGKILLs it after `delay` (unless it has exited).
pub fn run_round(command: &mut Command, delay: Duration) -> std::io::Result<Round> {
    let started = Instant::now();
    let mut child = command.stdout(Stdio::piped()).spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("child has no stdout"))?;
    let (tx, rx) = mpsc::channel();
    // Detached: if a grandchild keeps the pipe open, the thread ends with it.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = started + delay;
    let mut killed = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let now = Instant::now();
        if now >= deadline {
            let pid = i32::try_from(child.id()).map_err(std::io::Error::other)?;
            // The child is ours and unreaped, so its pid cannot have been reused.
            killed = kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok();
            break child.wait()?;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(1)));
    };
    let ran_for = started.elapsed();
    let mut lines = Vec::new();
    let drain_until = Instant::now() + DRAIN;
    let complete = loop {
        match rx.recv_timeout(drain_until.saturating_duration_since(Instant::now())) {
            Ok(line) => lines.push(line),
            Err(RecvTimeoutError::Disconnected) => break true,
            Err(RecvTimeoutError::Timeout) => break false,
        }
    };
    Ok(Round {
        lines,
        complete,
        killed,
        status,
        ran_for,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_child_is_killed_and_its_lines_kept() {
        let round = run_round(
            Command::new("sh").args(["-c", "echo one; echo two; exec sleep 100"]),
            Duration::from_millis(300),
        )
        .expect("round");
        assert!(round.killed);
        assert_eq!(round.status.signal(), Some(9));
        assert_eq!(round.lines, ["one", "two"]);
        assert!(round.complete);
    }

    #[test]
    fn a_grandchild_holding_the_pipe_does_not_hang_the_round() {
        let started = Instant::now();
        let round = run_round(
            Command::new("sh").args(["-c", "echo one; sleep 5 & exec sleep 100"]),
            Duration::from_millis(200),
        )
        .expect("round");
        assert!(round.killed);
        assert_eq!(round.lines, ["one"]);
        assert!(!round.complete, "the background sleep still holds the pipe");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_child_that_exits_first_is_not_killed() {
        let round = run_round(
            Command::new("sh").args(["-c", "echo done"]),
            Duration::from_secs(30),
        )
        .expect("round");
        assert!(!round.killed);
        assert!(round.status.success());
        assert_eq!(round.lines, ["done"]);
        assert!(round.ran_for < Duration::from_secs(30));
    }
}
