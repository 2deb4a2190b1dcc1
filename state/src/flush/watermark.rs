//! The watermark: the newest seq known durable, in a small file beside sled's, written
//! after every batch. At open it tells a store that lost acknowledged records (sled or a
//! damaged last batch of the log dropped them) from one that merely stopped.

use std::fs::File;
use std::path::Path;

/// `<dir>/berth.watermark`: the newest seq known durable, written (not synced) after every
/// batch. sled treats a damaged log message as the end of its log and drops everything
/// after it without a word, and a damaged last batch of berth's log looks like a torn one;
/// at open, a store whose newest seq is below the watermark has lost acknowledged records,
/// and says so.
pub(crate) struct Watermark {
    file: File,
}

/// The watermark file's name inside the store's directory.
pub(crate) const WATERMARK_FILE: &str = "berth.watermark";

impl Watermark {
    /// Reads the watermark of the store in `dir`: `Ok(None)` without one, `Err` with the
    /// reason if it does not decode.
    pub(crate) fn read(dir: &Path) -> Result<Option<u64>, String> {
        match std::fs::read(dir.join(WATERMARK_FILE)) {
            Ok(bytes) => crate::codec::decode::<u64>(&bytes)
                .map(Some)
                .map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Opens (or creates) the watermark file of the store in `dir`.
    pub(crate) fn open(dir: &Path) -> std::io::Result<Watermark> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(WATERMARK_FILE))?;
        Ok(Watermark { file })
    }

    /// Overwrites it in place (same length every time, so it needs no new disk blocks).
    pub(crate) fn write(&self, seq: u64) -> Result<(), String> {
        use std::os::unix::fs::FileExt;
        let bytes = crate::codec::encode(&seq).map_err(|e| e.to_string())?;
        self.file
            .write_all_at(&bytes, 0)
            .map_err(|e| format!("writing the watermark: {e}"))
    }
}
