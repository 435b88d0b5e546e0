//! A wait on a condition variable must check its condition again after
//! every wake-up, in a loop; `notify_one` can wake the wrong waiter; and a
//! condition set without the lock loses its wake-up.
//!
//! The Python notes list the condition variable among the tools that keep
//! threads in step: threads wait until a condition is met; another thread
//! notifies them. The lab (src/lab.rs) runs each problem beside its fix:
//! consumers waiting with `if`, then `while`, on a queue of one item; two
//! customers waiting on one condition variable for different numbers, one
//! called with `notify_one`, then `notify_all`; a flag set without, then
//! under, the lock while its waiter is between check and wait. Every wait
//! has a deadline, so a lost wake-up shows, never hangs. In the last two
//! the lab makes the unlucky interleaving certain; its notes say how.
//!
//! Run:
//!
//! ```text
//! cargo run -p condition-variable
//! cargo run --release -p condition-variable -- --consumers 4 --trials 50
//! ```
//!
//! A run on 2 cores (release), without the notes it prints under the tables:
//!
//! ```text
//! condition-variable: a wait must recheck its condition in a loop; notify_one can
//!   wake the wrong waiter; setting the condition without the lock loses a wake-up
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  consumers=2 capacity=1 items=1000 trials=20 wait_trials=5
//!         patience_ms=100 window_ms=20
//!
//! a producer and 2 consumers, a queue of 1, 20 trials of 1000 items
//! experiment       items  delivered once  woke to empty  took nothing
//!                  items           items         trials       results
//! if, checks once  20000           20000             20          4275
//! while, rechecks  20000           20000             20             0
//!
//! a thread waits until its condition is made true; 5 trials each
//! experiment     trials    woke  slept through  unclear  woke in vain  in window
//!                trials  trials         trials   trials        trials     trials
//! notify_one          5       0              5        0             5          -
//! notify_all          5       5              0        0             5          -
//! flag, no lock       5       0              5        0             -          5
//! flag, locked        5       5              0        0             -          5
//!
//! ✔ while-delivers-all  with while, every item was taken exactly once and no take
//!   came back empty: 20000/20000 items taken once in 20 trials, 0 empty takes;
//!   5508 wake-ups found the queue empty and waited again
//! ✔ if-wakes-empty  with if, a consumer woke to an empty queue and took nothing:
//!   4275 empty takes, in 20/20 trials; 4275 wake-ups found the queue empty
//! ✔ notify-one-stalls  with notify_one, the customer called slept through its
//!   call: customer 1 slept through 5 of 5 calls, woke for 0; 0 unclear
//! ✔ notify-all-delivers  with notify_all, the customer called woke every time:
//!   customer 1 woke for 5 of 5 calls, slept through 0; 0 unclear
//! ✔ unlocked-set-loses  a flag set without the lock lost its wake-up: the waiter
//!   slept through 5 of 5 flags set, woke for 0; 0 unclear
//! ✔ locked-set-delivers  a flag set under the lock woke its waiter every time: the
//!   waiter woke for 5 of 5 flags set, slept through 0; 0 unclear
//!
//! elapsed 1.61 s
//! ```
//!
//! The empty takes and wake-ups vary from run to run; the items delivered
//! and how the waits ended do not (a busy machine may leave some unclear).
//!
//! See also: `daemon-workers` (a queue's join on a condition variable),
//! `lock-fix` (the lock a condition variable waits with).

use std::collections::VecDeque;
use std::time::{Duration, Instant};
use std::{io, thread};

// Loom's types under `--cfg loom`: its model (in the lab) checks this code.
#[cfg(loom)]
use loom::sync::{Condvar, Mutex, atomic::AtomicBool};
use std::sync::atomic::Ordering;
#[cfg(not(loom))]
use std::sync::{Condvar, Mutex, atomic::AtomicBool};

// 1. A queue between a producer and consumers: `if` against `while`.

/// A bounded queue, with a condition variable per kind of waiter: consumers
/// wait on `not_empty` for an item, the producer on `not_full` for room.
struct Queue {
    state: Mutex<QueueState>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<u64>,
    /// The producer is done: a consumer that finds no item stops.
    closed: bool,
    /// Times the `while` version woke, found nothing and waited again.
    woke_empty: u64,
}

/// What a take gives back; `Nothing` ("woken, yet no item") only with `if`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    Item(u64),
    Closed,
    Nothing,
}

impl Queue {
    fn new(capacity: usize) -> Self {
        Queue { state: Mutex::default(), not_empty: Condvar::new(), not_full: Condvar::new(), capacity }
    }

    fn put(&self, item: u64) {
        let mut state = self.state.lock().unwrap();
        while state.items.len() >= self.capacity {
            state = self.not_full.wait(state).unwrap();
        }
        state.items.push_back(item);
        // One wake-up is enough: every consumer waits for the same thing.
        self.not_empty.notify_one();
    }

    fn close(&self) {
        self.state.lock().unwrap().closed = true;
        // Every waiting consumer must hear this one: each of them stops.
        self.not_empty.notify_all();
    }

    /// The problem: check, wait once, take, trusting the wake-up to mean an
    /// item. Between the notify and this thread getting the lock back, a
    /// consumer that was not waiting can take it; and a wake-up may come
    /// for no reason at all (a spurious one).
    fn take_checking_once(&self) -> Taken {
        let mut state = self.state.lock().unwrap();
        if state.items.is_empty() && !state.closed {
            state = self.not_empty.wait(state).unwrap();
        }
        self.pop(&mut state)
    }

