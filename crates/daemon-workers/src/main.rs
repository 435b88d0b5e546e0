//! A work queue's `join` returns exactly when every item is done; workers
//! that die with the program (daemons) lose the work they had not written
//! out; closing the queue and joining the workers loses nothing.
//!
//! The Python notes put work on a `queue.Queue`, start daemon threads that
//! loop over it forever, call `task_done()` after each item and `join()` to
//! wait until all of it is done; the program then ends, and the daemon
//! threads die with it. This lesson builds that queue on a crossbeam channel
//! with a pending count beside it, and runs three experiments. (1) W workers
//! take I items, and `join` is checked to return only once every item has
//! been done exactly once. (2) In a child process, workers write their
//! results through buffered writers, and the child's `main` returns right
//! after `join`, as a Python program ends with daemon threads still alive:
//! the parent counts what reached the file. (3) The same child, but it closes
//! the queue and joins its workers before returning: every result arrives.
//! Last, the queue's throughput with 1 and W workers, for tiny items.
//!
//! Run:
//!
//! ```text
//! cargo run -p daemon-workers
//! cargo run --release -p daemon-workers -- --workers 4 --items 100 --work-ms 5
//! cargo run -p daemon-workers -- --help
//! ```
//!
//! A run on 2 cores (release):
//!
//! ```text
//! daemon-workers: join returns when every item is done; daemon workers lose unwritten work; closing the queue loses nothing
//! host    cores=2 os=linux profile=release
//! params  workers=10 items=20 work_ms=10 messages=1000000
//!
//! experiment  items  done at join  join waited
//!             items         items           ms
//! 1: join        20            20         20.3
//!
//! experiment         items  results in file     lost
//!                    items          results  results
//! 2: daemon exit        20                0       20
//! 3: close and join     20               20        0
//!
//! queue throughput, tiny items (put, get, task_done, join)
//! experiment    throughput
//!                M items/s
//! 1 worker(s)         4.02
//! 10 worker(s)        3.07
//!
//! For comparison, CPython 3.11's queue.Queue with task_done and join moved about 0.1 M items/s between two threads on the 2-core machine this lesson was written on.
//!
//! ✔ join-waits  join returned only after every item was done, each exactly once: when join returned: 20/20 items done once, 0 more than once; it waited 20.3 ms
//! ✔ daemon-exit-loses  ending the program with the workers still running lost results: 20 of 20 results never reached the file
//! ✔ clean-shutdown-keeps-all  closing the queue and joining the workers lost no result: 20 of 20 results in the file, each item once
//!
//! elapsed 0.64 s
//! ```
//!
//! The times and the throughput vary with the machine and its load; the
//! counts do not.
//!
//! See also: `sender-receiver` (stopping a worker by signal, event or drop),
//! `condition-variable` (the wait under `join`), `pool-map`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use common::child::{ChildProcess, play_role, spawn_self};
use common::cleanup::TempDir;
use common::cli::{CommonArgs, finish, parse};
use common::{Claim, Report};
use crossbeam_channel::{Receiver, Sender, unbounded};

// The pending count's lock and condition variable come through this switch
// so that the loom model at the end of this file checks the very `Pending`
// the lesson runs. Outside the model they are the std types.
#[cfg(loom)]
use loom::sync::{Condvar, Mutex};
#[cfg(not(loom))]
use std::sync::{Condvar, Mutex};

/// A work queue with task_done/join: join waits for every item; daemon
/// workers lose unwritten work; a closed channel shuts down cleanly.
#[derive(Parser, Debug)]
#[command(name = "daemon-workers", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Worker threads that take items from the queue.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    workers: u32,

    /// Items put on the queue in experiments 1 to 3.
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

// ---------------------------------------------------------------------------
// The queue: a channel for the items, a pending count for task_done/join.
// ---------------------------------------------------------------------------

/// How many items have been put and not yet marked done, and a condition
/// variable to wait for that number to reach zero.
///
/// Why a channel alone is not enough: a channel knows when it is *empty*,
/// which happens as soon as the last item is *taken*, while a worker may
/// still be working on it. `join` must wait until the last item is *done*,
/// and only the workers know that; they say so with `task_done`.
struct Pending {
    count: Mutex<u64>,
    all_done: Condvar,
}

impl Pending {
    fn new() -> Self {
        Pending { count: Mutex::new(0), all_done: Condvar::new() }
    }

    /// One more item is on its way.
    fn add(&self) {
        *self.count.lock().unwrap() += 1;
    }

    /// One item is finished. The last one wakes every thread in `join`.
    fn task_done(&self) {
        let mut count = self.count.lock().unwrap();
        *count = count.checked_sub(1).expect("task_done called more times than items were put");
        if *count == 0 {
            self.all_done.notify_all();
        }
    }

