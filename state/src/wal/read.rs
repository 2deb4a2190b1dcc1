//! Reading the log back at open: every generation in order, each up to the length the
//! next one's header promises, stopping at a torn tail (what a crash leaves, a note) and
//! reporting damage (what was synced and does not read) with the seqs around it. Changes
//! nothing on disk; what it found is what [`super::Wal::start`] retires.

use std::io;
use std::path::{Path, PathBuf};

use super::format::{next_frame, read_frame, Header, Unreadable};
use super::{file_name, generations, HEADER_LEN};
use crate::codec::{self, CodecError};
use crate::wal::Entry;

/// Batches that had been written and synced and do not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Where, and why, for a person.
    pub what: String,
    /// The newest seq that read before it (or the generation's base).
    pub before: u64,
    /// The seq of the first entry (or generation base) that read after it, if any.
    pub after: Option<u64>,
}

/// A generation found at open.
#[derive(Debug)]
pub(super) struct Found {
    pub(super) generation: u64,
    pub(super) path: PathBuf,
    /// The newest file, cut short while it was being created: it holds nothing.
    pub(super) empty: bool,
    /// It holds damage: set aside for a post-mortem rather than removed.
    pub(super) damaged: bool,
}

/// What reading the log at open found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Every entry that reads, in log order.
    pub entries: Vec<Entry>,
    /// The oldest readable generation and its base: sled's files held every seq up to the
    /// base, or the generation before it would still be there.
    pub base: Option<(u64, u64)>,
    /// Entries written and lost.
    pub damage: Vec<Damage>,
    /// What a crash normally leaves, for a person (a torn last batch).
    pub notes: Vec<String>,
    /// A schema newer than this berth's, met in a header or an entry.
    pub newer: Option<u16>,
    pub(super) files: Vec<Found>,
    /// Readable length of the newest generation with a header: the next one's `prev_end`.
    pub(super) end: u64,
}

