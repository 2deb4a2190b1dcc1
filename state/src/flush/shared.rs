//! What writers and the flusher thread share: the pending lock, the stripe locks that
//! keep each key's values reaching sled in log order, the request flag and condvar that
//! wake the flusher, the progress (durable tickets, waiting writers) and the failure that
//! poisons the store. Applying a durable entry to sled lives here too, since writers and
//! the flusher (for leftovers before a checkpoint) both do it under these locks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use tokio::sync::oneshot;

use super::pending::{Pending, Stripes, Ticket, STRIPES};
use super::{Flush, FlushObserver};

/// Wakes one writer: `Ok` once its ticket is durable, or the flusher's failure.
type Waiter = oneshot::Sender<Result<(), Arc<str>>>;
/// What the flusher has achieved so far, and who waits for what.
#[derive(Default)]
pub(super) struct Progress {
    /// Every ticket up to this is durable (its writer then applies it to sled).
    pub(super) durable: u64,
    /// Set by the first failure; every ticket above `durable` fails with it.
    pub(super) failed: Option<Arc<str>>,
    /// Writers waiting, by ticket. Each is woken alone, when its ticket is durable (or
    /// the flusher failed): a batch wakes its own writers, not every writer waiting.
    pub(super) waiting: BTreeMap<u64, Vec<Waiter>>,
}

impl Progress {
    /// Every ticket up to `ticket` is durable: wakes their writers.
    pub(super) fn durable(&mut self, ticket: u64) {
        self.durable = self.durable.max(ticket);
        let later = self.waiting.split_off(&ticket.saturating_add(1));
        for waiter in std::mem::replace(&mut self.waiting, later)
            .into_values()
            .flatten()
        {
            // A writer that stopped waiting dropped its receiver: nothing to wake.
            let _ = waiter.send(Ok(()));
        }
    }

    /// The first failure: wakes every writer waiting, with the error.
    fn fail(&mut self, error: Arc<str>) {
        let error = self.failed.get_or_insert(error).clone();
        for waiter in std::mem::take(&mut self.waiting).into_values().flatten() {
            let _ = waiter.send(Err(error.clone()));
        }
    }
}
/// Writes claimed values to sled.
pub(super) fn write(
    tree: &sled::Tree,
    writes: &[(Vec<u8>, Option<Vec<u8>>)],
) -> Result<(), sled::Error> {
    for (key, value) in writes {
        match value {
            Some(v) => tree.insert(key.as_slice(), v.as_slice()).map(drop)?,
            None => tree.remove(key.as_slice()).map(drop)?,
        }
    }
    Ok(())
}

pub(super) struct Shared {
    /// The tree every logged write goes to.
    pub(super) records: sled::Tree,
    pending: Mutex<Pending>,
    /// Held, for the stripes of its keys, while a claimed entry is written to sled, so
    /// that per key the values reach sled in log order; the pending lock is not held
    /// meanwhile, so that writers stage and the flusher takes its next batch while sled is
    /// written.
    applying: [Mutex<()>; STRIPES],
    /// Set by writers (and the flusher itself) when there is something to log; the
    /// flusher clears it when it starts a batch. Only the first request after that takes
    /// the lock below to wake it: one lock and one wake per batch, not per record.
    requested: AtomicBool,
    /// Held by the flusher from its check of `requested` until it sleeps, so that a wake
    /// is never lost between the two.
    sleep: Mutex<()>,
    wake: Condvar,
    pub(super) stop: AtomicBool,
    progress: Mutex<Progress>,
    /// Whether `progress` holds a failure: every write checks it first, without the lock.
    failed: AtomicBool,
    /// Told of every batch and of the failure; set once, after the store opened.
    pub(super) observer: OnceLock<FlushObserver>,
}

impl Shared {
    pub(super) fn new(records: sled::Tree) -> Shared {
        Shared {
            records,
            pending: Mutex::new(Pending::default()),
            applying: std::array::from_fn(|_| Mutex::new(())),
            requested: AtomicBool::new(false),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            progress: Mutex::new(Progress::default()),
            failed: AtomicBool::new(false),
            observer: OnceLock::new(),
        }
    }

    pub(super) fn tell(&self, flush: Flush) {
        if let Some(observer) = self.observer.get() {
            observer(flush);
        }
    }

    pub(super) fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn request(&self) {
        if self.requested.swap(true, Ordering::SeqCst) {
            // Not taken yet: the batch that takes it takes this writer's entry too.
            return;
        }
        let _sleep = self.sleep.lock().unwrap_or_else(|p| p.into_inner());
        self.wake.notify_one();
    }

