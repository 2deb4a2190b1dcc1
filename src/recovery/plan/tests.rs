//! The decision table, row by row, checked against every combination of the views.
//!
//! `record_rows` and `orphan_rows` are the table of docs/recovery.md (same ids, same
//! order): the first row that matches a case decides it, and each row says the exact
//! action it expects. The table tests run every combination of every axis through
//! [`plan`], so a combination without a row, a row no combination reaches, or a decision
//! that differs from its row fails; `doc_lists_the_same_rows` keeps the doc in step.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use berth_state::{Identity, Phase, PhaseRecord, Summary};

use super::*;
use crate::docker::argv::{labels, RunSpec};
use crate::docker::{ContainerInfo, ContainerState, PullPolicy};
use crate::executor::outcome::REASON_EXECUTOR_TERMINATED;
use crate::identity::Liveness;
use crate::model::TaskState;
use crate::task::LaunchKind;

const AGENT: Uuid = Uuid::from_u128(0x5f0c_4a8e_3b1d_4d59_9a7e_2f4f_9d1c_0b11);
const ID: Uuid = Uuid::from_u128(0x0b8f_2a56_7c3e_4f1a_8d2b_6e9c_1a4f_3d20);
const NOW: u64 = 1_000_000;
const KILL_AT_FUTURE: u64 = 2_000_000;
const KILL_AT_PAST: u64 = 500_000;
const KILL_ASKED_AT: u64 = 900_000;
const KILL_GRACE: u64 = 200_000;
const GRACE_LEFT: u64 = KILL_ASKED_AT + KILL_GRACE - NOW;
const REMOVE_AT: u64 = 1_500_000;
const EXIT: i32 = 3;
/// Why a stored TaskInfo did not plan, as gathering says it.
const UNPLANNABLE: &str = "limits.gpus is not supported: only cpus and mem may have limits";

fn task_name() -> String {
    format!("mesos-{AGENT}.{ID}")
}

fn box_name() -> String {
    format!("mesos-{AGENT}.{ID}.executor")
}

fn identity() -> Identity {
    Identity {
        boot_id: "b1".into(),
        pid: 4242,
        start_ticks: 777,
    }
}

// ---------------------------------------------------------------------------------------
// The axes.

/// The record's stage (`NoPhase`: a history without a phase to decide on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum S {
    NoPhase,
    Accepted,
    Fetching,
    Pulling,
    Starting,
    Running,
    Killing,
    Terminated,
    Removed,
}

/// The task container as Docker shows it (`Unknown`: inspect failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum C {
    Absent,
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
    Unknown,
}

/// The recorded executor as /proc shows it (`None`: no identity recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum E {
    None,
    Alive,
    Gone,
    Reused,
    OtherBoot,
    Unchecked,
}

const MODES: &[Recover] = &[Recover::Reconnect, Recover::Cleanup];
const RECONNECT: &[Recover] = &[Recover::Reconnect];
const CLEANUP: &[Recover] = &[Recover::Cleanup];

const STAGES: &[S] = &[
    S::NoPhase,
    S::Accepted,
    S::Fetching,
    S::Pulling,
    S::Starting,
    S::Running,
    S::Killing,
    S::Terminated,
    S::Removed,
];
const PRE: &[S] = &[S::Accepted, S::Fetching, S::Pulling];
const STARTED: &[S] = &[S::Starting, S::Running];
const NOT_ENDED: &[S] = &[
    S::Accepted,
    S::Fetching,
    S::Pulling,
    S::Starting,
    S::Running,
    S::Killing,
];

const WORKLOADS: &[Workload] = &[
    Workload::DockerTask,
    Workload::DockerExecutor,
    Workload::Process,
];
const DOCKER: &[Workload] = &[Workload::DockerTask, Workload::DockerExecutor];
const EXECUTOR_PROCESS: &[Workload] = &[Workload::DockerTask, Workload::Process];
const TASK_MODE: &[Workload] = &[Workload::DockerTask];
const EXECUTOR_MODE: &[Workload] = &[Workload::DockerExecutor];
const PROCESS: &[Workload] = &[Workload::Process];

const CONTAINERS: &[C] = &[
    C::Absent,
    C::Created,
    C::Running,
    C::Paused,
    C::Restarting,
    C::Exited,
    C::Dead,
    C::Unknown,
];
const PRESENT: &[C] = &[
    C::Created,
    C::Running,
    C::Paused,
    C::Restarting,
    C::Exited,
    C::Dead,
    C::Unknown,
];
const LIVE: &[C] = &[C::Running, C::Paused, C::Restarting];
const MAY_RUN: &[C] = &[C::Running, C::Paused, C::Restarting, C::Unknown];
const NEVER_RAN: &[C] = &[C::Absent, C::Created];
const RAN: &[C] = &[C::Running, C::Paused, C::Restarting, C::Exited, C::Dead];

const EXECUTORS: &[E] = &[
    E::None,
    E::Alive,
    E::Gone,
    E::Reused,
    E::OtherBoot,
    E::Unchecked,
];
const DEAD: &[E] = &[E::None, E::Gone, E::Reused, E::OtherBoot];
const DEAD_THIS_BOOT: &[E] = &[E::None, E::Gone, E::Reused];

#[derive(Debug, Clone, Copy)]
struct Case {
    mode: Recover,
    stage: S,
    workload: Workload,
    container: C,
    executor: E,
    deadline_passed: bool,
    lost_records: bool,
    quarantined: bool,
    unplannable: bool,
    kill_orphans: bool,
}

impl Case {
    fn kill_at(&self) -> Option<u64> {
        Some(if self.deadline_passed {
            KILL_AT_PAST
        } else {
            KILL_AT_FUTURE
        })
    }

    fn alive(&self) -> Option<Identity> {
        (self.executor == E::Alive).then(identity)
    }

    /// The task container, if stopping it matters.
    fn stop(&self) -> Vec<String> {
        if MAY_RUN.contains(&self.container) {
            vec![task_name()]
        } else {
            vec![]
        }
    }

    fn present(&self) -> Vec<String> {
        if self.container == C::Absent {
            vec![]
        } else {
            vec![task_name()]
        }
    }

    fn created(&self) -> Vec<String> {
        if self.container == C::Created {
            vec![task_name()]
        } else {
            vec![]
        }
    }

    /// The outcome a recorded kill ends in: the deadline's, or killed (during launch when
    /// nothing had started).
    fn kill_outcome(&self) -> Outcome {
        if self.deadline_passed {
            failed_deadline()
        } else if self.executor == E::None && NEVER_RAN.contains(&self.container) {
            Outcome::new(TaskState::Killed, REASON_TASK_KILLED_DURING_LAUNCH)
        } else {
            Outcome::new(TaskState::Killed, REASON_TASK_KILLED)
        }
    }

    fn views(&self) -> Views {
        let stage = match self.stage {
            S::NoPhase => None,
            S::Accepted => Some(Stage::Accepted),
            S::Fetching => Some(Stage::Fetching),
            S::Pulling => Some(Stage::Pulling),
            S::Starting => Some(Stage::ExecutorStarting),
            S::Running => Some(Stage::Running),
            S::Killing => Some(Stage::Killing(KillAsked {
                grace_ms: KILL_GRACE,
                requested_at_ms: KILL_ASKED_AT,
                reason: "killed on request".into(),
            })),
            S::Terminated => Some(Stage::Terminated {
                remove_at_ms: REMOVE_AT,
            }),
            S::Removed => Some(Stage::Removed),
        };
        let seen = match self.executor {
            E::None => None,
            E::Alive => Some(ProcessSeen::Alive),
            E::Gone => Some(ProcessSeen::Gone),
            E::Reused => Some(ProcessSeen::Reused),
            E::OtherBoot => Some(ProcessSeen::OtherBoot),
            E::Unchecked => Some(ProcessSeen::Unreadable("permission denied".into())),
        };
        let mut processes = HashMap::new();
        if let Some(seen) = seen.clone() {
            processes.insert(identity(), seen);
        }
        let listed = match container(self.container) {
            Some(inspect) => vec![Listed {
                name: task_name(),
                inspect,
            }],
            None => vec![],
        };
        Views {
            agent_id: AGENT,
            now_ms: NOW,
            recover: self.mode,
            kill_orphans: self.kill_orphans,
            lost_records: self.lost_records,
            quarantined: if self.quarantined {
                BTreeSet::from([ID])
            } else {
                BTreeSet::new()
            },
            unplannable: if self.unplannable {
                BTreeMap::from([(ID, UNPLANNABLE.to_owned())])
            } else {
                BTreeMap::new()
            },
            records: vec![Recorded {
                container_id: ID,
                task_id: "t1".into(),
                workload: self.workload,
                stage,
                kill_at_ms: self.kill_at(),
                executor: seen.map(|_| identity()),
                task_pid: Some(99),
                task_process: None,
                executor_container: None,
            }],
            docker: DockerView::Listed(listed),
            processes,
            released: BTreeSet::new(),
            serving: false,
            own_container: None,
        }
    }
}

