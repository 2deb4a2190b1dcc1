//! The pure half of the fetcher: what a URI is, what it is called in the sandbox, and
//! whether it is unpacked. No I/O here, so every rule is a table test.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::{FetchError, Uri};

/// Where a URI's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file on this host: an absolute path, or a `file://` URL already percent-decoded.
    Local(PathBuf),
    /// An `http://` or `https://` URL, as given.
    Http(String),
}

/// How a fetched file is unpacked. The names follow Mesos's fetcher, which decides by the
/// file's name alone, case-sensitively, whether to unpack it; a tarball's compression is
/// then told by its content, as libarchive tells it for Mesos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    /// `.tar`
    Tar,
    /// `.tar.gz` or `.tgz`
    TarGz,
    /// `.tar.bz2` or `.tbz2`
    TarBz2,
    /// `.tar.xz` or `.txz`
    TarXz,
    /// `.zip`
    Zip,
    /// `.gz` that is not a tarball: one file, gunzipped beside the original.
    Gz,
}

/// Everything decided about one URI before any I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Where the bytes come from.
    pub source: Source,
    /// The fetched file's path relative to the sandbox, normalized (no `.` components).
    pub dest: PathBuf,
    /// Set mode 0755.
    pub executable: bool,
    /// Unpack it, and how.
    pub unpack: Option<Unpack>,
}

/// An unpack step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpack {
    /// The archive format.
    pub archive: Archive,
    /// For [`Archive::Gz`], the output's path relative to the sandbox; `None` otherwise
    /// (archives unpack into the sandbox's top directory).
    pub gunzip_to: Option<PathBuf>,
}

/// Decides everything about a URI that needs no I/O.
pub fn plan(uri: &Uri) -> Result<Plan, FetchError> {
    let source = classify(&uri.value)?;
    let dest = match &uri.output_file {
        Some(out) => confine(&uri.value, out)?,
        None => PathBuf::from(default_name(&uri.value)?),
    };
    let executable = uri.executable.unwrap_or(false);
    // Mesos's fetcher unpacks only files that are not made executable (`if executable
    // chmod; else if extract unpack`); a binary named `tool.gz` stays as fetched.
    let unpack = if executable || !uri.extract.unwrap_or(true) {
        None
    } else {
        unpack_of(&uri.value, &dest)?
    };
    Ok(Plan {
        source,
        dest,
        executable,
        unpack,
    })
}

/// Classifies a URI by its scheme.
pub fn classify(value: &str) -> Result<Source, FetchError> {
    if let Some(rest) = value.strip_prefix("file://") {
        // RFC 8089: `file:///p` or `file://localhost/p`; any other host is not this one.
        let (host, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) || path.is_empty() {
            return Err(FetchError::FileUrl {
                uri: value.to_owned(),
            });
        }
        return Ok(Source::Local(PathBuf::from(OsStr::from_bytes(
            &percent_decode(path),
        ))));
    }
    if let Some(scheme) = scheme_of(value) {
        return if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
            Ok(Source::Http(value.to_owned()))
        } else {
            Err(FetchError::Scheme {
                uri: value.to_owned(),
                scheme: scheme.to_ascii_lowercase(),
            })
        };
    }
    if value.starts_with('/') {
        return Ok(Source::Local(PathBuf::from(value)));
    }
    Err(FetchError::Relative {
        uri: value.to_owned(),
    })
}

/// The scheme of `value` if it looks like `scheme://...` (RFC 3986 scheme characters).
pub(super) fn scheme_of(value: &str) -> Option<&str> {
    let (scheme, _) = value.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// The file name a URI gets without `output_file`: its last path segment. URLs drop their
/// query and fragment and are percent-decoded; a plain path is taken literally, since `%`,
/// `?` and `#` are ordinary characters in file names.
pub fn default_name(value: &str) -> Result<String, FetchError> {
    let name = if let Some(rest) = value.strip_prefix("file://") {
        decoded_last_segment(rest)
    } else if let Some((_, rest)) = value
        .split_once("://")
        .filter(|_| scheme_of(value).is_some())
    {
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        // Without a path there is only the authority, which names no file.
        match rest.find('/') {
            Some(i) => decoded_last_segment(&rest[i..]),
            None => String::new(),
        }
    } else {
        value.rsplit('/').next().unwrap_or_default().to_owned()
    };
    if name.is_empty() {
        return Err(FetchError::NoName {
            uri: value.to_owned(),
        });
    }
    if name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(FetchError::BadName {
            uri: value.to_owned(),
            name,
        });
    }
    Ok(name)
}

