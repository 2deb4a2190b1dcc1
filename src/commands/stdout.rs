//! What the commands print on stdout.

use super::Failure;

pub fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    emit(&format!("{}\n", serde_json::to_string_pretty(value)?));
    Ok(())
}

/// Writes to stdout. A reader that went away (`berth ps | head`) is not an error worth a
/// word: what it did not read is not wanted.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