impl Recovery {
    /// Reads every generation in `dir` (changing nothing).
    pub fn read(dir: &Path) -> io::Result<Recovery> {
        let mut files = Vec::new();
        for (generation, path) in generations(dir)? {
            let bytes = std::fs::read(&path)?;
            files.push((generation, path, bytes));
        }
        let mut r = Recovery::default();
        let headers: Vec<Option<Header>> = files
            .iter()
            .map(|(generation, _, bytes)| r.header(*generation, bytes))
            .collect();
        // Damage waiting for the seq of what reads after it.
        let mut waiting: Vec<usize> = Vec::new();
        let mut last_seq = 0;
        for (i, (generation, path, bytes)) in files.into_iter().enumerate() {
            let name = file_name(generation);
            let newest = i + 1 == headers.len();
            let mut found = Found {
                generation,
                path,
                empty: false,
                damaged: false,
            };
            let Some(header) = headers[i] else {
                if newest && bytes.len() <= HEADER_LEN {
                    found.empty = true;
                } else {
                    found.damaged = true;
                    waiting.push(r.damage.len());
                    r.damage.push(Damage {
                        what: format!("{name}: its header does not read and it is not the newest generation being created, so whatever it held is gone"),
                        before: last_seq,
                        after: None,
                    });
                }
                r.files.push(found);
                continue;
            };
            r.base.get_or_insert((generation, header.base));
            last_seq = last_seq.max(header.base);
            for d in waiting.drain(..) {
                r.damage[d].after = Some(header.base);
            }
            // Every generation but the newest was synced to the length the next one's
            // header gives; the newest may end in a torn batch, then zeros written ahead.
            let bound = headers.get(i + 1).copied().flatten().map(|h| h.prev_end);
            let mut end = bytes.len();
            let mut short = false;
            if let Some(b) = bound {
                let b = usize::try_from(b).unwrap_or(usize::MAX).max(HEADER_LEN);
                if b > bytes.len() {
                    short = true;
                    found.damaged = true;
                    waiting.push(r.damage.len());
                    r.damage.push(Damage {
                        what: format!("{name} is {} bytes long, but {b} had been written and synced before the next generation was started", bytes.len()),
                        before: last_seq,
                        after: None,
                    });
                } else {
                    end = b;
                }
            }
            let region = &bytes[..end];
            let mut at = HEADER_LEN;
            while at < end {
                match read_frame(region, at) {
                    Ok((entries, len)) => {
                        for entry in entries {
                            for d in waiting.drain(..) {
                                r.damage[d].after = Some(entry.seq);
                            }
                            last_seq = last_seq.max(entry.seq);
                            r.entries.push(entry);
                        }
                        at += len;
                    }
                    Err(Unreadable::Newer(v)) => {
                        r.newer = Some(r.newer.map_or(v, |n| n.max(v)));
                        break;
                    }
                    // The space written ahead of the newest generation: it ends here.
                    Err(Unreadable::Bad(_))
                        if bound.is_none() && region[at..].iter().all(|&b| b == 0) =>
                    {
                        break
                    }
                    Err(Unreadable::Bad(why)) => match next_frame(region, at + 1) {
                        Some(next) => {
                            found.damaged = true;
                            waiting.push(r.damage.len());
                            r.damage.push(Damage {
                                what: format!("the batch at byte {at} of {name} does not read ({why}) and good batches follow it from byte {next}"),
                                before: last_seq,
                                after: None,
                            });
                            at = next;
                        }
                        // Already reported as a whole.
                        None if short => break,
                        None if bound.is_some() => {
                            found.damaged = true;
                            waiting.push(r.damage.len());
                            r.damage.push(Damage {
                                what: format!("{name} does not read from byte {at} ({why}), but up to byte {end} it had been written and synced before the next generation was started"),
                                before: last_seq,
                                after: None,
                            });
                            break;
                        }
                        None => {
                            r.notes.push(format!(
                                "ignored the end of {name} from byte {at}: a batch a crash cut short ({why}), never acknowledged"
                            ));
                            break;
                        }
                    },
                }
            }
            r.end = u64::try_from(at.min(end)).unwrap_or(u64::MAX);
            r.files.push(found);
        }
        Ok(r)
    }

    /// The header of a generation's bytes, if it reads and names that generation.
    fn header(&mut self, generation: u64, bytes: &[u8]) -> Option<Header> {
        match codec::decode::<Header>(bytes.get(..HEADER_LEN)?) {
            Ok(h) if h.generation == generation => Some(h),
            Ok(_) => None,
            Err(CodecError::NewerSchema(v)) => {
                self.newer = Some(self.newer.map_or(v, |n| n.max(v)));
                None
            }
            Err(_) => None,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::wal::{encode, frame, Op, Wal, FRAME_HEAD};

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            ops: vec![
                Op::Put {
                    key: format!("p{seq}").into_bytes(),
                    value: codec::encode(&format!("value of {seq}")).expect("encode"),
                },
                Op::Remove {
                    key: b"gone".to_vec(),
                },
            ],
        }
    }

    pub(in crate::wal) fn batch(seqs: &[u64]) -> Vec<u8> {
        let encoded: Vec<Vec<u8>> = seqs
            .iter()
            .map(|&s| encode(&entry(s)).expect("encode"))
            .collect();
        frame(encoded.iter().map(Vec::as_slice))
    }

    /// A store directory whose log holds one generation with a batch of one entry for
    /// each of `seqs`; returns the generation's path and the offset of each batch.
    pub(in crate::wal) fn logged(dir: &Path, seqs: &[u64]) -> (PathBuf, Vec<usize>) {
        let mut wal = Wal::start(dir, &Recovery::default(), 0).expect("start");
        let mut offsets = Vec::new();
        for &seq in seqs {
            offsets.push(wal.len as usize);
            wal.append(&batch(&[seq])).expect("append");
        }
        wal.sync().expect("sync");
        offsets.push(wal.len as usize);
        (dir.join(file_name(wal.generation)), offsets)
    }

