//! The experiment around the lesson: the two workers run in lockstep and
//! with random pauses, trial after trial, each watched until it finishes or
//! the watchdog sees it stuck, then told to stop; the jobs, tries and CPU
//! counted; the claims.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use common::cli::{CommonArgs, SeedArg};
use common::watchdog::{self, State, Watch};
use common::{Claim, Report};

use crate::{Pair, workers};

#[derive(Parser, Debug)]
#[command(name = "livelock", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    seed: SeedArg,

    /// Trials of each way of retrying [default: 3, 2 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    trials: Option<u32>,

    /// Jobs each worker must do in a trial [default: 1000, 200 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    jobs: Option<u64>,

    /// The watchdog's patience: milliseconds without a job after which it
    /// calls the workers stuck, and says how [default: 300, 200 with --quick].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(50..=10_000))]
    patience_ms: Option<u64>,
}

/// The seed without `--seed`: every run pauses the same way (the timing of
/// the threads still varies).
const DEFAULT_SEED: u64 = 6;

/// The sizes of one run, from the flags.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    trials: u32,
    jobs: u64,
    patience: Duration,
    seed: u64,
}

impl Sizes {
    fn from(args: &Args) -> Self {
        Sizes {
            trials: args.trials.unwrap_or(args.common.pick(3, 2)),
            jobs: args.jobs.unwrap_or(args.common.pick(1000, 200)),
            patience: Duration::from_millis(args.patience_ms.unwrap_or(args.common.pick(300, 200))),
            seed: args.seed.seed.unwrap_or(DEFAULT_SEED),
        }
    }

    /// How long a trial may go on while its workers still do jobs.
    fn budget(&self) -> Duration {
        self.patience * 10
    }

    /// How long these sizes make the run, worked out before anything
    /// starts: a lockstep trial lasts about the watchdog's patience; a
    /// pausing one about 50 us a job (a pause, now and then, a debug build),
    /// but never longer than its budget.
    fn run_time(&self) -> Duration {
        let pausing = Duration::from_micros(50 * self.jobs).min(self.budget());
        (self.patience * 2 + pausing) * self.trials
    }
}

/// The two ways of retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Lockstep,
    Backoff,
}

const LOCKSTEP: &str = "in lockstep";
const BACKOFF: &str = "random pause";

/// What one trial gave.
#[derive(Debug, Clone, PartialEq)]
struct Trial {
    /// What the watchdog saw last.
    watch: Watch,
    /// Jobs of each worker at the watchdog's verdict, and tries when the
    /// trial ended.
    jobs: [u64; 2],
    tries: [u64; 2],
    /// Jobs each worker was to do.
    target: u64,
}

impl Trial {
    fn finished(&self) -> bool {
        self.watch.state == State::Finished && self.jobs.iter().all(|&j| j == self.target)
    }

    fn livelocked(&self) -> bool {
        self.watch.state == State::Livelock && self.jobs == [0, 0]
    }

    fn stuck(&self) -> bool {
        matches!(self.watch.state, State::Deadlock | State::Livelock)
    }

    fn tries(&self) -> u64 {
        self.tries.iter().sum()
    }

    /// The smaller of the two workers' shares of the last window on a CPU.
    fn least_cpu_share(&self) -> f64 {
        self.watch.cpu_shares().into_iter().fold(f64::INFINITY, f64::min)
    }
}

pub fn main() -> ExitCode {
    let args: Args = common::cli::parse();
    let sizes = Sizes::from(&args);
    if let Err(refused) = args.common.check_run_time(sizes.run_time(), "--trials, --jobs or --patience-ms") {
        return common::cli::finish(&args.common, Err(refused));
    }
    // No clean-up to install: the lab starts no child process and writes no
    // file, and its workers stop when told to.
    common::cli::finish(&args.common, run(&sizes))
}

