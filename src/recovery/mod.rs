//! Restart recovery: what the agent finds after a restart, what it decides, and why.
//!
//! Recovery runs in three steps so that the step that matters most can be tested without
//! Docker or a crash: the agent gathers views (the store's records, one `docker ps -a` and
//! each container asked of the engine's API, process identity from /proc), [`plan`] decides per
//! container with a pure function, then the agent acts on the plan. The decision table
//! that [`plan::plan`] implements is written out, row by row, in docs/recovery.md, and
//! each row is a unit test.
//!
//! - [`gather`]: the views, read from the store, Docker and /proc.
//! - [`plan`]: the views as plain data, the plan, and the decision between them (no I/O).
//! - [`preview`]: `berth recover --dry-run`, the plan printed and not acted on.
//! - [`act`]: the plan carried out, each task's decision recorded before it is acted on.
//! - [`retry`]: deferred tasks decided again while the agent serves.
//! - [`serving`]: a task decided again when its executor died while the agent serves.

pub mod act;
pub mod gather;
pub mod plan;
pub mod preview;
pub mod retry;
pub mod serving;
