//! The experiment around the lesson: it starts and finishes units each way
//! in batches, charged for their CPU time (this process's and its reaped
//! children's), keeps units alive to read the memory they add from `/proc`,
//! runs the same units in Python (`spawn_cost.py`) when `python3` is there,
//! and checks the claims.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use common::child::output_with_deadline;
use common::cleanup::TempDir;
use common::cli::{CommonArgs, usage_error};
use common::measure::{Memory, children_cpu_time, median, memory_of, memory_of_self, process_cpu_time};
use common::{Claim, Report};
use nix::sys::wait::WaitStatus;

use crate::{
    fork_unit, spawn_unit, thread_unit, true_unit, with_forked_child_parked, with_spawned_child_parked,
    with_threads_parked,
};

/// The most units a run may ask for: they are also the threads kept alive
/// at once for the memory figure (each with 2 MiB of address space).
const MAX_UNITS: u32 = 10_000;

#[derive(Parser, Debug)]
#[command(name = "spawn-cost", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Units started and finished each way, and threads kept alive at once
    /// for the memory figures [default: 500, 50 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_UNITS)))]
    units: Option<u32>,

    /// KiB of stack each unit kept alive writes before it parks: work of
    /// its own, which costs a thread what it costs a process.
    #[arg(long, value_name = "KIB", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=1024))]
    stack_kib: u32,

    /// Whether to time Python's Thread and Process beside: `auto` when
    /// python3 is on the PATH, `always` (refused without it), `never`.
    #[arg(long, value_enum, default_value_t = PythonMode::Auto)]
    python: PythonMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PythonMode {
    Auto,
    Always,
    Never,
}

/// Python's program, shipped beside the lesson.
const SPAWN_COST_PY: &str = include_str!("spawn_cost.py");

/// The batches each way's units are split into: the latency and CPU time
/// per unit are the medians over them.
const BATCHES: u32 = 10;

/// Children kept alive one at a time, each way, for the process memory
/// figures (their median).
const LIVE_CHILDREN: usize = 3;

/// How many times a thread's CPU time per unit a fork and a spawn must each
/// cost for `process-costs-more` to hold. Measured on 2 cores (release, 30
/// runs, beside other work and beside two spinning shells): fork 3.2x to
/// 7.5x, spawn 11x to 39x, when the threads got a core at once.
const PROCESS_FACTOR: f64 = 2.0;

/// The most a thread start's latency may be, in units of its CPU time, for
/// that CPU time to be judged. A start that got a core at once takes about
/// its CPU time (1.0x to 1.1x measured: the parent sleeps while the thread
/// runs). One that waited for a core was switched out and in again, and
/// paid for it in CPU time too: beside two spinning shells, 3 runs in 30
/// waited 6x to 48x, and their thread CPU time grew up to 3.6x.
const WAITED: f64 = 3.0;

/// How many times a thread's private memory a process's must be for
/// `thread-is-lighter`. Measured (30 release runs): a parked thread 9.6 KiB
/// (13 to 15 KiB in a debug build), a forked child 132 to 148 KiB, a
/// spawned one 160 to 180 KiB: 14x and 17x a thread.
const MEMORY_FACTOR: f64 = 4.0;

/// The same as `PROCESS_FACTOR`, for Python's Process against its Thread:
/// measured 14x to 41x for fork, 370x to 1100x for spawn.
const PYTHON_FACTOR: f64 = 4.0;

pub fn main() -> ExitCode {
    // A spawned unit plays its role and exits.
    if let Some(code) = common::child::play_role(|role, args| {
        crate::child_main(role, args).with_context(|| format!("child role {role}"))
    }) {
        return code;
    }
    let args: Args = common::cli::parse();
    // No run-time check: at MAX_UNITS a debug build takes about a minute.
    let units = args.units.unwrap_or(args.common.pick(500, 50));
    let checked = check_units(units, args.stack_kib).and_then(|()| python_wanted(args.python));
    // The lab starts children and writes Python's script to a temp dir.
    common::cleanup::install();
    common::cli::finish(&args.common, checked.and_then(|python| run(&args, units, python)))
}

