//! A thread costs a fraction of a process: less CPU time to start and
//! finish, and less memory while it lives.
//!
//! The lesson starts a unit and waits for its end, four ways: a thread
//! (spawn, join), a forked process (fork, waitpid; the child only `_exit`s),
//! this program spawned again in a role that exits at once, and `/bin/true`
//! for reference. Its lab (src/lab.rs) charges each way for its CPU time,
//! this process's and its reaped children's, which a busy machine inflates
//! far less than the latency shown beside it. Then it keeps units
//! alive and reads in /proc what each one adds: a thread's stack is 2 MiB
//! of address space, of which only the pages it touches become memory; a
//! process has pages of its own (its heap, its stack, copies of what it or
//! its parent wrote). It mirrors the Python notes that call a thread
//! lighter and faster to start than a process, and runs the same units in
//! Python when python3 is there: `threading.Thread`, and `Process` with the
//! 'fork' and the 'spawn' start methods.
//!
//! Run:
//!
//! ```text
//! cargo run --release -p spawn-cost
//! cargo run --release -p spawn-cost -- --units 2000 --stack-kib 256
//! ```
//!
//! A run on 2 cores (release), without the notes it prints under the tables:
//!
//! ```text
//! spawn-cost: a thread costs a fraction of a process: less CPU time to start and
//!   finish, and less memory while it lives
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  units=500 batches=10 stack_kib=0 python=auto
//!
//! start a unit, wait for its end (500 units each way)
//! experiment           units  finished  latency  CPU per unit  CPU vs thread
//!                       runs      runs       ms            ms              x
//! thread                 500       500    0.067         0.068           1.00
//! fork                   500       500    0.263         0.273           3.99
//! spawn, this program    500       500     1.11          1.10           16.2
//! spawn /bin/true        500       500    0.632         0.627           9.19
//!
//! memory a live unit adds (500 threads at once; 3 children each, one at a time)
//! experiment     reserved  resident  private  private vs thread
//!                     MiB       MiB      MiB                  x
//! thread             3.68     0.009    0.009               1.00
//! forked child       1004      1.70    0.137               14.5
//! spawned child      3.97      2.52    0.160               17.0
//!
//! Python's Thread and Process, started and joined (spawn_cost.py)
//! experiment             units  finished  latency  CPU per unit  CPU vs thread
//!                         runs      runs       ms            ms              x
//! python Thread            500       500    0.129         0.134           1.00
//! python Process, fork     100       100     2.16          2.24           16.7
//! python Process, spawn     10        10     50.9          50.8            378
//!
//! ✔ process-costs-more  a process, forked or spawned, takes at least 2x a thread's
//!   CPU time to start and end: thread 0.068 ms, fork 0.273 ms (4.0x), spawn 1.103
//!   ms (16.2x) per unit; latency 0.067, 0.263 and 1.109 ms
//! ✔ thread-is-lighter  a live thread adds at most 1/4 of a live process's private
//!   memory: a thread adds 9.6 KiB, a forked child has 140.0 KiB, a spawned one
//!   164.0 KiB (and 3.68 MiB of address space per thread)
//! ✔ python-process-costs-more  Python's Process, fork or spawn, takes at least 4x
//!   its Thread's CPU time: Thread 0.134 ms, fork 2.241 ms (16.7x), spawn 50.8 ms
//!   (378x) per unit; Thread latency 0.129 ms
//!
//! elapsed 2.22 s
//! ```
//!
//! The latencies vary with the machine's load; the CPU times less (a
//! thread's the most: 0.03 to 0.08 ms here, lowest beside two busy shells);
//! the memory figures barely, but a thread's share of malloc's arenas in
//! its reserved address space shrinks as `--units` grows.
//!
//! See also: `thread-basics` (starting threads), `fork-vs-spawn` (the ways
//! to start a process, and what fork shares), `cpu-bound` (what threads and
//! processes buy once started).

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe2};

// 1. A unit, started and waited for, four ways. The unit does nothing at
// all, so what each way costs is the starting and the finishing alone.

/// A thread: `spawn` asks the kernel for one more task in this process, with
/// a stack of its own (2 MiB of address space, mapped but not yet used);
/// `join` waits for its end. Nothing is copied: the thread shares all the
/// memory there is.
fn thread_unit() -> io::Result<()> {
    let thread = thread::Builder::new().spawn(|| {})?;
    thread.join().map_err(|_| io::Error::other("the thread panicked"))
}

/// A forked process: a copy of this one that exits at once. `fork` copies
/// the page tables (the pages themselves stay shared until one side writes
/// them), the open files, the signal handlers; the kernel builds a whole new
/// process, then tears it down at the exit. `waitpid` reaps it: until then
/// it stays a zombie.
fn fork_unit() -> nix::Result<WaitStatus> {
    // Safety: the child only calls `_exit`, which is async-signal-safe: a
    // forked child of a process with threads (this one has some) must not
    // take a lock another thread may have held at the fork, and `_exit`
    // takes none (`exit` would run atexit handlers and flush stdio).
    match unsafe { fork() }? {
        // Safety: `_exit` ends the process at once, as the fork left it.
        ForkResult::Child => unsafe { nix::libc::_exit(0) },
        ForkResult::Parent { child } => waitpid(child, None),
    }
}

/// A spawned process: this program, run again from its file and told by
/// `--child-role exit` to end at once. On top of a fork's work, `exec`
/// replaces the copy with a fresh memory, the dynamic loader links libc in,
/// and Rust's runtime starts up before `main` returns: Python's 'spawn'.
fn spawn_unit() -> io::Result<ExitStatus> {
    Command::new(std::env::current_exe()?).args(["--child-role", "exit"]).status()
}

