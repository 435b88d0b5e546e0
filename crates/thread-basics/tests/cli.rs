//! The thread-basics binary, run as a learner runs it: its claims hold at
//! quick sizes, every join is counted exactly, a thread that cannot start is
//! an error (exit 1), not a panic, and bad input gets exit code 2 with one
//! line.

use lesson_tests::{Lesson, assert_claims_hold, figure, verdict_name};

fn lesson() -> Lesson {
    Lesson::new("thread-basics", env!("CARGO_BIN_EXE_thread-basics"))
}

#[test]
fn quick_run_holds_its_claims_and_counts_every_join() {
    let report = lesson().json(&["--quick"]);
    assert_claims_hold(&report);
    // One thread each for the closure and the type with `run`, two named
    // ones from the Builder, two scoped ones: each joined with its order.
    for (way, threads) in [("closure", 1.0), ("type with run", 1.0), ("Builder, named", 2.0), ("scoped", 2.0)]
    {
        assert_eq!(figure(&report, way, "threads"), threads, "{way}");
        assert_eq!(figure(&report, way, "returned"), threads, "{way}");
        assert_eq!(figure(&report, way, "Err"), 0.0, "{way}");
    }
    // The order that does not exist: its thread panicked, its join gave Err.
    assert_eq!(figure(&report, "closure, order 0", "threads"), 1.0);
    assert_eq!(figure(&report, "closure, order 0", "returned"), 0.0);
    assert_eq!(figure(&report, "closure, order 0", "Err"), 1.0);
    // Both named threads showed under their names in /proc.
    assert_eq!(figure(&report, "Builder, named", "seen by name"), 2.0);
    // Counts and names do not depend on the machine's load.
    assert_eq!(verdict_name(&report, "join-returns"), "holds");
    assert_eq!(verdict_name(&report, "names-seen"), "holds");
    // One after the other, two waits cannot take less than two waits.
    assert!(figure(&report, "waits, one thread", "time/one order") >= 2.0);
}

#[test]
fn the_wait_and_the_work_follow_their_flags() {
    let report = lesson().json(&["--wait-ms", "30", "--work-ms", "20", "--stack-kib", "64"]);
    assert_claims_hold(&report);
    assert_eq!(report["params"]["wait_ms"], 30);
    assert_eq!(figure(&report, "waits, two threads", "one order"), 30.0);
    assert_eq!(figure(&report, "work, one thread", "one order"), 20.0);
    assert_eq!(figure(&report, "Builder, named", "returned"), 2.0);
}

#[test]
fn a_thread_that_cannot_start_is_an_error_not_a_panic() {
    // A 1 GiB stack for each named thread, and `ulimit -v` leaves 1 GiB for
    // the whole process: the Builder returns the error.
    let output = lesson().run_with_address_space(1 << 20, &["--quick", "--stack-kib", "1048576"]);
    lesson_tests::assert_runtime_error(&output, "error: starting the thread named order-30");
    assert_eq!(String::from_utf8_lossy(&output.stderr).trim_end().lines().count(), 1, "{output:?}");
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--wait-ms", "0"], "--wait-ms"),
        (&["--wait-ms", "-1"], "-1"),
        (&["--wait-ms", "10001"], "--wait-ms"),
        (&["--work-ms", "0"], "--work-ms"),
        (&["--work-ms", "soon"], "--work-ms"),
        (&["--stack-kib", "1"], "--stack-kib"),
        (&["--threads", "2"], "--threads"),
    ]);
}
