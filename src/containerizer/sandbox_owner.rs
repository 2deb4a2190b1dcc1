//! Gives a task's sandbox to the user it runs as (`command.user` with `--switch_user`), as
//! Mesos's agent does: the task can then write in its working directory and change what
//! was fetched for it. Done just before its executor starts, after the fetch (which the
//! agent does as root), again at each start of that step (a crash may come between).
//!
//! The sandbox is the task's to write (a container has it mounted read-write), and other
//! processes of the same user may be at work in it, so what is in it is not trusted, and
//! no path into it is either: a name may be swapped for a link between two looks at it.
//! So the sandbox is closed (the agent's, mode 0700) for the whole walk, which keeps out
//! every process that is not inside already; and the walk goes by directory descriptors,
//! opening each name from its parent's descriptor without following a link
//! (`O_NOFOLLOW`), deciding on what it opened (`fstat`) and giving exactly that
//! (`fchownat` on the descriptor): no name is looked up twice and no link is followed, so
//! a swap cannot take the walk outside. A link is given itself, never what it points to;
//! the walk does not leave the sandbox's file system; a file with more than one name is
//! left as it is (another of its names may be outside the sandbox), and so is anything
//! but a file, a directory or a link (a device node given away would give the device).
//! The sandbox itself is given last, then its mode is given back.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::{Gid, Uid};

use crate::run_as::RunAs;

/// Why a sandbox could not be given to its user.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct GiveError {
    /// The entry, named for the message only: the walk never opens it by this path.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: Errno,
}

/// Makes `sandbox`, and `<work_dir>/sandboxes` with mode 0711 if berth is the one to make
/// it: a task's user reaches its own sandbox by name, but nobody else lists the others
/// (a sandbox is named by its container's id, and a user who knew one could wait inside
/// for its walk). A `sandboxes` made by someone else is left as it is.
pub(crate) fn make(sandbox: &Path) -> std::io::Result<()> {
    if let Some(sandboxes) = sandbox.parent() {
        if let Some(work_dir) = sandboxes.parent() {
            std::fs::create_dir_all(work_dir)?;
        }
        match std::fs::DirBuilder::new().mode(0o711).create(sandboxes) {
            // The umask may have taken bits off; it never adds any, so the directory was
            // never listable by others meanwhile.
            Ok(()) => std::fs::set_permissions(sandboxes, std::fs::Permissions::from_mode(0o711))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    std::fs::create_dir_all(sandbox)
}

/// What an entry of the sandbox is, as far as giving it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
    /// A FIFO, a socket or a device node.
    Other,
}

impl Kind {
    fn of(stat: &FileStat) -> Kind {
        let format = stat.st_mode & SFlag::S_IFMT.bits();
        if format == SFlag::S_IFDIR.bits() {
            Kind::Dir
        } else if format == SFlag::S_IFREG.bits() {
            Kind::File
        } else if format == SFlag::S_IFLNK.bits() {
            Kind::Symlink
        } else {
            Kind::Other
        }
    }
}

/// What is done with one entry of the sandbox. Pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Give {
    /// Given to the user, and its entries walked.
    Walk,
    /// Given to the user.
    Own,
    /// Left as it is.
    Leave,
}

/// The decision for an entry: its kind, its number of names, and whether it is on the
/// sandbox's file system.
fn decide(kind: Kind, links: u64, same_device: bool) -> Give {
    match kind {
        _ if !same_device => Give::Leave,
        Kind::Dir => Give::Walk,
        Kind::Symlink => Give::Own,
        Kind::File if links == 1 => Give::Own,
        Kind::File | Kind::Other => Give::Leave,
    }
}

/// Gives `sandbox` and what is in it to `user`. On failure the sandbox stays the agent's
/// (with its mode given back), and what was given stays given.
pub fn give(sandbox: &Path, user: &RunAs) -> Result<(), GiveError> {
    give_watched(sandbox, user, &mut |_| {})
}

