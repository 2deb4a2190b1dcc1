//! Sweeping up after a test, benchmark or campaign whose agent was SIGKILLed: its
//! executors, and the `docker run` each started, outlive it on purpose.
//!
//! What is swept is only what can be proven to be the harness's own. A working directory
//! or a name could be anyone's; a random mark in the environment of every process the
//! harness starts, inherited by everything those start, is carried by no stranger.

use std::os::fd::OwnedFd;

use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

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

    /// The environment entry to give every process the run starts.
    pub fn env(&self) -> (&'static str, &str) {
        (VARIABLE, &self.value)
    }

    /// SIGKILLs every process that carries the mark; returns how many. Each is checked
    /// again through a pidfd opened before the signal, so that a pid reused in between is
    /// never hit.
    pub fn kill_all(&self) -> usize {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return 0;
        };
        let mut killed = 0;
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
                .and_then(Pid::from_raw)
            else {
                continue;
            };
            if !self.carried_by(pid) {
                continue;
            }
            let Ok(fd) = pidfd_open(pid, PidfdFlags::empty()) else {
                continue;
            };
            if self.carried_by(pid) && kill(&fd) {
                killed += 1;
            }
        }
        killed
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

fn kill(fd: &OwnedFd) -> bool {
    pidfd_send_signal(fd, Signal::KILL).is_ok()
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
