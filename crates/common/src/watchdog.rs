//! A watchdog that tells deadlock, livelock and starvation apart from
//! measurements, and an experiment that may hang, run where it cannot hang
//! the lesson.
//!
//! Three bugs look alike from outside: the program stops getting anywhere.
//! What tells them apart is what the stuck threads do meanwhile:
//!
//! | progress of the workers     | their CPU time       | state        |
//! |-----------------------------|----------------------|--------------|
//! | every worker went on        | any                  | progressing  |
//! | some went on, some did not  | any                  | starvation   |
//! | none went on                | none, seen asleep    | deadlock     |
//! | none went on                | grew (they spin)     | livelock     |
//!
//! A thread that got no CPU is called asleep only if the kernel said so
//! (its state in `/proc`): on a busy machine a spinning thread may wait
//! for a core and use little CPU, and that is no deadlock. When the figures
//! fit no row, the state is unclear, never a guess.
//!
//! [`watch`] samples each worker's progress counter (kept by the lesson)
//! and its CPU time (read from the kernel by the thread's name, so the
//! lesson's threads need no help from this crate), and classifies the first
//! window of `patience` in which not every worker progressed, with
//! [`classify`], a pure function of the figures.
//!
//! A deadlocked thread never wakes up, so the experiment that may deadlock
//! runs in a child process ([`spawn_self`](crate::child::spawn_self)): the
//! child runs the threads and the watchdog and prints what it saw as one
//! line; [`first_line_of_child`] reads that line within a budget, then
//! kills and reaps the child, whatever it printed or did not.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Below this share of the window, a stuck worker counts as asleep.
pub const ASLEEP_BELOW: f64 = 0.05;
/// From this share of the window up, a stuck worker counts as spinning.
pub const SPINNING_FROM: f64 = 0.20;

/// What a window of watching found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Every worker finished its work.
    Finished,
    /// Every worker progressed in every window until the budget ran out.
    Progressing,
    /// Some workers progressed and some did not.
    Starvation,
    /// No worker progressed and none used CPU: they sleep on each other.
    Deadlock,
    /// No worker progressed and every one kept using CPU.
    Livelock,
    /// No worker progressed, but their CPU time was neither clearly nil nor
    /// clearly busy (a busy machine gave them too little to tell).
    Unclear,
}

impl State {
    /// The state's name, as printed.
    pub fn name(self) -> &'static str {
        match self {
            State::Finished => "finished",
            State::Progressing => "progressing",
            State::Starvation => "starvation",
            State::Deadlock => "deadlock",
            State::Livelock => "livelock",
            State::Unclear => "unclear",
        }
    }
}

/// One worker over the window that decided the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Worker {
    /// The thread's name.
    pub name: String,
    /// Its progress counter at the end of the window.
    pub progress: u64,
    /// How much its counter grew during the window.
    pub progressed: u64,
    /// CPU time it used during the window, in seconds.
    pub cpu_s: f64,
    /// The share of the window's samples in which it was awake (running or
    /// waiting for a CPU), not asleep.
    pub awake: f64,
}

/// What the watchdog saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watch {
    pub state: State,
    /// The window the state rests on, in seconds (from the last window in
    /// which every worker progressed, or from the start).
    pub window_s: f64,
    /// From the start of watching to the verdict, in seconds.
    pub watched_s: f64,
    pub workers: Vec<Worker>,
}

impl Watch {
    /// The share of the window each worker spent on a CPU.
    pub fn cpu_shares(&self) -> Vec<f64> {
        self.workers.iter().map(|w| share(w.cpu_s, self.window_s)).collect()
    }
}

fn share(cpu_s: f64, window_s: f64) -> f64 {
    if window_s > 0.0 { cpu_s / window_s } else { 0.0 }
}

/// Classifies a window from each worker's progress in it, its share of the
/// window spent on a CPU, and the share of the samples in which it was
/// awake (running or waiting for a CPU, not asleep): see the table in the
/// module's doc. Asleep means seen asleep: a thread that used little CPU
/// because others held the cores is not called deadlocked.
pub fn classify(progressed: &[u64], cpu_shares: &[f64], awake_shares: &[f64]) -> State {
    let moved = progressed.iter().filter(|&&p| p > 0).count();
    if moved == progressed.len() {
        State::Progressing
    } else if moved > 0 {
        State::Starvation
    } else if cpu_shares.iter().all(|&s| s < ASLEEP_BELOW) && awake_shares.iter().all(|&a| a <= SEEN_AWAKE) {
        State::Deadlock
    } else if cpu_shares.iter().all(|&s| s >= SPINNING_FROM) {
        State::Livelock
    } else {
        State::Unclear
    }
}

/// A deadlocked thread may be caught awake in a sample or so, on its way
/// to sleep; beyond this share of the samples it is not asleep.
const SEEN_AWAKE: f64 = 0.1;

/// One look at the workers.
struct Sample {
    at: Instant,
    progress: Vec<u64>,
    threads: Vec<Thread>,
}

