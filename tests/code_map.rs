//! docs/architecture.md's code map against the tree: every source file is named by one
//! entry (its own, or a directory's it sits in), no entry is there twice, and every entry
//! names something that exists. A newcomer who opens what the map names finds it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The paths the code map's entries name: the first backticked word of each `- ` line
/// between "## Code map" and the next heading.
fn entries() -> Vec<String> {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).expect("the doc");
    let section = doc
        .split("\n## Code map")
        .nth(1)
        .expect("a Code map section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect()
}

/// Every `.rs` file under `dir` (relative to the repository), recursively.
fn files(dir: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![root().join(dir)];
    while let Some(at) = pending.pop() {
        let Ok(read) = std::fs::read_dir(&at) else {
            continue;
        };
        for entry in read {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root()).expect("under the root");
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

/// Where the sources the map covers live.
const SOURCE_DIRS: [&str; 6] = [
    "src",
    "state/src",
    "chaos/src",
    "benches",
    "tests",
    "state/tests",
];

/// Whether `entry` names `file`: the file itself, or a directory (`src/fetch/`) it is in.
fn names(entry: &str, file: &str) -> bool {
    entry == file || (entry.ends_with('/') && file.starts_with(entry))
}

#[test]
fn every_source_file_is_on_the_code_map() {
    let entries = entries();
    assert!(
        entries.len() > 20,
        "the code map was not found: {entries:?}"
    );
    let mut missing = Vec::new();
    for dir in SOURCE_DIRS {
        for file in files(dir) {
            // The crate roots are the map itself.
            if ["src/lib.rs", "state/src/lib.rs", "chaos/src/lib.rs"].contains(&file.as_str()) {
                continue;
            }
            if !entries.iter().any(|e| names(e, &file)) {
                missing.push(file);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "files docs/architecture.md's code map does not name:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_entry_of_the_code_map_is_there_once_and_exists() {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for entry in entries() {
        *seen.entry(entry).or_default() += 1;
    }
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(e, _)| e)
        .collect();
    assert!(twice.is_empty(), "entries named twice: {twice:?}");
    let absent: Vec<&String> = seen
        .keys()
        .filter(|e| !Path::new(&root()).join(e.trim_end_matches('/')).exists())
        .collect();
    assert!(absent.is_empty(), "entries that name nothing: {absent:?}");
}

/// A file opens with what it holds and why (`//!`), so that what the map names can be
/// checked against the file itself.
#[test]
fn every_source_file_says_what_it_holds() {
    let mut silent = Vec::new();
    for dir in SOURCE_DIRS {
        for file in files(dir) {
            let text = std::fs::read_to_string(root().join(&file)).expect("readable");
            if !text.trim_start().starts_with("//!") {
                silent.push(file);
            }
        }
    }
    assert!(
        silent.is_empty(),
        "files that do not open with a `//!` comment: {silent:#?}"
    );
}
