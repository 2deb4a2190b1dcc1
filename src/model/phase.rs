//! What each recorded phase says of its task's state: the one mapping from the store's
//! phases to [`TaskState`], which the view rebuilt at a start and the status updates
//! read through.

use berth_state::Phase;

use super::TaskState;

/// The state `phase` announces, if it announces one (fetching, pulling, removal and
/// recovery's decisions do not). Pure.
pub fn announced(phase: &Phase) -> Option<TaskState> {
    match phase {
        Phase::Accepted { .. } => Some(TaskState::Staging),
        Phase::ExecutorStarting { .. } | Phase::ExecutorContainerStarting { .. } => {
            Some(TaskState::Starting)
        }
        Phase::Running { .. } | Phase::RunningProcess { .. } => Some(TaskState::Running),
        Phase::Killing { .. } => Some(TaskState::Killing),
        Phase::Terminated { state, .. } => Some(*state),
        Phase::Fetching | Phase::Pulling { .. } | Phase::Removed | Phase::Decision { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_state::Identity;

    #[test]
    fn every_phase_says_its_state_or_none() {
        let identity = Identity {
            boot_id: "b".into(),
            pid: 7,
            start_ticks: 9,
        };
        let ended = |state| Phase::Terminated {
            state,
            reason: String::new(),
            message: String::new(),
            exit_code: None,
            remove_at_ms: 0,
        };
        let cases = [
            (
                Phase::Accepted {
                    task_id: "t".into(),
                    task_json: "{}".into(),
                    kill_at_ms: None,
                },
                Some(TaskState::Staging),
            ),
            (Phase::Fetching, None),
            (Phase::Pulling { image: "i".into() }, None),
            (
                Phase::ExecutorStarting {
                    identity: identity.clone(),
                },
                Some(TaskState::Starting),
            ),
            (
                Phase::ExecutorContainerStarting {
                    identity: identity.clone(),
                    container: "c".into(),
                    started_at_ns: 1,
                },
                Some(TaskState::Starting),
            ),
            (
                Phase::Running {
                    container: "c".into(),
                    pid: Some(7),
                },
                Some(TaskState::Running),
            ),
            (Phase::RunningProcess { identity }, Some(TaskState::Running)),
            (
                Phase::Killing {
                    grace_ms: 0,
                    requested_at_ms: 0,
                    reason: "asked".into(),
                },
                Some(TaskState::Killing),
            ),
            (ended(TaskState::Finished), Some(TaskState::Finished)),
            (ended(TaskState::Killed), Some(TaskState::Killed)),
            (Phase::Removed, None),
            (
                Phase::Decision {
                    action: "a".into(),
                    why: "w".into(),
                },
                None,
            ),
        ];
        for (phase, want) in cases {
            assert_eq!(announced(&phase), want, "{phase:?}");
        }
    }

    /// The store's guard (`Phase::may_follow`) and the state guard (`can_become`) are one
    /// lifecycle: where a phase may be recorded, the state it announces may follow the
    /// state before, but for the records the view does not show, named here.
    #[test]
    fn the_store_and_the_state_guard_are_one_lifecycle() {
        let identity = Identity {
            boot_id: "b".into(),
            pid: 7,
            start_ticks: 9,
        };
        let phases = [
            Phase::Accepted {
                task_id: "t".into(),
                task_json: "{}".into(),
                kill_at_ms: None,
            },
            Phase::Fetching,
            Phase::Pulling { image: "i".into() },
            Phase::ExecutorStarting {
                identity: identity.clone(),
            },
            Phase::ExecutorContainerStarting {
                identity: identity.clone(),
                container: "c".into(),
                started_at_ns: 1,
            },
            Phase::Running {
                container: "c".into(),
                pid: Some(7),
            },
            Phase::RunningProcess { identity },
            Phase::Killing {
                grace_ms: 0,
                requested_at_ms: 0,
                reason: "asked".into(),
            },
            Phase::Terminated {
                state: TaskState::Failed,
                reason: String::new(),
                message: String::new(),
                exit_code: None,
                remove_at_ms: 0,
            },
            Phase::Removed,
            Phase::Decision {
                action: "a".into(),
                why: "w".into(),
            },
        ];
        // Recorded, and the task keeps the state it had:
        let unseen = [
            // a new executor for a task whose container runs on (re-attached after its
            // executor died), or is being killed;
            ("Running", "ExecutorStarting"),
            ("Running", "ExecutorContainerStarting"),
            ("RunningProcess", "ExecutorStarting"),
            ("RunningProcess", "ExecutorContainerStarting"),
            ("Killing", "ExecutorStarting"),
            ("Killing", "ExecutorContainerStarting"),
            // a launch step under way when the kill came reports; the kill goes on.
            ("Killing", "Running"),
            ("Killing", "RunningProcess"),
        ];
        let mut found = Vec::new();
        for before in &phases {
            for next in &phases {
                let states = announced(before).zip(announced(next));
                if next.may_follow(Some(before)) {
                    if let Some((from, to)) = states.filter(|(from, to)| !from.can_become(*to)) {
                        assert!(
                            unseen.contains(&(before.name(), next.name())),
                            "{} may follow {} in the store, but {from:?} may not become {to:?}",
                            next.name(),
                            before.name()
                        );
                        found.push((before.name(), next.name()));
                    }
                } else if let Some((from, to)) = states {
                    // Only a state repeated (which changes nothing) is allowed in memory
                    // and refused in the store.
                    assert!(
                        !from.can_become(to) || from == to,
                        "{from:?} may become {to:?}, but the store refuses {} after {}",
                        next.name(),
                        before.name()
                    );
                }
            }
        }
        assert_eq!(found, unseen, "every exception is one the store makes");
    }
}
