//! Fork starts a worker faster than spawn and shares memory until it is
//! written, but forking a process that has other threads can leave the child
//! stuck forever on a lock it copied in the locked state.
//!
//! Python's `multiprocessing` has three start methods, and this lesson runs
//! each: 'fork' (the child is a copy of the parent, made by `fork`), 'spawn'
//! (a fresh run of the program, told which role to play) and 'forkserver' (a
//! small single-threaded process, started before anything else, forks each
//! worker on request). It times each from "start a worker" to "first message
//! from the worker", with a thread as the reference. It shows copy-on-write:
//! a child forked from a parent holding a big buffer owns almost none of it
//! until it writes, and then owns what it wrote; and `fork` itself slows down
//! as the parent's memory grows, because the page tables are copied. Last,
//! the hazard: a second thread holds a `Mutex` while the parent forks; the
//! child's copy of the lock is locked, by a thread that does not exist in the
//! child, so the child waits forever (here: until a timeout kills it), while
//! a spawned child takes its own fresh lock at once.
//!
//! That hazard is why Python moved away from 'fork': Python 3.12 warns
//! (`DeprecationWarning`) when a process with several threads forks, and
//! Python 3.14 made 'forkserver' the default start method on Linux, as
//! 'spawn' already was on macOS and Windows. The fork server is safe because
//! it forks while it has only one thread: nothing can be locked by a thread
//! that the child lacks.
//!
//! Run:
//!
//! ```text
//! cargo run -p fork-vs-spawn
//! cargo run --release -p fork-vs-spawn -- --size-mib 1024 --starts 500
//! cargo run -p fork-vs-spawn -- --help
//! ```
//!
//! A run on 2 cores (release):
//!
//! ```text
//! fork-vs-spawn: fork starts workers fastest and shares memory until written, but can leave a child stuck on a copied lock
//! host    cores=2 os=linux profile=release
//! params  starts=200 size_mib=256 timeout_ms=500 trials=3
//!
//! start a worker, until its first message (median over starts)
//! experiment    median  ratio
//!                   ms      x
//! thread         0.045      -
//! fork           0.213      -
//! forkserver     0.214      -
//! spawn          0.953      -
//! spawn / fork       -   4.48
//!
//! copy-on-write: the parent holds 256 MiB
//! experiment                     private  expected  median
//!                                    MiB       MiB      ms
//! child, right after fork          0.074         -       -
//! child, after writing half          128       128       -
//! fork() call, bare                    -         -   0.112
//! fork() call, 256 MiB resident        -         -    8.24
//!
//! take a lock another thread of the parent holds (3 trials)
//! experiment     got the lock  stuck until killed
//!                      trials              trials
//! forked child              0                   3
//! spawned child             3                   -
//!
//! ✔ fork-faster  fork starts a worker faster than spawn (by at least 1.5x): spawn 0.953 ms vs fork 0.213 ms: 4.5x
//! ✔ forkserver-faster  a fork server starts a worker faster than spawn (by at least 1.5x): spawn 0.953 ms vs forkserver 0.214 ms: 4.5x
//! ✔ copy-on-write  after fork the child owns under 5% of the buffer; after writing half, about half (within 15%): private 0.1 MiB after fork, 128.1 MiB after writing 128.0 MiB
//! ✔ fork-grows-with-memory  fork itself takes longer when the parent has more memory resident (at least 2x): 8.236 ms with 256 MiB resident vs 0.112 ms bare: 73.7x
//! ✔ fork-while-locked  a child forked while another thread held the lock stayed stuck; a spawned child took it: forked: stuck for the whole 500 ms in 3/3 trials; spawned: got the lock in 3/3
//!
//! elapsed 3.15 s
//! ```
//!
//! The times vary with the machine and its load; the memory figures barely
//! do, and the forked child stays stuck every time.
//!
//! See also: `spawn-cost` (threads vs processes, time and memory),
//! `mmap-workaround` (sharing memory between processes on purpose),
//! `deadlock` (the same stuck lock, between threads).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{ExitCode, Stdio};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use common::child::{play_role, spawn_self};

use common::cli::{CommonArgs, finish, parse, usage_error};
use common::measure::{available_bytes, median_secs, parse_smaps_rollup};
use common::{Claim, Report};
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, pipe2};

/// Fork vs spawn vs forkserver: start time, copy-on-write, and the lock a
/// forked child can never take.
#[derive(Parser, Debug)]
#[command(name = "fork-vs-spawn", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Workers started by each method; the figures are medians [default: 200, 20 with --quick].
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

