//! `Pool.map` in Rust, four ways: each gives back its results in input
//! order; on heavy items every pool runs nearly as many times faster as
//! there are cores, and on tiny items a process pool loses to a plain loop.
//!
//! The Python notes map `f` over `range(1024)` with `Pool(8).map`. This
//! lesson maps one function (`work`, src/items.rs) over the same inputs with
//! a thread pool of our own over a crossbeam channel, `thread::scope` over
//! chunks, rayon, and a process pool (this program run again, fed by pipes).
//! Its lab (src/lab.rs) times each against a plain loop on heavy items
//! (about 200 us each) and tiny ones (a nanosecond), charges each for its
//! CPU time (the workers' included), checks every result against the plain
//! loop's, and with `--sweep` finds where the process pool starts to pay.
//!
//! Run:
//!
//! ```text
//! cargo run --release -p pool-map
//! cargo run --release -p pool-map -- --workers 4 --sweep
//! ```
//!
//! A run on 2 cores (release), without the notes it prints under the tables:
//!
//! ```text
//! pool-map: Pool.map four ways gives results in input order; pools gain on heavy
//!   items, and a process pool loses to a plain loop on tiny ones
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  workers=2 items=1024 heavy_us=200 heavy_rounds=117729 tiny_rounds=1
//!         repeats=100 sweep=false
//!
//! heavy items: work(x, 117729), about 200 us each
//! experiment            time  speedup  per item  cores  CPU/plain  in order
//!                         ms        x        us  cores          x   results
//! heavy, plain loop      206     1.00       201  0.993       1.00      1024
//! heavy, thread pool     106     1.95       103   1.94       1.02      1024
//! heavy, scoped chunks   115     1.84       112   1.82      0.998      1024
//! heavy, rayon           107     1.93       105   1.91      0.995      1024
//! heavy, process pool    102     1.99      99.9   1.93       1.01      1024
//!
//! tiny items: work(x, 1), the median of 100 maps
//! experiment           time  speedup  per item  cores  CPU/plain  in order
//!                        us        x        ns  cores          x   results
//! tiny, plain loop     1.34     1.00      1.31  0.855       1.00      1024
//! tiny, thread pool     356    0.004       347   1.76        454      1024
//! tiny, scoped chunks   145    0.009       141  1.000        167      1024
//! tiny, rayon          23.7    0.057      23.2   1.10       19.2      1024
//! tiny, process pool    293    0.005       286  0.864        391      1024
//!
//! ✔ results-in-order  every way returned exactly the plain loop's results, in
//!   input order: 8192/8192 results in place (4 ways x 2 workloads)
//! ✔ pools-gain-on-heavy  on heavy items every pool ran at least 1.4x faster than
//!   the plain loop: thread pool 1.95x on 1.94 cores, scoped chunks 1.84x on 1.82
//!   cores, rayon 1.93x on 1.91 cores, process pool 1.99x on 1.93 cores
//! ✔ process-pool-loses-on-tiny  on tiny items the process pool cost at least 2x
//!   the plain loop's CPU time: 391x the CPU time (540 vs 1.38 us a map); 218x the
//!   wall time (293 vs 1.34 us)
//!
//! elapsed 4.12 s
//! ```
//!
//! The times vary with the machine and its load, the CPU-time ratios
//! little, the counts not at all.
//!
//! See also: `cpu-bound` (threads and cores), `daemon-workers` (a work
//! queue), `fork-vs-spawn` (what a worker's start costs).

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, unbounded};
use rayon::prelude::*;

mod items;
use items::{from_bytes, plain_loop, to_bytes, work};

// 1. A thread pool of our own: Python's `Pool` with threads in place of
// processes. Workers wait on one job queue (a crossbeam channel, which
// several receivers may share; std's `mpsc` has one) and each takes the
// next job as soon as it is free, so a slow item does not hold up the rest.

type Job = Box<dyn FnOnce() + Send + 'static>;

struct ThreadPool {
    jobs: Option<Sender<Job>>, // `None` once the pool is shutting down
    workers: Vec<JoinHandle<()>>,
}

