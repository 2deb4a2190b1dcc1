//! A flipped byte in the agent's store while it is down, and what the agent made of it.
//! docs/state-format.md says what must happen: a damaged value or lost records are
//! refused at start with an error naming the store (the harness's agent runs with
//! `--strict`, the default, so nothing is quarantined), a byte the store does not read
//! (sled's padding, space the write-ahead log wrote ahead, the watermark's note) changes
//! nothing; never a panic, never a record lost in silence.

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::ChaosError;

/// The store's files, with their lengths, in name order (sled's, the write-ahead log's,
/// the watermark); empty ones are left out, as they have no byte to flip.
pub fn files(store: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    walk(store, &mut out);
    out.sort();
    out
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            walk(&entry.path(), out);
        } else if meta.is_file() && meta.len() > 0 {
            out.push((entry.path(), meta.len()));
        }
    }
}

/// Which file, and where in it, the `at`-th byte of the files laid end to end is (modulo
/// their total length). Pure.
pub fn locate(files: &[(PathBuf, u64)], at: u64) -> Option<(usize, u64)> {
    let total = files
        .iter()
        .try_fold(0u64, |sum, (_, len)| sum.checked_add(*len))?;
    if total == 0 {
        return None;
    }
    let mut left = at % total;
    for (n, (_, len)) in files.iter().enumerate() {
        if left < *len {
            return Some((n, left));
        }
        left -= len;
    }
    None
}

/// The byte at `offset` of `file`.
pub fn read_byte(file: &Path, offset: u64) -> Result<u8, ChaosError> {
    let mut byte = [0u8];
    std::fs::File::open(file)
        .and_then(|f| f.read_exact_at(&mut byte, offset))
        .map_err(|e| ChaosError::io(file, e))?;
    Ok(byte[0])
}

/// Writes `byte` at `offset` of `file`, synced.
pub fn write_byte(file: &Path, offset: u64, byte: u8) -> Result<(), ChaosError> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .and_then(|f| {
            f.write_all_at(&[byte], offset)?;
            f.sync_data()
        })
        .map_err(|e| ChaosError::io(file, e))
}

/// Copies the directory `from` to `to` (made), files and subdirectories.
pub fn copy_dir(from: &Path, to: &Path) -> Result<(), ChaosError> {
    std::fs::create_dir_all(to).map_err(|e| ChaosError::io(to, e))?;
    let entries = std::fs::read_dir(from).map_err(|e| ChaosError::io(from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ChaosError::io(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = entry.metadata().map_err(|e| ChaosError::io(&src, e))?;
        if meta.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| ChaosError::io(&src, e))?;
        }
    }
    Ok(())
}

/// Puts the store back as it was copied: sled may have rewritten its files while opening
/// them before berth refused (it zeroes what follows a damaged message), so the byte
/// alone would not give back the store the agent left.
pub fn restore(copy: &Path, store: &Path) -> Result<(), ChaosError> {
    if store.exists() {
        std::fs::remove_dir_all(store).map_err(|e| ChaosError::io(store, e))?;
    }
    copy_dir(copy, store)
}

/// What the agent did when started on the flipped store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// It served; the tasks its store held before and now, and `berth state verify`.
    Served {
        /// Containers the store held before the flip.
        before: BTreeSet<String>,
        /// Containers it lists now.
        after: BTreeSet<String>,
        /// verify: `Ok(output)` when it passed, `Err(output)` when it failed.
        verify: Result<String, String>,
    },
    /// It exited before serving.
    Exited,
    /// It neither served nor exited in time.
    Hung,
}

/// What a flipped byte came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum Outcome {
    /// The agent refused to start with an error docs/state-format.md names.
    Refused(String),
    /// It started and lost nothing (the byte was one the store does not read, or opening
    /// put it right); what verify said.
    Unharmed(String),
    /// It started, records are missing, and verify reports it.
    Reported(String),
    /// The promise broke: a panic, a loss nobody reported, an undocumented outcome.
    Unreported(String),
}

/// The refusals docs/state-format.md ("What happens to a bad value", "Lost records",
/// "A damaged store")
/// names, as the agent words them when it cannot open its store.
const DOCUMENTED: [&str; 7] = [
    "does not decode",
    "is damaged",
    "is not a berth store",
    "has lost acknowledged records",
    "newer than this berth's",
    "store I/O failed",
    "do not decode",
];

