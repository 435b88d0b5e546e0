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
#[command(name = "daemon-workers", version, about)]
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
    // The lab starts child processes and writes their results to a temp dir:
    // both go on Ctrl-C.
    common::cleanup::install();
    common::cli::finish(&args.common, run(&args))
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let workers = args.workers as usize;
    let items = args.items;
    // A million tiny items take about a second through the queue on 2 cores.
    let messages = args.messages.unwrap_or(args.common.pick(1_000_000, 50_000));

    let mut report = common::lesson_report!();
    report
        .param("workers", workers)
        .param("items", items)
        .param("work_ms", args.work_ms)
        .param("messages", messages);

    join_waits(&mut report, workers, items, Duration::from_millis(args.work_ms));

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
    report.table("queue throughput, tiny items (put, get, task_done, join)");
    for team in [1, workers] {
        let rate = queue_throughput(team, messages);
        report.figure(format!("{team} worker(s)"), "throughput", rate / 1e6, "M items/s");
    }
    report.note(
        "For comparison, CPython 3.11's queue.Queue with task_done and join moved about 0.1 M items/s \
         between two threads on the 2-core machine this lesson was written on.",
    );
    Ok(report)
}

/// W workers loop forever over the queue, like the notes' daemon threads;
/// `join` must return only when all I items are done, each exactly once.
/// Adds the join figures and the `join-waits` claim to the report.
fn join_waits(report: &mut Report, workers: usize, items: u32, work: Duration) {
    // One counter per item: how many times a worker finished it.
    let finished: Arc<Vec<AtomicU32>> = Arc::new((0..items).map(|_| AtomicU32::new(0)).collect());
    let (queue, handles) = start_workers(workers, {
        let finished = Arc::clone(&finished);
        move |item: usize| {
            thread::sleep(work);
            finished[item].fetch_add(1, Ordering::SeqCst);
        }
    });
    for item in 0..items as usize {
        queue.put(item);
    }
    let started = Instant::now();
    queue.join();
    let waited = started.elapsed();
    // Read the counters right after join, before anything else can happen.
    let counts: Vec<u32> = finished.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    // These workers would wait forever, as daemons do. Here, closing the
    // queue (dropping its last sender) lets them leave their loop, so the
    // lab does not keep idle threads around for the experiments that follow.
    drop(queue);
    for handle in handles {
        handle.join().expect("workers do not panic");
    }
    let done_once = counts.iter().filter(|&&c| c == 1).count() as u32;
    let done_twice = counts.iter().filter(|&&c| c > 1).count() as u32;
    let waited_ms = waited.as_secs_f64() * 1e3;
    report.figure("join", "items", items, "items");
    report.figure("join", "done at join", done_once, "items");
    report.figure("join", "join waited", waited_ms, "ms");
    report.claim(Claim::check(
        "join-waits",
        "join returned only after every item was done, each exactly once",
        done_once == items && done_twice == 0,
        format!(
            "when join returned: {done_once}/{items} items done once, {done_twice} more than once; \
             it waited {waited_ms:.1} ms"
        ),
    ));
}

fn daemon_exit_loses(items: u32, daemon_kept: u64) -> Claim {
    let lost = u64::from(items) - daemon_kept;
    Claim::check(
        "daemon-exit-loses",
        "ending the program with the workers still running lost results",
        lost > 0,
        format!("{lost} of {items} results never reached the file"),
    )
}

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
fn queue_throughput(workers: usize, messages: u64) -> f64 {
    let (queue, handles) = start_workers(workers, |item: u64| {
        std::hint::black_box(item);
    });
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
    messages as f64 / elapsed.as_secs_f64()
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
