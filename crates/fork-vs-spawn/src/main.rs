//! Fork starts a worker for a fraction of what spawn costs and shares the
//! parent's memory until it is written, but forking a process that has
//! other threads can leave the child stuck forever on a lock it copied in
//! the locked state.
//!
//! Python's `multiprocessing` has three start methods, and this lesson runs
//! each: 'fork' (the child is a copy of the parent, made by `fork`), 'spawn'
//! (a fresh run of the program, told which role to play) and 'forkserver' (a
//! small single-threaded process, started before anything else, forks each
//! worker on request). The lab starts each many times, with a thread as the
//! reference, and measures the CPU time a start costs, parent and child
//! together (what a busy machine cannot inflate), with the latency until
//! the worker's first message beside it. It shows copy-on-write: a child
//! forked from a parent holding a big buffer owns almost none of it until it
//! writes, and then owns what it wrote; and `fork` itself costs more as the
//! parent's memory grows, because the page tables are copied. Last, the
//! hazard: a second thread holds a `Mutex` while the parent forks; the
//! child's copy of the lock is locked, by a thread that does not exist in the
//! child, so the child waits forever (here: until the lab kills it), while a
//! spawned child takes its own fresh lock at once.
//!
//! That hazard is why Python moved away from 'fork': Python 3.12 warns
//! (`DeprecationWarning`) when a process with several threads forks, and
//! Python 3.14 made 'forkserver' the default start method on Linux, as
//! 'spawn' already was on macOS and Windows.
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
//! fork-vs-spawn: fork starts workers fastest and shares memory until written, but
//!   can leave a child stuck on a copied lock
//! host    cores=2 os=linux profile=release
//! params  starts=200 size_mib=256 timeout_ms=500 trials=3
//!
//! start a worker, until its first message (200 starts each)
//! experiment  latency  CPU per start  CPU vs fork
//!                  ms             ms            x
//! thread        0.100          0.115        0.385
//! fork          0.189          0.300         1.00
//! forkserver    0.148          0.160        0.534
//! spawn         0.744          0.892         2.98
//!
//! copy-on-write: the parent holds 256 MiB
//! experiment                     private  expected    CPU
//!                                    MiB       MiB     ms
//! child, right after fork          0.062         -      -
//! child, after writing half          128       128      -
//! fork() call, bare                    -         -  0.066
//! fork() call, buffer resident        -         -   4.71
//!
//! take a lock another thread of the parent holds (3 trials)
//! experiment     got the lock  stuck until killed
//!                      trials              trials
//! forked child              0                   3
//! spawned child             3                   -
//!
//! latency: the median from asking for a worker to its first message. CPU per
//!   start: this process's CPU time and its reaped children's, over the starts: the
//!   parent's side and the child's, without the time spent waiting for a core.
//! private: the child's pages no other process maps (smaps_rollup), read by the
//!   child itself. CPU: the median CPU time of the fork call in the parent.
//!
//! ✔ fork-faster  fork starts a worker for under 1/1.5 of spawn's CPU time: CPU per
//!   start: spawn 0.892 ms, fork 0.300 ms: 3.0x (latency 0.744 vs 0.189 ms)
//! ✔ forkserver-faster  a fork server starts a worker for under 1/1.5 of spawn's
//!   CPU time: CPU per start: spawn 0.892 ms, forkserver 0.160 ms: 5.6x (latency
//!   0.744 vs 0.148 ms)
//! ✔ copy-on-write  after fork the child owns under 5% of the buffer; writing half
//!   makes about half its own (within 15%): private 0.1 MiB after fork, 128.1 MiB
//!   after writing 128.0 MiB
//! ✔ fork-grows-with-memory  the fork call costs more CPU time when the parent has
//!   more memory resident (at least 2x): 4.712 ms with 256 MiB resident vs 0.066 ms
//!   bare: 71.8x
//! ✔ fork-while-locked  a child forked while another thread held the lock stayed
//!   stuck; a spawned child took it: forked: asleep on the lock for the whole 500
//!   ms in 3/3 trials, got it in 0; spawned: got the lock in 3/3
//!
//! elapsed 2.59 s
//! ```
//!
//! The latencies vary with the machine and its load; the CPU times much
//! less, the memory figures barely, and the forked child stays stuck every
//! time.
//!
//! See also: `mmap-workaround` (sharing memory between processes on
//! purpose), `daemon-workers` (child processes that end with their parent).

