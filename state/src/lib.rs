//! berth's write-ahead checkpoint store.
//!
//! Every launch phase of a container is recorded here, durably, before the action it
//! announces starts. This crate knows nothing about Docker: it stores and returns records.