/// Judges what the agent did with the flipped store, from how it started and its log.
/// Pure.
pub fn judge(start: &Start, log: &str) -> Outcome {
    if let Some(line) = log.lines().find(|l| l.contains("panicked")) {
        return Outcome::Unreported(format!("the agent panicked: {}", line.trim()));
    }
    match start {
        Start::Hung => Outcome::Unreported(
            "the agent neither served nor refused to start on the flipped store".into(),
        ),
        Start::Exited => {
            let error = log
                .lines()
                .rev()
                .find(|l| l.starts_with("berth: "))
                .unwrap_or_default()
                .trim();
            let documented = error.contains("cannot open the checkpoint store")
                && DOCUMENTED.iter().any(|d| error.contains(d));
            if documented {
                Outcome::Refused(error.to_owned())
            } else {
                Outcome::Unreported(format!(
                    "the agent exited with no error docs/state-format.md names: {:?}",
                    if error.is_empty() {
                        log.lines().last().unwrap_or_default().trim()
                    } else {
                        error
                    }
                ))
            }
        }
        Start::Served {
            before,
            after,
            verify,
        } => {
            let missing: Vec<&String> = before.difference(after).collect();
            match (missing.is_empty(), verify) {
                (true, Ok(out) | Err(out)) => Outcome::Unharmed(out.trim().to_owned()),
                (false, Err(out)) => Outcome::Reported(format!(
                    "missing {missing:?}; berth state verify: {}",
                    out.trim()
                )),
                (false, Ok(out)) => Outcome::Unreported(format!(
                    "the agent started without {missing:?}, which its store held, and berth state verify says: {}",
                    out.trim()
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_byte_is_found_across_the_files_laid_end_to_end() {
        let files = [("a", 3), ("b", 1), ("c", 2)].map(|(n, l)| (PathBuf::from(n), l));
        let cases = [
            (0, Some((0, 0))),
            (2, Some((0, 2))),
            (3, Some((1, 0))),
            (4, Some((2, 0))),
            (5, Some((2, 1))),
            (6, Some((0, 0))),
            // 2^64 - 1 is 3 modulo 6.
            (u64::MAX, Some((1, 0))),
        ];
        for (at, want) in cases {
            assert_eq!(locate(&files, at), want, "at {at}");
        }
        assert_eq!(locate(&[], 5), None);
        let huge = [("a", u64::MAX), ("b", 1)].map(|(n, l)| (PathBuf::from(n), l));
        assert_eq!(locate(&huge, 1), None, "lengths that overflow: nothing");
    }

    #[test]
    fn each_outcome_is_named_for_what_the_agent_did() {
        let refused = "berth: cannot open the checkpoint store: the store at /w/state has lost acknowledged records: x; keep a copy";
        let cases = [
            (Start::Exited, refused.to_owned(), "refused"),
            (
                Start::Exited,
                "{\"level\":\"INFO\"}\nberth: cannot open the checkpoint store: /w/state is not a berth store (sled cannot read it)".into(),
                "refused",
            ),
            (
                Start::Exited,
                "berth: another agent is serving /w/berth.sock".into(),
                "unreported",
            ),
            (Start::Exited, String::new(), "unreported"),
            (
                Start::Exited,
                "thread 'main' panicked at src/x.rs:1:1:\nboom".into(),
                "unreported",
            ),
            (Start::Hung, String::new(), "unreported"),
            (
                Start::Served {
                    before: set(&["a", "b"]),
                    after: set(&["a", "b", "c"]),
                    verify: Ok("ok: 3 containers".into()),
                },
                String::new(),
                "unharmed",
            ),
            (
                Start::Served {
                    before: set(&["a", "b"]),
                    after: set(&["a"]),
                    verify: Err("lost records".into()),
                },
                String::new(),
                "reported",
            ),
            (
                Start::Served {
                    before: set(&["a", "b"]),
                    after: set(&["a"]),
                    verify: Ok("ok: 1 container".into()),
                },
                String::new(),
                "unreported",
            ),
        ];
        for (start, log, want) in cases {
            let got = serde_json::to_value(judge(&start, &log)).expect("json");
            assert_eq!(got["outcome"], want, "{start:?} {log:?}: {got}");
        }
    }

    #[test]
    fn a_flipped_byte_is_put_back_with_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("state");
        std::fs::create_dir_all(store.join("blobs")).expect("mkdir");
        std::fs::write(store.join("db"), b"abc").expect("write");
        std::fs::write(store.join("blobs").join("1"), b"z").expect("write");
        std::fs::write(store.join("empty"), b"").expect("write");
        let found = files(&store);
        assert_eq!(
            found,
            [(store.join("blobs").join("1"), 1), (store.join("db"), 3)]
        );
        let copy = dir.path().join("copy");
        copy_dir(&store, &copy).expect("copy");
        let (n, offset) = locate(&found, 2).expect("a byte");
        let file = &found[n].0;
        let old = read_byte(file, offset).expect("read");
        write_byte(file, offset, !old).expect("flip");
        assert_eq!(std::fs::read(store.join("db")).expect("read"), b"a\x9dc");
        restore(&copy, &store).expect("restore");
        assert_eq!(std::fs::read(store.join("db")).expect("read"), b"abc");
        assert_eq!(
            std::fs::read(store.join("blobs").join("1")).expect("read"),
            b"z"
        );
    }
}
