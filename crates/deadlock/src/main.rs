//! Two threads that take two locks in opposite order deadlock; one global
//! lock order, or a bounded wait that backs off, makes them finish.
//!
//! The Python notes list deadlock first among the bugs of threads: threads
//! waiting on each other forever. Here each thread sits at a table with a
//! lock (a fork) on either side and needs both to eat. With two seats this
//! is the textbook case: seat 0 takes lock 0 then lock 1, seat 1 takes
//! lock 1 then lock 0. With five it is the dining philosophers.
//!
//! Left to chance, the unlucky interleaving is rare: one thread usually
//! takes both locks before the other takes its first. So each thread, after
//! its first lock, waits at a meeting point until every thread holds its
//! first lock (or the meeting's patience runs out): that makes the deadlock
//! certain, not likely. The fixes wait at the same meeting point.
//!
//! The lab (src/lab.rs) runs each way in a child process, where a watchdog
//! samples every thread's meals and CPU time (no progress and no CPU is a
//! deadlock: the threads sleep on each other's locks) and parking_lot's
//! deadlock detector names the threads in the cycle; then it kills the
//! child. A deadlocked thread never wakes, so only the process can end it.
//!
//! Run:
//!
//! ```text
//! cargo run -p deadlock
//! cargo run --release -p deadlock -- --trials 10 --patience-ms 200
//! ```
//!
//! A run on 2 cores (release), without the notes it prints under the tables:
//!
//! ```text
//! deadlock: two threads that take two locks in opposite order deadlock; one global
//!   lock order, or a bounded wait that backs off, lets them finish
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  trials=3 meals=200 patience_ms=400 meeting_ms=100 try_ms=10
//!
//! seats at a table, 3 trials each way; 2 seats: two threads, two locks
//! experiment         deadlocked  finished   cycle     met  retries  stuck CPU
//!                        trials    trials  trials  trials  retries         ms
//! 2, opposite order           3         0       3       3        0      0.072
//! 2, lower first              0         3       0       0        0          -
//! 2, try, back off            0         3       0       3        4          -
//! 5, left first               3         0       3       3        0      0.081
//! 5, lower first              0         3       0       0        0          -
//!
//! ✔ opposite-order-deadlocks  two threads taking two locks in opposite order
//!   deadlocked in every trial: no progress, no CPU, and the detector named the
//!   two: 3/3 trials deadlocked, the cycle named; in 403 ms no meal, the seats on a
//!   CPU 0%, 0% of it; the detector: seat 0 + seat 1
//! ✔ lock-order-completes  with the lower-numbered lock first, every trial
//!   finished: 3/3 trials: every seat ate its 200 meals
//! ✔ try-lock-completes  waiting for the second lock only so long, then backing
//!   off, every trial finished: 3/3 trials: every seat ate its 200 meals, after
//!   putting a fork back 4 times
//! ✔ philosophers-deadlock  five philosophers taking the left fork first deadlocked
//!   in every trial, a cycle of all five: 3/3 trials deadlocked, the cycle named;
//!   in 405 ms no meal, the seats on a CPU 0%, 0%, 0%, 0%, 0% of it; the detector:
//!   seat 0 + seat 1 + seat 2 + seat 3 + seat 4
//! ✔ philosophers-ordered-complete  five philosophers taking the lower-numbered
//!   fork first finished in every trial: 3/3 trials: every seat ate its 200 meals
//!
//! elapsed 3.79 s
//! ```
//!
//! The watchdog's window and the CPU the threads used in it vary from run
//! to run; which ways deadlock and which finish do not.
//!
//! See also: `lock-fix` (one lock, and what it costs), `condition-variable`
//! (waiting with a deadline instead of forever).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

// 1. The table: a fork (a lock) between each pair of neighbours, and the
// meeting point that makes the unlucky interleaving certain.

/// `seats` threads around a table; seat `i` needs forks `i` and `i + 1`
/// (the last seat's right fork is fork 0).
pub struct Table {
    /// Each fork counts the meals eaten with it.
    forks: Vec<Mutex<u64>>,
    /// Meals each seat has finished: its progress, which the watchdog reads.
    pub meals: Vec<AtomicU64>,
    /// Forks the trying seats put back to try again.
    pub retries: AtomicU64,
    /// How long a trying seat waits for its second fork.
    try_wait: Duration,
    pub meeting: Meeting,
}

/// Where each seat waits, after taking its first fork, until every seat
/// holds its first fork. Std's `Barrier` would wait forever for a seat that
/// cannot come; this one gives up after its patience.
pub struct Meeting {
    arrived: Mutex<usize>,
    everyone_here: Condvar,
    seats: usize,
    patience: Duration,
    /// Set when a seat stopped waiting before everyone came.
    pub gave_up: AtomicBool,
}

