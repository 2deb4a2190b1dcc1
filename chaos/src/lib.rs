//! Crash-point and fault campaigns against real berth processes.
//!
//! The harnesses here kill processes for real (SIGKILL at random moments) and let the
//! caller check what survived; they never simulate a crash by dropping values.
//!
//! - [`kill_loop`]: run a child, collect the lines it printed, SIGKILL it after a delay.
//! - [`jitter`]: a small seeded generator of delays, so that a failing campaign can be
//!   replayed from its seed.
//! - [`check`]: the verdict on a run, from evidence the agent did not write.
//! - [`crash_sweep`]: the schedule that arms every crash point in turn, and its verdict.
//! - [`schedule`]: the requests and faults a seed makes a campaign do.
//! - [`shrink`]: smaller schedules to try after a run failed, and what "failed the same
//!   way" means.
//! - [`sweep`]: kill what a SIGKILLed agent left running, among the processes that carry
//!   the run's mark.
//! - [`events`]: the run's containers' lifecycle, read from `docker events`.
//! - [`quiet`]: whether a run is still enough to gather its evidence.

pub mod check;
pub mod crash_sweep;
pub mod events;
pub mod jitter;
pub mod kill_loop;
pub mod quiet;
pub mod schedule;
pub mod shrink;
pub mod sweep;
