//! The experiment around the lesson: it sizes the countdown for this
//! machine, times each way against one thread timed just before it, runs
//! the Python notes' program (`countdown.py`) when `python3` is there, and
//! checks the claims.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use common::child::output_with_deadline;
use common::cleanup::TempDir;
use common::cli::CommonArgs;
use common::measure::{cores, median, median_secs, time};
use common::{Claim, Report};

use crate::{countdown, gil_countdown, split_countdown};

#[derive(Parser, Debug)]
#[command(name = "cpu-bound", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Total decrements of the countdown [default: sized so one thread takes
    /// about 0.7 s, 0.05 s with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1_000..))]
    decrements: Option<u64>,

    /// Threads for the scaling claim and the GIL emulation [default: the
    /// cores, at most 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,

    /// Time every thread count from 1 to twice the cores, not just 1 to the
    /// cores and twice the cores.
    #[arg(long)]
    sweep: bool,

    /// Whether to run the Python countdown beside the Rust one: `auto` runs
    /// it when `python3` is found, `off` skips it.
    #[arg(long, value_enum, default_value_t = PythonMode::Auto)]
    python: PythonMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PythonMode {
    Auto,
    Off,
}

/// The Python notes' program, shipped beside the lesson.
const COUNTDOWN_PY: &str = include_str!("countdown.py");

pub fn main() -> ExitCode {
    let args: Args = common::cli::parse();
    // The lab runs python3 and writes its script to a temp dir: both go on Ctrl-C.
    common::cleanup::install();
    common::cli::finish(&args.common, run(&args))
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let cores = cores();
    // Speedups are understated when a run is short and timed once (thread
    // start-up and the scheduler's first moves weigh more): on 2 cores, two
    // threads gave 1.71x on a 0.5 s countdown and 1.97x on a 2 s one. The
    // pairing in `paired` makes shorter runs fair, so the default is 0.7 s
    // (the whole lesson then takes about 5 s); --quick trades accuracy for
    // time, and its claims keep their margins.
    let target = args.common.pick(0.7, 0.05);
    // A --quick run takes the median of 5 pairs; a longer run averages the
    // machine's moments out in one (see `paired`).
    let rounds = args.common.pick(1, 5);
    let decrements = args.decrements.unwrap_or_else(|| decrements_for(target));
    // The claim's thread count, and the speedup it can expect: no more than
    // one thread per core runs at a time.
    let pair = args.threads.map_or(cores.min(2), |t| t as usize);

    let mut report = common::lesson_report!();
    report
        .param("cores", cores)
        .param("decrements", decrements)
        .param("rounds", rounds)
        .param("sweep", args.sweep);

    // 1. Scaling: the same total work split across more and more threads,
    // then 2. the GIL emulation with the claim's thread count.
    report.table("the countdown split across threads (speedup: against one thread, timed just before)");
    let (rows, gil) = time_the_ways(decrements, thread_counts(cores, pair, args.sweep), pair, rounds);
    let alone = thread_figures(&mut report, &rows, &gil, pair);
    let pair_speedup = rows.iter().find(|(threads, _)| *threads == pair).map(|(_, timed)| timed.speedup);
    report.claim(threads_scale(decrements, pair, cores, rounds, pair_speedup)?);
    report.claim(gil_serializes(&gil, decrements, pair, rounds)?);

    // 3. Python side by side.
    report.table("Python, the notes' program");
    // Python is ten to twenty times slower per decrement, and the script
    // times each way three times (keeping the fastest): a fifth of the Rust
    // target keeps it to a couple of seconds, and 0.1 s at least keeps thread
    // and process start-up small beside the work.
    let python_seconds = (target / 5.0).max(0.1);
    let python = python_side_by_side(args, python_seconds)?;
    python_figures(&mut report, python.as_ref(), alone.as_nanos() as f64 / decrements as f64);
    report.claim(python_threads_do_not_scale(args, python_seconds, python)?);
    Ok(report)
}

/// Times the countdown split across each of `counts` threads, then the GIL
/// emulation with `pair` threads, each against one thread (see `paired`).
fn time_the_ways(
    decrements: u64,
    counts: Vec<usize>,
    pair: usize,
    rounds: u32,
) -> (Vec<(usize, Paired)>, Paired) {
    // A short warm-up on every core first: the first threads of a process,
    // on cores that were idle, started measurably slower here.
    split_countdown(decrements / 8, cores());
    let rows = counts
        .into_iter()
        .map(|threads| (threads, paired(split_countdown, decrements, threads, rounds)))
        .collect();
    let gil = paired(gil_countdown, decrements, pair, rounds);
    (rows, gil)
}

/// The thread counts of the table: by default 2 up to the cores, then twice
/// the cores; `--sweep` fills in every count between; the claim's count is
/// always there.
fn thread_counts(cores: usize, pair: usize, sweep: bool) -> Vec<usize> {
    let mut counts: Vec<usize> =
        if sweep { (2..=2 * cores).collect() } else { (2..=cores).chain([2 * cores]).collect() };
    if pair > 1 && !counts.contains(&pair) {
        counts.push(pair);
        counts.sort_unstable();
    }
    counts
}

