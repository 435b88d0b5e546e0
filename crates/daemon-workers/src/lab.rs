//! The experiment around the lesson: `join` checked against a counter per
//! item, the two endings run in child processes whose results are counted
//! from their files, the queue's throughput, and the claims.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use common::child::{play_role, spawn_self};
use common::cleanup::TempDir;
use common::cli::CommonArgs;
use common::{Claim, Report};

use crate::start_workers;

#[derive(Parser, Debug)]
#[command(name = "daemon-workers", version, about, max_term_width = 80)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Worker threads that take items from the queue.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    workers: u32,

    /// Items put on the queue in the join, daemon exit and close-and-join experiments.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    items: u32,

    /// Milliseconds of work per item (a sleep, standing in for I/O).
    #[arg(long, value_name = "MS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=1000))]
    work_ms: u64,

    /// Tiny items pushed through the queue to measure its throughput
    /// [default: 1000000, 50000 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    messages: Option<u64>,
}

pub fn main() -> ExitCode {
    // A child process started by the two endings plays its role and exits.
    if let Some(code) =
        play_role(|role, args| crate::child_main(role, args).with_context(|| format!("child role {role}")))
    {
        return code;
    }
    let args: Args = common::cli::parse();
    if let Err(refused) = args.common.check_run_time(run_time(&args), "--items or --work-ms") {
        return common::cli::finish(&args.common, Err(refused));
    }
    // The lab starts child processes and writes their results to a temp dir:
    // both go on Ctrl-C.
    common::cleanup::install();
    common::cli::finish(&args.common, run(&args))
}

/// How long these flags make the run, worked out before anything starts:
/// each of the three experiments (join, daemon exit, close and join) puts
/// every item through the workers, `ceil(items / workers)` rounds of
/// `work_ms`; two child processes start (about 50 ms each); the throughput
/// test moves `messages` tiny items twice, at most a microsecond each (a
/// debug build; release is ten times faster).
fn run_time(args: &Args) -> Duration {
    let rounds = u64::from(args.items.div_ceil(args.workers));
    let messages = args.messages.unwrap_or(args.common.pick(1_000_000, 50_000));
    Duration::from_millis(3 * rounds * args.work_ms + 2 * 50) + Duration::from_micros(2 * messages)
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let workers = args.workers as usize;
    let items = args.items;
    let work = Duration::from_millis(args.work_ms);
    // A million tiny items take about a second through the queue on 2 cores.
    let messages = args.messages.unwrap_or(args.common.pick(1_000_000, 50_000));

    let mut report = common::lesson_report!();
    report
        .param("workers", workers)
        .param("items", items)
        .param("work_ms", args.work_ms)
        .param("messages", messages);

    common::measure::check_room_for_threads(workers).context("starting the worker threads")?;
    // join, read the moment it returns.
    let counts = measure_join(workers, items, work, |queue| queue.join())
        .context("starting the worker threads of the join experiment")?;
    report.figure("join", "items", items, "items");
    report.figure("join", "done at join", counts.done_once(), "items");
    report.figure("join", "join waited", counts.waited.as_secs_f64() * 1e3, "ms");
    report.claim(join_waits(&counts));

    // The same child, ending two ways.
    report.table("");
    let scratch = TempDir::new("daemon-workers")?;
    let mut kept = Vec::new();
    for (experiment, ending) in [("daemon exit", "daemon-exit"), ("close and join", "close-and-join")] {
        let results = scratch.path().join(format!("{ending}.txt"));
        let written = run_child(ending, workers, items, args.work_ms, &results)?;
        report.figure(experiment, "items", items, "items");
        report.figure(experiment, "results in file", written, "results");
        report.figure(experiment, "lost", u64::from(items) - written, "results");
        if ending == "daemon-exit" {
            report.key();
        }
        kept.push(written);
    }
    report.claim(daemon_exit_loses(items, kept[0]));
    report.claim(clean_shutdown_keeps_all(items, kept[1]));

    // Throughput, for context.
    report.table(format!("queue throughput, tiny items (put, get, task_done, join), {workers} workers"));
    for (team, row) in [(1, "1 worker"), (workers, "every worker")] {
        let rate =
            queue_throughput(team, messages).context("starting the worker threads of the throughput test")?;
        report.figure(row, "throughput", rate / 1e6, "M items/s");
    }
    report.note(
        "For comparison, CPython 3.11's queue.Queue with task_done and join moved about 0.1 M items/s \
         between two threads on the 2-core machine this lesson was written on.",
    );
    Ok(report)
}

/// What the join experiment saw: per item, how many times a worker had
/// finished it when `join` returned, and how long `join` waited.
struct JoinCounts {
    finished: Vec<u32>,
    waited: Duration,
}

impl JoinCounts {
    fn done_once(&self) -> u32 {
        self.finished.iter().filter(|&&c| c == 1).count() as u32
    }
}

