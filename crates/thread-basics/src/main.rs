//! Threads start three ways, `join` gives back each one's result (or the
//! panic that ended it), and two orders that wait take one wait on two
//! threads, not two.
//!
//! The lesson starts a thread each way the Python notes do, in Rust: a
//! closure given to `thread::spawn` (Python's `Thread(target=...)`), a type
//! that owns what it needs and has a `run` method (the `Thread` subclass,
//! without inheritance), and `thread::Builder`, which names the thread, sets
//! its stack and returns an `io::Result` instead of panicking. Scoped threads
//! borrow what they need from the caller, so nothing is copied in as Python's
//! `args=` tuple is. Its lab (src/lab.rs) joins every thread and checks what
//! came back, including the `Err` of a thread that panicked; reads
//! `/proc/self/task/*/comm` while the named threads are alive; and times two
//! orders, each on its own thread and both on one thread, first orders that
//! wait, then orders that compute. It mirrors the notes that process orders
//! 10 and 20 on two threads: about one second for both when each sleeps one
//! second, about twice one order's time when each counts to 100 million
//! (the GIL lets one thread compute at a time; Rust has no GIL, so the
//! computing orders overlap too, if two cores are free).
//!
//! Run:
//!
//! ```text
//! cargo run -p thread-basics
//! cargo run --release -p thread-basics -- --wait-ms 1000 --work-ms 500
//! ```
//!
//! A run on 2 cores (release):
//!
//! ```text
//! thread-basics: threads start three ways, join gives back each one's result, and
//!   two waiting threads take one wait, not two
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  wait_ms=200 work_ms=200 stack_kib=256
//!
//! each way of starting a thread, joined
//! experiment        threads  returned      Err    named  seen by name
//!                   threads   threads  threads  threads       threads
//! closure                 1         1        0        -             -
//! type with run           1         1        0        -             -
//! Builder, named          2         2        0        2             2
//! scoped                  2         2        0        -             -
//! closure, order 0        1         0        1        -             -
//!
//! two orders, each on its own thread or both on this one
//! experiment          time  one order  cores used  time/one order
//!                       ms         ms       cores               x
//! waits, two threads   204        200       0.002            1.02
//! waits, one thread    400        200       0.000            2.00
//! work, two threads    245        200        1.64            1.22
//! work, one thread     401        200       0.999            2.00
//!
//! threads in /proc/self/task/*/comm: thread-basics, order-30, order-40,
//!   thread-basics, thread-basics
//! each order, and its thread's name from inside it: 10 in (unnamed), 20 in
//!   (unnamed), 30 in order-30, 40 in order-40, 50 in order-50, 60 in order-60
//! order 0's thread panicked ("there is no order 0"); its join gave Err and this
//!   thread went on
//!
//! ✔ waits-overlap  two waiting orders took at most 1.5 x one wait on two threads,
//!   at least 1.8 x on one: 204 ms (1.02 x) on two threads, 400 ms (2.00 x) on one;
//!   one wait 200 ms
//! ✔ work-needs-cores  two computing orders took at most 1.5 x one order's time on
//!   two threads: 245 ms (1.22 x) for 200 ms of CPU time each; the threads used
//!   1.64 cores
//! ✔ join-returns  every join gave back its thread's order, and the panicked
//!   thread's gave Err: 7/7 joins as expected, 1 of them Err
//! ✔ names-seen  every named thread showed under its name in /proc/self/task: 2/2
//!   seen (order-30, order-40)
//!
//! elapsed 1.45 s
//! ```
//!
//! The milliseconds and the cores used vary from run to run, a little on an
//! idle machine and more on a busy one; the counts of threads and the names
//! do not.
//!
//! See also: `race-condition` (threads that share a counter without a lock),
//! `cpu-bound` (computing threads and cores, at length), `io-bound` (waiting
//! threads against a slow server), `daemon-workers` (threads that take work
//! from a queue).

use std::any::Any;
use std::io;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What a thread gives back when it has processed an order: the order's id,
/// and the name of the thread that did it, as that thread saw itself.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Processed {
    order_id: u32,
    thread_name: Option<String>,
}

/// One order's work, as in the Python notes: wait (for a payment service, a
/// database), then report. There is no order 0: a thread given it panics,
/// as a Python thread would raise, before it waits.
fn process_order(order_id: u32, wait: Duration) -> Processed {
    if order_id == 0 {
        panic!("there is no order 0");
    }
    thread::sleep(wait);
    Processed { order_id, thread_name: thread::current().name().map(String::from) }
}

