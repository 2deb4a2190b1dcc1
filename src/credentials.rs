//! Registry credentials for a pull whose `HOME` is the sandbox.
//!
//! Mesos documents fetching a `.dockercfg` into the sandbox. Docker clients from 1.7 on
//! read `~/.docker/config.json` instead, and current ones ignore `.dockercfg`: a legacy
//! file is therefore also written in the new form, so that the CLI the machine actually
//! has finds the credentials.
//!
//! `--docker_config` (a path or the JSON itself, in either form) is the fallback for a
//! sandbox without credentials. It is never copied into a sandbox, where the task could
//! read the agent's credentials: it lives in a private `HOME` of the agent's own.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use serde_json::{Map, Value};

/// Why the credentials in the sandbox could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The legacy file is not the JSON Docker wrote.
    #[error("the fetched .dockercfg is not valid: {0}")]
    Invalid(String),
    /// The legacy file could not be read (it is read only as a regular file, never
    /// through a link).
    #[error("cannot read the fetched .dockercfg: {0}")]
    Read(std::io::Error),
    /// The new file could not be written.
    #[error("cannot write .docker/config.json in the sandbox: {0}")]
    Write(std::io::Error),
    /// `--docker_config` is neither readable JSON nor a readable file of it.
    #[error(
        "--docker_config: {0}; give the path of a Docker config file or its JSON \
         (either {{\"auths\": {{...}}}} or the legacy .dockercfg form)"
    )]
    Flag(String),
    /// The agent's private copy of `--docker_config` could not be written.
    #[error("cannot write the --docker_config copy under {path}: {source}")]
    Fallback {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Converts legacy `.dockercfg` JSON (`{"registry": {"auth": ..., "email": ...}}`) to
/// `config.json` JSON (`{"auths": {"registry": {"auth": ...}}}`). Pure.
pub fn convert_legacy(legacy: &str) -> Result<String, CredentialsError> {
    let value: Value =
        serde_json::from_str(legacy).map_err(|e| CredentialsError::Invalid(e.to_string()))?;
    let Value::Object(registries) = value else {
        return Err(CredentialsError::Invalid("not a JSON object".into()));
    };
    let mut auths = Map::new();
    for (registry, entry) in registries {
        let auth = entry
            .get("auth")
            .and_then(Value::as_str)
            .ok_or_else(|| CredentialsError::Invalid(format!("{registry} has no auth")))?;
        auths.insert(registry, serde_json::json!({ "auth": auth }));
    }
    Ok(serde_json::json!({ "auths": auths }).to_string())
}

/// Turns Docker config JSON of either form into `config.json` JSON. Pure.
pub fn normalize(json: &str) -> Result<String, CredentialsError> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| CredentialsError::Invalid(e.to_string()))?;
    match value.get("auths") {
        Some(Value::Object(_)) => Ok(value.to_string()),
        Some(_) => Err(CredentialsError::Invalid(
            "\"auths\" is not an object".into(),
        )),
        None => convert_legacy(json),
    }
}

/// Reads `--docker_config`: JSON when it starts with `{`, otherwise the path of a file
/// holding it. Returns `config.json` JSON.
pub fn load_flag(value: &str) -> Result<String, CredentialsError> {
    let text = if value.trim_start().starts_with('{') {
        value.to_owned()
    } else {
        std::fs::read_to_string(value)
            .map_err(|e| CredentialsError::Flag(format!("cannot read {value}: {e}")))?
    };
    normalize(&text).map_err(|e| CredentialsError::Flag(e.to_string()))
}

