//! The daemon-workers binary, run as a learner runs it: join's counts are
//! exact, the daemon exit's loss is counted from the file, the clean
//! shutdown loses nothing, bad input gets exit code 2, and Ctrl-C leaves no
//! child process and no temporary file behind.

use lesson_tests::children_of;
use lesson_tests::{Lesson, assert_claims_hold, figure};

fn lesson() -> Lesson {
    Lesson::new("daemon-workers", env!("CARGO_BIN_EXE_daemon-workers"))
}

#[test]
fn quick_run_counts_exactly() {
    let report = lesson().json(&["--quick", "--workers", "3", "--items", "7", "--work-ms", "2"]);
    assert_claims_hold(&report);
    assert_eq!(figure(&report, "join", "done at join"), 7.0);
    // Every result was buffered when the daemon child ended: all of them lost.
    assert_eq!(figure(&report, "daemon exit", "results in file"), 0.0);
    assert_eq!(figure(&report, "daemon exit", "lost"), 7.0);
    assert_eq!(figure(&report, "close and join", "results in file"), 7.0);
    assert_eq!(figure(&report, "close and join", "lost"), 0.0);
    assert!(figure(&report, "1 worker", "throughput") > 0.0);
}

#[test]
fn more_items_than_workers_and_no_work_time() {
    // One worker, many items, no sleep: join must still wait for the last.
    let report = lesson().json(&["--quick", "--workers", "1", "--items", "500", "--work-ms", "0"]);
    assert_claims_hold(&report);
    assert_eq!(figure(&report, "close and join", "results in file"), 500.0);
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--workers", "0"], "--workers"),
        (&["--workers", "ten"], "--workers"),
        (&["--items", "-1"], "-1"),
        (&["--items", "0"], "--items"),
        (&["--work-ms", "2000"], "--work-ms"),
        (&["--messages", "0"], "--messages"),
    ]);
}

#[test]
fn flags_that_would_run_for_hours_are_refused_with_an_estimate() {
    let message = lesson().usage_error(&["--items", "100000", "--work-ms", "1000", "--workers", "1"]);
    assert!(message.contains("days") && message.contains("--yes-long"), "{message}");
}

#[test]
fn threads_that_cannot_start_are_an_error_not_a_panic() {
    // 1024 workers need 2 GiB of stacks; `ulimit -v` leaves 1 GiB. The
    // workers that did start end when the queue closes.
    let output = lesson().run_with_address_space(1 << 20, &["--quick", "--workers", "1024"]);
    lesson_tests::assert_runtime_error(&output, "error: starting the worker threads");
}

#[test]
fn ctrl_c_leaves_no_child_and_no_temp_dir() {
    // Slow items keep a child alive long enough to be interrupted.
    let outcome = lesson().interrupt_when(&["--items", "40", "--workers", "2", "--work-ms", "100"], |pid| {
        !children_of(pid).is_empty()
    });
    assert_eq!(outcome.status.code(), Some(130), "{outcome:?}");
    assert!(!outcome.children.is_empty());
    assert!(outcome.surviving_children.is_empty(), "{outcome:?}");
    assert!(outcome.temp_entries_left.is_empty(), "{outcome:?}");
    assert!(outcome.orphans.is_empty(), "{outcome:?}");
}
