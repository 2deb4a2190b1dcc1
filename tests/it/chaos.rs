//! `berth chaos` as its users run it: the schedule a seed makes, refusals that touch
//! nothing, and a short campaign against the real engine that leaves nothing behind.

use std::process::{Command, Stdio};

use crate::support::{docker_cli, BERTH};

fn berth(args: &[&str]) -> std::process::Output {
    Command::new(BERTH).args(args).output().expect("run berth")
}

#[test]
fn a_seed_makes_the_same_schedule_every_time_and_a_dry_run_touches_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    let args = [
        "chaos",
        "run",
        "--seed",
        "7",
        "--duration",
        "20secs",
        "--dry-run",
        "--dir",
        run.to_str().expect("utf-8"),
    ];
    let first = berth(&args);
    assert!(first.status.success(), "{first:?}");
    let schedule: serde_json::Value = serde_json::from_slice(&first.stdout).expect("JSON");
    assert_eq!(schedule["seed"], 7);
    assert!(!schedule["faults"].as_array().expect("faults").is_empty());
    assert_eq!(berth(&args).stdout, first.stdout, "the same schedule");
    assert!(!run.exists(), "a dry run makes nothing");
}

#[test]
fn a_reader_that_goes_away_is_no_panic() {
    // An hour's schedule is far more than a pipe holds: the write meets a closed pipe.
    let mut child = Command::new(BERTH)
        .args([
            "chaos",
            "run",
            "--seed",
            "1",
            "--duration",
            "1hrs",
            "--dry-run",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_directory_the_harness_did_not_make_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("theirs"), "keep").expect("write");
    let path = dir.path().to_str().expect("utf-8");
    let run = berth(&["chaos", "run", "--seed", "1", "--dir", path]);
    assert_eq!(run.status.code(), Some(3), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stderr).contains("not empty"));
    // A JUnit file that could not be written is refused before the run makes anything.
    let run_dir = dir.path().join("run");
    let nowhere = dir.path().join("no-such-dir").join("junit.xml");
    for junit in [nowhere.as_path(), dir.path()] {
        let run = berth(&[
            "chaos",
            "run",
            "--seed",
            "1",
            "--dir",
            run_dir.to_str().expect("utf-8"),
            "--junit",
            junit.to_str().expect("utf-8"),
        ]);
        assert_eq!(run.status.code(), Some(3), "{run:?}");
        assert!(String::from_utf8_lossy(&run.stderr).contains("--junit"));
        assert!(!run_dir.exists());
    }
    let heal = berth(&["chaos", "heal", path]);
    assert_eq!(heal.status.code(), Some(3), "{heal:?}");
    assert!(String::from_utf8_lossy(&heal.stderr).contains("not made by"));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["theirs"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("theirs")).expect("read"),
        "keep"
    );
}

#[test]
fn a_short_campaign_holds_and_leaves_only_its_report() {
    campaign_holds("1");
}

#[test]
fn a_short_campaign_with_a_random_seed_holds() {
    let seed = berth_chaos::jitter::Jitter::seed_from_clock().to_string();
    // Printed, so that a failure can be replayed: `berth chaos run --seed SEED ...`.
    eprintln!("chaos seed: {seed}");
    campaign_holds(&seed);
}

fn campaign_holds(seed: &str) {
    crate::support::require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    let junit = dir.path().join("junit.xml");
    let out = berth(&[
        "chaos",
        "run",
        "--seed",
        seed,
        "--duration",
        "20secs",
        "--settle",
        "60secs",
        "--max-faults",
        "4",
        "--json",
        "--junit",
        junit.to_str().expect("utf-8"),
        "--dir",
        run.to_str().expect("utf-8"),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "seed {seed}: {report:#}");
    assert_eq!(
        report["verdict"]["verdict"], "held",
        "seed {seed}: {report:#}"
    );
    assert!(report["starts"].as_u64().unwrap_or(0) > 0, "{report:#}");
    assert!(report["replay"]
        .as_str()
        .is_some_and(|r| r.contains(&format!("--seed {seed} "))));
    assert_eq!(
        report["junit"],
        junit.to_str().expect("utf-8"),
        "{report:#}"
    );
    assert_eq!(
        report["timeline"],
        run.join("timeline.svg").to_str().expect("utf-8")
    );
    let journal: Vec<serde_json::Value> = std::fs::read_to_string(run.join("journal.jsonl"))
        .expect("journal")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // One case per invariant, and one per crash point the run armed.
    let armed = journal
        .iter()
        .filter_map(|l| l["crash_point"].as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let junit = std::fs::read_to_string(&junit).expect("the JUnit file");
    let cases = elements(&junit, "testcase");
    assert_eq!(
        cases.len(),
        berth_chaos::check::KINDS.len() + armed,
        "{junit}"
    );
    assert_eq!(
        cases.iter().filter(|c| c.contains("crash_point")).count(),
        armed,
        "{junit}"
    );
    assert!(!junit.contains("<failure"), "{junit}");
    // A band per fault the journal says was injected.
    let faults = journal.iter().filter(|l| l["entry"] == "fault").count();
    assert!(faults > 0, "the schedule of seed {seed} injects no fault");
    let svg = std::fs::read_to_string(run.join("timeline.svg")).expect("the timeline");
    let bands = elements(&svg, "g")
        .iter()
        .filter(|g| g.contains("class=\"fault\""))
        .count();
    assert_eq!(bands, faults, "{svg}");
    nothing_left_but_the_report(&run);
}

/// The run's directory holds only its report and evidence, and nothing the run made is
/// left on the engine or among the processes.
fn nothing_left_but_the_report(run: &std::path::Path) {
    let mut kept: Vec<String> = std::fs::read_dir(run)
        .expect("read")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("agent-"))
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            "berth-chaos.json",
            "evidence",
            "journal.jsonl",
            "report.json",
            "report.txt",
            "schedule.json",
            "timeline.svg"
        ]
    );
    // Nothing of the run is left: its decoys and its agent's containers are gone.
    let listed = docker_cli(&["ps", "-a", "--format", "{{.Names}}"]);
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("berth-chaos.json")).expect("ownership"))
            .expect("JSON");
    let run_id = run_json["run_id"].as_str().expect("run id");
    let names = String::from_utf8_lossy(&listed.stdout);
    assert!(!names.contains(run_id), "{names}");
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).expect("journal");
    let agent_id = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|l| l["agent_id"].as_str().map(str::to_owned))
        .expect("the agent's id in the journal");
    assert!(!names.contains(&agent_id), "{names}");
    let mark = berth_chaos::sweep::RunMark::from_value(run_json["mark"].as_str().expect("mark"));
    assert!(mark.processes().is_empty(), "{:?}", mark.processes());
}

