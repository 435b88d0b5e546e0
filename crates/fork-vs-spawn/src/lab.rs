//! The experiment around the lesson: each start method timed and charged
//! for its CPU time, the copying child's memory read from inside it, the
//! forked child that cannot take the lock killed at a timeout, and the claims.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use common::cli::{CommonArgs, usage_error};
use common::measure::{CpuWindow, Memory, available_bytes, median, parse_smaps_rollup, thread_cpu_time};
use common::{Claim, Report};
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{
    ForkServer, fork_and_take_lock, fork_and_write_half, fork_child, pipe, reap, spawn_child, start_forked,
    start_spawned, start_thread, while_another_thread_holds_the_lock,
};

#[derive(Parser, Debug)]
#[command(name = "fork-vs-spawn", version, about, max_term_width = 80)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Workers started by each method [default: 200, 20 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    starts: Option<u32>,

    /// MiB of memory the parent holds for the copy-on-write experiment [default: 256, 64 with --quick].
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    size_mib: Option<u64>,

    /// Milliseconds to wait for a forked child to take the lock before killing it.
    #[arg(long, value_name = "MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    timeout_ms: u64,

    /// Trials of the fork-while-locked experiment [default: 3, 1 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    trials: Option<u32>,
}

/// How many times spawn's CPU cost per start must exceed fork's (and the
/// fork server's) for `fork-faster` (`forkserver-faster`) to hold.
const CHEAPER: f64 = 1.5;

/// `fork` calls timed for `fork-grows-with-memory`, bare and with the buffer.
const FORK_CALLS: u32 = 50;

/// Below this buffer size the memory claims are skipped: the child's own
/// pages (its stack, the pipe's buffer, ...), some 100 KiB, are no longer
/// small beside the buffer, and neither is a bare fork's cost beside the
/// buffer's page tables.
const MEASURABLE_MIB: u64 = 16;

/// How long a spawned child has to take its fresh lock: it needs a start,
/// so a busy machine gets more than the forked child's timeout.
const SPAWNED_TAKES_LOCK: Duration = Duration::from_secs(10);

pub fn main() -> ExitCode {
    // A spawned child plays its role and exits.
    if let Some(code) = common::child::play_role(|role, args| {
        crate::child_main(role, args).with_context(|| format!("child role {role}"))
    }) {
        return code;
    }
    // The fork server must be forked while this process has one thread:
    // before `install` starts the thread that cleans up on Ctrl-C.
    let server = ForkServer::start().context("forking the fork server");
    let args: Args = common::cli::parse();
    let size_mib = args.size_mib.unwrap_or(args.common.pick(256, 64));
    let checked = check_memory(size_mib).and_then(|size| {
        let change = "--starts, --trials, --timeout-ms or --size-mib";
        args.common.check_run_time(run_time(&args), change).map(|()| size)
    });
    common::cleanup::install();
    let outcome = checked.and_then(|size| Ok((size, server?)));
    common::cli::finish(&args.common, outcome.and_then(|(size, server)| run(&args, size, server)))
}

/// How long these flags make the run, worked out before anything starts:
/// four methods per start at most 5 ms each (a spawn in a debug build, with
/// room), each hazard trial its timeout, and the fork calls at most 1 ms
/// per 50 MiB of buffer.
fn run_time(args: &Args) -> Duration {
    let starts = f64::from(args.starts.unwrap_or(args.common.pick(200, 20)));
    let trials = f64::from(args.trials.unwrap_or(args.common.pick(3, 1)));
    let size_mib = args.size_mib.unwrap_or(args.common.pick(256, 64)) as f64;
    let fork_calls = f64::from(FORK_CALLS) * 2.0 * (size_mib / 50.0 + 1.0) * 1e-3;
    Duration::from_secs_f64(starts * 4.0 * 5e-3 + trials * args.timeout_ms as f64 * 1e-3 + fork_calls)
}

