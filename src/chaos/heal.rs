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

use super::decoys::{self, docker_out};
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
            // The journal is a file on disk: what it names is checked before it is acted on.
            Entry::AgentStarted {
                agent_id: Some(agent_id),
                ..
            } if !is_agent_id(&agent_id) => done.push(format!(
                "agent id {agent_id:?} in the journal is not an agent's id (a UUID): nothing is removed for it"
            )),
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
                    if !decoys::is_planned(container, &run.ownership.run_id) {
                        done.push(format!(
                            "decoy container {container:?} in the journal is not a name this run plans for its decoys: left alone"
                        ));
                    } else if let Some(id) = decoy_container(docker, socket, container) {
                        if docker_out(docker, socket, &["rm".into(), "-f".into(), id]).is_ok() {
                            done.push(format!("decoy container {container} removed"));
                        }
                    }
                }
            }
            Entry::Mount { path, .. } => mounted.push(path),
            _ => {}
        }
    }
    // Once nothing of the run sits in it or binds it (its processes and containers are
    // gone), and only the run's own tmpfs on the run's own work directory. Both paths are
    // resolved: the journal's as the harness wrote it, the directory's as given here.
    let work = run.work();
    let resolved = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    if mounted
        .iter()
        .any(|p| resolved(Path::new(p)) == resolved(&work))
    {
        if let Some(what) = super::small_fs::unmount(&work, &run.ownership.run_id) {
            done.push(what);
        }
    }
    for part in [work, run.cli(), run.www(), run.store_copy()] {
        // Emptying a directory the run's tmpfs is still on would empty the tmpfs and leave
        // it mounted, or empty whatever is mounted over it.
        if super::small_fs::mounted(&part, &run.ownership.run_id) != super::small_fs::Mounted::No {
            done.push(format!(
                "{} is left: the run's tmpfs is still mounted there",
                part.display()
            ));
            continue;
        }
        if part.exists() && std::fs::remove_dir_all(&part).is_ok() {
            done.push(format!("{} removed", part.display()));
        }
    }
    if std::fs::remove_file(run.boot_id()).is_ok() {
        done.push("the run's boot id file removed".to_owned());
    }
    Ok(done)
}

/// Whether a journal's agent id is one an agent announces (a UUID). Pure.
fn is_agent_id(agent_id: &str) -> bool {
    agent_id.len() == 36 && uuid::Uuid::try_parse(agent_id).is_ok()
}

/// The id of the container named `name`, if it carries the decoys' label.
fn decoy_container(docker: &Path, socket: &Path, name: &str) -> Option<String> {
    let format = format!(
        "{{{{.Id}}}} {{{{index .Config.Labels {:?}}}}}",
        decoys::LABEL
    );
    let out = docker_out(
        docker,
        socket,
        &[
            "inspect".into(),
            "--type=container".into(),
            "-f".into(),
            format,
            name.to_owned(),
        ],
    )
    .ok()?;
    match out.split_whitespace().collect::<Vec<_>>()[..] {
        [id, "1"] => Some(id.to_owned()),
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::journal::Journal;
    use crate::chaos::run_dir::Ownership;

    #[test]
    fn only_what_the_journal_names_and_the_run_can_have_made_is_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        // A Docker CLI that logs its calls: every decoy it is asked about is labelled.
        let log = dir.path().join("calls");
        let docker = dir.path().join("docker");
        std::fs::write(
            &docker,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\ncase \"$3\" in inspect) echo 'c0ffee 1';; esac\n",
                log.display()
            ),
        )
        .expect("write");
        std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let run = RunDir::create(
            &dir.path().join("run"),
            Ownership {
                run_id: "r1".into(),
                mark: format!("m{unique}"),
                decoy_mark: format!("d{unique}"),
            },
        )
        .expect("create");
        let mut journal = Journal::create(&run.journal()).expect("journal");
        let agent = "0b8b0d0e-8f7a-4b8e-9f4c-6f1d2a3b4c5d";
        for entry in [
            Entry::AgentStarted {
                pid: 1,
                agent_id: Some("x --filter label=y".into()),
                crash_point: None,
            },
            Entry::AgentStarted {
                pid: 1,
                agent_id: Some(agent.into()),
                crash_point: None,
            },
            Entry::Decoy {
                name: "container my-database".into(),
            },
            Entry::Decoy {
                name: "container berth-chaos-decoy-r1".into(),
            },
        ] {
            journal.write(entry).expect("write");
        }
        let done = heal(run.path(), &docker, Path::new("/x.sock")).expect("heal");
        let calls = std::fs::read_to_string(&log).expect("calls");
        assert!(!calls.contains("my-database"), "{calls}");
        assert!(!calls.contains("label=y"), "{calls}");
        assert!(
            calls.contains(&format!("ps -aq --filter label=berth.agent_id={agent}")),
            "{calls}"
        );
        assert!(calls.contains("inspect --type=container"), "{calls}");
        assert!(calls.contains("rm -f c0ffee"), "{calls}");
        let done = done.join("\n");
        assert!(
            done.contains("\"my-database\" in the journal is not a name"),
            "{done}"
        );
        assert!(done.contains("is not an agent's id"), "{done}");
        assert!(
            done.contains("decoy container berth-chaos-decoy-r1 removed"),
            "{done}"
        );
    }

    #[test]
    fn the_runs_tmpfs_is_unmounted_whatever_path_names_the_run() {
        // Real mounts: only as root, as the campaign itself.
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real");
        std::fs::create_dir_all(real.join("sub")).expect("mkdir");
        std::os::unix::fs::symlink(&real, dir.path().join("link")).expect("symlink");
        // Relative to the current directory, through `..` and a symlinked parent.
        let cwd = std::env::current_dir().expect("cwd");
        let up = "../".repeat(cwd.components().count() - 1);
        let typed = std::path::PathBuf::from(format!(
            "{up}{}/link/sub/../run",
            dir.path().display().to_string().trim_start_matches('/')
        ));
        for (n, created_as) in [typed.clone(), real.join("run")].into_iter().enumerate() {
            let unique = uuid::Uuid::new_v4().simple().to_string();
            let run_id = format!("h{}", &unique[..8]);
            let run = RunDir::create(
                &created_as,
                Ownership {
                    run_id: run_id.clone(),
                    mark: format!("m{unique}"),
                    decoy_mark: format!("d{unique}"),
                },
            )
            .expect("create");
            // Mounted and journaled as the harness does, on the directory as it knows it.
            let mut journal = Journal::create(&run.journal()).expect("journal");
            journal
                .write(Entry::Mount {
                    path: run.work().display().to_string(),
                    source: super::super::small_fs::source(&run_id),
                })
                .expect("write");
            super::super::small_fs::mount(&run.work(), &run_id).expect("mount");
            std::fs::write(run.work().join("data"), "x").expect("write");
            let healed = heal(&typed, Path::new("/bin/true"), Path::new("/x.sock"));
            let table = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
            let left = table.contains(&format!(" tmpfs berth-chaos-{run_id} "));
            if left {
                let _ = nix::mount::umount2(
                    &real.join("run").join("work"),
                    nix::mount::MntFlags::MNT_DETACH,
                );
            }
            let done = healed.expect("heal").join("\n");
            assert!(!left, "case {n}: the run's tmpfs is left mounted: {done}");
            assert!(done.contains("unmounted"), "{done}");
            assert!(!real.join("run").join("work").exists(), "{done}");
            std::fs::remove_dir_all(real.join("run")).expect("rm");
        }
    }
}
