//! The fork-vs-spawn binary, run as a learner runs it: its claims hold at
//! quick sizes, bad input gets exit code 2 with one line, and Ctrl-C leaves
//! no child behind (not the fork server, not a stuck forked child).

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use lesson_tests::children_of;
use lesson_tests::{Lesson, assert_claims_hold, figure};

fn lesson() -> Lesson {
    Lesson::new("fork-vs-spawn", env!("CARGO_BIN_EXE_fork-vs-spawn"))
}

#[test]
fn quick_run_holds_its_claims() {
    let report = lesson().json(&["--quick", "--timeout-ms", "200", "--trials", "2"]);
    assert_claims_hold(&report);
    // The hazard is exact: every forked child stuck, every spawned one not.
    assert_eq!(figure(&report, "forked child", "stuck until killed"), 2.0);
    assert_eq!(figure(&report, "forked child", "got the lock"), 0.0);
    assert_eq!(figure(&report, "spawned child", "got the lock"), 2.0);
    // Half of 64 MiB was written, so about 32 MiB became the child's own.
    let private = figure(&report, "child, after writing half", "private");
    assert!((27.0..=37.0).contains(&private), "{private} MiB");
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--size-mib", "0"], "--size-mib"),
        (&["--size-mib", "1048576"], "available"),
        (&["--timeout-ms", "0"], "--timeout-ms"),
        (&["--starts", "abc"], "--starts"),
        (&["--trials", "-2"], "-2"),
    ]);
}

#[test]
fn ctrl_c_leaves_no_child() {
    // The fork server is a child from the start; wait for a second child (a
    // worker being timed, or a stuck forked child) to be mid-run.
    let outcome = lesson().interrupt_when(&["--timeout-ms", "5000"], |pid| children_of(pid).len() >= 2);
    assert_eq!(outcome.status.code(), Some(130), "{outcome:?}");
    assert!(outcome.surviving_children.is_empty(), "{outcome:?}");
    assert!(outcome.orphans.is_empty(), "{outcome:?}");
}

#[test]
fn ctrl_c_at_any_moment_leaves_no_orphan() {
    // Interrupted at twelve moments across a default run (every phase: the
    // starts, the big buffer's forks, the stuck children). A fork in
    // progress when the clean-up looks (a big process's fork() copies page
    // tables for milliseconds) makes a child the clean-up did not see; if
    // the lesson exited before reaping it, it would be a zombie for PID 1.
    for moment in 0..12u64 {
        let first_look = std::sync::OnceLock::new();
        let outcome = lesson().interrupt_when(&[], |_| {
            first_look.get_or_init(std::time::Instant::now).elapsed() >= Duration::from_millis(150 * moment)
        });
        // 130 after the clean-up; 0 if the run had ended; or, in the first
        // instant before the clean-up is installed, the default action of
        // SIGINT (the fork server then dies with the lesson, by the kernel's
        // parent-death signal).
        let code = outcome.status.code();
        assert!(matches!(code, Some(130) | Some(0)) || outcome.status.signal() == Some(2), "{outcome:?}");
        assert!(outcome.orphans.is_empty(), "at {} ms: {outcome:?}", 150 * moment);
    }
}

#[test]
fn ctrl_c_while_the_fork_server_has_a_worker_leaves_no_orphan() {
    // Interrupted while a worker of the fork server (a grandchild) is alive:
    // the clean-up kills both, and the worker, orphaned, must be reaped by
    // the lesson (which adopts its orphans), not left a zombie for PID 1.
    let outcome = lesson().interrupt_when(&["--starts", "3000", "--yes-long"], |pid| {
        let children = children_of(pid);
        children.iter().any(|&child| !children_of(child).is_empty())
    });
    assert_eq!(outcome.status.code(), Some(130), "{outcome:?}");
    assert!(outcome.orphans.is_empty(), "{outcome:?}");
}

/// Whether process `pid` is asleep on a futex: a forked child stuck on
/// the copied lock (`/proc/PID/wchan` names the kernel function it waits in).
fn waits_on_a_lock(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|wchan| wchan.contains("futex"))
}

#[test]
fn kill_9_leaves_no_child() {
    // SIGKILL cannot be caught: the fork server, and a forked child stuck on
    // the copied lock, must die with the lesson by themselves (the kernel's
    // parent-death signal), not wait on that lock for ever. Killed once at
    // the start (the fork server), once mid-hazard.
    let early = lesson().kill_when(&["--timeout-ms", "5000"], |pid| !children_of(pid).is_empty());
    assert!(early.surviving_children.is_empty(), "{early:?}");
    let stuck = lesson().kill_when(&["--timeout-ms", "5000", "--starts", "1"], |pid| {
        children_of(pid).into_iter().any(waits_on_a_lock)
    });
    assert!(!stuck.children.is_empty(), "{stuck:?}");
    assert!(stuck.surviving_children.is_empty(), "{stuck:?}");
}
