//! The fetcher, the first launch phase: every `CommandInfo.uris` entry of a task is
//! fetched into its sandbox, in order, before the image is pulled.
//!
//! What is fetched: absolute local paths, `file://` URLs, and `http://` and `https://`
//! URLs, as Mesos's fetcher fetches them with libcurl. Every other scheme (`ftp://`,
//! `hdfs://`, `s3://`) is refused with a message saying what to do instead: berth carries
//! no Hadoop or cloud clients.
//!
//! How a URL is reached, as libcurl would reach it from the agent's environment, read once
//! at start ([`Network::from_env`]): through the proxy of `http_proxy`, `https_proxy`
//! (`HTTPS_PROXY`) or `all_proxy` (`ALL_PROXY`) unless `no_proxy` (`NO_PROXY`) names the
//! host (see `proxy`); over TLS verified against the CA certificates of `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`, else the system's (see `trust`). Redirects are followed, at most 5.
//! Stalls, sizes and the whole fetch are bounded ([`Limits`]; `--fetcher_stall_timeout`).
//!
//! Where it goes: `output_file` if set (a relative path inside the sandbox; nested
//! directories are created), else the URI's last path segment (for URLs without query or
//! fragment, percent-decoded). `cache` is accepted and ignored: berth has no fetcher
//! cache, so it always fetches.
//!
//! How, so that a partial file never appears under its final name: the bytes go to a
//! hidden temporary file beside the destination; it is unpacked (if at all) from there,
//! given its mode, then renamed into place. So a file under its final name is complete,
//! and for an archive, unpacked.
//!
//! What happens to it, as Mesos's fetcher does it: `executable` sets mode 0755 and then
//! nothing is unpacked; otherwise `extract` (default true) unpacks `.tar`, `.tar.gz`,
//! `.tgz`, `.tar.bz2`, `.tbz2`, `.tar.xz`, `.txz` and `.zip` into the sandbox's top
//! directory (a tarball's compression is told by its content, as libarchive tells it) and
//! gunzips `.gz` to the top directory under the name without `.gz`. A bare `.bz2` or `.xz`
//! stays as fetched, as in Mesos. The archive itself is kept. Nothing is written outside
//! the sandbox: see `links` and `unpack` for how.
//!
//! Cancellation: the agent kills a task that is fetching by dropping the fetch future.
//! Everything runs in this process (no `curl`, `tar` or `unzip` child to leak); dropping
//! removes the temporary file, closes the connection and tells a running unpack to stop
//! at its next entry.

mod error;
mod http;
mod links;
pub mod plan;
pub mod proxy;
pub mod trust;
mod unpack;

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

pub use error::FetchError;
pub use plan::{Archive, Plan, Source, Unpack};
pub use proxy::Proxies;
pub use trust::Trust;

/// What a task names to fetch: part of its `TaskInfo`.
pub use crate::task::info::Uri;

/// Limits on fetching one URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Opening a TCP connection (never longer than `stall_timeout`).
    pub connect_timeout: Duration,
    /// Waiting for the response or for the next bytes of the body; Mesos's
    /// `--fetcher_stall_timeout`. Zero is no limit (but `timeout`'s), as in Mesos, where it
    /// turns curl's low-speed check off.
    pub stall_timeout: Duration,
    /// The whole fetch of one URI, unpacking included.
    pub timeout: Duration,
    /// Largest file fetched.
    pub max_bytes: u64,
    /// Most bytes of file content one archive may unpack to (a gzip or zip bomb stops
    /// here, not at a full disk).
    pub max_unpacked_bytes: u64,
}

impl Default for Limits {
    /// 30 s to connect, Mesos's 60 s stall timeout, 30 minutes in all, 8 GiB fetched and
    /// 32 GiB unpacked per URI.
    fn default() -> Self {
        Limits {
            connect_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(60),
            timeout: Duration::from_secs(30 * 60),
            max_bytes: 8 << 30,
            max_unpacked_bytes: 32 << 30,
        }
    }
}