#[test]
fn the_crash_point_sweep_reaches_every_point_twice_and_holds() {
    // It takes over from the per-point tests that were in crash_points.rs: the agent
    // aborts at each point, for its first and its second hit, and the checker judges the
    // whole run (one task, one container; every task settled with a reason; no container
    // without a record; `berth state verify`).
    crate::support::require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    let out = berth(&[
        "chaos",
        "run",
        "--sweep",
        "--settle",
        "60secs",
        "--json",
        "--dir",
        run.to_str().expect("utf-8"),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let points = report["crash_points"].as_object().expect("crash points");
    let never: Vec<&String> = points
        .iter()
        .filter(|(_, reached)| **reached != true)
        .map(|(point, _)| point)
        .collect();
    assert!(never.is_empty(), "never reached: {never:?}\n{report:#}");
    assert_eq!(
        points.len(),
        2 * berth::crash_point::POINTS.len(),
        "{report:#}"
    );
    assert_eq!(report["faults"]["crash_point"], points.len(), "{report:#}");
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["verdict"]["verdict"], "held", "{report:#}");
    nothing_left_but_the_report(&run);
}

/// The start tags named `name` in `xml`, once every tag is seen to be closed in order.
fn elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let mut open: Vec<&str> = Vec::new();
    let mut found = Vec::new();
    for tag in xml.split('<').skip(1).filter_map(|t| t.split_once('>')) {
        let tag = tag.0;
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        let tag_name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default();
        if tag.starts_with('/') {
            assert_eq!(open.pop(), Some(tag_name), "{xml}");
            continue;
        }
        if tag_name == name {
            found.push(tag);
        }
        if !tag.ends_with('/') {
            open.push(tag_name);
        }
    }
    assert!(open.is_empty(), "never closed: {open:?}");
    found
}

