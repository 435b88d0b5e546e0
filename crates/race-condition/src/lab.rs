//! The experiment around the lesson: it runs each race for a number of
//! trials, each on a fresh counter, tallies what survived against what was
//! expected, and checks the claims against those counts.

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use common::cli::CommonArgs;
use common::measure::{CpuShare, CpuWindow, median_count};
use common::{Claim, Report};

use crate::{read_pause_write_trial, split_load_store_trial};

#[derive(Parser, Debug)]
#[command(name = "race-condition", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Threads that add to the shared counter in the split load/store.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,

    /// Increments each thread makes in the split load/store [default: 500000, 100000 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    increments: Option<u64>,

    /// Trials of each experiment (each one a fresh counter) [default: 20, 10 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    trials: Option<u32>,

    /// Milliseconds each thread of the read, pause, write works between its read and its write.
    #[arg(long, value_name = "MS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pause_ms: u64,
}

pub fn main() -> ExitCode {
    let args: Args = common::cli::parse();
    let change = "--threads, --increments, --trials or --pause-ms";
    let checked = args.common.check_run_time(run_time(&args), change);
    // No clean-up to install: the lesson starts no child process and writes no file.
    common::cli::finish(&args.common, checked.and_then(|()| run(&args)))
}

/// How long these flags make the run, worked out before anything starts:
/// each trial of the split load/store makes threads x increments updates,
/// at most about 20 ns each when the threads fight over the counter's cache
/// line (a debug build, 2 cores, measured), shared by the cores; each trial
/// of the read, pause, write takes one pause.
fn run_time(args: &Args) -> Duration {
    let trials = f64::from(args.trials.unwrap_or(args.common.pick(20, 10)));
    let increments = args.increments.unwrap_or(args.common.pick(500_000, 100_000)) as f64;
    let threads = f64::from(args.threads);
    let parallel = threads.min(common::measure::cores() as f64);
    let split = threads * increments * 20e-9 / parallel;
    Duration::from_secs_f64(trials * (split + args.pause_ms as f64 * 1e-3))
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let threads = args.threads as usize;
    // Why 500,000 increments and a start line, measured on 2 cores: with
    // the Python notes' 10,000, a release build finishes a thread's loop in
    // tens of microseconds, about what it takes to start the next thread, so
    // the threads barely overlap and only a few trials lose anything. The
    // start line releases them together, and 500,000 keeps each one busy for
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

    common::measure::check_room_for_threads(threads).context("starting the threads")?;
    // The split load/store: a fresh counter per trial, every thread released at once.
    let window = CpuWindow::start();
    let finals = (0..trials).map(|_| split_load_store_trial(threads, increments));
    let finals: Vec<u64> = finals.collect::<io::Result<_>>().context("starting the threads")?;
    let share = window.stop();
    let split = Tally::of(threads as u64 * increments, &finals);
    split.record(&mut report, "split load/store", true);

    // The read, pause, write: two threads, one update each.
    let finals = (0..trials).map(|_| read_pause_write_trial(pause));
    let finals: Vec<u64> = finals.collect::<io::Result<_>>().context("starting the threads")?;
    Tally::of(2, &finals).record(&mut report, "read, pause, write", false);

    report.claim(lost_updates(&split, trials, &share));
    report.claim(read_pause_write(&finals, trials));
    report.note(
        "split load/store: each load and store is atomic, yet a store can overwrite another thread's \
         update made since the load.",
    );
    report.note("read, pause, write: both threads read 0 before either writes, so both write 1.");
    Ok(report)
}

/// Claim `lost-updates`. One trial that lost an update is proof enough that
/// the sequence is unsafe; the evidence says how often it happened, which
/// depends on the machine and its load. No loss at all proves something
/// only if the threads could run at once: with the cores busy, each thread
/// may finish its loop in one turn on a core, never interrupted between its
/// load and its store, and the verdict is then inconclusive.
fn lost_updates(split: &Tally, trials: u32, share: &CpuShare) -> Claim {
    let met = if split.trials_lost > 0 { Ok(()) } else { share.free_at_least(1.5, "threads that race") };
    Claim::check_given(
        "lost-updates",
        "the split load/store lost updates",
        met,
        split.trials_lost > 0,
        format!(
            "{}/{trials} trials lost updates; median {} of {} lost ({:.0}%)",
            split.trials_lost,
            split.median_lost(),
            split.expected,
            100.0 * split.median_lost() as f64 / split.expected as f64
        ),
    )
}

