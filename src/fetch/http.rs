//! Downloading an `http://` URL with hyper-util's client: redirects followed (at most
//! [`MAX_REDIRECTS`]), a connect timeout, a stall timeout on every wait for bytes, and a
//! size limit checked both against `Content-Length` and against what actually arrives.

use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{CONTENT_LENGTH, LOCATION, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::plan::scheme_of;
use super::{FetchError, Limits};

/// Redirects followed before giving up, as curl's `--max-redirs` would be set for Mesos.
pub const MAX_REDIRECTS: usize = 5;

/// Downloads `url` into `out` (the temporary file at `temp`) and returns the byte count.
pub async fn download(
    uri: &str,
    url: &str,
    out: &mut (impl AsyncWrite + Unpin),
    temp: &Path,
    limits: &Limits,
) -> Result<u64, FetchError> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(limits.connect_timeout));
    // No idle connections: a fetch is one request (or a short redirect chain), and nothing
    // should outlive it.
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector);
    let mut url = url.to_owned();
    for hop in 0..=MAX_REDIRECTS {
        let parsed: hyper::Uri =
            url.parse()
                .map_err(|e: hyper::http::uri::InvalidUri| FetchError::Url {
                    uri: uri.to_owned(),
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
        if parsed.host().is_none() {
            return Err(FetchError::Url {
                uri: uri.to_owned(),
                url,
                reason: "it names no host".into(),
            });
        }
        let request = Request::get(parsed.clone())
            .header(
                USER_AGENT,
                concat!("berth-fetcher/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::new())
            .map_err(|e| FetchError::Url {
                uri: uri.to_owned(),
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let stalled = |url: &str| FetchError::Stalled {
            uri: uri.to_owned(),
            url: url.to_owned(),
            after: limits.stall_timeout,
        };
        let failed = |url: &str, e: &dyn std::error::Error| FetchError::Http {
            uri: uri.to_owned(),
            url: url.to_owned(),
            reason: chain(e),
        };
        let response = tokio::time::timeout(limits.stall_timeout, client.request(request))
            .await
            .map_err(|_| stalled(&url))?
            .map_err(|e| failed(&url, &e))?;
        let status = response.status();
        if is_followed_redirect(status) {
            let redirect = |why: String| FetchError::Redirect {
                uri: uri.to_owned(),
                url: url.clone(),
                why,
            };
            if hop == MAX_REDIRECTS {
                return Err(redirect(format!(
                    "more than {MAX_REDIRECTS} redirects; fetch the final URL directly"
                )));
            }
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| redirect(format!("{status} without a Location header")))?;
            url = resolve_location(&parsed, location).map_err(redirect)?;
            continue;
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                uri: uri.to_owned(),
                url,
                status: status.to_string(),
            });
        }
        let too_large = || FetchError::TooLarge {
            uri: uri.to_owned(),
            limit: limits.max_bytes,
        };
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limits.max_bytes) {
            return Err(too_large());
        }
        let mut body = response.into_body();
        let mut written = 0u64;
        loop {
            let frame = tokio::time::timeout(limits.stall_timeout, body.frame())
                .await
                .map_err(|_| stalled(&url))?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| failed(&url, &e))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            written += data.len() as u64;
            if written > limits.max_bytes {
                return Err(too_large());
            }
            out.write_all(&data)
                .await
                .map_err(|source| FetchError::Write {
                    uri: uri.to_owned(),
                    path: temp.to_owned(),
                    source,
                })?;
        }
        return Ok(written);
    }
    // The loop returns on its last hop; this only satisfies the compiler.
    Err(FetchError::Redirect {
        uri: uri.to_owned(),
        url,
        why: format!("more than {MAX_REDIRECTS} redirects"),
    })
}

/// The statuses curl's `-L` follows with a GET. 300 and 304 are answers, not redirects.
fn is_followed_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The absolute URL a `Location` header points to, relative to the URL that sent it
/// (RFC 9110 allows relative references). Only `http://` targets are followed.
pub fn resolve_location(base: &hyper::Uri, location: &str) -> Result<String, String> {
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    if location.is_empty() {
        return Err("with an empty Location header".into());
    }
    if let Some(scheme) = scheme_of(location) {
        return if scheme.eq_ignore_ascii_case("http") {
            Ok(location.to_owned())
        } else {
            Err(format!(
                "to {location:?}, and berth follows redirects only to http:// URLs; serve the \
                 file without redirecting to {}://",
                scheme.to_ascii_lowercase()
            ))
        };
    }
    if location.starts_with("//") {
        return Ok(format!("http:{location}"));
    }
    if location.starts_with('/') {
        return Ok(format!("http://{authority}{location}"));
    }
    let path = base.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    if location.starts_with(['?', '#']) {
        return Ok(format!("http://{authority}{path}{location}"));
    }
    Ok(format!("http://{authority}{dir}{location}"))
}

/// An error and its causes, `: `-separated: hyper's own messages ("client error
/// (Connect)") say little without them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let base: hyper::Uri = match "http://h:8080/dir/file?q=1".parse() {
            Ok(base) => base,
            Err(e) => panic!("{e}"),
        };
        let cases = [
            ("http://other/x", Ok("http://other/x")),
            ("HTTP://other/x", Ok("HTTP://other/x")),
            ("//other/x", Ok("http://other/x")),
            ("/x", Ok("http://h:8080/x")),
            ("x", Ok("http://h:8080/dir/x")),
            ("../x", Ok("http://h:8080/dir/../x")),
            ("?p=2", Ok("http://h:8080/dir/file?p=2")),
            ("https://h/x", Err("https://")),
            ("ftp://h/x", Err("ftp://")),
            ("", Err("empty")),
        ];
        for (location, want) in cases {
            match (resolve_location(&base, location), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{location}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{location}: {got}"),
                (got, want) => panic!("{location}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn followed_redirects() {
        for (code, want) in [
            (301, true),
            (302, true),
            (303, true),
            (307, true),
            (308, true),
            (300, false),
            (304, false),
            (200, false),
        ] {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            assert_eq!(is_followed_redirect(status), want, "{code}");
        }
    }
}
