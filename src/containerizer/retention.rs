//! Garbage collection of ended tasks (`--gc_delay`): once a container has been removed
//! for longer than the delay, its sandbox and its records go, and it leaves the API's
//! listings. Without this, a long-lived agent's disk and store only grow.

use std::sync::Arc;
use std::time::Duration;

use berth_state::{now_ms, Phase, StoreError};
use uuid::Uuid;

use super::Containerizer;

/// The removed containers whose removal is older than `delay` at `now_ms`. Pure.
pub fn due(summaries: &[berth_state::Summary], delay: Duration, now_ms: u64) -> Vec<Uuid> {
    let delay = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    summaries
        .iter()
        .filter(|s| matches!(s.last.phase, Phase::Removed))
        .filter(|s| s.last.at_ms.saturating_add(delay) <= now_ms)
        .map(|s| s.container_id)
        .collect()
}

/// How often to look: often enough that a short delay is honoured, rarely enough that a
/// week's delay costs nothing. Pure.
pub fn interval(delay: Duration) -> Duration {
    (delay / 4).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

impl Containerizer {
    /// Deletes the sandboxes, then the records, of containers removed more than `delay`
    /// ago. Sandboxes go first: a crash in between leaves records whose sandbox is gone,
    /// which the next round drops; the other order would leak sandboxes for good.
    pub async fn collect_garbage(&self, delay: Duration) -> Result<usize, StoreError> {
        let ids = due(&self.store.containers()?, delay, now_ms());
        for id in &ids {
            let sandbox = self.settings.sandbox(*id);
            match std::fs::remove_dir_all(&sandbox) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(%id, sandbox = %sandbox.display(), "cannot delete the sandbox: {e}");
                }
                _ => {}
            }
            self.entries
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
        }
        self.store.purge_removed(delay).await
    }

    /// Runs [`Self::collect_garbage`] until the agent stops.
    pub fn spawn_garbage_collection(self: &Arc<Self>, delay: Duration) {
        let containerizer = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval(delay)).await;
                let Some(c) = containerizer.upgrade() else {
                    return;
                };
                match c.collect_garbage(delay).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(containers = n, "dropped the records of removed containers")
                    }
                    Err(e) => tracing::warn!("garbage collection failed: {e}"),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use berth_state::{PhaseRecord, Summary};

    use super::*;

    fn summary(phase: Phase, at_ms: u64) -> Summary {
        let container_id = Uuid::new_v4();
        Summary {
            container_id,
            task_id: "t".into(),
            last: PhaseRecord {
                seq: 1,
                at_ms,
                container_id,
                phase,
            },
            accepted_at_ms: 0,
        }
    }

    #[test]
    fn only_containers_removed_longer_than_the_delay_are_due() {
        let old = summary(Phase::Removed, 1_000);
        let young = summary(Phase::Removed, 9_500);
        let running = summary(
            Phase::Running {
                container: String::new(),
                pid: None,
            },
            0,
        );
        let all = [old.clone(), young, running];
        assert_eq!(
            due(&all, Duration::from_secs(1), 10_000),
            [old.container_id]
        );
        assert_eq!(due(&all, Duration::from_secs(0), 10_000).len(), 2);
        assert!(due(&all, Duration::MAX, 10_000).is_empty());
    }

    #[test]
    fn the_interval_stays_between_a_second_and_ten_minutes() {
        assert_eq!(interval(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(interval(Duration::from_secs(40)), Duration::from_secs(10));
        assert_eq!(
            interval(Duration::from_secs(7 * 86400)),
            Duration::from_secs(600)
        );
    }
}
