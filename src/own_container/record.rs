//! `<work_dir>/agent-container`: the id of the Docker container the agent last ran in,
//! kept so that `berth recover --dry-run` on the host, and an agent started later, can
//! tell that container apart and leave it alone. A stale id only protects a container
//! that no longer exists, so the file is never removed.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::mountinfo::is_full_id;

/// The file's name in the work dir.
pub const FILE: &str = "agent-container";

/// Why the id could not be recorded.
#[derive(Debug, thiserror::Error)]
#[error("cannot record the agent's own container id in {path}: {source}; the work dir must be writable by the agent (bind-mounted read-write from the host)")]
pub struct RecordError {
    /// The file (or its temporary sibling) that failed.
    pub path: PathBuf,
    /// The OS error.
    pub source: std::io::Error,
}

/// The file under `work_dir`.
pub fn path(work_dir: &Path) -> PathBuf {
    work_dir.join(FILE)
}

/// Writes `id` whole or not at all: a temporary file, synced, renamed over the file, and
/// the directory synced so that the rename itself survives a crash.
pub fn write(work_dir: &Path, id: &str) -> Result<(), RecordError> {
    let target = path(work_dir);
    // Its own name, so that two agents started at once on one work dir (each pid 1 in
    // its container) never write into one file.
    let temp = work_dir.join(format!(".{FILE}.{}", uuid::Uuid::new_v4()));
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RecordError { path, source }
    };
    let mut file = std::fs::File::create_new(&temp).map_err(failed(&temp))?;
    let written = file
        .write_all(format!("{id}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(failed(&temp))
        .and_then(|()| std::fs::rename(&temp, &target).map_err(failed(&target)));
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::File::open(work_dir)
        .and_then(|dir| dir.sync_all())
        .map_err(failed(work_dir))
}

/// The id the file holds, if it holds one.
pub fn parse(text: &str) -> Option<String> {
    let id = text.trim();
    is_full_id(id).then(|| id.to_owned())
}

/// The id recorded under `work_dir`; `None` when there is no file, or it cannot be read
/// or holds no id (said in the log: the container it named is then not protected).
pub fn read(work_dir: &Path) -> Option<String> {
    let file = path(work_dir);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            let id = parse(&text);
            if id.is_none() {
                tracing::warn!(
                    file = %file.display(),
                    "holds no container id; the agent's own container cannot be told apart by it"
                );
            }
            id
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(
                file = %file.display(),
                "cannot be read ({e}); the agent's own container cannot be told apart by it"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4e1a1947f94d76a76592af93bdf9f2134a5db9f5fa5e56e23db8997e0b695b2a";

    #[test]
    fn table_of_file_contents() {
        let cases = [
            (format!("{ID}\n"), Some(ID)),
            (ID.to_owned(), Some(ID)),
            (format!("  {ID}\r\n\n"), Some(ID)),
            (String::new(), None),
            (ID[..12].to_owned(), None),
            (format!("{ID} {ID}"), None),
            (ID.to_uppercase(), None),
            ("\u{0}\u{ff}".to_owned(), None),
        ];
        for (text, want) in cases {
            assert_eq!(parse(&text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn written_then_read_and_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read(dir.path()), None);
        write(dir.path(), ID).expect("write");
        assert_eq!(read(dir.path()).as_deref(), Some(ID));
        let other = ID.replace('4', "5");
        write(dir.path(), &other).expect("write again");
        assert_eq!(read(dir.path()).as_deref(), Some(other.as_str()));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![FILE.to_owned()], "no temporary file is left");
        std::fs::write(path(dir.path()), "garbage").expect("spoil");
        assert_eq!(read(dir.path()), None);
    }

    #[test]
    fn a_work_dir_that_is_not_there_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing");
        let e = write(&missing, ID).expect_err("no directory");
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
