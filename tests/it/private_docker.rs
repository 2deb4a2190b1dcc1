//! A `dockerd` of a test's own, for restarting under running tasks. The suite's shared
//! engine is never touched: each one has its own socket, data and exec roots and pid file,
//! and lives in a network namespace of its own, so that it cannot change the host's
//! interfaces (a second daemon with `--bridge=none` in the host's namespace deletes
//! `docker0`). Agents are pointed at it with `--docker_socket`.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use crate::recovery::text;
use crate::support::{eventually, SHELL_IMAGE};

/// A `dockerd` of the test's own, removed with everything it made when dropped.
pub(crate) struct PrivateDocker {
    dir: tempfile::TempDir,
    netns: String,
    live_restore: bool,
    daemon: Option<Child>,
}

impl PrivateDocker {
    pub(crate) async fn start(live_restore: bool) -> PrivateDocker {
        crate::support::require_engine();
        // Short paths: containerd's sockets live under the exec root.
        let dir = tempfile::Builder::new()
            .prefix("bd")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let netns = format!("berth-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let made = Command::new("ip")
            .args(["netns", "add", &netns])
            .output()
            .expect("run ip");
        assert!(made.status.success(), "ip netns add: {}", text(&made));
        let mut docker = PrivateDocker {
            dir,
            netns,
            live_restore,
            daemon: None,
        };
        docker.start_daemon().await;
        // The image, from the shared engine.
        let loaded = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker save {SHELL_IMAGE} | docker -H unix://{} load",
                docker.socket().display()
            ))
            .output()
            .expect("run docker save | load");
        assert!(loaded.status.success(), "load the image: {}", text(&loaded));
        docker
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    pub(crate) fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .output()
            .expect("run docker")
    }

    pub(crate) async fn start_daemon(&mut self) {
        let root = self.dir.path();
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/var/run/netns/{}", self.netns))
            .arg("dockerd")
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .args(["--bridge=none", "--iptables=false"]);
        if self.live_restore {
            command.arg("--live-restore");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("dockerd.log"))
            .expect("log");
        self.daemon = Some(
            command
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start dockerd"),
        );
        eventually(Duration::from_secs(60), "the private dockerd", async || {
            self.cli(&["info"]).status.success().then_some(())
        })
        .await;
    }

    /// Freezes the daemon (SIGSTOP), as a hung one: its socket still takes connections
    /// and nothing answers them. Its containers go on.
    pub(crate) fn pause_daemon(&self) {
        self.signal_daemon(nix::sys::signal::Signal::SIGSTOP);
    }

    /// Lets a paused daemon go on.
    pub(crate) fn resume_daemon(&self) {
        self.signal_daemon(nix::sys::signal::Signal::SIGCONT);
    }

    fn signal_daemon(&self, signal: nix::sys::signal::Signal) {
        // `nsenter` execs the daemon: the child is `dockerd` itself.
        if let Some(pid) = self
            .daemon
            .as_ref()
            .and_then(|d| i32::try_from(d.id()).ok())
        {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
    }

    /// A shell command that restarts the daemon as an operator's restart would: the
    /// running one stopped (SIGTERM; it removes its pid file once it is down), a new one
    /// started with the same roots, detached (it is no child of the test's; [`Drop`] stops
    /// it by its pid file).
    pub(crate) fn restart_command(&self) -> String {
        let root = self.dir.path().display();
        let flags = if self.live_restore {
            " --live-restore"
        } else {
            ""
        };
        format!(
            "kill -TERM $(cat {root}/dockerd.pid) && while [ -e {root}/dockerd.pid ]; do sleep 0.1; done && \
             setsid nsenter --net=/var/run/netns/{netns} dockerd -H unix://{socket} --data-root {root}/data --exec-root {root}/exec --pidfile {root}/dockerd.pid --bridge=none --iptables=false{flags} >>{root}/dockerd.log 2>&1 </dev/null &",
            netns = self.netns,
            socket = self.socket().display(),
        )
    }

    /// Stops a daemon that [`Self::restart_command`] started, by its pid file, once it is
    /// proven to run with this daemon's roots.
    fn stop_restarted(&self) {
        let root = self.dir.path();
        let Some(pid) = std::fs::read_to_string(root.join("dockerd.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        else {
            return;
        };
        let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*root.to_string_lossy()));
        if !ours {
            return;
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::path::Path::new(&format!("/proc/{pid}")).exists()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the daemon (SIGTERM, as an upgrade does) and waits until it is gone.
    pub(crate) fn stop_daemon(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            if let Ok(pid) = i32::try_from(daemon.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let _ = daemon.wait();
        }
    }

    pub(crate) fn container_running(&self, name: &str) -> bool {
        self.cli(&["inspect", "-f", "{{.State.Running}}", name])
            .stdout
            .starts_with(b"true")
    }
}

impl Drop for PrivateDocker {
    fn drop(&mut self) {
        // A test that failed while the daemon was paused: it must answer to be cleaned up.
        self.resume_daemon();
        if self.daemon.is_some() {
            let all = self.cli(&["ps", "-aq"]);
            for id in String::from_utf8_lossy(&all.stdout).split_whitespace() {
                let _ = self.cli(&["rm", "-f", "-v", id]);
            }
        }
        self.stop_daemon();
        self.stop_restarted();
        // What the daemon mounted under its roots (overlays, its shm, the netns file).
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let root = self.dir.path().to_string_lossy().into_owned();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&root))
            .collect();
        ours.sort_unstable_by(|a, b| b.cmp(a));
        for mount in ours {
            let _ = Command::new("umount").args(["-l", mount]).status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}
