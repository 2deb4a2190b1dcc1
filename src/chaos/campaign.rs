//! One campaign, start to end: set up, workload and faults on the seeded schedule, heal,
//! settle, gather the evidence, judge, clean up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use berth_chaos::check::{self, Answer, Container, Evidence, Kill, Probe, Seen, State, Verdict};
use berth_chaos::events::{self, Action};
use berth_chaos::quiet::{self, Quiet};
use berth_chaos::schedule::{self, Fault, Options, Request, Schedule, Shape};
use berth_chaos::sweep::{Marked, RunMark, Signal};

use super::agent_process::{AgentCommand, AgentProcess};
use super::decoys::{docker_out, Decoys};
use super::journal::{Entry, Journal, EVERYTHING_HEALED};
use super::loopback::Loopback;
use super::run_dir::{Ownership, RunDir};
use super::stand_in::{Misbehaviour, StandIn};
use super::{boot_id, daemon_restart, small_fs, store_flip};
use super::{workload, ChaosError};
use crate::api::client::{ClientError, NotReady};
use crate::api::wire::{Health, HealthStatus};

/// What a campaign is run with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The seed of the schedule.
    pub seed: u64,
    /// How long the workload and the faults go on.
    pub duration: Duration,
    /// How long the agent is given to settle once every fault is healed.
    pub settle: Duration,
    /// At most this many faults.
    pub max_faults: u32,
    /// Whether the Docker daemon may be restarted.
    pub allow_daemon_faults: bool,
    /// The kinds of fault the schedule draws from (`--faults`).
    pub kinds: Vec<String>,
    /// How the Docker daemon is restarted, when that is allowed.
    pub restart_daemon: Option<String>,
    /// The run's directory (made by the run).
    pub dir: PathBuf,
    /// The real Docker CLI.
    pub docker: PathBuf,
    /// The engine's socket.
    pub docker_socket: PathBuf,
    /// The image the tasks run.
    pub image: String,
    /// The image [`schedule::Shape::Pulled`] tasks pull and run (the sweep's; from a
    /// registry).
    pub pull_image: String,
    /// The berth binary the agent is started from.
    pub berth: PathBuf,
    /// A broken promise to make behind the agent's back once it settled, so that the
    /// checker is seen to catch it.
    pub sabotage: Option<Sabotage>,
}

/// A way to break the promise behind the agent's back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sabotage {
    /// A second container for a running task, with its labels, that starts it again.
    SecondContainer,
    /// The agent's store deleted while it is down.
    StoreDeleted,
    /// A decoy container restarted.
    DecoyTouched,
    /// A container with the agent's label made, started and removed before the end: only
    /// Docker's events show it.
    ContainerCreatedAndRemoved,
}

/// The fault kinds this harness injects (`restart_daemon` only when allowed).
pub const INJECTED: [&str; 11] = [
    "kill_agent",
    "crash_point",
    "pause_agent",
    "kill_executor",
    "kill_docker_client",
    "cli_fails",
    "cli_hangs",
    "disk_full",
    "flip_store_byte",
    "reboot",
    "restart_daemon",
];

/// The kinds a run draws from: those `--faults` names (a comma-separated list), or every
/// kind injected; or why the list is refused. Pure.
pub fn chosen_kinds(asked: Option<&str>, allow_daemon_faults: bool) -> Result<Vec<String>, String> {
    let known = || INJECTED.join(", ");
    let Some(asked) = asked else {
        return Ok(INJECTED
            .into_iter()
            .filter(|k| *k != "restart_daemon" || allow_daemon_faults)
            .map(str::to_owned)
            .collect());
    };
    let mut kinds: Vec<String> = Vec::new();
    for kind in asked.split(',').map(str::trim) {
        if !INJECTED.contains(&kind) {
            return Err(format!(
                "--faults: {kind:?} is not a kind of fault; the kinds are: {}",
                known()
            ));
        }
        if kind == "restart_daemon" && !allow_daemon_faults {
            return Err("--faults restart_daemon restarts the Docker daemon, which hits every container on the engine: it takes --allow-daemon-faults".into());
        }
        if !kinds.iter().any(|k| k == kind) {
            kinds.push(kind.to_owned());
        }
    }
    Ok(kinds)
}

impl Settings {
    /// The options the schedule is made with.
    pub fn options(&self) -> Options {
        Options {
            duration_ms: u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX),
            max_faults: self.max_faults,
            launches_per_s: 2,
            allow_daemon_faults: self.allow_daemon_faults,
            crash_points: crate::crash_point::POINTS
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            kinds: self.kinds.clone(),
            crash_point_hold_ms: 0,
        }
    }
}

/// What a campaign found.
#[derive(Debug, Clone)]
pub struct Finished {
    /// What it ran.
    pub schedule: Schedule,
    /// The checker's verdict.
    pub verdict: Verdict,
    /// What it was judged from.
    pub evidence: Evidence,
    /// The run's directory, which now holds only the report and its evidence.
    pub dir: PathBuf,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u32>,
    /// Notes a reader needs (crash points never reached, faults with no target).
    pub notes: Vec<String>,
    /// Crash points armed (as "point (hit N)"), and whether the agent reached each.
    pub crash_points: BTreeMap<String, bool>,
    /// How long the run took, settling included.
    pub length_ms: u64,
}

/// Time between two looks at the agent's tasks.
const POLL: Duration = Duration::from_millis(300);
/// How long an agent start may take to serve (recovery included).
const READY: Duration = Duration::from_secs(90);
/// Deadline of a request of the workload.
const REQUEST: Duration = Duration::from_secs(10);
/// Deadline of a wait for a task's end.
const WAIT: Duration = Duration::from_secs(30);
/// How long the liveness probe's short task may take to end FINISHED.
const PROBE: Duration = Duration::from_secs(30);
/// How long the harness waits, at most, for the run to be still before gathering evidence.
const QUIET: Duration = Duration::from_secs(15);
/// At most this many looks for the run's containers once its processes are gone.
const CONTAINER_LOOKS: usize = 3;
/// How long the start lines must not grow for the run to count as still.
const STARTS_STILL: Duration = Duration::from_millis(1500);

/// Runs the campaign `settings` describe.
/// Runs the campaign `settings` describe, on `schedule` (the one its seed makes, or one
/// read back to replay it).
pub async fn run(settings: &Settings, schedule: Schedule) -> Result<Finished, ChaosError> {
    let mark = RunMark::new();
    let decoy_mark = RunMark::new();
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let dir = RunDir::create(
        &settings.dir,
        Ownership {
            run_id: run_id.clone(),
            mark: mark.env().1.to_owned(),
            decoy_mark: decoy_mark.env().1.to_owned(),
        },
    )?;
    write_json(&dir.path().join("schedule.json"), &schedule)?;
    let journal = Journal::create(&dir.journal())?;
    let boot_ms = uptime_ms();
    // Docker's events carry wall-clock times; this places them on the run's clock.
    let start_epoch_ms = berth_state::now_ms();
    let stand_in = StandIn::install(&dir.cli(), &settings.docker)?;
    let payload = dir.www().join(workload::PAYLOAD);
    std::fs::write(&payload, "berth chaos\n").map_err(|e| ChaosError::io(&payload, e))?;
    let agent = AgentProcess::new(AgentCommand {
        berth: settings.berth.clone(),
        work: dir.work(),
        docker: stand_in.program(),
        docker_socket: settings.docker_socket.clone(),
        logs: dir.path().to_owned(),
        mark: mark.clone(),
        boot_id: schedule
            .faults
            .iter()
            .any(|f| f.what == Fault::Reboot)
            .then(|| dir.boot_id()),
    });
    let mut campaign = Campaign {
        settings: settings.clone(),
        dir,
        run_id,
        mark,
        decoy_mark,
        journal,
        stand_in,
        agent,
        agent_id: String::new(),
        agent_ids: BTreeSet::new(),
        armed: None,
        down: false,
        given_up: false,
        deadline_ms: deadline_ms(&schedule, settings.settle),
        decoys: None,
        events: None,
        events_gone: None,
        events_dead: None,
        events_gaps: Vec::new(),
        loopback: None,
        waits: tokio::task::JoinSet::new(),
        crash_points: BTreeMap::new(),
        deaths: Vec::new(),
        tasks: BTreeMap::new(),
        kills: BTreeMap::new(),
        start_epoch_ms,
        probe_container: None,
        seen: BTreeMap::new(),
        listed: BTreeSet::new(),
        faults: BTreeMap::new(),
        notes: Vec::new(),
        small_fs: false,
        disk_full: false,
        disk_was_full: false,
        corruptions: Vec::new(),
    };
    let outcome = campaign.go(&schedule, boot_ms).await;
    campaign.clean_up();
    for (point, reached) in &campaign.crash_points {
        if !reached {
            campaign.notes.push(format!(
                "crash point {point} was armed and never reached: the workload did not pass it while it was"
            ));
        }
    }
    let (verdict, evidence) = outcome?;
    Ok(Finished {
        schedule,
        verdict,
        evidence,
        dir: campaign.dir.path().to_owned(),
        faults: campaign.faults,
        notes: campaign.notes,
        crash_points: campaign.crash_points,
        length_ms: campaign.journal.now_ms(),
    })
}