/// The experiment, with a buffer of `size` bytes that fits in memory.
fn run(args: &Args, size: usize, server: ForkServer) -> anyhow::Result<Report> {
    let starts = args.starts.unwrap_or(args.common.pick(200, 20));
    let size_mib = (size >> 20) as u64;
    let trials = args.trials.unwrap_or(args.common.pick(3, 1));
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut report = common::lesson_report!();
    report.param("starts", starts).param("size_mib", size_mib);
    report.param("timeout_ms", args.timeout_ms).param("trials", trials);

    report.table(format!("start a worker, until its first message ({starts} starts each)"));
    let costs = start_costs(starts, server)?;
    tabulate_starts(&mut report, &costs);
    report.claim(fork_faster(&costs)).claim(forkserver_faster(&costs));

    report.table(format!("copy-on-write: the parent holds {size_mib} MiB"));
    let cow = copy_on_write(size)?;
    tabulate_copy_on_write(&mut report, &cow);
    if size_mib < MEASURABLE_MIB {
        let why = format!(
            "{size_mib} MiB is too small beside what a fork costs anyway (use {MEASURABLE_MIB} or more)"
        );
        report.claim(Claim::skipped("copy-on-write", COPY_ON_WRITE, &why));
        report.claim(Claim::skipped("fork-grows-with-memory", FORK_GROWS, why));
    } else {
        report.claim(copy_on_write_claim(&cow)).claim(fork_grows_with_memory(&cow, size_mib));
    }

    report.table(format!("take a lock another thread of the parent holds ({trials} trials)"));
    let hazard = Hazard {
        forked: while_another_thread_holds_the_lock(|| forked_trials(timeout, trials))??,
        spawned_got_lock: spawned_trials(trials)?,
        trials,
    };
    tabulate_hazard(&mut report, &hazard);
    report.claim(fork_while_locked(&hazard, args.timeout_ms));
    Ok(report)
}

/// The buffer's size in bytes, or a usage error if it would not fit: the
/// parent holds it and the child copies half of it.
fn check_memory(size_mib: u64) -> anyhow::Result<usize> {
    let needed = (size_mib * 3 / 2) << 20;
    let available = available_bytes()?;
    if needed > available {
        return Err(usage_error(format!(
            "--size-mib {size_mib} needs about {} MiB and {} MiB are available",
            needed >> 20,
            available >> 20
        )));
    }
    usize::try_from(size_mib << 20).map_err(|_| usage_error("--size-mib does not fit in memory"))
}

// ---------------------------------------------------------------------------
// 1. What a start costs.
// ---------------------------------------------------------------------------

/// One start method's figures.
#[derive(Debug, Clone, Copy)]
struct StartCost {
    method: &'static str,
    /// The median time from "start" to the worker's first message, in seconds.
    latency: f64,
    /// CPU time per start, in seconds: this process's and its children's
    /// (once reaped), so the parent's side and the child's are both in it.
    /// Waiting for a core does not count, so a busy machine barely moves it.
    cpu: f64,
}

/// Starts `starts` workers by each method, one after the other, each joined
/// or reaped before the next. The fork server is stopped and reaped inside
/// its window, so its own CPU time and its workers' are in its figure (its
/// time before the window, a few page faults after its fork, is too).
fn start_costs(starts: u32, mut server: ForkServer) -> anyhow::Result<Vec<StartCost>> {
    let thread = measure_starts("thread", starts, || {
        let worker = start_thread().context("starting a thread")?;
        Ok((Instant::now(), worker.join().map_err(|_| anyhow::anyhow!("the worker panicked"))?))
    })?;
    let forked = measure_starts("fork", starts, || {
        let child = start_forked().context("forking a worker")?;
        Ok((Instant::now(), reap(child).context("reaping a forked worker")?))
    })?;
    let window = CpuWindow::start();
    let mut served =
        measure_starts("forkserver", starts, || Ok((server.start_worker().map(|()| Instant::now())?, ())))?;
    drop(server);
    served.cpu = window.stop().cpu.as_secs_f64() / f64::from(starts);
    let spawned = measure_starts("spawn", starts, || {
        let child = start_spawned().context("spawning a worker")?;
        let arrived = Instant::now();
        let status = child.wait_with_output().context("waiting for a spawned worker")?.status;
        ensure!(status.success(), "a spawned worker failed: {status}");
        Ok((arrived, ()))
    })?;
    Ok(vec![thread, forked, served, spawned])
}

