//! The shared kit of the lessons: flags, reports, measurements and child processes.
//!
//! Why it exists: every lesson prints its figures and verdicts the same way
//! (the output protocol of `ARCHITECTURE.md`) and measures the same few things (wall
//! time, medians, process memory). Writing that once, here, keeps each lesson's
//! `main.rs` about its one concurrency idea and makes sixteen programs read
//! like one book.
//!
//! Nothing concurrent is taught here. The code a reader copies out of a lesson
//! (the threads, locks and channels) never calls into this crate; only the
//! lesson's `main` uses it, to parse flags and to report.
//!
//! - [`cli`]: the shared flags and the `main` wrapper that maps errors to exit
//!   codes (0 ran, 1 failed, 2 bad usage);
//! - [`report`]: figures and claims, rendered as an aligned text report or as
//!   one JSON object;
//! - [`measure`]: wall time, medians, and process memory (RSS and PSS);
//! - [`child`]: start this executable again in a named role (Python's
//!   'spawn' start method), and reap it on every path;
//! - [`cleanup`]: no child process or temporary file outlives a lesson, even
//!   on Ctrl-C;
//! - [`corpus`]: a deterministic text of any size, and its word count;
//! - [`panics`]: a panic caused on purpose, run quietly, and its message;
//! - [`watchdog`]: deadlock, livelock and starvation told apart from
//!   progress and CPU time, and an experiment that may hang run in a child.

pub mod child;
pub mod cleanup;
pub mod cli;
pub mod corpus;
pub mod host;
pub mod measure;
pub mod panics;
pub mod report;
pub mod watchdog;

pub use report::{Claim, Report};

/// Starts the [`Report`] of the lesson being compiled: its name and claim are
/// its package's `name` and `description`, the same words the README table
/// and `cargo xtask list` show, so the three cannot drift apart.
#[macro_export]
macro_rules! lesson_report {
    () => {
        $crate::Report::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_DESCRIPTION"))
    };
}