/// The lock a second thread holds while the parent forks.
static SHARED: Mutex<u64> = Mutex::new(0);

fn main() -> ExitCode {
    // A spawned child plays its role and exits.
    if let Some(code) = play_role(|name, _| spawned_child(name)) {
        return code;
    }
    // The fork server must be forked while this process has one thread, so
    // before `parse`, which starts the thread that cleans up on Ctrl-C.
    let server = ForkServer::start();
    let args: Args = parse();
    common::cleanup::install();
    finish(&args.common, server.and_then(|server| run(&args, server)))
}

/// What a spawned child (a fresh run of this program) does.
fn spawned_child(name: &str) -> anyhow::Result<()> {
    match name {
        // Say one byte to the parent, which is timing how long that took.
        "first-message" => std::io::stdout().write_all(b"s").context("writing to the parent"),
        // A fresh process has a fresh, unlocked `SHARED`: take it and say so.
        "take-lock" => {
            let _guard = SHARED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            std::io::stdout().write_all(b"l").context("writing to the parent")
        }
        other => bail!("unknown role {other}"),
    }
}

fn run(args: &Args, mut server: ForkServer) -> anyhow::Result<Report> {
    let starts = args.starts.unwrap_or(args.common.pick(200, 20));
    let size_mib = args.size_mib.unwrap_or(args.common.pick(256, 64));
    let size =
        usize::try_from(size_mib << 20).map_err(|_| usage_error("--size-mib does not fit in memory"))?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let trials = args.trials.unwrap_or(args.common.pick(3, 1));
    // The parent holds the buffer and the child copies half of it.
    let needed = (size_mib * 3 / 2) << 20;
    let available = available_bytes()?;
    if needed > available {
        return Err(usage_error(format!(
            "--size-mib {size_mib} needs about {} MiB and {} MiB are available",
            needed >> 20,
            available >> 20
        )));
    }

    let mut report = common::lesson_report!();
    report
        .param("starts", starts)
        .param("size_mib", size_mib)
        .param("timeout_ms", args.timeout_ms)
        .param("trials", trials);

    // 1. Start latency, from "start a worker" to its first message.
    report.table("start a worker, until its first message (median over starts)");
    let thread_start = median_of(starts, start_thread)?;
    let fork_start = median_of(starts, start_forked)?;
    let server_start = median_of(starts, || server.start_worker())?;
    let spawn_start = median_of(starts, start_spawned)?;
    for (method, secs) in
        [("thread", thread_start), ("fork", fork_start), ("forkserver", server_start), ("spawn", spawn_start)]
    {
        report.figure(method, "median", secs * 1e3, "ms");
    }
    report.figure("spawn / fork", "ratio", spawn_start / fork_start, "x").key();
    report.claim(Claim::check(
        "fork-faster",
        "fork starts a worker faster than spawn (by at least 1.5x)",
        spawn_start >= 1.5 * fork_start,
        format!(
            "spawn {:.3} ms vs fork {:.3} ms: {:.1}x",
            spawn_start * 1e3,
            fork_start * 1e3,
            spawn_start / fork_start
        ),
    ));
    report.claim(Claim::check(
        "forkserver-faster",
        "a fork server starts a worker faster than spawn (by at least 1.5x)",
        spawn_start >= 1.5 * server_start,
        format!(
            "spawn {:.3} ms vs forkserver {:.3} ms: {:.1}x",
            spawn_start * 1e3,
            server_start * 1e3,
            spawn_start / server_start
        ),
    ));

    // 2. Copy-on-write, and what a big parent costs `fork` itself.
    report.table(format!("copy-on-write: the parent holds {size_mib} MiB"));
    let bare_fork = median_of(starts.min(50), time_fork_call)?;
    let cow = copy_on_write(size, starts.min(50))?;
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    report.figure("child, right after fork", "private", mib(cow.after_fork.private_bytes), "MiB");
    report.figure("child, after writing half", "private", mib(cow.after_writing.private_bytes), "MiB");
    report.figure("child, after writing half", "expected", mib(size as u64 / 2), "MiB");
    report.figure("fork() call, bare", "median", bare_fork * 1e3, "ms");
    report.figure(format!("fork() call, {size_mib} MiB resident"), "median", cow.fork_call * 1e3, "ms");
    let half = size as f64 / 2.0;
    let written = cow.after_writing.private_bytes as f64;
    report.claim(Claim::check(
        "copy-on-write",
        "after fork the child owns under 5% of the buffer; after writing half, about half (within 15%)",
        (cow.after_fork.private_bytes as f64) < 0.05 * size as f64 && (written - half).abs() <= 0.15 * half,
        format!(
            "private {:.1} MiB after fork, {:.1} MiB after writing {:.1} MiB",
            mib(cow.after_fork.private_bytes),
            mib(cow.after_writing.private_bytes),
            half / f64::from(1 << 20)
        ),
    ));
    report.claim(Claim::check(
        "fork-grows-with-memory",
        "fork itself takes longer when the parent has more memory resident (at least 2x)",
        cow.fork_call >= 2.0 * bare_fork,
        format!(
            "{:.3} ms with {size_mib} MiB resident vs {:.3} ms bare: {:.1}x",
            cow.fork_call * 1e3,
            bare_fork * 1e3,
            cow.fork_call / bare_fork
        ),
    ));

    // 3. The hazard: fork while another thread holds a lock.
    report.table(format!("take a lock another thread of the parent holds ({trials} trials)"));
    let hazard = fork_while_locked(timeout, trials)?;
    report.figure("forked child", "got the lock", hazard.forked_got_lock, "trials");
    report.figure("forked child", "stuck until killed", hazard.forked_stuck, "trials");
    report.figure("spawned child", "got the lock", hazard.spawned_got_lock, "trials");
    report.claim(Claim::check(
        "fork-while-locked",
        "a child forked while another thread held the lock stayed stuck; a spawned child took it",
        hazard.forked_stuck == trials && hazard.spawned_got_lock == trials,
        format!(
            "forked: stuck for the whole {} ms in {}/{trials} trials; spawned: got the lock in {}/{trials}",
            args.timeout_ms, hazard.forked_stuck, hazard.spawned_got_lock
        ),
    ));
    Ok(report)
}