/// Runs `start` `starts` times; it returns when its worker's first message
/// arrived, after joining or reaping the worker.
fn measure_starts(
    method: &'static str,
    starts: u32,
    mut start: impl FnMut() -> anyhow::Result<(Instant, ())>,
) -> anyhow::Result<StartCost> {
    let window = CpuWindow::start();
    let mut latencies = Vec::with_capacity(starts as usize);
    for _ in 0..starts {
        let started = Instant::now();
        let (arrived, ()) = start()?;
        latencies.push(arrived.duration_since(started).as_secs_f64());
    }
    let cpu = window.stop().cpu.as_secs_f64() / f64::from(starts);
    Ok(StartCost { method, latency: median(&latencies), cpu })
}

fn tabulate_starts(report: &mut Report, costs: &[StartCost]) {
    let fork_cpu = cost_of(costs, "fork").cpu;
    for cost in costs {
        report.figure(cost.method, "latency", cost.latency * 1e3, "ms");
        report.figure(cost.method, "CPU per start", cost.cpu * 1e3, "ms");
        report.figure(cost.method, "CPU vs fork", cost.cpu / fork_cpu, "x");
        if cost.method == "spawn" {
            report.key();
        }
    }
    report.note(
        "latency: the median from asking for a worker to its first message. CPU per start: this \
         process's CPU time and its reaped children's, over the starts: the parent's side and the \
         child's, without the time spent waiting for a core.",
    );
}

fn cost_of<'a>(costs: &'a [StartCost], method: &str) -> &'a StartCost {
    costs.iter().find(|cost| cost.method == method).expect("every method was measured")
}

/// Whether spawn's CPU per start is at least `CHEAPER` times `method`'s.
fn spawn_costs_more(costs: &[StartCost], method: &str) -> (bool, String) {
    let (spawn, other) = (cost_of(costs, "spawn"), cost_of(costs, method));
    let evidence = format!(
        "CPU per start: spawn {:.3} ms, {method} {:.3} ms: {:.1}x (latency {:.3} vs {:.3} ms)",
        spawn.cpu * 1e3,
        other.cpu * 1e3,
        spawn.cpu / other.cpu,
        spawn.latency * 1e3,
        other.latency * 1e3
    );
    (spawn.cpu >= CHEAPER * other.cpu, evidence)
}

fn fork_faster(costs: &[StartCost]) -> Claim {
    let (holds, evidence) = spawn_costs_more(costs, "fork");
    Claim::check("fork-faster", "fork starts a worker for under 1/1.5 of spawn's CPU time", holds, evidence)
}

fn forkserver_faster(costs: &[StartCost]) -> Claim {
    let (holds, evidence) = spawn_costs_more(costs, "forkserver");
    let statement = "a fork server starts a worker for under 1/1.5 of spawn's CPU time";
    Claim::check("forkserver-faster", statement, holds, evidence)
}

// ---------------------------------------------------------------------------
// 2. Copy-on-write, and what a big parent costs `fork` itself.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct CopyOnWrite {
    size: usize,
    /// The child's memory right after the fork, and after it wrote half the buffer.
    after_fork: Memory,
    after_writing: Memory,
    /// The median CPU time of the `fork` call in the parent: bare, and with
    /// the buffer resident.
    bare_fork: f64,
    big_fork: f64,
}

/// The CPU time the `fork` call takes in the parent (copying the page
/// tables is its work); the child exits at once.
fn fork_call() -> anyhow::Result<f64> {
    let before = thread_cpu_time();
    let child = fork_child(|| 0).context("fork")?;
    let spent = thread_cpu_time().saturating_sub(before);
    reap(child).context("reaping a forked child")?;
    Ok(spent.as_secs_f64())
}

fn median_fork_call() -> anyhow::Result<f64> {
    Ok(median(&(0..FORK_CALLS).map(|_| fork_call()).collect::<anyhow::Result<Vec<f64>>>()?))
}

