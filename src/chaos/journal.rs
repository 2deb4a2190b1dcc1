//! The harness's own journal: every request and its answer, every fault before it is
//! injected and when it is healed, every agent start. One JSON object per line, synced
//! before the harness acts on it, so that after a crash of the harness itself `heal` knows
//! what to undo and a reader knows what was under way.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use berth_chaos::check::Answer;
use berth_chaos::schedule::{Fault, Request};
use serde::{Deserialize, Serialize};

use super::ChaosError;

/// How the heal of every fault still on, once the workload is over, starts its line.
pub const EVERYTHING_HEALED: &str = "everything";

/// One entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "entry")]
pub enum Entry {
    /// An agent was started.
    AgentStarted {
        /// Its pid.
        pid: u32,
        /// Its id, once it answered (it names the run's containers).
        agent_id: Option<String>,
        /// The crash point it was armed with.
        crash_point: Option<String>,
    },
    /// The agent was seen to have exited, not by the harness's hand.
    AgentExited {
        /// How.
        status: String,
    },
    /// A decoy was made.
    Decoy {
        /// Its name (a container) or pid (a process).
        name: String,
    },
    /// A request is about to be sent.
    Request {
        /// What.
        #[serde(flatten)]
        request: Request,
    },
    /// Its answer.
    Answer {
        /// The task.
        task: u32,
        /// How it ended.
        answer: Answer,
        /// What the agent said, or why there was no answer.
        detail: String,
    },
    /// A fault is about to be injected.
    Fault {
        /// Which.
        #[serde(flatten)]
        fault: Fault,
        /// What it hit, once known.
        target: Option<String>,
    },
    /// The run's small filesystem is about to be mounted on its work directory.
    Mount {
        /// Where.
        path: String,
        /// Its source name, which proves it is the run's.
        source: String,
    },
    /// A byte of the store is about to be flipped (the store copied aside first).
    Flip {
        /// The file.
        file: String,
        /// Where in it.
        offset: u64,
        /// The byte there.
        old: u8,
        /// The byte written.
        new: u8,
    },
    /// Faults were healed (every one still on, when `what` starts with
    /// [`EVERYTHING_HEALED`]).
    Healed {
        /// What was undone.
        what: String,
    },
    /// A step of the liveness probe once the faults healed (not part of the schedule).
    Probe {
        /// Its task.
        task_id: String,
        /// What is about to be done, or how it went.
        step: String,
    },
    /// Anything else worth knowing.
    Note {
        /// What.
        text: String,
    },
}

/// A line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Milliseconds since the run started.
    pub at_ms: u64,
    /// What.
    #[serde(flatten)]
    pub entry: Entry,
}

/// The journal being written.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: std::fs::File,
    start: Instant,
}

impl Journal {
    /// Creates the journal at `path`; the run's clock starts now.
    pub fn create(path: &Path) -> Result<Journal, ChaosError> {
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)
            .map_err(|e| ChaosError::io(path, e))?;
        Ok(Journal {
            path: path.to_owned(),
            file,
            start: Instant::now(),
        })
    }

    /// Milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Writes and syncs an entry.
    pub fn write(&mut self, entry: Entry) -> Result<(), ChaosError> {
        let line = Line {
            at_ms: self.now_ms(),
            entry,
        };
        let mut text =
            serde_json::to_vec(&line).map_err(|e| ChaosError::io(&self.path, e.into()))?;
        text.push(b'\n');
        self.file
            .write_all(&text)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| ChaosError::io(&self.path, e))
    }
}

/// Reads a journal back; a last line cut short by a crash is left out. Pure but for the
/// read.
pub fn read(path: &Path) -> Result<Vec<Line>, ChaosError> {
    let text = std::fs::read_to_string(path).map_err(|e| ChaosError::io(path, e))?;
    Ok(parse(&text))
}

fn parse(text: &str) -> Vec<Line> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_and_a_torn_last_line_is_left_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.jsonl");
        let mut journal = Journal::create(&path).expect("create");
        let entries = [
            Entry::AgentStarted {
                pid: 7,
                agent_id: Some("a".into()),
                crash_point: None,
            },
            Entry::Fault {
                fault: Fault::PauseAgent { for_ms: 300 },
                target: Some("agent 7".into()),
            },
            Entry::Answer {
                task: 3,
                answer: Answer::CutOff,
                detail: "timed out".into(),
            },
        ];
        for e in entries.clone() {
            journal.write(e).expect("write");
        }
        assert!(
            Journal::create(&path).is_err(),
            "never over another run's journal"
        );
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str("{\"at_ms\": 5, \"entry\": \"no");
        let got: Vec<Entry> = parse(&text).into_iter().map(|l| l.entry).collect();
        assert_eq!(got, entries);
    }
}