/// Runs `start` `times` times and returns the median of the seconds it measured.
fn median_of(times: u32, mut start: impl FnMut() -> anyhow::Result<Duration>) -> anyhow::Result<f64> {
    let durations = (0..times).map(|_| start()).collect::<anyhow::Result<Vec<Duration>>>()?;
    Ok(median_secs(&durations))
}

// ---------------------------------------------------------------------------
// Forking.
// ---------------------------------------------------------------------------

/// Forks. The child runs `in_child` and then ends with `_exit`, never
/// returning into the parent's code; the parent gets the child's pid.
///
/// This process has other threads (at least the one that cleans up on
/// Ctrl-C), and the child gets a copy of only the thread that called `fork`.
/// Any lock another thread held at that moment stays locked in the child,
/// the allocator's included, so `in_child` may only make async-signal-safe
/// calls: `read`, `write`, `open`, `_exit`. The one exception is experiment
/// 3, where breaking that rule is the point, and a timeout bounds it.
fn fork_child(in_child: impl FnOnce() -> i32) -> anyhow::Result<Pid> {
    // Safety: the child only runs `in_child`, whose callers keep to
    // async-signal-safe calls (or, in experiment 3, are killed at a
    // timeout), and then `_exit`s.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let code = in_child();
            // Safety: `_exit` ends the process at once, without running the
            // exit handlers or flushing the stdio buffers copied from the
            // parent (which would print the parent's output twice).
            unsafe { nix::libc::_exit(code) }
        }
    }
}

/// Reaps a forked child and forgets it.
fn reap(child: Pid) -> anyhow::Result<()> {
    waitpid(child, None).with_context(|| format!("waiting for child {child}"))?;
    Ok(())
}

/// A pipe whose ends are closed in any program this one `exec`s (a spawned
/// child must not inherit them), but not in a forked child.
fn pipe() -> anyhow::Result<(File, OwnedFd)> {
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).context("creating a pipe")?;
    Ok((File::from(read_end), write_end))
}

/// Whether one byte arrives on `pipe` within `timeout`.
fn byte_within(pipe: &mut File, timeout: Duration) -> anyhow::Result<bool> {
    let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut fds, PollTimeout::try_from(timeout).context("timeout")?).context("poll")?;
    let mut byte = [0u8];
    Ok(ready > 0 && pipe.read(&mut byte).context("reading the pipe")? == 1)
}

// ---------------------------------------------------------------------------
// 1. Start latency.
// ---------------------------------------------------------------------------

