//! One round of a kill campaign: start a child, read the lines it prints, SIGKILL it.
//!
//! A line read from the child was printed before it died, so a child that prints a
//! record's number only after the record is durable gives the parent an exact list of what
//! it promised.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// What one round saw.
#[derive(Debug)]
pub struct Round {
    /// Every line the child printed on stdout, in order.
    pub lines: Vec<String>,
    /// True if the child was still running when the kill was sent.
    pub killed: bool,
    /// How the child ended.
    pub status: ExitStatus,
    /// How long it ran.
    pub ran_for: Duration,
}

/// Runs `command` with stdout piped and SIGKILLs it after `delay` (unless it has exited).
pub fn run_round(command: &mut Command, delay: Duration) -> std::io::Result<Round> {
    let started = Instant::now();
    let mut child = command.stdout(Stdio::piped()).spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("child has no stdout"))?;
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
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
    let lines = reader
        .join()
        .map_err(|_| std::io::Error::other("reader thread panicked"))?;
    Ok(Round {
        lines,
        killed,
        status,
        ran_for: started.elapsed(),
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