/// The smallest program there is, for reference: what a spawn costs when
/// the program itself does nothing (`/bin/true` is a tiny C program).
fn true_unit() -> io::Result<ExitStatus> {
    Command::new("/bin/true").status()
}

// 2. Units kept alive, to see the memory each one adds. Each first writes
// `stack_kib` KiB of its stack (0 by default): a page of memory becomes
// resident, and costs anything, only once it is touched.

/// Writes `kib` KiB of the calling thread's stack, 4 KiB per call.
fn use_stack(kib: usize) {
    if kib == 0 {
        return;
    }
    let mut frame = [1u8; 4096];
    std::hint::black_box(&mut frame);
    use_stack(kib.saturating_sub(4));
    // Read after the call, so that the compiler cannot reuse this frame for
    // the next one (a tail call would touch the same 4 KiB every time).
    std::hint::black_box(&frame);
}

/// Where parked threads wait: how many have parked, and whether they may
/// go. Two condition variables, so that each thread that parks wakes only
/// the waiting caller, not every thread parked before it.
#[derive(Default)]
struct Gate {
    state: Mutex<(usize, bool)>,
    parked: Condvar,
    released: Condvar,
}

impl Gate {
    /// Called by a thread: counts itself in, then sleeps until released.
    fn park(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 += 1;
        self.parked.notify_one();
        while !state.1 {
            state = self.released.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Whether `count` threads parked within `limit`.
    fn all_parked(&self, count: usize, limit: Duration) -> bool {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let waited = self.parked.wait_timeout_while(state, limit, |state| state.0 < count);
        let (state, _timed_out) = waited.unwrap_or_else(PoisonError::into_inner);
        state.0 >= count
    }

    fn release(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.released.notify_all();
    }
}

/// Runs `while_parked` while `count` threads are alive at once, each asleep
/// on the gate (no CPU time) after using `stack_kib` KiB of its stack; then
/// releases and joins them. A thread that cannot start releases those
/// already started: none is left behind an error.
fn with_threads_parked<T>(count: usize, stack_kib: usize, while_parked: impl FnOnce() -> T) -> io::Result<T> {
    let gate = Gate::default();
    thread::scope(|scope| {
        let mut threads = Vec::with_capacity(count);
        let parked = (|| {
            for _ in 0..count {
                threads.push(thread::Builder::new().spawn_scoped(scope, || {
                    use_stack(stack_kib);
                    gate.park();
                })?);
            }
            if !gate.all_parked(count, Duration::from_secs(60)) {
                return Err(io::Error::other("the threads did not all park within 60 s"));
            }
            Ok(while_parked())
        })();
        gate.release();
        // The scope would wait for the threads' closures to return; `join`
        // waits for each thread to end, its stack given back.
        for thread in threads {
            thread.join().map_err(|_| io::Error::other("a parked thread panicked"))?;
        }
        parked
    })
}

/// A pipe whose ends a spawned program does not inherit (a forked one does).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(pipe2(OFlag::O_CLOEXEC)?)
}

/// Runs `while_parked(pid)` while a forked child is alive, parked: it used
/// `stack_kib` KiB of stack, said so on one pipe and waits on another,
/// which the parent closes to release it (as the kernel does if the parent
/// dies: the child cannot outlive it for long). Then the child is reaped.
fn with_forked_child_parked<T>(stack_kib: usize, while_parked: impl FnOnce(Pid) -> T) -> io::Result<T> {
    let (ready_read, ready_write) = pipe()?;
    let (release_read, release_write) = pipe()?;
    // Safety: the child makes only async-signal-safe calls (`close`,
    // `write`, `read`, `_exit`) and writes to its stack; it allocates nothing.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop((ready_read, release_write));
            use_stack(stack_kib);
            let _ = nix::unistd::write(&ready_write, b"p");
            // Returns 0 (end of file) once every write end is closed.
            let _ = nix::unistd::read(&release_read, &mut [0u8]);
            // Safety: see `fork_unit`.
            unsafe { nix::libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop((ready_write, release_read));
            let ready = nix::unistd::read(&ready_read, &mut [0u8]);
            let measured = matches!(ready, Ok(1)).then(|| while_parked(child));
            drop(release_write);
            waitpid(child, None)?;
            measured.ok_or_else(|| io::Error::other("the forked child exited before it parked"))
        }
    }
}

/// The same with a spawned child: this program, run as `--child-role park
/// KIB`; its stdout says it parked, and closing its stdin releases it.
fn with_spawned_child_parked<T>(stack_kib: usize, while_parked: impl FnOnce(u32) -> T) -> io::Result<T> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--child-role", "park", &stack_kib.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let ready = child.stdout.take().expect("stdout is piped").read_exact(&mut [0u8]);
    let measured = ready.is_ok().then(|| while_parked(child.id()));
    drop(child.stdin.take());
    if measured.is_none() {
        let _ = child.kill();
    }
    child.wait()?;
    measured.ok_or_else(|| io::Error::other("the spawned child exited before it parked"))
}

/// A spawned child's `main` (`--child-role ROLE ARGS`): `exit` ends at
/// once; `park KIB` uses KIB KiB of stack, says so, and waits for the end of
/// its stdin.
fn child_main(role: &str, args: &[String]) -> io::Result<()> {
    match role {
        "exit" => Ok(()),
        "park" => {
            let kib = args.first().and_then(|kib| kib.parse().ok()).unwrap_or(0);
            use_stack(kib);
            let mut stdout = io::stdout();
            stdout.write_all(b"p")?;
            stdout.flush()?;
            io::stdin().read_to_end(&mut Vec::new()).map(drop)
        }
        other => Err(io::Error::new(io::ErrorKind::InvalidInput, format!("unknown role {other}"))),
    }
}

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
