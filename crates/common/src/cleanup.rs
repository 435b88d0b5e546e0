//! Leave nothing behind: no child process and no temporary file, even when
//! the user presses Ctrl-C.
//!
//! Rust runs destructors when `main` returns and when a panic unwinds, so a
//! [`ChildProcess`](crate::child::ChildProcess) (killed and reaped when
//! dropped) and a [`TempDir`] (deleted when dropped) clean up on every path
//! but one: a signal such as Ctrl-C (SIGINT) or `kill` (SIGTERM) ends the
//! process at once, and no destructor runs. This module closes that gap.
//!
//! [`install`] asks `signal-hook` to catch SIGINT, SIGTERM and SIGHUP and
//! starts one thread that waits for them. When one arrives, that thread
//! kills every process descended from the lesson (found in `/proc`, so a
//! lesson's own `fork` or `Command` needs no registering), reaps its own
//! children, deletes every temporary directory still registered, and exits
//! with 128 + the signal's number, as a shell expects. Waiting in a thread,
//! rather than working inside a signal handler, means the clean-up may lock,
//! allocate and delete files.
//!
//! Nothing is blocked or masked: a program started with `exec` gets the
//! default handling back, so a spawned child stops on Ctrl-C like any
//! program, and no lesson has to undo anything the kit did. A lesson that
//! forks should fork before calling [`install`] when it needs a
//! single-threaded parent (the thread it starts is a thread like any other).
//!
//! SIGKILL cannot be caught. For that case, a child started by
//! [`spawn_self`](crate::child::spawn_self) asks the kernel to kill it when its
//! parent dies (see [`child::role`](crate::child::role)).
//!
//! When the clean-up has begun, the lesson's own thread may notice its
//! children dying and fail; [`cli::finish`](crate::cli::finish) then waits
//! for the clean-up to end the process, so the exit code is always 128 + the
//! signal's number.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// What the clean-up thread must remove if a signal ends the lesson.
#[derive(Default)]
struct Registry {
    /// Process groups started by [`output_with_deadline`](crate::child::output_with_deadline):
    /// killed whole, so that a program's own children go too.
    groups: Vec<u32>,
    temp_dirs: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { groups: Vec::new(), temp_dirs: Vec::new() });
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

/// Starts the clean-up on SIGINT, SIGTERM and SIGHUP (once; later calls do
/// nothing). Without it a stop signal ends the lesson at once, as it ends any
/// program; the kernel still kills spawned children (see
/// [`child::role`](crate::child::role)), but temporary files stay.
pub fn install() {
    INSTALL.call_once(|| {
        // The lesson adopts its orphans: a grandchild whose parent dies (a
        // fork server's worker, killed with it) is reparented to the lesson
        // rather than to PID 1, so the clean-up below reaps it too. Many
        // containers' PID 1 reaps nothing, and a zombie there stays for good.
        // If the kernel refuses, orphans go to PID 1 as before.
        let _ = nix::sys::prctl::set_child_subreaper(true);
        // The handlers are set from inside the thread that will act on them:
        // if the thread cannot start, no handler is set and a stop signal
        // keeps its default action (the lesson stops, without the clean-up).
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new().name("cleanup-on-signal".into()).spawn(move || {
            let signals = Signals::new([SIGINT, SIGTERM, SIGHUP]);
            let _ = ready_tx.send(());
            let Ok(mut signals) = signals else { return };
            if let Some(signal) = signals.forever().next() {
                // Said before any child is killed, so that whoever sees a
                // child die can also see why.
                STOPPING.store(true, Ordering::SeqCst);
                clean_up();
                std::process::exit(128 + signal);
            }
        });
        // Wait until the handlers are set, so a signal that comes right
        // after `install` returns is caught.
        if spawned.is_ok() {
            let _ = ready_rx.recv();
        }
    });
}

