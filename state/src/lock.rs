//! Who holds a store's file lock, read from `/proc/locks`.
//!
//! sled takes an exclusive `flock` on its `db` file and offers no way to ask who holds
//! it. Knowing the holder lets `open` tell two cases apart: another process (normally the
//! running agent) holds the store, which is reported at once with its pid; or this very
//! process does, because sled releases the lock from background threads a moment after a
//! `Db` is dropped (sled issues #1234, #1289), which is waited out.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The pid holding an flock on `file`, if `/proc/locks` shows one.
pub fn holder(file: &Path) -> Option<u32> {
    let inode = std::fs::metadata(file).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    parse_holder(&locks, inode)
}

/// The pid of the first granted lock on `inode` in the text of `/proc/locks`.
///
/// A line reads `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF`; lines of waiters
/// have `->` after the number and are skipped.
pub fn parse_holder(proc_locks: &str, inode: u64) -> Option<u32> {
    proc_locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) == Some(&"->") {
            return None;
        }
        let at = fields.iter().position(|f| {
            let parts: Vec<&str> = f.split(':').collect();
            parts.len() == 3 && parts[2].parse::<u64>().ok() == Some(inode)
        })?;
        fields.get(at.checked_sub(1)?)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCKS: &str = "\
1: POSIX  ADVISORY  WRITE 811 00:1a:555 0 EOF
2: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF
2: -> FLOCK  ADVISORY  WRITE 999 fd:01:1234567 0 EOF
3: OFDLCK ADVISORY  READ  -1 00:05:77 0 EOF
";

    #[test]
    fn the_holder_is_found_by_inode() {
        assert_eq!(parse_holder(LOCKS, 1_234_567), Some(4242));
        assert_eq!(parse_holder(LOCKS, 555), Some(811));
        assert_eq!(parse_holder(LOCKS, 77), None, "an OFD lock has no pid");
        assert_eq!(parse_holder(LOCKS, 1), None);
        assert_eq!(parse_holder("", 1), None);
        assert_eq!(parse_holder("garbage ::: lines\n:\n", 0), None);
    }

    #[test]
    fn a_real_flock_shows_this_process() {
        // sled's lock is an flock; take one the same way and find ourselves.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let _db = sled::open(dir.path()).expect("open");
        assert_eq!(holder(&path), Some(std::process::id()));
    }
}