/// W workers loop forever over the queue, like the notes' daemon threads,
/// each item's work a sleep of `work` and then a mark on the item's counter;
/// `join` (the lesson's, or a stand-in from a test) is called after the
/// last `put`, and the counters are read the moment it returns.
fn measure_join(
    workers: usize,
    items: u32,
    work: Duration,
    join: impl FnOnce(&crate::WorkQueue<usize>),
) -> std::io::Result<JoinCounts> {
    // One counter per item: how many times a worker finished it.
    let finished: Arc<Vec<AtomicU32>> = Arc::new((0..items).map(|_| AtomicU32::new(0)).collect());
    let (queue, handles) = start_workers(workers, {
        let finished = Arc::clone(&finished);
        move |item: usize| {
            thread::sleep(work);
            finished[item].fetch_add(1, Ordering::SeqCst);
        }
    })?;
    for item in 0..items as usize {
        queue.put(item);
    }
    let started = Instant::now();
    join(&queue);
    let waited = started.elapsed();
    // Read the counters right after join, before anything else can happen.
    let finished_at_join = finished.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    // These workers would wait forever, as daemons do. Here, closing the
    // queue (dropping its last sender) lets them leave their loop, so the
    // lab does not keep idle threads around for the experiments that follow.
    drop(queue);
    for handle in handles {
        handle.join().expect("workers do not panic");
    }
    Ok(JoinCounts { finished: finished_at_join, waited })
}

/// Rests on counts: a worker marks an item only after its work is over, so
/// an item not marked when `join` returned was not done yet. A `join` that
/// did not wait leaves items unmarked, whatever the machine's load.
fn join_waits(counts: &JoinCounts) -> Claim {
    let items = counts.finished.len();
    let done_once = counts.done_once();
    let done_twice = counts.finished.iter().filter(|&&c| c > 1).count();
    Claim::check(
        "join-waits",
        "join returned only after every item was done, each exactly once",
        done_once as usize == items && done_twice == 0,
        format!(
            "when join returned: {done_once}/{items} items done once, {done_twice} more than once; \
             it waited {:.1} ms",
            counts.waited.as_secs_f64() * 1e3
        ),
    )
}

/// Rests on the count of lines in the child's file: what exit cut off.
fn daemon_exit_loses(items: u32, daemon_kept: u64) -> Claim {
    let lost = u64::from(items) - daemon_kept;
    Claim::check(
        "daemon-exit-loses",
        "ending the program with the workers still running lost results",
        lost > 0,
        format!("{lost} of {items} results never reached the file"),
    )
}

/// Rests on the count of distinct items in the child's file.
fn clean_shutdown_keeps_all(items: u32, clean_kept: u64) -> Claim {
    Claim::check(
        "clean-shutdown-keeps-all",
        "closing the queue and joining the workers lost no result",
        clean_kept == u64::from(items),
        format!("{clean_kept} of {items} results in the file, each item once"),
    )
}

/// Runs the lesson's child with `ending`, and counts the distinct results it
/// left in `results`.
fn run_child(ending: &str, workers: usize, items: u32, work_ms: u64, results: &Path) -> anyhow::Result<u64> {
    let child_args =
        [workers.to_string(), items.to_string(), work_ms.to_string(), results.display().to_string()];
    let child = spawn_self(ending, &child_args.map(Into::into), |_| {})?;
    let status = child.wait()?;
    ensure!(status.success(), "the {ending} child failed: {status}");
    count_results(results, items)
}

/// The distinct items written to `results` (none if it does not exist); an
/// item written twice or a line that is not a result is an error.
fn count_results(results: &Path, items: u32) -> anyhow::Result<u64> {
    let mut seen = BTreeSet::new();
    if results.exists() {
        let file = File::open(results).with_context(|| format!("opening {}", results.display()))?;
        for line in BufReader::new(file).lines() {
            let line = line.with_context(|| format!("reading {}", results.display()))?;
            let item: u32 = line
                .split_whitespace()
                .next()
                .and_then(|w| w.parse().ok())
                .with_context(|| format!("a malformed result line: {line:?}"))?;
            ensure!(item < items && seen.insert(item), "item {item} was written twice or is out of range");
        }
    }
    Ok(seen.len() as u64)
}

/// Items per second through the queue, `put` to `task_done`, with `workers`
/// workers and `messages` tiny items.
fn queue_throughput(workers: usize, messages: u64) -> std::io::Result<f64> {
    let (queue, handles) = start_workers(workers, |item: u64| {
        std::hint::black_box(item);
    })?;
    let started = Instant::now();
    for item in 0..messages {
        queue.put(item);
    }
    queue.join();
    let elapsed = started.elapsed();
    drop(queue);
    for handle in handles {
        handle.join().expect("workers do not panic");
    }
    Ok(messages as f64 / elapsed.as_secs_f64())
}

