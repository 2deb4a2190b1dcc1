//! Named crash points on the launch and kill paths, for the crash test
//! (tests/it/crash_points.rs) and `berth chaos`. With the `failpoints` feature (on by
//! default, so that the shipped binary carries them), `FAILPOINTS="NAME=return"` makes
//! the agent abort at NAME, as a SIGKILL there would; unarmed, one costs about 12 ns
//! (`cargo bench --bench crash_point`). Without the feature, nothing is compiled in.
//!
//! Every durable record has `record-<Phase>-before` and `record-<Phase>-after`; every
//! Docker action the agent itself takes has `docker-<verb>-before` and
//! `docker-<verb>-after` (`pull`, `create`, `start`, `stop`, `rm`). The records only an
//! agent in a container makes (`record-ExecutorContainerStarting-*`, with
//! `--docker_mesos_image`) are not in [`POINTS`], which `berth chaos` visits with an agent
//! on the host; tests/it/in_container.rs arms them.

/// Every crash point of the agent, as `berth chaos` visits them; empty without the
/// `failpoints` feature, which is what makes them.
pub const POINTS: &[&str] = if cfg!(feature = "failpoints") {
    &[
        "record-Accepted-before",
        "record-Accepted-after",
        "record-Fetching-before",
        "record-Fetching-after",
        "record-Pulling-before",
        "record-Pulling-after",
        "docker-pull-before",
        "docker-pull-after",
        "record-ExecutorStarting-before",
        "record-ExecutorStarting-after",
        "docker-create-before",
        "docker-create-after",
        "docker-start-before",
        "docker-start-after",
        "record-Running-before",
        "record-Running-after",
        "record-Killing-before",
        "record-Killing-after",
        "docker-stop-before",
        "docker-stop-after",
        "record-Terminated-before",
        "record-Terminated-after",
        "docker-rm-before",
        "docker-rm-after",
        "record-Removed-before",
        "record-Removed-after",
    ]
} else {
    &[]
};

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
