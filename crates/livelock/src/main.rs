//! Two polite threads that retry in step never get anywhere while they burn
//! CPU: a livelock; a random pause before each retry breaks the step.
//!
//! The Python notes list livelock beside deadlock: threads that keep
//! changing state but make no progress. Two workers each need both of two
//! resources for a job. Each takes its own, looks at the other's, and finds
//! it taken; politely, it puts its own back and tries again. If both do
//! that at the same moments, neither ever holds both.
//!
//! The lockstep is made certain here: a step (a spinning barrier) makes
//! both workers take their own resource, look at the other's, and put
//! theirs back at the same moments. It stands for two workers that retry after
//! the same fixed pause; on a real machine, timing noise usually breaks
//! such a step sooner or later, which is why livelocks come and go. The
//! fix pauses a random while (`--seed`) after each failed try, so one
//! worker comes back first and finds both resources free.
//!
//! What tells a livelock from a deadlock is the CPU: deadlocked threads
//! sleep on each other's locks; livelocked ones run flat out. The lab
//! (src/lab.rs) has a watchdog sample each worker's jobs and CPU time. And
//! unlike a deadlock, a livelock can be told to stop: its threads are
//! awake, so they see a flag the lab raises after the watchdog's verdict.
//!
//! Run:
//!
//! ```text
//! cargo run -p livelock
//! cargo run --release -p livelock -- --seed 7 --jobs 1000
//! ```
//!
//! A run on 2 cores (release), without the notes it prints under the tables:
//!
//! ```text
//! livelock: two polite threads that retry in step never get anywhere while they
//!   burn CPU, a livelock; a random pause before each retry breaks the step
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  trials=3 jobs=1000 patience_ms=300 seed=6
//!
//! two polite workers, 3 trials each way, 1000 jobs each
//! experiment    finished  livelocked   jobs    tries  CPU share
//!                 trials      trials  items   rounds   fraction
//! in lockstep          0           3      0  4421828      0.647
//! random pause         3           0   6000     6006          -
//!
//! ✔ lockstep-livelocks  in lockstep, the workers did no job at all while they kept
//!   using CPU: a livelock: 3/3 trials livelocked; in 308 ms, 0 jobs, 1567072
//!   tries, the workers on a CPU 86% and 82% of the time
//! ✔ backoff-completes  with a random pause before each retry, both workers did
//!   every job: 3/3 trials: both did their 1000 jobs, in 2002, 2002, 2002 tries
//!
//! elapsed 1.02 s
//! ```
//!
//! The tries and CPU shares vary from run to run; that the lockstep
//! workers finish no job and the pausing ones finish every job does not.
//!
//! See also: `deadlock` (stuck asleep instead of awake), `starvation`
//! (some threads progress, others do not).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::Mutex;

// 1. Two resources, two workers; each worker counts its jobs (its
// progress, which the lab's watchdog reads) and its tries.

pub struct Pair {
    /// Worker `i`'s own resource is `resources[i]`.
    resources: [Mutex<u64>; 2],
    pub jobs: [AtomicU64; 2],
    pub tries: [AtomicU64; 2],
    step: Step,
    /// Raised to tell the workers to give up.
    pub stop: AtomicBool,
}

impl Pair {
    pub fn new() -> Self {
        Pair {
            resources: [Mutex::new(0), Mutex::new(0)],
            jobs: [AtomicU64::new(0), AtomicU64::new(0)],
            tries: [AtomicU64::new(0), AtomicU64::new(0)],
            step: Step { arrived: AtomicUsize::new(0), generation: AtomicUsize::new(0) },
            stop: AtomicBool::new(false),
        }
    }

    /// One polite try: take my resource, look at the other's; with both,
    /// do a job; without, put mine back. `in_step` makes both workers take
    /// their own, look, and put back at the same moments.
    fn try_once(&self, me: usize, in_step: bool) -> bool {
        self.tries[me].fetch_add(1, Ordering::Relaxed);
        // A step returns false when the workers were told to stop.
        let step = || !in_step || self.step.wait(&self.stop);
        if !step() {
            return false;
        }
        let mut mine = self.resources[me].lock();
        if !step() {
            return false;
        }
        let theirs = self.resources[1 - me].try_lock();
        // Both have looked before either puts anything back.
        if !step() {
            return false;
        }
        let Some(mut theirs) = theirs else {
            return false; // Taken: politely, mine goes back (dropped here).
        };
        *mine += 1;
        *theirs += 1;
        self.jobs[me].fetch_add(1, Ordering::Relaxed);
        true
    }

    // 2. The problem: both retry at once, every time. Each try fails
    // because the other holds its own resource just then.

    pub fn work_in_lockstep(&self, me: usize, jobs: u64) {
        let mut done = 0;
        while done < jobs && !self.stop.load(Ordering::Relaxed) {
            if self.try_once(me, true) {
                done += 1;
            }
        }
    }

    // 3. The fix: the first try is still made in step (it fails, as
    // above), but after a failed try each worker pauses a random while.
    // The one that comes back first finds both resources free.

    pub fn work_with_backoff(&self, me: usize, jobs: u64, seed: u64) {
        let mut random = Random(seed ^ (me as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut first = true;
        let mut done = 0;
        while done < jobs && !self.stop.load(Ordering::Relaxed) {
            if self.try_once(me, first) {
                done += 1;
            } else {
                // Fix: a random pause, up to 100 us, before trying again.
                thread::sleep(Duration::from_micros(random.next() % 100));
            }
            first = false;
        }
    }
}

impl Default for Pair {
    fn default() -> Self {
        Pair::new()
    }
}

/// A barrier for the two workers that spins instead of sleeping (or
/// yielding its turn), so that workers in step stay on the CPU, as a busy
/// retry loop does; it gives up (returns
/// false) when `stop` is raised, so it cannot keep a worker forever.
struct Step {
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl Step {
    fn wait(&self, stop: &AtomicBool) -> bool {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) == 1 {
            // The second to arrive opens the next step for both.
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
        } else {
            while self.generation.load(Ordering::Acquire) == generation && !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        }
        // Once a worker gave up, the steps no longer keep the two together:
        // every step after the stop fails.
        !stop.load(Ordering::Relaxed)
    }
}

/// A small random number generator (xorshift64*): enough to spread pauses.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

// 4. Two named threads, one per worker; names are what `top -H` and the
// lab's watchdog show.

pub fn workers(
    pair: &Arc<Pair>,
    work: impl Fn(&Pair, usize) + Send + Sync + 'static,
) -> io::Result<Vec<JoinHandle<()>>> {
    let work = Arc::new(work);
    (0..2)
        .map(|me| {
            let (pair, work) = (Arc::clone(pair), Arc::clone(&work));
            thread::Builder::new().name(format!("polite {me}")).spawn(move || work(&pair, me))
        })
        .collect()
}

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
