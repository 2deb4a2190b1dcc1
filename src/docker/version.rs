//! Docker version strings, parsed and compared.
//!
//! Docker has printed versions as `1.8.0`, `1.13.1-rc1`, `17.06.0-ce`, `20.10.24+dfsg1` and
//! `28.2.2`; only the leading numeric components matter for the minimum-version check.

use std::fmt;

/// The oldest engine and client berth accepts: `inspect --type=container` appeared in 1.8.0.
pub const MINIMUM: Version = Version {
    major: 1,
    minor: 8,
    patch: 0,
};

/// A Docker version reduced to its numeric part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// First component (`20` in `20.10.24`).
    pub major: u32,
    /// Second component.
    pub minor: u32,
    /// Third component; 0 when absent.
    pub patch: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Version {
    /// Parses the numeric prefix of a version string such as `20.10.24+dfsg1` or `17.06.0-ce`.
    ///
    /// Returns `None` when the text does not start with at least `MAJOR.MINOR`.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let numeric_end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let mut parts = text[..numeric_end].split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            None | Some("") => 0,
            Some(p) => p.parse().ok()?,
        };
        Some(Version {
            major,
            minor,
            patch,
        })
    }
}

/// Parses the output of `docker version --format '{{.Client.Version}}|{{.Server.Version}}'`.
///
/// Returns the raw client and server strings; either may fail to parse as a [`Version`].
pub fn split_client_server(output: &str) -> Option<(&str, &str)> {
    let line = output.lines().find(|l| !l.trim().is_empty())?;
    let (client, server) = line.split_once('|')?;
    Some((client.trim(), server.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_docker_has_printed() {
        let cases = [
            ("1.8.0", Some((1, 8, 0))),
            ("1.13.1-rc1", Some((1, 13, 1))),
            ("17.06.0-ce", Some((17, 6, 0))),
            ("20.10.24+dfsg1", Some((20, 10, 24))),
            ("28.2.2", Some((28, 2, 2))),
            ("v25.0", Some((25, 0, 0))),
            (" 1.7.1\n", Some((1, 7, 1))),
            ("", None),
            ("dev", None),
            ("1", None),
            ("1.x", None),
            ("99999999999.1.1", None),
        ];
        for (text, want) in cases {
            let got = Version::parse(text).map(|v| (v.major, v.minor, v.patch));
            assert_eq!(got, want, "parsing {text:?}");
        }
    }

    #[test]
    fn compares_numerically_not_lexically() {
        let v = |s| Version::parse(s).expect("valid in test");
        assert!(v("1.10.0") > v("1.8.0"));
        assert!(v("1.7.9") < MINIMUM);
        assert!(v("1.8.0") >= MINIMUM);
        assert!(v("20.10.24") > MINIMUM);
    }

    #[test]
    fn splits_client_and_server() {
        assert_eq!(
            split_client_server("28.2.2|20.10.24+dfsg1\n"),
            Some(("28.2.2", "20.10.24+dfsg1"))
        );
        assert_eq!(split_client_server("\n28.2.2|\n"), Some(("28.2.2", "")));
        assert_eq!(split_client_server("garbage"), None);
        assert_eq!(split_client_server(""), None);
    }
}