    /// The fix: check again after every wake-up, and wait again while there
    /// is nothing to take. (`Condvar::wait_while` is this loop, written once.)
    fn take_rechecking(&self) -> Taken {
        let mut state = self.state.lock().unwrap();
        // Fix: `while`, not `if`: a wake-up is a hint to look, not an item.
        while state.items.is_empty() && !state.closed {
            state = self.not_empty.wait(state).unwrap();
            state.woke_empty += u64::from(state.items.is_empty() && !state.closed);
        }
        self.pop(&mut state)
    }

    fn pop(&self, state: &mut QueueState) -> Taken {
        match state.items.pop_front() {
            Some(item) => {
                // Room for one more: wake the producer if it waits for it.
                self.not_full.notify_one();
                Taken::Item(item)
            }
            None if state.closed => Taken::Closed,
            None => Taken::Nothing,
        }
    }
}

type Take = fn(&Queue) -> Taken;
type Consumed = (Vec<u64>, u64);

/// A consumer: takes until the queue closes. Returns items, empty takes.
fn consume(queue: &Queue, take: Take) -> Consumed {
    let (mut items, mut nothing) = (Vec::new(), 0);
    loop {
        match take(queue) {
            Taken::Item(item) => items.push(item),
            Taken::Closed => return (items, nothing),
            // Python's `pop(0)` raises IndexError here; counted, and retried.
            Taken::Nothing => nothing += 1,
        }
    }
}

/// The producer (this thread) puts `0..items` through `queue`; `consumers`
/// threads take them. If one cannot start, the queue closes before the
/// error returns, so the others stop and the scope can join them.
fn produce_and_consume(queue: &Queue, items: u64, consumers: usize, take: Take) -> io::Result<Vec<Consumed>> {
    thread::scope(|scope| {
        let consumer =
            || thread::Builder::new().name("consumer".into()).spawn_scoped(scope, || consume(queue, take));
        let started: io::Result<Vec<_>> = (0..consumers).map(|_| consumer()).collect();
        if started.is_ok() {
            (0..items).for_each(|item| queue.put(item));
        }
        queue.close();
        Ok(started?.into_iter().map(|consumer| consumer.join().expect("consumers do not panic")).collect())
    })
}

/// How a wait with a deadline ended. Parts 2 and 3 wait so: a lost
/// wake-up then shows, as a wait that ran out with its condition true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waited {
    /// The condition held, after `in_vain` wake-ups that found it false.
    Done { in_vain: u32 },
    /// The wait begun `since` ran out with the condition true: the notify
    /// for this thread woke another one, or none.
    SleptThrough { since: Instant },
    /// The wait ran out with the condition still false.
    GaveUp,
}

/// Waits until `ready`, each wait `patience` at most. `before_wait` runs,
/// the lock held, just before each wait: the lab's hook (part 3's).
fn wait_until<T>(
    lock: &Mutex<T>,
    changed: &Condvar,
    ready: impl Fn(&T) -> bool,
    patience: Duration,
    mut before_wait: impl FnMut(),
) -> Waited {
    let (mut value, mut in_vain) = (lock.lock().unwrap(), 0);
    while !ready(&value) {
        before_wait();
        let since = Instant::now();
        let (guard, wait) = changed.wait_timeout(value, patience).unwrap();
        value = guard;
        if wait.timed_out() {
            return if ready(&value) { Waited::SleptThrough { since } } else { Waited::GaveUp };
        }
        in_vain += u32::from(!ready(&value));
    }
    Waited::Done { in_vain }
}

// 2. Waiters that wait for different things, on one condition variable.

/// A deli counter: the number served, and one bell (condition variable)
/// every customer waits on (`wait_until`) until its ticket is served.
#[derive(Default)]
struct Counter {
    serving: Mutex<usize>,
    bell: Condvar,
}

impl Counter {
    /// The problem: `notify_one` wakes one customer, not necessarily the one
    /// called, who finds it is not its number and sleeps again; the one
    /// called sleeps on. Returns when the bell had rung.
    fn call_ringing_once(&self, ticket: usize) -> Instant {
        *self.serving.lock().unwrap() = ticket;
        self.bell.notify_one();
        Instant::now()
    }

    /// The fix: every customer wakes and checks the number. (The other fix:
    /// a condition variable per kind of waiter, as the queue has.)
    fn call_ringing_for_all(&self, ticket: usize) -> Instant {
        *self.serving.lock().unwrap() = ticket;
        // Fix: `notify_all`, not `notify_one`.
        self.bell.notify_all();
        Instant::now()
    }
}

// 3. A condition set without the lock.

/// A flag a thread waits for; atomic, so no data race without the lock.
#[derive(Default)]
struct Flag {
    lock: Mutex<()>,
    set: AtomicBool,
    changed: Condvar,
}

impl Flag {
    /// The problem: the waiter holds the lock from its check to its wait; a
    /// setter without it can store and notify in between, while nobody is
    /// asleep yet. The waiter then sleeps through a set flag.
    fn set_without_lock(&self) -> Instant {
        self.set.store(true, Ordering::SeqCst);
        self.changed.notify_one();
        Instant::now()
    }

    /// The fix: the same under the lock, which guards that gap, not the flag:
    /// the store lands before the waiter's check or once it is asleep.
    fn set_under_lock(&self) -> Instant {
        // Fix: hold the lock while setting the flag.
        let _held = self.lock.lock().unwrap();
        self.set_without_lock()
    }

    fn wait(&self, patience: Duration, before_wait: impl FnMut()) -> Waited {
        wait_until(&self.lock, &self.changed, |_| self.set.load(Ordering::SeqCst), patience, before_wait)
    }
}

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