// The first way: a closure given to `thread::spawn`, Python's
// `Thread(target=process_order, args=(10,))`. The thread may outlive the
// function that started it, so the closure must own all it uses: `move`
// hands it `order_id` and `wait` (both are copied; a `String` would be
// moved in and be gone from here). `spawn` returns at once with a handle;
// the order is processed while the caller goes on.
//
// `thread::spawn` panics if the system refuses a thread (no memory for its
// stack, a limit on threads). That is fine for a small program; the third
// way returns the error instead.
fn start_with_closure(order_id: u32, wait: Duration) -> JoinHandle<Processed> {
    thread::spawn(move || process_order(order_id, wait))
}

// The second way: Python subclasses `Thread` and overrides `run`. Rust has
// no inheritance and needs none: a type holds what the thread will need, its
// `run` does the work, and `start` moves the whole value into a thread that
// calls `run`. Once started, the value belongs to the thread; the caller
// keeps only the handle.
struct OrderProcessing {
    order_id: u32,
    wait: Duration,
}

impl OrderProcessing {
    fn run(self) -> Processed {
        process_order(self.order_id, self.wait)
    }

    fn start(self) -> JoinHandle<Processed> {
        thread::spawn(move || self.run())
    }
}

// The third way: `thread::Builder` sets what `spawn` leaves to defaults.
// A name, `order-30`, is what `top -H`, `ps -L`, a debugger and a panic
// message show for the thread (Linux keeps the first 15 bytes), instead of
// the program's name for every thread. A stack size: 2 MiB by default (the
// `RUST_MIN_STACK` variable changes it), address space reserved, not
// memory used, until the thread needs it.
// And `spawn` returns an `io::Result`: a thread the system refuses is an
// error the caller can handle, not a panic. `process` is what the thread
// does with its order; the caller chooses it.
fn start_named_order<T: Send + 'static>(
    order_id: u32,
    stack_bytes: usize,
    process: impl FnOnce(u32) -> T + Send + 'static,
) -> io::Result<JoinHandle<T>> {
    thread::Builder::new()
        .name(format!("order-{order_id}"))
        .stack_size(stack_bytes)
        .spawn(move || process(order_id))
}

// What `join` gives back. `join` waits for the thread to end and returns
// what its closure returned, `Ok(value)`: no shared variable to fill in, no
// queue. If the thread panicked, `join` returns `Err` with the panic's
// payload, and the thread that joins it goes on. Python prints the exception
// and its `join` returns `None` either way: the caller cannot tell.
fn joined<T>(result: thread::Result<T>) -> Result<T, String> {
    result.map_err(|payload| panic_message(&*payload))
}

/// The text a panic carried: `panic!("literal")` carries a `&str`,
/// `panic!("{formatted}")` a `String`; anything else is named as such.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic that carried no text".to_string()
    }
}

// Scoped threads: `thread::scope` returns only when every thread started in
// it has ended. So a scoped thread may borrow from the caller, here the
// order ids and `process` (with whatever it borrows in turn), where
// `thread::spawn` needs `move` and `'static`, and Python copies `args=`
// into each thread. Each order gets a named thread of its own, so both
// orders wait (or compute) at once; the results come back in the order of
// the ids, whichever thread finishes first.
//
// If a thread cannot start, `?` leaves the scope, which still joins the
// threads already started: none is left running behind the error.
fn each_order_on_its_own_thread<T: Send>(
    order_ids: &[u32],
    process: impl Fn(u32) -> T + Sync,
) -> io::Result<Vec<Result<T, String>>> {
    let process = &process;
    thread::scope(|scope| {
        let mut threads = Vec::new();
        for order_id in order_ids {
            let thread = thread::Builder::new()
                .name(format!("order-{order_id}"))
                .spawn_scoped(scope, move || process(*order_id))?;
            threads.push(thread);
        }
        Ok(threads.into_iter().map(|thread| joined(thread.join())).collect())
    })
}

// The same orders without threads: each starts when the one before it has
// ended, so their times add up, whether they wait or compute.
fn each_order_in_turn<T>(order_ids: &[u32], process: impl Fn(u32) -> T) -> Vec<T> {
    order_ids.iter().map(|order_id| process(*order_id)).collect()
}

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
