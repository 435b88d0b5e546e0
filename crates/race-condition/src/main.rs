//! Unsynchronized read-modify-write loses updates, even when every single
//! access is atomic.
//!
//! The first experiment, the split load/store, starts five threads that each
//! add 1 to one shared counter half a million times, by reading the counter
//! and then writing back what they read plus one. Each read and each write is
//! an atomic operation, so there is no undefined behaviour; but the read and
//! the write are two steps, and another thread's write that lands between
//! them is overwritten. The lab (src/lab.rs) counts how many of the 2,500,000
//! updates survive, over 20 trials. The second experiment, the read, pause,
//! write, is the Python notes' `database_value`: two threads each read a value
//! under a lock, let go of the lock, work for a few milliseconds, and write
//! back value + 1. Both read 0, both write 1: one update is lost, every time.
//!
//! The Python notes write the race as five threads doing `counter += 1` on a
//! global. In safe Rust that program does not compile: it is a data race (two
//! threads writing one plain integer), and the borrow checker rejects it with
//! error E0499 (see the `compile_fail` example in `src/lib.rs`). What the
//! compiler cannot reject is a race of *logic*: each access is fine on its
//! own, the sequence is not. That is what the two experiments show, and what
//! `lock-fix` mends. A fact about Python measured on a 2-core machine like
//! this one: CPython 3.11's unlocked counter lost no update in 60 of 60
//! trials, because the GIL only switches threads at certain bytecodes; with
//! `time.sleep(0)` between the read and the write it lost about 80% of the
//! updates in every trial. Rust threads run truly in parallel, so the split
//! load/store loses updates nearly every time without any help.
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
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  threads=5 increments=500000 trials=20 pause_ms=20
//!
//! experiment          expected  final min  final median  lost median  trials lost
//!                      updates    updates       updates      updates       trials
//! split load/store     2500000     512524       1562197       937803           20
//! read, pause, write         2          1             1            1           20
//!
//! split load/store: each load and store is atomic, yet a store can overwrite
//!   another thread's update made since the load.
//! read, pause, write: both threads read 0 before either writes, so both write 1.
//!
//! ✔ lost-updates  the split load/store lost updates: 20/20 trials lost updates;
//!   median 937803 of 2500000 lost (38%)
//! ✔ read-pause-write  the read, pause, write lost one of its two updates (ended at
//!   1, not 2): 20/20 trials ended at 1, the rest at 2
//!
//! elapsed 0.48 s
//! ```
//!
//! The counts lost vary from run to run and machine to machine; whether
//! updates are lost does not.
//!
//! See also: `lock-fix` (the same workloads made correct, and what each fix
//! costs), `cpu-bound` (threads that truly run at once, with no GIL).

use std::io;
use std::sync::RwLock;
use std::thread;
use std::time::Duration;

// The counter types come through this switch so that the loom model below
// checks the very functions the lesson runs. Outside the model (always,
// unless built with `--cfg loom`) they are the std types.
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

// The first race: a read and a write, each atomic, with a gap between them.

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

/// One trial of the split load/store: `threads` threads share one fresh
/// counter and each adds `increments` to it. Returns the counter's final
/// value: `threads` x `increments` if no update was lost, less if any was.
fn split_load_store_trial(threads: usize, increments: u64) -> io::Result<u64> {
    let counter = AtomicU64::new(0);
    // The threads borrow `counter` from this stack frame: they are scoped
    // threads, all joined before `run_together` returns.
    run_together(threads, || add_with_split_load_store(&counter, increments))?;
    // Every thread has been joined, so this read sees all their stores.
    Ok(counter.load(Ordering::Relaxed))
}

/// Runs `work` on `threads` scoped threads released at once, and joins them.
///
/// The start line holds every thread back until all have been created, so
/// their work runs at the same time instead of one after the other
/// (starting a thread takes about as long as a short loop). It is a write
/// lock this thread holds while it starts them; each new thread waits to
/// read it, and dropping the guard lets them all go. (A `Barrier` would wait
/// for a fixed number of threads forever; this opens on every path, also
/// when `Builder::spawn_scoped` fails for lack of room for one more thread:
/// then the threads that did start run, are joined, and the error returns.)
fn run_together(threads: usize, work: impl Fn() + Sync) -> io::Result<()> {
    let start_line = RwLock::new(());
    thread::scope(|scope| {
        let closed = start_line.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        for _ in 0..threads {
            thread::Builder::new().spawn_scoped(scope, || {
                drop(start_line.read().unwrap_or_else(|poisoned| poisoned.into_inner()));
                work();
            })?;
        }
        drop(closed);
        Ok(())
    })
}

// The second race: the Python notes' `database_value`, where a lock guards
// each access but not the update as a whole.

/// Reads under the lock, lets the lock go, works for `pause`, writes under
/// the lock.
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

/// One trial of the read, pause, write: two threads, one update each, on a
/// fresh value. Returns the final value: 2 if both updates count, 1 if one
/// was lost.
fn read_pause_write_trial(pause: Duration) -> io::Result<u64> {
    let database = Mutex::new(0);
    // Released together, both threads read before either has slept its
    // `pause` and written.
    run_together(2, || read_pause_write(&database, pause))?;
    // `unwrap`: a lock is poisoned only if a thread panicked holding it, and
    // these threads cannot panic while they hold it.
    Ok(*database.lock().unwrap())
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

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