/// A thread, for reference: start it, wait for its first message.
fn start_thread() -> anyhow::Result<Duration> {
    let started = Instant::now();
    let (sender, receiver) = mpsc::channel();
    let worker = thread::spawn(move || sender.send(()));
    receiver.recv().context("the thread sent nothing")?;
    let elapsed = started.elapsed();
    worker.join().expect("the thread does not panic").context("sending")?;
    Ok(elapsed)
}

/// 'fork': the child is a copy of this process; it writes a byte and exits.
fn start_forked() -> anyhow::Result<Duration> {
    let (mut from_child, to_parent) = pipe()?;
    let started = Instant::now();
    let child = fork_child(|| nix::unistd::write(&to_parent, b"f").map_or(1, |_| 0))?;
    // The parent's copy of the write end must go, or the read below could
    // never see the end of the pipe if the child died without writing.
    drop(to_parent);
    let mut byte = [0u8];
    let got = from_child.read(&mut byte).context("reading the forked child's message")?;
    let elapsed = started.elapsed();
    reap(child)?;
    ensure!(got == 1, "the forked child exited without writing");
    Ok(elapsed)
}

/// 'spawn': a fresh run of this program in the role `first-message`.
fn start_spawned() -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut child = spawn_self("first-message", &[], |c| {
        c.stdout(Stdio::piped());
    })?;
    let mut byte = [0u8];
    let stdout = child.handle().stdout.as_mut().expect("stdout is piped");
    stdout.read_exact(&mut byte).context("reading the spawned child's message")?;
    let elapsed = started.elapsed();
    child.wait()?;
    Ok(elapsed)
}

/// 'forkserver': a process forked at the start of `main`, while this program
/// had one thread, that forks a worker each time it is asked. Its workers are
/// copies of a small single-threaded process, so they are safe to make and
/// quick to start.
struct ForkServer {
    pid: Pid,
    /// Write one byte here to ask for a worker. `None` once closed.
    requests: Option<File>,
    /// Each worker writes one byte here.
    replies: File,
}

impl ForkServer {
    /// Forks the server. Call it before this process starts any thread.
    fn start() -> anyhow::Result<Self> {
        let (requests_read, requests_write) = pipe()?;
        let (replies_read, replies_write) = pipe()?;
        // Safety: this runs before any other thread exists (see `main`), so
        // the child is a complete copy with nothing locked, and may run any
        // code: `serve` allocates, forks and waits freely.
        match unsafe { fork() }.context("forking the fork server")? {
            ForkResult::Parent { child } => Ok(ForkServer {
                pid: child,
                requests: Some(File::from(requests_write)),
                replies: replies_read,
            }),
            ForkResult::Child => {
                drop((requests_write, replies_read));
                serve(requests_read, replies_write)
            }
        }
    }

    /// Asks the server for a worker and waits for the worker's first message.
    fn start_worker(&mut self) -> anyhow::Result<Duration> {
        let requests = self.requests.as_mut().expect("the server is open");
        let started = Instant::now();
        requests.write_all(b"w").context("asking the fork server for a worker")?;
        let mut byte = [0u8];
        self.replies.read_exact(&mut byte).context("reading the fork server's worker")?;
        Ok(started.elapsed())
    }
}

impl Drop for ForkServer {
    fn drop(&mut self) {
        // Closing the request pipe tells the server to exit; then reap it.
        self.requests = None;
        let _ = reap(self.pid);
    }
}

/// The fork server's loop: for each request byte, fork a worker that writes
/// one byte to `replies` and exits; reap it; stop at the end of `requests`.
fn serve(mut requests: File, replies: OwnedFd) -> ! {
    // If the lesson dies, so does its server.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let mut byte = [0u8];
    while matches!(requests.read(&mut byte), Ok(1)) {
        // Safety: the server has a single thread, so its child may run
        // anything; it writes one byte and `_exit`s.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                let code = nix::unistd::write(&replies, b"w").map_or(1, |_| 0);
                // Safety: see `fork_child`.
                unsafe { nix::libc::_exit(code) }
            }
            Ok(ForkResult::Parent { child }) => {
                let _ = waitpid(child, None);
            }
            Err(_) => break,
        }
    }
    // Safety: see `fork_child`.
    unsafe { nix::libc::_exit(0) }
}

// ---------------------------------------------------------------------------
// 2. Copy-on-write.
// ---------------------------------------------------------------------------

struct CopyOnWrite {
    /// The child's memory right after the fork.
    after_fork: common::measure::Memory,
    /// The child's memory after it wrote to half the buffer.
    after_writing: common::measure::Memory,
    /// The median time of the `fork` call itself with the buffer resident.
    fork_call: f64,
}

