//! A task decided again while the agent serves, when its executor exited before the
//! task's end was reported (`crate::containerizer::exits` notices it, and kills what the
//! executor left in its session first): the same views as
//! at a start, gathered for that one task, the same pure plan, and the decision recorded
//! before it is carried out. So a task whose executor died ends within moments, with its
//! container stopped and a reason, instead of showing RUNNING until the next restart.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;

use super::plan::{Action, Recover};
use super::retry::{carry_out_while_serving, retry_deferred, safe_while_serving};
use crate::containerizer::{Containerizer, ExecutorExit};

/// Decides the task of every executor exit it receives, each on its own, until the
/// containerizer is gone.
pub async fn decide_exits(c: Arc<Containerizer>, mut exits: UnboundedReceiver<ExecutorExit>) {
    while let Some(exit) = exits.recv().await {
        let c = c.clone();
        let owner = c.clone();
        owner.spawn_owned(async move { decide_exit(&c, exit).await });
    }
}

async fn decide_exit(c: &Arc<Containerizer>, exit: ExecutorExit) {
    let id = exit.container_id;
    let flags = c.settings.gathering();
    let gathering = match super::gather::gather_one(c.store(), &flags, c.docker(), id).await {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(%id, "cannot read the task's records to decide it: {e}");
            return defer(c, id);
        }
    };
    let Some(decision) = super::plan::plan(&gathering.views)
        .decisions
        .into_iter()
        .find(|d| d.subject.container_id() == Some(id))
    else {
        return;
    };
    if decision.action == Action::Defer {
        // Recorded, so that the history says why nothing happened yet.
        carry_out_while_serving(c, &decision, &gathering.records).await;
        return defer(c, id);
    }
    if !safe_while_serving(&decision.action) {
        tracing::warn!(%id, why = %decision.why, "the task's executor exited; deciding again later");
        return defer(c, id);
    }
    if !carry_out_while_serving(c, &decision, &gathering.records).await {
        defer(c, id);
    }
}

fn defer(c: &Arc<Containerizer>, id: uuid::Uuid) {
    c.spawn_owned(retry_deferred(
        c.clone(),
        Recover::Reconnect,
        false,
        BTreeSet::from([id]),
        true,
    ));
}
