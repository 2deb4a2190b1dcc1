//! The fetcher: every `CommandInfo.uris` entry into the task's sandbox, before the pull.
//!
//! Local paths, `file://` and `http://` URIs. A download goes to a temporary file in the
//! sandbox and is renamed into place, so a partial file never appears under its final
//! name. `extract` unpacks `.tar`, `.tar.gz`, `.tgz` and `.zip` into the sandbox (the
//! archive is kept, as Mesos keeps it); `executable` sets mode 0755; `output_file` renames,
//! and must stay inside the sandbox. Dropping the future cancels the fetch: nothing runs
//! outside this process.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// Mesos's `CommandInfo.URI`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Uri {
    /// A local absolute path, a `file://` or an `http://` URI.
    pub value: String,
    /// Set mode 0755 on the fetched file.
    #[serde(default)]
    pub executable: Option<bool>,
    /// Unpack archives (Mesos's default: true).
    #[serde(default)]
    pub extract: Option<bool>,
    /// Accepted for compatibility; berth has no fetcher cache and always fetches.
    #[serde(default)]
    pub cache: Option<bool>,
    /// Name (relative path) in the sandbox instead of the URI's last segment.
    #[serde(default)]
    pub output_file: Option<String>,
}

/// Limits of one fetch.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole fetch of one URI.
    pub timeout: Duration,
    /// Largest file accepted.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(600),
            max_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

/// Why a URI could not be fetched. The task fails with this message; the sandbox is kept.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A scheme berth does not fetch.
    #[error("cannot fetch {0:?}: only absolute local paths, file:// and http:// URIs are supported; serve it over http or copy it to a local path")]
    Scheme(String),
    /// No file name can be derived.
    #[error("cannot fetch {0:?}: it names no file; set output_file")]
    NoName(String),
    /// `output_file` leaves the sandbox.
    #[error("output_file {0:?} must be a relative path inside the sandbox, without `..`")]
    Escapes(String),
    /// Reading or writing failed.
    #[error("cannot fetch {uri:?}: {reason}")]
    Io {
        /// The URI.
        uri: String,
        /// What failed.
        reason: String,
    },
    /// The server answered with an error.
    #[error("cannot fetch {uri:?}: the server answered {status}")]
    Status {
        /// The URI.
        uri: String,
        /// The HTTP status.
        status: u16,
    },
    /// The fetch took too long.
    #[error("cannot fetch {0:?}: it did not complete within {1:?}")]
    Timeout(String, Duration),
    /// An archive entry would land outside the sandbox.
    #[error("cannot extract {0:?}: {1}")]
    Extract(String, String),
}

/// Where a URI's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file on this machine.
    Local(PathBuf),
    /// An `http://` URL.
    Http(String),
}

/// Classifies a URI. Pure.
pub fn source(value: &str) -> Result<Source, FetchError> {
    if let Some(path) = value.strip_prefix("file://") {
        let path = Path::new(path);
        return if path.is_absolute() {
            Ok(Source::Local(path.to_owned()))
        } else {
            Err(FetchError::Scheme(value.to_owned()))
        };
    }
    if value.starts_with("http://") {
        return Ok(Source::Http(value.to_owned()));
    }
    if value.starts_with('/') {
        return Ok(Source::Local(PathBuf::from(value)));
    }
    Err(FetchError::Scheme(value.to_owned()))
}

/// Where the fetched file goes, relative to the sandbox. Pure.
pub fn destination(uri: &Uri) -> Result<PathBuf, FetchError> {
    if let Some(out) = &uri.output_file {
        let path = PathBuf::from(out);
        let confined = !out.is_empty()
            && path
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
            && path.components().any(|c| matches!(c, Component::Normal(_)));
        return if confined {
            Ok(path)
        } else {
            Err(FetchError::Escapes(out.clone()))
        };
    }
    let without_query = uri.value.split(['?', '#']).next().unwrap_or_default();
    let name = without_query.rsplit('/').next().unwrap_or_default();
    let name = percent_decode(name);
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(FetchError::NoName(uri.value.clone()));
    }
    Ok(PathBuf::from(name))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What kind of archive a name is, if `extract` applies. Pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    /// `.tar`
    Tar,
    /// `.tar.gz` or `.tgz`
    TarGz,
    /// `.zip`
    Zip,
}

