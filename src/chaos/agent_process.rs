//! The agent under test: started, SIGKILLed, paused and resumed by the harness, which owns
//! it as its child (so its pid is never someone else's while the harness holds it).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use berth_chaos::sweep::{RunMark, Signal};

use super::ChaosError;
use crate::api::client::Client;
use crate::api::wire::{Health, HealthStatus};

/// How the agent is started, each time.
#[derive(Debug, Clone)]
pub struct AgentCommand {
    /// The berth binary.
    pub berth: PathBuf,
    /// Its work directory.
    pub work: PathBuf,
    /// The Docker CLI it is given (the stand-in).
    pub docker: PathBuf,
    /// The engine's socket.
    pub docker_socket: PathBuf,
    /// Where its logs go (one file per start).
    pub logs: PathBuf,
    /// The run's mark, for it and everything it starts.
    pub mark: RunMark,
    /// The run's boot id file, when the agent runs in a mount namespace that sees it as
    /// the kernel's (a run that reboots the host): every start, so that the boot id
    /// stays the run's.
    pub boot_id: Option<PathBuf>,
}

/// The agent, while the harness runs it.
#[derive(Debug)]
pub struct AgentProcess {
    command: AgentCommand,
    child: Option<Child>,
    starts: usize,
}

impl AgentProcess {
    /// Not started yet.
    pub fn new(command: AgentCommand) -> AgentProcess {
        AgentProcess {
            command,
            child: None,
            starts: 0,
        }
    }

    /// The API's client.
    pub fn client(&self) -> Client {
        Client::new(self.command.work.join("berth.sock"))
    }

    /// Starts it, armed to abort at `crash_point` (its `hit`-th time) if given; returns
    /// its pid.
    pub fn start(&mut self, crash_point: Option<(&str, u32)>) -> Result<u32, ChaosError> {
        let log = self.command.logs.join(format!("agent-{}.log", self.starts));
        self.starts += 1;
        let log_file = std::fs::File::create(&log).map_err(|e| ChaosError::io(&log, e))?;
        let (key, value) = self.command.mark.env();
        let args: Vec<std::ffi::OsString> = [
            "agent".into(),
            "--work_dir".into(),
            self.command.work.clone().into(),
            "--docker".into(),
            self.command.docker.clone().into(),
            "--docker_socket".into(),
            self.command.docker_socket.clone().into(),
        ]
        .into_iter()
        .chain(["--docker_remove_delay", "5secs", "--log_format", "json"].map(Into::into))
        .collect();
        let mut command = match &self.command.boot_id {
            Some(file) => {
                // Each step execs the next: the child's pid is the agent's.
                let (program, argv) = super::boot_id::wrapped(file, &self.command.berth, &args);
                let mut command = Command::new(program);
                command.args(argv);
                command
            }
            None => {
                let mut command = Command::new(&self.command.berth);
                command.args(args);
                command
            }
        };
        // The run's agent takes its flags from the run alone, never from an operator's
        // BERTH_/MESOS_ settings (which could name the production socket).
        for name in crate::flag_env::inherited_variables_to_clear() {
            command.env_remove(name);
        }
        command
            .env(key, value)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        match crash_point {
            Some((point, hit)) => {
                command.env("FAILPOINTS", arming(point, hit));
            }
            None => {
                command.env_remove("FAILPOINTS");
            }
        }
        let child = command.spawn().map_err(|e| {
            ChaosError::Agent(format!(
                "cannot start {}: {e}",
                self.command.berth.display()
            ))
        })?;
        let pid = child.id();
        self.child = Some(child);
        Ok(pid)
    }

    /// The boot id file its starts see, if the run reboots the host.
    pub fn boot_id(&self) -> Option<&std::path::Path> {
        self.command.boot_id.as_deref()
    }

    /// The log of its latest start.
    pub fn log(&self) -> PathBuf {
        self.command
            .logs
            .join(format!("agent-{}.log", self.starts.saturating_sub(1)))
    }

    /// Waits up to `patience` until it serves; its id once it does. Else how it exited
    /// first (a crash point hit on the way up), or `None` when it did not answer in time.
    pub async fn ready(&mut self, patience: Duration) -> Result<String, Option<ExitStatus>> {
        let client = self.client();
        let deadline = tokio::time::Instant::now() + patience;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Err(Some(status));
            }
            let health: Result<Health, _> = client.get("/v1/health", Duration::from_secs(2)).await;
            if let Ok(h) = health {
                if h.status == HealthStatus::Ok {
                    return Ok(h.agent_id.to_string());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(None)
    }

    /// Whether it has exited by itself since it was started, and how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            _ => None,
        }
    }

    /// Whether it runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILLs it, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOPs it; true if it was running.
    pub fn pause(&self) -> bool {
        self.signal(Signal::STOP)
    }

    /// SIGCONTs it.
    pub fn resume(&self) -> bool {
        self.signal(Signal::CONT)
    }

    fn signal(&self, signal: Signal) -> bool {
        // Unreaped, the child's pid cannot be anyone else's; the mark is checked as well.
        match &self.child {
            Some(child) => {
                i32::try_from(child.id()).is_ok_and(|pid| self.command.mark.signal(pid, signal))
            }
            None => false,
        }
    }

    /// Its pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.resume();
        self.kill();
    }
}

/// The `FAILPOINTS` value that aborts at `point` on its `hit`-th time (1 is the first).
/// Pure.
pub fn arming(point: &str, hit: u32) -> String {
    match hit.saturating_sub(1) {
        0 => format!("{point}=return"),
        skip => format!("{point}={skip}*off->return"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_hit_skips_the_earlier_ones() {
        assert_eq!(
            arming("record-Running-before", 1),
            "record-Running-before=return"
        );
        assert_eq!(
            arming("docker-stop-after", 3),
            "docker-stop-after=2*off->return"
        );
        assert_eq!(arming("p", 0), "p=return");
    }
}
