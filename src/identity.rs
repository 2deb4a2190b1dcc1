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
    /// The process is still running: the processes of its session are its own.
    #[error(
        "process {0} is still running; its session's processes are its own and were not signalled"
    )]
    StillRunning(u32),
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

/// One process, as its `/proc/<pid>/stat` line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Field 1: its pid.
    pub pid: u32,
    /// Field 3: `R`, `S`, `Z`, ...
    pub state: char,
    /// Field 6: its session's id, which is the session leader's pid.
    pub session: u32,
    /// Field 22: start time in clock ticks since boot.
    pub start_ticks: u64,
}

impl Stat {
    /// Dead, only waiting to be reaped (or being reaped).
    fn dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Parses a `/proc/<pid>/stat` line. Pure.
///
/// The command name (field 2) is in parentheses and may itself contain spaces and
/// parentheses, so fields are counted from the last `)`. Not the `procfs` crate's
/// parser: it slices past the end of a truncated line (`12 (x)`), a panic, and needs
/// all 44 fields where berth reads four.
pub fn parse_stat_line(stat: &str) -> Option<Stat> {
    let (head, rest) = stat.rsplit_once(')')?;
    let pid = head.split_once('(')?.0.trim().parse().ok()?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3): ppid, pgrp, session.
    let session = fields.nth(2)?.parse().ok()?;
    // After the session (field 6), field 22 is the 16th.
    let start_ticks = fields.nth(15)?.parse().ok()?;
    Some(Stat {
        pid,
        state,
        session,
        start_ticks,
    })
}

/// The state (field 3) and start time (field 22) of a `/proc/<pid>/stat` line. Pure.
pub fn parse_stat(stat: &str) -> Option<(char, u64)> {
    parse_stat_line(stat).map(|s| (s.state, s.start_ticks))
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

/// Which of `processes` (all of /proc) are leftovers of the dead `executor`: members of
/// the session it led, started no earlier than it, not dead themselves. Pure.
///
/// A session's id is its leader's pid, and the kernel does not hand a pid out again while
/// it still names a session with members: so while any process of the executor's session
/// is left, no other process can have the executor's pid or lead a session with that
/// id. A process that started before the executor cannot descend from it. A process
/// that left the session (`setsid`) is out of reach: nothing proves it the executor's.
///
/// `Err` when no process can be chosen: `Alive` (the executor runs, its session is its
/// own), `Reused` (its pid names another process now, so its session had emptied), or
/// `Rebooted`.
pub fn session_leftovers(
    executor: &ProcessIdentity,
    boot_id: &str,
    processes: &[Stat],
) -> Result<Vec<Stat>, Liveness> {
    if executor.boot_id != boot_id {
        return Err(Liveness::Rebooted);
    }
    if let Some(now) = processes.iter().find(|p| p.pid == executor.pid) {
        match (now.start_ticks == executor.start_ticks, now.dead()) {
            (false, _) => return Err(Liveness::Reused),
            (true, false) => return Err(Liveness::Alive),
            // The executor's own zombie, not reaped yet.
            (true, true) => {}
        }
    }
    Ok(processes
        .iter()
        .filter(|p| {
            p.session == executor.pid
                && p.pid != executor.pid
                && p.start_ticks >= executor.start_ticks
                && !p.dead()
        })
        .cloned()
        .collect())
}

/// SIGKILLs what the dead `executor` left in its session (see [`session_leftovers`]);
/// returns how many processes were killed. A plain task runs in its own process group
/// but in the executor's session, so this reaches it and everything it started that
/// stayed in the session.
///
/// Each process is signalled through a pidfd opened before it is checked again, so a
/// process that exited and whose pid was reused in the meantime is never signalled.
pub fn kill_session_leftovers(executor: &ProcessIdentity) -> Result<usize, IdentityError> {
    let boot = boot_id()?;
    let chosen = match session_leftovers(executor, &boot, &all_processes()?) {
        Ok(chosen) => chosen,
        Err(Liveness::Alive) => return Err(IdentityError::StillRunning(executor.pid)),
        Err(Liveness::Gone | Liveness::Reused | Liveness::Rebooted) => return Ok(0),
    };
    kill_each(&chosen)
}

/// SIGKILLs each of `processes` that is still the one seen; how many were killed. The
/// others are still killed when one fails; the first failure is reported.
fn kill_each<'a>(processes: impl IntoIterator<Item = &'a Stat>) -> Result<usize, IdentityError> {
    let mut killed = 0;
    let mut first_error = None;
    for process in processes {
        match kill_if_unchanged(process) {
            Ok(true) => killed += 1,
            Ok(false) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(killed),
    }
}

/// SIGKILLs every other live process of the caller's own session, when the caller leads
/// it (an executor does): what a plain task left behind at its end. The session's id is
/// the caller's own pid, which no other session can take while the caller lives, so
/// nothing but the session's own processes is reached. Returns how many were killed; 0
/// when the caller does not lead its session (an executor in a container of its own,
/// which Docker removes whole).
pub fn kill_own_session_members() -> Result<usize, IdentityError> {
    let me = std::process::id();
    let leader = nix::unistd::getsid(None)
        .ok()
        .and_then(|sid| u32::try_from(sid.as_raw()).ok());
    if leader != Some(me) {
        return Ok(0);
    }
    let members: Vec<Stat> = all_processes()?
        .into_iter()
        .filter(|p| p.session == me && p.pid != me && !p.dead())
        .collect();
    kill_each(&members)
}

/// SIGKILLs `process` if it is still the one seen; `false` if it is gone or changed.
fn kill_if_unchanged(process: &Stat) -> Result<bool, IdentityError> {
    let pid = i32::try_from(process.pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(IdentityError::Pid(process.pid))?;
    let fd: OwnedFd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(false),
        Err(e) => {
            return Err(IdentityError::Signal {
                pid: process.pid,
                source: e.into(),
            })
        }
    };
    match read_stat(process.pid)? {
        Some(now)
            if now.start_ticks == process.start_ticks
                && now.session == process.session
                && !now.dead() => {}
        _ => return Ok(false),
    }
    match pidfd_send_signal(&fd, Signal::KILL) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(e) => Err(IdentityError::Signal {
            pid: process.pid,
            source: e.into(),
        }),
    }
}

