//! The sandbox's `stdout` and `stderr`, rotated by size as Mesos's logrotate container
//! logger does: before a write would take a file past its limit it becomes `stdout.1`, the
//! one before `stdout.2`, and so on up to the number kept; the oldest is removed.
//!
//! A file is rotated before a line that would not fit in it, so lines stay whole; only a
//! line that arrives in pieces (Docker splits lines longer than 16 KiB, a process writes
//! as it likes) and outgrows what is left of the file is cut at the limit, its rest
//! going on in the next file. A file never holds more than its limit, unless a rotation
//! failed (a file that cannot be moved): then the output goes on past the limit rather
//! than stop, and the rotation is tried again after another limit's worth.
//!
//! Whoever carries a stream on after a carrier died must know how many bytes it had in
//! all, rotated-away files included (the positions saved beside the files count them, see
//! `follow`): a record per stream beside the files (`.berth-stdout-rotation`) holds the
//! bytes before the current file and that file's inode. A rotation commits by replacing
//! that record whole, after the old file was linked as `stdout.1` and the new one made
//! under a temporary name, and before the new one is renamed over `stdout`; so `stdout`
//! always exists, and the next writer finishes (or undoes) a rotation a crash cut short,
//! from which file holds the recorded inode.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How one stream's files are rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// The most bytes one file holds (`--logrotate_max_stdout_size`); at least 1.
    pub max_size: u64,
    /// How many rotated files are kept (`stdout.1` ... `stdout.N`); 0 keeps none.
    pub files: u32,
}

/// Both streams' rotation (Mesos's `max_stdout_size`, `logrotate_stdout_options`, and the
/// same for stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// The sandbox's `stdout`.
    pub stdout: Limit,
    /// The sandbox's `stderr`.
    pub stderr: Limit,
}

/// What to do with the next bytes of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Append this many of them to the current file.
    Write(usize),
    /// Rotate first.
    Rotate,
}

/// Decides where `chunk` goes, for a current file of `len` bytes that `ends_line` (it is
/// empty or ends with a newline) and a limit of `max`. Never `Rotate` for an empty file,
/// so a rotation is always followed by a write. Pure.
fn step(len: u64, ends_line: bool, max: u64, chunk: &[u8]) -> Step {
    let room = usize::try_from(max.max(1).saturating_sub(len)).unwrap_or(usize::MAX);
    if chunk.len() <= room {
        return Step::Write(chunk.len());
    }
    // Whole lines up to the limit.
    if let Some(end) = chunk[..room].iter().rposition(|&b| b == b'\n') {
        return Step::Write(end + 1);
    }
    if len > 0 && ends_line {
        // The next line does not fit: it starts the next file.
        return Step::Rotate;
    }
    // A line longer than what is left of the file: cut at the limit.
    if room > 0 {
        Step::Write(room)
    } else {
        Step::Rotate
    }
}

/// One file operation of a rotation, on a stream's files by number (`stdout.N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    /// Remove `stdout.N`.
    Remove(u32),
    /// Rename `stdout.N` to `stdout.N+1`.
    Shift(u32),
    /// Link the current file as `stdout.1`.
    Keep,
}

/// The moves that make room for the current file as `stdout.1`, given the numbers of the
/// rotated files present and how many are kept. Only files past the first gap move, and
/// each into a free number: a rotation a crash cut short leaves a gap, and the next one
/// fills it instead of dropping a file more. Pure.
fn moves(present: &BTreeSet<u32>, keep: u32) -> Vec<Move> {
    let mut out: Vec<Move> = present
        .iter()
        .rev()
        .filter(|&&n| n > keep)
        .map(|&n| Move::Remove(n))
        .collect();
    if keep == 0 {
        return out;
    }
    let gap = match (1..=keep).find(|n| !present.contains(n)) {
        Some(gap) => gap,
        None => {
            out.push(Move::Remove(keep));
            keep
        }
    };
    out.extend((1..gap).rev().map(Move::Shift));
    out.push(Move::Keep);
    out
}

/// What the record beside a stream's files says: the bytes its rotated files had in all,
/// and the inode of the file that takes its writes after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    base: u64,
    inode: u64,
}

