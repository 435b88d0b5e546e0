//! A sender stops cleanly by signal, by event or by drop, and select stops it at once.
//!
//! A sender sends 0, 1, 2, ... one value per tick; a receiver reads ten of
//! them and then stops it, three ways. Experiment 1 runs the sender in a child
//! process (this executable started again: Python's 'spawn'), whose stdout is
//! a pipe to the parent; the parent ends it with SIGTERM and reaps it. In
//! experiment 2 the sender is a thread, which cannot be killed, only asked:
//! (a) by a flag it checks between sleeps, and (b) by a stop channel it waits
//! on in `select!` beside its tick; each stop is timed from the request to
//! `join` returning. In experiment 3 a type owns the thread and its `Drop`
//! stops and joins it; `/proc/self/task` counts the threads before, during and
//! after. Last, one producer thread and one consumer thread time three
//! channels. The Python notes' sender-receiver model is the source: a
//! background `Process` feeding a `Queue` and ended with `terminate()`, a
//! `Thread` ended by an `Event` it checks between sleeps, and a class that
//! starts its sender when it is made. Rust adds the reaping the notes leave
//! out, a wait that a stop can interrupt, and a stop that cannot be forgotten.
//!
//! Run:
//!
//! ```text
//! cargo run -p sender-receiver
//! cargo run --release -p sender-receiver -- --tick-ms 200 --trials 5
//! cargo run -p sender-receiver -- --help
//! ```
//!
//! A run on 2 cores (release):
//!
//! ```text
//! sender-receiver: a sender stops cleanly by signal, by event or by drop, and select stops it at once
//! host    cores=2 os=linux profile=release
//! params  tick_ms=50 values=10 trials=3 messages=2000000 capacity=1024
//!
//! stopping a sender after it sent its values
//! experiment            runs  in order  stop median  stop max
//!                                 runs           ms        ms
//! 1 process, SIGTERM       1         1        0.422     0.422
//! 2a thread, flag          3         3         50.1      50.2
//! 2b thread, select        3         3        0.114     0.121
//! 3 owned thread, drop     1         1        0.168     0.168
//!
//! threads of this process (/proc/self/task)
//! experiment             before  running  after drop
//!                       threads  threads     threads
//! 3 owned thread, drop        2        3           2
//!
//! channel throughput, one producer thread to one consumer thread
//! experiment                   messages/s  time
//!                                millions    ms
//! crossbeam bounded(1024)            8.48   236
//! crossbeam unbounded                7.66   261
//! std mpsc sync_channel(1024)        8.75   229
//!
//! stop: from the request (SIGTERM, flag, stop message, drop) to the sender reaped or joined.
//! The flag's stop took 1.00 ticks: the sender saw it only when its sleep was over.
//! std mpsc is sync_channel(capacity), bounded like crossbeam's bounded(capacity). Throughput moves with the machine's load, and under load the order changed from run to run: no ranking is claimed.
//!
//! ✔ in-order  every receiver read 0 to 9 in order, in every run: runs in order: process 1/1, flag 3/3, select 3/3, owned 1/1
//! ✔ sigterm  the sender process was reaped, and SIGTERM is what ended it: wait returned "signal: 15 (SIGTERM)" 0.42 ms after SIGTERM; pid 26954 is no longer a child of this process
//! ✔ select-stops-sooner  select stops a sender at least 3x sooner than a flag checked between sleeps: median stop 50.13 ms (flag) vs 0.114 ms (select): 439x
//! ✔ drop-joins  dropping the owner stopped and joined its thread: its channel was closed when the drop returned, and the thread count went back down: channel closed when the drop returned; threads: 2 before, 3 running, 2 after
//!
//! elapsed 4.50 s
//! ```
//!
//! What varies between runs: the stop times of select, drop and SIGTERM
//! (tenths of a millisecond on a quiet machine, up to a few milliseconds on a
//! busy one) and the throughputs, whose order changes from run to run; the
//! flag's stop stays near one tick, and the values always arrive in order.
//!
//! See also: `daemon-workers` (workers that stop when their queue closes),
//! `condition-variable` (waking a thread that waits), `fork-vs-spawn` (the
//! ways to start a child process).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use common::cli::{CommonArgs, finish, parse};
use common::measure::median_secs;
use common::{Claim, Report};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, select};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A sender stops cleanly by signal (a process), by event (a thread) or by
/// drop (a type that owns its thread); select stops it at once.
#[derive(Parser, Debug)]
#[command(name = "sender-receiver", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Milliseconds between two values from a sender.
    #[arg(long, value_name = "MS", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    tick_ms: u64,

    /// Values the receiver reads from each sender before it stops it [default: 10, 3 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100))]
    values: Option<u64>,

    /// Trials of each thread sender (flag and select); stop latencies are medians over them.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    trials: u32,

    /// Messages through each channel in the throughput test [default: 2000000, 100000 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    messages: Option<u64>,
}

