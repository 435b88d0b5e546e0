//! A work queue's `join` returns exactly when every item is done; workers
//! that die with the program (daemons) lose the work they had not written
//! out; closing the queue and joining the workers loses nothing.
//!
//! The Python notes put work on a `queue.Queue`, start daemon threads that
//! loop over it forever, call `task_done()` after each item and `join()` to
//! wait until all of it is done; the program then ends, and the daemon
//! threads die with it. This lesson builds that queue on a crossbeam channel
//! with a pending count beside it. Its lab (src/lab.rs) checks that `join`
//! returns only once every item was done exactly once; then, in a child
//! process, ends the program right after `join` with the buffered workers
//! still alive, and counts what reached the file; then closes the queue and
//! joins the workers first, and every result arrives.
//!
//! Run:
//!
//! ```text
//! cargo run -p daemon-workers
//! cargo run --release -p daemon-workers -- --workers 4 --items 100 --work-ms 5
//! ```
//!
//! A run on 2 cores (release), without the notes it prints under the tables:
//!
//! ```text
//! daemon-workers: join returns when every item is done; daemon workers lose
//!   unwritten work; closing the queue loses nothing
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  workers=10 items=20 work_ms=10 messages=1000000
//!
//! experiment  items  done at join  join waited
//!             items         items           ms
//! join           20            20         21.5
//!
//! experiment      items  results in file     lost
//!                 items          results  results
//! daemon exit        20                0       20
//! close and join     20               20        0
//!
//! queue throughput, tiny items (put, get, task_done, join), 10 workers
//! experiment    throughput
//!                M items/s
//! 1 worker            46.4
//! every worker        14.1
//!
//! ✔ join-waits  join returned only after every item was done, each exactly once:
//!   when join returned: 20/20 items done once, 0 more than once; it waited 21.5 ms
//! ✔ daemon-exit-loses  ending the program with the workers still running lost
//!   results: 20 of 20 results never reached the file
//! ✔ clean-shutdown-keeps-all  closing the queue and joining the workers lost no
//!   result: 20 of 20 results in the file, each item once
//!
//! elapsed 0.16 s
//! ```
//!
//! The times and the throughput vary with the machine and its load; the
//! counts do not.
//!
//! See also: `sender-receiver` (stopping a worker by signal, event or drop),
//! `io-bound` (a fixed pool of threads over a channel of URLs).

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};

// The pending count's lock and condition variable come through this switch
// so that the loom model in the lab checks the very `Pending` the lesson runs.
// Outside the model they are the std types.
#[cfg(loom)]
use loom::sync::{Condvar, Mutex};
#[cfg(not(loom))]
use std::sync::{Condvar, Mutex};

// The queue: a channel for the items, a pending count for task_done/join.

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
struct WorkerEnd<T> {
    receiver: Receiver<T>,
    pending: Arc<Pending>,
}

// Written out rather than derived: a derive would ask for `T: Clone`, and
// the items are never cloned, only the ends of the channel.
impl<T> Clone for WorkerEnd<T> {
    fn clone(&self) -> Self {
        WorkerEnd { receiver: self.receiver.clone(), pending: Arc::clone(&self.pending) }
    }
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

// The workers, as the notes start them: they loop over the queue forever.

/// Starts `workers` threads that each take an item, `work` on it and mark it
/// done, over and over. Nothing in the loop ever decides to stop: like the
/// notes' daemon threads, they would wait for the next item forever. The only
/// way out is the queue closing (the returned `WorkQueue` dropped), which
/// makes `get` return `None`.
///
/// A thread may not start: the system can refuse one more (its stack, or a
/// limit on threads). `thread::spawn` would panic then; `Builder::spawn`
/// returns the error. Returning it with `?` drops `queue`, which closes the
/// queue: the workers already started see `None` and end, and none is left
/// waiting for work that will never come.
fn start_workers<T: Send + 'static>(
    workers: usize,
    work: impl Fn(T) + Send + Sync + 'static,
) -> std::io::Result<(WorkQueue<T>, Vec<JoinHandle<()>>)> {
    let (queue, worker_end) = work_queue();
    let work = Arc::new(work);
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (worker_end, work) = (worker_end.clone(), Arc::clone(&work));
        handles.push(thread::Builder::new().name("worker".into()).spawn(move || {
            while let Some(item) = worker_end.get() {
                work(item);
                worker_end.task_done();
            }
        })?);
    }
    Ok((queue, handles))
}