fn run(args: &Args, units: u32, python: bool) -> anyhow::Result<Report> {
    let stack_kib = args.stack_kib as usize;
    let mut report = common::lesson_report!();
    report.param("units", units).param("batches", BATCHES.min(units)).param("stack_kib", stack_kib);
    report.param("python", format!("{:?}", args.python).to_lowercase());

    // 1. Start and finish each way, charged for CPU time.
    report.table(format!("start a unit, wait for its end ({units} units each way)"));
    let costs = unit_costs(units)?;
    tabulate_costs(&mut report, &costs, "thread");
    // 2. Keep units alive, and read what each adds.
    report.table(format!(
        "memory a live unit adds ({units} threads at once; {LIVE_CHILDREN} children each, one at a time)"
    ));
    let memory = unit_memory(units as usize, stack_kib)?;
    tabulate_memory(&mut report, &memory);
    // 3. Python's Thread and Process, when python3 is there.
    stop_if_asked()?;
    let python = if python { Some(python_costs(units)?) } else { None };
    if let Some((_, python_costs)) = &python {
        report.ran_beside("python3");
        report.table("Python's Thread and Process, started and joined (spawn_cost.py)");
        tabulate_costs(&mut report, python_costs, "python Thread");
    }
    notes(&mut report, python.as_ref().map(|(version, _)| (version.as_str(), python_units(units))));

    report.claim(process_costs_more(&costs));
    report.claim(thread_is_lighter(&memory));
    report.claim(python_process_costs_more(python.as_ref().map(|(_, costs)| costs.as_slice()), args.python));
    Ok(report)
}

/// Refuses (exit 2, before anything starts) more units than this user may
/// run threads at once (`ulimit -u`, counting those it already runs), than
/// the address space `ulimit -v` leaves holds, or than memory holds once
/// each live thread has written `stack_kib` KiB of its stack.
fn check_units(units: u32, stack_kib: u32) -> anyhow::Result<()> {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
    let (limit, _) = getrlimit(Resource::RLIMIT_NPROC).context("reading RLIMIT_NPROC")?;
    if limit != RLIM_INFINITY {
        // The threads kept alive, this process's own, and a child.
        let running = tasks_of_this_user();
        if running + u64::from(units) + 4 > limit {
            return Err(usage_error(format!(
                "--units {units}: this user already runs {running} threads and `ulimit -u` allows {limit}"
            )));
        }
    }
    common::measure::check_room_for_threads(units as usize)
        .map_err(|err| usage_error(format!("--units {units}: {err}")))?;
    check_memory(units, stack_kib, common::measure::available_bytes()?)
}

/// Whether `units` live threads that each wrote `stack_kib` KiB of stack,
/// and some 16 KiB of their own besides, leave half of `available` bytes
/// to the rest of the machine.
fn check_memory(units: u32, stack_kib: u32, available: u64) -> anyhow::Result<()> {
    let needed = u64::from(units) * (u64::from(stack_kib) + 16) * 1024;
    if needed > available / 2 {
        return Err(usage_error(format!(
            "--units {units} --stack-kib {stack_kib}: the live threads would hold about {} MiB, and {} \
             MiB are available",
            needed >> 20,
            available >> 20
        )));
    }
    Ok(())
}

/// The threads (tasks) that processes of this user run now, as
/// RLIMIT_NPROC counts them (by real user id), from `/proc/*/status`.
fn tasks_of_this_user() -> u64 {
    let field = |status: &str, name: &str| -> Option<String> {
        let line = status.lines().find(|line| line.starts_with(name))?;
        line[name.len()..].split_whitespace().next().map(String::from)
    };
    let own = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let (Some(uid), Ok(entries)) = (field(&own, "Uid:"), std::fs::read_dir("/proc")) else { return 0 };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("status")).ok())
        .filter(|status| field(status, "Uid:").as_deref() == Some(uid.as_str()))
        .filter_map(|status| field(&status, "Threads:")?.parse::<u64>().ok())
        .sum()
}

