//! Durations as operators write them on the command line: Mesos's forms (`10secs`,
//! `6hrs`, `15mins`, `500ms`) and the short ones (`10s`, `6h`, `15m`).

use std::time::Duration;

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {0:?}: write a number and a unit, such as 10secs, 500ms, 15mins, 6hrs or 6h"
)]
pub struct DurationError(pub String);

/// Units and their length in nanoseconds. Longer spellings first is not needed: the whole
/// unit text is matched.
const UNITS: &[(&[&str], f64)] = &[
    (&["ns", "nsecs"], 1.0),
    (&["us", "usecs"], 1e3),
    (&["ms", "msecs"], 1e6),
    (&["s", "sec", "secs"], 1e9),
    (&["m", "min", "mins"], 60e9),
    (&["h", "hr", "hrs"], 3600e9),
    (&["d", "day", "days"], 86400e9),
    (&["w", "week", "weeks"], 604800e9),
];

/// Parses `10secs`, `1.5hrs`, `0s`, `6h`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError(text.to_owned());
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let nanos_per_unit = UNITS
        .iter()
        .find(|(names, _)| names.contains(&unit))
        .map(|(_, n)| *n)
        .ok_or_else(bad)?;
    let nanos = value * nanos_per_unit;
    if !nanos.is_finite() || nanos > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// Formats a duration the way Mesos prints one: the largest unit that keeps it exact.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    for (names, per) in UNITS.iter().rev() {
        let per = *per as u128;
        if nanos >= per && nanos % per == 0 {
            return format!("{}{}", nanos / per, names[names.len() - 1]);
        }
    }
    if nanos == 0 {
        "0secs".to_owned()
    } else {
        format!("{nanos}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let s = Duration::from_secs;
        let cases = [
            ("10secs", Some(s(10))),
            ("10s", Some(s(10))),
            ("0s", Some(s(0))),
            ("6hrs", Some(s(6 * 3600))),
            ("6h", Some(s(6 * 3600))),
            ("15mins", Some(s(900))),
            ("15m", Some(s(900))),
            ("500ms", Some(Duration::from_millis(500))),
            ("1.5secs", Some(Duration::from_millis(1500))),
            ("2days", Some(s(2 * 86400))),
            ("1weeks", Some(s(604800))),
            (" 3s ", Some(s(3))),
            ("10", None),
            ("secs", None),
            ("", None),
            ("-1s", None),
            ("10 secs", None),
            ("10parsecs", None),
            ("1.2.3s", None),
            ("99999999999999999999weeks", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).ok(), want, "{text:?}");
        }
    }

    #[test]
    fn formats_exactly_and_round_trips() {
        let cases = [
            (Duration::ZERO, "0secs"),
            (Duration::from_secs(10), "10secs"),
            (Duration::from_secs(6 * 3600), "6hrs"),
            (Duration::from_secs(90), "90secs"),
            (Duration::from_millis(1500), "1500msecs"),
            (Duration::from_nanos(7), "7nsecs"),
        ];
        for (d, want) in cases {
            assert_eq!(format(d), want);
            assert_eq!(parse(want), Ok(d));
        }
    }
}