/// The archive kind of a file name.
pub fn archive(name: &Path) -> Option<Archive> {
    let name = name.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Some(Archive::TarGz)
    } else if name.ends_with(".tar") {
        Some(Archive::Tar)
    } else if name.ends_with(".zip") {
        Some(Archive::Zip)
    } else {
        None
    }
}

/// Fetches every URI in order, stopping at the first failure.
pub async fn fetch_all(uris: &[Uri], sandbox: &Path, limits: Limits) -> Result<(), FetchError> {
    for uri in uris {
        fetch(uri, sandbox, limits).await?;
    }
    Ok(())
}

/// Fetches one URI into the sandbox and returns the file's path.
pub async fn fetch(uri: &Uri, sandbox: &Path, limits: Limits) -> Result<PathBuf, FetchError> {
    let source = source(&uri.value)?;
    let relative = destination(uri)?;
    let target = sandbox.join(&relative);
    let io = |e: std::io::Error| FetchError::Io {
        uri: uri.value.clone(),
        reason: e.to_string(),
    };
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(io)?;
    }
    let temp = sandbox.join(format!(".fetch-{}.partial", uuid::Uuid::new_v4()));
    let result = tokio::time::timeout(limits.timeout, copy_into(&source, &temp, uri, limits))
        .await
        .unwrap_or_else(|_| Err(FetchError::Timeout(uri.value.clone(), limits.timeout)));
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(e);
    }
    tokio::fs::rename(&temp, &target).await.map_err(io)?;
    if uri.executable.unwrap_or(false) {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
            .await
            .map_err(io)?;
    }
    if uri.extract.unwrap_or(true) {
        if let Some(kind) = archive(&relative) {
            let (file, into, value) = (target.clone(), sandbox.to_owned(), uri.value.clone());
            tokio::task::spawn_blocking(move || extract(&file, &into, kind))
                .await
                .map_err(|e| FetchError::Extract(value.clone(), e.to_string()))?
                .map_err(|reason| FetchError::Extract(uri.value.clone(), reason))?;
        }
    }
    Ok(target)
}

async fn copy_into(
    source: &Source,
    temp: &Path,
    uri: &Uri,
    limits: Limits,
) -> Result<(), FetchError> {
    let io = |e: std::io::Error| FetchError::Io {
        uri: uri.value.clone(),
        reason: e.to_string(),
    };
    match source {
        Source::Local(path) => {
            let len = tokio::fs::metadata(path).await.map_err(io)?.len();
            if len > limits.max_bytes {
                return Err(FetchError::Io {
                    uri: uri.value.clone(),
                    reason: format!("{len} bytes exceeds the limit of {}", limits.max_bytes),
                });
            }
            tokio::fs::copy(path, temp).await.map_err(io)?;
            Ok(())
        }
        Source::Http(url) => download(url, temp, uri, limits, 5).await,
    }
}

async fn download(
    url: &str,
    temp: &Path,
    uri: &Uri,
    limits: Limits,
    redirects: u8,
) -> Result<(), FetchError> {
    let fail = |reason: String| FetchError::Io {
        uri: uri.value.clone(),
        reason,
    };
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let parsed: hyper::Uri = url.parse().map_err(|e| fail(format!("invalid URL: {e}")))?;
    let response = client.get(parsed).await.map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| fail(format!("redirect {status} without a Location")))?;
        if redirects == 0 {
            return Err(fail("too many redirects".into()));
        }
        let next = if location.starts_with('/') {
            let base: hyper::Uri = url.parse().map_err(|e| fail(format!("invalid URL: {e}")))?;
            let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
            format!("http://{authority}{location}")
        } else {
            location
        };
        if !next.starts_with("http://") {
            return Err(FetchError::Scheme(next));
        }
        return Box::pin(download(&next, temp, uri, limits, redirects - 1)).await;
    }
    if !status.is_success() {
        return Err(FetchError::Status {
            uri: uri.value.clone(),
            status: status.as_u16(),
        });
    }
    let mut file = tokio::fs::File::create(temp)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut body = response.into_body();
    let mut written = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| fail(e.to_string()))?;
        if let Some(data) = frame.data_ref() {
            written += data.len() as u64;
            if written > limits.max_bytes {
                return Err(fail(format!(
                    "larger than the limit of {} bytes",
                    limits.max_bytes
                )));
            }
            file.write_all(data)
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
    }
    file.flush().await.map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// Unpacks an archive into `into`, refusing entries that would land outside it.