/// A campaign with no faults in which the promise is broken behind the agent's back once
/// it settled; the checker's verdict.
fn sabotaged(how: &str) -> serde_json::Value {
    crate::support::require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    let out = berth(&[
        "chaos",
        "run",
        "--seed",
        "1",
        "--duration",
        "8secs",
        "--max-faults",
        "0",
        "--sabotage",
        how,
        "--shrink-budget",
        "0s",
        "--json",
        "--dir",
        run.to_str().expect("utf-8"),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    report
}

fn kinds(report: &serde_json::Value) -> Vec<String> {
    report["verdict"]["violations"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|v| v["violation"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_failing_campaign_is_shrunk_to_a_schedule_that_still_fails_and_replays() {
    crate::support::require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    // A touched decoy fails whatever the schedule: shrinking has everything to cut.
    let out = berth(&[
        "chaos",
        "run",
        "--seed",
        "1",
        "--duration",
        "10secs",
        "--max-faults",
        "3",
        "--sabotage",
        "decoy-touched",
        "--shrink-budget",
        "3mins",
        "--json",
        "--dir",
        run.to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert!(stderr.contains("shrinking: run 1 ("), "{stderr}");
    let shrunk = &report["shrunk"];
    assert_eq!(shrunk["kind"], "decoy_touched", "{report:#}");
    let read = |path: &std::path::Path| -> berth_chaos::schedule::Schedule {
        serde_json::from_slice(&std::fs::read(path).expect("read")).expect("a schedule")
    };
    let original = read(&run.join("schedule.json"));
    let smallest = read(&run.join("shrunk-schedule.json"));
    assert!(!original.faults.is_empty(), "{original:?}");
    assert!(
        smallest.faults.len() < original.faults.len(),
        "{smallest:?}"
    );
    assert!(smallest.requests.len() <= original.requests.len());
    assert!(smallest.options.duration_ms <= original.options.duration_ms);
    // The report names the file and the command that replays it.
    let text = std::fs::read_to_string(run.join("report.txt")).expect("report.txt");
    assert!(text.contains("shrunk-schedule.json"), "{text}");
    let replay = shrunk["replay"].as_str().expect("a replay command");
    assert!(text.contains(replay), "{text}");
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).expect("read"))
            .expect("JSON");
    assert_eq!(on_disk["shrunk"], *shrunk);
    // Of the candidates' directories only the smallest failing one's is left, with the
    // schedule that was saved.
    let kept = std::path::PathBuf::from(shrunk["dir"].as_str().expect("its run"));
    assert_eq!(read(&kept.join("schedule.json")), smallest);
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read")
        .flatten()
        .map(|e| e.path())
        .collect();
    left.sort();
    assert_eq!(left, [run.clone(), kept.clone()]);
    // No container of any of the runs is left: the original's, and each candidate's (the
    // shrink log names their runs and agents).
    let mut run_ids = vec![];
    let mut agent_ids = vec![];
    let lines = |path: std::path::PathBuf| -> Vec<serde_json::Value> {
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    };
    for line in lines(run.join("journal.jsonl")) {
        agent_ids.extend(line["agent_id"].as_str().map(str::to_owned));
    }
    let candidates = lines(run.join("shrink.jsonl"));
    assert!(
        candidates.iter().filter(|l| l["entry"] == "ran").count() as u64
            == shrunk["runs"].as_u64().expect("runs")
    );
    for line in candidates.iter().filter(|l| l["entry"] == "ran") {
        run_ids.extend(line["run_id"].as_str().map(str::to_owned));
        for id in line["agent_ids"].as_array().expect("agent ids") {
            agent_ids.push(id.as_str().expect("an id").to_owned());
        }
    }
    assert!(!run_ids.is_empty() && agent_ids.len() > run_ids.len());
    let names =
        String::from_utf8_lossy(&docker_cli(&["ps", "-a", "--format", "{{.Names}}"]).stdout)
            .into_owned();
    for run_id in &run_ids {
        assert!(!names.contains(run_id.as_str()), "{run_id}: {names}");
    }
    for agent_id in &agent_ids {
        let ours = docker_cli(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=berth.agent_id={agent_id}"),
        ]);
        assert!(ours.stdout.is_empty(), "agent {agent_id} left containers");
    }
    // The printed command replays it, and it fails the same way.
    let mut words = replay.split_whitespace();
    assert_eq!(words.next(), Some("berth"));
    let args: Vec<&str> = words
        .chain(["--times", "1", "--shrink-budget", "0s"])
        .collect();
    let replayed = berth(&args);
    let text = String::from_utf8_lossy(&replayed.stdout);
    assert_eq!(replayed.status.code(), Some(1), "{text}");
    assert!(
        text.contains("reproduced 1 of 1 (as violated decoy_touched)"),
        "{text}"
    );
}

#[test]
fn a_second_container_for_a_task_is_caught() {
    let report = sabotaged("second-container");
    let kinds = kinds(&report);
    assert!(kinds.contains(&"started_twice".to_owned()), "{report:#}");
    assert!(kinds.contains(&"not_settled".to_owned()), "{report:#}");
}

#[test]
fn a_deleted_store_is_caught() {
    let report = sabotaged("store-deleted");
    assert!(
        kinds(&report).contains(&"accepted_lost".to_owned()),
        "{report:#}"
    );
}

#[test]
fn a_touched_decoy_is_caught() {
    let report = sabotaged("decoy-touched");
    assert_eq!(kinds(&report), ["decoy_touched"], "{report:#}");
}

/// Heals a run when dropped, so that a failing test leaves nothing behind.
struct HealOnDrop(std::path::PathBuf);

impl Drop for HealOnDrop {
    fn drop(&mut self) {
        let _ = Command::new(BERTH)
            .arg("chaos")
            .arg("heal")
            .arg(&self.0)
            .output();
    }
}

#[tokio::test]
async fn heal_removes_what_a_killed_harness_left() {
    crate::support::require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    let mut harness = Command::new(BERTH)
        .args([
            "chaos",
            "run",
            "--seed",
            "3",
            "--duration",
            "10mins",
            "--max-faults",
            "0",
            "--dir",
        ])
        .arg(&run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the harness");
    // Once a task of the run started, the harness dies as a SIGKILL would have it.
    let starts = run.join("evidence").join("starts");
    crate::support::eventually(
        std::time::Duration::from_secs(60),
        "a task of the run to start",
        async || {
            std::fs::metadata(&starts)
                .is_ok_and(|m| m.len() > 0)
                .then_some(())
        },
    )
    .await;
    harness.kill().expect("SIGKILL the harness");
    harness.wait().expect("reap it");
    // Whatever the assertions below find, what the run left is removed.
    let _heal_anyway = HealOnDrop(run.clone());
    let ownership: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("berth-chaos.json")).expect("read"))
            .expect("JSON");
    let mark = berth_chaos::sweep::RunMark::from_value(ownership["mark"].as_str().expect("mark"));
    let decoy = berth_chaos::sweep::RunMark::from_value(
        ownership["decoy_mark"].as_str().expect("decoy mark"),
    );
    let left = mark.processes();
    assert!(
        left.iter()
            .any(|p| p.argv.get(1).is_some_and(|a| a == "agent")),
        "the run's agent outlived the harness: {left:?}"
    );
    assert!(
        left.iter().any(|p| p.argv.iter().any(|a| a == "events")),
        "its docker events outlived it too, and carries the run's mark: {left:?}"
    );
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).expect("journal");
    let agent_id = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|l| l["agent_id"].as_str().map(str::to_owned))
        .expect("the agent's id in the journal");
    let ours = || {
        let out = docker_cli(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=berth.agent_id={agent_id}"),
        ]);
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    assert!(ours() > 0, "the run's containers outlived the harness");

    let healed = berth(&["chaos", "heal", run.to_str().expect("utf-8"), "--json"]);
    assert!(healed.status.success(), "{healed:?}");
    let done: serde_json::Value = serde_json::from_slice(&healed.stdout).expect("heal --json");
    assert!(
        done["done"].as_array().is_some_and(|d| !d.is_empty()),
        "{done}"
    );
    assert!(mark.processes().is_empty(), "{:?}", mark.processes());
    assert!(decoy.processes().is_empty(), "{:?}", decoy.processes());
    assert_eq!(ours(), 0);
    let run_id = ownership["run_id"].as_str().expect("run id");
    let names = docker_cli(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!String::from_utf8_lossy(&names.stdout).contains(run_id));
    assert!(!run.join("work").exists());
}

#[test]
fn a_replay_runs_the_same_schedule_and_says_how_often_it_ended_the_same() {
    crate::support::require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    let run_arg = run.to_str().expect("utf-8");
    let first = berth(&[
        "chaos",
        "run",
        "--seed",
        "5",
        "--duration",
        "6secs",
        "--max-faults",
        "0",
        "--dir",
        run_arg,
    ]);
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let replayed = berth(&["chaos", "replay", run_arg, "--times", "1"]);
    let text = String::from_utf8_lossy(&replayed.stdout);
    assert_eq!(replayed.status.code(), Some(0), "{text}");
    assert!(text.contains("reproduced 1 of 1 (as held"), "{text}");
    assert!(text.contains("timing was not"), "{text}");
    let schedule = |d: &std::path::Path| std::fs::read(d.join("schedule.json")).expect("schedule");
    let replayed = dir.path().join("run-replay-1");
    assert_eq!(schedule(&run), schedule(&replayed), "the same schedule");
    // A replayed run is reported as a run is.
    for file in ["report.txt", "report.json", "timeline.svg"] {
        assert!(replayed.join(file).is_file(), "{file} of the replay");
    }
    let report = std::fs::read_to_string(replayed.join("report.txt")).expect("report");
    assert!(report.starts_with("berth chaos: HELD"), "{report}");
    assert!(
        report.contains(&format!(
            "replay: berth chaos replay {}",
            replayed.display()
        )),
        "{report}"
    );
    let replayed = berth(&["chaos", "replay", run_arg, "--times", "1", "--json"]);
    let said: serde_json::Value =
        serde_json::from_slice(&replayed.stdout).unwrap_or_else(|e| panic!("{e}: {replayed:?}"));
    assert_eq!(replayed.status.code(), Some(0), "{said}");
    assert_eq!(said["reproduced"], 1, "{said}");
    assert_eq!(said["replays"][0]["verdict"], "held", "{said}");
    assert_eq!(said["reference"]["verdict"], "held", "{said}");
    assert!(
        said["replays"][0]["dir"]
            .as_str()
            .is_some_and(|d| d.ends_with("run-replay-2")),
        "{said}"
    );
}

#[test]
fn a_relative_directory_is_the_same_campaign() {
    crate::support::require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BERTH)
        .args([
            "chaos",
            "run",
            "--seed",
            "5",
            "--duration",
            "6secs",
            "--max-faults",
            "0",
            "--json",
            "--dir",
            "run",
        ])
        .current_dir(dir.path())
        .output()
        .expect("run berth");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert!(dir.path().join("run").join("report.json").exists());
}

