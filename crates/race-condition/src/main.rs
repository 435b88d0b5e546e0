//! Unsynchronized read-modify-write loses updates, even when every single
//! access is atomic.
//!
//! Experiment A starts five threads that each add 1 to one shared counter
//! half a million times, by reading the counter and then writing back what
//! they read plus one. Each read and each write is an atomic operation, so
//! there is no undefined behaviour; but the read and the write are two steps,
//! and another thread's write that lands between them is overwritten. The
//! lesson counts how many of the 2,500,000 updates survive, over 20 trials.
//! Experiment B is the Python notes' `database_value`: two threads each read a
//! value under a lock, let go of the lock, work for a few milliseconds, and
//! write back value + 1. Both read 0, both write 1: one update is lost, every
//! time.
//!
//! The Python notes write the race as five threads doing `counter += 1` on a
//! global. In safe Rust that program does not compile: it is a data race (two
//! threads writing one plain integer), and the borrow checker rejects it with
//! error E0499 (see the `compile_fail` example in `src/lib.rs`). What the
//! compiler cannot reject is a race of *logic*: each access is fine on its
//! own, the sequence is not. That is what A and B show, and what `lock-fix`
//! mends. A fact about Python measured on a 2-core machine like this one:
//! CPython 3.11's unlocked counter lost no update in 60 of 60 trials, because
//! the GIL only switches threads at certain bytecodes; with `time.sleep(0)`
//! between the read and the write it lost about 80% of the updates in every
//! trial. Rust threads run truly in parallel, so A loses updates nearly every
//! time without any help.
//!
//! Run:
//!
//! ```text
//! cargo run -p race-condition
//! cargo run --release -p race-condition -- --threads 8 --increments 1000000
//! cargo run -p race-condition -- --help
//! ```
//!
//! A run on 2 cores (release):
//!
//! ```text
//! race-condition: unsynchronized read-modify-write loses updates
//! host    cores=2 os=linux profile=release
//! params  threads=5 increments=500000 trials=20 pause_ms=20
//!
//! experiment             expected  observed min  observed median  lost median  trials lost
//!                         updates       updates          updates      updates       trials
//! A: split load/store     2500000        479327           996614      1503386           20
//! B: read, pause, write         2             1                1            1           20
//!
//! A: each load and store is atomic, yet a store can overwrite another thread's update made since the load.
//! B: both threads read 0 before either writes, so both write 1.
//!
//! ✔ lost-updates  the split load/store lost updates: 20/20 trials lost updates; median 1503386 of 2500000 lost (60%)
//! ✔ read-pause-write  the read, pause, write ended at 1, not 2, in every trial: 20/20 trials ended at 1
//!
//! elapsed 0.59 s
//! ```
//!
//! The counts lost vary from run to run and machine to machine; whether
//! updates are lost does not.
//!
//! See also: `lock-fix` (the same workloads made correct, and what each fix
//! costs), `deadlock` (what goes wrong with two locks).

use std::process::ExitCode;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use clap::Parser;
use common::cli::{CommonArgs, finish, parse};
use common::measure::median_count;
use common::{Claim, Report};

// The counter types come through this switch so that the loom model at the
// end of this file checks the very functions the lesson runs. Outside the
// model (always, unless built with `--cfg loom`) they are the std types.
#[cfg(loom)]
use loom::sync::{
    Mutex,
    atomic::{AtomicU64, Ordering},
};
#[cfg(not(loom))]
use std::sync::{
    Mutex,
    atomic::{AtomicU64, Ordering},
};

/// Unsynchronized read-modify-write loses updates: a split atomic load and
/// store, and a read, pause, write.
#[derive(Parser, Debug)]
#[command(name = "race-condition", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Threads that add to the shared counter in experiment A.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,

    /// Increments each thread makes in experiment A [default: 500000, 100000 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    increments: Option<u64>,

    /// Trials of each experiment (each one a fresh counter) [default: 20, 10 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    trials: Option<u32>,

    /// Milliseconds each thread of experiment B works between its read and its write.
    #[arg(long, value_name = "MS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pause_ms: u64,
}

fn main() -> ExitCode {
    let args: Args = parse();
    finish(&args.common, run(&args))
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let threads = args.threads as usize;
    // Why 500,000 increments and a start barrier, measured on 2 cores: with
    // the Python notes' 10,000, a release build finishes a thread's loop in
    // tens of microseconds, about what it takes to start the next thread, so
    // the threads barely overlap and only a few trials lose anything. A
    // `Barrier` releases them together, and 500,000 keeps each one busy for
    // milliseconds: long enough to overlap on both cores, and to be preempted
    // between a read and a write when other programs keep a core busy. That
    // lost updates in 20 of 20 trials on an idle machine (debug and release)
    // and 18 to 20 of 20 with one or two other busy processes.
    let increments = args.increments.unwrap_or(args.common.pick(500_000, 100_000));
    let trials = args.trials.unwrap_or(args.common.pick(20, 10));
    let pause = Duration::from_millis(args.pause_ms);

    let mut report = common::lesson_report!();
    report
        .param("threads", threads)
        .param("increments", increments)
        .param("trials", trials)
        .param("pause_ms", args.pause_ms);

    // Experiment A: a fresh counter per trial, every thread released at once.
    let finals: Vec<u64> = (0..trials).map(|_| split_load_store_trial(threads, increments)).collect();
    let a = Tally::of(threads as u64 * increments, &finals);
    a.record(&mut report, "A: split load/store", true);

    // Experiment B: two threads, one read-pause-write each.
    let finals: Vec<u64> = (0..trials).map(|_| read_pause_write_trial(pause)).collect();
    let b = Tally::of(2, &finals);
    b.record(&mut report, "B: read, pause, write", false);

    // The verdicts come from the counts above. One trial that lost an update
    // is proof enough that the sequence is unsafe; the evidence says how
    // often it happened, which depends on the machine and its load.
    report.claim(Claim::check(
        "lost-updates",
        "the split load/store lost updates",
        a.trials_lost > 0,
        format!(
            "{}/{trials} trials lost updates; median {} of {} lost ({:.0}%)",
            a.trials_lost,
            a.median_lost(),
            a.expected,
            100.0 * a.median_lost() as f64 / a.expected as f64
        ),
    ));
    let b_ended_at_one = finals.iter().filter(|&&v| v == 1).count();
    report.claim(Claim::check(
        "read-pause-write",
        "the read, pause, write ended at 1, not 2, in every trial",
        b_ended_at_one == trials as usize,
        format!("{b_ended_at_one}/{trials} trials ended at 1"),
    ));
    report.note(
        "A: each load and store is atomic, yet a store can overwrite another thread's update made since the load.",
    );
    report.note("B: both threads read 0 before either writes, so both write 1.");
    Ok(report)
}

