//! Unpacking a fetched archive into the sandbox, in-process (no `tar` or `unzip` child), on
//! a blocking thread. Nothing may land outside the sandbox: entries with `..` are refused
//! (Mesos's `tar` would strip them and go on; a task that ships such an archive is more
//! likely hostile than careless), writes go through parents checked against the disk, and
//! links that lead outside are refused. The archive itself is kept, as Mesos keeps it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::links;
use super::plan::Archive;

/// What an unpack produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Entries written (files, directories, links).
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// The limits and the cancellation flag an unpack checks as it goes.
pub struct Budget<'a> {
    /// Most bytes of file content to write.
    pub max_bytes: u64,
    /// Set when the fetch future is dropped; checked between entries and between chunks.
    pub cancel: &'a AtomicBool,
    /// Bytes written so far.
    pub written: u64,
}

impl Budget<'_> {
    fn check_cancel(&self) -> Result<(), String> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err("cancelled".into());
        }
        Ok(())
    }

    fn take(&mut self, bytes: u64) -> Result<(), String> {
        self.written = self.written.saturating_add(bytes);
        if self.written > self.max_bytes {
            return Err(format!(
                "it unpacks to more than the limit of {} bytes",
                self.max_bytes
            ));
        }
        Ok(())
    }

    /// Copies `from` into `to` in chunks, counting against the budget and stopping when
    /// cancelled; a declared size is never trusted.
    fn copy(&mut self, from: &mut impl Read, to: &mut impl Write) -> Result<u64, String> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            self.check_cancel()?;
            let n = from.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok(total);
            }
            self.take(n as u64)?;
            total += n as u64;
            to.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        }
    }
}

/// Unpacks `file` (a tarball or a `.zip`) into `root`, or gunzips it (`.gz`) to
/// `root/gunzip_to`. Errors are the reason, for `FetchError::Extract`.
pub fn unpack(
    archive: Archive,
    file: &Path,
    root: &Path,
    gunzip_to: Option<&Path>,
    budget: &mut Budget<'_>,
) -> Result<Counts, String> {
    let open = || File::open(file).map_err(|e| format!("cannot open the archive: {e}"));
    let counts = match archive {
        Archive::Tar | Archive::TarGz | Archive::TarBz2 | Archive::TarXz => {
            unpack_tar(decompressed(open()?)?, root, budget)?
        }
        Archive::Zip => unpack_zip(open()?, root, budget)?,
        Archive::Gz => {
            let to = gunzip_to.ok_or("no name to gunzip to")?;
            return gunzip(open()?, root, to, budget);
        }
    };
    // A later entry can make an earlier link lead outside; only the final tree tells.
    let escaping = links::escaping(root).map_err(|e| e.to_string())?;
    if let Some(first) = escaping.first() {
        for link in &escaping {
            // Removed so that nothing later writes through it; best effort, the fetch
            // fails either way.
            let _ = std::fs::remove_file(root.join(link));
        }
        return Err(format!(
            "{first:?} is a symbolic link that leads outside the sandbox (removed)"
        ));
    }
    Ok(counts)
}

/// How a tarball is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
}

/// A tarball's compression, told by its first bytes as libarchive tells it for Mesos: a
/// `.tgz` that is really xz, or a `.tar` that is gzipped, unpacks all the same. Pure.
fn compression_of(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Compression::Xz
    } else {
        Compression::None
    }
}

/// The tarball's bytes, decompressed as its first bytes say. Concatenated streams are all
/// read, as `tar` reads them.
fn decompressed(file: File) -> Result<Box<dyn Read>, String> {
    let mut reader = BufReader::new(file);
    let head = reader
        .fill_buf()
        .map_err(|e| format!("cannot read the archive: {e}"))?;
    Ok(match compression_of(head) {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(reader)),
    })
}

fn outside(entry: &Path) -> String {
    format!("entry {entry:?} would land outside the sandbox; the archive is refused")
}

/// The entry's path relative to the sandbox, refusing `..`. A leading `/` is dropped, as
/// `tar` and `unzip` do.
fn entry_path(path: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => return Err(outside(path)),
        }
    }
    Ok(out)
}

fn check_link(root: &Path, entry: &Path, target: &Path) -> Result<(), String> {
    match links::link_stays_inside(root, entry, target) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "entry {entry:?} is a symbolic link to {target:?}, outside the sandbox; the archive \
             is refused"
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn check_parent(root: &Path, rel: &Path, entry: &Path) -> Result<(), String> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    match links::stays_inside(root, parent) {
        Ok(true) => Ok(()),
        Ok(false) => Err(outside(entry)),
        Err(e) => Err(e.to_string()),
    }
}

fn unpack_tar(reader: impl Read, root: &Path, budget: &mut Budget<'_>) -> Result<Counts, String> {
    let mut archive = tar::Archive::new(reader);
    archive.set_overwrite(true);
    let mut counts = Counts::default();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        budget.check_cancel()?;
        let mut entry = entry.map_err(|e| e.to_string())?;
        let raw = entry.path().map_err(|e| e.to_string())?.into_owned();
        let rel = entry_path(&raw)?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("entry {raw:?} is a link without a target"))?;
            check_link(root, &rel, &target)?;
        }
        // The header's size bounds what `unpack_in` writes, so it is counted up front.
        budget.take(entry.size())?;
        // `unpack_in` checks each parent against the disk (canonicalized), unlinks an
        // existing file before writing instead of writing through it, and keeps hard links
        // inside.
        if !entry.unpack_in(root).map_err(|e| e.to_string())? {
            return Err(outside(&raw));
        }
        counts.entries += 1;
        counts.bytes += entry.size();
    }
    Ok(counts)
}