/// Which file takes a stream's writes, by the record and the inodes of `stdout` and of the
/// new file a rotation made under a temporary name. Pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// `stdout`, after the given bytes.
    Current(u64),
    /// The temporary file, after the given bytes: the rotation committed, its rename into
    /// place is to be done.
    Pending(u64),
}

fn standing(record: Option<Record>, current: Option<u64>, pending: Option<u64>) -> Standing {
    match record {
        None => Standing::Current(0),
        Some(r) if current == Some(r.inode) => Standing::Current(r.base),
        Some(r) if pending == Some(r.inode) => Standing::Pending(r.base),
        // Files moved by hand: the record's count is the best there is.
        Some(r) => Standing::Current(r.base),
    }
}

/// The rotated file `stdout.N`.
fn rotated(dir: &Path, name: &str, n: u32) -> PathBuf {
    dir.join(format!("{name}.{n}"))
}

fn record_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".berth-{name}-rotation"))
}

fn pending_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".berth-{name}.new"))
}

fn inode(path: &Path) -> Option<u64> {
    std::fs::symlink_metadata(path).ok().map(|m| m.ino())
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// A record that does not read counts as none: the stream is then counted from its
/// current file, as before any rotation.
fn read_record(dir: &Path, name: &str) -> Option<Record> {
    let bytes = super::sandbox_file::read_capped(&record_path(dir, name), RECORD_CAP).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Replaces the record whole: a temporary file renamed over it.
fn write_record(dir: &Path, name: &str, record: Record) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
    super::sandbox_file::replace(&record_path(dir, name), &bytes)
}

/// More than a record ever holds (two numbers): what a task put in its place instead is
/// not read further.
const RECORD_CAP: u64 = 4096;

/// How many bytes the stream `name` (`stdout` or `stderr`) has had in the sandbox `dir`,
/// rotated-away files included. Reads only.
pub fn written(dir: &Path, name: &str) -> u64 {
    let current = dir.join(name);
    let pending = pending_path(dir, name);
    match standing(read_record(dir, name), inode(&current), inode(&pending)) {
        Standing::Current(base) => base.saturating_add(len(&current)),
        Standing::Pending(base) => base.saturating_add(len(&pending)),
    }
}

/// A stream's current file, appended to and rotated by its [`Limit`].
#[derive(Debug)]
pub struct Sink {
    dir: PathBuf,
    name: &'static str,
    limit: Option<Limit>,
    file: File,
    /// The current file's length.
    len: u64,
    /// Whether the current file is empty or ends with a newline.
    ends_line: bool,
    /// The bytes of the files rotated before it.
    base: u64,
    /// No rotation is tried before the file reaches this length: one failed (its error
    /// logged), and the output goes on past the limit rather than stop.
    retry_at: u64,
    /// The current file is still under its temporary name: a rotation committed but its
    /// rename into place failed. Tried again before each write, so that the output does
    /// not stay where no reader looks.
    misplaced: bool,
}

impl Sink {
    /// Opens the stream `name` of the sandbox `dir` for appending (creating it), first
    /// finishing or undoing a rotation a crash cut short. Without a limit it is never
    /// rotated, but the bytes rotated before still count.
    pub fn open(dir: &Path, name: &'static str, limit: Option<Limit>) -> std::io::Result<Sink> {
        let current = dir.join(name);
        let pending = pending_path(dir, name);
        let record = read_record(dir, name);
        let base = match standing(record, inode(&current), inode(&pending)) {
            Standing::Pending(base) => {
                std::fs::rename(&pending, &current)?;
                base
            }
            Standing::Current(base) => {
                // A new file made before its rotation committed.
                let _ = std::fs::remove_file(&pending);
                base
            }
        };
        unlink_uncommitted(dir, name)?;
        // Read too: for the last byte, which says whether the file ends a line.
        let file = super::sandbox_file::append(&current)?;
        let meta = file.metadata()?;
        if limit.is_some() && record.is_none_or(|r| r.inode != meta.ino() || r.base != base) {
            write_record(
                dir,
                name,
                Record {
                    base,
                    inode: meta.ino(),
                },
            )?;
        }
        let len = meta.len();
        let mut last = [0u8];
        let ends_line = len == 0 || (file.read_at(&mut last, len - 1)? == 1 && last[0] == b'\n');
        Ok(Sink {
            dir: dir.to_owned(),
            name,
            limit,
            file,
            len,
            ends_line,
            base,
            retry_at: 0,
            misplaced: false,
        })
    }

    /// How many bytes the stream has had in all, rotated-away files included.
    pub fn written(&self) -> u64 {
        self.base.saturating_add(self.len)
    }

    /// Appends some of `bytes` (at least one, unless empty), rotating first if they would
    /// take the file past its limit; how many were written.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if bytes.is_empty() {
            return Ok(0);
        }
        if self.misplaced {
            self.put_in_place();
        }
        let mut take = bytes.len();
        if let Some(limit) = self.limit.filter(|_| self.len >= self.retry_at) {
            loop {
                match step(self.len, self.ends_line, limit.max_size, bytes) {
                    Step::Write(n) => {
                        take = n;
                        break;
                    }
                    Step::Rotate => {
                        if let Err(e) = self.rotate(limit.files) {
                            // Nothing committed: the current file is still the stream's.
                            tracing::warn!(
                                "cannot rotate {}: {e}; writing on past its limit, trying again after another {} bytes",
                                self.dir.join(self.name).display(),
                                limit.max_size
                            );
                            self.retry_at = self.len.saturating_add(limit.max_size);
                            break;
                        }
                    }
                }
            }
        }
        let n = self.file.write(&bytes[..take])?;
        if n > 0 {
            self.len += n as u64;
            self.ends_line = bytes[n - 1] == b'\n';
        }
        Ok(n)
    }

    /// Writes all of `bytes`.
    pub fn write_all(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let n = self.write(bytes)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// The current file becomes `stdout.1` (the others move up, the oldest goes) and a new,
    /// empty one takes its place. An error means nothing was committed: the current file
    /// is still the stream's.
    fn rotate(&mut self, keep: u32) -> std::io::Result<()> {
        let dir = &self.dir;
        let name = self.name;
        // A rotation of this sink that failed after its link.
        unlink_uncommitted(dir, name)?;
        let present: BTreeSet<u32> = std::fs::read_dir(dir)?
            .filter_map(|entry| {
                let file_name = entry.ok()?.file_name();
                let text = file_name.to_str()?.strip_prefix(name)?.strip_prefix('.')?;
                // `stdout.1`, not `stdout.01` nor `stdout.+1`.
                let n = text.parse::<u32>().ok()?;
                (n > 0 && n.to_string() == text).then_some(n)
            })
            .collect();
        let current = dir.join(name);
        for step in moves(&present, keep) {
            match step {
                Move::Remove(n) => std::fs::remove_file(rotated(dir, name, n))?,
                Move::Shift(n) => {
                    std::fs::rename(rotated(dir, name, n), rotated(dir, name, n + 1))?
                }
                Move::Keep => std::fs::hard_link(&current, rotated(dir, name, 1))?,
            }
        }
        let pending = pending_path(dir, name);
        match std::fs::remove_file(&pending) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        // This handle is the new current file, under whichever name.
        let file = super::sandbox_file::create_new(&pending)?;
        let fresh = file.metadata()?.ino();
        let base = self.base.saturating_add(self.len);
        // The commit: from here on the new file is the stream's, whatever happens.
        write_record(dir, name, Record { base, inode: fresh })?;
        self.file = file;
        self.base = base;
        self.len = 0;
        self.ends_line = true;
        // A rotation that failed before set a later point to try again; this one is done.
        self.retry_at = 0;
        if let Err(e) = std::fs::rename(&pending, &current) {
            // Written on under its temporary name until a rename works; rotating again
            // before would link the old file again.
            tracing::warn!(
                "cannot rename {} into place: {e}; the output goes there, and no rotation is made, until a rename works",
                pending.display()
            );
            self.misplaced = true;
            self.retry_at = u64::MAX;
        }
        Ok(())
    }

    /// Renames the current file from its temporary name over the stream's, if it is still
    /// the file there.
    fn put_in_place(&mut self) {
        let pending = pending_path(&self.dir, self.name);
        let current = self.dir.join(self.name);
        let ours = self.file.metadata().ok().map(|m| m.ino());
        let placed = if ours.is_some() && inode(&current) == ours {
            // Moved there by another hand: in place all the same.
            true
        } else if ours.is_some() && inode(&pending) == ours {
            std::fs::rename(&pending, &current).is_ok()
        } else {
            // Under neither name (removed): the next writer's open makes the stream's file
            // again; until then the output goes where no reader looks, and is not rotated.
            false
        };
        if placed {
            tracing::info!(
                "{} is in place again; rotations go on",
                self.dir.join(self.name).display()
            );
            self.misplaced = false;
            self.retry_at = 0;
        }
    }
}