// tidy: longer than 300 lines because the header's sample output takes 50; the
// lesson's code is under 200.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::thread::{self, JoinHandle};

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, pipe2};

// Forking, and the rule a forked child lives by.
//
// The child of `fork` is a copy of the whole process, but of only one of
// its threads: the one that called `fork`. Whatever lock another thread
// held at that moment stays locked in the child for good, the allocator's
// and stdout's included. So in a process with threads, a forked child may
// only make async-signal-safe calls (`read`, `write`, `open`, `_exit`) and
// must not allocate or print. This lesson's process has threads (the lab
// runs one to clean up on Ctrl-C), so every child below keeps to that rule,
// except in experiment 3, where breaking it is the point.

/// Forks. The child runs `in_child` and ends with `_exit`, never returning
/// into the parent's code; the parent gets the child's pid.
fn fork_child(in_child: impl FnOnce() -> i32) -> nix::Result<Pid> {
    // Safety: the child runs only `in_child`, whose callers keep to
    // async-signal-safe calls (or, in experiment 3, are killed by the lab),
    // and then `_exit`s.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            // If the parent dies, the kernel kills the child too: a stuck
            // child must not outlive the lesson. (`prctl` is a system call,
            // safe here.)
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            let code = in_child();
            // Safety: `_exit` ends the process at once, without running exit
            // handlers or flushing the stdio buffers copied from the parent
            // (which would print the parent's output twice).
            unsafe { nix::libc::_exit(code) }
        }
    }
}

/// Waits for a forked child to end: until then it stays a zombie.
fn reap(child: Pid) -> nix::Result<()> {
    waitpid(child, None).map(drop)
}

/// A pipe whose ends are closed in any program this one `exec`s (a spawned
/// child must not inherit them), but not in a forked child.
fn pipe() -> nix::Result<(File, OwnedFd)> {
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC)?;
    Ok((File::from(read_end), write_end))
}

// 1. Four ways to start a worker. Each returns once the worker's first
// message has arrived; the caller then joins or reaps it.

/// A thread, for reference: same process, same memory, nothing copied.
fn start_thread() -> io::Result<JoinHandle<()>> {
    let (sender, receiver) = mpsc::channel();
    let worker = thread::Builder::new().spawn(move || {
        let _ = sender.send(());
    })?;
    receiver.recv().map_err(|_| io::Error::other("the thread sent nothing"))?;
    Ok(worker)
}

/// 'fork': the child is a copy of this process; it writes a byte and exits.
fn start_forked() -> io::Result<Pid> {
    let (mut from_child, to_parent) = pipe()?;
    let child = fork_child(|| nix::unistd::write(&to_parent, b"f").map_or(1, |_| 0))?;
    // The parent's copy of the write end must go, or the read below would
    // never see the end of the pipe if the child died without writing.
    drop(to_parent);
    let mut byte = [0u8];
    if from_child.read(&mut byte)? == 0 {
        reap(child)?;
        return Err(io::Error::other("the forked child exited without writing"));
    }
    Ok(child)
}

/// 'spawn': a fresh run of this program (`exec`), told its role by its
/// arguments, with its stdout a pipe to this process.
fn spawn_child(role: &str) -> io::Result<Child> {
    Command::new(std::env::current_exe()?).args(["--child-role", role]).stdout(Stdio::piped()).spawn()
}

/// A spawned worker: it writes one byte to its stdout.
fn start_spawned() -> io::Result<Child> {
    let mut child = spawn_child("first-message")?;
    if let Err(err) = child.stdout.as_mut().expect("stdout is piped").read_exact(&mut [0u8]) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(err);
    }
    Ok(child)
}

/// 'forkserver': a process forked at the start of `main`, while this program
/// had one thread, that forks a worker each time it is asked. Its workers
/// are copies of a small single-threaded process: safe to make, and cheap.
struct ForkServer {
    pid: Pid,
    /// Write one byte here to ask for a worker; dropped to stop the server.
    requests: Option<File>,
    /// Each worker writes one byte here.
    replies: File,
}

