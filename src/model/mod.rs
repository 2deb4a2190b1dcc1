//! The task model every layer shares: a task's states and the one guard on their
//! transitions, the state each recorded phase announces, Mesos's reasons, and the status
//! reports executors send. A leaf: it imports nothing of berth's but the store's records,
//! so that the API, the containerizer, recovery and the executor use it without importing
//! one another.
//!
//! [`TaskState`] is defined beside the records, in `berth_state`, because the store writes
//! it into them: memory and the store then hold one type with one guard.

pub mod phase;
pub mod reason;
mod report;

pub use berth_state::TaskState;
pub use report::{Ack, StatusReport};

/// What the agent answers (503) while it starts or recovers, in words its clients know
/// apart from any other refusal for now.
pub const RECOVERING: &str = "the agent is still starting or recovering what it ran before a restart; retry shortly (`berth health` says when it is ready)";