fn decoded_last_segment(path: &str) -> String {
    let segment = path.rsplit('/').next().unwrap_or_default();
    String::from_utf8_lossy(&percent_decode(segment)).into_owned()
}

/// Checks that `output_file` names a path inside the sandbox and returns it normalized.
/// Nested directories are allowed (the fetcher creates them); absolute paths, `..`, empty
/// names and names ending in `/` are refused.
pub fn confine(uri: &str, output_file: &str) -> Result<PathBuf, FetchError> {
    let refuse = |why: &'static str| FetchError::OutputFile {
        uri: uri.to_owned(),
        output_file: output_file.to_owned(),
        why,
    };
    if output_file.is_empty() {
        return Err(refuse("is empty"));
    }
    if output_file.contains('\0') {
        return Err(refuse("contains a NUL byte"));
    }
    if output_file.ends_with('/') {
        return Err(refuse("names a directory"));
    }
    let mut out = PathBuf::new();
    for component in Path::new(output_file).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err(refuse("is absolute")),
            Component::ParentDir => return Err(refuse("contains `..`")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(refuse("names no file"));
    }
    Ok(out)
}

/// The unpack step for a file fetched as `dest`, when `extract` applies: the names
/// Mesos's fetcher unpacks, and nothing else (a bare `.bz2` or `.xz` stays as fetched, as
/// in Mesos, which gunzips only `.gz`).
pub fn unpack_of(uri: &str, dest: &Path) -> Result<Option<Unpack>, FetchError> {
    let name = dest.as_os_str().as_bytes();
    let ends = |suffix: &str| name.ends_with(suffix.as_bytes());
    let archive = if ends(".tar") {
        Archive::Tar
    } else if ends(".tar.gz") || ends(".tgz") {
        Archive::TarGz
    } else if ends(".tar.bz2") || ends(".tbz2") {
        Archive::TarBz2
    } else if ends(".tar.xz") || ends(".txz") {
        Archive::TarXz
    } else if ends(".zip") {
        Archive::Zip
    } else if ends(".gz") {
        // Mesos writes the gunzipped file into the sandbox's top directory, named after
        // the fetched file without `.gz`.
        let file = dest.file_name().map(OsStr::as_bytes).unwrap_or_default();
        let stem = &file[..file.len().saturating_sub(3)];
        if stem.is_empty() {
            return Err(FetchError::BadName {
                uri: uri.to_owned(),
                name: dest.to_string_lossy().into_owned(),
            });
        }
        return Ok(Some(Unpack {
            archive: Archive::Gz,
            gunzip_to: Some(PathBuf::from(OsStr::from_bytes(stem))),
        }));
    } else {
        return Ok(None);
    };
    Ok(Some(Unpack {
        archive,
        gunzip_to: None,
    }))
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |at: usize| bytes.get(at).and_then(|&b| (b as char).to_digit(16));
            if let (Some(high), Some(low)) = (hex(i + 1), hex(i + 2)) {
                // Two hex digits are at most 255, so the cast keeps every bit.
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(value: &str) -> Uri {
        Uri {
            value: value.into(),
            ..Uri::default()
        }
    }

    #[test]
    fn classify_table() {
        let local = |p: &str| Ok(Source::Local(PathBuf::from(p)));
        let http = |u: &str| Ok(Source::Http(u.to_owned()));
        let cases: &[(&str, Result<Source, &str>)] = &[
            ("/srv/a.tgz", local("/srv/a.tgz")),
            ("/srv/my%20file", local("/srv/my%20file")),
            ("file:///srv/a", local("/srv/a")),
            ("file://localhost/srv/a", local("/srv/a")),
            ("file:///srv/my%20file", local("/srv/my file")),
            ("http://127.0.0.1:8080/x", http("http://127.0.0.1:8080/x")),
            ("HTTP://h/x", http("HTTP://h/x")),
            ("https://example.com/x", http("https://example.com/x")),
            ("HTTPS://example.com/x", http("HTTPS://example.com/x")),
            ("ftps://h/x", Err("scheme")),
            ("ftp://h/x", Err("scheme")),
            ("s3://b/k", Err("scheme")),
            ("hdfs://nn/p", Err("scheme")),
            ("file://otherhost/srv/a", Err("file")),
            ("file://relative", Err("file")),
            ("relative/path", Err("relative")),
            ("./x", Err("relative")),
            ("", Err("relative")),
        ];
        for (value, want) in cases {
            let got = classify(value);
            match (want, &got) {
                (Ok(want), Ok(got)) => assert_eq!(got, want, "{value}"),
                (Err("scheme"), Err(FetchError::Scheme { .. }))
                | (Err("file"), Err(FetchError::FileUrl { .. }))
                | (Err("relative"), Err(FetchError::Relative { .. })) => {}
                _ => panic!("{value}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn refusals_say_what_to_do() {
        let ftp = classify("ftp://example.com/app.tgz")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(ftp.contains("not ftp://"), "{ftp}");
        assert!(ftp.contains("serve it over http or https"), "{ftp}");
        assert!(ftp.contains("local path"), "{ftp}");
        let relative = classify("app.tgz")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(relative.contains("absolute"), "{relative}");
    }

    #[test]
    fn default_name_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("http://h/dir/app.tar.gz", Ok("app.tar.gz")),
            ("http://h/dir/app.tar.gz?x=1&y=/z#frag", Ok("app.tar.gz")),
            ("http://h:80/my%20file.txt", Ok("my file.txt")),
            ("http://h/%E2%9C%93", Ok("\u{2713}")),
            ("file:///srv/my%20file", Ok("my file")),
            ("/srv/my%20file", Ok("my%20file")),
            ("/srv/a?b#c", Ok("a?b#c")),
            ("http://h", Err("none")),
            ("http://h?x=/y", Err("none")),
            ("http://h/", Err("none")),
            ("http://h/dir/", Err("none")),
            ("/srv/dir/", Err("none")),
            ("/srv/..", Err("bad")),
            ("/srv/.", Err("bad")),
            ("http://h/a%2fb", Err("bad")),
            ("http://h/%2e%2e", Err("bad")),
            ("http://h/a%00b", Err("bad")),
        ];
        for (value, want) in cases {
            let got = default_name(value);
            match (want, &got) {
                (Ok(want), Ok(got)) => assert_eq!(got, want, "{value}"),
                (Err("none"), Err(FetchError::NoName { .. }))
                | (Err("bad"), Err(FetchError::BadName { .. })) => {}
                _ => panic!("{value}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn confine_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("x", Ok("x")),
            ("bin/tool", Ok("bin/tool")),
            ("./y", Ok("y")),
            ("a/./b", Ok("a/b")),
            ("a//b", Ok("a/b")),
            ("../x", Err("contains `..`")),
            ("a/../../b", Err("contains `..`")),
            ("a/../b", Err("contains `..`")),
            ("/etc/x", Err("is absolute")),
            ("", Err("is empty")),
            (".", Err("names no file")),
            ("./", Err("names a directory")),
            ("dir/", Err("names a directory")),
            ("a\0b", Err("contains a NUL byte")),
        ];
        for (out, want) in cases {
            let got = confine("/srv/x", out);
            match (want, &got) {
                (Ok(want), Ok(got)) => assert_eq!(got, Path::new(want), "{out:?}"),
                (Err(why), Err(FetchError::OutputFile { why: got, .. })) => {
                    assert_eq!(got, why, "{out:?}")
                }
                _ => panic!("{out:?}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn unpack_table() {
        let some = |archive| {
            Ok(Some(Unpack {
                archive,
                gunzip_to: None,
            }))
        };
        let gunzip = |to: &str| {
            Ok(Some(Unpack {
                archive: Archive::Gz,
                gunzip_to: Some(PathBuf::from(to)),
            }))
        };
        let cases: &[(&str, Result<Option<Unpack>, &str>)] = &[
            ("a.tar", some(Archive::Tar)),
            ("a.tar.gz", some(Archive::TarGz)),
            ("a.tgz", some(Archive::TarGz)),
            ("a.tar.bz2", some(Archive::TarBz2)),
            ("a.tbz2", some(Archive::TarBz2)),
            ("a.tar.xz", some(Archive::TarXz)),
            ("a.txz", some(Archive::TarXz)),
            ("a.zip", some(Archive::Zip)),
            ("dir/a.zip", some(Archive::Zip)),
            ("a.gz", gunzip("a")),
            ("dir/data.csv.gz", gunzip("data.csv")),
            // Mesos compares case-sensitively; these stay as fetched.
            ("a.TAR.GZ", Ok(None)),
            ("a.ZIP", Ok(None)),
            ("a.TXZ", Ok(None)),
            ("tar", Ok(None)),
            ("a.txt", Ok(None)),
            // Mesos decompresses no bare file but a .gz one.
            ("a.bz2", Ok(None)),
            ("a.xz", Ok(None)),
            ("a.tar.zst", Ok(None)),
            ("a.tbz", Ok(None)),
            (".gz", Err("bad")),
        ];
        for (name, want) in cases {
            let got = unpack_of("u", Path::new(name));
            match (want, &got) {
                (Ok(want), Ok(got)) => assert_eq!(got, want, "{name}"),
                (Err("bad"), Err(FetchError::BadName { .. })) => {}
                _ => panic!("{name}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn plan_table() {
        let with = |value: &str, f: fn(&mut Uri)| {
            let mut u = uri(value);
            f(&mut u);
            u
        };
        // extract defaults to true.
        let p = plan(&uri("http://h/app.tgz"));
        assert_eq!(
            p.ok().and_then(|p| p.unpack).map(|u| u.archive),
            Some(Archive::TarGz)
        );
        // extract false keeps the archive packed.
        for value in ["http://h/app.tgz", "https://h/app.tar.xz"] {
            let p = plan(&with(value, |u| u.extract = Some(false)));
            assert_eq!(p.ok().map(|p| p.unpack), Some(None), "{value}");
        }
        // executable wins over extract, as in Mesos.
        let p = plan(&with("http://h/tool.gz", |u| u.executable = Some(true)));
        assert_eq!(p.ok().map(|p| (p.executable, p.unpack)), Some((true, None)));
        // output_file decides the name, and so the archive format.
        let p = plan(&with("http://h/download?id=7", |u| {
            u.output_file = Some("./lib/app.zip".into())
        }));
        assert_eq!(
            p.ok().map(|p| (p.dest, p.unpack.map(|u| u.archive))),
            Some((PathBuf::from("lib/app.zip"), Some(Archive::Zip)))
        );
        // cache is accepted and changes nothing.
        let p = plan(&with("/srv/x", |u| u.cache = Some(true)));
        assert_eq!(p.ok().map(|p| p.dest), Some(PathBuf::from("x")));
        // The scheme is checked before the name.
        assert!(matches!(
            plan(&uri("ftp://h/")),
            Err(FetchError::Scheme { .. })
        ));
    }

    #[test]
    fn percent_decode_table() {
        let cases: &[(&str, &[u8])] = &[
            ("%41%42", b"AB"),
            ("%zz%4", b"%zz%4"),
            ("a%", b"a%"),
            ("%e2%9C%93", "\u{2713}".as_bytes()),
            ("%ff", b"\xff"),
            ("plain", b"plain"),
        ];
        for (input, want) in cases {
            assert_eq!(percent_decode(input), *want, "{input}");
        }
    }
}
