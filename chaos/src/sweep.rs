//! Sweeping up after a test, benchmark or campaign whose agent was SIGKILLed: its
//! executors, and the `docker run` each started, outlive it on purpose.
//!
//! What is swept is only what can be proven to be the harness's own. A working directory
//! or a name could be anyone's; a random mark in the environment of every process the
//! harness starts, inherited by everything those start, is carried by no stranger.

use std::os::fd::OwnedFd;

pub use rustix::process::Signal;
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags};

/// At most this many rounds of stopping and killing in [`RunMark::kill_where`].
pub const ROUNDS: usize = 50;
/// At most this many looks for new processes to stop within a round.
const LOOKS: usize = 50;

/// The environment variable that carries a [`RunMark`].
pub const VARIABLE: &str = "BERTH_RUN_MARK";

/// A random mark for the processes of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMark {
    value: String,
}

impl RunMark {
    /// A fresh mark, from the kernel's random UUIDs.
    pub fn new() -> RunMark {
        let value = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|e| panic!("a run mark needs /proc/sys/kernel/random/uuid: {e}"));
        RunMark { value }
    }

    /// The mark whose value is `value` (a run's, read back from its directory).
    pub fn from_value(value: &str) -> RunMark {
        RunMark {
            value: value.to_owned(),
        }
    }

    /// The environment entry to give every process the run starts.
    pub fn env(&self) -> (&'static str, &str) {
        (VARIABLE, &self.value)
    }

    /// SIGKILLs every process that carries the mark; returns how many.
    pub fn kill_all(&self) -> usize {
        self.kill_where(|_| true)
    }

    /// SIGKILLs every process that carries the mark and that `dies` picks; returns how
    /// many. A single pass misses a child forked between the look at `/proc` and the kill
    /// (an executor's `docker run`, the stand-in's exec), which may then start a container:
    /// so each round SIGSTOPs them until a look finds no new one (a stopped process forks
    /// no more), then SIGKILLs them all; rounds go on until none is left, at most
    /// [`ROUNDS`].
    pub fn kill_where(&self, dies: impl Fn(&Marked) -> bool) -> usize {
        let mut killed = std::collections::BTreeSet::new();
        for _ in 0..ROUNDS {
            let mut stopped = std::collections::BTreeSet::new();
            for _ in 0..LOOKS {
                let new: Vec<i32> = self
                    .processes()
                    .into_iter()
                    .filter(|p| !stopped.contains(&p.pid) && dies(p))
                    .map(|p| p.pid)
                    .collect();
                if new.is_empty() {
                    break;
                }
                for pid in new {
                    self.signal(pid, Signal::STOP);
                    stopped.insert(pid);
                }
            }
            if stopped.is_empty() {
                break;
            }
            for pid in stopped {
                if self.signal(pid, Signal::KILL) {
                    killed.insert(pid);
                }
            }
            // Killed ones take a moment to go; the next look is for those that did not.
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        killed.len()
    }

    /// SIGCONTs every process that carries the mark (a run's paused agent).
    pub fn resume_all(&self) {
        for p in self.processes() {
            self.signal(p.pid, Signal::CONT);
        }
    }

    /// The processes that carry the mark, with their arguments.
    pub fn processes(&self) -> Vec<Marked> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| Pid::from_raw(pid).is_some_and(|p| self.carried_by(p)))
            .map(|pid| Marked {
                pid,
                argv: std::fs::read(format!("/proc/{pid}/cmdline"))
                    .unwrap_or_default()
                    .split(|&b| b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
            })
            .collect()
    }

    /// Sends `signal` to `pid` if it carries the mark, checked again through a pidfd opened
    /// before the signal, so that a pid reused in between is never hit.
    pub fn signal(&self, pid: i32, signal: Signal) -> bool {
        let Some(pid) = Pid::from_raw(pid) else {
            return false;
        };
        if !self.carried_by(pid) {
            return false;
        }
        let Ok(fd) = pidfd_open(pid, PidfdFlags::empty()) else {
            return false;
        };
        self.carried_by(pid) && send(&fd, signal)
    }

    fn carried_by(&self, pid: Pid) -> bool {
        std::fs::read(format!("/proc/{}/environ", pid.as_raw_nonzero()))
            .is_ok_and(|environ| carries(&environ, &self.value))
    }
}

impl Default for RunMark {
    fn default() -> Self {
        RunMark::new()
    }
}

fn send(fd: &OwnedFd, signal: Signal) -> bool {
    pidfd_send_signal(fd, signal).is_ok()
}

/// A process that carries a run's mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    /// Its pid.
    pub pid: i32,
    /// Its arguments, from `/proc/PID/cmdline`.
    pub argv: Vec<String>,
}

/// Whether a process's environment (`/proc/PID/environ`: NUL-separated entries) holds
/// the mark `value`. Pure.
fn carries(environ: &[u8], value: &str) -> bool {
    let wanted = format!("{VARIABLE}={value}");
    environ
        .split(|&b| b == 0)
        .any(|entry| entry == wanted.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_entry_is_the_mark() {
        let cases: [(&[u8], bool); 6] = [
            (b"PATH=/bin\0BERTH_RUN_MARK=abc\0HOME=/", true),
            (b"BERTH_RUN_MARK=abc", true),
            (b"BERTH_RUN_MARK=abcd\0", false),
            (b"BERTH_RUN_MARK=ab\0", false),
            (b"X_BERTH_RUN_MARK=abc\0", false),
            (b"", false),
        ];
        for (environ, want) in cases {
            assert_eq!(carries(environ, "abc"), want, "{environ:?}");
        }
    }

    #[test]
    fn a_marked_process_forking_all_the_while_is_killed_with_every_child() {
        let mark = RunMark::new();
        let (key, value) = mark.env();
        // Forks as fast as it can: a child forked between a scan of /proc and the kill
        // is missed by a single pass.
        let mut forker = std::process::Command::new("sh")
            .args(["-c", "while :; do sleep 60 & done"])
            .env(key, value)
            .spawn()
            .expect("spawn");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while mark.processes().len() < 50 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(mark.kill_all() > 1);
        // Killed ones take a moment to go; a survivor stays.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut left = mark.processes();
        while !left.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
            left = mark.processes();
        }
        // Whatever happens, nothing of the test's is left.
        for _ in 0..100 {
            if mark.kill_all() == 0 && mark.processes().is_empty() {
                break;
            }
        }
        let _ = forker.wait();
        assert!(left.is_empty(), "survived the kill: {left:?}");
    }

    #[test]
    fn a_marked_child_is_killed_and_an_unmarked_one_is_not() {
        let mark = RunMark::new();
        let (key, value) = mark.env();
        let mut marked = std::process::Command::new("sleep")
            .arg("60")
            .env(key, value)
            .spawn()
            .expect("spawn");
        let mut other = std::process::Command::new("sleep")
            .arg("60")
            .env(key, "someone-else")
            .spawn()
            .expect("spawn");
        assert_eq!(mark.kill_all(), 1);
        let status = marked.wait().expect("wait");
        assert!(!status.success(), "killed");
        assert_eq!(other.try_wait().expect("try_wait"), None, "left alone");
        let _ = other.kill();
        let _ = other.wait();
    }
}
