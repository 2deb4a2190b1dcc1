//! The flusher thread: what it owns ([`Flusher`]), how it logs a batch and makes it
//! durable, its loop (wait for a request or a due checkpoint, take a batch, commit it,
//! wake its writers, checkpoint), and the handle writers hold ([`GroupFlush`]): stage
//! under the pending lock, wait for a ticket to be durable, then apply it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use super::checkpoint::Checkpoints;
use super::pending::{Pending, Staged, Ticket};
use super::shared::Shared;
use super::watermark::Watermark;
use super::{Files, Flush, FlushObserver};
use crate::config::Durability;
use crate::wal::{self, Wal};

/// Everything the flusher thread owns.
pub(crate) struct Flusher {
    pub(crate) db: sled::Db,
    /// `None` for a store opened for inspection, which writes nothing.
    pub(crate) wal: Option<Wal>,
    pub(crate) files: Files,
    pub(crate) durability: Durability,
    pub(crate) watermark: Option<Watermark>,
    /// The newest seq logged: the base of the next generation (once applied).
    pub(crate) newest: u64,
    pub(crate) checkpoints: Checkpoints,
}

impl Flusher {
    /// Logs a batch and makes it durable as the durability asks.
    fn commit(&mut self, batch: &[Staged]) -> Result<(), String> {
        let wal = self
            .wal
            .as_mut()
            .ok_or("the store was opened for inspection only")?;
        wal.append(&wal::frame(batch.iter().map(|s| s.bytes.as_slice())))
            .map_err(|e| format!("writing berth's write-ahead log: {e}"))?;
        if self.durability == Durability::PowerLoss {
            wal.sync()
                .map_err(|e| format!("fdatasync of berth's write-ahead log: {e}"))?;
        }
        for staged in batch {
            self.newest = self.newest.max(staged.seq);
        }
        self.watermark
            .as_ref()
            .map_or(Ok(()), |w| w.write(self.newest))
    }
}

/// The flusher; dropping it stops the thread after a last batch and checkpoint.
pub(crate) struct GroupFlush {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    flushes: Arc<AtomicU64>,
}

impl GroupFlush {
    /// Starts the flusher thread; writers apply their entries to `records`.
    pub(crate) fn start(flusher: Flusher, records: sled::Tree) -> std::io::Result<GroupFlush> {
        let shared = Arc::new(Shared::new(records));
        let flushes = Arc::new(AtomicU64::new(0));
        let thread = {
            let shared = shared.clone();
            let flushes = flushes.clone();
            std::thread::Builder::new()
                .name("berth-state-flush".into())
                .spawn(move || {
                    let _failing = FailOnPanic(&shared);
                    run(flusher, &shared, &flushes)
                })?
        };
        Ok(GroupFlush {
            shared,
            thread: Some(thread),
            flushes,
        })
    }

    /// The pending writes, locked: a writer reads through them, then stages its own. Held
    /// only for in-memory work, never across a wait.
    pub(crate) fn pending(&self) -> MutexGuard<'_, Pending> {
        self.shared.pending()
    }

    /// The error of the failure, if one happened: nothing more can be made durable.
    pub(crate) fn poisoned(&self) -> Option<Arc<str>> {
        if !self.shared.failed() {
            return None;
        }
        self.shared.progress().failed.clone()
    }

    /// Waits until the entry staged with `ticket` is durable, then applies it to sled.
    pub(crate) async fn durable(&self, ticket: Ticket) -> Result<(), Arc<str>> {
        let waiting = {
            let mut progress = self.shared.progress();
            if progress.durable >= ticket.number {
                None
            } else if let Some(error) = &progress.failed {
                return Err(error.clone());
            } else {
                let (tx, rx) = oneshot::channel();
                progress.waiting.entry(ticket.number).or_default().push(tx);
                Some(rx)
            }
        };
        if let Some(rx) = waiting {
            self.shared.request();
            rx.await
                .map_err(|_| Arc::<str>::from("the store's flusher stopped"))??;
        }
        self.shared.apply(ticket)
    }

    /// How many batches have been logged (for benchmarks and tests of batching).
    pub(crate) fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Sets the observer of batches and of the failure; false if one was set already
    /// (it stays).
    pub(crate) fn observe(&self, observer: FlushObserver) -> bool {
        self.shared.observer.set(observer).is_ok()
    }
}

impl Drop for GroupFlush {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.request();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Poisons the store if the flusher thread panics (inside sled, say), so that writers
/// waiting for it get an error instead of waiting forever.
struct FailOnPanic<'a>(&'a Shared);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail(Arc::from(
                "the store's flusher thread panicked; restart the agent",
            ));
        }
    }
}

fn run(mut flusher: Flusher, shared: &Shared, flushes: &AtomicU64) {
    // When the newest generation got its first entry.
    let mut first: Option<Instant> = None;
    loop {
        let poisoned = shared.failed();
        // Poisoned, no checkpoint may come: only a request (or the stop) wakes the thread.
        shared.wait(flusher.due(first, false).filter(|_| !poisoned));
        let stopping = shared.stop.load(Ordering::SeqCst);
        if shared.failed() {
            // Poisoned: writers see the failure before they wait.
            if stopping {
                return;
            }
            continue;
        }
        let (batch, ticket) = shared.pending().take();
        if !batch.is_empty() {
            let started = Instant::now();
            let result = flusher.commit(&batch);
            flushes.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(()) => {
                    first.get_or_insert_with(Instant::now);
                    shared.tell(Flush::Logged(started.elapsed()));
                    shared.progress().durable(ticket);
                }
                Err(e) => shared.fail(Arc::from(e)),
            }
            if !shared.pending().queue.is_empty() {
                // More came while this batch was written (or it was cut at its size): go
                // on without waiting for a request.
                shared.request();
            }
        }
        // Waiters were woken above: a checkpoint delays only the next batch.
        let due = flusher.due(first, stopping);
        if !shared.failed() && due.is_some_and(|t| t <= Instant::now()) {
            let durable = shared.progress().durable;
            match flusher.checkpoint(shared, durable) {
                Ok(()) => first = None,
                Err(e) => shared.fail(Arc::from(e)),
            }
        }
        if stopping && shared.pending().queue.is_empty() {
            return;
        }
    }
}
