//! The pass over the `records` tree that checks every value (at open, and for
//! `berth state verify`), and the quarantine that takes the values it finds bad.
//!
//! One pass serves both because a value is checked the same way whenever it is read
//! back: it decodes, and it is the value its key names.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::now_ms;
use crate::codec::{self, CodecError, MAX_PAYLOAD};
use crate::error::{Corrupt, StoreError};
use crate::keys::{self, Key, TICK};
use crate::record::{PhaseRecord, Quarantined, StatusRecord, Summary};
use crate::repair::Seen;

/// What one pass over the `records` tree found.
#[derive(Default)]
pub(super) struct Scan {
    pub(super) corrupt: Vec<Corrupt>,
    pub(super) newer: Option<u16>,
    pub(super) seen: BTreeMap<Uuid, Seen>,
    pub(super) values: usize,
    /// The newest seq any value holds.
    pub(super) newest: u64,
}

/// A bad value as opening and `verify` report it: its key also printed readably.
pub(super) fn corrupt_value(key: &[u8], bytes: &[u8], reason: String) -> Corrupt {
    Corrupt {
        key: keys::describe(key),
        raw_key: key.to_vec(),
        reason,
        bytes: bytes.to_vec(),
    }
}

/// Moves corrupt values into the quarantine tree, atomically across both trees.
pub(super) fn move_to_quarantine(
    records: &sled::Tree,
    quarantine: &sled::Tree,
    corrupt: &[Corrupt],
) -> Result<(), StoreError> {
    use sled::transaction::{TransactionError, Transactional};
    let limit = MAX_PAYLOAD as usize - 64 * 1024;
    let mut moves = Vec::with_capacity(corrupt.len());
    // Keys after the newest entry's, so that nothing set aside before is overwritten.
    let mut next_key = match quarantine.last()? {
        Some((key, _)) => <[u8; 8]>::try_from(key.as_ref())
            .map_or(u64::MAX / 2, |k| u64::from_be_bytes(k).saturating_add(1)),
        None => 0,
    };
    for c in corrupt {
        let (bytes, reason) = if c.bytes.len() > limit {
            (
                c.bytes[..limit].to_vec(),
                format!(
                    "{} (value of {} bytes, first {limit} kept)",
                    c.reason,
                    c.bytes.len()
                ),
            )
        } else {
            (c.bytes.clone(), c.reason.clone())
        };
        let entry = Quarantined {
            key: c.raw_key.clone(),
            reason,
            at_ms: now_ms(),
            bytes,
        };
        let qkey = next_key.to_be_bytes().to_vec();
        next_key = next_key.saturating_add(1);
        moves.push((c.raw_key.clone(), qkey, codec::encode(&entry)?));
    }
    (records, quarantine)
        .transaction(|(r, q)| {
            for (key, qkey, value) in &moves {
                q.insert(qkey.as_slice(), value.as_slice())?;
                r.remove(key.as_slice())?;
            }
            Ok(())
        })
        .map_err(|e: TransactionError<()>| match e {
            TransactionError::Storage(e) => StoreError::Sled(e),
            TransactionError::Abort(()) => {
                StoreError::NotDurable("moving corrupt values to quarantine was aborted".into())
            }
        })
}

/// Why the value under `key` is bad, or `None` if it decodes as its key says it should
/// and belongs under that key.
fn check_value(
    key: Key,
    bytes: &[u8],
    seen: &mut BTreeMap<Uuid, Seen>,
    newest: &mut u64,
) -> Result<(), CodecError> {
    let misplaced =
        |what: &str| CodecError::Payload(format!("the value is {what}, not this key's"));
    match key {
        Key::Meta => Ok(()),
        Key::Tick => {
            *newest = (*newest).max(codec::decode::<u64>(bytes)?);
            Ok(())
        }
        Key::Summary(id) => {
            let s: Summary = codec::decode(bytes)?;
            if s.container_id != id || s.last.container_id != id {
                return Err(misplaced(&format!("the summary of {}", s.container_id)));
            }
            *newest = (*newest).max(s.last.seq);
            seen.entry(id).or_default().summary = Some(s);
            Ok(())
        }
        Key::Phase(id, seq) => {
            let r: PhaseRecord = codec::decode(bytes)?;
            if r.container_id != id || r.seq != seq {
                return Err(misplaced(&format!("record {}/{}", r.container_id, r.seq)));
            }
            *newest = (*newest).max(seq);
            seen.entry(id).or_default().add(r);
            Ok(())
        }
        Key::Status(id, seq) => {
            let s: StatusRecord = codec::decode(bytes)?;
            if s.container_id != id || s.seq != seq {
                return Err(misplaced(&format!("status {}/{}", s.container_id, s.seq)));
            }
            *newest = (*newest).max(seq);
            Ok(())
        }
        Key::Unknown => Err(CodecError::Payload("a key berth does not write".into())),
    }
}

/// Checks every value of `records` (see `check_value`), without changing any.
pub(super) fn scan(records: &sled::Tree) -> Result<Scan, StoreError> {
    let mut out = Scan::default();
    for entry in records.iter() {
        let (key, bytes) = entry?;
        out.values += 1;
        match check_value(keys::parse(&key), &bytes, &mut out.seen, &mut out.newest) {
            Ok(()) => {}
            Err(e) => {
                if let CodecError::NewerSchema(v) = e {
                    out.newer = Some(out.newer.map_or(v, |n| n.max(v)));
                }
                out.corrupt.push(corrupt_value(&key, &bytes, e.to_string()));
            }
        }
    }
    Ok(out)
}

/// The newest seq the records' keys (and `tick`) name, without decoding any value. Each
/// write's entry in the write-ahead log carries that same seq, so this is what a
/// generation's base is measured against.
pub(super) fn newest_by_key(records: &sled::Tree) -> Result<u64, StoreError> {
    let mut newest = 0;
    for key in records.iter().keys() {
        if let Key::Phase(_, seq) | Key::Status(_, seq) = keys::parse(&key?) {
            newest = newest.max(seq);
        }
    }
    if let Some(tick) = records
        .get(TICK)?
        .and_then(|b| codec::decode::<u64>(&b).ok())
    {
        newest = newest.max(tick);
    }
    Ok(newest)
}
