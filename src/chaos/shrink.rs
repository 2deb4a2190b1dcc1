//! Shrinking a failing run: smaller schedules (`berth_chaos::shrink`, pure) are run as
//! campaigns of their own, each in a directory of its own next to the failed run's
//! (`DIR-shrink-1`, ...), and the first that fails the same way is taken and cut down in
//! turn, until no smaller one fails so or the budget is spent.
//!
//! "The same way": the failed run's first violation (in the checker's order) names a kind;
//! a candidate fails the same way when it is violated with a violation of that kind among
//! its own. The tasks those violations name are kept whole in every candidate.
//!
//! What is left: in the failed run's directory, `shrunk-schedule.json` (the smallest
//! schedule that failed the same way) and `shrink.jsonl` (each candidate run: what was cut,
//! its directory, run id and agent ids, its verdict); the directory of the run of the
//! smallest schedule, with its report and evidence, which `berth chaos replay` reads. The
//! directories of every other candidate are removed once it ran.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_chaos::check::Verdict;
use berth_chaos::schedule::Schedule;
use berth_chaos::shrink::{self as cut, Size};
use serde::Serialize;

use super::campaign::{self, Finished, Settings};
use super::journal::{self, Entry};
use super::run_dir::RunDir;
use super::{heal, report, workload, ChaosError};

/// The smallest failing schedule, in the failed run's directory.
pub const SCHEDULE: &str = "shrunk-schedule.json";
/// One line per candidate run, in the failed run's directory.
pub const LOG: &str = "shrink.jsonl";

/// What shrinking found.
#[derive(Debug, Clone, Serialize)]
pub struct Shrunk {
    /// The kind of violation held on to.
    pub kind: String,
    /// The failed run's schedule's size.
    pub from: Size,
    /// The smallest failing schedule's size.
    pub to: Size,
    /// Where the smallest failing schedule is saved.
    pub schedule: PathBuf,
    /// The run of the smallest failing schedule (the failed run itself when no smaller
    /// one failed): its report and evidence.
    pub dir: PathBuf,
    /// The command that replays the smallest failing schedule.
    pub replay: String,
    /// Candidates run.
    pub runs: u32,
    /// Time spent, in milliseconds.
    pub spent_ms: u64,
    /// The budget, in milliseconds.
    pub budget_ms: u64,
    /// Why it stopped.
    pub ended: String,
}

impl Shrunk {
    /// Lines for the text report.
    pub fn text(&self) -> String {
        format!(
            "shrunk: {} ({} runs, {} of {}; {})\nshrunk schedule: {} (its run's report and evidence: {})\nreplay the shrunk schedule: {}\n",
            cut_down(&self.from, &self.to, &self.kind),
            self.runs,
            seconds(self.spent_ms),
            seconds(self.budget_ms),
            self.ended,
            self.schedule.display(),
            self.dir.display(),
            self.replay,
        )
    }
}

/// A line of [`LOG`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "entry")]
enum Logged<'a> {
    /// A candidate is about to run (its directory is then `berth chaos heal`'s to clean
    /// if the harness dies).
    Candidate {
        run: u32,
        dir: &'a Path,
        cut: &'a str,
        size: Size,
    },
    /// How it ended.
    Ran {
        run: u32,
        dir: &'a Path,
        verdict: &'a str,
        kinds: Vec<&'static str>,
        failed_the_same_way: bool,
        run_id: Option<String>,
        agent_ids: BTreeSet<String>,
    },
}