/// Watches the threads of this process named `names` (each name unique in
/// the process, at most 15 bytes: the kernel keeps no more): `progress`
/// returns their counters in the same order, `finished` says whether all
/// are done.
///
/// Samples every `patience / 10`. Returns [`State::Finished`] as soon as
/// `finished()`; otherwise the state of the first window of `patience` in
/// which not every worker progressed; or [`State::Progressing`] when
/// `budget` passed with every window progressing. A thread not found yet
/// (not started) counts as asleep, using no CPU.
pub fn watch(
    names: &[String],
    progress: impl Fn() -> Vec<u64>,
    finished: impl Fn() -> bool,
    patience: Duration,
    budget: Duration,
) -> Watch {
    let start = Instant::now();
    let sample = || Sample {
        at: Instant::now(),
        progress: progress(),
        threads: names.iter().map(|n| thread_by_name(n)).collect(),
    };
    let mut from = sample();
    // Per worker, the samples of this window in which it was awake.
    let mut awake = vec![0u32; names.len()];
    let mut samples = 0u32;
    loop {
        thread::sleep(patience / 10);
        let now = sample();
        samples += 1;
        for (count, thread) in awake.iter_mut().zip(&now.threads) {
            *count += u32::from(thread.awake);
        }
        let window = now.at - from.at;
        let done = finished();
        if !(done || window >= patience || now.at - start >= budget) {
            continue;
        }
        let workers: Vec<Worker> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Worker {
                name: name.clone(),
                progress: now.progress[i],
                progressed: now.progress[i].saturating_sub(from.progress[i]),
                cpu_s: now.threads[i].cpu.saturating_sub(from.threads[i].cpu).as_secs_f64(),
                awake: f64::from(awake[i]) / f64::from(samples),
            })
            .collect();
        let state = if done {
            State::Finished
        } else {
            let progressed: Vec<u64> = workers.iter().map(|w| w.progressed).collect();
            let shares: Vec<f64> = workers.iter().map(|w| share(w.cpu_s, window.as_secs_f64())).collect();
            let awake: Vec<f64> = workers.iter().map(|w| w.awake).collect();
            classify(&progressed, &shares, &awake)
        };
        if state != State::Progressing || now.at - start >= budget {
            return Watch {
                state,
                window_s: window.as_secs_f64(),
                watched_s: start.elapsed().as_secs_f64(),
                workers,
            };
        }
        from = now;
        awake.iter_mut().for_each(|count| *count = 0);
        samples = 0;
    }
}

/// Held while one experiment's threads are watched, where several run in
/// one process (a lesson's tests): the watchdog finds threads by name, so
/// two tables whose threads share names must not be watched at once.
pub fn one_watch_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Watches (with [`watch`]) until the workers finish or are stuck for good
/// (a deadlock or a livelock), or `budget` runs out. A window of
/// starvation, or an unclear one, is watched again: a worker that finished
/// early, or waited longer than the patience for a core on a busy machine,
/// is not stuck for good.
pub fn watch_until_stuck(
    names: &[String],
    progress: impl Fn() -> Vec<u64>,
    finished: impl Fn() -> bool,
    patience: Duration,
    budget: Duration,
) -> Watch {
    let start = Instant::now();
    loop {
        let left = budget.saturating_sub(start.elapsed()).max(patience);
        let seen = watch(names, &progress, &finished, patience, left);
        let again = matches!(seen.state, State::Starvation | State::Unclear | State::Progressing);
        if !again || start.elapsed() >= budget {
            return seen;
        }
    }
}

/// What the kernel says of one thread: its CPU time so far, and whether it
/// is awake (running, or runnable and waiting for a CPU: state `R`).
struct Thread {
    cpu: Duration,
    awake: bool,
}

/// The thread of this process named `name`; asleep with no CPU time when
/// there is none.
fn thread_by_name(name: &str) -> Thread {
    let none = Thread { cpu: Duration::ZERO, awake: false };
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return none };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end_matches('\n') == name {
            let tid: i32 = task.file_name().to_string_lossy().parse().unwrap_or(0);
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            return Thread {
                cpu: crate::measure::thread_cpu_time_of(tid),
                awake: state_of(&stat) == Some('R'),
            };
        }
    }
    none
}

/// The state letter of a `/proc/.../stat` line: the field after the
/// command name, which is in parentheses and may itself hold spaces.
fn state_of(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Prints `value` as the one JSON line a child reports to its parent.
pub fn report_to_parent<T: Serialize>(value: &T) -> anyhow::Result<()> {
    use std::io::Write;
    let line = serde_json::to_string(value).context("encoding the child's report")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).context("writing the child's report")
}

