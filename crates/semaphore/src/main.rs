//! A semaphore with K permits lets at most K tasks in at once, so N tasks
//! take about ceil(N / K) uses; without it, all N go in together.
//!
//! The Python notes list the synchronisation tools: a lock lets one thread
//! in, a semaphore a limited number, for example the connections a database
//! accepts. Rust's std has no semaphore; this lesson builds one from a
//! `Mutex` and a `Condvar` in a few lines, and shows a bounded crossbeam
//! channel of tokens as the other common way. Its lab (src/lab.rs) starts N
//! tasks that each "use a connection" (sleep) for L ms, all asking at once,
//! with no limit, with the semaphore and with the channel; each task counts
//! itself in and out, so the lab knows exactly how many were ever inside at
//! once, and how long from the first in to the last out. Then a task panics
//! while it holds a permit, and the lab counts the permits that came back.
//! A broken `acquire` (check, then take in a second step) passes such runs
//! nearly always; the lab's loom model finds its race (`cargo xtask loom`).
//!
//! Run:
//!
//! ```text
//! cargo run -p semaphore
//! cargo run --release -p semaphore -- --tasks 50 --permits 5 --use-ms 20
//! ```
//!
//! A run on 2 cores (release), without the notes it prints under the tables:
//!
//! ```text
//! semaphore: a semaphore with K permits lets at most K tasks in at once, so N
//!   tasks take about ceil(N / K) uses
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  tasks=20 permits=3 use_ms=50
//!
//! tasks that each hold a connection, all started at once
//! experiment           tasks  gave up  most inside  time  ideal  time/ideal
//!                    threads  threads      threads    ms     ms           x
//! no semaphore            20        0           20  53.6    350       0.150
//! Mutex + Condvar         20        0            3   354    350        1.01
//! channel of tokens       20        0            3   352    350        1.01
//!
//! a task panicked while it held a permit
//! experiment         permits  free after
//!                      items       items
//! Mutex + Condvar          3           3
//! channel of tokens        3           3
//!
//! ✔ at-most-k  with K permits at most K tasks were inside at once, min(N, K) at
//!   the peak: Mutex + Condvar: peak 3, channel of tokens: peak 3; K = 3, N = 20
//! ✔ unlimited-exceeds-k  without the semaphore more than K tasks were inside at
//!   once: peak 20 of 20 tasks, K = 3
//! ✔ time-is-batches  N tasks with K permits took about ceil(N / K) uses (0.95 to
//!   1.5 x): Mutex + Condvar: 354 ms (1.01 x), channel of tokens: 352 ms (1.01 x);
//!   ceil(20 / 3) x 50 ms = 350 ms
//! ✔ panic-returns-permit  a task that panicked holding a permit gave it back: all
//!   K free after: 3 (Mutex + Condvar) and 3 (tokens) of K = 3 free after the panic
//!
//! elapsed 0.77 s
//! ```
//!
//! The milliseconds vary a little from run to run, more on a busy machine;
//! the counts do not.
//!
//! See also: `lock-fix` (a lock: one thread in at a time),
//! `condition-variable` (waiting on a condition, and what goes wrong),
//! `daemon-workers` (a lock and a condition variable that wait for a count
//! to reach zero).

use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};

/// One task's work: hold a connection for `hold` (a sleep stands in for the
/// query). It needs no core while it waits, so many can wait at once.
fn use_connection(hold: Duration) {
    thread::sleep(hold);
}

// The tasks. Each thread gets in through `enter` (which hands back whatever
// it must hold while inside: a permit, a token, or nothing at all), does its
// `work` and leaves by dropping what `enter` gave it. `enter` gives `None`
// when a task waited longer than its patience; the task then skips the
// work, and the count of such tasks comes back. Scoped threads, so that
// `enter` and `work` may borrow the semaphore and the lab's counters.
fn run_tasks<Pass>(
    tasks: usize,
    enter: impl Fn() -> Option<Pass> + Sync,
    work: impl Fn(usize) + Sync,
) -> std::io::Result<usize> {
    let (enter, work) = (&enter, &work);
    // A gate, so that all N tasks ask at once, as N requests arriving
    // together would, however long the threads take to start: each task
    // waits on `gate` until `open` is dropped, which wakes them all.
    let (open, gate) = bounded::<()>(0);
    thread::scope(move |scope| {
        let mut threads = Vec::new();
        for task in 0..tasks {
            let gate = gate.clone();
            // `Builder` returns the error of a thread the system refuses;
            // `?` leaves the scope (dropping `open`: the gate opens), which
            // still joins the threads already started.
            threads.push(thread::Builder::new().name(format!("task-{task}")).spawn_scoped(
                scope,
                move || {
                    let _ = gate.recv();
                    match enter() {
                        Some(pass) => {
                            work(task);
                            drop(pass);
                            0
                        }
                        None => 1,
                    }
                },
            )?);
        }
        drop(open);
        Ok(threads.into_iter().map(|thread| thread.join().expect("tasks do not panic")).sum())
    })
}

// The semaphore, in a module of its own so that Rust's privacy enforces its
// rule: outside this module nobody can make a `Permit` or call `release`.
mod semaphore {
    use std::time::{Duration, Instant};

    // The lock and condition variable come through this switch so that the
    // loom model in the lab checks this very semaphore; otherwise std's.
    #[cfg(loom)]
    use loom::sync::{Condvar, Mutex, MutexGuard};
    #[cfg(not(loom))]
    use std::sync::{Condvar, Mutex, MutexGuard};

