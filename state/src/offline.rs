//! Offline inspection on a private copy of a store, so that nothing writes to the original.
//!
//! Opening a sled database is not read-only: sled recovers its log, zeroes what follows a
//! damaged message, and may write a snapshot; berth would also set aside broken snapshots.
//! `berth state` is for after an incident, when the evidence matters, so it copies the
//! store's files (a few MiB under retention) to a private temporary directory and opens
//! the copy with [`OnCorrupt::Report`]. A store held by another process (the running
//! agent) is not copied: the command says who holds it.

use std::path::{Path, PathBuf};

use crate::config::{OnCorrupt, StoreConfig};
use crate::error::StoreError;
use crate::store::Store;

/// A store opened on a private copy; the copy is removed when this is dropped.
pub struct Inspection {
    // Declared first so that it is dropped (and sled closed) before the copy is removed.
    store: Store,
    _copy: CopyDir,
}

impl Inspection {
    /// Copies the store in `dir` and opens the copy for inspection.
    pub fn open(dir: &Path) -> Result<Inspection, StoreError> {
        check_unheld(dir)?;
        let copy = CopyDir::new().map_err(|source| StoreError::Io {
            what: "making a private directory to inspect a copy of the store in".into(),
            source,
        })?;
        copy_files(dir, &copy.0).map_err(|source| StoreError::Io {
            what: format!("copying the store at {}", dir.display()),
            source,
        })?;
        // An agent that started while the files were copied may have changed them.
        check_unheld(dir)?;
        let config = StoreConfig {
            on_corrupt: OnCorrupt::Report,
            ..StoreConfig::default()
        };
        let store = Store::open(&copy.0, "", &config).map_err(|e| e.at(dir))?;
        Ok(Inspection { store, _copy: copy })
    }

    /// The store, as found.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

fn check_unheld(dir: &Path) -> Result<(), StoreError> {
    match crate::lock::holder(&dir.join("db")) {
        Some(pid) if pid != std::process::id() => Err(StoreError::Locked {
            path: dir.to_owned(),
            holder: Some(pid),
        }),
        _ => Ok(()),
    }
}

/// Copies a sled directory: its files and those of `blobs/`.
fn copy_files(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        } else if kind.is_dir() && entry.file_name() == "blobs" {
            std::fs::create_dir(&target)?;
            for blob in std::fs::read_dir(entry.path())? {
                let blob = blob?;
                std::fs::copy(blob.path(), target.join(blob.file_name()))?;
            }
        }
    }
    Ok(())
}

/// A private temporary directory, removed on drop.
struct CopyDir(PathBuf);

impl CopyDir {
    fn new() -> std::io::Result<CopyDir> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "berth-state-inspect-{}-{nanos:09}",
            std::process::id()
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(CopyDir(path))
    }
}

impl Drop for CopyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