/// Starts this executable again as `--child-role ROLE ARGS...`, waits at
/// most `budget` for the first line it prints, then kills it (its threads
/// may be deadlocked for good) and reaps it, and decodes the line.
pub fn first_line_of_child<T: for<'de> Deserialize<'de>>(
    role: &str,
    args: &[String],
    budget: Duration,
) -> anyhow::Result<T> {
    let args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
    let mut child = crate::child::spawn_self(role, &args, |command| {
        command.stdin(Stdio::null()).stdout(Stdio::piped());
    })?;
    let stdout = child.handle().stdout.take().context("the child's stdout is piped")?;
    let (line_tx, line_rx) = mpsc::channel();
    // The reader ends when the child's stdout closes: when it is killed below.
    let reader = thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let _ = line_tx.send(read.map(|_| line));
    });
    let line = line_rx.recv_timeout(budget);
    let status = child.kill()?;
    let _ = reader.join();
    let line = match line {
        Ok(Ok(line)) if !line.trim().is_empty() => line,
        Ok(Ok(_)) => bail!("child role {role} printed nothing and exited ({status})"),
        Ok(Err(err)) => return Err(err).context(format!("reading child role {role}'s report")),
        Err(_) => bail!("child role {role} reported nothing within {budget:?} and was killed"),
    };
    serde_json::from_str(&line).with_context(|| format!("decoding child role {role}'s report {line:?}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use super::*;

    #[test]
    fn every_worker_moving_is_progress_whatever_its_cpu() {
        assert_eq!(classify(&[3, 1], &[0.0, 0.9], &[0.0, 1.0]), State::Progressing);
    }

    #[test]
    fn some_moving_and_some_not_is_starvation() {
        assert_eq!(classify(&[500, 0, 2], &[0.9, 0.0, 0.5], &[1.0, 0.0, 0.5]), State::Starvation);
    }

    #[test]
    fn none_moving_is_told_apart_by_cpu() {
        assert_eq!(classify(&[0, 0], &[0.0, 0.01], &[0.0, 0.1]), State::Deadlock);
        assert_eq!(classify(&[0, 0], &[0.6, 0.3], &[1.0, 1.0]), State::Livelock);
        // One asleep and one spinning, or too little CPU to call it
        // spinning: the watchdog does not guess.
        assert_eq!(classify(&[0, 0], &[0.0, 0.9], &[0.0, 1.0]), State::Unclear);
        assert_eq!(classify(&[0, 0], &[0.1, 0.1], &[1.0, 1.0]), State::Unclear);
        // No CPU, but awake: spinning threads that others kept off the
        // cores. Not a deadlock.
        assert_eq!(classify(&[0, 0], &[0.01, 0.02], &[0.9, 1.0]), State::Unclear);
    }

    /// Real threads: one spins without progress, one sleeps without
    /// progress, one progresses; the watchdog reads their CPU by name.
    #[test]
    fn reads_real_threads_by_name() {
        let stop = Arc::new(AtomicBool::new(false));
        let ticks = Arc::new(AtomicU64::new(0));
        let names: Vec<String> = ["wd-spin", "wd-sleep", "wd-tick"].iter().map(|s| s.to_string()).collect();
        let spin = {
            let stop = Arc::clone(&stop);
            thread::Builder::new().name(names[0].clone()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        };
        let sleep = {
            let stop = Arc::clone(&stop);
            thread::Builder::new().name(names[1].clone()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(5));
                }
            })
        };
        let tick = {
            let (stop, ticks) = (Arc::clone(&stop), Arc::clone(&ticks));
            thread::Builder::new().name(names[2].clone()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    ticks.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(1));
                }
            })
        };
        let seen = watch(
            &names,
            || vec![0, 0, ticks.load(Ordering::Relaxed)],
            || false,
            Duration::from_millis(300),
            Duration::from_secs(5),
        );
        stop.store(true, Ordering::Relaxed);
        for handle in [spin, sleep, tick] {
            handle.expect("spawn").join().expect("no panic");
        }
        assert_eq!(seen.state, State::Starvation, "{seen:?}");
        assert_eq!(seen.workers[0].progressed, 0);
        assert!(seen.workers[2].progressed > 0, "{seen:?}");
        // The spinning thread used more CPU than the sleeping one, whatever
        // the machine's load.
        assert!(seen.workers[0].cpu_s > seen.workers[1].cpu_s, "{seen:?}");
        // Spinning is awake in every sample; sleeping almost never.
        assert!(seen.workers[0].awake > seen.workers[1].awake, "{seen:?}");
    }

    #[test]
    fn reads_the_state_even_when_the_name_has_spaces() {
        assert_eq!(state_of("1234 (seat 0) S 1 2 3"), Some('S'));
        assert_eq!(state_of("1234 (a (b) c) R 1"), Some('R'));
        assert_eq!(state_of("garbage"), None);
    }

    #[test]
    fn finished_work_is_seen_at_once() {
        let seen = watch(
            &["nobody".to_string()],
            || vec![1],
            || true,
            Duration::from_millis(100),
            Duration::from_secs(60),
        );
        assert_eq!(seen.state, State::Finished);
    }
}