/// The first table: one thread (the median of every one-thread run), each
/// thread count, and the GIL emulation. Returns one thread's time.
fn thread_figures(report: &mut Report, rows: &[(usize, Paired)], gil: &Paired, pair: usize) -> Duration {
    let alone_runs: Vec<Duration> = rows
        .iter()
        .map(|(_, timed)| timed)
        .chain([gil])
        .flat_map(|timed| timed.alone.iter().copied())
        .collect();
    let alone = Duration::from_secs_f64(median_secs(&alone_runs));
    report.figure("1 thread", "time", alone.as_secs_f64(), "s");
    report.figure("1 thread", "speedup", 1.0, "x");
    report.figure("1 thread", "efficiency", 1.0, "fraction");
    for (threads, timed) in rows {
        let row = format!("{threads} threads");
        report.figure(&row, "time", timed.time.as_secs_f64(), "s");
        report.figure(&row, "speedup", timed.speedup, "x");
        report.figure(&row, "efficiency", timed.speedup / *threads as f64, "fraction");
    }
    let gil_row = format!("{pair} threads, one global lock");
    report.figure(&gil_row, "time", gil.time.as_secs_f64(), "s");
    report.figure(&gil_row, "speedup", gil.speedup, "x").key();
    alone
}

/// The claim that threads scale: with T threads (min(cores, 2) by default)
/// the speedup is at least 0.8 x min(T, cores), measured again (up to five
/// attempts) before it is said not to hold.
fn threads_scale(
    decrements: u64,
    threads: usize,
    cores: usize,
    rounds: u32,
    first: Option<f64>,
) -> anyhow::Result<Claim> {
    let target = 0.8 * threads.min(cores) as f64;
    let statement = format!("{threads} threads run the countdown at least {target:.1}x faster than one");
    if cores < 2 {
        return Ok(Claim::skipped(
            "threads-scale",
            statement,
            "this machine has one core: nothing to scale to",
        ));
    }
    if threads < 2 {
        return Ok(Claim::skipped("threads-scale", statement, "--threads 1: nothing to scale to"));
    }
    // Five attempts, not three: on this kind of virtual machine the host
    // sometimes takes a core away for a second or two (steal time), and
    // that is when a second thread has nowhere to run.
    Claim::remeasured("threads-scale", statement, 5, |attempt| {
        let speedup = match first {
            Some(speedup) if attempt == 1 => speedup,
            _ => paired(split_countdown, decrements, threads, rounds).speedup,
        };
        Ok((speedup >= target, format!("{speedup:.2}x")))
    })
}

/// The lock serializes the threads, so the speedup stays near 1. A miss is
/// measured again before it is reported.
fn gil_serializes(first: &Paired, decrements: u64, threads: usize, rounds: u32) -> anyhow::Result<Claim> {
    Claim::remeasured(
        "gil-serializes",
        "threads that must hold one global lock to work gain nothing (speedup at most 1.15x)",
        3,
        |attempt| {
            let speedup = if attempt == 1 {
                first.speedup
            } else {
                paired(gil_countdown, decrements, threads, rounds).speedup
            };
            Ok((speedup <= 1.15, format!("{threads} threads under one lock: {speedup:.2}x")))
        },
    )
}

/// What `paired` measured.
struct Paired {
    /// The median of the rounds' speedups (one thread's time / this way's).
    speedup: f64,
    /// The median time of this way.
    time: Duration,
    /// One thread's runs, for the table's first row.
    alone: Vec<Duration>,
}

/// Times one thread, then `way` with `threads` threads, on the same work,
/// `rounds` times. On a shared or virtual machine the same work can take a
/// different time from one moment to the next: measured here, 0.1 s of
/// countdown took anywhere from 0.07 to 0.18 s in a debug build, on either
/// core. So each way is timed right after one thread does the same work,
/// and the speedup is the ratio of that pair: both runs see the same machine.
fn paired(way: fn(u64, usize) -> u64, decrements: u64, threads: usize, rounds: u32) -> Paired {
    let (mut speedups, mut times, mut alone) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (done_alone, one) = time(|| split_countdown(decrements, 1));
        let (done, many) = time(|| way(decrements, threads));
        debug_assert_eq!((done_alone, done), (decrements, decrements), "every way does all the work");
        speedups.push(one.as_secs_f64() / many.as_secs_f64());
        times.push(many);
        alone.push(one);
    }
    Paired { speedup: median(&speedups), time: Duration::from_secs_f64(median_secs(&times)), alone }
}