/// Whether Python runs: `always` without python3 is refused before anything starts.
fn python_wanted(mode: PythonMode) -> anyhow::Result<bool> {
    match mode {
        PythonMode::Never => Ok(false),
        PythonMode::Auto => Ok(python3_found()),
        PythonMode::Always if python3_found() => Ok(true),
        PythonMode::Always => Err(usage_error("--python always: there is no python3 on the PATH")),
    }
}

fn python3_found() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| Path::new(&dir).join("python3").is_file()))
}

// ---------------------------------------------------------------------------
// 1. What a unit costs to start and finish.
// ---------------------------------------------------------------------------

/// One way's figures.
#[derive(Debug, Clone, PartialEq)]
struct UnitCost {
    way: String,
    units: u32,
    /// Units that ended as they should (joined; exited with status 0).
    finished: u32,
    /// Seconds per unit: the median over the batches of a batch's wall
    /// time over its units.
    latency: f64,
    /// Seconds of CPU time per unit, the median over the batches: this
    /// process's (every thread) and its children's once reaped, so the
    /// parent's side of a start and the child's are both in it.
    cpu: f64,
}

/// Each way: one unit first, uncounted (the first spawn reads the program
/// from disk, the first thread may map a stack the others reuse), then
/// `units` units in batches.
fn unit_costs(units: u32) -> anyhow::Result<Vec<UnitCost>> {
    let exited = |status: WaitStatus| matches!(status, WaitStatus::Exited(_, 0));
    Ok(vec![
        time_units("thread", units, || thread_unit().map(|()| true).context("starting a thread"))?,
        time_units("fork", units, || fork_unit().map(exited).context("forking"))?,
        time_units("spawn, this program", units, || {
            spawn_unit().map(|status| status.success()).context("spawning this program")
        })?,
        time_units("spawn /bin/true", units, || {
            true_unit().map(|status| status.success()).context("spawning /bin/true")
        })?,
    ])
}

/// Runs `unit` once uncounted, then `units` times in `BATCHES` batches.
fn time_units(
    way: &str,
    units: u32,
    mut unit: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<UnitCost> {
    unit()?;
    let (mut latencies, mut cpus, mut finished) = (Vec::new(), Vec::new(), 0);
    for size in batch_sizes(units, BATCHES) {
        let cpu_before = process_cpu_time() + children_cpu_time();
        let started = Instant::now();
        for _ in 0..size {
            stop_if_asked()?;
            finished += u32::from(unit()?);
        }
        latencies.push(started.elapsed().as_secs_f64() / f64::from(size));
        let cpu = (process_cpu_time() + children_cpu_time()).saturating_sub(cpu_before);
        cpus.push(cpu.as_secs_f64() / f64::from(size));
    }
    Ok(UnitCost { way: way.into(), units, finished, latency: median(&latencies), cpu: median(&cpus) })
}

/// An error once Ctrl-C (or SIGTERM) started the clean-up: the lab starts
/// no more children, which the clean-up would have to find and kill, and
/// `common::cli::finish` waits for it to end the process.
fn stop_if_asked() -> anyhow::Result<()> {
    anyhow::ensure!(!common::cleanup::stopping(), "stopped by a signal");
    Ok(())
}

/// `units` split into at most `batches` batches, as even as they go.
fn batch_sizes(units: u32, batches: u32) -> Vec<u32> {
    let batches = batches.clamp(1, units.max(1));
    (0..batches).map(|i| units / batches + u32::from(i < units % batches)).collect()
}

fn cost_of<'a>(costs: &'a [UnitCost], way: &str) -> &'a UnitCost {
    costs.iter().find(|cost| cost.way == way).expect("every way was measured")
}

/// A table of costs, each way's CPU time against `reference`'s.
fn tabulate_costs(report: &mut Report, costs: &[UnitCost], reference: &str) {
    let reference_cpu = cost_of(costs, reference).cpu;
    for cost in costs {
        report.figure(&cost.way, "units", cost.units, "runs");
        report.figure(&cost.way, "finished", cost.finished, "runs");
        report.figure(&cost.way, "latency", cost.latency * 1e3, "ms");
        report.figure(&cost.way, "CPU per unit", cost.cpu * 1e3, "ms");
        report.figure(&cost.way, "CPU vs thread", cost.cpu / reference_cpu.max(1e-9), "x");
        if cost.way == "fork" {
            report.key();
        }
    }
}

