//! The rule for a container named for this agent that has no record: removed only when
//! its labels agree with its name and the store is known to be whole, otherwise reported
//! and left as it is, since it may be a task whose record was lost.

use uuid::Uuid;

use super::actions::Action;
use super::bare;
use super::seen::Seen;
use super::views::{Inspect, Listed, Views};
use crate::docker::argv::labels;

pub(super) fn orphan(views: &Views, l: &Listed, id: Uuid) -> (Action, String) {
    let name = bare(&l.name);
    let info = match &l.inspect {
        Inspect::Found(info) => info,
        Inspect::Failed(e) => {
            return (
                Action::Defer,
                format!(
                    "container {name} is named for this agent but berth has no record of it, and docker inspect failed ({e}); berth asks again before it decides"
                ),
            )
        }
    };
    let seen = Seen::of(Some(l));
    let about = format!(
        "container {name} is named for this agent but berth has no record of it; it {}",
        seen.state_words()
    );
    let agent = views.agent_id.to_string();
    let container = id.to_string();
    let label = |key: &str| info.labels.get(key).map(String::as_str);
    if label(labels::AGENT_ID) != Some(agent.as_str())
        || label(labels::CONTAINER_ID) != Some(container.as_str())
    {
        return (
            Action::ReportOrphan,
            format!(
                "{about}; its {} and {} labels do not say the same, so it may not be berth's: left as it is",
                labels::AGENT_ID,
                labels::CONTAINER_ID
            ),
        );
    }
    let kept = if views.quarantined.contains(&id) {
        Some("part of its history was set aside as corrupt, so it may be a task whose record is unreadable")
    } else if views.lost_records {
        Some("the store lost its newest records at open, so it may be a task whose record was lost")
    } else if !views.kill_orphans {
        Some("--docker_kill_orphans=false")
    } else {
        None
    };
    match kept {
        Some(because) => (
            Action::ReportOrphan,
            format!("{about}; {because}: left as it is"),
        ),
        None => {
            let stop = seen.may_run();
            let verb = if stop {
                "stopped and removed"
            } else {
                "removed"
            };
            (
                Action::RemoveOrphan { stop },
                format!(
                    "{about}; its labels agree and the store is whole, so it is a leftover: {verb}"
                ),
            )
        }
    }
}