fn info(name: &str, state: ContainerState, exit_code: Option<i32>) -> ContainerInfo {
    let parsed = ContainerName::parse(name).ok();
    let mut labels = BTreeMap::new();
    if let Some(n) = parsed {
        labels.insert(labels::AGENT_ID.to_owned(), n.agent_id);
        labels.insert(labels::CONTAINER_ID.to_owned(), n.container_id.to_string());
    }
    ContainerInfo {
        id: "ee76".into(),
        name: name.to_owned(),
        pid: state.is_live().then_some(4681),
        state,
        started_at: None,
        exit_code,
        labels,
        pid_mode: String::new(),
        mounts: Vec::new(),
    }
}

fn container(c: C) -> Option<Inspect> {
    let found = |state, exit| Some(Inspect::Found(info(&task_name(), state, exit)));
    match c {
        C::Absent => None,
        C::Created => found(ContainerState::Created, None),
        C::Running => found(ContainerState::Running, None),
        C::Paused => found(ContainerState::Paused, None),
        C::Restarting => found(ContainerState::Restarting, None),
        C::Exited => found(ContainerState::Exited, Some(EXIT)),
        C::Dead => found(ContainerState::Dead, Some(-1)),
        C::Unknown => Some(Inspect::Failed("the call timed out after 30s".into())),
    }
}

fn failed_deadline() -> Outcome {
    Outcome::new(TaskState::Failed, REASON_MAX_COMPLETION_TIME_REACHED)
}

fn lost(reason: &str, stop: Vec<String>) -> Action {
    Action::End {
        outcome: Outcome::lost(reason),
        exit_code: None,
        stop,
        sweep: None,
    }
}

fn exited() -> Action {
    Action::End {
        outcome: Outcome::new(TaskState::Failed, crate::model::reason::NONE),
        exit_code: Some(EXIT),
        stop: vec![],
        sweep: None,
    }
}

fn not_started() -> Action {
    Action::End {
        outcome: failed_deadline(),
        exit_code: None,
        stop: vec![],
        sweep: None,
    }
}

fn resume(c: &Case, from: ResumeFrom) -> Action {
    Action::Resume {
        from,
        remove_first: c.created(),
        kill_at_ms: c.kill_at(),
    }
}

fn resume_point(s: S) -> ResumeFrom {
    match s {
        S::Accepted | S::Fetching => ResumeFrom::Fetching,
        S::Pulling => ResumeFrom::Pulling,
        _ => ResumeFrom::ExecutorStarting,
    }
}

fn adopt_container(c: &Case, reattach_output: bool) -> Action {
    Action::Adopt {
        watch: Watch::Container { reattach_output },
        kill_at_ms: c.kill_at(),
    }
}

fn finish_kill(c: &Case, stop: Vec<String>, signal: Option<Identity>, wait: bool) -> Action {
    Action::FinishKill {
        outcome: c.kill_outcome(),
        grace_left_ms: GRACE_LEFT,
        stop,
        signal,
        await_executor: wait,
    }
}

// ---------------------------------------------------------------------------------------
// The table.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    Any,
    Yes,
    No,
}

impl Flag {
    fn admits(self, value: bool) -> bool {
        match self {
            Flag::Any => true,
            Flag::Yes => value,
            Flag::No => !value,
        }
    }
}

struct Row {
    id: &'static str,
    mode: &'static [Recover],
    stage: &'static [S],
    workload: &'static [Workload],
    container: &'static [C],
    executor: &'static [E],
    deadline_passed: Flag,
    lost_records: Flag,
    quarantined: Flag,
    unplannable: Flag,
    want: fn(&Case) -> Action,
}

fn row(id: &'static str, want: fn(&Case) -> Action) -> Row {
    Row {
        id,
        mode: MODES,
        stage: STAGES,
        workload: WORKLOADS,
        container: CONTAINERS,
        executor: EXECUTORS,
        deadline_passed: Flag::Any,
        lost_records: Flag::Any,
        quarantined: Flag::Any,
        unplannable: Flag::Any,
        want,
    }
}

impl Row {
    fn mode(self, mode: &'static [Recover]) -> Row {
        Row { mode, ..self }
    }
    fn stage(self, stage: &'static [S]) -> Row {
        Row { stage, ..self }
    }
    fn workload(self, workload: &'static [Workload]) -> Row {
        Row { workload, ..self }
    }
    fn container(self, container: &'static [C]) -> Row {
        Row { container, ..self }
    }
    fn executor(self, executor: &'static [E]) -> Row {
        Row { executor, ..self }
    }
    fn deadline_passed(self, deadline_passed: Flag) -> Row {
        Row {
            deadline_passed,
            ..self
        }
    }
    fn lost_records(self, lost_records: Flag) -> Row {
        Row {
            lost_records,
            ..self
        }
    }
    fn quarantined(self, quarantined: Flag) -> Row {
        Row {
            quarantined,
            ..self
        }
    }
    fn unplannable(self, unplannable: Flag) -> Row {
        Row {
            unplannable,
            ..self
        }
    }

    fn matches(&self, c: &Case) -> bool {
        self.mode.contains(&c.mode)
            && self.stage.contains(&c.stage)
            && self.workload.contains(&c.workload)
            && self.container.contains(&c.container)
            && self.executor.contains(&c.executor)
            && self.deadline_passed.admits(c.deadline_passed)
            && self.lost_records.admits(c.lost_records)
            && self.quarantined.admits(c.quarantined)
            && self.unplannable.admits(c.unplannable)
    }
}