impl Limits {
    /// The longest wait for bytes: `stall_timeout`, or `timeout` when that is zero.
    fn stall(&self) -> Duration {
        if self.stall_timeout.is_zero() {
            self.timeout
        } else {
            self.stall_timeout
        }
    }
}

/// What one fetch produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The fetched file under its final name (`sandbox` joined with its relative path).
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// What unpacking produced, if the file was unpacked.
    pub unpacked: Option<Unpacked>,
}

/// What unpacking one fetched file produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    /// The format.
    pub archive: Archive,
    /// Entries written (files, directories, links; 1 for a gunzipped file).
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// How fetches reach servers: the proxies and the trusted CA certificates of an
/// environment. The default has no proxy and trusts no CA.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// Which URLs go through which proxy.
    pub proxies: Proxies,
    /// Which `https://` servers are trusted.
    pub trust: Trust,
}

impl Network {
    /// From this process's environment (the agent reads it once, at start).
    pub fn from_env() -> Network {
        Network::from_vars(|name| std::env::var(name).ok())
    }

    /// From the variables `lookup` gives.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Network {
        Network {
            proxies: Proxies::from_vars(&lookup),
            trust: Trust::from_vars(&lookup),
        }
    }

    /// What the agent says at start: how URLs are reached, and the warnings about what in
    /// its environment cannot be used (the fetches that would need it fail, saying so).
    pub fn describe(&self) -> (Vec<String>, Vec<String>) {
        let (mut said, unusable) = self.proxies.describe();
        said.push(format!(
            "https:// servers are verified against {}",
            self.trust.describe()
        ));
        let mut warnings: Vec<String> = unusable
            .into_iter()
            .map(|u| {
                format!(
                    "the proxy {}={:?} cannot be used ({}): fetches that would go through it fail",
                    u.variable, u.value, u.why
                )
            })
            .collect();
        warnings.extend(
            self.trust
                .problems()
                .iter()
                .map(|p| format!("reading CA certificates: {p}")),
        );
        (said, warnings)
    }
}

/// The fetcher of an agent: its limits and network, for every launch.
#[derive(Debug, Clone, Default)]
pub struct Fetcher {
    /// The bounds of each fetch.
    pub limits: Limits,
    /// Proxies and trusted CAs.
    pub network: Network,
}

impl Fetcher {
    /// Fetches every URI into `sandbox`, one after the other in order, stopping at the
    /// first failure (Mesos fails the task then; what was fetched before stays).
    pub async fn fetch_all(&self, uris: &[Uri], sandbox: &Path) -> Result<(), FetchError> {
        let mut client = None;
        for uri in uris {
            let fetched = self.fetch_with(&mut client, uri, sandbox).await?;
            tracing::info!(
                uri = %uri.value,
                path = %fetched.path.display(),
                bytes = fetched.bytes,
                unpacked = ?fetched.unpacked,
                "fetched"
            );
        }
        Ok(())
    }

    /// Fetches one URI into `sandbox`, an existing directory. Dropping the future cancels
    /// it.
    pub async fn fetch(&self, uri: &Uri, sandbox: &Path) -> Result<Fetched, FetchError> {
        self.fetch_with(&mut None, uri, sandbox).await
    }

    /// [`Self::fetch`] with the client of the launch's earlier URIs, made at the first
    /// remote one.
    async fn fetch_with(
        &self,
        client: &mut Option<reqwest::Client>,
        uri: &Uri,
        sandbox: &Path,
    ) -> Result<Fetched, FetchError> {
        let plan = plan::plan(uri)?;
        let limits = self.limits;
        tokio::time::timeout(limits.timeout, self.run(client, &uri.value, &plan, sandbox))
            .await
            .unwrap_or_else(|_| {
                Err(FetchError::Timeout {
                    uri: uri.value.clone(),
                    after: limits.timeout,
                })
            })
    }

