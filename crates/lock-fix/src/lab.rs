//! The experiment around the lesson: it times each fix with all the threads
//! (wall time) and alone on this thread (CPU time, the std Mutex and the
//! fetch_add back to back), checks every run's total, times the
//! read-pause-write with the guard held against the pauses made one after
//! the other, and checks the claims against those figures.

use std::io;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use common::cli::CommonArgs;
use common::measure::{median, ns_per, thread_cpu_time};
use common::{Claim, Report};

use crate::{AtomicU64, Mutex, Ordering};
use crate::{
    add_with_fetch_add, add_with_parking_lot, add_with_std_mutex, count_locally, read_pause_write_locked,
};

#[derive(Parser, Debug)]
#[command(name = "lock-fix", version, about, max_term_width = 80)]
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

    /// The order of the runs alone in each trial: the two fixes the
    /// `mutex-costs-more` claim compares come first, back to back.
    const ALONE: [Fix; 4] = [Fix::StdMutex, Fix::FetchAdd, Fix::ParkingLotMutex, Fix::PerThreadSums];

    fn name(self) -> &'static str {
        match self {
            Fix::StdMutex => "std Mutex",
            Fix::ParkingLotMutex => "parking_lot Mutex",
            Fix::FetchAdd => "AtomicU64 fetch_add",
            Fix::PerThreadSums => "per-thread sums",
        }
    }
}

/// The margin of `mutex-costs-more`: the std Mutex costs at least this many
/// times a fetch_add (why 1.3: see `mutex_costs_more`).
const MORE: f64 = 1.3;

/// The fewest pairs `mutex-costs-more` decides on. On a busy 2-core machine
/// about one pair in fifty of short runs (20,000 increments) came out near
/// 1x, its fetch_add slowed by something else; the median of five outvotes
/// two such pairs.
const FEWEST_PAIRS: usize = 5;

/// The shortest run alone that `mutex-costs-more` times. Reading a thread's
/// CPU clock is a system call (about a microsecond on a virtual machine), so
/// a run of a few microseconds would time the clock more than the counting.
const SHORTEST_RUN: Duration = Duration::from_micros(10);

pub fn main() -> ExitCode {
    let args: Args = common::cli::parse();
    let change = "--threads, --increments, --trials or --pause-ms";
    let checked = args.common.check_run_time(run_time(&args), change);
    // No clean-up to install: the lesson starts no child process and writes no file.
    common::cli::finish(&args.common, checked.and_then(|()| run(&args)))
}

/// How long these flags make the run, worked out before anything starts: in
/// each trial the four fixes together cost about 150 ns per increment with
/// the threads contending and about 100 ns alone (a debug build, 2 cores,
/// measured; a release build is several times faster), and the
/// read-pause-write takes threads x pause.
fn run_time(args: &Args) -> Duration {
    let increments = args.increments.unwrap_or(args.common.pick(200_000, 20_000)) as f64;
    let threads = f64::from(args.threads);
    let trial = threads * increments * 150e-9 + increments * 100e-9 + threads * args.pause_ms as f64 * 1e-3;
    Duration::from_secs_f64(f64::from(args.trials) * trial)
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

    common::measure::check_room_for_threads(threads).context("starting the threads")?;
    // The four fixes of the counter, each with all the threads (wall time)
    // and alone on this thread (its CPU time).
    let contended = time_contended(threads, increments, trials).context("starting the threads")?;
    let alone = time_alone(&Fix::ALONE, increments, trials);
    for (fix, runs) in &contended {
        let ns: Vec<f64> = runs.iter().map(|run| ns_per(run.time, run.expected)).collect();
        report.figure(fix.name(), "contended", median(&ns), "ns/increment");
        if *fix == Fix::StdMutex {
            report.key();
        }
        let (_, runs) = alone.iter().find(|(f, _)| f == fix).expect("every fix runs alone");
        let ns: Vec<f64> = runs.iter().map(|run| ns_per(run.time, run.expected)).collect();
        report.figure(fix.name(), "alone", median(&ns), "ns/increment");
    }
    let every_run: Vec<Run> =
        contended.iter().chain(&alone).flat_map(|(_, runs)| runs.iter().copied()).collect();
    report.claim(exact(&every_run, threads, trials));
    report.claim(mutex_costs_more(&Paired::of(&alone, 0, 1)));
    report.note(format!(
        "ns/increment, median over trials. contended: {threads} threads, wall time of a trial over all \
         its increments (shown, not claimed). alone: one thread's CPU time over its increments, \
         which leaves out time spent waiting for a core; std Mutex and fetch_add timed back to \
         back in each trial."
    ));
    report.note(sharing_nothing_note(&contended, threads));

    // The read-pause-write, with one guard held across all three steps.
    report.table("");
    let turns =
        take_turns(threads, pause, trials, read_pause_write_locked).context("starting the threads")?;
    let serial_time = threads as f64 * pause.as_secs_f64();
    let held = "guard held across the pause";
    report.figure(held, "final min", turns.fewest_updates, "updates");
    report.figure(held, "shortest trial", turns.shortest.as_secs_f64() * 1e3, "ms");
    report.figure(held, "threads x pause", serial_time * 1e3, "ms");
    report.claim(guard_serializes(&turns, threads, args.pause_ms));
    Ok(report)
}