fn run(sizes: &Sizes) -> anyhow::Result<Report> {
    let mut report = common::lesson_report!();
    report
        .param("trials", sizes.trials)
        .param("jobs", sizes.jobs)
        .param("patience_ms", sizes.patience.as_millis() as u64)
        .param("seed", sizes.seed);
    let lockstep = trials(sizes, Way::Lockstep)?;
    let backoff = trials(sizes, Way::Backoff)?;
    report.table(format!("two polite workers, {} trials each way, {} jobs each", sizes.trials, sizes.jobs));
    figures(&mut report, LOCKSTEP, &lockstep);
    figures(&mut report, BACKOFF, &backoff);
    report.note(format!(
        "jobs: done by both workers in all trials. tries: polite tries, each taking \
         the worker's own resource. CPU share: the least a stuck worker spent on a \
         CPU in the watchdog's last window of {} ms; under {:.0}% it would count as \
         asleep (a deadlock), from {:.0}% as spinning.",
        sizes.patience.as_millis(),
        watchdog::ASLEEP_BELOW * 100.0,
        watchdog::SPINNING_FROM * 100.0
    ));
    report.note(
        "After its verdict the lab raised the workers' stop flag, and the lockstep \
         workers, awake, saw it and ended: a livelock can be told to stop; a \
         deadlock cannot.",
    );
    report.claim(lockstep_livelocks(&lockstep));
    report.claim(backoff_completes(&backoff));
    Ok(report)
}

fn trials(sizes: &Sizes, way: Way) -> anyhow::Result<Vec<Trial>> {
    (0..sizes.trials)
        .map(|trial| run_trial(sizes, way, sizes.seed.wrapping_add(u64::from(trial))))
        .collect::<anyhow::Result<_>>()
        .with_context(|| format!("a trial {}", if way == Way::Lockstep { LOCKSTEP } else { BACKOFF }))
}

/// One trial: the two workers, watched until they finish, or the watchdog
/// sees them stuck, or the budget runs out while they still do jobs; then
/// told to stop, and waited for (a bounded wait).
fn run_trial(sizes: &Sizes, way: Way, seed: u64) -> anyhow::Result<Trial> {
    let pair = Arc::new(Pair::new());
    let target = sizes.jobs;
    let handles = match way {
        Way::Lockstep => workers(&pair, move |pair, me| pair.work_in_lockstep(me, target)),
        Way::Backoff => workers(&pair, move |pair, me| pair.work_with_backoff(me, target, seed)),
    }
    .context("starting the workers")?;
    let names: Vec<String> =
        handles.iter().map(|h| h.thread().name().unwrap_or_default().to_string()).collect();
    let jobs = || pair.jobs.iter().map(|j| j.load(Ordering::Relaxed)).collect::<Vec<_>>();
    let all_done = || jobs().iter().all(|&j| j == target);
    let watch = watchdog::watch_until_stuck(&names, jobs, all_done, sizes.patience, sizes.budget());
    pair.stop.store(true, Ordering::Relaxed);
    join_within(handles, Duration::from_secs(10))?;
    let load =
        |counters: &[std::sync::atomic::AtomicU64; 2]| counters.each_ref().map(|c| c.load(Ordering::Relaxed));
    let jobs = [0, 1].map(|i| watch.workers[i].progress);
    Ok(Trial { watch, jobs, tries: load(&pair.tries), target })
}

/// Joins the workers, or fails after `limit` (they check the stop flag at
/// every try, so only a bug keeps them).
fn join_within(handles: Vec<thread::JoinHandle<()>>, limit: Duration) -> anyhow::Result<()> {
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        let panicked = handles.into_iter().map(|h| h.join()).any(|joined| joined.is_err());
        let _ = done_tx.send(panicked);
    });
    match done_rx.recv_timeout(limit) {
        Ok(false) => Ok(()),
        Ok(true) => bail!("a worker panicked"),
        Err(_) => bail!("the workers did not stop within {limit:?} of their stop flag"),
    }
}

