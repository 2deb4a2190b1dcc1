//! The recovery decision: the views the agent gathered after a restart in, one action per
//! container out, each with the reason a person reads in `berth state show`.
//!
//! Pure on purpose: nothing here calls Docker, reads /proc or looks at a clock (the time is
//! one of the views). That makes every row of the decision table (docs/recovery.md) a unit
//! test, and lets `berth recover --dry-run` print a plan without acting.
//!
//! The rules, in the order [`plan`] applies them:
//! - the agent's own container (`--docker_mesos_image`) is left alone, whatever its name;
//! - a container is berth's only if its name parses with this agent's id; anything else
//!   is left alone, whatever the flags say;
//! - a history berth cannot read whole is held, never acted on;
//! - a process is signalled only if its identity was checked and is still the recorded
//!   one; a reused pid or a pid from another boot is never signalled;
//! - a task's container never keeps running without a live executor to watch it;
//! - a kill recorded before the restart is finished, never undone by a resumed launch;
//! - a launch interrupted before anything ran resumes from its last durable phase, after
//!   removing containers that never started, so that one task never has two containers;
//! - a container without a record is killed only when the store is known to be whole and
//!   its labels agree with its name; otherwise it is reported.
//!
//! One file per part, so that each can be read without the others: the views in
//! (`views.rs`), the actions out (`actions.rs`) and their reasons (`why.rs`), the views as
//! the rules read them (`seen.rs`), one record's case and the rules every record meets
//! first (`case.rs`), the rules by stage (`ending.rs`, `launch.rs`), and containers without
//! a record (`orphan.rs`). This file joins them: [`plan`] pairs each record with its
//! containers.

mod actions;
mod case;
mod ending;
mod launch;
mod orphan;
mod seen;
mod views;
mod why;

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::docker::ContainerName;

pub use self::actions::{Action, Decision, Outcome, Plan, ResumeFrom, Subject, Watch};
pub use self::views::{
    DockerView, Inspect, KillAsked, Listed, ProcessSeen, Recorded, Recover, Stage, Views, Workload,
};
pub use self::why::{Due, Ground, Then, Why};
use case::Case;
use orphan::orphan;

pub use crate::containerizer::kill::REASON_TASK_KILLED;
pub use crate::model::reason::{
    REASON_AGENT_RESTARTED, REASON_MAX_COMPLETION_TIME_REACHED, REASON_TASK_KILLED_DURING_LAUNCH,
};

/// Decides, for every record and every listed container, what to do and why. Pure.
pub fn plan(views: &Views) -> Plan {
    let agent = views.agent_id.to_string();
    let listed: &[Listed] = match &views.docker {
        DockerView::Listed(listed) => listed,
        DockerView::Unreachable(_) => &[],
    };
    let names: Vec<Result<ContainerName, _>> = listed
        .iter()
        .map(|l| ContainerName::parse(&l.name))
        .collect();
    // Whatever its name, so that a record whose task it seems to be never claims it.
    let own = |l: &Listed| match (&l.inspect, &views.own_container) {
        (Inspect::Found(info), Some(own)) => info.id == *own,
        _ => false,
    };
    // This agent's containers by container id: (task container, `.executor` container).
    let mut ours: BTreeMap<Uuid, (Option<&Listed>, Option<&Listed>)> = BTreeMap::new();
    for (l, name) in listed.iter().zip(&names) {
        let Ok(n) = name else { continue };
        if n.agent_id != agent || own(l) {
            continue;
        }
        let slot = ours.entry(n.container_id).or_default();
        if n.executor {
            slot.1 = Some(l);
        } else {
            slot.0 = Some(l);
        }
    }
    let mut decisions = Vec::new();
    for record in &views.records {
        let (task, executor) = ours.remove(&record.container_id).unwrap_or_default();
        let (action, why) = Case::new(views, record, task, executor).decide();
        decisions.push(Decision {
            subject: Subject::Task {
                container_id: record.container_id,
                task_id: record.task_id.clone(),
            },
            action,
            why,
        });
    }
    // The rest in listing order, so that the plan reads like `docker ps`.
    for (l, name) in listed.iter().zip(names) {
        let bare = bare(&l.name);
        let (action, why) = match name {
            _ if own(l) => (
                Action::LeaveAlone,
                Ground::OwnContainer {
                    name: bare.to_owned(),
                }
                .into(),
            ),
            Err(e) => (
                Action::LeaveAlone,
                Ground::NotBerths {
                    name: bare.to_owned(),
                    error: e,
                }
                .into(),
            ),
            Ok(n) if n.agent_id != agent => (
                Action::LeaveAlone,
                Ground::OtherAgent {
                    name: bare.to_owned(),
                    agent: n.agent_id,
                    this: agent.clone(),
                }
                .into(),
            ),
            Ok(n) if ours.contains_key(&n.container_id) => orphan(views, l, n.container_id),
            // Claimed by a record and decided with it.
            Ok(_) => continue,
        };
        decisions.push(Decision {
            subject: Subject::Container {
                name: bare.to_owned(),
            },
            action,
            why,
        });
    }
    Plan { decisions }
}

fn bare(name: &str) -> &str {
    name.strip_prefix('/').unwrap_or(name)
}

#[cfg(test)]
mod tests;
