//! A sender stops cleanly by signal, by event or by drop, and select stops it
//! at once.
//!
//! A sender sends 0, 1, 2, ... one value per tick; a receiver reads some of
//! them and then stops it, three ways, in this order. A sender process (this
//! executable started again: Python's 'spawn') writes to a pipe, and the
//! receiver ends it with SIGTERM and reaps it. A sender thread cannot be
//! killed, only asked: by a flag it checks between sleeps, or by a stop
//! channel it waits on in `select!` beside its tick. Last, a type owns the
//! thread and its `Drop` stops and joins it. The lab (src/lab.rs) times each
//! stop, checks that the owned thread is over the instant its drop returns,
//! and times three channels. The Python notes' model is the source (a
//! `Process` feeding a `Queue`, ended with `terminate()`; a `Thread` ended by
//! an `Event`); Rust adds the reaping, a wait a stop can interrupt, and a
//! stop that cannot be forgotten.
//!
//! Run:
//!
//! ```text
//! cargo run -p sender-receiver
//! cargo run --release -p sender-receiver -- --tick-ms 200 --trials 5
//! ```
//!
//! A run on 2 cores (release), without the notes it prints under the tables:
//!
//! ```text
//! sender-receiver: a sender stops cleanly by signal, by event or by drop, and
//!   select stops it at once
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  tick_ms=50 values=10 trials=3 messages=2000000 capacity=1024
//!
//! stopping a sender after it sent its values
//! experiment          runs  in order  stop median  stop max
//!                     runs      runs           ms        ms
//! process, SIGTERM       1         1        0.442     0.442
//! thread, flag           3         3         50.2      50.3
//! thread, select         3         3        0.103     0.105
//! owned thread, drop     3         3        0.104     0.113
//!
//! threads of this process (/proc/self/task)
//! experiment           before  running  after drop
//!                     threads  threads     threads
//! owned thread, drop        2        3           2
//!
//! channel throughput, one producer thread to one consumer thread
//! experiment                     throughput  time
//!                              M messages/s    ms
//! crossbeam bounded(1024)              8.28   242
//! crossbeam unbounded                  19.8   101
//! std mpsc sync_channel(1024)          40.4  49.5
//!
//! ✔ in-order  every receiver read 0 to 9 in order, in every run: runs in order:
//!   process 1/1, flag 3/3, select 3/3, owned 3/3
//! ✔ sigterm  the sender process was reaped, and SIGTERM is what ended it: wait
//!   returned "signal: 15 (SIGTERM)" 0.44 ms after SIGTERM; pid 19640 is no longer
//!   a child of this process
//! ✔ select-stops-sooner  select stops a sender at least 3x sooner than a flag
//!   checked between sleeps: median of 3 paired trials 490x (flag/select ms:
//!   50.24/0.090, 50.26/0.105, 50.22/0.103); bare wake-up 0.046 ms
//! ✔ drop-joins  dropping the owner stopped and joined its thread: the thread was
//!   over the instant the drop returned, in every trial: the thread's end of its
//!   channel was gone when the drop returned in 3 of 3 drops (drop took 0.104,
//!   0.100, 0.113 ms); threads: 2 before, 3 running, 2 after
//!
//! elapsed 5.14 s
//! ```
//!
//! The stop times (but the flag's, near one tick), the pid and the
//! throughputs vary between runs; the order of the values and the drops
//! finding their thread over do not.
//!
//! See also: `daemon-workers` (workers that stop when their queue closes),
//! `fork-vs-spawn` (the ways to start a child process).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, select};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

// A sender process, stopped by a signal.
//
// Two processes share no memory, so the values travel through a pipe made
// of the sender's stdout (Python's `multiprocessing.Queue` is a pipe too).

/// A sender process and the receiving end of its pipe.
struct SenderProcess {
    child: Child,
    values: Receiver<u64>,
    reader: JoinHandle<()>,
}

impl SenderProcess {
    /// Starts this executable again as `--child-role sender TICK_MS`, its
    /// stdout a pipe to this process. A pipe's read has no timeout, so a
    /// thread reads it and passes each value on through a channel, which has
    /// one; it ends at the end of the pipe or at a line that is no number.
    fn start(tick: Duration) -> std::io::Result<SenderProcess> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--child-role", "sender", &tick.as_millis().to_string()])
            .stdout(Stdio::piped())
            .spawn()?;
        let pipe = child.stdout.take().expect("stdout is piped");
        let (tx, values) = crossbeam_channel::unbounded();
        // `Builder::spawn` returns an error where `thread::spawn` would
        // panic (no room for one more thread). The process is running by
        // then: kill and reap it before giving up, or it would outlive us.
        let reader = thread::Builder::new().name("pipe reader".into()).spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Some(value) = line.ok().and_then(|l| l.trim().parse().ok()) else { return };
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        match reader {
            Ok(reader) => Ok(SenderProcess { child, values, reader }),
            Err(no_thread) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(no_thread)
            }
        }
    }

    /// Sends SIGTERM and reaps the process: Python's `terminate()` and
    /// `join()`. SIGTERM's default action ends a process that has not
    /// arranged otherwise, and unlike SIGKILL it can be caught, so a sender
    /// that wanted to could finish its line and exit. Reaping (`wait`)
    /// collects the exit status; until then the dead process stays in the
    /// process table as a zombie. One that still runs after `grace` gets
    /// SIGKILL, which cannot be caught.
    fn terminate(mut self, grace: Duration) -> std::io::Result<ExitStatus> {
        let pid = Pid::from_raw(self.child.id() as i32);
        kill(pid, Signal::SIGTERM)?;
        // `wait` has no timeout, but the pipe tells when the sender is gone:
        // its end closes when it dies, the reader thread then ends, and so
        // does the channel of values. Waiting for that can have a timeout.
        let deadline = Instant::now() + grace;
        loop {
            match self.values.recv_deadline(deadline) {
                Ok(_late_value) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = kill(pid, Signal::SIGKILL);
                    break;
                }
            }
        }
        let status = self.child.wait()?;
        self.reader.join().expect("the pipe reader does not panic");
        Ok(status)
    }
}