/// How many decrements take about `seconds` on one thread of this machine:
/// a short run is timed, then scaled.
fn decrements_for(seconds: f64) -> u64 {
    let mut n: u64 = 1_000_000;
    loop {
        let started = Instant::now();
        countdown(n);
        let took = started.elapsed().as_secs_f64();
        if took >= 0.02 {
            return ((n as f64 * seconds / took) as u64).max(1_000);
        }
        n *= 2;
    }
}

/// What the Python program measured.
struct PythonRun {
    version: String,
    start_method: String,
    decrements: u64,
    one_thread_s: f64,
    two_threads_s: f64,
    two_processes_s: f64,
}

impl PythonRun {
    fn thread_speedup(&self) -> f64 {
        self.one_thread_s / self.two_threads_s
    }

    fn process_speedup(&self) -> f64 {
        self.one_thread_s / self.two_processes_s
    }
}

/// The Python table (when it ran) and the time per decrement of each language.
fn python_figures(report: &mut Report, python: Option<&PythonRun>, rust_ns: f64) {
    let Some(py) = python else {
        report.figure("per decrement", "rust", rust_ns, "ns");
        return;
    };
    let py_ns = py.one_thread_s * 1e9 / py.decrements as f64;
    report.figure("python 1 thread", "time", py.one_thread_s, "s");
    report.figure("python 2 threads", "time", py.two_threads_s, "s");
    report.figure("python 2 threads", "speedup", py.thread_speedup(), "x");
    report.figure("python 2 processes", "time", py.two_processes_s, "s");
    report.figure("python 2 processes", "speedup", py.process_speedup(), "x");
    report.figure("per decrement", "python", py_ns, "ns");
    report.figure("per decrement", "rust", rust_ns, "ns");
    report.figure("per decrement", "python / rust", py_ns / rust_ns, "x");
    report.note(format!(
        "Python {} ran {} decrements (start method '{}'). Rust's time per decrement includes \
         the black_box that keeps the loop from being optimized away; a bare loop is faster still.",
        py.version, py.decrements, py.start_method
    ));
}

/// Python's threads take turns on the GIL; its processes each have their
/// own. Skipped when Python did not run; a miss is measured again.
fn python_threads_do_not_scale(args: &Args, seconds: f64, first: Option<PythonRun>) -> anyhow::Result<Claim> {
    let Some(first) = first else {
        let why = match args.python {
            PythonMode::Off => "skipped: --python off",
            PythonMode::Auto => "skipped: no python3 on the PATH",
        };
        return Ok(Claim::skipped(
            "python-threads-do-not-scale",
            "Python's two threads are no faster than one and two processes are faster",
            why,
        ));
    };
    let mut run = Some(first);
    Claim::remeasured(
        "python-threads-do-not-scale",
        "Python's two threads are no faster than one (at most 1.15x) and two processes are faster \
         than two threads",
        3,
        |_| {
            let py = match run.take() {
                Some(py) => py,
                None => python_side_by_side(args, seconds)?.context("python3 went away")?,
            };
            let (threads, processes) = (py.thread_speedup(), py.process_speedup());
            Ok((
                threads <= 1.15 && processes > threads,
                format!("2 threads {threads:.2}x, 2 processes {processes:.2}x"),
            ))
        },
    )
}

/// Runs countdown.py with `python3`, sized to about `seconds` for one
/// thread; `None` when Python is off or not installed.
fn python_side_by_side(args: &Args, seconds: f64) -> anyhow::Result<Option<PythonRun>> {
    if args.python == PythonMode::Off || !python3_found() {
        return Ok(None);
    }
    // The script is written to a file (not passed with `-c`) because the
    // 'spawn' and 'forkserver' start methods import the main module again by
    // its path in each new process.
    let scratch = TempDir::new("cpu-bound")?;
    let script = scratch.path().join("countdown.py");
    std::fs::write(&script, COUNTDOWN_PY).with_context(|| format!("writing {}", script.display()))?;
    let output = output_with_deadline(
        Command::new("python3").arg(&script).arg(seconds.to_string()),
        Duration::from_secs(300),
    )?;
    if !output.status.success() {
        bail!("python3 countdown.py failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading countdown.py's JSON output")?;
    let number = |key: &str| json[key].as_f64().with_context(|| format!("countdown.py printed no {key}"));
    Ok(Some(PythonRun {
        version: json["version"].as_str().unwrap_or("?").to_string(),
        start_method: json["start_method"].as_str().unwrap_or("?").to_string(),
        decrements: number("decrements")? as u64,
        one_thread_s: number("one_thread_s")?,
        two_threads_s: number("two_threads_s")?,
        two_processes_s: number("two_processes_s")?,
    }))
}

fn python3_found() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| Path::new(&dir).join("python3").is_file()))
}

/// The `main` that `cargo xtask eject` gives the standalone crate, compiled
/// and run with the lab's tests.
#[cfg(test)]
mod standalone {
    use crate::*;
    include!("standalone.rs");

    #[test]
    fn standalone_main_holds_its_rule() {
        main()
    }
}
