//! Downloading an `http://` or `https://` URL with reqwest (hyper, and rustls for TLS):
//! redirects followed as curl's `-L` follows them (at most [`MAX_REDIRECTS`], to http://
//! and https:// only), proxies as libcurl picks them (`proxy`), a connect timeout, a
//! stall timeout on every wait for bytes, and a size limit checked both against
//! `Content-Length` and against what actually arrives. The body is written as it comes,
//! undecoded (`Content-Encoding` is not undone, as curl leaves it without `--compressed`).

use std::error::Error as StdError;
use std::path::Path;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::proxy::{self, Host, Route};
use super::{FetchError, Limits, Network};

/// Redirects followed before giving up, as curl's `--max-redirs` would be set for Mesos.
pub const MAX_REDIRECTS: usize = 5;

/// The client of one fetch: nothing is shared between launches, and no connection is
/// kept idle (a fetch is one request, or a short redirect chain).
pub fn client(network: &Network, limits: &Limits) -> Result<reqwest::Client, String> {
    let tls = network
        .trust
        .config()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let routes = network.proxies.clone();
    let checks = network.proxies.clone();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        // Unusable proxies are refused before a request is sent (`download`, and the
        // redirect policy), so answering `None` for them never goes direct in their place.
        .proxy(reqwest::Proxy::custom(move |url| {
            match routes.route(url.scheme(), host_of(url)?) {
                Route::Proxy(proxy) => Some(proxy),
                Route::Direct | Route::Unusable(_) => None,
            }
        }))
        .redirect(reqwest::redirect::Policy::custom(
            move |attempt| match redirect_refusal(attempt.previous(), attempt.url(), &checks) {
                Some(refused) => attempt.error(refused),
                None => attempt.follow(),
            },
        ))
        .referer(false)
        // A connection that cannot be made is as stalled as one that sends nothing.
        .connect_timeout(limits.connect_timeout.min(limits.stall()))
        .pool_max_idle_per_host(0)
        .user_agent(concat!("berth-fetcher/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {}", chain(&e)))
}

/// Downloads `url` into `out` (the temporary file at `temp`) and returns the byte count.
pub async fn download(
    client: &reqwest::Client,
    network: &Network,
    uri: &str,
    url: &str,
    out: &mut (impl AsyncWrite + Unpin),
    temp: &Path,
    limits: &Limits,
) -> Result<u64, FetchError> {
    let invalid = |reason: String| FetchError::Url {
        uri: uri.to_owned(),
        url: url.to_owned(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    let host = host_of(&parsed).ok_or_else(|| invalid("it names no host".into()))?;
    if let Route::Unusable(bad) = network.proxies.route(parsed.scheme(), host) {
        return Err(FetchError::Proxy {
            uri: uri.to_owned(),
            variable: bad.variable,
            value: bad.value,
            why: bad.why,
        });
    }
    let stalled = |url: &str| FetchError::Stalled {
        uri: uri.to_owned(),
        url: url.to_owned(),
        after: limits.stall_timeout,
    };
    let response = tokio::time::timeout(limits.stall(), client.get(parsed).send())
        .await
        .map_err(|_| stalled(url))?
        .map_err(|e| request_failed(uri, url, &e, network))?;
    let url = response.url().to_string();
    let status = response.status();
    if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        // A redirect reqwest did not follow has no Location it could read.
        return Err(FetchError::Redirect {
            uri: uri.to_owned(),
            url,
            why: format!("{status} without a usable Location header"),
        });
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
    if response
        .content_length()
        .is_some_and(|len| len > limits.max_bytes)
    {
        return Err(too_large());
    }
    let mut response = response;
    let mut written = 0u64;
    loop {
        let chunk = tokio::time::timeout(limits.stall(), response.chunk())
            .await
            .map_err(|_| stalled(&url))?
            .map_err(|e| request_failed(uri, &url, &e, network))?;
        let Some(data) = chunk else {
            return Ok(written);
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
}

/// Why a redirect from the last of `previous` to `next` is not followed, if it is not.
/// Pure.
fn redirect_refusal(
    previous: &[reqwest::Url],
    next: &reqwest::Url,
    proxies: &proxy::Proxies,
) -> Option<RedirectRefused> {
    let from = previous.last().map(ToString::to_string).unwrap_or_default();
    let refuse = |why: String| {
        Some(RedirectRefused {
            from: from.clone(),
            why,
        })
    };
    // `previous` holds every URL requested so far, the first one included.
    if previous.len() > MAX_REDIRECTS {
        return refuse(format!(
            "more than {MAX_REDIRECTS} redirects; fetch the final URL directly"
        ));
    }
    let scheme = next.scheme();
    if scheme != "http" && scheme != "https" {
        return refuse(format!(
            "to {next}, and berth follows redirects only to http:// and https:// URLs; serve \
             the file without redirecting to {scheme}://"
        ));
    }
    let Some(host) = host_of(next) else {
        return refuse(format!("to {next}, which names no host"));
    };
    if let Route::Unusable(bad) = proxies.route(scheme, host) {
        return refuse(format!(
            "to {next}, whose proxy {}={:?} cannot be used: {}",
            bad.variable, bad.value, bad.why
        ));
    }
    None
}

/// A redirect the policy refused: the URL that redirected, and why.
#[derive(Debug)]
struct RedirectRefused {
    from: String,
    why: String,
}

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} redirected: {}", self.from, self.why)
    }
}

impl StdError for RedirectRefused {}

fn host_of(url: &reqwest::Url) -> Option<Host<'_>> {
    match url.host()? {
        url::Host::Domain(name) => Some(Host::Name(name)),
        url::Host::Ipv4(ip) => Some(Host::Ip(ip.into())),
        url::Host::Ipv6(ip) => Some(Host::Ip(ip.into())),
    }
}