/// Replays `schedule` (a hand-made one) once, with `extra` arguments, and asserts it held;
/// the temporary directory and the replay's journal (its text and its lines).
fn replay_hand_made(
    schedule: &serde_json::Value,
    extra: &[&str],
) -> (tempfile::TempDir, String, Vec<serde_json::Value>) {
    crate::support::require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let original = dir.path().join("hand-made");
    std::fs::create_dir(&original).expect("mkdir");
    std::fs::write(original.join("schedule.json"), schedule.to_string()).expect("write");
    let mut args = vec![
        "chaos",
        "replay",
        original.to_str().expect("utf-8"),
        "--times",
        "1",
        "--shrink-budget",
        "0s",
    ];
    args.extend(extra);
    let out = berth(&args);
    let _heal_anyway = HealOnDrop(dir.path().join("hand-made-replay-1"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let journal =
        std::fs::read_to_string(dir.path().join("hand-made-replay-1").join("journal.jsonl"))
            .expect("journal");
    let lines = journal
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (dir, journal, lines)
}

#[test]
fn an_agent_that_aborts_at_its_crash_point_while_the_disk_is_full_waits_for_room() {
    // Armed before the fill, the agent aborts at RUNNING's record (before writing it)
    // while the disk is full: a start then could not open its store, so the harness
    // starts it again only once the fill is gone. Found by a long campaign.
    let schedule = serde_json::json!({
        "seed": 0,
        "options": {"duration_ms": 12000, "max_faults": 2, "launches_per_s": 2,
            "allow_daemon_faults": false, "crash_points": [], "kinds": []},
        "requests": [
            {"at_ms": 300, "request": "launch", "task": 0, "shape": "long"},
            {"at_ms": 10000, "request": "launch", "task": 1, "shape": "long"},
        ],
        "faults": [
            {"at_ms": 200, "fault": "crash_point", "point": "record-Running-before", "hit": 1},
            {"at_ms": 700, "fault": "disk_full", "for_ms": 6000},
        ],
    });
    let (_dir, journal, lines) = replay_hand_made(&schedule, &[]);
    let exited = lines
        .iter()
        .position(|l| l["entry"] == "agent_exited")
        .expect("the agent aborted");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["entry"] == "agent_exited")
            .count(),
        1,
        "one exit, at the crash point: {journal}"
    );
    let filled_at = lines
        .iter()
        .find(|l| l["entry"] == "fault" && l["fault"] == "disk_full")
        .and_then(|l| l["at_ms"].as_u64())
        .expect("the disk filled");
    assert!(
        lines[exited]["at_ms"].as_u64() > Some(filled_at),
        "it aborted while the disk was full: {journal}"
    );
    // The fill is freed at 6.7 s of the schedule, not before: the next start comes then.
    let next_start = lines[exited..]
        .iter()
        .find(|l| l["entry"] == "agent_started")
        .and_then(|l| l["at_ms"].as_u64())
        .expect("started again");
    assert!(
        next_start >= 6700,
        "not started on the full disk: {journal}"
    );
}

