//! The condition-variable binary, run as a learner runs it: every item of
//! the queue is counted exactly, every wait trial ends one way or another,
//! the flags are followed, bad input gets exit code 2 with one line, and
//! threads that cannot start are an error (exit 1), not a panic.
// Built with `--cfg loom`, the binary's locks are loom's, which run only
// inside a loom model: these tests are for the ordinary build.
#![cfg(not(loom))]

use lesson_tests::{Lesson, assert_claims_hold, figure, verdict_name};

fn lesson() -> Lesson {
    Lesson::new("condition-variable", env!("CARGO_BIN_EXE_condition-variable"))
}

/// The wait experiments; each trial of each woke, slept through, or was unclear.
const WAITS: [&str; 4] = ["notify_one", "notify_all", "flag, no lock", "flag, locked"];
const ENDINGS: [&str; 3] = ["woke", "slept through", "unclear"];

#[test]
fn quick_run_counts_every_item_and_every_trial() {
    let report = lesson().json(&["--quick"]);
    assert_claims_hold(&report);
    let (items, trials) =
        (report["params"]["items"].as_f64().unwrap(), report["params"]["trials"].as_f64().unwrap());
    for version in ["if, checks once", "while, rechecks"] {
        assert_eq!(figure(&report, version, "items"), items * trials, "{version}");
        // Each take that came back empty was taken again: nothing is lost.
        assert_eq!(figure(&report, version, "delivered once"), items * trials, "{version}");
    }
    assert_eq!(figure(&report, "while, rechecks", "took nothing"), 0.0);
    // Counts: no machine's load makes this one inconclusive.
    assert_eq!(verdict_name(&report, "while-delivers-all"), "holds");
    let wait_trials = report["params"]["wait_trials"].as_f64().unwrap();
    for experiment in WAITS {
        assert_eq!(figure(&report, experiment, "trials"), wait_trials, "{experiment}");
        let ended: f64 = ENDINGS.iter().map(|ending| figure(&report, experiment, ending)).sum();
        assert_eq!(ended, wait_trials, "{experiment}");
    }
}

#[test]
fn the_sizes_follow_their_flags() {
    let report = lesson().json(&[
        "--consumers",
        "3",
        "--capacity",
        "4",
        "--items",
        "50",
        "--trials",
        "3",
        "--wait-trials",
        "1",
        "--patience-ms",
        "30",
        "--window-ms",
        "5",
    ]);
    assert_claims_hold(&report);
    assert_eq!(report["params"]["consumers"], 3);
    assert_eq!(report["params"]["capacity"], 4);
    assert_eq!(report["params"]["patience_ms"], 30);
    assert_eq!(report["params"]["window_ms"], 5);
    assert_eq!(figure(&report, "while, rechecks", "delivered once"), 150.0);
    for experiment in WAITS {
        let ended: f64 = ENDINGS.iter().map(|ending| figure(&report, experiment, ending)).sum();
        assert_eq!(ended, 1.0, "{experiment}");
    }
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--consumers", "0"], "--consumers"),
        (&["--consumers", "65"], "--consumers"),
        (&["--capacity", "0"], "--capacity"),
        (&["--items", "0"], "--items"),
        (&["--items", "-3"], "-3"),
        (&["--trials", "many"], "--trials"),
        (&["--wait-trials", "0"], "--wait-trials"),
        (&["--patience-ms", "5"], "--patience-ms"),
        (&["--window-ms", "0"], "--window-ms"),
        (&["--threads", "2"], "--threads"),
    ]);
}

#[test]
fn flags_that_would_run_for_hours_are_refused_with_an_estimate() {
    let message = lesson().usage_error(&["--items", "10000000", "--trials", "1000"]);
    assert!(message.contains("days") && message.contains("--yes-long"), "{message}");
}

#[test]
fn threads_that_cannot_start_are_an_error_not_a_panic() {
    // 64 consumers need about 200 MiB of address space for their stacks;
    // `ulimit -v` leaves 150 MiB for the whole process.
    let output = lesson().run_with_address_space(150 << 10, &["--quick", "--consumers", "64"]);
    lesson_tests::assert_runtime_error(&output, "error: starting the consumer threads");
}
