//! sled's snapshot files: finding the broken ones a crash leaves, before sled reads them.
//!
//! sled 0.34.7 writes a snapshot to `snap.<lsn>.generating`, syncs it and renames it to
//! `snap.<lsn>`. When it opens a store it reads the snapshot whose name sorts last, and
//! its list of candidates does not leave out `.generating` files: a process killed while
//! writing one (it does so while opening a store, among other times) leaves a file that
//! sorts after the real `snap.<lsn>` and fails its checksum, and sled then refuses to open
//! the store ("Read corrupted data", sled #1533). It also reuses an existing
//! `.generating` file without truncating it. The crash torture test met this after a few
//! hundred kills.
//!
//! A snapshot only saves sled from replaying its whole log; the log holds the data. So,
//! before sled opens a store nobody holds, berth removes unfinished `.generating` files
//! and renames any other snapshot that fails sled's own check to `invalid.snap.<lsn>`
//! (kept for a post-mortem; sled ignores it).

use std::path::Path;

/// Whether `bytes` are a whole sled snapshot: the payload, its length (8 bytes), and the
/// CRC32 of the payload (4 bytes, little-endian), as sled's `write_snapshot` lays it out.
pub fn is_whole(bytes: &[u8]) -> bool {
    let Some(body_len) = bytes.len().checked_sub(12).filter(|&l| l > 0) else {
        return false;
    };
    let (body, tail) = bytes.split_at(body_len);
    let stored = u32::from_le_bytes([tail[8], tail[9], tail[10], tail[11]]);
    crc32fast::hash(body) == stored
}

/// Removes unfinished and sets aside broken snapshots in `dir`; returns what it did, for
/// a person. Call it only while no process holds the store.
pub fn set_aside_broken(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut done = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("snap.") || !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        if name.ends_with(".generating") {
            match std::fs::remove_file(&path) {
                Ok(()) => done.push(format!(
                    "removed {name}, a sled snapshot left unfinished by a crash"
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        } else if !is_whole(&std::fs::read(&path)?) {
            let aside = dir.join(format!("invalid.{name}"));
            std::fs::rename(&path, &aside)?;
            done.push(format!(
                "renamed {name} to invalid.{name}: the sled snapshot fails its checksum; sled replays its log instead"
            ));
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(body: &[u8]) -> Vec<u8> {
        let mut out = body.to_vec();
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        out
    }

    #[test]
    fn whole_snapshots_are_told_from_broken_ones() {
        let good = snapshot(b"pages and segments");
        assert!(is_whole(&good));
        assert!(!is_whole(&good[..good.len() - 1]), "truncated");
        assert!(
            !is_whole(&[good.as_slice(), b"junk"].concat()),
            "not truncated on reuse"
        );
        assert!(!is_whole(&[]) && !is_whole(&[0; 12]), "empty");
        let mut flipped = good.clone();
        flipped[3] ^= 1;
        assert!(!is_whole(&flipped));
    }

    #[test]
    fn unfinished_and_broken_snapshots_are_set_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(d.join("snap.0000000000000010"), snapshot(b"ok")).expect("write");
        std::fs::write(d.join("snap.0000000000000020.generating"), b"half").expect("write");
        std::fs::write(d.join("snap.0000000000000030"), b"torn").expect("write");
        std::fs::write(d.join("db"), b"log").expect("write");
        let done = set_aside_broken(d).expect("set aside");
        assert_eq!(done.len(), 2, "{done:?}");
        let mut names: Vec<String> = std::fs::read_dir(d)
            .expect("read")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "db",
                "invalid.snap.0000000000000030",
                "snap.0000000000000010"
            ]
        );
        assert!(set_aside_broken(d).expect("again").is_empty());
    }
}
