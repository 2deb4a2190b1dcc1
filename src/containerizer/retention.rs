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
        self.collect_garbage_at(delay, now_ms()).await
    }

    /// [`Self::collect_garbage`] with the clock read once, by the caller: the records
    /// purged are those of exactly the containers whose sandbox went, never those of a
    /// container that became due while the sandboxes were being deleted.
    async fn collect_garbage_at(&self, delay: Duration, now_ms: u64) -> Result<usize, StoreError> {
        let mut gone = Vec::new();
        for id in due(&self.store.containers()?, delay, now_ms) {
            let sandbox = self.settings.sandbox(id);
            match std::fs::remove_dir_all(&sandbox) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    // Its records stay, so that the next round tries again: without them
                    // nothing would ever name this sandbox again.
                    tracing::warn!(%id, sandbox = %sandbox.display(), "cannot delete the sandbox: {e}");
                    continue;
                }
                _ => gone.push(id),
            }
            self.entries
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        }
        self.check_store(self.store.purge(&gone).await)
    }

    /// Runs [`Self::collect_garbage`] until the agent stops.
    pub fn spawn_garbage_collection(self: &Arc<Self>, delay: Duration) {
        let containerizer = Arc::downgrade(self);
        self.spawn_owned(async move {
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
    use berth_state::{PhaseRecord, StoreConfig, Summary};

    use super::*;
    use crate::docker::{Docker, DockerConfig};

    async fn removed(store: &berth_state::Store, task: &str) -> PhaseRecord {
        let id = Uuid::new_v4();
        let accepted = Phase::Accepted {
            task_id: task.into(),
            task_json: "{}".into(),
            kill_at_ms: None,
        };
        for phase in [accepted, Phase::Removed] {
            store.record_phase(id, phase).await.expect("record");
        }
        store
            .history(id)
            .expect("history")
            .pop()
            .expect("the removal")
    }

    fn containerizer() -> (tempfile::TempDir, Arc<Containerizer>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            berth_state::Store::open(&dir.path().join("store"), "boot", &StoreConfig::default())
                .expect("open");
        let settings = crate::containerizer::Settings {
            work_dir: dir.path().to_owned(),
            containerizers: Vec::new(),
            switch_user: true,
            sandbox_directory: "/mnt/mesos/sandbox".into(),
            stop_timeout: Duration::ZERO,
            remove_delay: Duration::ZERO,
            gc_delay: Duration::ZERO,
            recovery_timeout: Duration::ZERO,
            api_socket: dir.path().join("api.sock"),
            executor_program: "berth".into(),
            pull_fallback_home: None,
            docker_mesos_image: None,
            own_container: None,
            docker_socket_on_host: None,
            rotation: None,
            docker_log: None,
            fetcher: crate::fetch::Fetcher::default(),
            executor_registration_timeout: Duration::ZERO,
        };
        let containerizer = Containerizer::new(
            Arc::new(store),
            Docker::new(DockerConfig::default()),
            settings,
        );
        (dir, containerizer)
    }

    #[tokio::test]
    async fn a_container_due_after_the_clock_was_read_keeps_its_sandbox_and_records() {
        let (_dir, containerizer) = containerizer();
        let (store, settings) = (&containerizer.store, &containerizer.settings);
        let old = removed(store, "old").await;
        // The young one's removal must come at a later millisecond than the old one's.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while now_ms() <= old.at_ms {
            assert!(
                std::time::Instant::now() < deadline,
                "the clock stands still"
            );
            std::thread::yield_now();
        }
        let young = removed(store, "young").await;
        assert!(young.at_ms > old.at_ms);
        for id in [old.container_id, young.container_id] {
            std::fs::create_dir_all(settings.sandbox(id)).expect("sandbox");
        }

        // The clock as read between the two removals: only the old one is due, although
        // by the time the records are purged both are.
        let purged = containerizer
            .collect_garbage_at(Duration::ZERO, old.at_ms)
            .await
            .expect("gc");

        assert_eq!(purged, 1);
        assert!(!settings.sandbox(old.container_id).exists());
        assert_eq!(store.container(old.container_id).expect("read"), None);
        assert!(settings.sandbox(young.container_id).exists());
        assert_eq!(
            store.history(young.container_id).expect("history").len(),
            2,
            "a container whose sandbox stayed keeps its records"
        );
    }

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

    #[tokio::test]
    async fn a_sandbox_that_cannot_be_deleted_keeps_its_records_for_the_next_round() {
        let (_dir, containerizer) = containerizer();
        let (store, settings) = (&containerizer.store, &containerizer.settings);
        let stuck = removed(store, "stuck").await.container_id;
        let sandbox = settings.sandbox(stuck);
        std::fs::create_dir_all(sandbox.parent().expect("sandboxes")).expect("sandboxes");
        // Not a directory: remove_dir_all fails on it (root may delete anything else).
        std::fs::write(&sandbox, "not a directory").expect("write");

        let purged = containerizer
            .collect_garbage(Duration::ZERO)
            .await
            .expect("gc");

        assert_eq!(purged, 0);
        assert!(sandbox.exists());
        assert!(store.container(stuck).expect("read").is_some());
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
