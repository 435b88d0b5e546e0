//! A guard makes every update count: the racy counter of `race-condition`,
//! fixed four ways, each exact, each with a measured cost.
//!
//! The same workload as `race-condition` (T threads each adding 1 to a shared
//! counter N times, released together) is run with four fixes: a
//! `std::sync::Mutex`, whose guard is Rust's `with lock:` (the lock is held
//! while the guard lives and released when it drops); a `parking_lot::Mutex`,
//! a smaller and often faster lock; `AtomicU64::fetch_add`, one indivisible
//! read-modify-write instruction; and no sharing at all, where each thread
//! counts in a local variable and the totals are added after `join`. The lab
//! (src/lab.rs) times each fix with T threads (wall time) and alone on one
//! thread (that thread's CPU time, which waiting for a core does not
//! inflate), and reports nanoseconds per increment; the claim that a Mutex
//! costs more than a fetch_add rests on the CPU times, taken in pairs. The
//! read-pause-write of the Python notes is fixed by holding one guard across
//! the read, the pause and the write, which makes the T threads take turns:
//! exact, and as slow as T updates made one after the other. The Python
//! notes fix their counter with `with lock:` around the read and the write;
//! the figures here show what that kind of fix costs next to the others.
//! Each bug sits just above its fixes, the changed lines marked `// Fix:`.
//!
//! Run:
//!
//! ```text
//! cargo run -p lock-fix
//! cargo run --release -p lock-fix -- --threads 2 --increments 1000000
//! cargo run -p lock-fix -- --help
//! ```
//!
//! A run on 2 cores (release):
//!
//! ```text
//! lock-fix: a guard makes every update count; each fix has a measured cost
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  threads=5 increments=200000 trials=5 pause_ms=20
//!
//! experiment              contended         alone
//!                      ns/increment  ns/increment
//! std Mutex                    5.29          5.17
//! parking_lot Mutex            5.56          5.18
//! AtomicU64 fetch_add          2.15          2.41
//! per-thread sums             0.552         0.503
//!
//! experiment                   final min  shortest trial  threads x pause
//!                                updates              ms               ms
//! guard held across the pause          5             101              100
//!
//! ns/increment, median over trials. contended: 5 threads, wall time of a trial
//!   over all its increments (shown, not claimed). alone: one thread's CPU time
//!   over its increments, which leaves out time spent waiting for a core; std Mutex
//!   and fetch_add timed back to back in each trial.
//! With 5 threads, per-thread sums cost 3.9x less per increment than the cheapest
//!   shared counter: sharing nothing is the cheapest fix when the work allows it.
//!
//! ✔ exact  every fix ended at exactly threads x increments, in every trial: 5
//!   trials of each of 4 fixes with 5 threads and 5 with 1, all exact
//! ✔ mutex-costs-more  without contention, a std Mutex costs at least 1.3x a
//!   fetch_add per increment: CPU time alone, median of 5 pairs: std Mutex 5.2 ns
//!   vs AtomicU64 fetch_add 2.4 ns per increment; median ratio 2.13x (pairs 1.91x
//!   to 2.55x)
//! ✔ guard-serializes  holding the guard across the pause keeps every update and
//!   makes the threads take turns: 5/5 trials ended at 5; shortest trial 100.5 ms
//!   vs 0.9 x 5 x 20 ms = 90.0 ms
//!
//! elapsed 0.68 s
//! ```
//!
//! The nanoseconds vary with the machine, its load and the build profile
//! (debug builds are many times slower; there the Mutex costs about 4x a
//! fetch_add), the wall times with 5 threads most of all; the totals never
//! do.
//!
//! See also: `race-condition` (the bugs these fix, measured), `cpu-bound`
//! (what one lock that every thread must take does to a speedup).

use std::hint::black_box;
use std::io;
use std::sync::RwLock;
use std::thread;
use std::time::Duration;

// The std types come through this switch so that the loom models below check
// the very functions the lesson runs. Outside the models (always, unless
// built with `--cfg loom`) they are the std types.
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

/// Starts `threads` threads that each run `work` once, all released at the
/// same moment, and returns what each one returned. The start line holds
/// every thread back until all have been created, so that they contend for
/// the counter instead of running one after the other: a write lock this
/// thread holds while it starts them, which each new thread waits to read.
/// Unlike a `Barrier`, it opens on every path, also when `spawn_scoped`
/// fails for lack of room for one more thread: the threads that did start
/// run and are joined, and the error returns. The scope joins them all
/// before it returns, so the caller's final read sees every update.
fn run_together<R: Send>(threads: usize, work: impl Fn() -> R + Sync) -> io::Result<Vec<R>> {
    let start_line = RwLock::new(());
    thread::scope(|scope| {
        let closed = start_line.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut handles = Vec::with_capacity(threads);
        for _ in 0..threads {
            let started = thread::Builder::new().spawn_scoped(scope, || {
                drop(start_line.read().unwrap_or_else(|poisoned| poisoned.into_inner()));
                work()
            });
            match started {
                Ok(handle) => handles.push(handle),
                Err(no_room) => {
                    drop(closed);
                    return Err(no_room);
                }
            }
        }
        drop(closed);
        Ok(handles.into_iter().map(|h| h.join().expect("counting threads do not panic")).collect())
    })
}

// The shared counter: the bug, then four fixes.