/// The child role in which this executable is the sender process of experiment 1.
const SENDER_ROLE: &str = "sender";

/// How long the sender process has to die after SIGTERM before it gets SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// The margin of the latency claim: select stops a sender at least this many
/// times sooner than the flag (why 3: see the claim in `run`).
const SOONER: f64 = 3.0;

/// The capacity of the bounded channels in the throughput test: room for a
/// burst, so the producer rarely waits for the consumer, as in real use.
const CAPACITY: usize = 1024;

fn main() -> ExitCode {
    // A child checks its role before anything else. It must not call `parse`,
    // whose Ctrl-C clean-up blocks SIGTERM: the signal that is to stop it.
    if let Some(code) = common::child::play_role(be_the_sender) {
        return code;
    }
    let args: Args = parse();
    common::cleanup::install();
    finish(&args.common, run(&args))
}

fn run(args: &Args) -> anyhow::Result<Report> {
    // The Python notes tick every 0.5 s; 50 ms shows the same ten times
    // sooner. --quick reads fewer values rather than ticking faster: a tick
    // must stay well above a thread's wake-up time on a busy machine (see the
    // select claim), and the wait for the values is most of the run.
    let tick_ms = args.tick_ms;
    let tick = Duration::from_millis(tick_ms);
    let count = args.values.unwrap_or(args.common.pick(10, 3));
    let messages = args.messages.unwrap_or(args.common.pick(2_000_000, 100_000));
    let mut report = common::lesson_report!();
    report
        .param("tick_ms", tick_ms)
        .param("values", count)
        .param("trials", args.trials)
        .param("messages", messages)
        .param("capacity", CAPACITY);

    let process = sender_process_stopped_by_sigterm(tick, count).context("experiment 1, a sender process")?;
    let mut flag = Vec::new();
    let mut select = Vec::new();
    for _ in 0..args.trials {
        flag.push(sender_thread_stopped_by_flag(tick, count).context("experiment 2a, a flag")?);
        select.push(sender_thread_stopped_by_select(tick, count).context("experiment 2b, select")?);
    }
    let (owned, threads) = owned_sender_stopped_by_drop(tick, count).context("experiment 3, drop")?;

    report.table("stopping a sender after it sent its values");
    // Each experiment: its row in the table, a short name for the evidence, its runs.
    let experiments = [
        ("1 process, SIGTERM", "process", std::slice::from_ref(&process.stopped)),
        ("2a thread, flag", "flag", &flag[..]),
        ("2b thread, select", "select", &select[..]),
        ("3 owned thread, drop", "owned", std::slice::from_ref(&owned)),
    ];
    let (mut all_in_order, mut in_order_evidence, mut medians_ms) = (true, Vec::new(), Vec::new());
    for (experiment, short, runs) in experiments {
        let in_order = runs.iter().filter(|r| r.values.iter().copied().eq(0..count)).count();
        all_in_order &= in_order == runs.len();
        in_order_evidence.push(format!("{short} {in_order}/{}", runs.len()));
        let latencies: Vec<Duration> = runs.iter().map(|r| r.latency).collect();
        medians_ms.push(median_secs(&latencies) * 1e3);
        report.figure(experiment, "runs", runs.len(), "");
        report.figure(experiment, "in order", in_order, "runs");
        report.figure(experiment, "stop median", medians_ms[medians_ms.len() - 1], "ms");
        if short == "select" {
            report.key();
        }
        report.figure(experiment, "stop max", latencies.iter().max().unwrap().as_secs_f64() * 1e3, "ms");
    }
    report.note("stop: from the request (SIGTERM, flag, stop message, drop) to the sender reaped or joined.");
    report.note(format!(
        "The flag's stop took {:.2} ticks: the sender saw it only when its sleep was over.",
        medians_ms[1] / (tick.as_secs_f64() * 1e3)
    ));
    report.claim(Claim::check(
        "in-order",
        format!("every receiver read 0 to {} in order, in every run", count - 1),
        all_in_order,
        format!("runs in order: {}", in_order_evidence.join(", ")),
    ));

    // Reaped: `wait` returned the status, and the pid is no longer a child
    // of this process (a zombie would still be one).
    let still_a_child = common::cleanup::children_of(std::process::id()).contains(&process.pid);
    report.claim(Claim::check(
        "sigterm",
        "the sender process was reaped, and SIGTERM is what ended it",
        process.status.signal() == Some(Signal::SIGTERM as i32) && !still_a_child,
        format!(
            "wait returned \"{}\" {:.2} ms after SIGTERM; pid {} is {} a child of this process",
            process.status,
            medians_ms[0],
            process.pid,
            if still_a_child { "still" } else { "no longer" },
        ),
    ));

    // The flag's stop waits out the rest of the sender's sleep: nearly a
    // whole tick, as the receiver stops right after a value, when the sender
    // has just begun to sleep. Select's stop is one thread wake-up. On 2 cores
    // with two spinning processes (and other builds), 72 runs in debug and
    // release, default and --quick, gave 290x or more (select medians under
    // 0.2 ms); with four spinning processes, 60 --quick runs gave 7x and up:
    // under that much load a woken thread can wait 4 to 12 ms for a core.
    // 3x keeps room for that. A tick of a few ms is no longer than such a
    // wait, and then the claim can fail (--tick-ms 1 under load: 1x).
    let (flag_ms, select_ms) = (medians_ms[1], medians_ms[2]);
    report.claim(Claim::check(
        "select-stops-sooner",
        format!("select stops a sender at least {SOONER}x sooner than a flag checked between sleeps"),
        flag_ms >= SOONER * select_ms,
        format!(
            "median stop {flag_ms:.2} ms (flag) vs {select_ms:.3} ms (select): {:.0}x",
            flag_ms / select_ms
        ),
    ));

    report.table("threads of this process (/proc/self/task)");
    let ThreadCounts { before, running, after, .. } = threads;
    report.figure("3 owned thread, drop", "before", before, "threads");
    report.figure("3 owned thread, drop", "running", running, "threads");
    report.figure("3 owned thread, drop", "after drop", after, "threads");
    report.claim(Claim::check(
        "drop-joins",
        "dropping the owner stopped and joined its thread: its channel was closed when the drop \
         returned, and the thread count went back down",
        threads.closed_at_drop && running == before + 1 && after == before,
        format!(
            "channel {} when the drop returned; threads: {before} before, {running} running, {after} after",
            if threads.closed_at_drop { "closed" } else { "still open" },
        ),
    ));

    report.table("channel throughput, one producer thread to one consumer thread");
    for (channel, elapsed) in channel_throughputs(messages)? {
        report.figure(&channel, "messages/s", messages as f64 / elapsed.as_secs_f64() / 1e6, "millions");
        report.figure(&channel, "time", elapsed.as_secs_f64() * 1e3, "ms");
    }
    report.note(
        "std mpsc is sync_channel(capacity), bounded like crossbeam's bounded(capacity). Throughput moves \
         with the machine's load, and under load the order changed from run to run: no ranking is claimed.",
    );
    Ok(report)
}