/// Claim `process-costs-more`: a fork and a spawn each cost at least
/// `PROCESS_FACTOR` times a thread's CPU time per unit.
fn process_costs_more(costs: &[UnitCost]) -> Claim {
    let thread = cost_of(costs, "thread");
    let (fork, spawn) = (cost_of(costs, "fork"), cost_of(costs, "spawn, this program"));
    let evidence = format!(
        "thread {:.3} ms, fork {:.3} ms ({:.1}x), spawn {:.3} ms ({:.1}x) per unit; latency {:.3}, {:.3} \
         and {:.3} ms",
        thread.cpu * 1e3,
        fork.cpu * 1e3,
        fork.cpu / thread.cpu.max(1e-9),
        spawn.cpu * 1e3,
        spawn.cpu / thread.cpu.max(1e-9),
        thread.latency * 1e3,
        fork.latency * 1e3,
        spawn.latency * 1e3
    );
    Claim::check_given(
        "process-costs-more",
        format!(
            "a process, forked or spawned, takes at least {PROCESS_FACTOR}x a thread's CPU time to start and end"
        ),
        got_a_core(thread, "the thread starts"),
        fork.cpu >= PROCESS_FACTOR * thread.cpu && spawn.cpu >= PROCESS_FACTOR * thread.cpu,
        evidence,
    )
}

/// `Ok(())` if `threads` got a core when they started (latency at most
/// `WAITED` times their CPU time); otherwise the reason, in words, for an
/// inconclusive verdict: their CPU time was inflated by the wait.
fn got_a_core(threads: &UnitCost, who: &str) -> Result<(), String> {
    let waited = threads.latency / threads.cpu.max(1e-9);
    if waited <= WAITED {
        return Ok(());
    }
    Err(format!(
        "{who} waited for a core (other programs held them): {:.3} ms each against {:.3} ms of CPU time \
         ({waited:.1}x; at most {WAITED}x to judge), and a start that waits pays in CPU time too",
        threads.latency * 1e3,
        threads.cpu * 1e3
    ))
}

// ---------------------------------------------------------------------------
// 2. What a live unit adds to memory.
// ---------------------------------------------------------------------------

/// Bytes one live unit adds: address space, resident pages, private pages.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Added {
    reserved: f64,
    resident: f64,
    private: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct UnitMemory {
    /// Per thread: what `count` parked threads added to this process, over `count`.
    thread: Added,
    /// A live child's own figures, the median of `LIVE_CHILDREN`.
    forked: Added,
    spawned: Added,
}

/// The address space a process has reserved (`VmSize`), in bytes.
fn reserved_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .with_context(|| format!("no VmSize in {path}"))?;
    Ok(kib * 1024)
}

fn snapshot(pid: u32) -> anyhow::Result<(u64, Memory)> {
    Ok((reserved_bytes(pid)?, memory_of(pid)?))
}

fn unit_memory(threads: usize, stack_kib: usize) -> anyhow::Result<UnitMemory> {
    let this = std::process::id();
    let (reserved, before) = (reserved_bytes(this)?, memory_of_self()?);
    let (reserved_after, during) =
        with_threads_parked(threads, stack_kib, || snapshot(this)).context("keeping threads alive")??;
    let per_thread = |after: u64, before: u64| (after as f64 - before as f64) / threads as f64;
    let thread = Added {
        reserved: per_thread(reserved_after, reserved),
        resident: per_thread(during.rss_bytes, before.rss_bytes),
        private: per_thread(during.private_bytes, before.private_bytes),
    };
    let mut forked = Vec::new();
    let mut spawned = Vec::new();
    for _ in 0..LIVE_CHILDREN {
        stop_if_asked()?;
        let forked_child = with_forked_child_parked(stack_kib, |pid| snapshot(pid.as_raw() as u32));
        forked.push(forked_child.context("a forked child")??);
        spawned.push(with_spawned_child_parked(stack_kib, snapshot).context("a spawned child")??);
    }
    Ok(UnitMemory { thread, forked: median_added(&forked), spawned: median_added(&spawned) })
}