    fn client(
        &self,
        client: &mut Option<reqwest::Client>,
        uri: &str,
    ) -> Result<reqwest::Client, FetchError> {
        if let Some(client) = client {
            return Ok(client.clone());
        }
        let made =
            http::client(&self.network, &self.limits).map_err(|reason| FetchError::Http {
                uri: uri.to_owned(),
                url: uri.to_owned(),
                reason,
            })?;
        *client = Some(made.clone());
        Ok(made)
    }

    async fn run(
        &self,
        client: &mut Option<reqwest::Client>,
        uri: &str,
        plan: &Plan,
        sandbox: &Path,
    ) -> Result<Fetched, FetchError> {
        let limits = &self.limits;
        let write_error = |path: &Path| {
            let (uri, path) = (uri.to_owned(), path.to_owned());
            move |source| FetchError::Write { uri, path, source }
        };
        let dir_rel = plan.dest.parent().unwrap_or(Path::new("")).to_owned();
        let dir = sandbox.join(&dir_rel);
        let target = sandbox.join(&plan.dest);
        prepare(uri, sandbox, &dir_rel).await?;

        let mut pending = Pending::create(temp_path(&dir)).map_err(write_error(&dir))?;
        let file = pending.file.take().ok_or_else(|| {
            write_error(&pending.temp)(std::io::Error::other("temporary file already taken"))
        })?;
        let mut out = BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(file));
        let (bytes, mode) = match &plan.source {
            Source::Local(path) => {
                let (bytes, source_mode) =
                    copy_local(uri, path, &mut out, &pending.temp, limits).await?;
                // Mesos copies with `cp`, which keeps an executable source executable.
                let mode = if source_mode & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                };
                (bytes, mode)
            }
            Source::Http(url) => {
                let client = self.client(client, uri)?;
                let bytes = http::download(
                    &client,
                    &self.network,
                    uri,
                    url,
                    &mut out,
                    &pending.temp,
                    limits,
                )
                .await?;
                (bytes, 0o644)
            }
        };
        out.flush().await.map_err(write_error(&pending.temp))?;
        let file = out.into_inner();
        let mode = if plan.executable { 0o755 } else { mode };
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .await
            .map_err(write_error(&pending.temp))?;
        drop(file);

        let unpacked = match &plan.unpack {
            Some(step) => Some(unpack_in_background(uri, step, &pending, sandbox, limits).await?),
            None => None,
        };
        // A single rename(2), done in place so that a drop cannot separate it from the
        // guard's bookkeeping: the final name appears only for a complete fetch.
        std::fs::rename(&pending.temp, &target).map_err(write_error(&target))?;
        pending.done = true;
        Ok(Fetched {
            path: target,
            bytes,
            unpacked,
        })
    }
}

/// Checks that the destination's directory stays inside the sandbox on disk (an earlier
/// archive may have left links) and creates it.
async fn prepare(uri: &str, sandbox: &Path, dir_rel: &Path) -> Result<(), FetchError> {
    let failed = |e: tokio::task::JoinError| FetchError::Write {
        uri: uri.to_owned(),
        path: sandbox.join(dir_rel),
        source: std::io::Error::other(e.to_string()),
    };
    let (uri, sandbox, dir_rel) = (uri.to_owned(), sandbox.to_owned(), dir_rel.to_owned());
    let joined = tokio::task::spawn_blocking(move || {
        let write = |path: &Path, source| FetchError::Write {
            uri: uri.clone(),
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(&sandbox).map_err(|e| write(&sandbox, e))?;
        if !meta.is_dir() {
            return Err(write(
                &sandbox,
                std::io::Error::other("the sandbox is not a directory"),
            ));
        }
        match links::stays_inside(&sandbox, &dir_rel) {
            Ok(true) => {}
            Ok(false) => {
                return Err(FetchError::LinkEscape {
                    uri: uri.clone(),
                    path: dir_rel,
                })
            }
            Err(e) => return Err(write(&sandbox.join(&dir_rel), e)),
        }
        let dir = sandbox.join(&dir_rel);
        std::fs::create_dir_all(&dir).map_err(|e| write(&dir, e))
    })
    .await;
    joined.map_err(failed)?
}

async fn copy_local(
    uri: &str,
    path: &Path,
    out: &mut BufWriter<tokio::fs::File>,
    temp: &Path,
    limits: &Limits,
) -> Result<(u64, u32), FetchError> {
    let read_error = |source| FetchError::Read {
        uri: uri.to_owned(),
        path: path.to_owned(),
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(read_error)?;
    let meta = file.metadata().await.map_err(read_error)?;
    if !meta.is_file() {
        return Err(read_error(std::io::Error::other("not a regular file")));
    }
    if meta.len() > limits.max_bytes {
        return Err(FetchError::TooLarge {
            uri: uri.to_owned(),
            limit: limits.max_bytes,
        });
    }
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).await.map_err(read_error)?;
        if n == 0 {
            return Ok((total, meta.permissions().mode()));
        }
        total += n as u64;
        // The file may grow while it is read.
        if total > limits.max_bytes {
            return Err(FetchError::TooLarge {
                uri: uri.to_owned(),
                limit: limits.max_bytes,
            });
        }
        out.write_all(&buf[..n])
            .await
            .map_err(|source| FetchError::Write {
                uri: uri.to_owned(),
                path: temp.to_owned(),
                source,
            })?;
    }
}

