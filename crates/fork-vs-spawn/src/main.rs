//! Fork starts a worker for a fraction of what spawn costs and shares the
//! parent's memory until it is written, but forking a process that has other
//! threads can leave the child stuck forever on a lock it copied locked.
//!
//! Python's `multiprocessing` has three start methods, and this lesson runs
//! each: 'fork' (the child is a copy of the parent), 'spawn' (a fresh run of
//! the program, told its role) and 'forkserver' (a small single-threaded
//! process, started first, forks each worker on request). The lab measures
//! the CPU time a start costs, parent and child together, which a busy
//! machine cannot inflate, with the latency beside it and a thread as the
//! reference. Then copy-on-write: a forked child owns none of its parent's
//! big buffer until it writes, and `fork` itself costs more as the parent's
//! memory grows (the page tables are copied). Last, the hazard: while a
//! second thread holds a `Mutex`, the parent forks; the child's copy of the
//! lock is held by a thread the child does not have, so it waits forever
//! (until the lab kills it), while a spawned child takes a fresh lock at once.
//! That is why Python 3.12 warns when a threaded process forks, and 3.14 made
//! 'forkserver' the default on Linux ('spawn' already was on macOS, Windows).
//!
//! Run:
//!
//! ```text
//! cargo run -p fork-vs-spawn
//! cargo run --release -p fork-vs-spawn -- --size-mib 1024 --starts 500
//! ```
//!
//! A run on 2 cores (release), without the notes it prints under the tables:
//!
//! ```text
//! fork-vs-spawn: fork starts workers fastest and shares memory until written, but
//!   can leave a child stuck on a copied lock
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  starts=200 size_mib=256 timeout_ms=500 trials=3
//!
//! start a worker, until its first message (200 starts each)
//! experiment  latency  CPU per start  CPU vs fork
//!                  ms             ms            x
//! thread        0.024          0.053        0.220
//! fork          0.156          0.240         1.00
//! forkserver    0.159          0.183        0.762
//! spawn         0.938           1.05         4.36
//!
//! copy-on-write: the parent holds 256 MiB
//! experiment                    private  expected    CPU
//!                                   MiB       MiB     ms
//! child, right after fork         0.062         -      -
//! child, after writing half         128       128      -
//! fork() call, bare                   -         -  0.067
//! fork() call, buffer resident        -         -   4.49
//!
//! take a lock another thread of the parent holds (3 trials)
//! experiment     got the lock  stuck until killed
//!                      trials              trials
//! forked child              0                   3
//! spawned child             3                   -
//!
//! ✔ fork-faster  fork starts a worker for under 1/1.5 of spawn's CPU time: CPU per
//!   start: spawn 1.046 ms, fork 0.240 ms: 4.4x (latency 0.938 vs 0.156 ms)
//! ✔ forkserver-faster  a fork server starts a worker for under 1/1.5 of spawn's
//!   CPU time: CPU per start: spawn 1.046 ms, forkserver 0.183 ms: 5.7x (latency
//!   0.938 vs 0.159 ms)
//! ✔ copy-on-write  after fork the child owns under 5% of the buffer; writing half
//!   makes about half its own (within 15%): private 0.1 MiB after fork, 128.1 MiB
//!   after writing 128.0 MiB
//! ✔ fork-grows-with-memory  the fork call costs more CPU time when the parent has
//!   more memory resident (at least 2x): 4.488 ms with 256 MiB resident vs 0.067 ms
//!   bare: 67.1x
//! ✔ fork-while-locked  a child forked while another thread held the lock stayed
//!   stuck; a spawned child took it: forked: asleep on the lock for the whole 500
//!   ms in 3/3 trials, got it in 0; spawned: got the lock in 3/3
//!
//! elapsed 2.59 s
//! ```
//!
//! The latencies vary with the machine and its load, the CPU times less, the
//! memory figures barely; the forked child stays stuck every time.
//!
//! See also: `mmap-workaround` (sharing memory between processes on
//! purpose), `daemon-workers` (child processes that end with their parent).

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
// The child of `fork` copies the whole process but only the thread that
// called `fork`: a lock another thread held then stays locked in the child
// for good, the allocator's and stdout's included. So a forked child of a
// process with threads (this one has the lab's Ctrl-C thread) makes only
// async-signal-safe calls (`read`, `write`, `open`, `_exit`), never
// allocates or prints; except in experiment 3, where breaking it is the point.

