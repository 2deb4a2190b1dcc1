//! Group commit: one flusher thread makes writes durable in batches.
//!
//! A writer applies its change in memory, takes a ticket, and waits until a flush that
//! started after its ticket has completed. While one flush runs, new writes gather and the
//! next flush covers all of them, so N concurrent writers pay far fewer than N flushes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use tokio::sync::watch;

/// What the flusher has achieved so far.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// Every ticket up to this is durable.
    durable: u64,
    /// The newest failed flush: tickets up to this that were not durable before it failed.
    failed: Option<(u64, Arc<str>)>,
}

struct Shared {
    issued: AtomicU64,
    wanted: Mutex<bool>,
    wake: Condvar,
    stop: AtomicBool,
    progress: watch::Sender<Progress>,
}

/// The flusher; dropping it stops the thread after a last flush.
pub(crate) struct GroupFlush {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    flushes: Arc<AtomicU64>,
}

impl GroupFlush {
    /// Starts a flusher for `db`.
    pub(crate) fn start(db: sled::Db) -> std::io::Result<GroupFlush> {
        let (progress, _) = watch::channel(Progress::default());
        let shared = Arc::new(Shared {
            issued: AtomicU64::new(0),
            wanted: Mutex::new(false),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            progress,
        });
        let flushes = Arc::new(AtomicU64::new(0));
        let thread = {
            let shared = shared.clone();
            let flushes = flushes.clone();
            std::thread::Builder::new()
                .name("berth-state-flush".into())
                .spawn(move || run(&db, &shared, &flushes))?
        };
        Ok(GroupFlush {
            shared,
            thread: Some(thread),
            flushes,
        })
    }

    /// Waits until everything applied before this call is durable.
    pub(crate) async fn durable(&self) -> Result<(), Arc<str>> {
        let ticket = self.shared.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let mut rx = self.shared.progress.subscribe();
        self.request();
        loop {
            {
                let p = rx.borrow_and_update();
                if p.durable >= ticket {
                    return Ok(());
                }
                if let Some((upto, error)) = &p.failed {
                    if *upto >= ticket {
                        return Err(error.clone());
                    }
                }
            }
            if rx.changed().await.is_err() {
                return Err(Arc::from("the store's flusher stopped"));
            }
        }
    }

    /// How many flushes have run (for benchmarks and tests of batching).
    pub(crate) fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    fn request(&self) {
        let mut wanted = self.shared.wanted.lock().unwrap_or_else(|p| p.into_inner());
        *wanted = true;
        self.shared.wake.notify_one();
    }
}

impl Drop for GroupFlush {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.request();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(db: &sled::Db, shared: &Shared, flushes: &AtomicU64) {
    loop {
        {
            let mut wanted = shared.wanted.lock().unwrap_or_else(|p| p.into_inner());
            while !*wanted {
                wanted = shared.wake.wait(wanted).unwrap_or_else(|p| p.into_inner());
            }
            *wanted = false;
        }
        // Every ticket issued by now belongs to a write already applied in memory.
        let target = shared.issued.load(Ordering::SeqCst);
        let result = db.flush();
        flushes.fetch_add(1, Ordering::Relaxed);
        shared.progress.send_modify(|p| match &result {
            Ok(_) => p.durable = p.durable.max(target),
            Err(e) => p.failed = Some((target, Arc::from(e.to_string()))),
        });
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
    }
}