/// What stopping one sender showed.
struct Stopped {
    /// The values the receiver read, in the order it read them.
    values: Vec<u64>,
    /// From the stop request to the sender being gone (joined, or reaped).
    latency: Duration,
}

/// How long a receiver waits for one value before it calls the sender lost.
/// A value is due every tick; the rest is room for a busy machine, and for
/// the sender process to start.
fn patience(tick: Duration) -> Duration {
    tick * 10 + Duration::from_secs(5)
}

/// Reads `count` values from `values`, waiting at most `patience` for each,
/// so that a sender that stops sending becomes an error, not a hang.
fn receive(values: &Receiver<u64>, count: u64, patience: Duration) -> anyhow::Result<Vec<u64>> {
    let mut received = Vec::new();
    while (received.len() as u64) < count {
        match values.recv_timeout(patience) {
            Ok(value) => received.push(value),
            Err(RecvTimeoutError::Timeout) => {
                bail!("no value within {patience:?}, after {} of {count}", received.len())
            }
            Err(RecvTimeoutError::Disconnected) => {
                bail!("the sender hung up after {} of {count} values", received.len())
            }
        }
    }
    Ok(received)
}

// Experiment 1: a sender process, stopped by a signal.

/// The sender process's side: runs in the child, started as
/// `--child-role sender TICK_MS`.
fn be_the_sender(role: &str, args: &[String]) -> anyhow::Result<()> {
    let tick = args.first().and_then(|ms| ms.parse().ok()).map(Duration::from_millis);
    let (SENDER_ROLE, Some(tick)) = (role, tick) else {
        bail!("unknown child role {role} {args:?}");
    };
    send_to_stdout(tick).context("sender process")
}