/// A task of the workload, as the harness knows it.
#[derive(Debug, Clone)]
struct Launched {
    task_id: String,
    answer: Answer,
    container_id: Option<String>,
}

/// Something on the run's timeline.
#[derive(Debug, Clone)]
enum Item {
    Request(Request),
    Fault(Fault),
    Heal(Fault),
}

struct Campaign {
    settings: Settings,
    dir: RunDir,
    run_id: String,
    mark: RunMark,
    decoy_mark: RunMark,
    journal: Journal,
    stand_in: StandIn,
    agent: AgentProcess,
    agent_id: String,
    /// Every id the run's agents announced (a lost store makes a new one).
    agent_ids: BTreeSet<String>,
    /// The crash point the agent runs armed with.
    armed: Option<String>,
    /// Crash points armed, and whether each was reached.
    crash_points: BTreeMap<String, bool>,
    /// How the agent died by itself, each time.
    deaths: Vec<String>,
    /// The agent is down on purpose (until its heal).
    down: bool,
    /// The agent kept exiting on its way up: it is not started again.
    given_up: bool,
    /// The run's clock past which an agent that exited on its way up is not started again:
    /// the workload, its holds for crash points, and settling.
    deadline_ms: u64,
    decoys: Option<Decoys>,
    events: Option<std::process::Child>,
    /// Since when (run's clock) the events watcher has been gone, and the `--since` it is
    /// started again with.
    events_gone: Option<(u64, String)>,
    /// Why the watcher could not be started again.
    events_dead: Option<String>,
    /// Each time it was gone and started again.
    events_gaps: Vec<String>,
    loopback: Option<Loopback>,
    /// Waits for tasks' ends under way: task, and the end or why none came.
    waits: tokio::task::JoinSet<(u32, Result<serde_json::Value, String>)>,
    tasks: BTreeMap<u32, Launched>,
    /// Each task a kill was sent for, and how it was answered.
    kills: BTreeMap<String, Kill>,
    /// The wall-clock time (ms since the epoch) the run's clock started.
    start_epoch_ms: u64,
    /// The liveness probe's berth container id and task, once it was accepted.
    probe_container: Option<(String, String)>,
    seen: BTreeMap<String, Vec<Seen>>,
    /// The task ids the agent listed at the last look.
    listed: BTreeSet<String>,
    faults: BTreeMap<String, u32>,
    notes: Vec<String>,
    /// The work directory is on the run's small filesystem.
    small_fs: bool,
    /// The harness filled it, until the fault's heal.
    disk_full: bool,
    /// It was filled since the agent last started.
    disk_was_full: bool,
    /// Flipped bytes the agent did not detect and report.
    corruptions: Vec<String>,
}

impl Campaign {
    async fn go(
        &mut self,
        schedule: &Schedule,
        boot_ms: u64,
    ) -> Result<(Verdict, Evidence), ChaosError> {
        // Before anything sits in the work directory (the decoy process does).
        if schedule
            .faults
            .iter()
            .any(|f| matches!(f.what, Fault::DiskFull { .. }))
        {
            let work = self.dir.work();
            self.journal.write(Entry::Mount {
                path: work.display().to_string(),
                source: small_fs::source(&self.run_id),
            })?;
            small_fs::mount(&work, &self.run_id)?;
            self.small_fs = true;
        }
        if self.agent.boot_id().is_some() {
            boot_id::create(&self.dir.boot_id())?;
            boot_id::probe(&self.dir.boot_id())?;
        }
        let planned = super::decoys::planned(&self.run_id);
        for name in &planned.0 {
            self.journal.write(Entry::Decoy {
                name: format!("container {name}"),
            })?;
        }
        let decoys = Decoys::make(
            &self.settings.docker,
            &self.settings.docker_socket,
            &self.settings.image,
            &planned,
            &self.dir.work(),
            &self.decoy_mark,
        )?;
        self.decoys = Some(decoys);
        self.loopback = Some(Loopback::serve(self.dir.www()).await?);
        self.watch_events()?;
        self.start_agent(None).await?;
        // How long the timeline waited for crash points to be reached.
        let mut held_ms = 0;
        let hold_ms = schedule.options.crash_point_hold_ms;
        for (at_ms, item) in timeline(schedule) {
            if let Item::Fault(Fault::CrashPoint { .. }) = item {
                held_ms += self.hold_for_armed(at_ms + held_ms, hold_ms).await?;
            }
            self.idle_until(at_ms + held_ms).await?;
            match item {
                Item::Request(request) => self.send(request).await?,
                Item::Fault(fault) => self.inject(fault).await?,
                Item::Heal(fault) => self.heal(&fault).await?,
            }
        }
        let end = schedule.options.duration_ms + held_ms;
        let end = end + self.hold_for_armed(end, hold_ms).await?;
        self.idle_until(end).await?;
        self.heal_all().await?;
        self.settle().await?;
        if let Some(sabotage) = self.settings.sabotage {
            self.sabotage(sabotage).await?;
        }
        let probe = self.probe().await?;
        let evidence = self.evidence(boot_ms, probe).await?;
        Ok((check::judge(&evidence), evidence))
    }

    /// Starts the agent and waits until it serves. One that dies on its way up (at the
    /// crash point it was armed with, on recovery's path) is started again, unarmed, while
    /// [`start_again`] says so; then it is left down for good, and the run goes on to its
    /// evidence (each exit is an `agent_died`, and the probe finds it not serving).
    async fn start_agent(&mut self, crash_point: Option<(&str, u32)>) -> Result<(), ChaosError> {
        if self.given_up {
            return Ok(());
        }
        let mut arming = crash_point.map(|(p, hit)| (p.to_owned(), hit));
        let mut failed = 0;
        loop {
            let point = arming.as_ref().map(|(p, hit)| (p.as_str(), *hit));
            let pid = self.agent.start(point)?;
            self.armed = arming
                .as_ref()
                .map(|(p, hit)| schedule::crash_label(p, *hit));
            if let Some(armed) = &self.armed {
                self.crash_points.entry(armed.clone()).or_insert(false);
            }
            let ready = self.agent.ready(READY).await;
            self.journal.write(Entry::AgentStarted {
                pid,
                agent_id: ready.as_ref().ok().cloned(),
                crash_point: self.armed.clone(),
            })?;
            match ready {
                Ok(id) => {
                    self.agent_ids.insert(id.clone());
                    self.agent_id = id;
                    self.disk_was_full = self.disk_full;
                    return Ok(());
                }
                Err(Some(status)) => {
                    // One armed that aborts at its point has not failed: it did as asked.
                    let aborted_as_armed = self.armed.is_some()
                        && std::os::unix::process::ExitStatusExt::signal(&status)
                            == Some(nix::sys::signal::Signal::SIGABRT as i32);
                    self.agent_exited(status)?;
                    arming = None;
                    if !aborted_as_armed {
                        failed += 1;
                    }
                    if !start_again(failed, self.journal.now_ms(), self.deadline_ms) {
                        let text = format!(
                            "the agent exited {failed} time(s) in a row on its way up (or the run's time was over): it is not started again, and the run goes on to its evidence"
                        );
                        self.journal.write(Entry::Note { text: text.clone() })?;
                        self.notes.push(text);
                        self.given_up = true;
                        return Ok(());
                    }
                }
                Err(None) => {
                    return Err(ChaosError::Agent(format!(
                        "it did not serve within {READY:?}; see {}",
                        self.dir.path().display()
                    )))
                }
            }
        }
    }

