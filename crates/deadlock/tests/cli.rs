//! The deadlock binary, run as a learner runs it: every trial ends (stuck
//! trials are killed, never waited for), the counts add up, the flags are
//! followed, bad input gets exit code 2 with one line, and Ctrl-C in the
//! middle of a stuck trial leaves no child behind.

use lesson_tests::{Lesson, assert_claims_hold, children_of, figure, verdict_name};

fn lesson() -> Lesson {
    Lesson::new("deadlock", env!("CARGO_BIN_EXE_deadlock"))
}

const EXPERIMENTS: [&str; 5] =
    ["2, opposite order", "2, lower first", "2, try, back off", "5, left first", "5, lower first"];

#[test]
fn quick_run_ends_every_trial_one_way_or_the_other() {
    // Lesson::json bounds the run: a lesson that waited on its stuck
    // trials would be killed and the test would fail.
    let report = lesson().json(&["--quick"]);
    assert_claims_hold(&report);
    let trials = report["params"]["trials"].as_f64().unwrap();
    for experiment in EXPERIMENTS {
        let ended = figure(&report, experiment, "deadlocked") + figure(&report, experiment, "finished");
        assert!(ended <= trials, "{experiment}");
    }
    // No load makes the detector name a cycle that is not there.
    assert_eq!(figure(&report, "2, lower first", "cycle"), 0.0);
    assert_ne!(verdict_name(&report, "lock-order-completes"), "does not hold");
    // A fix never deadlocks, whatever the machine's load.
    for fixed in ["2, lower first", "2, try, back off", "5, lower first"] {
        assert_eq!(figure(&report, fixed, "deadlocked"), 0.0, "{fixed}");
    }
}

#[test]
fn the_sizes_follow_their_flags() {
    let args =
        ["--trials", "1", "--meals", "7", "--patience-ms", "120", "--meeting-ms", "40", "--try-ms", "3"];
    let report = lesson().json(&args);
    assert_claims_hold(&report);
    assert_eq!(report["params"]["trials"], 1);
    assert_eq!(report["params"]["meals"], 7);
    assert_eq!(report["params"]["patience_ms"], 120);
    assert_eq!(report["params"]["meeting_ms"], 40);
    assert_eq!(report["params"]["try_ms"], 3);
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--trials", "0"], "--trials"),
        (&["--trials", "many"], "--trials"),
        (&["--meals", "-1"], "-1"),
        (&["--patience-ms", "10"], "--patience-ms"),
        (&["--meeting-ms", "5"], "--meeting-ms"),
        (&["--try-ms", "0"], "--try-ms"),
        (&["--patience-ms", "100", "--meeting-ms", "80"], "--meeting-ms"),
        (&["--threads", "2"], "--threads"),
    ]);
}

#[test]
fn flags_that_would_run_for_hours_are_refused_with_an_estimate() {
    let message = lesson().usage_error(&["--trials", "100", "--patience-ms", "10000"]);
    assert!(message.contains("--yes-long"), "{message}");
}

#[test]
fn ctrl_c_during_a_stuck_trial_leaves_no_child() {
    // A long patience keeps a deadlocked child alive; interrupt it then.
    let outcome = lesson().interrupt_when(&["--patience-ms", "5000", "--yes-long"], |pid| {
        children_of(pid).iter().any(|&child| {
            let threads = std::fs::read_dir(format!("/proc/{child}/task")).map(|t| t.count()).unwrap_or(0);
            threads >= 3
        })
    });
    assert_eq!(outcome.status.code(), Some(130), "{outcome:?}");
    assert!(outcome.surviving_children.is_empty(), "{outcome:?}");
    assert!(outcome.orphans.is_empty(), "{outcome:?}");
}
