//! Flags from the environment, as a Mesos agent reads `MESOS_<FLAG>`: every long flag of
//! a command may also come from `BERTH_<FLAG>` (`BERTH_WORK_DIR`), and the flags that are
//! Mesos's own also from `MESOS_<FLAG>` (`MESOS_DOCKER_REMOVE_DELAY`), so that an agent's
//! environment file or a container's `-e` carries over. The command line wins over both,
//! and `BERTH_` over `MESOS_`. A boolean flag that takes a value (`--strict`) also stands
//! bare, meaning true, as in Mesos.

use clap::builder::ValueParser;
use clap::{Arg, ArgAction, Command};

/// The agent's flags whose names are Mesos's (`mesos-agent --help`): only these are read
/// from `MESOS_<FLAG>`.
pub const MESOS_FLAGS: &[&str] = &[
    "work_dir",
    "containerizers",
    "sandbox_directory",
    "docker_stop_timeout",
    "docker_remove_delay",
    "gc_delay",
    "recovery_timeout",
    "strict",
    "docker_config",
    "recover",
    "docker_kill_orphans",
    "docker",
    "docker_socket",
    "docker_mesos_image",
];

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
    command.mut_subcommands(|sub| {
        if sub.is_hide_set() {
            return sub;
        }
        let sub = sub.mut_args(|arg| read_from_environment(arg, is_set));
        from_environment(sub, is_set)
    })
}

fn read_from_environment(arg: Arg, is_set: &impl Fn(&str) -> bool) -> Arg {
    let Some(long) = arg.get_long().map(str::to_owned) else {
        return arg;
    };
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
        let executor = cmd.find_subcommand("executor").expect("executor");
        assert!(executor.get_arguments().all(|a| a.get_env().is_none()));

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
}
