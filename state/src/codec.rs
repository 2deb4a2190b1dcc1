//! The byte layout of every stored value: a fixed header, then a bincode payload.
//!
//! ```text
//! offset size field
//! 0      4    magic  b"BRTH"
//! 4      2    schema version, little-endian
//! 6      4    CRC32 (IEEE) of the payload bytes, little-endian
//! 10     4    payload length, little-endian
//! 14     n    payload: bincode 1.3, fixed-width integers, little-endian
//! ```
//!
//! The checksum covers the serialized bytes, not a re-printed value, so a harmless change
//! of Rust types can never read as corruption. Decoding is size-limited and must consume
//! every byte. The write-ahead log ([`crate::wal`]) wraps its entries in the same header,
//! with a larger limit, because one entry carries up to two whole values.
//!
//! Every value is written in [`SCHEMA_VERSION`]. A value an older schema wrote is read
//! through that schema's layout and upgraded in memory ([`Stored::decode_older`]); one a
//! newer berth wrote is refused, since this berth would misread it.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// First bytes of every value berth stores.
pub const MAGIC: &[u8; 4] = b"BRTH";
/// The schema this build writes.
pub const SCHEMA_VERSION: u16 = 2;
/// The oldest schema this build reads.
pub const OLDEST_SCHEMA: u16 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 14;
/// Largest payload accepted: a TaskInfo is kilobytes; anything near this is corruption.
pub const MAX_PAYLOAD: u32 = 4 * 1024 * 1024;

/// Why bytes are not a valid value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Shorter than the header or than the length it announces.
    #[error("truncated: {got} bytes, expected {expected}")]
    Truncated {
        /// Bytes present.
        got: usize,
        /// Bytes needed.
        expected: usize,
    },
    /// Does not start with the magic.
    #[error("not a berth record (bad magic)")]
    Magic,
    /// Written by a newer berth.
    #[error(
        "written by schema version {0}, newer than this berth's {SCHEMA_VERSION}: upgrade berth"
    )]
    NewerSchema(u16),
    /// Written by a schema this build cannot read.
    #[error("schema version {0} is not readable by this berth")]
    UnknownSchema(u16),
    /// The payload's checksum does not match.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// CRC in the header.
        stored: u32,
        /// CRC of the payload present.
        computed: u32,
    },
    /// The announced length is larger than any real record.
    #[error("payload length {len} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The length announced (or, when encoding, `u32::MAX` for "more than that").
        len: u32,
        /// The limit it exceeds.
        limit: u32,
    },
    /// Bytes after the announced payload.
    #[error("{0} unexpected bytes after the payload")]
    Trailing(usize),
    /// The payload is not a valid value of the expected type.
    #[error("payload does not decode: {0}")]
    Payload(String),
}

fn options(limit: u32) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .with_limit(u64::from(limit))
        .reject_trailing_bytes()
}

/// A type the store writes, and how it reads a value an older schema wrote.
pub trait Stored: Serialize + DeserializeOwned {
    /// Decodes `payload`, written by schema `version` (at least [`OLDEST_SCHEMA`], older
    /// than [`SCHEMA_VERSION`]). A type whose layout every schema shares reads it as it
    /// is; one whose layout changed reads the old one and upgrades it.
    fn decode_older(_version: u16, payload: &[u8], limit: u32) -> Result<Self, CodecError> {
        deserialize(payload, limit)
    }
}

impl Stored for u64 {}

/// The payload as a `T`, whole.
pub(crate) fn deserialize<T: DeserializeOwned>(
    payload: &[u8],
    limit: u32,
) -> Result<T, CodecError> {
    options(limit)
        .deserialize(payload)
        .map_err(|e| CodecError::Payload(e.to_string()))
}

/// Encodes a value with its header.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    encode_within(value, MAX_PAYLOAD)
}

/// Decodes a value written by [`encode`], checking everything the header promises.
pub fn decode<T: Stored>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_within(bytes, MAX_PAYLOAD)
}

/// [`encode`] with a payload limit of `limit` bytes instead of [`MAX_PAYLOAD`].
pub fn encode_within<T: Serialize>(value: &T, limit: u32) -> Result<Vec<u8>, CodecError> {
    let too_large = CodecError::TooLarge {
        len: u32::MAX,
        limit,
    };
    let payload = options(limit).serialize(value).map_err(|e| match *e {
        bincode::ErrorKind::SizeLimit => too_large.clone(),
        other => CodecError::Payload(other.to_string()),
    })?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l <= limit)
        .ok_or(too_large)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// [`decode`] with a payload limit of `limit` bytes instead of [`MAX_PAYLOAD`].
