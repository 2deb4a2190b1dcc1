//! Gives a task's sandbox to the user it runs as (`command.user` with `--switch_user`), as
//! Mesos's agent does: the task can then write in its working directory and change what
//! was fetched for it. Done just before its executor starts, after the fetch (which the
//! agent does as root), again at each start of that step (a crash may come between).
//!
//! The sandbox is the task's to write (a container has it mounted read-write), so what is
//! in it is not trusted: a link is given itself, never what it points to, and the walk
//! neither follows one nor leaves the sandbox's file system; a file with more than one
//! name is left as it is, since another of its names may be outside the sandbox.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::run_as::RunAs;

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

/// The decision for an entry: its type, its number of names, and whether it is on the
/// sandbox's file system.
fn decide(file_type: std::fs::FileType, links: u64, same_device: bool) -> Give {
    if !same_device {
        Give::Leave
    } else if file_type.is_dir() {
        Give::Walk
    } else if file_type.is_symlink() || links <= 1 {
        Give::Own
    } else {
        Give::Leave
    }
}

/// Gives `sandbox` and what is in it to `user`.
pub fn give(sandbox: &Path, user: &RunAs) -> std::io::Result<()> {
    let device = std::fs::symlink_metadata(sandbox)?.dev();
    let mut pending: Vec<PathBuf> = vec![sandbox.to_owned()];
    while let Some(path) = pending.pop() {
        let meta: Metadata = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            // Gone since it was listed: nothing to give.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let give = decide(meta.file_type(), meta.nlink(), meta.dev() == device);
        if give == Give::Leave {
            continue;
        }
        // lchown(2): a link is given itself, never what it points to.
        std::os::unix::fs::lchown(&path, Some(user.uid), Some(user.gid))?;
        if give == Give::Walk {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_other_file_systems_and_shared_files_are_not_given_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(d.join("file"), "x").expect("write");
        std::fs::create_dir(d.join("dir")).expect("mkdir");
        std::os::unix::fs::symlink("/etc/passwd", d.join("link")).expect("symlink");
        std::fs::hard_link(d.join("file"), d.join("second-name")).expect("link");
        let kind = |name: &str| {
            std::fs::symlink_metadata(d.join(name))
                .expect("stat")
                .file_type()
        };
        let cases = [
            (kind("dir"), 2, true, Give::Walk),
            (kind("link"), 1, true, Give::Own),
            (kind("file"), 1, true, Give::Own),
            // Another name of it may be outside the sandbox.
            (kind("second-name"), 2, true, Give::Leave),
            // A mount inside the sandbox is not the task's.
            (kind("dir"), 2, false, Give::Leave),
            (kind("file"), 1, false, Give::Leave),
        ];
        for (file_type, links, same_device, want) in cases {
            assert_eq!(
                decide(file_type, links, same_device),
                want,
                "{file_type:?} {links} {same_device}"
            );
        }
    }
}
