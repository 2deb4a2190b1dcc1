//! Tasks: Mesos's `TaskInfo` JSON ([`info`], its scalars read as [`proto_json`] says),
//! what berth refuses in one ([`check`]) and the pure decision of how one is launched
//! ([`launch`]).

pub mod check;
#[cfg(test)]
mod field_table;
#[cfg(test)]
mod fixtures;
pub mod info;
pub mod launch;
pub mod proto_json;

pub use info::{parse, Parsed, TaskInfo};
pub use launch::{admit, plan, ContainerizerKind, Launch, LaunchContext, LaunchKind, TaskError};
