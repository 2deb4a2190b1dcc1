//! Sweeping up after a test or benchmark whose agent was SIGKILLed: its executors, and the
//! `docker run` each started, outlive it on purpose, and they run in their sandboxes.

use std::path::Path;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// SIGKILLs every process whose working directory is under `dir`.
pub fn kill_processes_under(dir: &Path) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir)) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}