/// Claim `exact`: every run of every fix, contended or not, ended at exactly
/// its threads x increments. Counts are what the machine's load cannot
/// fake: a busy machine can make a run slow, never make it lose an update
/// that the fix protects.
fn exact(runs: &[Run], threads: usize, trials: u32) -> Claim {
    let inexact: Vec<String> = runs
        .iter()
        .filter(|run| run.total != run.expected)
        .map(|run| {
            let with =
                if run.threads == 1 { "alone".to_string() } else { format!("with {} threads", run.threads) };
            format!("{} {with} ended at {} of {}", run.name, run.total, run.expected)
        })
        .collect();
    let evidence = if inexact.is_empty() {
        format!("{trials} trials of each of 4 fixes with {threads} threads and {trials} with 1, all exact")
    } else {
        let shown = inexact.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
        let more = inexact.len().saturating_sub(3);
        let more = if more > 0 { format!("; and {more} more") } else { String::new() };
        format!("{} of {} runs inexact: {shown}{more}", inexact.len(), runs.len())
    };
    Claim::check(
        "exact",
        "every fix ended at exactly threads x increments, in every trial",
        inexact.is_empty(),
        evidence,
    )
}

/// Claim `mutex-costs-more`, on CPU time and in pairs. An uncontended std
/// Mutex makes two atomic operations per increment (lock and unlock)
/// against fetch_add's one; on 2 cores the median ratio measured 2.0 to 2.5
/// in release builds, idle or beside two busy processes, and about 4 in
/// debug builds, so 1.3 leaves room for noise. Each trial times the two back
/// to back on this thread's CPU clock, so time the thread spent waiting for
/// a core is not counted, and something that slows the core for a moment (an
/// interrupt, a cache emptied by another program) falls on both runs of a
/// pair or on one pair of several; the claim uses the median of the
/// per-pair ratios. Too few pairs, or runs too short to time on that clock,
/// make it inconclusive.
fn mutex_costs_more(paired: &Paired) -> Claim {
    let statement =
        format!("without contention, a std Mutex costs at least {MORE}x a fetch_add per increment");
    let ns = |cpu: &[Duration]| {
        median(&cpu.iter().map(|time| ns_per(*time, paired.increments)).collect::<Vec<_>>())
    };
    let (first_ns, second_ns) = (ns(&paired.first_cpu), ns(&paired.second_cpu));
    let ratios: Vec<f64> = paired
        .first_cpu
        .iter()
        .zip(&paired.second_cpu)
        .map(|(first, second)| first.as_secs_f64() / second.as_secs_f64().max(1e-9))
        .collect();
    let ratio = median(&ratios);
    let (low, high) = ratios.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    let evidence = format!(
        "CPU time alone, median of {} pairs: {} {first_ns:.1} ns vs {} {second_ns:.1} ns per increment; \
         median ratio {ratio:.2}x (pairs {low:.2}x to {high:.2}x)",
        ratios.len(),
        paired.first.name(),
        paired.second.name(),
    );
    let shortest = [&paired.first_cpu, &paired.second_cpu]
        .into_iter()
        .map(|cpu| median(&cpu.iter().map(Duration::as_secs_f64).collect::<Vec<_>>()))
        .fold(f64::INFINITY, f64::min);
    let timed = if ratios.len() < FEWEST_PAIRS {
        Err(format!(
            "{} pairs, too few for the median to outvote a pair that something else slowed \
             ({FEWEST_PAIRS} needed: raise --trials)",
            ratios.len()
        ))
    } else if shortest < SHORTEST_RUN.as_secs_f64() {
        Err(format!(
            "a run took {:.1} us of CPU time (median), too short to time on a thread's CPU clock \
             ({} us needed: raise --increments)",
            shortest * 1e6,
            SHORTEST_RUN.as_micros()
        ))
    } else {
        Ok(())
    };
    Claim::check_given("mutex-costs-more", statement, timed, ratio >= MORE, evidence)
}