impl ThreadPool {
    fn new(size: usize) -> io::Result<Self> {
        let (jobs, queue) = unbounded::<Job>();
        let mut pool = ThreadPool { jobs: Some(jobs), workers: Vec::new() };
        for n in 0..size {
            let queue: Receiver<Job> = queue.clone();
            // The loop ends when the pool drops its sender and the queue is
            // empty. (On `?`, the pool's drop ends the workers started.)
            let worker = thread::Builder::new()
                .name(format!("pool-{n}"))
                .spawn(move || queue.iter().for_each(|job| job()))?;
            pool.workers.push(worker);
        }
        Ok(pool)
    }

    // One job per input; each sends back its input's index with its result.
    fn submit(
        &self,
        f: impl Fn(u64) -> u64 + Copy + Send + 'static,
        inputs: &[u64],
    ) -> Receiver<(usize, u64)> {
        let (results, finished) = unbounded();
        let jobs = self.jobs.as_ref().expect("the pool runs until dropped");
        for (index, &input) in inputs.iter().enumerate() {
            let results = results.clone();
            // The receiver outlives every job: `map` waits for them all.
            let job = Box::new(move || results.send((index, f(input))).unwrap_or(()));
            jobs.send(job).expect("the workers run until the pool is dropped");
        }
        finished // closed once the last job is done and drops its sender
    }

    // The problem: results taken in the order they arrive, which is the
    // order the workers finished them, not the order of the inputs.
    #[allow(dead_code)] // run by the lab's tests, to see the order break
    fn map_as_finished(&self, f: impl Fn(u64) -> u64 + Copy + Send + 'static, inputs: &[u64]) -> Vec<u64> {
        self.submit(f, inputs).iter().map(|(_index, result)| result).collect()
    }

    // The fix: each result goes back to its input's place, by the index it
    // carries. Python's `Pool.map` does the same bookkeeping for you.
    fn map(&self, f: impl Fn(u64) -> u64 + Copy + Send + 'static, inputs: &[u64]) -> Vec<u64> {
        let mut in_order: Vec<Option<u64>> = vec![None; inputs.len()];
        for (index, result) in self.submit(f, inputs) {
            in_order[index] = Some(result); // Fix: put back by index
        }
        in_order.into_iter().map(|result| result.expect("every job sends its result")).collect()
    }
}

