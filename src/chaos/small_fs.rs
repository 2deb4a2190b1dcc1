//! The small filesystem a run's work directory lives on when its schedule fills the disk:
//! a size-limited tmpfs mounted on the work directory, so that a full disk is the run's
//! own and never the machine's. It is named for the run (its source), so that clean-up
//! and `heal` unmount only a mount they can prove is the run's, and is unmounted only
//! once the agent, its executors, the decoy process that sits in it and the containers
//! that bind its sandboxes are gone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use super::ChaosError;

/// How big the filesystem is: room for the agent's store and a short run's sandboxes,
/// little enough to fill in moments.
pub const SIZE: &str = "48m";

/// The file that fills it, in the work directory.
const FILL: &str = "berth-chaos-fill";

/// The tmpfs's source name for the run `run_id`: what proves a mount is the run's.
pub fn source(run_id: &str) -> String {
    format!("berth-chaos-{run_id}")
}

/// Mounts the run's tmpfs on `work` (which the caller journaled first).
pub fn mount(work: &Path, run_id: &str) -> Result<(), ChaosError> {
    nix::mount::mount(
        Some(source(run_id).as_str()),
        work,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(format!("size={SIZE},mode=0755").as_str()),
    )
    .map_err(|e| {
        ChaosError::Refused(format!(
            "the run fills the disk (disk_full) on a tmpfs of its own, which it cannot mount on {} ({e}; it takes root): run as root, or leave disk_full out with --faults",
            work.display()
        ))
    })
}

/// How the run's tmpfs sits on a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mounted {
    /// It is not mounted there.
    No,
    /// It is the topmost mount there: unmounting the directory unmounts it.
    Top,
    /// It is there, under something else: unmounting the directory would unmount that.
    Under,
}

/// How the run's tmpfs sits on `work`, by this process's mount table. The table holds
/// resolved paths, so `work` is resolved first (a `..` or a symlink in it, or a relative
/// one).
pub fn mounted(work: &Path, run_id: &str) -> Mounted {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let work = std::fs::canonicalize(work).unwrap_or_else(|_| work.to_owned());
    state(&table, &work, &source(run_id))
}

/// Unmounts the run's tmpfs from `work` if it is the topmost mount there; says what it
/// did. One with something else mounted over it is left, with why: unmounting the path
/// would unmount the other. A mount still busy (a process of the run not reaped yet) is
/// tried again for a few seconds, then detached: the kernel frees it once its last user is
/// gone.
pub fn unmount(work: &Path, run_id: &str) -> Option<String> {
    match mounted(work, run_id) {
        Mounted::No => return None,
        Mounted::Under => {
            return Some(format!(
                "the run's tmpfs on {} has something else mounted over it: nothing is unmounted (unmounting the path would unmount that); unmount what is on top, then run `berth chaos heal` on the run's directory",
                work.display()
            ))
        }
        Mounted::Top => {}
    }
    let work = std::fs::canonicalize(work).unwrap_or_else(|_| work.to_owned());
    let work = work.as_path();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match nix::mount::umount2(work, MntFlags::empty()) {
            Ok(()) => return Some(format!("the run's tmpfs on {} unmounted", work.display())),
            Err(Errno::EBUSY) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(Errno::EBUSY) => {
                let detached = nix::mount::umount2(work, MntFlags::MNT_DETACH);
                return Some(format!(
                    "the run's tmpfs on {} was still busy: detached ({})",
                    work.display(),
                    detached.map_or_else(|e| e.to_string(), |()| "done".into())
                ));
            }
            Err(e) => {
                return Some(format!(
                    "the run's tmpfs on {} could not be unmounted: {e}",
                    work.display()
                ))
            }
        }
    }
}