fn median_added(children: &[(u64, Memory)]) -> Added {
    let of = |bytes: fn(&(u64, Memory)) -> u64| {
        median(&children.iter().map(|c| bytes(c) as f64).collect::<Vec<_>>())
    };
    Added { reserved: of(|c| c.0), resident: of(|c| c.1.rss_bytes), private: of(|c| c.1.private_bytes) }
}

fn mib(bytes: f64) -> f64 {
    bytes / f64::from(1 << 20)
}

fn tabulate_memory(report: &mut Report, memory: &UnitMemory) {
    for (unit, added) in
        [("thread", memory.thread), ("forked child", memory.forked), ("spawned child", memory.spawned)]
    {
        report.figure(unit, "reserved", mib(added.reserved), "MiB");
        report.figure(unit, "resident", mib(added.resident), "MiB");
        report.figure(unit, "private", mib(added.private), "MiB");
        if memory.thread.private > 0.0 {
            report.figure(unit, "private vs thread", added.private / memory.thread.private, "x");
        }
    }
}

/// Claim `thread-is-lighter`: a live thread adds at most 1/`MEMORY_FACTOR`
/// of the private memory a live process has, forked or spawned.
fn thread_is_lighter(memory: &UnitMemory) -> Claim {
    let (thread, forked, spawned) = (memory.thread.private, memory.forked.private, memory.spawned.private);
    let kib = |bytes: f64| bytes / 1024.0;
    let evidence = format!(
        "a thread adds {:.1} KiB, a forked child has {:.1} KiB, a spawned one {:.1} KiB (and {:.2} MiB of \
         address space per thread)",
        kib(thread),
        kib(forked),
        kib(spawned),
        mib(memory.thread.reserved)
    );
    Claim::check(
        "thread-is-lighter",
        format!("a live thread adds at most 1/{MEMORY_FACTOR} of a live process's private memory"),
        thread * MEMORY_FACTOR <= forked && thread * MEMORY_FACTOR <= spawned,
        evidence,
    )
}

// ---------------------------------------------------------------------------
// 3. Python side by side.
// ---------------------------------------------------------------------------

/// Units for Python, each way: its Process with 'fork' costs about 20
/// threads, with 'spawn' a few hundred, so fewer of them keep it to about
/// a second at the default.
fn python_units(units: u32) -> [u32; 3] {
    [units, units.div_ceil(5), units.div_ceil(50).max(2)]
}

