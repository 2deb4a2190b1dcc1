//! `berth chaos`: a restart campaign against a real agent and a real Docker engine, judged
//! by a checker that reads only evidence the agent did not write.
//!
//! A run makes its own directory ([`run_dir`]), starts its own agent with a Docker CLI
//! stand-in ([`stand_in`]), makes decoys it must never touch ([`decoys`]), sends the
//! seeded workload ([`workload`]) and injects the seeded faults
//! (`berth_chaos::schedule`), journaling each before it acts ([`journal`]): a full disk
//! on a small filesystem of the run's ([`small_fs`]), a flipped byte of the store
//! ([`store_flip`]), a reboot ([`reboot`], with the boot id of [`boot_id`]), a restart
//! of the Docker daemon ([`daemon_restart`]), among others. Then it heals
//! everything, lets the agent settle, gathers the evidence, asks the checker
//! (`berth_chaos::check`), reports ([`report`], with a [`timeline`] picture and, when
//! asked, a [`junit`] file: [`report_files`]) and removes what it made ([`campaign`]).
//! `berth chaos heal DIR` undoes a run's faults and removes what it made, even after the
//! harness itself was SIGKILLed ([`heal`]). A failing run's schedule is cut down to the
//! smallest that still fails the same way ([`shrink`]).

pub mod agent_process;
pub mod boot_id;
pub mod campaign;
pub mod daemon_restart;
pub mod decoys;
pub mod heal;
pub mod interrupt;
pub mod journal;
pub mod junit;
pub mod loopback;
pub mod offline;
pub mod reboot;
pub mod report;
pub mod report_files;
pub mod run_command;
pub mod run_dir;
pub mod shrink;
pub mod small_fs;
pub mod stand_in;
pub mod store_flip;
pub mod timeline;
pub mod workload;
pub mod xml;

use std::path::{Path, PathBuf};

/// Why a campaign could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// The harness refused to start: nothing was touched.
    #[error("refused: {0}")]
    Refused(String),
    /// A file of the run could not be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The agent under test could not be started or did not answer.
    #[error("the agent under test: {0}")]
    Agent(String),
    /// Docker could not make or read what the run needs.
    #[error("docker: {0}")]
    Docker(String),
}

impl ChaosError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> ChaosError {
        ChaosError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