fn figures(report: &mut Report, name: &str, trials: &[Trial]) {
    let count = |test: fn(&Trial) -> bool| trials.iter().filter(|t| test(t)).count() as u64;
    report.figure(name, "finished", count(Trial::finished), "trials");
    report.figure(name, "livelocked", count(Trial::livelocked), "trials");
    if name == LOCKSTEP {
        report.key();
    }
    report
        .figure(name, "jobs", trials.iter().map(|t| t.jobs.iter().sum::<u64>()).sum::<u64>(), "items")
        .figure(name, "tries", trials.iter().map(Trial::tries).sum::<u64>(), "rounds");
    let stuck: Vec<f64> = trials.iter().filter(|t| t.stuck()).map(Trial::least_cpu_share).collect();
    if !stuck.is_empty() {
        report.figure(name, "CPU share", stuck.iter().copied().fold(f64::INFINITY, f64::min), "fraction");
    }
}

// ---------------------------------------------------------------------------
// The claims.
// ---------------------------------------------------------------------------

fn shares(trial: &Trial) -> String {
    trial.watch.cpu_shares().iter().map(|s| format!("{:.0}%", s * 100.0)).collect::<Vec<_>>().join(" and ")
}

/// Every lockstep trial: no job at all, and both workers spinning. A job
/// done, or workers asleep, is a counterexample; workers that got too
/// little CPU to tell (a busy machine) make the claim inconclusive.
fn lockstep_livelocks(trials: &[Trial]) -> Claim {
    let id = "lockstep-livelocks";
    let statement = "in lockstep, the workers did no job at all while they kept using CPU: a livelock";
    let n = trials.len();
    let livelocked = trials.iter().filter(|t| t.livelocked()).count();
    let mut evidence = format!("{livelocked}/{n} trials livelocked");
    if let Some(t) = trials.iter().find(|t| t.livelocked()) {
        evidence += &format!(
            "; in {} ms, 0 jobs, {} tries, the workers on a CPU {} of the time",
            (t.watch.window_s * 1e3).round(),
            t.tries(),
            shares(t)
        );
    }
    let counterexample =
        trials.iter().find(|t| t.jobs.iter().any(|&j| j > 0) || t.watch.state == State::Deadlock);
    if let Some(t) = counterexample {
        evidence += &format!(
            "; a trial did {} jobs, the watchdog saw {}",
            t.jobs.iter().sum::<u64>(),
            t.watch.state.name()
        );
    }
    if livelocked == n || counterexample.is_some() {
        return Claim::check(id, statement, livelocked == n, evidence);
    }
    let unclear: Vec<String> = trials.iter().filter(|t| !t.livelocked()).map(shares).collect();
    Claim::inconclusive(
        id,
        statement,
        format!(
            "no job was done, but the workers got too little CPU to call them spinning (on a \
             CPU {} of the window; a busy machine)",
            unclear.join("; ")
        ),
        evidence,
    )
}

/// Every trial with random pauses: every job done. Workers stuck for good
/// are a counterexample; workers still doing jobs when the budget ran out
/// (a busy machine) make the claim inconclusive.
fn backoff_completes(trials: &[Trial]) -> Claim {
    let id = "backoff-completes";
    let statement = "with a random pause before each retry, both workers did every job";
    let n = trials.len();
    let finished = trials.iter().filter(|t| t.finished()).count();
    let target = trials.first().map_or(0, |t| t.target);
    let tries: Vec<String> = trials.iter().map(|t| t.tries().to_string()).collect();
    let mut evidence =
        format!("{finished}/{n} trials: both did their {target} jobs, in {} tries", tries.join(", "));
    if let Some(t) = trials.iter().find(|t| t.stuck()) {
        evidence += &format!(
            "; a trial got stuck: {} jobs, the watchdog saw {}",
            t.jobs.iter().sum::<u64>(),
            t.watch.state.name()
        );
    }
    if finished == n || trials.iter().any(Trial::stuck) {
        return Claim::check(id, statement, finished == n, evidence);
    }
    Claim::inconclusive(
        id,
        statement,
        "a trial was still doing jobs when its budget ran out (a busy machine)",
        evidence,
    )
}

