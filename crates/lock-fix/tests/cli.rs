//! The lock-fix binary, run as a learner runs it: every fix is exact, the
//! held guard serializes, no claim fails (the timing one may be
//! inconclusive on a busy machine), and bad input gets exit code 2.

use lesson_tests::{Lesson, assert_claims_hold, claim, figure, verdict_name};

fn lesson() -> Lesson {
    Lesson::new("lock-fix", env!("CARGO_BIN_EXE_lock-fix"))
}

#[test]
fn quick_run_is_exact_and_its_claims_hold() {
    let report = lesson().json(&["--quick", "--threads", "3", "--increments", "10000", "--trials", "3"]);
    assert_claims_hold(&report);
    assert_eq!(report["params"]["threads"], 3);
    for fix in ["std Mutex", "parking_lot Mutex", "AtomicU64 fetch_add", "per-thread sums"] {
        for team in ["contended", "alone"] {
            assert!(figure(&report, fix, team) > 0.0, "{fix} / {team} was timed");
        }
    }
    let b = "guard held across the pause";
    // Three threads, one update each, nothing lost, and they took turns.
    assert_eq!(figure(&report, b, "final min"), 3.0);
    assert_eq!(figure(&report, b, "threads x pause"), 3.0 * 20.0);
    assert!(figure(&report, b, "shortest trial") >= 0.9 * figure(&report, b, "threads x pause"));
    // Three pairs are too few to decide the timing claim on, whatever the
    // machine's load: inconclusive, and it says what to change.
    assert_eq!(verdict_name(&report, "mutex-costs-more"), "inconclusive");
    assert!(claim(&report, "mutex-costs-more")["reason"].as_str().unwrap().contains("raise --trials"));
}

#[test]
fn the_mutex_claim_is_decided_on_pairs_of_cpu_times() {
    // Its verdict may be inconclusive on a busy machine, never "does not
    // hold"; its evidence names the pairs it was decided on.
    let report = lesson().json(&["--quick"]);
    assert_claims_hold(&report);
    let mutex = claim(&report, "mutex-costs-more");
    assert!(mutex["evidence"].as_str().unwrap().starts_with("CPU time alone, median of 5 pairs"), "{mutex}");
}

#[test]
fn exactness_is_checked_for_every_trial() {
    // The claim's evidence counts the trials it checked, so a run with more
    // trials names more of them.
    let report = lesson().json(&[
        "--quick",
        "--threads",
        "2",
        "--increments",
        "1000",
        "--trials",
        "7",
        "--pause-ms",
        "1",
    ]);
    let exact = report["claims"].as_array().unwrap().iter().find(|c| c["id"] == "exact").unwrap();
    assert_eq!(exact["holds"], true);
    assert!(exact["evidence"].as_str().unwrap().starts_with("7 trials of each of 4 fixes"), "{exact}");
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--threads", "0"][..], "--threads"),
        (&["--threads", "abc"], "--threads"),
        (&["--threads", "100000"], "--threads"),
        (&["--trials", "0"], "--trials"),
        (&["--increments", "0"], "--increments"),
        (&["--pause-ms", "1.5"], "--pause-ms"),
    ]);
}

#[test]
fn threads_that_cannot_start_are_an_error_not_a_hang() {
    // 1024 threads need 2 GiB of stacks and `ulimit -v` leaves 1 GiB: the
    // threads that did start are released from the start line and joined.
    let output = lesson().run_with_address_space(1 << 20, &["--quick", "--threads", "1024"]);
    lesson_tests::assert_runtime_error(&output, "error: starting the threads");
}
