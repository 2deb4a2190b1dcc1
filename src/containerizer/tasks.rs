//! The containerizer's background tasks (pipelines, kill drivers, timers, watchers, the
//! API's detached requests), owned so that the agent's stop can end them and wait for
//! them, instead of leaving them to the runtime's drop in whatever order it comes.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Every background task of one containerizer.
#[derive(Default)]
pub(crate) struct Tasks {
    tracker: TaskTracker,
    /// Cancelled by [`Tasks::stop`]: each task ends at its next await, as a crash would
    /// end it, which the write-ahead rule makes safe.
    cancelled: CancellationToken,
}

impl Tasks {
    /// Runs `work` until it ends or the stop; its handle gives `None` for the stop.
    pub(crate) fn spawn<F, T>(&self, work: F) -> JoinHandle<Option<T>>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let cancelled = self.cancelled.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = cancelled.cancelled() => None,
                out = work => Some(out),
            }
        })
    }

    /// Ends every task at its next await and waits for them all, up to `limit`; whether
    /// they all ended. A task spawned after the stop ends at once.
    pub(crate) async fn stop(&self, limit: Duration) -> bool {
        self.cancelled.cancel();
        self.tracker.close();
        tokio::time::timeout(limit, self.tracker.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Set when dropped: the task holding it has ended.
    struct Ended(Arc<AtomicBool>);

    impl Drop for Ended {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_stop_ends_every_task_and_waits_for_them() {
        let tasks = Tasks::default();
        let ended: Vec<Arc<AtomicBool>> = (0..3).map(|_| Arc::default()).collect();
        for flag in &ended {
            let held = Ended(flag.clone());
            // A timer as long as a removal's: without the stop it would outlive the test.
            tasks.spawn(async move {
                let _held = held;
                tokio::time::sleep(Duration::from_secs(6 * 3600)).await;
            });
        }
        let finished = tasks.spawn(async { 7 });
        assert_eq!(finished.await.expect("join"), Some(7));
        assert!(
            tasks.stop(Duration::from_secs(10)).await,
            "every task ended"
        );
        for flag in &ended {
            assert!(
                flag.load(Ordering::SeqCst),
                "a task still runs after the stop"
            );
        }
        let late = tasks.spawn(std::future::pending::<()>());
        assert_eq!(
            late.await.expect("join"),
            None,
            "spawned after the stop: ended"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_says_when_a_task_does_not_end_in_time() {
        let tasks = Tasks::default();
        let (started, running) = tokio::sync::oneshot::channel();
        // Blocks its thread: no await for the stop to end it at.
        tasks.spawn(async move {
            let _ = started.send(());
            std::thread::sleep(Duration::from_millis(500));
        });
        running.await.expect("the task started");
        assert!(!tasks.stop(Duration::from_millis(1)).await);
        assert!(tasks.stop(Duration::from_secs(10)).await);
    }
}