/// Writes `config_json` as `<home>/.docker/config.json`, readable by the agent alone, and
/// returns `home` for use as a pull's `HOME`.
pub fn write_fallback_home(home: &Path, config_json: &str) -> Result<PathBuf, CredentialsError> {
    let dir = home.join(".docker");
    let path = dir.join("config.json");
    let fail = |source| CredentialsError::Fallback {
        path: path.clone(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(fail)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(fail)?;
    std::io::Write::write_all(&mut file, config_json.as_bytes()).map_err(fail)?;
    Ok(home.to_owned())
}

/// Whether `home` holds credentials a Docker CLI would read.
pub fn has_credentials(home: &Path) -> bool {
    home.join(".docker").join("config.json").exists() || home.join(".dockercfg").exists()
}

/// The most of a fetched `.dockercfg` that is read: far more than any registry list.
const LEGACY_CAP: u64 = 1 << 20;

/// Makes a fetched `.dockercfg` visible to current Docker clients. Leaves anything
/// already at `.docker/config.json` alone. `home` is a sandbox, which the task may have
/// written (or its user, once given it), and this runs as root: the legacy file is read
/// only as a regular file, and the new one is made anew in a real `.docker` directory,
/// each opened from its directory's descriptor without following a link, so that nothing
/// is read or written outside.
pub fn prepare_home(home: &Path) -> Result<(), CredentialsError> {
    // Something there already (the open below makes sure of it): the legacy file is not
    // even read.
    if std::fs::symlink_metadata(home.join(".docker").join("config.json")).is_ok() {
        return Ok(());
    }
    let legacy = home.join(".dockercfg");
    let bytes = match crate::executor::sandbox_file::read_capped(&legacy, LEGACY_CAP) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CredentialsError::Read(e)),
    };
    let text = String::from_utf8(bytes).map_err(|e| CredentialsError::Invalid(e.to_string()))?;
    let converted = convert_legacy(&text)?;
    let write = |e: nix::errno::Errno| CredentialsError::Write(e.into());
    let directory = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let home = nix::fcntl::open(home, directory, Mode::empty()).map_err(write)?;
    match nix::sys::stat::mkdirat(&home, ".docker", Mode::S_IRWXU) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(write(e)),
    }
    let docker = nix::fcntl::openat(&home, ".docker", directory, Mode::empty()).map_err(write)?;
    // `O_EXCL` never follows a link, dangling or not, and fails on anything there.
    let created = nix::fcntl::openat(
        &docker,
        "config.json",
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::S_IRUSR | Mode::S_IWUSR,
    );
    let mut file = match created {
        Ok(fd) => std::fs::File::from(fd),
        Err(nix::errno::Errno::EEXIST) => return Ok(()),
        Err(e) => return Err(write(e)),
    };
    std::io::Write::write_all(&mut file, converted.as_bytes()).map_err(CredentialsError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_the_legacy_form() {
        let got = convert_legacy(r#"{"127.0.0.1:5055": {"auth": "YmVydGg6cw==", "email": ""}}"#)
            .expect("valid");
        assert_eq!(
            got,
            r#"{"auths":{"127.0.0.1:5055":{"auth":"YmVydGg6cw=="}}}"#
        );
        for bad in ["", "[]", r#"{"r": {"email": "x"}}"#, "{"] {
            assert!(convert_legacy(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn normalizes_both_forms() {
        let modern = r#"{"auths":{"127.0.0.1:5055":{"auth":"YmVydGg6cw=="}}}"#;
        assert_eq!(normalize(modern).expect("modern"), modern);
        assert_eq!(
            normalize(r#"{"127.0.0.1:5055": {"auth": "YmVydGg6cw==", "email": ""}}"#)
                .expect("legacy"),
            modern
        );
        for bad in [r#"{"auths": 3}"#, "nope", r#"{"r": 1}"#] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_fetched_dockercfg_is_converted_and_links_are_never_followed() {
        let legacy = r#"{"127.0.0.1:5055": {"auth": "YmVydGg6cw==", "email": ""}}"#;
        let modern = r#"{"auths":{"127.0.0.1:5055":{"auth":"YmVydGg6cw=="}}}"#;
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        let sandbox = |name: &str| {
            let home = dir.path().join(name);
            std::fs::create_dir(&home).expect("mkdir");
            std::fs::write(home.join(".dockercfg"), legacy).expect("write");
            home
        };

        let home = sandbox("plain");
        prepare_home(&home).expect("converted");
        let written = home.join(".docker/config.json");
        assert_eq!(std::fs::read_to_string(written).expect("read"), modern);

        // A dangling link where the file goes, and a link where its directory goes.
        let home = sandbox("dangling");
        std::fs::create_dir(home.join(".docker")).expect("mkdir");
        std::os::unix::fs::symlink(outside.join("made"), home.join(".docker/config.json"))
            .expect("symlink");
        let _ = prepare_home(&home);
        let home = sandbox("linked-dir");
        std::os::unix::fs::symlink(&outside, home.join(".docker")).expect("symlink");
        let _ = prepare_home(&home);
        assert_eq!(
            std::fs::read_dir(&outside).expect("list").count(),
            0,
            "written outside the sandbox"
        );

        // A legacy file that is a link is not read through it.
        std::fs::write(outside.join("host-secret"), legacy).expect("write");
        let home = dir.path().join("linked-legacy");
        std::fs::create_dir(&home).expect("mkdir");
        std::os::unix::fs::symlink(outside.join("host-secret"), home.join(".dockercfg"))
            .expect("symlink");
        assert!(prepare_home(&home).is_err());
        assert!(!home.join(".docker/config.json").exists());
    }

    #[test]
    fn the_flag_takes_json_or_a_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"auths":{}}"#).expect("write");
        assert_eq!(
            load_flag(r#" {"auths":{}}"#).expect("json"),
            r#"{"auths":{}}"#
        );
        assert_eq!(
            load_flag(path.to_str().expect("utf-8")).expect("path"),
            r#"{"auths":{}}"#
        );
        let missing = load_flag("/nonexistent/config.json").expect_err("missing");
        assert!(missing
            .to_string()
            .contains("cannot read /nonexistent/config.json"));
        assert!(load_flag("{broken").is_err());
    }
}
