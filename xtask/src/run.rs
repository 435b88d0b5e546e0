//! Running a lesson from the xtask: bounded in time, stopped with the runner.
//!
//! A lesson runs in a process group of its own, so that a deadline can stop
//! it together with whatever it started. On Ctrl-C (or SIGTERM, SIGHUP) the
//! runner passes the signal on to the running lesson's group, so the lesson
//! cleans up after itself as it does when run by hand, waits for it, and
//! exits with 128 + the signal's number.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};

/// The stop signal that arrived, or 0: set by signal-hook's handler.
static STOP: std::sync::OnceLock<Arc<AtomicUsize>> = std::sync::OnceLock::new();

/// Catches SIGINT, SIGTERM and SIGHUP for [`output_with_deadline`] to act on.
/// Call once, first thing in `main`.
pub fn catch_stop_signals() {
    let stop = STOP.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        // If a handler cannot be set, that signal keeps its default action:
        // the runner still stops, only without passing it on.
        let _ = signal_hook::flag::register_usize(signal, Arc::clone(stop), signal as usize);
    }
}

fn stop_signal() -> Option<i32> {
    STOP.get().map(|stop| stop.load(Ordering::SeqCst) as i32).filter(|&signal| signal != 0)
}

/// Runs `command` to its end with stdout and stderr captured, like
/// [`Command::output`], but kills its process group (SIGKILL) and returns an
/// error if it still runs after `limit`. On a stop signal it passes the
/// signal on, waits up to 10 s for the lesson's own clean-up, and exits.
pub fn output_with_deadline(command: &mut Command, limit: Duration) -> anyhow::Result<Output> {
    let mut child = command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    // Two threads drain the pipes: a child blocked on a full pipe would never exit.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().context("stdout is piped")?));
    let stderr = drain(Box::new(child.stderr.take().context("stderr is piped")?));
    let group = Pid::from_raw(i32::try_from(child.id()).context("a pid fits in i32")?);
    let started = Instant::now();
    let mut timed_out = false;
    // Nothing both waits for a child and for a signal, so this looks every
    // 10 ms: a delay no one notices at the end of a lesson.
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for the lesson")? {
            break status;
        }
        if let Some(signal) = stop_signal() {
            let _ = killpg(group, Signal::try_from(signal).unwrap_or(Signal::SIGINT));
            let patience = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < patience {
                thread::sleep(Duration::from_millis(10));
            }
            let _ = killpg(group, Signal::SIGKILL);
            let _ = child.wait();
            std::process::exit(128 + signal);
        }
        if started.elapsed() > limit {
            timed_out = true;
            let _ = killpg(group, Signal::SIGKILL);
            break child.wait().context("reaping the killed lesson")?;
        }
        thread::sleep(Duration::from_millis(10));
    };
    // Whatever the lesson started and left behind goes with it.
    let _ = killpg(group, Signal::SIGKILL);
    let output = Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if timed_out {
        bail!("{command:?} ran longer than {limit:?} and was killed");
    }
    Ok(output)
}