/// Writes 0, 1, 2, ... to stdout, one line per tick, forever: only a signal
/// stops it (or the parent closing the pipe, which makes a write fail).
///
/// Two processes share no memory, so the values travel through a pipe that
/// the parent made of this process's stdout. Python's `multiprocessing.Queue`
/// is a pipe too, with pickling and a feeder thread on top.
fn send_to_stdout(tick: Duration) -> nix::Result<()> {
    // SIGTERM's default action ends this process. That works only because
    // `role()` unblocked it: a process inherits the signal mask of the thread
    // that started it and keeps it across `exec`, and this lesson's parent
    // blocks SIGTERM (its Ctrl-C clean-up waits for it on a thread of its
    // own). A sender that kept the mask would hold SIGTERM pending forever.
    let mut out = std::io::stdout().lock();
    for value in 0u64.. {
        // Flushed at once, so the parent sees each value when it is sent,
        // not when a buffer fills.
        if writeln!(out, "{value}").and_then(|()| out.flush()).is_err() {
            return Ok(());
        }
        thread::sleep(tick);
    }
    Ok(())
}

/// What experiment 1 showed.
struct ProcessRun {
    stopped: Stopped,
    status: ExitStatus,
    pid: u32,
}

/// Starts the sender process, reads `count` values from its pipe, then stops
/// it with SIGTERM and reaps it: Python's `Process.terminate()`, plus the
/// reaping that the notes leave out.
fn sender_process_stopped_by_sigterm(tick: Duration, count: u64) -> anyhow::Result<ProcessRun> {
    let tick_ms = tick.as_millis().to_string();
    let mut sender = common::child::spawn_self(SENDER_ROLE, &[tick_ms.into()], |command| {
        command.stdout(Stdio::piped());
    })?;
    let pid = sender.id();
    let pipe = sender.handle().stdout.take().context("the sender's stdout is a pipe")?;
    let (lines, reader) = values_from_pipe(pipe);
    // On an error here, dropping `sender` kills and reaps it.
    let values = receive(&lines, count, patience(tick)).context("reading from the sender process")?;
    let started = Instant::now();
    let status = terminate(sender.handle(), GRACE)?;
    let latency = started.elapsed();
    // Already reaped: this `wait` returns the same status at once, and tells
    // the Ctrl-C clean-up that this child needs no more killing.
    sender.wait()?;
    // The sender is dead, so its end of the pipe is closed and the reader
    // has reached the end of it.
    reader.join().expect("the pipe reader does not panic");
    Ok(ProcessRun { stopped: Stopped { values, latency }, status, pid })
}