/// Fills a buffer of `size` bytes (so every page is resident), times the
/// `fork` call with and without it, and forks the child that writes half of
/// it, which reports its own memory through a pipe at each checkpoint.
fn copy_on_write(size: usize) -> anyhow::Result<CopyOnWrite> {
    let bare_fork = median_fork_call()?;
    let mut buffer = vec![1u8; size];
    let big_fork = median_fork_call()?;
    let (mut from_child, to_parent) = pipe().context("creating a pipe")?;
    let child = fork_and_write_half(&mut buffer, || send_own_smaps(&to_parent).is_ok())
        .context("forking the copy-on-write child")?;
    drop(to_parent);
    let after_fork = receive_smaps(&mut from_child);
    let after_writing = receive_smaps(&mut from_child);
    reap(child).context("reaping the copy-on-write child")?;
    std::hint::black_box(&buffer);
    Ok(CopyOnWrite { size, after_fork: after_fork?, after_writing: after_writing?, bare_fork, big_fork })
}

/// In a forked child: sends its `/proc/self/smaps_rollup`, length first,
/// with `open`, `read` and `write` into a buffer on the stack (no allocation:
/// the forked child's rule).
fn send_own_smaps(to_parent: &OwnedFd) -> nix::Result<()> {
    let file = nix::fcntl::open("/proc/self/smaps_rollup", OFlag::O_RDONLY, nix::sys::stat::Mode::empty())?;
    let mut text = [0u8; 4096];
    let mut len = 0;
    while len < text.len() {
        match nix::unistd::read(&file, &mut text[len..])? {
            0 => break,
            n => len += n,
        }
    }
    write_all(to_parent, &(len as u32).to_le_bytes())?;
    write_all(to_parent, &text[..len])
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        bytes = &bytes[nix::unistd::write(fd, bytes)?..];
    }
    Ok(())
}

/// In the parent: one message of `send_own_smaps`, parsed.
fn receive_smaps(from_child: &mut File) -> anyhow::Result<Memory> {
    let mut len = [0u8; 4];
    from_child.read_exact(&mut len).context("the child sent no memory report")?;
    let mut text = vec![0u8; u32::from_le_bytes(len) as usize];
    from_child.read_exact(&mut text).context("the child's memory report was cut short")?;
    parse_smaps_rollup(&String::from_utf8_lossy(&text))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

fn tabulate_copy_on_write(report: &mut Report, cow: &CopyOnWrite) {
    report.figure("child, right after fork", "private", mib(cow.after_fork.private_bytes), "MiB");
    report.figure("child, after writing half", "private", mib(cow.after_writing.private_bytes), "MiB");
    report.figure("child, after writing half", "expected", mib(cow.size as u64 / 2), "MiB");
    report.figure("fork() call, bare", "CPU", cow.bare_fork * 1e3, "ms");
    report.figure("fork() call, buffer resident", "CPU", cow.big_fork * 1e3, "ms");
    report.note(
        "private: the child's pages no other process maps (smaps_rollup), read by the child itself. \
         CPU: the median CPU time of the fork call in the parent.",
    );
}

const COPY_ON_WRITE: &str =
    "after fork the child owns under 5% of the buffer; writing half makes about half its own (within 15%)";
const FORK_GROWS: &str =
    "the fork call costs more CPU time when the parent has more memory resident (at least 2x)";

fn copy_on_write_claim(cow: &CopyOnWrite) -> Claim {
    let (size, half) = (cow.size as f64, cow.size as f64 / 2.0);
    let after_fork = cow.after_fork.private_bytes as f64;
    let copied = cow.after_writing.private_bytes as f64 - after_fork;
    Claim::check(
        "copy-on-write",
        COPY_ON_WRITE,
        after_fork < 0.05 * size && (copied - half).abs() <= 0.15 * half,
        format!(
            "private {:.1} MiB after fork, {:.1} MiB after writing {:.1} MiB",
            mib(cow.after_fork.private_bytes),
            mib(cow.after_writing.private_bytes),
            half / f64::from(1 << 20)
        ),
    )
}

fn fork_grows_with_memory(cow: &CopyOnWrite, size_mib: u64) -> Claim {
    Claim::check(
        "fork-grows-with-memory",
        FORK_GROWS,
        cow.big_fork >= 2.0 * cow.bare_fork,
        format!(
            "{:.3} ms with {size_mib} MiB resident vs {:.3} ms bare: {:.1}x",
            cow.big_fork * 1e3,
            cow.bare_fork * 1e3,
            cow.big_fork / cow.bare_fork
        ),
    )
}

// ---------------------------------------------------------------------------
// 3. The hazard.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Forked {
    got_lock: u32,
    /// Asleep (on the lock) when the timeout came, and killed.
    stuck: u32,
    /// Not asleep when the timeout came: it may not have run yet.
    not_seen_waiting: u32,
}

