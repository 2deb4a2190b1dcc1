//! Tasks: Mesos's `TaskInfo` JSON ([`info`]) and the pure decision of how one is launched
//! ([`launch`]).

pub mod info;
pub mod launch;

pub use info::{parse, Parsed, TaskInfo};
pub use launch::{plan, Containerizer, Launch, LaunchContext, LaunchKind, TaskError};
