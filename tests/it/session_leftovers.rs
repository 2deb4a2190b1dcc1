//! What a SIGKILLed executor leaves: its plain task runs in a process group of its own
//! but in the executor's session, and keeps running. `kill_session_leftovers` ends what
//! is provably the dead executor's, and nothing in another session.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth::executor::{ExecutorLaunch, Work};
use berth::identity::{self, IdentityError, ProcessIdentity};

use crate::support::{eventually, process_alive, BERTH};

/// A real `berth executor` running a plain task, started as the agent starts one: in a
/// session of its own.
struct Executor {
    identity: ProcessIdentity,
    sandbox: PathBuf,
}

impl Executor {
    /// Starts one; `cleanup` keeps its process, to kill and reap.
    fn start(cleanup: &mut Cleanup, name: &str) -> Executor {
        let dir = cleanup.0;
        let (key, value) = cleanup.2.env();
        let sandbox = dir.join(name);
        std::fs::create_dir(&sandbox).expect("sandbox");
        let launch = ExecutorLaunch {
            container_id: uuid::Uuid::new_v4(),
            // Nobody serves it: the reports are retried in the background meanwhile.
            api_socket: dir.join("nobody.sock"),
            sandbox: sandbox.clone(),
            docker_program: "docker".into(),
            docker_socket: "/var/run/docker.sock".into(),
            grace: Duration::from_secs(1),
            report_deadline: Duration::from_secs(600),
            work: Work::Process {
                argv: [
                    "sh",
                    "-c",
                    "sleep 1000 & echo $! > child.pid; echo $$ > task.pid; wait",
                ]
                .map(str::to_owned)
                .to_vec(),
                env: Vec::new(),
            },
            rotation: None,
        };
        // setsid(1) execs in place: a spawned child never leads a process group.
        let mut child = Command::new("setsid")
            .env(key, value)
            .arg(BERTH)
            .arg("executor")
            .current_dir(&sandbox)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(sandbox.join("executor.log")).expect("log"))
            .spawn()
            .expect("start the executor");
        let identity = identity::of_pid(child.id())
            .expect("read /proc")
            .expect("the executor runs");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(&serde_json::to_vec(&launch).expect("json"))
            .expect("hand over the launch");
        drop(stdin);
        cleanup.1.push(child);
        Executor { identity, sandbox }
    }

    /// The task's pid and its child's, once both run; checks they are in the executor's
    /// session, which the test is about.
    async fn task(&self) -> (i32, i32) {
        let read = |name: &str| -> Option<i32> {
            std::fs::read_to_string(self.sandbox.join(name))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        let pids = eventually(
            Duration::from_secs(30),
            "the task and its child",
            async || Some((read("task.pid")?, read("child.pid")?)),
        )
        .await;
        for pid in [pids.0, pids.1] {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
            let stat = identity::parse_stat_line(&stat).expect("a stat line");
            assert_eq!(stat.session, self.identity.pid, "{stat:?}");
        }
        pids
    }
}

/// Kills and reaps the executors, and every process left that carries the test's mark.
struct Cleanup<'a>(&'a Path, Vec<Child>, berth_chaos::sweep::RunMark);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for child in &mut self.1 {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.2.kill_all();
    }
}

#[tokio::test]
async fn a_dead_executors_session_is_swept_and_no_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cleanup = Cleanup(dir.path(), Vec::new(), berth_chaos::sweep::RunMark::new());
    let dead = Executor::start(&mut cleanup, "dead");
    // Started after the dead one: only its session tells it apart.
    let alive = Executor::start(&mut cleanup, "alive");
    let (dead_task, dead_child) = dead.task().await;
    let (alive_task, alive_child) = alive.task().await;

    cleanup.1[0].kill().expect("SIGKILL the executor");
    cleanup.1[0].wait().expect("reap it");
    assert!(
        process_alive(dead_task) && process_alive(dead_child),
        "the task outlives its executor"
    );

    assert_eq!(
        identity::kill_session_leftovers(&dead.identity).expect("sweep"),
        2
    );
    eventually(
        Duration::from_secs(10),
        "the dead executor's task and its child to end",
        async || (!process_alive(dead_task) && !process_alive(dead_child)).then_some(()),
    )
    .await;
    assert!(process_alive(alive_task) && process_alive(alive_child));

    // A running executor's session is its own.
    let err = identity::kill_session_leftovers(&alive.identity).expect_err("still running");
    assert!(matches!(err, IdentityError::StillRunning(_)), "{err}");
    assert!(process_alive(alive_task) && process_alive(alive_child));
}