/// Kills every process descended from this one and reaps this one's
/// children, then deletes every registered temporary directory.
fn clean_up() {
    let mut registry = registry();
    for group in registry.groups.drain(..) {
        let _ = killpg(Pid::from_raw(group as i32), Signal::SIGKILL);
    }
    // The lesson's own threads may still be starting children while this
    // runs (a loop of forks does not stop at once), and a child started
    // just before the process exits would be left a zombie for PID 1. So
    // kill and reap in rounds until nothing has been left to kill or reap
    // for a while: by then the lesson's thread has seen its children die
    // and stopped (see `cli::finish`). Orphaned grandchildren are ours too
    // (a subreaper, see `install`), so the reaping takes them. SIGKILL acts
    // at once, so this takes a few tens of milliseconds; the deadline is for
    // safety.
    const QUIET: Duration = Duration::from_millis(50);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut quiet_since: Option<Instant> = None;
    while Instant::now() < deadline {
        let descendants = descendants_of(std::process::id());
        for &pid in &descendants {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        let mut reaped = false;
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(status) if status.pid().is_none() => break, // children, none ended yet
                Ok(_) => reaped = true,
                Err(_) => break, // no child at all
            }
        }
        if descendants.is_empty() && !reaped {
            if quiet_since.get_or_insert_with(Instant::now).elapsed() >= QUIET {
                break;
            }
        } else {
            quiet_since = None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for dir in registry.temp_dirs.drain(..) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Every live process below `pid` in the process tree: its children, their
/// children, and so on (from `/proc`, Linux).
pub fn descendants_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(parent) = next.pop() {
        for child in children_of(parent) {
            if !found.contains(&child) {
                found.push(child);
                next.push(child);
            }
        }
    }
    found
}

/// The pids of the live children of process `pid` (from `/proc`, Linux).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return children };
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    children
}

/// Registers a process group to kill on a signal.
pub(crate) fn register_group(pid: u32) {
    registry().groups.push(pid);
}

/// Forgets a process group whose leader has been reaped (its pid may be reused).
pub(crate) fn forget_group(pid: u32) {
    registry().groups.retain(|&p| p != pid);
}

/// A temporary directory that is deleted when dropped, and also when a
/// signal ends the lesson (after [`install`]).
#[derive(Debug)]
pub struct TempDir {
    inner: tempfile::TempDir,
}

impl TempDir {
    /// Creates a fresh directory under the system's temporary directory,
    /// named `PREFIX-PID-...` (the lesson's name is a good prefix).
    ///
    /// A lesson killed outright (`kill -9`) cannot delete its directory, so
    /// this first deletes the directories of earlier runs with the same
    /// prefix whose process no longer exists.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let temp = std::env::temp_dir();
        remove_orphans(&temp, prefix);
        // Created and registered under the registry's lock, and not at all
        // once a stop signal arrived: the clean-up holds that lock from the
        // moment it starts until the process exits, so a directory is either
        // registered before it looks or never made (a lesson thread that
        // keeps going after Ctrl-C would otherwise leave one behind).
        let mut registry = registry();
        anyhow::ensure!(!stopping(), "stopping: a signal arrived");
        let inner = tempfile::Builder::new()
            .prefix(&format!("{prefix}-{}-", std::process::id()))
            .tempdir_in(&temp)
            .context("creating a temporary directory")?;
        registry.temp_dirs.push(inner.path().to_path_buf());
        Ok(TempDir { inner })
    }

    pub fn path(&self) -> &Path {
        self.inner.path()
    }
}

/// Deletes `PREFIX-PID-*` directories in `temp` whose process is gone.
/// Best effort: whatever cannot be read or deleted is left alone.
fn remove_orphans(temp: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(temp) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)?.strip_prefix('-')) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|pid| pid.parse::<u32>().ok()) else { continue };
        let owner_gone = !Path::new(&format!("/proc/{pid}")).exists();
        if owner_gone && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let path = self.inner.path();
        registry().temp_dirs.retain(|p| p != path);
        // `inner` is dropped next, which deletes the directory.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_of_runs_that_are_gone_are_removed() {
        let temp = tempfile::tempdir().unwrap();
        // A pid that has just ended (and been reaped), and this process's own.
        let mut ended = std::process::Command::new("true").spawn().unwrap();
        ended.wait().unwrap();
        let orphan = temp.path().join(format!("demo-{}-abc", ended.id()));
        let alive = temp.path().join(format!("demo-{}-def", std::process::id()));
        let other = temp.path().join(format!("demonstration-{}-x", ended.id()));
        for dir in [&orphan, &alive, &other] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("corpus.txt"), "words").unwrap();
        }
        remove_orphans(temp.path(), "demo");
        assert!(!orphan.exists());
        assert!(alive.exists() && other.exists());
    }
}
