//! Process identity: (boot id, pid, start time in clock ticks since boot).
//!
//! A pid alone names a process only until it is reused. berth records the triple when it
//! starts a process and compares it before trusting or signalling that pid again; the
//! signal itself goes through a pidfd opened after the check, so the process checked is
//! the process signalled.

use std::fs;
use std::os::fd::OwnedFd;

use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};
use serde::{Deserialize, Serialize};

/// Who a process is, as far as the kernel can tell.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// `/proc/sys/kernel/random/boot_id` when the process was seen.
    pub boot_id: String,
    /// Its pid.
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat`: start time in clock ticks since boot.
    pub start_ticks: u64,
}

/// What became of a recorded process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// The same process is still there.
    Alive,
    /// The machine has rebooted since: no recorded pid means anything.
    Rebooted,
    /// No process has that pid.
    Gone,
    /// Another process has that pid now.
    Reused,
}

/// Why identity could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A /proc file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A /proc file did not have the expected shape.
    #[error("cannot parse {path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// The pid does not fit the kernel's pid type.
    #[error("pid {0} is not a valid pid")]
    Pid(u32),
    /// The process is not the one recorded; nothing was signalled.
    #[error("process {0} is not the one recorded ({1:?}); it was not signalled")]
    NotOurs(u32, Liveness),
    /// The kernel refused the pidfd or the signal.
    #[error("cannot signal process {pid}: {source}")]
    Signal {
        /// The pid.
        pid: u32,
        /// The OS error.
        source: std::io::Error,
    },
}

const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// This boot's id.
pub fn boot_id() -> Result<String, IdentityError> {
    let text = fs::read_to_string(BOOT_ID).map_err(|source| IdentityError::Read {
        path: BOOT_ID.into(),
        source,
    })?;
    let id = text.trim();
    if id.is_empty() {
        return Err(IdentityError::Parse {
            path: BOOT_ID.into(),
            reason: "empty",
        });
    }
    Ok(id.to_owned())
}

/// The start time (field 22) and state (field 3) of a `/proc/<pid>/stat` line.
///
/// The command name (field 2) is in parentheses and may itself contain spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3), field 22 is the 19th.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// The identity of a running process, `None` if there is none (or only a zombie).
pub fn of_pid(pid: u32) -> Result<Option<ProcessIdentity>, IdentityError> {
    let boot_id = boot_id()?;
    let path = format!("/proc/{pid}/stat");
    let stat = match fs::read_to_string(&path) {
        Ok(stat) => stat,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(IdentityError::Read { path, source }),
    };
    let (state, start_ticks) = parse_stat(&stat).ok_or(IdentityError::Parse {
        path,
        reason: "not a stat line",
    })?;
    if matches!(state, 'Z' | 'X') {
        return Ok(None);
    }
    Ok(Some(ProcessIdentity {
        boot_id,
        pid,
        start_ticks,
    }))
}

/// Compares a recorded identity with what is there now. Pure.
pub fn compare(
    recorded: &ProcessIdentity,
    boot_id: &str,
    now: Option<&ProcessIdentity>,
) -> Liveness {
    if recorded.boot_id != boot_id {
        return Liveness::Rebooted;
    }
    match now {
        None => Liveness::Gone,
        Some(now) if now.start_ticks == recorded.start_ticks && now.pid == recorded.pid => {
            Liveness::Alive
        }
        Some(_) => Liveness::Reused,
    }
}

/// Checks `recorded` against /proc now.
pub fn check(recorded: &ProcessIdentity) -> Result<Liveness, IdentityError> {
    let boot = boot_id()?;
    if boot != recorded.boot_id {
        return Ok(Liveness::Rebooted);
    }
    Ok(compare(recorded, &boot, of_pid(recorded.pid)?.as_ref()))
}

/// Sends `signal` to the recorded process, only if it is still that process.
///
/// The pidfd is opened first and the identity checked after: if the check passes, the fd
/// refers to the checked process even if it exits and its pid is reused a moment later.
pub fn signal(recorded: &ProcessIdentity, signal: Signal) -> Result<(), IdentityError> {
    let pid = i32::try_from(recorded.pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(IdentityError::Pid(recorded.pid))?;
    let fd: OwnedFd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => {
            return Err(IdentityError::NotOurs(recorded.pid, Liveness::Gone))
        }
        Err(e) => {
            return Err(IdentityError::Signal {
                pid: recorded.pid,
                source: e.into(),
            })
        }
    };
    match check(recorded)? {
        Liveness::Alive => {}
        other => return Err(IdentityError::NotOurs(recorded.pid, other)),
    }
    pidfd_send_signal(&fd, signal).map_err(|e| IdentityError::Signal {
        pid: recorded.pid,
        source: e.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        let line = "4681 (sleep) S 4660 4681 4681 0 -1 4194560 103 0 0 0 0 0 0 0 20 0 1 0 123456 1589248 180 18446744073709551615";
        assert_eq!(parse_stat(line), Some(('S', 123456)));
        let tricky = "77 (a) b) (c) Z 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 999 0 0";
        assert_eq!(parse_stat(tricky), Some(('Z', 999)));
        for bad in [
            "",
            "12 (x",
            "12 (x) S 1 2",
            "12 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 notanumber",
        ] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn comparison_table() {
        let rec = ProcessIdentity {
            boot_id: "b1".into(),
            pid: 10,
            start_ticks: 500,
        };
        let same = rec.clone();
        let reused = ProcessIdentity {
            start_ticks: 900,
            ..rec.clone()
        };
        assert_eq!(compare(&rec, "b1", Some(&same)), Liveness::Alive);
        assert_eq!(compare(&rec, "b1", Some(&reused)), Liveness::Reused);
        assert_eq!(compare(&rec, "b1", None), Liveness::Gone);
        assert_eq!(compare(&rec, "b2", Some(&same)), Liveness::Rebooted);
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = of_pid(std::process::id())
            .expect("read /proc")
            .expect("this process exists");
        assert_eq!(check(&me).expect("check"), Liveness::Alive);
        let impostor = ProcessIdentity {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert_eq!(check(&impostor).expect("check"), Liveness::Reused);
        // Signal 0 would be a probe; a real signal must not reach an impostor.
        let err = signal(&impostor, Signal::TERM).expect_err("not ours");
        assert!(
            matches!(err, IdentityError::NotOurs(_, Liveness::Reused)),
            "{err}"
        );
    }

    #[test]
    fn a_real_child_is_signalled_and_then_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep");
        let id = of_pid(child.id()).expect("read").expect("alive");
        signal(&id, Signal::KILL).expect("signal our own child");
        let status = child.wait().expect("reap");
        assert!(!status.success());
        assert_eq!(check(&id).expect("check"), Liveness::Gone);
        assert!(matches!(
            signal(&id, Signal::KILL),
            Err(IdentityError::NotOurs(_, Liveness::Gone))
        ));
    }
}
