//! `berth chaos`: chaos campaigns against an agent of their own, and healing them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::docker_args::DockerArgs;
use super::stdout::{emit, print_json};
use super::values::duration;
use super::Failure;

#[derive(Args)]
pub struct ChaosArgs {
    #[command(subcommand)]
    command: ChaosCommand,
}

#[derive(Subcommand)]
enum ChaosCommand {
    /// Start an agent of its own in a directory of its own, send a seeded workload, inject
    /// seeded faults, heal them, let it settle, check the promise, and remove what it made.
    ///
    /// Exits 0 when the promise held, 1 when it was violated, 2 when the run proves
    /// nothing (no task started, the run could not finish, or Ctrl-C stopped it), 3 when it
    /// refused to start.
    Run(ChaosRunArgs),
    /// Undo a run's faults and remove what it made, from its directory alone (also after
    /// the harness itself was killed).
    Heal(ChaosHealArgs),
    /// Run a run's schedule again, `--times` times, and say how often it ended the same
    /// way. The schedule is replayed; timing is not.
    Replay(ChaosReplayArgs),
    /// Resume a paused agent after a while (the campaign's watchdog; not for people).
    #[command(hide = true)]
    Resume(ChaosResumeArgs),
}

/// What `berth chaos run` and `replay` both take: how a campaign is run, whatever its
/// schedule.
#[derive(Args)]
struct ChaosCampaignArgs {
    /// How long the agent is given to settle once every fault is healed.
    #[arg(long = "settle", default_value = "60secs", value_parser = duration)]
    settle: Duration,
    /// The image the workload's tasks run.
    #[arg(long = "image", default_value = berth::chaos::run_command::IMAGE)]
    image: String,
    /// The image the sweep's pulled tasks pull (every time) and run: the agent's `docker
    /// pull` crash points need a registry (`scripts/docker-engine registry` runs this one).
    #[arg(long = "pull-image", default_value = berth::chaos::workload::PULL_IMAGE)]
    pull_image: String,
    /// How the daemon behind --docker_socket is restarted (run with `sh -c`; only for a
    /// schedule that allows daemon faults) [default: systemctl restart docker, where
    /// systemd runs, for the default socket].
    #[arg(long = "restart-daemon-command", alias = "restart_daemon_command")]
    restart_daemon_command: Option<String>,
    /// Also write a JUnit XML file there: a case per invariant and per crash point armed,
    /// a suite per run.
    #[arg(long = "junit")]
    junit: Option<PathBuf>,
    /// On a violation, cut the schedule down to the smallest that still fails the same
    /// way, spending at most about this long (`0s`: not at all); a replay shrinks its
    /// first failing run.
    #[arg(long = "shrink-budget", default_value = "10mins", value_parser = duration)]
    shrink_budget: Duration,
    /// Break the promise behind the agent's back once it settled (to see the checker
    /// catch it; for the harness's own tests).
    #[arg(long = "sabotage", hide = true, value_enum)]
    sabotage: Option<berth::chaos::campaign::Sabotage>,
    #[command(flatten)]
    docker: DockerArgs,
}

/// What a campaign's schedule is made from: `run`'s flags, or the schedule `replay` runs
/// again.
struct ScheduleParams {
    seed: u64,
    duration: Duration,
    max_faults: u32,
    allow_daemon_faults: bool,
    kinds: Vec<String>,
}

impl ScheduleParams {
    fn of(schedule: &berth_chaos::schedule::Schedule) -> ScheduleParams {
        ScheduleParams {
            seed: schedule.seed,
            duration: Duration::from_millis(schedule.options.duration_ms),
            max_faults: schedule.options.max_faults,
            allow_daemon_faults: schedule.options.allow_daemon_faults,
            kinds: schedule.options.kinds.clone(),
        }
    }
}