    /// An agent that exited not by the harness's hand: at the crash point it was armed
    /// with (it aborts there), or a death the run reports.
    fn agent_exited(&mut self, status: std::process::ExitStatus) -> Result<(), ChaosError> {
        use std::os::unix::process::ExitStatusExt;
        self.journal.write(Entry::AgentExited {
            status: status.to_string(),
        })?;
        match self.armed.take() {
            Some(point) if status.signal() == Some(nix::sys::signal::Signal::SIGABRT as i32) => {
                self.crash_points.insert(point, true);
            }
            armed => self.deaths.push(format!(
                "the agent exited by itself ({status}){}",
                armed
                    .map(|p| format!(" while armed with crash point {p}, which aborts"))
                    .unwrap_or_default()
            )),
        }
        Ok(())
    }

    /// `docker events` for every berth agent's containers, into the evidence: an agent that
    /// lost its store announces a new id, so the run's own ids are picked out when the
    /// events are read back, once every id is known.
    fn watch_events(&mut self) -> Result<(), ChaosError> {
        let path = self.dir.evidence().join("events.jsonl");
        std::fs::File::create(&path).map_err(|e| ChaosError::io(&path, e))?;
        let child = self
            .spawn_watcher(None)
            .map_err(|e| ChaosError::Docker(format!("cannot watch docker events: {e}")))?;
        self.events = Some(child);
        Ok(())
    }

    /// `docker events` appending to the evidence, from `since` (Docker's `--since`) if
    /// given.
    fn spawn_watcher(&self, since: Option<&str>) -> std::io::Result<std::process::Child> {
        let path = self.dir.evidence().join("events.jsonl");
        let mut file = std::fs::OpenOptions::new().append(true).open(&path)?;
        // A line the last watcher tore is not glued to the next one's first.
        let text = std::fs::read(&path)?;
        if text.last().is_some_and(|b| *b != b'\n') {
            std::io::Write::write_all(&mut file, b"\n")?;
        }
        let (key, value) = self.mark.env();
        // Marked: it is the run's, swept with it even if the harness dies.
        let mut command = std::process::Command::new(&self.settings.docker);
        command
            .env(key, value)
            .arg("-H")
            .arg(format!("unix://{}", self.settings.docker_socket.display()))
            .args(["events", "--format", "{{json .}}", "--filter"])
            .arg(format!("label={}", events::AGENT_LABEL));
        if let Some(since) = since {
            command.args(["--since", since]);
        }
        command
            .stdin(std::process::Stdio::null())
            .stdout(file)
            .stderr(std::process::Stdio::null())
            .spawn()
    }

    /// Starts the events watcher again if it is gone (a restart of the engine ends it),
    /// `--since` the last event it had read (or the run's start), so that what the engine
    /// still holds is not missed; the gap is journaled and kept in the evidence once the
    /// new watcher runs.
    fn keep_watching(&mut self) -> Result<(), ChaosError> {
        let Some(child) = &mut self.events else {
            return Ok(());
        };
        let status = match child.try_wait() {
            Ok(None) => {
                if let Some((from_ms, since)) = self.events_gone.take() {
                    let gap = format!(
                        "the watcher was gone from {from_ms} ms to {} ms, and started again with --since {since}: events the engine no longer held then (one that restarted holds none from before) are missing",
                        self.journal.now_ms()
                    );
                    self.journal.write(Entry::Note { text: gap.clone() })?;
                    self.events_gaps.push(gap);
                }
                return Ok(());
            }
            Ok(Some(status)) => status.to_string(),
            Err(e) => e.to_string(),
        };
        let now_ms = self.journal.now_ms();
        let since = match &self.events_gone {
            Some((_, since)) => since.clone(),
            None => {
                let path = self.dir.evidence().join("events.jsonl");
                let text = std::fs::read(&path).unwrap_or_default();
                let since = events::since(&String::from_utf8_lossy(&text)).unwrap_or_else(|| {
                    format!(
                        "{}.{:03}",
                        self.start_epoch_ms / 1000,
                        self.start_epoch_ms % 1000
                    )
                });
                self.events_gone = Some((now_ms, since.clone()));
                since
            }
        };
        match self.spawn_watcher(Some(&since)) {
            Ok(new) => self.events = Some(new),
            Err(e) => {
                self.events = None;
                self.events_dead = Some(format!(
                    "it ended ({status}) at {now_ms} ms and could not be started again: {e}"
                ));
            }
        }
        Ok(())
    }

