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

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError, MAGIC, MAX_PAYLOAD};

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
enum Unreadable {
    /// Written by a newer berth.
    Newer(u16),
    /// Torn or damaged, for a person.
    Bad(String),
}

/// The batch at `at` and its length with its frame.
fn read_frame(bytes: &[u8], at: usize) -> Result<(Vec<Entry>, usize), Unreadable> {
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
fn next_frame(bytes: &[u8], from: usize) -> Option<usize> {
    (from + FRAME_HEAD..bytes.len().saturating_sub(MAGIC.len() - 1))
        .filter(|&i| bytes.get(i..i + MAGIC.len()) == Some(MAGIC.as_slice()))
        .map(|i| i - FRAME_HEAD)
        .find(|&at| read_frame(bytes, at).is_ok())
}

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
struct Found {
    generation: u64,
    path: PathBuf,
    /// The newest file, cut short while it was being created: it holds nothing.
    empty: bool,
    /// It holds damage: set aside for a post-mortem rather than removed.
    damaged: bool,
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
    files: Vec<Found>,
    /// Readable length of the newest generation with a header: the next one's `prev_end`.
    end: u64,
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

/// The log being written: its newest generation, and the older ones a checkpoint will
/// remove.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    file: File,
    generation: u64,
    /// End of the newest generation's batches.
    len: u64,
    /// End of the space written ahead (zeros past `len`).
    written_ahead: u64,
    retiring: Vec<(PathBuf, bool)>,
}

impl Wal {
    /// Starts a new generation after every one `found`, with `base` the newest seq sled
    /// holds now. The generations found are removed by [`Wal::retire`] (damaged ones set
    /// aside), which must wait until sled's files are durable.
    pub(crate) fn start(dir: &Path, found: &Recovery, base: u64) -> io::Result<Wal> {
        let mut next = 1;
        let mut retiring = Vec::new();
        for f in &found.files {
            next = next.max(f.generation.saturating_add(1));
            if f.empty {
                // Removed before the next generation is created, whose directory sync
                // makes this durable too: only the newest generation may lack a header.
                match std::fs::remove_file(&f.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            } else {
                retiring.push((f.path.clone(), f.damaged));
            }
        }
        // The newest generation's end is what the page cache shows: a batch a SIGKILL
        // caught between its write and its sync is there but not durable. The header below
        // promises it is, so it is made so.
        if let Some(newest) = found.files.iter().rev().find(|f| !f.empty) {
            File::open(&newest.path)?.sync_data()?;
        }
        let header = Header {
            generation: next,
            base,
            prev_end: found.end,
        };
        Ok(Wal {
            dir: dir.to_owned(),
            file: create(dir, &header)?,
            generation: next,
            len: HEADER_LEN as u64,
            written_ahead: HEADER_LEN as u64,
            retiring,
        })
    }

    /// Appends a batch (one write). Past the space written ahead, the same write carries
    /// zeros after the batch, as many bytes as the generation holds (at most 1 MiB, up to
    /// a page end), so that the batches after it overwrite space the file already has:
    /// their `fdatasync` then writes the data and flushes the drive's cache, without a
    /// journal commit for a new size. Zeros are written rather than a hole or `fallocate`,
    /// which both leave ext4 a metadata change at the first write there. An idle store's
    /// generations stay a page long.
    pub(crate) fn append(&mut self, frame: &[u8]) -> io::Result<()> {
        let end = self.len + frame.len() as u64;
        if end <= self.written_ahead {
            self.file.write_all_at(frame, self.len)?;
        } else {
            let grow = (end - HEADER_LEN as u64).min(GROW_MAX);
            let ahead = (end + grow).next_multiple_of(PAGE);
            let mut bytes = frame.to_vec();
            bytes.resize(usize::try_from(ahead - self.len).unwrap_or(0), 0);
            self.file.write_all_at(&bytes, self.len)?;
            self.written_ahead = ahead;
        }
        self.len = end;
        Ok(())
    }

    /// `fdatasync` of the newest generation: its entries and its length.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Bytes of batches in the newest generation.
    pub(crate) fn written(&self) -> u64 {
        self.len - HEADER_LEN as u64
    }

    /// Starts the next generation; `base` is the newest seq applied to sled. The current
    /// one is synced first, whatever the durability, so that its whole length is what the
    /// next header promises.
    pub(crate) fn rotate(&mut self, base: u64) -> io::Result<()> {
        self.file.sync_data()?;
        let header = Header {
            generation: self.generation + 1,
            base,
            prev_end: self.len,
        };
        let file = create(&self.dir, &header)?;
        self.retiring
            .push((self.dir.join(file_name(self.generation)), false));
        self.file = file;
        self.generation = header.generation;
        self.len = HEADER_LEN as u64;
        self.written_ahead = HEADER_LEN as u64;
        Ok(())
    }

    /// Removes the generations before the newest (damaged ones are renamed
    /// `invalid.berth.wal.<generation>` instead, for a post-mortem); returns what it set
    /// aside, for a person. Only once sled's files hold everything they logged.
    pub(crate) fn retire(&mut self) -> io::Result<Vec<String>> {
        let mut notes = Vec::new();
        while let Some((path, damaged)) = self.retiring.first() {
            if *damaged {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                std::fs::rename(path, self.dir.join(format!("invalid.{name}")))?;
                notes.push(format!(
                    "renamed the damaged {name} to invalid.{name}, kept for a post-mortem"
                ));
            } else {
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            self.retiring.remove(0);
        }
        Ok(notes)
    }
}

/// Creates a generation: its header written and synced, then the directory synced, so
/// that the file is there after a power loss before anything is logged to it.
fn create(dir: &Path, header: &Header) -> io::Result<File> {
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(dir.join(file_name(header.generation)))?;
    let bytes = codec::encode(header).map_err(io::Error::other)?;
    file.write_all_at(&bytes, 0)?;
    file.sync_data()?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn batch(seqs: &[u64]) -> Vec<u8> {
        let encoded: Vec<Vec<u8>> = seqs
            .iter()
            .map(|&s| encode(&entry(s)).expect("encode"))
            .collect();
        frame(encoded.iter().map(Vec::as_slice))
    }

    /// A store directory whose log holds one generation with a batch of one entry for
    /// each of `seqs`; returns the generation's path and the offset of each batch.
    fn logged(dir: &Path, seqs: &[u64]) -> (PathBuf, Vec<usize>) {
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

    fn seqs(r: &Recovery) -> Vec<u64> {
        r.entries.iter().map(|e| e.seq).collect()
    }

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
    fn space_written_ahead_is_zeros_and_grows_with_the_generation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, offsets) = logged(dir.path(), &[1]);
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(
            bytes.len() as u64,
            PAGE,
            "an idle generation stays a page long"
        );
        assert!(bytes[offsets[1]..].iter().all(|&b| b == 0));
        let r = Recovery::read(dir.path()).expect("read");
        assert_eq!(seqs(&r), [1]);
        assert!(r.notes.is_empty() && r.damage.is_empty(), "{r:?}");
        assert_eq!(r.end, offsets[1] as u64);
        let mut wal = Wal::start(dir.path(), &r, 1).expect("start");
        let mut extensions = 0;
        for seq in 2..2000 {
            let before = wal.written_ahead;
            wal.append(&batch(&[seq])).expect("append");
            extensions += usize::from(wal.written_ahead != before);
        }
        assert!(extensions < 15, "{extensions} extensions for 2,000 batches");
        assert!(wal.written_ahead - wal.len <= wal.len.max(GROW_MAX) + PAGE);
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
