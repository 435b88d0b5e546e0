//! The cpu-bound binary, run as a learner runs it: the claims hold at quick
//! sizes, Python's claim is skipped (not held) when Python is off, and bad
//! input gets exit code 2 with one line.

use lesson_tests::{Lesson, assert_claims_hold, figure, verdict};

fn lesson() -> Lesson {
    Lesson::new("cpu-bound", env!("CARGO_BIN_EXE_cpu-bound"))
}

/// Whether the threads scale is for this machine's load to say (holds, or
/// inconclusive when other programs hold the cores); never "does not hold".
#[test]
fn quick_run_scales_and_the_gil_does_not() {
    let report = lesson().json(&["--quick"]);
    assert_claims_hold(&report);
    assert!(figure(&report, "1 thread", "speedup") == 1.0);
    let cores = report["host"]["cores"].as_u64().unwrap();
    let pair = cores.min(2);
    assert!(figure(&report, &format!("{pair} threads, one global lock"), "time") > 0.0);
}

#[test]
fn python_off_is_skipped_not_held() {
    let report = lesson().json(&["--quick", "--python", "off", "--decrements", "1000000"]);
    assert_eq!(verdict(&report, "python-threads-do-not-scale"), None);
    assert_eq!(report["params"]["decrements"], 1_000_000);
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--threads", "0"], "--threads"),
        (&["--threads", "many"], "--threads"),
        (&["--decrements", "-1"], "-1"),
        (&["--decrements", "10"], "--decrements"),
        (&["--python", "maybe"], "--python"),
    ]);
}