/// Shrinks `failed`'s schedule for at most about `budget` (a candidate starts only while
/// the time the last one took still fits), saves the smallest failing one and says what
/// it found; `None` when the run did not fail or the budget is zero. `progress` is told
/// after each candidate run.
pub async fn shrink(
    settings: &Settings,
    failed: &Finished,
    budget: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<Shrunk>, ChaosError> {
    let Some(kind) = cut::target(&failed.verdict) else {
        return Ok(None);
    };
    if budget.is_zero() {
        return Ok(None);
    }
    progress(&format!(
        "violated ({kind}): shrinking the schedule for up to {} (--shrink-budget; 0s turns it off)",
        seconds(millis(budget))
    ));
    let started = Instant::now();
    let log_path = failed.dir.join(LOG);
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| ChaosError::io(&log_path, e))?;
    let mut write_log = |line: Logged| -> Result<(), ChaosError> {
        let mut text =
            serde_json::to_vec(&line).map_err(|e| ChaosError::io(&log_path, e.into()))?;
        text.push(b'\n');
        log.write_all(&text)
            .and_then(|()| log.sync_data())
            .map_err(|e| ChaosError::io(&log_path, e))
    };
    let from = cut::size(&failed.schedule);
    let mut best = failed.schedule.clone();
    let mut best_verdict = failed.verdict.clone();
    let mut best_dir = failed.dir.clone();
    let mut tried: Vec<Schedule> = Vec::new();
    let (mut runs, mut taken, mut last_run) = (0u32, 0u32, Duration::ZERO);
    let ended = 'search: loop {
        let run_id = RunDir::open(&best_dir)?.ownership.run_id;
        let keep: BTreeSet<u32> = cut::named(&best_verdict, kind)
            .iter()
            .filter_map(|task| workload::task_index(&run_id, task))
            .collect();
        for candidate in cut::candidates(&best, &keep) {
            if tried.contains(&candidate.schedule) {
                continue;
            }
            if started.elapsed() + last_run > budget {
                break 'search "the budget is spent".to_owned();
            }
            let dir = next_free(&failed.dir, &mut taken);
            runs += 1;
            write_log(Logged::Candidate {
                run: runs,
                dir: &dir,
                cut: &candidate.cut,
                size: cut::size(&candidate.schedule),
            })?;
            let ran_at = Instant::now();
            let outcome = run_one(settings, &dir, candidate.schedule.clone()).await;
            last_run = ran_at.elapsed();
            let (verdict, fails) = match &outcome {
                Ok(finished) => (
                    Some(finished.verdict.clone()),
                    cut::fails_as(&finished.verdict, kind),
                ),
                Err(ChaosError::Refused(why)) => {
                    break 'search format!("stopped: a candidate's run was refused: {why}")
                }
                Err(_) => (None, false),
            };
            let ids = RunDir::open(&dir).ok().map(|run| {
                let agent_ids = journal::read(&run.journal())
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|line| match line.entry {
                        Entry::AgentStarted { agent_id, .. } => agent_id,
                        _ => None,
                    })
                    .collect();
                (run.ownership.run_id, agent_ids)
            });
            let (run_id, agent_ids) = ids.map_or((None, BTreeSet::new()), |(r, a)| (Some(r), a));
            let (name, kinds) = verdict
                .as_ref()
                .map_or(("could not finish", vec![]), kinds_of);
            write_log(Logged::Ran {
                run: runs,
                dir: &dir,
                verdict: name,
                kinds,
                failed_the_same_way: fails,
                run_id,
                agent_ids,
            })?;
            match (outcome, verdict) {
                (Ok(finished), Some(verdict)) if fails => {
                    write_report(&finished, &replay_command(settings, &dir))?;
                    if best_dir != failed.dir {
                        remove(settings, &best_dir);
                    }
                    best = candidate.schedule;
                    best_verdict = verdict;
                    best_dir = dir;
                    progress(&format!(
                        "shrinking: run {runs} ({}) fails too: {}; {} of {}",
                        candidate.cut,
                        cut_down(&from, &cut::size(&best), kind),
                        seconds(millis(started.elapsed())),
                        seconds(millis(budget)),
                    ));
                    continue 'search;
                }
                _ => {
                    remove(settings, &dir);
                    tried.push(candidate.schedule);
                    progress(&format!(
                        "shrinking: run {runs} ({}) did not fail with {kind}; {} of {}",
                        candidate.cut,
                        seconds(millis(started.elapsed())),
                        seconds(millis(budget)),
                    ));
                }
            }
        }
        break "no smaller schedule fails that way".to_owned();
    };
    let path = failed.dir.join(SCHEDULE);
    let json = serde_json::to_vec_pretty(&best).map_err(|e| ChaosError::io(&path, e.into()))?;
    std::fs::write(&path, json).map_err(|e| ChaosError::io(&path, e))?;
    Ok(Some(Shrunk {
        kind: kind.to_owned(),
        from,
        to: cut::size(&best),
        schedule: path,
        replay: replay_command(settings, &best_dir),
        dir: best_dir,
        runs,
        spent_ms: millis(started.elapsed()),
        budget_ms: millis(budget),
        ended,
    }))
}

