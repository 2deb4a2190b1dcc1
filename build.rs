//! Puts the commit berth is built from into its version, for `berth --version` and the
//! agent's first log line: `0.1.0 (abc1234)`, `0.1.0 (abc1234-dirty)` when the tracked
//! files the binary is built from ([`SOURCES`]) had changes, and the plain `0.1.0` when built outside a git checkout of its own (a
//! tarball) or where git cannot be run.

use std::path::Path;
use std::process::Command;

/// What the binary is built from: the paths whose changes make it `-dirty` and build it
/// again. Not tests/, benches/ nor docs/: a change there changes no binary.
const SOURCES: [&str; 6] = [
    "build.rs",
    "Cargo.toml",
    "Cargo.lock",
    "src",
    "state",
    "chaos",
];

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    // A tarball unpacked inside some other checkout must not take that checkout's commit.
    let ours = git(&["rev-parse", "--show-toplevel"])
        .is_some_and(|top| Path::new(&top) == Path::new(&manifest_dir));
    let commit = git(&["rev-parse", "--short", "HEAD"]).filter(|c| ours && !c.is_empty());
    let full = match commit {
        Some(commit) => {
            // Without optional locks git status does not rewrite the index, which would
            // be a change of its own.
            let mut status = vec![
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
            ];
            status.extend(SOURCES);
            let dirty = git(&status).is_some_and(|changes| !changes.is_empty());
            format!("{version} ({commit}{})", if dirty { "-dirty" } else { "" })
        }
        None => version,
    };
    println!("cargo:rustc-env=BERTH_VERSION={full}");

    // Again when the commit or the tracked sources change; naming paths turns off cargo's
    // default of running again on any change in the package.
    if ours {
        if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
            println!("cargo:rerun-if-changed={git_dir}/HEAD");
        }
        if let (Some(common), Some(branch)) = (
            git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
            git(&["symbolic-ref", "-q", "HEAD"]),
        ) {
            // A path that does not exist would make every build run this again; a ref
            // lives in its own file, in packed-refs, or both.
            for path in [
                format!("{common}/{branch}"),
                format!("{common}/packed-refs"),
            ] {
                if Path::new(&path).exists() {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
        }
    }
    for path in SOURCES {
        println!("cargo:rerun-if-changed={path}");
    }
}