/// The sender process's `main`: `--child-role sender TICK_MS`.
fn child_main(role: &str, args: &[String]) -> std::io::Result<()> {
    let tick = args.first().and_then(|ms| ms.parse().ok()).map(Duration::from_millis);
    let ("sender", Some(tick)) = (role, tick) else {
        let message = format!("unknown child role {role} {args:?}");
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, message));
    };
    // Writes 0, 1, 2, ... to stdout, one line per tick, forever: only a
    // signal stops it (or the receiver closing the pipe, which makes a write
    // fail). Nothing here has to prepare for SIGTERM: its default action
    // ends the process.
    let mut out = std::io::stdout().lock();
    for value in 0u64.. {
        // Flushed at once, so the receiver sees each value when it is sent,
        // not when a buffer fills.
        if writeln!(out, "{value}").and_then(|()| out.flush()).is_err() {
            return Ok(());
        }
        thread::sleep(tick);
    }
    Ok(())
}

// A sender thread, stopped by an event.
//
// A thread cannot be killed from outside (Python's `Thread` has no
// `terminate()` either): it has to be asked to stop, and it stops when it
// next looks. Where it looks makes the difference. Both senders send on an
// unbounded channel, like Python's `Queue()`: a send never blocks, so the
// only place a sender waits is its tick.

/// The Python notes' way: check a flag, send, sleep a tick, check again. A
/// stop set during the sleep is seen only when the sleep ends: up to a tick
/// later, and a full tick when the receiver stops right after a value.
fn send_until_flag(values: &Sender<u64>, exit: &AtomicBool, tick: Duration) {
    for value in 0u64.. {
        // Relaxed is enough: the flag publishes no other data, and `join`
        // orders everything the thread did before the receiver goes on.
        if exit.load(Ordering::Relaxed) || values.send(value).is_err() {
            return;
        }
        thread::sleep(tick);
    }
}

/// The fix: wait for the tick and the stop at once. `select!` blocks until the
/// stop channel is ready or the tick is over, so a stop wakes the thread
/// mid-wait. The stop channel is ready when a message arrives and also when
/// every sender of it is gone (disconnected), which `Ticker` below uses.
/// With one channel and a timer, `stop.recv_timeout(tick)` says the same;
/// `select!` scales to more.
fn send_until_stopped(values: &Sender<u64>, stop: &Receiver<()>, tick: Duration) {
    for value in 0u64.. {
        if values.send(value).is_err() {
            return;
        }
        // Fix: the wait itself watches the stop channel, instead of `sleep`.
        select! {
            recv(stop) -> _ => return,
            default(tick) => {}
        }
    }
}

/// Starts a sender thread stopped by a flag; the receiver sets the flag and
/// joins the thread. A thread that cannot be started is an error (see
/// `SenderProcess::start`); nothing is running then.
fn start_flag_sender(tick: Duration) -> std::io::Result<(Receiver<u64>, impl FnOnce())> {
    let (tx, values) = crossbeam_channel::unbounded();
    let exit = Arc::new(AtomicBool::new(false));
    let sender = thread::Builder::new().name("flag sender".into()).spawn({
        let exit = Arc::clone(&exit);
        move || send_until_flag(&tx, &exit, tick)
    })?;
    let stop = move || {
        exit.store(true, Ordering::Relaxed);
        sender.join().expect("the sender thread does not panic");
    };
    Ok((values, stop))
}

/// Starts a sender thread stopped by a message; the receiver sends it and
/// joins the thread.
fn start_select_sender(tick: Duration) -> std::io::Result<(Receiver<u64>, impl FnOnce())> {
    let (tx, values) = crossbeam_channel::unbounded();
    // Fix: a stop channel instead of a flag; `bounded(1)` holds the one stop.
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
    let sender = thread::Builder::new()
        .name("select sender".into())
        .spawn(move || send_until_stopped(&tx, &stop_rx, tick))?;
    let stop = move || {
        let _ = stop_tx.send(());
        sender.join().expect("the sender thread does not panic");
    };
    Ok((values, stop))
}

// A type that owns its sender thread, stopped by drop.

/// A sender thread that lives exactly as long as this value: Python's "classy
/// way", with the stop and the join in `Drop`, so no path (an early return, a
/// `?`, a panic) can forget them.
struct Ticker {
    /// What the thread sends: 0, 1, 2, ...
    values: Receiver<u64>,
    /// Never carries a message: dropping it disconnects the stop channel,
    /// which wakes the thread's `select!`.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts a thread that sends 0, 1, 2, ... one per tick.
    fn start(tick: Duration) -> std::io::Result<Ticker> {
        let (tx, values) = crossbeam_channel::unbounded();
        let (stop, stop_rx) = crossbeam_channel::bounded(0);
        let thread = thread::Builder::new()
            .name("ticker".into())
            .spawn(move || send_until_stopped(&tx, &stop_rx, tick))?;
        Ok(Ticker { values, stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Ticker {
    /// Stops the thread and waits for it: when the drop returns, the thread
    /// has finished. A drop that only signalled would leave it running,
    /// detached, to be cut off wherever it is when `main` returns.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