    /// Why the events watcher is not running now, if it is not. One just started again
    /// is given a few looks to be seen running.
    async fn watcher_dead(&mut self) -> Option<String> {
        for _ in 0..10 {
            if self.keep_watching().is_err() || self.events_gone.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if let Some(dead) = &self.events_dead {
            return Some(dead.clone());
        }
        let gone = self.events_gone.as_ref().map(|(from_ms, _)| *from_ms);
        let running = self
            .events
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        match (running, gone) {
            (true, None) => None,
            (_, Some(from_ms)) => Some(format!(
                "it was gone from {from_ms} ms, and every start again ended"
            )),
            (false, None) => Some("it ended".into()),
        }
    }

    /// Looks at the tasks until the run's clock reads `at_ms`, starting the agent again
    /// if it died by itself.
    async fn idle_until(&mut self, at_ms: u64) -> Result<(), ChaosError> {
        loop {
            self.supervise().await?;
            self.waited()?;
            self.observe().await;
            let now = self.journal.now_ms();
            if now >= at_ms {
                return Ok(());
            }
            tokio::time::sleep(POLL.min(Duration::from_millis(at_ms - now))).await;
        }
    }

    /// Looks at the tasks until `due_ms`, then, while the crash point armed is not reached,
    /// up to `hold_ms` more; how long past `due_ms` it waited.
    async fn hold_for_armed(&mut self, due_ms: u64, hold_ms: u64) -> Result<u64, ChaosError> {
        self.idle_until(due_ms).await?;
        while self.armed.is_some() && self.journal.now_ms() < due_ms.saturating_add(hold_ms) {
            let next = self.journal.now_ms() + POLL.as_millis() as u64;
            self.idle_until(next).await?;
        }
        Ok(self.journal.now_ms().saturating_sub(due_ms).min(hold_ms))
    }

    async fn supervise(&mut self) -> Result<(), ChaosError> {
        self.keep_watching()?;
        if self.down {
            return Ok(());
        }
        if let Some(status) = self.agent.exited() {
            let log = std::fs::read_to_string(self.agent.log()).unwrap_or_default();
            if small_fs::stopped_on_full_disk(self.disk_was_full, &log) {
                self.journal.write(Entry::AgentExited {
                    status: status.to_string(),
                })?;
                self.notes.push(format!(
                    "at {} ms the agent stopped on the full disk, as documented (a record could not be made durable); started again once the disk had room",
                    self.journal.now_ms()
                ));
            } else {
                self.agent_exited(status)?;
            }
            // On a disk the harness keeps full (an agent armed before the fill may abort at
            // its crash point meanwhile), a start could only fail to open the store: it is
            // started again at the fault's heal, when there is room.
            if self.disk_full {
                self.down = true;
                return Ok(());
            }
            self.start_agent(None).await?;
        }
        Ok(())
    }

    /// Journals each wait that ended, and notes the end it answered with as seen.
    fn waited(&mut self) -> Result<(), ChaosError> {
        while let Some(done) = self.waits.try_join_next() {
            let Ok((task, answered)) = done else { continue };
            let (answer, detail) = match &answered {
                Ok(view) => (Answer::Accepted, format!("ended {}", view["state"])),
                Err(e) => (Answer::CutOff, e.clone()),
            };
            self.journal.write(Entry::Answer {
                task,
                answer,
                detail,
            })?;
            let (Ok(view), Some(launched)) = (answered, self.tasks.get(&task)) else {
                continue;
            };
            let Ok(state) = serde_json::from_value::<State>(view["state"].clone()) else {
                continue;
            };
            let reason = view["reason"].as_str().map(str::to_owned);
            let at_ms = self.journal.now_ms();
            let history = self.seen.entry(launched.task_id.clone()).or_default();
            if history
                .last()
                .is_none_or(|last| last.state != state || last.reason != reason)
            {
                history.push(Seen {
                    at_ms,
                    state,
                    reason,
                });
            }
        }
        Ok(())
    }

    /// Notes each task's state when it changed.
    async fn observe(&mut self) {
        let client = self.agent.client();
        let Ok(views) = client
            .get::<Vec<serde_json::Value>>("/v1/containers", Duration::from_secs(2))
            .await
        else {
            return;
        };
        let at_ms = self.journal.now_ms();
        self.listed = views
            .iter()
            .filter_map(|v| v["task_id"].as_str().map(str::to_owned))
            .collect();
        for view in views {
            let (Some(task_id), Some(container_id)) =
                (view["task_id"].as_str(), view["container_id"].as_str())
            else {
                continue;
            };
            let Ok(state) = serde_json::from_value::<State>(view["state"].clone()) else {
                continue;
            };
            for launched in self.tasks.values_mut() {
                if launched.task_id == task_id && launched.container_id.is_none() {
                    launched.container_id = Some(container_id.to_owned());
                }
            }
            let reason = view["reason"].as_str().map(str::to_owned);
            let history = self.seen.entry(task_id.to_owned()).or_default();
            let changed = history
                .last()
                .is_none_or(|last| last.state != state || last.reason != reason);
            if changed {
                history.push(Seen {
                    at_ms,
                    state,
                    reason,
                });
            }
        }
    }

    async fn send(&mut self, request: Request) -> Result<(), ChaosError> {
        self.journal.write(Entry::Request {
            request: request.clone(),
        })?;
        let client = self.agent.client();
        match request {
            Request::Launch { task, shape } => {
                let task_id = workload::task_id(&self.run_id, task);
                let addr = self
                    .loopback
                    .as_ref()
                    .map(|l| l.addr)
                    .unwrap_or_else(|| ([127, 0, 0, 1], 0).into());
                let image = match shape {
                    schedule::Shape::Pulled => &self.settings.pull_image,
                    _ => &self.settings.image,
                };
                let info = workload::task_info(&task_id, shape, image, &self.dir.evidence(), addr);
                let body = serde_json::to_vec(&info).unwrap_or_default();
                let answered = client
                    .post_raw::<serde_json::Value>("/v1/tasks", body, REQUEST)
                    .await;
                let (answer, detail, container_id) = match answered {
                    Ok(view) => (
                        Answer::Accepted,
                        "accepted".to_owned(),
                        view["container_id"].as_str().map(str::to_owned),
                    ),
                    Err(e) => (answer_of(&e), e.to_string(), None),
                };
                self.journal.write(Entry::Answer {
                    task,
                    answer,
                    detail,
                })?;
                self.tasks.insert(
                    task,
                    Launched {
                        task_id,
                        answer,
                        container_id,
                    },
                );
            }
            Request::Kill { task } => {
                let Some(container_id) = self.tasks.get(&task).and_then(|t| t.container_id.clone())
                else {
                    return self.journal.write(Entry::Note {
                        text: format!(
                            "kill of task {task} not sent: its container id is not known"
                        ),
                    });
                };
                let answered = client
                    .post::<_, serde_json::Value>(
                        &format!("/v1/containers/{container_id}/kill"),
                        &serde_json::json!({}),
                        REQUEST,
                    )
                    .await;
                let (answer, detail, state) = match answered {
                    Ok(view) => (
                        Answer::Accepted,
                        "accepted".to_owned(),
                        serde_json::from_value::<State>(view["state"].clone()).ok(),
                    ),
                    Err(e) => (answer_of(&e), e.to_string(), None),
                };
                if let Some(launched) = self.tasks.get(&task) {
                    let kill = Kill {
                        answer,
                        answered_at_ms: self.journal.now_ms(),
                        state,
                    };
                    // An accepted kill is the one the agent must honour.
                    let accepted_before = self
                        .kills
                        .get(&launched.task_id)
                        .is_some_and(|k| k.answer == Answer::Accepted);
                    if !accepted_before {
                        self.kills.insert(launched.task_id.clone(), kill);
                    }
                }
                self.journal.write(Entry::Answer {
                    task,
                    answer,
                    detail,
                })?;
            }
            Request::Wait { task } => {
                let Some(container_id) = self.tasks.get(&task).and_then(|t| t.container_id.clone())
                else {
                    return self.journal.write(Entry::Note {
                        text: format!(
                            "wait for task {task} not sent: its container id is not known"
                        ),
                    });
                };
                // Answered once the task ended; the workload goes on meanwhile.
                self.waits.spawn(async move {
                    let answered = client
                        .get::<serde_json::Value>(
                            &format!("/v1/containers/{container_id}/wait"),
                            WAIT,
                        )
                        .await;
                    (task, answered.map_err(|e| e.to_string()))
                });
            }
        }
        Ok(())
    }

    async fn inject(&mut self, fault: Fault) -> Result<(), ChaosError> {
        let kind = serde_json::to_value(&fault)
            .ok()
            .and_then(|v| v["fault"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let target = match &fault {
            Fault::KillExecutor { nth } => {
                self.nth_process(*nth, |p| p.argv.get(1).is_some_and(|a| a == "executor"))
            }
            // Any call of the Docker CLI under way (a `docker run -d`, an inspect, a stop):
            // each returns in moments, so the one under way is the one hit.
            Fault::KillDockerClient { nth } => {
                let programs = self.docker_programs();
                // The harness's own evidence is not a fault's target.
                let watcher = self.events.as_ref().map(std::process::Child::id);
                self.nth_process(*nth, |p| {
                    Some(p.pid as u32) != watcher && docker_client(&p.argv, &programs)
                })
            }
            _ => None,
        };
        self.journal.write(Entry::Fault {
            fault: fault.clone(),
            target: target.map(|pid| format!("pid {pid}")),
        })?;
        *self.faults.entry(kind.clone()).or_default() += 1;
        match &fault {
            Fault::KillAgent { .. } => {
                self.agent.kill();
                self.down = true;
            }
            Fault::CrashPoint { point, hit } => {
                self.agent.kill();
                self.start_agent(Some((point, *hit))).await?;
            }
            Fault::PauseAgent { for_ms } => {
                if self.agent.pause() {
                    self.spawn_watchdog(*for_ms)?;
                }
            }
            Fault::KillExecutor { .. } | Fault::KillDockerClient { .. } => match target {
                Some(pid) => {
                    self.mark.signal(pid, Signal::KILL);
                }
                None => self.notes.push(format!(
                    "{kind} at {} ms found nothing to kill",
                    self.journal.now_ms()
                )),
            },
            Fault::CliFails { verb, .. } => self.stand_in.switch_on(verb, Misbehaviour::Fail)?,
            Fault::CliHangs { verb, .. } => self.stand_in.switch_on(verb, Misbehaviour::Hang)?,
            // Only ever the run's own small filesystem, never the disk it sits on.
            Fault::DiskFull { .. } if !self.small_fs => self.notes.push(format!(
                "disk_full at {} ms not done: the work directory is not on a small filesystem of the run's",
                self.journal.now_ms()
            )),
            Fault::DiskFull { .. } => {
                let taken = small_fs::fill(&self.dir.work())?;
                self.disk_full = true;
                self.disk_was_full = true;
                self.journal.write(Entry::Note {
                    text: format!("the work directory's filesystem is full ({taken} bytes filled)"),
                })?;
            }
            Fault::FlipStoreByte { at } => self.flip_store_byte(*at).await?,
            Fault::Reboot => self.reboot().await?,
            Fault::RestartDaemon => {
                let Some(command) = self.settings.restart_daemon.clone() else {
                    // A schedule read back may hold one: not done without leave.
                    self.notes.push(format!(
                        "restart_daemon at {} ms not done: daemon faults are not allowed",
                        self.journal.now_ms()
                    ));
                    return Ok(());
                };
                let how = daemon_restart::restart(
                    &command,
                    &self.settings.docker,
                    &self.settings.docker_socket,
                )
                .await;
                if let Some(decoys) = &mut self.decoys {
                    decoys.describe_again(&self.settings.docker, &self.settings.docker_socket);
                }
                // The restart ended the events watcher: started again at once, it misses
                // the least.
                self.keep_watching()?;
                let how = format!(
                    "restart_daemon: {how}; the decoys described again, as the restart left them"
                );
                self.notes
                    .push(format!("at {} ms, {how}", self.journal.now_ms()));
                self.journal.write(Entry::Healed { what: how })?;
            }
        }
        Ok(())
    }

    /// With the agent down, flips one byte of its store, starts it, and judges what it
    /// made of it (docs/state-format.md). A store it refused is put back as it was and
    /// the agent started again; one it took is its own from then on.
    async fn flip_store_byte(&mut self, at: u64) -> Result<(), ChaosError> {
        self.agent.kill();
        let work = self.dir.work();
        let store = crate::state_command::store_dir(&work);
        let files = store_flip::files(&store);
        let Some((n, offset)) = store_flip::locate(&files, at) else {
            self.notes.push(format!(
                "flip_store_byte at {} ms found no store file",
                self.journal.now_ms()
            ));
            return self.start_agent(None).await;
        };
        let before = self.store_containers()?;
        let file = files[n].0.clone();
        let old = store_flip::read_byte(&file, offset)?;
        let copy = self.dir.store_copy();
        store_flip::copy_dir(&store, &copy)?;
        self.journal.write(Entry::Flip {
            file: file.display().to_string(),
            offset,
            old,
            new: !old,
        })?;
        store_flip::write_byte(&file, offset, !old)?;
        let pid = self.agent.start(None)?;
        let ready = self.agent.ready(READY).await;
        self.journal.write(Entry::AgentStarted {
            pid,
            agent_id: ready.as_ref().ok().cloned(),
            crash_point: None,
        })?;
        let start = match ready {
            Ok(id) => {
                self.agent_ids.insert(id.clone());
                self.agent_id = id;
                store_flip::Start::Served {
                    before,
                    after: self.store_containers()?,
                    verify: self.verify()?,
                }
            }
            Err(Some(_)) => store_flip::Start::Exited,
            Err(None) => {
                self.agent.kill();
                store_flip::Start::Hung
            }
        };
        let log = std::fs::read_to_string(self.agent.log()).unwrap_or_default();
        let outcome = store_flip::judge(&start, &log);
        let name = file
            .strip_prefix(&work)
            .unwrap_or(&file)
            .display()
            .to_string();
        let what = format!(
            "flip_store_byte at {} ms: {name} offset {offset} {old:#04x} -> {:#04x}: {}",
            self.journal.now_ms(),
            !old,
            serde_json::to_string(&outcome).unwrap_or_default()
        );
        let line = serde_json::json!({
            "at_ms": self.journal.now_ms(), "file": name, "offset": offset,
            "old": old, "new": !old, "result": outcome,
        });
        let flips = self.dir.evidence().join("store_flips.jsonl");
        let mut text = line.to_string();
        text.push('\n');
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&flips)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|e| ChaosError::io(&flips, e))?;
        if matches!(outcome, store_flip::Outcome::Unreported(_)) {
            self.corruptions.push(what.clone());
        }
        self.notes.push(what);
        if self.agent.running() {
            self.journal.write(Entry::Healed {
                what: format!("flip_store_byte: nothing put back, the agent took the store with {name} offset {offset} flipped"),
            })?;
        } else {
            // It refused the store, and so did nothing with it since the copy.
            store_flip::restore(&copy, &store)?;
            self.journal.write(Entry::Healed {
                what: format!("flip_store_byte: the store put back as it was before {name} offset {offset} was flipped"),
            })?;
            self.start_agent(None).await?;
        }
        std::fs::remove_dir_all(&copy).map_err(|e| ChaosError::io(&copy, e))
    }

    /// The containers the agent's store holds (`berth state ls`: through the agent while
    /// it runs, offline otherwise).
    fn store_containers(&self) -> Result<BTreeSet<String>, ChaosError> {
        let out = super::offline::berth_command(&self.settings.berth)
            .args(["state", "ls", "--json", "--work_dir"])
            .arg(self.dir.work())
            .output()
            .map_err(|e| ChaosError::Agent(format!("cannot run berth state ls: {e}")))?;
        let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).map_err(|e| {
            ChaosError::Agent(format!(
                "berth state ls --json said no list ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        })?;
        Ok(listed
            .iter()
            .filter_map(|c| c["container_id"].as_str().map(str::to_owned))
            .collect())
    }

    /// `berth state verify`: `Ok` with its output when it passed.
    fn verify(&self) -> Result<Result<String, String>, ChaosError> {
        let out = super::offline::berth_command(&self.settings.berth)
            .args(["state", "verify", "--work_dir"])
            .arg(self.dir.work())
            .output()
            .map_err(|e| ChaosError::Agent(format!("cannot run berth state verify: {e}")))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(if out.status.success() {
            Ok(text)
        } else {
            Err(text)
        })
    }

    /// The host "reboots": the agent and every process of the run but the harness's own
    /// helpers die as at power loss, the run's containers are killed, and the agent
    /// starts again seeing a new boot id.
    async fn reboot(&mut self) -> Result<(), ChaosError> {
        self.agent.kill();
        let watcher = self.events.as_ref().map(|c| c.id() as i32);
        self.mark
            .kill_where(|process| super::reboot::dies(process, watcher));
        // With no process of the run left to start one, the containers are listed again
        // until a look finds none running: a `docker run` killed after its request reached
        // the engine may still have its container started.
        let mut killed = Vec::new();
        for _ in 0..CONTAINER_LOOKS {
            let mut now = Vec::new();
            for agent_id in &self.agent_ids {
                now.extend(super::reboot::kill_containers(
                    &self.settings.docker,
                    &self.settings.docker_socket,
                    agent_id,
                ));
            }
            if now.is_empty() {
                break;
            }
            killed.extend(now);
        }
        let id = boot_id::renew(&self.dir.boot_id())?;
        self.journal.write(Entry::Note {
            text: format!(
                "rebooted: {} container(s) killed ({}); the agent's boot id is now {id}",
                killed.len(),
                killed.join(", ")
            ),
        })?;
        self.start_agent(None).await?;
        self.journal.write(Entry::Healed {
            what: "reboot: the agent started again".into(),
        })
    }

    /// A process of the run matching `what`, the `nth` modulo how many there are.
    fn nth_process(&self, nth: u32, what: impl Fn(&Marked) -> bool) -> Option<i32> {
        let mut pids: Vec<i32> = self
            .mark
            .processes()
            .into_iter()
            .filter(|p| what(p))
            .map(|p| p.pid)
            .collect();
        pids.sort_unstable();
        let n = pids.len();
        (n > 0).then(|| pids[nth as usize % n])
    }

    /// The Docker CLI as the run's processes start it: the real one's path (the
    /// stand-in execs it), and the stand-in's.
    fn docker_programs(&self) -> Vec<String> {
        [self.settings.docker.clone(), self.stand_in.program()]
            .map(|p| p.display().to_string())
            .into()
    }

    /// A process that resumes the paused agent after `for_ms` even if the harness dies
    /// meanwhile; it signals only a process that carries the run's mark.
    fn spawn_watchdog(&mut self, for_ms: u64) -> Result<(), ChaosError> {
        let Some(pid) = self.agent.pid() else {
            return Ok(());
        };
        let (key, value) = self.mark.env();
        // tokio reaps it once it ends, though its handle is dropped here.
        tokio::process::Command::new(&self.settings.berth)
            .args(["chaos", "resume", "--pid"])
            .arg(pid.to_string())
            .arg("--after")
            .arg(format!("{for_ms}ms"))
            .arg("--mark")
            .arg(value)
            // Carrying the mark, it is swept with the rest of the run.
            .env(key, value)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // Its own group: a Ctrl-C of the harness must not kill it with the harness.
            .process_group(0)
            .spawn()
            .map(drop)
            .map_err(|e| ChaosError::Agent(format!("cannot start the watchdog: {e}")))
    }

    async fn heal(&mut self, fault: &Fault) -> Result<(), ChaosError> {
        match fault {
            Fault::KillAgent { .. } => {
                self.down = false;
                self.start_agent(None).await?;
            }
            Fault::PauseAgent { .. } => {
                self.agent.resume();
            }
            Fault::CliFails { .. } | Fault::CliHangs { .. } => self.stand_in.switch_all_off()?,
            Fault::DiskFull { .. } => {
                small_fs::free(&self.dir.work())?;
                self.disk_full = false;
                if self.down {
                    self.down = false;
                    self.start_agent(None).await?;
                }
            }
            _ => return Ok(()),
        }
        let what = serde_json::to_string(fault).unwrap_or_default();
        self.journal.write(Entry::Healed { what })
    }

    async fn heal_all(&mut self) -> Result<(), ChaosError> {
        self.stand_in.switch_all_off()?;
        if self.disk_full {
            small_fs::free(&self.dir.work())?;
            self.disk_full = false;
        }
        self.agent.resume();
        self.down = false;
        if self.armed.take().is_some() {
            self.agent.kill();
        }
        if !self.agent.running() {
            self.start_agent(None).await?;
        }
        self.journal.write(Entry::Healed {
            what: format!(
                "{EVERYTHING_HEALED}: the CLI's switches off, the agent resumed and unarmed"
            ),
        })
    }

    /// Waits, up to `--settle`, until every task is running in one container or over.
    async fn settle(&mut self) -> Result<(), ChaosError> {
        let deadline = self.journal.now_ms()
            + u64::try_from(self.settings.settle.as_millis()).unwrap_or(u64::MAX);
        let mut quiet = 0;
        while self.journal.now_ms() < deadline && quiet < 2 {
            let until = self.journal.now_ms() + 1000;
            self.idle_until(until).await?;
            let settled = self.seen.values().all(|history| {
                history
                    .last()
                    .is_some_and(|s| s.state.is_terminal() || s.state == State::Running)
            });
            quiet = if settled { quiet + 1 } else { 0 };
        }
        Ok(())
    }

    async fn sabotage(&mut self, sabotage: Sabotage) -> Result<(), ChaosError> {
        self.journal.write(Entry::Note {
            text: format!("sabotage: {sabotage:?}"),
        })?;
        let running = self.seen.iter().find_map(|(task_id, history)| {
            let last = history.last()?;
            let launched = self.tasks.values().find(|t| &t.task_id == task_id)?;
            (last.state == State::Running).then(|| (task_id.clone(), launched.container_id.clone()))
        });
        let docker = |args: Vec<String>| {
            docker_out(&self.settings.docker, &self.settings.docker_socket, &args)
        };
        match sabotage {
            Sabotage::SecondContainer => {
                let Some((task_id, Some(container_id))) = running else {
                    return Err(ChaosError::Agent("no running task to sabotage".into()));
                };
                let evidence = self.dir.evidence();
                docker(vec![
                    "run".into(),
                    "-d".into(),
                    format!("--label=berth.agent_id={}", self.agent_id),
                    format!("--label=berth.container_id={container_id}"),
                    format!("--volume={}:{}", evidence.display(), workload::EVIDENCE_MOUNT),
                    self.settings.image.clone(),
                    "sh".into(),
                    "-c".into(),
                    format!(
                        "read up rest < /proc/uptime; echo \"{task_id} sabotage $up\" >> {}/{}; exec sleep 3600",
                        workload::EVIDENCE_MOUNT,
                        workload::STARTS
                    ),
                ])?;
            }
            Sabotage::StoreDeleted => {
                self.agent.kill();
                let dir = crate::state_command::store_dir(&self.dir.work());
                std::fs::remove_dir_all(&dir).map_err(|e| ChaosError::io(&dir, e))?;
                self.start_agent(None).await?;
            }
            Sabotage::DecoyTouched => {
                docker(vec![
                    "restart".into(),
                    "-t".into(),
                    "0".into(),
                    format!("berth-chaos-decoy-{}", self.run_id),
                ])?;
            }
            Sabotage::ContainerCreatedAndRemoved => {
                let made = docker(vec![
                    "run".into(),
                    "-d".into(),
                    format!("--label=berth.agent_id={}", self.agent_id),
                    format!("--label=berth.container_id={}", uuid::Uuid::new_v4()),
                    self.settings.image.clone(),
                    "sleep".into(),
                    "3600".into(),
                ])?;
                docker(vec!["rm".into(), "-f".into(), made.trim().to_owned()])?;
            }
        }
        // What the agent makes of it.
        let until = self.journal.now_ms() + 3000;
        self.idle_until(until).await
    }

    /// The agent still serves once the faults healed: its health answers, and a fresh short
    /// task, outside the schedule, is accepted, runs and ends FINISHED within [`PROBE`].
    /// Each step is journaled.
    async fn probe(&mut self) -> Result<Probe, ChaosError> {
        let task_id = format!("chaos-{}-probe", self.run_id);
        let mut probe = Probe {
            task: task_id.clone(),
            health_failure: None,
            answer: None,
            detail: String::new(),
            deadline_ms: u64::try_from(PROBE.as_millis()).unwrap_or(u64::MAX),
            seen: Vec::new(),
            starts: Vec::new(),
        };
        self.probe_step(&task_id, "GET /v1/health")?;
        let client = self.agent.client();
        let health: Result<Health, _> = client.get("/v1/health", REQUEST).await;
        probe.health_failure = match health {
            Ok(h) if h.status == HealthStatus::Ok => None,
            Ok(h) => Some(format!("it answered {:?}", h.status)),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = &probe.health_failure {
            self.probe_step(&task_id, &format!("health failed: {why}"))?;
            return Ok(probe);
        }
        self.probe_step(&task_id, "launch a short task")?;
        let addr = self
            .loopback
            .as_ref()
            .map(|l| l.addr)
            .unwrap_or_else(|| ([127, 0, 0, 1], 0).into());
        let info = workload::task_info(
            &task_id,
            Shape::Short,
            &self.settings.image,
            &self.dir.evidence(),
            addr,
        );
        let body = serde_json::to_vec(&info).unwrap_or_default();
        let answered = client
            .post_raw::<serde_json::Value>("/v1/tasks", body, REQUEST)
            .await;
        let (answer, detail) = match answered {
            Ok(view) => {
                self.probe_container = view["container_id"]
                    .as_str()
                    .map(|c| (c.to_owned(), task_id.clone()));
                (Answer::Accepted, "accepted".to_owned())
            }
            Err(e) => (answer_of(&e), e.to_string()),
        };
        self.probe_step(&task_id, &format!("launch answered: {detail}"))?;
        probe.answer = Some(answer);
        probe.detail = detail;
        if answer == Answer::Accepted {
            let deadline = self.journal.now_ms().saturating_add(probe.deadline_ms);
            while self.journal.now_ms() < deadline {
                let until = self.journal.now_ms() + POLL.as_millis() as u64;
                self.idle_until(until).await?;
                let ended = self
                    .seen
                    .get(&task_id)
                    .and_then(|h| h.last())
                    .is_some_and(|s| s.state.is_terminal());
                if ended {
                    break;
                }
            }
            let last = self.seen.get(&task_id).and_then(|h| h.last());
            let last = serde_json::to_string(&last).unwrap_or_default();
            self.probe_step(&task_id, &format!("last seen: {last}"))?;
        }
        Ok(probe)
    }

    fn probe_step(&mut self, task_id: &str, step: &str) -> Result<(), ChaosError> {
        self.journal.write(Entry::Probe {
            task_id: task_id.to_owned(),
            step: step.to_owned(),
        })
    }

    /// Waits, up to [`QUIET`], until the run is still: the probe's end read from Docker's
    /// events (so every earlier event was too), no Docker CLI call of the run under way,
    /// and the start lines not grown for [`STARTS_STILL`].
    async fn wait_until_quiet(&mut self) -> Quiet {
        let since = std::time::Instant::now();
        let starts = self.dir.evidence().join(workload::STARTS);
        let size = || std::fs::metadata(&starts).map(|m| m.len()).unwrap_or(0);
        let (mut last_size, mut grown_at) = (size(), std::time::Instant::now());
        let marker = self.probe_container.as_ref().map(|(c, _)| c.clone());
        let mut quiet = Quiet::default();
        let programs = self.docker_programs();
        loop {
            // A journal that cannot be written shows in the journal; the wait goes on.
            let _ = self.keep_watching();
            quiet.events_caught_up = match &marker {
                Some(berth_id) => self.read_events().events.iter().any(|e| {
                    e.action == Action::Die && e.berth_id.as_deref() == Some(berth_id.as_str())
                }),
                // Nothing to wait for: the probe made no container.
                None => false,
            };
            quiet.under_way = quiet::calls_under_way(&self.mark.processes(), &programs);
            let now_size = size();
            if now_size != last_size {
                (last_size, grown_at) = (now_size, std::time::Instant::now());
            }
            let still = grown_at.elapsed() >= STARTS_STILL;
            let done =
                (quiet.events_caught_up || marker.is_none()) && quiet.under_way.is_empty() && still;
            quiet.waited_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
            if done {
                return quiet;
            }
            if since.elapsed() >= QUIET {
                quiet.timed_out = true;
                if !still {
                    quiet
                        .under_way
                        .push("start lines still being written".into());
                }
                return quiet;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The run's containers' events read so far.
    fn read_events(&self) -> events::Parsed {
        let path = self.dir.evidence().join("events.jsonl");
        let text = std::fs::read(&path).unwrap_or_default();
        events::parse(
            &String::from_utf8_lossy(&text),
            &self.agent_ids,
            self.start_epoch_ms,
        )
    }

    /// Stops the agent as a crash would, waits for the run to be still, and gathers what
    /// the checker judges: what the agent recorded is read from its store offline.
    async fn evidence(&mut self, boot_ms: u64, mut probe: Probe) -> Result<Evidence, ChaosError> {
        self.journal.write(Entry::Note {
            text: "the agent is SIGKILLed, its store read offline".into(),
        })?;
        self.agent.kill();
        let quiet = self.wait_until_quiet().await;
        let events_watcher_dead = self.watcher_dead().await;
        let (recorded_containers, store_unreadable) =
            match super::offline::recorded(&self.settings.berth, &self.dir.work()) {
                Ok(r) => (r, None),
                Err(why) => (BTreeMap::new(), Some(why.to_string())),
            };
        let verify_failure = super::offline::verify(&self.settings.berth, &self.dir.work())?;
        // Which task a container's berth.container_id label names: as the harness was
        // answered, or as the agent's store records.
        let mut by_container: BTreeMap<String, String> = self
            .tasks
            .values()
            .filter_map(|t| Some((t.container_id.clone()?, t.task_id.clone())))
            .chain(self.probe_container.clone())
            .collect();
        by_container.extend(recorded_containers.clone());
        let mut containers = Vec::new();
        for agent_id in &self.agent_ids {
            let listed = docker_out(
                &self.settings.docker,
                &self.settings.docker_socket,
                &[
                    "ps".into(),
                    "-a".into(),
                    "--filter".into(),
                    format!("label=berth.agent_id={agent_id}"),
                    "--format".into(),
                    "{{.Names}}\t{{.Label \"berth.container_id\"}}\t{{.State}}".into(),
                ],
            )?;
            containers.extend(listed.lines().filter_map(|line| {
                let mut fields = line.split('\t');
                let name = fields.next()?.to_owned();
                let container_id = fields.next().unwrap_or_default();
                let state = fields.next().unwrap_or_default();
                Some(Container {
                    name,
                    task: by_container.get(container_id).cloned(),
                    running: matches!(state, "running" | "restarting" | "paused"),
                })
            }));
        }
        let mut read = self.read_events();
        for event in &mut read.events {
            event.task = event
                .berth_id
                .as_ref()
                .and_then(|id| by_container.get(id).cloned());
        }
        let starts_path = self.dir.evidence().join(workload::STARTS);
        let starts = std::fs::read_to_string(&starts_path).unwrap_or_default();
        // The probe's start lines and history are its own: they count for nothing else.
        let (probe_starts, starts): (Vec<_>, Vec<_>) = workload::starts(&starts, boot_ms)
            .into_iter()
            .partition(|s| s.task == probe.task);
        probe.starts = probe_starts;
        probe.seen = self.seen.remove(&probe.task).unwrap_or_default();
        let decoys = match &mut self.decoys {
            Some(d) => d.compare(&self.settings.docker, &self.settings.docker_socket),
            None => Vec::new(),
        };
        let evidence = Evidence {
            launches: self
                .tasks
                .values()
                .map(|t| (t.task_id.clone(), t.answer))
                .collect(),
            starts,
            seen: self.seen.clone(),
            containers,
            recorded: recorded_containers.into_values().collect(),
            decoys,
            agent_deaths: self.deaths.clone(),
            verify_failure,
            events: read.events,
            events_unreadable: read.unreadable,
            kills: self.kills.clone(),
            probe: Some(probe),
            quiet: Some(quiet),
            corruption_unreported: self.corruptions.clone(),
            store_unreadable,
            events_watcher_dead,
            events_gaps: self.events_gaps.clone(),
        };
        write_json(&self.dir.evidence().join("evidence.json"), &evidence)?;
        Ok(evidence)
    }

    /// Removes everything the run made but its report: the agent and what carries the
    /// run's mark, the agent's containers (by its id's label), the decoys, the CLI's
    /// switches, the work directory.
    fn clean_up(&mut self) {
        let _ = self.stand_in.switch_all_off();
        self.agent.resume();
        self.agent.kill();
        self.mark.resume_all();
        self.mark.kill_all();
        if let Some(mut events) = self.events.take() {
            let _ = events.kill();
            let _ = events.wait();
        }
        self.loopback = None;
        self.waits.abort_all();
        // Listed again until a look finds none: a `docker run` killed after its request
        // reached the engine may still have its container made.
        for _ in 0..CONTAINER_LOOKS {
            let mut removed = 0;
            for agent_id in &self.agent_ids {
                removed += super::heal::remove_containers_of(
                    &self.settings.docker,
                    &self.settings.docker_socket,
                    agent_id,
                )
                .len();
            }
            if removed == 0 {
                break;
            }
        }
        if let Some(mut decoys) = self.decoys.take() {
            decoys.remove(&self.settings.docker, &self.settings.docker_socket);
        }
        self.decoy_mark.kill_all();
        // Last, once nothing of the run sits in it or binds it.
        if self.small_fs {
            if let Some(done) = small_fs::unmount(&self.dir.work(), &self.run_id) {
                let _ = self.journal.write(Entry::Healed { what: done });
            }
        }
        // A work directory with a mount still on it (another's, stacked over the run's
        // tmpfs) is left: removing its files would empty that mount.
        let still_mounted = self.small_fs
            && small_fs::mounted(&self.dir.work(), &self.run_id) != small_fs::Mounted::No;
        let work = (!still_mounted).then(|| self.dir.work());
        for part in work
            .into_iter()
            .chain([self.dir.cli(), self.dir.www(), self.dir.store_copy()])
        {
            let _ = std::fs::remove_dir_all(part);
        }
        let _ = std::fs::remove_file(self.dir.boot_id());
    }
}

/// How a request that got no successful answer ended: refused when the agent said it did
/// nothing (or nothing reached it), cut off otherwise. Pure.
fn answer_of(error: &ClientError) -> Answer {
    match error {
        ClientError::Connect { .. } => Answer::Refused,
        // The agent said it did nothing (503 with Retry-After), or refused the request.
        ClientError::Status {
            status,
            retry_later,
            ..
        } if *retry_later || status.is_client_error() => Answer::Refused,
        ClientError::Status { .. } => Answer::CutOff,
        ClientError::NotReady {
            why: NotReady::NoSocket | NotReady::Refused | NotReady::Recovering,
            ..
        } => Answer::Refused,
        ClientError::Http { .. } | ClientError::Timeout(..) | ClientError::Body(_) => {
            Answer::CutOff
        }
    }
}

/// Failed starts of the agent in a row (it exited before it served) after which it is not
/// started again.
const FAILED_STARTS: u32 = 3;

/// Whether an agent that exited on its way up, `failed` times in a row, is started again
/// at `now_ms` on the run's clock, whose deadline is `deadline_ms`. Pure.
fn start_again(failed: u32, now_ms: u64, deadline_ms: u64) -> bool {
    // One that only aborted where it was armed to did as asked, however late the run is.
    failed == 0 || (failed < FAILED_STARTS && now_ms < deadline_ms)
}

/// The run's deadline on its clock: the workload, as long as every crash point could be
/// held for, and settling. Pure.
fn deadline_ms(schedule: &Schedule, settle: Duration) -> u64 {
    let holds = schedule
        .faults
        .iter()
        .filter(|f| matches!(f.what, Fault::CrashPoint { .. }))
        .count() as u64
        + 1;
    schedule
        .options
        .duration_ms
        .saturating_add(holds.saturating_mul(schedule.options.crash_point_hold_ms))
        .saturating_add(u64::try_from(settle.as_millis()).unwrap_or(u64::MAX))
}

/// Whether a process, by its arguments, is a call of the Docker CLI (`PROGRAM -H ...`,
/// PROGRAM one of `programs`, by path: the CLI may be `docker.io`). Pure.
fn docker_client(argv: &[String], programs: &[String]) -> bool {
    argv.first().is_some_and(|a| programs.contains(a)) && argv.get(1).is_some_and(|a| a == "-H")
}

/// Requests, faults and their heals in time order. Pure.
fn timeline(schedule: &Schedule) -> Vec<(u64, Item)> {
    let mut items: Vec<(u64, Item)> = schedule
        .requests
        .iter()
        .map(|r| (r.at_ms, Item::Request(r.what.clone())))
        .collect();
    for f in &schedule.faults {
        items.push((f.at_ms, Item::Fault(f.what.clone())));
        let lasts = schedule::lasts_ms(&f.what);
        if lasts > 0 {
            items.push((f.at_ms.saturating_add(lasts), Item::Heal(f.what.clone())));
        }
    }
    items.sort_by_key(|(at, _)| *at);
    // A schedule read back (a replay) may say anything: nothing past the run's end.
    items.retain(|(at, _)| *at <= schedule.options.duration_ms);
    items
}

fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> Result<(), ChaosError> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| ChaosError::io(path, e.into()))?;
    std::fs::write(path, json).map_err(|e| ChaosError::io(path, e))
}

/// Milliseconds since boot, the clock the tasks' start lines use.
fn uptime_ms() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|up| (up * 1000.0) as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heals_follow_their_faults_on_the_timeline() {
        let options = Options {
            duration_ms: 30_000,
            max_faults: 6,
            launches_per_s: 2,
            allow_daemon_faults: false,
            crash_points: vec![],
            kinds: chosen_kinds(None, false).expect("every kind"),
            crash_point_hold_ms: 0,
        };
        for seed in 0..50 {
            let s = schedule::make(seed, &options);
            let items = timeline(&s);
            assert!(items.windows(2).all(|w| w[0].0 <= w[1].0), "seed {seed}");
            let faults = items
                .iter()
                .filter(|(_, i)| matches!(i, Item::Fault(_)))
                .count();
            assert_eq!(faults, s.faults.len());
            for (at, item) in &items {
                if let Item::Heal(fault) = item {
                    let injected = s
                        .faults
                        .iter()
                        .find(|f| &f.what == fault)
                        .expect("a heal follows a fault");
                    assert_eq!(*at, injected.at_ms + schedule::lasts_ms(fault));
                }
            }
        }
    }

    #[test]
    fn an_agent_that_keeps_exiting_on_its_way_up_is_left_down() {
        let cases = [
            (1, 1_000, 60_000, true),
            (2, 1_000, 60_000, true),
            (FAILED_STARTS, 1_000, 60_000, false),
            (10, 1_000, 60_000, false),
            // Past the run's time, not even once more.
            (1, 60_000, 60_000, false),
            (1, 90_000, 60_000, false),
            // Aborted where it was armed to, late in the run: started again, unarmed.
            (0, 90_000, 60_000, true),
        ];
        for (failed, now, deadline, want) in cases {
            assert_eq!(
                start_again(failed, now, deadline),
                want,
                "{failed} failed at {now} of {deadline}"
            );
        }
    }

    #[test]
    fn the_docker_cli_is_known_by_its_path() {
        let programs = ["/usr/bin/docker.io", "/r/cli/docker"].map(str::to_owned);
        let cases = [
            ("/usr/bin/docker.io -H unix:///s run -d img", true),
            ("/r/cli/docker -H unix:///s stop c", true),
            ("/usr/bin/docker -H unix:///s run -d img", false),
            ("/opt/mydocker -H unix:///s run -d img", false),
            ("/usr/bin/docker.io events", false),
            ("/bin/sh /r/cli/docker -H unix:///s stop c", false),
            ("", false),
        ];
        for (line, want) in cases {
            let argv: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            assert_eq!(docker_client(&argv, &programs), want, "{line}");
        }
    }

    #[test]
    fn only_a_request_the_agent_may_have_acted_on_is_cut_off() {
        let socket = PathBuf::from("/s");
        let cases = [
            (
                ClientError::Connect {
                    socket: socket.clone(),
                    source: std::io::Error::other("refused"),
                },
                Answer::Refused,
            ),
            (
                ClientError::Timeout(socket.clone(), Duration::from_secs(1)),
                Answer::CutOff,
            ),
            (
                ClientError::Http {
                    socket: socket.clone(),
                    reason: "connection reset".into(),
                },
                Answer::CutOff,
            ),
            (
                ClientError::Status {
                    status: hyper::StatusCode::SERVICE_UNAVAILABLE,
                    message: "recovering".into(),
                    retry_later: true,
                },
                Answer::Refused,
            ),
        ];
        for (error, want) in cases {
            assert_eq!(answer_of(&error), want, "{error}");
        }
    }
}
