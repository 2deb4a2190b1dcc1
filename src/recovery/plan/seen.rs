//! A container and a recorded executor as the decision sees them: Docker's state and
//! /proc's answer folded into the few cases the rules tell apart, each with the words a
//! reason uses for it.
//!
//! The rules match on these rather than on the raw views so that every rule reads a
//! failed inspect, an unreachable Docker or an unchecked pid the same way, and says it in
//! the same words.

use berth_state::Identity;

use super::views::{Inspect, Listed, Workload};
use crate::docker::ContainerState;

/// A container as the decision sees it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Seen {
    Absent,
    Created,
    Live(&'static str),
    Exited(Option<i32>),
    Dead,
    Unknown(String),
}

impl Seen {
    pub(super) fn of(listed: Option<&Listed>) -> Seen {
        let Some(l) = listed else {
            return Seen::Absent;
        };
        let info = match &l.inspect {
            Inspect::Found(info) => info,
            Inspect::Failed(e) => return Seen::Unknown(format!("docker inspect failed: {e}")),
        };
        match &info.state {
            ContainerState::Created => Seen::Created,
            ContainerState::Running => Seen::Live("running"),
            ContainerState::Paused => Seen::Live("paused"),
            ContainerState::Restarting => Seen::Live("restarting"),
            ContainerState::Exited => Seen::Exited(info.exit_code),
            // Being removed is as good as dead: it will not run again.
            ContainerState::Dead | ContainerState::Removing => Seen::Dead,
            ContainerState::Unknown(s) => {
                Seen::Unknown(format!("Docker reports a state berth does not know, {s:?}"))
            }
        }
    }

    pub(super) fn present(&self) -> bool {
        !matches!(self, Seen::Absent)
    }

    /// Whether it may have running processes, so that stopping it matters.
    pub(super) fn may_run(&self) -> bool {
        matches!(self, Seen::Live(_) | Seen::Unknown(_))
    }

    pub(super) fn describe(&self, name: &str) -> String {
        format!("container {name} {}", self.state_words())
    }

    pub(super) fn state_words(&self) -> String {
        match self {
            Seen::Absent => "does not exist".into(),
            Seen::Created => "was created but never started".into(),
            Seen::Live(state) => format!("is {state}"),
            Seen::Exited(Some(code)) => format!("exited with status {code}"),
            Seen::Exited(None) => "exited, with no usable exit code".into(),
            Seen::Dead => "is dead or being removed".into(),
            Seen::Unknown(why) => format!("is in a state Docker could not tell ({why})"),
        }
    }
}

/// The recorded executor as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Exec<'a> {
    NotRecorded,
    Alive(&'a Identity),
    Gone(&'a Identity),
    Reused(&'a Identity),
    OtherBoot(&'a Identity),
    Unchecked(&'a Identity, &'a str),
    /// Its process runs, but its own container (`--docker_mesos_image`) is not the one
    /// recorded, or does not run: it is not this task's executor.
    Replaced(&'a Identity),
}

impl Exec<'_> {
    pub(super) fn alive(&self) -> Option<&Identity> {
        match self {
            Exec::Alive(id) => Some(id),
            _ => None,
        }
    }

    pub(super) fn unchecked(&self) -> bool {
        matches!(self, Exec::Unchecked(..))
    }

    pub(super) fn rebooted(&self) -> bool {
        matches!(self, Exec::OtherBoot(_))
    }

    pub(super) fn describe(&self, workload: Workload) -> String {
        let who = match workload {
            Workload::DockerExecutor => "the `berth executor` carrying its output",
            Workload::DockerTask | Workload::Process => "its executor",
        };
        match self {
            Exec::NotRecorded => "no executor was recorded".into(),
            Exec::Alive(id) => format!("{who} (pid {}) is still running", id.pid),
            Exec::Gone(id) => format!("{who} (pid {}) has exited", id.pid),
            Exec::Replaced(id) => format!(
                "{who} (pid {}) is not in the executor container recorded for it (that container is gone, stopped, or started again since), so it is not taken for the task's",
                id.pid
            ),
            Exec::Reused(id) => format!(
                "{who} (pid {}) has exited and its pid now belongs to another process, which berth leaves alone",
                id.pid
            ),
            Exec::OtherBoot(id) => format!(
                "the host rebooted since {who} (pid {}) started, so it is gone",
                id.pid
            ),
            Exec::Unchecked(id, why) => {
                format!("{who} (pid {}) could not be checked: {why}", id.pid)
            }
        }
    }
}
