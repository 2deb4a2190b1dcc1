//! berth's write-ahead log: one append and one `fdatasync` per group of records.
//!
//! sled 0.34's `flush` writes its log and waits on `sync_file_range`, which neither
//! flushes the drive's cache nor makes a new file size durable, so surviving a power loss
//! took an `fdatasync` after it: two trips to the disk per group flush. This log is
//! berth's own, beside sled's files: the flusher appends a group's entries with one write
//! and makes them durable with one `fdatasync`, and only then do the writers give sled the
//! same writes, in memory. sled's files are made durable at checkpoints, a few times a
//! second at most, and the log is replayed into sled when the store opens.
//!
//! Files are `<dir>/berth.wal.<generation>` (16 hex digits, so that names sort by
//! generation):
//!
//! ```text
//! header  38 bytes: Header { generation, base, prev_end }, encoded by crate::codec
//! batch   4 bytes   length n of the body, little-endian
//!         4 bytes   CRC32 (IEEE) of the body, little-endian
//!         n bytes   body: one or more Entry { seq, ops }, each encoded by crate::codec
//!                   (its own header: magic, version, CRC32, length)
//! batch   ...
//! zeros   up to the file's end: space written ahead (see [`Wal::append`])
//! ```
//!
//! One frame per batch, not per entry, because a batch is what one `fdatasync` makes
//! durable: a batch is written only after the one before it was synced, so a whole batch
//! after a bad one proves the bad one had been acknowledged. Within one batch, a power
//! loss during its sync can keep a later page and lose an earlier one; per-entry frames
//! would then show a good entry after a bad one that nobody had been told was durable.
//!
//! A checkpoint starts a new generation (its header written and synced, the directory
//! synced), then flushes sled and `fdatasync`s sled's files, and only then removes the
//! older generations. So the generations present at open always start at a point sled had
//! made durable, and replaying them in order over sled gives every logged write: a put or a
//! remove is idempotent, and in log order the last one wins.
//!
//! A crash can leave the newest generation ending in a torn batch (short, or failing its
//! checksum): it was never acknowledged, and reading stops there. A bad batch that good
//! ones follow is damage, not a crash: those good batches were written after it had been
//! synced (by default), so it had been acknowledged too. Every generation but the newest
//! was synced to the length the next one's header gives (`prev_end`) before that one was
//! started, so anything unreadable below it is damage as well. Damage is reported, never
//! skipped in silence.

mod format;
mod read;
mod write;

use std::io;
use std::path::{Path, PathBuf};

use crate::codec::{self, MAX_PAYLOAD};

pub use format::{encode, frame, Entry, Header, Op};
pub use read::{Damage, Recovery};
pub(crate) use write::Wal;

/// Start of every generation's file name.
pub const PREFIX: &str = "berth.wal.";
/// Largest entry payload: a phase entry carries two values (record and summary) of up to
/// [`MAX_PAYLOAD`] each; purges are split well below it.
pub const ENTRY_LIMIT: u32 = 3 * MAX_PAYLOAD;
/// Largest batch body read back; the flusher starts a new batch past [`BATCH_BYTES`].
pub const BATCH_LIMIT: u32 = 64 * 1024 * 1024;
/// A batch takes entries up to this many bytes (and always at least one).
pub const BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Length of a generation's header: the codec's header and three `u64`s.
pub const HEADER_LEN: usize = codec::HEADER_LEN + 24;
/// Length and checksum before each batch's body.
pub const FRAME_HEAD: usize = 8;
/// Space written ahead grows by at most this much at a time.
const GROW_MAX: u64 = 1024 * 1024;
/// Space written ahead ends on a page.
const PAGE: u64 = 4096;

/// `berth.wal.<generation>`.
pub fn file_name(generation: u64) -> String {
    format!("{PREFIX}{generation:016x}")
}

fn parse_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix(PREFIX)?;
    let lower_hex = hex.len() == 16
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    lower_hex
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// The generations in `dir`, oldest first.
pub fn generations(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if let Some(generation) = entry.file_name().to_str().and_then(parse_name) {
            found.push((generation, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Bytes the log's files take.
pub fn size_on_disk(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for (_, path) in generations(dir)? {
        match std::fs::metadata(&path) {
            Ok(m) => total += m.len(),
            // Removed by a checkpoint meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_generation_and_only_ours_count() {
        assert_eq!(file_name(10), "berth.wal.000000000000000a");
        assert_eq!(parse_name(&file_name(u64::MAX)), Some(u64::MAX));
        for other in [
            "berth.wal.A000000000000000",
            "berth.wal.1",
            "invalid.berth.wal.0000000000000001",
            "berth.watermark",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }
}