#[test]
fn an_agent_that_dies_at_a_crash_point_on_its_way_up_is_started_again() {
    // Recovery records a decision for the running task: the agent armed at that record
    // aborts before it serves, and must be started again, unarmed, for the rest of the run.
    let schedule = serde_json::json!({
        "seed": 0,
        "options": {"duration_ms": 8000, "max_faults": 1, "launches_per_s": 2,
            "allow_daemon_faults": false, "crash_points": [], "kinds": []},
        "requests": [
            {"at_ms": 500, "request": "launch", "task": 0, "shape": "long"},
            {"at_ms": 6000, "request": "launch", "task": 1, "shape": "long"},
        ],
        "faults": [
            {"at_ms": 2000, "fault": "crash_point", "point": "record-Decision-before", "hit": 1},
        ],
    });
    let junit_dir = tempfile::tempdir().expect("tempdir");
    let junit = junit_dir.path().join("junit.xml");
    let (_dir, journal, lines) =
        replay_hand_made(&schedule, &["--junit", junit.to_str().expect("utf-8")]);
    // The point armed is a case of the JUnit file, passed: the agent reached it.
    let junit = std::fs::read_to_string(&junit).expect("the JUnit file");
    let points: Vec<&str> = elements(&junit, "testcase")
        .into_iter()
        .filter(|c| c.contains("berth.chaos.crash_point"))
        .collect();
    assert_eq!(points.len(), 1, "{junit}");
    assert!(points[0].contains("name=\"record-Decision-before (hit 1)\""));
    assert!(
        points[0].ends_with('/'),
        "passed, with nothing inside: {junit}"
    );
    let exited = lines
        .iter()
        .position(|l| l["entry"] == "agent_exited")
        .expect("the agent aborted at the crash point");
    assert!(
        lines[exited..]
            .iter()
            .any(|l| l["entry"] == "agent_started" && l["agent_id"].is_string()),
        "started again after it aborted: {journal}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["entry"] == "answer" && l["task"] == 1 && l["answer"] == "accepted"),
        "the launch after the crash was served: {journal}"
    );
}

#[test]
fn a_container_made_and_removed_behind_the_agents_back_is_caught() {
    // Gone before the end: only Docker's events show it was ever made.
    let report = sabotaged("container-created-and-removed");
    assert_eq!(kinds(&report), ["leaked"], "{report:#}");
    let leaked = report["verdict"]["violations"][0]["container"]
        .as_str()
        .unwrap_or_default();
    assert!(leaked.contains("seen only in docker events"), "{report:#}");
}

