//! `berth chaos heal DIR`: undoes a run's faults and removes what it made, from its
//! directory alone, so that it works after the harness itself was SIGKILLed. Only what
//! the run can be proven to have made is touched: processes carrying its marks, the
//! containers labelled with the ids its agents announced in the journal, the decoys the
//! journal names, the small filesystem the journal says it mounted (only while it is the
//! run's tmpfs, by its source name), its own directory's parts. A run's mount namespace
//! (a run that reboots the host) dies with the run's processes: nothing of it is left to
//! unmount. A flipped byte of the store goes with the store, which is the run's.

use std::path::Path;

use berth_chaos::sweep::RunMark;

use super::decoys::docker_out;
use super::journal::{self, Entry};
use super::run_dir::RunDir;
use super::stand_in::StandIn;
use super::ChaosError;

/// Heals the run in `dir`; says what it did, one line each.
pub fn heal(dir: &Path, docker: &Path, socket: &Path) -> Result<Vec<String>, ChaosError> {
    let run = RunDir::open(dir)?;
    let mut done = Vec::new();
    // A refusal here (a symlink put in place of the switches) must not stop the rest.
    done.push(match StandIn::at(&run.cli()).switch_all_off() {
        Ok(()) => "the Docker CLI stand-in's switches are off".to_owned(),
        Err(e) => format!("the Docker CLI stand-in's switches are left as they are: {e}"),
    });
    let mark = RunMark::from_value(&run.ownership.mark);
    // Resumed first: a stopped process takes SIGKILL too, but an agent left stopped by a
    // dead harness is the one fault that must never outlive it.
    mark.resume_all();
    let killed = mark.kill_all();
    done.push(format!(
        "{killed} process(es) of the run SIGKILLed (resumed first)"
    ));
    let decoy_killed = RunMark::from_value(&run.ownership.decoy_mark).kill_all();
    done.push(format!("{decoy_killed} decoy process(es) removed"));
    let lines = journal::read(&run.journal()).unwrap_or_default();
    let mut mounted = Vec::new();
    for line in lines {
        match line.entry {
            Entry::AgentStarted {
                agent_id: Some(agent_id),
                ..
            } => {
                for id in remove_containers_of(docker, socket, &agent_id) {
                    done.push(format!("container {id} of agent {agent_id} removed"));
                }
            }
            Entry::Decoy { name } => {
                if let Some(container) = name.strip_prefix("container ") {
                    if docker_out(
                        docker,
                        socket,
                        &["rm".into(), "-f".into(), container.to_owned()],
                    )
                    .is_ok()
                    {
                        done.push(format!("decoy container {container} removed"));
                    }
                }
            }
            Entry::Mount { path, .. } => mounted.push(path),
            _ => {}
        }
    }
    // Once nothing of the run sits in it or binds it (its processes and containers are
    // gone), and only the run's own tmpfs on the run's own work directory.
    if mounted.iter().any(|p| Path::new(p) == run.work()) {
        if let Some(what) = super::small_fs::unmount(&run.work(), &run.ownership.run_id) {
            done.push(what);
        }
    }
    for part in [run.work(), run.cli(), run.www(), run.store_copy()] {
        if part.exists() && std::fs::remove_dir_all(&part).is_ok() {
            done.push(format!("{} removed", part.display()));
        }
    }
    if std::fs::remove_file(run.boot_id()).is_ok() {
        done.push("the run's boot id file removed".to_owned());
    }
    Ok(done)
}

/// Removes every container labelled with `agent_id` (an agent the run started: its id is
/// the run's own); returns those removed.
pub fn remove_containers_of(docker: &Path, socket: &Path, agent_id: &str) -> Vec<String> {
    let listed = docker_out(
        docker,
        socket,
        &[
            "ps".into(),
            "-aq".into(),
            "--filter".into(),
            format!("label=berth.agent_id={agent_id}"),
        ],
    )
    .unwrap_or_default();
    listed
        .split_whitespace()
        .filter(|id| {
            docker_out(
                docker,
                socket,
                &["rm".into(), "-f".into(), "-v".into(), (*id).to_owned()],
            )
            .is_ok()
        })
        .map(str::to_owned)
        .collect()
}
