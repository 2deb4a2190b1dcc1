//! Flags from the environment, as a Mesos agent reads `MESOS_<FLAG>`: every flag of the
//! agent (and of `berth recover`, which plans as the agent would) may also come from
//! `BERTH_<FLAG>` (`BERTH_WORK_DIR`), and the flags that are Mesos's own also from
//! `MESOS_<FLAG>` (`MESOS_DOCKER_REMOVE_DELAY`), so that an agent's environment file or a
//! container's `-e` carries over; the client commands read only how to reach the agent
//! (`BERTH_WORK_DIR`, `BERTH_API_SOCKET`, `BERTH_WAIT_FOR_AGENT`) and Docker. The command
//! line wins over both, and `BERTH_` over `MESOS_`. A boolean flag that takes a value
//! (`--strict`) also stands bare, meaning true, as in Mesos.
//!
//! Nothing else reads them: not a task's own flags (`--env`, `--file`), not `berth
//! chaos` (whose faults an environment must never switch on), not hidden flags, and not
//! the processes berth starts, from whose environment [`variables_to_clear`] are removed
//! (an executor, a plain-process task, a chaos run's own agent).

use clap::builder::ValueParser;
use clap::{Arg, ArgAction, Command};

/// The agent's flags whose names are Mesos's (`mesos-agent --help`): only these are read
/// from `MESOS_<FLAG>`.
pub const MESOS_FLAGS: &[&str] = &[
    "work_dir",
    "containerizers",
    "switch_user",
    "sandbox_directory",
    "docker_stop_timeout",
    "docker_remove_delay",
    "gc_delay",
    "recovery_timeout",
    "fetcher_stall_timeout",
    "executor_registration_timeout",
    "strict",
    "docker_config",
    "recover",
    "docker_kill_orphans",
    "docker",
    "docker_socket",
    "docker_mesos_image",
];

/// The flags a client command reads from the environment: where the agent is, how long
/// to wait for it, and Docker.
pub const CLIENT_FLAGS: &[&str] = &[
    "work_dir",
    "api_socket",
    "wait_for_agent",
    "docker",
    "docker_socket",
];

/// The commands whose every flag is read from the environment.
const AGENT_COMMANDS: &[&str] = &["agent", "recover"];

/// Commands that read nothing from it.
const CLOSED_COMMANDS: &[&str] = &["chaos"];

/// Variables of berth's own that are not flags, kept for the processes it starts.
const KEPT: &[&str] = &["BERTH_RUN_MARK"];

/// The variables of `names` that set flags (`BERTH_*`, `MESOS_*`), to remove from the
/// environment of a process berth starts: a plain-process task must not see the agent's
/// registry credentials (`BERTH_DOCKER_CONFIG`), nor an agent a chaos run starts take an
/// operator's settings. Pure.
pub fn variables_to_clear<I: IntoIterator<Item = std::ffi::OsString>>(
    names: I,
) -> Vec<std::ffi::OsString> {
    names
        .into_iter()
        .filter(|name| {
            name.to_str().is_some_and(|n| {
                (n.starts_with("BERTH_") || n.starts_with("MESOS_")) && !KEPT.contains(&n)
            })
        })
        .collect()
}

/// [`variables_to_clear`] of this process's environment.
pub fn inherited_variables_to_clear() -> Vec<std::ffi::OsString> {
    variables_to_clear(std::env::vars_os().map(|(name, _)| name))
}

/// `BERTH_<FLAG>` (or `MESOS_<FLAG>`): the flag upper-cased, dashes as underscores.
pub fn variable(prefix: &str, flag: &str) -> String {
    format!("{prefix}_{}", flag.to_uppercase().replace('-', "_"))
}

/// The variable `flag` is read from, given which variables are set: `BERTH_<FLAG>` when
/// it is set or when nothing is (so that `--help` names it), `MESOS_<FLAG>` when only that
/// one is set and the flag is Mesos's. Pure.
pub fn source(flag: &str, is_set: impl Fn(&str) -> bool) -> String {
    let berth = variable("BERTH", flag);
    if !is_set(&berth) && MESOS_FLAGS.contains(&flag) {
        let mesos = variable("MESOS", flag);
        if is_set(&mesos) {
            return mesos;
        }
    }
    berth
}

/// `command` with every long flag of its visible subcommands (and theirs) read from the
/// environment as the module says, and bare booleans taken as true. Hidden subcommands
/// (the executor, which inherits the agent's environment) read nothing from it.
pub fn from_environment(command: Command, is_set: &impl Fn(&str) -> bool) -> Command {
    open_subcommands(command, is_set, false)
}

fn open_subcommands(command: Command, is_set: &impl Fn(&str) -> bool, all: bool) -> Command {
    command.mut_subcommands(|sub| {
        let name = sub.get_name().to_owned();
        if sub.is_hide_set() || CLOSED_COMMANDS.contains(&name.as_str()) {
            return sub;
        }
        let all = all || AGENT_COMMANDS.contains(&name.as_str());
        let sub = sub.mut_args(|arg| read_from_environment(arg, is_set, all));
        open_subcommands(sub, is_set, all)
    })
}