    pub(in crate::wal) fn seqs(r: &Recovery) -> Vec<u64> {
        r.entries.iter().map(|e| e.seq).collect()
    }
    #[test]
    fn entries_read_back_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        logged(dir.path(), &[3, 4, 9]);
        let r = Recovery::read(dir.path()).expect("read");
        assert_eq!(seqs(&r), [3, 4, 9]);
        assert_eq!(r.entries[0], entry(3));
        assert_eq!(r.base, Some((1, 0)));
        assert!(r.damage.is_empty() && r.notes.is_empty());
    }
    #[test]
    fn every_torn_tail_is_ignored_and_never_called_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, offsets) = logged(dir.path(), &[1, 2, 3]);
        let whole = std::fs::read(&path).expect("read");
        let end = offsets[3];
        for cut in offsets[2] + 1..end {
            // A kill during the write: part of the batch, then what was there (zeros).
            let mut torn = whole.clone();
            torn[cut..].fill(0);
            for bytes in [&whole[..cut], &torn[..]] {
                std::fs::write(&path, bytes).expect("write");
                let r = Recovery::read(dir.path()).expect("read");
                assert_eq!(seqs(&r), [1, 2], "cut at {cut}");
                assert!(r.damage.is_empty(), "cut at {cut}: {:?}", r.damage);
                assert_eq!(r.end, offsets[2] as u64);
                if bytes[offsets[2]..].iter().any(|&b| b != 0) {
                    assert_eq!(r.notes.len(), 1, "cut at {cut}");
                    assert!(r.notes[0].contains("cut short"), "{}", r.notes[0]);
                }
            }
        }
        // A last batch whose checksum fails.
        let mut flipped = whole.clone();
        flipped[end - 1] ^= 1;
        std::fs::write(&path, flipped).expect("write");
        let r = Recovery::read(dir.path()).expect("read");
        assert_eq!((seqs(&r), r.damage.len()), (vec![1, 2], 0));
    }

    #[test]
    fn a_batch_is_replayed_whole_or_not_at_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut wal = Wal::start(dir.path(), &Recovery::default(), 0).expect("start");
        wal.append(&batch(&[1])).expect("append");
        let second = wal.len as usize;
        wal.append(&batch(&[2, 3, 4])).expect("append");
        let end = wal.len as usize;
        wal.sync().expect("sync");
        let path = dir.path().join(file_name(1));
        let whole = std::fs::read(&path).expect("read");
        assert_eq!(
            seqs(&Recovery::read(dir.path()).expect("read")),
            [1, 2, 3, 4]
        );
        // A power loss during its sync kept its end and lost its start: none of it was
        // acknowledged, and none of it is damage.
        let mut torn = whole.clone();
        torn[second..second + 100].fill(0);
        std::fs::write(&path, &torn).expect("write");
        let r = Recovery::read(dir.path()).expect("read");
        assert_eq!((seqs(&r), r.damage.len()), (vec![1], 0));
        assert!(end > second + 100);
    }

    #[test]
    fn a_bad_batch_that_good_ones_follow_is_damage_at_every_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, offsets) = logged(dir.path(), &[10, 20, 30]);
        let whole = std::fs::read(&path).expect("read");
        for at in offsets[1]..offsets[2] {
            let mut bad = whole.clone();
            bad[at] ^= 0x5a;
            std::fs::write(&path, &bad).expect("write");
            let r = Recovery::read(dir.path()).expect("read");
            assert_eq!(seqs(&r), [10, 30], "byte {at}");
            assert_eq!(r.damage.len(), 1, "byte {at}");
            assert_eq!((r.damage[0].before, r.damage[0].after), (10, Some(30)));
            assert!(r.damage[0].what.contains("good batches follow"));
            assert!(r.files[0].damaged);
        }
        // Zeroed rather than flipped: damage too, not the end of the generation.
        let mut zeroed = whole.clone();
        zeroed[offsets[1]..offsets[2]].fill(0);
        std::fs::write(&path, &zeroed).expect("write");
        let r = Recovery::read(dir.path()).expect("read");
        assert_eq!((seqs(&r), r.damage.len()), (vec![10, 30], 1));
    }

    #[test]
    fn generations_are_read_in_order_up_to_the_length_the_next_one_promises() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut wal = Wal::start(dir.path(), &Recovery::default(), 0).expect("start");
        wal.append(&batch(&[1])).expect("append");
        let first_end = wal.len;
        wal.rotate(1).expect("rotate");
        wal.append(&batch(&[2])).expect("append");
        wal.sync().expect("sync");
        let r = Recovery::read(dir.path()).expect("read");
        assert_eq!(seqs(&r), [1, 2]);
        assert_eq!(r.base, Some((1, 0)), "the oldest generation's base");
        // The older generation shorter than promised is damage, even with nothing after.
        let first = dir.path().join(file_name(1));
        let bytes = std::fs::read(&first).expect("read");
        let end = usize::try_from(first_end).expect("small");
        std::fs::write(&first, &bytes[..end - 3]).expect("write");
        let r = Recovery::read(dir.path()).expect("read");
        assert_eq!(seqs(&r), [2]);
        assert_eq!(r.damage.len(), 1, "{:?}", r.damage);
        assert_eq!(r.damage[0].after, Some(1), "the next generation's base");
        // Nor may zeros stand for what it promised.
        let mut zeroed = bytes.clone();
        zeroed[HEADER_LEN..end].fill(0);
        std::fs::write(&first, &zeroed).expect("write");
        let r = Recovery::read(dir.path()).expect("read");
        assert_eq!((seqs(&r), r.damage.len()), (vec![2], 1));
        // Retiring removes the older one once sled is durable.
        std::fs::write(&first, &bytes).expect("write");
        wal.retire().expect("retire");
        assert_eq!(
            generations(dir.path())
                .expect("list")
                .iter()
                .map(|(g, _)| *g)
                .collect::<Vec<_>>(),
            [2]
        );
    }

    #[test]
    fn a_generation_cut_short_while_created_holds_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        logged(dir.path(), &[5]);
        let header = codec::encode(&Header {
            generation: 2,
            base: 5,
            prev_end: 0,
        })
        .expect("encode");
        let torn = dir.path().join(file_name(2));
        std::fs::write(&torn, &header[..20]).expect("write");
        let r = Recovery::read(dir.path()).expect("read");
        assert_eq!((seqs(&r), r.damage.len()), (vec![5], 0));
        let wal = Wal::start(dir.path(), &r, 5).expect("start");
        assert_eq!(wal.generation, 3);
        assert!(!torn.exists(), "removed before the next one is created");
        // Not the newest: damage.
        std::fs::write(&torn, &header[..20]).expect("write");
        let r = Recovery::read(dir.path()).expect("read");
        assert_eq!(r.damage.len(), 1, "{:?}", r.damage);
    }

    #[test]
    fn a_newer_schema_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, offsets) = logged(dir.path(), &[1]);
        let mut bytes = std::fs::read(&path).expect("read");
        let version = offsets[0] + FRAME_HEAD + 4;
        bytes[version..version + 2].copy_from_slice(&(codec::SCHEMA_VERSION + 1).to_le_bytes());
        // The frame's checksum covers the codec header too.
        let body = bytes[offsets[0] + FRAME_HEAD..offsets[1]].to_vec();
        bytes[offsets[0] + 4..offsets[0] + 8]
            .copy_from_slice(&crc32fast::hash(&body).to_le_bytes());
        std::fs::write(&path, bytes).expect("write");
        let r = Recovery::read(dir.path()).expect("read");
        assert_eq!(r.newer, Some(codec::SCHEMA_VERSION + 1));
    }
}
