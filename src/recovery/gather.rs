//! The I/O half of recovery's first step: the store's records, Docker's `mesos-`
//! containers (one `docker ps -a`, then each asked of the engine's API), and what /proc says
//! about every recorded executor. Docker is waited for with backoff up to
//! `--recovery_timeout`; one that never answers becomes [`DockerView::Unreachable`] and
//! the plan defers what depends on it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use berth_state::keys::{self, Key};
use berth_state::{PhaseRecord, StatusRecord, Store, StoreError};
use tokio::time::Instant;
use uuid::Uuid;

use super::plan::{DockerView, Inspect, Listed, ProcessSeen, Recorded, Recover, Views, Workload};
use crate::containerizer::restore::{replan, GatherFlags};
use crate::docker::Docker;
use crate::task::Launch;

/// One record as gathered: what the plan reads, and what acting on it needs.
pub struct Gathered {
    /// The container's history, oldest first.
    pub history: Vec<PhaseRecord>,
    /// Its status updates.
    pub statuses: Vec<StatusRecord>,
    /// Its launch planned again from the stored TaskInfo; `None` when that fails (the
    /// record is then held, not acted on, with why).
    pub launch: Option<Launch>,
}

/// Everything gathered at start.
pub struct Gathering {
    /// The plan's input.
    pub views: Views,
    /// Per recorded container, what acting needs.
    pub records: HashMap<Uuid, Gathered>,
}

/// First wait between attempts to reach Docker; doubled up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Gathers the three views.
pub async fn gather(
    store: &Store,
    flags: &GatherFlags,
    docker: &Docker,
    recover: Recover,
    kill_orphans: bool,
) -> Result<Gathering, StoreError> {
    let agent_id = store.meta().agent_id;
    // `join!` polls the listing first, so `docker ps` is already running while the store
    // is read.
    let (docker, read) = tokio::join!(
        list_with_backoff(docker, "mesos-", flags.recovery_timeout),
        async { read_records(store, flags, agent_id, None) }
    );
    let StoreViews {
        records,
        gathered,
        quarantined,
        unplannable,
    } = read?;
    let processes = processes(&records);
    Ok(Gathering {
        views: Views {
            agent_id,
            now_ms: berth_state::now_ms(),
            recover,
            kill_orphans,
            lost_records: store.lost_at_open().is_some(),
            quarantined,
            unplannable,
            records,
            docker,
            processes,
            released: released(flags, &gathered),
            serving: false,
            own_container: own_container(flags),
        },
        records: gathered,
    })
}

/// Gathers the views of one recorded task while the agent serves: its record, its own
/// containers (one `docker ps -a` of its name, no waiting: a Docker that does not answer
/// makes the plan defer) and its executor's identity. The plan made from it decides
/// nothing about any other container.
pub async fn gather_one(
    store: &Store,
    flags: &GatherFlags,
    docker: &Docker,
    id: Uuid,
) -> Result<Gathering, StoreError> {
    let agent_id = store.meta().agent_id;
    let name = crate::docker::ContainerName {
        agent_id: agent_id.to_string(),
        container_id: id,
        executor: false,
    }
    .to_string();
    let docker = list_with_backoff(docker, &name, Duration::ZERO).await;
    let StoreViews {
        records,
        gathered,
        quarantined,
        unplannable,
    } = read_records(store, flags, agent_id, Some(id))?;
    Ok(Gathering {
        views: Views {
            agent_id,
            now_ms: berth_state::now_ms(),
            recover: Recover::Reconnect,
            kill_orphans: false,
            lost_records: store.lost_at_open().is_some(),
            quarantined,
            unplannable,
            processes: processes(&records),
            records,
            docker,
            released: released(flags, &gathered),
            serving: true,
            own_container: own_container(flags),
        },
        records: gathered,
    })
}

/// The agent's own container: the one it found at start, or else the one the work dir
/// names (an agent that ran in a container before; `berth recover --dry-run` on the host).
fn own_container(flags: &GatherFlags) -> Option<String> {
    flags
        .own_container
        .clone()
        .or_else(|| crate::own_container::record::read(&flags.work_dir))
}