#[derive(Debug, Clone, Copy)]
struct Hazard {
    forked: Forked,
    spawned_got_lock: u32,
    trials: u32,
}

/// Forks `trials` children that try to take `SHARED`, each given `timeout`
/// to say it got it. One that did not is killed, after the lab looked at
/// whether it was asleep (waiting on the lock) or had not run at all.
fn forked_trials(timeout: Duration, trials: u32) -> anyhow::Result<Forked> {
    let mut forked = Forked::default();
    for _ in 0..trials {
        let (mut from_child, to_parent) = pipe().context("creating a pipe")?;
        let child = fork_and_take_lock(&to_parent).context("forking a child to take the lock")?;
        drop(to_parent);
        let got = byte_within(&mut from_child, timeout);
        if !matches!(got, Ok(true)) {
            match process_state(child) {
                Some('S') => forked.stuck += 1,
                _ => forked.not_seen_waiting += 1,
            }
            let _ = kill(child, Signal::SIGKILL);
        } else {
            forked.got_lock += 1;
        }
        reap(child).context("reaping a forked child")?;
        got?;
    }
    Ok(forked)
}

/// Spawns `trials` children that take their own `SHARED`: how many said
/// they got it (a spawned child that stays silent is killed at a bound).
fn spawned_trials(trials: u32) -> anyhow::Result<u32> {
    let mut got_lock = 0;
    for _ in 0..trials {
        let mut child = spawn_child("take-lock").context("spawning a child to take the lock")?;
        let said = byte_within(child.stdout.as_mut().expect("stdout is piped"), SPAWNED_TAKES_LOCK);
        if matches!(said, Ok(true)) {
            got_lock += 1;
        } else {
            let _ = child.kill();
        }
        child.wait().context("waiting for a spawned child")?;
        said?;
    }
    Ok(got_lock)
}

/// Whether one byte arrives on `pipe` within `timeout`.
fn byte_within(pipe: &mut (impl Read + AsFd), timeout: Duration) -> anyhow::Result<bool> {
    let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut fds, PollTimeout::try_from(timeout).context("timeout")?).context("poll")?;
    Ok(ready > 0 && pipe.read(&mut [0u8]).context("reading the pipe")? == 1)
}

/// The state letter of a process (`/proc/PID/stat`): `S` asleep, `R` running or runnable.
fn process_state(pid: Pid) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn tabulate_hazard(report: &mut Report, hazard: &Hazard) {
    report.figure("forked child", "got the lock", hazard.forked.got_lock, "trials");
    report.figure("forked child", "stuck until killed", hazard.forked.stuck, "trials");
    report.figure("spawned child", "got the lock", hazard.spawned_got_lock, "trials");
}

