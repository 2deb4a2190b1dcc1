//! Group commit: one flusher thread makes writes durable in batches, through berth's
//! write-ahead log, and checkpoints sled.
//!
//! A writer prepares its change under the pending lock (reading what earlier writes left,
//! including those still pending), stages it as a log entry, takes a ticket, and waits
//! until its ticket is durable. The flusher takes every staged entry at once, appends them
//! to the log as one batch with one write, and `fdatasync`s it ([`Durability::PowerLoss`]).
//! While one batch is written, new entries gather and the next batch carries all of them,
//! so N concurrent writers pay far fewer than N syncs.
//!
//! Only then does each writer apply its own entry to sled, in memory, before its call
//! returns (so that its caller reads what it wrote), while the flusher already writes the
//! next batch: applying costs about as much as the sync, and doing it in the flusher would
//! leave the disk idle meanwhile. Per key, values reach sled in log order: an entry applies
//! a key only if no later durable entry has applied it already. A writer that stopped
//! waiting leaves its entry to the flusher, which applies every such leftover before a
//! checkpoint.
//!
//! sled only ever holds writes the log holds durably: whatever sled writes to its files on
//! its own (its background flusher, a full buffer) is covered by the log, so replaying the
//! log over sled's files after a crash gives exactly the logged writes, in order. Had
//! writes gone to sled first, sled could have written one the log never got, and a replay
//! would mix newer values from sled with older ones from the log (a purged container
//! partly back, say).
//!
//! A few hundred milliseconds after the newest generation of the log got its first entry,
//! or once it passes a size, the flusher checkpoints: every durable entry applied, a new
//! generation, then sled's `flush` and an `fdatasync` of sled's files, then the older
//! generations removed ([`crate::wal`]).
//!
//! After every successful batch the flusher writes the *watermark*: the seq of the newest
//! write it covered, in a small file beside sled's (see [`Watermark`]).
//!
//! A failed write, sync, apply or checkpoint poisons the flusher: every later wait fails
//! too. After a failed `fsync`, Linux may have dropped the dirty pages and a later `fsync`
//! can succeed without them ("fsyncgate"), so no later success may vouch for a write made
//! before the failure, nor may a later checkpoint remove a generation of the log. The
//! agent has to restart, and a restart reads what really is on disk.
//!
//! [`Durability::PowerLoss`]: crate::Durability::PowerLoss

mod checkpoint;
mod flusher;
mod pending;
mod shared;
mod watermark;

use std::time::Duration;

pub(crate) use checkpoint::{flush_once, Checkpoints, Files};
pub(crate) use flusher::{Flusher, GroupFlush};
pub(crate) use pending::{Pending, Ticket};
pub(crate) use watermark::Watermark;

/// What the flusher tells an observer ([`crate::Store::observe_flushes`]), so that the
/// agent can export it without this crate knowing how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// A batch was logged and made durable; how long its write, sync and watermark took
    /// (what every writer of the batch waited for, beyond queueing).
    Logged(Duration),
    /// The store failed (a write, sync, apply or checkpoint): it takes no write any more.
    /// Told once.
    Failed,
}

/// Called on the flusher thread (and, for a failed apply, on a writer's): kept short.
pub type FlushObserver = Box<dyn Fn(Flush) + Send + Sync>;
