//! A store's file lock: whether anyone holds it, and who, read from `/proc/locks`.
//!
//! sled takes an exclusive `flock` on its `db` file. Whether anyone holds it is asked of
//! the lock itself ([`try_hold`]): `/proc/locks` may not show the holder, as on btrfs
//! (it prints the superblock's device, not the subvolume's `st_dev`) or to a process
//! whose `/proc` belongs to another pid namespace, so it only names the holder. Knowing
//! the holder lets `open` tell two cases apart: another process (normally the
//! running agent) holds the store, which is reported at once with its pid; or this very
//! process does, because sled releases the lock from background threads a moment after a
//! `Db` is dropped (sled issues #1234, #1289), which is waited out. A third: the holder
//! `/proc/locks` names is dead. An flock belongs to the open file description, and
//! `/proc/locks` names the process that took it; a child the holder forked just before
//! it was killed holds a copy of the descriptor until its exec closes it (`O_CLOEXEC`),
//! which on a loaded machine can take a while to be scheduled. That is waited out too.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// A file as `/proc/locks` names it: device major and minor, and inode. An inode number
/// alone is unique only within one filesystem: a lock on another filesystem's file with
/// the same number must not be taken for the store's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// Inode number.
    pub inode: u64,
}

impl FileId {
    /// The id of a file with device `dev` (`st_dev`) and inode `inode`. Pure.
    ///
    /// glibc's `gnu_dev_major`/`gnu_dev_minor` split, written out so that no `libc` call
    /// is needed: the kernel's 12-bit major and 20-bit minor are spread over the 64 bits.
    pub fn new(dev: u64, inode: u64) -> FileId {
        FileId {
            major: ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000),
            minor: (dev & 0xff) | ((dev >> 12) & 0xffff_ff00),
            inode,
        }
    }

    /// Parses `MAJOR:MINOR:INODE` as `/proc/locks` prints it: major and minor in hex,
    /// inode in decimal. Pure.
    fn parse(field: &str) -> Option<FileId> {
        let mut parts = field.split(':');
        let major = u64::from_str_radix(parts.next()?, 16).ok()?;
        let minor = u64::from_str_radix(parts.next()?, 16).ok()?;
        let inode = parts.next()?.parse().ok()?;
        match parts.next() {
            Some(_) => None,
            None => Some(FileId {
                major,
                minor,
                inode,
            }),
        }
    }
}

/// The store's lock, held through a file of this process's own; released when dropped.
#[derive(Debug)]
pub struct Held {
    _file: std::fs::File,
}

/// Takes the exclusive `flock` on `file` without waiting, through a new open file: `None`
/// when another open file holds it (another process, or a sled `Db` of this one).
pub fn try_hold(file: &Path) -> std::io::Result<Option<Held>> {
    let opened = std::fs::File::open(file)?;
    match rustix::fs::flock(
        &opened,
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    ) {
        Ok(()) => Ok(Some(Held { _file: opened })),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The pid holding an flock on `file`, if `/proc/locks` shows one.
pub fn holder(file: &Path) -> Option<u32> {
    let meta = std::fs::metadata(file).ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    parse_holder(&locks, FileId::new(meta.dev(), meta.ino()))
}

/// Whether `pid` is a live process (not gone, not a zombie, whose files are closed).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the command's closing parenthesis, which may appear in it.
            let state = stat
                .get(stat.rfind(')')? + 1..)?
                .split_whitespace()
                .next()?;
            Some(!matches!(state, "Z" | "X"))
        })
        .unwrap_or(false)
}

/// How long `open` waits for the lock that `holder` is seen to hold; `None`: not at all,
/// another live process holds the store. Pure.
pub fn wait_for(holder: Option<u32>, me: u32, holder_alive: bool) -> Option<Duration> {
    match holder {
        None => Some(OWN_LOCK_WAIT),
        Some(pid) if pid == me => Some(OWN_LOCK_WAIT),
        Some(_) if !holder_alive => Some(DEAD_HOLDER_WAIT),
        Some(_) => None,
    }
}

/// How long `open` waits for a lock held by this very process (sled releases it from a
/// background thread a moment after a `Db` is dropped), or being released (no holder
/// shown).
pub const OWN_LOCK_WAIT: Duration = Duration::from_secs(2);

