//! The race-condition binary, run as a learner runs it: its counts are exact
//! where the lesson promises exactness, its claims hold, and bad input gets
//! exit code 2 with one line.

use lesson_tests::{Lesson, assert_claims_hold, figure, verdict_name};

fn lesson() -> Lesson {
    Lesson::new("race-condition", env!("CARGO_BIN_EXE_race-condition"))
}

#[test]
fn quick_run_loses_updates_and_counts_them_exactly() {
    let report = lesson().json(&["--quick", "--threads", "4", "--increments", "100000", "--trials", "6"]);
    assert_claims_hold(&report);
    assert_eq!(report["params"]["threads"], 4);
    assert_eq!(report["params"]["increments"], 100000);

    let a = "split load/store";
    let expected = figure(&report, a, "expected");
    assert_eq!(expected, 4.0 * 100000.0);
    // Whatever was lost, the counts add up: nothing is invented.
    let median = figure(&report, a, "final median");
    assert!(figure(&report, a, "final min") <= median && median <= expected);
    assert_eq!(figure(&report, a, "lost median"), expected - median);
    assert!((1.0..=6.0).contains(&figure(&report, a, "trials lost")));

    // The read, pause, write is exact: two threads, one update each, and
    // one of them is lost.
    let b = "read, pause, write";
    assert_eq!(figure(&report, b, "final min"), 1.0);
    assert_eq!(figure(&report, b, "final median"), 1.0);
    assert_eq!(figure(&report, b, "trials lost"), 6.0);
}

#[test]
fn one_thread_cannot_lose_an_update() {
    // A control: with nobody to race against, the same code is exact, and
    // the lesson says its claim did not hold rather than pretending.
    let report = lesson().json(&["--quick", "--threads", "1", "--trials", "3"]);
    let a = "split load/store";
    assert_eq!(figure(&report, a, "final min"), figure(&report, a, "expected"));
    assert_eq!(figure(&report, a, "trials lost"), 0.0);
    // Does not hold; or, when other programs held the cores, inconclusive.
    assert_ne!(verdict_name(&report, "lost-updates"), "holds");
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--threads", "0"][..], "--threads"),
        (&["--threads", "abc"], "--threads"),
        (&["--threads", "100000"], "--threads"),
        (&["--trials", "0"], "--trials"),
        (&["--increments", "-5"], "-5"),
        (&["--pause-ms", "0"], "--pause-ms"),
    ]);
}

#[test]
fn threads_that_cannot_start_are_an_error_not_a_hang() {
    // 1024 threads need 2 GiB of stacks and `ulimit -v` leaves 1 GiB: the
    // threads that did start are released from the start line and joined.
    let output = lesson().run_with_address_space(1 << 20, &["--quick", "--threads", "1024"]);
    lesson_tests::assert_runtime_error(&output, "error: starting the threads");
}