impl Drop for ThreadPool {
    // Closing the queue ends each worker's loop; joined, none outlives us.
    fn drop(&mut self) {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

// 2. No pool: `thread::scope` cuts the inputs into one chunk per worker and
// the outputs into the same chunks; each thread borrows its two and writes
// its results in place. Order comes free, with no channel and no index per
// item; but a chunk of slow items keeps its thread busy while others idle.
fn scoped_chunks(f: impl Fn(u64) -> u64 + Sync, inputs: &[u64], workers: usize) -> io::Result<Vec<u64>> {
    let mut outputs = vec![0; inputs.len()];
    let chunk = inputs.len().div_ceil(workers).max(1);
    let f = &f;
    thread::scope(|scope| {
        for (ins, outs) in inputs.chunks(chunk).zip(outputs.chunks_mut(chunk)) {
            let fill = move || ins.iter().zip(outs).for_each(|(input, output)| *output = f(*input));
            thread::Builder::new().spawn_scoped(scope, fill)?;
        }
        Ok::<(), io::Error>(())
    })?;
    Ok(outputs)
}

// 3. rayon, what a Rust user reaches for: `par_iter().map().collect()`.
// It splits the work into pieces, and an idle thread steals pieces from a
// busy one's queue (work stealing), so uneven items balance out; `collect`
// puts each result in its place with no index carried by hand. `install`
// runs it on a pool of our size instead of rayon's global one.
fn rayon_map(pool: &rayon::ThreadPool, f: impl Fn(u64) -> u64 + Sync + Send, inputs: &[u64]) -> Vec<u64> {
    pool.install(|| inputs.par_iter().map(|&x| f(x)).collect())
}

// 4. A process pool, Python's `Pool` as it is: worker processes, started
// once. A process shares no memory with us, so every input is copied into
// a pipe and every result copied back (Python pickles `f` by name and each
// item). Our workers are this program run again in a role ('spawn'); they
// have `work` already, so only `rounds` and the items travel, as
// little-endian `u64`s. Like Python's `map`, the inputs go in chunks, about
// four per worker: one round trip per chunk, not per item.
struct ProcessPool {
    workers: Vec<(Child, ChildStdin, ChildStdout)>,
}

impl ProcessPool {
    fn start(size: usize) -> io::Result<Self> {
        let program = std::env::current_exe()?;
        let mut pool = ProcessPool { workers: Vec::new() };
        for _ in 0..size {
            let mut child = Command::new(&program)
                .args(["--child-role", "pool-worker"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?; // on `?`, dropping `pool` reaps those started
            let (to_child, from_child) = (child.stdin.take(), child.stdout.take());
            pool.workers.push((child, to_child.expect("piped"), from_child.expect("piped")));
        }
        Ok(pool)
    }

    // The chunks wait on a queue; a thread per worker takes the next one,
    // sends it, and reads its results, so a worker that is done early takes
    // more. Results come back with their chunk's start and go in place.
    fn map(&mut self, rounds: u32, inputs: &[u64]) -> io::Result<Vec<u64>> {
        let chunk = inputs.len().div_ceil(4 * self.workers.len()).max(1);
        let (chunks, queue) = unbounded();
        for (n, items) in inputs.chunks(chunk).enumerate() {
            chunks.send((n * chunk, items)).expect("the queue is open");
        }
        drop(chunks);
        let (done, results) = unbounded();
        thread::scope(|scope| {
            for (_, to, from) in &mut self.workers {
                let (queue, done) = (queue.clone(), done.clone());
                scope.spawn(move || {
                    for (start, items) in queue {
                        let _ = done.send(round_trip((to, from), rounds, items).map(|r| (start, r)));
                    }
                });
            }
        });
        drop(done);
        let mut outputs = vec![0; inputs.len()];
        for result in results {
            let (start, values) = result?;
            outputs[start..start + values.len()].copy_from_slice(&values);
        }
        Ok(outputs)
    }

    // Python's `pool.close(); pool.join()`: each worker ends at its pipe's close.
    fn close(mut self) -> io::Result<()> {
        for (mut child, to_child, _) in self.workers.drain(..) {
            drop(to_child);
            let status = child.wait()?;
            status.success().then_some(()).ok_or(io::Error::other(format!("a worker ended: {status}")))?;
        }
        Ok(())
    }
}

impl Drop for ProcessPool {
    // Python's `with Pool(...)` ends with `terminate()`: workers still there
    // (on an error, say) are killed, and each is waited for: no zombie.
    fn drop(&mut self) {
        for (child, _, _) in &mut self.workers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One chunk's round trip: rounds, count and items down the pipe, then the
/// results back. The worker reads the whole chunk before it writes, so the
/// two sides never both wait on a full pipe.
fn round_trip(
    pipes: (&mut ChildStdin, &mut ChildStdout),
    rounds: u32,
    items: &[u64],
) -> io::Result<Vec<u64>> {
    pipes.0.write_all(&to_bytes([u64::from(rounds), items.len() as u64].iter().chain(items)))?;
    let mut reply = vec![0u8; 8 * items.len()];
    pipes.1.read_exact(&mut reply)?;
    Ok(from_bytes(&reply))
}

/// A pool worker's `main` (`--child-role pool-worker`): reads a chunk,
/// writes its results, until its input pipe closes.
fn pool_worker() -> io::Result<()> {
    let mut input = BufReader::new(io::stdin().lock());
    // The raw stdout: `io::stdout()` flushes at every newline byte it sees.
    let mut output = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    let mut header = [0u8; 16];
    loop {
        match input.read_exact(&mut header) {
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            read => read?,
        }
        let (rounds, count) = (from_bytes(&header)[0], from_bytes(&header)[1]);
        let mut items = vec![0u8; 8 * usize::try_from(count).map_err(io::Error::other)?];
        input.read_exact(&mut items)?;
        let rounds = u32::try_from(rounds).map_err(io::Error::other)?;
        let reply = to_bytes(&from_bytes(&items).into_iter().map(|x| work(x, rounds)).collect::<Vec<_>>());
        output.write_all(&reply)?;
    }
}

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
