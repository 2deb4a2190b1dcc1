//! The agent's metrics, in the OpenMetrics text format a stock Prometheus scrapes: served
//! at `/metrics` on the API socket and, with `--metrics_address`, over TCP.
//!
//! Every event is counted where its record became durable (a task's end once `Terminated`
//! is in the store, a kill once `Killing` is, a launch once `Accepted` is), so that no
//! metric says what the store does not hold, as no view does. Refusals, fetches and pulls
//! are counted once the agent has answered or the step has ended. Counters start at zero
//! with each run of the agent, as Prometheus's `rate()` expects. Tasks by state are read
//! from the containerizer's view at each scrape. Names follow Mesos's agent metrics where
//! Mesos has the metric (`slave/tasks_finished` is `berth_slave_tasks_finished_total`);
//! docs/operations.md has the list.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use berth_state::Flush;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::docker::PullOutcome;
use crate::model::TaskState;

/// The `Content-Type` of what [`Metrics::render`] gives.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Counters by one label.
type ByLabel = Family<[(&'static str, String); 1], Counter>;

/// The states a task has not ended in, in the order of [`Tally::live`].
const LIVE: [TaskState; 4] = [
    TaskState::Staging,
    TaskState::Starting,
    TaskState::Running,
    TaskState::Killing,
];
/// The `reason` labels of refused launches (`RequestError::kind`).
pub(crate) const REFUSALS: [&str; 6] = [
    "invalid",
    "duplicate",
    "recovering",
    "store",
    "sandbox",
    "other",
];
/// The `outcome` labels of pull steps.
const PULLS: [&str; 3] = ["pulled", "present", "failed"];
/// The `reason` labels of kills: the reasons a kill is recorded with.
const KILLS: [&str; 2] = [
    KILL_ON_REQUEST,
    crate::model::reason::REASON_MAX_COMPLETION_TIME_REACHED,
];
/// The `reason` label of a kill on request, which has no Mesos reason.
const KILL_ON_REQUEST: &str = "none";

/// A kill's `reason` label: its Mesos reason, or [`KILL_ON_REQUEST`] for none. Pure.
fn kill_label(reason: &str) -> &str {
    if reason == crate::model::reason::NONE {
        KILL_ON_REQUEST
    } else {
        reason
    }
}

/// The states a task ends in, in the order of [`Tally::ended`].
const ENDED: [TaskState; 4] = [
    TaskState::Finished,
    TaskState::Failed,
    TaskState::Killed,
    TaskState::Lost,
];

/// The registry and a handle on each metric. A recording call is an atomic add, or a
/// short uncontended lock (a histogram, a labelled series); nothing waits on I/O.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Held while the gauges read at a scrape are set and encoded, so that two scrapes at
    /// once each give the tasks they counted.
    scrape: Mutex<()>,
    /// When this agent started (ms since the epoch): launch latency counts only launches
    /// it accepted.
    started_ms: u64,
    launches_accepted: Counter,
    launches_refused: ByLabel,
    /// Ends by state, in the order of [`ENDED`].
    ended: [Counter; 4],
    launch_errors: Counter,
    launch_latency: Histogram,
    fetches_succeeded: Counter,
    fetches_failed: Counter,
    pulls: ByLabel,
    pull_time: Histogram,
    kills: ByLabel,
    executors_died: Counter,
    recovery_decisions: ByLabel,
    recovery_time: Gauge<f64, std::sync::atomic::AtomicU64>,
    store_flush: Histogram,
    store_failures: Counter,
    /// Tasks not ended, by state, in the order of [`LIVE`]; set at each scrape.
    live: [Gauge; 4],
    /// Ended tasks the agent still keeps, by state; set at each scrape.
    kept: Family<[(&'static str, &'static str); 1], Gauge>,
    docker_available: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under `berth_`.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("berth");
        let launches_accepted = Counter::default();
        registry.register(
            "launches_accepted",
            "Launches accepted: their task was recorded durably (Mesos has none)",
            launches_accepted.clone(),
        );
        let launches_refused = ByLabel::default();
        registry.register(
            "launches_refused",
            "Launches refused with nothing recorded, by reason: invalid, duplicate, recovering, store, sandbox, other",
            launches_refused.clone(),
        );
        // Up to about 14 minutes: a launch waits for its pull.
        let launch_latency = Histogram::new(exponential_buckets(0.05, 2.0, 15));
        registry.register_with_unit(
            "launch_latency",
            "Time from a launch's Accepted record to its RUNNING record",
            Unit::Seconds,
            launch_latency.clone(),
        );
        let fetches_succeeded = Counter::default();
        let fetches_failed = Counter::default();
        {
            let fetcher = registry.sub_registry_with_prefix("containerizer_fetcher");
            fetcher.register(
                "task_fetches_succeeded",
                "Launches whose URIs were all fetched (Mesos containerizer/fetcher/task_fetches_succeeded; launches without URIs are not counted)",
                fetches_succeeded.clone(),
            );
            fetcher.register(
                "task_fetches_failed",
                "Launches whose URIs could not all be fetched (Mesos containerizer/fetcher/task_fetches_failed)",
                fetches_failed.clone(),
            );
        }
        let pulls = ByLabel::default();
        registry.register(
            "docker_pulls",
            "Image pull steps ended, by outcome: pulled, present (no pull was needed), failed",
            pulls.clone(),
        );
        // Up to about 14 minutes: large images take that long (the pull's deadline is 10).
        let pull_time = Histogram::new(exponential_buckets(0.1, 2.0, 14));
        registry.register_with_unit(
            "docker_pull",
            "Time of each pull that fetched an image, waits for an absent Docker included",
            Unit::Seconds,
            pull_time.clone(),
        );
        let kills = ByLabel::default();
        registry.register(
            "kills",
            "Kills recorded (KILLING), by reason: none on request, REASON_MAX_COMPLETION_TIME_REACHED",
            kills.clone(),
        );
        let executors_died = Counter::default();
        registry.register(
            "executors_died",
            "Executors that exited before their task's end was reported; the task is then decided (LOST, or its container's exit)",
            executors_died.clone(),
        );
        let recovery_decisions = ByLabel::default();
        registry.register(
            "recovery_decisions",
            "Recovery decisions by action (as `berth state history` names it): those recorded in tasks' histories, at start and while serving, and those about containers without a record (`remove orphan`, `report orphan`, `leave alone`)",
            recovery_decisions.clone(),
        );
        let store_flush = Histogram::new(exponential_buckets(0.0001, 2.0, 15));
        registry.register_with_unit(
            "store_flush",
            "Time the store's group commit took to write and sync one batch of records",
            Unit::Seconds,
            store_flush.clone(),
        );
        let store_failures = Counter::default();
        registry.register(
            "store_flush_failures",
            "Store failures (a record that could not be made durable); the agent stops right after",
            store_failures.clone(),
        );
        let kept = Family::default();
        registry.register(
            "tasks_ended",
            "Ended tasks the agent still keeps (shown by berth ps) until --gc_delay collects them, by state",
            kept.clone(),
        );
        let docker_available = Gauge::default();
        registry.register(
            "docker_available",
            "Whether the Docker engine answers the agent (0 while it cannot be reached or before it was asked)",
            docker_available.clone(),
        );
        let ended: [Counter; 4] = Default::default();
        let launch_errors = Counter::default();
        let recovery_time = Gauge::default();
        let live: [Gauge; 4] = Default::default();
        {
            let slave = registry.sub_registry_with_prefix("slave");
            for (state, counter) in ENDED.iter().zip(&ended) {
                let name = state_name(*state);
                slave.register(
                    format!("tasks_{name}"),
                    format!(
                        "Tasks whose {} end was recorded (Mesos slave/tasks_{name})",
                        name.to_uppercase()
                    ),
                    counter.clone(),
                );
            }
            slave.register(
                "container_launch_errors",
                "Tasks ended FAILED because their launch failed: fetch, pull, create or executor start, or ran out of --executor_registration_timeout (Mesos slave/container_launch_errors)",
                launch_errors.clone(),
            );
            for (state, gauge) in LIVE.iter().zip(&live) {
                let name = state_name(*state);
                slave.register(
                    format!("tasks_{name}"),
                    format!(
                        "Tasks now {} (Mesos slave/tasks_{name})",
                        name.to_uppercase()
                    ),
                    gauge.clone(),
                );
            }
            slave.register_with_unit(
                "recovery_time",
                "How long the agent's recovery took at its start (Mesos slave/recovery_time_secs); 0 until it is done",
                Unit::Seconds,
                recovery_time.clone(),
            );
        }
        // Each known label at zero from the start, so that an alert on a rate sees the
        // series before its first event.
        for (family, label, values) in [
            (&launches_refused, "reason", &REFUSALS[..]),
            (&pulls, "outcome", &PULLS[..]),
            (&kills, "reason", &KILLS[..]),
        ] {
            for value in values {
                drop(family.get_or_create(&[(label, (*value).to_owned())]));
            }
        }
        Metrics {
            registry,
            scrape: Mutex::new(()),
            started_ms: berth_state::now_ms(),
            launches_accepted,
            launches_refused,
            ended,
            launch_errors,
            launch_latency,
            fetches_succeeded,
            fetches_failed,
            pulls,
            pull_time,
            kills,
            executors_died,
            recovery_decisions,
            recovery_time,
            store_flush,
            store_failures,
            live,
            kept,
            docker_available,
        }
    }

    /// A launch's `Accepted` record is durable.
    pub fn launch_accepted(&self) {
        self.launches_accepted.inc();
    }

    /// A launch was refused; nothing was recorded.
    /// A launch was refused; `kind` is one of `REFUSALS`.
    pub fn launch_refused(&self, kind: &'static str) {
        self.launches_refused
            .get_or_create(&[("reason", kind.to_owned())])
            .inc();
    }

    /// A task's `Terminated` record is durable.
    pub fn task_ended(&self, state: TaskState, reason: &str) {
        if let Some(counter) = ENDED
            .iter()
            .position(|s| *s == state)
            .and_then(|i| self.ended.get(i))
        {
            counter.inc();
        }
        if launch_failed(state, reason) {
            self.launch_errors.inc();
        }
    }

    /// A task's RUNNING record is durable; it was accepted at `accepted_at_ms` and is
    /// running at `now_ms` (ms since the epoch). A launch accepted before this agent
    /// started (resumed after a restart) is not a sample: its latency would be the
    /// agent's downtime.
    pub fn task_running(&self, accepted_at_ms: u64, now_ms: u64) {
        if accepted_at_ms < self.started_ms {
            return;
        }
        self.launch_latency
            .observe(seconds_between(accepted_at_ms, now_ms));
    }

    /// A launch's fetch of its URIs ended.
    pub fn fetched(&self, ok: bool) {
        if ok {
            self.fetches_succeeded.inc();
        } else {
            self.fetches_failed.inc();
        }
    }

    /// A launch's pull step ended after `took`.
    pub fn pulled<E>(&self, outcome: &Result<PullOutcome, E>, took: Duration) {
        let label = match outcome {
            Ok(PullOutcome::Pulled) => {
                self.pull_time.observe(took.as_secs_f64());
                "pulled"
            }
            Ok(PullOutcome::Present) => "present",
            Err(_) => "failed",
        };
        self.pulls
            .get_or_create(&[("outcome", label.to_owned())])
            .inc();
    }

    /// A task's `Killing` record is durable.
    pub fn kill_recorded(&self, reason: &str) {
        self.kills
            .get_or_create(&[("reason", kill_label(reason).to_owned())])
            .inc();
    }

    /// An executor exited before its task's end was reported.
    pub fn executor_died(&self) {
        self.executors_died.inc();
    }

    /// A recovery decision is durable in a task's history.
    pub fn recovery_decided(&self, action: &str) {
        self.recovery_decisions
            .get_or_create(&[("action", action.to_owned())])
            .inc();
    }

    /// Recovery at the agent's start is done, after `took`.
    pub fn recovered(&self, took: Duration) {
        self.recovery_time.set(took.as_secs_f64());
    }

    /// What the store's flusher told.
    pub fn store_flushed(&self, flush: Flush) {
        match flush {
            Flush::Logged(took) => self.store_flush.observe(took.as_secs_f64()),
            Flush::Failed => {
                self.store_failures.inc();
            }
        }
    }

    /// The exposition: every metric, with the tasks by state counted from `tasks` (the
    /// state of each task the agent knows) and whether Docker answers.
    pub fn render(
        &self,
        tasks: impl IntoIterator<Item = TaskState>,
        docker_available: bool,
    ) -> Result<String, std::fmt::Error> {
        let tally = Tally::of(tasks);
        let _scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        for (gauge, n) in self.live.iter().zip(tally.live) {
            gauge.set(n);
        }
        for (state, n) in ENDED.iter().zip(tally.ended) {
            self.kept
                .get_or_create(&[("state", upper_name(*state))])
                .set(n);
        }
        self.docker_available.set(i64::from(docker_available));
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Tasks counted by state. Pure.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    /// In the order of [`LIVE`].
    live: [i64; 4],
    /// In the order of [`ENDED`].
    ended: [i64; 4],
}

impl Tally {
    fn of(tasks: impl IntoIterator<Item = TaskState>) -> Tally {
        let mut tally = Tally::default();
        for state in tasks {
            let slot = match LIVE.iter().position(|s| *s == state) {
                Some(i) => tally.live.get_mut(i),
                None => ENDED
                    .iter()
                    .position(|s| *s == state)
                    .and_then(|i| tally.ended.get_mut(i)),
            };
            if let Some(n) = slot {
                *n += 1;
            }
        }
        tally
    }
}

/// A state as Mesos's metric names spell it (`tasks_running`). Pure.
fn state_name(state: TaskState) -> String {
    format!("{state:?}").to_lowercase()
}

/// A state as the API and `berth ps` spell it (`TASK_RUNNING`). Pure.
fn upper_name(state: TaskState) -> &'static str {
    state.name()
}

