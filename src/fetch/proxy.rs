//! Which proxy a fetch goes through, decided as libcurl decides it for Mesos's fetcher,
//! from the agent's environment as it was at start. Pure: the variables come in through
//! a lookup, so that every rule is a table test.
//!
//! - An `http://` URL uses `http_proxy`, lower case only: libcurl ignores `HTTP_PROXY`,
//!   which a CGI program's `Proxy:` request header could set.
//! - An `https://` URL uses `https_proxy`, else `HTTPS_PROXY`.
//! - Either falls back to `all_proxy`, else `ALL_PROXY`. A variable that is set but empty
//!   still counts as found: it means no proxy, and nothing falls back past it.
//! - `no_proxy` (else `NO_PROXY`) lists hosts reached directly: `*` alone for every host;
//!   otherwise comma-separated entries, blanks around them ignored. A name matches itself
//!   and its subdomains (`example.com` and `.example.com` both match `www.example.com`,
//!   not `notexample.com`), case-insensitively and ignoring a trailing dot. An IP address
//!   matches only an IP entry, exactly or within a CIDR range (`10.0.0.0/8`, `::1`,
//!   `fd00::/8`); `localhost` does not match `127.0.0.1`.
//! - A proxy given without a scheme is `http://`; one without a port is on port 1080 for
//!   `http://` (libcurl's default proxy port) and 443 for `https://`. Other schemes
//!   (`socks5://`) are not supported: a fetch that would use one fails saying so.

use std::net::IpAddr;

/// The host of a URL, as the decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A name, as in the URL.
    Name(&'a str),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
}

/// How one URL is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Straight to the server.
    Direct,
    /// Through this proxy (a full URL with scheme and port).
    Proxy(String),
    /// Through a proxy berth cannot use.
    Unusable(Unusable),
}

/// A proxy variable whose value berth cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    /// The variable (`http_proxy`, `ALL_PROXY`, ...).
    pub variable: String,
    /// Its value, with a password in it replaced by `***`.
    pub value: String,
    /// What is wrong with it.
    pub why: String,
}

/// The proxy settings of an environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    http: Option<Setting>,
    https: Option<Setting>,
    no_proxy: Option<String>,
}

/// One scheme's proxy: the variable it came from and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Setting {
    variable: String,
    value: String,
}

impl Proxies {
    /// Reads the proxy variables through `lookup` (`std::env::var` in the agent).
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Proxies {
        let found = |names: &[&str]| {
            names.iter().find_map(|name| {
                lookup(name).map(|value| Setting {
                    variable: (*name).to_owned(),
                    value,
                })
            })
        };
        Proxies {
            http: found(&["http_proxy", "all_proxy", "ALL_PROXY"]),
            https: found(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]),
            no_proxy: lookup("no_proxy").or_else(|| lookup("NO_PROXY")),
        }
    }

    /// How a URL of `scheme` (`http` or `https`, lower case) on `host` is reached.
    pub fn route(&self, scheme: &str, host: Host<'_>) -> Route {
        let setting = match scheme {
            "http" => &self.http,
            "https" => &self.https,
            _ => &None,
        };
        let Some(setting) = setting else {
            return Route::Direct;
        };
        if setting.value.is_empty() || self.bypassed(host) {
            return Route::Direct;
        }
        match proxy_url(&setting.value) {
            Ok(url) => Route::Proxy(url),
            Err(why) => Route::Unusable(Unusable {
                variable: setting.variable.clone(),
                value: redacted(&setting.value),
                why,
            }),
        }
    }

    /// What the agent says at start about its proxies, one line per scheme that has one;
    /// and the settings it cannot use, to warn about.
    pub fn describe(&self) -> (Vec<String>, Vec<Unusable>) {
        let mut said = Vec::new();
        let mut unusable = Vec::new();
        for (scheme, setting) in [("http", &self.http), ("https", &self.https)] {
            let Some(setting) = setting.as_ref().filter(|s| !s.value.is_empty()) else {
                continue;
            };
            match proxy_url(&setting.value) {
                Ok(url) => said.push(format!(
                    "{scheme}:// URIs are fetched through {} ({})",
                    redacted(&url),
                    setting.variable
                )),
                Err(why) => unusable.push(Unusable {
                    variable: setting.variable.clone(),
                    value: redacted(&setting.value),
                    why,
                }),
            }
        }
        if let Some(list) = self.no_proxy.as_ref().filter(|l| !l.is_empty()) {
            if !said.is_empty() {
                said.push(format!(
                    "hosts matching no_proxy {list:?} are reached directly"
                ));
            }
        }
        (said, unusable)
    }

    fn bypassed(&self, host: Host<'_>) -> bool {
        self.no_proxy
            .as_deref()
            .is_some_and(|list| no_proxy_matches(list, host))
    }
}