/// What an experiment's trials counted, against what they should have.
struct Tally {
    expected: u64,
    fewest: u64,
    median: u64,
    trials_lost: usize,
}

impl Tally {
    fn of(expected: u64, finals: &[u64]) -> Self {
        Tally {
            expected,
            fewest: *finals.iter().min().expect("at least one trial"),
            median: median_count(finals),
            trials_lost: finals.iter().filter(|&&v| v < expected).count(),
        }
    }

    fn median_lost(&self) -> u64 {
        self.expected.saturating_sub(self.median)
    }

    /// Adds the tally to the report as one row of the table.
    fn record(&self, report: &mut Report, experiment: &str, key: bool) {
        report.figure(experiment, "expected", self.expected, "updates");
        report.figure(experiment, "observed min", self.fewest, "updates");
        report.figure(experiment, "observed median", self.median, "updates");
        report.figure(experiment, "lost median", self.median_lost(), "updates");
        if key {
            report.key();
        }
        report.figure(experiment, "trials lost", self.trials_lost, "trials");
    }
}

/// Adds 1 to `counter`, `increments` times, as a read followed by a write.
///
/// Both steps are atomic, so this is well-defined Rust; but between this
/// thread's `load` and its `store` another thread may store a larger value,
/// and this `store` then puts the counter back: that update is lost. (The
/// single atomic step that cannot be interrupted is `fetch_add`, in
/// `lock-fix`.)
fn add_with_split_load_store(counter: &AtomicU64, increments: u64) {
    for _ in 0..increments {
        let seen = counter.load(Ordering::Relaxed);
        // Without `black_box`, an optimised build fuses this load and store
        // into one `inc` instruction on x86. That instruction is still not
        // atomic across cores (it is not `lock inc`), but its window is so
        // short that losses become rare, and a thread can no longer be
        // preempted between its read and its write. `black_box` keeps the two
        // steps apart, as they are in the Python program.
        counter.store(std::hint::black_box(seen) + 1, Ordering::Relaxed);
    }
}

/// One trial of experiment A: `threads` threads share one fresh counter.
/// Returns the counter's final value.
fn split_load_store_trial(threads: usize, increments: u64) -> u64 {
    let counter = AtomicU64::new(0);
    // The barrier holds every thread at the start line until all have been
    // created, so their loops run at the same time instead of one after the
    // other (starting a thread takes about as long as a short loop).
    let start_line = Barrier::new(threads);
    // Scoped threads may borrow `counter` and `start_line` from this stack
    // frame: the scope joins them all before it returns.
    thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                start_line.wait();
                add_with_split_load_store(&counter, increments);
            });
        }
    });
    counter.load(Ordering::Relaxed)
}

/// The Python notes' `database_value` update: read under the lock, let the
/// lock go, work for `pause`, write under the lock.
///
/// Each access holds the lock, so no read or write is torn; the update as a
/// whole is not protected, because the lock is released between them.
fn read_pause_write(database: &Mutex<u64>, pause: Duration) {
    // The guard is a temporary: it unlocks at the end of this statement.
    let seen = *database.lock().unwrap();
    // Slow work (a query, a computation). The other thread reads meanwhile,
    // and reads the same old value.
    thread::sleep(pause);
    *database.lock().unwrap() = seen + 1;
}

/// One trial of experiment B: two threads, one update each. Returns the final value.
fn read_pause_write_trial(pause: Duration) -> u64 {
    let database = Mutex::new(0);
    let start_line = Barrier::new(2);
    thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                start_line.wait();
                read_pause_write(&database, pause);
            });
        }
    });
    *database.lock().unwrap()
}

/// Loom runs the split load/store under every interleaving of two threads,
/// and must find the one that loses an update. Run with
/// `RUSTFLAGS="--cfg loom" cargo test -p race-condition --bin race-condition --release`.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::sync::Arc;

    #[test]
    fn loom_finds_the_lost_update() {
        let outcome = std::panic::catch_unwind(|| {
            loom::model(|| {
                let counter = Arc::new(AtomicU64::new(0));
                let other = {
                    let counter = Arc::clone(&counter);
                    loom::thread::spawn(move || add_with_split_load_store(&counter, 1))
                };
                add_with_split_load_store(&counter, 1);
                other.join().unwrap();
                assert_eq!(counter.load(Ordering::Relaxed), 2, "an update was lost");
            });
        });
        let payload = outcome.expect_err("loom explored every interleaving and lost no update");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(message.contains("an update was lost"), "loom failed for another reason: {message}");
    }
}