fn extract(file: &Path, into: &Path, kind: Archive) -> Result<(), String> {
    let open = || std::fs::File::open(file).map_err(|e| e.to_string());
    match kind {
        Archive::Tar => unpack_tar(tar::Archive::new(open()?), into),
        Archive::TarGz => unpack_tar(
            tar::Archive::new(flate2::read::GzDecoder::new(open()?)),
            into,
        ),
        Archive::Zip => {
            let mut zip = zip::ZipArchive::new(open()?).map_err(|e| e.to_string())?;
            for i in 0..zip.len() {
                let mut entry = zip.by_index(i).map_err(|e| e.to_string())?;
                let relative = entry.enclosed_name().ok_or_else(|| {
                    format!("entry {:?} would land outside the sandbox", entry.name())
                })?;
                let path = into.join(relative);
                if entry.is_dir() {
                    std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
                    continue;
                }
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
                let mut out = std::fs::File::create(&path).map_err(|e| e.to_string())?;
                std::io::copy(&mut entry, &mut out).map_err(|e| e.to_string())?;
                if let Some(mode) = entry.unix_mode() {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(
                        &path,
                        std::fs::Permissions::from_mode(mode & 0o777),
                    );
                }
            }
            Ok(())
        }
    }
}

fn unpack_tar<R: std::io::Read>(mut archive: tar::Archive<R>, into: &Path) -> Result<(), String> {
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        if path.components().any(|c| {
            matches!(
                c,
                Component::ParentDir | Component::RootDir | Component::Prefix(_)
            )
        }) {
            return Err(format!("entry {path:?} would land outside the sandbox"));
        }
        // `unpack_in` also refuses to write through symlinks that leave `into`.
        let inside = entry.unpack_in(into).map_err(|e| e.to_string())?;
        if !inside {
            return Err(format!("entry {path:?} would land outside the sandbox"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(value: &str, output_file: Option<&str>) -> Uri {
        Uri {
            value: value.into(),
            output_file: output_file.map(str::to_owned),
            ..Uri::default()
        }
    }

    #[test]
    fn sources() {
        assert_eq!(
            source("/srv/a.tgz").ok(),
            Some(Source::Local("/srv/a.tgz".into()))
        );
        assert_eq!(
            source("file:///srv/a").ok(),
            Some(Source::Local("/srv/a".into()))
        );
        assert_eq!(
            source("http://127.0.0.1:8080/x").ok(),
            Some(Source::Http("http://127.0.0.1:8080/x".into()))
        );
        for bad in [
            "https://example/x",
            "ftp://h/x",
            "relative/path",
            "file://relative",
            "s3://b/k",
            "",
        ] {
            assert!(matches!(source(bad), Err(FetchError::Scheme(_))), "{bad}");
        }
    }

    #[test]
    fn destinations() {
        let ok = [
            (uri("http://h/dir/app.tar.gz?x=1", None), "app.tar.gz"),
            (uri("/srv/my%20file", None), "my file"),
            (uri("/srv/x", Some("bin/tool")), "bin/tool"),
            (uri("/srv/x", Some("./y")), "./y"),
        ];
        for (u, want) in ok {
            assert_eq!(destination(&u).ok(), Some(PathBuf::from(want)), "{u:?}");
        }
        for out in ["../x", "/etc/passwd", "a/../../b", "", "."] {
            assert!(
                matches!(
                    destination(&uri("/srv/x", Some(out))),
                    Err(FetchError::Escapes(_))
                ),
                "{out}"
            );
        }
        for value in ["http://h/", "http://h/dir/", "/srv/..", "http://h/a%2fb"] {
            assert!(
                matches!(destination(&uri(value, None)), Err(FetchError::NoName(_))),
                "{value}"
            );
        }
    }

    #[test]
    fn archives() {
        let cases = [
            ("a.tar", Some(Archive::Tar)),
            ("a.TAR.GZ", Some(Archive::TarGz)),
            ("a.tgz", Some(Archive::TarGz)),
            ("a.zip", Some(Archive::Zip)),
            ("a.gz", None),
            ("tar", None),
        ];
        for (name, want) in cases {
            assert_eq!(archive(Path::new(name)), want, "{name}");
        }
        assert_eq!(percent_decode("%41%zz%4"), "A%zz%4");
    }
}
