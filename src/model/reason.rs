//! The reasons a task's status carries: words of Mesos v1's `TaskStatus.Reason` only, so
//! that a strict protobuf parser reads every status berth writes, and the words earlier
//! berths wrote read as today's.
//!
//! Where Mesos sets no reason (a task that exited by itself, one killed on request), berth
//! sets none either: [`NONE`] internally, no `reason` field on the wire. docs/api.md lists
//! which reason each case gets.

/// No reason: Mesos sets none for a task that exited by itself or was killed on request.
/// Stored as the empty string, which no Mesos reason is.
pub const NONE: &str = "";
/// The container or process could not be started: a fetch, a pull, `docker run` or the
/// executor's spawn failed (Mesos's containerizer launch failure).
pub const REASON_CONTAINER_LAUNCH_FAILED: &str = "REASON_CONTAINER_LAUNCH_FAILED";
/// The executor ended, or the container ended, without an exit status berth can report
/// (Mesos's default for an executor that terminated).
pub const REASON_EXECUTOR_TERMINATED: &str = "REASON_EXECUTOR_TERMINATED";
/// A kill came before the task's container or process started.
pub const REASON_TASK_KILLED_DURING_LAUNCH: &str = "REASON_TASK_KILLED_DURING_LAUNCH";
/// The task ran out of its `max_completion_time` (TASK_FAILED, as Mesos's executors send).
pub const REASON_MAX_COMPLETION_TIME_REACHED: &str = "REASON_MAX_COMPLETION_TIME_REACHED";
/// The agent restarted and could not follow the task, or could not read its record of it.
pub const REASON_AGENT_RESTARTED: &str = "REASON_AGENT_RESTARTED";
/// `--executor_registration_timeout` ran out before the launch handed its executor the
/// task (a fetch, a pull or a start that took too long).
pub const REASON_EXECUTOR_REGISTRATION_TIMEOUT: &str = "REASON_EXECUTOR_REGISTRATION_TIMEOUT";

/// Every word [`read`] gives back.
pub const ALL: [&str; 6] = [
    REASON_EXECUTOR_REGISTRATION_TIMEOUT,
    REASON_CONTAINER_LAUNCH_FAILED,
    REASON_EXECUTOR_TERMINATED,
    REASON_TASK_KILLED_DURING_LAUNCH,
    REASON_MAX_COMPLETION_TIME_REACHED,
    REASON_AGENT_RESTARTED,
];

/// A stored or reported reason as the API shows it: `None` for [`NONE`], and the words of
/// earlier berths (which were not all Mesos's) as the Mesos words that replaced them. A
/// word of Mesos's berth does not write itself (an executor of a newer berth) is kept.
/// Pure.
pub fn read(word: &str) -> Option<String> {
    let today = match word {
        NONE => return None,
        // Earlier berths' words for a task that exited by itself and for a kill on
        // request, where Mesos sets no reason.
        "REASON_COMMAND_EXITED" | "REASON_TASK_KILLED" => return None,
        "REASON_FETCHER_FAILED" => REASON_CONTAINER_LAUNCH_FAILED,
        // v0's name of the same reason.
        "REASON_SLAVE_RESTARTED" | "BERTH_UNREADABLE_STATE" => REASON_AGENT_RESTARTED,
        "BERTH_CONTAINER_GONE" => REASON_EXECUTOR_TERMINATED,
        // Any other Mesos v1 word (an executor of a newer berth); anything else is no
        // reason Mesos has, and is not passed on.
        other if mesos_v1().any(|w| w == other) => other,
        _ => return None,
    };
    Some(today.to_owned())
}

/// Mesos v1's `TaskStatus.Reason` words.
fn mesos_v1() -> impl Iterator<Item = &'static str> {
    include_str!("reason_v1.txt")
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("REASON_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_words_read_as_mesos_words() {
        let cases = [
            ("", None),
            ("REASON_COMMAND_EXITED", None),
            ("REASON_TASK_KILLED", None),
            (
                "REASON_FETCHER_FAILED",
                Some(REASON_CONTAINER_LAUNCH_FAILED),
            ),
            ("REASON_SLAVE_RESTARTED", Some(REASON_AGENT_RESTARTED)),
            ("BERTH_UNREADABLE_STATE", Some(REASON_AGENT_RESTARTED)),
            ("BERTH_CONTAINER_GONE", Some(REASON_EXECUTOR_TERMINATED)),
            (
                "REASON_CONTAINER_LIMITATION_MEMORY",
                Some("REASON_CONTAINER_LIMITATION_MEMORY"),
            ),
            ("REASON_NOT_MESOS", None),
            ("whatever", None),
        ];
        for (word, want) in cases {
            assert_eq!(read(word).as_deref(), want, "{word}");
        }
        for word in ALL {
            assert_eq!(read(word).as_deref(), Some(word));
        }
    }

    /// Every word berth writes is one of Mesos v1's `TaskStatus.Reason` values.
    #[test]
    fn every_word_is_mesos_v1s() {
        for word in ALL {
            assert!(
                mesos_v1().any(|w| w == word),
                "{word} is not in Mesos v1's Reason enum"
            );
        }
        assert_eq!(mesos_v1().count(), 35);
    }
}