/// Claim `read-pause-write`. Both threads read 0 and then pause, so both
/// write 1, unless one of them is not run for a whole pause between its
/// start and its read (a busy machine can do that now and then). So the
/// claim is that it happened, in at least one trial, and the evidence says
/// in how many; with the threads taking turns it happens in none.
fn read_pause_write(finals: &[u64], trials: u32) -> Claim {
    let ended_at_one = finals.iter().filter(|&&v| v == 1).count();
    Claim::check(
        "read-pause-write",
        "the read, pause, write lost one of its two updates (ended at 1, not 2)",
        ended_at_one > 0,
        format!("{ended_at_one}/{trials} trials ended at 1, the rest at 2"),
    )
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
        report.figure(experiment, "final min", self.fewest, "updates");
        report.figure(experiment, "final median", self.median, "updates");
        report.figure(experiment, "lost median", self.median_lost(), "updates");
        if key {
            report.key();
        }
        report.figure(experiment, "trials lost", self.trials_lost, "trials");
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use common::report::Verdict;
    use std::sync::Mutex;

    #[test]
    fn runs_of_days_are_refused_and_the_default_is_not() {
        let parse = |args: &[&str]| Args::try_parse_from([&["race-condition"], args].concat()).unwrap();
        let default = parse(&[]);
        assert!(run_time(&default) < Duration::from_secs(10), "{:?}", run_time(&default));
        let most = parse(&["--threads", "1024", "--increments", "100000000", "--trials", "1000"]);
        let refused = most.common.check_run_time(run_time(&most), "--threads").unwrap_err();
        assert!(refused.to_string().contains("days"), "{refused}");
    }

    #[test]
    fn lost_updates_fails_with_one_thread() {
        // One thread has nobody to race: the same code, the race removed.
        let finals: Vec<u64> = (0..3).map(|_| split_load_store_trial(1, 100_000).unwrap()).collect();
        let tally = Tally::of(100_000, &finals);
        assert_eq!(finals, [100_000; 3]);
        assert_eq!(lost_updates(&tally, 3, &machine(0.1)).verdict, Verdict::DoesNotHold);
        // No loss while other programs held the cores proves nothing.
        assert_eq!(lost_updates(&tally, 3, &machine(1.8)).verdict, Verdict::Inconclusive);
        // A loss proves the race whatever the load.
        let lost = Tally::of(100_000, &[99_000, 100_000]);
        assert_eq!(lost_updates(&lost, 2, &machine(1.8)).verdict, Verdict::Holds);
    }

    /// A second's window on 2 cores in which other programs kept `others` busy.
    fn machine(others: f64) -> CpuShare {
        let wall = Duration::from_secs(1);
        CpuShare {
            wall,
            cpu: wall,
            machine_busy_cores: Some(1.0 + others),
            machine_cores: 2,
            machine_ticks: 1000,
        }
    }

    #[test]
    fn read_pause_write_fails_when_the_threads_take_turns() {
        // The lesson's own read, pause, write, run by one thread after the
        // other: the race removed, both updates count.
        let finals: Vec<u64> = (0..2)
            .map(|_| {
                let database = Mutex::new(0);
                crate::read_pause_write(&database, Duration::from_millis(1));
                crate::read_pause_write(&database, Duration::from_millis(1));
                database.into_inner().unwrap()
            })
            .collect();
        assert_eq!(finals, [2, 2]);
        assert_eq!(read_pause_write(&finals, 2).verdict, Verdict::DoesNotHold);
        assert_eq!(read_pause_write(&[1, 2], 2).verdict, Verdict::Holds);
    }
}

/// The `main` that `cargo xtask eject` gives the standalone crate, compiled
/// and run with the lab's tests.
#[cfg(test)]
mod standalone {
    use crate::*;
    include!("standalone.rs");

    // Under `--cfg loom` the counter types are loom's, which work only inside
    // `loom::model`: there the loom model runs instead.
    #[test]
    #[cfg_attr(loom, ignore = "loom's types work only inside loom::model")]
    fn standalone_main_holds_its_rule() {
        main()
    }
}