/// The decision table for containers with a record, in docs/recovery.md's order.
fn record_rows() -> Vec<Row> {
    vec![
        // Histories berth cannot act on.
        row("H1", |_| Action::Hold).stage(&[S::NoPhase]),
        row("H2", |_| Action::Hold).quarantined(Flag::Yes),
        row("H3", |_| Action::Hold).unplannable(Flag::Yes),
        row("H4", |_| Action::Hold)
            .workload(PROCESS)
            .container(PRESENT),
        // Removed: nothing left but leftovers.
        row("D1", |_| Action::Done { remove: vec![] })
            .stage(&[S::Removed])
            .container(&[C::Absent]),
        row("D2", |_| Action::Done {
            remove: vec![task_name()],
        })
        .stage(&[S::Removed]),
        // --recover=cleanup.
        row("C1", |_| Action::Defer)
            .mode(CLEANUP)
            .stage(NOT_ENDED)
            .workload(PROCESS)
            .executor(&[E::Unchecked]),
        row("C2", |c| Action::Clean {
            outcome: Some(if c.stage == S::Killing {
                c.kill_outcome()
            } else {
                Outcome::new(TaskState::Killed, REASON_TASK_KILLED)
            }),
            grace_left_ms: (c.stage == S::Killing).then_some(GRACE_LEFT),
            stop: c.stop(),
            signal: c.alive(),
            sweep: None,
            remove: c.present(),
        })
        .mode(CLEANUP)
        .stage(NOT_ENDED),
        row("C3", |c| Action::Clean {
            outcome: None,
            grace_left_ms: None,
            stop: c.stop(),
            signal: c.alive(),
            sweep: None,
            remove: c.present(),
        })
        .mode(CLEANUP)
        .stage(&[S::Terminated]),
        // Terminated: removed at the due time.
        row("T1", |c| Action::RemoveAt {
            at_ms: REMOVE_AT,
            stop: vec![task_name()],
            remove: vec![task_name()],
            answer_executor: c.executor == E::Alive,
        })
        .mode(RECONNECT)
        .stage(&[S::Terminated])
        .container(MAY_RUN),
        row("T2", |c| Action::RemoveAt {
            at_ms: REMOVE_AT,
            stop: vec![],
            remove: c.present(),
            answer_executor: c.executor == E::Alive,
        })
        .mode(RECONNECT)
        .stage(&[S::Terminated]),
        // A kill recorded before the restart is finished.
        row("K1", |_| Action::Defer)
            .mode(RECONNECT)
            .stage(&[S::Killing])
            .workload(PROCESS)
            .executor(&[E::Unchecked]),
        row("K2", |c| finish_kill(c, vec![], Some(identity()), true))
            .mode(RECONNECT)
            .stage(&[S::Killing])
            .workload(PROCESS)
            .executor(&[E::Alive]),
        row("K3", |c| finish_kill(c, vec![], None, false))
            .mode(RECONNECT)
            .stage(&[S::Killing])
            .workload(PROCESS),
        row("K4", |c| finish_kill(c, c.stop(), None, true))
            .mode(RECONNECT)
            .stage(&[S::Killing])
            .workload(TASK_MODE)
            .executor(&[E::Alive]),
        row("K5", |c| finish_kill(c, c.stop(), None, false))
            .mode(RECONNECT)
            .stage(&[S::Killing])
            .workload(DOCKER),
        // Accepted, Fetching, Pulling: no executor yet.
        row("L1", |_| Action::Defer)
            .mode(RECONNECT)
            .stage(PRE)
            .workload(DOCKER)
            .container(&[C::Unknown]),
        row("L2", |_| not_started())
            .mode(RECONNECT)
            .stage(PRE)
            .container(NEVER_RAN)
            .deadline_passed(Flag::Yes),
        row("L3", |c| resume(c, resume_point(c.stage)))
            .mode(RECONNECT)
            .stage(PRE)
            .container(NEVER_RAN),
        row("L4", |_| Action::Hold)
            .mode(RECONNECT)
            .stage(PRE)
            .workload(TASK_MODE)
            .container(RAN)
            .lost_records(Flag::Yes),
        row("L5", |c| lost(REASON_AGENT_RESTARTED, c.stop()))
            .mode(RECONNECT)
            .stage(PRE)
            .workload(TASK_MODE)
            .container(RAN),
        row("L6", |c| adopt_container(c, true))
            .mode(RECONNECT)
            .stage(PRE)
            .workload(EXECUTOR_MODE)
            .container(LIVE),
        row("L7", |_| exited())
            .mode(RECONNECT)
            .stage(PRE)
            .workload(EXECUTOR_MODE)
            .container(&[C::Exited]),
        row("L8", |_| lost(REASON_EXECUTOR_TERMINATED, vec![]))
            .mode(RECONNECT)
            .stage(PRE)
            .workload(EXECUTOR_MODE)
            .container(&[C::Dead]),
        // ExecutorStarting, Running, with a berth executor.
        row("E1", |c| Action::Adopt {
            watch: Watch::Executor,
            kill_at_ms: c.kill_at(),
        })
        .mode(RECONNECT)
        .stage(STARTED)
        .workload(EXECUTOR_PROCESS)
        .executor(&[E::Alive]),
        row("E2", |_| Action::Defer)
            .mode(RECONNECT)
            .stage(STARTED)
            .workload(EXECUTOR_PROCESS)
            .executor(&[E::Unchecked]),
        row("E3", |_| lost(REASON_EXECUTOR_TERMINATED, vec![]))
            .mode(RECONNECT)
            .stage(&[S::Running])
            .workload(PROCESS)
            .executor(DEAD),
        row("E4", |c| lost(REASON_EXECUTOR_TERMINATED, c.stop()))
            .mode(RECONNECT)
            .stage(&[S::Running])
            .workload(TASK_MODE)
            .executor(&[E::OtherBoot]),
        row("E5", |_| Action::Defer)
            .mode(RECONNECT)
            .stage(STARTED)
            .workload(TASK_MODE)
            .container(&[C::Unknown])
            .executor(DEAD),
        row("E6", |_| not_started())
            .mode(RECONNECT)
            .stage(&[S::Starting])
            .workload(EXECUTOR_PROCESS)
            .container(NEVER_RAN)
            .executor(DEAD)
            .deadline_passed(Flag::Yes),
        row("E7", |c| resume(c, ResumeFrom::ExecutorStarting))
            .mode(RECONNECT)
            .stage(&[S::Starting])
            .workload(EXECUTOR_PROCESS)
            .container(NEVER_RAN)
            .executor(DEAD),
        row("E8", |_| {
            lost(REASON_EXECUTOR_TERMINATED, vec![task_name()])
        })
        .mode(RECONNECT)
        .stage(STARTED)
        .workload(TASK_MODE)
        .container(LIVE)
        .executor(DEAD),
        row("E9", |_| lost(REASON_EXECUTOR_TERMINATED, vec![]))
            .mode(RECONNECT)
            .stage(STARTED)
            .workload(TASK_MODE)
            .container(&[C::Exited])
            .executor(&[E::OtherBoot]),
        row("E10", |_| exited())
            .mode(RECONNECT)
            .stage(STARTED)
            .workload(TASK_MODE)
            .container(&[C::Exited])
            .executor(DEAD_THIS_BOOT),
        row("E11", |_| lost(REASON_EXECUTOR_TERMINATED, vec![]))
            .mode(RECONNECT)
            .stage(STARTED)
            .workload(TASK_MODE)
            .container(&[C::Absent, C::Created, C::Dead])
            .executor(DEAD),
        // ExecutorStarting, Running, in executor mode: the container is the executor.
        row("M1", |_| Action::Defer)
            .mode(RECONNECT)
            .stage(STARTED)
            .workload(EXECUTOR_MODE)
            .container(&[C::Unknown]),
        row("M2", |_| lost(REASON_EXECUTOR_TERMINATED, vec![]))
            .mode(RECONNECT)
            .stage(STARTED)
            .workload(EXECUTOR_MODE)
            .container(&[C::Absent]),
        row("M3", |_| lost(REASON_EXECUTOR_TERMINATED, vec![]))
            .mode(RECONNECT)
            .stage(STARTED)
            .workload(EXECUTOR_MODE)
            .container(&[C::Dead]),
        row("M4", |_| Action::Defer)
            .mode(RECONNECT)
            .stage(STARTED)
            .workload(EXECUTOR_MODE)
            .executor(&[E::Unchecked]),
        row("M5", |_| lost(REASON_EXECUTOR_TERMINATED, vec![]))
            .mode(RECONNECT)
            .stage(&[S::Running])
            .workload(EXECUTOR_MODE)
            .container(&[C::Created]),
        row("M6", |c| adopt_container(c, false))
            .mode(RECONNECT)
            .stage(&[S::Starting])
            .workload(EXECUTOR_MODE)
            .container(&[C::Created])
            .executor(&[E::Alive]),
        row("M7", |_| not_started())
            .mode(RECONNECT)
            .stage(&[S::Starting])
            .workload(EXECUTOR_MODE)
            .container(&[C::Created])
            .deadline_passed(Flag::Yes),
        row("M8", |c| resume(c, ResumeFrom::ExecutorStarting))
            .mode(RECONNECT)
            .stage(&[S::Starting])
            .workload(EXECUTOR_MODE)
            .container(&[C::Created]),
        row("M9", |_| {
            lost(REASON_EXECUTOR_TERMINATED, vec![task_name()])
        })
        .mode(RECONNECT)
        .stage(STARTED)
        .workload(EXECUTOR_MODE)
        .container(LIVE)
        .executor(&[E::OtherBoot]),
        row("M10", |c| adopt_container(c, false))
            .mode(RECONNECT)
            .stage(STARTED)
            .workload(EXECUTOR_MODE)
            .container(LIVE)
            .executor(&[E::Alive]),
        row("M11", |c| adopt_container(c, true))
            .mode(RECONNECT)
            .stage(STARTED)
            .workload(EXECUTOR_MODE)
            .container(LIVE),
        row("M12", |_| lost(REASON_EXECUTOR_TERMINATED, vec![]))
            .mode(RECONNECT)
            .stage(STARTED)
            .workload(EXECUTOR_MODE)
            .container(&[C::Exited])
            .executor(&[E::OtherBoot]),
        row("M13", |_| exited())
            .mode(RECONNECT)
            .stage(STARTED)
            .workload(EXECUTOR_MODE)
            .container(&[C::Exited]),
    ]
}

