//! A campaign's own directory: everything a run makes on disk is under it, and a
//! directory the harness did not make is refused, so that a run (or a `heal`) never
//! writes into, or deletes, someone else's files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ChaosError;

/// The file that says a directory is a campaign's, with what `heal` needs.
const OWNERSHIP: &str = "berth-chaos.json";

/// What the ownership file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// The run's id: in its containers' labels and its decoys' names.
    pub run_id: String,
    /// The mark every process of the run carries in its environment.
    pub mark: String,
    /// The mark of the decoy process: not the run's, but the run's to remove.
    pub decoy_mark: String,
}

/// A campaign's directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
    /// Whose it is.
    pub ownership: Ownership,
}

impl RunDir {
    /// Makes `path`, which must not exist yet (or be an empty directory), as the run's.
    pub fn create(path: &Path, ownership: Ownership) -> Result<RunDir, ChaosError> {
        match std::fs::read_dir(path) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(ChaosError::Refused(format!(
                        "{} exists and is not empty: a campaign only works in a directory it makes; give a new path",
                        path.display()
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(path).map_err(|e| ChaosError::io(path, e))?;
            }
            Err(e) => return Err(ChaosError::io(path, e)),
        }
        // Resolved once it exists: its paths go to the agent and to the mount table, which
        // holds resolved ones (no `..`, no symlink, never relative).
        let path = &std::fs::canonicalize(path).map_err(|e| ChaosError::io(path, e))?;
        // Healed if the process is interrupted, from now on.
        super::interrupt::made(path);
        let file = path.join(OWNERSHIP);
        let json =
            serde_json::to_vec_pretty(&ownership).map_err(|e| ChaosError::io(&file, e.into()))?;
        std::fs::write(&file, json).map_err(|e| ChaosError::io(&file, e))?;
        for part in ["work", "cli", "evidence", "www"] {
            let dir = path.join(part);
            std::fs::create_dir(&dir).map_err(|e| ChaosError::io(&dir, e))?;
        }
        Ok(RunDir {
            path: path.to_owned(),
            ownership,
        })
    }

    /// An existing run's directory, for `heal`: refused unless the harness made it.
    pub fn open(path: &Path) -> Result<RunDir, ChaosError> {
        let not_made = || {
            ChaosError::Refused(format!(
                "{} was not made by `berth chaos run` (no {OWNERSHIP}): nothing there is touched",
                path.display()
            ))
        };
        // Resolved, as at its creation: a relative path, a `..` or a symlink in it names
        // the same directory the mount table and the journal do.
        let path = &std::fs::canonicalize(path).map_err(|_| not_made())?;
        let file = path.join(OWNERSHIP);
        let text = std::fs::read(&file).map_err(|_| not_made())?;
        let ownership = serde_json::from_slice(&text).map_err(|e| {
            ChaosError::Refused(format!(
                "{} does not read ({e}): nothing is touched",
                file.display()
            ))
        })?;
        Ok(RunDir {
            path: path.to_owned(),
            ownership,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The agent's work directory.
    pub fn work(&self) -> PathBuf {
        self.path.join("work")
    }

    /// Where the stand-in Docker CLI and its switches live.
    pub fn cli(&self) -> PathBuf {
        self.path.join("cli")
    }

    /// The evidence the agent does not write.
    pub fn evidence(&self) -> PathBuf {
        self.path.join("evidence")
    }

    /// What the loopback HTTP server serves.
    pub fn www(&self) -> PathBuf {
        self.path.join("www")
    }

    /// The boot id the run's agent sees, when the run reboots the host.
    pub fn boot_id(&self) -> PathBuf {
        self.path.join("boot_id")
    }

    /// The agent's store as it was before a byte of it was flipped.
    pub fn store_copy(&self) -> PathBuf {
        self.path.join("store-copy")
    }

    /// The journal of requests, answers and faults.
    pub fn journal(&self) -> PathBuf {
        self.path.join("journal.jsonl")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ownership() -> Ownership {
        Ownership {
            run_id: "r1".into(),
            mark: "m1".into(),
            decoy_mark: "d1".into(),
        }
    }

    #[test]
    fn only_a_directory_the_harness_made_is_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = dir.path().join("run");
        let made = RunDir::create(&run, ownership()).expect("create");
        assert!(made.work().is_dir());
        assert_eq!(RunDir::open(&run).expect("open").ownership, ownership());
        // Made already: not made again over it.
        assert!(matches!(
            RunDir::create(&run, ownership()),
            Err(ChaosError::Refused(_))
        ));
        // Someone else's directory: refused, and left as it was.
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).expect("mkdir");
        std::fs::write(theirs.join("data"), "x").expect("write");
        assert!(matches!(RunDir::open(&theirs), Err(ChaosError::Refused(_))));
        assert!(matches!(
            RunDir::create(&theirs, ownership()),
            Err(ChaosError::Refused(_))
        ));
        assert_eq!(
            std::fs::read_to_string(theirs.join("data")).expect("read"),
            "x"
        );
        // An empty one is taken.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        RunDir::create(&empty, ownership()).expect("an empty directory is taken");
    }
}
