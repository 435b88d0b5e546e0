//! CPU-bound work split across Rust threads runs faster with every core,
//! because Rust has no global interpreter lock; make the threads share one
//! lock, as CPython's threads share the GIL, and the speedup is gone.
//!
//! The Python notes count a number down to zero, once in one thread and once
//! split across two threads, and find two threads no faster (often slower):
//! CPython runs Python code only in the thread that holds the GIL, and hands
//! the GIL from thread to thread every few milliseconds. This lesson counts
//! the same countdown in Rust two ways, side by side below: threads that
//! take one global `Mutex` around every slice of their work (an emulation
//! of the GIL), and the same threads without it. Its lab (src/lab.rs) times
//! them against one thread, with up to the cores and twice as many (more
//! threads than cores gain nothing), and when `python3` is on the PATH runs
//! the notes' program (src/countdown.py) with 1 thread, 2 threads and
//! 2 processes, so the two languages stand side by side on this machine.
//!
//! Run:
//!
//! ```text
//! cargo run --release -p cpu-bound
//! cargo run --release -p cpu-bound -- --sweep
//! cargo run -p cpu-bound -- --python off
//! ```
//!
//! A run on 2 cores (release):
//!
//! ```text
//! cpu-bound: CPU-bound threads scale with cores in Rust; a global lock like
//!   Python's GIL takes the speedup away
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  cores=2 decrements=1213937684 rounds=1 sweep=false
//!
//! the countdown split across threads (speedup: against one thread, timed just
//! before)
//! experiment                   time  speedup  efficiency
//!                                 s        x    fraction
//! 1 thread                    0.366     1.00        1.00
//! 2 threads                   0.234     1.59       0.797
//! 4 threads                   0.187     1.96       0.490
//! 2 threads, one global lock  0.336     1.03           -
//!
//! Python, the notes' program
//! experiment           time  speedup  cores  python   rust  python / rust
//!                         s        x  cores      ns     ns              x
//! python 1 thread     0.115        -      -       -      -              -
//! python 2 threads    0.132    0.872   1.01       -      -              -
//! python 2 processes  0.081     1.41   1.72       -      -              -
//! per decrement           -        -      -    19.7  0.301           65.4
//!
//! Python 3.11.7 ran 5834552 decrements (start method 'fork'). Rust's time per
//!   decrement includes the black_box that keeps the loop from being optimized
//!   away; a bare loop is faster still.
//!
//! ✔ threads-scale  2 threads run the countdown at least 1.4x faster than one:
//!   1.59x; the 2 threads received 1.78 cores and spent 1.12x one thread's CPU time
//!   on the work
//! ✔ gil-serializes  threads that must hold one global lock to work run one at a
//!   time (at most 1.2 cores): 2 threads under one lock received 1.00 cores
//!   (1.03x), without it 1.78 (1.59x)
//! ✔ python-threads-do-not-scale  Python's two threads run one at a time (at most
//!   1.2 cores), its two processes do not: 2 threads received 1.01 cores (0.87x), 2
//!   processes 1.72 (1.41x)
//!
//! elapsed 3.28 s
//! ```
//!
//! The times vary with the machine and what else it is running; on a busy
//! machine the speedups shrink. So the lab measures what the threads
//! received (their CPU time over wall time) and how busy the machine was
//! (/proc/stat): a claim that needed free cores and did not get them is
//! *inconclusive*, with those figures, never "does not hold". The global
//! lock's claim rests on CPU time alone: under it the threads receive about
//! one core, however many are free. Debug builds are many times slower per
//! decrement; the speedups are the same.
//!
//! See also: `io-bound` (where threads help even with a GIL), `lock-fix`
//! (what a lock that every thread takes costs).

use std::hint::black_box;
use std::sync::{Mutex, PoisonError};
use std::thread;

/// Counts `n` down to zero: the CPU-bound work of the Python notes, nothing
/// to wait for, only arithmetic. `black_box` hides the value from the
/// optimizer at every step, so the loop really runs `n` times instead of
/// being replaced by its result.
fn countdown(n: u64) {
    let mut n = black_box(n);
    while n > 0 {
        n = black_box(n - 1);
    }
}

/// The part of `total` that thread `index` of `threads` counts down: an
/// equal share, and the first thread also takes the remainder, so that the
/// threads together do exactly `total` decrements however it divides.
fn share(total: u64, threads: usize, index: usize) -> u64 {
    let share = total / threads as u64;
    if index == 0 { share + total % threads as u64 } else { share }
}

// Both ways below split the same countdown across `threads` threads and count
// it in slices. They differ in one line: whether a thread must hold a global
// lock while it counts.

/// Decrements per slice: about 3 ms of counting in a release build, near
/// the 5 ms after which CPython asks the thread that runs to let go of the
/// GIL (its "switch interval"). Taking a free lock costs nanoseconds;
/// handing it to a thread that sleeps waiting for it costs microseconds (a
/// wake-up, and the lock moving from core to core), small beside a slice.
/// With much shorter slices the hand-offs would dominate, and the waiting
/// threads would spend real CPU time spinning for the lock.
const SLICE: u64 = 10_000_000;

/// The lock every thread must hold to run, like CPython's GIL. A `static`
/// because there is one per program, as there is one GIL per interpreter.
static GIL: Mutex<()> = Mutex::new(());

/// Python's way, emulated: each thread holds `GIL` while it counts a slice
/// and lets go between slices. Only the thread that holds the lock makes
/// progress, so the threads take turns and the whole takes about as long as
/// one thread doing everything, however many cores there are. Returns the
/// decrements done, which is `total`.
fn gil_countdown(total: u64, threads: usize) -> u64 {
    // Scoped threads: the scope joins every thread before it returns, so a
    // count can never be read before its thread has finished.
    thread::scope(|scope| {
        let counters: Vec<_> = (0..threads)
            .map(|index| {
                let mut left = share(total, threads, index);
                scope.spawn(move || {
                    let mut done = 0;
                    while left > 0 {
                        let slice = left.min(SLICE);
                        // The guard lives to the end of this iteration, then
                        // lets another thread in. A poisoned lock (a thread
                        // panicked while holding it) still serializes, so it
                        // is taken as it is.
                        let _gil = GIL.lock().unwrap_or_else(PoisonError::into_inner);
                        countdown(slice);
                        left -= slice;
                        done += slice;
                    }
                    done
                })
            })
            .collect();
        counters.into_iter().map(|counter| counter.join().expect("a countdown does not panic")).sum()
    })
}

/// Rust's way: the same threads and slices without the lock. Rust has no
/// interpreter lock; each thread owns its part of the work (the compiler
/// checks that nothing is shared unsynchronized), so the operating system
/// runs them on as many cores as it has, and N cores count about N times
/// faster. More threads than cores gain nothing more: they take turns on
/// the same cores. Returns the decrements done, which is `total`.
fn split_countdown(total: u64, threads: usize) -> u64 {
    thread::scope(|scope| {
        let counters: Vec<_> = (0..threads)
            .map(|index| {
                let mut left = share(total, threads, index);
                scope.spawn(move || {
                    let mut done = 0;
                    while left > 0 {
                        let slice = left.min(SLICE);
                        // Fix: no global lock; every thread counts at once.
                        countdown(slice);
                        left -= slice;
                        done += slice;
                    }
                    done
                })
            })
            .collect();
        counters.into_iter().map(|counter| counter.join().expect("a countdown does not panic")).sum()
    })
}

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
