//! Writing the log: the newest generation being appended to (one write per batch, with
//! zeros written ahead so that a sync need not commit a new size), synced, rotated to a new
//! generation at a checkpoint, and the older generations retired once sled's files hold
//! what they logged.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::read::Recovery;
use super::{file_name, Header, GROW_MAX, HEADER_LEN, PAGE};
use crate::codec;

/// The log being written: its newest generation, and the older ones a checkpoint will
/// remove.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    file: File,
    pub(super) generation: u64,
    /// End of the newest generation's batches.
    pub(super) len: u64,
    /// End of the space written ahead (zeros past `len`).
    pub(super) written_ahead: u64,
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
    use crate::wal::read::tests::{batch, logged, seqs};

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
}
