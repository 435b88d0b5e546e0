//! Leave nothing behind: no child process and no temporary file, even when
//! the user presses Ctrl-C.
//!
//! Rust runs destructors when `main` returns and when a panic unwinds, so a
//! [`ChildProcess`](crate::child::ChildProcess) (killed and reaped when
//! dropped) and a [`TempDir`] (deleted when dropped) clean up on every path
//! but one: a signal such as Ctrl-C (SIGINT) or `kill` (SIGTERM) ends the
//! process at once, and no destructor runs. This module closes that gap.
//!
//! [`install`] (called by [`cli::parse`](crate::cli::parse), so every lesson
//! has it) blocks SIGINT, SIGTERM and SIGHUP in the calling thread, and so in
//! every thread started after it, and starts one thread that waits for them
//! with `sigwait`. When one arrives, that thread kills and reaps every child
//! process still registered, deletes every temporary directory still
//! registered, and exits with 128 + the signal's number, as a shell expects.
//! Waiting in a thread of its own, rather than in a signal handler, means the
//! clean-up may lock, allocate and delete files: nothing in it has to be
//! async-signal-safe.
//!
//! SIGKILL cannot be caught. For that case, a child started by
//! [`spawn_self`](crate::child::spawn_self) asks the kernel to kill it when its
//! parent dies (see [`child::role`](crate::child::role)).
//!
//! Consequences for lessons:
//! - a process that must fork before any thread exists (a fork server) forks
//!   before calling `parse`;
//! - every child inherits the blocked signals, across `fork` and `exec`
//!   alike. A child started by `spawn_self` unblocks them in
//!   [`child::role`](crate::child::role), so SIGTERM and Ctrl-C act on it as
//!   on any program; other programs run blocked, and the clean-up stops them
//!   with SIGKILL;
//! - when the clean-up has begun, the lesson's own thread may notice its
//!   children dying and fail; [`cli::finish`](crate::cli::finish) then waits
//!   for the clean-up to end the process, so the exit code is always 128 +
//!   the signal's number.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once};

use anyhow::Context;
use nix::sys::signal::{SigSet, Signal, kill, killpg};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

/// What the clean-up thread must remove if a signal ends the lesson.
#[derive(Default)]
struct Registry {
    /// Child pids, each with whether it leads a process group of its own
    /// (then the whole group is killed: the child and whatever it started).
    children: Vec<(u32, bool)>,
    temp_dirs: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { children: Vec::new(), temp_dirs: Vec::new() });
static INSTALL: Once = Once::new();

/// Set when a stop signal arrived and the clean-up began.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Whether a stop signal arrived: the clean-up thread is killing the
/// children and will end the process.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while holding the lock leaves the lists as they were: still
    // the right ones to clean up, so a poisoned lock is used all the same.
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The signals that end a lesson early and trigger the clean-up.
pub(crate) fn stop_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set
}

/// Starts the clean-up thread (once; later calls do nothing). Call it before
/// starting any other thread: threads started earlier keep the default
/// handling, and a signal delivered to one of them ends the process at once.
pub fn install() {
    INSTALL.call_once(|| {
        let signals = stop_signals();
        if signals.thread_block().is_err() {
            // Without the mask the default action stays: the lesson still
            // stops on Ctrl-C, only without the clean-up.
            return;
        }
        let spawned = std::thread::Builder::new().name("cleanup-on-signal".into()).spawn(move || {
            if let Ok(signal) = signals.wait() {
                // Said before any child is killed, so that whoever sees a
                // child die can also see why.
                STOPPING.store(true, Ordering::SeqCst);
                clean_up();
                std::process::exit(128 + signal as i32);
            }
        });
        // If the thread cannot start, unblock again so Ctrl-C still works.
        if spawned.is_err() {
            let _ = signals.thread_unblock();
        }
    });
}

/// Kills and reaps every registered child, and deletes every registered
/// temporary directory.
fn clean_up() {
    let mut registry = registry();
    for (pid, group) in registry.children.drain(..) {
        let pid = Pid::from_raw(pid as i32);
        if group {
            let _ = killpg(pid, Signal::SIGKILL);
        }
        if kill(pid, Signal::SIGKILL).is_ok() {
            // Reap it, so no zombie is left for whoever adopts it. If the
            // lesson's own thread reaped it first, this fails harmlessly.
            let _ = waitpid(pid, None);
        }
    }
    for dir in registry.temp_dirs.drain(..) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Registers a child process to kill and reap on a signal. `spawn_self` does
/// it for its children; a lesson that forks registers its own.
pub fn register_child(pid: u32) {
    registry().children.push((pid, false));
}

/// Registers a child that leads its own process group: on a signal the
/// whole group is killed, grandchildren included.
pub fn register_group(pid: u32) {
    registry().children.push((pid, true));
}

/// Forgets a child that has been reaped (its pid may be reused).
pub fn forget_child(pid: u32) {
    registry().children.retain(|&(p, _)| p != pid);
}

/// A temporary directory that is deleted when dropped, and also when a
/// signal ends the lesson (after [`install`]).
#[derive(Debug)]
pub struct TempDir {
    inner: tempfile::TempDir,
}

impl TempDir {
    /// Creates a fresh directory under the system's temporary directory,
    /// named after `prefix` (the lesson's name is a good one).
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let inner = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir()
            .context("creating a temporary directory")?;
        registry().temp_dirs.push(inner.path().to_path_buf());
        Ok(TempDir { inner })
    }

    pub fn path(&self) -> &Path {
        self.inner.path()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let path = self.inner.path();
        registry().temp_dirs.retain(|p| p != path);
        // `inner` is dropped next, which deletes the directory.
    }
}