async fn unpack_in_background(
    uri: &str,
    step: &Unpack,
    pending: &Pending,
    sandbox: &Path,
    limits: &Limits,
) -> Result<Unpacked, FetchError> {
    let archive = step.archive;
    let (file, root) = (pending.temp.clone(), sandbox.to_owned());
    let gunzip_to = step.gunzip_to.clone();
    let cancel = Arc::clone(&pending.cancel);
    let max_bytes = limits.max_unpacked_bytes;
    let joined = tokio::task::spawn_blocking(move || {
        let mut budget = unpack::Budget {
            max_bytes,
            cancel: &cancel,
            written: 0,
        };
        unpack::unpack(archive, &file, &root, gunzip_to.as_deref(), &mut budget)
    })
    .await;
    let extract_error = |why: String| FetchError::Extract {
        uri: uri.to_owned(),
        why,
    };
    let counts = joined
        .map_err(|e| extract_error(e.to_string()))?
        .map_err(extract_error)?;
    Ok(Unpacked {
        archive,
        entries: counts.entries,
        bytes: counts.bytes,
    })
}

/// A hidden, unique name in `dir` for a file being written.
fn temp_path(dir: &Path) -> PathBuf {
    dir.join(format!(
        "{PARTIAL_PREFIX}{}{PARTIAL_SUFFIX}",
        uuid::Uuid::new_v4()
    ))
}

const PARTIAL_PREFIX: &str = ".berth-fetch-";
const PARTIAL_SUFFIX: &str = ".part";