fn fork_while_locked(hazard: &Hazard, timeout_ms: u64) -> Claim {
    let (id, statement) = (
        "fork-while-locked",
        "a child forked while another thread held the lock stayed stuck; a spawned child took it",
    );
    let Hazard { forked, spawned_got_lock, trials } = *hazard;
    let evidence = format!(
        "forked: asleep on the lock for the whole {timeout_ms} ms in {}/{trials} trials, got it in {}; \
         spawned: got the lock in {spawned_got_lock}/{trials}",
        forked.stuck, forked.got_lock
    );
    if forked.not_seen_waiting > 0 && forked.got_lock == 0 {
        let reason = format!(
            "{} of {trials} forked children were not asleep when the timeout came (the machine may be \
             too busy to run them within {timeout_ms} ms); give a longer --timeout-ms",
            forked.not_seen_waiting
        );
        return Claim::inconclusive(id, statement, reason, evidence);
    }
    Claim::check(id, statement, forked.stuck == trials && spawned_got_lock == trials, evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::report::Verdict;

    fn costs(fork_ms: f64, server_ms: f64, spawn_ms: f64) -> Vec<StartCost> {
        let cost = |method, cpu: f64| StartCost { method, latency: cpu / 1e3, cpu: cpu / 1e3 };
        vec![
            cost("thread", 0.03),
            cost("fork", fork_ms),
            cost("forkserver", server_ms),
            cost("spawn", spawn_ms),
        ]
    }

    #[test]
    fn start_claims_fail_when_spawn_costs_what_fork_costs() {
        let measured = costs(0.2, 0.15, 0.9);
        assert_eq!(fork_faster(&measured).verdict, Verdict::Holds);
        assert_eq!(forkserver_faster(&measured).verdict, Verdict::Holds);
        let same = costs(0.5, 0.5, 0.55);
        assert_eq!(fork_faster(&same).verdict, Verdict::DoesNotHold);
        assert_eq!(forkserver_faster(&same).verdict, Verdict::DoesNotHold);
    }

    fn cow(after_fork_mib: u64, after_writing_mib: u64, bare: f64, big: f64) -> CopyOnWrite {
        let memory =
            |mib: u64| Memory { rss_bytes: 0, pss_bytes: 0, private_bytes: mib << 20, anonymous_bytes: 0 };
        CopyOnWrite {
            size: 64 << 20,
            after_fork: memory(after_fork_mib),
            after_writing: memory(after_writing_mib),
            bare_fork: bare,
            big_fork: big,
        }
    }

    #[test]
    fn copy_on_write_fails_when_the_fork_copies_everything_or_nothing_is_written() {
        assert_eq!(copy_on_write_claim(&cow(0, 32, 1.0, 1.0)).verdict, Verdict::Holds);
        // A fork that copied the whole buffer at once.
        assert_eq!(copy_on_write_claim(&cow(64, 64, 1.0, 1.0)).verdict, Verdict::DoesNotHold);
        // A child whose writes copied nothing (or wrote nothing).
        assert_eq!(copy_on_write_claim(&cow(0, 0, 1.0, 1.0)).verdict, Verdict::DoesNotHold);
    }

    #[test]
    fn fork_grows_with_memory_fails_when_the_fork_costs_the_same() {
        assert_eq!(fork_grows_with_memory(&cow(0, 32, 1e-4, 8e-3), 64).verdict, Verdict::Holds);
        assert_eq!(fork_grows_with_memory(&cow(0, 32, 1e-4, 1.2e-4), 64).verdict, Verdict::DoesNotHold);
    }

    #[test]
    fn fork_while_locked_fails_when_nobody_holds_the_lock() {
        // The phenomenon removed, for real: no other thread holds `SHARED`
        // at the fork, so the forked child takes it at once.
        let forked = forked_trials(Duration::from_secs(10), 2).unwrap();
        assert_eq!(forked, Forked { got_lock: 2, stuck: 0, not_seen_waiting: 0 });
        let hazard = Hazard { forked, spawned_got_lock: 2, trials: 2 };
        assert_eq!(fork_while_locked(&hazard, 10_000).verdict, Verdict::DoesNotHold);
        // And held: the same trials while another thread holds it.
        let forked = while_another_thread_holds_the_lock(|| forked_trials(Duration::from_millis(200), 1))
            .unwrap()
            .unwrap();
        assert_eq!(forked.got_lock, 0, "{forked:?}");
    }

    #[test]
    fn fork_while_locked_is_inconclusive_when_the_child_never_ran() {
        let forked = Forked { got_lock: 0, stuck: 1, not_seen_waiting: 1 };
        let hazard = Hazard { forked, spawned_got_lock: 2, trials: 2 };
        assert_eq!(fork_while_locked(&hazard, 500).verdict, Verdict::Inconclusive);
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
