//! How flag values are read from text: the parsers the commands' flags share.

use std::time::Duration;

pub fn duration(text: &str) -> Result<Duration, String> {
    berth::duration::parse(text).map_err(|e| e.to_string())
}

/// A duration that must not be zero: a zero bound would fail everything it bounds.
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    match duration(text)? {
        Duration::ZERO => Err("it must be more than 0secs (say 1mins)".into()),
        positive => Ok(positive),
    }
}

pub fn size(text: &str) -> Result<u64, String> {
    berth::byte_size::parse(text).map_err(|e| e.to_string())
}

/// A sandbox file's limit: a file must hold at least a byte.
pub fn file_size(text: &str) -> Result<u64, String> {
    match size(text)? {
        0 => Err("a sandbox file's size must be at least 1B".into()),
        bytes => Ok(bytes),
    }
}

pub fn metrics_address(arg: &str) -> Result<std::net::SocketAddr, String> {
    berth::metrics::parse_address(arg).map_err(|e| e.to_string())
}

pub fn since(text: &str) -> Result<std::time::SystemTime, String> {
    berth::logs::parse_since(text, std::time::SystemTime::now())
}
