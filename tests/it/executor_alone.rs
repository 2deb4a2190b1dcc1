//! An executor whose agent is gone for good: it waits `--recovery_timeout`, then gives up
//! and exits, says why in its log, and leaves its container running for the next agent
//! start to decide about. The agent's absence is real: nothing serves its socket.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth::docker::argv::Command as RunCommand;
use berth::docker::{DockerConfig, RunSpec};
use berth::executor::{ExecutorLaunch, Work};

use crate::support::{docker_ok, eventually, require_engine, Containers, BERTH, SHELL_IMAGE};

/// Kills and reaps the executor, and whatever it left that carries the test's mark (its
/// `docker run`).
struct Cleanup(Child, berth_chaos::sweep::RunMark);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        self.1.kill_all();
    }
}

#[tokio::test]
async fn an_executor_alone_gives_up_after_the_deadline_and_leaves_its_container_running() {
    require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!("berth-test-alone-{}", uuid::Uuid::new_v4());
    let _containers = Containers(vec![name.clone()]);
    let sandbox = dir.path().join("sandbox");
    std::fs::create_dir(&sandbox).expect("sandbox");
    let nobody = dir.path().join("nobody.sock");
    let docker = DockerConfig::default();
    let launch = ExecutorLaunch {
        container_id: uuid::Uuid::new_v4(),
        api_socket: nobody.clone(),
        sandbox: sandbox.clone(),
        docker_program: docker.program,
        docker_socket: docker.socket,
        grace: Duration::from_secs(1),
        report_deadline: Duration::from_secs(1),
        work: Work::Docker(Box::new(RunSpec {
            name: name.clone(),
            image: SHELL_IMAGE.into(),
            command: RunCommand::Shell("sleep 600".into()),
            ..RunSpec::default()
        })),
        rotation: None,
    };
    let mark = berth_chaos::sweep::RunMark::new();
    let (key, value) = mark.env();
    let mut child = Command::new(BERTH)
        .env(key, value)
        .arg("executor")
        .current_dir(&sandbox)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(sandbox.join("executor.log")).expect("log"))
        .spawn()
        .expect("start the executor");
    let mut stdin = child.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, &serde_json::to_vec(&launch).expect("json"))
        .expect("hand over the launch");
    drop(stdin);
    let mut cleanup = Cleanup(child, mark);

    // RUNNING cannot be delivered: the executor gives up although its container runs on.
    let status = eventually(
        Duration::from_secs(60),
        "the executor to give up",
        async || cleanup.0.try_wait().expect("try_wait"),
    )
    .await;
    assert!(!status.success(), "{status}");
    let log = std::fs::read_to_string(sandbox.join("executor.log")).expect("executor.log");
    assert!(
        log.contains(&format!(
            "the agent at {} did not answer for 1s",
            nobody.display()
        )) && log.contains("leaving the container running for the next agent start to decide"),
        "{log}"
    );
    assert_eq!(
        docker_ok(&["inspect", "--format", "{{.State.Running}}", &name]).trim(),
        "true",
        "the executor must not stop its container when it gives up"
    );
}
