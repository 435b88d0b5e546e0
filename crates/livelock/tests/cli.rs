//! The livelock binary, run as a learner runs it: the lockstep workers do
//! no job whatever the machine's load, every trial ends (the stuck ones are
//! told to stop), the flags are followed, bad input gets exit code 2 with
//! one line, and Ctrl-C ends it at once.

use std::os::unix::process::ExitStatusExt;

use lesson_tests::{Lesson, assert_claims_hold, figure};

fn lesson() -> Lesson {
    Lesson::new("livelock", env!("CARGO_BIN_EXE_livelock"))
}

#[test]
fn quick_run_ends_and_lockstep_does_no_job() {
    // Lesson::json bounds the run: workers that never stopped would fail it.
    let report = lesson().json(&["--quick"]);
    assert_claims_hold(&report);
    assert_eq!(figure(&report, "in lockstep", "jobs"), 0.0);
    assert_eq!(figure(&report, "in lockstep", "finished"), 0.0);
    assert!(figure(&report, "in lockstep", "tries") > 0.0);
    assert_eq!(figure(&report, "random pause", "livelocked"), 0.0);
}

#[test]
fn the_sizes_follow_their_flags() {
    let report = lesson().json(&["--trials", "1", "--jobs", "7", "--patience-ms", "100", "--seed", "42"]);
    assert_claims_hold(&report);
    assert_eq!(report["params"]["trials"], 1);
    assert_eq!(report["params"]["jobs"], 7);
    assert_eq!(report["params"]["patience_ms"], 100);
    assert_eq!(report["params"]["seed"], 42);
    // Two workers, seven jobs each, when the trial finished.
    let finished = figure(&report, "random pause", "finished");
    assert!(finished == 0.0 || figure(&report, "random pause", "jobs") == 14.0);
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--trials", "0"], "--trials"),
        (&["--jobs", "0"], "--jobs"),
        (&["--jobs", "lots"], "--jobs"),
        (&["--patience-ms", "10"], "--patience-ms"),
        (&["--seed", "-1"], "-1"),
        (&["--threads", "2"], "--threads"),
    ]);
}

#[test]
fn flags_that_would_run_for_hours_are_refused_with_an_estimate() {
    let message = lesson().usage_error(&["--trials", "100", "--patience-ms", "10000"]);
    assert!(message.contains("--yes-long"), "{message}");
}

#[test]
fn ctrl_c_while_livelocked_ends_the_lesson() {
    // A long patience keeps the lockstep workers spinning; interrupt them.
    let outcome = lesson().interrupt_when(&["--patience-ms", "5000", "--yes-long"], |pid| {
        std::fs::read_dir(format!("/proc/{pid}/task")).map(|tasks| tasks.count()).unwrap_or(0) >= 3
    });
    // No clean-up is installed (nothing to clean): SIGINT's default ends it.
    assert_eq!(outcome.status.signal(), Some(2), "{outcome:?}");
    assert!(outcome.orphans.is_empty(), "{outcome:?}");
}
