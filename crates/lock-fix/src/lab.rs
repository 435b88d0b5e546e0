//! The experiment around the lesson: it times each fix with all the threads
//! and with one, checks every trial's total, times the read-pause-write with
//! the guard held against the pauses made one after the other, and checks
//! the claims against those figures.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use common::cli::CommonArgs;
use common::measure::{median, ns_per};
use common::{Claim, Report};

use crate::{AtomicU64, Mutex, Ordering};
use crate::{
    add_with_fetch_add, add_with_parking_lot, add_with_std_mutex, count_locally, read_pause_write_locked,
};

#[derive(Parser, Debug)]
#[command(name = "lock-fix", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Threads that share the counter (the contended runs).
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,

    /// Increments each thread makes [default: 200000, 20000 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    increments: Option<u64>,

    /// Timed trials of each fix; the figures are medians.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    trials: u32,

    /// Milliseconds each thread of the read-pause-write works while holding the lock
    /// (a trial takes threads x this).
    #[arg(long, value_name = "MS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pause_ms: u64,
}

/// The four ways to make the counter exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fix {
    StdMutex,
    ParkingLotMutex,
    FetchAdd,
    PerThreadSums,
}

impl Fix {
    const ALL: [Fix; 4] = [Fix::StdMutex, Fix::ParkingLotMutex, Fix::FetchAdd, Fix::PerThreadSums];

    fn name(self) -> &'static str {
        match self {
            Fix::StdMutex => "std Mutex",
            Fix::ParkingLotMutex => "parking_lot Mutex",
            Fix::FetchAdd => "AtomicU64 fetch_add",
            Fix::PerThreadSums => "per-thread sums",
        }
    }
}

pub fn main() -> ExitCode {
    let args: Args = common::cli::parse();
    // No clean-up to install: the lesson starts no child process and writes no file.
    common::cli::finish(&args.common, run(&args))
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let threads = args.threads as usize;
    // 200,000 increments per thread keeps the slowest fix (a contended std
    // Mutex) at a fraction of a second per trial, and the fastest (local
    // sums, about a nanosecond each) long enough to time in microseconds.
    let increments = args.increments.unwrap_or(args.common.pick(200_000, 20_000));
    let trials = args.trials;
    let pause = Duration::from_millis(args.pause_ms);

    let mut report = common::lesson_report!();
    report
        .param("threads", threads)
        .param("increments", increments)
        .param("trials", trials)
        .param("pause_ms", args.pause_ms);

    // The four fixes of the counter, each with all the threads and with one.
    let costs = time_each_fix(threads, increments, trials);
    for cost in &costs.per_fix {
        report.figure(cost.fix.name(), format!("{threads} threads"), cost.contended_ns, "ns/increment");
        if cost.fix == Fix::StdMutex {
            report.key();
        }
        report.figure(cost.fix.name(), "1 thread", cost.alone_ns, "ns/increment");
    }
    report.claim(exact(&costs, threads, trials));
    report.claim(mutex_costs_more(&costs, increments, trials)?);
    report.note(
        "ns/increment: wall time of a trial divided by all the increments it made, median over trials.",
    );
    report.note(sharing_nothing_note(&costs, threads));

    // The read-pause-write, with one guard held across all three steps.
    report.table("");
    let turns = hold_guard_across_pause(threads, pause, trials);
    let serial_time = threads as f64 * pause.as_secs_f64();
    let held = "guard held across the pause";
    report.figure(held, "final min", turns.fewest_updates, "updates");
    report.figure(held, "shortest trial", turns.shortest.as_secs_f64() * 1e3, "ms");
    report.figure(held, "threads x pause", serial_time * 1e3, "ms");
    report.claim(guard_serializes(&turns, threads, args.pause_ms, trials));
    Ok(report)
}

/// Claim `exact`: every trial of every fix, contended or not, ended at
/// exactly threads x increments.
fn exact(costs: &FixCosts, threads: usize, trials: u32) -> Claim {
    Claim::check(
        "exact",
        "every fix ended at exactly threads x increments, in every trial",
        costs.inexact.is_empty(),
        if costs.inexact.is_empty() {
            format!(
                "{trials} trials of each of 4 fixes with {threads} threads and {trials} with 1, all exact"
            )
        } else {
            costs.inexact.join("; ")
        },
    )
}