fn read_from_environment(arg: Arg, is_set: &impl Fn(&str) -> bool, all: bool) -> Arg {
    let Some(long) = arg.get_long().map(str::to_owned) else {
        return arg;
    };
    if arg.is_hide_set() || !(all || CLIENT_FLAGS.contains(&long.as_str())) {
        return arg;
    }
    if matches!(
        arg.get_action(),
        ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
    ) {
        return arg;
    }
    let bare_true = matches!(arg.get_action(), ArgAction::Set)
        && arg.get_value_parser().type_id() == ValueParser::bool().type_id();
    // Values such as registry credentials (`--docker_config`) are not shown in `--help`.
    let arg = arg.env(source(&long, is_set)).hide_env_values(true);
    if bare_true {
        arg.num_args(0..=1).default_missing_value("true")
    } else {
        arg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_variable_a_flag_comes_from() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("work_dir", &[], "BERTH_WORK_DIR"),
            ("work_dir", &["MESOS_WORK_DIR"], "MESOS_WORK_DIR"),
            (
                "work_dir",
                &["MESOS_WORK_DIR", "BERTH_WORK_DIR"],
                "BERTH_WORK_DIR",
            ),
            // Not a Mesos flag: MESOS_ is not read.
            ("api_socket", &["MESOS_API_SOCKET"], "BERTH_API_SOCKET"),
            ("wait_for_agent", &[], "BERTH_WAIT_FOR_AGENT"),
            ("dry-run", &[], "BERTH_DRY_RUN"),
            (
                "executor_registration_timeout",
                &["MESOS_EXECUTOR_REGISTRATION_TIMEOUT"],
                "MESOS_EXECUTOR_REGISTRATION_TIMEOUT",
            ),
            (
                "fetcher_stall_timeout",
                &["MESOS_FETCHER_STALL_TIMEOUT"],
                "MESOS_FETCHER_STALL_TIMEOUT",
            ),
        ];
        for (flag, set, want) in cases {
            assert_eq!(source(flag, |v| set.contains(&v)), *want, "{flag} {set:?}");
        }
    }

    fn command() -> Command {
        Command::new("berth")
            .subcommand(
                Command::new("agent")
                    .arg(Arg::new("work_dir").long("work_dir").default_value("/d"))
                    .arg(
                        Arg::new("strict")
                            .long("strict")
                            .value_parser(ValueParser::bool())
                            .default_value("true")
                            .action(ArgAction::Set),
                    )
                    .arg(Arg::new("id")),
            )
            .subcommand(
                Command::new("executor")
                    .hide(true)
                    .arg(Arg::new("log").long("log")),
            )
            .subcommand(
                Command::new("launch")
                    .arg(Arg::new("work_dir").long("work_dir"))
                    .arg(Arg::new("env").long("env")),
            )
            .subcommand(Command::new("chaos").arg(Arg::new("allow").long("allow")))
    }

    #[test]
    fn every_flag_names_its_variable_and_bare_booleans_are_true() {
        let cmd = from_environment(command(), &|_| false);
        let agent = cmd.find_subcommand("agent").expect("agent");
        let env_of = |id: &str| {
            agent
                .get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(Arg::get_env)
                .map(|e| e.to_string_lossy().into_owned())
        };
        assert_eq!(env_of("work_dir").as_deref(), Some("BERTH_WORK_DIR"));
        assert_eq!(env_of("strict").as_deref(), Some("BERTH_STRICT"));
        assert_eq!(env_of("id"), None, "positional arguments are not read");
        for closed in ["executor", "chaos"] {
            let sub = cmd.find_subcommand(closed).expect("subcommand");
            assert!(
                sub.get_arguments().all(|a| a.get_env().is_none()),
                "{closed}"
            );
        }
        let launch = cmd.find_subcommand("launch").expect("launch");
        let read: Vec<&str> = launch
            .get_arguments()
            .filter(|a| a.get_env().is_some())
            .map(|a| a.get_id().as_str())
            .collect();
        assert_eq!(
            read,
            ["work_dir"],
            "a client command reads only where the agent is"
        );

        for (line, strict) in [
            (vec!["berth", "agent"], true),
            (vec!["berth", "agent", "--strict"], true),
            (vec!["berth", "agent", "--strict", "false"], false),
            (vec!["berth", "agent", "--strict=false"], false),
        ] {
            let matches = from_environment(command(), &|_| false)
                .try_get_matches_from(&line)
                .expect("parses");
            let agent = matches.subcommand_matches("agent").expect("agent");
            assert_eq!(agent.get_one::<bool>("strict"), Some(&strict), "{line:?}");
        }
    }

    #[test]
    fn flag_variables_are_cleared_for_children_and_the_run_mark_kept() {
        let names = [
            "BERTH_DOCKER_CONFIG",
            "MESOS_WORK_DIR",
            "BERTH_RUN_MARK",
            "PATH",
            "MESOSPHERE",
        ]
        .map(std::ffi::OsString::from);
        assert_eq!(
            variables_to_clear(names),
            ["BERTH_DOCKER_CONFIG", "MESOS_WORK_DIR"].map(std::ffi::OsString::from)
        );
    }
}
