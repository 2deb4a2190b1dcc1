//! The sandbox boundary and symbolic links. The agent and the executor write into the
//! sandbox on the host (fetched files, `stdout`, `stderr`), so a link inside it that leads
//! outside would redirect those writes onto the host. Archives may carry links, so every
//! path the fetcher writes through, and every link an archive leaves, is resolved here
//! against the sandbox as it is on disk.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Links followed before a path is taken to loop (Linux's own limit, `MAXSYMLINKS`).
const MAX_HOPS: u32 = 40;

/// Whether `rel`, relative to `root`, stays inside `root` when every symbolic link along
/// it is followed. Components that do not exist yet are taken literally, so this also
/// answers for a path about to be created. An absolute link target, a `..` above `root`
/// or a loop answer `false`.
pub fn stays_inside(root: &Path, rel: &Path) -> io::Result<bool> {
    enum Step {
        Up,
        Name(OsString),
    }
    fn steps(path: &Path) -> Option<Vec<Step>> {
        let mut out = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(name) => out.push(Step::Name(name.to_owned())),
                Component::ParentDir => out.push(Step::Up),
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        Some(out)
    }

    let Some(initial) = steps(rel) else {
        return Ok(false);
    };
    let mut queue: VecDeque<Step> = initial.into();
    let mut at = PathBuf::new();
    let mut hops = 0;
    while let Some(step) = queue.pop_front() {
        match step {
            Step::Up => {
                if !at.pop() {
                    return Ok(false);
                }
            }
            Step::Name(name) => {
                at.push(&name);
                let full = root.join(&at);
                let is_link = match std::fs::symlink_metadata(&full) {
                    Ok(meta) => meta.file_type().is_symlink(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                    Err(e) => return Err(e),
                };
                if is_link {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Ok(false);
                    }
                    let Some(target) = steps(&std::fs::read_link(&full)?) else {
                        return Ok(false);
                    };
                    at.pop();
                    for step in target.into_iter().rev() {
                        queue.push_front(step);
                    }
                }
            }
        }
    }
    Ok(true)
}

/// Whether a link at `link` (relative to `root`) pointing to `target` would stay inside.
pub fn link_stays_inside(root: &Path, link: &Path, target: &Path) -> io::Result<bool> {
    if target.is_absolute() {
        return Ok(false);
    }
    let dir = link.parent().unwrap_or(Path::new(""));
    stays_inside(root, &dir.join(target))
}

/// Every symbolic link under `root` that leads outside it, relative to `root`. Checked
/// after an archive is unpacked because a later entry can change where an earlier link
/// leads (`a -> b/..` is inside until `b -> .` arrives).
pub fn escaping(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(root.join(&dir))? {
            let entry = entry?;
            let rel = dir.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(rel);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(root.join(&rel))?;
                if !link_stays_inside(root, &rel, &target)? {
                    found.push(rel);
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolution_table() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        std::fs::create_dir_all(root.join("d/e"))?;
        symlink("d", root.join("to_d"))?;
        symlink(".", root.join("self"))?;
        symlink("/etc", root.join("abs"))?;
        symlink("..", root.join("up"))?;
        symlink("d/e/../..", root.join("top"))?;
        symlink("loop_b", root.join("loop_a"))?;
        symlink("loop_a", root.join("loop_b"))?;
        let cases = [
            ("", true),
            ("x", true),
            ("d/e/new/file", true),
            ("d/../x", true),
            ("..", false),
            ("d/../../x", false),
            ("to_d/e", true),
            ("to_d/..", true),
            ("to_d/../..", false),
            ("self/self/x", true),
            ("self/..", false),
            ("abs", false),
            ("abs/passwd", false),
            ("up/x", false),
            ("top", true),
            ("top/..", false),
            ("loop_a/x", false),
            ("/x", false),
        ];
        for (rel, want) in cases {
            assert_eq!(stays_inside(root, Path::new(rel))?, want, "{rel}");
        }
        Ok(())
    }

    #[test]
    fn escaping_finds_links_made_outside_by_later_ones() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub"))?;
        symlink("b/..", root.join("a"))?;
        assert!(escaping(root)?.is_empty());
        symlink(".", root.join("b"))?;
        symlink("../../x", root.join("sub/deep"))?;
        symlink("../x", root.join("sub/fine"))?;
        assert_eq!(
            escaping(root)?,
            vec![PathBuf::from("a"), PathBuf::from("sub/deep")]
        );
        Ok(())
    }
}