/// Claim `mutex-costs-more`. A ranking is claimed only where it held on a
/// busy 2-core machine: with one, two and four other processes spinning, in
/// debug and release, the uncontended std Mutex cost 1.7 to 10 times a
/// fetch_add (it makes two atomic operations per increment, lock and
/// unlock, against one). The contended figures are wall times that move with
/// the machine's load (under four spinning processes, local sums sometimes
/// came out no cheaper than fetch_add), so they are shown, not ranked. A
/// miss is measured again (both fixes, one thread, taking turns) before it
/// is reported: a shared machine can slow one run down.
fn mutex_costs_more(costs: &FixCosts, increments: u64, trials: u32) -> anyhow::Result<Claim> {
    let first = (costs.of(Fix::StdMutex).alone_ns, costs.of(Fix::FetchAdd).alone_ns);
    Claim::remeasured(
        "mutex-costs-more",
        "without contention, a std Mutex costs at least 1.3x a fetch_add per increment",
        3,
        |attempt| {
            let (mutex_ns, fetch_add_ns) = if attempt == 1 {
                first
            } else {
                let (mut mutex_ns, mut fetch_add_ns) = (Vec::new(), Vec::new());
                for _ in 0..trials {
                    for (fix, ns) in [(Fix::StdMutex, &mut mutex_ns), (Fix::FetchAdd, &mut fetch_add_ns)] {
                        let (total, elapsed) = count_with(fix, 1, increments);
                        // A re-measured run must be as exact as the first ones.
                        anyhow::ensure!(
                            total == increments,
                            "{} ended at {total} of {increments}",
                            fix.name()
                        );
                        ns.push(ns_per(elapsed, increments));
                    }
                }
                (median(&mutex_ns), median(&fetch_add_ns))
            };
            Ok((
                mutex_ns >= 1.3 * fetch_add_ns,
                format!(
                    "1 thread: {mutex_ns:.1} ns vs {fetch_add_ns:.1} ns per increment ({:.1}x)",
                    mutex_ns / fetch_add_ns
                ),
            ))
        },
    )
}

/// Claim `guard-serializes`: every trial kept all its updates, and none was
/// shorter than 0.9 x threads x pause (the threads took turns).
fn guard_serializes(turns: &Turns, threads: usize, pause_ms: u64, trials: u32) -> Claim {
    let serial_time = threads as f64 * pause_ms as f64 / 1e3;
    Claim::check(
        "guard-serializes",
        "holding the guard across the pause keeps every update and makes the threads take turns",
        turns.exact_trials == trials && turns.shortest.as_secs_f64() >= 0.9 * serial_time,
        format!(
            "{}/{trials} trials ended at {threads}; shortest trial {:.1} ms vs 0.9 x {threads} x {pause_ms} ms = {:.1} ms",
            turns.exact_trials,
            turns.shortest.as_secs_f64() * 1e3,
            0.9 * serial_time * 1e3
        ),
    )
}

/// What one fix costs, median over trials.
struct FixCost {
    fix: Fix,
    /// With all the threads contending for the counter.
    contended_ns: f64,
    /// With one thread, so nobody contends.
    alone_ns: f64,
}

struct FixCosts {
    per_fix: Vec<FixCost>,
    /// Every trial whose total was not threads x increments (none, if the fixes work).
    inexact: Vec<String>,
}

impl FixCosts {
    fn of(&self, fix: Fix) -> &FixCost {
        self.per_fix.iter().find(|c| c.fix == fix).expect("every fix is timed")
    }
}

/// Times each fix with `threads` threads and with one, `trials` times each,
/// and checks every trial's total, not just the median's.
fn time_each_fix(threads: usize, increments: u64, trials: u32) -> FixCosts {
    let mut inexact = Vec::new();
    let mut per_fix = Vec::new();
    for fix in Fix::ALL {
        let mut median_ns = [0.0; 2];
        for (slot, team) in [threads, 1].into_iter().enumerate() {
            let mut ns = Vec::new();
            for _ in 0..trials {
                let (total, elapsed) = count_with(fix, team, increments);
                if total != team as u64 * increments {
                    inexact.push(format!("{} with {team} threads ended at {total}", fix.name()));
                }
                ns.push(ns_per(elapsed, team as u64 * increments));
            }
            median_ns[slot] = median(&ns);
        }
        per_fix.push(FixCost { fix, contended_ns: median_ns[0], alone_ns: median_ns[1] });
    }
    FixCosts { per_fix, inexact }
}

