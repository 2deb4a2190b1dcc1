//! The `berth` binary: parses flags and dispatches to the library.

fn main() {}