/// [`give`], calling `listed` with each directory once its entries are listed (tests
/// change the sandbox there, as another process of the user's could).
fn give_watched(
    sandbox: &Path,
    user: &RunAs,
    listed: &mut dyn FnMut(&Path),
) -> Result<(), GiveError> {
    let at = |source| GiveError {
        path: sandbox.to_owned(),
        source,
    };
    let root = nix::fcntl::open(
        sandbox,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(at)?;
    let stat = nix::sys::stat::fstat(&root).map_err(at)?;
    let mode = Mode::from_bits_truncate(stat.st_mode & 0o7777);
    // Closed before anything in it is given: the agent's, and no one else's to enter.
    nix::unistd::fchown(
        &root,
        Some(nix::unistd::geteuid()),
        Some(nix::unistd::getegid()),
    )
    .map_err(at)?;
    nix::sys::stat::fchmod(&root, Mode::S_IRWXU).map_err(at)?;
    let given = walk(&root, sandbox, stat.st_dev, user, listed).and_then(|()| {
        nix::unistd::fchown(
            &root,
            Some(Uid::from_raw(user.uid)),
            Some(Gid::from_raw(user.gid)),
        )
        .map_err(at)
    });
    let restored = nix::sys::stat::fchmod(&root, mode).map_err(at);
    given.and(restored)
}

/// An entry still to be given: its name in its parent, which stays open until then.
struct Pending {
    parent: Rc<OwnedFd>,
    name: CString,
    path: PathBuf,
}

/// Gives what is below the directory `root` (not `root` itself).
fn walk(
    root: &OwnedFd,
    root_path: &Path,
    device: u64,
    user: &RunAs,
    listed: &mut dyn FnMut(&Path),
) -> Result<(), GiveError> {
    let (uid, gid) = (Uid::from_raw(user.uid), Gid::from_raw(user.gid));
    let mut pending = Vec::new();
    let root = Rc::new(root.try_clone().map_err(|e| GiveError {
        path: root_path.to_owned(),
        source: io_errno(&e),
    })?);
    list(&root, root_path, &mut pending)?;
    listed(root_path);
    while let Some(Pending { parent, name, path }) = pending.pop() {
        let at = |source| GiveError {
            path: path.clone(),
            source,
        };
        // Opened from its parent's descriptor, as itself if it is a link (`O_PATH` with
        // `O_NOFOLLOW`): whatever is done next is done to this very entry.
        let entry = match nix::fcntl::openat(
            &*parent,
            name.as_c_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(entry) => entry,
            // Gone since it was listed: nothing to give.
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(at(e)),
        };
        let stat = nix::sys::stat::fstat(&entry).map_err(at)?;
        let give = decide(Kind::of(&stat), stat.st_nlink, stat.st_dev == device);
        if give == Give::Leave {
            continue;
        }
        // The descriptor's own inode (`AT_EMPTY_PATH`): a link itself, never its target.
        nix::unistd::fchownat(&entry, "", Some(uid), Some(gid), AtFlags::AT_EMPTY_PATH)
            .map_err(at)?;
        if give == Give::Walk {
            let entry = Rc::new(entry);
            list(&entry, &path, &mut pending)?;
            listed(&path);
        }
    }
    Ok(())
}

/// Adds the entries of the directory `dir` to `pending`.
fn list(dir: &Rc<OwnedFd>, path: &Path, pending: &mut Vec<Pending>) -> Result<(), GiveError> {
    let at = |source| GiveError {
        path: path.to_owned(),
        source,
    };
    // Read through a descriptor of its own (reading moves it), opened from this one.
    let mut entries = Dir::openat(
        dir.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(at)?;
    for entry in entries.iter() {
        let entry = entry.map_err(at)?;
        let name = entry.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        pending.push(Pending {
            parent: dir.clone(),
            name: name.to_owned(),
            path: path.join(OsStr::from_bytes(name.to_bytes())),
        });
    }
    Ok(())
}

fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// What the walk gives away, and what it does not.
    #[test]
    fn the_walk_gives_the_sandbox_and_nothing_a_link_or_a_swap_points_to() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: giving files away needs root");
            return;
        }
        let nobody = RunAs::lookup("nobody").expect("the host has nobody");
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        std::fs::write(outside.join("shadow"), "host secret").expect("write");
        std::fs::write(outside.join("passwd"), "host file").expect("write");
        let sandbox = dir.path().join("sandbox");
        std::fs::create_dir(&sandbox).expect("mkdir");
        std::fs::set_permissions(&sandbox, std::fs::Permissions::from_mode(0o750)).expect("chmod");
        let s = |name: &str| sandbox.join(name);
        std::fs::write(s("file"), "x").expect("write");
        std::fs::create_dir_all(s("a")).expect("mkdir");
        std::fs::write(s("a/shadow"), "the task's").expect("write");
        std::fs::create_dir_all(s("d/e")).expect("mkdir");
        std::fs::write(s("d/e/deep"), "x").expect("write");
        std::os::unix::fs::symlink(outside.join("passwd"), s("link")).expect("symlink");
        std::os::unix::fs::symlink(&outside, s("dirlink")).expect("symlink");
        std::fs::hard_link(outside.join("passwd"), s("second-name")).expect("link");
        nix::unistd::mkfifo(&s("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");

        // Another process of the user's swaps `a`, once listed, for a link to outside,
        // so that `a/shadow` names a host file.
        let mut seen = Vec::new();
        let mut swap = |listed: &Path| {
            let meta = std::fs::symlink_metadata(&sandbox).expect("stat");
            seen.push((listed.to_owned(), meta.uid(), meta.mode() & 0o7777));
            if listed.ends_with("a") {
                std::fs::rename(s("a"), s("a-moved")).expect("rename");
                std::os::unix::fs::symlink(&outside, s("a")).expect("symlink");
            }
        };
        give_watched(&sandbox, &nobody, &mut swap).expect("given");

        let owner = |path: &Path| std::fs::symlink_metadata(path).expect("stat").uid();
        for host in ["shadow", "passwd"] {
            assert_eq!(owner(&outside.join(host)), 0, "{host} was given away");
        }
        assert_eq!(owner(&outside), 0, "the linked directory was given away");
        for given in [
            "file",
            "a-moved",
            "a-moved/shadow",
            "d",
            "d/e",
            "d/e/deep",
            "link",
            "dirlink",
        ] {
            assert_eq!(owner(&s(given)), nobody.uid, "{given} is the user's");
        }
        // Another name of a file outside, and a FIFO, are not the task's to be given.
        assert_eq!(owner(&s("second-name")), 0);
        assert_eq!(owner(&s("fifo")), 0);
        let meta = std::fs::symlink_metadata(&sandbox).expect("stat");
        assert_eq!((meta.uid(), meta.gid()), (nobody.uid, nobody.gid));
        assert_eq!(meta.mode() & 0o7777, 0o750, "its mode is given back");
        // While the walk went on, nobody else could enter the sandbox.
        assert!(!seen.is_empty());
        for (listed, uid, mode) in seen {
            assert_eq!(
                (uid, mode),
                (0, 0o700),
                "while {} was walked",
                listed.display()
            );
        }
    }

    #[test]
    fn links_other_file_systems_shared_files_and_devices_are_not_given_through() {
        let cases = [
            (Kind::Dir, 2, true, Give::Walk),
            (Kind::Symlink, 1, true, Give::Own),
            (Kind::File, 1, true, Give::Own),
            // Another name of it may be outside the sandbox.
            (Kind::File, 2, true, Give::Leave),
            // A device node given away would give the device.
            (Kind::Other, 1, true, Give::Leave),
            // A mount inside the sandbox is not the task's.
            (Kind::Dir, 2, false, Give::Leave),
            (Kind::File, 1, false, Give::Leave),
        ];
        for (kind, links, same_device, want) in cases {
            assert_eq!(
                decide(kind, links, same_device),
                want,
                "{kind:?} {links} {same_device}"
            );
        }
    }

    #[test]
    fn sandboxes_berth_makes_are_not_listable_by_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mode = |path: &Path| std::fs::metadata(path).expect("stat").mode() & 0o7777;
        let made = dir.path().join("work/sandboxes/one");
        make(&made).expect("made");
        assert_eq!(mode(&dir.path().join("work/sandboxes")), 0o711);
        assert!(made.is_dir());
        // One made by someone else is left as it is.
        let theirs = dir.path().join("theirs/sandboxes");
        std::fs::create_dir_all(&theirs).expect("mkdir");
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        make(&theirs.join("two")).expect("made");
        assert_eq!(mode(&theirs), 0o755);
    }
}
