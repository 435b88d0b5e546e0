//! The experiment around the lesson: each sender read with a timeout (so a
//! sender that stops sending is an error, not a hang), each stop timed from
//! the request to the sender reaped or joined, this process's threads
//! counted around the owned one, three channels timed, and the claims.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitCode, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use common::cli::CommonArgs;
use common::measure::median_secs;
use common::{Claim, Report};
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use nix::sys::signal::Signal;

use crate::{SenderProcess, Ticker, start_flag_sender, start_select_sender};

#[derive(Parser, Debug)]
#[command(name = "sender-receiver", version, about)]
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

/// How long the sender process has to die after SIGTERM before it gets SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// The margin of the latency claim: select stops a sender at least this many
/// times sooner than the flag (why 3: see `select_stops_sooner`).
const SOONER: f64 = 3.0;

/// The capacity of the bounded channels in the throughput test: room for a
/// burst, so the producer rarely waits for the consumer, as in real use.
const CAPACITY: usize = 1024;

pub fn main() -> ExitCode {
    // The sender process is this executable started again: it plays the
    // lesson's child role and exits, before any flag is parsed.
    if let Some(code) = common::child::play_role(|role, args| {
        crate::child_main(role, args).with_context(|| format!("child role {role}"))
    }) {
        return code;
    }
    let args: Args = common::cli::parse();
    // The lab starts a child process: a Ctrl-C kills it too.
    common::cleanup::install();
    common::cli::finish(&args.common, run(&args))
}

