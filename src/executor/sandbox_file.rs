//! Files in a task's sandbox, which the task itself can write (its container has the
//! sandbox mounted read-write). The executor and the agent run as root on the host, so
//! they never follow a link the task put there (`O_NOFOLLOW`, and `O_EXCL` for new
//! files, which never follows one), take nothing but a regular file, write none that has
//! another name (a hard link the task made to a file outside), and read no more of a
//! record than such a record can hold.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

fn checked(file: File, path: &Path) -> std::io::Result<File> {
    if file.metadata()?.file_type().is_file() {
        Ok(file)
    } else {
        Err(std::io::Error::other(format!(
            "{} is not a regular file; berth does not use it",
            path.display()
        )))
    }
}

/// [`checked`], and the file's only name: another may be outside the sandbox (a task
/// that can write its sandbox can link a host file of its file system into it), and root
/// would write there. Reading one is left allowed: a rotation links the current file
/// under a second name for a moment, and readers follow it.
fn checked_for_writing(file: File, path: &Path) -> std::io::Result<File> {
    let file = checked(file, path)?;
    let links = std::os::unix::fs::MetadataExt::nlink(&file.metadata()?);
    if links == 1 {
        Ok(file)
    } else {
        Err(std::io::Error::other(format!(
            "{} has {links} names (another may be outside the sandbox); berth does not write it",
            path.display()
        )))
    }
}

/// Opens `path` for appending (and reading), creating it; never through a link, nor a
/// file with another name.
pub fn append(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .custom_flags(libc_flags::NOFOLLOW)
        .open(path)?;
    checked_for_writing(file, path)
}

/// Opens `path` for writing without truncating it, creating it; never through a link, nor
/// a file with another name.
pub fn write(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .custom_flags(libc_flags::NOFOLLOW)
        .open(path)?;
    checked_for_writing(file, path)
}

/// Creates `path`, which must not exist (not even as a link), for appending and reading.
pub fn create_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .open(path)
}

/// Opens `path`, a regular file, for reading, never through a link; a FIFO does not
/// block the open.
pub fn read(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags::NOFOLLOW | libc_flags::NONBLOCK)
        .open(path)?;
    checked(file, path)
}

/// Reads at most `cap` bytes of `path`, as [`read`] opens it.
pub fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    read(path)?.take(cap).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Replaces `path` whole with `bytes`: a temporary file, made anew (a link in its place
/// is removed, not followed), renamed over it.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    match std::fs::remove_file(&temporary) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = create_new(&temporary)?;
    std::io::Write::write_all(&mut file, bytes)?;
    drop(file);
    std::fs::rename(&temporary, path)
}

/// The open(2) flags berth adds, from the kernel's ABI (the same on every Linux
/// architecture berth builds for).
mod libc_flags {
    pub const NOFOLLOW: i32 = nix::fcntl::OFlag::O_NOFOLLOW.bits();
    pub const NONBLOCK: i32 = nix::fcntl::OFlag::O_NONBLOCK.bits();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_the_task_planted_is_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "host file\n").expect("write");
        let sandbox = dir.path().join("sandbox");
        std::fs::create_dir(&sandbox).expect("mkdir");
        let link = sandbox.join("stdout");
        std::os::unix::fs::symlink(&outside, &link).expect("symlink");
        assert!(append(&link).is_err());
        assert!(write(&link).is_err());
        assert!(read_capped(&link, 10).is_err());
        let record = sandbox.join(".berth-stdout-rotation");
        std::os::unix::fs::symlink(&outside, sandbox.join(".berth-stdout-rotation.tmp"))
            .expect("symlink");
        replace(&record, b"{}").expect("the planted link is removed, not followed");
        assert_eq!(
            std::fs::read_to_string(&outside).expect("read"),
            "host file\n"
        );
        assert_eq!(read_capped(&record, 10).expect("read"), b"{}");
        // A directory, or a FIFO, is not a file to use.
        std::fs::create_dir(sandbox.join("stderr")).expect("mkdir");
        assert!(append(&sandbox.join("stderr")).is_err());
        let fifo = sandbox.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        assert!(read_capped(&fifo, 10).is_err());
        // A record is read no further than its cap.
        std::fs::write(sandbox.join("big"), vec![b'x'; 100]).expect("write");
        assert_eq!(
            read_capped(&sandbox.join("big"), 10).expect("read").len(),
            10
        );
    }

    #[test]
    fn a_file_with_another_name_is_not_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "host file\n").expect("write");
        let sandbox = dir.path().join("sandbox");
        std::fs::create_dir(&sandbox).expect("mkdir");
        // A task's stdout swapped for another name of a host file (on the same file
        // system, where a hard link can be made).
        let stdout = sandbox.join("stdout");
        std::fs::hard_link(&outside, &stdout).expect("link");
        assert!(append(&stdout).is_err());
        assert!(write(&stdout).is_err());
        assert_eq!(
            std::fs::read_to_string(&outside).expect("read"),
            "host file\n"
        );
        // Reading one is harmless, and a rotation shows one for a moment.
        assert_eq!(read_capped(&stdout, 100).expect("read"), b"host file\n");
    }
}
