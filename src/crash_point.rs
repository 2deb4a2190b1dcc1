//! Named crash points on the launch and kill paths, for the crash test
//! (tests/it/crash_points.rs). With the `failpoints` feature, `FAILPOINTS="NAME=return"`
//! makes the agent abort at NAME, as a SIGKILL there would; without it, nothing is
//! compiled in.
//!
//! Every durable record has `record-<Phase>-before` and `record-<Phase>-after`; every
//! Docker action the agent itself takes has `docker-<verb>-before` and
//! `docker-<verb>-after` (`pull`, `create`, `start`, `stop`, `rm`).

/// Aborts the process here if the crash point `name` is armed.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    fail::fail_point!(name, |_| std::process::abort());
}

/// Without the `failpoints` feature there is nothing to hit.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Reads `FAILPOINTS` for the life of the returned guard (a no-op without the feature).
pub fn arm_from_env() -> impl Drop {
    #[cfg(feature = "failpoints")]
    {
        fail::FailScenario::setup()
    }
    #[cfg(not(feature = "failpoints"))]
    {
        Unarmed
    }
}

#[cfg(not(feature = "failpoints"))]
struct Unarmed;

#[cfg(not(feature = "failpoints"))]
impl Drop for Unarmed {
    fn drop(&mut self) {}
}