/// A short campaign that injects only `kind`, which must hold; its directory and its
/// journal's lines. Nothing of it may be left: no mount under its directory (in this
/// process's mount table, nor in any process's, which would be a namespace of the run
/// still alive), no process with its mark, no container of its agents.
fn one_kind_holds(kind: &str, extra: &[&str]) -> (tempfile::TempDir, Vec<serde_json::Value>) {
    crate::support::require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    let mut args = vec![
        "chaos",
        "run",
        "--seed",
        "1",
        "--duration",
        "15secs",
        "--max-faults",
        "2",
        "--faults",
        kind,
        "--json",
        "--dir",
        run.to_str().expect("utf-8"),
    ];
    args.extend(extra);
    let out = berth(&args);
    let _heal_anyway = HealOnDrop(run.clone());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["verdict"]["verdict"], "held", "{report:#}");
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).expect("journal");
    let lines: Vec<serde_json::Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let injected = lines
        .iter()
        .filter(|l| l["entry"] == "fault" && l["fault"] == kind)
        .count();
    assert!(injected > 0, "no {kind} injected: {journal}");
    let healed = lines
        .iter()
        .filter(|l| {
            l["entry"] == "healed"
                && l["what"].as_str().is_some_and(|w| {
                    w.contains(kind) || (kind == "disk_full" && w.contains("tmpfs"))
                })
        })
        .count();
    assert!(
        healed >= injected,
        "{injected} {kind} but {healed} heals: {journal}"
    );
    let path = run.to_string_lossy().into_owned();
    let own = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!own.contains(&path), "a mount under {path} is left: {own}");
    let anywhere: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("mountinfo")).ok())
        .filter(|table| table.contains(&path))
        .collect();
    assert!(
        anywhere.is_empty(),
        "a namespace still mounts under {path}: {anywhere:?}"
    );
    let ownership: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("berth-chaos.json")).expect("read"))
            .expect("JSON");
    let mark = berth_chaos::sweep::RunMark::from_value(ownership["mark"].as_str().expect("mark"));
    assert!(mark.processes().is_empty(), "{:?}", mark.processes());
    for agent_id in lines.iter().filter_map(|l| l["agent_id"].as_str()) {
        let ours = docker_cli(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=berth.agent_id={agent_id}"),
        ]);
        assert!(ours.stdout.is_empty(), "containers of {agent_id} are left");
    }
    assert!(!run.join("work").exists());
    (dir, lines)
}

#[test]
fn a_full_disk_is_held_through_and_its_small_filesystem_goes() {
    let (_dir, lines) = one_kind_holds("disk_full", &[]);
    assert!(
        lines.iter().any(|l| l["entry"] == "mount"),
        "the tmpfs was journaled before it was mounted"
    );
    assert!(
        lines.iter().any(|l| l["text"]
            .as_str()
            .is_some_and(|t| t.contains("filesystem is full"))),
        "the disk was filled"
    );
}

#[test]
fn a_flipped_store_byte_is_detected_or_harmless_and_healed() {
    let (dir, lines) = one_kind_holds("flip_store_byte", &[]);
    let flips = lines.iter().filter(|l| l["entry"] == "flip").count();
    assert!(flips > 0, "a byte was flipped");
    let evidence = std::fs::read_to_string(
        dir.path()
            .join("run")
            .join("evidence")
            .join("store_flips.jsonl"),
    )
    .expect("the flips are evidence");
    let outcomes: Vec<serde_json::Value> = evidence
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(outcomes.len(), flips, "{evidence}");
    for outcome in &outcomes {
        let judged = &outcome["result"]["outcome"];
        assert!(
            judged == "refused" || judged == "unharmed" || judged == "reported",
            "{outcome}"
        );
    }
}

#[test]
fn a_reboot_gives_the_agent_a_new_boot_id_and_leaves_no_namespace() {
    let (_dir, lines) = one_kind_holds("reboot", &[]);
    assert!(
        lines.iter().any(|l| l["text"]
            .as_str()
            .is_some_and(|t| t.contains("boot id is now"))),
        "a new boot id"
    );
}

#[test]
fn faults_of_unknown_kinds_are_refused_with_the_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    let run = run.to_str().expect("utf-8");
    let unknown = berth(&[
        "chaos",
        "run",
        "--faults",
        "kill_agent,meteor",
        "--dir",
        run,
    ]);
    assert_eq!(unknown.status.code(), Some(3), "{unknown:?}");
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        said.contains("\"meteor\"") && said.contains("disk_full, flip_store_byte"),
        "{said}"
    );
    let daemon = berth(&["chaos", "run", "--faults", "restart_daemon", "--dir", run]);
    assert_eq!(daemon.status.code(), Some(3), "{daemon:?}");
    assert!(String::from_utf8_lossy(&daemon.stderr).contains("--allow-daemon-faults"));
    let no_way = berth(&[
        "chaos",
        "run",
        "--allow-daemon-faults",
        "--restart-daemon-command",
        "/no/such/restart-docker",
        "--dir",
        run,
    ]);
    assert_eq!(no_way.status.code(), Some(3), "{no_way:?}");
    assert!(String::from_utf8_lossy(&no_way.stderr).contains("not found"));
    assert!(
        !std::path::Path::new(run).exists(),
        "a refusal makes nothing"
    );
    let only = berth(&[
        "chaos",
        "run",
        "--seed",
        "4",
        "--faults",
        "reboot",
        "--dry-run",
        "--dir",
        run,
    ]);
    let schedule: serde_json::Value = serde_json::from_slice(&only.stdout).expect("JSON");
    let faults = schedule["faults"].as_array().expect("faults");
    assert!(
        !faults.is_empty() && faults.iter().all(|f| f["fault"] == "reboot"),
        "{schedule}"
    );
}

