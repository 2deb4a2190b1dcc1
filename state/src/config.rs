//! How a store is configured: sled's settings, when to checkpoint, what a returned write
//! has survived, and what opening does with a value that does not decode.
//!
//! Apart from the store because the flusher (`flush`) needs [`Durability`] too, and the
//! store needs the flusher: with the settings here, neither imports the other.

/// How the store is configured. Every setting is explicit on purpose (see
/// docs/state-format.md, "sled settings").
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// sled's page cache. Its default is 1 GiB; a node agent needs tens of MiB.
    pub cache_capacity: u64,
    /// sled's background flush interval. No record's durability waits for it (berth's
    /// write-ahead log holds every write first), but each round also reclaims sled log
    /// segments freed by retention; without it sled's file would only grow.
    pub flush_every_ms: Option<u64>,
    /// A checkpoint (sled's files made durable, older generations of the write-ahead log
    /// removed) at most this long after the log's newest generation got its first entry.
    /// Bounds the log, and so the replay at the next open, and under
    /// [`Durability::ProcessCrash`] what a power loss can take.
    pub checkpoint_every_ms: u64,
    /// Or once the log's newest generation holds this many bytes of entries.
    pub checkpoint_bytes: u64,
    /// What "durable" means when a write returns.
    pub durability: Durability,
    /// What to do with a value that does not decode.
    pub on_corrupt: OnCorrupt,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_capacity: 32 * 1024 * 1024,
            flush_every_ms: Some(500),
            checkpoint_every_ms: 500,
            checkpoint_bytes: 4 * 1024 * 1024,
            durability: Durability::PowerLoss,
            on_corrupt: OnCorrupt::Quarantine,
        }
    }
}

/// What a write has survived when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Appended to berth's write-ahead log, then `fdatasync` of the log: survives a crash
    /// of the process and a power loss or kernel crash (on a drive that honours cache
    /// flushes).
    PowerLoss,
    /// Appended to the write-ahead log, no sync: survives a crash of the process; a power
    /// loss may take what was written since the last checkpoint (`checkpoint_every_ms`).
    ProcessCrash,
}

/// What opening does with a value that fails its checksum or decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCorrupt {
    /// Refuse to open, naming the value (`--strict=true`).
    Refuse,
    /// Move it to the quarantine tree with its raw bytes and go on (`--strict=false`).
    Quarantine,
    /// Change nothing berth wrote; only report (offline inspection).
    Report,
}