    /// A count of free permits under a lock, and a condition variable on
    /// which tasks wait for one to be returned.
    pub struct Semaphore {
        available: Mutex<usize>,
        returned: Condvar,
    }

    /// The right to be inside. It can only come from `acquire`, and its
    /// drop is the only release: a task cannot release a permit it never
    /// took, nor one twice (a value is dropped once), and a task that
    /// panics drops its permit as it unwinds. Python's `BoundedSemaphore`
    /// checks at run time, raising `ValueError` on a release too many; here
    /// such a program does not compile. (`std::mem::forget` can still lose
    /// one: that is safe Rust, and the semaphore then has a permit less.)
    pub struct Permit<'a> {
        semaphore: &'a Semaphore,
    }

    impl Semaphore {
        pub fn new(permits: usize) -> Self {
            Semaphore { available: Mutex::new(permits), returned: Condvar::new() }
        }

        /// The permits free now (for the lab to count them).
        pub fn available(&self) -> usize {
            *self.available.lock().unwrap()
        }

        /// Waits, with the lock let go, until a permit is free, and returns
        /// the lock held again; `None` once `deadline` has passed. The loop
        /// checks the count again after every wake-up: a condition variable
        /// may wake a waiter spuriously, or another task may have taken the
        /// permit first. Each wait is bounded, so no task hangs forever.
        fn wait_for_a_permit<'a>(
            &self,
            mut available: MutexGuard<'a, usize>,
            deadline: Instant,
        ) -> Option<MutexGuard<'a, usize>> {
            while *available == 0 {
                let left = deadline.checked_duration_since(Instant::now())?;
                available = self.returned.wait_timeout(available, left).unwrap().0;
            }
            Some(available)
        }

        /// The problem: check for a permit, let the lock go, then take it in
        /// a second lock section. Between the two, another task may see the
        /// same last permit, and both go in. (`saturating_sub`: the count
        /// cannot go below zero, so the semaphore gains a permit when both
        /// give theirs back.) The loom model in the lab finds this.
        pub fn acquire_in_two_steps(&self, patience: Duration) -> Option<Permit<'_>> {
            let deadline = Instant::now() + patience;
            let available = self.wait_for_a_permit(self.available.lock().unwrap(), deadline)?;
            drop(available);
            let mut available = self.available.lock().unwrap();
            *available = available.saturating_sub(1);
            Some(Permit { semaphore: self })
        }

        /// The fix: check and take under one hold of the lock.
        pub fn acquire(&self, patience: Duration) -> Option<Permit<'_>> {
            let deadline = Instant::now() + patience;
            // Fix: take the permit under the same lock that saw it free.
            let mut available = self.wait_for_a_permit(self.available.lock().unwrap(), deadline)?;
            *available -= 1;
            Some(Permit { semaphore: self })
        }

        /// Private: only a permit's drop calls it. It wakes one waiter,
        /// since one permit lets one more task in.
        fn release(&self) {
            *self.available.lock().unwrap() += 1;
            self.returned.notify_one();
        }
    }

    impl Drop for Permit<'_> {
        fn drop(&mut self) {
            self.semaphore.release();
        }
    }
}

use semaphore::Semaphore;

// The other common way: a bounded channel holding K tokens. Taking a token
// is receiving one (it blocks while the channel is empty: every token is
// out), and giving it back is sending it. The channel's capacity is K, so
// it is a *bounded* semaphore too: a token returned twice would find no
// room. The token is again a value whose drop returns it.
struct TokenPool {
    give_back: Sender<()>,
    take: Receiver<()>,
}

struct Token<'a> {
    pool: &'a TokenPool,
}

impl TokenPool {
    fn new(permits: usize) -> Self {
        let (give_back, take) = bounded(permits);
        for _ in 0..permits {
            give_back.send(()).expect("the receiver is right here");
        }
        TokenPool { give_back, take }
    }

    /// A token, or `None` after `patience` without one: a bounded wait.
    fn acquire(&self, patience: Duration) -> Option<Token<'_>> {
        self.take.recv_timeout(patience).ok().map(|()| Token { pool: self })
    }

    fn available(&self) -> usize {
        self.take.len()
    }
}

impl Drop for Token<'_> {
    fn drop(&mut self) {
        // Never full here: this token was taken from the channel.
        let _ = self.pool.give_back.try_send(());
    }
}

// The three ways to run the tasks, side by side; they differ only in
// `enter`. The first has no limit: every task is inside at once.
fn without_a_limit(tasks: usize, work: impl Fn(usize) + Sync) -> std::io::Result<usize> {
    run_tasks(tasks, || Some(()), work)
}

fn with_the_semaphore(
    tasks: usize,
    semaphore: &Semaphore,
    patience: Duration,
    work: impl Fn(usize) + Sync,
) -> std::io::Result<usize> {
    // Fix: a task goes in only with a permit, and gives it back on leaving.
    run_tasks(tasks, || semaphore.acquire(patience), work)
}

fn with_a_channel_of_tokens(
    tasks: usize,
    pool: &TokenPool,
    patience: Duration,
    work: impl Fn(usize) + Sync,
) -> std::io::Result<usize> {
    // Fix: a task goes in only with a token, and puts it back on leaving.
    run_tasks(tasks, || pool.acquire(patience), work)
}

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