pub fn decode_within<T: Stored>(bytes: &[u8], limit: u32) -> Result<T, CodecError> {
    if bytes.len() < HEADER_LEN {
        return Err(CodecError::Truncated {
            got: bytes.len(),
            expected: HEADER_LEN,
        });
    }
    if &bytes[..4] != MAGIC {
        return Err(CodecError::Magic);
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    match version {
        v if v > SCHEMA_VERSION => return Err(CodecError::NewerSchema(v)),
        v if v < OLDEST_SCHEMA => return Err(CodecError::UnknownSchema(v)),
        _ => {}
    }
    let stored = u32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
    let len = u32::from_le_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]);
    if len > limit {
        return Err(CodecError::TooLarge { len, limit });
    }
    let expected = HEADER_LEN + len as usize;
    if bytes.len() < expected {
        return Err(CodecError::Truncated {
            got: bytes.len(),
            expected,
        });
    }
    if bytes.len() > expected {
        return Err(CodecError::Trailing(bytes.len() - expected));
    }
    let payload = &bytes[HEADER_LEN..];
    let computed = crc32fast::hash(payload);
    if computed != stored {
        return Err(CodecError::Checksum { stored, computed });
    }
    if version == SCHEMA_VERSION {
        deserialize(payload, limit)
    } else {
        T::decode_older(version, payload, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        a: u64,
        b: String,
        c: Option<i32>,
    }

    impl Stored for Sample {}
    impl Stored for Vec<u8> {}

    fn sample() -> Sample {
        Sample {
            a: 7,
            b: "hello".into(),
            c: Some(-1),
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let bytes = encode(&sample()).expect("encode");
        assert_eq!(&bytes[..4], MAGIC);
        assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), SCHEMA_VERSION);
        assert_eq!(decode::<Sample>(&bytes).expect("decode"), sample());
    }

    #[test]
    fn every_damage_is_an_error_never_a_panic() {
        let good = encode(&sample()).expect("encode");
        type Check = fn(&CodecError) -> bool;
        let mut cases: Vec<(Vec<u8>, Check)> = vec![
            (vec![], |e| matches!(e, CodecError::Truncated { .. })),
            (good[..HEADER_LEN - 1].to_vec(), |e| {
                matches!(e, CodecError::Truncated { .. })
            }),
            (good[..good.len() - 1].to_vec(), |e| {
                matches!(e, CodecError::Truncated { .. })
            }),
            ([&good[..], b"x"].concat(), |e| {
                matches!(e, CodecError::Trailing(1))
            }),
        ];
        let mut magic = good.clone();
        magic[0] = b'X';
        cases.push((magic, |e| matches!(e, CodecError::Magic)));
        let mut newer = good.clone();
        newer[4..6].copy_from_slice(&(SCHEMA_VERSION + 1).to_le_bytes());
        cases.push((newer, |e| matches!(e, CodecError::NewerSchema(_))));
        let mut older = good.clone();
        older[4..6].copy_from_slice(&0u16.to_le_bytes());
        cases.push((older, |e| matches!(e, CodecError::UnknownSchema(0))));
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        cases.push((flipped, |e| matches!(e, CodecError::Checksum { .. })));
        let mut huge = good.clone();
        huge[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
        cases.push((huge, |e| matches!(e, CodecError::TooLarge { .. })));
        // A valid header around a payload of the wrong shape.
        let wrong = encode(&(1u8,)).expect("encode");
        cases.push((wrong, |e| matches!(e, CodecError::Payload(_))));
        for (bytes, is_expected) in cases {
            let err = decode::<Sample>(&bytes).expect_err("damaged");
            assert!(is_expected(&err), "{err}");
        }
    }

    #[test]
    fn the_limit_is_kept_both_ways() {
        let big = vec![7u8; 1000];
        let err = encode_within(&big, 100).expect_err("over the limit");
        assert!(
            matches!(err, CodecError::TooLarge { limit: 100, .. }),
            "{err}"
        );
        let bytes = encode_within(&big, 2000).expect("within the limit");
        assert_eq!(decode_within::<Vec<u8>>(&bytes, 2000).expect("decode"), big);
        assert!(matches!(
            decode_within::<Vec<u8>>(&bytes, 100),
            Err(CodecError::TooLarge { limit: 100, .. })
        ));
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        let good = encode(&sample()).expect("encode");
        for i in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(
                decode::<Sample>(&bad).is_err(),
                "bit {i} flipped went unnoticed"
            );
        }
    }
}
