//! The rule for a container named for this agent that has no record: removed only when
//! its labels agree with its name and the store is known to be whole, otherwise reported
//! and left as it is, since it may be a task whose record was lost.

use uuid::Uuid;

use super::actions::Action;
use super::bare;
use super::seen::Seen;
use super::views::{Inspect, Listed, Views};
use super::why::{Ground, Why};
use crate::docker::argv::labels;

pub(super) fn orphan(views: &Views, l: &Listed, id: Uuid) -> (Action, Why) {
    let name = bare(&l.name).to_owned();
    let info = match &l.inspect {
        Inspect::Found(info) => info,
        Inspect::Failed(e) => {
            return (
                Action::Defer,
                Ground::OrphanUninspected {
                    name,
                    error: e.to_string(),
                }
                .into(),
            )
        }
    };
    let seen = Seen::of(Some(l));
    let state = seen.state_words();
    let agent = views.agent_id.to_string();
    let container = id.to_string();
    let label = |key: &str| info.labels.get(key).map(String::as_str);
    if label(labels::AGENT_ID) != Some(agent.as_str())
        || label(labels::CONTAINER_ID) != Some(container.as_str())
    {
        return (
            Action::ReportOrphan,
            Ground::OrphanLabelsDisagree { name, state }.into(),
        );
    }
    if views.quarantined.contains(&id) {
        return (
            Action::ReportOrphan,
            Ground::OrphanQuarantined { name, state }.into(),
        );
    }
    if views.lost_records {
        return (
            Action::ReportOrphan,
            Ground::OrphanMaybeLost { name, state }.into(),
        );
    }
    if !views.kill_orphans {
        return (
            Action::ReportOrphan,
            Ground::OrphanKeptByFlag { name, state }.into(),
        );
    }
    let stop = seen.may_run();
    (
        Action::RemoveOrphan { stop },
        Ground::OrphanLeftover { name, state, stop }.into(),
    )
}