/// The recorded containers whose sandbox has the output files an executor makes once it
/// has read its launch.
fn released(flags: &GatherFlags, records: &HashMap<Uuid, Gathered>) -> BTreeSet<Uuid> {
    records
        .keys()
        .filter(|id| flags.sandbox(**id).join("stdout").exists())
        .copied()
        .collect()
}

/// What /proc says of every executor and plain task process the records name.
fn processes(records: &[Recorded]) -> HashMap<berth_state::Identity, ProcessSeen> {
    records
        .iter()
        .flat_map(|r| r.executor.iter().chain(&r.task_process).cloned())
        .map(|identity| {
            let seen = crate::identity::check(&crate::identity::ProcessIdentity {
                boot_id: identity.boot_id.clone(),
                pid: identity.pid,
                start_ticks: identity.start_ticks,
            })
            .map_or_else(
                |e| ProcessSeen::Unreadable(e.to_string()),
                ProcessSeen::from,
            );
            (identity, seen)
        })
        .collect()
}

/// What the store says, read for the plan and for acting on it.
struct StoreViews {
    records: Vec<Recorded>,
    gathered: HashMap<Uuid, Gathered>,
    quarantined: BTreeSet<Uuid>,
    unplannable: BTreeMap<Uuid, String>,
}

/// Reads every record, or only `only`'s.
fn read_records(
    store: &Store,
    flags: &GatherFlags,
    agent_id: Uuid,
    only: Option<Uuid>,
) -> Result<StoreViews, StoreError> {
    let quarantined: BTreeSet<Uuid> = store
        .quarantined()?
        .iter()
        .chain(store.corrupt_at_open())
        .filter_map(|c| match keys::parse(&c.raw_key) {
            Key::Summary(id) | Key::Phase(id, _) | Key::Status(id, _) => Some(id),
            Key::Meta | Key::Tick | Key::Unknown => None,
        })
        .collect();
    let mut records = Vec::new();
    let mut gathered = HashMap::new();
    let mut unplannable = BTreeMap::new();
    let summaries = match only {
        None => store.containers()?,
        Some(id) => store.container(id)?.into_iter().collect(),
    };
    for summary in summaries {
        let id = summary.container_id;
        let history = store.history(id)?;
        let statuses = store.statuses(id)?;
        let launch = match replan(flags, agent_id, id, &history) {
            Ok(launch) => Some(launch),
            // Not corrupt: read whole, it asks for what this agent does not plan. Held
            // with why, so that the decision says what to do.
            Err(e) => {
                tracing::warn!(%id, "the stored task no longer plans ({e}); holding it");
                unplannable.insert(id, e.to_string());
                None
            }
        };
        let workload = launch
            .as_ref()
            .map_or(Workload::DockerTask, |l| Workload::from(&l.kind));
        records.push(Recorded::from_history(&summary, &history, workload));
        gathered.insert(
            id,
            Gathered {
                history,
                statuses,
                launch,
            },
        );
    }
    Ok(StoreViews {
        records,
        gathered,
        quarantined,
        unplannable,
    })
}

async fn list_with_backoff(
    docker: &Docker,
    prefix: &str,
    recovery_timeout: Duration,
) -> DockerView {
    let give_up = Instant::now() + recovery_timeout;
    let mut wait = BACKOFF_START;
    loop {
        match docker.list(prefix).await {
            Ok(found) => {
                return DockerView::Listed(
                    found
                        .into_iter()
                        .map(|listed| Listed {
                            name: listed.name,
                            inspect: match listed.inspect {
                                Ok(info) => Inspect::Found(info),
                                Err(e) => Inspect::Failed(e.to_string()),
                            },
                        })
                        .collect(),
                )
            }
            Err(e) if Instant::now() + wait > give_up => {
                return DockerView::Unreachable(e.to_string());
            }
            Err(e) => {
                tracing::warn!("docker does not answer yet ({e}); retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = crate::backoff::doubled(wait, BACKOFF_MAX);
            }
        }
    }
}