/// Runs spawn_cost.py and reads its JSON line: Python's version, and its costs.
fn python_costs(units: u32) -> anyhow::Result<(String, Vec<UnitCost>)> {
    // A file, not `python3 -c`: the 'spawn' start method imports the main
    // module again, by its path, in every new process.
    let scratch = TempDir::new("spawn-cost")?;
    let script = scratch.path().join("spawn_cost.py");
    std::fs::write(&script, SPAWN_COST_PY).with_context(|| format!("writing {}", script.display()))?;
    let [threads, forks, spawns] = python_units(units);
    let output = output_with_deadline(
        Command::new("python3").arg(&script).args([threads, forks, spawns, BATCHES].map(|n| n.to_string())),
        Duration::from_secs(600),
    )?;
    if !output.status.success() {
        bail!("python3 spawn_cost.py failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    parse_python(&output.stdout)
}

fn parse_python(stdout: &[u8]) -> anyhow::Result<(String, Vec<UnitCost>)> {
    let json: serde_json::Value = serde_json::from_slice(stdout).context("reading spawn_cost.py's JSON")?;
    let version = json["version"].as_str().unwrap_or("?").to_string();
    let ways = json["ways"].as_array().context("spawn_cost.py printed no ways")?;
    let names =
        [("thread", "python Thread"), ("fork", "python Process, fork"), ("spawn", "python Process, spawn")];
    names
        .iter()
        .map(|(key, way)| {
            let found = ways
                .iter()
                .find(|w| w["way"] == *key)
                .with_context(|| format!("no {key} in spawn_cost.py's JSON"))?;
            let number = |field: &str| {
                found[field].as_f64().with_context(|| format!("spawn_cost.py: no {key} {field}"))
            };
            Ok(UnitCost {
                way: way.to_string(),
                units: number("units")? as u32,
                finished: number("finished")? as u32,
                latency: number("latency_s")?,
                cpu: number("cpu_s")?,
            })
        })
        .collect::<anyhow::Result<Vec<UnitCost>>>()
        .map(|costs| (version, costs))
}

/// Claim `python-process-costs-more`: Python's Process, with 'fork' and with
/// 'spawn', each cost at least `PYTHON_FACTOR` times its Thread's CPU time.
fn python_process_costs_more(python: Option<&[UnitCost]>, mode: PythonMode) -> Claim {
    let (id, statement) = (
        "python-process-costs-more",
        format!("Python's Process, fork or spawn, takes at least {PYTHON_FACTOR}x its Thread's CPU time"),
    );
    let Some(costs) = python else {
        let why = match mode {
            PythonMode::Never => "--python never",
            _ => "no python3 on the PATH",
        };
        return Claim::skipped(id, statement, why);
    };
    let thread = cost_of(costs, "python Thread");
    let (fork, spawn) = (cost_of(costs, "python Process, fork"), cost_of(costs, "python Process, spawn"));
    let evidence = format!(
        "Thread {:.3} ms, fork {:.3} ms ({:.1}x), spawn {:.1} ms ({:.0}x) per unit; Thread latency {:.3} ms",
        thread.cpu * 1e3,
        fork.cpu * 1e3,
        fork.cpu / thread.cpu.max(1e-9),
        spawn.cpu * 1e3,
        spawn.cpu / thread.cpu.max(1e-9),
        thread.latency * 1e3
    );
    Claim::check_given(
        id,
        statement,
        got_a_core(thread, "Python's Thread starts"),
        fork.cpu >= PYTHON_FACTOR * thread.cpu && spawn.cpu >= PYTHON_FACTOR * thread.cpu,
        evidence,
    )
}

fn notes(report: &mut Report, python: Option<(&str, [u32; 3])>) {
    report.note(
        "latency: the median over the batches of a batch's time per unit. CPU per unit: this \
         process's CPU time and its reaped children's, per unit, the median over the batches. Time \
         spent waiting for a core is not in it, but a start that waited was switched out and in \
         again, which costs CPU time too: the claims are inconclusive when the threads waited.",
    );
    report.note(
        "reserved: address space (VmSize); resident: pages in memory (RSS), shared ones too; \
         private: pages no other process maps. A thread's figures are what the live threads added \
         to this process, per thread: its 2 MiB stack, and its share of malloc's arenas (glibc \
         gives threads up to 8 per core, each 64 MiB of address space); a forked child reserves \
         all its parent had. The kernel's own memory for a task (its kernel stack, a process's \
         page tables) is in none of them.",
    );
    if let Some((version, [threads, forks, spawns])) = python {
        report.note(format!(
            "Python {version} ran {threads} Threads, {forks} Processes with 'fork' and {spawns} with 'spawn'."
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::report::Verdict;

    #[test]
    fn batches_split_the_units_evenly() {
        assert_eq!(batch_sizes(25, 10), [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]);
        assert_eq!(batch_sizes(3, 10), [1, 1, 1]);
        assert_eq!(batch_sizes(1, 10), [1]);
    }

    /// Costs per unit, in milliseconds of CPU time, for each way in the lab's order.
    fn costs(ways: &[&str], cpu_ms: &[f64]) -> Vec<UnitCost> {
        let cost = |(way, ms): (&&str, &f64)| UnitCost {
            way: way.to_string(),
            units: 10,
            finished: 10,
            latency: ms / 1e3,
            cpu: ms / 1e3,
        };
        ways.iter().zip(cpu_ms).map(cost).collect()
    }

    const RUST: [&str; 4] = ["thread", "fork", "spawn, this program", "spawn /bin/true"];
    const PYTHON: [&str; 3] = ["python Thread", "python Process, fork", "python Process, spawn"];

    #[test]
    fn process_costs_more_fails_when_a_process_costs_what_a_thread_costs() {
        assert_eq!(process_costs_more(&costs(&RUST, &[0.03, 0.16, 0.8, 0.5])).verdict, Verdict::Holds);
        // The phenomenon removed, with a real measurement: threads timed
        // here, their cost given to every way, as if a process were a thread.
        let thread = time_units("thread", 20, || thread_unit().map(|()| true).context("thread")).unwrap();
        assert_eq!((thread.units, thread.finished), (20, 20));
        let as_cheap: Vec<UnitCost> =
            RUST.iter().map(|way| UnitCost { way: way.to_string(), ..thread.clone() }).collect();
        // It never holds: does not hold when the threads got a core at
        // once, inconclusive when they waited for one (a busy machine).
        let claim = process_costs_more(&as_cheap);
        match claim.verdict {
            Verdict::DoesNotHold => {}
            Verdict::Inconclusive => assert!(claim.reason.is_some()),
            other => panic!("{other:?}: {}", claim.evidence),
        }
        // Under the margin for one of the two is enough to fail.
        assert_eq!(process_costs_more(&costs(&RUST, &[0.1, 0.15, 0.8, 0.5])).verdict, Verdict::DoesNotHold);
        assert_eq!(process_costs_more(&costs(&RUST, &[0.1, 0.3, 0.15, 0.5])).verdict, Verdict::DoesNotHold);
    }

    fn added(private_kib: f64) -> Added {
        Added { reserved: 2e6, resident: private_kib * 1024.0, private: private_kib * 1024.0 }
    }

    #[test]
    fn thread_is_lighter_fails_when_the_units_work_as_much_as_a_process_costs() {
        let bare = UnitMemory { thread: added(9.6), forked: added(140.0), spawned: added(160.0) };
        assert_eq!(thread_is_lighter(&bare).verdict, Verdict::Holds);
        // Every unit writes 1 MiB of its stack: the same for each, so the
        // thread is no longer a small fraction (the --stack-kib 1024 run).
        let working = UnitMemory { thread: added(1033.6), forked: added(1164.0), spawned: added(1184.0) };
        assert_eq!(thread_is_lighter(&working).verdict, Verdict::DoesNotHold);
        // A process about as small as a thread, forked or spawned.
        let small = UnitMemory { forked: added(20.0), ..bare };
        assert_eq!(thread_is_lighter(&small).verdict, Verdict::DoesNotHold);
        let small = UnitMemory { spawned: added(20.0), ..bare };
        assert_eq!(thread_is_lighter(&small).verdict, Verdict::DoesNotHold);
    }

    #[test]
    fn parked_threads_add_the_stack_they_use() {
        // What `unit_memory` measures, in this process: the private memory
        // 50 parked threads add, bare and after each wrote 512 KiB of stack.
        // The other tests run beside this one (their threads' stacks count
        // too), so the bounds leave room.
        let added_per_thread = |stack_kib| {
            let before = memory_of_self().unwrap().private_bytes as f64;
            let during = with_threads_parked(50, stack_kib, || memory_of_self().unwrap()).unwrap();
            (during.private_bytes as f64 - before) / 50.0 / 1024.0
        };
        let (bare, working) = (added_per_thread(0), added_per_thread(512));
        assert!(working - bare >= 384.0, "{bare} KiB per bare thread, {working} KiB after 512 KiB of stack");
        assert!(bare < working / 4.0, "{bare} KiB per bare thread, {working} KiB after 512 KiB of stack");
    }

    #[test]
    fn cpu_claims_are_inconclusive_when_the_threads_waited_for_a_core() {
        // Measured beside two spinning shells: the thread starts waited 48x
        // their CPU time, which the wait inflated (0.108 ms, 0.029 ms when
        // they got a core), and fork looked only 2.2x a thread.
        let mut waited = costs(&RUST, &[0.108, 0.235, 1.188, 0.6]);
        waited[0].latency = 3.127e-3;
        let claim = process_costs_more(&waited);
        assert_eq!(claim.verdict, Verdict::Inconclusive);
        assert!(claim.reason.unwrap().contains("the thread starts waited for a core"), "{}", claim.evidence);
        // Within the bound, the figures are judged, either way.
        waited[0].latency = 0.3e-3;
        assert_eq!(process_costs_more(&waited).verdict, Verdict::Holds);
        waited[0].cpu = 0.2e-3;
        assert_eq!(process_costs_more(&waited).verdict, Verdict::DoesNotHold);
        // Python's claim asks the same of its Thread.
        let mut python = costs(&PYTHON, &[0.3, 1.8, 50.0]);
        python[0].latency = 5e-3;
        assert_eq!(python_process_costs_more(Some(&python), PythonMode::Auto).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn python_claim_fails_when_its_process_costs_what_its_thread_costs() {
        let verdict =
            |ms: &[f64]| python_process_costs_more(Some(&costs(&PYTHON, ms)), PythonMode::Auto).verdict;
        assert_eq!(verdict(&[0.1, 1.8, 50.0]), Verdict::Holds);
        assert_eq!(verdict(&[0.1, 0.1, 0.1]), Verdict::DoesNotHold);
        assert_eq!(verdict(&[0.1, 0.3, 50.0]), Verdict::DoesNotHold);
        let skipped = python_process_costs_more(None, PythonMode::Never);
        assert_eq!((skipped.verdict, skipped.reason.as_deref()), (Verdict::Skipped, Some("--python never")));
        assert_eq!(python_process_costs_more(None, PythonMode::Auto).verdict, Verdict::Skipped);
    }

    #[test]
    fn python_output_is_read_by_way() {
        let line = br#"{"version": "3.11.7", "ways": [
            {"way": "spawn", "units": 2, "finished": 2, "latency_s": 0.05, "cpu_s": 0.06},
            {"way": "thread", "units": 50, "finished": 50, "latency_s": 0.0001, "cpu_s": 0.0001},
            {"way": "fork", "units": 10, "finished": 9, "latency_s": 0.002, "cpu_s": 0.002}]}"#;
        let (version, costs) = parse_python(line).unwrap();
        assert_eq!(version, "3.11.7");
        let ways: Vec<(&str, u32, u32)> =
            costs.iter().map(|c| (c.way.as_str(), c.units, c.finished)).collect();
        assert_eq!(
            ways,
            [("python Thread", 50, 50), ("python Process, fork", 10, 9), ("python Process, spawn", 2, 2)]
        );
        assert!(parse_python(br#"{"version": "3", "ways": []}"#).is_err());
        assert!(parse_python(b"Traceback").is_err());
    }

    #[test]
    fn live_threads_that_would_not_fit_in_memory_are_refused() {
        const GIB: u64 = 1 << 30;
        assert!(check_memory(10_000, 1024, 24 * GIB).is_ok());
        let refused = check_memory(10_000, 1024, 16 * GIB).unwrap_err();
        assert!(refused.is::<common::cli::UsageError>());
        assert_eq!(
            refused.to_string(),
            "--units 10000 --stack-kib 1024: the live threads would hold about 10156 MiB, and 16384 MiB \
             are available"
        );
        assert!(check_memory(500, 0, GIB).is_ok());
    }

    #[test]
    fn python_units_shrink_for_the_costlier_ways() {
        assert_eq!(python_units(500), [500, 100, 10]);
        assert_eq!(python_units(1), [1, 1, 2]);
    }
}

/// The `main` that `cargo xtask eject` gives the standalone crate. It starts
/// this executable again, so it is compiled with the tests, not run by them.
#[cfg(test)]
#[allow(dead_code)]
mod standalone {
    use crate::*;
    include!("standalone.rs");
}
