//! The log's bytes: a generation's header, the entries and their changes, and a batch's
//! frame (length and checksum before the body), both ways: [`frame`] builds one for the
//! writer, `read_frame` takes one apart at open and `next_frame` finds the next whole one
//! after a bad one. The layout is drawn in the module's documentation ([`crate::wal`]).

use serde::{Deserialize, Serialize};

use super::{BATCH_LIMIT, ENTRY_LIMIT, FRAME_HEAD};
use crate::codec::{self, CodecError, Stored, MAGIC};

/// The first bytes of a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The generation, as in the file's name.
    pub generation: u64,
    /// The newest seq sled held when this generation was started; the checkpoint that
    /// follows makes it durable in sled's files before any older generation is removed.
    pub base: u64,
    /// How many bytes of the previous generation had been written and synced when this one
    /// was started (0 without one): all of them must read.
    pub prev_end: u64,
}

/// One logged write: the changes to the `records` tree that one call of the store makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The seq the write took (the phase record's, the status update's, or the `tick`).
    pub seq: u64,
    /// The changes, applied in order.
    pub ops: Vec<Op>,
}

/// One change to the `records` tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Set `key` to `value` (an encoded value, as sled stores it).
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove `key`.
    Remove {
        /// The key.
        key: Vec<u8>,
    },
}

impl Stored for Header {}
impl Stored for Entry {}

impl Op {
    /// The key it changes.
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Put { key, .. } | Op::Remove { key } => key,
        }
    }

    /// The value it leaves under its key (`None` for a remove).
    pub fn value(&self) -> Option<&[u8]> {
        match self {
            Op::Put { value, .. } => Some(value),
            Op::Remove { .. } => None,
        }
    }

    /// Applies it to `tree`.
    pub(crate) fn apply(&self, tree: &sled::Tree) -> Result<(), sled::Error> {
        match self {
            Op::Put { key, value } => tree.insert(key.as_slice(), value.as_slice()).map(drop),
            Op::Remove { key } => tree.remove(key.as_slice()).map(drop),
        }
    }
}
/// An entry as it goes into a batch.
pub fn encode(entry: &Entry) -> Result<Vec<u8>, CodecError> {
    codec::encode_within(entry, ENTRY_LIMIT)
}

/// A batch of encoded entries with its length and checksum, ready to append.
pub fn frame<'a>(encoded: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = vec![0; FRAME_HEAD];
    for entry in encoded {
        out.extend_from_slice(entry);
    }
    // At most BATCH_BYTES plus one entry: far below u32::MAX.
    let len = u32::try_from(out.len() - FRAME_HEAD).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(&out[FRAME_HEAD..]);
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4..FRAME_HEAD].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Why the bytes at some offset are not an entry.
#[derive(Debug)]
pub(super) enum Unreadable {
    /// Written by a newer berth.
    Newer(u16),
    /// Torn or damaged, for a person.
    Bad(String),
}

/// The batch at `at` and its length with its frame.
pub(super) fn read_frame(bytes: &[u8], at: usize) -> Result<(Vec<Entry>, usize), Unreadable> {
    let rest = bytes.get(at..).unwrap_or_default();
    let bad = |why: String| Err(Unreadable::Bad(why));
    let Some(head) = rest.get(..FRAME_HEAD) else {
        return bad(format!(
            "{} byte(s), too few for a batch's length and checksum",
            rest.len()
        ));
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let stored = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let len = len as usize;
    if !(codec::HEADER_LEN..=BATCH_LIMIT as usize).contains(&len) {
        return bad(format!("a batch of {len} bytes cannot be"));
    }
    let Some(body) = rest.get(FRAME_HEAD..FRAME_HEAD + len) else {
        return bad(format!(
            "the batch announces {len} bytes and {} follow",
            rest.len() - FRAME_HEAD
        ));
    };
    let computed = crc32fast::hash(body);
    if computed != stored {
        return bad(format!(
            "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let mut entries = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        // Each entry's own header says how long it is.
        let size = rest
            .get(10..14)
            .map(|l| codec::HEADER_LEN + u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .filter(|&size| size <= rest.len())
            .ok_or_else(|| Unreadable::Bad("an entry runs past the end of its batch".into()))?;
        match codec::decode_within::<Entry>(&rest[..size], ENTRY_LIMIT) {
            Ok(entry) => entries.push(entry),
            Err(CodecError::NewerSchema(v)) => return Err(Unreadable::Newer(v)),
            Err(e) => return bad(e.to_string()),
        }
        rest = &rest[size..];
    }
    Ok((entries, FRAME_HEAD + len))
}

/// The offset of the first whole batch after `from`, if any: every body starts with the
/// codec's magic, so only offsets 8 bytes before one are tried.
pub(super) fn next_frame(bytes: &[u8], from: usize) -> Option<usize> {
    (from + FRAME_HEAD..bytes.len().saturating_sub(MAGIC.len() - 1))
        .filter(|&i| bytes.get(i..i + MAGIC.len()) == Some(MAGIC.as_slice()))
        .map(|i| i - FRAME_HEAD)
        .find(|&at| read_frame(bytes, at).is_ok())
}
