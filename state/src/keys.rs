//! The key layout of the `records` tree, and reading keys back.
//!
//! ```text
//! b"meta"                         AgentMeta
//! b"tick"                         u64: the seq of the newest write that has no record
//!                                 of its own (an acknowledgement, a purge)
//! b"c" ++ container uuid (16)     Summary: the container's newest phase
//! b"p" ++ uuid (16) ++ seq (8 BE) PhaseRecord: its history, in order
//! b"u" ++ uuid (16) ++ seq (8 BE) StatusRecord: its status updates, in order
//! ```
//!
//! Big-endian sequence numbers make a prefix scan return a container's records in the
//! order they were written; summaries under their own prefix make listing one short scan.
//! The `quarantine` tree is keyed by an 8-byte big-endian quarantine number.

use uuid::Uuid;

/// The agent's record.
pub const META: &[u8] = b"meta";
/// The seq of the newest write that leaves no record with a seq of its own.
pub const TICK: &[u8] = b"tick";
/// Prefix of a container's summary.
pub const SUMMARY: u8 = b'c';
/// Prefix of a container's phase records.
pub const PHASE: u8 = b'p';
/// Prefix of a container's status updates.
pub const STATUS: u8 = b'u';

/// What a key of the `records` tree names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// The agent's record.
    Meta,
    /// The newest acknowledgement's or purge's seq.
    Tick,
    /// A container's summary.
    Summary(Uuid),
    /// One phase record of a container.
    Phase(Uuid, u64),
    /// One status update of a container.
    Status(Uuid, u64),
    /// Nothing berth writes.
    Unknown,
}

/// `prefix ++ uuid`: a summary key, or the prefix of a container's records.
pub fn container(prefix: u8, id: Uuid) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(prefix);
    key.extend_from_slice(id.as_bytes());
    key
}

/// `prefix ++ uuid ++ seq`: one phase record or status update.
pub fn record(prefix: u8, id: Uuid, seq: u64) -> Vec<u8> {
    let mut key = container(prefix, id);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Reads a key back.
pub fn parse(key: &[u8]) -> Key {
    if key == META {
        return Key::Meta;
    }
    if key == TICK {
        return Key::Tick;
    }
    let uuid = key.get(1..17).and_then(|b| Uuid::from_slice(b).ok());
    let seq = key
        .get(17..25)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes);
    match (key.first(), uuid, seq, key.len()) {
        (Some(&SUMMARY), Some(id), None, 17) => Key::Summary(id),
        (Some(&PHASE), Some(id), Some(seq), 25) => Key::Phase(id, seq),
        (Some(&STATUS), Some(id), Some(seq), 25) => Key::Status(id, seq),
        _ => Key::Unknown,
    }
}

/// A key as a person reads it: `meta`, `c/<uuid>`, `p/<uuid>/<seq>`, or `raw:<hex>`.
pub fn describe(key: &[u8]) -> String {
    match parse(key) {
        Key::Meta => "meta".into(),
        Key::Tick => "tick".into(),
        Key::Summary(id) => format!("c/{id}"),
        Key::Phase(id, seq) => format!("p/{id}/{seq}"),
        Key::Status(id, seq) => format!("u/{id}/{seq}"),
        Key::Unknown => format!("raw:{}", hex(key)),
    }
}

/// Bytes as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_and_print() {
        let id = Uuid::parse_str("0b8f2a56-7c3e-4f1a-8d2b-6e9c1a4f3d20").expect("uuid");
        let cases: Vec<(Vec<u8>, Key, String)> = vec![
            (META.to_vec(), Key::Meta, "meta".into()),
            (TICK.to_vec(), Key::Tick, "tick".into()),
            (container(SUMMARY, id), Key::Summary(id), format!("c/{id}")),
            (record(PHASE, id, 7), Key::Phase(id, 7), format!("p/{id}/7")),
            (
                record(STATUS, id, u64::MAX),
                Key::Status(id, u64::MAX),
                format!("u/{id}/{}", u64::MAX),
            ),
            (b"zz".to_vec(), Key::Unknown, "raw:7a7a".into()),
            (container(PHASE, id), Key::Unknown, String::new()),
            (vec![], Key::Unknown, "raw:".into()),
        ];
        for (key, parsed, text) in cases {
            assert_eq!(parse(&key), parsed, "{key:?}");
            if !text.is_empty() {
                assert_eq!(describe(&key), text);
            }
        }
    }

    #[test]
    fn history_keys_sort_by_seq() {
        let id = Uuid::new_v4();
        let mut keys: Vec<Vec<u8>> = [300u64, 2, 1 << 40, 255, 256]
            .iter()
            .map(|&s| record(PHASE, id, s))
            .collect();
        keys.sort();
        let seqs: Vec<u64> = keys
            .iter()
            .map(|k| match parse(k) {
                Key::Phase(_, s) => s,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seqs, [2, 255, 256, 300, 1 << 40]);
    }
}
