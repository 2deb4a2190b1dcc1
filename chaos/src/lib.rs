//! Crash-point and fault campaigns against real berth processes.
//!
//! The harnesses here kill processes for real (SIGKILL at random moments) and let the
//! caller check what survived; they never simulate a crash by dropping values.