/// The verdict's name and its kinds of violation.
fn kinds_of(verdict: &Verdict) -> (&'static str, Vec<&'static str>) {
    match verdict {
        Verdict::Held => ("held", vec![]),
        Verdict::Inconclusive { .. } => ("inconclusive", vec![]),
        Verdict::Violated { violations } => {
            let kinds: BTreeSet<&'static str> = violations.iter().map(|v| v.kind()).collect();
            ("violated", kinds.into_iter().collect())
        }
    }
}

/// Runs `schedule` as a campaign in `dir`, with the failed run's settings otherwise (its
/// sabotage too, so that a harness test's failure shrinks like a real one).
async fn run_one(
    settings: &Settings,
    dir: &Path,
    schedule: Schedule,
) -> Result<Finished, ChaosError> {
    let settings = Settings {
        duration: Duration::from_millis(schedule.options.duration_ms),
        dir: dir.to_owned(),
        ..settings.clone()
    };
    campaign::run(&settings, schedule).await
}

/// `failed`-shrink-N, the first N after `taken` that does not exist.
fn next_free(failed: &Path, taken: &mut u32) -> PathBuf {
    loop {
        *taken += 1;
        let mut dir = failed.as_os_str().to_owned();
        dir.push(format!("-shrink-{taken}"));
        let dir = PathBuf::from(dir);
        if !dir.exists() {
            return dir;
        }
    }
}

/// Removes a candidate's directory, if it is a run's (it was made by the run, which
/// refuses any path that exists): what its run left outside it is healed first.
fn remove(settings: &Settings, dir: &Path) {
    if RunDir::open(dir).is_ok() {
        let _ = heal::heal(dir, &settings.docker, &settings.docker_socket);
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn write_report(finished: &Finished, replay: &str) -> Result<(), ChaosError> {
    let summary = report::summary(finished, replay.to_owned());
    let text_path = finished.dir.join("report.txt");
    std::fs::write(&text_path, report::text(&summary))
        .map_err(|e| ChaosError::io(&text_path, e))?;
    let json_path = finished.dir.join("report.json");
    let json =
        serde_json::to_vec_pretty(&summary).map_err(|e| ChaosError::io(&json_path, e.into()))?;
    std::fs::write(&json_path, json).map_err(|e| ChaosError::io(&json_path, e))
}

/// The command that replays the run in `dir` (its `schedule.json`).
pub fn replay_command(settings: &Settings, dir: &Path) -> String {
    use clap::ValueEnum;
    let sabotage = settings
        .sabotage
        .and_then(|s| s.to_possible_value())
        .map(|v| format!(" --sabotage {}", v.get_name()))
        .unwrap_or_default();
    format!(
        "berth chaos replay {} --settle {}{sabotage}",
        dir.display(),
        crate::duration::format(settings.settle),
    )
}

/// "3 faults -> 1, 9 requests -> 2, 40 s -> 12 s, still failing with decoy_touched".
fn cut_down(from: &Size, to: &Size, kind: &str) -> String {
    format!(
        "{} faults -> {}, {} requests -> {}, {} -> {}, still failing with {kind}",
        from.faults,
        to.faults,
        from.requests,
        to.requests,
        seconds(from.duration_ms),
        seconds(to.duration_ms),
    )
}

fn seconds(ms: u64) -> String {
    humantime::format_duration(Duration::from_secs(ms.div_ceil(1000))).to_string()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_candidate_takes_the_next_free_directory_beside_the_failed_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let failed = dir.path().join("run");
        std::fs::create_dir(dir.path().join("run-shrink-1")).expect("mkdir");
        let mut taken = 0;
        assert_eq!(
            next_free(&failed, &mut taken),
            dir.path().join("run-shrink-2")
        );
        assert_eq!(
            next_free(&failed, &mut taken),
            dir.path().join("run-shrink-3")
        );
    }

    #[test]
    fn progress_says_what_was_cut_and_what_it_still_fails_with() {
        let from = Size {
            faults: 5,
            requests: 9,
            duration_ms: 40_000,
            at_ms_total: 0,
        };
        let to = Size {
            faults: 2,
            requests: 1,
            duration_ms: 12_000,
            at_ms_total: 0,
        };
        assert_eq!(
            cut_down(&from, &to, "leaked"),
            "5 faults -> 2, 9 requests -> 1, 40s -> 12s, still failing with leaked"
        );
        assert_eq!(seconds(190_000), "3m 10s");
    }
}