fn unpack_zip(file: File, root: &Path, budget: &mut Budget<'_>) -> Result<Counts, String> {
    let mut zip = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    let mut counts = Counts::default();
    for i in 0..zip.len() {
        budget.check_cancel()?;
        let mut entry = zip.by_index(i).map_err(|e| e.to_string())?;
        let raw = PathBuf::from(String::from_utf8_lossy(entry.name_raw()).into_owned());
        // `enclosed_name` drops a leading `/` and resolves `a/../b` lexically; anything
        // that climbs out is refused.
        let rel = entry.enclosed_name().ok_or_else(|| outside(&raw))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let dst = root.join(&rel);
        if entry.is_dir() {
            match links::stays_inside(root, &rel) {
                Ok(true) => {}
                Ok(false) => return Err(outside(&raw)),
                Err(e) => return Err(e.to_string()),
            }
            std::fs::create_dir_all(&dst).map_err(|e| format!("{rel:?}: {e}"))?;
            counts.entries += 1;
            continue;
        }
        check_parent(root, &rel, &raw)?;
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{rel:?}: {e}"))?;
        }
        // Replace, never write through, whatever is there (it may be a link).
        match std::fs::symlink_metadata(&dst) {
            Ok(meta) if !meta.is_dir() => {
                std::fs::remove_file(&dst).map_err(|e| format!("{rel:?}: {e}"))?
            }
            _ => {}
        }
        if entry.is_symlink() {
            let mut target = Vec::new();
            (&mut entry)
                .take(4096)
                .read_to_end(&mut target)
                .map_err(|e| format!("{rel:?}: {e}"))?;
            let target = PathBuf::from(String::from_utf8_lossy(&target).into_owned());
            check_link(root, &rel, &target)?;
            symlink(&target, &dst).map_err(|e| format!("{rel:?}: {e}"))?;
        } else {
            // Only the permission bits: no set-uid from an archive.
            let mode = entry.unix_mode().map_or(0o644, |m| m & 0o777);
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&dst)
                .map_err(|e| format!("{rel:?}: {e}"))?;
            counts.bytes += budget.copy(&mut entry, &mut out)?;
        }
        counts.entries += 1;
    }
    Ok(counts)
}

fn gunzip(file: File, root: &Path, to: &Path, budget: &mut Budget<'_>) -> Result<Counts, String> {
    check_parent(root, to, to)?;
    let temp = super::temp_path(root.join(to).parent().unwrap_or(root));
    let result = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)
            .map_err(|e| format!("{temp:?}: {e}"))?;
        let mut decoder = flate2::read::MultiGzDecoder::new(file);
        let bytes = budget.copy(&mut decoder, &mut out)?;
        budget.check_cancel()?;
        // rename replaces a link at the destination instead of writing through it.
        std::fs::rename(&temp, root.join(to)).map_err(|e| format!("{to:?}: {e}"))?;
        Ok(Counts { entries: 1, bytes })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_by_content() {
        let cases: &[(&[u8], Compression)] = &[
            (&[0x1f, 0x8b, 8, 0], Compression::Gzip),
            (b"BZh91AY&SY", Compression::Bzip2),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0, 0, 4], Compression::Xz),
            // A plain tarball starts with its first entry's name.
            (b"app/run.sh\0\0\0", Compression::None),
            (&[0xfd, b'7', b'z', b'X', b'Z'], Compression::None),
            (&[0x1f], Compression::None),
            (b"BZ", Compression::None),
            (&[], Compression::None),
        ];
        for (head, want) in cases {
            assert_eq!(compression_of(head), *want, "{head:?}");
        }
    }

    #[test]
    fn entry_paths() {
        let cases = [
            ("a/b", Ok("a/b")),
            ("/abs/x", Ok("abs/x")),
            ("./a", Ok("a")),
            ("../evil", Err(())),
            ("a/../../evil", Err(())),
            ("a/../b", Err(())),
        ];
        for (raw, want) in cases {
            let got = entry_path(Path::new(raw)).map_err(|_| ());
            assert_eq!(got, want.map(PathBuf::from), "{raw}");
        }
    }

    #[test]
    fn budget_stops_at_the_limit_and_on_cancel() {
        let cancel = AtomicBool::new(false);
        let mut budget = Budget {
            max_bytes: 10,
            cancel: &cancel,
            written: 0,
        };
        let mut out = Vec::new();
        assert_eq!(budget.copy(&mut &b"12345"[..], &mut out), Ok(5));
        let over = budget.copy(&mut &b"123456"[..], &mut out);
        assert!(over.is_err_and(|e| e.contains("limit of 10 bytes")));
        cancel.store(true, Ordering::Relaxed);
        let mut budget = Budget {
            max_bytes: 10,
            cancel: &cancel,
            written: 0,
        };
        assert_eq!(
            budget.copy(&mut &b"1"[..], &mut out),
            Err("cancelled".into())
        );
    }
}