/// How long `open` waits for a lock whose holder died, held on by a child it forked until
/// the child's exec.
pub const DEAD_HOLDER_WAIT: Duration = Duration::from_secs(10);

/// The pid of the first granted lock on `file` in the text of `/proc/locks`. Pure.
///
/// A line reads `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF`; lines of waiters
/// have `->` after the number and are skipped.
pub fn parse_holder(proc_locks: &str, file: FileId) -> Option<u32> {
    proc_locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) == Some(&"->") {
            return None;
        }
        let at = fields.iter().position(|f| FileId::parse(f) == Some(file))?;
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
4: FLOCK  ADVISORY  WRITE 5151 103:1a2b:31337 0 EOF
";

    #[test]
    fn a_lock_is_waited_for_unless_a_live_process_holds_it() {
        let table = [
            (None, true, Some(OWN_LOCK_WAIT)),
            (Some(7), true, Some(OWN_LOCK_WAIT)),
            (Some(7), false, Some(OWN_LOCK_WAIT)),
            (Some(42), false, Some(DEAD_HOLDER_WAIT)),
            (Some(42), true, None),
        ];
        for (holder, alive, want) in table {
            assert_eq!(wait_for(holder, 7, alive), want, "{holder:?} {alive}");
        }
    }

    #[test]
    fn this_process_is_alive_and_a_pid_past_the_maximum_is_not() {
        assert!(alive(std::process::id()));
        assert!(!alive(u32::MAX));
    }

    fn id(major: u64, minor: u64, inode: u64) -> FileId {
        FileId {
            major,
            minor,
            inode,
        }
    }

    #[test]
    fn the_holder_is_found_by_device_and_inode() {
        let table = [
            (LOCKS, id(0xfd, 0x01, 1_234_567), Some(4242)),
            (LOCKS, id(0x00, 0x1a, 555), Some(811)),
            (LOCKS, id(0x00, 0x05, 77), None),
            (LOCKS, id(0x103, 0x1a2b, 31337), Some(5151)),
            // The same inode number on another filesystem is another file.
            (LOCKS, id(0xfd, 0x02, 1_234_567), None),
            (LOCKS, id(0x08, 0x01, 1_234_567), None),
            (LOCKS, id(0x00, 0x1a, 1_234_567), None),
            (LOCKS, id(0xfd, 0x01, 1), None),
            ("", id(0, 0, 1), None),
            (
                "garbage ::: lines\n:\n1: FLOCK ADVISORY WRITE 7 zz:01:5 0 EOF\n",
                id(0, 0, 0),
                None,
            ),
            (
                "1: FLOCK ADVISORY WRITE 7 fd:01:5:9 0 EOF",
                id(0xfd, 1, 5),
                None,
            ),
            (
                "1: FLOCK ADVISORY WRITE nopid fd:01:5 0 EOF",
                id(0xfd, 1, 5),
                None,
            ),
        ];
        for (text, file, want) in table {
            assert_eq!(parse_holder(text, file), want, "{file:?} in {text:?}");
        }
    }

    #[test]
    fn device_numbers_split_as_the_kernel_prints_them() {
        let table = [
            // makedev(0xfd, 0x01), the usual device-mapper root.
            (0xfd01, id(0xfd, 0x01, 9)),
            (0xfe00, id(0xfe, 0x00, 9)),
            // A minor above 0xff continues above the major's bits.
            (0x01a1_032b, id(0x103, 0x1a2b, 9)),
            // A major above 0xfff continues above bit 32, and its bits are not the minor's.
            (0x0001_2000_0003_4506, id(0x12345, 0x06, 9)),
            (0x0000_0000_fff0_0000, id(0, 0xfff00, 9)),
        ];
        for (dev, want) in table {
            assert_eq!(FileId::new(dev, 9), want, "{dev:#x}");
        }
    }

    #[test]
    fn the_lock_is_held_by_one_open_file_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        std::fs::write(&path, b"").expect("db");
        let first = try_hold(&path).expect("try").expect("free");
        assert!(try_hold(&path).expect("try").is_none(), "held twice");
        drop(first);
        assert!(try_hold(&path).expect("try").is_some(), "not released");
        let missing = try_hold(&dir.path().join("nothing")).expect_err("no file");
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
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
