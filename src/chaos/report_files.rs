//! The files a finished run leaves for its readers: `report.txt`, `report.json` and
//! `timeline.svg` in its directory, and the JUnit file when one is asked for. The I/O
//! edge of [`super::report`], [`super::timeline`] and [`super::junit`].

use std::path::{Path, PathBuf};

use berth_chaos::check::Verdict;

use super::campaign::Finished;
use super::report::{Summary, TIMELINE};
use super::timeline::{self, Picture};
use super::{journal, junit, ChaosError};

/// Writes the report (text and JSON) and the timeline picture into the run's directory;
/// returns the text and the JSON.
pub fn write(finished: &Finished, summary: &Summary) -> Result<(String, String), ChaosError> {
    let dir = &finished.dir;
    let text = super::report::text(summary);
    let json_path = dir.join("report.json");
    let json =
        serde_json::to_string_pretty(summary).map_err(|e| ChaosError::io(&json_path, e.into()))?;
    let journal = journal::read(&dir.join("journal.jsonl"))?;
    let title = format!(
        "berth chaos: seed {}, {} ({})",
        finished.schedule.seed,
        match &finished.verdict {
            Verdict::Held => "held".to_owned(),
            Verdict::Violated { violations } => format!("violated ({})", violations.len()),
            Verdict::Inconclusive { .. } => "inconclusive".to_owned(),
        },
        dir.display()
    );
    let picture = Picture::of_run(title, finished.length_ms, &journal, &finished.evidence.seen);
    for (name, content) in [
        ("report.txt", &text),
        ("report.json", &json),
        (TIMELINE, &timeline::render(&picture)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(|e| ChaosError::io(&path, e))?;
    }
    Ok((text, json))
}

/// The JUnit suite of a finished run; `replay` is the command that replays it.
pub fn junit_run<'a>(finished: &'a Finished, replay: &str) -> junit::Run<'a> {
    junit::Run {
        name: format!(
            "berth chaos seed {} ({})",
            finished.schedule.seed,
            finished.dir.display()
        ),
        verdict: &finished.verdict,
        crash_points: &finished.crash_points,
        length_ms: finished.length_ms,
        properties: vec![
            ("seed", finished.schedule.seed.to_string()),
            ("dir", finished.dir.display().to_string()),
            ("replay", replay.to_owned()),
            (
                "timeline",
                finished.dir.join(TIMELINE).display().to_string(),
            ),
        ],
    }
}

/// Where the JUnit file `--junit` names goes, made absolute; refused before the run when
/// it could not be written there (no such directory, or a directory), so that a run
/// does not end without it.
pub fn junit_path(path: &Path) -> Result<PathBuf, ChaosError> {
    let path = std::path::absolute(path).map_err(|e| ChaosError::io(path, e))?;
    let parent_is_dir = path.parent().is_some_and(Path::is_dir);
    if !parent_is_dir || path.is_dir() {
        return Err(ChaosError::Refused(format!(
            "--junit {}: {}",
            path.display(),
            if parent_is_dir {
                "is a directory"
            } else {
                "its directory does not exist"
            }
        )));
    }
    Ok(path)
}

/// Writes the JUnit file of `runs` at `path`.
pub fn write_junit(path: &Path, runs: &[junit::Run]) -> Result<(), ChaosError> {
    std::fs::write(path, junit::render(runs)).map_err(|e| ChaosError::io(path, e))
}