    /// Blocks until every item added so far is done. The loop re-checks the
    /// count after every wake-up: a condition variable may wake a waiter
    /// spuriously, and only the count says whether the work is finished.
    fn join(&self) {
        let mut count = self.count.lock().unwrap();
        while *count > 0 {
            count = self.all_done.wait(count).unwrap();
        }
    }
}

/// The producer's end of the queue: `put` and `join`. Dropping it closes the
/// channel, which is how the workers learn there will be no more items.
struct WorkQueue<T> {
    sender: Sender<T>,
    pending: Arc<Pending>,
}

/// A worker's end of the queue: `get` and `task_done`. Cloned for each worker.
#[derive(Clone)]
struct WorkerEnd<T> {
    receiver: Receiver<T>,
    pending: Arc<Pending>,
}

fn work_queue<T>() -> (WorkQueue<T>, WorkerEnd<T>) {
    // Unbounded, like Python's `Queue()`: `put` never blocks the producer.
    let (sender, receiver) = unbounded();
    let pending = Arc::new(Pending::new());
    (WorkQueue { sender, pending: Arc::clone(&pending) }, WorkerEnd { receiver, pending })
}

impl<T> WorkQueue<T> {
    fn put(&self, item: T) {
        // Count the item before sending it, or a fast worker could finish it
        // (and call task_done) before it was counted.
        self.pending.add();
        self.sender.send(item).expect("the workers hold the receiver while the queue lives");
    }

    fn join(&self) {
        self.pending.join();
    }
}

impl<T> WorkerEnd<T> {
    /// The next item; `None` once the queue is closed and drained.
    fn get(&self) -> Option<T> {
        self.receiver.recv().ok()
    }

    fn task_done(&self) {
        self.pending.task_done();
    }
}

// ---------------------------------------------------------------------------
// The lesson.
// ---------------------------------------------------------------------------