/// The bug, as `race-condition` measures it: a load and a store, each atomic,
/// with a gap between them in which another thread's update is overwritten.
// The experiment (src/lab.rs) runs only the fixes; the standalone main runs
// this beside them, and the lab's tests run it to see a claim fail.
#[allow(dead_code)]
fn add_with_split_load_store(counter: &AtomicU64, increments: u64) {
    for _ in 0..increments {
        let seen = counter.load(Ordering::Relaxed);
        // `black_box` keeps an optimised build from fusing the two steps.
        counter.store(black_box(seen) + 1, Ordering::Relaxed);
    }
}

/// Fix 1: a `std::sync::Mutex`. `lock()` returns a guard; while it lives no
/// other thread can lock, and when it drops (here, at the end of the
/// statement) the lock is released. That is Python's `with lock:` block,
/// except that the data lives inside the lock, so it cannot be touched
/// without it. `unwrap` because `lock` fails only if a thread panicked while
/// holding the guard (the lock is "poisoned"), and none of ours can.
fn add_with_std_mutex(counter: &Mutex<u64>, increments: u64) {
    for _ in 0..increments {
        // Fix: the read, the add and the write all happen under one guard.
        *counter.lock().unwrap() += 1;
    }
}

/// Fix 2: a `parking_lot::Mutex`, the same idea without poisoning (so no
/// `unwrap`) and with a one-byte lock that spins briefly before sleeping.
fn add_with_parking_lot(counter: &parking_lot::Mutex<u64>, increments: u64) {
    for _ in 0..increments {
        // Fix: as fix 1, with parking_lot's guard.
        *counter.lock() += 1;
    }
}

/// Fix 3: `fetch_add` reads, adds and writes as one indivisible step (a
/// `lock xadd` on x86), so no other thread's update can fall in between.
/// `Relaxed` is enough because only the count matters: no other memory is
/// published through this counter, and `join` orders the final read.
fn add_with_fetch_add(counter: &AtomicU64, increments: u64) {
    for _ in 0..increments {
        // Fix: one atomic read-modify-write instead of a load, then a store.
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Fix 4: share nothing. Each thread counts in its own variable and returns
/// its total (`run_together` hands the totals back); the caller adds them
/// after `join`. `black_box` makes the compiler do every addition instead of
/// replacing the loop with one sum, so the figure is the cost of a real
/// increment.
fn count_locally(increments: u64) -> u64 {
    // Fix: a counter of this thread's own, so there is nothing to race on.
    let mut local = 0u64;
    for _ in 0..increments {
        local = black_box(local + 1);
    }
    local
}

// The read-pause-write of the Python notes (`database_value`): the bug, then
// its fix.

/// The bug, as `race-condition` measures it: each access takes the lock, but
/// the guard is a temporary that lets the lock go at the end of the read, so
/// two threads both read the old value and the second write undoes the first.
// The experiment runs only the fix; the standalone main, the loom model and
// the lab's tests (to see a claim fail) run this beside it.
#[allow(dead_code)]
fn read_pause_write(database: &Mutex<u64>, pause: Duration) {
    let seen = *database.lock().unwrap();
    thread::sleep(pause);
    *database.lock().unwrap() = seen + 1;
}

/// The fix: one guard is held across the read, the pause and the write, so
/// no other thread can read until this one has written. Correct, and the
/// threads now take turns: T threads take T pauses, one after the other.
fn read_pause_write_locked(database: &Mutex<u64>, pause: Duration) {
    // Fix: keep the guard instead of letting it go at the end of the read.
    let mut guard = database.lock().unwrap();
    let seen = *guard;
    thread::sleep(pause);
    // Fix: write through the same guard; the lock is released when `guard`
    // drops, at the end of the function, after the write.
    *guard = seen + 1;
}

/// Loom runs each fix under every interleaving of a few threads and checks
/// that the count is exact in all of them, and runs the read-pause-write bug
/// to show that some interleaving loses an update. Run with
/// `RUSTFLAGS="--cfg loom" cargo test -p lock-fix --bin lock-fix --release`.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::sync::Arc;

    /// `threads` loom threads each call `add` with 2 increments on one shared
    /// counter; after joining, `read` must see exactly threads x 2.
    fn exact_in_every_interleaving<C: Send + Sync + 'static>(
        threads: usize,
        new: fn() -> C,
        add: fn(&C, u64),
        read: fn(&C) -> u64,
    ) {
        loom::model(move || {
            let counter = Arc::new(new());
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let counter = Arc::clone(&counter);
                    loom::thread::spawn(move || add(&counter, 2))
                })
                .collect();
            for handle in handles {
                handle.join().unwrap();
            }
            assert_eq!(read(&counter), threads as u64 * 2, "an update was lost");
        });
    }

    #[test]
    fn mutex_counter_is_exact() {
        exact_in_every_interleaving(2, || Mutex::new(0), add_with_std_mutex, |c| *c.lock().unwrap());
    }

    #[test]
    fn fetch_add_counter_is_exact() {
        exact_in_every_interleaving(
            3,
            || AtomicU64::new(0),
            add_with_fetch_add,
            |c| c.load(Ordering::Relaxed),
        );
    }

    #[test]
    fn read_pause_write_with_the_guard_held_is_exact() {
        exact_in_every_interleaving(
            2,
            || Mutex::new(0),
            |c, n| (0..n).for_each(|_| read_pause_write_locked(c, Duration::ZERO)),
            |c| *c.lock().unwrap(),
        );
    }

    #[test]
    fn read_pause_write_with_the_guard_released_loses_an_update() {
        let outcome = std::panic::catch_unwind(|| {
            exact_in_every_interleaving(
                2,
                || Mutex::new(0),
                |c, n| (0..n).for_each(|_| read_pause_write(c, Duration::ZERO)),
                |c| *c.lock().unwrap(),
            );
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

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
