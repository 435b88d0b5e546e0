//! Start this executable again in a named role: Python's 'spawn' start method.
//!
//! Python's `multiprocessing` with the 'spawn' method starts a fresh
//! interpreter and tells it which function to run. The Rust equivalent is to
//! run the current executable again (`std::env::current_exe()`) with a hidden
//! first argument, `--child-role NAME`, that the lesson's `main` checks before
//! parsing its flags:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     if let Some(role) = common::child::role() {
//!         // This process is a child: do the role's work and exit.
//!         return std::process::ExitCode::SUCCESS;
//!     }
//!     // This process is the parent: parse flags, start children, report.
//!     let child = common::child::spawn_self("sender", &[], |_| {});
//!     std::process::ExitCode::SUCCESS
//! }
//! ```
//!
//! [`output_with_deadline`] runs any command to its end, or kills it at a
//! deadline: how the runner and the tests make sure a lesson cannot hang them.
//!
//! A [`ChildProcess`] is reaped on every path: [`ChildProcess::wait`] on
//! success, and its `Drop` (kill, then wait) on an error or a panic in the
//! parent, so no zombie outlives the lesson.

use std::ffi::OsString;
use std::io::Read;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The hidden first argument that marks a child process and names its role.
pub const ROLE_ARG: &str = "--child-role";

/// The environment variable through which a child learns its parent's pid.
const PARENT_PID_VAR: &str = "LESSON_PARENT_PID";

/// The role this process was started in, with the arguments after it; `None`
/// for the process the user started.
///
/// In a child it also asks the kernel to kill this process if its parent
/// dies (`PR_SET_PDEATHSIG`), the one clean-up that works even when the
/// parent is killed with SIGKILL; and if the parent is already gone, it exits.
pub fn role() -> Option<(String, Vec<String>)> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(ROLE_ARG) {
        return None;
    }
    let name = args.next().unwrap_or_default();
    die_with_parent();
    Some((name, args.collect()))
}

/// A child's `main` in one line: if this process was started by
/// [`spawn_self`], runs `play(role, args)` and returns the code to exit with
/// (success, or failure after printing `error: ...` with its causes); `None`
/// for the process the user started.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     if let Some(code) = common::child::play_role(|role, _args| match role {
///         "hello" => Ok(println!("hello from the child")),
///         other => anyhow::bail!("unknown role {other}"),
///     }) {
///         return code;
///     }
///     // The parent's work.
///     std::process::ExitCode::SUCCESS
/// }
/// ```
pub fn play_role(play: impl FnOnce(&str, &[String]) -> anyhow::Result<()>) -> Option<std::process::ExitCode> {
    let (name, args) = role()?;
    Some(match play(&name, &args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    })
}

fn die_with_parent() {
    #[cfg(target_os = "linux")]
    {
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
        // The parent may have died before the line above ran; then this
        // process has been adopted and its parent pid is no longer the one
        // it was given.
        let expected = std::env::var(PARENT_PID_VAR).ok().and_then(|p| p.parse::<i32>().ok());
        if expected.is_some_and(|pid| nix::unistd::getppid().as_raw() != pid) {
            std::process::exit(1);
        }
    }
}

/// A child process of this lesson, reaped when dropped.
#[derive(Debug)]
pub struct ChildProcess {
    role: String,
    child: std::process::Child,
    reaped: bool,
}

/// Starts this executable again as `--child-role ROLE ARGS...`.
///
/// `configure` sets up the command before it starts: typically its stdin or
/// stdout as a pipe (`Stdio::piped()`), so the two processes can talk.
///
/// A Ctrl-C kills it too (the [`cleanup`](crate::cleanup) kills every
/// descendant). It is also killed if the thread that started it ends (the
/// kernel ties the parent-death signal to that thread): start children from
/// a thread that outlives them, such as `main`.
pub fn spawn_self(
    role: &str,
    args: &[OsString],
    configure: impl FnOnce(&mut Command),
) -> anyhow::Result<ChildProcess> {
    let exe = std::env::current_exe().context("finding this executable to start it again")?;
    let mut command = Command::new(&exe);
    command.arg(ROLE_ARG).arg(role).args(args).env(PARENT_PID_VAR, std::process::id().to_string());
    configure(&mut command);
    let child =
        command.spawn().with_context(|| format!("starting {} as child role {role}", exe.display()))?;
    Ok(ChildProcess { role: role.to_string(), child, reaped: false })
}

impl ChildProcess {
    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The role it was started in.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The underlying handle, to take its pipes (`stdin`, `stdout`) or signal it.
    pub fn handle(&mut self) -> &mut std::process::Child {
        &mut self.child
    }

    /// Waits for the child to exit and reaps it.
    pub fn wait(mut self) -> anyhow::Result<ExitStatus> {
        let status = self.child.wait().with_context(|| format!("waiting for child role {}", self.role))?;
        self.mark_reaped();
        Ok(status)
    }

    fn mark_reaped(&mut self) {
        self.reaped = true;
    }

    /// Kills the child (SIGKILL) if it still runs, then reaps it.
    pub fn kill(mut self) -> anyhow::Result<ExitStatus> {
        self.kill_and_reap().with_context(|| format!("killing child role {}", self.role))
    }

    fn kill_and_reap(&mut self) -> std::io::Result<ExitStatus> {
        // `kill` fails only when the child has already exited; `wait` reaps
        // it either way.
        let _ = self.child.kill();
        let status = self.child.wait()?;
        self.mark_reaped();
        Ok(status)
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.kill_and_reap();
        }
    }
}

/// Runs `command` to its end with stdout and stderr captured, like
/// [`Command::output`], but kills it (SIGKILL) and returns an error if it is
/// still running after `limit`. Its stdin is closed.
///
/// The command runs in a process group of its own, registered with
/// [`cleanup`](crate::cleanup): at the deadline or on Ctrl-C, the command and
/// anything it started (a Python script's worker processes, say) are killed.
pub fn output_with_deadline(command: &mut Command, limit: Duration) -> anyhow::Result<Output> {
    use std::os::unix::process::CommandExt;
    let mut child = command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    // Two threads drain the pipes (a child blocked on a full pipe would never
    // exit); a third waits for the child and reports on a channel, which the
    // caller waits on with a deadline.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout is piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr is piped")));
    crate::cleanup::register_group(child.id());
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("a pid fits in i32"));
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait();
        let _ = done_tx.send(());
        status
    });
    let timed_out = done_rx.recv_timeout(limit).is_err();
    if timed_out {
        // The waiter owns the child, so it is killed by its pid (its whole
        // group); the waiter then reaps it.
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = kill(pid, Signal::SIGKILL);
    }
    let status = waiter.join().expect("the waiter thread does not panic").context("waiting for the child")?;
    crate::cleanup::forget_group(pid.as_raw() as u32);
    // Whatever the command started and left behind goes with it.
    let _ = killpg(pid, Signal::SIGKILL);
    let output = Output {
        status,
        stdout: stdout.join().expect("reader thread"),
        stderr: stderr.join().expect("reader thread"),
    };
    if timed_out {
        bail!("{command:?} ran longer than {limit:?} and was killed");
    }
    Ok(output)
}