fn main() -> ExitCode {
    // A child process started by experiments 2 and 3 plays its role and exits.
    if let Some(code) = play_role(child_main) {
        return code;
    }
    let args: Args = parse();
    common::cleanup::install();
    finish(&args.common, run(&args))
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

    // Experiment 1: join.
    let joined = join_waits_for_every_item(workers, items, work);
    let e1 = "1: join";
    report.figure(e1, "items", items, "items");
    report.figure(e1, "done at join", joined.done_once, "items");
    report.figure(e1, "join waited", joined.waited.as_secs_f64() * 1e3, "ms");
    report.claim(Claim::check(
        "join-waits",
        "join returned only after every item was done, each exactly once",
        joined.done_once == items && joined.done_twice == 0,
        format!(
            "when join returned: {}/{items} items done once, {} more than once; it waited {:.1} ms",
            joined.done_once,
            joined.done_twice,
            joined.waited.as_secs_f64() * 1e3
        ),
    ));

    // Experiments 2 and 3: the same child, ending two ways.
    report.table("");
    let scratch = TempDir::new("daemon-workers")?;
    let mut kept = Vec::new();
    for (experiment, ending) in [("2: daemon exit", "daemon-exit"), ("3: close and join", "close-and-join")] {
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
    let (daemon_kept, clean_kept) = (kept[0], kept[1]);
    let lost = u64::from(items) - daemon_kept;
    report.claim(Claim::check(
        "daemon-exit-loses",
        "ending the program with the workers still running lost results",
        lost > 0,
        format!("{lost} of {items} results never reached the file"),
    ));
    report.claim(Claim::check(
        "clean-shutdown-keeps-all",
        "closing the queue and joining the workers lost no result",
        clean_kept == u64::from(items),
        format!("{clean_kept} of {items} results in the file, each item once"),
    ));

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

/// What experiment 1 saw at the moment `join` returned.
struct Joined {
    /// Items done exactly once.
    done_once: u32,
    /// Items done more than once (none, if the queue is right).
    done_twice: u32,
    /// How long `join` blocked.
    waited: Duration,
}

/// Experiment 1: W workers loop forever over the queue, like the notes'
/// daemon threads; `join` must return only when all I items are done.
fn join_waits_for_every_item(workers: usize, items: u32, work: Duration) -> Joined {
    let (queue, worker_end) = work_queue::<usize>();
    // One counter per item: how many times a worker finished it.
    let finished: Arc<Vec<AtomicU32>> = Arc::new((0..items).map(|_| AtomicU32::new(0)).collect());
    let mut handles = Vec::new();
    for _ in 0..workers {
        let worker_end = worker_end.clone();
        let finished = Arc::clone(&finished);
        handles.push(thread::spawn(move || {
            while let Some(item) = worker_end.get() {
                thread::sleep(work);
                finished[item].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                worker_end.task_done();
            }
        }));
    }
    drop(worker_end);
    for item in 0..items as usize {
        queue.put(item);
    }
    let started = Instant::now();
    queue.join();
    let waited = started.elapsed();
    // Read the counters right after join, before anything else can happen.
    let counts: Vec<u32> = finished.iter().map(|c| c.load(std::sync::atomic::Ordering::SeqCst)).collect();
    // These workers would wait forever, as daemons do. Here, closing the
    // queue (dropping its last sender) lets them leave their loop, so the
    // lesson does not keep idle threads around for the experiments that follow.
    drop(queue);
    for handle in handles {
        handle.join().expect("workers do not panic");
    }
    Joined {
        done_once: counts.iter().filter(|&&c| c == 1).count() as u32,
        done_twice: counts.iter().filter(|&&c| c > 1).count() as u32,
        waited,
    }
}

/// Experiments 2 and 3, parent side: run the child with `ending`, and count
/// the distinct results it left in `results`.
fn run_child(ending: &str, workers: usize, items: u32, work_ms: u64, results: &Path) -> anyhow::Result<u64> {
    let child_args =
        [workers.to_string(), items.to_string(), work_ms.to_string(), results.display().to_string()];
    let child: ChildProcess = spawn_self(ending, &child_args.map(Into::into), |_| {})?;
    let status = child.wait()?;
    ensure!(status.success(), "the {ending} child failed: {status}");
    let mut seen = std::collections::BTreeSet::new();
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

/// Experiments 2 and 3, child side. Both put `items` items on a queue served
/// by `workers` workers, each writing its results through its own buffered
/// writer, and `join`. Then:
/// - `daemon-exit` ends the process at once. The workers, still blocked on
///   the queue, die with it, as Python's daemon threads do; their buffers
///   are never flushed.
/// - `close-and-join` drops the queue, which closes the channel: each worker
///   drains it, leaves its loop, flushes its writer and returns; `main` joins
///   them before returning.
fn child_main(ending: &str, role_args: &[String]) -> anyhow::Result<()> {
    let [workers, items, work_ms, path] = role_args else {
        bail!("the {ending} role takes 4 arguments, got {role_args:?}");
    };
    let workers: usize = workers.parse().context("workers")?;
    let items: usize = items.parse().context("items")?;
    let work = Duration::from_millis(work_ms.parse().context("work_ms")?);
    let path = PathBuf::from(path);

    let (queue, worker_end) = work_queue::<usize>();
    let mut handles = Vec::new();
    for worker in 0..workers {
        // Append mode: each flush is one write at the end of the file, so
        // the workers' lines never overwrite each other.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let worker_end = worker_end.clone();
        handles.push(thread::spawn(move || -> std::io::Result<()> {
            // 64 KiB of buffer holds all of a worker's results, so they reach
            // the file only when the writer is flushed: when the worker ends.
            let mut out = BufWriter::with_capacity(64 * 1024, file);
            while let Some(item) = worker_end.get() {
                thread::sleep(work);
                writeln!(out, "{item} done by worker {worker}")?;
                worker_end.task_done();
            }
            out.flush()
        }));
    }
    drop(worker_end);
    for item in 0..items {
        queue.put(item);
    }
    queue.join();

    match ending {
        // Every item is done and every result sits in a worker's buffer.
        // The program ends here, as a Python program ends when its main
        // thread is done: `exit` stops the process with its threads, at once.
        // (Returning would first drop `queue`, which closes the channel and
        // lets the workers race to flush before the process is gone: a loss
        // that changes from run to run instead of this certain one.)
        "daemon-exit" => std::process::exit(0),
        "close-and-join" => {
            drop(queue);
            for handle in handles {
                handle.join().expect("workers do not panic").context("writing results")?;
            }
            Ok(())
        }
        other => bail!("unknown role {other}"),
    }
}

/// Items per second through the queue, `put` to `task_done`, with `workers`
/// workers and `messages` tiny items.
fn queue_throughput(workers: usize, messages: u64) -> f64 {
    let (queue, worker_end) = work_queue::<u64>();
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let worker_end = worker_end.clone();
            thread::spawn(move || {
                while let Some(item) = worker_end.get() {
                    std::hint::black_box(item);
                    worker_end.task_done();
                }
            })
        })
        .collect();
    drop(worker_end);
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

/// Loom runs `Pending` under every interleaving of a producer and two
/// workers: `join` never returns while an item is pending, and never misses
/// the last `task_done` (a missed wake-up would leave `join` blocked, which
/// loom reports as a deadlock). Run with
/// `RUSTFLAGS="--cfg loom" cargo test -p daemon-workers --bin daemon-workers --release`.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
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