/// Fills the filesystem under `work` with a file of the run's own until it is full;
/// returns how many bytes it took.
pub fn fill(work: &Path) -> Result<u64, ChaosError> {
    let path = fill_path(work);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| ChaosError::io(&path, e))?;
    let mut written = 0u64;
    // Smaller and smaller writes, so that the last pages are taken too.
    let mut chunk = 1 << 20;
    let zeros = vec![0u8; chunk];
    while chunk > 0 {
        match file.write(&zeros[..chunk]) {
            Ok(0) => chunk /= 2,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(Errno::ENOSPC as i32) => chunk /= 2,
            Err(e) => return Err(ChaosError::io(&path, e)),
        }
    }
    Ok(written)
}

/// Deletes the file that fills it; true if there was one.
pub fn free(work: &Path) -> Result<bool, ChaosError> {
    let path = fill_path(work);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ChaosError::io(&path, e)),
    }
}

/// Whether an agent that exited by itself stopped as documented for a full disk: the
/// harness filled its disk since it started, and it said that a record could not be made
/// durable for want of space (docs/state-format.md: a failed batch poisons the store, and
/// the agent stops rather than serve what it cannot record). Pure.
pub fn stopped_on_full_disk(filled: bool, log: &str) -> bool {
    filled
        && log.lines().any(|line| {
            line.contains("a record could not be made durable")
                && line.contains("No space left on device")
        })
}

fn fill_path(work: &Path) -> PathBuf {
    work.join(FILL)
}

/// How a tmpfs from `source` sits on `path` by a mount table (`/proc/PID/mountinfo`):
/// among the mounts on `path`, the topmost is the one no other there is mounted on. Pure.
fn state(mountinfo: &str, path: &Path, source: &str) -> Mounted {
    let wanted = path.to_string_lossy();
    // Mount id, parent id, and whether it is the run's tmpfs, of each mount on `path`.
    let here: Vec<(&str, &str, bool)> = mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut left = left.split(' ');
            let (id, parent) = (left.next()?, left.next()?);
            if unescape(left.nth(2)?) != wanted {
                return None;
            }
            let mut right = right.split(' ');
            let ours = right.next() == Some("tmpfs") && right.next() == Some(source);
            Some((id, parent, ours))
        })
        .collect();
    let top = here
        .iter()
        .rev()
        .find(|(id, _, _)| !here.iter().any(|(_, parent, _)| parent == id));
    match top {
        Some((_, _, true)) => Mounted::Top,
        _ if here.iter().any(|(_, _, ours)| *ours) => Mounted::Under,
        _ => Mounted::No,
    }
}

/// A mount point as mountinfo writes it: space, tab, newline and backslash as `\ooo`.
/// Pure.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_runs_own_tmpfs_on_the_work_directory_counts_and_only_on_top() {
        let table = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
