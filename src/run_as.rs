//! Who a task runs as (`command.user`, with `--switch_user`): a user of this host, looked
//! up by name when the task is launched (by the agent, so that a task naming no user of
//! the host is refused before anything is recorded), and the ids, groups included, that a
//! plain process takes just before it execs (in its executor, which stays root to report
//! and to kill).

use std::ffi::CString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::unistd::{Gid, Uid, User};
use serde::{Deserialize, Serialize};

/// A user's ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunAs {
    /// The user's name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
    /// Every group it is in, its primary one included.
    pub groups: Vec<u32>,
}

/// Why a user cannot be run as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The host has no user of that name.
    #[error("there is no such user on this host")]
    NoSuchUser,
    /// The user database answered with an error (NSS: a file it cannot read, a
    /// directory server it cannot reach).
    #[error("{0}")]
    Failed(String),
    /// The user database did not answer in time.
    #[error("the host's user database did not answer within {}", crate::duration::format(*.0))]
    TimedOut(Duration),
    /// Too many lookups are still waiting for the user database.
    #[error("{0} earlier lookups are still waiting for the host's user database")]
    Busy(usize),
}

/// How long a lookup may take: a user database that takes longer (a directory server
/// that does not answer) is taken as down for now.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Lookups still waiting beyond which no other is started: each holds a thread that
/// cannot be stopped, until the user database answers.
const MAX_WAITING: usize = 16;

/// Lookups started and not yet answered.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Counts a lookup as waiting until it is dropped (answered, or its thread gone).
struct Waiting;

impl Waiting {
    fn start() -> Result<Waiting, LookupError> {
        let before = WAITING.fetch_add(1, Ordering::SeqCst);
        if before >= MAX_WAITING {
            WAITING.fetch_sub(1, Ordering::SeqCst);
            return Err(LookupError::Busy(before));
        }
        Ok(Waiting)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs the blocking `lookup` on a thread of its own, answering within `within`. Not on
/// the runtime's blocking pool: a user database that hangs would hold those threads,
/// which the agent's file work needs, for as long as it hangs.
pub async fn bounded<T: Send + 'static>(
    within: Duration,
    lookup: impl FnOnce() -> Result<T, LookupError> + Send + 'static,
) -> Result<T, LookupError> {
    let waiting = Waiting::start()?;
    let (answer, answered) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-user-lookup".into())
        .spawn(move || {
            let found = lookup();
            drop(waiting);
            let _ = answer.send(found);
        })
        .map_err(|e| LookupError::Failed(format!("cannot start a thread to look it up: {e}")))?;
    match tokio::time::timeout(within, answered).await {
        Ok(Ok(found)) => found,
        Ok(Err(_)) => Err(LookupError::Failed(
            "the lookup ended without an answer".into(),
        )),
        Err(_) => Err(LookupError::TimedOut(within)),
    }
}

impl RunAs {
    /// Looks `name` up in the host's user database, within [`LOOKUP_TIMEOUT`] (see
    /// [`bounded`]).
    pub async fn lookup_bounded(name: String) -> Result<RunAs, LookupError> {
        bounded(LOOKUP_TIMEOUT, move || RunAs::lookup(&name)).await
    }

    /// Looks `name` up in the host's user database (blocking: NSS may ask a server).
    pub fn lookup(name: &str) -> Result<RunAs, LookupError> {
        let c_name = CString::new(name).map_err(|_| LookupError::NoSuchUser)?;
        let user = User::from_name(name)
            .map_err(|e| LookupError::Failed(format!("the host's user database failed: {e}")))?
            .ok_or(LookupError::NoSuchUser)?;
        let groups = nix::unistd::getgrouplist(&c_name, user.gid).map_err(|e| {
            LookupError::Failed(format!(
                "the host's user database failed on its groups: {e}"
            ))
        })?;
        Ok(RunAs {
            name: name.to_owned(),
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            groups: groups.into_iter().map(Gid::as_raw).collect(),
        })
    }

    /// Makes `command`'s process take these ids before it execs: groups first, then the
    /// gid, then the uid (after which it could change none of them).
    #[allow(unsafe_code)]
    pub fn apply(&self, command: &mut tokio::process::Command) {
        let groups: Vec<Gid> = self.groups.iter().copied().map(Gid::from_raw).collect();
        let (uid, gid) = (Uid::from_raw(self.uid), Gid::from_raw(self.gid));
        // SAFETY: the closure runs between fork and exec and only makes the setgroups(2),
        // setgid(2) and setuid(2) system calls, which are async-signal-safe, on data moved
        // into it; it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                nix::unistd::setgroups(&groups)?;
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(uid)?;
                Ok(())
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lookup_that_hangs_is_answered_in_time_and_too_many_are_not_started() {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = std::sync::Arc::new(std::sync::Mutex::new(released));
        let hang = || {
            let released = released.clone();
            move || {
                let _ = released.lock().map(|r| r.recv());
                Ok(())
            }
        };
        let within = Duration::from_millis(50);
        assert_eq!(
            bounded(within, hang()).await,
            Err(LookupError::TimedOut(within))
        );
        // Each hung one holds its thread until it is answered; past the bound, none is
        // started.
        for _ in 1..MAX_WAITING {
            assert_eq!(
                bounded(within, hang()).await,
                Err(LookupError::TimedOut(within))
            );
        }
        assert!(matches!(
            bounded(within, || Ok(())).await,
            Err(LookupError::Busy(_))
        ));
        for _ in 0..MAX_WAITING {
            release.send(()).expect("a hung lookup");
        }
        let answered = async {
            while WAITING.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), answered)
            .await
            .expect("every hung lookup answered");
        assert_eq!(bounded(within, || Ok(7)).await, Ok(7));
        assert_eq!(
            bounded(within, || Err::<(), _>(LookupError::NoSuchUser)).await,
            Err(LookupError::NoSuchUser)
        );
    }

    #[test]
    fn root_and_nobody_are_found_and_a_made_up_name_is_not() {
        let root = RunAs::lookup("root").expect("every host has root");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0), "{root:?}");
        for absent in ["berth-no-such-user-4f1a", "", "nul\0inside"] {
            assert_eq!(
                RunAs::lookup(absent),
                Err(LookupError::NoSuchUser),
                "{absent:?}"
            );
        }
    }
}