/// The proxy's URL with its scheme and port made explicit, or why it cannot be used.
pub fn proxy_url(value: &str) -> Result<String, String> {
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let mut url = url::Url::parse(&with_scheme)
        .map_err(|e| format!("it is not a proxy URL ({e}); write it as http://HOST:PORT"))?;
    let default_port = match url.scheme() {
        "http" => 1080,
        "https" => 443,
        other => {
            return Err(format!(
                "berth fetches only through http:// and https:// proxies, not {other}://"
            ))
        }
    };
    if url.host_str().is_none_or(str::is_empty) {
        return Err("it names no host; write it as http://HOST:PORT".into());
    }
    if !names_port(&with_scheme) {
        url.set_port(Some(default_port))
            .map_err(|()| "it cannot take a port".to_owned())?;
    }
    // A proxy is a host and port: a path (`Url` writes `/` for none) says nothing.
    Ok(url[..url::Position::AfterPort].to_owned())
}

/// `value` with the password of its `user:password@` replaced by `***`: proxy settings
/// are logged and put in tasks' messages, where credentials have no place. Pure.
pub fn redacted(value: &str) -> String {
    let (scheme, rest) = match value.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), value),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}{user}:***@{host}{tail}"),
            None => value.to_owned(),
        },
        None => value.to_owned(),
    }
}

/// Whether a URL says its port (`Url::port` cannot tell `http://p:80` from `http://p`).
fn names_port(url: &str) -> bool {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // An IPv6 literal's colons are inside its brackets.
    let after_host = host_port
        .rsplit_once(']')
        .map_or(host_port, |(_, rest)| rest);
    after_host.contains(':')
}

/// Whether `host` is in the `no_proxy` list `list`, by libcurl's rules (module doc).
pub fn no_proxy_matches(list: &str, host: Host<'_>) -> bool {
    if list == "*" {
        return true;
    }
    let blank = |c: char| c == ' ' || c == '\t';
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches(blank);
        let end = rest
            .find(|c: char| blank(c) || c == ',')
            .unwrap_or(rest.len());
        let (token, after) = rest.split_at(end);
        if !token.is_empty() && entry_matches(token, host) {
            return true;
        }
        // Like libcurl, only a comma goes on to the next entry: `a b` is the entry `a`.
        rest = after.trim_start_matches(blank);
        if !rest.starts_with(',') {
            return false;
        }
        rest = rest.trim_start_matches(',');
    }
}

fn entry_matches(token: &str, host: Host<'_>) -> bool {
    match host {
        Host::Name(name) => {
            let name = name.strip_suffix('.').unwrap_or(name);
            let token = token.strip_suffix('.').unwrap_or(token);
            let token = token.strip_prefix('.').unwrap_or(token);
            if token.len() > name.len() || name.is_empty() {
                return false;
            }
            let (head, tail) = name.split_at(name.len() - token.len());
            tail.eq_ignore_ascii_case(token) && (head.is_empty() || head.ends_with('.'))
        }
        Host::Ip(ip) => {
            let (address, bits) = match token.split_once('/') {
                Some((address, bits)) => (address, Some(bits)),
                None => (token, None),
            };
            let Ok(network) = address.parse::<IpAddr>() else {
                return false;
            };
            let width = if ip.is_ipv4() { 32 } else { 128 };
            // libcurl reads the bits with atoi: what does not parse is 0, which, like no
            // bits at all, means the whole address.
            let bits = bits.map_or(0, leading_number);
            let bits = if bits == 0 { width } else { bits };
            in_network(ip, network, bits)
        }
    }
}