#[tokio::test]
async fn heal_unmounts_the_full_small_filesystem_a_killed_harness_left() {
    crate::support::require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let original = dir.path().join("hand-made");
    std::fs::create_dir(&original).expect("mkdir");
    // The disk fills three seconds in, and stays full for the rest of a long run.
    let schedule = serde_json::json!({
        "seed": 0,
        "options": {"duration_ms": 600000, "max_faults": 1, "launches_per_s": 2,
            "allow_daemon_faults": false, "crash_points": [], "kinds": ["disk_full"]},
        "requests": [
            {"at_ms": 500, "request": "launch", "task": 0, "shape": "long"},
        ],
        "faults": [{"at_ms": 3000, "fault": "disk_full", "for_ms": 590000}],
    });
    std::fs::write(original.join("schedule.json"), schedule.to_string()).expect("write");
    let mut harness = Command::new(BERTH)
        .args(["chaos", "replay", "--times", "1"])
        .arg(&original)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the harness");
    let run = dir.path().join("hand-made-replay-1");
    let _heal_anyway = HealOnDrop(run.clone());
    let journal = run.join("journal.jsonl");
    crate::support::eventually(
        std::time::Duration::from_secs(60),
        "the disk to be full",
        async || {
            std::fs::read_to_string(&journal)
                .is_ok_and(|j| j.contains("filesystem is full"))
                .then_some(())
        },
    )
    .await;
    harness.kill().expect("SIGKILL the harness");
    harness.wait().expect("reap it");
    let work = run.join("work");
    let work = work.to_str().expect("utf-8");
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(work))
    };
    assert!(mounted(), "the run's tmpfs outlived the harness");
    assert!(
        std::path::Path::new(work).join("berth-chaos-fill").exists(),
        "and is full"
    );
    let healed = berth(&["chaos", "heal", run.to_str().expect("utf-8")]);
    let said = String::from_utf8_lossy(&healed.stdout);
    assert!(healed.status.success(), "{healed:?}");
    assert!(said.contains("unmounted"), "{said}");
    assert!(!mounted(), "{said}");
    let ownership: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("berth-chaos.json")).expect("read"))
            .expect("JSON");
    let mark = berth_chaos::sweep::RunMark::from_value(ownership["mark"].as_str().expect("mark"));
    assert!(mark.processes().is_empty(), "{:?}", mark.processes());
    let journal = std::fs::read_to_string(&journal).expect("journal");
    for agent_id in journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|l| l["agent_id"].as_str().map(str::to_owned))
    {
        let ours = docker_cli(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=berth.agent_id={agent_id}"),
        ]);
        assert!(ours.stdout.is_empty(), "containers of {agent_id} are left");
    }
    assert!(!std::path::Path::new(work).exists());
}

#[tokio::test]
async fn a_daemon_restart_is_held_through_on_a_private_engine() {
    // Never the shared engine: a dockerd of the test's own, restarted by the command the
    // operator gives.
    let docker = crate::private_docker::PrivateDocker::start(false).await;
    let socket = docker.socket();
    let restart = docker.restart_command();
    let (dir, lines) = tokio::task::spawn_blocking(move || {
        one_kind_holds(
            "restart_daemon",
            &[
                "--allow-daemon-faults",
                "--restart-daemon-command",
                &restart,
                "--docker_socket",
                socket.to_str().expect("utf-8"),
            ],
        )
    })
    .await
    .expect("the campaign");
    assert!(
        lines.iter().any(|l| l["what"]
            .as_str()
            .is_some_and(|w| w.contains("the engine answers again"))),
        "the daemon was restarted and answered"
    );
    // The restart ended the events watcher; started again, it read the probe's end, so
    // the wait for the run to be still did not time out.
    let evidence: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("run/evidence/evidence.json")).expect("evidence"),
    )
    .expect("JSON");
    assert_eq!(
        evidence["quiet"]["timed_out"], false,
        "{:#}",
        evidence["quiet"]
    );
    assert_eq!(evidence["quiet"]["events_caught_up"], true);
    let gaps = evidence["events_gaps"].as_array().expect("gaps");
    assert!(
        gaps.iter()
            .any(|g| g.as_str().is_some_and(|g| g.contains("--since"))),
        "no gap recorded: {gaps:?}"
    );
    assert_eq!(evidence["events_watcher_dead"], serde_json::Value::Null);
    let left = docker.cli(&["ps", "-aq"]);
    assert!(
        left.stdout.is_empty(),
        "the run left containers on the engine: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    drop(docker);
}

