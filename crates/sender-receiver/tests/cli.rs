//! The sender-receiver binary, run as a learner runs it: every receiver gets
//! its values in order, SIGTERM ends the sender process, the owned thread is
//! gone after the drop, the claims hold, bad input gets exit code 2, and a
//! Ctrl-C mid-run leaves no process behind.

use lesson_tests::{Lesson, assert_claims_hold, figure, verdict};

fn lesson() -> Lesson {
    Lesson::new("sender-receiver", env!("CARGO_BIN_EXE_sender-receiver"))
}

const EXPERIMENTS: [&str; 4] = ["process, SIGTERM", "thread, flag", "thread, select", "owned thread, drop"];

#[test]
fn quick_run_stops_every_sender_and_its_claims_hold() {
    let report = lesson().json(&["--quick", "--trials", "3"]);
    assert_claims_hold(&report);
    assert_eq!(report["params"]["values"], 3);

    // Every run of every experiment read 0, 1, 2 in order: the process
    // once, each thread sender and the owned thread three times.
    for (experiment, runs) in EXPERIMENTS.into_iter().zip([1.0, 3.0, 3.0, 3.0]) {
        assert_eq!(figure(&report, experiment, "runs"), runs, "{experiment}");
        assert_eq!(figure(&report, experiment, "in order"), runs, "{experiment}");
        let median = figure(&report, experiment, "stop median");
        assert!(median > 0.0 && median <= figure(&report, experiment, "stop max"), "{experiment}");
    }
    assert_eq!(verdict(&report, "sigterm"), Some(true));

    // A sender blocked in a sleep sees the flag only when the sleep ends;
    // one waiting in select! is woken by the stop itself.
    let flag = figure(&report, "thread, flag", "stop median");
    let select = figure(&report, "thread, select", "stop median");
    assert!(flag > select, "flag {flag} ms, select {select} ms");
    assert_eq!(verdict(&report, "select-stops-sooner"), Some(true));

    // One more thread while the ticker ran, and none after it was dropped.
    let threads = |metric| figure(&report, "owned thread, drop", metric);
    assert_eq!(threads("running"), threads("before") + 1.0);
    assert_eq!(threads("after drop"), threads("before"));
    assert_eq!(verdict(&report, "drop-joins"), Some(true));

    for channel in ["crossbeam bounded(1024)", "crossbeam unbounded", "std mpsc sync_channel(1024)"] {
        assert!(figure(&report, channel, "throughput") > 0.0, "{channel}");
    }
}

#[test]
fn values_and_trials_follow_the_flags() {
    let report = lesson().json(&[
        "--quick",
        "--values",
        "4",
        "--trials",
        "2",
        "--tick-ms",
        "20",
        "--messages",
        "1000",
    ]);
    assert_eq!(report["params"]["tick_ms"], 20);
    assert_eq!(report["params"]["messages"], 1000);
    for (experiment, runs) in EXPERIMENTS.into_iter().zip([1.0, 2.0, 2.0, 2.0]) {
        assert_eq!(figure(&report, experiment, "runs"), runs, "{experiment}");
        assert_eq!(figure(&report, experiment, "in order"), runs, "{experiment}");
    }
    // The timing claim's margin is set for the default tick; these claims
    // hold at any tick.
    for id in ["in-order", "sigterm", "drop-joins"] {
        assert_eq!(verdict(&report, id), Some(true), "{id}");
    }
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--tick-ms", "0"][..], "--tick-ms"),
        (&["--tick-ms", "abc"], "--tick-ms"),
        (&["--tick-ms", "-5"], "-5"),
        (&["--tick-ms", "1001"], "--tick-ms"),
        (&["--values", "0"], "--values"),
        (&["--trials", "0"], "--trials"),
        (&["--messages", "0"], "--messages"),
    ]);
}

#[test]
fn flags_that_would_run_for_hours_are_refused_with_an_estimate() {
    let message = lesson().usage_error(&["--tick-ms", "1000", "--values", "100", "--trials", "100"]);
    assert!(message.contains("hours") && message.contains("--yes-long"), "{message}");
}

#[test]
fn ctrl_c_mid_run_leaves_no_process_behind() {
    // Interrupted while the sender process runs: the clean-up kills and
    // reaps it, and the lesson exits with 128 + SIGINT.
    let left = lesson().interrupt_when(&["--json"], |pid| !lesson_tests::children_of(pid).is_empty());
    assert_eq!(left.status.code(), Some(130), "{left:?}");
    assert!(!left.children.is_empty(), "{left:?}");
    assert!(left.surviving_children.is_empty(), "{left:?}");
    assert!(left.temp_entries_left.is_empty(), "{left:?}");
    assert!(left.orphans.is_empty(), "{left:?}");
}
