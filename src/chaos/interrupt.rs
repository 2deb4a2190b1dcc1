//! Stopping on SIGINT (Ctrl-C) or SIGTERM: the run under way is abandoned where it is and
//! every directory a run of this process made is healed as `berth chaos heal` would, so
//! that no paused agent, marked process, container, decoy or mount outlives the harness.
//! The directories are recorded as they are made, since a run may be several (replays,
//! shrinking).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// The directories runs of this process made, in order.
static MADE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Records that a run made `dir`.
pub fn made(dir: &Path) {
    MADE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(dir.to_owned());
}

/// The directories runs of this process made.
pub fn made_dirs() -> Vec<PathBuf> {
    MADE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// SIGINT and SIGTERM, caught from the moment they are installed.
pub struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    /// Catches them: from now on neither ends the process by itself.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// The name of the first one received.
    pub async fn received(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// What the harness says once it healed each directory after `signal`: what it did, and
/// the command that removes anything left. Pure.
pub fn report(signal: &str, healed: &[(PathBuf, Result<Vec<String>, String>)]) -> String {
    let mut text = format!(
        "berth chaos: INCONCLUSIVE: interrupted by {signal}: the run was stopped before its end and proves nothing\n"
    );
    if healed.is_empty() {
        text.push_str("berth chaos: it had made nothing yet\n");
    }
    for (dir, done) in healed {
        let dir = dir.display();
        match done {
            Ok(lines) => {
                text.push_str(&format!("berth chaos: healed {dir}:\n"));
                for line in lines {
                    text.push_str(&format!("  {line}\n"));
                }
            }
            Err(why) => text.push_str(&format!("berth chaos: {dir} could not be healed: {why}\n")),
        }
        text.push_str(&format!(
            "berth chaos: `berth chaos heal {}` removes anything left\n",
            super::run_command::shell_word(&dir.to_string())
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interruption_says_what_was_healed_and_how_to_heal_again() {
        let healed = [
            (
                PathBuf::from("/tmp/run a"),
                Ok(vec![
                    "1 process(es) of the run SIGKILLed (resumed first)".to_owned()
                ]),
            ),
            (PathBuf::from("/tmp/run2"), Err("refused: x".to_owned())),
        ];
        let text = report("SIGINT", &healed);
        assert_eq!(
            text,
            "berth chaos: INCONCLUSIVE: interrupted by SIGINT: the run was stopped before its end and proves nothing
berth chaos: healed /tmp/run a:
  1 process(es) of the run SIGKILLed (resumed first)
berth chaos: `berth chaos heal '/tmp/run a'` removes anything left
berth chaos: /tmp/run2 could not be healed: refused: x
berth chaos: `berth chaos heal /tmp/run2` removes anything left
"
        );
        assert!(report("SIGTERM", &[]).contains("it had made nothing yet"));
    }
}
