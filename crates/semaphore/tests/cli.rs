//! The semaphore binary, run as a learner runs it: with K permits the most
//! tasks inside at once is exactly K, without the semaphore it is N, every
//! permit comes back after a panic, each claim fails when its phenomenon is
//! taken away by the flags, and bad input gets exit code 2 with one line.

// Built with `--cfg loom`, the binary's lock is loom's, which runs only
// inside a loom model: these tests are for the ordinary build.
#![cfg(not(loom))]

use lesson_tests::{Lesson, assert_claims_hold, figure, verdict_name};

fn lesson() -> Lesson {
    Lesson::new("semaphore", env!("CARGO_BIN_EXE_semaphore"))
}

#[test]
fn quick_run_counts_exactly() {
    let report = lesson().json(&["--quick"]);
    assert_claims_hold(&report);
    assert_eq!(report["params"]["tasks"], 20);
    assert_eq!(report["params"]["permits"], 3);
    // The counts are the semaphore's rule; they do not depend on the load.
    for limited in ["Mutex + Condvar", "channel of tokens"] {
        assert_eq!(figure(&report, limited, "tasks"), 20.0, "{limited}");
        assert_eq!(figure(&report, limited, "gave up"), 0.0, "{limited}");
        assert_eq!(figure(&report, limited, "most inside"), 3.0, "{limited}");
        assert_eq!(figure(&report, limited, "free after"), 3.0, "{limited}");
        // ceil(20 / 3) = 7 uses, and no run can be faster than that.
        assert_eq!(figure(&report, limited, "ideal"), 7.0 * 25.0, "{limited}");
        assert!(figure(&report, limited, "time/ideal") >= 0.95, "{limited}");
        assert_ne!(verdict_name(&report, "at-most-k"), "does not hold");
    }
    assert_eq!(verdict_name(&report, "panic-returns-permit"), "holds");
    assert_eq!(figure(&report, "no semaphore", "gave up"), 0.0);
}

#[test]
fn more_permits_than_tasks_leaves_nothing_to_exceed() {
    // K >= N: with or without the semaphore every task is inside at once,
    // so `unlimited-exceeds-k` must fail, while the others still hold.
    let report = lesson().json(&["--quick", "--tasks", "4", "--permits", "6", "--use-ms", "20"]);
    assert_eq!(verdict_name(&report, "unlimited-exceeds-k"), "does not hold");
    assert_eq!(figure(&report, "Mutex + Condvar", "most inside"), 4.0);
    assert_eq!(figure(&report, "no semaphore", "most inside"), 4.0);
    assert_eq!(figure(&report, "Mutex + Condvar", "ideal"), 20.0);
    assert_ne!(verdict_name(&report, "at-most-k"), "does not hold");
    assert_ne!(verdict_name(&report, "time-is-batches"), "does not hold");
    assert_eq!(verdict_name(&report, "panic-returns-permit"), "holds");
}

#[test]
fn one_permit_lets_one_task_in_at_a_time() {
    let report = lesson().json(&["--tasks", "5", "--permits", "1", "--use-ms", "10"]);
    assert_claims_hold(&report);
    assert_eq!(figure(&report, "Mutex + Condvar", "most inside"), 1.0);
    assert_eq!(figure(&report, "channel of tokens", "most inside"), 1.0);
    assert_eq!(figure(&report, "Mutex + Condvar", "ideal"), 50.0);
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--tasks", "0"], "--tasks"),
        (&["--tasks", "1001"], "--tasks"),
        (&["--permits", "0"], "--permits"),
        (&["--permits", "many"], "--permits"),
        (&["--use-ms", "0"], "--use-ms"),
        (&["--use-ms", "4"], "--use-ms"),
        (&["--use-ms", "-5"], "-5"),
        (&["--workers", "2"], "--workers"),
    ]);
}

#[test]
fn flags_that_would_run_for_hours_are_refused_with_an_estimate() {
    let message = lesson().usage_error(&["--tasks", "1000", "--permits", "1", "--use-ms", "10000"]);
    assert!(message.contains("hours") && message.contains("--yes-long"), "{message}");
}