impl ChaosCampaignArgs {
    /// A campaign's settings: the schedule's, then these flags', the way the daemon is
    /// restarted (already checked against the schedule) and the run's directory.
    fn settings(
        &self,
        schedule: ScheduleParams,
        restart_daemon: Option<String>,
        dir: PathBuf,
    ) -> std::io::Result<berth::chaos::campaign::Settings> {
        Ok(berth::chaos::campaign::Settings {
            seed: schedule.seed,
            duration: schedule.duration,
            settle: self.settle,
            max_faults: schedule.max_faults,
            allow_daemon_faults: schedule.allow_daemon_faults,
            kinds: schedule.kinds,
            restart_daemon,
            dir,
            docker: self.docker.docker.clone(),
            docker_socket: self.docker.docker_socket.clone(),
            image: self.image.clone(),
            pull_image: self.pull_image.clone(),
            berth: std::env::current_exe()?,
            sabotage: self.sabotage,
        })
    }
}

#[derive(Args)]
struct ChaosReplayArgs {
    /// The directory of the run to replay (its `schedule.json`, and its `report.json` if
    /// it has one, to compare with).
    dir: PathBuf,
    /// How many times.
    #[arg(long = "times", default_value_t = 3)]
    times: u32,
    /// Print each replay's verdict, the count reproduced and any shrunk schedule as one
    /// JSON document.
    #[arg(long = "json")]
    json: bool,
    #[command(flatten)]
    campaign: ChaosCampaignArgs,
}

#[derive(Args)]
struct ChaosRunArgs {
    /// The schedule's seed (default: from the clock, printed).
    #[arg(long = "seed")]
    seed: Option<u64>,
    /// How long the workload and the faults go on.
    #[arg(long = "duration", default_value = "60secs", value_parser = duration)]
    duration: Duration,
    /// At most this many faults.
    #[arg(long = "max-faults", alias = "max_faults", default_value_t = 12)]
    max_faults: u32,
    /// Allow restarts of the Docker daemon, which hit every container on the engine.
    #[arg(long = "allow-daemon-faults", alias = "allow_daemon_faults")]
    allow_daemon_faults: bool,
    /// Only these kinds of fault, comma-separated (default: every kind the harness
    /// injects: kill_agent, crash_point, pause_agent, kill_executor, kill_docker_client,
    /// cli_fails, cli_hangs, disk_full, flip_store_byte, reboot, and restart_daemon with
    /// --allow-daemon-faults).
    #[arg(long = "faults")]
    faults: Option<String>,
    /// The run's directory: made by the run (an existing non-empty one is refused); it
    /// keeps the report and its evidence (default: a new one under the temp directory).
    #[arg(long = "dir")]
    dir: Option<PathBuf>,
    /// Print the schedule the seed makes, as JSON, and touch nothing.
    #[arg(long = "dry-run", alias = "dry_run")]
    dry_run: bool,
    /// Instead of a seeded schedule, arm every crash point of the agent in turn, for its
    /// first and its second hit, under a workload that passes them all, and inject no
    /// other fault; a point never reached makes the run inconclusive (exit 2). Its
    /// duration follows from the points (about 3 minutes).
    #[arg(
        long = "sweep",
        conflicts_with_all = ["seed", "duration", "max_faults", "allow_daemon_faults"]
    )]
    sweep: bool,
    /// Print the report as JSON.
    #[arg(long = "json")]
    json: bool,
    #[command(flatten)]
    campaign: ChaosCampaignArgs,
}

#[derive(Args)]
struct ChaosHealArgs {
    /// The run's directory.
    dir: PathBuf,
    /// Print what was done as JSON.
    #[arg(long = "json")]
    json: bool,
    #[command(flatten)]
    docker: DockerArgs,
}

#[derive(Args)]
struct ChaosResumeArgs {
    /// The paused agent.
    #[arg(long = "pid")]
    pid: i32,
    /// How long to wait first.
    #[arg(long = "after", value_parser = duration)]
    after: Duration,
    /// The run's mark, which the agent must carry.
    #[arg(long = "mark")]
    mark: String,
}