#[test]
fn a_start_line_names_its_container_under_a_directory_named_containers() {
    crate::support::require_engine();
    // The evidence directory's own path has `containers/<hex>` in it, as a --dir or
    // TMPDIR may.
    let dir = tempfile::tempdir().expect("tempdir");
    let evidence = dir.path().join("containers").join("abc123");
    std::fs::create_dir_all(&evidence).expect("evidence dir");
    let cidfile = dir.path().join("cid");
    let mount = format!(
        "{}:{}",
        evidence.display(),
        berth::chaos::workload::EVIDENCE_MOUNT
    );
    let start = berth::chaos::workload::start_line("t-1");
    let out = docker_cli(&[
        "run",
        "--rm",
        "--cidfile",
        &cidfile.display().to_string(),
        "-v",
        &mount,
        crate::support::SHELL_IMAGE,
        "sh",
        "-c",
        &start,
    ]);
    assert!(out.status.success(), "{out:?}");
    let id = std::fs::read_to_string(&cidfile).expect("cidfile");
    let line =
        std::fs::read_to_string(evidence.join(berth::chaos::workload::STARTS)).expect("start line");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 3, "{line}");
    assert_eq!(words[0], "t-1");
    assert_eq!(words[1], id.trim(), "{line}");
}

#[tokio::test]
async fn a_ctrl_c_stops_the_run_heals_it_and_says_so() {
    use std::os::unix::process::CommandExt;
    crate::support::require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let original = dir.path().join("hand-made");
    std::fs::create_dir(&original).expect("mkdir");
    // The agent is paused two seconds in and the disk fills, both for the rest of a long run.
    let schedule = serde_json::json!({
        "seed": 0,
        "options": {"duration_ms": 600000, "max_faults": 2, "launches_per_s": 2,
            "allow_daemon_faults": false, "crash_points": [],
            "kinds": ["pause_agent", "disk_full"]},
        "requests": [
            {"at_ms": 500, "request": "launch", "task": 0, "shape": "long"},
        ],
        "faults": [
            {"at_ms": 2000, "fault": "pause_agent", "for_ms": 590000},
            {"at_ms": 2500, "fault": "disk_full", "for_ms": 590000},
        ],
    });
    std::fs::write(original.join("schedule.json"), schedule.to_string()).expect("write");
    let stderr = dir.path().join("stderr");
    // In a process group of its own, as a shell runs a command, so that the Ctrl-C below
    // reaches the whole group, as a terminal's does.
    let mut harness = Command::new(BERTH)
        .args(["chaos", "replay", "--times", "1"])
        .arg(&original)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr"))
        .process_group(0)
        .spawn()
        .expect("start the harness");
    let run = dir.path().join("hand-made-replay-1");
    let _heal_anyway = HealOnDrop(run.clone());
    let journal = run.join("journal.jsonl");
    let agent_pid = || {
        std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["entry"] == "agent_started")
            .find_map(|l| l["pid"].as_i64())
    };
    let stopped = |pid: i64| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('T')))
            .unwrap_or(false)
    };
    let pid = crate::support::eventually(
        std::time::Duration::from_secs(60),
        "the agent to be paused and the disk full",
        async || {
            let full =
                std::fs::read_to_string(&journal).is_ok_and(|j| j.contains("filesystem is full"));
            agent_pid().filter(|pid| full && stopped(*pid))
        },
    )
    .await;
    let group = nix::unistd::Pid::from_raw(i32::try_from(harness.id()).expect("pid"));
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGINT).expect("Ctrl-C");
    let status = crate::support::eventually(
        std::time::Duration::from_secs(60),
        "the harness to stop",
        async || harness.try_wait().expect("try_wait"),
    )
    .await;
    let said = std::fs::read_to_string(&stderr).expect("stderr");
    assert_eq!(status.code(), Some(2), "{status:?}: {said}");
    assert!(
        said.contains("INCONCLUSIVE: interrupted by SIGINT"),
        "{said}"
    );
    assert!(
        said.contains(&format!("berth chaos heal {}", run.display())),
        "{said}"
    );
    assert!(!stopped(pid), "the agent was left stopped: {said}");
    let ownership: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("berth-chaos.json")).expect("read"))
            .expect("JSON");
    for mark in ["mark", "decoy_mark"] {
        let mark = berth_chaos::sweep::RunMark::from_value(ownership[mark].as_str().expect("mark"));
        assert!(
            mark.processes().is_empty(),
            "{:?}: {said}",
            mark.processes()
        );
    }
    let run_id = ownership["run_id"].as_str().expect("run id");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mountinfo.contains(&format!("berth-chaos-{run_id}")),
        "the run's tmpfs is left: {said}"
    );
    let names = docker_cli(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!String::from_utf8_lossy(&names.stdout).contains(run_id));
    let journal = std::fs::read_to_string(&journal).expect("journal");
    for agent_id in journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|l| l["agent_id"].as_str().map(str::to_owned))
    {
        let ours = docker_cli(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=berth.agent_id={agent_id}"),
        ]);
        assert!(ours.stdout.is_empty(), "containers of {agent_id} are left");
    }
    assert!(!run.join("work").exists(), "{said}");
}