/// The number a string starts with, as C's `atoi` reads it (0 when none).
fn leading_number(text: &str) -> u32 {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return 0;
    }
    // Too many digits for any mask: no match, as an out-of-range atoi gives.
    digits.parse().unwrap_or(u32::MAX)
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u32) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn proxies(vars: &[(&str, &str)]) -> Proxies {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Proxies::from_vars(|name| vars.get(name).cloned())
    }

    fn host(text: &str) -> Host<'_> {
        match text.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(text),
        }
    }

    #[test]
    fn which_variable_decides() {
        let via = |url: &str| Route::Proxy(url.to_owned());
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Vars<'_>, &str, Route)] = &[
            (&[], "http", Route::Direct),
            (&[("http_proxy", "p:3128")], "http", via("http://p:3128")),
            (&[("http_proxy", "p:3128")], "https", Route::Direct),
            // libcurl never reads HTTP_PROXY.
            (&[("HTTP_PROXY", "p:3128")], "http", Route::Direct),
            (&[("HTTPS_PROXY", "p:3128")], "https", via("http://p:3128")),
            (
                &[("https_proxy", "http://a:1"), ("HTTPS_PROXY", "http://b:2")],
                "https",
                via("http://a:1"),
            ),
            (&[("all_proxy", "a:1")], "http", via("http://a:1")),
            (&[("ALL_PROXY", "b:2")], "https", via("http://b:2")),
            (
                &[("all_proxy", "a:1"), ("ALL_PROXY", "b:2")],
                "https",
                via("http://a:1"),
            ),
            (
                &[("http_proxy", "h:1"), ("all_proxy", "a:1")],
                "http",
                via("http://h:1"),
            ),
            // Set but empty: no proxy, and all_proxy is not consulted.
            (
                &[("http_proxy", ""), ("all_proxy", "a:1")],
                "http",
                Route::Direct,
            ),
            // A scheme's own port goes without saying.
            (&[("https_proxy", "https://p")], "https", via("https://p")),
            (&[("http_proxy", "http://p")], "http", via("http://p:1080")),
            (&[("http_proxy", "http://p:80")], "http", via("http://p")),
            (&[("http_proxy", "p")], "http", via("http://p:1080")),
            (
                &[("http_proxy", "http://user:secret@p:3128")],
                "http",
                via("http://user:secret@p:3128"),
            ),
            (
                &[("http_proxy", "http://[::1]:3128")],
                "http",
                via("http://[::1]:3128"),
            ),
            (&[("http_proxy", "[::1]")], "http", via("http://[::1]:1080")),
            (
                &[("http_proxy", "u:p@h/")],
                "http",
                via("http://u:p@h:1080"),
            ),
        ];
        for (vars, scheme, want) in cases {
            assert_eq!(
                &proxies(vars).route(scheme, Host::Name("example.com")),
                want,
                "{vars:?} {scheme}"
            );
        }
    }

    #[test]
    fn unusable_proxies_say_which_variable_and_why() {
        let cases = [
            ("all_proxy", "socks5://p:1080", "not socks5://"),
            ("http_proxy", "http://", "empty host"),
            ("http_proxy", "http://:3128", "empty host"),
            ("http_proxy", "http://p:99999", "not a proxy URL"),
        ];
        for (variable, value, why) in cases {
            match proxies(&[(variable, value)]).route("http", Host::Name("h")) {
                Route::Unusable(u) => {
                    assert_eq!((u.variable.as_str(), u.value.as_str()), (variable, value));
                    assert!(u.why.contains(why), "{value}: {}", u.why);
                }
                other => panic!("{value}: {other:?}"),
            }
        }
    }

    #[test]
    fn passwords_are_never_shown() {
        let cases = [
            ("http://u:secret@p:3128", "http://u:***@p:3128"),
            ("u:secret@p:3128/x", "u:***@p:3128/x"),
            ("socks5://u:s@e:cret@p", "socks5://u:***@p"),
            ("http://u@p:3128", "http://u@p:3128"),
            ("http://p:3128/a@b", "http://p:3128/a@b"),
            ("p:3128", "p:3128"),
        ];
        for (value, want) in cases {
            assert_eq!(redacted(value), want, "{value}");
        }
        let (said, unusable) = proxies(&[
            ("http_proxy", "http://u:secret@p:3128"),
            ("https_proxy", "socks5://u:secret@p"),
        ])
        .describe();
        assert_eq!(
            said,
            ["http:// URIs are fetched through http://u:***@p:3128 (http_proxy)"]
        );
        assert_eq!(unusable[0].value, "socks5://u:***@p");
        match proxies(&[("https_proxy", "socks5://u:secret@p")]).route("https", Host::Name("h")) {
            Route::Unusable(u) => assert_eq!(u.value, "socks5://u:***@p"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_proxy_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything.example", true),
            ("*", "10.1.2.3", true),
            ("*,x", "anything.example", false),
            ("", "example.com", false),
            ("example.com", "example.com", true),
            ("example.com", "EXAMPLE.com", true),
            ("example.com", "www.example.com", true),
            (".example.com", "www.example.com", true),
            (".example.com", "example.com", true),
            ("example.com.", "example.com", true),
            ("example.com", "example.com.", true),
            ("example.com", "notexample.com", false),
            ("www.example.com", "example.com", false),
            ("a.com, b.com ,c.com", "c.com", true),
            ("a.com,,b.com", "b.com", true),
            // Only commas separate entries, as in libcurl.
            ("a.com b.com", "b.com", false),
            ("a.com b.com", "a.com", true),
            ("localhost", "localhost", true),
            ("localhost", "127.0.0.1", false),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("127.0.0.0/8", "127.200.0.1", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.168.0.0/16", "192.168.7.7", true),
            ("0.0.0.0/0", "8.8.8.8", false),
            ("127.0.0.1/33", "127.0.0.1", false),
            ("::1", "[::1]", true),
            ("::1", "::2", false),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("127.0.0.1", "::1", false),
            ("127.0.0.1", "localhost", false),
        ];
        for (list, h, want) in cases {
            assert_eq!(no_proxy_matches(list, host(h)), *want, "{list:?} {h}");
        }
    }

    #[test]
    fn no_proxy_applies_to_both_schemes_and_upper_case_counts() {
        let p = proxies(&[
            ("http_proxy", "p:1"),
            ("https_proxy", "p:2"),
            ("NO_PROXY", "internal.example"),
        ]);
        for scheme in ["http", "https"] {
            assert_eq!(
                p.route(scheme, Host::Name("repo.internal.example")),
                Route::Direct
            );
            assert!(matches!(
                p.route(scheme, Host::Name("example.org")),
                Route::Proxy(_)
            ));
        }
        // no_proxy wins over NO_PROXY.
        let p = proxies(&[
            ("http_proxy", "p:1"),
            ("no_proxy", "a.example"),
            ("NO_PROXY", "b.example"),
        ]);
        assert_eq!(p.route("http", Host::Name("a.example")), Route::Direct);
        assert!(matches!(
            p.route("http", Host::Name("b.example")),
            Route::Proxy(_)
        ));
    }

    #[test]
    fn describe_names_each_proxy_and_what_cannot_be_used() {
        let (said, unusable) = proxies(&[
            ("http_proxy", "p:3128"),
            ("ALL_PROXY", "socks5://s"),
            ("no_proxy", "localhost"),
        ])
        .describe();
        assert_eq!(
            said,
            [
                "http:// URIs are fetched through http://p:3128 (http_proxy)",
                "hosts matching no_proxy \"localhost\" are reached directly"
            ]
        );
        assert_eq!(unusable.len(), 1);
        assert_eq!(unusable[0].variable, "ALL_PROXY");
        assert_eq!(proxies(&[]).describe(), (vec![], vec![]));
    }
}