fn record_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for &mode in MODES {
        for &stage in STAGES {
            for &workload in WORKLOADS {
                for &container in CONTAINERS {
                    for &executor in EXECUTORS {
                        for flags in 0..16u8 {
                            cases.push(Case {
                                mode,
                                stage,
                                workload,
                                container,
                                executor,
                                deadline_passed: flags & 1 != 0,
                                lost_records: flags & 2 != 0,
                                quarantined: flags & 4 != 0,
                                unplannable: flags & 8 != 0,
                                kill_orphans: true,
                            });
                        }
                    }
                }
            }
        }
    }
    cases
}

#[test]
fn every_record_case_has_a_row_and_gets_its_action() {
    let rows = record_rows();
    let mut reached = vec![0usize; rows.len()];
    for case in record_cases() {
        let index = rows
            .iter()
            .position(|r| r.matches(&case))
            .unwrap_or_else(|| panic!("no row for {case:?}"));
        reached[index] += 1;
        let got = plan(&case.views());
        assert_eq!(got.decisions.len(), 1, "{case:?}: {got:?}");
        let decision = &got.decisions[0];
        assert_eq!(
            decision.action,
            (rows[index].want)(&case),
            "row {} for {case:?}: {}",
            rows[index].id,
            decision.why
        );
    }
    for (row, n) in rows.iter().zip(reached) {
        assert!(n > 0, "row {} decides no case: it is shadowed", row.id);
    }
}

#[test]
fn a_task_that_no_longer_plans_is_held_with_why_not_as_corrupt() {
    for case in record_cases() {
        if !case.unplannable || case.quarantined || case.stage == S::NoPhase {
            continue;
        }
        let d = &plan(&case.views()).decisions[0];
        assert_eq!(d.action, Action::Hold, "{case:?}");
        assert!(
            matches!(&d.why.ground, Ground::Unplannable { why } if why == UNPLANNABLE),
            "{case:?}: {}",
            d.why
        );
    }
}

#[test]
fn record_decisions_keep_the_promises() {
    for case in record_cases() {
        let got = plan(&case.views());
        let d = &got.decisions[0];
        let ctx = format!("{case:?}: {:?}: {}", d.action, d.why);
        assert_eq!(
            d.subject,
            Subject::Task {
                container_id: ID,
                task_id: "t1".into()
            },
            "{ctx}"
        );
        assert!(
            d.why.to_string().len() > 20 && !d.why.to_string().contains('{'),
            "{ctx}"
        );
        // Never signal what was not checked to be the recorded process.
        if let Action::FinishKill {
            signal: Some(id), ..
        }
        | Action::Clean {
            signal: Some(id), ..
        } = &d.action
        {
            assert_eq!(case.executor, E::Alive, "{ctx}");
            assert_eq!(*id, identity(), "{ctx}");
        }
        // A kill or an end is never undone; a container that may have run is never
        // started again beside or after it.
        if matches!(d.action, Action::Adopt { .. } | Action::Resume { .. }) {
            assert!(
                matches!(
                    case.stage,
                    S::Accepted | S::Fetching | S::Pulling | S::Starting | S::Running
                ),
                "{ctx}"
            );
            assert_eq!(case.mode, Recover::Reconnect, "{ctx}");
        }
        if matches!(d.action, Action::Resume { .. }) {
            assert!(NEVER_RAN.contains(&case.container), "{ctx}");
            assert!(!case.deadline_passed, "{ctx}");
        }
        // A task container never keeps running without a live executor to watch it.
        let unwatched = case.workload == Workload::DockerTask
            && LIVE.contains(&case.container)
            && case.executor != E::Alive;
        if unwatched {
            let stops = match &d.action {
                Action::End { stop, .. }
                | Action::FinishKill { stop, .. }
                | Action::Clean { stop, .. }
                | Action::RemoveAt { stop, .. } => stop.contains(&task_name()),
                Action::Done { remove } => remove.contains(&task_name()),
                Action::Defer | Action::Hold => true,
                _ => false,
            };
            assert!(stops, "{ctx}");
        }
        // Every decision about a live history is written into it.
        assert_eq!(
            d.history_entry().is_some(),
            !matches!(d.action, Action::Done { .. }),
            "{ctx}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Containers without a record.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum N {
    NotBerths,
    OtherAgent,
    Task,
    ExecutorBox,
}

#[derive(Debug, Clone, Copy)]
struct Orphan {
    name: N,
    container: C,
    labels_agree: bool,
    case: Case,
}

impl Orphan {
    fn name(&self) -> String {
        match self.name {
            N::NotBerths => "mesos-slave".into(),
            N::OtherAgent => format!("mesos-slave1.{ID}"),
            N::Task => task_name(),
            N::ExecutorBox => box_name(),
        }
    }

    fn views(&self) -> Views {
        let mut views = self.case.views();
        views.records.clear();
        views.processes.clear();
        let inspect = match container(self.container) {
            Some(Inspect::Found(mut info)) => {
                info.name = self.name();
                if !self.labels_agree {
                    info.labels
                        .insert(labels::AGENT_ID.into(), "someone-else".into());
                }
                Inspect::Found(info)
            }
            Some(failed) => failed,
            None => return views,
        };
        views.docker = DockerView::Listed(vec![Listed {
            name: format!("/{}", self.name()),
            inspect,
        }]);
        views
    }
}

struct OrphanRow {
    id: &'static str,
    name: &'static [N],
    container: &'static [C],
    labels_agree: Flag,
    quarantined: Flag,
    lost_records: Flag,
    kill_orphans: Flag,
    want: fn(&Orphan) -> Action,
}

fn orphan_row(id: &'static str, want: fn(&Orphan) -> Action) -> OrphanRow {
    OrphanRow {
        id,
        name: &[N::Task, N::ExecutorBox],
        container: PRESENT,
        labels_agree: Flag::Any,
        quarantined: Flag::Any,
        lost_records: Flag::Any,
        kill_orphans: Flag::Any,
        want,
    }
}

impl OrphanRow {
    fn matches(&self, o: &Orphan) -> bool {
        self.name.contains(&o.name)
            && self.container.contains(&o.container)
            && self.labels_agree.admits(o.labels_agree)
            && self.quarantined.admits(o.case.quarantined)
            && self.lost_records.admits(o.case.lost_records)
            && self.kill_orphans.admits(o.case.kill_orphans)
    }
}

/// The decision table for containers without a record, in docs/recovery.md's order. The
/// mode does not matter: `--recover=cleanup` treats them as reconnect does.
fn orphan_rows() -> Vec<OrphanRow> {
    vec![
        OrphanRow {
            name: &[N::NotBerths],
            ..orphan_row("O1", |_| Action::LeaveAlone)
        },
        OrphanRow {
            name: &[N::OtherAgent],
            ..orphan_row("O2", |_| Action::LeaveAlone)
        },
        OrphanRow {
            container: &[C::Unknown],
            ..orphan_row("O3", |_| Action::Defer)
        },
        OrphanRow {
            labels_agree: Flag::No,
            ..orphan_row("O4", |_| Action::ReportOrphan)
        },
        OrphanRow {
            quarantined: Flag::Yes,
            ..orphan_row("O5", |_| Action::ReportOrphan)
        },
        OrphanRow {
            lost_records: Flag::Yes,
            ..orphan_row("O6", |_| Action::ReportOrphan)
        },
        OrphanRow {
            kill_orphans: Flag::No,
            ..orphan_row("O7", |_| Action::ReportOrphan)
        },
        orphan_row("O8", |o| Action::RemoveOrphan {
            stop: LIVE.contains(&o.container),
        }),
    ]
}

#[test]
fn every_orphan_case_has_a_row_and_gets_its_action() {
    let rows = orphan_rows();
    let mut reached = vec![0usize; rows.len()];
    for &name in &[N::NotBerths, N::OtherAgent, N::Task, N::ExecutorBox] {
        for &container in PRESENT {
            for flags in 0..32u8 {
                let o = Orphan {
                    name,
                    container,
                    labels_agree: flags & 1 != 0,
                    case: Case {
                        mode: if flags & 16 != 0 {
                            Recover::Cleanup
                        } else {
                            Recover::Reconnect
                        },
                        stage: S::NoPhase,
                        workload: Workload::DockerTask,
                        container,
                        executor: E::None,
                        deadline_passed: false,
                        quarantined: flags & 2 != 0,
                        unplannable: false,
                        lost_records: flags & 4 != 0,
                        kill_orphans: flags & 8 != 0,
                    },
                };
                let index = rows
                    .iter()
                    .position(|r| r.matches(&o))
                    .unwrap_or_else(|| panic!("no row for {o:?}"));
                reached[index] += 1;
                let got = plan(&o.views());
                assert_eq!(got.decisions.len(), 1, "{o:?}: {got:?}");
                let d = &got.decisions[0];
                assert_eq!(d.subject, Subject::Container { name: o.name() }, "{o:?}");
                assert_eq!(
                    d.action,
                    (rows[index].want)(&o),
                    "row {} for {o:?}: {}",
                    rows[index].id,
                    d.why
                );
                assert!(d.why.to_string().contains(&o.name()), "{o:?}: {}", d.why);
                assert_eq!(d.history_entry(), None);
            }
        }
    }
    for (row, n) in rows.iter().zip(reached) {
        assert!(n > 0, "row {} decides no case: it is shadowed", row.id);
    }
}

#[test]
fn doc_lists_the_same_rows() {
    let doc = include_str!("../../../docs/recovery.md");
    let in_doc: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" |").next())
        .map(str::trim)
        .filter(|id| {
            id.len() >= 2
                && id.starts_with(|c: char| c.is_ascii_uppercase())
                && id[1..].chars().all(|c| c.is_ascii_digit())
        })
        .collect();
    let in_tests: Vec<&str> = record_rows()
        .iter()
        .map(|r| r.id)
        .chain(orphan_rows().iter().map(|r| r.id))
        .collect();
    assert_eq!(in_doc, in_tests, "docs/recovery.md and the tests disagree");
}

