//! Sizes as operators write them on the command line: Mesos's forms (`10MB`, `1234B`,
//! `2GB`, multiples of 1024 as Mesos's `Bytes` reads them), also `KiB`, `MiB`, `GiB`, a
//! bare `K`, `M`, `G`, and a bare number of bytes.

/// Why a size could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {0:?}: write a whole number and a unit, such as 10MB, 512KB or 1024B")]
pub struct ByteSizeError(pub String);

/// Units and their size in bytes, matched without regard to case.
const UNITS: &[(&[&str], u64)] = &[
    (&["", "b"], 1),
    (&["k", "kb", "kib"], 1 << 10),
    (&["m", "mb", "mib"], 1 << 20),
    (&["g", "gb", "gib"], 1 << 30),
    (&["t", "tb", "tib"], 1 << 40),
];

/// Parses `10MB`, `1KB`, `1234B`, `4096`.
pub fn parse(text: &str) -> Result<u64, ByteSizeError> {
    let bad = || ByteSizeError(text.to_owned());
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: u64 = number.parse().map_err(|_| bad())?;
    let unit = unit.to_ascii_lowercase();
    let per = UNITS
        .iter()
        .find(|(names, _)| names.contains(&unit.as_str()))
        .map(|(_, per)| *per)
        .ok_or_else(bad)?;
    value.checked_mul(per).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            ("10MB", Some(10 << 20)),
            ("10mb", Some(10 << 20)),
            ("1KB", Some(1024)),
            ("1KiB", Some(1024)),
            ("2G", Some(2 << 30)),
            ("1TB", Some(1 << 40)),
            ("1234B", Some(1234)),
            ("4096", Some(4096)),
            (" 5MB ", Some(5 << 20)),
            ("0B", Some(0)),
            ("", None),
            ("MB", None),
            ("1.5MB", None),
            ("-1MB", None),
            ("10 MB", None),
            ("10XB", None),
            ("99999999999999TB", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).ok(), want, "{text:?}");
        }
    }
}