/// Claim `guard-serializes`: every trial kept all its updates, and none was
/// shorter than 0.9 x threads x pause (the threads took turns). A lower bound
/// on time and a count: a busy machine can only lengthen a trial, so load
/// cannot make the claim fail.
fn guard_serializes(turns: &Turns, threads: usize, pause_ms: u64) -> Claim {
    let serial_time = threads as f64 * pause_ms as f64 / 1e3;
    let trials = turns.trials;
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

/// One run of one fix: what it counted and how long it took.
#[derive(Debug, Clone, Copy)]
struct Run {
    name: &'static str,
    threads: usize,
    /// threads x increments: what the counter must end at.
    expected: u64,
    total: u64,
    /// Wall time with several threads, this thread's CPU time alone.
    time: Duration,
}

/// Runs each fix with `threads` threads, `trials` times, timing each run
/// from the threads' release to the last one's end (wall time).
fn time_contended(threads: usize, increments: u64, trials: u32) -> io::Result<Vec<(Fix, Vec<Run>)>> {
    Fix::ALL
        .into_iter()
        .map(|fix| {
            let runs = (0..trials)
                .map(|_| {
                    let (total, time) = count_with(fix, threads, increments)?;
                    Ok(Run { name: fix.name(), threads, expected: threads as u64 * increments, total, time })
                })
                .collect::<io::Result<_>>()?;
            Ok((fix, runs))
        })
        .collect()
}

/// Runs the fixes of `order` on this thread, one after the other in that
/// order, `trials` times, timing each run on this thread's CPU clock. The
/// fixes appear in the result in `order` (a fix may appear twice).
fn time_alone(order: &[Fix], increments: u64, trials: u32) -> Vec<(Fix, Vec<Run>)> {
    let mut runs: Vec<(Fix, Vec<Run>)> = order.iter().map(|&fix| (fix, Vec::new())).collect();
    for _ in 0..trials {
        for (fix, runs) in &mut runs {
            let (total, time) = count_alone(*fix, increments);
            runs.push(Run { name: fix.name(), threads: 1, expected: increments, total, time });
        }
    }
    runs
}

/// Two fixes timed alone in the same trials, back to back: the figures of
/// `mutex-costs-more`.
struct Paired {
    first: Fix,
    second: Fix,
    increments: u64,
    /// CPU time of each run of `first`, trial by trial.
    first_cpu: Vec<Duration>,
    /// The same for `second`, timed right after `first` in the same trial.
    second_cpu: Vec<Duration>,
}

impl Paired {
    /// The pair of fixes at `first` and `second` in the result of [`time_alone`].
    fn of(alone: &[(Fix, Vec<Run>)], first: usize, second: usize) -> Self {
        let cpu = |index: usize| alone[index].1.iter().map(|run| run.time).collect();
        Paired {
            first: alone[first].0,
            second: alone[second].0,
            increments: alone[first].1.first().map_or(0, |run| run.expected),
            first_cpu: cpu(first),
            second_cpu: cpu(second),
        }
    }
}

/// The note on sharing nothing, from this run's figures: said only as
/// strongly as they support it.
fn sharing_nothing_note(contended: &[(Fix, Vec<Run>)], threads: usize) -> String {
    let median_ns = |fix: Fix| {
        let (_, runs) = contended.iter().find(|(f, _)| *f == fix).expect("every fix is timed");
        median(&runs.iter().map(|run| ns_per(run.time, run.expected)).collect::<Vec<_>>())
    };
    let cheapest_shared = [Fix::StdMutex, Fix::ParkingLotMutex, Fix::FetchAdd]
        .into_iter()
        .map(median_ns)
        .fold(f64::INFINITY, f64::min);
    let ratio = cheapest_shared / median_ns(Fix::PerThreadSums);
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

/// What the read-pause-write trials came to.
struct Turns {
    trials: u32,
    /// The smallest final value over the trials (threads, when nothing is lost).
    fewest_updates: u64,
    /// Trials that ended at exactly one update per thread.
    exact_trials: u32,
    /// The shortest trial's wall time.
    shortest: Duration,
}

/// Runs `read_pause_write` (the lesson's fix, or its bug in the tests)
/// `trials` times with `threads` threads, each on a fresh database.
fn take_turns(
    threads: usize,
    pause: Duration,
    trials: u32,
    read_pause_write: fn(&Mutex<u64>, Duration),
) -> io::Result<Turns> {
    let mut turns = Turns { trials, fewest_updates: u64::MAX, exact_trials: 0, shortest: Duration::MAX };
    for _ in 0..trials {
        let database = Mutex::new(0);
        let (_, elapsed) = timed_together(threads, || read_pause_write(&database, pause))?;
        let value = *database.lock().unwrap();
        turns.fewest_updates = turns.fewest_updates.min(value);
        turns.exact_trials += u32::from(value == threads as u64);
        turns.shortest = turns.shortest.min(elapsed);
    }
    Ok(turns)
}

/// Runs `fix` with `threads` threads of `increments` each; returns the total
/// it counted and the wall time from the threads' release to the last join.
fn count_with(fix: Fix, threads: usize, increments: u64) -> io::Result<(u64, Duration)> {
    Ok(match fix {
        Fix::StdMutex => {
            let counter = Mutex::new(0);
            let elapsed = timed_together(threads, || add_with_std_mutex(&counter, increments))?.1;
            (*counter.lock().unwrap(), elapsed)
        }
        Fix::ParkingLotMutex => {
            let counter = parking_lot::Mutex::new(0);
            let elapsed = timed_together(threads, || add_with_parking_lot(&counter, increments))?.1;
            (*counter.lock(), elapsed)
        }
        Fix::FetchAdd => {
            let counter = AtomicU64::new(0);
            let elapsed = timed_together(threads, || add_with_fetch_add(&counter, increments))?.1;
            (counter.load(Ordering::Relaxed), elapsed)
        }
        Fix::PerThreadSums => {
            let (sums, elapsed) = timed_together(threads, || count_locally(increments))?;
            (sums.iter().sum(), elapsed)
        }
    })
}

/// Runs `fix` on this thread alone, `increments` times; returns the total it
/// counted and the CPU time this thread spent counting. CPU time leaves out
/// the time the thread waited for a core, so other programs cannot inflate it.
fn count_alone(fix: Fix, increments: u64) -> (u64, Duration) {
    match fix {
        Fix::StdMutex => {
            let counter = Mutex::new(0);
            let cpu = on_cpu(|| add_with_std_mutex(&counter, increments)).1;
            (*counter.lock().unwrap(), cpu)
        }
        Fix::ParkingLotMutex => {
            let counter = parking_lot::Mutex::new(0);
            let cpu = on_cpu(|| add_with_parking_lot(&counter, increments)).1;
            (*counter.lock(), cpu)
        }
        Fix::FetchAdd => {
            let counter = AtomicU64::new(0);
            let cpu = on_cpu(|| add_with_fetch_add(&counter, increments)).1;
            (counter.load(Ordering::Relaxed), cpu)
        }
        Fix::PerThreadSums => on_cpu(|| count_locally(increments)),
    }
}

/// Runs `work` on this thread; returns its result and the CPU time it used.
fn on_cpu<R>(work: impl FnOnce() -> R) -> (R, Duration) {
    let before = thread_cpu_time();
    let result = work();
    (result, thread_cpu_time().saturating_sub(before))
}

/// The lesson's `run_together`, timed: returns the threads' results and the
/// wall time from the first thread's start to the last one's end. Thread
/// start-up is left out: the figure is the cost of the counting. Each
/// thread reads the clock itself, after the barrier and after its work:
/// whichever thread the barrier lets go first may be done before a sleeping
/// thread (this one, say) is even woken up.
fn timed_together<R: Send>(threads: usize, work: impl Fn() -> R + Sync) -> io::Result<(Vec<R>, Duration)> {
    let spans: Vec<(R, Instant, Instant)> = crate::run_together(threads, || {
        let started = Instant::now();
        let result = work();
        (result, started, Instant::now())
    })?;
    let first_start = spans.iter().map(|s| s.1).min().expect("at least one thread");
    let last_end = spans.iter().map(|s| s.2).max().expect("at least one thread");
    Ok((spans.into_iter().map(|s| s.0).collect(), last_end - first_start))
}

/// Every claim can fail: each test below runs the case with its phenomenon
/// removed (the lesson's bugs, or the fix compared with itself) and sees
/// *does not hold*.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{add_with_split_load_store, read_pause_write};
    use common::report::Verdict;

    #[test]
    fn runs_of_days_are_refused_and_the_default_is_not() {
        let parse = |args: &[&str]| Args::try_parse_from([&["lock-fix"], args].concat()).unwrap();
        let default = parse(&[]);
        assert!(run_time(&default) < Duration::from_secs(10), "{:?}", run_time(&default));
        let most = parse(&["--threads", "1024", "--increments", "100000000", "--trials", "1000"]);
        let refused = most.common.check_run_time(run_time(&most), "--threads").unwrap_err();
        assert!(refused.to_string().contains("days"), "{refused}");
    }

    #[test]
    fn exact_fails_when_the_load_and_the_store_are_split() {
        // The bug instead of a fix: 4 threads on 2 cores, each loop long
        // enough (milliseconds) that the threads overlap and get preempted
        // between a load and its store. Any one trial is likely to lose
        // updates, not certain to: measured on 2 cores, a debug build lost
        // some in the first trial in 20 of 20 tests, idle or beside two busy
        // processes; a release build beside them needed 1 to 6 trials. So
        // trials go on until one has lost updates, 50 at most (at even odds
        // per trial, 50 in a row lose none once in 1e15 tests); the claim is
        // checked against every trial made.
        let (threads, increments) = (4, 1_000_000);
        let mut runs: Vec<Run> = Vec::new();
        while runs.len() < 50 && runs.iter().all(|run| run.total == run.expected) {
            let counter = AtomicU64::new(0);
            let (_, time) =
                timed_together(threads, || add_with_split_load_store(&counter, increments)).unwrap();
            let total = counter.load(Ordering::Relaxed);
            runs.push(Run {
                name: "split load/store",
                threads,
                expected: threads as u64 * increments,
                total,
                time,
            });
        }
        let claim = exact(&runs, threads, runs.len() as u32);
        assert_eq!(claim.verdict, Verdict::DoesNotHold, "{}", claim.evidence);
        assert!(claim.evidence.contains("split load/store with 4 threads ended at"), "{}", claim.evidence);
        // And the fixes, run the same way, are exact.
        let fixed: Vec<Run> = time_contended(threads, 10_000, 2)
            .unwrap()
            .into_iter()
            .chain(time_alone(&Fix::ALONE, 10_000, 2))
            .flat_map(|(_, runs)| runs)
            .collect();
        assert_eq!(exact(&fixed, threads, 2).verdict, Verdict::Holds);
    }

    fn paired(first_us: &[u64], second_us: &[u64], increments: u64) -> Paired {
        let cpu = |us: &[u64]| us.iter().map(|&us| Duration::from_micros(us)).collect();
        Paired {
            first: Fix::StdMutex,
            second: Fix::FetchAdd,
            increments,
            first_cpu: cpu(first_us),
            second_cpu: cpu(second_us),
        }
    }

    #[test]
    fn mutex_costs_more_fails_when_fetch_add_is_timed_against_itself() {
        // The phenomenon removed, measured: fetch_add in both places of the
        // pair, so the ratio is about 1.
        let alone = time_alone(&[Fix::FetchAdd, Fix::FetchAdd], 200_000, 9);
        let claim = mutex_costs_more(&Paired::of(&alone, 0, 1));
        assert_eq!(claim.verdict, Verdict::DoesNotHold, "{}", claim.evidence);
        assert!(claim.evidence.contains("median of 9 pairs"), "{}", claim.evidence);
        // Constructed figures: a mutex 2.5x a fetch_add holds, and two
        // pairs of five whose fetch_add something else slowed do not move
        // the median.
        let claim =
            mutex_costs_more(&paired(&[500, 510, 520, 2000, 505], &[200, 210, 210, 1900, 480], 100_000));
        assert_eq!(claim.verdict, Verdict::Holds, "{}", claim.evidence);
        assert!(claim.evidence.contains("5.1 ns vs AtomicU64 fetch_add 2.1 ns"), "{}", claim.evidence);
    }

    #[test]
    fn mutex_costs_more_is_inconclusive_on_too_few_pairs_or_too_short_runs() {
        let claim = mutex_costs_more(&paired(&[500, 510, 520], &[200, 210, 210], 100_000));
        assert_eq!(claim.verdict, Verdict::Inconclusive, "{}", claim.evidence);
        assert!(claim.reason.unwrap().contains("raise --trials"));
        let claim = mutex_costs_more(&paired(&[3, 4, 3, 3, 3], &[3, 3, 3, 3, 3], 1000));
        assert_eq!(claim.verdict, Verdict::Inconclusive, "{}", claim.evidence);
        assert!(claim.reason.unwrap().contains("raise --increments"));
        // A clock that read nothing at all is no measurement either.
        let claim = mutex_costs_more(&paired(&[0; 5], &[0; 5], 1000));
        assert_eq!(claim.verdict, Verdict::Inconclusive, "{}", claim.evidence);
    }

    #[test]
    fn guard_serializes_fails_when_the_guard_is_let_go_between_read_and_write() {
        // The bug: the threads pause side by side, so a trial takes about
        // one pause, and all but one of their writes are overwritten.
        let turns = take_turns(4, Duration::from_millis(10), 3, read_pause_write).unwrap();
        let claim = guard_serializes(&turns, 4, 10);
        assert_eq!(claim.verdict, Verdict::DoesNotHold, "{}", claim.evidence);
        // The fix, measured the same way: counts and a lower bound on time,
        // which a busy machine cannot break.
        let turns = take_turns(4, Duration::from_millis(10), 3, read_pause_write_locked).unwrap();
        assert_eq!(guard_serializes(&turns, 4, 10).verdict, Verdict::Holds);
    }
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