/// The note on sharing nothing, from this run's figures: said only as
/// strongly as they support it.
fn sharing_nothing_note(costs: &FixCosts, threads: usize) -> String {
    let cheapest_shared = [Fix::StdMutex, Fix::ParkingLotMutex, Fix::FetchAdd]
        .into_iter()
        .map(|fix| costs.of(fix).contended_ns)
        .fold(f64::INFINITY, f64::min);
    let ratio = cheapest_shared / costs.of(Fix::PerThreadSums).contended_ns;
    if ratio > 1.0 {
        format!(
            "With {threads} threads, per-thread sums cost {ratio:.1}x less per increment than the cheapest \
             shared counter: sharing nothing is the cheapest fix when the work allows it."
        )
    } else {
        format!(
            "With {threads} threads, per-thread sums did not come out cheaper than a shared counter in this run \
             ({ratio:.1}x): short wall-time runs on a busy machine measure the scheduler more than the counting."
        )
    }
}

/// What the read-pause-write trials with the guard held came to.
struct Turns {
    /// The smallest final value over the trials (threads, when nothing is lost).
    fewest_updates: u64,
    /// Trials that ended at exactly one update per thread.
    exact_trials: u32,
    /// The shortest trial's wall time.
    shortest: Duration,
}

/// Runs the fixed read-pause-write `trials` times with `threads` threads.
fn hold_guard_across_pause(threads: usize, pause: Duration, trials: u32) -> Turns {
    let mut turns = Turns { fewest_updates: u64::MAX, exact_trials: 0, shortest: Duration::MAX };
    for _ in 0..trials {
        let database = Mutex::new(0);
        let (_, elapsed) = timed_together(threads, || read_pause_write_locked(&database, pause));
        let value = *database.lock().unwrap();
        turns.fewest_updates = turns.fewest_updates.min(value);
        turns.exact_trials += u32::from(value == threads as u64);
        turns.shortest = turns.shortest.min(elapsed);
    }
    turns
}

/// Runs `fix` with `threads` threads of `increments` each; returns the total
/// it counted and the wall time from the threads' release to the last join.
fn count_with(fix: Fix, threads: usize, increments: u64) -> (u64, Duration) {
    match fix {
        Fix::StdMutex => {
            let counter = Mutex::new(0);
            let elapsed = timed_together(threads, || add_with_std_mutex(&counter, increments)).1;
            (*counter.lock().unwrap(), elapsed)
        }
        Fix::ParkingLotMutex => {
            let counter = parking_lot::Mutex::new(0);
            let elapsed = timed_together(threads, || add_with_parking_lot(&counter, increments)).1;
            (*counter.lock(), elapsed)
        }
        Fix::FetchAdd => {
            let counter = AtomicU64::new(0);
            let elapsed = timed_together(threads, || add_with_fetch_add(&counter, increments)).1;
            (counter.load(Ordering::Relaxed), elapsed)
        }
        Fix::PerThreadSums => {
            let (sums, elapsed) = timed_together(threads, || count_locally(increments));
            (sums.iter().sum(), elapsed)
        }
    }
}

/// The lesson's `run_together`, timed: returns the threads' results and the
/// wall time from the first thread's start to the last one's end. Thread
/// start-up is left out: the figure is the cost of the counting. Each
/// thread reads the clock itself, after the barrier and after its work:
/// whichever thread the barrier lets go first may be done before a sleeping
/// thread (this one, say) is even woken up.
fn timed_together<R: Send>(threads: usize, work: impl Fn() -> R + Sync) -> (Vec<R>, Duration) {
    let spans: Vec<(R, Instant, Instant)> = crate::run_together(threads, || {
        let started = Instant::now();
        let result = work();
        (result, started, Instant::now())
    });
    let first_start = spans.iter().map(|s| s.1).min().expect("at least one thread");
    let last_end = spans.iter().map(|s| s.2).max().expect("at least one thread");
    (spans.into_iter().map(|s| s.0).collect(), last_end - first_start)
}

/// The `main` that `cargo xtask eject` gives the standalone crate, compiled
/// and run with the lab's tests.
#[cfg(test)]
mod standalone {
    use crate::*;
    include!("standalone.rs");

    // Under `--cfg loom` the lock and the atomic are loom's, which work only
    // inside `loom::model`: there the loom models run instead.
    #[test]
    #[cfg_attr(loom, ignore = "loom's types work only inside loom::model")]
    fn standalone_main_holds_its_rule() {
        main()
    }
}