/// Forks: the child runs `in_child` and `_exit`s; the parent gets its pid.
fn fork_child(in_child: impl FnOnce() -> i32) -> nix::Result<Pid> {
    // Safety: the child runs only `in_child`, whose callers keep to
    // async-signal-safe calls (or, in experiment 3, are killed by the lab),
    // and then `_exit`s.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            // If the parent dies, the kernel kills the child too (`prctl` is a
            // system call, safe here): a stuck child must not outlive us.
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            let code = in_child();
            // Safety: `_exit` ends the process at once, flushing none of the
            // stdio buffers copied from the parent (that would print twice).
            unsafe { nix::libc::_exit(code) }
        }
    }
}

/// Waits for a forked child to end: until then it stays a zombie.
fn reap(child: Pid) -> nix::Result<()> {
    waitpid(child, None).map(drop)
}

/// A pipe whose ends a spawned child does not inherit (a forked one does).
fn pipe() -> nix::Result<(File, OwnedFd)> {
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC)?;
    Ok((File::from(read_end), write_end))
}

// 1. Four ways to start a worker, each returning at the worker's first message.

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
    if from_child.read(&mut [0u8])? == 0 {
        reap(child)?;
        return Err(io::Error::other("the forked child exited without writing"));
    }
    Ok(child)
}

/// 'spawn': a fresh run of this program, told its role, its stdout a pipe to us.
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

/// 'forkserver': forked at the start, while this program had one thread, it
/// forks a worker on request: copies of a small single-threaded process.
struct ForkServer {
    pid: Pid,
    requests: Option<File>, // a byte asks for a worker; `None` stops the server
    replies: File,          // each worker writes a byte here
}

impl ForkServer {
    /// Forks the server. Call it before this process starts any thread.
    fn start() -> nix::Result<Self> {
        let (requests_read, requests_write) = pipe()?;
        let (replies_read, replies_write) = pipe()?;
        // Safety: no other thread exists yet (the lab calls this first), so
        // the child is a whole copy with nothing locked and may run any code.
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

/// The fork server: per request byte, fork a worker that writes a byte; reap it.
fn serve(mut requests: File, replies: OwnedFd) -> ! {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    while matches!(requests.read(&mut [0u8]), Ok(1)) {
        let Ok(worker) = fork_child(|| nix::unistd::write(&replies, b"w").map_or(1, |_| 0)) else { break };
        let _ = reap(worker);
    }
    // Safety: see `fork_child`.
    unsafe { nix::libc::_exit(0) }
}

// 2. Copy-on-write. After `fork` the child shares every page with its parent,
// read-only; the first write to a page makes the kernel copy it for the
// writer. A child costs the memory it writes, not the memory it inherits.

/// Forks a child that writes a byte in every 4 KiB page of the first half of
/// `buffer` (its copy). The lab's `checkpoint` reports the child's memory
/// after the fork and after the writing, with async-signal-safe calls only.
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

/// Forks a child that takes `SHARED`, then writes a byte to `to_parent`. Its
/// `SHARED` is a copy: if another thread held it at the fork, it is held by
/// a thread the child does not have, and `lock` waits for ever.
fn fork_and_take_lock(to_parent: &OwnedFd) -> nix::Result<Pid> {
    fork_child(|| {
        let _guard = SHARED.lock();
        nix::unistd::write(to_parent, b"l").map_or(1, |_| 0)
    })
}

/// A spawned child's `main` (`--child-role ROLE`). As `take-lock` it takes
/// `SHARED`: a fresh program has a fresh, unlocked one.
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