/// Each claim shown failing with its phenomenon removed: a `join` that does
/// not wait, an ending that flushes, and a program that ends at `join`
/// without closing the queue or joining the workers. And a thread that
/// cannot start is an error, not a panic or a hang.
// Not under `--cfg loom`: there the queue's lock is loom's, which works only
// inside `loom::model` (the loom model below runs then instead).
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use common::report::Verdict;

    #[test]
    fn join_waits_fails_when_join_does_not_wait() {
        // Each item sleeps 300 ms; counters read at once find none of them done.
        let counts = measure_join(2, 2, Duration::from_millis(300), |_queue| {}).unwrap();
        let claim = join_waits(&counts);
        assert_eq!(claim.verdict, Verdict::DoesNotHold, "{}", claim.evidence);
        assert_eq!(counts.done_once(), 0);
    }

    #[test]
    fn join_waits_holds_with_the_lessons_join() {
        let counts = measure_join(3, 7, Duration::from_millis(2), |queue| queue.join()).unwrap();
        assert_eq!(join_waits(&counts).verdict, Verdict::Holds);
    }

    #[test]
    fn daemon_exit_loses_fails_when_the_ending_flushes() {
        // The lesson's close_and_join is an ending whose workers flush: run
        // in this process (it does not exit), it loses nothing.
        let scratch = TempDir::new("daemon-workers").unwrap();
        let results = scratch.path().join("flushed.txt");
        crate::close_and_join(3, 7, Duration::from_millis(1), &results).unwrap();
        let claim = daemon_exit_loses(7, count_results(&results, 7).unwrap());
        assert_eq!(claim.verdict, Verdict::DoesNotHold, "{}", claim.evidence);
    }

    #[test]
    fn clean_shutdown_keeps_all_fails_without_close_and_join() {
        // What the file holds when `join` returns and the program would end
        // there, the queue not closed and the workers not joined.
        let scratch = TempDir::new("daemon-workers").unwrap();
        let results = scratch.path().join("not-joined.txt");
        let (queue, writers) = crate::start_writers(3, Duration::from_millis(1), &results).unwrap();
        for item in 0..7 {
            queue.put(item);
        }
        queue.join();
        let claim = clean_shutdown_keeps_all(7, count_results(&results, 7).unwrap());
        assert_eq!(claim.verdict, Verdict::DoesNotHold, "{}", claim.evidence);
        drop(queue);
        for writer in writers {
            writer.join().unwrap().unwrap();
        }
    }

    #[test]
    fn flags_that_would_run_for_hours_are_refused() {
        let args = |flags: &[&str]| Args::try_parse_from([&["daemon-workers"], flags].concat()).unwrap();
        let long = args(&["--items", "100000", "--work-ms", "1000", "--workers", "1"]);
        let refused = long.common.check_run_time(run_time(&long), "--items or --work-ms").unwrap_err();
        assert!(refused.to_string().contains("3.5 days"), "{refused}");
        for fine in [&[][..], &["--quick"], &["--workers", "1", "--items", "500", "--work-ms", "0"]] {
            assert!(run_time(&args(fine)) < Duration::from_secs(10), "{fine:?}");
        }
    }

    /// The thread-start test runs in a process of its own (this test
    /// executable again, that one test alone) under `ulimit -v`, so that the
    /// address space it uses up is nobody else's.
    const NO_ROOM: &str = "DAEMON_WORKERS_NO_ROOM_FOR_A_THREAD";

    #[test]
    fn a_thread_that_cannot_start_is_an_error() {
        let test = "lab::tests::start_workers_with_no_room_for_a_stack";
        lesson_tests::run_test_alone_with_little_address_space(test, NO_ROOM);
    }

    #[test]
    #[ignore = "run by a_thread_that_cannot_start_is_an_error, in a process of its own"]
    fn start_workers_with_no_room_for_a_stack() {
        if std::env::var_os(NO_ROOM).is_none() {
            return;
        }
        let _room = lesson_tests::fill_address_space();
        let outcome = start_workers(4, |_: usize| {});
        assert!(outcome.is_err(), "4 workers started with less than 1 MiB of address space left");
    }
}

/// The `main` that `cargo xtask eject` gives the standalone crate. It starts
/// this executable again in the lesson's child roles, and inside `cargo test`
/// this executable is the test harness, so it is not run here: `.ci/run`
/// ejects the lesson and runs this `main` for real. The include still
/// type-checks it with the lab's tests.
#[cfg(test)]
#[allow(dead_code)]
mod standalone {
    use crate::*;
    include!("standalone.rs");
}

/// Loom runs `Pending` under every interleaving of a producer and two
/// workers: `join` never returns while an item is pending, and never misses
/// the last `task_done` (a missed wake-up would leave `join` blocked, which
/// loom reports as a deadlock). Run with
/// `cargo xtask loom`.
#[cfg(all(test, loom))]
mod loom_model {
    use crate::Pending;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn join_returns_exactly_when_every_item_is_done() {
        loom::model(|| {
            let pending = Arc::new(Pending::new());
            let finished = Arc::new(AtomicUsize::new(0));
            pending.add();
            pending.add();
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let pending = Arc::clone(&pending);
                    let finished = Arc::clone(&finished);
                    loom::thread::spawn(move || {
                        finished.fetch_add(1, Ordering::SeqCst);
                        pending.task_done();
                    })
                })
                .collect();
            pending.join();
            assert_eq!(finished.load(Ordering::SeqCst), 2, "join returned with an item pending");
            for worker in workers {
                worker.join().unwrap();
            }
        });
    }
}