fn run(args: &Args) -> anyhow::Result<Report> {
    // The Python notes tick every 0.5 s; 50 ms shows the same ten times
    // sooner. --quick reads fewer values rather than ticking faster: a tick
    // must stay well above a thread's wake-up time on a busy machine (see the
    // select claim), and the wait for the values is most of the run.
    let tick = Duration::from_millis(args.tick_ms);
    let count = args.values.unwrap_or(args.common.pick(10, 3));
    let messages = args.messages.unwrap_or(args.common.pick(2_000_000, 100_000));
    let mut report = common::lesson_report!();
    report
        .param("tick_ms", args.tick_ms)
        .param("values", count)
        .param("trials", args.trials)
        .param("messages", messages)
        .param("capacity", CAPACITY);

    let process = sender_process_stopped_by_sigterm(tick, count).context("a sender process, SIGTERM")?;
    let (mut flag, mut select) = (Vec::new(), Vec::new());
    for _ in 0..args.trials {
        flag.push(thread_sender_stopped(start_flag_sender(tick), tick, count).context("a flag")?);
        select.push(thread_sender_stopped(start_select_sender(tick), tick, count).context("select")?);
    }
    let (owned, threads) = owned_sender_stopped_by_drop(tick, count).context("an owned sender, drop")?;

    report.table("stopping a sender after it sent its values");
    // Each experiment: its row in the table, a short name for the evidence, its runs.
    let experiments = [
        ("process, SIGTERM", "process", std::slice::from_ref(&process.stopped)),
        ("thread, flag", "flag", &flag[..]),
        ("thread, select", "select", &select[..]),
        ("owned thread, drop", "owned", std::slice::from_ref(&owned)),
    ];
    let medians_ms = stop_figures(&mut report, &experiments, count);
    report.note("stop: from the request (SIGTERM, flag, stop message, drop) to the sender reaped or joined.");
    report.note(format!(
        "The flag's stop took {:.2} ticks: the sender saw it only when its sleep was over.",
        medians_ms[1] / (tick.as_secs_f64() * 1e3)
    ));
    report.claim(in_order(&experiments, count));
    report.claim(sigterm(&process, medians_ms[0]));
    report.claim(select_stops_sooner(medians_ms[1], medians_ms[2]));

    report.table("threads of this process (/proc/self/task)");
    report.figure("owned thread, drop", "before", threads.before, "threads");
    report.figure("owned thread, drop", "running", threads.running, "threads");
    report.figure("owned thread, drop", "after drop", threads.after, "threads");
    report.claim(drop_joins(&threads));

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

/// Each experiment's row of the stop table; returns the median stop of each, in ms.
fn stop_figures(report: &mut Report, experiments: &[(&str, &str, &[Stopped])], count: u64) -> Vec<f64> {
    let mut medians_ms = Vec::new();
    for &(experiment, short, runs) in experiments {
        let latencies: Vec<Duration> = runs.iter().map(|r| r.latency).collect();
        medians_ms.push(median_secs(&latencies) * 1e3);
        report.figure(experiment, "runs", runs.len(), "");
        report.figure(experiment, "in order", runs_in_order(runs, count), "runs");
        report.figure(experiment, "stop median", medians_ms[medians_ms.len() - 1], "ms");
        if short == "select" {
            report.key();
        }
        report.figure(experiment, "stop max", latencies.iter().max().unwrap().as_secs_f64() * 1e3, "ms");
    }
    medians_ms
}

fn runs_in_order(runs: &[Stopped], count: u64) -> usize {
    runs.iter().filter(|r| r.values.iter().copied().eq(0..count)).count()
}

fn in_order(experiments: &[(&str, &str, &[Stopped])], count: u64) -> Claim {
    let (mut all_in_order, mut evidence) = (true, Vec::new());
    for &(_, short, runs) in experiments {
        let in_order = runs_in_order(runs, count);
        all_in_order &= in_order == runs.len();
        evidence.push(format!("{short} {in_order}/{}", runs.len()));
    }
    Claim::check(
        "in-order",
        format!("every receiver read 0 to {} in order, in every run", count - 1),
        all_in_order,
        format!("runs in order: {}", evidence.join(", ")),
    )
}

/// Reaped: `wait` returned the status, and the pid is no longer a child of
/// this process (a zombie would still be one).
fn sigterm(process: &ProcessRun, stop_ms: f64) -> Claim {
    let still_a_child = common::cleanup::children_of(std::process::id()).contains(&process.pid);
    Claim::check(
        "sigterm",
        "the sender process was reaped, and SIGTERM is what ended it",
        process.status.signal() == Some(Signal::SIGTERM as i32) && !still_a_child,
        format!(
            "wait returned \"{}\" {stop_ms:.2} ms after SIGTERM; pid {} is {} a child of this process",
            process.status,
            process.pid,
            if still_a_child { "still" } else { "no longer" },
        ),
    )
}

/// The flag's stop waits out the rest of the sender's sleep: nearly a whole
/// tick, as the receiver stops right after a value, when the sender has just
/// begun to sleep. Select's stop is one thread wake-up. On 2 cores with two
/// spinning processes (and other builds), 72 runs in debug and release,
/// default and --quick, gave 290x or more (select medians under 0.2 ms);
/// with four spinning processes, 60 --quick runs gave 7x and up: under that
/// much load a woken thread can wait 4 to 12 ms for a core. 3x keeps room
/// for that. A tick of a few ms is no longer than such a wait, and then the
/// claim can fail (--tick-ms 1 under load: 1x).
fn select_stops_sooner(flag_ms: f64, select_ms: f64) -> Claim {
    Claim::check(
        "select-stops-sooner",
        format!("select stops a sender at least {SOONER}x sooner than a flag checked between sleeps"),
        flag_ms >= SOONER * select_ms,
        format!(
            "median stop {flag_ms:.2} ms (flag) vs {select_ms:.3} ms (select): {:.0}x",
            flag_ms / select_ms
        ),
    )
}

fn drop_joins(threads: &ThreadCounts) -> Claim {
    let ThreadCounts { before, running, after, closed_at_drop } = *threads;
    Claim::check(
        "drop-joins",
        "dropping the owner stopped and joined its thread: its channel was closed when the drop \
         returned, and the thread count went back down",
        closed_at_drop && running == before + 1 && after == before,
        format!(
            "channel {} when the drop returned; threads: {before} before, {running} running, {after} after",
            if closed_at_drop { "closed" } else { "still open" },
        ),
    )
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

/// What the sender process's run showed.
struct ProcessRun {
    stopped: Stopped,
    status: ExitStatus,
    pid: u32,
}

/// Starts the sender process, reads `count` values from its pipe, then stops
/// it with SIGTERM and reaps it, timing the stop.
fn sender_process_stopped_by_sigterm(tick: Duration, count: u64) -> anyhow::Result<ProcessRun> {
    let sender = SenderProcess::start(tick).context("starting the sender process")?;
    let pid = sender.child.id();
    let values = receive(&sender.values, count, patience(tick)).context("reading from the sender process");
    // The process is stopped and reaped whatever `receive` found.
    let started = Instant::now();
    let status = sender.terminate(GRACE).context("stopping the sender process")?;
    let latency = started.elapsed();
    Ok(ProcessRun { stopped: Stopped { values: values?, latency }, status, pid })
}

/// Runs a sender thread once: reads `count` values, then stops it (the
/// lesson's stop: a flag or a message, then `join`), timing the stop.
fn thread_sender_stopped(
    (values, stop): (Receiver<u64>, impl FnOnce()),
    tick: Duration,
    count: u64,
) -> anyhow::Result<Stopped> {
    let received = receive(&values, count, patience(tick));
    // The thread is stopped and joined whatever `receive` found.
    let started = Instant::now();
    stop();
    Ok(Stopped { values: received?, latency: started.elapsed() })
}

/// The threads of this process, counted around the owned sender.
#[derive(Clone, Copy)]
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

/// Starts a `Ticker`, reads `count` values, drops it, and counts this
/// process's threads before, during and after.
fn owned_sender_stopped_by_drop(tick: Duration, count: u64) -> anyhow::Result<(Stopped, ThreadCounts)> {
    let before = threads_in_this_process()?;
    let ticker = Ticker::start(tick).context("starting the ticker thread")?;
    let running = threads_in_this_process()?;
    let values = receive(&ticker.values, count, patience(tick));
    // A second receiver of the values outlives the ticker. The thread owns
    // the only sender, so once the thread has ended the channel reports
    // `Disconnected` (after the values still in it): exact proof that the
    // thread was over when the drop returned.
    let probe = ticker.values.clone();
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

/// The `main` that `cargo xtask eject` gives the standalone crate. It starts
/// this executable again as the sender process, and inside `cargo test` this
/// executable is the test harness, so it is not run here: `.ci/run` ejects
/// the lesson and runs this `main` for real. The include still type-checks
/// it with the lab's tests.
#[cfg(test)]
#[allow(dead_code)]
mod standalone {
    use crate::*;
    include!("standalone.rs");
}