/// A chaos command; a run or replay interrupted by SIGINT or SIGTERM is abandoned, and
/// what its runs made is healed.
pub async fn run(args: ChaosArgs) -> Result<ExitCode, Failure> {
    use berth::chaos::{heal, interrupt};
    let command = args.command;
    let (ChaosCommand::Run(ChaosRunArgs { campaign, .. })
    | ChaosCommand::Replay(ChaosReplayArgs { campaign, .. })) = &command
    else {
        return chaos_command(command).await;
    };
    let (docker, socket) = (
        campaign.docker.docker.clone(),
        campaign.docker.docker_socket.clone(),
    );
    let mut signals = interrupt::Signals::install()?;
    tokio::select! {
        code = chaos_command(command) => code,
        signal = signals.received() => {
            // The run's future is dropped here: nothing of it goes on in this process.
            let healed: Vec<_> = interrupt::made_dirs()
                .into_iter()
                .map(|dir| {
                    let done = heal::heal(&dir, &docker, &socket).map_err(|e| e.to_string());
                    (dir, done)
                })
                .collect();
            eprint!("{}", interrupt::report(signal, &healed));
            Ok(ExitCode::from(2))
        }
    }
}

async fn chaos_command(command: ChaosCommand) -> Result<ExitCode, Failure> {
    use berth::chaos::{campaign, daemon_restart, heal, report, report_files, shrink, ChaosError};
    let mut progress = |line: &str| eprintln!("berth chaos: {line}");
    let restart_way = |allowed: bool, command: Option<&str>, socket: &std::path::Path| {
        daemon_restart::way(
            allowed,
            command,
            socket,
            daemon_restart::systemd_running(),
            daemon_restart::found,
        )
    };
    match command {
        ChaosCommand::Run(args) => {
            let chosen = campaign::chosen_kinds(args.faults.as_deref(), args.allow_daemon_faults)
                .and_then(|kinds| {
                    let way = restart_way(
                        args.allow_daemon_faults,
                        args.campaign.restart_daemon_command.as_deref(),
                        &args.campaign.docker.docker_socket,
                    )?;
                    Ok((kinds, way))
                });
            let (kinds, restart_daemon) = match chosen {
                Ok(chosen) => chosen,
                Err(why) => {
                    eprintln!("berth chaos: refused: {why}");
                    return Ok(ExitCode::from(3));
                }
            };
            let seed = args
                .seed
                .unwrap_or_else(berth_chaos::jitter::Jitter::seed_from_clock);
            let dir = args.dir.clone().unwrap_or_else(|| {
                let short = uuid::Uuid::new_v4().simple().to_string();
                std::env::temp_dir().join(format!("berth-chaos-{seed}-{}", &short[..8]))
            });
            // Its paths go to the agent, the CLI stand-in and Docker's mounts.
            let dir = std::path::absolute(&dir)?;
            let settings = args.campaign.settings(
                ScheduleParams {
                    seed,
                    duration: args.duration,
                    max_faults: args.max_faults,
                    allow_daemon_faults: args.allow_daemon_faults,
                    kinds,
                },
                restart_daemon.clone(),
                dir,
            )?;
            let sabotage = args
                .campaign
                .sabotage
                .and_then(|s| clap::ValueEnum::to_possible_value(&s));
            let replay = berth::chaos::run_command::RunCommand {
                sweep: args.sweep,
                seed,
                duration: args.duration,
                settle: args.campaign.settle,
                max_faults: args.max_faults,
                restart_daemon: restart_daemon.as_deref(),
                faults: args.faults.as_deref(),
                sabotage: sabotage.as_ref().map(|v| v.get_name()),
                image: &args.campaign.image,
                pull_image: &args.campaign.pull_image,
                docker: &args.campaign.docker.docker,
                docker_socket: &args.campaign.docker.docker_socket,
            }
            .line();
            let schedule = if args.sweep {
                if berth::crash_point::POINTS.is_empty() {
                    eprintln!("berth chaos: refused: this berth was built without its crash points (--no-default-features): a sweep has nothing to visit");
                    return Ok(ExitCode::from(3));
                }
                berth_chaos::crash_sweep::make(&settings.options().crash_points)
            } else {
                berth_chaos::schedule::make(seed, &settings.options())
            };
            if args.dry_run {
                print_json(&schedule)?;
                return Ok(ExitCode::SUCCESS);
            }
            let junit = match args.campaign.junit.as_deref().map(report_files::junit_path) {
                Some(Err(e)) => {
                    eprintln!("berth chaos: {e}");
                    return Ok(ExitCode::from(3));
                }
                junit => junit.transpose()?,
            };
            let made_from = if args.sweep {
                "every crash point".to_owned()
            } else {
                format!("seed {seed}")
            };
            eprintln!("berth chaos: {made_from}; replay with: {replay}");
            let finished = match campaign::run(&settings, schedule).await {
                // A sweep that did not reach a point did not test it.
                Ok(mut finished) if args.sweep => {
                    let never = berth_chaos::crash_sweep::unreached(
                        &finished.schedule,
                        &finished.crash_points,
                    );
                    finished.verdict = berth_chaos::crash_sweep::judge(finished.verdict, &never);
                    finished
                }
                Ok(finished) => finished,
                Err(e @ ChaosError::Refused(_)) => {
                    eprintln!("berth chaos: {e}");
                    return Ok(ExitCode::from(3));
                }
                Err(e) => {
                    eprintln!(
                        "berth chaos: INCONCLUSIVE: the run could not finish: {e}\nreplay: {replay}\nwhat it made is removed; `berth chaos heal {}` removes anything left",
                        settings.dir.display()
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            let summary = report::summary(&finished, replay.clone(), junit.as_deref());
            let (mut text, json) = report_files::write(&finished, &summary)?;
            if let Some(junit) = &junit {
                report_files::write_junit(junit, &[report_files::junit_run(&finished, &replay)])?;
            }
            let mut json: serde_json::Value = serde_json::from_str(&json)?;
            if let Some(shrunk) = shrink::shrink(
                &settings,
                &finished,
                args.campaign.shrink_budget,
                &mut progress,
            )
            .await
            {
                text.push_str(&shrunk.text());
                json["shrunk"] = serde_json::to_value(&shrunk)?;
                std::fs::write(finished.dir.join("report.txt"), &text)?;
                std::fs::write(
                    finished.dir.join("report.json"),
                    serde_json::to_string_pretty(&json)?,
                )?;
            }
            let json = serde_json::to_string_pretty(&json)?;
            if args.json {
                emit(&format!("{json}\n"));
            } else {
                emit(&text);
            }
            Ok(ExitCode::from(
                u8::try_from(report::exit_code(&finished.verdict)).unwrap_or(1),
            ))
        }
        ChaosCommand::Heal(args) => {
            match heal::heal(&args.dir, &args.docker.docker, &args.docker.docker_socket) {
                Ok(done) if args.json => {
                    print_json(&serde_json::json!({ "dir": args.dir, "done": done }))?;
                    Ok(ExitCode::SUCCESS)
                }
                Ok(done) => {
                    for line in done {
                        emit(&format!("{line}\n"));
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e @ ChaosError::Refused(_)) => {
                    eprintln!("berth chaos: {e}");
                    Ok(ExitCode::from(3))
                }
                Err(e) => Err(e.into()),
            }
        }
        ChaosCommand::Replay(args) => {
            let read = |file: &str| -> Result<serde_json::Value, Failure> {
                Ok(serde_json::from_slice(&std::fs::read(
                    args.dir.join(file),
                )?)?)
            };
            let schedule: berth_chaos::schedule::Schedule =
                serde_json::from_value(read("schedule.json")?)?;
            let restart_daemon = match restart_way(
                schedule.options.allow_daemon_faults,
                args.campaign.restart_daemon_command.as_deref(),
                &args.campaign.docker.docker_socket,
            ) {
                Ok(way) => way,
                Err(why) => {
                    eprintln!("berth chaos: refused: {why}");
                    return Ok(ExitCode::from(3));
                }
            };
            let kinds = |verdict: &serde_json::Value| -> Vec<String> {
                let mut kinds: Vec<String> = verdict["violations"]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(|v| v["violation"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                kinds.sort();
                kinds.dedup();
                kinds
            };
            let mut reference = read("report.json").ok().map(|r| {
                (
                    r["verdict"]["verdict"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    kinds(&r["verdict"]),
                )
            });
            let mut same = 0;
            let mut violated = false;
            let mut taken = 0;
            let junit = match args.campaign.junit.as_deref().map(report_files::junit_path) {
                Some(Err(e)) => {
                    eprintln!("berth chaos: {e}");
                    return Ok(ExitCode::from(3));
                }
                junit => junit.transpose()?,
            };
            // Each replayed run, for the JUnit file, rewritten after each.
            let mut replayed: Vec<(campaign::Finished, String)> = Vec::new();
            let mut first_violated = None;
            let mut runs = Vec::new();
            for n in 1..=args.times {
                // A directory of its own for each replay, after any an earlier replay made.
                let dir = loop {
                    taken += 1;
                    let mut dir = std::path::absolute(&args.dir)?.into_os_string();
                    dir.push(format!("-replay-{taken}"));
                    let dir = PathBuf::from(dir);
                    if !dir.exists() {
                        break dir;
                    }
                };
                let settings = args.campaign.settings(
                    ScheduleParams::of(&schedule),
                    restart_daemon.clone(),
                    dir,
                )?;
                let finished = match campaign::run(&settings, schedule.clone()).await {
                    Ok(finished) => finished,
                    Err(e @ ChaosError::Refused(_)) => {
                        eprintln!("berth chaos: {e}");
                        return Ok(ExitCode::from(3));
                    }
                    Err(e) => return Err(e.into()),
                };
                let verdict = serde_json::to_value(&finished.verdict)?;
                let got = (
                    verdict["verdict"].as_str().unwrap_or_default().to_owned(),
                    kinds(&verdict),
                );
                violated |= got.0 == "violated";
                let shrink_later = got.0 == "violated" && first_violated.is_none();
                if *reference.get_or_insert_with(|| got.clone()) == got {
                    same += 1;
                }
                if args.json {
                    runs.push(serde_json::json!({
                        "replay": n,
                        "verdict": got.0,
                        "violations": got.1,
                        "dir": finished.dir,
                    }));
                } else {
                    emit(&format!(
                        "replay {n}: {} {} ({})\n",
                        got.0,
                        got.1.join(", "),
                        finished.dir.display()
                    ));
                }
                let replay = shrink::replay_command(&settings, &finished.dir);
                let summary = report::summary(&finished, replay.clone(), junit.as_deref());
                report_files::write(&finished, &summary)?;
                if let Some(junit) = &junit {
                    replayed.push((finished.clone(), replay));
                    let runs: Vec<_> = replayed
                        .iter()
                        .map(|(f, r)| report_files::junit_run(f, r))
                        .collect();
                    report_files::write_junit(junit, &runs)?;
                }
                if shrink_later {
                    first_violated = Some((settings, finished));
                }
            }
            let against = match &reference {
                Some((verdict, kinds)) => format!("as {verdict} {}", kinds.join(", ")),
                None => "nothing was replayed".to_owned(),
            };
            if !args.json {
                emit(&format!(
                    "reproduced {same} of {} ({against}); the schedule was replayed, its timing was not\n",
                    args.times
                ));
            }
            let shrunk = match first_violated {
                Some((settings, finished)) => {
                    shrink::shrink(
                        &settings,
                        &finished,
                        args.campaign.shrink_budget,
                        &mut progress,
                    )
                    .await
                }
                None => None,
            };
            if args.json {
                print_json(&serde_json::json!({
                    "replays": runs,
                    "reproduced": same,
                    "times": args.times,
                    "reference": reference.map(|(verdict, violations)| {
                        serde_json::json!({ "verdict": verdict, "violations": violations })
                    }),
                    "shrunk": shrunk,
                }))?;
            } else if let Some(shrunk) = shrunk {
                emit(&shrunk.text());
            }
            Ok(if violated {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        ChaosCommand::Resume(args) => {
            tokio::time::sleep(args.after).await;
            let mark = berth_chaos::sweep::RunMark::from_value(&args.mark);
            mark.signal(args.pid, berth_chaos::sweep::Signal::CONT);
            Ok(ExitCode::SUCCESS)
        }
    }
}
