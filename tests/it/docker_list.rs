//! Listing: one `docker ps`, however many containers, and each container asked of the
//! engine's API. The CLI used is a pass-through wrapper that logs each invocation before
//! exec'ing the real docker, so the count is of real processes.

use std::collections::BTreeSet;
use std::time::Duration;

use berth::docker::{name, ContainerInfo, ContainerName, ContainerState, Docker, DockerConfig};
use uuid::Uuid;

use crate::engine_stand_in::{EngineStandIn, Fault};
use crate::support::{
    agent_id, docker_at, docker_ok, require_engine, script, Containers, SHELL_IMAGE,
};

fn create(names: &[String]) {
    for n in names {
        docker_ok(&["create", "--name", n, SHELL_IMAGE, "true"]);
    }
}

#[tokio::test]
async fn listing_costs_a_constant_number_of_docker_processes() {
    require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("calls");
    let real = docker_ok(&["version", "--format", "{{.Client.Version}}"]);
    assert!(!real.trim().is_empty());
    let wrapper = script(
        dir.path(),
        "counting-docker",
        &format!("echo \"$*\" >> {}\nexec docker \"$@\"", log.display()),
    );
    let docker = docker_at(&wrapper);
    let calls = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };

    let agent = agent_id();
    let prefix = format!("{}{agent}{}", name::PREFIX, name::SEPARATOR);
    let ours = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| ContainerName::task(&agent, Uuid::new_v4()).to_string())
            .collect()
    };
    let first = ours(50);
    let second = ours(50);
    // Names that contain the prefix but do not start with it.
    let decoys = vec![
        format!("x{}", ContainerName::task(&agent, Uuid::new_v4())),
        format!("other-{}", ContainerName::task(&agent, Uuid::new_v4())),
    ];
    let mut cleanup = Containers(decoys.clone());
    cleanup.0.extend(first.iter().cloned());
    cleanup.0.extend(second.iter().cloned());
    create(&decoys);
    create(&first);
    // One of them running, so states differ.
    docker_ok(&["rm", "-f", &first[0]]);
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &first[0],
        SHELL_IMAGE,
        "sleep",
        "300",
    ]);

    let mut spawns = Vec::new();
    for (batch, total) in [(&first, 50), (&second, 100)] {
        if total == 100 {
            create(batch);
        }
        let before = calls();
        let listed: Vec<ContainerInfo> = docker
            .list(&prefix)
            .await
            .expect("list")
            .into_iter()
            .map(|l| l.inspect.expect("inspected"))
            .collect();
        spawns.push(calls() - before);
        let got: BTreeSet<&str> = listed.iter().map(|c| c.name.as_str()).collect();
        let want: BTreeSet<&str> = first
            .iter()
            .chain(if total == 100 {
                second.iter()
            } else {
                [].iter()
            })
            .map(String::as_str)
            .collect();
        assert_eq!(got, want, "listing {total}");
        let running: Vec<_> = listed
            .iter()
            .filter(|c| c.state == ContainerState::Running)
            .collect();
        assert_eq!(running.len(), 1);
        assert_eq!(running[0].name, first[0]);
        assert!(running[0].pid.is_some());
        assert!(listed
            .iter()
            .filter(|c| c.name != first[0])
            .all(|c| c.state == ContainerState::Created && c.pid.is_none()));
    }
    // `docker ps`; each container is then asked of the engine's API.
    assert_eq!(
        spawns[1], 1,
        "listing 100 spawned {} docker processes",
        spawns[1]
    );
    assert_eq!(
        spawns[0], spawns[1],
        "the cost grew with the number of containers"
    );
}

#[tokio::test]
async fn a_container_removed_between_ps_and_inspect_is_left_out() {
    require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent_id();
    let names: Vec<String> = (0..3)
        .map(|_| ContainerName::task(&agent, Uuid::new_v4()).to_string())
        .collect();
    let _cleanup = Containers(names.clone());
    create(&names);
    // The wrapper removes one container right after `ps` answered, as a concurrent
    // `docker rm` would. The agent calls `docker -H unix://SOCKET ps ...`.
    let wrapper = script(
        dir.path(),
        "racing-docker",
        &format!(
            "if [ \"$3\" = ps ]; then docker \"$@\"; rc=$?; docker rm -f {} >/dev/null; exit $rc; fi\nexec docker \"$@\"",
            names[1]
        ),
    );
    let prefix = format!("{}{agent}{}", name::PREFIX, name::SEPARATOR);
    let listed = docker_at(&wrapper).list(&prefix).await.expect("list");
    let got: BTreeSet<&str> = listed.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(got, BTreeSet::from([names[0].as_str(), names[2].as_str()]));
}

/// Lists three fresh containers of one agent through an engine stand-in that misbehaves
/// for the `odd` one (`fault` for every request naming its full id), and checks that the
/// other two are described and the odd one alone failed with `error`.
async fn one_odd_container(odd: usize, fault: Fault, call_timeout: Duration, error: &str) {
    require_engine();
    let agent = agent_id();
    let names: Vec<String> = (0..3)
        .map(|_| ContainerName::task(&agent, Uuid::new_v4()).to_string())
        .collect();
    let _cleanup = Containers(names.clone());
    create(&names);
    let id = docker_ok(&["inspect", "--format", "{{.Id}}", &names[odd]]);
    let engine = EngineStandIn::start(id.trim(), fault);
    let docker = Docker::new(DockerConfig {
        socket: engine.socket(),
        call_timeout,
        ..DockerConfig::default()
    });
    let prefix = format!("{}{agent}{}", name::PREFIX, name::SEPARATOR);
    let listed = docker.list(&prefix).await.expect("list");
    let described: BTreeSet<&str> = listed
        .iter()
        .filter_map(|l| l.inspect.as_ref().ok().map(|c| c.name.as_str()))
        .collect();
    let others: BTreeSet<&str> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != odd)
        .map(|(_, n)| n.as_str())
        .collect();
    assert_eq!(described, others);
    let failed: Vec<(&str, String)> = listed
        .iter()
        .filter_map(|l| {
            l.inspect
                .as_ref()
                .err()
                .map(|e| (l.name.as_str(), e.to_string()))
        })
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, names[odd]);
    assert!(failed[0].1.contains(error), "{}", failed[0].1);
}

#[tokio::test]
async fn a_container_docker_cannot_describe_does_not_hide_the_others() {
    // A daemon that fails to describe one container (its config damaged on the engine's
    // side) cannot be made for real; the stand-in fails every API request that names it.
    one_odd_container(
        1,
        Fault::Fails("json: cannot unmarshal config"),
        Duration::from_secs(30),
        "cannot unmarshal",
    )
    .await;
}

#[tokio::test]
async fn a_container_whose_inspect_hangs_does_not_hide_the_others() {
    // A daemon that blocks on one container's lock: every inspect that names it hangs.
    one_odd_container(2, Fault::Hangs, Duration::from_secs(2), "did not finish").await;
}