// What a daemon loses: work that is done but not yet written out.

/// A writer thread's handle: joining it says whether its writes and its
/// last flush went well.
type Writer = JoinHandle<std::io::Result<()>>;

/// Starts `workers` workers that write one line per item to `path`, each
/// through its own buffered writer. 64 KiB of buffer holds all of a worker's
/// results, so they reach the file only when the writer is flushed: when the
/// worker leaves its loop.
fn start_writers(
    workers: usize,
    work: Duration,
    path: &Path,
) -> std::io::Result<(WorkQueue<usize>, Vec<Writer>)> {
    let (queue, worker_end) = work_queue::<usize>();
    let mut handles = Vec::new();
    for worker in 0..workers {
        // Append mode: each flush is one write at the end of the file, so
        // the workers' lines never overwrite each other.
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let worker_end = worker_end.clone();
        // As in `start_workers`: a thread that cannot start is an error, and
        // returning it closes the queue for the writers already started.
        handles.push(thread::Builder::new().name("writer".into()).spawn(
            move || -> std::io::Result<()> {
                let mut out = BufWriter::with_capacity(64 * 1024, file);
                while let Some(item) = worker_end.get() {
                    thread::sleep(work);
                    writeln!(out, "{item} done by worker {worker}")?;
                    worker_end.task_done();
                }
                out.flush()
            },
        )?);
    }
    Ok((queue, handles))
}

/// The problem: every item is done and every result sits in a worker's
/// buffer when `join` returns. The program ends here, as a Python program
/// ends when its main thread is done: `exit` stops the process with its
/// threads, at once, and no buffer is flushed. (Returning would first drop
/// `queue`, which closes the channel and lets the workers race to flush
/// before the process is gone: a loss that changes from run to run instead
/// of this certain one.)
fn daemon_exit(workers: usize, items: usize, work: Duration, path: &Path) -> std::io::Result<()> {
    let (queue, _writers) = start_writers(workers, work, path)?;
    for item in 0..items {
        queue.put(item);
    }
    queue.join();
    std::process::exit(0)
}

/// The fix: close the queue (drop its sender), so that each worker drains
/// it, leaves its loop, flushes its writer and returns; then wait for every
/// one of them before the program ends.
fn close_and_join(workers: usize, items: usize, work: Duration, path: &Path) -> std::io::Result<()> {
    let (queue, writers) = start_writers(workers, work, path)?;
    for item in 0..items {
        queue.put(item);
    }
    queue.join();
    // Fix: close the queue, then join every worker: its flush is its last line.
    drop(queue);
    for writer in writers {
        writer.join().expect("workers do not panic")?;
    }
    Ok(())
}

/// The child process's `main`, started as `--child-role ENDING WORKERS ITEMS
/// WORK_MS PATH`, where ENDING is `daemon-exit` or `close-and-join`: the
/// program's end is the lesson, so it needs a process of its own.
fn child_main(ending: &str, args: &[String]) -> std::io::Result<()> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string());
    let [workers, items, work_ms, path] = args else {
        return Err(bad(&format!("the {ending} role takes 4 arguments, got {args:?}")));
    };
    let workers = workers.parse().map_err(|_| bad("workers is not a number"))?;
    let items = items.parse().map_err(|_| bad("items is not a number"))?;
    let work = Duration::from_millis(work_ms.parse().map_err(|_| bad("work_ms is not a number"))?);
    match ending {
        "daemon-exit" => daemon_exit(workers, items, work, Path::new(path)),
        "close-and-join" => close_and_join(workers, items, work, Path::new(path)),
        other => Err(bad(&format!("unknown role {other}"))),
    }
}

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