/// The `FetchError` of a request reqwest could not complete.
fn request_failed(uri: &str, url: &str, e: &reqwest::Error, network: &Network) -> FetchError {
    if let Some(refused) = find::<RedirectRefused>(e) {
        return FetchError::Redirect {
            uri: uri.to_owned(),
            url: refused.from.clone(),
            why: refused.why.clone(),
        };
    }
    let url = e.url().map_or_else(|| url.to_owned(), ToString::to_string);
    if let Some(tls) = find::<rustls::Error>(e) {
        let hint = match tls {
            rustls::Error::InvalidCertificate(_) => format!(
                "berth trusts {}; add the CA that signed the server's certificate there \
                 (SSL_CERT_FILE or SSL_CERT_DIR in the agent's environment), or serve the \
                 file over http://",
                network.trust.describe()
            ),
            _ => "check that the server speaks TLS 1.2 or 1.3 on that port".to_owned(),
        };
        return FetchError::Tls {
            uri: uri.to_owned(),
            url,
            reason: chain(e),
            hint,
        };
    }
    FetchError::Http {
        uri: uri.to_owned(),
        url,
        reason: chain(e),
    }
}

/// The first error of type `T` in `e`'s chain. An `io::Error`'s `source` skips the error
/// it wraps (rustls's errors come that way), so that one is looked at too.
fn find<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(found) = find::<T>(inner) {
                return Some(found);
            }
        }
        next = err.source();
    }
    None
}

/// An error and its causes, `: `-separated: a client's own messages ("error sending
/// request") say little without them. A cause whose text its parent already shows is
/// left out.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> reqwest::Url {
        match reqwest::Url::parse(text) {
            Ok(url) => url,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn redirects_followed_and_refused() {
        let proxies = proxy::Proxies::from_vars(|name| {
            (name == "https_proxy").then(|| "socks5://p:1080".to_owned())
        });
        let chain_of = |n: usize| -> Vec<reqwest::Url> {
            (0..n).map(|i| url(&format!("http://h/r{i}"))).collect()
        };
        let cases: &[(usize, &str, Option<&str>)] = &[
            (1, "http://h/next", None),
            (1, "http://other:8080/x", None),
            // To https, and from it back to http, as curl -L does.
            (1, "https://h/x", Some("proxy https_proxy")),
            (5, "http://h/r5", None),
            (6, "http://h/r6", Some("more than 5 redirects")),
            (1, "ftp://h/x", Some("only to http:// and https://")),
            (
                1,
                "file:///etc/passwd",
                Some("without redirecting to file://"),
            ),
        ];
        for (hops, next, want) in cases {
            let got = redirect_refusal(&chain_of(*hops), &url(next), &proxies);
            match (got, want) {
                (None, None) => {}
                (Some(refused), Some(want)) => {
                    assert!(refused.why.contains(want), "{next}: {}", refused.why);
                    assert_eq!(refused.from, format!("http://h/r{}", hops - 1));
                }
                (got, want) => panic!("{hops} {next}: want {want:?}, got {got:?}"),
            }
        }
        let none = proxy::Proxies::default();
        assert!(redirect_refusal(&chain_of(1), &url("https://h/x"), &none).is_none());
    }

    #[test]
    fn find_looks_inside_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::other(tls);
        let outer = RedirectLike(io);
        assert!(matches!(
            find::<rustls::Error>(&outer),
            Some(rustls::Error::InvalidCertificate(_))
        ));
        assert!(find::<RedirectRefused>(&outer).is_none());
        assert_eq!(
            chain(&outer),
            "outer: invalid peer certificate: UnknownIssuer"
        );
    }

    #[derive(Debug)]
    struct RedirectLike(std::io::Error);

    impl std::fmt::Display for RedirectLike {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("outer")
        }
    }

    impl StdError for RedirectLike {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }
}
