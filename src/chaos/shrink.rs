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
/// after each candidate run. What stops it early (a file that cannot be written) is
/// said in [`Shrunk::ended`]: the failed run's verdict stands whatever happens here.
pub async fn shrink(
    settings: &Settings,
    failed: &Finished,
    budget: Duration,
    progress: &mut dyn FnMut(&str),
) -> Option<Shrunk> {
    let kind = cut::target(&failed.verdict)?;
    if budget.is_zero() {
        return None;
    }
    progress(&format!(
        "violated ({kind}): shrinking the schedule for up to {} (--shrink-budget; 0s turns it off)",
        seconds(millis(budget))
    ));
    let mut search = Search {
        settings,
        failed,
        kind,
        budget,
        started: Instant::now(),
        best: failed.schedule.clone(),
        best_verdict: failed.verdict.clone(),
        best_dir: failed.dir.clone(),
        runs: 0,
    };
    let mut ended = search
        .go(progress)
        .await
        .unwrap_or_else(|e| format!("stopped: {e}"));
    let path = failed.dir.join(SCHEDULE);
    let saved = serde_json::to_vec_pretty(&search.best)
        .map_err(std::io::Error::from)
        .and_then(|json| std::fs::write(&path, json));
    if let Err(e) = saved {
        ended.push_str(&format!("; it could not be saved: {e}"));
    }
    Some(Shrunk {
        kind: kind.to_owned(),
        from: cut::size(&failed.schedule),
        to: cut::size(&search.best),
        schedule: path,
        replay: replay_command(settings, &search.best_dir),
        dir: search.best_dir,
        runs: search.runs,
        spent_ms: millis(search.started.elapsed()),
        budget_ms: millis(budget),
        ended,
    })
}

/// A shrink under way: the smallest failing schedule so far and its run.
struct Search<'a> {
    settings: &'a Settings,
    failed: &'a Finished,
    kind: &'static str,
    budget: Duration,
    started: Instant,
    best: Schedule,
    best_verdict: Verdict,
    best_dir: PathBuf,
    runs: u32,
}

impl Search<'_> {
    /// Runs candidates until none fails the same way or the budget is spent; says which.
    async fn go(&mut self, progress: &mut dyn FnMut(&str)) -> Result<String, ChaosError> {
        let log_path = self.failed.dir.join(LOG);
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
        let kind = self.kind;
        let from = cut::size(&self.failed.schedule);
        let mut tried: Vec<Schedule> = Vec::new();
        let (mut taken, mut last_run) = (0u32, Duration::ZERO);
        'search: loop {
            let run_id = RunDir::open(&self.best_dir)?.ownership.run_id;
            let keep: BTreeSet<u32> = cut::named(&self.best_verdict, kind)
                .iter()
                .filter_map(|task| workload::task_index(&run_id, task))
                .collect();
            for candidate in cut::candidates(&self.best, &keep) {
                if tried.contains(&candidate.schedule) {
                    continue;
                }
                if self.started.elapsed() + last_run > self.budget {
                    return Ok("the budget is spent".to_owned());
                }
                let dir = next_free(&self.failed.dir, &mut taken);
                self.runs += 1;
                let run = self.runs;
                write_log(Logged::Candidate {
                    run,
                    dir: &dir,
                    cut: &candidate.cut,
                    size: cut::size(&candidate.schedule),
                })?;
                let ran_at = Instant::now();
                let outcome = run_one(self.settings, &dir, candidate.schedule.clone()).await;
                last_run = ran_at.elapsed();
                let finished = match outcome {
                    Ok(finished) => Some(finished),
                    Err(ChaosError::Refused(why)) => {
                        return Ok(format!("stopped: a candidate's run was refused: {why}"))
                    }
                    // It could not finish: it proves nothing either way.
                    Err(_) => None,
                };
                let fails = finished
                    .as_ref()
                    .is_some_and(|f| cut::fails_as(&f.verdict, kind));
                let (run_id, agent_ids) = ids(&dir);
                let (verdict, kinds) = finished
                    .as_ref()
                    .map_or(("could not finish", vec![]), |f| kinds_of(&f.verdict));
                write_log(Logged::Ran {
                    run,
                    dir: &dir,
                    verdict,
                    kinds,
                    failed_the_same_way: fails,
                    run_id,
                    agent_ids,
                })?;
                let elapsed = format!(
                    "{} of {}",
                    seconds(millis(self.started.elapsed())),
                    seconds(millis(self.budget))
                );
                match finished {
                    Some(finished) if fails => {
                        write_report(&finished, &replay_command(self.settings, &dir))?;
                        if self.best_dir != self.failed.dir {
                            remove(self.settings, &self.best_dir);
                        }
                        self.best = candidate.schedule;
                        self.best_verdict = finished.verdict;
                        self.best_dir = dir;
                        progress(&format!(
                            "shrinking: run {run} ({}) fails too: {}; {elapsed}",
                            candidate.cut,
                            cut_down(&from, &cut::size(&self.best), kind),
                        ));
                        continue 'search;
                    }
                    _ => {
                        remove(self.settings, &dir);
                        tried.push(candidate.schedule);
                        progress(&format!(
                            "shrinking: run {run} ({}) did not fail with {kind}; {elapsed}",
                            candidate.cut,
                        ));
                    }
                }
            }
            return Ok("no smaller schedule fails that way".to_owned());
        }
    }
}

/// The run id and the agent ids of the run in `dir`, from its own files.
fn ids(dir: &Path) -> (Option<String>, BTreeSet<String>) {
    let Ok(run) = RunDir::open(dir) else {
        return (None, BTreeSet::new());
    };
    let agent_ids = journal::read(&run.journal())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|line| match line.entry {
            Entry::AgentStarted { agent_id, .. } => agent_id,
            _ => None,
        })
        .collect();
    (Some(run.ownership.run_id), agent_ids)
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
    let summary = report::summary(finished, replay.to_owned(), None);
    super::report_files::write(finished, &summary).map(drop)
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