/// One process's stat line, parsed; `None` once it is gone.
fn read_stat(pid: u32) -> Result<Option<Stat>, IdentityError> {
    let path = format!("/proc/{pid}/stat");
    let stat = match fs::read_to_string(&path) {
        Ok(stat) => stat,
        // A process that exits while it is read reports ESRCH rather than NotFound.
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error()) =>
        {
            return Ok(None)
        }
        Err(source) => return Err(IdentityError::Read { path, source }),
    };
    parse_stat_line(&stat)
        .map(Some)
        .ok_or(IdentityError::Parse {
            path,
            reason: "not a stat line",
        })
}

/// Every process in /proc.
fn all_processes() -> Result<Vec<Stat>, IdentityError> {
    let read_error = |source| IdentityError::Read {
        path: "/proc".into(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(stat) = read_stat(pid)? {
            out.push(stat);
        }
    }
    Ok(out)
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
    fn full_stat_lines() {
        let line = "4681 (sleep) S 4660 4681 4600 0 -1 4194560 103 0 0 0 0 0 0 0 20 0 1 0 123456 1589248 180 18446744073709551615";
        assert_eq!(
            parse_stat_line(line),
            Some(Stat {
                pid: 4681,
                state: 'S',
                session: 4600,
                start_ticks: 123456,
            })
        );
        let tricky = "77 (a) b) (c) Z 1 77 70 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 999 0 0";
        assert_eq!(
            parse_stat_line(tricky).map(|s| (s.pid, s.session)),
            Some((77, 70))
        );
        for bad in [
            "(x) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            "x7 (x) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            "7 (x) S 1 2 s 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            "7 (x) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0",
        ] {
            assert_eq!(parse_stat_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn session_leftovers_table() {
        let executor = ProcessIdentity {
            boot_id: "b1".into(),
            pid: 100,
            start_ticks: 5_000,
        };
        let stat = |pid, state, session, start_ticks| Stat {
            pid,
            state,
            session,
            start_ticks,
        };
        let task = stat(101, 'S', 100, 5_001);
        let task_child = stat(102, 'R', 100, 9_000);
        // Started in the same tick as the executor: ticks are coarse.
        let same_tick = stat(103, 'S', 100, 5_000);
        let older = stat(104, 'S', 100, 4_999);
        let other_session = stat(105, 'S', 200, 6_000);
        let zombie_member = stat(106, 'Z', 100, 6_000);
        let zombie_executor = stat(100, 'Z', 100, 5_000);
        let members = vec![
            task.clone(),
            task_child.clone(),
            same_tick.clone(),
            older,
            other_session,
            zombie_member,
        ];
        let with = |extra: Stat| {
            let mut all = members.clone();
            all.push(extra);
            all
        };
        let chosen = vec![task, task_child, same_tick];
        type Case = (
            &'static str,
            Vec<Stat>,
            &'static str,
            Result<Vec<Stat>, Liveness>,
        );
        let table: [Case; 6] = [
            ("executor reaped", members.clone(), "b1", Ok(chosen.clone())),
            ("executor a zombie", with(zombie_executor), "b1", Ok(chosen)),
            (
                "executor running",
                with(stat(100, 'S', 100, 5_000)),
                "b1",
                Err(Liveness::Alive),
            ),
            (
                "pid reused",
                with(stat(100, 'S', 100, 7_000)),
                "b1",
                Err(Liveness::Reused),
            ),
            (
                "pid reused by a dead process",
                with(stat(100, 'Z', 100, 7_000)),
                "b1",
                Err(Liveness::Reused),
            ),
            ("rebooted", members.clone(), "b2", Err(Liveness::Rebooted)),
        ];
        for (what, processes, boot, want) in table {
            assert_eq!(
                session_leftovers(&executor, boot, &processes),
                want,
                "{what}"
            );
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