// ---------------------------------------------------------------------------------------
// What the rows do not show.

fn base(workload: Workload, stage: Stage, executor: Option<ProcessSeen>) -> Views {
    let mut processes = HashMap::new();
    if let Some(seen) = executor.clone() {
        processes.insert(identity(), seen);
    }
    Views {
        agent_id: AGENT,
        now_ms: NOW,
        recover: Recover::Reconnect,
        kill_orphans: true,
        lost_records: false,
        quarantined: BTreeSet::new(),
        unplannable: BTreeMap::new(),
        records: vec![Recorded {
            container_id: ID,
            task_id: "t1".into(),
            workload,
            stage: Some(stage),
            kill_at_ms: None,
            executor: executor.map(|_| identity()),
            task_pid: None,
            task_process: None,
            executor_container: None,
        }],
        docker: DockerView::Listed(vec![]),
        processes,
        released: BTreeSet::new(),
        serving: false,
        own_container: None,
    }
}

fn listing(entries: &[(String, ContainerState, Option<i32>)]) -> DockerView {
    DockerView::Listed(
        entries
            .iter()
            .map(|(name, state, exit)| Listed {
                name: name.clone(),
                inspect: Inspect::Found(info(name, state.clone(), *exit)),
            })
            .collect(),
    )
}

fn only(views: &Views) -> Decision {
    let mut got = plan(views).decisions;
    assert_eq!(got.len(), 1, "{got:?}");
    got.remove(0)
}

#[test]
fn exit_codes_become_the_executors_outcomes() {
    for (exit, state, words) in [
        (Some(0), TaskState::Finished, "exited with status 0"),
        (Some(137), TaskState::Failed, "terminated by signal 9"),
        (None, TaskState::Lost, "no usable exit code"),
    ] {
        let mut views = base(
            Workload::DockerTask,
            Stage::Running,
            Some(ProcessSeen::Gone),
        );
        views.docker = listing(&[(task_name(), ContainerState::Exited, exit)]);
        let d = only(&views);
        match &d.action {
            Action::End {
                outcome, exit_code, ..
            } => {
                assert_eq!(outcome.state, state);
                assert_eq!(*exit_code, exit.filter(|_| state != TaskState::Lost));
            }
            other => panic!("{other:?}"),
        }
        assert!(d.why.to_string().contains(words), "{}", d.why);
    }
}

