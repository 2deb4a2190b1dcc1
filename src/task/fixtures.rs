//! Task JSON as Mesos tooling writes it (tests/fixtures/taskinfo, whose README says where
//! each comes from), read and admitted as a user would expect.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::launch::{test_context, BOTH};
use super::{admit, parse, LaunchKind, TaskError};
use crate::docker::argv::{Bind, Limit, Network, PortMapping, Protocol};

const SCHEDULER_LAUNCH: &str =
    include_str!("../../tests/fixtures/taskinfo/mesos-docs-scheduler-launch.json");
const RUNNING_WORKLOADS_LAUNCH: &str =
    include_str!("../../tests/fixtures/taskinfo/mesos-docs-running-workloads-launch.json");
const PROTO3_CAMEL_CASE: &str =
    include_str!("../../tests/fixtures/taskinfo/proto3-camel-case.json");
const PROTO3_PROTO_NAMES: &str =
    include_str!("../../tests/fixtures/taskinfo/proto3-proto-names.json");

#[test]
fn the_scheduler_api_example_is_read_whole_and_its_executor_refused() {
    let parsed = parse(SCHEDULER_LAUNCH.as_bytes()).expect("Mesos's own example");
    assert_eq!(parsed.warnings, Vec::<String>::new());
    let task = parsed.task;
    assert_eq!(task.task_id.value, "12220-3440-12532-my-task");
    assert_eq!(
        task.limits,
        BTreeMap::from([
            ("cpus".to_owned(), f64::INFINITY),
            ("mem".to_owned(), 512.0)
        ])
    );
    let role = task.resources[0]
        .allocation_info
        .as_ref()
        .and_then(|a| a.role.as_deref());
    assert_eq!(role, Some("engineering"));
    // Its executor has no container: berth runs executors only as Docker images.
    assert_eq!(
        admit(&task, &test_context(BOTH)),
        Err(TaskError::ExecutorNotDocker)
    );
}

#[test]
fn the_running_workloads_example_is_refused_for_its_mesos_container() {
    let parsed = parse(RUNNING_WORKLOADS_LAUNCH.as_bytes()).expect("Mesos's own example");
    // The document puts `uris` on the task, where TaskInfo has no such field.
    assert_eq!(parsed.warnings, ["unknown field uris (ignored)"]);
    let refused = admit(&parsed.task, &test_context(BOTH));
    assert_eq!(refused, Err(TaskError::MesosContainer { image: None }));
    let message = refused.expect_err("refused").to_string();
    assert!(
        message.contains(r#"{"type": "DOCKER", "docker": {"image": "<image>"}}"#),
        "{message}"
    );
}

#[test]
fn the_proto3_json_mapping_reads_as_mesos_names_do() {
    let camel = parse(PROTO3_CAMEL_CASE.as_bytes()).expect("proto3 JSON");
    let snake = parse(PROTO3_PROTO_NAMES.as_bytes()).expect("proto3 JSON, proto names");
    assert_eq!(camel.warnings, Vec::<String>::new());
    assert_eq!(snake.warnings, Vec::<String>::new());
    assert_eq!(camel.task, snake.task);

    let launch = admit(&camel.task, &test_context(BOTH)).expect("admitted");
    assert_eq!(launch.warnings, Vec::<String>::new());
    assert_eq!(launch.task_id, "web-1");
    // int64 written as strings.
    assert_eq!(launch.grace, Duration::from_secs(3));
    assert_eq!(launch.max_completion, Some(Duration::from_secs(600)));
    assert_eq!(launch.user.as_deref(), Some("nobody"));
    let LaunchKind::DockerTask { run, .. } = launch.kind else {
        panic!("not a Docker task: {:?}", launch.kind);
    };
    assert_eq!(run.network, Network::Bridge);
    assert_eq!(
        run.port_mappings,
        [PortMapping {
            host_port: 31005,
            container_port: 80,
            protocol: Protocol::Tcp
        }]
    );
    assert_eq!(run.hostname.as_deref(), Some("web-1"));
    assert_eq!((run.cpus, run.mem_mb), (Some(0.5), Some(64)));
    assert_eq!(run.limits.cpus, Some(Limit::Unlimited));
    assert_eq!(run.limits.mem_mb, Some(Limit::At(256.0)));
    assert_eq!(
        run.binds[1],
        Bind {
            host: "/tmp".into(),
            container: Path::new("/mnt/mesos/sandbox/cache").to_owned(),
            read_only: true,
        }
    );
    for variable in [("GREETING", "hello"), ("MESOS_ALLOCATION_ROLE", "web")] {
        let variable = (variable.0.to_owned(), variable.1.to_owned());
        assert!(run.env.contains(&variable), "{variable:?} in {:?}", run.env);
    }
    assert!(run.labels.contains(&("team".to_owned(), "web".to_owned())));
}