/// The time of the `fork` call alone, in the parent; the child exits at once.
fn time_fork_call() -> anyhow::Result<Duration> {
    let started = Instant::now();
    let child = fork_child(|| 0)?;
    let elapsed = started.elapsed();
    reap(child)?;
    Ok(elapsed)
}

/// Fills a buffer of `size` bytes (so every page is resident), forks a child
/// that reports its own memory before and after writing to half of it, and
/// times the `fork` call with the buffer resident.
fn copy_on_write(size: usize, fork_calls: u32) -> anyhow::Result<CopyOnWrite> {
    let mut buffer = vec![1u8; size];
    let fork_call = median_of(fork_calls, time_fork_call)?;

    let (mut from_child, to_parent) = pipe()?;
    let child = fork_child(|| {
        if send_own_smaps(&to_parent).is_err() {
            return 1;
        }
        // Write one byte in every 4 KiB page of the first half: each write
        // makes the kernel copy that page for the child.
        for page in buffer[..size / 2].chunks_mut(4096) {
            page[0] = 2;
        }
        if send_own_smaps(&to_parent).is_err() {
            return 1;
        }
        0
    })?;
    drop(to_parent);
    let after_fork = receive_smaps(&mut from_child);
    let after_writing = receive_smaps(&mut from_child);
    reap(child)?;
    std::hint::black_box(&buffer);
    Ok(CopyOnWrite { after_fork: after_fork?, after_writing: after_writing?, fork_call })
}

/// In a forked child: sends its `/proc/self/smaps_rollup`, length first,
/// using only `open`, `read` and `write` into a buffer on the stack (no
/// allocation: see `fork_child`).
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
fn receive_smaps(from_child: &mut File) -> anyhow::Result<common::measure::Memory> {
    let mut len = [0u8; 4];
    from_child.read_exact(&mut len).context("the child sent no memory report")?;
    let mut text = vec![0u8; u32::from_le_bytes(len) as usize];
    from_child.read_exact(&mut text).context("the child's memory report was cut short")?;
    parse_smaps_rollup(&String::from_utf8_lossy(&text))
}

// ---------------------------------------------------------------------------
// 3. The hazard.
// ---------------------------------------------------------------------------

struct Hazard {
    forked_got_lock: u32,
    forked_stuck: u32,
    spawned_got_lock: u32,
}

/// A second thread takes `SHARED` and holds it; meanwhile this thread forks
/// children that try to take it (and spawns children that do the same).
fn fork_while_locked(timeout: Duration, trials: u32) -> anyhow::Result<Hazard> {
    let (holding, is_holding) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    thread::scope(|scope| {
        scope.spawn(move || {
            let _guard = SHARED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let _ = holding.send(());
            // Hold the lock until the trials are over.
            let _ = released.recv();
        });
        is_holding.recv().context("the holding thread did not start")?;
        let outcome = hazard_trials(timeout, trials);
        // Let the holder go whatever happened, or the scope would wait forever.
        drop(release);
        outcome
    })
}

fn hazard_trials(timeout: Duration, trials: u32) -> anyhow::Result<Hazard> {
    let mut hazard = Hazard { forked_got_lock: 0, forked_stuck: 0, spawned_got_lock: 0 };
    for _ in 0..trials {
        // The forked child's `SHARED` is a copy of the parent's: locked, by a
        // thread that was not copied. `lock` waits for a release that will
        // never come. (Allocating or printing in the child could hang the
        // same way, on the allocator's or stdout's lock.)
        let (mut from_child, to_parent) = pipe()?;
        let child = fork_child(|| {
            let _guard = SHARED.lock();
            nix::unistd::write(&to_parent, b"l").map_or(1, |_| 0)
        })?;
        drop(to_parent);
        if byte_within(&mut from_child, timeout)? {
            hazard.forked_got_lock += 1;
        } else {
            hazard.forked_stuck += 1;
            let _ = kill(child, Signal::SIGKILL);
        }
        reap(child)?;

        // A spawned child is a fresh program with a fresh, unlocked `SHARED`.
        let mut spawned = spawn_self("take-lock", &[], |c| {
            c.stdout(Stdio::piped());
        })?;
        let stdout = spawned.handle().stdout.take().expect("stdout is piped");
        let mut stdout = File::from(OwnedFd::from(stdout));
        if byte_within(&mut stdout, timeout)? {
            hazard.spawned_got_lock += 1;
        }
        spawned.kill()?;
    }
    Ok(hazard)
}