/// Removes, anywhere in `sandbox`, the temporary files of fetches that a crash of the
/// agent cut short (a fetch that ends or is cancelled removes its own); returns how many.
/// Links are not followed. For a launch that fetches again after a restart: until then
/// nothing of the task has run, so such a name in its sandbox is the fetcher's.
pub fn remove_partials(sandbox: &Path) -> std::io::Result<u64> {
    let mut removed = 0;
    let mut dirs = vec![sandbox.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file()
                && name.starts_with(PARTIAL_PREFIX)
                && name.ends_with(PARTIAL_SUFFIX)
            {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// The temporary file of a fetch in progress. Dropped before the fetch is done (an error,
/// the timeout, or the caller dropping the future), it removes the file and tells a
/// running unpack to stop.
struct Pending {
    temp: PathBuf,
    file: Option<std::fs::File>,
    cancel: Arc<AtomicBool>,
    done: bool,
}

impl Pending {
    /// Creates the file synchronously: one open(2) in place, so that there is never a
    /// moment when the file exists and no guard does (a `spawn_blocking` open could still
    /// create it after its future was dropped).
    fn create(temp: PathBuf) -> std::io::Result<Pending> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        Ok(Pending {
            temp,
            file: Some(file),
            cancel: Arc::new(AtomicBool::new(false)),
            done: false,
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            self.cancel.store(true, Ordering::Relaxed);
            // An in-flight write finishes on the unlinked inode; no name remains.
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_uri_reads_as_mesos_tooling_writes_it() {
        let written = [
            r#"{"value": "http://h/a.tgz", "output_file": "x/a.tgz", "extract": false, "executable": true}"#,
            r#"{"value": "http://h/a.tgz", "outputFile": "x/a.tgz", "extract": "false", "executable": "true", "cache": null}"#,
        ];
        for json in written {
            let uri: Uri = serde_json::from_str(json).expect(json);
            assert_eq!(uri.output_file.as_deref(), Some("x/a.tgz"), "{json}");
            assert_eq!(uri.extract, Some(false), "{json}");
            assert_eq!(uri.executable, Some(true), "{json}");
            assert_eq!(uri.cache, None, "{json}");
        }
        assert!(serde_json::from_str::<Uri>(r#"{"value": "x", "extract": "maybe"}"#).is_err());
    }

    use super::*;

    #[test]
    fn uri_json_is_mesos_json() -> Result<(), serde_json::Error> {
        let uri: Uri = serde_json::from_str(
            r#"{"value": "http://h/app.tgz", "executable": false, "extract": true,
                "cache": true, "output_file": "lib/app.tgz"}"#,
        )?;
        assert_eq!(
            uri,
            Uri {
                value: "http://h/app.tgz".into(),
                executable: Some(false),
                extract: Some(true),
                cache: Some(true),
                output_file: Some("lib/app.tgz".into()),
            }
        );
        let plain: Uri = serde_json::from_str(r#"{"value": "/srv/x"}"#)?;
        assert_eq!(serde_json::to_string(&plain)?, r#"{"value":"/srv/x"}"#);
        assert_eq!(
            serde_json::from_str::<Uri>(&serde_json::to_string(&uri)?)?,
            uri
        );
        Ok(())
    }

    #[test]
    fn partial_files_are_removed_anywhere_in_the_sandbox_and_nothing_else() -> std::io::Result<()> {
        let outer = tempfile::tempdir()?;
        let sandbox = outer.path().join("sandbox");
        let elsewhere = outer.path().join("elsewhere");
        std::fs::create_dir_all(sandbox.join("lib/deep"))?;
        std::fs::create_dir_all(&elsewhere)?;
        let partials = [temp_path(&sandbox), temp_path(&sandbox.join("lib/deep"))];
        for path in &partials {
            std::fs::write(path, b"partial")?;
        }
        let kept = [
            sandbox.join("app.tgz"),
            sandbox.join(".berth-fetch-notes"),
            sandbox.join("lib/x.part"),
            elsewhere.join(".berth-fetch-1.part"),
        ];
        for path in &kept {
            std::fs::write(path, b"kept")?;
        }
        std::os::unix::fs::symlink(&elsewhere, sandbox.join("lib/out"))?;
        std::fs::create_dir(sandbox.join(".berth-fetch-dir.part"))?;
        assert_eq!(remove_partials(&sandbox)?, 2);
        assert!(partials.iter().all(|p| !p.exists()));
        assert!(kept.iter().all(|p| p.exists()));
        assert!(sandbox.join(".berth-fetch-dir.part").is_dir());
        Ok(())
    }

    #[test]
    fn a_stall_timeout_of_zero_leaves_only_the_whole_timeout() {
        let limits = |stall| Limits {
            stall_timeout: Duration::from_secs(stall),
            ..Limits::default()
        };
        assert_eq!(limits(5).stall(), Duration::from_secs(5));
        assert_eq!(limits(0).stall(), Duration::from_secs(30 * 60));
    }

    #[test]
    fn dropping_a_pending_fetch_removes_its_file() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let pending = Pending::create(temp_path(dir.path()))?;
        let cancel = Arc::clone(&pending.cancel);
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
        drop(pending);
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
        assert!(cancel.load(Ordering::Relaxed));
        Ok(())
    }
}
