//! berth's write-ahead checkpoint store.
//!
//! Every launch phase of a container is recorded here, durably, before the action it
//! announces starts. This crate knows nothing about Docker: it stores and returns records.
//!
//! - [`codec`]: the byte layout of every value (header with magic, schema version, CRC32).
//! - [`record`]: the stored types, schema version 2, and which phase may follow which.
//! - [`task_state`]: a task's states, which records hold, and the one guard on their
//!   transitions, which memory and the store share.
//! - `schema1`: the layouts schema 1 wrote, read and upgraded in memory.
//! - [`keys`]: the key layout: a container's history is one prefix scan.
//! - `config`: how a store is configured ([`StoreConfig`], [`Durability`], [`OnCorrupt`]).
//! - `error`: why the store cannot do what was asked ([`StoreError`]), and what opening
//!   reports without failing ([`Corrupt`], [`Lost`]).
//! - [`store`]: the sled store: open, the write-ahead API, reads, quarantine, retention.
//! - [`repair`]: what opening puts right after a crash between two writes (pure).
//! - [`inspect`]: what `berth state` prints, as pure functions of records.
//! - [`table`]: the one table renderer of the CLI (`berth ps` and `berth state`).
//! - [`offline`]: `berth state` opens a private copy of the store, never the original.
//! - [`lock`]: who holds a store, from `/proc/locks`.
//! - [`snapshots`]: sled's snapshot files, and setting aside those a crash broke.
//! - [`wal`]: berth's write-ahead log: its format, reading it back at open, writing it.
//! - `flush`: group commit through the log, so that concurrent writers share syncs; checkpoints.

pub mod codec;
mod config;
mod error;
mod flush;
pub mod inspect;
pub mod keys;
pub mod lock;
pub mod offline;
pub mod record;
pub mod repair;
mod schema1;
pub mod snapshots;
pub mod store;
pub mod table;
pub mod task_state;
pub mod wal;

pub use config::{Durability, OnCorrupt, StoreConfig};
pub use error::{Corrupt, Lost, StoreError};
pub use flush::{Flush, FlushObserver};
pub use record::{AgentMeta, Identity, Phase, PhaseRecord, Quarantined, StatusRecord, Summary};
pub use repair::Repair;
pub use store::{now_ms, Store};
pub use task_state::TaskState;