#[test]
fn an_executor_container_follows_its_task() {
    let both = |task: ContainerState, executor: ContainerState| {
        listing(&[(task_name(), task, None), (box_name(), executor, None)])
    };
    // Adopted: both stay.
    let mut views = base(
        Workload::DockerTask,
        Stage::Running,
        Some(ProcessSeen::Alive),
    );
    views.docker = both(ContainerState::Running, ContainerState::Running);
    assert!(matches!(only(&views).action, Action::Adopt { .. }));
    // Its executor dead: both are stopped.
    views.processes.insert(identity(), ProcessSeen::Gone);
    views.docker = both(ContainerState::Running, ContainerState::Running);
    match only(&views).action {
        Action::End { stop, .. } => assert_eq!(stop, vec![task_name(), box_name()]),
        other => panic!("{other:?}"),
    }
    // Resumed: the dead executor's container goes first, so there are never two.
    views.records[0].stage = Some(Stage::ExecutorStarting);
    views.docker = both(ContainerState::Created, ContainerState::Exited);
    match only(&views).action {
        Action::Resume { remove_first, .. } => {
            assert_eq!(remove_first, vec![task_name(), box_name()])
        }
        other => panic!("{other:?}"),
    }
    // A kill its live executor reports: the executor's container is kept until then.
    views.records[0].stage = Some(Stage::Killing(KillAsked {
        grace_ms: 0,
        requested_at_ms: NOW,
        reason: "killed on request".into(),
    }));
    views.processes.insert(identity(), ProcessSeen::Alive);
    views.docker = both(ContainerState::Running, ContainerState::Running);
    match only(&views).action {
        Action::FinishKill {
            stop,
            await_executor,
            ..
        } => {
            assert_eq!(stop, vec![task_name()]);
            assert!(await_executor);
        }
        other => panic!("{other:?}"),
    }
    // Ended: both are removed at the due time; a live executor's is not stopped early.
    views.records[0].stage = Some(Stage::Terminated {
        remove_at_ms: REMOVE_AT,
    });
    views.docker = both(ContainerState::Exited, ContainerState::Running);
    match only(&views).action {
        Action::RemoveAt {
            stop,
            remove,
            answer_executor,
            ..
        } => {
            assert!(stop.is_empty());
            assert_eq!(remove, vec![task_name(), box_name()]);
            assert!(answer_executor);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn docker_unreachable_defers_what_needs_it_and_kills_nothing() {
    let mut views = base(
        Workload::DockerTask,
        Stage::Running,
        Some(ProcessSeen::Gone),
    );
    views.docker = DockerView::Unreachable("connection refused".into());
    let d = only(&views);
    assert_eq!(d.action, Action::Defer);
    assert!(
        matches!(&d.why.ground, Ground::AskDocker { container, .. } if container.contains("connection refused")),
        "{}",
        d.why
    );
    // A live executor needs no Docker to be re-adopted.
    views.processes.insert(identity(), ProcessSeen::Alive);
    assert!(matches!(only(&views).action, Action::Adopt { .. }));
    // After a reboot the task is lost whatever Docker would say; its container is
    // stopped by name, which Docker will be asked to do until it answers.
    views.processes.insert(identity(), ProcessSeen::OtherBoot);
    assert_eq!(
        only(&views).action,
        lost(REASON_EXECUTOR_TERMINATED, vec![task_name()])
    );
    // A plain process needs no Docker at all.
    let mut views = base(Workload::Process, Stage::Running, Some(ProcessSeen::Alive));
    views.docker = DockerView::Unreachable("connection refused".into());
    assert!(matches!(only(&views).action, Action::Adopt { .. }));
}

#[test]
fn an_identity_not_looked_up_counts_as_unchecked() {
    let mut views = base(
        Workload::DockerTask,
        Stage::Running,
        Some(ProcessSeen::Alive),
    );
    views.processes.clear();
    let d = only(&views);
    assert_eq!(d.action, Action::Defer);
    assert!(
        matches!(&d.why.ground, Ground::ExecutorUnchecked { executor } if executor.contains("not looked up")),
        "{}",
        d.why
    );
}

#[test]
fn docker_states_berth_does_not_know_are_not_guessed() {
    let mut views = base(
        Workload::DockerTask,
        Stage::Running,
        Some(ProcessSeen::Gone),
    );
    views.docker = listing(&[(
        task_name(),
        ContainerState::Unknown("hibernating".into()),
        None,
    )]);
    assert_eq!(only(&views).action, Action::Defer);
    // Being removed is as good as dead.
    views.docker = listing(&[(task_name(), ContainerState::Removing, None)]);
    assert_eq!(
        only(&views).action,
        lost(REASON_EXECUTOR_TERMINATED, vec![])
    );
    // An orphan in a state berth does not know may run: stopped before removal.
    let mut views = base(Workload::DockerTask, Stage::Running, None);
    views.records.clear();
    views.docker = listing(&[(
        task_name(),
        ContainerState::Unknown("hibernating".into()),
        None,
    )]);
    assert_eq!(only(&views).action, Action::RemoveOrphan { stop: true });
}

#[test]
fn one_decision_per_record_and_per_unrecorded_container_in_order() {
    let other = Uuid::from_u128(7);
    let mut views = base(
        Workload::DockerTask,
        Stage::Running,
        Some(ProcessSeen::Alive),
    );
    views.records.push(Recorded {
        container_id: other,
        task_id: "t2".into(),
        workload: Workload::Process,
        stage: Some(Stage::Accepted),
        kill_at_ms: None,
        executor: None,
        task_pid: None,
        task_process: None,
        executor_container: None,
    });
    let orphan = format!("mesos-{AGENT}.{}", Uuid::from_u128(9));
    views.docker = listing(&[
        ("mesos-slave".into(), ContainerState::Running, None),
        (orphan.clone(), ContainerState::Exited, Some(0)),
        (task_name(), ContainerState::Running, None),
        (format!("mesos-x.{ID}"), ContainerState::Running, None),
    ]);
    let got = plan(&views);
    let subjects: Vec<String> = got
        .decisions
        .iter()
        .map(|d| match &d.subject {
            Subject::Task { task_id, .. } => task_id.clone(),
            Subject::Container { name } => name.clone(),
        })
        .collect();
    assert_eq!(
        subjects,
        vec![
            "t1".to_owned(),
            "t2".to_owned(),
            "mesos-slave".to_owned(),
            orphan,
            format!("mesos-x.{ID}"),
        ]
    );
    let actions: Vec<&'static str> = got.decisions.iter().map(|d| d.action.name()).collect();
    assert_eq!(
        actions,
        [
            "re-adopt",
            "resume launch",
            "leave alone",
            "remove orphan",
            "leave alone"
        ]
    );
}

#[test]
fn due_times_come_from_the_views_not_a_clock() {
    let mut views = base(
        Workload::DockerTask,
        Stage::Terminated {
            remove_at_ms: NOW - 1,
        },
        None,
    );
    let d = only(&views);
    assert!(
        matches!(
            d.why.ground,
            Ground::Ended {
                remove: Due::Now,
                ..
            }
        ),
        "{}",
        d.why
    );
    views.records[0].stage = Some(Stage::Terminated {
        remove_at_ms: NOW + 60_000,
    });
    let d = only(&views);
    assert!(
        matches!(d.why.ground, Ground::Ended { remove: Due::At(at), .. } if at == NOW + 60_000),
        "{}",
        d.why
    );
    // What is left of a kill's grace is counted from the views' time too.
    views.records[0].stage = Some(Stage::Killing(KillAsked {
        grace_ms: 10_000,
        requested_at_ms: NOW - 4_000,
        reason: "killed on request".into(),
    }));
    match only(&views).action {
        Action::FinishKill { grace_left_ms, .. } => assert_eq!(grace_left_ms, 6_000),
        other => panic!("{other:?}"),
    }
}

#[test]
fn decisions_are_written_into_the_history() {
    let views = base(
        Workload::DockerTask,
        Stage::Running,
        Some(ProcessSeen::Alive),
    );
    let d = only(&views);
    assert_eq!(
        d.history_entry(),
        Some(Phase::Decision {
            action: "re-adopt".into(),
            why: d.why.to_string(),
        })
    );
    let entry = d.history_entry().expect("a decision");
    let last = Phase::Running {
        container: task_name(),
        pid: None,
    };
    assert!(entry.may_follow(Some(&last)));
}

// ---------------------------------------------------------------------------------------
// Reading a history.

fn summary(last: Phase) -> Summary {
    Summary {
        container_id: ID,
        task_id: "t1".into(),
        last: PhaseRecord {
            seq: 1,
            at_ms: 1,
            container_id: ID,
            phase: last,
        },
        accepted_at_ms: 1,
    }
}

fn history(phases: Vec<Phase>) -> Vec<PhaseRecord> {
    phases
        .into_iter()
        .enumerate()
        .map(|(i, phase)| PhaseRecord {
            seq: i as u64 + 1,
            at_ms: 10 * i as u64,
            container_id: ID,
            phase,
        })
        .collect()
}

fn accepted() -> Phase {
    Phase::Accepted {
        task_id: "t1".into(),
        task_json: "{}".into(),
        kill_at_ms: Some(KILL_AT_FUTURE),
    }
}

fn killing() -> Phase {
    Phase::Killing {
        grace_ms: KILL_GRACE,
        requested_at_ms: KILL_ASKED_AT,
        reason: "killed on request".into(),
    }
}

fn kill_asked() -> KillAsked {
    KillAsked {
        grace_ms: KILL_GRACE,
        requested_at_ms: KILL_ASKED_AT,
        reason: "killed on request".into(),
    }
}

fn starting() -> Phase {
    Phase::ExecutorStarting {
        identity: identity(),
    }
}

fn running() -> Phase {
    Phase::Running {
        container: task_name(),
        pid: Some(55),
    }
}

fn decision() -> Phase {
    Phase::Decision {
        action: "re-adopt".into(),
        why: "w".into(),
    }
}

fn terminated() -> Phase {
    Phase::Terminated {
        state: TaskState::Killed,
        reason: "r".into(),
        message: "m".into(),
        exit_code: None,
        remove_at_ms: REMOVE_AT,
    }
}

#[test]
fn reading_histories() {
    let read = |phases: Vec<Phase>| {
        let last = phases.last().cloned().unwrap_or_else(accepted);
        Recorded::from_history(&summary(last), &history(phases), Workload::DockerTask)
    };
    let r = read(vec![
        accepted(),
        Phase::Fetching,
        starting(),
        running(),
        decision(),
    ]);
    assert_eq!(r.stage, Some(Stage::Running));
    assert_eq!(r.executor, Some(identity()));
    assert_eq!(r.kill_at_ms, Some(KILL_AT_FUTURE));
    assert_eq!(r.task_pid, Some(55));
    assert_eq!(r.task_id, "t1");
    // A kill stands even when a launch step under way records its phase afterwards.
    let r = read(vec![accepted(), starting(), killing(), running()]);
    assert_eq!(r.stage, Some(Stage::Killing(kill_asked())));
    // ... and gives way to the end.
    let r = read(vec![accepted(), killing(), terminated(), decision()]);
    assert_eq!(
        r.stage,
        Some(Stage::Terminated {
            remove_at_ms: REMOVE_AT
        })
    );
    let r = read(vec![accepted(), terminated(), Phase::Removed]);
    assert_eq!(r.stage, Some(Stage::Removed));
    // An executor from before a launch went back to an earlier phase is not this one's.
    let r = read(vec![
        accepted(),
        starting(),
        Phase::Pulling { image: "i".into() },
    ]);
    assert_eq!(r.executor, None);
    assert_eq!(r.stage, Some(Stage::Pulling));
    // The first kill counts.
    let second = Phase::Killing {
        grace_ms: 1,
        requested_at_ms: 2,
        reason: "again".into(),
    };
    let r = read(vec![accepted(), killing(), second]);
    assert_eq!(r.stage, Some(Stage::Killing(kill_asked())));
    // Without a history, the summary's phase; without any phase, nothing to decide on.
    let r = Recorded::from_history(&summary(running()), &[], Workload::Process);
    assert_eq!(r.stage, Some(Stage::Running));
    assert_eq!(r.workload, Workload::Process);
    let r = Recorded::from_history(&summary(decision()), &[], Workload::Process);
    assert_eq!(r.stage, None);
    assert_eq!(only(&base_with(r)).action, Action::Hold);
}

fn base_with(record: Recorded) -> Views {
    let mut views = base(Workload::Process, Stage::Accepted, None);
    views.records = vec![record];
    views
}

#[test]
fn workloads_from_launches_and_modes_from_flags() {
    let spec = RunSpec {
        name: task_name(),
        image: "busybox".into(),
        ..RunSpec::default()
    };
    let cases = [
        (
            LaunchKind::DockerTask {
                run: spec.clone(),
                pull: PullPolicy::IfMissing,
            },
            Workload::DockerTask,
        ),
        (
            LaunchKind::DockerExecutor {
                run: spec,
                pull: PullPolicy::Always,
            },
            Workload::DockerExecutor,
        ),
        (
            LaunchKind::Process {
                argv: vec!["true".into()],
                env: vec![],
            },
            Workload::Process,
        ),
    ];
    for (kind, want) in cases {
        assert_eq!(Workload::from(&kind), want);
    }
    assert_eq!("reconnect".parse(), Ok(Recover::Reconnect));
    assert_eq!(" cleanup\n".parse(), Ok(Recover::Cleanup));
    let err = "kill".parse::<Recover>().expect_err("unknown mode");
    assert!(
        err.contains("reconnect") && err.contains("cleanup"),
        "{err}"
    );
    assert_eq!(Recover::Cleanup.to_string(), "cleanup");
    assert_eq!(
        ProcessSeen::from(Liveness::Rebooted),
        ProcessSeen::OtherBoot
    );
    assert_eq!(ProcessSeen::from(Liveness::Reused), ProcessSeen::Reused);
    assert_eq!(ProcessSeen::from(Liveness::Gone), ProcessSeen::Gone);
    assert_eq!(ProcessSeen::from(Liveness::Alive), ProcessSeen::Alive);
}

// ---------------------------------------------------------------------------------------
// While the agent serves: one task re-planned after its executor exited.

fn serving(
    workload: Workload,
    stage: Stage,
    task: Option<(ContainerState, Option<i32>)>,
) -> Decision {
    let mut views = base(workload, stage, Some(ProcessSeen::Gone));
    views.serving = true;
    if let Some((state, exit)) = task {
        views.docker = listing(&[(task_name(), state, exit)]);
    }
    only(&views)
}

#[test]
fn an_executor_that_died_while_serving_is_never_resumed() {
    let d = serving(Workload::DockerTask, Stage::ExecutorStarting, None);
    assert!(
        matches!(&d.action, Action::End { outcome, .. } if outcome.state == TaskState::Lost),
        "{d:?}"
    );
    assert!(
        matches!(d.why.ground, Ground::DiedWhileServing { .. }),
        "{}",
        d.why
    );
    // At a start, the same record resumes.
    let mut views = base(
        Workload::DockerTask,
        Stage::ExecutorStarting,
        Some(ProcessSeen::Gone),
    );
    views.serving = false;
    assert!(matches!(only(&views).action, Action::Resume { .. }));
}

#[test]
fn a_running_task_whose_executor_died_while_serving_is_stopped_and_lost() {
    let d = serving(
        Workload::DockerTask,
        Stage::Running,
        Some((ContainerState::Running, None)),
    );
    match &d.action {
        Action::End { outcome, stop, .. } => {
            assert_eq!(outcome.state, TaskState::Lost);
            assert_eq!(stop, &vec![task_name()]);
        }
        other => panic!("{other:?}"),
    }
    let d = serving(
        Workload::DockerTask,
        Stage::Running,
        Some((ContainerState::Exited, Some(0))),
    );
    assert!(
        matches!(&d.action, Action::End { outcome, exit_code: Some(0), .. } if outcome.state == TaskState::Finished),
        "{d:?}"
    );
}

#[test]
fn an_executor_mode_container_whose_carrier_died_while_serving_is_carried_on() {
    // The agent reports its end itself; carrying its output on starts nothing.
    let d = serving(
        Workload::DockerExecutor,
        Stage::Running,
        Some((ContainerState::Running, None)),
    );
    assert!(
        matches!(
            &d.action,
            Action::Adopt {
                watch: Watch::Container {
                    reattach_output: true
                },
                ..
            }
        ),
        "{d:?}"
    );
}

#[test]
fn a_plain_process_whose_executor_died_while_serving_names_the_swept_session() {
    let d = serving(Workload::Process, Stage::Running, None);
    assert!(
        matches!(&d.action, Action::End { outcome, .. } if outcome.state == TaskState::Lost),
        "{d:?}"
    );
    assert!(
        matches!(d.why.ground, Ground::SessionKilled { .. }),
        "{}",
        d.why
    );
}

#[test]
fn a_dead_executors_session_is_swept_only_while_the_recorded_task_process_lives() {
    let task = Identity {
        boot_id: "boot".into(),
        pid: 4242,
        start_ticks: 77,
    };
    let decide = |task_seen: Option<ProcessSeen>, executor: ProcessSeen| {
        let mut views = base(Workload::Process, Stage::Running, Some(executor));
        views.records[0].task_process = Some(task.clone());
        if let Some(seen) = task_seen {
            views.processes.insert(task.clone(), seen);
        }
        only(&views)
    };
    let swept = decide(Some(ProcessSeen::Alive), ProcessSeen::Gone);
    match &swept.action {
        Action::End { outcome, sweep, .. } => {
            assert_eq!(outcome.state, TaskState::Lost);
            assert_eq!(sweep.as_ref(), Some(&identity()));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(swept.why.ground, Ground::SessionSwept { .. }),
        "{}",
        swept.why
    );
    // Gone, reused, unreadable or unlooked-up: a bare session id proves nothing.
    for task_seen in [
        Some(ProcessSeen::Gone),
        Some(ProcessSeen::Reused),
        Some(ProcessSeen::Unreadable("EACCES".into())),
        None,
    ] {
        let d = decide(task_seen.clone(), ProcessSeen::Gone);
        assert!(
            matches!(&d.action, Action::End { sweep: None, .. }),
            "{task_seen:?}: {d:?}"
        );
    }
    // The executor's pid in use by another process, or another boot: never swept.
    for executor in [ProcessSeen::Reused, ProcessSeen::OtherBoot] {
        let d = decide(Some(ProcessSeen::Alive), executor.clone());
        assert!(
            matches!(&d.action, Action::End { sweep: None, .. }),
            "{executor:?}: {d:?}"
        );
    }
}

#[test]
fn a_released_plain_process_is_never_started_twice() {
    let mut views = base(
        Workload::Process,
        Stage::ExecutorStarting,
        Some(ProcessSeen::Gone),
    );
    assert!(matches!(only(&views).action, Action::Resume { .. }));
    views.released.insert(ID);
    let d = only(&views);
    assert!(
        matches!(&d.action, Action::End { outcome, .. } if outcome.state == TaskState::Lost),
        "{d:?}"
    );
    assert!(
        matches!(d.why.ground, Ground::ProcessReleased { .. }),
        "{}",
        d.why
    );
}

#[test]
fn a_kill_or_a_cleanup_also_sweeps_a_dead_executors_session() {
    let task = Identity {
        boot_id: "boot".into(),
        pid: 4242,
        start_ticks: 77,
    };
    let stage = Stage::Killing(KillAsked {
        grace_ms: 0,
        requested_at_ms: 0,
        reason: "killed on request".into(),
    });
    for recover in [Recover::Reconnect, Recover::Cleanup] {
        let mut views = base(Workload::Process, stage.clone(), Some(ProcessSeen::Gone));
        views.recover = recover;
        views.records[0].task_process = Some(task.clone());
        views.processes.insert(task.clone(), ProcessSeen::Alive);
        let d = only(&views);
        let sweep = match &d.action {
            Action::End { sweep, outcome, .. } => {
                assert_eq!(outcome.state, TaskState::Killed);
                sweep
            }
            Action::Clean { sweep, .. } => sweep,
            other => panic!("{recover}: {other:?}"),
        };
        assert_eq!(sweep.as_ref(), Some(&identity()), "{recover}");
    }
}

/// `--docker_mesos_image`: an executor whose process lives is re-adopted only while its
/// container is the one recorded (same Docker id, same start) and runs; otherwise the
/// task is LOST and both containers are stopped. Docker that could not inspect the
/// executor's container does not overrule the process seen alive.
#[test]
fn an_executor_container_is_the_one_recorded_or_the_task_is_lost() {
    let started =
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(1_700_000_000_123_456_789);
    let recorded = ("ee76".to_owned(), 1_700_000_000_123_456_789);
    let executor_box = |id: &str, state: ContainerState, at| {
        let mut found = info(&box_name(), state, None);
        found.id = id.to_owned();
        found.started_at = Some(at);
        Listed {
            name: box_name(),
            inspect: Inspect::Found(found),
        }
    };
    let later = started + std::time::Duration::from_secs(5);
    let failed = Listed {
        name: box_name(),
        inspect: Inspect::Failed("timed out".into()),
    };
    let cases: Vec<(&str, Option<Listed>, bool)> = vec![
        (
            "the same, running",
            Some(executor_box("ee76", ContainerState::Running, started)),
            true,
        ),
        ("inspect failed", Some(failed), true),
        ("gone", None, false),
        (
            "started again",
            Some(executor_box("ee76", ContainerState::Running, later)),
            false,
        ),
        (
            "another container of that name",
            Some(executor_box("ff00", ContainerState::Running, started)),
            false,
        ),
        (
            "exited",
            Some(executor_box("ee76", ContainerState::Exited, started)),
            false,
        ),
        (
            "paused counts as running",
            Some(executor_box("ee76", ContainerState::Paused, started)),
            true,
        ),
    ];
    for (what, listed, adopted) in cases {
        let mut views = base(
            Workload::DockerTask,
            Stage::Running,
            Some(ProcessSeen::Alive),
        );
        views.records[0].executor_container = Some(recorded.clone());
        let task = Listed {
            name: task_name(),
            inspect: Inspect::Found(info(&task_name(), ContainerState::Running, None)),
        };
        views.docker = DockerView::Listed(std::iter::once(task).chain(listed).collect());
        let decision = only(&views);
        if adopted {
            assert!(
                matches!(decision.action, Action::Adopt { .. }),
                "{what}: {decision:?}"
            );
        } else {
            let Action::End { outcome, stop, .. } = &decision.action else {
                panic!("{what}: {decision:?}");
            };
            assert_eq!(outcome.state, TaskState::Lost, "{what}");
            assert!(stop.contains(&task_name()), "{what}: {stop:?}");
            assert!(
                matches!(decision.why.ground, Ground::ExecutorReplaced { .. }),
                "{what}: {}",
                decision.why
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The agent's own container (`--docker_mesos_image`).

const OWN: &str = "4e1a1947f94d76a76592af93bdf9f2134a5db9f5fa5e56e23db8997e0b695b2a";

#[test]
fn the_agents_own_container_is_left_alone_whatever_its_name() {
    // Mesos before 1.2 killed its own agent's container, named `mesos-slave`, as an
    // orphan; berth knows its own by id, so a name that parses as this agent's changes
    // nothing either.
    let names = [
        ("a task container's name", task_name()),
        ("an executor container's name", box_name()),
        ("another agent's name", format!("mesos-slave1.{ID}")),
        ("Mesos's own agent name", "mesos-slave".to_owned()),
        ("the documented name", "berth-agent".to_owned()),
    ];
    let states = [
        (ContainerState::Running, None),
        (ContainerState::Exited, Some(137)),
        (ContainerState::Created, None),
    ];
    for (what, name) in &names {
        for (state, exit) in &states {
            for recover in [Recover::Reconnect, Recover::Cleanup] {
                for recorded in [false, true] {
                    let ctx = format!("{what} {name}, {state:?}, {recover}, record {recorded}");
                    let mut own = info(name, state.clone(), *exit);
                    own.id = OWN.into();
                    let mut views = base(Workload::DockerTask, Stage::Running, None);
                    views.recover = recover;
                    if !recorded {
                        views.records.clear();
                    }
                    views.docker = DockerView::Listed(vec![Listed {
                        name: format!("/{name}"),
                        inspect: Inspect::Found(own),
                    }]);
                    views.own_container = Some(OWN.into());
                    let decisions = plan(&views).decisions;
                    let mine: Vec<&Decision> = decisions
                        .iter()
                        .filter(|d| d.subject == Subject::Container { name: name.clone() })
                        .collect();
                    assert_eq!(mine.len(), 1, "{ctx}: {decisions:#?}");
                    assert_eq!(mine[0].action, Action::LeaveAlone, "{ctx}");
                    assert_eq!(
                        mine[0].why.to_string(),
                        format!("container {name} is the agent's own container (--docker_mesos_image); berth never touches it"),
                        "{ctx}"
                    );
                    // No record takes it for its task's container: none stops or removes it.
                    for d in &decisions {
                        assert!(
                            !format!("{:?}", d.action).contains(name.as_str()),
                            "{ctx}: {d:?}"
                        );
                    }
                    assert_eq!(decisions.len(), 1 + usize::from(recorded), "{ctx}");
                }
            }
        }
    }
}

#[test]
fn only_the_container_with_the_agents_id_is_protected() {
    let listed = |id: &str| {
        let mut c = info(&task_name(), ContainerState::Running, None);
        c.id = id.into();
        DockerView::Listed(vec![Listed {
            name: format!("/{}", task_name()),
            inspect: Inspect::Found(c),
        }])
    };
    let other = OWN.replace('4', "5");
    let failed = DockerView::Listed(vec![Listed {
        name: format!("/{}", task_name()),
        inspect: Inspect::Failed("the call timed out after 30s".into()),
    }]);
    let cases = [
        (
            "no own container",
            None,
            listed(OWN),
            Action::RemoveOrphan { stop: true },
        ),
        (
            "another id",
            Some(OWN),
            listed(&other),
            Action::RemoveOrphan { stop: true },
        ),
        ("its id", Some(OWN), listed(OWN), Action::LeaveAlone),
        // Not known to be the agent's, nor known not to be: asked again, never acted on.
        ("an inspect that failed", Some(OWN), failed, Action::Defer),
    ];
    for (what, own, docker, want) in cases {
        let mut views = base(Workload::DockerTask, Stage::Running, None);
        views.records.clear();
        views.docker = docker;
        views.own_container = own.map(str::to_owned);
        assert_eq!(only(&views).action, want, "{what}");
    }
}

/// `--docker_mesos_image` runs a plain-process task's executor in a `.executor` container
/// too: that container is its executor's, not a sign that record and Docker disagree
/// (which a task container would be). And an executor whose process lives outside the
/// container recorded for it never gets a second executor beside it: the task is LOST
/// even at ExecutorStarting, where a dead executor's launch would resume.
#[test]
fn executor_containers_of_plain_processes_and_replaced_executors() {
    let live_box = || Listed {
        name: box_name(),
        inspect: Inspect::Found(info(&box_name(), ContainerState::Running, None)),
    };
    let mut views = base(Workload::Process, Stage::Running, Some(ProcessSeen::Alive));
    views.docker = DockerView::Listed(vec![live_box()]);
    assert!(
        matches!(only(&views).action, Action::Adopt { .. }),
        "{:?}",
        only(&views)
    );

    let mut views = base(Workload::Process, Stage::Running, Some(ProcessSeen::Gone));
    views.docker = DockerView::Listed(vec![live_box()]);
    let Action::End { outcome, stop, .. } = only(&views).action else {
        panic!("{:?}", only(&views));
    };
    assert_eq!(outcome.state, TaskState::Lost);
    assert_eq!(stop, vec![box_name()]);

    let mut views = base(
        Workload::Process,
        Stage::Terminated {
            remove_at_ms: REMOVE_AT,
        },
        None,
    );
    views.docker = DockerView::Listed(vec![live_box()]);
    let Action::RemoveAt { remove, .. } = only(&views).action else {
        panic!("{:?}", only(&views));
    };
    assert_eq!(remove, vec![box_name()]);

    // A task container for a plain process is still a disagreement.
    let mut views = base(Workload::Process, Stage::Running, Some(ProcessSeen::Alive));
    views.docker = listing(&[(task_name(), ContainerState::Running, None)]);
    assert_eq!(only(&views).action, Action::Hold);

    for workload in [Workload::DockerTask, Workload::Process] {
        let mut views = base(workload, Stage::ExecutorStarting, Some(ProcessSeen::Alive));
        views.records[0].executor_container = Some(("another".into(), 1));
        views.docker = DockerView::Listed(vec![live_box()]);
        let decision = only(&views);
        let Action::End { outcome, .. } = &decision.action else {
            panic!("{workload:?}: {decision:?}");
        };
        assert_eq!(outcome.state, TaskState::Lost, "{workload:?}");
    }
}
