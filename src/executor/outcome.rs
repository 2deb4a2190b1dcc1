//! How an exit becomes a terminal status report. Pure.

use crate::model::{StatusReport, TaskState};

pub use crate::model::reason::{REASON_CONTAINER_LAUNCH_FAILED, REASON_EXECUTOR_TERMINATED};
/// A command that exited by itself: Mesos's executors set no reason.
pub const REASON_COMMAND_EXITED: &str = crate::model::reason::NONE;
/// A container that Docker no longer knows after its daemon went away: Mesos's reason for
/// a container that ended without a status it could report.
pub const REASON_CONTAINER_GONE: &str = REASON_EXECUTOR_TERMINATED;

/// Said of an exit that Docker kept while its daemon was away.
const AFTER_OUTAGE: &str =
    "; the Docker daemon restarted or went away while it ran, and this is the exit status Docker kept";

/// How the task's process ended, as the executor saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// A Docker container that ran: its own exit code.
    Container {
        /// `State.ExitCode`.
        code: i32,
    },
    /// `docker run` failed before the container ran (bad image, bad option).
    RunFailed {
        /// `docker run`'s exit code (125, 126, 127).
        code: Option<i32>,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// A container whose end Docker reported only after its daemon came back (a
    /// restart, an outage): its own exit code, which Docker kept.
    AfterOutage {
        /// `State.ExitCode`.
        code: i32,
    },
    /// A container Docker no longer knows once its daemon came back.
    Vanished,
    /// A plain process's exit code.
    Process {
        /// Exit code, if it exited.
        code: Option<i32>,
        /// Signal, if one ended it.
        signal: Option<i32>,
    },
}

/// The terminal report for an exit.
pub fn terminal_report(seq: u64, exit: &Exit) -> StatusReport {
    let report = |state, exit_code, reason: &str, message: String| StatusReport {
        seq,
        state,
        pid: None,
        start_ticks: None,
        exit_code,
        reason: crate::model::reason::read(reason),
        message: Some(message),
    };
    match exit {
        Exit::AfterOutage { code } => {
            let mut ended = terminal_report(seq, &Exit::Container { code: *code });
            ended.message = ended.message.map(|m| m + AFTER_OUTAGE);
            ended
        }
        Exit::Vanished => report(
            TaskState::Lost,
            None,
            REASON_CONTAINER_GONE,
            "the Docker daemon restarted or went away while the task ran, and afterwards Docker no longer knew its container, so how it ended is unknown".into(),
        ),
        Exit::Container { code: 0 } | Exit::Process { code: Some(0), .. } => report(
            TaskState::Finished,
            Some(0),
            REASON_COMMAND_EXITED,
            "command exited with status 0".into(),
        ),
        // Docker reports a container ended by a signal as 128 + the signal.
        Exit::Container { code } if (129..=159).contains(code) => report(
            TaskState::Failed,
            Some(*code),
            REASON_COMMAND_EXITED,
            format!(
                "command was terminated by signal {} (exit status {code})",
                code - 128
            ),
        ),
        Exit::Container { code }
        | Exit::Process {
            code: Some(code), ..
        } => report(
            TaskState::Failed,
            Some(*code),
            REASON_COMMAND_EXITED,
            format!("command exited with status {code}"),
        ),
        // Reported as Docker and a shell report it, 128 + the signal, so that a plain
        // process and a container that die alike end alike (and `berth wait` exits so).
        Exit::Process {
            signal: Some(sig), ..
        } => report(
            TaskState::Failed,
            Some(128 + sig),
            REASON_COMMAND_EXITED,
            format!(
                "command was terminated by signal {sig} (exit status {})",
                128 + sig
            ),
        ),
        Exit::Process { .. } => report(
            TaskState::Failed,
            None,
            REASON_EXECUTOR_TERMINATED,
            "command ended without an exit status".into(),
        ),
        Exit::RunFailed { code, stderr_tail } => {
            let code_text = code.map_or("a signal".to_owned(), |c| format!("status {c}"));
            let detail = stderr_tail.trim();
            let message = if detail.is_empty() {
                format!("docker run failed with {code_text}; see the sandbox's stderr")
            } else {
                format!("docker run failed with {code_text}: {detail}")
            };
            report(
                TaskState::Failed,
                *code,
                REASON_CONTAINER_LAUNCH_FAILED,
                message,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            (
                Exit::Container { code: 0 },
                TaskState::Finished,
                Some(0),
                REASON_COMMAND_EXITED,
                "status 0",
            ),
            (
                Exit::Container { code: 3 },
                TaskState::Failed,
                Some(3),
                REASON_COMMAND_EXITED,
                "status 3",
            ),
            (
                Exit::Container { code: 137 },
                TaskState::Failed,
                Some(137),
                REASON_COMMAND_EXITED,
                "signal 9",
            ),
            (
                Exit::Container { code: 143 },
                TaskState::Failed,
                Some(143),
                REASON_COMMAND_EXITED,
                "signal 15",
            ),
            (
                Exit::Process {
                    code: Some(0),
                    signal: None,
                },
                TaskState::Finished,
                Some(0),
                REASON_COMMAND_EXITED,
                "status 0",
            ),
            (
                Exit::Process {
                    code: Some(1),
                    signal: None,
                },
                TaskState::Failed,
                Some(1),
                REASON_COMMAND_EXITED,
                "status 1",
            ),
            (
                Exit::Process {
                    code: None,
                    signal: Some(9),
                },
                TaskState::Failed,
                Some(137),
                REASON_COMMAND_EXITED,
                "signal 9 (exit status 137)",
            ),
            (
                Exit::Process {
                    code: None,
                    signal: None,
                },
                TaskState::Failed,
                None,
                REASON_EXECUTOR_TERMINATED,
                "without",
            ),
            (
                Exit::RunFailed {
                    code: Some(125),
                    stderr_tail: "Unable to find image 'x:latest'\n".into(),
                },
                TaskState::Failed,
                Some(125),
                REASON_CONTAINER_LAUNCH_FAILED,
                "status 125: Unable to find image 'x:latest'",
            ),
            (
                Exit::RunFailed {
                    code: None,
                    stderr_tail: String::new(),
                },
                TaskState::Failed,
                None,
                REASON_CONTAINER_LAUNCH_FAILED,
                "see the sandbox's stderr",
            ),
        ];
        for (exit, state, code, reason, message) in cases {
            let r = terminal_report(7, &exit);
            assert_eq!(r.seq, 7);
            assert_eq!(r.state, state, "{exit:?}");
            assert_eq!(r.exit_code, code, "{exit:?}");
            assert_eq!(r.reason, crate::model::reason::read(reason), "{exit:?}");
            let text = r.message.unwrap_or_default();
            assert!(text.contains(message), "{exit:?}: {text}");
        }
    }
}