/// Reads the pipe on a thread of its own and passes each value on through a
/// channel. A read from a pipe blocks with no timeout; a channel can be
/// waited on with one. The thread ends at the end of the pipe, or at a line
/// that is not a number.
fn values_from_pipe(pipe: impl Read + Send + 'static) -> (Receiver<u64>, JoinHandle<()>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let reader = thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Some(value) = line.ok().and_then(|l| l.trim().parse().ok()) else { return };
            if tx.send(value).is_err() {
                return;
            }
        }
    });
    (rx, reader)
}

/// Sends SIGTERM and reaps the process. SIGTERM's default action ends a
/// process that has not arranged otherwise, and unlike SIGKILL it can be
/// caught, so a sender that wanted to could finish its line and exit. Reaping
/// (`wait`) collects the exit status; until then the dead process stays in
/// the process table as a zombie. One that still runs after `grace` gets
/// SIGKILL, which cannot be caught.
fn terminate(sender: &mut Child, grace: Duration) -> anyhow::Result<ExitStatus> {
    let pid = Pid::from_raw(i32::try_from(sender.id()).context("a pid fits in an i32")?);
    kill(pid, Signal::SIGTERM).context("sending SIGTERM to the sender")?;
    // `wait` has no timeout, so it runs on a thread of its own, and this one
    // waits for its word with one.
    let (reaped_tx, reaped_rx) = crossbeam_channel::bounded(1);
    thread::scope(|scope| {
        let waiter = scope.spawn(move || {
            let status = sender.wait();
            let _ = reaped_tx.send(());
            status
        });
        if reaped_rx.recv_timeout(grace).is_err() {
            let _ = kill(pid, Signal::SIGKILL);
        }
        waiter.join().expect("the waiter does not panic").context("reaping the sender")
    })
}

// Experiment 2: a sender thread, stopped by an event.
//
// A thread cannot be killed from outside (Python's `Thread` has no
// `terminate()` either): it has to be asked to stop, and it stops when it
// next looks. Where it looks makes the difference.

/// 2a, the Python notes' way: check a flag, send, sleep a tick, check again.
/// A stop set during the sleep is seen only when the sleep ends: up to a tick
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

/// 2b: wait for the tick and for the stop at once. `select!` blocks until one
/// of the two channels is ready, so a stop wakes the thread mid-wait. The
/// stop channel is ready when a message arrives and also when every sender of
/// it is gone (disconnected), which experiment 3 uses. With one channel and a
/// timer, `stop.recv_timeout(tick)` says the same; `select!` scales to more.
fn send_until_stopped(values: &Sender<u64>, stop: &Receiver<()>, tick: Duration) {
    let ticks = crossbeam_channel::tick(tick);
    for value in 0u64.. {
        if values.send(value).is_err() {
            return;
        }
        select! {
            recv(stop) -> _ => return,
            recv(ticks) -> _ => {}
        }
    }
}

/// Runs 2a once: reads `count` values, sets the flag, joins the thread.
fn sender_thread_stopped_by_flag(tick: Duration, count: u64) -> anyhow::Result<Stopped> {
    // Unbounded, like Python's `Queue()`: a send never blocks, so the only
    // place the sender waits is its tick.
    let (tx, rx) = crossbeam_channel::unbounded();
    let exit = Arc::new(AtomicBool::new(false));
    let sender = thread::spawn({
        let exit = Arc::clone(&exit);
        move || send_until_flag(&tx, &exit, tick)
    });
    let values = receive(&rx, count, patience(tick));
    // The thread is stopped and joined whatever `receive` found.
    let started = Instant::now();
    exit.store(true, Ordering::Relaxed);
    sender.join().expect("the sender thread does not panic");
    Ok(Stopped { values: values?, latency: started.elapsed() })
}

/// Runs 2b once: reads `count` values, sends stop, joins the thread.
fn sender_thread_stopped_by_select(tick: Duration, count: u64) -> anyhow::Result<Stopped> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
    let sender = thread::spawn(move || send_until_stopped(&tx, &stop_rx, tick));
    let values = receive(&rx, count, patience(tick));
    let started = Instant::now();
    let _ = stop_tx.send(());
    sender.join().expect("the sender thread does not panic");
    Ok(Stopped { values: values?, latency: started.elapsed() })
}