impl Drop for Sink {
    /// A rotation's rename that failed for the stream's last bytes is tried once more, so
    /// that they are not left under the temporary name where no reader looks.
    fn drop(&mut self) {
        if self.misplaced {
            self.put_in_place();
        }
    }
}

/// Removes `stdout.1` if it is the current file: linked by a rotation that never
/// committed.
fn unlink_uncommitted(dir: &Path, name: &str) -> std::io::Result<()> {
    let first = rotated(dir, name, 1);
    let linked = inode(&first);
    if linked.is_some() && linked == inode(&dir.join(name)) {
        std::fs::remove_file(&first)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_rotated_before_a_line_that_does_not_fit() {
        use Step::*;
        // (file length, ends a line, limit, chunk, step)
        let cases: &[(u64, bool, u64, &str, Step)] = &[
            // Fits.
            (0, true, 10, "abc\n", Write(4)),
            (6, true, 10, "abc\n", Write(4)),
            // Whole lines up to the limit, the rest after a rotation.
            (0, true, 10, "ab\ncd\nef\ngh\n", Write(9)),
            (4, true, 10, "ab\ncd\nef\n", Write(6)),
            // The next line does not fit: rotate first.
            (8, true, 10, "abc\n", Rotate),
            (10, true, 10, "a", Rotate),
            // A line longer than a whole file: cut at the limit.
            (0, true, 4, "abcdefgh\n", Write(4)),
            // A line in pieces that outgrows the file: cut at the limit.
            (7, false, 10, "defgh", Write(3)),
            (10, false, 10, "x\n", Rotate),
            // A piece that ends its line within the limit.
            (7, false, 10, "d\nlonger line\n", Write(2)),
            // A limit of 0 is taken as 1.
            (0, true, 0, "ab", Write(1)),
        ];
        for &(len, ends_line, max, chunk, want) in cases {
            assert_eq!(
                step(len, ends_line, max, chunk.as_bytes()),
                want,
                "{len} {ends_line} {max} {chunk:?}"
            );
        }
    }

    #[test]
    fn rotated_files_move_up_into_a_free_number() {
        use Move::*;
        let set = |ns: &[u32]| ns.iter().copied().collect::<BTreeSet<u32>>();
        let cases: &[(&[u32], u32, &[Move])] = &[
            // The first rotation.
            (&[], 3, &[Keep]),
            (&[1], 3, &[Shift(1), Keep]),
            (&[1, 2], 3, &[Shift(2), Shift(1), Keep]),
            // All kept numbers taken: the oldest goes.
            (&[1, 2, 3], 3, &[Remove(3), Shift(2), Shift(1), Keep]),
            // A gap a crash left (2 moved to 3, 1 not yet to 2): only 1 moves.
            (&[1, 3], 3, &[Shift(1), Keep]),
            // Files past the number kept (a lower `--logrotate_stdout_files` than before).
            (
                &[1, 2, 3, 4, 5],
                2,
                &[Remove(5), Remove(4), Remove(3), Remove(2), Shift(1), Keep],
            ),
            // None kept: the current file is replaced.
            (&[], 0, &[]),
            (&[1, 2], 0, &[Remove(2), Remove(1)]),
        ];
        for &(present, keep, want) in cases {
            assert_eq!(moves(&set(present), keep), want, "{present:?} keep {keep}");
        }
    }

    #[test]
    fn the_record_names_the_file_that_takes_the_writes() {
        let r = |base, inode| Some(Record { base, inode });
        let cases = [
            // Never rotated.
            (None, Some(7), None, Standing::Current(0)),
            (r(100, 7), Some(7), None, Standing::Current(100)),
            // Committed, not yet renamed into place.
            (r(100, 8), Some(7), Some(8), Standing::Pending(100)),
            // Made but never committed: the old file is still the current one.
            (r(50, 7), Some(7), Some(8), Standing::Current(50)),
            // Moved by hand.
            (r(100, 9), Some(7), None, Standing::Current(100)),
        ];
        for (record, current, pending, want) in cases {
            assert_eq!(standing(record, current, pending), want, "{record:?}");
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    /// stdout.N ... stdout.1, stdout, concatenated.
    fn kept(dir: &Path, keep: u32) -> String {
        let mut all = String::new();
        for n in (1..=keep).rev() {
            all.push_str(&std::fs::read_to_string(rotated(dir, "stdout", n)).unwrap_or_default());
        }
        all + &std::fs::read_to_string(dir.join("stdout")).expect("stdout")
    }

    #[test]
    fn rotation_keeps_the_newest_lines_whole_and_counts_them_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limit = Limit {
            max_size: 16,
            files: 2,
        };
        let mut sink = Sink::open(dir.path(), "stdout", Some(limit)).expect("open");
        let lines: Vec<String> = (0..20).map(|i| format!("line {i:02}\n")).collect();
        for line in &lines {
            sink.write_all(line.as_bytes()).expect("write");
        }
        let all: String = lines.concat();
        assert_eq!(sink.written(), all.len() as u64);
        assert_eq!(written(dir.path(), "stdout"), all.len() as u64);
        assert_eq!(names(dir.path()), ["stdout", "stdout.1", "stdout.2"]);
        // Two 8-byte lines a file: the last six lines, whole.
        assert_eq!(kept(dir.path(), 2), lines[14..].concat());
        for n in 1..=2 {
            let text = std::fs::read_to_string(rotated(dir.path(), "stdout", n)).expect("read");
            assert!(text.len() <= 16 && text.ends_with('\n'), "{text:?}");
        }
        // Opened again (another carrier): the count goes on.
        let again = Sink::open(dir.path(), "stdout", Some(limit)).expect("open");
        assert_eq!(again.written(), all.len() as u64);
    }

    #[test]
    fn a_rotation_cut_short_is_finished_or_undone_by_the_next_writer() {
        let limit = Limit {
            max_size: 8,
            files: 3,
        };
        let setup = || {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut sink = Sink::open(dir.path(), "stdout", Some(limit)).expect("open");
            sink.write_all(b"aaaaaaa\nbbbbbbb\n").expect("write");
            (dir, sink)
        };
        // After setup: stdout.1 holds a's line, stdout b's. A rotation that moved stdout.1
        // up and linked stdout as stdout.1, then died before its commit: undone.
        let (dir, _) = setup();
        let name = "stdout";
        let mv = |from: u32, to: u32| {
            std::fs::rename(
                rotated(dir.path(), name, from),
                rotated(dir.path(), name, to),
            )
            .expect("mv")
        };
        mv(1, 2);
        std::fs::hard_link(dir.path().join(name), rotated(dir.path(), name, 1)).expect("link");
        assert_eq!(written(dir.path(), name), 16);
        let mut sink = Sink::open(dir.path(), name, Some(limit)).expect("open");
        assert_eq!(names(dir.path()), ["stdout", "stdout.2"]);
        sink.write_all(b"ccccccc\n").expect("write");
        assert_eq!(kept(dir.path(), 3), "aaaaaaa\nbbbbbbb\nccccccc\n");
        assert_eq!(sink.written(), 24);

        // The same rotation committed, its new file not yet renamed into place: finished.
        let (dir, sink) = setup();
        let pending = pending_path(dir.path(), name);
        std::fs::rename(rotated(dir.path(), name, 1), rotated(dir.path(), name, 2)).expect("mv");
        std::fs::hard_link(dir.path().join(name), rotated(dir.path(), name, 1)).expect("link");
        let fresh = File::create(&pending).expect("create");
        write_record(
            dir.path(),
            name,
            Record {
                base: sink.written(),
                inode: fresh.metadata().expect("meta").ino(),
            },
        )
        .expect("record");
        assert_eq!(written(dir.path(), name), 16);
        let mut sink = Sink::open(dir.path(), name, Some(limit)).expect("open");
        assert_eq!(sink.written(), 16);
        sink.write_all(b"ccccccc\n").expect("write");
        assert_eq!(names(dir.path()), ["stdout", "stdout.1", "stdout.2"]);
        assert_eq!(kept(dir.path(), 3), "aaaaaaa\nbbbbbbb\nccccccc\n");
        assert_eq!(sink.written(), 24);
    }

    #[test]
    fn a_rotation_that_fails_loses_nothing_and_is_tried_again_later() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limit = Limit {
            max_size: 8,
            files: 3,
        };
        for n in 1..=2 {
            std::fs::write(rotated(dir.path(), "stdout", n), "old\n").expect("write");
        }
        // The oldest cannot be removed.
        let blocker = rotated(dir.path(), "stdout", 3);
        std::fs::create_dir_all(blocker.join("inside")).expect("mkdir");
        let mut sink = Sink::open(dir.path(), "stdout", Some(limit)).expect("open");
        for line in ["aaaaaaa\n", "bbbbbbb\n", "ccccccc\n"] {
            sink.write_all(line.as_bytes()).expect("write");
        }
        let current = || std::fs::read_to_string(dir.path().join("stdout")).expect("read");
        assert_eq!(current(), "aaaaaaa\nbbbbbbb\nccccccc\n");
        std::fs::remove_dir_all(&blocker).expect("rm");
        sink.write_all(b"ddddddd\n").expect("write");
        assert_eq!(current(), "ddddddd\n");
        assert_eq!(
            names(dir.path()),
            ["stdout", "stdout.1", "stdout.2", "stdout.3"]
        );
        assert_eq!(
            kept(dir.path(), 3),
            "old\nold\naaaaaaa\nbbbbbbb\nccccccc\nddddddd\n"
        );
        assert_eq!(sink.written(), 32);
        // Once one succeeded, the limit holds again: each file one line.
        sink.write_all(b"eeeeeee\n").expect("write");
        assert_eq!(current(), "eeeeeee\n");
        sink.write_all(b"fffffff\n").expect("write");
        assert_eq!(current(), "fffffff\n");
        assert_eq!(written(dir.path(), "stdout"), 48);
    }

    #[test]
    fn a_file_whose_rename_failed_is_put_in_place_by_the_next_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limit = Limit {
            max_size: 8,
            files: 3,
        };
        let mut sink = Sink::open(dir.path(), "stdout", Some(limit)).expect("open");
        sink.write_all(b"aaaaaaa\n").expect("write");
        sink.write_all(b"bbbbbbb\n").expect("write");
        // As a rotation whose rename failed leaves it: the new file, holding the
        // rotation's line, under its temporary name; the old one at both names.
        let current = dir.path().join("stdout");
        let pending = pending_path(dir.path(), "stdout");
        std::fs::rename(&current, &pending).expect("mv");
        std::fs::hard_link(rotated(dir.path(), "stdout", 1), &current).expect("ln");
        sink.misplaced = true;
        sink.retry_at = u64::MAX;
        sink.write_all(b"ccccccc\n").expect("write");
        assert!(!pending.exists());
        assert_eq!(
            std::fs::read_to_string(&current).expect("read"),
            "ccccccc\n"
        );
        assert_eq!(kept(dir.path(), 3), "aaaaaaa\nbbbbbbb\nccccccc\n");
        // Rotations go on.
        sink.write_all(b"ddddddd\n").expect("write");
        assert_eq!(
            std::fs::read_to_string(&current).expect("read"),
            "ddddddd\n"
        );
        assert_eq!(written(dir.path(), "stdout"), 32);
    }

    #[test]
    fn without_a_limit_nothing_rotates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sink = Sink::open(dir.path(), "stderr", None).expect("open");
        sink.write_all(&[b'x'; 100]).expect("write");
        assert_eq!(names(dir.path()), ["stderr"]);
        assert!(!record_path(dir.path(), "stderr").exists());
        assert_eq!(written(dir.path(), "stderr"), 100);
    }
}