impl Meeting {
    fn wait(&self) {
        let mut arrived = self.arrived.lock();
        *arrived += 1;
        self.everyone_here.notify_all();
        let deadline = Instant::now() + self.patience;
        while *arrived < self.seats {
            if self.everyone_here.wait_until(&mut arrived, deadline).timed_out() {
                self.gave_up.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

impl Table {
    pub fn new(seats: usize, meeting_patience: Duration, try_wait: Duration) -> Self {
        Table {
            forks: (0..seats).map(|_| Mutex::new(0)).collect(),
            meals: (0..seats).map(|_| AtomicU64::new(0)).collect(),
            retries: AtomicU64::new(0),
            try_wait,
            meeting: Meeting {
                arrived: Mutex::new(0),
                everyone_here: Condvar::new(),
                seats,
                patience: meeting_patience,
                gave_up: AtomicBool::new(false),
            },
        }
    }

    fn forks_of(&self, seat: usize) -> (usize, usize) {
        (seat, (seat + 1) % self.forks.len())
    }

    fn eat(&self, seat: usize, mut first: MutexGuard<u64>, mut second: MutexGuard<u64>) {
        *first += 1;
        *second += 1;
        self.meals[seat].fetch_add(1, Ordering::Relaxed);
    }

    // 2. The problem: every seat takes its left fork, then its right one.
    // Once every seat holds its left fork, each waits for a fork that its
    // neighbour holds and will not put down until it eats: a cycle.

    pub fn eat_left_first(&self, seat: usize, meals: u64) {
        let (left, right) = self.forks_of(seat);
        for meal in 0..meals {
            let first = self.forks[left].lock();
            if meal == 0 {
                self.meeting.wait();
            }
            let second = self.forks[right].lock();
            self.eat(seat, first, second);
        }
    }

    // 3. Fix one: a global order. Every seat takes the lower-numbered of its
    // two forks first. The seat whose forks are the last and fork 0 then
    // reaches for fork 0 first, holding nothing: the cycle cannot close. (At
    // the meeting point it never arrives while fork 0 is taken; the others
    // stop waiting for it and eat.)

    pub fn eat_lower_first(&self, seat: usize, meals: u64) {
        let (left, right) = self.forks_of(seat);
        // Fix: the lower-numbered fork first, whichever side it is on.
        let (low, high) = (left.min(right), left.max(right));
        for meal in 0..meals {
            let first = self.forks[low].lock();
            if meal == 0 {
                self.meeting.wait();
            }
            let second = self.forks[high].lock();
            self.eat(seat, first, second);
        }
    }

    // 4. Fix two: wait for the second fork only so long; if it does not
    // come, put the first one back and try again later. Seats step away for
    // different times, so they do not collide again in step (the livelock
    // lesson shows what happens when they do).

    pub fn eat_trying(&self, seat: usize, meals: u64) {
        let (left, right) = self.forks_of(seat);
        for meal in 0..meals {
            let mut tries = 0;
            loop {
                let first = self.forks[left].lock();
                if meal == 0 && tries == 0 {
                    self.meeting.wait();
                }
                // Fix: a bounded wait for the second fork...
                if let Some(second) = self.forks[right].try_lock_for(self.try_wait) {
                    self.eat(seat, first, second);
                    break;
                }
                // Fix: ...and without it, the first goes back for a while.
                drop(first);
                self.retries.fetch_add(1, Ordering::Relaxed);
                tries += 1;
                thread::sleep(self.try_wait * (seat as u32 + 1));
            }
        }
    }
}

// 5. One named thread per seat. The names are what a debugger, `top -H`,
// the detector below and the lab's watchdog show.

pub type Way = fn(&Table, usize, u64);

pub fn seat_threads(table: &Arc<Table>, way: Way, meals: u64) -> io::Result<Vec<JoinHandle<()>>> {
    (0..table.forks.len())
        .map(|seat| {
            let table = Arc::clone(table);
            thread::Builder::new().name(format!("seat {seat}")).spawn(move || way(&table, seat, meals))
        })
        .collect()
}

// 6. parking_lot's deadlock detector (its `deadlock_detection` feature):
// the cycles of threads asleep on each other's locks, by thread name. A
// long-running program calls it from a thread of its own every few seconds
// and logs what it finds; a cycle it reports never resolves.

pub fn deadlock_cycles(seats: &[JoinHandle<()>]) -> Vec<Vec<String>> {
    let name_of = |id| {
        let seat = seats.iter().find(|handle| handle.thread().id() == id);
        seat.and_then(|handle| handle.thread().name()).unwrap_or("another thread").to_string()
    };
    parking_lot::deadlock::check_deadlock()
        .iter()
        .map(|cycle| cycle.iter().map(|thread| name_of(thread.thread_id())).collect())
        .collect()
}

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