90 22 0:51 / /tmp/run\\040a/work rw,nosuid,nodev - tmpfs berth-chaos-r1 rw,size=49152k
91 22 0:52 / /tmp/other/work rw - tmpfs berth-chaos-r1 rw
92 22 0:53 / /tmp/run2/work rw - tmpfs tmpfs rw
93 22 0:54 / /tmp/run3/work rw - ext4 berth-chaos-r3 rw
94 22 0:55 / /tmp/run4/work rw - tmpfs berth-chaos-r4 rw
95 94 0:56 / /tmp/run4/work rw - tmpfs someone-else rw
96 22 0:57 / /tmp/run5/work rw - tmpfs someone-else rw
97 96 0:58 / /tmp/run5/work rw - tmpfs berth-chaos-r5 rw
";
        let cases = [
            ("/tmp/run a/work", "berth-chaos-r1", Mounted::Top),
            ("/tmp/run a/work", "berth-chaos-r2", Mounted::No),
            ("/tmp/run a", "berth-chaos-r1", Mounted::No),
            ("/tmp/run2/work", "berth-chaos-r2", Mounted::No),
            ("/tmp/run3/work", "berth-chaos-r3", Mounted::No),
            ("/", "/dev/sda1", Mounted::No),
            // Someone else's mount over the run's: unmounting the path would take theirs.
            ("/tmp/run4/work", "berth-chaos-r4", Mounted::Under),
            ("/tmp/run5/work", "berth-chaos-r5", Mounted::Top),
        ];
        for (path, source, want) in cases {
            assert_eq!(
                state(table, Path::new(path), source),
                want,
                "{path} {source}"
            );
        }
        assert_eq!(state("garbage\n - \n", Path::new("/x"), "s"), Mounted::No);
    }

    #[test]
    fn a_mount_over_the_runs_tmpfs_is_left_and_so_is_the_runs() {
        // Real mounts: only as root, as the campaign itself.
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let run_id = format!("u{}", std::process::id());
        mount(dir.path(), &run_id).expect("mount");
        let theirs = format!("berth-test-theirs-{}", std::process::id());
        nix::mount::mount(
            Some(theirs.as_str()),
            dir.path(),
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=1m"),
        )
        .expect("mount theirs over it");
        let refused = unmount(dir.path(), &run_id);
        let table = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let theirs_left = table.contains(&format!(" tmpfs {theirs} "));
        let ours_left = table.contains(&format!(" tmpfs {} ", source(&run_id)));
        // Both unmounted, whatever was asserted.
        let _ = nix::mount::umount2(dir.path(), MntFlags::empty());
        let unmounted = unmount(dir.path(), &run_id);
        assert!(
            refused
                .as_deref()
                .is_some_and(|s| s.contains("something else mounted over it")),
            "{refused:?}"
        );
        assert!(theirs_left && ours_left);
        assert!(unmounted.is_some_and(|s| s.contains("unmounted")));
        assert_eq!(mounted(dir.path(), &run_id), Mounted::No);
    }

    #[test]
    fn only_a_stop_for_want_of_space_on_a_disk_the_harness_filled_is_expected() {
        let stopped = "berth: a record could not be made durable (the record could not be made durable, so the action it announces must not be taken: write-ahead log: No space left on device (os error 28); free space ...); berth stopped rather than serve what it cannot record";
        let cases = [
            (true, stopped, true),
            (false, stopped, false),
            (
                true,
                "berth: a record could not be made durable (Input/output error)",
                false,
            ),
            (
                true,
                "thread 'main' panicked: No space left on device",
                false,
            ),
            (true, "", false),
        ];
        for (filled, log, want) in cases {
            assert_eq!(stopped_on_full_disk(filled, log), want, "{filled} {log}");
        }
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape("/a\\040b\\011c\\134d"), "/a b\tc\\d");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/cut\\04"), "/cut\\04");
        assert_eq!(unescape("/not\\9xy"), "/not\\9xy");
    }

    #[test]
    fn a_fill_takes_what_is_left_and_a_free_gives_it_back() {
        // A real small filesystem: only as root, as the campaign itself.
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let run_id = format!("t{}", std::process::id());
        mount(dir.path(), &run_id).expect("mount");
        assert_eq!(mounted(dir.path(), &run_id), Mounted::Top);
        let taken = fill(dir.path());
        let more = std::fs::write(dir.path().join("more"), [1u8; 8192]);
        let freed = free(dir.path());
        let after = std::fs::write(dir.path().join("after"), [1u8; 8192]);
        let unmounted = unmount(dir.path(), &run_id);
        assert!(taken.expect("fill") > 40 << 20);
        assert_eq!(
            more.expect_err("full").raw_os_error(),
            Some(Errno::ENOSPC as i32)
        );
        assert!(freed.expect("free"));
        after.expect("room again");
        assert!(unmounted.is_some_and(|s| s.contains("unmounted")));
        assert_eq!(mounted(dir.path(), &run_id), Mounted::No);
        assert_eq!(
            unmount(dir.path(), &run_id),
            None,
            "nothing left to unmount"
        );
    }
}