    pub(super) fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    pub(super) fn fail(&self, error: Arc<str>) {
        let mut progress = self.progress();
        // Stored before the flag is raised, so that whoever sees the flag finds the error.
        let error = progress.failed.get_or_insert(error).clone();
        let first = !self.failed.swap(true, Ordering::SeqCst);
        // Told under the lock, before any writer is woken with the error or finds it, so
        // that whoever sees the error can see it counted. An observer that panics must
        // not leave the writers waiting: they are woken first, then the panic goes on.
        let told = if first {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.tell(Flush::Failed)))
        } else {
            Ok(())
        };
        progress.fail(error);
        drop(progress);
        if let Err(panic) = told {
            std::panic::resume_unwind(panic);
        }
    }

    /// Applies the entry staged with `ticket`, which must be durable. A failure poisons
    /// the store before the stripes are let go, so that a checkpoint (which waits for
    /// every stripe) sees it and removes no generation holding the entry sled lacks.
    pub(super) fn apply(&self, ticket: Ticket) -> Result<(), Arc<str>> {
        let _applying = ticket.stripes.lock(&self.applying);
        self.apply_locked(ticket.number).map_err(|e| {
            // sled now lacks a durable write: nothing more may be vouched for.
            let error: Arc<str> = Arc::from(format!("applying a logged write to sled: {e}"));
            self.fail(error.clone());
            error
        })
    }

    /// Applies every durable entry whose writer has not (it stopped waiting, or has not
    /// got to it yet), so that sled holds everything the log holds up to `durable`.
    pub(super) fn apply_leftovers(&self, durable: u64) -> Result<(), sled::Error> {
        // Every stripe: a writer that claimed its entry (so it is not listed below) holds
        // its stripes until sled has the entry, and is waited for here.
        let _applying = Stripes::ALL.lock(&self.applying);
        let leftovers: Vec<u64> = self
            .pending()
            .unapplied
            .range(..=durable)
            .map(|(&t, _)| t)
            .collect();
        for ticket in leftovers {
            self.apply_locked(ticket)?;
        }
        Ok(())
    }

    /// Claims, writes and settles an entry; the caller holds its stripes.
    fn apply_locked(&self, ticket: u64) -> Result<(), sled::Error> {
        // Claiming finds nothing if the entry was applied meanwhile, or if later entries
        // applied every key of it: either way sled holds what it stands for.
        let writes = self.pending().claim(ticket);
        if writes.is_empty() {
            self.pending().unsettled.remove(&ticket);
            return Ok(());
        }
        // Until settled, the values stay staged: a writer reading meanwhile sees them.
        write(&self.records, &writes)?;
        self.pending()
            .settle(ticket, writes.iter().map(|(key, _)| key.as_slice()));
        Ok(())
    }

    /// Waits for a request, or until `until` (a checkpoint is due then).
    pub(super) fn wait(&self, until: Option<Instant>) {
        let mut sleep = self.sleep.lock().unwrap_or_else(|p| p.into_inner());
        while !self.requested.swap(false, Ordering::SeqCst) {
            sleep = match until {
                None => self.wake.wait(sleep).unwrap_or_else(|p| p.into_inner()),
                Some(t) => {
                    let now = Instant::now();
                    if now >= t {
                        return;
                    }
                    self.wake
                        .wait_timeout(sleep, t - now)
                        .map(|(w, _)| w)
                        .unwrap_or_else(|p| p.into_inner().0)
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flush::pending::tests::{put, tree, value};
    use crate::wal::Entry;

    #[test]
    fn leftovers_stop_at_what_is_durable() {
        let shared = shared();
        let one = shared
            .pending()
            .stage(Entry {
                seq: 1,
                ops: vec![put("k", "one")],
            })
            .expect("stage");
        shared
            .pending()
            .stage(Entry {
                seq: 2,
                ops: vec![put("k", "two")],
            })
            .expect("stage");
        shared.apply_leftovers(one.number).expect("leftovers");
        assert_eq!(value(&shared.records, "k").as_deref(), Some("one"));
        assert_eq!(
            shared.pending().get(&shared.records, b"k").expect("get"),
            Some(b"two".to_vec())
        );
    }

    fn shared() -> Shared {
        Shared::new(tree())
    }

    #[test]
    fn leftovers_wait_for_writers_still_applying() {
        // A checkpoint may remove a generation only once sled holds every durable entry,
        // including those a writer claimed and is still writing.
        for round in 0..200 {
            let shared = Arc::new(shared());
            let tickets: Vec<Ticket> = (0..64u64)
                .map(|i| {
                    shared
                        .pending()
                        .stage(Entry {
                            seq: i,
                            ops: vec![put(&format!("k{i}"), "v")],
                        })
                        .expect("stage")
                })
                .collect();
            let last = tickets[tickets.len() - 1].number;
            let writers: Vec<_> = tickets
                .chunks(16)
                .map(|chunk| {
                    let (shared, chunk) = (shared.clone(), chunk.to_vec());
                    std::thread::spawn(move || {
                        for ticket in chunk {
                            shared.apply(ticket).expect("apply");
                        }
                    })
                })
                .collect();
            shared.apply_leftovers(last).expect("leftovers");
            for i in 0..64 {
                assert!(
                    value(&shared.records, &format!("k{i}")).is_some(),
                    "round {round}: k{i} not in sled after the leftovers"
                );
            }
            for w in writers {
                w.join().expect("writer");
            }
        }
    }
}
