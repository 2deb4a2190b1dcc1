//! berth's write-ahead checkpoint store.
//!
//! Every launch phase of a container is recorded here, durably, before the action it
//! announces starts. This crate knows nothing about Docker: it stores and returns records.
//!
//! - [`codec`]: the byte layout of every value (header with magic, schema version, CRC32).
//! - [`record`]: the stored types, schema version 1.
//! - [`store`]: the sled store: open, the write-ahead API, reads, quarantine, retention.
//! - [`inspect`]: what `berth state` prints, as pure functions of records.
//! - `flush`: group commit, so that concurrent writers share flushes.

pub mod codec;
mod flush;
pub mod inspect;
pub mod record;
pub mod store;

pub use record::{AgentMeta, Identity, Phase, PhaseRecord, StatusRecord, Summary};
pub use store::{now_ms, Corrupt, OnCorrupt, Store, StoreConfig, StoreError};