// Experiment 3: a type that owns its sender thread, stopped by drop.

/// A sender thread that lives exactly as long as this value: Python's "classy
/// way", with the stop and the join in `Drop`, so no path (an early return, a
/// `?`, a panic) can forget them.
struct Ticker {
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

    fn values(&self) -> &Receiver<u64> {
        &self.values
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

/// The threads of this process, counted around experiment 3.
struct ThreadCounts {
    before: usize,
    running: usize,
    after: usize,
    /// Whether the thread's end of the values channel was gone when the drop returned.
    closed_at_drop: bool,
}

/// Each thread of a process is an entry in `/proc/self/task` (Linux).
fn threads_in_this_process() -> anyhow::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task").context("listing /proc/self/task")?.count())
}

/// Runs 3: starts a `Ticker`, reads `count` values, drops it, and counts this
/// process's threads before, during and after.
fn owned_sender_stopped_by_drop(tick: Duration, count: u64) -> anyhow::Result<(Stopped, ThreadCounts)> {
    let before = threads_in_this_process()?;
    let ticker = Ticker::start(tick).context("starting the ticker thread")?;
    let running = threads_in_this_process()?;
    let values = receive(ticker.values(), count, patience(tick));
    // A second receiver of the values outlives the ticker. The thread owns
    // the only sender, so once the thread has ended the channel reports
    // `Disconnected` (after the values still in it): exact proof that the
    // thread was over when the drop returned.
    let probe = ticker.values().clone();
    let started = Instant::now();
    drop(ticker);
    let latency = started.elapsed();
    probe.try_iter().for_each(drop);
    let closed_at_drop = probe.try_recv() == Err(TryRecvError::Disconnected);
    // `join` returns once the thread has run its last line and the kernel
    // has cleared its thread id, which is what `join` waits for; the kernel
    // removes the thread's `/proc` entry a moment later, at the very end of
    // its exit. So a count that still has it is read again, for up to a second.
    let ended = Instant::now();
    let mut after = threads_in_this_process()?;
    while after > before && ended.elapsed() < Duration::from_secs(1) {
        thread::sleep(Duration::from_micros(100));
        after = threads_in_this_process()?;
    }
    Ok((Stopped { values: values?, latency }, ThreadCounts { before, running, after, closed_at_drop }))
}

// Channel throughput.

/// Times `messages` values through each channel, one producer thread to one
/// consumer thread.
fn channel_throughputs(messages: u64) -> anyhow::Result<Vec<(String, Duration)>> {
    let (tx, rx) = crossbeam_channel::bounded(CAPACITY);
    let bounded = one_way(messages, move |v| tx.send(v).is_ok(), move || rx.recv().ok())?;
    let (tx, rx) = crossbeam_channel::unbounded();
    let unbounded = one_way(messages, move |v| tx.send(v).is_ok(), move || rx.recv().ok())?;
    let (tx, rx) = std::sync::mpsc::sync_channel(CAPACITY);
    let std_bounded = one_way(messages, move |v| tx.send(v).is_ok(), move || rx.recv().ok())?;
    Ok(vec![
        (format!("crossbeam bounded({CAPACITY})"), bounded),
        ("crossbeam unbounded".to_string(), unbounded),
        (format!("std mpsc sync_channel({CAPACITY})"), std_bounded),
    ])
}

/// Sends 0..messages with `send` on one thread and receives them with `recv`
/// on another; returns the wall time. The producer's closure owns the
/// channel's sender, so when it ends the channel disconnects and `recv`
/// returns `None`. Every value must arrive, in order.
fn one_way(
    messages: u64,
    send: impl FnMut(u64) -> bool + Send,
    mut recv: impl FnMut() -> Option<u64> + Send,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let received = thread::scope(|scope| {
        scope.spawn(move || (0..messages).all(send));
        let consumer = scope.spawn(move || {
            let mut next = 0;
            while recv() == Some(next) {
                next += 1;
            }
            next
        });
        consumer.join().expect("the consumer does not panic")
    });
    let elapsed = started.elapsed();
    ensure!(received == messages, "{received} of {messages} messages arrived in order");
    Ok(elapsed)
}
