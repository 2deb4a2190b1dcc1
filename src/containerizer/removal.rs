//! An ended task's containers removed at the stored due time, then `Removed` recorded.
//! Apart because it runs long after the end, detached from the entry, and is what the
//! plan picks up again from the store after a restart.

use std::time::Duration;

use berth_state::{now_ms, Phase, StoreError};
use uuid::Uuid;

use super::launch::BACKOFF;
use super::Containerizer;

impl Containerizer {
    /// Removes the containers at the stored due time, then records `Removed`; each step
    /// is tried again with backoff until it succeeds (after a restart, the plan picks the
    /// due time up from the store).
    pub(crate) fn schedule_removal(&self, id: Uuid, names: Vec<String>, at_ms: u64) {
        let docker = self.docker.clone();
        let store = self.store.clone();
        let store_failed = self.store_failed.clone();
        self.spawn_owned(async move {
            tokio::time::sleep(Duration::from_millis(at_ms.saturating_sub(now_ms()))).await;
            let mut wait = BACKOFF.0;
            for name in names {
                while let Err(e) = docker.rm(&name).await {
                    tracing::warn!(%id, "cannot remove container {name} ({e}); trying again in {wait:?}");
                    tokio::time::sleep(wait).await;
                    wait = crate::backoff::doubled(wait, BACKOFF.1);
                }
            }
            loop {
                let removed = store
                    .container(id)
                    .ok()
                    .flatten()
                    .is_some_and(|s| matches!(s.last.phase, Phase::Removed));
                if removed {
                    return;
                }
                match super::record_phase(&store, id, Phase::Removed).await {
                    Ok(()) => return,
                    // The store takes no write after this; the agent stops, and the plan
                    // removes at the next start.
                    Err(StoreError::NotDurable(e)) => {
                        tracing::error!(%id, "cannot record the removal: {e}");
                        super::note_store_failure(&store_failed, &e);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(%id, "cannot record the removal ({e}); trying again in {wait:?}");
                        tokio::time::sleep(wait).await;
                        wait = crate::backoff::doubled(wait, BACKOFF.1);
                    }
                }
            }
        });
    }
}
