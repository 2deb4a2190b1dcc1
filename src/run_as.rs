//! Who a task runs as (`command.user`, with `--switch_user`): a user of this host, looked
//! up by name when the task is launched (by the agent, so that a task naming no user of
//! the host is refused before anything is recorded), and the ids, groups included, that a
//! plain process takes just before it execs (in its executor, which stays root to report
//! and to kill).

use std::ffi::CString;

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
    /// The user database did not answer.
    #[error("looking it up failed: {0}")]
    Failed(String),
}

impl RunAs {
    /// Looks `name` up in the host's user database (blocking: NSS may ask a server).
    pub fn lookup(name: &str) -> Result<RunAs, LookupError> {
        let c_name = CString::new(name).map_err(|_| LookupError::NoSuchUser)?;
        let user = User::from_name(name)
            .map_err(|e| LookupError::Failed(e.to_string()))?
            .ok_or(LookupError::NoSuchUser)?;
        let groups = nix::unistd::getgrouplist(&c_name, user.gid)
            .map_err(|e| LookupError::Failed(format!("its groups: {e}")))?;
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