#[cfg(test)]
mod tests {
    use common::report::Verdict;
    use common::watchdog::Worker;

    use super::*;

    fn sizes() -> Sizes {
        Sizes { trials: 1, jobs: 100, patience: Duration::from_millis(300), seed: DEFAULT_SEED }
    }

    /// Runs a real trial here; the watchdog finds the workers by thread
    /// name, so one at a time.
    fn trial_here(way: Way) -> Trial {
        let _one = common::watchdog::one_watch_at_a_time();
        run_trial(&sizes(), way, DEFAULT_SEED).expect("the workers start and stop")
    }

    #[test]
    fn lockstep_does_no_job_and_backoff_does_every_job() {
        let lockstep = trial_here(Way::Lockstep);
        assert_eq!(lockstep.jobs, [0, 0], "{lockstep:?}");
        assert!(lockstep.tries() > 2, "{lockstep:?}");
        let backoff = trial_here(Way::Backoff);
        assert!(backoff.finished(), "{backoff:?}");
        // Each claim, fed the other way's real trial, fails.
        assert_eq!(lockstep_livelocks(std::slice::from_ref(&backoff)).verdict, Verdict::DoesNotHold);
        assert_eq!(backoff_completes(&[lockstep]).verdict, Verdict::DoesNotHold);
        assert_eq!(backoff_completes(&[backoff]).verdict, Verdict::Holds);
    }

    fn stuck(state: State, cpu_s: f64) -> Trial {
        let worker = |name: &str| Worker { name: name.into(), progress: 0, progressed: 0, cpu_s, awake: 1.0 };
        Trial {
            watch: Watch {
                state,
                window_s: 0.3,
                watched_s: 0.3,
                workers: vec![worker("polite 0"), worker("polite 1")],
            },
            jobs: [0, 0],
            tries: [1, 1],
            target: 100,
        }
    }

    #[test]
    fn sleeping_workers_are_a_deadlock_not_a_livelock() {
        // No job and no CPU: the watchdog's deadlock. The livelock claim
        // must not read it as spinning.
        let asleep = stuck(watchdog::classify(&[0, 0], &[0.0, 0.0], &[0.0, 0.0]), 0.0);
        assert_eq!(asleep.watch.state, State::Deadlock);
        assert_eq!(lockstep_livelocks(&[asleep]).verdict, Verdict::DoesNotHold);
        let spinning = stuck(State::Livelock, 0.25);
        assert_eq!(lockstep_livelocks(&[spinning]).verdict, Verdict::Holds);
    }

    #[test]
    fn too_little_cpu_to_tell_is_inconclusive() {
        // A busy machine: no job, but the workers ran a tenth of the window.
        let starved = stuck(watchdog::classify(&[0, 0], &[0.1, 0.1], &[1.0, 1.0]), 0.03);
        assert_eq!(starved.watch.state, State::Unclear);
        assert_eq!(lockstep_livelocks(&[starved]).verdict, Verdict::Inconclusive);
        // Awake all along but kept off the cores: no deadlock, no verdict.
        let waiting = stuck(watchdog::classify(&[0, 0], &[0.01, 0.02], &[1.0, 1.0]), 0.005);
        assert_eq!(lockstep_livelocks(&[waiting]).verdict, Verdict::Inconclusive);
        let slow = Trial { jobs: [40, 100], ..stuck(State::Progressing, 0.1) };
        assert_eq!(backoff_completes(&[slow]).verdict, Verdict::Inconclusive);
    }
}

/// The `main` that `cargo xtask eject` gives the standalone crate, compiled
/// and run here too.
#[cfg(test)]
mod standalone {
    use crate::*;
    include!("standalone.rs");

    #[test]
    fn standalone_main_holds_its_rule() {
        let _one = common::watchdog::one_watch_at_a_time();
        main()
    }
}