/// Whether an end is a launch that failed, as Mesos's `container_launch_errors` counts
/// them: a launch its registration timeout cut short too, whose container launch Mesos
/// sees fail. Pure.
fn launch_failed(state: TaskState, reason: &str) -> bool {
    state == TaskState::Failed
        && matches!(
            reason,
            crate::model::reason::REASON_CONTAINER_LAUNCH_FAILED
                | crate::model::reason::REASON_EXECUTOR_REGISTRATION_TIMEOUT
        )
}

/// Seconds from `from_ms` to `to_ms`; 0 for a clock set back in between. Pure.
fn seconds_between(from_ms: u64, to_ms: u64) -> f64 {
    Duration::from_millis(to_ms.saturating_sub(from_ms)).as_secs_f64()
}

/// Why `--metrics_address` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--metrics_address takes IP:PORT, such as 127.0.0.1:9273 or [::1]:9273 (host names are not resolved), not {0:?}")]
pub struct AddressError(String);

/// `--metrics_address`: an IP address and a port. Pure.
pub fn parse_address(arg: &str) -> Result<SocketAddr, AddressError> {
    arg.trim().parse().map_err(|_| AddressError(arg.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_errors_are_the_ends_of_launches_that_failed() {
        use crate::model::reason::{
            REASON_CONTAINER_LAUNCH_FAILED, REASON_EXECUTOR_REGISTRATION_TIMEOUT,
        };
        let cases = [
            (TaskState::Failed, REASON_CONTAINER_LAUNCH_FAILED, true),
            // Mesos counts the launch its registration timeout cut short.
            (
                TaskState::Failed,
                REASON_EXECUTOR_REGISTRATION_TIMEOUT,
                true,
            ),
            (TaskState::Failed, "REASON_COMMAND_EXITED", false),
            (TaskState::Killed, REASON_CONTAINER_LAUNCH_FAILED, false),
        ];
        for (state, reason, want) in cases {
            assert_eq!(launch_failed(state, reason), want, "{state:?} {reason}");
        }
    }

    #[test]
    fn tasks_are_tallied_live_or_ended_by_state() {
        let tasks = [
            TaskState::Running,
            TaskState::Running,
            TaskState::Staging,
            TaskState::Killing,
            TaskState::Finished,
            TaskState::Lost,
            TaskState::Lost,
        ];
        assert_eq!(
            Tally::of(tasks),
            Tally {
                live: [1, 0, 2, 1],
                ended: [1, 0, 0, 2],
            }
        );
        assert_eq!(Tally::of([]), Tally::default());
    }

    #[test]
    fn state_names_are_mesos_and_api_spellings() {
        let cases = [
            (TaskState::Staging, "staging", "TASK_STAGING"),
            (TaskState::Starting, "starting", "TASK_STARTING"),
            (TaskState::Running, "running", "TASK_RUNNING"),
            (TaskState::Killing, "killing", "TASK_KILLING"),
            (TaskState::Finished, "finished", "TASK_FINISHED"),
            (TaskState::Failed, "failed", "TASK_FAILED"),
            (TaskState::Killed, "killed", "TASK_KILLED"),
            (TaskState::Lost, "lost", "TASK_LOST"),
        ];
        for (state, lower, upper) in cases {
            assert_eq!(state_name(state), lower);
            assert_eq!(upper_name(state), upper);
            // The API's own spelling.
            assert_eq!(
                serde_json::to_value(state).expect("serialize"),
                serde_json::json!(upper)
            );
        }
    }

    #[test]
    fn only_a_failed_launch_is_a_launch_error() {
        use crate::model::reason::REASON_CONTAINER_LAUNCH_FAILED;
        let cases = [
            (TaskState::Failed, REASON_CONTAINER_LAUNCH_FAILED, true),
            (TaskState::Failed, "REASON_COMMAND_EXECUTOR_FAILED", false),
            (TaskState::Killed, "REASON_TASK_KILLED_DURING_LAUNCH", false),
            (TaskState::Lost, REASON_CONTAINER_LAUNCH_FAILED, false),
        ];
        for (state, reason, want) in cases {
            assert_eq!(launch_failed(state, reason), want, "{state:?} {reason}");
        }
    }

    #[test]
    fn latency_never_goes_negative() {
        assert_eq!(seconds_between(1_000, 3_500), 2.5);
        assert_eq!(seconds_between(3_500, 1_000), 0.0);
    }

    #[test]
    fn the_metrics_address_is_an_ip_and_a_port() {
        let ok = [
            ("127.0.0.1:9273", "127.0.0.1:9273"),
            (" 0.0.0.0:80 ", "0.0.0.0:80"),
            ("[::1]:9273", "[::1]:9273"),
            ("127.0.0.1:0", "127.0.0.1:0"),
        ];
        for (arg, want) in ok {
            assert_eq!(
                parse_address(arg).map(|a| a.to_string()),
                Ok(want.to_owned()),
                "{arg}"
            );
        }
        for bad in [
            "localhost:9273",
            "127.0.0.1",
            ":9273",
            "127.0.0.1:99999",
            "",
        ] {
            let e = parse_address(bad).expect_err(bad);
            assert!(e.to_string().contains("IP:PORT"), "{e}");
        }
    }

    /// The exposition, parsed back by a Prometheus text parser.
    fn scrape(metrics: &Metrics, tasks: &[TaskState]) -> prometheus_parse::Scrape {
        let text = metrics.render(tasks.iter().copied(), true).expect("render");
        assert!(text.ends_with("# EOF\n"), "{text}");
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parse")
    }

    fn value(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {name} {label:?} in {:?}", scrape.samples));
        match &sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{name} is {other:?}"),
        }
    }

    #[test]
    fn what_was_recorded_is_what_a_scrape_reads() {
        let metrics = Metrics::new();
        let empty = scrape(&metrics, &[]);
        for name in [
            "berth_launches_accepted_total",
            "berth_slave_tasks_finished_total",
            "berth_slave_tasks_failed_total",
            "berth_slave_tasks_killed_total",
            "berth_slave_tasks_lost_total",
            "berth_slave_container_launch_errors_total",
            "berth_containerizer_fetcher_task_fetches_succeeded_total",
            "berth_containerizer_fetcher_task_fetches_failed_total",
            "berth_executors_died_total",
            "berth_store_flush_failures_total",
            "berth_slave_tasks_staging",
            "berth_slave_tasks_starting",
            "berth_slave_tasks_running",
            "berth_slave_tasks_killing",
            "berth_slave_recovery_time_seconds",
            "berth_launch_latency_seconds_count",
            "berth_docker_pull_seconds_count",
            "berth_store_flush_seconds_count",
        ] {
            assert_eq!(value(&empty, name, None), 0.0, "{name}");
        }

        metrics.launch_accepted();
        metrics.launch_accepted();
        metrics.launch_refused("recovering");
        metrics.task_ended(TaskState::Finished, "REASON_COMMAND_EXECUTOR_FAILED");
        metrics.task_ended(
            TaskState::Failed,
            crate::model::reason::REASON_CONTAINER_LAUNCH_FAILED,
        );
        let now = berth_state::now_ms();
        metrics.task_running(now, now + 300);
        // Accepted by an agent before this one: not a sample.
        metrics.task_running(1_000, 1_300);
        metrics.pulled::<()>(&Ok(PullOutcome::Pulled), Duration::from_millis(700));
        metrics.pulled(&Err(()), Duration::from_millis(5));
        metrics.kill_recorded(crate::model::reason::NONE);
        metrics.recovery_decided("mark lost");
        metrics.recovered(Duration::from_millis(1_500));
        metrics.store_flushed(Flush::Logged(Duration::from_micros(300)));
        metrics.store_flushed(Flush::Failed);
        metrics.fetched(false);
        metrics.executor_died();
        let tasks = [TaskState::Running, TaskState::Running, TaskState::Lost];
        let got = scrape(&metrics, &tasks);
        let cases = [
            ("berth_launches_accepted_total", None, 2.0),
            (
                "berth_launches_refused_total",
                Some(("reason", "recovering")),
                1.0,
            ),
            ("berth_slave_tasks_finished_total", None, 1.0),
            ("berth_slave_tasks_failed_total", None, 1.0),
            ("berth_slave_container_launch_errors_total", None, 1.0),
            ("berth_slave_tasks_killed_total", None, 0.0),
            (
                "berth_launches_refused_total",
                Some(("reason", "duplicate")),
                0.0,
            ),
            (
                "berth_docker_pulls_total",
                Some(("outcome", "present")),
                0.0,
            ),
            (
                "berth_kills_total",
                Some(("reason", "REASON_MAX_COMPLETION_TIME_REACHED")),
                0.0,
            ),
            ("berth_launch_latency_seconds_count", None, 1.0),
            ("berth_launch_latency_seconds_sum", None, 0.3),
            ("berth_docker_pulls_total", Some(("outcome", "pulled")), 1.0),
            ("berth_docker_pulls_total", Some(("outcome", "failed")), 1.0),
            ("berth_docker_pull_seconds_count", None, 1.0),
            ("berth_kills_total", Some(("reason", "none")), 1.0),
            (
                "berth_recovery_decisions_total",
                Some(("action", "mark lost")),
                1.0,
            ),
            ("berth_slave_recovery_time_seconds", None, 1.5),
            ("berth_store_flush_seconds_count", None, 1.0),
            ("berth_store_flush_failures_total", None, 1.0),
            (
                "berth_containerizer_fetcher_task_fetches_failed_total",
                None,
                1.0,
            ),
            ("berth_executors_died_total", None, 1.0),
            ("berth_slave_tasks_running", None, 2.0),
            ("berth_slave_tasks_staging", None, 0.0),
            ("berth_tasks_ended", Some(("state", "TASK_LOST")), 1.0),
            ("berth_tasks_ended", Some(("state", "TASK_FINISHED")), 0.0),
            ("berth_docker_available", None, 1.0),
        ];
        for (name, label, want) in cases {
            assert_eq!(value(&got, name, label), want, "{name} {label:?}");
        }
        let latency = got
            .samples
            .iter()
            .find(|s| s.metric == "berth_launch_latency_seconds")
            .expect("the latency histogram");
        let prometheus_parse::Value::Histogram(buckets) = &latency.value else {
            panic!("{latency:?}");
        };
        let at = |le: f64| buckets.iter().find(|b| b.less_than == le).map(|b| b.count);
        assert_eq!(at(0.2), Some(0.0), "{buckets:?}");
        assert_eq!(at(0.4), Some(1.0), "{buckets:?}");
        assert_eq!(at(f64::INFINITY), Some(1.0), "{buckets:?}");

        // Gauges are what the newest scrape counted.
        let later = scrape(&metrics, &[]);
        assert_eq!(value(&later, "berth_slave_tasks_running", None), 0.0);
        assert_eq!(
            value(&later, "berth_tasks_ended", Some(("state", "TASK_LOST"))),
            0.0
        );
    }
}
