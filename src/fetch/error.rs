//! `FetchError`: why a URI was not fetched. The task fails with its message, so every
//! message names the URI, says what was wrong and, where the user can act, what to do.

use std::path::PathBuf;
use std::time::Duration;

/// Why a URI could not be fetched. The sandbox is left as it is, for inspection.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A URI scheme berth does not fetch (`ftp://`, `hdfs://`, `s3://`, ...).
    #[error(
        "cannot fetch {uri:?}: berth fetches only absolute local paths, file://, http:// and \
         https:// URIs, not {scheme}://; serve it over http or https on a host this agent can \
         reach, or fetch it to a local path first"
    )]
    Scheme {
        /// The URI as given.
        uri: String,
        /// Its scheme, lower-cased.
        scheme: String,
    },
    /// A `file://` URL naming another host, or no path.
    #[error(
        "cannot fetch {uri:?}: a file:// URL must name an absolute path on this host \
         (file:///path or file://localhost/path)"
    )]
    FileUrl {
        /// The URI as given.
        uri: String,
    },
    /// A relative local path: relative to what is not defined.
    #[error("cannot fetch {uri:?}: a local path must be absolute")]
    Relative {
        /// The URI as given.
        uri: String,
    },
    /// The URI's last segment is empty, so it names no file.
    #[error(
        "cannot fetch {uri:?}: it names no file (its last path segment is empty); set output_file"
    )]
    NoName {
        /// The URI as given.
        uri: String,
    },
    /// The URI's last segment is not usable as a file name (`..`, an encoded `/`).
    #[error("cannot fetch {uri:?}: {name:?} is not a usable file name; set output_file")]
    BadName {
        /// The URI as given.
        uri: String,
        /// The decoded name.
        name: String,
    },
    /// `output_file` would leave the sandbox or names no file.
    #[error(
        "cannot fetch {uri:?}: output_file {output_file:?} {why}; give a relative path inside \
         the sandbox, without `..`"
    )]
    OutputFile {
        /// The URI as given.
        uri: String,
        /// The `output_file` as given.
        output_file: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A path inside the sandbox resolves, through a symbolic link, to a place outside it.
    #[error(
        "cannot fetch {uri:?}: {path:?} leads outside the sandbox through a symbolic link; \
         choose another output_file"
    )]
    LinkEscape {
        /// The URI as given.
        uri: String,
        /// The path, relative to the sandbox.
        path: PathBuf,
    },
    /// Reading a local source failed (missing, unreadable, not a regular file).
    #[error("cannot fetch {uri:?}: cannot read {path:?}: {source}")]
    Read {
        /// The URI as given.
        uri: String,
        /// The local file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing into the sandbox failed.
    #[error("cannot fetch {uri:?}: cannot write {path:?}: {source}")]
    Write {
        /// The URI as given.
        uri: String,
        /// The file or directory being written.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The URL does not parse, or names no host.
    #[error("cannot fetch {uri:?}: {url:?} is not a valid URL: {reason}")]
    Url {
        /// The URI as given.
        uri: String,
        /// The URL (the URI, or a redirect's target).
        url: String,
        /// The parser's complaint.
        reason: String,
    },
    /// No connection, or the connection failed before a complete response.
    #[error(
        "cannot fetch {uri:?}: request to {url} failed: {reason}; check that the server is up \
         and reachable from this host"
    )]
    Http {
        /// The URI as given.
        uri: String,
        /// The URL requested (the URI, or a redirect's target).
        url: String,
        /// The cause, with its chain.
        reason: String,
    },
    /// The TLS connection to an `https://` server failed: most often, its certificate is
    /// not signed by a CA the agent trusts.
    #[error("cannot fetch {uri:?}: the TLS connection to {url} failed: {reason}; {hint}")]
    Tls {
        /// The URI as given.
        uri: String,
        /// The URL requested (the URI, or a redirect's target).
        url: String,
        /// The cause, with its chain.
        reason: String,
        /// What to do about it.
        hint: String,
    },
    /// The proxy the agent's environment names for this URL cannot be used.
    #[error(
        "cannot fetch {uri:?}: the proxy {variable}={value:?} in the agent's environment cannot \
         be used: {why}; fix or unset it, or add the host to no_proxy"
    )]
    Proxy {
        /// The URI as given.
        uri: String,
        /// The variable (`http_proxy`, `ALL_PROXY`, ...).
        variable: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// The server answered with a status other than 2xx or a followed redirect.
    #[error("cannot fetch {uri:?}: {url} answered {status}")]
    Status {
        /// The URI as given.
        uri: String,
        /// The URL that answered (the URI, or a redirect's target).
        url: String,
        /// The status, with its reason phrase.
        status: String,
    },
    /// A redirect that cannot be followed: too many, no `Location`, or not to http(s).
    #[error("cannot fetch {uri:?}: {url} redirected: {why}")]
    Redirect {
        /// The URI as given.
        uri: String,
        /// The URL that redirected.
        url: String,
        /// What is wrong with the redirect.
        why: String,
    },
    /// More bytes than `Limits::max_bytes`.
    #[error(
        "cannot fetch {uri:?}: it is larger than the limit of {limit} bytes; fetch a smaller \
         file or raise the limit"
    )]
    TooLarge {
        /// The URI as given.
        uri: String,
        /// The limit.
        limit: u64,
    },
    /// The whole fetch took longer than `Limits::timeout`.
    #[error("cannot fetch {uri:?}: it did not complete within {after:?}")]
    Timeout {
        /// The URI as given.
        uri: String,
        /// The limit.
        after: Duration,
    },
    /// No byte arrived for `Limits::stall_timeout` (Mesos's `--fetcher_stall_timeout`).
    #[error("cannot fetch {uri:?}: {url} sent nothing for {after:?}; the server stalled")]
    Stalled {
        /// The URI as given.
        uri: String,
        /// The URL being read.
        url: String,
        /// The limit.
        after: Duration,
    },
    /// The archive is corrupt, too large unpacked, or has an entry that would land
    /// outside the sandbox.
    #[error("cannot extract {uri:?}: {why}")]
    Extract {
        /// The URI as given.
        uri: String,
        /// What went wrong, naming the entry where there is one.
        why: String,
    },
}