impl ForkServer {
    /// Forks the server. Call it before this process starts any thread.
    fn start() -> nix::Result<Self> {
        let (requests_read, requests_write) = pipe()?;
        let (replies_read, replies_write) = pipe()?;
        // Safety: this runs before any other thread exists (the lab calls it
        // first thing), so the child is a complete copy with nothing locked
        // and may run any code: `serve` allocates, forks and waits freely.
        match unsafe { fork() }? {
            ForkResult::Parent { child } => {
                let requests = Some(File::from(requests_write));
                Ok(ForkServer { pid: child, requests, replies: replies_read })
            }
            ForkResult::Child => {
                drop((requests_write, replies_read));
                serve(requests_read, replies_write)
            }
        }
    }

    /// Asks the server for a worker and waits for the worker's first message.
    fn start_worker(&mut self) -> io::Result<()> {
        let requests = self.requests.as_mut().expect("the server runs until dropped");
        requests.write_all(b"w")?;
        self.replies.read_exact(&mut [0u8])
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
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    while matches!(requests.read(&mut [0u8]), Ok(1)) {
        let Ok(worker) = fork_child(|| nix::unistd::write(&replies, b"w").map_or(1, |_| 0)) else { break };
        let _ = reap(worker);
    }
    // Safety: see `fork_child`.
    unsafe { nix::libc::_exit(0) }
}

// 2. Copy-on-write. After `fork` the child shares every page with its
// parent, marked read-only; the first write to a page makes the kernel copy
// it for the writer. So a child costs the memory it writes, not the memory
// it inherits.

/// Forks a child that writes one byte in every 4 KiB page of the first half
/// of `buffer` (its copy of it). The lab's `checkpoint` runs in the child
/// right after the fork and again after the writing, to report the child's
/// own memory; like all the child does, it keeps to async-signal-safe calls.
fn fork_and_write_half(buffer: &mut [u8], checkpoint: impl Fn() -> bool) -> nix::Result<Pid> {
    let half = buffer.len() / 2;
    fork_child(|| {
        if !checkpoint() {
            return 1;
        }
        for page in buffer[..half].chunks_mut(4096) {
            page[0] = page[0].wrapping_add(1);
        }
        if checkpoint() { 0 } else { 1 }
    })
}

// 3. The hazard: fork while another thread holds a lock.

/// The lock a second thread holds while this one forks.
static SHARED: Mutex<u64> = Mutex::new(0);

/// Runs `forking` on this thread while a second thread holds `SHARED`.
fn while_another_thread_holds_the_lock<T>(forking: impl FnOnce() -> T) -> io::Result<T> {
    let (holding, is_holding) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    thread::scope(|scope| {
        thread::Builder::new().spawn_scoped(scope, move || {
            let _guard = SHARED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let _ = holding.send(());
            // Hold the lock until `release` is dropped.
            let _ = released.recv();
        })?;
        is_holding.recv().map_err(|_| io::Error::other("the holding thread did not start"))?;
        let outcome = forking();
        drop(release);
        Ok(outcome)
    })
}

/// Forks a child that takes `SHARED`, then writes one byte to `to_parent`.
/// Its `SHARED` is a copy of the parent's: if another thread held it at the
/// fork, it is locked by a thread the child does not have, and `lock` waits
/// for a release that will never come.
fn fork_and_take_lock(to_parent: &OwnedFd) -> nix::Result<Pid> {
    fork_child(|| {
        let _guard = SHARED.lock();
        nix::unistd::write(to_parent, b"l").map_or(1, |_| 0)
    })
}

/// A spawned child's `main` (`--child-role ROLE`). In the role `take-lock`
/// (started with `spawn_child`) it takes `SHARED`: a fresh program has a
/// fresh, unlocked one, whatever the parent's threads hold.
fn child_main(role: &str, _args: &[String]) -> io::Result<()> {
    let mut stdout = io::stdout();
    match role {
        "first-message" => stdout.write_all(b"s")?,
        "take-lock" => {
            let _guard = SHARED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            stdout.write_all(b"l")?
        }
        other => return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("unknown role {other}"))),
    }
    stdout.flush()
}

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
